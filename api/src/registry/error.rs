//! Typed registry errors.
//!
//! Callers react differently to each kind: the verification controller backs off on
//! [`RegistryError::Transient`], fails at once on [`RegistryError::Unauthorized`] (the secret
//! must be fixed), and `caib` maps them to its exit codes (3 auth, 4 not found). So the kind is
//! decided here, once, from the HTTP status and the transport error.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// Why talking to a registry failed. Every message names the registry and what was asked for,
/// so it can be shown to a person as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// The registry answered 404: the repository, tag, manifest or blob does not exist.
    #[error("{what} not found in registry {registry}{detail}")]
    NotFound {
        registry: String,
        what: String,
        detail: String,
    },
    /// The registry refused access (401/403), with the credentials given or without any.
    #[error("registry {registry} refused access to {what} (HTTP {status}){detail}")]
    Unauthorized {
        registry: String,
        what: String,
        status: u16,
        detail: String,
    },
    /// The registry could not be reached or asked to come back later: network errors,
    /// timeouts, 408, 429 and 5xx. `retry_after` carries the registry's `Retry-After`.
    #[error("registry {registry} is unavailable: {detail}")]
    Transient {
        registry: String,
        detail: String,
        retry_after: Option<Duration>,
    },
    /// The registry answered, but not with a usable image: unexpected status, malformed or
    /// oversized manifest, digest mismatch, unsupported schema.
    #[error("registry {registry} returned an invalid answer for {what}: {detail}")]
    Invalid {
        registry: String,
        what: String,
        detail: String,
    },
    /// The client itself could not be built (for example an unreadable CA certificate).
    #[error("cannot configure the registry client: {0}")]
    Config(String),
}

impl RegistryError {
    /// Whether retrying later may succeed without anyone changing anything.
    pub fn is_transient(&self) -> bool {
        matches!(self, RegistryError::Transient { .. })
    }

    /// The delay the registry asked for with `Retry-After`, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            RegistryError::Transient { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// A short CamelCase name of the kind, for metrics labels and condition reasons.
    pub fn kind(&self) -> &'static str {
        match self {
            RegistryError::NotFound { .. } => "NotFound",
            RegistryError::Unauthorized { .. } => "Unauthorized",
            RegistryError::Transient { .. } => "Transient",
            RegistryError::Invalid { .. } => "Invalid",
            RegistryError::Config(_) => "Config",
        }
    }
}

/// Classifies a non-success HTTP answer. `what` names the object asked for (e.g. `manifest
/// localhost:5000/app:v1`); `body` is the (possibly empty) error body, from which the
/// registry's error code is quoted.
pub(crate) fn from_status(
    registry: &str,
    what: &str,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> RegistryError {
    let detail = error_detail(body);
    let registry = registry.to_string();
    let what = what.to_string();
    match status.as_u16() {
        404 => RegistryError::NotFound {
            registry,
            what,
            detail,
        },
        401 | 403 => RegistryError::Unauthorized {
            registry,
            what,
            status: status.as_u16(),
            detail,
        },
        408 | 429 | 500..=599 => RegistryError::Transient {
            registry,
            detail: format!("HTTP {status} for {what}{detail}"),
            retry_after: retry_after(headers),
        },
        _ => RegistryError::Invalid {
            registry,
            what,
            detail: format!("unexpected HTTP {status}{detail}"),
        },
    }
}

/// Classifies a transport error (connection refused, TLS, timeout, reset mid-body).
pub(crate) fn from_transport(registry: &str, what: &str, error: &reqwest::Error) -> RegistryError {
    if error.is_builder() {
        return RegistryError::Config(format!("{what}: {}", chain(error)));
    }
    if error.is_decode() {
        return RegistryError::Invalid {
            registry: registry.to_string(),
            what: what.to_string(),
            detail: chain(error),
        };
    }
    let reason = if error.is_timeout() {
        "timed out".to_string()
    } else if error.is_connect() {
        format!("cannot connect: {}", chain(error))
    } else {
        chain(error)
    };
    RegistryError::Transient {
        registry: registry.to_string(),
        detail: format!("{what}: {reason}"),
        retry_after: None,
    }
}

/// The error and its sources on one line; reqwest's own message alone ("error sending
/// request") does not say what went wrong.
fn chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

/// `: CODE message` from a distribution error body (`{"errors":[{"code","message"}]}`), or
/// empty when the body says nothing useful.
fn error_detail(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Envelope {
        #[serde(default)]
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let Ok(envelope) = serde_json::from_slice::<Envelope>(body) else {
        return String::new();
    };
    let parts: Vec<String> = envelope
        .errors
        .iter()
        .map(|e| format!("{} {}", e.code, e.message).trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join("; "))
    }
}

/// `Retry-After` as delay-seconds or an HTTP date (RFC 9110 §10.2.3).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let delta = when.duration_since(jiff::Timestamp::now());
    Some(Duration::try_from(delta).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(retry: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(r) = retry {
            h.insert(RETRY_AFTER, HeaderValue::from_str(r).unwrap());
        }
        h
    }

    #[test]
    fn statuses_map_to_kinds() {
        let h = headers(None);
        let kind = |code: u16| {
            from_status(
                "r:5000",
                "manifest x",
                StatusCode::from_u16(code).unwrap(),
                &h,
                b"",
            )
            .kind()
        };
        assert_eq!(kind(404), "NotFound");
        assert_eq!(kind(401), "Unauthorized");
        assert_eq!(kind(403), "Unauthorized");
        assert_eq!(kind(429), "Transient");
        assert_eq!(kind(503), "Transient");
        assert_eq!(kind(408), "Transient");
        assert_eq!(kind(400), "Invalid");
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let e = from_status(
            "r",
            "manifest x",
            StatusCode::TOO_MANY_REQUESTS,
            &headers(Some("7")),
            b"",
        );
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        let future = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(120);
        let date = jiff::fmt::rfc2822::DateTimePrinter::new()
            .timestamp_to_rfc9110_string(&future)
            .unwrap();
        let d = retry_after(&headers(Some(&date))).unwrap();
        assert!(
            d > Duration::from_secs(100) && d <= Duration::from_secs(120),
            "{d:?}"
        );
        assert_eq!(retry_after(&headers(Some("soon"))), None);
    }

    #[test]
    fn error_body_is_quoted() {
        let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#;
        let e = from_status(
            "r:1",
            "manifest r:1/a:v1",
            StatusCode::NOT_FOUND,
            &headers(None),
            body,
        );
        assert_eq!(
            e.to_string(),
            "manifest r:1/a:v1 not found in registry r:1 (MANIFEST_UNKNOWN manifest unknown)"
        );
    }
}
