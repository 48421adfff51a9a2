//! Git credentials from the CatalogSource's `secretRef` Secret.

use std::collections::BTreeMap;

/// What a Secret may hold (DESIGN §4): `username`/`password`, `bearerToken`, or `identity`
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
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("bearer_token", &self.bearer_token.as_ref().map(|_| "***"))
            .field("identity", &self.identity.as_ref().map(|_| "***"))
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

/// Whether `known_hosts` (OpenSSH format) lists `key` (base64 of the wire encoding) for
/// `host` (`host` on port 22, `[host]:port` otherwise). Hashed entries (`|1|...`) are not
/// supported: list hosts in clear.
pub fn known_host_matches(
    known_hosts: &str,
    host: &str,
    port: Option<u16>,
    key_base64: &str,
) -> bool {
    let wanted = match port {
        Some(p) if p != 22 => format!("[{host}]:{p}"),
        _ => host.to_string(),
    };
    known_hosts.lines().any(|line| {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return false;
        }
        let mut fields = line.split_whitespace();
        let Some(mut hosts) = fields.next() else {
            return false;
        };
        if hosts.starts_with('@') {
            // @cert-authority / @revoked markers: not supported, never a match.
            return false;
        }
        if hosts == "*" {
            hosts = &wanted;
        }
        let host_ok = hosts
            .split(',')
            .any(|h| h == wanted || (port.is_none() && h == host));
        let _key_type = fields.next();
        host_ok && fields.next() == Some(key_base64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn debug_hides_secrets() {
        let c = Credentials {
            password: Some("hunter2".into()),
            ..Default::default()
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
