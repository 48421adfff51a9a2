//! What each forge's REST API expects and answers, as pure functions: request building and
//! response parsing are unit-tested here without a server; `super::ForgeClient` only sends.

use catalog_api::source::ForgeProvider;
use serde_json::{Value, json};

/// An HTTP request relative to the API base URL.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiRequest {
    pub method: &'static str,
    /// Path and query, starting with `/`.
    pub path: String,
    pub body: Option<Value>,
}

/// A pull request (merge request on GitLab) as caib needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullRequest {
    /// Number (GitHub, Gitea) or iid (GitLab).
    pub number: u64,
    /// Browser URL.
    pub url: String,
    pub state: PrState,
    /// Head (source) branch.
    pub head: String,
    /// The commit the merge put on the target branch (merge, squash or rebased commit), when
    /// merged and the forge says.
    pub merge_commit: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrState {
    Open,
    Closed,
    Merged,
}

/// Percent-encodes everything but unreserved characters (for path segments and query values).
pub fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn repo_base(provider: ForgeProvider, repo: &str) -> String {
    match provider {
        ForgeProvider::Gitlab => format!("/projects/{}", encode(repo)),
        _ => format!("/repos/{repo}"),
    }
}

/// Pull requests per page asked of Gitea (its default maximum).
pub const PAGE_SIZE: usize = 50;
/// Pages of open pull requests read at most when looking for one.
pub const MAX_PAGES: u32 = 20;

/// List the open pull requests whose head is `head` (page `page` of Gitea's open ones).
pub fn find_open(provider: ForgeProvider, repo: &str, head: &str, page: u32) -> ApiRequest {
    let base = repo_base(provider, repo);
    let path = match provider {
        ForgeProvider::Github => {
            let owner = repo.split('/').next().unwrap_or_default();
            format!(
                "{base}/pulls?head={}&state=open",
                encode(&format!("{owner}:{head}"))
            )
        }
        ForgeProvider::Gitlab => format!(
            "{base}/merge_requests?source_branch={}&state=opened",
            encode(head)
        ),
        // Gitea has no head filter: list open ones, a page at a time, and filter.
        ForgeProvider::Gitea => format!("{base}/pulls?state=open&limit={PAGE_SIZE}&page={page}"),
    };
    ApiRequest {
        method: "GET",
        path,
        body: None,
    }
}

/// Open a pull request from `head` into `base`.
pub fn create(
    provider: ForgeProvider,
    repo: &str,
    head: &str,
    base: &str,
    title: &str,
    body: &str,
) -> ApiRequest {
    let prefix = repo_base(provider, repo);
    let (path, body) = match provider {
        ForgeProvider::Gitlab => (
            format!("{prefix}/merge_requests"),
            json!({"source_branch": head, "target_branch": base, "title": title,
                   "description": body, "remove_source_branch": true}),
        ),
        _ => (
            format!("{prefix}/pulls"),
            json!({"head": head, "base": base, "title": title, "body": body}),
        ),
    };
    ApiRequest {
        method: "POST",
        path,
        body: Some(body),
    }
}

/// Change the title and description of pull request `number`.
pub fn update(
    provider: ForgeProvider,
    repo: &str,
    number: u64,
    title: &str,
    body: &str,
) -> ApiRequest {
    let prefix = repo_base(provider, repo);
    match provider {
        ForgeProvider::Gitlab => ApiRequest {
            method: "PUT",
            path: format!("{prefix}/merge_requests/{number}"),
            body: Some(json!({"title": title, "description": body})),
        },
        _ => ApiRequest {
            method: "PATCH",
            path: format!("{prefix}/pulls/{number}"),
            body: Some(json!({"title": title, "body": body})),
        },
    }
}

/// Comment on pull request `number`.
pub fn comment(provider: ForgeProvider, repo: &str, number: u64, text: &str) -> ApiRequest {
    let prefix = repo_base(provider, repo);
    let path = match provider {
        ForgeProvider::Gitlab => format!("{prefix}/merge_requests/{number}/notes"),
        _ => format!("{prefix}/issues/{number}/comments"),
    };
    ApiRequest {
        method: "POST",
        path,
        body: Some(json!({"body": text})),
    }
}

