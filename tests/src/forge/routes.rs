//! Request handling of the fake forge: authentication, then the endpoints of each provider,
//! answered with the real APIs' status codes and JSON shapes.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{CommitStatus, PrState, Provider, PullRequest, RecordedRequest, State};

pub(crate) fn handle(
    shared: &Mutex<State>,
    addr: SocketAddr,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let (provider, rest) = split_provider(&path);
    let mut recorded = RecordedRequest {
        provider,
        method: method.as_str().to_owned(),
        path: path.clone(),
        query: uri.query().map(str::to_owned),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: serde_json::from_slice(&body).ok(),
        status: 0,
    };
    let mut state = shared.lock().unwrap_or_else(|e| e.into_inner());
    let query = parse_query(recorded.query.as_deref());
    let (status, value) = if !authorized(provider, &recorded, state.token.as_deref()) {
        unauthorized(provider, &recorded)
    } else if !state.injected.is_empty() {
        state.injected.remove(0)
    } else {
        let base = format!("http://{addr}");
        let segments: Vec<String> = rest
            .trim_matches('/')
            .split('/')
            .map(percent_decode)
            .collect();
        let ctx = Ctx {
            provider,
            base: &base,
            method: &method,
            query: &query,
            body: recorded.body.as_ref(),
        };
        let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
        route(&mut state, &ctx, &segs).unwrap_or_else(|| (404, not_found_body(provider)))
    };
    // Lists are paged as the forge pages them; Gitea's issue comments are not paged.
    let paged = method == Method::GET
        && status == 200
        && value.is_array()
        && !(provider == Provider::Gitea && path.ends_with("/comments"));
    let (value, headers) = match value {
        Value::Array(items) if paged => {
            super::pages::page(provider, &format!("http://{addr}{path}"), &query, items)
        }
        other => (other, Vec::new()),
    };
    recorded.status = status;
    state.requests.push(recorded);
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (code, axum::Json(value)).into_response();
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::from_bytes(name.as_bytes()),
            axum::http::HeaderValue::from_str(&value),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

fn split_provider(path: &str) -> (Provider, &str) {
    for (prefix, provider) in [
        ("/api/v3", Provider::Github),
        ("/api/v4", Provider::Gitlab),
        ("/api/v1", Provider::Gitea),
    ] {
        if let Some(rest) = path.strip_prefix(prefix)
            && (rest.is_empty() || rest.starts_with('/'))
        {
            return (provider, rest);
        }
    }
    (Provider::Github, path)
}

fn authorized(provider: Provider, req: &RecordedRequest, token: Option<&str>) -> bool {
    let Some(token) = token else { return true };
    let auth = req.header("authorization").unwrap_or("");
    let bearer = auth
        .strip_prefix("Bearer ")
        .or_else(|| auth.strip_prefix("bearer "));
    let token_scheme = auth.strip_prefix("token ");
    match provider {
        Provider::Github | Provider::Gitea => bearer == Some(token) || token_scheme == Some(token),
        Provider::Gitlab => req.header("private-token") == Some(token) || bearer == Some(token),
    }
}

fn unauthorized(provider: Provider, req: &RecordedRequest) -> (u16, Value) {
    let body = match provider {
        Provider::Github => json!({
            "message": "Bad credentials",
            "documentation_url": "https://docs.github.com/rest",
            "status": "401"
        }),
        Provider::Gitlab => json!({"message": "401 Unauthorized"}),
        Provider::Gitea => {
            let message = if req.header("authorization").is_some() {
                "invalid token"
            } else {
                "token is required"
            };
            json!({"message": message, "url": "https://gitea.example/api/swagger"})
        }
    };
    (401, body)
}

fn not_found_body(provider: Provider) -> Value {
    match provider {
        Provider::Github => json!({
            "message": "Not Found",
            "documentation_url": "https://docs.github.com/rest",
            "status": "404"
        }),
        Provider::Gitlab => json!({"message": "404 Not Found"}),
        Provider::Gitea => json!({"message": "The target couldn't be found.", "errors": []}),
    }
}

pub(super) struct Ctx<'a> {
    pub(super) provider: Provider,
    pub(super) base: &'a str,
    pub(super) method: &'a Method,
    pub(super) query: &'a BTreeMap<String, String>,
    pub(super) body: Option<&'a Value>,
}

