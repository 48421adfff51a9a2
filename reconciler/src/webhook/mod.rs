//! Webhook receiver: `POST /hook/<namespace>/<name>` triggers an immediate sync of that
//! CatalogSource, authenticated with the `token` key of its `spec.webhook.secretRef` (see
//! [`auth`]). A pull-request event (GitHub and Gitea `pull_request`, GitLab `Merge Request
//! Hook`) asks for its pull-request previews instead ([`crate::preview`]), recorded the same
//! way in the `preview-requested-at` annotation.
//!
//! Every replica receives, leader or not (as Flux's notification receiver does): an
//! authenticated delivery is recorded on the CatalogSource itself, a merge patch setting
//! `automotive.sdv.cloud.redhat.com/reconcile-requested-at` to the delivery time, and the
//! leader's watch sees the new value and syncs at once. The request lives in the API server,
//! not in one process's memory, so a delivery answered 202 survives the replica that took
//! it, a leader change and a rolling restart.
//!
//! Anyone on the internet can reach this endpoint, so no delivery can make the reconciler do
//! unbounded work or tell which sources exist:
//! - the namespace and name are checked (DNS-1123 label / subdomain) before anything else: 400;
//! - the source comes from the receiver's own cache ([`sources`]) and its token from
//!   [`secrets::SecretCache`]: refused deliveries cause no API request (only the first one per
//!   Secret after it changes); an accepted one costs one PATCH;
//! - the body is read within `--http-read-timeout`, at most [`MAX_BODY`] bytes;
//! - a missing source, a source without `spec.webhook` and a bad signature get the same 401,
//!   after the same work (an HMAC with a throwaway key when there is no token);
//! - budgets ([`limit`]): deliveries that have not authenticated share one global budget (429
//!   when spent); only authenticated ones count against their source's.
//!
//! Until both caches have listed once, a valid path gets 503 (and /readyz says not ready).

pub mod auth;
pub mod limit;
pub mod secrets;
pub mod sources;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};

use catalog_api::CatalogSource;
use catalog_api::labels::{PREVIEW_REQUESTED_AT, RECONCILE_REQUESTED_AT};
use catalog_api::validate::check_dns_subdomain;

use crate::sync::Key;
use limit::Limiter;
use secrets::{SecretCache, SecretKey};

/// Largest accepted payload (GitHub caps deliveries at 25 MiB; pushes are far smaller).
pub const MAX_BODY: usize = 1024 * 1024;

/// Bodies read at once: they are held in memory, so this times [`MAX_BODY`] bounds what
/// deliveries can occupy (16 MiB); further deliveries wait, within the body timeout.
pub const MAX_BODIES_IN_FLIGHT: usize = 16;

/// The one answer to every delivery that did not authenticate.
const UNAUTHORIZED: &str = "delivery not authenticated";

/// Bounds of the receiver (see the flags in [`crate::Config`]).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Longest wait for the whole body.
    pub body_timeout: Duration,
    /// Unauthenticated deliveries accepted at once (all sources together).
    pub unauthenticated_burst: u32,
    /// Unauthenticated deliveries accepted per second, sustained.
    pub unauthenticated_per_second: u32,
}

/// Everything a delivery needs; cheap to clone.
#[derive(Clone)]
pub struct WebhookState {
    inner: Arc<Inner>,
}

struct Inner {
    sources: Store<CatalogSource>,
    /// The caches listed once (what /readyz answers). A flag, not `Store::wait_until_ready`
    /// polled with `now_or_never`: that steals the waker of the task awaiting the store (its
    /// oneshot keeps one waker), which then never wakes.
    ready: Arc<AtomicBool>,
    secrets: Arc<SecretCache>,
    client: kube::Client,
    limiter: Limiter,
    body_timeout: Duration,
    bodies: tokio::sync::Semaphore,
}

impl WebhookState {
    pub fn new(
        sources: Store<CatalogSource>,
        secrets: Arc<SecretCache>,
        client: kube::Client,
        ready: Arc<AtomicBool>,
        limits: Limits,
    ) -> WebhookState {
        WebhookState {
            inner: Arc::new(Inner {
                sources,
                ready,
                secrets,
                client,
                limiter: Limiter::new(
                    limits.unauthenticated_burst,
                    limits.unauthenticated_per_second,
                ),
                body_timeout: limits.body_timeout,
                bodies: tokio::sync::Semaphore::new(MAX_BODIES_IN_FLIGHT),
            }),
        }
    }
}

/// The webhook routes, to merge into the operations router.
pub fn router(state: WebhookState) -> Router {
    Router::new()
        .route("/hook/{namespace}/{name}", post(hook))
        .with_state(state)
}

