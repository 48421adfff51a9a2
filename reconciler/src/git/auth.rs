//! Git credentials from the CatalogSource's `secretRef` Secret, and the `known_hosts` check of
//! SSH host keys.

use std::collections::BTreeMap;

/// What a Secret may hold: `username`/`password`, `bearerToken`, or `identity`
/// (an SSH private key in OpenSSH format) with `known_hosts`.
#[derive(Clone, Default)]
pub struct Credentials {
    pub username: Option<String>,
    pub password: Option<String>,
    pub bearer_token: Option<String>,
    pub identity: Option<String>,
    pub known_hosts: Option<String>,
}

impl std::fmt::Debug for Credentials {
    // Never print a credential, even in debug logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field(
                "password",
                &self.password.as_ref().map(|_| catalog_api::redact::MASK),
            )
            .field(
                "bearer_token",
                &self
                    .bearer_token
                    .as_ref()
                    .map(|_| catalog_api::redact::MASK),
            )
            .field(
                "identity",
                &self.identity.as_ref().map(|_| catalog_api::redact::MASK),
            )
            .field("known_hosts", &self.known_hosts.is_some())
            .finish()
    }
}

impl Credentials {
    /// Reads the keys of a Secret's decoded `data`.
    pub fn from_secret_data(data: &BTreeMap<String, Vec<u8>>) -> Credentials {
        let get = |key: &str| {
            data.get(key)
                .map(|v| {
                    String::from_utf8_lossy(v)
                        .trim_end_matches(['\r', '\n'])
                        .to_string()
                })
                .filter(|v| !v.is_empty())
        };
        Credentials {
            username: get("username"),
            password: get("password"),
            bearer_token: get("bearerToken"),
            identity: get("identity").map(|k| format!("{k}\n")),
            known_hosts: get("known_hosts"),
        }
    }
}

/// What `known_hosts` says about one host key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostKeyVerdict {
    /// A plain line lists the key for the host.
    Trusted,
    /// A `@revoked` line lists the key (for the host or `*`): rejected even when another line
    /// trusts it, as OpenSSH does.
    Revoked,
    /// No line lists the key for the host.
    Unknown,
}

/// Looks `key` (base64 of the wire encoding) up for `host` in `known_hosts` (OpenSSH format).
/// The host is written `host` on port 22 and `[host]:port` otherwise; host fields may list
/// several comma-separated patterns (`*` and `?` wildcards, `!` negation, case-insensitive)
/// or be hashed (`|1|salt|hmac`, what `ssh-keygen -H` and `HashKnownHosts yes` write), so a
/// known_hosts file copied from a workstation works as is. `@revoked` lines reject the key;
/// `@cert-authority` lines are ignored (host certificates are not supported).
pub fn check_host_key(
    known_hosts: &str,
    host: &str,
    port: Option<u16>,
    key_base64: &str,
) -> HostKeyVerdict {
    let wanted = match port {
        Some(p) if p != 22 => format!("[{host}]:{p}"),
        _ => host.to_string(),
    };
    let mut verdict = HostKeyVerdict::Unknown;
    for line in known_hosts.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let Some(mut first) = fields.next() else {
            continue;
        };
        let revoked = match first {
            "@revoked" => true,
            marker if marker.starts_with('@') => continue,
            _ => false,
        };
        if revoked {
            let Some(hosts) = fields.next() else {
                continue;
            };
            first = hosts;
        }
        let _key_type = fields.next();
        if fields.next() != Some(key_base64) {
            continue;
        }
        if !host_field_matches(first, &wanted) {
            continue;
        }
        if revoked {
            return HostKeyVerdict::Revoked;
        }
        verdict = HostKeyVerdict::Trusted;
    }
    verdict
}

/// OpenSSH's rule for a host field: some pattern matches `host` and no negated one does.
fn host_field_matches(field: &str, host: &str) -> bool {
    let mut matched = false;
    for pattern in field.split(',') {
        if let Some(negated) = pattern.strip_prefix('!') {
            if glob_matches(negated.as_bytes(), host.as_bytes()) {
                return false;
            }
        } else if hashed_host_matches(pattern, host)
            || glob_matches(pattern.as_bytes(), host.as_bytes())
        {
            matched = true;
        }
    }
    matched
}

/// `*` (any run) and `?` (one character) wildcards, ASCII case-insensitive.
fn glob_matches(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|skip| glob_matches(rest, &text[skip..])),
        Some((&p, rest)) => text.split_first().is_some_and(|(&t, text_rest)| {
            (p == b'?' || p.eq_ignore_ascii_case(&t)) && glob_matches(rest, text_rest)
        }),
    }
}

/// Whether a hashed host field `|1|base64(salt)|base64(HMAC-SHA1(salt, host))` is `host`.
fn hashed_host_matches(pattern: &str, host: &str) -> bool {
    let Some(rest) = pattern.strip_prefix("|1|") else {
        return false;
    };
    let Some((salt, mac)) = rest.split_once('|') else {
        return false;
    };
    let (Some(salt), Some(mac)) = (base64_decode(salt), base64_decode(mac)) else {
        return false;
    };
    // SHA-1 is what the format specifies; ring keeps it for exactly this kind of legacy use.
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &salt);
    ring::hmac::verify(&key, host.as_bytes(), &mac).is_ok()
}