impl Ctx<'_> {
    pub(super) fn field(&self, name: &str) -> Option<String> {
        match self.body.and_then(|b| b.get(name)) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Null) | None => self.query.get(name).cloned(),
            Some(other) => Some(other.to_string()),
        }
    }
}

fn route(state: &mut State, ctx: &Ctx<'_>, segs: &[&str]) -> Option<(u16, Value)> {
    match ctx.provider {
        Provider::Gitlab => super::gitlab::route(state, ctx, segs),
        Provider::Github | Provider::Gitea => route_github_like(state, ctx, segs),
    }
}

fn route_github_like(state: &mut State, ctx: &Ctx<'_>, segs: &[&str]) -> Option<(u16, Value)> {
    let ["repos", owner, name, rest @ ..] = segs else {
        return None;
    };
    let repo = format!("{owner}/{name}");
    let m = ctx.method;
    match rest {
        ["pulls"] if m == Method::POST => Some(create_pull(state, ctx, &repo)),
        ["pulls"] if m == Method::GET => {
            let wanted_state = ctx.query.get("state").map(String::as_str).unwrap_or("open");
            // GitHub filters by `head=owner:branch` and `base=branch`; Gitea ignores both
            // (clients filter).
            let (head, base) = match ctx.provider {
                Provider::Github => (
                    ctx.query
                        .get("head")
                        .map(|h| h.split_once(':').map_or(h.as_str(), |(_, b)| b).to_owned()),
                    ctx.query.get("base").cloned(),
                ),
                _ => (None, None),
            };
            let list = state
                .pulls
                .iter()
                .filter(|p| p.provider == ctx.provider && p.repo == repo)
                .filter(|p| match wanted_state {
                    "all" => true,
                    "closed" => p.state != PrState::Open,
                    _ => p.state == PrState::Open,
                })
                .filter(|p| head.as_ref().is_none_or(|h| &p.head == h))
                .filter(|p| base.as_ref().is_none_or(|b| &p.base == b))
                .map(|p| pull_json(p, owner))
                .collect();
            Some((200, Value::Array(list)))
        }
        ["pulls", n] if m == Method::GET => {
            let pr = find_pull(state, ctx.provider, &repo, n)?;
            Some((200, pull_json(pr, owner)))
        }
        ["pulls", n] if m == Method::PATCH => {
            let title = ctx.field("title");
            let body = ctx.field("body");
            let new_state = ctx.field("state");
            let pr = find_pull_mut(state, ctx.provider, &repo, n)?;
            if let Some(t) = title {
                pr.title = t;
            }
            if let Some(b) = body {
                pr.body = b;
            }
            match new_state.as_deref() {
                Some("closed") => pr.state = PrState::Closed,
                Some("open") if pr.state == PrState::Closed => pr.state = PrState::Open,
                _ => {}
            }
            Some((200, pull_json(pr, owner)))
        }
        ["issues", n, "comments"] if m == Method::GET => {
            super::comments::list(state, ctx, &repo, n)
        }
        ["issues", n, "comments"] if m == Method::POST => {
            super::comments::create(state, ctx, &repo, n)
        }
        ["issues", "comments", id] if m == Method::PATCH => {
            super::comments::edit(state, ctx, &repo, None, id)
        }
        ["statuses", sha] if m == Method::POST => {
            let Some(st) = ctx.field("state") else {
                return Some(validation_failed(ctx.provider, "state is required"));
            };
            let status = CommitStatus {
                provider: ctx.provider,
                repo,
                sha: (*sha).to_owned(),
                state: st.clone(),
                context: ctx.field("context"),
                description: ctx.field("description"),
                target_url: ctx.field("target_url"),
            };
            let context = status.context.clone().unwrap_or_else(|| "default".into());
            state.statuses.push(status);
            Some((
                201,
                json!({"id": state.statuses.len(), "state": st, "context": context, "sha": sha}),
            ))
        }
        _ => None,
    }
}

