//! HTTP: routing, authentication, request accounting, fault injection, and the dispatch of
//! resource requests to reads, writes and watches. Resource URLs are parsed like the API
//! server's RequestInfo (`/api/v1/namespaces/{ns}/{resource}/{name}/{subresource}`, with
//! `namespaces/{name}/status` meaning the namespace's status).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::delete;
use super::discovery;
use super::error::{ApiError, ApiResult};
use super::hook_routes;
use super::hooks::Hooks;
use super::limits;
use super::managed::Scope;
use super::openapi;
use super::patch::{self, PatchKind};
use super::proto;
use super::read::{self, Filter};
use super::resources::ResourceDef;
use super::store::Store;
use super::table::{self, Include};
use super::watch;
use super::write::{self, Validation, WriteOpts, Written};

/// State shared by all requests of one emulator.
pub struct Shared {
    store: Mutex<Store>,
    pub hooks: Hooks,
    pub token: Option<String>,
    pub forbidden_token: Option<String>,
    pub addr: SocketAddr,
}

impl Shared {
    pub fn new(
        store: Store,
        token: Option<String>,
        forbidden_token: Option<String>,
        addr: SocketAddr,
    ) -> Self {
        Shared {
            store: Mutex::new(store),
            hooks: Hooks::default(),
            token,
            forbidden_token,
            addr,
        }
    }

    /// Locks the store (a poisoned lock is recovered: the store has no multi-step invariants
    /// a panicking request could break halfway).
    pub fn lock_store(&self) -> MutexGuard<'_, Store> {
        match self.store.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }
}

pub(super) type S = State<Arc<Shared>>;

/// The router: test hooks under `/emulator/`, everything else is the Kubernetes API.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ok" }))
        .route("/livez", get(|| async { "ok" }))
        .route(
            "/version",
            get(|| async { json_response(200, &discovery::version(), &[]) }),
        )
        .merge(hook_routes::routes())
        .fallback(api)
        // The API server's own limits decide (limits.rs), not axum's 2 MiB default.
        .layer(DefaultBodyLimit::disable())
        .with_state(shared)
}

pub(super) fn json_response(code: u16, body: &Value, warnings: &[String]) -> Response {
    bytes_response(code, body.to_string().into_bytes(), warnings)
}

