//! Pull requests on the catalog repository's forge (GitHub and GitHub Enterprise, GitLab merge
//! requests, Gitea/Forgejo) over their REST APIs with reqwest. Settings come from catalog.yaml
//! `forge`; `CAIB_FORGE_API_URL` overrides the API URL (enterprise installs, tests).

pub mod request;

use catalog_api::repo::Forge;
use catalog_api::source::ForgeProvider;
use serde_json::Value;

use crate::error::{CaibError, Result};
pub use request::{ApiRequest, PrState, PullRequest};

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
    /// Client for catalog.yaml's `forge`. Fails (exit 3) without a token, before anything is
    /// pushed, so a change is never left half-submitted for want of credentials.
    pub fn new(forge: &Forge) -> Result<ForgeClient> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let provider = forge.provider;
        let api_url = std::env::var("CAIB_FORGE_API_URL")
            .ok()
            .filter(|v| !v.is_empty())
            .or_else(|| forge.api_url.clone())
            .or_else(|| request::default_api_url(provider).map(str::to_owned))
            .ok_or_else(|| {
                CaibError::Usage(
                    "catalog.yaml forge.apiUrl is required for gitea (e.g. https://gitea.example.com/api/v1)"
                        .into(),
                )
            })?;
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
            .build()
            .map_err(|e| CaibError::Other(anyhow::anyhow!("cannot build an HTTP client: {e}")))?;
        Ok(ForgeClient {
            provider,
            api_url: api_url.trim_end_matches('/').to_owned(),
            repo: forge.repo.clone(),
            token,
            http,
        })
    }

    /// The open pull request whose head is `head`, if any.
    pub async fn find_open(&self, head: &str) -> Result<Option<PullRequest>> {
        let list = self
            .send(request::find_open(self.provider, &self.repo, head))
            .await?;
        Ok(request::pick_open(self.provider, &list, head))
    }

    pub async fn create(
        &self,
        head: &str,
        base: &str,
        title: &str,
        body: &str,
    ) -> Result<PullRequest> {
        let value = self
            .send(request::create(
                self.provider,
                &self.repo,
                head,
                base,
                title,
                body,
            ))
            .await?;
        self.parse(&value)
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
        if let Some(existing) = existing {
            let updated = self.update(existing.number, title, body).await?;
            self.comment(
                existing.number,
                "Updated by `caib`: the branch was re-pushed with the latest change.",
            )
            .await?;
            return Ok((updated, false));
        }
        Ok((self.create(head, base, title, body).await?, true))
    }

    fn parse(&self, value: &Value) -> Result<PullRequest> {
        request::parse_pr(self.provider, value).ok_or_else(|| {
            CaibError::Other(anyhow::anyhow!(
                "{}: unexpected pull request response: {}",
                self.api_url,
                value.to_string().chars().take(300).collect::<String>()
            ))
        })
    }

    async fn send(&self, req: ApiRequest) -> Result<Value> {
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
        let response = builder
            .send()
            .await
            .map_err(|e| CaibError::Other(anyhow::anyhow!("{} {url}: {e}", req.method)))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if status.is_success() {
            return serde_json::from_str(&text).or(Ok(Value::Null));
        }
        let message = request::error_message(&text);
        let what = format!("{} {url}: {} {message}", req.method, status.as_u16());
        Err(match status.as_u16() {
            401 | 403 => CaibError::Auth(format!(
                "{what} (check the token in CAIB_GIT_TOKEN or {})",
                provider_token_var(self.provider)
            )),
            _ => CaibError::Other(anyhow::anyhow!("{what}")),
        })
    }
}
