//! Fake forge REST API (GitHub, GitHub Enterprise, GitLab, Gitea/Forgejo) recording every request.
//!
//! No forge server can be installed on these machines (DESIGN §8), so pull-request creation and
//! commit statuses are tested against this fake while branch pushes go to a real git remote. It
//! answers the handful of endpoints the project uses the way the real services do (status codes,
//! JSON shapes, error bodies, "already exists" conflicts), keeps pull requests in memory so that
//! "find the open PR for this branch" works, and records every request so tests can assert
//! exactly what was sent.
//!
//! One server speaks every provider; the API base URL selects which one:
//!
//! | provider            | base URL (`api_url`)            | auth header accepted                      |
//! |---------------------|---------------------------------|-------------------------------------------|
//! | GitHub              | [`FakeForge::github_url`] (`/`) | `Authorization: Bearer T` / `token T`     |
//! | GitHub Enterprise   | [`FakeForge::github_enterprise_url`] (`/api/v3`) | same as GitHub         |
//! | GitLab              | [`FakeForge::gitlab_url`] (`/api/v4`) | `PRIVATE-TOKEN: T` / `Authorization: Bearer T` |
//! | Gitea / Forgejo     | [`FakeForge::gitea_url`] (`/api/v1`)  | `Authorization: token T` / `Bearer T`     |
//!
//! Endpoints (paths relative to the base URL):
//! - GitHub: `POST /repos/{o}/{r}/pulls`, `GET /repos/{o}/{r}/pulls?head=owner:branch&state=open`,
//!   `GET|PATCH /repos/{o}/{r}/pulls/{n}`, `POST /repos/{o}/{r}/issues/{n}/comments`,
//!   `POST /repos/{o}/{r}/statuses/{sha}`.
//! - GitLab (`{id}` is the URL-encoded project path or anything else identifying it):
//!   `POST /projects/{id}/merge_requests`, `GET /projects/{id}/merge_requests?source_branch=..&state=opened`,
//!   `GET|PUT /projects/{id}/merge_requests/{iid}`, `POST /projects/{id}/merge_requests/{iid}/notes`,
//!   `POST /projects/{id}/statuses/{sha}` (fields in the JSON body or the query string).
//! - Gitea: `POST /repos/{o}/{r}/pulls`, `GET /repos/{o}/{r}/pulls?state=open` (no head filter:
//!   clients filter by `head.ref` themselves, as with the real API), `GET|PATCH /repos/{o}/{r}/pulls/{n}`,
//!   `POST /repos/{o}/{r}/issues/{n}/comments`, `POST /repos/{o}/{r}/statuses/{sha}`.
//!
//! Anything else is recorded and answered 404 with the provider's error body. A wrong or missing
//! token is answered 401 with the provider's error body (`Bad credentials` on GitHub,
//! `401 Unauthorized` on GitLab, `token is required` / `invalid token` on Gitea).
//!
//! ```no_run
//! # async fn demo() {
//! use catalog_e2e::forge::{FakeForge, Provider};
//! let forge = FakeForge::start("s3cret").await;
//! // point the code under test at forge.github_url(), then:
//! let prs = forge.pull_requests(Provider::Github, "acme/catalog");
//! forge.merge(Provider::Github, "acme/catalog", prs[0].number);
//! assert_eq!(forge.requests_matching("POST", "/pulls").len(), 1);
//! # }
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Which forge API a request was addressed to (decided by the base-URL prefix).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Provider {
    /// api.github.com style (no prefix) and GitHub Enterprise (`/api/v3`).
    Github,
    /// `/api/v4`.
    Gitlab,
    /// `/api/v1` (Gitea and Forgejo).
    Gitea,
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub provider: Provider,
    pub method: String,
    /// Full path as sent (including the `/api/vN` prefix), still percent-encoded.
    pub path: String,
    /// Raw query string, if any.
    pub query: Option<String>,
    /// Header names lower-cased; a repeated header keeps its last value.
    pub headers: BTreeMap<String, String>,
    /// Parsed JSON body; `None` when empty or not JSON.
    pub body: Option<Value>,
    /// HTTP status the fake answered.
    pub status: u16,
}

