//! Git side of a CatalogSource: fetching a ref into a per-source bare cache, credentials,
//! reading entry files straight from the object database, and commit signature checks.
//!
//! Everything here is blocking libgit2 work; callers run it on `spawn_blocking`.

pub mod ancestry;
pub mod auth;
pub mod fetch;
pub mod signature;
pub mod tree;

pub use auth::Credentials;
pub use fetch::{FetchRequest, Fetched, RefSpec, fetch};

/// Why fetching or reading a source failed. Every message names the URL with any password
/// removed ([`redact_url`]).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot open the cache repository {path}: {message}")]
    Cache { path: String, message: String },
    #[error("fetching {url} failed: {message}")]
    Fetch { url: String, message: String },
    #[error("fetching {url} timed out after {seconds}s")]
    Timeout { url: String, seconds: u64 },
    #[error("authentication to {url} failed{detail}")]
    Auth { url: String, detail: String },
    #[error("{what} not found in {url}")]
    RefNotFound { url: String, what: String },
    #[error("reading {path} at {revision}: {message}")]
    Read {
        revision: String,
        path: String,
        message: String,
    },
}

/// `url` with the password (or token) of its user-info replaced by `***`, so that errors,
/// logs and status messages never carry a credential.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_string();
    };
    let user = match userinfo.split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        None if scheme.starts_with("http") => "***".to_string(),
        None => userinfo.to_string(),
    };
    format!("{scheme}://{user}@{host}{}", &rest[authority_end..])
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redact_url("https://alice:s3cret@git.example.com/org/repo.git"),
            "https://alice:***@git.example.com/org/repo.git"
        );
        assert_eq!(
            redact_url("https://tok3n@git.example.com/r"),
            "https://***@git.example.com/r"
        );
        assert_eq!(
            redact_url("ssh://git@host:22/r.git"),
            "ssh://git@host:22/r.git"
        );
        assert_eq!(redact_url("file:///tmp/r.git"), "file:///tmp/r.git");
        assert_eq!(redact_url("git@host:org/r.git"), "git@host:org/r.git");
    }
}
