//! Smart HTTP remotes: basic auth (or a bearer token) in front of `git http-backend` run as
//! a CGI.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{BareRepo, git_binary};

/// Smart HTTP git server with basic auth, or with a bearer token
/// ([`SmartHttp::start_with_bearer_token`]), in front of `git http-backend` (an axum
/// handler), serving every repository under a base path. Stops when dropped.
pub struct SmartHttp {
    addr: SocketAddr,
    state: Arc<HttpState>,
    task: tokio::task::JoinHandle<()>,
}

struct HttpState {
    base: PathBuf,
    username: String,
    password: String,
    /// When set, only `Authorization: Bearer <token>` is accepted (no basic auth), the way
    /// forges accept tokens from Flux's `bearerToken`.
    bearer_token: Option<String>,
    reachable: AtomicBool,
    requests: AtomicU64,
}

impl SmartHttp {
    /// Serves `base_path` on a free port of 127.0.0.1 requiring `username`/`password`.
    /// Must be called inside a tokio runtime.
    pub async fn start(
        base_path: &Path,
        username: &str,
        password: &str,
    ) -> anyhow::Result<SmartHttp> {
        Self::serve(base_path, username, password, None).await
    }

    /// Serves `base_path` on a free port of 127.0.0.1 requiring the header
    /// `Authorization: Bearer <token>`; basic auth is refused (401 with a `Bearer`
    /// challenge). Must be called inside a tokio runtime.
    pub async fn start_with_bearer_token(
        base_path: &Path,
        token: &str,
    ) -> anyhow::Result<SmartHttp> {
        Self::serve(base_path, "", "", Some(token.to_string())).await
    }

    async fn serve(
        base_path: &Path,
        username: &str,
        password: &str,
        bearer_token: Option<String>,
    ) -> anyhow::Result<SmartHttp> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(HttpState {
            base: base_path.to_path_buf(),
            username: username.into(),
            password: password.into(),
            bearer_token,
            reachable: AtomicBool::new(true),
            requests: AtomicU64::new(0),
        });
        let app = axum::Router::new()
            .fallback(cgi_handler)
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(SmartHttp { addr, state, task })
    }

    /// `http://127.0.0.1:PORT/<name>.git` (no credentials in the URL).
    pub fn url(&self, repo: &BareRepo) -> String {
        format!("http://{}/{}.git", self.addr, repo.name())
    }

    /// `http://user:pass@127.0.0.1:PORT/<name>.git`, for the git CLI.
    pub fn url_with_credentials(&self, repo: &BareRepo) -> String {
        format!(
            "http://{}:{}@{}/{}.git",
            self.state.username,
            self.state.password,
            self.addr,
            repo.name()
        )
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// While false every request is answered 503 Service Unavailable.
    pub fn set_reachable(&self, reachable: bool) {
        self.state.reachable.store(reachable, Ordering::SeqCst);
    }

    /// Requests served so far (authenticated or not).
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::SeqCst)
    }
}

impl Drop for SmartHttp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn authorized(state: &HttpState, headers: &HeaderMap) -> bool {
    use base64::Engine as _;
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    if let Some(token) = &state.bearer_token {
        return value.strip_prefix("Bearer ") == Some(token.as_str());
    }
    let Some(encoded) = value.strip_prefix("Basic ") else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    decoded == format!("{}:{}", state.username, state.password).as_bytes()
}

async fn cgi_handler(State(state): State<Arc<HttpState>>, request: Request) -> Response {
    state.requests.fetch_add(1, Ordering::SeqCst);
    if !state.reachable.load(Ordering::SeqCst) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "remote made unreachable by the test\n",
        )
            .into_response();
    }
    if !authorized(&state, request.headers()) {
        return Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .header(
                header::WWW_AUTHENTICATE,
                if state.bearer_token.is_some() {
                    "Bearer realm=\"git\""
                } else {
                    "Basic realm=\"git\""
                },
            )
            .body(Body::from("authentication required\n"))
            .unwrap();
    }
    let (parts, body) = request.into_parts();
    let body: Bytes = match axum::body::to_bytes(body, 512 * 1024 * 1024).await {
        Ok(b) => b,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let header_str = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let mut cmd = tokio::process::Command::new(git_binary());
    cmd.arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", &state.base)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("PATH_INFO", parts.uri.path())
        .env("QUERY_STRING", parts.uri.query().unwrap_or_default())
        .env("REQUEST_METHOD", parts.method.as_str())
        .env("CONTENT_TYPE", header_str("content-type"))
        .env("CONTENT_LENGTH", body.len().to_string())
        .env(
            "REMOTE_USER",
            // http-backend refuses pushes without a user; a token has none.
            if state.username.is_empty() {
                "bearer"
            } else {
                &state.username
            },
        )
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("GIT_PROTOCOL", header_str("git-protocol"))
        .env("HTTP_CONTENT_ENCODING", header_str("content-encoding"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot run git http-backend: {e}"),
            )
                .into_response();
        }
    };
    let mut stdin = child.stdin.take().unwrap();
    let writer = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt as _;
        let _ = stdin.write_all(&body).await;
    });
    let output = match child.wait_with_output().await {
        Ok(o) => o,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    let _ = writer.await;
    parse_cgi(&output.stdout)
}

/// Turns CGI output (headers, blank line, body) into an HTTP response.
fn parse_cgi(out: &[u8]) -> Response {
    let (head, body) = match find_subslice(out, b"\r\n\r\n") {
        Some(i) => (&out[..i], &out[i + 4..]),
        None => match find_subslice(out, b"\n\n") {
            Some(i) => (&out[..i], &out[i + 2..]),
            None => (out, &[][..]),
        },
    };
    let mut builder = Response::builder().status(StatusCode::OK);
    for line in String::from_utf8_lossy(head).lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value
                .split_whitespace()
                .next()
                .and_then(|c| c.parse::<u16>().ok())
                .and_then(|c| StatusCode::from_u16(c).ok())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            builder = builder.status(code);
        } else if let Ok(v) = HeaderValue::from_str(value) {
            builder = builder.header(name.trim(), v);
        }
    }
    builder
        .body(Body::from(body.to_vec()))
        .unwrap_or_else(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response())
}

fn find_subslice(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::run_git;

    /// Bearer mode: the git CLI gets in with `http.extraHeader`, and not with a wrong token
    /// or with basic auth.
    #[tokio::test(flavor = "multi_thread")]
    async fn bearer_token_mode_wants_the_header() {
        let repo = BareRepo::from_template("catalog").unwrap();
        let http = SmartHttp::start_with_bearer_token(repo.base_path(), "t0k")
            .await
            .unwrap();
        let url = http.url(&repo);
        let basic = url.replace("http://", "http://user:t0k@");
        let path = repo.path().to_path_buf();
        let head = repo.head("main").unwrap();
        tokio::task::spawn_blocking(move || {
            let ls_remote = |header: &str, url: &str| {
                run_git(
                    &path,
                    &[
                        "-c",
                        &format!("http.extraHeader={header}"),
                        "ls-remote",
                        url,
                    ],
                    &[("GIT_TERMINAL_PROMPT", "0")],
                )
            };
            let refs = ls_remote("Authorization: Bearer t0k", &url).unwrap();
            assert!(refs.contains(&head), "{refs}");
            assert!(ls_remote("Authorization: Bearer wrong", &url).is_err());
            assert!(ls_remote("X-Nothing: 1", &basic).is_err());
        })
        .await
        .unwrap();
    }
}