impl RecordedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// State of a pull request (merge request on GitLab).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrState {
    Open,
    Closed,
    Merged,
}

/// A pull request kept by the fake.
#[derive(Clone, Debug)]
pub struct PullRequest {
    pub provider: Provider,
    /// `owner/name` or the GitLab project path (decoded).
    pub repo: String,
    /// Number (GitHub, Gitea) or iid (GitLab).
    pub number: u64,
    /// Head (source) branch name, without an `owner:` prefix.
    pub head: String,
    pub base: String,
    pub title: String,
    pub body: String,
    pub state: PrState,
    /// Comment (note) bodies in order.
    pub comments: Vec<String>,
    /// Browser URL returned as `html_url` / `web_url`.
    pub url: String,
}

/// A commit status set through the API.
#[derive(Clone, Debug)]
pub struct CommitStatus {
    pub provider: Provider,
    pub repo: String,
    pub sha: String,
    /// `pending`, `success`, `failure`, `error` (GitHub, Gitea) or GitLab's
    /// `pending`, `running`, `success`, `failed`, `canceled`.
    pub state: String,
    /// `context` (GitHub, Gitea) or `name` (GitLab).
    pub context: Option<String>,
    pub description: Option<String>,
    pub target_url: Option<String>,
}

#[derive(Default)]
struct State {
    token: Option<String>,
    requests: Vec<RecordedRequest>,
    pulls: Vec<PullRequest>,
    statuses: Vec<CommitStatus>,
    /// Answers to give instead of the normal one, consumed in order.
    injected: Vec<(u16, Value)>,
}

/// A running fake forge on `127.0.0.1:<random port>`; stops when dropped.
pub struct FakeForge {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeForge {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeForge {
    /// Starts the fake accepting only `token`.
    pub async fn start(token: impl Into<String>) -> FakeForge {
        Self::start_with(Some(token.into())).await
    }