/// Standard base64, padded or not (known_hosts writers differ); `None` when it is not base64.
pub(crate) fn base64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    LENIENT.decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known_host_matches(known_hosts: &str, host: &str, port: Option<u16>, key: &str) -> bool {
        check_host_key(known_hosts, host, port, key) == HostKeyVerdict::Trusted
    }

    #[test]
    fn known_hosts_lookup() {
        let kh = "# comment\ngit.example.com,10.0.0.1 ssh-ed25519 AAAAkey\n[localhost]:2222 ssh-ed25519 AAAAother\n";
        assert!(known_host_matches(kh, "git.example.com", None, "AAAAkey"));
        assert!(known_host_matches(kh, "10.0.0.1", Some(22), "AAAAkey"));
        assert!(!known_host_matches(
            kh,
            "git.example.com",
            None,
            "AAAAother"
        ));
        assert!(known_host_matches(kh, "localhost", Some(2222), "AAAAother"));
        assert!(!known_host_matches(kh, "localhost", None, "AAAAother"));
    }

    const KEY: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIIUlL3OoEQTmNF0uD1LsHAGsj9HNVjQiQOoaoEdu9DHW";

    /// Written by `ssh-keygen -H` (OpenSSH 9.2) from `git.example.com ...` and
    /// `[127.0.0.1]:2222 ...` lines with the key [`KEY`].
    const HASHED: &str = "\
|1|Rcbl+wXJioc8pIOfF29wXiYl25E=|Dp1OrGLV7cqcqGLr+rU8zC/oIHE= ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIUlL3OoEQTmNF0uD1LsHAGsj9HNVjQiQOoaoEdu9DHW
|1|+O4FaNhMAHw7G3W6h9eDkrZv0RQ=|VtRP8EXFjstiSH5tsDsINQX2Ftk= ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIUlL3OoEQTmNF0uD1LsHAGsj9HNVjQiQOoaoEdu9DHW
";

    #[test]
    fn hashed_hosts_written_by_ssh_keygen_match() {
        assert!(known_host_matches(HASHED, "git.example.com", None, KEY));
        assert!(known_host_matches(HASHED, "git.example.com", Some(22), KEY));
        assert!(known_host_matches(HASHED, "127.0.0.1", Some(2222), KEY));
        assert!(!known_host_matches(HASHED, "127.0.0.1", None, KEY));
        assert!(!known_host_matches(HASHED, "127.0.0.1", Some(2223), KEY));
        assert!(!known_host_matches(HASHED, "git.example.org", None, KEY));
        assert!(!known_host_matches(
            HASHED,
            "git.example.com",
            None,
            "AAAAother"
        ));
    }

    #[test]
    fn hashed_hosts_from_the_installed_ssh_keygen_match() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("known_hosts");
        std::fs::write(
            &file,
            format!("[localhost]:4022,10.1.2.3 ssh-ed25519 {KEY}\n"),
        )
        .unwrap();
        let status = std::process::Command::new("ssh-keygen")
            .arg("-H")
            .arg("-f")
            .arg(&file)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("ssh-keygen is required by this test: apt-get install -y openssh-client");
        assert!(status.success());
        let hashed = std::fs::read_to_string(&file).unwrap();
        assert!(hashed.starts_with("|1|"), "{hashed}");
        assert!(!hashed.contains("localhost"), "{hashed}");
        assert!(known_host_matches(&hashed, "localhost", Some(4022), KEY));
        assert!(known_host_matches(&hashed, "10.1.2.3", None, KEY));
        assert!(!known_host_matches(&hashed, "localhost", None, KEY));
    }

    #[test]
    fn revoked_keys_are_rejected_even_when_trusted_elsewhere() {
        let kh = format!("git.example.com ssh-ed25519 {KEY}\n@revoked * ssh-ed25519 {KEY}\n");
        assert_eq!(
            check_host_key(&kh, "git.example.com", None, KEY),
            HostKeyVerdict::Revoked
        );
        let other_host = format!("@revoked other.example.com ssh-ed25519 {KEY}\n{HASHED}");
        assert_eq!(
            check_host_key(&other_host, "git.example.com", None, KEY),
            HostKeyVerdict::Trusted
        );
        let cert_authority = format!("@cert-authority * ssh-ed25519 {KEY}\n");
        assert_eq!(
            check_host_key(&cert_authority, "git.example.com", None, KEY),
            HostKeyVerdict::Unknown
        );
    }

    #[test]
    fn wildcards_and_negations_follow_openssh() {
        let kh = format!(
            "*.example.com,!bad.example.com ssh-ed25519 {KEY}\n[10.0.0.?]:2222 ssh-ed25519 {KEY}\n"
        );
        assert!(known_host_matches(&kh, "git.example.com", None, KEY));
        assert!(known_host_matches(&kh, "GIT.Example.COM", None, KEY));
        assert!(!known_host_matches(&kh, "bad.example.com", None, KEY));
        assert!(!known_host_matches(&kh, "example.com", None, KEY));
        assert!(!known_host_matches(&kh, "git.example.com", Some(2222), KEY));
        assert!(known_host_matches(&kh, "10.0.0.7", Some(2222), KEY));
        assert!(!known_host_matches(&kh, "10.0.0.17", Some(2222), KEY));
    }

    #[test]
    fn base64_round_trips() {
        assert_eq!(base64_decode("Zm9vYmFy").unwrap(), b"foobar");
        assert_eq!(base64_decode("Zg==").unwrap(), b"f");
        assert_eq!(base64_decode("Zm8=").unwrap(), b"fo");
        assert!(base64_decode("Zm9v!").is_none());
    }

    #[test]
    fn debug_hides_secrets() {
        let c = Credentials {
            password: Some("hunter2".into()),
            ..Default::default()
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