fn bytes_response(code: u16, body: Vec<u8>, warnings: &[String]) -> Response {
    let mut resp = (StatusCode::from_u16(code).unwrap_or(StatusCode::OK), body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    for w in warnings {
        if let Ok(v) = HeaderValue::from_str(&format!("299 - {}", json!(w))) {
            h.append(header::WARNING, v);
        }
    }
    resp
}

/// A parsed resource URL.
struct Target {
    group: String,
    version: String,
    namespace: Option<String>,
    resource: String,
    name: Option<String>,
    sub: Option<String>,
    watch_path: bool,
}

fn parse_target(segs: &[&str]) -> Option<Target> {
    let (group, version, rest) = match segs {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return None,
    };
    let mut rest: Vec<&str> = rest.to_vec();
    let watch_path = rest.first() == Some(&"watch");
    if watch_path {
        rest.remove(0);
    }
    let mut namespace = None;
    if rest.len() >= 3
        && rest[0] == "namespaces"
        && !(rest.len() == 3 && matches!(rest[2], "status" | "finalize"))
    {
        namespace = Some(rest[1].to_string());
        rest.drain(..2);
    }
    if rest.is_empty() || rest.len() > 3 {
        return None;
    }
    Some(Target {
        group: group.into(),
        version: version.into(),
        namespace,
        resource: rest[0].into(),
        name: rest.get(1).map(|s| s.to_string()),
        sub: rest.get(2).map(|s| s.to_string()),
        watch_path,
    })
}

fn header_str(h: &HeaderMap, name: header::HeaderName) -> &str {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

enum Auth {
    Ok,
    Forbidden,
}

fn authenticate(s: &Shared, headers: &HeaderMap) -> ApiResult<Auth> {
    if s.token.is_none() && s.forbidden_token.is_none() {
        return Ok(Auth::Ok);
    }
    let got = header_str(headers, header::AUTHORIZATION)
        .strip_prefix("Bearer ")
        .map(str::trim);
    match got {
        Some(t) if Some(t) == s.token.as_deref() => Ok(Auth::Ok),
        Some(t) if Some(t) == s.forbidden_token.as_deref() => Ok(Auth::Forbidden),
        _ => Err(ApiError::unauthorized()),
    }
}

async fn api(State(s): S, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let latency = s.hooks.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match handle(&s, &method, &uri, &headers, &body) {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

fn handle(
    s: &Arc<Shared>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult<Response> {
    let path = uri.path();
    let segs: Vec<&str> = path.split('/').filter(|x| !x.is_empty()).collect();
    let auth = authenticate(s, headers)?;
    let defs = || s.lock_store().defs();
    let doc = |v: Option<Value>| {
        v.map(|v| json_response(200, &v, &[]))
            .ok_or_else(|| ApiError::no_route(path))
    };
    match (method, segs.as_slice()) {
        (&Method::GET, ["api"]) => {
            return Ok(json_response(
                200,
                &discovery::core_versions(&s.addr.to_string()),
                &[],
            ));
        }
        (&Method::GET, ["apis"]) => {
            return Ok(json_response(200, &discovery::group_list(&defs()), &[]));
        }
        (&Method::GET, ["api", v]) => return doc(discovery::resource_list(&defs(), "", v)),
        (&Method::GET, ["apis", g]) => return doc(discovery::group(&defs(), g)),
        (&Method::GET, ["apis", g, v]) => return doc(discovery::resource_list(&defs(), g, v)),
        (&Method::GET, ["openapi", "v3"]) => {
            return Ok(json_response(200, &openapi::index(&defs()), &[]));
        }
        (&Method::GET, ["openapi", "v3", "api", v]) => {
            return doc(openapi::document(&defs(), "", v));
        }
        (&Method::GET, ["openapi", "v3", "apis", g, v]) => {
            return doc(openapi::document(&defs(), g, v));
        }
        _ => {}
    }
    let t = parse_target(&segs).ok_or_else(|| ApiError::no_route(path))?;
    let def = s
        .lock_store()
        .def(&t.group, &t.version, &t.resource)
        .ok_or_else(|| ApiError::no_route(path))?;
    let q: HashMap<String, String> =
        serde_urlencoded::from_str::<Vec<(String, String)>>(uri.query().unwrap_or_default())
            .map_err(|e| ApiError::bad_request(format!("invalid query string: {e}")))?
            .into_iter()
            .collect();
    let watch = t.watch_path || matches!(q.get("watch").map(String::as_str), Some("true" | "1"));
    let verb = match (method, t.name.is_some()) {
        (&Method::GET, true) => "get",
        (&Method::GET, false) if watch => "watch",
        (&Method::GET, false) => "list",
        (&Method::POST, false) => "create",
        (&Method::PUT, true) => "update",
        (&Method::PATCH, true) => "patch",
        (&Method::DELETE, true) => "delete",
        (&Method::DELETE, false) => "deletecollection",
        _ => return Err(ApiError::method_not_allowed()),
    };
    let counted = match &t.sub {
        Some(sub) => format!("{}/{sub}", def.plural),
        None => def.plural.clone(),
    };
    s.hooks.count(verb, &counted);
    if let Auth::Forbidden = auth {
        return Err(ApiError::forbidden(
            "system:serviceaccount:default:forbidden",
            verb,
            &def.plural,
            &def.group,
            t.namespace.as_deref(),
        ));
    }
    if let Some(e) = s.hooks.take_fault(path, verb, &counted) {
        return Err(e);
    }
    let scope = match t.sub.as_deref() {
        None => Scope::Main,
        Some("status") if def.status_subresource => Scope::Status,
        Some(_) => return Err(ApiError::no_route(path)),
    };
    if def.namespaced && t.namespace.is_none() && !matches!(verb, "list" | "watch") {
        return Err(ApiError::no_route(path));
    }
    if !def.namespaced && t.namespace.is_some() {
        return Err(ApiError::no_route(path));
    }
    limits::check_body(verb, body)?;
    dispatch(s, &def, &t, verb, scope, &q, headers, body)
}

fn write_opts(q: &HashMap<String, String>, headers: &HeaderMap) -> ApiResult<WriteOpts> {
    let validation = match q.get("fieldValidation").map(String::as_str) {
        None | Some("") | Some("Warn") => Validation::Warn,
        Some("Strict") => Validation::Strict,
        Some("Ignore") => Validation::Ignore,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "fieldValidation must be one of \"Ignore\", \"Warn\", or \"Strict\", got {other:?}"
            )));
        }
    };
    let agent = header_str(headers, header::USER_AGENT);
    let from_agent = agent
        .split('/')
        .next()
        .filter(|a| !a.is_empty())
        .unwrap_or("unknown");
    Ok(WriteOpts {
        manager: q
            .get("fieldManager")
            .cloned()
            .unwrap_or_else(|| from_agent.to_string()),
        manager_given: q.get("fieldManager").is_some_and(|m| !m.is_empty()),
        validation,
        dry_run: q.get("dryRun").is_some_and(|d| d == "All"),
        force: q.get("force").is_some_and(|f| f == "true"),
    })
}

#[allow(clippy::too_many_arguments)]
fn dispatch(
    s: &Arc<Shared>,
    def: &Arc<ResourceDef>,
    t: &Target,
    verb: &str,
    scope: Scope,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult<Response> {
    let output = table::negotiate(header_str(headers, header::ACCEPT));
    let include = Include::parse(q.get("includeObject").map(String::as_str));
    let ns = t.namespace.as_deref();
    let name = t.name.as_deref().unwrap_or_default();
    let written = |w: Written| json_response(w.code, &w.body, &w.warnings);
    match verb {
        "get" => {
            let obj = read::get(&s.lock_store(), def, ns, name)?;
            Ok(json_response(
                200,
                &read::render_object(def, &obj, output, include),
                &[],
            ))
        }
        "list" => {
            let filter = Filter::from_params(def, ns, q)?;
            let page = read::list(&s.lock_store(), def, &filter, q)?;
            Ok(bytes_response(
                200,
                read::render_list(def, &page, output, include),
                &[],
            ))
        }
        "watch" => {
            let filter = Filter::from_params(def, ns, q)?;
            watch::start(s.clone(), def.clone(), filter, q, output)
        }
        "create" => {
            let opts = write_opts(q, headers)?;
            let obj = object_body(headers, body)?;
            Ok(written(write::create(
                &mut s.lock_store(),
                def,
                ns,
                obj,
                &opts,
            )?))
        }
        "update" => {
            let opts = write_opts(q, headers)?;
            let obj = object_body(headers, body)?;
            Ok(written(write::update(
                &mut s.lock_store(),
                def,
                ns,
                name,
                scope,
                obj,
                &opts,
            )?))
        }
        "patch" => {
            let opts = write_opts(q, headers)?;
            let kind = PatchKind::from_content_type(header_str(headers, header::CONTENT_TYPE))?;
            Ok(written(write::patch(
                &mut s.lock_store(),
                def,
                ns,
                name,
                scope,
                kind,
                body,
                &opts,
            )?))
        }
        "delete" => {
            let options = delete_options(body)?;
            let dry_run = q.get("dryRun").is_some_and(|d| d == "All");
            Ok(written(delete::delete(
                &mut s.lock_store(),
                def,
                ns,
                name,
                options.as_ref(),
                dry_run,
            )?))
        }
        "deletecollection" => {
            let filter = Filter::from_params(def, ns, q)?;
            let options = delete_options(body)?;
            let dry_run = q.get("dryRun").is_some_and(|d| d == "All");
            let mut st = s.lock_store();
            let page = read::list(&st, def, &filter, &HashMap::new())?;
            let mut items = Vec::new();
            for o in &page.items {
                let n = o
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let ons = o.pointer("/metadata/namespace").and_then(Value::as_str);
                let w = delete::delete(&mut st, def, ons, n, options.as_ref(), dry_run)?;
                items.push(if w.body["kind"] == "Status" {
                    write::present(def, o)
                } else {
                    w.body
                });
            }
            let list = json!({"apiVersion": def.api_version(), "kind": def.list_kind,
                "metadata": {"resourceVersion": st.rv().to_string()}, "items": items});
            Ok(json_response(200, &list, &[]))
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// The object of a create/update: JSON, YAML, or protobuf (kubectl's typed clients).
fn object_body(headers: &HeaderMap, body: &[u8]) -> ApiResult<Value> {
    if proto::is_protobuf(header_str(headers, header::CONTENT_TYPE)) {
        proto::decode(body)
    } else {
        patch::parse_body(body, true)
    }
}

fn delete_options(body: &[u8]) -> ApiResult<Option<Value>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    patch::parse_body(body, false).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = parse_target(&[
            "apis",
            "g.io",
            "v1",
            "namespaces",
            "ns",
            "widgets",
            "w",
            "status",
        ])
        .expect("t");
        assert_eq!(
            (
                t.namespace.as_deref(),
                t.resource.as_str(),
                t.name.as_deref(),
                t.sub.as_deref()
            ),
            (Some("ns"), "widgets", Some("w"), Some("status"))
        );
        let t = parse_target(&["api", "v1", "namespaces", "ns", "status"]).expect("t");
        assert_eq!(
            (
                t.namespace,
                t.resource.as_str(),
                t.name.as_deref(),
                t.sub.as_deref()
            ),
            (None, "namespaces", Some("ns"), Some("status"))
        );
        let t = parse_target(&["api", "v1", "namespaces", "ns"]).expect("t");
        assert_eq!(
            (t.resource.as_str(), t.name.as_deref()),
            ("namespaces", Some("ns"))
        );
        let t = parse_target(&["apis", "g.io", "v1", "widgets"]).expect("t");
        assert_eq!((t.namespace, t.name), (None, None));
        let t = parse_target(&["api", "v1", "watch", "namespaces", "ns", "configmaps"]).expect("t");
        assert!(t.watch_path);
        assert!(parse_target(&["apis", "g.io"]).is_none());
    }
}
