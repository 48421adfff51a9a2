//! Commit statuses on the forge (GitHub, GitLab, Gitea/Forgejo REST APIs via reqwest), so a
//! pull request or commit shows whether its catalog revision applied.
//!
//! - GitHub: `POST {api}/repos/{owner}/{repo}/statuses/{sha}` `{state, description, context}`
//! - GitLab: `POST {api}/projects/{url-encoded path}/statuses/{sha}` `{state, description, name}`
//! - Gitea:  `POST {api}/repos/{owner}/{repo}/statuses/{sha}` `{state, description, context}`
//!
//! Pull-request previews also list open pull requests ([`pulls`]) and keep one comment per
//! pull request and source ([`comments`]), with the same client and token.

pub mod comments;
mod http;
pub mod pulls;

use std::time::Duration;

use reqwest::Method;

use catalog_api::redact::redact_url;
use catalog_api::source::ForgeProvider;

/// Commit status value, mapped to each forge's vocabulary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitState {
    Pending,
    Success,
    Failure,
}

impl CommitState {
    fn wire(self, provider: ForgeProvider) -> &'static str {
        match (self, provider) {
            (CommitState::Pending, _) => "pending",
            (CommitState::Success, _) => "success",
            (CommitState::Failure, ForgeProvider::Gitlab) => "failed",
            (CommitState::Failure, _) => "failure",
        }
    }
}

/// One status to send.
#[derive(Clone, Debug)]
pub struct StatusReport {
    pub provider: ForgeProvider,
    pub api_url: String,
    /// `owner/name` (or GitLab project path); derived from `repo_url` when absent.
    pub repository: Option<String>,
    pub repo_url: String,
    pub sha: String,
    pub state: CommitState,
    pub description: String,
    pub context: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ForgeError {
    #[error("cannot tell the forge repository from {0:?}: set spec.commitStatus.repository")]
    NoRepository(String),
    #[error("commit status request to {url} failed: {message}")]
    Http { url: String, message: String },
    #[error("the forge answered {status} to {url}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("the forge's answer to {url} is not usable: {message}")]
    Invalid { url: String, message: String },
    #[error("the forge's next page after {url} is on another host ({next}); not followed")]
    OffSite { url: String, next: String },
}

/// Where a source's forge calls go: the provider, its API base and the repository on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub provider: ForgeProvider,
    /// API base URL without a trailing `/`.
    pub api_url: String,
    /// `owner/name` or the GitLab project path.
    pub repository: String,
}

impl Target {
    /// From `spec.commitStatus` and the source's URL (the repository is derived from the URL
    /// when the spec does not name it).
    pub fn new(
        spec: &catalog_api::source::CommitStatusSpec,
        repo_url: &str,
    ) -> Result<Target, ForgeError> {
        Target::resolve(
            spec.provider,
            &spec.api_url,
            spec.repository.as_deref(),
            repo_url,
        )
    }

    fn resolve(
        provider: ForgeProvider,
        api_url: &str,
        repository: Option<&str>,
        repo_url: &str,
    ) -> Result<Target, ForgeError> {
        let repository = repository
            .map(str::to_string)
            .or_else(|| repository_from_url(repo_url))
            .ok_or_else(|| ForgeError::NoRepository(redact_url(repo_url).into_owned()))?;
        Ok(Target {
            provider,
            api_url: api_url.trim_end_matches('/').to_string(),
            repository,
        })
    }

    /// `{api}/repos/{owner}/{name}` (GitHub, Gitea) or `{api}/projects/{encoded path}` (GitLab).
    fn repo_url(&self) -> String {
        match self.provider {
            ForgeProvider::Github | ForgeProvider::Gitea => {
                format!("{}/repos/{}", self.api_url, self.repository)
            }
            ForgeProvider::Gitlab => {
                format!(
                    "{}/projects/{}",
                    self.api_url,
                    catalog_api::percent::encode(&self.repository)
                )
            }
        }
    }
}

/// Shared HTTP client for forge calls.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
}

impl Default for Client {
    fn default() -> Self {
        Client::new()
    }
}

impl Client {
    pub fn new() -> Client {
        // No redirect is followed: reqwest keeps GitLab's PRIVATE-TOKEN (and any custom
        // header) on a redirect to another host, so a forge, or whoever answers for it, could
        // send the token anywhere. A status API has no reason to redirect; a 3xx is reported.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(15))
            .user_agent("catalog-reconciler")
            .build()
            .unwrap_or_default();
        Client { http }
    }

    /// Sends one status.
    pub async fn send(&self, report: &StatusReport, token: &str) -> Result<(), ForgeError> {
        let target = Target::resolve(
            report.provider,
            &report.api_url,
            report.repository.as_deref(),
            &report.repo_url,
        )?;
        // GitHub refuses a description over 140 characters; the others take it too.
        let description: String = report.description.chars().take(140).collect();
        let state = report.state.wire(report.provider);
        let name_field = match report.provider {
            ForgeProvider::Gitlab => "name",
            ForgeProvider::Github | ForgeProvider::Gitea => "context",
        };
        let mut body = serde_json::json!({"state": state, "description": description});
        body[name_field] = report.context.clone().into();
        let url = format!("{}/statuses/{}", target.repo_url(), report.sha);
        self.call(report.provider, token)
            .send(Method::POST, &url, Some(&body))
            .await?;
        Ok(())
    }

