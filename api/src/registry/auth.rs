//! Registry authentication state: which scheme each registry asked for, and bearer tokens.
//!
//! Remembering both is what makes an unchanged image cost one request: once a registry has
//! answered `WWW-Authenticate: Basic`, later requests carry the credentials up front instead
//! of taking a 401 first; and a bearer token is reused for its lifetime. Tokens are keyed by
//! registry, repository and a fingerprint of the credentials, so a fixed Secret never reuses
//! a token obtained with the old one, and one image's token never serves another repository.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::Method;
use reqwest::header::{AUTHORIZATION, HeaderValue};

use super::Credentials;
use super::body::{ERROR_BODY_LIMIT, TOKEN_BODY_LIMIT, read_capped, read_prefix};
use super::client::{RegistryClient, Target};
use super::error::{self, RegistryError};

/// How a registry wants to be authenticated, from its `WWW-Authenticate` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Challenge {
    /// HTTP Basic (htpasswd-protected distribution registries).
    Basic,
    /// Token authentication (Docker Hub, quay.io, GHCR, Harbor): get a token from `realm`.
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// Parses the first challenge of a `WWW-Authenticate` header value.
pub(crate) fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let params = parse_params(rest);
    if scheme.eq_ignore_ascii_case("basic") {
        Some(Challenge::Basic)
    } else if scheme.eq_ignore_ascii_case("bearer") {
        let realm = params.get("realm")?.clone();
        Some(Challenge::Bearer {
            realm,
            service: params.get("service").cloned(),
        })
    } else {
        None
    }
}