    /// Starts the fake; `None` accepts any request, authenticated or not.
    pub async fn start_with(token: Option<String>) -> FakeForge {
        let state = Arc::new(Mutex::new(State {
            token,
            ..State::default()
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake forge on 127.0.0.1:0");
        let addr = listener.local_addr().expect("fake forge address");
        let shared = state.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let shared = shared.clone();
                async move { handle(&shared, addr, method, uri, headers, body) }
            },
        );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeForge { addr, state, task }
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// GitHub API base URL (like `https://api.github.com`).
    pub fn github_url(&self) -> String {
        self.url()
    }

    /// GitHub Enterprise API base URL (like `https://ghe.example.com/api/v3`).
    pub fn github_enterprise_url(&self) -> String {
        format!("{}/api/v3", self.url())
    }

    /// GitLab API base URL (like `https://gitlab.example.com/api/v4`).
    pub fn gitlab_url(&self) -> String {
        format!("{}/api/v4", self.url())
    }

    /// Gitea/Forgejo API base URL (like `https://gitea.example.com/api/v1`).
    pub fn gitea_url(&self) -> String {
        format!("{}/api/v1", self.url())
    }

    /// The API base URL of `provider`.
    pub fn api_url(&self, provider: Provider) -> String {
        match provider {
            Provider::Github => self.github_url(),
            Provider::Gitlab => self.gitlab_url(),
            Provider::Gitea => self.gitea_url(),
        }
    }

    /// Changes the accepted token (`None`: accept anything).
    pub fn set_token(&self, token: Option<&str>) {
        self.lock().token = token.map(str::to_owned);
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    /// Requests with this method whose path contains `path_part`.
    pub fn requests_matching(&self, method: &str, path_part: &str) -> Vec<RecordedRequest> {
        self.lock()
            .requests
            .iter()
            .filter(|r| r.method.eq_ignore_ascii_case(method) && r.path.contains(path_part))
            .cloned()
            .collect()
    }

    /// Forgets the recorded requests (pull requests and statuses are kept).
    pub fn clear_requests(&self) {
        self.lock().requests.clear();
    }

    /// Pull requests of one repository (every state), by number.
    pub fn pull_requests(&self, provider: Provider, repo: &str) -> Vec<PullRequest> {
        self.lock()
            .pulls
            .iter()
            .filter(|p| p.provider == provider && p.repo == repo)
            .cloned()
            .collect()
    }

    /// Every pull request of every repository.
    pub fn all_pull_requests(&self) -> Vec<PullRequest> {
        self.lock().pulls.clone()
    }

    /// Marks a pull request merged (what a reviewer pressing "merge" does; the test is
    /// responsible for updating the git remote itself). Returns false when it does not exist.
    pub fn merge(&self, provider: Provider, repo: &str, number: u64) -> bool {
        self.set_state(provider, repo, number, PrState::Merged)
    }

    /// Marks a pull request closed without merging.
    pub fn close(&self, provider: Provider, repo: &str, number: u64) -> bool {
        self.set_state(provider, repo, number, PrState::Closed)
    }

    fn set_state(&self, provider: Provider, repo: &str, number: u64, state: PrState) -> bool {
        let mut guard = self.lock();
        match guard
            .pulls
            .iter_mut()
            .find(|p| p.provider == provider && p.repo == repo && p.number == number)
        {
            Some(pr) => {
                pr.state = state;
                true
            }
            None => false,
        }
    }

    /// Commit statuses set so far, in order.
    pub fn statuses(&self) -> Vec<CommitStatus> {
        self.lock().statuses.clone()
    }

    /// The next request (after the auth check) is answered with `status` and `body` instead of
    /// normally; call several times to queue several answers. For 5xx/429/422 paths.
    pub fn inject_response(&self, status: u16, body: Value) {
        self.lock().injected.push((status, body));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn handle(
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
        let query = parse_query(recorded.query.as_deref());
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
    recorded.status = status;
    state.requests.push(recorded);
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, axum::Json(value)).into_response()
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

struct Ctx<'a> {
    provider: Provider,
    base: &'a str,
    method: &'a Method,
    query: &'a BTreeMap<String, String>,
    body: Option<&'a Value>,
}

impl Ctx<'_> {
    fn field(&self, name: &str) -> Option<String> {
        match self.body.and_then(|b| b.get(name)) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Null) | None => self.query.get(name).cloned(),
            Some(other) => Some(other.to_string()),
        }
    }
}

fn route(state: &mut State, ctx: &Ctx<'_>, segs: &[&str]) -> Option<(u16, Value)> {
    match ctx.provider {
        Provider::Gitlab => route_gitlab(state, ctx, segs),
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
            // GitHub filters by `head=owner:branch`; Gitea ignores it (clients filter).
            let head = match ctx.provider {
                Provider::Github => ctx
                    .query
                    .get("head")
                    .map(|h| h.split_once(':').map_or(h.as_str(), |(_, b)| b).to_owned()),
                _ => None,
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
        ["issues", n, "comments"] if m == Method::POST => {
            let body = ctx.field("body").unwrap_or_default();
            let base = ctx.base.to_owned();
            let pr = find_pull_mut(state, ctx.provider, &repo, n)?;
            pr.comments.push(body.clone());
            let id = pr.comments.len();
            Some((
                201,
                json!({"id": id, "body": body, "html_url": format!("{}#issuecomment-{id}", pr.url), "url": format!("{base}/comments/{id}")}),
            ))
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
        "head": {"ref": p.head, "label": format!("{owner}:{}", p.head), "sha": "0000000000000000000000000000000000000000"},
        "base": {"ref": p.base, "label": format!("{owner}:{}", p.base)},
    })
}

fn route_gitlab(state: &mut State, ctx: &Ctx<'_>, segs: &[&str]) -> Option<(u16, Value)> {
    let ["projects", project, rest @ ..] = segs else {
        return None;
    };
    let repo = (*project).to_owned();
    let m = ctx.method;
    match rest {
        ["merge_requests"] if m == Method::POST => {
            let (Some(source), Some(target), Some(title)) = (
                ctx.field("source_branch"),
                ctx.field("target_branch"),
                ctx.field("title"),
            ) else {
                return Some(validation_failed(
                    ctx.provider,
                    "source_branch, target_branch, title are missing",
                ));
            };
            if let Some(existing) = state.pulls.iter().find(|p| {
                p.provider == Provider::Gitlab
                    && p.repo == repo
                    && p.head == source
                    && p.state == PrState::Open
            }) {
                return Some((
                    409,
                    json!({"message": [format!(
                        "Another open merge request already exists for this source branch: !{}",
                        existing.number)]}),
                ));
            }
            let number = next_number(state, Provider::Gitlab, &repo);
            let pr = PullRequest {
                provider: Provider::Gitlab,
                repo: repo.clone(),
                number,
                head: source,
                base: target,
                title,
                body: ctx.field("description").unwrap_or_default(),
                state: PrState::Open,
                comments: Vec::new(),
                url: format!("{}/{repo}/-/merge_requests/{number}", ctx.base),
            };
            let value = mr_json(&pr);
            state.pulls.push(pr);
            Some((201, value))
        }
        ["merge_requests"] if m == Method::GET => {
            let wanted = ctx.query.get("state").map(String::as_str).unwrap_or("all");
            let source = ctx.query.get("source_branch");
            let list = state
                .pulls
                .iter()
                .filter(|p| p.provider == Provider::Gitlab && p.repo == repo)
                .filter(|p| match wanted {
                    "opened" => p.state == PrState::Open,
                    "merged" => p.state == PrState::Merged,
                    "closed" => p.state == PrState::Closed,
                    _ => true,
                })
                .filter(|p| source.is_none_or(|s| &p.head == s))
                .map(mr_json)
                .collect();
            Some((200, Value::Array(list)))
        }
        ["merge_requests", iid] if m == Method::GET => Some((
            200,
            mr_json(find_pull(state, Provider::Gitlab, &repo, iid)?),
        )),
        ["merge_requests", iid] if m == Method::PUT => {
            let title = ctx.field("title");
            let description = ctx.field("description");
            let event = ctx.field("state_event");
            let pr = find_pull_mut(state, Provider::Gitlab, &repo, iid)?;
            if let Some(t) = title {
                pr.title = t;
            }
            if let Some(d) = description {
                pr.body = d;
            }
            match event.as_deref() {
                Some("close") => pr.state = PrState::Closed,
                Some("reopen") if pr.state == PrState::Closed => pr.state = PrState::Open,
                _ => {}
            }
            Some((200, mr_json(pr)))
        }
        ["merge_requests", iid, "notes"] if m == Method::POST => {
            let body = ctx.field("body").unwrap_or_default();
            let pr = find_pull_mut(state, Provider::Gitlab, &repo, iid)?;
            pr.comments.push(body.clone());
            Some((201, json!({"id": pr.comments.len(), "body": body})))
        }
        ["statuses", sha] if m == Method::POST => {
            let Some(st) = ctx.field("state") else {
                return Some(validation_failed(ctx.provider, "state is missing"));
            };
            if !["pending", "running", "success", "failed", "canceled"].contains(&st.as_str()) {
                return Some((400, json!({"error": "state does not have a valid value"})));
            }
            state.statuses.push(CommitStatus {
                provider: Provider::Gitlab,
                repo,
                sha: (*sha).to_owned(),
                state: st.clone(),
                context: ctx.field("name").or_else(|| ctx.field("context")),
                description: ctx.field("description"),
                target_url: ctx.field("target_url"),
            });
            Some((
                201,
                json!({"id": state.statuses.len(), "sha": sha, "status": st}),
            ))
        }
        _ => None,
    }
}

fn mr_json(p: &PullRequest) -> Value {
    let state = match p.state {
        PrState::Open => "opened",
        PrState::Closed => "closed",
        PrState::Merged => "merged",
    };
    json!({
        "id": p.number * 1000,
        "iid": p.number,
        "web_url": p.url,
        "state": state,
        "title": p.title,
        "description": p.body,
        "source_branch": p.head,
        "target_branch": p.base,
        "merged_at": if p.state == PrState::Merged { json!("2026-01-01T00:00:00Z") } else { Value::Null },
    })
}

fn validation_failed(provider: Provider, message: &str) -> (u16, Value) {
    match provider {
        Provider::Github => (
            422,
            json!({"message": "Validation Failed", "errors": [{"message": message}], "status": "422"}),
        ),
        Provider::Gitlab => (400, json!({"error": message})),
        Provider::Gitea => (422, json!({"message": message})),
    }
}

fn next_number(state: &State, provider: Provider, repo: &str) -> u64 {
    state
        .pulls
        .iter()
        .filter(|p| p.provider == provider && p.repo == repo)
        .map(|p| p.number)
        .max()
        .unwrap_or(0)
        + 1
}

fn find_pull<'a>(
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

fn find_pull_mut<'a>(
    state: &'a mut State,
    provider: Provider,
    repo: &str,
    n: &str,
) -> Option<&'a mut PullRequest> {
    let n: u64 = n.parse().ok()?;
    state
        .pulls
        .iter_mut()
        .find(|p| p.provider == provider && p.repo == repo && p.number == n)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> reqwest::Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::new()
    }

