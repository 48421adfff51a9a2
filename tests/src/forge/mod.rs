//! Fake forge REST API (GitHub, GitHub Enterprise, GitLab, Gitea/Forgejo) recording every request.
//!
//! No forge server can be installed on these machines, so pull-request creation and
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
//! - GitHub: `POST /repos/{o}/{r}/pulls`, `GET /repos/{o}/{r}/pulls?head=owner:branch&base=..&state=open`,
//!   `GET|PATCH /repos/{o}/{r}/pulls/{n}`, `GET|POST /repos/{o}/{r}/issues/{n}/comments`,
//!   `PATCH /repos/{o}/{r}/issues/comments/{id}`, `POST /repos/{o}/{r}/statuses/{sha}`.
//! - GitLab (`{id}` is the URL-encoded project path or anything else identifying it):
//!   `POST /projects/{id}/merge_requests`,
//!   `GET /projects/{id}/merge_requests?source_branch=..&target_branch=..&state=opened`,
//!   `GET|PUT /projects/{id}/merge_requests/{iid}`, `GET|POST /projects/{id}/merge_requests/{iid}/notes`,
//!   `PUT /projects/{id}/merge_requests/{iid}/notes/{note_id}`,
//!   `POST /projects/{id}/statuses/{sha}` (fields in the JSON body or the query string).
//! - Gitea: `POST /repos/{o}/{r}/pulls`, `GET /repos/{o}/{r}/pulls?state=open` (no head or base
//!   filter: clients filter by `head.ref` / `base.ref` themselves, as with the real API),
//!   `GET|PATCH /repos/{o}/{r}/pulls/{n}`, `GET|POST /repos/{o}/{r}/issues/{n}/comments`,
//!   `PATCH /repos/{o}/{r}/issues/comments/{id}`, `POST /repos/{o}/{r}/statuses/{sha}`.
//!
//! Lists are paged as the real APIs page them ([`pages`]): `per_page`/`page` on GitHub (30 by
//! default, at most 100) and GitLab (20, at most 100), `limit`/`page` on Gitea (30, at most 50;
//! Gitea's issue comments are not paged), with a `Link` header naming the `next` (and `prev`,
//! `first`, `last`) pages, GitLab's `X-Next-Page`/`X-Total` and Gitea's `X-Total-Count`.
//! Pull requests carry the head commit a test gives them ([`FakeForge::open_pull`],
//! [`FakeForge::set_head`]); comments carry an author, and editing another user's comment is
//! answered 403 as the forges do (the token's user is [`TOKEN_USER`]).
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

mod comments;
mod gitlab;
pub mod pages;
mod routes;
#[cfg(test)]
mod tests;
// Apart from the routes: merging needs the git remote, which only a test or the sandbox holds.
mod merge;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Uri};
use serde_json::Value;

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
    /// Comments (notes) in order.
    pub comments: Vec<Comment>,
    /// Browser URL returned as `html_url` / `web_url`.
    pub url: String,
    /// Head commit (`head.sha`, GitLab's `sha`); zeros unless a test set it.
    pub head_sha: String,
}

/// The user every accepted token acts as.
pub const TOKEN_USER: &str = "catalog-bot";

/// A comment (note) on a pull request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Comment {
    /// Unique over the whole fake, as comment ids are on the forges.
    pub id: u64,
    pub body: String,
    /// Login of the author: [`TOKEN_USER`] for comments made through the API.
    pub author: String,
}

