//! Pull requests on the catalog repository's forge (GitHub and GitHub Enterprise, GitLab merge
//! requests, Gitea/Forgejo) over their REST APIs with reqwest. Settings come from catalog.yaml
//! `forge`; the API URL, and so where the token goes, is chosen by [`api_url`].

pub mod api_url;
pub mod request;

use catalog_api::redact::{redact_text, redact_url};
use catalog_api::repo::Forge;
use catalog_api::source::ForgeProvider;
use reqwest::redirect::{Attempt, Policy};
use serde_json::Value;

use crate::error::{CaibError, Result};
use crate::transport;
pub use request::{ApiRequest, PrState, PullRequest};

/// Redirects followed at most, like reqwest's default policy.
const MAX_REDIRECTS: usize = 10;

/// The forge answered a redirect caib does not follow with its token.
#[derive(Debug, thiserror::Error)]
#[error(
    "{method} {url}: the forge redirected ({status}) to {location}, on another host or in \
     clear; caib does not send its token there. Set {var} to the new API URL if it is intended",
    var = api_url::ENV_VAR
)]
pub struct RedirectRefused {
    pub method: &'static str,
    pub url: String,
    pub status: u16,
    pub location: String,
}

/// Follows a redirect only on the same host (the port aside, see [`transport`]) and to https
/// or loopback: the token header goes with it, and reqwest strips only `Authorization` on
/// cross-host redirects, never GitLab's `PRIVATE-TOKEN`. Other redirects are handed back as
/// responses and become [`RedirectRefused`].
fn redirect_policy() -> Policy {
    Policy::custom(|attempt: Attempt<'_>| {
        let host = |u: &reqwest::Url| u.host_str().map(str::to_ascii_lowercase);
        let same_host = attempt.previous().last().and_then(host) == host(attempt.url());
        let secure = attempt.url().scheme() == "https" || transport::is_loopback(attempt.url());
        if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error("too many redirects")
        } else if same_host && secure {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}

/// A forge API client for one repository.
pub struct ForgeClient {
    provider: ForgeProvider,
    api_url: String,
    repo: String,
    token: String,
    http: reqwest::Client,
}

/// The variable holding the token for `provider`, after `CAIB_GIT_TOKEN`.
fn provider_token_var(provider: ForgeProvider) -> &'static str {
    match provider {
        ForgeProvider::Github => "GITHUB_TOKEN",
        ForgeProvider::Gitlab => "GITLAB_TOKEN",
        ForgeProvider::Gitea => "GITEA_TOKEN",
    }
}

