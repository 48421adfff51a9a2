//! Merging a pull request as a reviewer pressing "Merge" does: the base branch of the real git
//! remote moves to the pull request's head, and the stand-in marks the pull request merged.
//! Kept apart from the HTTP routes: only code holding the remote (a test, the sandbox) merges.

use anyhow::{Context as _, bail};

use super::{FakeForge, PrState, Provider};
use crate::git::BareRepo;

impl FakeForge {
    /// Merges open pull request `number` of `repo` into its base branch on `remote` by
    /// fast-forwarding the base to the head (what GitHub's "rebase and merge" leaves for an
    /// up-to-date branch), then marks it merged. Returns the merged commit. Fails, naming the
    /// branches, when the pull request is not open or its base has moved on since it was
    /// opened.
    pub fn merge_into(
        &self,
        provider: Provider,
        repo: &str,
        number: u64,
        remote: &BareRepo,
    ) -> anyhow::Result<String> {
        let pr = self
            .pull_requests(provider, repo)
            .into_iter()
            .find(|p| p.number == number)
            .with_context(|| format!("no pull request #{number} in {repo}"))?;
        if pr.state != PrState::Open {
            bail!(
                "pull request #{number} of {repo} is {:?}, not open",
                pr.state
            );
        }
        let head = remote
            .head(&format!("refs/heads/{}", pr.head))
            .with_context(|| {
                format!(
                    "branch {} of pull request #{number} is not in the remote",
                    pr.head
                )
            })?;
        let base_ref = format!("refs/heads/{}", pr.base);
        let base = remote
            .head(&base_ref)
            .with_context(|| format!("base branch {} is not in the remote", pr.base))?;
        if remote
            .git(&["merge-base", "--is-ancestor", &base, &head])
            .is_err()
        {
            bail!(
                "pull request #{number} ({}) does not descend from {} at {base}: update the branch first",
                pr.head,
                pr.base
            );
        }
        remote.git(&["update-ref", &base_ref, &head, &base])?;
        self.merge(provider, repo, number);
        Ok(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::Change;

    /// Opens a pull request from `head` to main through the GitHub API, as caib does.
    async fn open(forge: &FakeForge, head: &str) -> u64 {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let created: serde_json::Value = reqwest::Client::new()
            .post(format!("{}/repos/acme/cat/pulls", forge.github_url()))
            .json(&serde_json::json!({"title": head, "head": head, "base": "main"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        created["number"].as_u64().unwrap()
    }

    #[tokio::test]
    async fn merge_moves_the_base_branch_and_marks_the_pull_request() {
        let forge = FakeForge::start_with(None).await;
        let remote = BareRepo::from_template("catalog").unwrap();
        let head = remote
            .commit("caib/a", "a", &[Change::write("a.txt", "a")])
            .unwrap();
        let number = open(&forge, "caib/a").await;

        let merged = forge
            .merge_into(Provider::Github, "acme/cat", number, &remote)
            .unwrap();
        assert_eq!(merged, head);
        assert_eq!(
            remote.head("refs/heads/main").as_deref(),
            Some(head.as_str())
        );
        let pr = &forge.pull_requests(Provider::Github, "acme/cat")[0];
        assert_eq!(pr.state, PrState::Merged);
        let again = forge.merge_into(Provider::Github, "acme/cat", number, &remote);
        assert!(again.unwrap_err().to_string().contains("not open"));
    }

    #[tokio::test]
    async fn a_pull_request_behind_its_base_is_not_merged() {
        let forge = FakeForge::start_with(None).await;
        let remote = BareRepo::from_template("catalog").unwrap();
        remote
            .commit("caib/b", "b", &[Change::write("b.txt", "b")])
            .unwrap();
        let number = open(&forge, "caib/b").await;
        let main = remote
            .commit("main", "elsewhere", &[Change::write("c.txt", "c")])
            .unwrap();

        let err = forge
            .merge_into(Provider::Github, "acme/cat", number, &remote)
            .unwrap_err();
        assert!(
            err.to_string().contains("does not descend from main"),
            "{err}"
        );
        assert_eq!(remote.head("refs/heads/main"), Some(main));
        let pr = &forge.pull_requests(Provider::Github, "acme/cat")[0];
        assert_eq!(pr.state, PrState::Open);
    }
}
