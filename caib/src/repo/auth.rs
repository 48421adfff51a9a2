//! Credentials for fetch and push: a token from the environment (`CAIB_GIT_TOKEN`, then the
//! forge variables), git credential helpers, then ssh-agent. Each method is tried once, so a
//! wrong token ends in a clear "authentication failed" (exit 3) instead of a retry loop.

use std::cell::RefCell;

use catalog_api::redact::{redact_text, redact_url};
use git2::{Cred, CredentialType, RemoteCallbacks};

use crate::error::CaibError;
use crate::transport;

/// Token variables, in the order they are looked up.
pub const TOKEN_VARS: [&str; 4] = [
    "CAIB_GIT_TOKEN",
    "GITHUB_TOKEN",
    "GITLAB_TOKEN",
    "GITEA_TOKEN",
];

/// The first token set in the environment, with the variable it came from.
pub fn env_token() -> Option<(&'static str, String)> {
    TOKEN_VARS.iter().find_map(|var| {
        std::env::var(var)
            .ok()
            .filter(|v| !v.is_empty())
            .map(|v| (*var, v))
    })
}

/// Redirects to another host are not followed: libgit2 would ask the credential callback
/// again there and hand the user's token to that host.
pub const REDIRECTS: git2::RemoteRedirect = git2::RemoteRedirect::None;

/// What the credential callback tried, so that a failure can say so.
#[derive(Default)]
pub struct AuthState {
    tried: RefCell<Vec<&'static str>>,
    exhausted: RefCell<bool>,
    /// The (redacted) plain-http URL credentials were asked for and withheld from.
    in_clear: RefCell<Option<String>>,
}

impl AuthState {
    pub fn failed(&self) -> bool {
        *self.exhausted.borrow() || !self.tried.borrow().is_empty()
    }

    fn tried_text(&self) -> String {
        let tried = self.tried.borrow();
        if tried.is_empty() {
            "no credentials were available".into()
        } else {
            format!("tried {}", tried.join(", "))
        }
    }
}

/// Username sent with a token when the URL names none: what each forge expects.
fn token_username(url: &str) -> &'static str {
    if url.contains("gitlab") {
        "oauth2"
    } else {
        "x-access-token"
    }
}

/// Callbacks with the credential chain; `state` records what was tried.
pub fn callbacks(state: &AuthState) -> RemoteCallbacks<'_> {
    let mut callbacks = RemoteCallbacks::new();
    callbacks.credentials(move |url, username, allowed| {
        let mut tried = state.tried.borrow_mut();
        if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) && !transport::may_send_secret(url)
        {
            *state.in_clear.borrow_mut() = Some(redact_url(url).into_owned());
            *state.exhausted.borrow_mut() = true;
            return Err(git2::Error::from_str(
                "credentials withheld over plain http",
            ));
        }
        if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
            if !tried.contains(&"token")
                && let Some((var, token)) = env_token()
            {
                tried.push("token");
                tracing::debug!(
                    "authenticating to {} with the token from {var}",
                    redact_url(url)
                );
                return Cred::userpass_plaintext(
                    username.unwrap_or_else(|| token_username(url)),
                    &token,
                );
            }
            if !tried.contains(&"credential helper") {
                tried.push("credential helper");
                if let Ok(config) = git2::Config::open_default()
                    && let Ok(cred) = Cred::credential_helper(&config, url, username)
                {
                    return Ok(cred);
                }
            }
        }
        if allowed.contains(CredentialType::SSH_KEY) && !tried.contains(&"ssh-agent") {
            tried.push("ssh-agent");
            return Cred::ssh_key_from_agent(username.unwrap_or("git"));
        }
        if allowed.contains(CredentialType::USERNAME) {
            return Cred::username(username.unwrap_or("git"));
        }
        *state.exhausted.borrow_mut() = true;
        Err(git2::Error::from_str("authentication failed"))
    });
    callbacks
}

/// True when a git error means the remote refused our credentials.
pub fn is_auth_error(err: &git2::Error, state: &AuthState) -> bool {
    let message = err.message().to_ascii_lowercase();
    err.code() == git2::ErrorCode::Auth
        || *state.exhausted.borrow()
        || message.contains("401")
        || message.contains("403")
        || message.contains("authentication")
        || message.contains("credentials")
        || (state.failed() && message.contains("unauthorized"))
}

/// A failed `what` (`fetch`, `push`) against `url` (redacted) as the user should see it;
/// libgit2's message is redacted too, as it may quote a URL.
pub fn map_error(err: git2::Error, what: &str, url: &str, state: &AuthState) -> CaibError {
    if let Some(asked) = state.in_clear.borrow().as_deref() {
        return CaibError::Auth(format!(
            "{what} {url}: the remote asked for credentials over plain http ({asked}); caib \
             sends tokens and passwords only over https (plain http only to a loopback host). \
             Use an https:// URL"
        ));
    }
    let message = redact_text(err.message());
    if is_auth_error(&err, state) {
        CaibError::Auth(format!(
            "{what} {url}: authentication failed ({message}; {}). Set CAIB_GIT_TOKEN (or \
             GITHUB_TOKEN, GITLAB_TOKEN, GITEA_TOKEN), configure a git credential helper, or \
             load a key into ssh-agent",
            state.tried_text()
        ))
    } else {
        CaibError::Other(anyhow::anyhow!("{what} {url}: {message}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_credentials_are_auth_errors() {
        let state = AuthState::default();
        let e = git2::Error::new(
            git2::ErrorCode::Auth,
            git2::ErrorClass::Http,
            "authentication required but no callback set",
        );
        assert!(matches!(
            map_error(e, "fetch", "http://h/r.git", &state),
            CaibError::Auth(_)
        ));
        let e = git2::Error::new(
            git2::ErrorCode::GenericError,
            git2::ErrorClass::Http,
            "unexpected http status code: 403",
        );
        let mapped = map_error(e, "push to", "http://h/r.git", &state);
        assert_eq!(mapped.exit_code(), crate::error::exit::AUTH);
        assert!(mapped.to_string().contains("CAIB_GIT_TOKEN"), "{mapped}");
        let e = git2::Error::new(
            git2::ErrorCode::GenericError,
            git2::ErrorClass::Net,
            "failed to connect to h: Connection refused",
        );
        assert_eq!(
            map_error(e, "fetch", "http://h/r.git", &state).exit_code(),
            crate::error::exit::ERROR
        );
    }

    #[test]
    fn messages_never_quote_credentials() {
        let state = AuthState::default();
        let e = git2::Error::from_str("cannot fetch 'https://ghp_x@h.example/r.git': 404");
        let text = map_error(e, "fetch", "https://***@h.example/r.git", &state).to_string();
        assert!(!text.contains("ghp_x"), "{text}");
        assert!(text.contains("'https://***@h.example/r.git'"), "{text}");

        // Credentials asked for over plain http off the machine are withheld, and said so.
        *state.in_clear.borrow_mut() = Some("http://git.example.com/r.git".into());
        let e = git2::Error::from_str("credentials withheld over plain http");
        let mapped = map_error(e, "fetch", "http://git.example.com/r.git", &state);
        assert_eq!(mapped.exit_code(), crate::error::exit::AUTH);
        assert!(mapped.to_string().contains("only over https"), "{mapped}");
    }

    #[test]
    fn token_usernames_follow_the_forge() {
        assert_eq!(
            token_username("https://gitlab.example.com/g/r.git"),
            "oauth2"
        );
        assert_eq!(
            token_username("https://github.com/o/r.git"),
            "x-access-token"
        );
    }
}
