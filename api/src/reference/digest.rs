//! Digests the product accepts: those of every algorithm the OCI image specification registers
//! (`descriptor.md`, "Registered algorithms"), each with its exact encoded length in lowercase
//! hex. The grammar allows any algorithm name; a digest nobody can compute would pin nothing, so
//! other names are refused with their own error.

use super::ReferenceError;
use super::grammar::is_lower_hex;

/// A digest algorithm the OCI image specification registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `sha256:` and 64 hex characters: what registries compute by default.
    Sha256,
    /// `sha512:` and 128 hex characters.
    Sha512,
}

impl Algorithm {
    /// Every registered algorithm.
    pub const ALL: [Algorithm; 2] = [Algorithm::Sha256, Algorithm::Sha512];

    /// The name before the `:` of a digest.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// How many hex characters follow the `:`.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }

    /// The algorithm of a digest the product accepts; `None` for anything else.
    pub fn of(digest: &str) -> Option<Algorithm> {
        let (name, hex) = digest.split_once(':')?;
        let algorithm = Self::ALL.into_iter().find(|a| a.name() == name)?;
        (hex.len() == algorithm.hex_len() && is_lower_hex(hex)).then_some(algorithm)
    }
}

/// The accepted forms, for error messages.
pub const DIGEST_FORMS: &str = "sha256: followed by 64 lowercase hex characters, or sha512: \
                                followed by 128";

/// The CRD `pattern` of `spec.digest`: the same set [`is_valid_digest`] accepts.
pub const DIGEST_PATTERN: &str = "^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$";

/// The longest accepted digest (`sha512:` and 128 hex characters).
pub const DIGEST_MAX: usize = "sha512:".len() + 128;

/// Whether `s` is a digest the product accepts: a registered algorithm and its exact number of
/// lowercase hex characters.
pub fn is_valid_digest(s: &str) -> bool {
    Algorithm::of(s).is_some()
}

pub(super) fn check_digest(digest: &str) -> Result<(), ReferenceError> {
    if is_valid_digest(digest) {
        return Ok(());
    }
    match digest.split_once(':') {
        Some((algorithm, _))
            if !algorithm.is_empty()
                && Algorithm::ALL.iter().all(|a| a.name() != algorithm)
                && algorithm
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+._-".contains(&b)) =>
        {
            Err(ReferenceError::UnsupportedDigestAlgorithm {
                digest: digest.into(),
                algorithm: algorithm.into(),
            })
        }
        _ => Err(ReferenceError::InvalidDigest {
            digest: digest.into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_registered_algorithm_with_its_exact_length() {
        let sha256 = format!("sha256:{}", "a".repeat(64));
        let sha512 = format!("sha512:{}", "0f".repeat(64));
        assert_eq!(Algorithm::of(&sha256), Some(Algorithm::Sha256));
        assert_eq!(Algorithm::of(&sha512), Some(Algorithm::Sha512));
        assert_eq!(sha512.len(), DIGEST_MAX);
        for wrong in [
            format!("sha256:{}", "a".repeat(128)),
            format!("sha512:{}", "a".repeat(64)),
            format!("sha512:{}", "a".repeat(127)),
            format!("sha512:{}", "A".repeat(128)),
            format!("sha384:{}", "a".repeat(96)),
            format!("blake3:{}", "a".repeat(64)),
            "sha512:".into(),
            "sha512".into(),
        ] {
            assert!(!is_valid_digest(&wrong), "{wrong}");
        }
    }

    #[test]
    fn unregistered_algorithms_have_their_own_error() {
        let sha384 = format!("sha384:{}", "a".repeat(96));
        assert!(matches!(
            check_digest(&sha384),
            Err(ReferenceError::UnsupportedDigestAlgorithm { algorithm, .. }) if algorithm == "sha384"
        ));
        let short = format!("sha512:{}", "a".repeat(64));
        assert!(matches!(
            check_digest(&short),
            Err(ReferenceError::InvalidDigest { .. })
        ));
    }

    /// The CRD pattern, as the API server (and the emulator) evaluates it, accepts exactly what
    /// the parser accepts.
    #[test]
    fn crd_pattern_agrees_with_the_parser() {
        let pattern = regex::Regex::new(DIGEST_PATTERN).unwrap();
        let hex = |n: usize| "0123456789abcdef".repeat(9)[..n].to_owned();
        let mut cases = vec![
            String::new(),
            "sha256:".into(),
            format!("md5:{}", hex(32)),
            format!("sha384:{}", hex(96)),
            format!("SHA256:{}", hex(64)),
            format!("sha256:{}\n", hex(64)),
            format!(" sha512:{}", hex(128)),
        ];
        for algorithm in Algorithm::ALL {
            for len in [0, 63, 64, 65, 127, 128, 129] {
                cases.push(format!("{}:{}", algorithm.name(), hex(len)));
                cases.push(format!("{}:{}", algorithm.name(), hex(len).to_uppercase()));
            }
        }
        for case in cases {
            assert_eq!(pattern.is_match(&case), is_valid_digest(&case), "{case:?}");
        }
    }
}