/// The git ref holding pull request `number`'s head on the remote: `refs/pull/N/head` (GitHub,
/// Gitea) or `refs/merge-requests/N/head` (GitLab).
pub fn head_ref(provider: Provider, number: u64) -> String {
    match provider {
        Provider::Github | Provider::Gitea => format!("refs/pull/{number}/head"),
        Provider::Gitlab => format!("refs/merge-requests/{number}/head"),
    }
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
pub(crate) struct State {
    pub(crate) token: Option<String>,
    pub(crate) requests: Vec<RecordedRequest>,
    pub(crate) pulls: Vec<PullRequest>,
    pub(crate) statuses: Vec<CommitStatus>,
    /// Answers to give instead of the normal one, consumed in order.
    pub(crate) injected: Vec<(u16, Value)>,
    /// Last comment id handed out.
    pub(crate) comment_ids: u64,
}

/// A running fake forge on `127.0.0.1:<random port>` (or [`FakeForge::start_on`]'s address);
/// stops when dropped.
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
        Self::start_on(IpAddr::V4(Ipv4Addr::LOCALHOST), token).await
    }

    /// Starts the fake on `ip` (any 127.x.y.z is loopback on Linux): a forge on another
    /// host than the git remote's 127.0.0.1, for tests about where tokens go.
    pub async fn start_on(ip: IpAddr, token: Option<String>) -> FakeForge {
        let state = Arc::new(Mutex::new(State {
            token,
            ..State::default()
        }));
        let listener = tokio::net::TcpListener::bind((ip, 0))
            .await
            .unwrap_or_else(|e| panic!("bind fake forge on {ip}:0: {e}"));
        let addr = listener.local_addr().expect("fake forge address");
        let shared = state.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let shared = shared.clone();
                async move { routes::handle(&shared, addr, method, uri, headers, body) }
            },
        );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeForge { addr, state, task }
    }

    /// `http://127.0.0.1:PORT` (no trailing slash; the address it listens on).
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
        self.with_pull(provider, repo, number, |pr| pr.state = state)
    }

    /// Runs `change` on one pull request; false when it does not exist.
    fn with_pull(
        &self,
        provider: Provider,
        repo: &str,
        number: u64,
        change: impl FnOnce(&mut PullRequest),
    ) -> bool {
        routes::pull_mut(&mut self.lock(), provider, repo, number)
            .map(change)
            .is_some()
    }

    /// Opens a pull request from `head` into `base` whose head commit is `sha` (what pushing a
    /// branch and pressing "create pull request" does; the test also updates the git remote's
    /// [`head_ref`]). Returns its number.
    pub fn open_pull(
        &self,
        provider: Provider,
        repo: &str,
        head: &str,
        base: &str,
        sha: &str,
    ) -> u64 {
        let mut state = self.lock();
        let number = routes::next_number(&state, provider, repo);
        state.pulls.push(PullRequest {
            provider,
            repo: repo.to_owned(),
            number,
            head: head.to_owned(),
            base: base.to_owned(),
            title: format!("Change {head}"),
            body: String::new(),
            state: PrState::Open,
            comments: Vec::new(),
            url: format!("{}/{repo}/pull/{number}", self.url()),
            head_sha: sha.to_owned(),
        });
        number
    }

    /// Moves a pull request's head to `sha` (a push to its branch). False when it does not exist.
    pub fn set_head(&self, provider: Provider, repo: &str, number: u64, sha: &str) -> bool {
        self.with_pull(provider, repo, number, |pr| pr.head_sha = sha.to_owned())
    }

    /// The comments of a pull request, in order (empty when it does not exist).
    pub fn comments(&self, provider: Provider, repo: &str, number: u64) -> Vec<Comment> {
        self.pull_requests(provider, repo)
            .into_iter()
            .find(|p| p.number == number)
            .map(|p| p.comments)
            .unwrap_or_default()
    }

    /// Adds a comment written by `author` (another user than the token's), as a reviewer would.
    pub fn add_comment(
        &self,
        provider: Provider,
        repo: &str,
        number: u64,
        author: &str,
        body: &str,
    ) {
        let mut guard = self.lock();
        guard.comment_ids += 1;
        let id = guard.comment_ids;
        if let Some(pr) = routes::pull_mut(&mut guard, provider, repo, number) {
            pr.comments.push(Comment {
                id,
                body: body.to_owned(),
                author: author.to_owned(),
            });
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
