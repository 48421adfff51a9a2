//! HTTP: routing, the request gate (authentication, impersonation, RBAC: `gate.rs`), request
//! accounting, fault injection, and the dispatch of resource requests to reads, writes and
//! watches. Resource URLs are parsed like the API server's RequestInfo (`request.rs`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::authn::Authn;
use super::delete;
use super::discovery;
use super::error::{ApiError, ApiResult};
use super::gate;
use super::hook_routes;
use super::hooks::{Hooks, Injected};
use super::limits;
use super::managed::Scope;
use super::openapi;
use super::patch::{self, PatchKind};
use super::proto;
use super::rbac::{self, Attributes};
use super::read::{self, Filter};
use super::request::{self, Target, parse_target};
use super::resources::ResourceDef;
use super::reviews;
use super::store::Store;
use super::table::{self, Include};
use super::watch;
use super::write::{self, Validation, WriteOpts, Written};

/// State shared by all requests of one emulator.
pub struct Shared {
    store: Mutex<Store>,
    pub hooks: Hooks,
    /// What users are granted, read from the store's RBAC objects when they change.
    pub rbac: rbac::Cache,
    /// The tokens this emulator accepts.
    pub authn: Authn,
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
            rbac: rbac::Cache::default(),
            authn: Authn::new(token, forbidden_token),
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

fn header_str(h: &HeaderMap, name: header::HeaderName) -> &str {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

async fn api(State(s): S, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let latency = s.hooks.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let response = match handle(&s, &method, &uri, &headers, &body) {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    if let Some(HeldAnswer(delay)) = response.extensions().get().copied() {
        tokio::time::sleep(delay).await;
    }
    response
}

/// How long a [`Injected::Hold`] fault holds this answer.
#[derive(Clone, Copy)]
struct HeldAnswer(Duration);

/// Discovery and OpenAPI documents (non-resource URLs).
fn non_resource(s: &Shared, method: &Method, segs: &[&str], path: &str) -> ApiResult<Response> {
    let defs = || s.lock_store().defs();
    let doc = |v: Option<Value>| {
        v.map(|v| json_response(200, &v, &[]))
            .ok_or_else(|| ApiError::no_route(path))
    };
    match (method, segs) {
        (&Method::GET, ["version"]) => Ok(json_response(200, &discovery::version(), &[])),
        (&Method::GET, ["api"]) => Ok(json_response(
            200,
            &discovery::core_versions(&s.addr.to_string()),
            &[],
        )),
        (&Method::GET, ["apis"]) => Ok(json_response(200, &discovery::group_list(&defs()), &[])),
        (&Method::GET, ["api", v]) => doc(discovery::resource_list(&defs(), "", v)),
        (&Method::GET, ["apis", g]) => doc(discovery::group(&defs(), g)),
        (&Method::GET, ["apis", g, v]) => doc(discovery::resource_list(&defs(), g, v)),
        (&Method::GET, ["openapi", "v3"]) => Ok(json_response(200, &openapi::index(&defs()), &[])),
        (&Method::GET, ["openapi", "v3", "api", v]) => doc(openapi::document(&defs(), "", v)),
        (&Method::GET, ["openapi", "v3", "apis", g, v]) => doc(openapi::document(&defs(), g, v)),
        _ => Err(ApiError::no_route(path)),
    }
}

/// Whether a path is a non-resource URL for RequestInfo (discovery, `/version`, `/openapi`).
fn is_non_resource(segs: &[&str]) -> bool {
    match segs.first() {
        Some(&"api") => segs.len() <= 2,
        Some(&"apis") => segs.len() <= 3,
        _ => true,
    }
}

/// The verb a resource request is served (and counted) as; `get` for a named watch.
fn serve_verb(method: &Method, named: bool, watch: bool) -> Option<&'static str> {
    match (method, named) {
        (&Method::GET, true) => Some("get"),
        (&Method::POST, true) => None,
        (m, named) => request::verb(m, named, watch),
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
    let user = gate::identify(s, headers)?;
    if is_non_resource(&segs) {
        let verb = method.as_str().to_lowercase();
        gate::authorize(s, &user, &Attributes::path(&verb, path))?;
        return non_resource(s, method, &segs, path);
    }
    let t = parse_target(&segs).ok_or_else(|| ApiError::no_route(path))?;
    let q: HashMap<String, String> =
        serde_urlencoded::from_str::<Vec<(String, String)>>(uri.query().unwrap_or_default())
            .map_err(|e| ApiError::bad_request(format!("invalid query string: {e}")))?
            .into_iter()
            .collect();
    let def = s.lock_store().def(&t.group, &t.version, &t.resource);
    let verb = serve_verb(method, t.name.is_some(), request::is_watch(&t, &q));
    let counted = def.as_ref().map(|def| match &t.sub {
        Some(sub) => format!("{}/{sub}", def.plural),
        None => def.plural.clone(),
    });
    if let (Some(verb), Some(counted)) = (verb, &counted) {
        s.hooks.count(verb, counted);
    }
    gate::authorize(s, &user, &request::attributes(method, &t, &q))?;
    if let Some(r) = reviews::serve(s, &user, method, &t, headers, body)? {
        return Ok(r);
    }
    let (Some(def), Some(counted)) = (def, counted) else {
        return Err(ApiError::no_route(path));
    };
    let verb = verb.ok_or_else(ApiError::method_not_allowed)?;
    let held = match s.hooks.take_fault(path, verb, &counted) {
        Some(Injected::Fail(e)) => return Err(e),
        Some(Injected::Hold(delay)) => Some(HeldAnswer(delay)),
        None => None,
    };
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
    let mut response = dispatch(s, &def, &t, verb, scope, &q, headers, body)?;
    if let Some(held) = held {
        response.extensions_mut().insert(held);
    }
    Ok(response)
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
    let written = |w: Written| bytes_response(w.code, w.to_json(def), &w.warnings);
    match verb {
        "get" => {
            let obj = read::get(&s.lock_store(), def, ns, name)?;
            Ok(bytes_response(
                200,
                read::render_object(def, &obj, output, include),
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
                let v = w.into_value(def);
                items.push(if v["kind"] == "Status" {
                    write::present(def, o)
                } else {
                    v
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
pub(super) fn object_body(headers: &HeaderMap, body: &[u8]) -> ApiResult<Value> {
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
