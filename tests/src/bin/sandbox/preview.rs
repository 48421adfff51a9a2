//! The review flow's preview: before anyone merges the pull request `caib catalog publish`
//! opened, the reconciler evaluates its head and posts on it what merging would do (a commit
//! status `catalog-preview/catalog-dev` and one comment with a table), and the cluster holds
//! nothing of it yet.

use anyhow::{Context, bail};
use catalog_e2e::forge::{CommitStatus, PullRequest, head_ref};
use kube::Api;

use super::cluster::{self, BUILD_NAME, SOURCE};
use super::walkthrough::Env;
use super::{done, step};

impl Env<'_> {
    /// Shows pull request `pr`'s preview as its page would (status and comment), and that
    /// nothing from it is in the cluster before it is merged.
    pub async fn preview(&self, pr: &PullRequest) -> anyhow::Result<()> {
        let head = self.hold_head(pr)?;
        step(&format!(
            "Delivering the pull_request webhook (asking CatalogSource {SOURCE} for previews)"
        ));
        cluster::request_preview(self.client).await?;
        let status = self.preview_status(&head).await?;
        step(&format!(
            "Commit status on the pull request's head {} (what the checks list shows)",
            short(&head)
        ));
        println!(
            "  {}: {} — {}",
            status.context.as_deref().unwrap_or_default(),
            status.state,
            status.description.as_deref().unwrap_or_default()
        );
        let comment = self.preview_comment(pr, &head).await?;
        step(&format!(
            "The preview's comment on pull request #{} (edited in place on every push)",
            pr.number
        ));
        // The first line is the hidden marker the reconciler finds its comment by.
        for line in comment.lines().skip(1) {
            println!("  | {line}");
        }
        cluster::wait_previewed(self.client, pr.number, &head).await?;
        self.caib(&["catalog", "status", SOURCE]).await?;
        self.not_in_cluster_yet().await
    }

    /// What GitHub does itself on every push to a pull request: records its head commit and
    /// keeps the remote's `refs/pull/N/head` on it. The stand-in and the bare remote are told.
    fn hold_head(&self, pr: &PullRequest) -> anyhow::Result<String> {
        let head = self
            .repo
            .head(&format!("refs/heads/{}", pr.head))
            .with_context(|| format!("branch {} is not in the remote", pr.head))?;
        if !self.forge.set_head(pr.provider, &pr.repo, pr.number, &head) {
            bail!(
                "pull request #{} vanished from the forge stand-in",
                pr.number
            );
        }
        let pull_ref = head_ref(pr.provider, pr.number);
        self.repo.git(&["update-ref", &pull_ref, &head])?;
        done(&format!(
            "{pull_ref} → {} on the remote (GitHub keeps this ref; the stand-in is told)",
            short(&head)
        ));
        Ok(head)
    }

    /// The `catalog-preview/catalog-dev` status posted on `head`.
    async fn preview_status(&self, head: &str) -> anyhow::Result<CommitStatus> {
        let context = format!("catalog-preview/{SOURCE}");
        let posted = || async {
            Ok::<_, anyhow::Error>(
                self.forge
                    .statuses()
                    .into_iter()
                    .find(|s| s.sha == head && s.context.as_deref() == Some(context.as_str())),
            )
        };
        cluster::until(&format!("commit status {context} on {head}"), posted).await
    }

    /// The body of the preview's comment on `pr` once it describes `head` (the comment is
    /// posted after the status).
    async fn preview_comment(&self, pr: &PullRequest, head: &str) -> anyhow::Result<String> {
        let marker = format!("<!-- catalog-preview:default/{SOURCE} -->");
        let at = format!("at `{}`", short(head));
        let posted = || async {
            Ok::<_, anyhow::Error>(
                self.forge
                    .comments(pr.provider, &pr.repo, pr.number)
                    .into_iter()
                    .map(|c| c.body)
                    .find(|body| body.starts_with(&marker) && body.contains(&at)),
            )
        };
        let what = format!("the preview comment on pull request #{}", pr.number);
        cluster::until(&what, posted).await
    }

    /// The published entry is not a CatalogImage yet: a preview writes nothing to the cluster
    /// but the source's `status.previews`.
    async fn not_in_cluster_yet(&self) -> anyhow::Result<()> {
        self.kubectl(&["get", "catalogimages"]).await?;
        let images: Api<catalog_api::CatalogImage> =
            Api::namespaced(self.client.clone(), "default");
        if images.get_opt(BUILD_NAME).await?.is_some() {
            bail!("CatalogImage {BUILD_NAME} exists before its pull request is merged");
        }
        done(&format!(
            "{BUILD_NAME} is not in the cluster: nothing from a pull request is applied before it is merged"
        ));
        Ok(())
    }
}

/// The 12-character short form of a commit, as the preview comment shows it.
fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}
