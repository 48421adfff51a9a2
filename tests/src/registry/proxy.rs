//! A tiny plain-HTTP reverse proxy in front of a registry that records every request
//! (method, path, status, time) and can answer with an injected failure instead.
//!
//! Tests use it to count exactly how many requests a verification costs, to see backoff in
//! request timestamps, and to produce 429/503 answers with `Retry-After`, which a real
//! registry never gives on demand.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::Registry;

/// One request that reached the proxy.
#[derive(Clone, Debug)]
pub struct ProxiedRequest {
    pub method: String,
    /// Path and query, e.g. `/v2/os/app/manifests/v1`.
    pub path: String,
    pub status: u16,
    pub at: Instant,
}

/// A failure the proxy answers with instead of forwarding.
#[derive(Clone, Debug)]
struct Fault {
    status: u16,
    retry_after: Option<u64>,
}

#[derive(Clone)]
struct Shared {
    upstream: String,
    client: reqwest::Client,
    log: Arc<Mutex<Vec<ProxiedRequest>>>,
    fault: Arc<Mutex<Option<Fault>>>,
    /// `true` while requests are held (see [`CountingProxy::hold`]).
    held: Arc<tokio::sync::watch::Sender<bool>>,
}

/// The proxy; stops when dropped.
pub struct CountingProxy {
    host: String,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl CountingProxy {
    /// Starts a proxy on 127.0.0.1 forwarding to `registry` (plain HTTP towards clients, the
    /// registry's own scheme and CA upstream).
    pub async fn start(registry: &Registry) -> CountingProxy {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
        if let Some(ca) = registry.ca_path() {
            let pem = std::fs::read(ca).unwrap();
            builder = builder.tls_certs_merge(reqwest::Certificate::from_pem_bundle(&pem).unwrap());
        }
        let shared = Shared {
            upstream: registry.url(),
            client: builder.build().unwrap(),
            log: Arc::default(),
            fault: Arc::default(),
            held: Arc::new(tokio::sync::watch::Sender::new(false)),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        CountingProxy { host, shared, task }
    }

    /// `127.0.0.1:<port>`: use it as the registry part of references.
    pub fn host(&self) -> String {
        self.host.clone()
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<ProxiedRequest> {
        self.shared.log.lock().unwrap().clone()
    }

    /// Requests with this method whose path contains `path_part` (e.g. `/manifests/`).
    pub fn count(&self, method: &str, path_part: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method == method && r.path.contains(path_part))
            .count()
    }

    /// Forgets the recorded requests.
    pub fn clear(&self) {
        self.shared.log.lock().unwrap().clear();
    }

    /// Answers every request with `status` (and `Retry-After: retry_after` seconds) until
    /// [`heal`](Self::heal).
    pub fn fail_with(&self, status: u16, retry_after: Option<u64>) {
        *self.shared.fault.lock().unwrap() = Some(Fault {
            status,
            retry_after,
        });
    }

    /// Holds every request (before forwarding) until [`release`](Self::release): a registry
    /// that is slow for as long as the test wants.
    pub fn hold(&self) {
        self.shared.held.send_replace(true);
    }

    /// Forwards the held requests and every later one.
    pub fn release(&self) {
        self.shared.held.send_replace(false);
    }

    /// How many requests are waiting in [`hold`](Self::hold).
    pub fn waiting(&self) -> usize {
        self.shared.held.receiver_count()
    }

    /// Forwards requests again.
    pub fn heal(&self) {
        *self.shared.fault.lock().unwrap() = None;
    }
}

async fn forward(State(shared): State<Shared>, request: Request) -> Response {
    let method = request.method().to_string();
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let record = |status: u16| {
        shared.log.lock().unwrap().push(ProxiedRequest {
            method: method.clone(),
            path: path.clone(),
            status,
            at: Instant::now(),
        })
    };
    let mut held = shared.held.subscribe();
    let _ = held.wait_for(|held| !held).await;
    drop(held);
    let fault = shared.fault.lock().unwrap().clone();
    if let Some(fault) = fault {
        record(fault.status);
        let mut response = Response::builder().status(fault.status);
        if let Some(seconds) = fault.retry_after {
            response = response.header("retry-after", seconds.to_string());
        }
        return response.body(Body::empty()).unwrap();
    }
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 64 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let mut upstream = shared
        .client
        .request(parts.method.clone(), format!("{}{path}", shared.upstream))
        .body(body.to_vec());
    for (name, value) in &parts.headers {
        if !matches!(name.as_str(), "host" | "content-length" | "connection") {
            upstream = upstream.header(name, value);
        }
    }
    match upstream.send().await {
        Ok(answer) => {
            let status = answer.status().as_u16();
            record(status);
            let mut response = Response::builder().status(status);
            for (name, value) in answer.headers() {
                if !matches!(name.as_str(), "transfer-encoding" | "connection") {
                    response = response.header(name, value);
                }
            }
            let bytes = answer.bytes().await.unwrap_or_default();
            response.body(Body::from(bytes)).unwrap()
        }
        Err(_) => {
            record(502);
            Response::builder()
                .status(StatusCode::BAD_GATEWAY)
                .body(Body::empty())
                .unwrap()
        }
    }
}