    #[tokio::test]
    async fn github_pull_request_lifecycle() {
        let forge = FakeForge::start("t0k").await;
        let http = client();
        let base = forge.github_enterprise_url();
        let created: Value = http
            .post(format!("{base}/repos/acme/cat/pulls"))
            .bearer_auth("t0k")
            .json(&json!({"title": "Add x", "head": "caib/add/dev/x", "base": "main", "body": "b"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(created["number"], 1);
        let again = http
            .post(format!("{base}/repos/acme/cat/pulls"))
            .bearer_auth("t0k")
            .json(&json!({"title": "Add x", "head": "acme:caib/add/dev/x", "base": "main"}))
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 422);
        let listed: Value = http
            .get(format!(
                "{base}/repos/acme/cat/pulls?head=acme:caib%2Fadd%2Fdev%2Fx&state=open"
            ))
            .bearer_auth("t0k")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(listed.as_array().unwrap().len(), 1);
        assert!(forge.merge(Provider::Github, "acme/cat", 1));
        let one: Value = http
            .get(format!("{base}/repos/acme/cat/pulls/1"))
            .bearer_auth("t0k")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(one["merged"], true);
        let bad = http
            .get(format!("{base}/repos/acme/cat/pulls/1"))
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), 401);
        let body: Value = bad.json().await.unwrap();
        assert_eq!(body["message"], "Bad credentials");
        assert_eq!(forge.requests().len(), 5);
    }

