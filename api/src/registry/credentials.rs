//! Registry credentials and how they are read from Kubernetes Secrets.
//!
//! A `CatalogImage` names a Secret in `authSecretRef`; `caib` reads the same kinds of Secret.
//! The rules live here once, and they bind every credential to a registry host, because
//! sending one registry's password to another leaks it:
//! - a docker config picks the entry whose host is the image's registry (Docker Hub aliases
//!   included), never an arbitrary entry;
//! - a Secret with plain `username`/`password` or `token` keys says nothing about where it
//!   belongs, so it is used only for the hosts listed in its
//!   [`REGISTRY_HOSTS`](crate::labels::REGISTRY_HOSTS) annotation.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use k8s_openapi::api::core::v1::Secret;
use sha2::{Digest as _, Sha256};

use crate::reference::ImageReference;

/// Secret type of `kubectl create secret docker-registry`.
pub const DOCKER_CONFIG_JSON_TYPE: &str = "kubernetes.io/dockerconfigjson";
/// Legacy docker config Secret type (`~/.dockercfg` format, no `auths` wrapper).
pub const DOCKER_CFG_TYPE: &str = "kubernetes.io/dockercfg";
const DOCKER_CONFIG_JSON_KEY: &str = ".dockerconfigjson";
const DOCKER_CFG_KEY: &str = ".dockercfg";

/// How to authenticate to a registry. `Debug` never shows a secret.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Credentials {
    /// No credentials: public images.
    #[default]
    Anonymous,
    /// Username and password, sent as HTTP Basic or exchanged for a bearer token, whichever
    /// the registry asks for.
    Basic { username: String, password: String },
    /// A registry token sent as `Authorization: Bearer` as it is.
    Bearer(String),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Anonymous => f.write_str("Anonymous"),
            Credentials::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            Credentials::Bearer(_) => f.write_str("Bearer(<redacted>)"),
        }
    }
}

