//! Push webhook receiver: `POST /hook/<namespace>/<name>` triggers an immediate sync of that
//! CatalogSource. Authenticated with the source's `spec.webhook.secretRef` `token`:
//! GitHub `X-Hub-Signature-256` (HMAC-SHA256 of the body), Gitea/Forgejo `X-Gitea-Signature`
//! (same HMAC, hex without prefix), GitLab `X-Gitlab-Token` (the token itself). Every
//! comparison is constant-time; bodies are size-limited; each source is rate-limited.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hmac::{Hmac, Mac};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use sha2::Sha256;

use catalog_api::CatalogSource;

use crate::sync::Handle;

/// Largest accepted payload (GitHub caps deliveries at 25 MiB; pushes are far smaller).
pub const MAX_BODY: usize = 1024 * 1024;
/// Deliveries accepted per source per [`WINDOW`] (a push a second, sustained; floods beyond
/// that get 429 and the source still syncs, since syncs coalesce).
pub const RATE: usize = 60;
pub const WINDOW: Duration = Duration::from_secs(60);

/// Recent delivery times per source, for the rate limit.
type Recent = Arc<Mutex<HashMap<(String, String), Vec<Instant>>>>;

#[derive(Clone)]
pub struct WebhookState {
    client: kube::Client,
    handle: Handle,
    recent: Recent,
}

impl WebhookState {
    pub fn new(client: kube::Client, handle: Handle) -> WebhookState {
        WebhookState {
            client,
            handle,
            recent: Arc::default(),
        }
    }

    /// Sliding-window limiter; true when the request may proceed.
    fn allow(&self, key: (String, String)) -> bool {
        let now = Instant::now();
        let mut recent = self.recent.lock().unwrap();
        if recent.len() > 1024 {
            // Bounded memory whatever paths are posted to.
            recent.retain(|_, hits| hits.iter().any(|t| now.duration_since(*t) < WINDOW));
        }
        let hits = recent.entry(key).or_default();
        hits.retain(|t| now.duration_since(*t) < WINDOW);
        if hits.len() >= RATE {
            return false;
        }
        hits.push(now);
        true
    }
}

/// The webhook routes, to merge into the operations router.
pub fn router(state: WebhookState) -> Router {
    Router::new()
        .route("/hook/{namespace}/{name}", post(hook))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

fn reply(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "message": message }).to_string(),
    )
        .into_response()
}

async fn hook(
    State(state): State<WebhookState>,
    Path((namespace, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !state.allow((namespace.clone(), name.clone())) {
        let mut response = reply(
            StatusCode::TOO_MANY_REQUESTS,
            "too many webhook deliveries for this source (60 per minute); retry later",
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("60"));
        return response;
    }
    let sources: Api<CatalogSource> = Api::namespaced(state.client.clone(), &namespace);
    let source = match sources.get_opt(&name).await {
        Ok(Some(s)) => s,
        Ok(None) => return reply(StatusCode::NOT_FOUND, "no such CatalogSource"),
        Err(e) => {
            tracing::warn!(error = %e, "webhook: cannot read the CatalogSource");
            return reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "cannot read the CatalogSource",
            );
        }
    };
    let Some(webhook) = &source.spec.webhook else {
        return reply(
            StatusCode::NOT_FOUND,
            "this CatalogSource has no spec.webhook",
        );
    };
    let secrets: Api<Secret> = Api::namespaced(state.client.clone(), &namespace);
    let token = match secrets.get_opt(&webhook.secret_ref.name).await {
        Ok(Some(secret)) => secret
            .data
            .and_then(|d| d.get("token").map(|t| t.0.clone()))
            .or_else(|| {
                secret
                    .string_data
                    .and_then(|d| d.get("token").map(|t| t.clone().into_bytes()))
            }),
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(error = %e, "webhook: cannot read the secret");
            return reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "cannot read the webhook secret",
            );
        }
    };
    let Some(token) = token.map(trim_newline).filter(|t| !t.is_empty()) else {
        tracing::warn!(source = %format!("{namespace}/{name}"), "webhook secret has no `token` key");
        return reply(StatusCode::UNAUTHORIZED, "webhook secret is not configured");
    };
    match authenticate(&headers, &body, &token) {
        Ok(()) => {
            tracing::info!(source = %format!("{namespace}/{name}"), "webhook accepted; syncing");
            state.handle.request_sync(&namespace, &name);
            reply(StatusCode::ACCEPTED, "sync triggered")
        }
        Err(why) => {
            tracing::warn!(source = %format!("{namespace}/{name}"), reason = why, "webhook rejected");
            reply(StatusCode::UNAUTHORIZED, why)
        }
    }
}