fn create_pull(state: &mut State, ctx: &Ctx<'_>, repo: &str) -> (u16, Value) {
    let (Some(head_raw), Some(base_branch), Some(title)) =
        (ctx.field("head"), ctx.field("base"), ctx.field("title"))
    else {
        return validation_failed(ctx.provider, "head, base and title are required");
    };
    let head = head_raw
        .split_once(':')
        .map_or(head_raw.as_str(), |(_, b)| b)
        .to_owned();
    if let Some(existing) = state.pulls.iter().find(|p| {
        p.provider == ctx.provider && p.repo == repo && p.head == head && p.state == PrState::Open
    }) {
        return match ctx.provider {
            Provider::Github => (
                422,
                json!({
                    "message": "Validation Failed",
                    "errors": [{"resource": "PullRequest", "code": "custom",
                        "message": format!("A pull request already exists for {head_raw}.")}],
                    "documentation_url": "https://docs.github.com/rest/pulls/pulls#create-a-pull-request",
                    "status": "422"
                }),
            ),
            _ => (
                409,
                json!({"message": format!(
                    "pull request already exists for these targets [id: {0}, issue_id: {0}, head_repo_id: 1, base_repo_id: 1, head_branch: {head}, base_branch: {1}]",
                    existing.number, existing.base)}),
            ),
        };
    }
    let number = next_number(state, ctx.provider, repo);
    let url = match ctx.provider {
        Provider::Github => format!("{}/{repo}/pull/{number}", ctx.base),
        _ => format!("{}/{repo}/pulls/{number}", ctx.base),
    };
    let pr = PullRequest {
        provider: ctx.provider,
        repo: repo.to_owned(),
        number,
        head,
        base: base_branch,
        title,
        body: ctx.field("body").unwrap_or_default(),
        state: PrState::Open,
        comments: Vec::new(),
        url,
        head_sha: "0".repeat(40),
    };
    let owner = repo.split('/').next().unwrap_or_default().to_owned();
    let value = pull_json(&pr, &owner);
    state.pulls.push(pr);
    (201, value)
}

fn pull_json(p: &PullRequest, owner: &str) -> Value {
    let merged = p.state == PrState::Merged;
    json!({
        "id": p.number * 1000,
        "number": p.number,
        "html_url": p.url,
        "url": p.url,
        "state": if p.state == PrState::Open { "open" } else { "closed" },
        "title": p.title,
        "body": p.body,
        "merged": merged,
        "merged_at": if merged { json!("2026-01-01T00:00:00Z") } else { Value::Null },
        "head": {"ref": p.head, "label": format!("{owner}:{}", p.head), "sha": p.head_sha},
        "base": {"ref": p.base, "label": format!("{owner}:{}", p.base)},
    })
}

pub(super) fn validation_failed(provider: Provider, message: &str) -> (u16, Value) {
    match provider {
        Provider::Github => (
            422,
            json!({"message": "Validation Failed", "errors": [{"message": message}], "status": "422"}),
        ),
        Provider::Gitlab => (400, json!({"error": message})),
        Provider::Gitea => (422, json!({"message": message})),
    }
}

pub(super) fn next_number(state: &State, provider: Provider, repo: &str) -> u64 {
    state
        .pulls
        .iter()
        .filter(|p| p.provider == provider && p.repo == repo)
        .map(|p| p.number)
        .max()
        .unwrap_or(0)
        + 1
}

pub(super) fn find_pull<'a>(
    state: &'a State,
    provider: Provider,
    repo: &str,
    n: &str,
) -> Option<&'a PullRequest> {
    let n: u64 = n.parse().ok()?;
    state
        .pulls
        .iter()
        .find(|p| p.provider == provider && p.repo == repo && p.number == n)
}

pub(super) fn find_pull_mut<'a>(
    state: &'a mut State,
    provider: Provider,
    repo: &str,
    n: &str,
) -> Option<&'a mut PullRequest> {
    pull_mut(state, provider, repo, n.parse().ok()?)
}

/// Pull request `number` of `repo` on `provider`.
pub(super) fn pull_mut<'a>(
    state: &'a mut State,
    provider: Provider,
    repo: &str,
    number: u64,
) -> Option<&'a mut PullRequest> {
    state
        .pulls
        .iter_mut()
        .find(|p| p.provider == provider && p.repo == repo && p.number == number)
}

fn parse_query(query: Option<&str>) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        map.insert(
            percent_decode(&k.replace('+', " ")),
            percent_decode(&v.replace('+', " ")),
        );
    }
    map
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && bytes[i + 1].is_ascii_hexdigit()
            && bytes[i + 2].is_ascii_hexdigit()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