/// Why a delivery was not accepted; each maps to one status and one fixed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the path must be /hook/<namespace>/<name> with a valid namespace and name")]
    BadPath,
    #[error("webhooks are served once this replica's caches are synced; retry")]
    NotServing,
    #[error("the delivery could not be recorded on the CatalogSource; retry")]
    NotRecorded,
    #[error("too many unauthenticated webhook deliveries; retry later")]
    Unauthenticated,
    #[error("too many webhook deliveries for this source; retry later")]
    SourceBusy,
    #[error("the body was not received in time")]
    BodyTimeout,
    #[error("the body could not be read whole (at most 1 MiB)")]
    BodyTooLarge,
    #[error("{UNAUTHORIZED}")]
    Unauthorized,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = match self {
            Refusal::BadPath => StatusCode::BAD_REQUEST,
            Refusal::NotServing | Refusal::NotRecorded => StatusCode::SERVICE_UNAVAILABLE,
            Refusal::Unauthenticated | Refusal::SourceBusy => StatusCode::TOO_MANY_REQUESTS,
            Refusal::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Refusal::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Refusal::Unauthorized => StatusCode::UNAUTHORIZED,
        };
        let mut response = reply(status, &self.to_string());
        if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
            let retry = HeaderValue::from_static("1");
            response.headers_mut().insert(header::RETRY_AFTER, retry);
        }
        response
    }
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
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let ask = Ask::of(&headers);
    let accepted = match deliver(&state.inner, path, &headers, body).await {
        Ok(key) => request(&state.inner.client, &key, ask).await,
        Err(refusal) => Err(refusal),
    };
    match accepted {
        Ok(()) => reply(StatusCode::ACCEPTED, ask.answer()),
        Err(refusal) => refusal.into_response(),
    }
}

/// What an authenticated delivery asks for, by its event header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ask {
    /// A push (or any other event): sync now.
    Sync,
    /// A pull request opened, pushed to, closed or merged: refresh the previews now.
    Preview,
}

impl Ask {
    /// `X-GitHub-Event: pull_request`, `X-Gitea-Event: pull_request` (Gitea and Forgejo also
    /// send GitHub's header) or `X-Gitlab-Event: Merge Request Hook` ask for previews.
    pub fn of(headers: &HeaderMap) -> Ask {
        let event = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let pull_request = ["x-github-event", "x-gitea-event", "x-gogs-event"]
            .into_iter()
            .any(|h| event(h) == Some("pull_request"))
            || event("x-gitlab-event") == Some("Merge Request Hook");
        if pull_request {
            Ask::Preview
        } else {
            Ask::Sync
        }
    }

    fn annotation(self) -> &'static str {
        match self {
            Ask::Sync => RECONCILE_REQUESTED_AT,
            Ask::Preview => PREVIEW_REQUESTED_AT,
        }
    }

    fn answer(self) -> &'static str {
        match self {
            Ask::Sync => "sync requested",
            Ask::Preview => "preview requested",
        }
    }
}

/// Records the delivery on the source (see the module documentation): a fresh
/// reconcile-requested-at (or preview-requested-at), the delivery time in RFC 3339 with
/// nanoseconds.
async fn request(client: &kube::Client, key: &Key, ask: Ask) -> Result<(), Refusal> {
    let at = format!("{:.9}", jiff::Timestamp::now());
    let mut annotations = serde_json::Map::new();
    annotations.insert(ask.annotation().into(), at.clone().into());
    let patch = serde_json::json!({"metadata": {"annotations": annotations}});
    let api: Api<CatalogSource> = Api::namespaced(client.clone(), &key.0);
    let params = PatchParams {
        field_manager: Some("catalog-reconciler-webhook".into()),
        ..PatchParams::default()
    };
    let source = format!("{}/{}", key.0, key.1);
    match api.patch(&key.1, &params, &Patch::Merge(patch)).await {
        Ok(_) => {
            tracing::info!(source = %source, requested_at = %at, "webhook accepted; {}", ask.answer());
            Ok(())
        }
        Err(e) => {
            tracing::warn!(source = %source, error = %e, "webhook: cannot record the delivery on the CatalogSource");
            Err(Refusal::NotRecorded)
        }
    }
}

