//! A configurable fake registry on loopback, for what a real registry never does on demand:
//! serve an index of thousands of platforms, trickle its answer one byte per second, never
//! answer at all, or send clients to a token realm on another plain-HTTP port.
//!
//! ```no_run
//! # async fn demo() {
//! use catalog_e2e::registry::HostileRegistry;
//! let fake = HostileRegistry::huge_index(5_000).await;
//! // `{host}/os/huge:v1` is an index; `fake.child_requests()` counts platform manifest reads.
//! # let _ = fake.host();
//! # }
//! ```
//!
//! Every served image is valid (digests match), so what a test observes is the client's
//! limits, not a parse error. Requests are recorded with their `Authorization` header.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use catalog_api::registry::{OCI_INDEX, OCI_MANIFEST, sha256_digest};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

/// The tag every fake serves its image under.
pub const TAG: &str = "v1";
/// The token the fake realm issues and the fake registry accepts.
const TOKEN: &str = "fake-registry-token";

/// One request the fake received.
#[derive(Clone, Debug)]
pub struct Seen {
    /// `registry` or `realm`: which listener received it.
    pub listener: &'static str,
    pub method: String,
    /// Path and query.
    pub path: String,
    pub authorization: Option<String>,
}

/// Manifests (by tag and digest) and blobs the fake serves.
#[derive(Default)]
struct Content {
    manifests: HashMap<String, (String, Vec<u8>)>,
    blobs: HashMap<String, Vec<u8>>,
    /// Digests of the platform manifests of the index, if any.
    children: HashSet<String>,
}

#[derive(Clone)]
struct Shared {
    content: Arc<Content>,
    log: Arc<Mutex<Vec<Seen>>>,
    /// `Some(realm URL)`: requests without the realm's token are challenged.
    realm: Option<String>,
    connections: Arc<Mutex<usize>>,
}