    #[tokio::test]
    async fn gitlab_merge_request_and_status() {
        let forge = FakeForge::start("t0k").await;
        let http = client();
        let base = forge.gitlab_url();
        let created = http
            .post(format!("{base}/projects/grp%2Fcat/merge_requests"))
            .header("PRIVATE-TOKEN", "t0k")
            .json(&json!({"title": "t", "source_branch": "b", "target_branch": "main"}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
        let prs = forge.pull_requests(Provider::Gitlab, "grp/cat");
        assert_eq!(prs.len(), 1);
        let status = http
            .post(format!("{base}/projects/grp%2Fcat/statuses/abc"))
            .header("PRIVATE-TOKEN", "t0k")
            .json(&json!({"state": "success", "name": "catalog"}))
            .send()
            .await
            .unwrap();
        assert_eq!(status.status(), 201);
        assert_eq!(forge.statuses()[0].context.as_deref(), Some("catalog"));
        let unauth = http
            .get(format!("{base}/projects/grp%2Fcat/merge_requests"))
            .send()
            .await
            .unwrap();
        assert_eq!(unauth.status(), 401);
    }

    #[tokio::test]
    async fn gitea_lists_all_open_pulls() {
        let forge = FakeForge::start("t0k").await;
        let http = client();
        let base = forge.gitea_url();
        for head in ["a", "b"] {
            http.post(format!("{base}/repos/o/r/pulls"))
                .header("Authorization", "token t0k")
                .json(&json!({"title": "t", "head": head, "base": "main"}))
                .send()
                .await
                .unwrap();
        }
        let listed: Value = http
            .get(format!("{base}/repos/o/r/pulls?state=open&head=a"))
            .header("Authorization", "token t0k")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(listed.as_array().unwrap().len(), 2);
    }
}