/// Every check of a delivery, cheapest first; the source to sync when it passes.
async fn deliver(
    state: &Inner,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Key, Refusal> {
    let key = valid_key(path)?;
    if !state.ready.load(Ordering::Relaxed) {
        return Err(Refusal::NotServing);
    }
    if !state.limiter.admit_unauthenticated() {
        tracing::debug!("webhook: the unauthenticated budget is spent");
        return Err(Refusal::Unauthenticated);
    }
    let body = read_body(body, &state.bodies, state.body_timeout).await?;
    let token = token_for(state, &key).await;
    // Without a token, the same HMAC with a throwaway key: refusals take the same time.
    let checked = auth::authenticate(headers, &body, token.as_deref().unwrap_or(b"-"));
    match (token, checked) {
        (Some(_), Ok(())) => state.limiter.authenticated(),
        (_, outcome) => {
            tracing::debug!(source = %format!("{}/{}", key.0, key.1), reason = outcome.err().unwrap_or("unknown source or no token"), "webhook refused");
            return Err(Refusal::Unauthorized);
        }
    }
    if !state.limiter.admit_source(&key) {
        return Err(Refusal::SourceBusy);
    }
    Ok(key)
}

/// The (namespace, name) of the path, when both are valid Kubernetes names. `%2F` decodes to a
/// `/`, which neither may contain.
fn valid_key(path: Result<Path<(String, String)>, PathRejection>) -> Result<Key, Refusal> {
    let Ok(Path((namespace, name))) = path else {
        return Err(Refusal::BadPath);
    };
    if check_dns_label(&namespace).is_err() || check_dns_subdomain(&name).is_err() {
        return Err(Refusal::BadPath);
    }
    Ok((namespace, name))
}

/// Namespaces are DNS-1123 labels: at most 63 lowercase letters, digits and '-', starting
/// and ending with a letter or digit.
pub fn check_dns_label(name: &str) -> Result<(), &'static str> {
    let bytes = name.as_bytes();
    let inner_ok = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-';
    let end_ok = |b: Option<&u8>| b.is_some_and(|b| *b != b'-' && inner_ok(b));
    if name.len() > 63 || !bytes.iter().all(inner_ok) || !end_ok(bytes.first()) {
        return Err("is not a DNS-1123 label");
    }
    if !end_ok(bytes.last()) {
        return Err("is not a DNS-1123 label");
    }
    Ok(())
}

/// The whole body, at most [`MAX_BODY`], read while holding one of `slots`; waiting for the
/// slot and reading both count against `timeout`.
async fn read_body(
    body: Body,
    slots: &tokio::sync::Semaphore,
    timeout: Duration,
) -> Result<Bytes, Refusal> {
    let read = async {
        let _slot = slots.acquire().await.map_err(|_| Refusal::NotServing)?;
        axum::body::to_bytes(body, MAX_BODY)
            .await
            .map_err(|_| Refusal::BodyTooLarge)
    };
    tokio::time::timeout(timeout, read)
        .await
        .unwrap_or(Err(Refusal::BodyTimeout))
}

/// The token of the source's webhook Secret, from the caches; None for a missing source, one
/// without `spec.webhook`, or a Secret without a token.
async fn token_for(state: &Inner, key: &Key) -> Option<Arc<[u8]>> {
    let source = state.sources.get(&ObjectRef::new(&key.1).within(&key.0))?;
    let secret = (
        key.0.clone(),
        source.spec.webhook.as_ref()?.secret_ref.name.clone(),
    );
    let sources = &state.sources;
    let wanted = |k: &SecretKey| named_by_a_source(sources, k);
    match state.secrets.token(&secret, wanted).await {
        Ok(token) => token,
        Err(e) => {
            tracing::warn!(error = %e, secret = %format!("{}/{}", secret.0, secret.1), "webhook: cannot read the Secret");
            None
        }
    }
}

/// Whether some CatalogSource of the Secret's namespace names it as its webhook Secret.
fn named_by_a_source(sources: &Store<CatalogSource>, key: &SecretKey) -> bool {
    sources
        .find(|s| {
            s.metadata.namespace.as_deref() == Some(key.0.as_str())
                && s.spec
                    .webhook
                    .as_ref()
                    .is_some_and(|w| w.secret_ref.name == key.1)
        })
        .is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_must_be_dns_labels() {
        for good in ["catalog", "a", "a-1", &"a".repeat(63)] {
            assert!(check_dns_label(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "A",
            "a.b",
            "a/b",
            "a_b",
            &"a".repeat(64),
            "é",
        ] {
            assert!(check_dns_label(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pull_request_events_of_every_forge_ask_for_previews() {
        let with = |name: &'static str, value: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(name, HeaderValue::from_static(value));
            Ask::of(&h)
        };
        assert_eq!(with("x-github-event", "pull_request"), Ask::Preview);
        assert_eq!(with("x-gitea-event", "pull_request"), Ask::Preview);
        assert_eq!(with("x-gitlab-event", "Merge Request Hook"), Ask::Preview);
        assert_eq!(with("x-github-event", "push"), Ask::Sync);
        assert_eq!(with("x-gitlab-event", "Push Hook"), Ask::Sync);
        assert_eq!(Ask::of(&HeaderMap::new()), Ask::Sync);
    }

    #[test]
    fn every_refusal_that_could_reveal_a_source_reads_the_same() {
        let body = |r: Refusal| r.to_string();
        assert_eq!(body(Refusal::Unauthorized), UNAUTHORIZED);
        assert_eq!(
            Refusal::Unauthorized.into_response().status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            Refusal::Unauthenticated.into_response().headers()[header::RETRY_AFTER],
            "1"
        );
    }
}