/// The fake; its listeners stop when it is dropped.
pub struct HostileRegistry {
    host: String,
    realm_host: Option<String>,
    shared: Shared,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for HostileRegistry {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl HostileRegistry {
    /// A well-behaved registry serving one small amd64 image at `TAG`.
    pub async fn healthy() -> HostileRegistry {
        Self::serve(single_image(), false).await
    }

    /// An index of `platforms` platforms at `TAG` (the last one amd64, the others arm
    /// variants), every platform manifest and the config served.
    pub async fn huge_index(platforms: usize) -> HostileRegistry {
        Self::serve(index_image(platforms), false).await
    }

    /// `healthy`, behind a Bearer challenge whose realm is another plain-HTTP listener of the
    /// fake (another `host:port`); the realm hands a token to anyone.
    pub async fn bearer_realm() -> HostileRegistry {
        Self::serve(single_image(), true).await
    }

    /// Accepts connections and answers one byte per second, for ever.
    pub async fn trickle() -> HostileRegistry {
        Self::raw(true).await
    }

    /// Accepts connections and never answers.
    pub async fn silent() -> HostileRegistry {
        Self::raw(false).await
    }

    /// `127.0.0.1:PORT` of the registry listener.
    pub fn host(&self) -> String {
        self.host.clone()
    }

    /// `127.0.0.1:PORT` of the token realm listener (`bearer_realm` only).
    pub fn realm_host(&self) -> Option<String> {
        self.realm_host.clone()
    }

    /// `HOST/os/image:TAG`, the reference of the served image.
    pub fn reference(&self, repository: &str) -> String {
        format!("{}/{repository}:{TAG}", self.host)
    }

    /// Every request so far (HTTP listeners only).
    pub fn requests(&self) -> Vec<Seen> {
        self.shared
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Requests for the platform manifests of the index.
    pub fn child_requests(&self) -> usize {
        self.requests()
            .iter()
            .filter(|s| {
                s.path
                    .rsplit('/')
                    .next()
                    .is_some_and(|d| self.shared.content.children.contains(d))
            })
            .count()
    }

    /// Connections accepted so far (`trickle` and `silent`).
    pub fn connections(&self) -> usize {
        *self
            .shared
            .connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    async fn serve(content: Content, with_realm: bool) -> HostileRegistry {
        let mut shared = Shared {
            content: Arc::new(content),
            log: Arc::default(),
            realm: None,
            connections: Arc::default(),
        };
        let mut tasks = Vec::new();
        let mut realm_host = None;
        if with_realm {
            let (host, task) = listen(
                axum::Router::new()
                    .fallback(realm)
                    .with_state(shared.clone()),
            )
            .await;
            shared.realm = Some(format!("http://{host}/token"));
            realm_host = Some(host);
            tasks.push(task);
        }
        let (host, task) = listen(
            axum::Router::new()
                .fallback(registry)
                .with_state(shared.clone()),
        )
        .await;
        tasks.push(task);
        HostileRegistry {
            host,
            realm_host,
            shared,
            tasks,
        }
    }

    async fn raw(trickle: bool) -> HostileRegistry {
        let shared = Shared {
            content: Arc::default(),
            log: Arc::default(),
            realm: None,
            connections: Arc::default(),
        };
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake");
        let host = listener.local_addr().expect("fake address").to_string();
        let connections = shared.connections.clone();
        let task = tokio::spawn(async move {
            // Dropped with the task: every connection ends with the fake.
            let mut open = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                *connections.lock().unwrap_or_else(|e| e.into_inner()) += 1;
                open.spawn(hold(stream, trickle));
            }
        });
        HostileRegistry {
            host,
            realm_host: None,
            shared,
            tasks: vec![task],
        }
    }
}

async fn listen(app: axum::Router) -> (String, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the fake");
    let host = listener.local_addr().expect("fake address").to_string();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (host, task)
}

/// Reads what the client sends and answers nothing, or a valid-looking response one byte per
/// second that never ends.
async fn hold(mut stream: tokio::net::TcpStream, trickle: bool) {
    let mut buf = [0u8; 4096];
    let _ = stream.read(&mut buf).await;
    if !trickle {
        while stream.read(&mut buf).await.is_ok_and(|n| n > 0) {}
        return;
    }
    let answer = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {OCI_MANIFEST}\r\nContent-Length: 100000\r\n\r\n{}",
        "{".repeat(100_000)
    );
    for byte in answer.bytes() {
        if stream.write_all(&[byte]).await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn record(shared: &Shared, listener: &'static str, request: &Request) {
    shared
        .log
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Seen {
            listener,
            method: request.method().to_string(),
            path: request
                .uri()
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_default(),
            authorization: header(request.headers(), "authorization"),
        });
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

async fn realm(State(shared): State<Shared>, request: Request) -> Response {
    record(&shared, "realm", &request);
    let body = json!({"token": TOKEN, "expires_in": 300}).to_string();
    respond(
        StatusCode::OK,
        "application/json",
        None,
        body.into_bytes(),
        false,
    )
}

async fn registry(State(shared): State<Shared>, request: Request) -> Response {
    record(&shared, "registry", &request);
    if let Some(realm) = &shared.realm
        && header(request.headers(), "authorization").as_deref() != Some(&format!("Bearer {TOKEN}"))
    {
        return Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .header(
                "www-authenticate",
                format!(r#"Bearer realm="{realm}",service="fake""#),
            )
            .body(Body::empty())
            .unwrap_or_default();
    }
    let head = request.method() == Method::HEAD;
    let path = request.uri().path();
    let object = path.rsplit('/').next().unwrap_or_default();
    let content = &shared.content;
    let found = if path.contains("/manifests/") {
        content.manifests.get(object).cloned()
    } else if path.contains("/blobs/") {
        content
            .blobs
            .get(object)
            .map(|b| ("application/octet-stream".to_string(), b.clone()))
    } else {
        None
    };
    match found {
        Some((media_type, body)) => {
            let digest = sha256_digest(&body);
            respond(StatusCode::OK, &media_type, Some(&digest), body, head)
        }
        None => respond(
            StatusCode::NOT_FOUND,
            "application/json",
            None,
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}"#.to_vec(),
            head,
        ),
    }
}

fn respond(
    status: StatusCode,
    media_type: &str,
    digest: Option<&str>,
    body: Vec<u8>,
    head: bool,
) -> Response {
    let mut response = Response::builder()
        .status(status)
        .header("content-type", media_type)
        .header("content-length", body.len());
    if let Some(digest) = digest {
        response = response.header("docker-content-digest", digest);
    }
    let body = if head {
        Body::empty()
    } else {
        Body::from(body)
    };
    response.body(body).unwrap_or_default()
}

/// The config blob every fake image uses, and its descriptor.
fn config(content: &mut Content) -> serde_json::Value {
    let config = json!({
        "architecture": "amd64", "os": "linux", "created": "2026-01-01T00:00:00Z",
        "rootfs": {"type": "layers", "diff_ids": []}
    })
    .to_string()
    .into_bytes();
    let digest = sha256_digest(&config);
    let descriptor = json!({
        "mediaType": "application/vnd.oci.image.config.v1+json",
        "digest": digest, "size": config.len()
    });
    content.blobs.insert(digest, config);
    descriptor
}

/// An image manifest whose one layer has `layer_size` bytes (layers are never fetched).
fn manifest(config: &serde_json::Value, layer_size: usize) -> Vec<u8> {
    let layer = sha256_digest(layer_size.to_string().as_bytes());
    json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config,
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer, "size": layer_size}]
    })
    .to_string()
    .into_bytes()
}

fn single_image() -> Content {
    let mut content = Content::default();
    let config = config(&mut content);
    let body = manifest(&config, 1234);
    let entry = (OCI_MANIFEST.to_string(), body.clone());
    content
        .manifests
        .insert(sha256_digest(&body), entry.clone());
    content.manifests.insert(TAG.into(), entry);
    content
}

fn index_image(platforms: usize) -> Content {
    let mut content = Content::default();
    let config = config(&mut content);
    let mut entries = Vec::with_capacity(platforms);
    for i in 0..platforms {
        let body = manifest(&config, i + 1);
        let digest = sha256_digest(&body);
        let platform = if i + 1 == platforms {
            json!({"architecture": "amd64", "os": "linux"})
        } else {
            json!({"architecture": "arm", "os": "linux", "variant": format!("v{i}")})
        };
        entries.push(json!({
            "mediaType": OCI_MANIFEST, "digest": digest, "size": body.len(), "platform": platform
        }));
        content.children.insert(digest.clone());
        content
            .manifests
            .insert(digest, (OCI_MANIFEST.to_string(), body));
    }
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
        .to_string()
        .into_bytes();
    let entry = (OCI_INDEX.to_string(), index.clone());
    content
        .manifests
        .insert(sha256_digest(&index), entry.clone());
    content.manifests.insert(TAG.into(), entry);
    content
}
