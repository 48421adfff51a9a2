//! What the reconcilers asked the API server, and whether `deploy/rbac.yaml` allows it.
//!
//! The reconciler processes reach the emulator through [`AuditProxy`], a plain-HTTP reverse
//! proxy that records each request as an audit log would (API group, resource or
//! `resource/subresource`, verb, namespace, answer status). The test's own client goes to the
//! emulator directly, so the log holds the reconcilers' requests only, which the emulator's
//! own counters cannot tell apart. [`Rules`] evaluates them against the ClusterRole and Role
//! that `deploy/` renders, simply: a rule matches when it lists the group, the resource and
//! the verb (no wildcards exist, `deploy.rs` checks), and a Role's rules only in its namespace.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

/// One request as an audit log records it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Access {
    pub group: String,
    /// The plural, with `/subresource` when there is one (`catalogsources/status`).
    pub resource: String,
    pub verb: String,
    /// None for cluster-wide requests (lists and watches across namespaces, cluster kinds).
    pub namespace: Option<String>,
}

impl std::fmt::Display for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ns = self.namespace.as_deref().unwrap_or("*");
        write!(f, "{} {}.{} in {ns}", self.verb, self.resource, self.group)
    }
}

/// The access a request path and method stand for; None for discovery and other
/// non-resource paths (which RBAC grants every authenticated user).
pub fn access(method: &str, path: &str, query: &str) -> Option<Access> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, rest) = match segs.as_slice() {
        ["api", "v1", rest @ ..] => ("", rest),
        ["apis", group, _version, rest @ ..] => (*group, rest),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some(ns.to_string()), rest),
        _ => (None, rest),
    };
    let (resource, name) = match rest {
        [resource] => (resource.to_string(), None),
        [resource, name] => (resource.to_string(), Some(*name)),
        [resource, name, sub] => (format!("{resource}/{sub}"), Some(*name)),
        _ => return None,
    };
    let watch = query
        .split('&')
        .any(|p| p == "watch=true" || p == "watch=1");
    let verb = match (method, name.is_some()) {
        ("GET", true) => "get",
        ("GET", false) if watch => "watch",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => return None,
    };
    Some(Access {
        group: group.to_string(),
        resource,
        verb: verb.into(),
        namespace,
    })
}

/// One recorded request and the status it got.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub access: Access,
    pub status: u16,
}

#[derive(Clone)]
struct Shared {
    upstream: String,
    client: reqwest::Client,
    log: Arc<Mutex<Vec<Recorded>>>,
}

/// The proxy; stops when dropped.
pub struct AuditProxy {
    url: String,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for AuditProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl AuditProxy {
    /// Starts a proxy on 127.0.0.1 forwarding to the API server at `upstream`.
    pub async fn start(upstream: &str) -> AuditProxy {
        let shared = Shared {
            upstream: upstream.trim_end_matches('/').to_string(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            log: Arc::default(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        AuditProxy { url, shared, task }
    }

    /// `http://127.0.0.1:PORT`, the API server address to give the reconcilers.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Every resource request so far.
    pub fn recorded(&self) -> Vec<Recorded> {
        self.shared.log.lock().unwrap().clone()
    }

    /// The distinct accesses so far.
    pub fn accesses(&self) -> BTreeSet<Access> {
        self.recorded().into_iter().map(|r| r.access).collect()
    }
}

/// Forwards one request, streaming the answer (watches stay open as long as upstream's).
async fn forward(State(shared): State<Shared>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or_default().to_string();
    let seen = access(parts.method.as_str(), &path, &query);
    let body = axum::body::to_bytes(body, 64 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let target = match query.is_empty() {
        true => format!("{}{path}", shared.upstream),
        false => format!("{}{path}?{query}", shared.upstream),
    };
    let mut upstream = shared.client.request(parts.method, target).body(body);
    for (name, value) in &parts.headers {
        if !matches!(name.as_str(), "host" | "content-length" | "connection") {
            upstream = upstream.header(name, value);
        }
    }
    let answer = upstream.send().await;
    let status = answer.as_ref().map(|a| a.status().as_u16()).unwrap_or(502);
    if let Some(access) = seen {
        let mut log = shared.log.lock().unwrap();
        log.push(Recorded { access, status });
    }
    let Ok(answer) = answer else {
        return Response::builder()
            .status(StatusCode::BAD_GATEWAY)
            .body(Body::empty())
            .unwrap();
    };
    let mut response = Response::builder().status(status);
    for (name, value) in answer.headers() {
        if !matches!(name.as_str(), "transfer-encoding" | "connection") {
            response = response.header(name, value);
        }
    }
    let chunks = futures::stream::unfold(answer, |mut answer| async move {
        match answer.chunk().await {
            Ok(Some(chunk)) => Some((Ok::<_, reqwest::Error>(chunk), answer)),
            Ok(None) | Err(_) => None,
        }
    });
    response.body(Body::from_stream(chunks)).unwrap()
}

/// One RBAC rule, flattened; `namespace` is the Role's (None for a ClusterRole's).
#[derive(Debug)]
struct Rule {
    groups: Vec<String>,
    resources: Vec<String>,
    verbs: Vec<String>,
    namespace: Option<String>,
}

/// The rules of the rendered ClusterRoles and Roles.
#[derive(Debug)]
pub struct Rules(Vec<Rule>);

impl Rules {
    /// The rules of every ClusterRole and Role among `objects` (as `kubectl kustomize`
    /// rendered them).
    pub fn of(objects: &[Value]) -> Rules {
        let strings = |v: &Value| -> Vec<String> {
            let list = v.as_array().into_iter().flatten();
            list.filter_map(|s| s.as_str().map(String::from)).collect()
        };
        let mut rules = Vec::new();
        for role in objects {
            let namespace = match role["kind"].as_str() {
                Some("ClusterRole") => None,
                Some("Role") => role["metadata"]["namespace"].as_str().map(String::from),
                _ => continue,
            };
            for rule in role["rules"].as_array().into_iter().flatten() {
                rules.push(Rule {
                    groups: strings(&rule["apiGroups"]),
                    resources: strings(&rule["resources"]),
                    verbs: strings(&rule["verbs"]),
                    namespace: namespace.clone(),
                });
            }
        }
        Rules(rules)
    }

    /// Whether some rule grants `access`.
    pub fn allow(&self, access: &Access) -> bool {
        self.0.iter().any(|rule| {
            rule.groups.contains(&access.group)
                && rule.resources.contains(&access.resource)
                && rule.verbs.contains(&access.verb)
                && (rule.namespace.is_none() || rule.namespace == access.namespace)
        })
    }
}