/// `key="value", key2=value2` with backslash escapes inside quotes.
fn parse_params(input: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut chars = input.chars().peekable();
    loop {
        while matches!(chars.peek(), Some(c) if *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ',' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if key.is_empty() {
            break;
        }
        if chars.next() != Some('=') {
            continue;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(escaped) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        out.insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
    }
    out
}

/// Token lifetime when the token endpoint does not say (the distribution spec's default).
pub(crate) const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// Tokens are dropped this long before they expire so a request never races expiry.
const EXPIRY_MARGIN: Duration = Duration::from_secs(5);
/// Longest a token is cached, whatever `expires_in` the endpoint claims: a registry's answer
/// must not overflow the clock nor pin a token for ever.
pub(crate) const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
/// Above this many cached tokens, expired ones are swept on insert (bounded memory).
const SWEEP_ABOVE: usize = 1024;

/// Shared, thread-safe authentication state of one [`super::RegistryClient`].
#[derive(Default)]
pub(crate) struct AuthState {
    challenges: Mutex<HashMap<String, Challenge>>,
    tokens: Mutex<HashMap<TokenKey, (String, Instant)>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct TokenKey {
    pub registry: String,
    pub repository: String,
    pub fingerprint: String,
}

impl AuthState {
    pub fn challenge(&self, registry: &str) -> Option<Challenge> {
        self.challenges
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(registry)
            .cloned()
    }

    pub fn set_challenge(&self, registry: &str, challenge: Challenge) {
        self.challenges
            .lock()
            .unwrap()
            .insert(registry.to_string(), challenge);
    }

    pub fn token(&self, key: &TokenKey) -> Option<String> {
        let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        let (token, expires) = tokens.get(key)?;
        (Instant::now() < *expires).then(|| token.clone())
    }

    pub fn set_token(&self, key: TokenKey, token: String, lifetime: Duration) {
        let lifetime = lifetime
            .min(MAX_TOKEN_LIFETIME)
            .saturating_sub(EXPIRY_MARGIN)
            .max(Duration::from_secs(1));
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        if tokens.len() > SWEEP_ABOVE {
            let now = Instant::now();
            tokens.retain(|_, (_, expires)| *expires > now);
        }
        tokens.insert(key, (token, Instant::now() + lifetime));
    }

    /// Drops what is remembered about registries `keep` rejects: the challenge map and the
    /// token cache then hold only registries someone still asks about, whatever registries
    /// answered in the past.
    pub fn retain_registries(&self, keep: &dyn Fn(&str) -> bool) {
        self.challenges
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|registry, _| keep(registry));
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|key, _| keep(&key.registry));
    }

    pub fn forget_token(&self, key: &TokenKey) {
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

/// The token endpoint's answer (`token` per the distribution spec, `access_token` per OAuth2).
#[derive(serde::Deserialize)]
pub(crate) struct TokenResponse {
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub access_token: Option<String>,
    #[serde(default)]
    pub expires_in: Option<u64>,
}

impl TokenResponse {
    pub fn into_token(self) -> Option<(String, Duration)> {
        let lifetime = self
            .expires_in
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_TOKEN_LIFETIME);
        self.token
            .filter(|t| !t.is_empty())
            .or(self.access_token.filter(|t| !t.is_empty()))
            .map(|t| (t, lifetime))
    }
}

/// The authorization flow: which header to send, and getting bearer tokens.
impl RegistryClient {
    /// The `Authorization` header for a request, from what the registry asked for before.
    pub(super) async fn authorization(
        &self,
        target: &Target<'_>,
    ) -> Result<Option<HeaderValue>, RegistryError> {
        let header = |value: String| {
            HeaderValue::from_str(&value).map(|mut v| {
                v.set_sensitive(true);
                v
            })
        };
        let bad_header = |_| RegistryError::Config("credentials contain invalid characters".into());
        match (
            target.credentials,
            self.inner.auth.challenge(target.registry),
        ) {
            // Nothing is sent before the registry asked for credentials: a registry that
            // serves the image anonymously never sees them.
            (_, None) => Ok(None),
            (Credentials::Bearer(token), Some(_)) => header(format!("Bearer {token}"))
                .map(Some)
                .map_err(bad_header),
            (Credentials::Anonymous, Some(Challenge::Basic)) => Ok(None),
            (Credentials::Basic { username, password }, Some(Challenge::Basic)) => {
                header(basic(username, password))
                    .map(Some)
                    .map_err(bad_header)
            }
            (credentials, Some(Challenge::Bearer { realm, service })) => {
                let key = token_key(target);
                let token = match self.inner.auth.token(&key) {
                    Some(token) => token,
                    None => {
                        let (token, lifetime) = self
                            .fetch_token(target, credentials, &realm, service.as_deref())
                            .await?;
                        self.inner.auth.set_token(key, token.clone(), lifetime);
                        token
                    }
                };
                header(format!("Bearer {token}"))
                    .map(Some)
                    .map_err(bad_header)
            }
        }
    }

    async fn fetch_token(
        &self,
        target: &Target<'_>,
        credentials: &Credentials,
        realm: &str,
        service: Option<&str>,
    ) -> Result<(String, Duration), RegistryError> {
        let what = format!("a pull token for {}/{}", target.registry, target.repository);
        let scope = format!("repository:{}:pull", target.repository);
        let mut query = vec![("scope", scope.as_str())];
        if let Some(service) = service {
            query.push(("service", service));
        }
        let url =
            reqwest::Url::parse_with_params(realm, &query).map_err(|e| RegistryError::Invalid {
                registry: target.registry.into(),
                what: what.clone(),
                detail: format!("the registry's token realm {realm:?} is not a URL: {e}"),
            })?;
        let mut request = self.inner.http.get(url.clone());
        if let Credentials::Basic { username, password } = credentials {
            self.check_realm_transport(target, &url, &what)?;
            request = request.header(AUTHORIZATION, basic(username, password));
        }
        let response = self
            .execute(target.registry, &Method::GET, request, &what)
            .await?;
        let status = response.status();
        let headers = response.headers().clone();
        if !status.is_success() {
            let body = read_prefix(response, ERROR_BODY_LIMIT).await;
            return Err(error::from_status(
                target.registry,
                &what,
                status,
                &headers,
                &body,
            ));
        }
        let body = read_capped(target.registry, &what, response, TOKEN_BODY_LIMIT).await?;
        serde_json::from_slice::<TokenResponse>(&body)
            .ok()
            .and_then(TokenResponse::into_token)
            .ok_or_else(|| RegistryError::Invalid {
                registry: target.registry.into(),
                what,
                detail: "the token endpoint answered without a token".into(),
            })
    }
}

impl RegistryClient {
    /// The registry chooses where its token realm is, so a hostile registry could name a
    /// plain-HTTP listener anywhere: credentials travel to a realm only over HTTPS, or to a
    /// `host[:port]` the operator listed as insecure.
    fn check_realm_transport(
        &self,
        target: &Target<'_>,
        realm: &reqwest::Url,
        what: &str,
    ) -> Result<(), RegistryError> {
        let host = match (realm.host_str(), realm.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => String::new(),
        };
        if realm.scheme() == "https" || self.is_insecure(&host) {
            return Ok(());
        }
        Err(RegistryError::Unauthorized {
            registry: target.registry.into(),
            what: what.into(),
            status: 401,
            detail: format!(
                "the registry's token realm {realm} is not HTTPS; credentials are sent to it only over HTTPS or when {host} is listed as an insecure registry"
            ),
        })
    }
}

pub(super) fn token_key(target: &Target<'_>) -> TokenKey {
    TokenKey {
        registry: target.registry.to_string(),
        repository: target.repository.to_string(),
        fingerprint: target.credentials.fingerprint(),
    }
}

fn basic(username: &str, password: &str) -> String {
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    format!("Basic {encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_and_basic_challenges() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into())
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("basic"), Some(Challenge::Basic));
        assert_eq!(parse_challenge("Bearer service=x"), None);
        assert_eq!(parse_challenge("Negotiate abc"), None);
    }

    #[test]
    fn quoted_values_with_commas_and_escapes() {
        let p = parse_params(r#"realm="a,b\"c", scope=x"#);
        assert_eq!(p["realm"], "a,b\"c");
        assert_eq!(p["scope"], "x");
    }

    #[test]
    fn tokens_expire_and_are_keyed_by_credentials() {
        let state = AuthState::default();
        let key = TokenKey {
            registry: "r".into(),
            repository: "a".into(),
            fingerprint: "f1".into(),
        };
        state.set_token(key.clone(), "t".into(), Duration::from_secs(60));
        assert_eq!(state.token(&key).as_deref(), Some("t"));
        let other = TokenKey {
            fingerprint: "f2".into(),
            ..key.clone()
        };
        assert_eq!(state.token(&other), None);
        state.forget_token(&key);
        assert_eq!(state.token(&key), None);
    }

    #[test]
    fn an_endless_token_lifetime_is_capped() {
        let state = AuthState::default();
        let key = TokenKey {
            registry: "r".into(),
            repository: "a".into(),
            fingerprint: "f".into(),
        };
        let claimed = TokenResponse {
            token: Some("t".into()),
            access_token: None,
            expires_in: Some(u64::MAX),
        };
        let (token, lifetime) = claimed.into_token().unwrap();
        state.set_token(key.clone(), token, lifetime);
        let tokens = state.tokens.lock().unwrap_or_else(|e| e.into_inner());
        let expires = tokens[&key].1;
        assert!(expires <= Instant::now() + MAX_TOKEN_LIFETIME);
    }

    #[test]
    fn forgotten_registries_leave_no_challenge_nor_token() {
        let state = AuthState::default();
        for registry in ["kept:1", "gone:2"] {
            state.set_challenge(registry, Challenge::Basic);
            let key = TokenKey {
                registry: registry.into(),
                repository: "a".into(),
                fingerprint: "f".into(),
            };
            state.set_token(key, "t".into(), Duration::from_secs(60));
        }
        state.retain_registries(&|r| r == "kept:1");
        assert_eq!(state.challenge("kept:1"), Some(Challenge::Basic));
        assert_eq!(state.challenge("gone:2"), None);
        let tokens = state.tokens.lock().unwrap_or_else(|e| e.into_inner());
        assert!(tokens.keys().all(|k| k.registry == "kept:1") && tokens.len() == 1);
    }
}