impl Credentials {
    /// A short, non-reversible fingerprint, so caches can key tokens by credentials without
    /// holding the secret in their keys and so a changed secret never reuses an old token.
    pub fn fingerprint(&self) -> String {
        let mut hasher = Sha256::new();
        match self {
            Credentials::Anonymous => hasher.update(b"anonymous"),
            Credentials::Basic { username, password } => {
                hasher.update(b"basic\0");
                hasher.update(username.as_bytes());
                hasher.update(b"\0");
                hasher.update(password.as_bytes());
            }
            Credentials::Bearer(token) => {
                hasher.update(b"bearer\0");
                hasher.update(token.as_bytes());
            }
        }
        let digest = hasher.finalize();
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Reads credentials for `reference` from a Secret (its `data`, falling back to
    /// `stringData` for objects that were not round-tripped through an API server), honouring
    /// its [`REGISTRY_HOSTS`](crate::labels::REGISTRY_HOSTS) binding.
    pub fn from_secret(
        secret: &Secret,
        reference: &ImageReference,
    ) -> Result<Credentials, CredentialsError> {
        let mut data: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        if let Some(string_data) = &secret.string_data {
            for (k, v) in string_data {
                data.insert(k.clone(), v.clone().into_bytes());
            }
        }
        if let Some(bytes) = &secret.data {
            for (k, v) in bytes {
                data.insert(k.clone(), v.0.clone());
            }
        }
        let bound_hosts = secret
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(crate::labels::REGISTRY_HOSTS))
            .map(String::as_str);
        Self::from_secret_data(secret.type_.as_deref(), &data, bound_hosts, reference)
    }

    /// Reads credentials for `reference` from decoded Secret data.
    ///
    /// Accepted, in this order: a `kubernetes.io/dockerconfigjson` (`.dockerconfigjson` key),
    /// a `kubernetes.io/dockercfg` (`.dockercfg` key), a `token` key (bearer token), or
    /// `username` and `password` keys. The last two only when `bound_hosts` (the value of the
    /// registry-hosts annotation) lists the reference's registry.
    pub fn from_secret_data(
        secret_type: Option<&str>,
        data: &BTreeMap<String, Vec<u8>>,
        bound_hosts: Option<&str>,
        reference: &ImageReference,
    ) -> Result<Credentials, CredentialsError> {
        let config_json = data.get(DOCKER_CONFIG_JSON_KEY);
        let cfg = data.get(DOCKER_CFG_KEY);
        if secret_type == Some(DOCKER_CONFIG_JSON_TYPE) && config_json.is_none() {
            return Err(CredentialsError::MissingKey {
                expected: format!(
                    "{DOCKER_CONFIG_JSON_KEY} (required by type {DOCKER_CONFIG_JSON_TYPE})"
                ),
            });
        }
        if secret_type == Some(DOCKER_CFG_TYPE) && cfg.is_none() {
            return Err(CredentialsError::MissingKey {
                expected: format!("{DOCKER_CFG_KEY} (required by type {DOCKER_CFG_TYPE})"),
            });
        }
        if let Some(raw) = config_json {
            #[derive(serde::Deserialize)]
            struct ConfigJson {
                #[serde(default)]
                auths: BTreeMap<String, AuthEntry>,
            }
            let parsed: ConfigJson =
                serde_json::from_slice(raw).map_err(|e| CredentialsError::InvalidJson {
                    key: DOCKER_CONFIG_JSON_KEY.into(),
                    message: e.to_string(),
                })?;
            return pick_entry(&parsed.auths, reference, DOCKER_CONFIG_JSON_KEY);
        }
        if let Some(raw) = cfg {
            let parsed: BTreeMap<String, AuthEntry> =
                serde_json::from_slice(raw).map_err(|e| CredentialsError::InvalidJson {
                    key: DOCKER_CFG_KEY.into(),
                    message: e.to_string(),
                })?;
            return pick_entry(&parsed, reference, DOCKER_CFG_KEY);
        }
        let credentials = plain_credentials(data)?;
        check_binding(bound_hosts, reference)?;
        Ok(credentials)
    }
}

/// `token`, or `username` and `password`.
fn plain_credentials(data: &BTreeMap<String, Vec<u8>>) -> Result<Credentials, CredentialsError> {
    let text = |key: &str| -> Result<Option<String>, CredentialsError> {
        match data.get(key) {
            None => Ok(None),
            Some(bytes) => String::from_utf8(bytes.clone())
                .map(|s| Some(s.trim_end_matches(['\r', '\n']).to_string()))
                .map_err(|_| CredentialsError::NotUtf8 { key: key.into() }),
        }
    };
    if let Some(token) = text("token")? {
        if token.is_empty() {
            return Err(CredentialsError::Empty {
                key: "token".into(),
            });
        }
        return Ok(Credentials::Bearer(token));
    }
    match (text("username")?, text("password")?) {
        (Some(username), Some(password)) => {
            if password.is_empty() {
                return Err(CredentialsError::Empty {
                    key: "password".into(),
                });
            }
            Ok(Credentials::Basic { username, password })
        }
        (Some(_), None) => Err(CredentialsError::MissingKey {
            expected: "password (the secret has username)".into(),
        }),
        (None, Some(_)) => Err(CredentialsError::MissingKey {
            expected: "username (the secret has password)".into(),
        }),
        (None, None) => Err(CredentialsError::MissingKey {
            expected: format!(
                "one of {DOCKER_CONFIG_JSON_KEY}, {DOCKER_CFG_KEY}, token, or username and password (found: {})",
                if data.is_empty() {
                    "no keys".to_string()
                } else {
                    data.keys().cloned().collect::<Vec<_>>().join(", ")
                }
            ),
        }),
    }
}

/// Why a Secret could not be turned into credentials. Messages name the key at fault and
/// never include secret values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    #[error("secret has no credentials: expected {expected}")]
    MissingKey { expected: String },
    #[error("secret key {key} is empty")]
    Empty { key: String },
    #[error("secret key {key} is not valid UTF-8")]
    NotUtf8 { key: String },
    #[error("secret key {key} is not a valid docker config: {message}")]
    InvalidJson { key: String, message: String },
    #[error(
        "secret {key} has no entry for registry {registry} (entries: {entries}); add one with `kubectl create secret docker-registry --docker-server={registry}`"
    )]
    NoMatchingEntry {
        key: String,
        registry: String,
        entries: String,
    },
    #[error(
        "its username/password or token is not bound to registry {registry} (annotation {annotation}: {hosts}), so it is not sent",
        annotation = crate::labels::REGISTRY_HOSTS
    )]
    NotBound { registry: String, hosts: String },
    #[error("secret {key} entry {host}: {message}")]
    InvalidEntry {
        key: String,
        host: String,
        message: String,
    },
}

