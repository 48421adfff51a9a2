//! SSH commit signature verification (`gpg.format=ssh` commits): the commit's `gpgsig` header
//! is an SSHSIG over the commit object without that header, namespace `git`.

use git2::{Oid, Repository};
use ssh_key::{PublicKey, SshSig};

/// Trusted keys parsed from the values of the `verify.secretRef` Secret. Each value may be in
/// allowed_signers format (`principals [options] keytype base64 [comment]`) or
/// authorized_keys format (`[options] keytype base64 [comment]`); comments and blank lines
/// are ignored. Returns the keys and the lines that could not be read (1-based, with key).
pub fn parse_trusted_keys<'a>(
    values: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> (Vec<PublicKey>, Vec<String>) {
    let mut keys = Vec::new();
    let mut problems = Vec::new();
    for (secret_key, text) in values {
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let found = fields.windows(2).find_map(|w| {
                is_key_type(w[0])
                    .then(|| PublicKey::from_openssh(&format!("{} {}", w[0], w[1])).ok())
                    .flatten()
            });
            match found {
                Some(key) => keys.push(key),
                None => problems.push(format!("{secret_key}:{}: no SSH public key found", n + 1)),
            }
        }
    }
    (keys, problems)
}

fn is_key_type(field: &str) -> bool {
    field.starts_with("ssh-") || field.starts_with("ecdsa-sha2-") || field.starts_with("sk-")
}

/// Why a commit is not trusted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("commit {0} is not signed")]
    Unsigned(String),
    #[error("commit {commit} has an unreadable signature: {message}")]
    Malformed { commit: String, message: String },
    #[error("commit {commit} is signed by {fingerprint}, which is not a trusted key")]
    Untrusted { commit: String, fingerprint: String },
    #[error("commit {commit} has a signature that does not verify: {message}")]
    Invalid { commit: String, message: String },
}

/// Verifies the SSH signature of `commit` against `trusted`; returns the signing key's
/// fingerprint.
pub fn verify_commit(
    repo: &Repository,
    commit: &str,
    trusted: &[PublicKey],
) -> Result<String, SignatureError> {
    let oid = Oid::from_str(commit).map_err(|e| SignatureError::Malformed {
        commit: commit.into(),
        message: e.message().into(),
    })?;
    let (signature, signed) = repo
        .extract_signature(&oid, None)
        .map_err(|_| SignatureError::Unsigned(commit.into()))?;
    let text = std::str::from_utf8(&signature).map_err(|e| SignatureError::Malformed {
        commit: commit.into(),
        message: e.to_string(),
    })?;
    if !text.contains("BEGIN SSH SIGNATURE") {
        return Err(SignatureError::Malformed {
            commit: commit.into(),
            message: "not an SSH signature (only gpg.format=ssh signatures are supported)".into(),
        });
    }
    let sig = SshSig::from_pem(text).map_err(|e| SignatureError::Malformed {
        commit: commit.into(),
        message: e.to_string(),
    })?;
    verify_data(commit, &signed, &sig, trusted)
}

fn verify_data(
    commit: &str,
    data: &[u8],
    sig: &SshSig,
    trusted: &[PublicKey],
) -> Result<String, SignatureError> {
    let signer = PublicKey::from(sig.public_key().clone());
    let fingerprint = signer.fingerprint(Default::default()).to_string();
    let Some(key) = trusted.iter().find(|k| k.key_data() == signer.key_data()) else {
        return Err(SignatureError::Untrusted {
            commit: commit.into(),
            fingerprint,
        });
    };
    key.verify("git", data, sig)
        .map_err(|e| SignatureError::Invalid {
            commit: commit.into(),
            message: e.to_string(),
        })?;
    Ok(fingerprint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_allowed_signers_and_authorized_keys() {
        let key =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
        let allowed = format!("# trusted\nalice@example.com namespaces=\"git\" {key} alice\n");
        let authorized = format!("{key} bob\nnot a key\n");
        let (keys, problems) = parse_trusted_keys([
            ("allowed_signers", allowed.as_str()),
            ("authorized_keys", authorized.as_str()),
        ]);
        assert_eq!(keys.len(), 2);
        assert_eq!(
            problems,
            vec!["authorized_keys:2: no SSH public key found".to_string()]
        );
    }

    use crate::test_support::run;

    #[test]
    fn verifies_ssh_signed_commits() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        for name in ["good", "bad"] {
            run(
                dir,
                "ssh-keygen",
                &["-q", "-t", "ed25519", "-N", "", "-f", name],
            );
        }
        let good_pub = std::fs::read_to_string(dir.join("good.pub")).unwrap();
        let (trusted, _) = parse_trusted_keys([("authorized_keys", good_pub.as_str())]);
        run(dir, "git", &["init", "-q", "-b", "main", "repo"]);
        let repo_dir = dir.join("repo");
        let sign = |key: &str, message: &str| {
            let key = dir.join(key);
            let key_opt = format!("user.signingkey={}", key.display());
            run(
                &repo_dir,
                "git",
                &[
                    "-c",
                    "gpg.format=ssh",
                    "-c",
                    &key_opt,
                    "commit",
                    "-q",
                    "--allow-empty",
                    "-S",
                    "-m",
                    message,
                ],
            );
            run(&repo_dir, "git", &["rev-parse", "HEAD"])
        };
        run(
            &repo_dir,
            "git",
            &["commit", "-q", "--allow-empty", "-m", "unsigned"],
        );
        let unsigned = run(&repo_dir, "git", &["rev-parse", "HEAD"]);
        let good = sign("good", "good");
        let bad = sign("bad", "bad");
        let repo = Repository::open(&repo_dir).unwrap();
        assert!(
            verify_commit(&repo, &good, &trusted)
                .unwrap()
                .starts_with("SHA256:")
        );
        assert_eq!(
            verify_commit(&repo, &unsigned, &trusted),
            Err(SignatureError::Unsigned(unsigned.clone()))
        );
        assert!(matches!(
            verify_commit(&repo, &bad, &trusted),
            Err(SignatureError::Untrusted { .. })
        ));
    }
}
