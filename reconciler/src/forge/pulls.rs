//! Open pull requests (merge requests) whose base is a branch, and the git ref that holds each
//! one's head on the remote.
//!
//! - GitHub: `GET {api}/repos/{o}/{r}/pulls?state=open&base={branch}&per_page=100`
//! - GitLab: `GET {api}/projects/{id}/merge_requests?state=opened&target_branch={branch}&per_page=100`
//! - Gitea:  `GET {api}/repos/{o}/{r}/pulls?state=open&limit=50` (no base filter: filtered here)

use reqwest::Url;
use serde_json::Value;

use catalog_api::source::ForgeProvider;

use super::{Client, ForgeError, Target};

/// One open pull request as the forge lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenPull {
    /// Number (GitHub, Gitea) or iid (GitLab).
    pub number: u64,
    /// The head commit the forge reports.
    pub head_sha: String,
    /// The head (source) branch, for messages.
    pub head_branch: String,
}

/// The ref of pull request `number`'s head on the git remote: `refs/pull/N/head` (GitHub,
/// Gitea) or `refs/merge-requests/N/head` (GitLab). Fork pull requests have theirs too.
pub fn head_ref(provider: ForgeProvider, number: u64) -> String {
    match provider {
        ForgeProvider::Github | ForgeProvider::Gitea => format!("refs/pull/{number}/head"),
        ForgeProvider::Gitlab => format!("refs/merge-requests/{number}/head"),
    }
}

impl Client {
    /// The open pull requests whose base is `branch`, by number, newest first.
    pub async fn open_pulls(
        &self,
        target: &Target,
        branch: &str,
        token: &str,
    ) -> Result<Vec<OpenPull>, ForgeError> {
        let base = target.repo_url();
        let (path, query): (&str, Vec<(&str, &str)>) = match target.provider {
            ForgeProvider::Github => (
                "pulls",
                vec![("state", "open"), ("base", branch), ("per_page", "100")],
            ),
            ForgeProvider::Gitlab => (
                "merge_requests",
                vec![
                    ("state", "opened"),
                    ("target_branch", branch),
                    ("per_page", "100"),
                ],
            ),
            ForgeProvider::Gitea => ("pulls", vec![("state", "open"), ("limit", "50")]),
        };
        let url = Url::parse_with_params(&format!("{base}/{path}"), &query).map_err(|e| {
            ForgeError::Invalid {
                url: base.clone(),
                message: e.to_string(),
            }
        })?;
        let items = self.call(target.provider, token).list(url.as_str()).await?;
        let mut pulls: Vec<OpenPull> = items
            .iter()
            .filter_map(|item| parse(target.provider, item, branch))
            .collect();
        pulls.sort_by_key(|p| std::cmp::Reverse(p.number));
        pulls.dedup_by_key(|p| p.number);
        Ok(pulls)
    }
}

/// One listed item, when it is an open pull request into `branch` with a head commit.
fn parse(provider: ForgeProvider, item: &Value, branch: &str) -> Option<OpenPull> {
    let text = |v: &Value| v.as_str().map(str::to_string);
    let (number, sha, head, base) = match provider {
        ForgeProvider::Github | ForgeProvider::Gitea => (
            item.get("number")?.as_u64()?,
            text(item.pointer("/head/sha")?)?,
            text(item.pointer("/head/ref")?).unwrap_or_default(),
            text(item.pointer("/base/ref")?)?,
        ),
        ForgeProvider::Gitlab => (
            item.get("iid")?.as_u64()?,
            text(item.get("sha")?)?,
            item.get("source_branch").and_then(text).unwrap_or_default(),
            text(item.get("target_branch")?)?,
        ),
    };
    let open = item
        .get("state")
        .and_then(Value::as_str)
        .is_none_or(|s| s == "open" || s == "opened");
    let full_sha = matches!(sha.len(), 40 | 64) && sha.bytes().all(|b| b.is_ascii_hexdigit());
    (open && base == branch && full_sha).then_some(OpenPull {
        number,
        head_sha: sha,
        head_branch: head,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn items_of_each_forge_are_read_and_others_bases_dropped() {
        let sha = "a".repeat(40);
        let github = json!({"number": 7, "state": "open", "head": {"sha": sha, "ref": "f"}, "base": {"ref": "main"}});
        assert_eq!(
            parse(ForgeProvider::Github, &github, "main"),
            Some(OpenPull {
                number: 7,
                head_sha: sha.clone(),
                head_branch: "f".into()
            })
        );
        assert_eq!(parse(ForgeProvider::Gitea, &github, "dev"), None);
        let gitlab = json!({"iid": 3, "state": "opened", "sha": sha, "source_branch": "f", "target_branch": "main"});
        assert_eq!(
            parse(ForgeProvider::Gitlab, &gitlab, "main").map(|p| p.number),
            Some(3)
        );
        let no_sha = json!({"iid": 3, "state": "opened", "sha": null, "target_branch": "main"});
        assert_eq!(parse(ForgeProvider::Gitlab, &no_sha, "main"), None);
        assert_eq!(
            head_ref(ForgeProvider::Gitlab, 3),
            "refs/merge-requests/3/head"
        );
        assert_eq!(head_ref(ForgeProvider::Gitea, 3), "refs/pull/3/head");
    }
}