/// Read pull request `number` (to learn whether it was merged).
pub fn get(provider: ForgeProvider, repo: &str, number: u64) -> ApiRequest {
    let prefix = repo_base(provider, repo);
    let path = match provider {
        ForgeProvider::Gitlab => format!("{prefix}/merge_requests/{number}"),
        _ => format!("{prefix}/pulls/{number}"),
    };
    ApiRequest {
        method: "GET",
        path,
        body: None,
    }
}

/// One pull request object from a response body.
pub fn parse_pr(provider: ForgeProvider, value: &Value) -> Option<PullRequest> {
    match provider {
        ForgeProvider::Gitlab => Some(PullRequest {
            number: value.get("iid")?.as_u64()?,
            url: value.get("web_url")?.as_str()?.to_owned(),
            state: match value.get("state")?.as_str()? {
                "merged" => PrState::Merged,
                "opened" => PrState::Open,
                _ => PrState::Closed,
            },
            head: value.get("source_branch")?.as_str()?.to_owned(),
            merge_commit: ["merge_commit_sha", "squash_commit_sha", "sha"]
                .iter()
                .find_map(|k| value.get(k)?.as_str())
                .filter(|_| value.get("state").and_then(Value::as_str) == Some("merged"))
                .map(str::to_owned),
        }),
        _ => {
            let merged = value.get("merged").and_then(Value::as_bool) == Some(true)
                || value.get("merged_at").is_some_and(|m| !m.is_null());
            Some(PullRequest {
                number: value.get("number")?.as_u64()?,
                url: value.get("html_url")?.as_str()?.to_owned(),
                state: if merged {
                    PrState::Merged
                } else if value.get("state")?.as_str()? == "open" {
                    PrState::Open
                } else {
                    PrState::Closed
                },
                head: value.pointer("/head/ref")?.as_str()?.to_owned(),
                merge_commit: value
                    .get("merge_commit_sha")
                    .and_then(Value::as_str)
                    .filter(|_| merged)
                    .map(str::to_owned),
            })
        }
    }
}

/// The open pull request for `head` in a list response (filtered here for Gitea).
pub fn pick_open(provider: ForgeProvider, list: &Value, head: &str) -> Option<PullRequest> {
    list.as_array()?
        .iter()
        .filter_map(|v| parse_pr(provider, v))
        .find(|pr| pr.head == head && pr.state == PrState::Open)
}

/// Whether a refused create means "a pull request from this branch already exists": GitHub
/// answers 422 "A pull request already exists for owner:branch.", GitLab 409 "Another open merge
/// request already exists for this source branch", Gitea 409 "pull request already exists for
/// these targets".
pub fn already_exists(provider: ForgeProvider, status: u16, message: &str) -> bool {
    match provider {
        ForgeProvider::Github => status == 422 && message.contains("already exists"),
        ForgeProvider::Gitlab | ForgeProvider::Gitea => status == 409,
    }
}