    fn call<'a>(&'a self, provider: ForgeProvider, token: &'a str) -> http::Call<'a> {
        http::Call {
            http: &self.http,
            provider,
            token,
        }
    }
}

/// `owner/name` (or `group/sub/name`) from an https, ssh or scp-like repository URL.
pub fn repository_from_url(url: &str) -> Option<String> {
    let path = if let Some((_, rest)) = url.split_once("://") {
        rest.split_once('/')?.1.to_string()
    } else {
        url.split_once(':')?.1.to_string()
    };
    let path = path.trim_matches('/').trim_end_matches(".git").to_string();
    path.contains('/').then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A listener that answers every request with `answer` and sends each request's head.
    fn listener(answer: String) -> (u16, std::sync::mpsc::Receiver<String>) {
        use std::io::{Read as _, Write as _};
        let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = server.local_addr().unwrap().port();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for mut stream in server.incoming().flatten() {
                let mut buf = [0u8; 8192];
                let n = stream.read(&mut buf).unwrap_or(0);
                let _ = tx.send(String::from_utf8_lossy(&buf[..n]).into_owned());
                let _ = stream.write_all(answer.as_bytes());
            }
        });
        (port, rx)
    }

    #[tokio::test]
    async fn the_token_never_follows_a_redirect() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (elsewhere, stolen) =
            listener("HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n".into());
        let (forge, asked) = listener(format!(
            "HTTP/1.1 307 Temporary Redirect\r\nlocation: http://localhost:{elsewhere}/api/v4/x\r\ncontent-length: 0\r\n\r\n"
        ));
        let report = StatusReport {
            provider: ForgeProvider::Gitlab,
            api_url: format!("http://127.0.0.1:{forge}/api/v4"),
            repository: Some("acme/catalog".into()),
            repo_url: "https://gitlab.example/acme/catalog.git".into(),
            sha: "1".repeat(40),
            state: CommitState::Success,
            description: "ok".into(),
            context: "catalog/dev".into(),
        };
        let error = Client::new().send(&report, "s3cret").await.unwrap_err();
        let first = asked.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(
            first.to_ascii_lowercase().contains("private-token: s3cret"),
            "premise: {first}"
        );
        assert!(error.to_string().contains("307"), "{error}");
        assert!(
            stolen.recv_timeout(Duration::from_millis(500)).is_err(),
            "the redirect target received a request"
        );
    }

    #[tokio::test]
    async fn a_next_page_on_another_host_is_not_followed_with_the_token() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (elsewhere, stolen) = listener("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n[]".into());
        let page = r#"[{"number": 1, "state": "open", "head": {"sha": "x", "ref": "f"}, "base": {"ref": "main"}}]"#;
        let (forge, asked) = listener(format!(
            "HTTP/1.1 200 OK\r\nlink: <http://localhost:{elsewhere}/repos/a/b/pulls?page=2>; rel=\"next\"\r\ncontent-length: {}\r\n\r\n{page}",
            page.len()
        ));
        let target = Target {
            provider: ForgeProvider::Github,
            api_url: format!("http://127.0.0.1:{forge}"),
            repository: "a/b".into(),
        };
        let error = Client::new()
            .open_pulls(&target, "main", "s3cret")
            .await
            .unwrap_err();
        let first = asked.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(first.contains("base=main"), "premise: {first}");
        assert!(matches!(error, ForgeError::OffSite { .. }), "{error}");
        assert!(
            stolen.recv_timeout(Duration::from_millis(500)).is_err(),
            "the other host received a request"
        );
    }

    #[tokio::test]
    async fn an_oversized_answer_is_an_error_not_an_allocation() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let body = format!("[{}]", " ".repeat(http::MAX_ANSWER_BYTES));
        let (forge, _asked) = listener(format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        ));
        let target = Target {
            provider: ForgeProvider::Gitea,
            api_url: format!("http://127.0.0.1:{forge}/api/v1"),
            repository: "a/b".into(),
        };
        let error = Client::new()
            .open_pulls(&target, "main", "t")
            .await
            .unwrap_err();
        assert!(error.to_string().contains("over 4194304 bytes"), "{error}");
    }

    #[test]
    fn repositories_from_urls() {
        assert_eq!(
            repository_from_url("https://github.com/acme/cat.git").as_deref(),
            Some("acme/cat")
        );
        assert_eq!(
            repository_from_url("git@gitlab.com:grp/sub/cat.git").as_deref(),
            Some("grp/sub/cat")
        );
        assert_eq!(
            repository_from_url("ssh://git@host:22/acme/cat").as_deref(),
            Some("acme/cat")
        );
        assert_eq!(
            repository_from_url("file:///tmp/x.git"),
            Some("tmp/x".into())
        );
        assert_eq!(
            catalog_api::percent::encode("grp/sub/cat"),
            "grp%2Fsub%2Fcat"
        );
    }
}