fn trim_newline(mut t: Vec<u8>) -> Vec<u8> {
    while matches!(t.last(), Some(b'\n' | b'\r')) {
        t.pop();
    }
    t
}

/// Checks whichever forge signature the request carries.
pub fn authenticate(headers: &HeaderMap, body: &[u8], token: &[u8]) -> Result<(), &'static str> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(signature) = get("x-hub-signature-256") {
        let hex = signature
            .strip_prefix("sha256=")
            .ok_or("X-Hub-Signature-256 must start with sha256=")?;
        return verify_hmac(token, body, hex);
    }
    if let Some(signature) = get("x-gitea-signature").or_else(|| get("x-gogs-signature")) {
        return verify_hmac(token, body, signature);
    }
    if let Some(given) = get("x-gitlab-token") {
        return if constant_time_eq(given.as_bytes(), token) {
            Ok(())
        } else {
            Err("X-Gitlab-Token does not match")
        };
    }
    Err("no signature header (X-Hub-Signature-256, X-Gitea-Signature or X-Gitlab-Token)")
}

fn verify_hmac(token: &[u8], body: &[u8], hex: &str) -> Result<(), &'static str> {
    let expected = decode_hex(hex).ok_or("signature is not hex")?;
    let mut mac = Hmac::<Sha256>::new_from_slice(token).map_err(|_| "bad key")?;
    mac.update(body);
    // verify_slice compares in constant time.
    mac.verify_slice(&expected)
        .map_err(|_| "signature does not match")
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Byte equality whose time does not depend on where the inputs differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// HMAC-SHA256 of `body` as lowercase hex: what GitHub and Gitea send.
#[cfg(test)]
pub fn sign(token: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(token).expect("any key length");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn github_gitea_and_gitlab_signatures() {
        let body = br#"{"ref":"refs/heads/main"}"#;
        let sig = sign(b"s3cret", body);
        assert!(
            authenticate(
                &headers(&[("x-hub-signature-256", format!("sha256={sig}"))]),
                body,
                b"s3cret"
            )
            .is_ok()
        );
        assert!(
            authenticate(
                &headers(&[("x-hub-signature-256", format!("sha256={sig}"))]),
                b"tampered",
                b"s3cret"
            )
            .is_err()
        );
        assert!(
            authenticate(
                &headers(&[("x-hub-signature-256", sig.clone())]),
                body,
                b"s3cret"
            )
            .is_err()
        );
        assert!(
            authenticate(
                &headers(&[("x-gitea-signature", sig.clone())]),
                body,
                b"s3cret"
            )
            .is_ok()
        );
        assert!(authenticate(&headers(&[("x-gitea-signature", sig)]), body, b"other").is_err());
        assert!(
            authenticate(
                &headers(&[("x-gitlab-token", "s3cret".into())]),
                body,
                b"s3cret"
            )
            .is_ok()
        );
        assert!(
            authenticate(
                &headers(&[("x-gitlab-token", "s3cre".into())]),
                body,
                b"s3cret"
            )
            .is_err()
        );
        assert!(authenticate(&HeaderMap::new(), body, b"s3cret").is_err());
    }

    #[test]
    fn constant_time_equality() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
