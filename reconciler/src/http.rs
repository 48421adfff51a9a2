//! The HTTP endpoints: `/metrics`, `/healthz`, `/readyz`, and whatever routes the controllers
//! add (the webhook receiver), on one address or two (`--metrics-addr`), and the server loop
//! that bounds what a client can hold: connections, header and body time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use prometheus_client::registry::Registry;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

/// Shared by the probe handlers.
#[derive(Clone)]
pub struct Health {
    pub registry: Arc<Registry>,
    /// Set once this replica can serve webhooks: its CatalogSource and webhook-Secret caches
    /// have listed once (see `main::start_webhook_caches`). Leadership plays no part.
    pub ready: Arc<AtomicBool>,
}

/// `/healthz` and `/readyz`, on every address so probes may target either.
///
/// `/healthz` (liveness) answers 200 while the process serves HTTP: a restart cures nothing
/// else, and a standby waiting for the Lease is healthy. `/readyz` (readiness, what the
/// webhook Service routes by) answers 200 once the replica can take webhook deliveries, its
/// caches synced, leader or standby alike, and 503 before; the controllers' progress is not
/// part of it, since only the leader runs them and the Service must reach both replicas.
pub fn probes(health: Health) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(health)
}

/// `/metrics`: on `--metrics-addr`, or on `--http-addr` when both are the same.
pub fn metrics_route(health: Health) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(health)
}

async fn metrics(State(health): State<Health>) -> impl IntoResponse {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &health.registry) {
        Ok(()) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn readyz(State(health): State<Health>) -> impl IntoResponse {
    if health.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting")
    }
}

/// What one listener lets a client hold.
#[derive(Clone, Copy, Debug)]
pub struct ServerLimits {
    /// A request's header must arrive within this (idle keep-alive connections too).
    pub header_timeout: Duration,
    /// Connections served at once; further ones wait in the kernel's accept queue, so file
    /// descriptors and memory stay bounded whatever clients do.
    pub max_connections: usize,
}

/// Largest request header (and read buffer) per connection, so connections times this bounds
/// the memory clients can fill with headers (forges send a few KiB; beyond: 431).
pub const MAX_HEADER: usize = 16 * 1024;

/// How long open connections get to finish after shutdown.
const DRAIN: Duration = Duration::from_secs(5);

/// Binds `addr`, naming it in the error.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    use anyhow::Context as _;
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))
}

/// Serves `app` over HTTP/1.1 on `listener` until `shutdown`, then lets open connections
/// finish for at most [`DRAIN`].
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServerLimits,
    shutdown: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = accept(&listener, &permits) => accepted,
        };
        let Some((stream, permit)) = accepted else {
            continue;
        };
        let conn = serve_connection(stream, app.clone(), limits, shutdown.clone(), permit);
        connections.spawn(conn);
        while connections.try_join_next().is_some() {}
    }
    let drained = async { while connections.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(DRAIN, drained).await;
}

/// The next connection, once a connection slot is free; None after an accept error (such as
/// running out of file descriptors), after a short pause so the loop does not spin.
async fn accept(
    listener: &TcpListener,
    permits: &Arc<Semaphore>,
) -> Option<(TcpStream, OwnedSemaphorePermit)> {
    let permit = permits.clone().acquire_owned().await.ok()?;
    match listener.accept().await {
        Ok((stream, _)) => Some((stream, permit)),
        Err(e) => {
            tracing::warn!(error = %e, "cannot accept a connection");
            tokio::time::sleep(Duration::from_millis(100)).await;
            None
        }
    }
}

/// One connection, holding its slot until it closes.
async fn serve_connection(
    stream: TcpStream,
    app: Router,
    limits: ServerLimits,
    shutdown: CancellationToken,
    _slot: OwnedSemaphorePermit,
) {
    let _ = stream.set_nodelay(true);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_HEADER);
    let conn = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
    futures::pin_mut!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        _ = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "connection closed");
    }
}
