//! Which forge API caib sends its token to. The token was given for the catalog repository,
//! so by default the API is the one of the repository's own host; catalog.yaml, which anyone
//! with write access to the catalog can change, cannot point it elsewhere. Only the user can,
//! with `CAIB_FORGE_API_URL`.
//!
//! In order:
//! 1. `CAIB_FORGE_API_URL`, as given.
//! 2. catalog.yaml `forge.apiUrl`, when its host is the catalog remote's host (or the API
//!    host derived from it: `api.github.com` for `github.com`); otherwise an error naming both.
//! 3. Derived from the remote's host: `github.com` → `https://api.github.com`; any other host
//!    → `https://HOST/api/v3` (GitHub Enterprise), `/api/v4` (GitLab) or `/api/v1` (Gitea),
//!    by `forge.provider`.
//!
//! Whatever the source, a plain-http URL is refused unless its host is loopback
//! ([`crate::transport::check_token_url`]).

use catalog_api::redact::redact_url;
use catalog_api::repo::Forge;
use catalog_api::source::ForgeProvider;

use crate::transport::{self, TransportError};

/// The variable that overrides the API URL.
pub const ENV_VAR: &str = "CAIB_FORGE_API_URL";
const FIELD: &str = "catalog.yaml forge.apiUrl";

/// Why no API URL could be chosen.
#[derive(Debug, thiserror::Error)]
pub enum ApiUrlError {
    #[error(
        "{FIELD} {api_url} is on host {api_host}, but the catalog repository is on host \
         {remote_host}: caib sends the token only to the catalog repository's host. Set \
         {ENV_VAR}={api_url} if that forge is intended"
    )]
    ForeignHost {
        api_url: String,
        api_host: String,
        remote_host: String,
    },
    #[error(
        "the catalog repository {remote} is a local path: there is no host to derive the \
         forge API URL from, nor to check {FIELD} against. Set {ENV_VAR}"
    )]
    NoRemoteHost { remote: String },
    #[error(transparent)]
    Transport(#[from] TransportError),
}

/// The API base URL (no trailing slash) for `forge` of the catalog repository at `remote`;
/// `env` is the value of [`ENV_VAR`].
pub fn resolve(forge: &Forge, remote: &str, env: Option<&str>) -> Result<String, ApiUrlError> {
    let chosen = match env.filter(|v| !v.trim().is_empty()) {
        Some(url) => {
            transport::check_token_url(ENV_VAR, url)?;
            url.to_owned()
        }
        None => from_catalog(forge, remote)?,
    };
    Ok(chosen.trim_end_matches('/').to_owned())
}

/// Steps 2 and 3: from catalog.yaml when it stays on the remote's host, else derived.
fn from_catalog(forge: &Forge, remote: &str) -> Result<String, ApiUrlError> {
    let remote_host = transport::host(remote).ok_or_else(|| ApiUrlError::NoRemoteHost {
        remote: redact_url(remote).into_owned(),
    })?;
    let derived = derive(forge.provider, &remote_host);
    let Some(api_url) = &forge.api_url else {
        return Ok(derived);
    };
    let parsed = transport::check_token_url(FIELD, api_url)?;
    let api_host = parsed.host_str().unwrap_or_default().to_lowercase();
    if api_host == remote_host || transport::host(&derived).as_deref() == Some(&api_host) {
        return Ok(api_url.clone());
    }
    Err(ApiUrlError::ForeignHost {
        api_url: redact_url(api_url).into_owned(),
        api_host,
        remote_host,
    })
}

/// The API of the forge at `host`, always https.
fn derive(provider: ForgeProvider, host: &str) -> String {
    if host == "github.com" {
        return "https://api.github.com".into();
    }
    let path = match provider {
        ForgeProvider::Github => "api/v3",
        ForgeProvider::Gitlab => "api/v4",
        ForgeProvider::Gitea => "api/v1",
    };
    format!("https://{host}/{path}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use ForgeProvider::*;

    fn forge(provider: ForgeProvider, api_url: Option<&str>) -> Forge {
        Forge {
            provider,
            api_url: api_url.map(str::to_owned),
            repo: "o/r".into(),
        }
    }

    #[test]
    fn derived_from_the_remote_host() {
        for (provider, remote, expected) in [
            (
                Github,
                "https://github.com/o/r.git",
                "https://api.github.com",
            ),
            (Github, "git@github.com:o/r.git", "https://api.github.com"),
            (
                Github,
                "https://ghe.corp.example/o/r.git",
                "https://ghe.corp.example/api/v3",
            ),
            (
                Gitlab,
                "ssh://git@gitlab.com:2222/g/r.git",
                "https://gitlab.com/api/v4",
            ),
            (
                Gitea,
                "https://tok@gitea.example.org/o/r.git",
                "https://gitea.example.org/api/v1",
            ),
        ] {
            let got = resolve(&forge(provider, None), remote, None).unwrap();
            assert_eq!(got, expected, "{remote}");
        }
        let err = resolve(&forge(Github, None), "/srv/catalog.git", None).unwrap_err();
        assert!(err.to_string().contains(ENV_VAR), "{err}");
    }

    #[test]
    fn catalog_api_url_only_on_the_remote_host() {
        let remote = "https://GitLab.Example.com/g/r.git";
        let same = forge(Gitlab, Some("https://gitlab.example.com:8443/api/v4/"));
        assert_eq!(
            resolve(&same, remote, None).unwrap(),
            "https://gitlab.example.com:8443/api/v4"
        );
        let api = forge(Github, Some("https://api.github.com"));
        assert!(resolve(&api, "https://github.com/o/r.git", None).is_ok());

        let foreign = forge(Gitlab, Some("https://collector.evil.example/api/v4"));
        let err = resolve(&foreign, remote, None).unwrap_err();
        assert!(matches!(err, ApiUrlError::ForeignHost { .. }), "{err}");
        let text = err.to_string();
        for needle in [
            "collector.evil.example",
            "gitlab.example.com",
            ENV_VAR,
            "forge.apiUrl",
        ] {
            assert!(text.contains(needle), "{needle}: {text}");
        }
        // The variable is the user's own choice and wins.
        let env = "https://collector.evil.example/api/v4";
        assert_eq!(resolve(&foreign, remote, Some(env)).unwrap(), env);
    }

    #[test]
    fn plain_http_only_to_loopback() {
        let remote = "http://127.0.0.1:9/r.git";
        let local = forge(Gitea, Some("http://127.0.0.1:3000/api/v1"));
        assert!(resolve(&local, remote, None).is_ok());
        let err = resolve(&local, remote, Some("http://forge.example.com/api")).unwrap_err();
        assert!(err.to_string().starts_with("CAIB_FORGE_API_URL"), "{err}");
        let clear = forge(Gitea, Some("http://gitea.example.com/api/v1"));
        let err = resolve(&clear, "https://gitea.example.com/o/r.git", None).unwrap_err();
        assert!(err.to_string().starts_with(FIELD), "{err}");
    }
}
