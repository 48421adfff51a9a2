//! Pull-request previews end to end: the real reconciler, a real docker-registry, a real git
//! remote holding the pull requests' head refs (`refs/pull/N/head`, GitLab's
//! `refs/merge-requests/N/head`), and the forge stand-in for the API (pull requests, comments,
//! commit statuses). This file holds the setup; the suites are its modules.

use catalog_e2e::suite::sync as sync_common;

mod forges;
mod lifecycle;
mod report;

use catalog_api::labels::PREVIEW_REQUESTED_AT;
use catalog_api::source::PreviewSummary;
use catalog_e2e::forge::{CommitStatus, FakeForge, Provider, head_ref};
use catalog_e2e::git::{BareRepo, Change};
use catalog_e2e::process::eventually;
use catalog_e2e::registry::{ImageFixture, Registry, RegistryConfig};
use serde_json::json;
use sync_common::*;

pub const TOKEN: &str = "forge-s3cret";
pub const REPO: &str = "acme/catalog";

/// An entry declaring `arch`, optionally pinned to `digest`.
pub fn entry(name: &str, url: &str, arch: &str, digest: Option<&str>) -> String {
    let digest = digest
        .map(|d| format!("  digest: {d}\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: automotive.sdv.cloud.redhat.com/v1alpha1\nkind: CatalogImage\nmetadata:\n  name: {name}\nspec:\n  registryUrl: {url}\n{digest}  metadata:\n    architecture: {arch}\n"
    )
}

pub fn path(name: &str) -> String {
    format!("environments/dev/{name}.yaml")
}

pub struct Setup {
    env: Env,
    forge: FakeForge,
    repo: BareRepo,
    registry: Registry,
    provider: Provider,
    /// `{host}/os/base:v1`, amd64 only.
    image: String,
    digest: String,
}

impl Setup {
    /// Three entries on main (`base-0..2`, all the amd64 image), a source `dev` with previews
    /// on and `maxDeletions: 1`, applied.
    async fn start(provider: Provider) -> Setup {
        Setup::start_with(provider, &[]).await
    }

    /// [`Setup::start`] with more reconciler flags.
    async fn start_with(provider: Provider, flags: &[&str]) -> Setup {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let registry = Registry::start(RegistryConfig::default()).await;
        let pushed = registry
            .push_image("os/base:v1", &ImageFixture::new("amd64"))
            .await;
        let image = format!("{}/os/base:v1", registry.host());
        let repo = BareRepo::new("catalog").unwrap();
        let base: Vec<Change> = (0..3)
            .map(|i| {
                let name = format!("base-{i}");
                Change::write(path(&name), entry(&name, &image, "amd64", None))
            })
            .collect();
        repo.commit("main", "base", &base).unwrap();
        let forge = FakeForge::start(TOKEN).await;
        let mut env = Env::start().await;
        env.create_secret("forge", &[("token", TOKEN)]).await;
        let host = registry.host();
        let mut args = vec!["--insecure-registry", host.as_str()];
        args.extend_from_slice(flags);
        env.spawn_reconciler(&args);
        let provider_name = match provider {
            Provider::Github => "github",
            Provider::Gitlab => "gitlab",
            Provider::Gitea => "gitea",
        };
        env.create_source(
            "dev",
            &repo.file_url(),
            json!({
                "maxDeletions": 1,
                "commitStatus": {"provider": provider_name, "apiUrl": forge.api_url(provider),
                    "repository": REPO, "secretRef": {"name": "forge"}},
                "pullRequests": {"enabled": true},
            }),
        )
        .await;
        env.wait_applied("dev", &repo.head("main").unwrap()).await;
        Setup {
            env,
            forge,
            repo,
            registry,
            provider,
            image,
            digest: pushed.digest,
        }
    }

    /// Commits `changes` on `branch` and opens a pull request into main (or, with `number`,
    /// pushes to that pull request): the forge and the remote's head ref both move.
    fn push(&self, number: Option<u64>, branch: &str, changes: &[Change]) -> (u64, String) {
        let sha = self.repo.commit(branch, "change", changes).unwrap();
        let number = match number {
            Some(n) => {
                assert!(self.forge.set_head(self.provider, REPO, n, &sha));
                n
            }
            None => self
                .forge
                .open_pull(self.provider, REPO, branch, "main", &sha),
        };
        self.repo
            .git(&["update-ref", &head_ref(self.provider, number), &sha])
            .unwrap();
        (number, sha)
    }

    /// Gives the source a webhook whose token is `token`.
    async fn enable_webhook(&self, token: &str) {
        self.env.create_secret("hook", &[("token", token)]).await;
        self.env
            .patch_source(
                "dev",
                json!({"spec": {"webhook": {"secretRef": {"name": "hook"}}}}),
            )
            .await;
    }

    /// Posts `body` with `headers` to the source's webhook until the receiver accepts it
    /// (202): it answers 401 until the sync has read the new webhook Secret.
    async fn deliver(&self, what: &str, headers: &[(&str, &str)], body: &'static str) {
        let hook = self.env.webhook_url("dev");
        let client = reqwest::Client::new();
        eventually(
            WAIT,
            &format!("the {what} webhook to be accepted"),
            || async {
                let mut request = client.post(&hook).body(body);
                for (name, value) in headers {
                    request = request.header(*name, *value);
                }
                let response = request.send().await.ok()?;
                (response.status().as_u16() == 202).then_some(())
            },
        )
        .await;
    }

    /// Asks for previews now, as the webhook receiver does on a pull-request event.
    async fn ask(&self) {
        let at = format!("{:.9}", jiff::Timestamp::now());
        self.env
            .patch_source(
                "dev",
                json!({"metadata": {"annotations": {PREVIEW_REQUESTED_AT: at}}}),
            )
            .await;
    }

    /// The preview status posted on `sha`.
    async fn status_of(&self, sha: &str) -> CommitStatus {
        let forge = &self.forge;
        eventually(WAIT, &format!("the preview status of {sha}"), || async {
            forge
                .statuses()
                .into_iter()
                .find(|s| s.sha == sha && s.context.as_deref() == Some("catalog-preview/dev"))
        })
        .await
    }

    /// The one comment of pull request `number` carrying the source's marker, once it
    /// contains `needle` (the comment is posted after the status).
    async fn comment(&self, number: u64, needle: &str) -> String {
        let forge = &self.forge;
        let what = format!("the preview comment of #{number} to contain {needle:?}");
        eventually(WAIT, &what, || async {
            let marked: Vec<String> = forge
                .comments(self.provider, REPO, number)
                .into_iter()
                .filter(|c| c.body.starts_with("<!-- catalog-preview:catalog/dev -->"))
                .map(|c| c.body)
                .collect();
            assert!(marked.len() <= 1, "one preview comment: {marked:#?}");
            marked.into_iter().find(|c| c.contains(needle))
        })
        .await
    }

    /// `status.previews` once `done` holds for it (it is written after the status and the
    /// comment are posted).
    async fn previews(&self, done: impl Fn(&[PreviewSummary]) -> bool) -> Vec<PreviewSummary> {
        let source = self
            .env
            .wait_source("dev", "status.previews", |src| {
                done(
                    src.status
                        .as_ref()
                        .map(|s| s.previews.as_slice())
                        .unwrap_or_default(),
                )
            })
            .await;
        source.status.map(|s| s.previews).unwrap_or_default()
    }
}

pub fn described(status: &CommitStatus) -> &str {
    status.description.as_deref().unwrap_or_default()
}