impl ForgeClient {
    /// Client for catalog.yaml's `forge` of the catalog repository at `remote` (its URL, for
    /// the API host). Fails (exit 3) without a token and (exit 2) when the API URL may not
    /// carry it, before anything is pushed, so a change is never left half-submitted.
    pub fn new(forge: &Forge, remote: &str) -> Result<ForgeClient> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let provider = forge.provider;
        let env = std::env::var(api_url::ENV_VAR).ok();
        let api_url = api_url::resolve(forge, remote, env.as_deref())
            .map_err(|e| CaibError::Usage(e.to_string()))?;
        let var = provider_token_var(provider);
        let token = ["CAIB_GIT_TOKEN", var]
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|t| !t.is_empty()))
            .ok_or_else(|| {
                CaibError::Auth(format!(
                    "no token to open pull requests on {}: set CAIB_GIT_TOKEN or {var}",
                    forge.repo
                ))
            })?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("caib/", env!("CARGO_PKG_VERSION")))
            .timeout(std::time::Duration::from_secs(30))
            .redirect(redirect_policy())
            .build()
            .map_err(|e| CaibError::Other(anyhow::anyhow!("cannot build an HTTP client: {e}")))?;
        Ok(ForgeClient {
            provider,
            api_url,
            repo: forge.repo.clone(),
            token,
            http,
        })
    }

    /// The open pull request whose head is `head`, if any. Gitea cannot filter by head:
    /// its open pull requests are read page by page.
    pub async fn find_open(&self, head: &str) -> Result<Option<PullRequest>> {
        for page in 1..=request::MAX_PAGES {
            let req = request::find_open(self.provider, &self.repo, head, page);
            let list = self.send(req).await?;
            if let Some(found) = request::pick_open(self.provider, &list, head) {
                return Ok(Some(found));
            }
            let full = list
                .as_array()
                .is_some_and(|l| l.len() >= request::PAGE_SIZE);
            if self.provider != ForgeProvider::Gitea || !full {
                break;
            }
        }
        Ok(None)
    }

    /// Opens a pull request; `Ok(None)` when the forge answers that one already exists for
    /// `head` (GitHub 422, GitLab and Gitea 409): someone, or an earlier run, opened it since
    /// [`ForgeClient::find_open`] looked.
    pub async fn create(
        &self,
        head: &str,
        base: &str,
        title: &str,
        body: &str,
    ) -> Result<Option<PullRequest>> {
        let req = request::create(self.provider, &self.repo, head, base, title, body);
        match self.exchange(req).await? {
            Answer::Ok(value) => self.parse(&value).map(Some),
            Answer::Refused(refused) if refused.already_exists(self.provider) => {
                tracing::info!("{}", refused.what);
                Ok(None)
            }
            Answer::Refused(refused) => Err(self.refused(refused)),
        }
    }

    pub async fn update(&self, number: u64, title: &str, body: &str) -> Result<PullRequest> {
        let value = self
            .send(request::update(
                self.provider,
                &self.repo,
                number,
                title,
                body,
            ))
            .await?;
        self.parse(&value)
    }

    pub async fn comment(&self, number: u64, text: &str) -> Result<()> {
        self.send(request::comment(self.provider, &self.repo, number, text))
            .await?;
        Ok(())
    }

    pub async fn get(&self, number: u64) -> Result<PullRequest> {
        let value = self
            .send(request::get(self.provider, &self.repo, number))
            .await?;
        self.parse(&value)
    }

    /// Opens the pull request for `head`, or updates `existing` (the one already open, from
    /// [`ForgeClient::find_open`]) and says so in a comment: re-running a command never opens
    /// a second one. Returns it and whether it was created.
    pub async fn open_or_update(
        &self,
        existing: Option<&PullRequest>,
        head: &str,
        base: &str,
        title: &str,
        body: &str,
    ) -> Result<(PullRequest, bool)> {
        let existing = match existing {
            Some(existing) => existing.clone(),
            None => match self.create(head, base, title, body).await? {
                Some(created) => return Ok((created, true)),
                None => self.find_open(head).await?.ok_or_else(|| {
                    CaibError::Conflict(format!(
                        "{}: the forge says a pull request from {head} already exists, but none \
                         is open from it; look at {}'s pull requests for {head}",
                        redact_url(&self.api_url),
                        self.repo
                    ))
                })?,
            },
        };
        let updated = self.update(existing.number, title, body).await?;
        self.comment(
            existing.number,
            "Updated by `caib`: the branch was re-pushed with the latest change.",
        )
        .await?;
        Ok((updated, false))
    }

    /// The pull request in `value`; its URL redacted, as it is only ever printed.
    fn parse(&self, value: &Value) -> Result<PullRequest> {
        let mut pr = request::parse_pr(self.provider, value).ok_or_else(|| {
            CaibError::Other(anyhow::anyhow!(
                "{}: unexpected pull request response: {}",
                redact_url(&self.api_url),
                value.to_string().chars().take(300).collect::<String>()
            ))
        })?;
        pr.url = redact_url(&pr.url).into_owned();
        Ok(pr)
    }

    async fn send(&self, req: ApiRequest) -> Result<Value> {
        match self.exchange(req).await? {
            Answer::Ok(value) => Ok(value),
            Answer::Refused(refused) => Err(self.refused(refused)),
        }
    }

    /// The error for a refused request: exit 3 for 401/403, else the forge's own words.
    fn refused(&self, refused: Refused) -> CaibError {
        match refused.status {
            401 | 403 => CaibError::Auth(format!(
                "{} (check the token in CAIB_GIT_TOKEN or {})",
                refused.what,
                provider_token_var(self.provider)
            )),
            _ => CaibError::Other(anyhow::anyhow!("{}", refused.what)),
        }
    }

    /// Sends `req`: its JSON answer, or the forge's refusal (status and message).
    async fn exchange(&self, req: ApiRequest) -> Result<Answer> {
        let url = format!("{}{}", self.api_url, req.path);
        let method = reqwest::Method::from_bytes(req.method.as_bytes()).expect("static method");
        let mut builder = self.http.request(method, &url);
        builder = match self.provider {
            ForgeProvider::Github => builder
                .bearer_auth(&self.token)
                .header("Accept", "application/vnd.github+json")
                .header("X-GitHub-Api-Version", "2022-11-28"),
            ForgeProvider::Gitlab => builder.header("PRIVATE-TOKEN", &self.token),
            ForgeProvider::Gitea => {
                builder.header("Authorization", format!("token {}", self.token))
            }
        };
        if let Some(body) = &req.body {
            builder = builder.json(body);
        }
        let shown = redact_url(&url).into_owned();
        let response = builder.send().await.map_err(|e| {
            let e = redact_text(&e.to_string()).into_owned();
            CaibError::Other(anyhow::anyhow!("{} {shown}: {e}", req.method))
        })?;
        let status = response.status();
        if status.is_redirection() {
            return Err(CaibError::Other(
                RedirectRefused {
                    method: req.method,
                    // The last URL asked: a same-host redirect may have been followed first.
                    url: redact_url(response.url().as_str()).into_owned(),
                    status: status.as_u16(),
                    location: location(&response),
                }
                .into(),
            ));
        }
        let text = response.text().await.unwrap_or_default();
        if status.is_success() {
            return Ok(Answer::Ok(
                serde_json::from_str(&text).unwrap_or(Value::Null),
            ));
        }
        let message = request::error_message(&text);
        Ok(Answer::Refused(Refused {
            status: status.as_u16(),
            what: format!("{} {shown}: {} {message}", req.method, status.as_u16()),
            message,
        }))
    }
}

/// What the forge answered.
enum Answer {
    Ok(Value),
    Refused(Refused),
}

/// A request the forge refused: its status, its message, and both with the request for
/// messages.
struct Refused {
    status: u16,
    message: String,
    what: String,
}

impl Refused {
    fn already_exists(&self, provider: ForgeProvider) -> bool {
        request::already_exists(provider, self.status, &self.message)
    }
}

/// Where a redirect points, redacted, for [`RedirectRefused`].
fn location(response: &reqwest::Response) -> String {
    let value = response.headers().get(reqwest::header::LOCATION);
    let text = value
        .and_then(|v| v.to_str().ok())
        .unwrap_or("(no Location)");
    redact_url(text).into_owned()
}