/// The forge's own error message from an error response body.
pub fn error_message(body: &str) -> String {
    let Ok(value) = serde_json::from_str::<Value>(body) else {
        return body.trim().chars().take(300).collect();
    };
    let mut parts = Vec::new();
    match value.get("message") {
        Some(Value::String(s)) => parts.push(s.clone()),
        Some(Value::Array(items)) => {
            parts.extend(items.iter().filter_map(|i| i.as_str().map(str::to_owned)))
        }
        _ => {}
    }
    if let Some(error) = value.get("error").and_then(Value::as_str) {
        parts.push(error.to_owned());
    }
    if let Some(errors) = value.get("errors").and_then(Value::as_array) {
        parts.extend(
            errors
                .iter()
                .filter_map(|e| e.get("message").and_then(Value::as_str).map(str::to_owned)),
        );
    }
    if parts.is_empty() {
        body.trim().chars().take(300).collect()
    } else {
        parts.join(": ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ForgeProvider::*;

    #[test]
    fn github_filters_by_owner_and_branch() {
        let r = find_open(Github, "acme/catalog", "caib/add/dev/x", 1);
        assert_eq!(
            r.path,
            "/repos/acme/catalog/pulls?head=acme%3Acaib%2Fadd%2Fdev%2Fx&state=open"
        );
    }

    #[test]
    fn gitlab_encodes_the_project_path() {
        let r = create(Gitlab, "grp/sub/catalog", "b", "main", "t", "d");
        assert_eq!(r.path, "/projects/grp%2Fsub%2Fcatalog/merge_requests");
        assert_eq!(r.body.unwrap()["source_branch"], "b");
        let r = find_open(Gitlab, "grp/catalog", "caib/x", 1);
        assert!(
            r.path.ends_with("source_branch=caib%2Fx&state=opened"),
            "{}",
            r.path
        );
        assert_eq!(update(Gitlab, "g/c", 3, "t", "d").method, "PUT");
        assert_eq!(
            comment(Gitlab, "g/c", 3, "hi").path,
            "/projects/g%2Fc/merge_requests/3/notes"
        );
    }

    #[test]
    fn gitea_lists_and_filters_client_side() {
        let r = find_open(Gitea, "o/r", "caib/add/dev/x", 2);
        assert_eq!(r.path, "/repos/o/r/pulls?state=open&limit=50&page=2");
        let list = json!([
            {"number": 1, "html_url": "u1", "state": "open", "head": {"ref": "other"}},
            {"number": 2, "html_url": "u2", "state": "open", "head": {"ref": "caib/add/dev/x"}},
        ]);
        assert_eq!(pick_open(Gitea, &list, "caib/add/dev/x").unwrap().number, 2);
    }

    #[test]
    fn parses_merged_state() {
        let gh = json!({"number": 4, "html_url": "u", "state": "closed", "merged": true, "head": {"ref": "h"}});
        assert_eq!(parse_pr(Github, &gh).unwrap().state, PrState::Merged);
        let gl = json!({"iid": 4, "web_url": "u", "state": "merged", "source_branch": "h"});
        assert_eq!(parse_pr(Gitlab, &gl).unwrap().state, PrState::Merged);
        let gh = json!({"number": 4, "html_url": "u", "state": "closed", "merged": true,
                        "merge_commit_sha": "abc", "head": {"ref": "h"}});
        assert_eq!(
            parse_pr(Github, &gh).unwrap().merge_commit.as_deref(),
            Some("abc")
        );
        let open = json!({"number": 4, "html_url": "u", "state": "open",
                          "merge_commit_sha": "test-merge", "head": {"ref": "h"}});
        assert_eq!(parse_pr(Github, &open).unwrap().merge_commit, None);
    }

    #[test]
    fn recognises_already_exists_answers() {
        assert!(already_exists(
            Github,
            422,
            "Validation Failed: A pull request already exists for acme:caib/add/dev/x."
        ));
        assert!(!already_exists(
            Github,
            422,
            "Validation Failed: base is invalid"
        ));
        assert!(already_exists(
            Gitlab,
            409,
            "Another open merge request already exists"
        ));
        assert!(already_exists(
            Gitea,
            409,
            "pull request already exists for these targets"
        ));
        assert!(!already_exists(Gitea, 422, "whatever"));
    }

    #[test]
    fn extracts_forge_error_messages() {
        assert_eq!(
            error_message(r#"{"message":"Bad credentials","documentation_url":"x"}"#),
            "Bad credentials"
        );
        assert_eq!(
            error_message(
                r#"{"message":"Validation Failed","errors":[{"message":"A pull request already exists"}]}"#
            ),
            "Validation Failed: A pull request already exists"
        );
        assert_eq!(
            error_message(r#"{"message":["Another open merge request"]}"#),
            "Another open merge request"
        );
        assert_eq!(error_message("plain text"), "plain text");
    }
}
