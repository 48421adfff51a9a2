//! Where caib's tokens may travel: the host of a git remote or API URL, and the rule that a
//! token only crosses the network encrypted. A plain-http URL is accepted with a token only
//! on a loopback host (a local test server, a port-forward), where nothing leaves the machine.
//!
//! "Host" is the host name alone, compared case-insensitively; the port is not part of it. A
//! forge's git-over-ssh port (`ssh://git@gitlab.example.com:2222/…`) differs from its API's
//! (443), and both are the same forge. libgit2 compares redirect targets the same way.

use std::net::IpAddr;

use catalog_api::redact::redact_url;
use url::{Host, Url};

/// Why a URL may not carry a token.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("{field} {url:?} is not a URL ({reason})")]
    Invalid {
        field: &'static str,
        url: String,
        reason: String,
    },
    #[error(
        "{field} {url} is plain http to {host}: caib sends tokens only over https (plain http \
         only to a loopback host). Use an https:// URL"
    )]
    PlainHttp {
        field: &'static str,
        url: String,
        host: String,
    },
    #[error("{field} {url}: unsupported scheme {scheme:?} (expected https)")]
    Scheme {
        field: &'static str,
        url: String,
        scheme: String,
    },
}

/// The host of a git remote or URL, lower-cased: `scheme://[user@]host[:port]/…` or scp-like
/// `[user@]host:path`. `None` for local paths and `file://` URLs.
pub fn host(remote: &str) -> Option<String> {
    if remote.contains("://") {
        let url = Url::parse(remote).ok()?;
        return url
            .host_str()
            .filter(|h| !h.is_empty())
            .map(str::to_lowercase);
    }
    // scp-like: the host is between the last `@` and the first `:` (before any `/`).
    let (before, _) = remote.split_once(':')?;
    if before.contains('/') {
        return None;
    }
    let host = before.rsplit('@').next()?;
    (host.len() > 1).then(|| host.to_lowercase())
}

/// True for `localhost`, 127.0.0.0/8 and ::1: traffic to them never leaves the machine.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// Whether a token may be sent to `url`: https anywhere, plain http to loopback only.
/// `field` names where the URL came from (flag, variable, catalog.yaml field) for the error.
pub fn check_token_url(field: &'static str, url: &str) -> Result<Url, TransportError> {
    let parsed = Url::parse(url).map_err(|e| TransportError::Invalid {
        field,
        url: redact_url(url).into_owned(),
        reason: e.to_string(),
    })?;
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if is_loopback(&parsed) => Ok(parsed),
        "http" => Err(TransportError::PlainHttp {
            field,
            url: redact_url(url).into_owned(),
            host: parsed.host_str().unwrap_or_default().to_owned(),
        }),
        scheme => Err(TransportError::Scheme {
            field,
            url: redact_url(url).into_owned(),
            scheme: scheme.to_owned(),
        }),
    }
}

/// For a git remote: `Err` when it is a plain-http URL to a non-loopback host and a token
/// would go with it, from the URL's user-info or from a token variable (`token_set`). Every
/// other remote (https, ssh, git://, local paths, anonymous plain http) passes.
pub fn check_git_remote(
    field: &'static str,
    remote: &str,
    token_set: bool,
) -> Result<(), TransportError> {
    match Url::parse(remote) {
        Ok(url) if url.scheme() == "http" && (token_set || has_userinfo(&url)) => {
            check_token_url(field, remote).map(drop)
        }
        _ => Ok(()),
    }
}

/// Whether libgit2 may be handed a secret (token, helper password) for `url`: not for plain
/// http off the machine. What libgit2 asks about is not always the URL the user gave (a
/// same-host redirect), hence this second check in the credential callback.
pub fn may_send_secret(url: &str) -> bool {
    !Url::parse(url).is_ok_and(|u| u.scheme() == "http" && !is_loopback(&u))
}

fn has_userinfo(url: &Url) -> bool {
    !url.username().is_empty() || url.password().is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_of_remotes() {
        for (remote, expected) in [
            ("https://GitHub.com/o/r.git", Some("github.com")),
            ("https://tok@github.com:443/o/r.git", Some("github.com")),
            (
                "ssh://git@gitlab.example.com:2222/g/r.git",
                Some("gitlab.example.com"),
            ),
            ("git@github.com:o/r.git", Some("github.com")),
            ("gitea.local:o/r.git", Some("gitea.local")),
            ("http://[::1]:8080/r.git", Some("[::1]")),
            ("file:///srv/r.git", None),
            ("/srv/catalog.git", None),
            ("./dir:with/colon", None),
        ] {
            assert_eq!(host(remote).as_deref(), expected, "{remote}");
        }
    }

    #[test]
    fn tokens_go_over_https_or_to_loopback_only() {
        for ok in [
            "https://forge.example.com/api/v4",
            "http://127.0.0.1:3000/api/v1",
            "http://127.0.0.2:3000",
            "http://localhost:8080",
            "http://[::1]:8080",
        ] {
            assert!(check_token_url("CAIB_FORGE_API_URL", ok).is_ok(), "{ok}");
        }
        let err = check_token_url("CAIB_FORGE_API_URL", "http://tok@forge.example.com/api")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("CAIB_FORGE_API_URL http://***@forge.example.com/api"),
            "{err}"
        );
        assert!(err.contains("https"), "{err}");
        assert!(!err.contains("tok@"), "{err}");
        let err = check_token_url("catalog.yaml forge.apiUrl", "ftp://h/x").unwrap_err();
        assert!(matches!(err, TransportError::Scheme { .. }), "{err}");
        let err = check_token_url("catalog.yaml forge.apiUrl", "forge.example.com").unwrap_err();
        assert!(
            err.to_string().contains("catalog.yaml forge.apiUrl"),
            "{err}"
        );
    }

    #[test]
    fn git_remotes_in_clear_are_refused_off_the_machine_when_a_token_would_go() {
        let field = "--catalog-repo";
        assert!(check_git_remote(field, "http://git.example.com/r.git", true).is_err());
        assert!(check_git_remote(field, "http://ghp_x@git.example.com/r.git", false).is_err());
        assert!(check_git_remote(field, "http://u:p@git.example.com/r.git", false).is_err());
        // Anonymous plain http carries nothing secret.
        assert!(check_git_remote(field, "http://git.example.com/r.git", false).is_ok());
        for ok in [
            "http://alice@127.0.0.1:9/r.git",
            "https://t@git.example.com/r.git",
            "ssh://git@git.example.com/r.git",
            "git@git.example.com:r.git",
            "git://git.example.com/r.git",
            "/srv/catalog.git",
        ] {
            assert!(check_git_remote(field, ok, true).is_ok(), "{ok}");
        }
        assert!(!may_send_secret("http://git.example.com/r.git"));
        assert!(may_send_secret("http://localhost:9/r.git"));
        assert!(may_send_secret("https://git.example.com/r.git"));
        assert!(may_send_secret("git@git.example.com:o/r.git"));
    }
}