/// A Secret without a host of its own is used only for the registries its annotation lists.
fn check_binding(
    bound_hosts: Option<&str>,
    reference: &ImageReference,
) -> Result<(), CredentialsError> {
    let listed = || {
        bound_hosts
            .into_iter()
            .flat_map(|h| h.split(','))
            .map(str::trim)
    };
    if listed().any(|host| !host.is_empty() && reference.matches_registry_key(host)) {
        return Ok(());
    }
    Err(CredentialsError::NotBound {
        registry: reference.registry().into(),
        hosts: match bound_hosts.map(str::trim) {
            None | Some("") => "none".into(),
            Some(hosts) => hosts.into(),
        },
    })
}

/// One `auths` entry of a docker config.
#[derive(serde::Deserialize, Default)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default, rename = "registrytoken")]
    registry_token: Option<String>,
    #[serde(default, rename = "identitytoken")]
    identity_token: Option<String>,
}

/// The entry for the reference's registry: an exact key (`localhost:5000`) wins over an alias
/// or a key with scheme and path (`https://index.docker.io/v1/`); among equals the first in
/// key order, so the choice is deterministic.
fn pick_entry(
    entries: &BTreeMap<String, AuthEntry>,
    reference: &ImageReference,
    key: &str,
) -> Result<Credentials, CredentialsError> {
    let exact = entries
        .iter()
        .find(|(host, _)| host.eq_ignore_ascii_case(reference.registry()));
    let chosen = exact.or_else(|| {
        entries
            .iter()
            .find(|(host, _)| reference.matches_registry_key(host))
    });
    let Some((host, entry)) = chosen else {
        return Err(CredentialsError::NoMatchingEntry {
            key: key.into(),
            registry: reference.registry().into(),
            entries: if entries.is_empty() {
                "none".into()
            } else {
                entries.keys().cloned().collect::<Vec<_>>().join(", ")
            },
        });
    };
    let invalid = |message: &str| CredentialsError::InvalidEntry {
        key: key.into(),
        host: host.clone(),
        message: message.into(),
    };
    if let Some(token) = entry.registry_token.as_deref().filter(|t| !t.is_empty()) {
        return Ok(Credentials::Bearer(token.to_string()));
    }
    if let (Some(username), Some(password)) = (&entry.username, &entry.password)
        && !username.is_empty()
    {
        return Ok(Credentials::Basic {
            username: username.clone(),
            password: password.clone(),
        });
    }
    if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| invalid("auth is not valid base64"))?;
        let decoded = String::from_utf8(decoded).map_err(|_| invalid("auth is not UTF-8"))?;
        let (username, password) = decoded
            .split_once(':')
            .ok_or_else(|| invalid("auth must encode username:password"))?;
        return Ok(Credentials::Basic {
            username: username.into(),
            password: password.into(),
        });
    }
    if entry.identity_token.is_some() {
        return Err(invalid(
            "identitytoken (OAuth2 refresh tokens) is not supported; use username and password or a registry token",
        ));
    }
    Err(invalid("has neither auth nor username/password"))
}

#[cfg(test)]
#[path = "credentials_tests.rs"]
mod tests;
