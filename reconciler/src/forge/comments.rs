//! One comment per pull request and source, edited in place: the comment is found by a hidden
//! marker its body starts with, so every push to a pull request updates the same comment
//! instead of adding one.
//!
//! - GitHub, Gitea: `GET|POST {api}/repos/{o}/{r}/issues/{n}/comments`,
//!   `PATCH {api}/repos/{o}/{r}/issues/comments/{id}`
//! - GitLab: `GET|POST {api}/projects/{id}/merge_requests/{iid}/notes`,
//!   `PUT {api}/projects/{id}/merge_requests/{iid}/notes/{note_id}`

use reqwest::Method;
use serde_json::{Value, json};

use catalog_api::source::ForgeProvider;

use super::{Client, ForgeError, Target};

/// What [`Client::upsert_comment`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upserted {
    Created,
    Edited,
    /// The comment already said exactly this.
    Unchanged,
}

impl Client {
    /// Makes the comment of pull request `number` that starts with `marker` say `body` (which
    /// must start with `marker`): edits the first such comment, or creates one. A marked
    /// comment the token may not edit (someone else's copy of the marker) is skipped.
    pub async fn upsert_comment(
        &self,
        target: &Target,
        number: u64,
        marker: &str,
        body: &str,
        token: &str,
    ) -> Result<Upserted, ForgeError> {
        debug_assert!(body.starts_with(marker));
        let call = self.call(target.provider, token);
        let list = comments_url(target, number);
        let first = match target.provider {
            ForgeProvider::Gitlab => format!("{list}?per_page=100&sort=asc&order_by=created_at"),
            ForgeProvider::Github => format!("{list}?per_page=100"),
            ForgeProvider::Gitea => list.clone(),
        };
        let existing = call.list(&first).await?;
        let payload = json!({ "body": body });
        for comment in existing.iter().filter(|c| starts_with(c, marker)) {
            let Some(id) = comment.get("id").and_then(Value::as_u64) else {
                continue;
            };
            if comment.get("body").and_then(Value::as_str) == Some(body) {
                return Ok(Upserted::Unchanged);
            }
            let (method, url) = edit_url(target, number, id);
            match call.send(method, &url, Some(&payload)).await {
                Ok(_) => return Ok(Upserted::Edited),
                Err(ForgeError::Status {
                    status: 403 | 404, ..
                }) => continue,
                Err(e) => return Err(e),
            }
        }
        call.send(Method::POST, &list, Some(&payload)).await?;
        Ok(Upserted::Created)
    }
}

fn starts_with(comment: &Value, marker: &str) -> bool {
    comment
        .get("body")
        .and_then(Value::as_str)
        .is_some_and(|b| b.starts_with(marker))
}

fn comments_url(target: &Target, number: u64) -> String {
    let base = target.repo_url();
    match target.provider {
        ForgeProvider::Github | ForgeProvider::Gitea => {
            format!("{base}/issues/{number}/comments")
        }
        ForgeProvider::Gitlab => format!("{base}/merge_requests/{number}/notes"),
    }
}

fn edit_url(target: &Target, number: u64, id: u64) -> (Method, String) {
    let base = target.repo_url();
    match target.provider {
        ForgeProvider::Github | ForgeProvider::Gitea => {
            (Method::PATCH, format!("{base}/issues/comments/{id}"))
        }
        ForgeProvider::Gitlab => (
            Method::PUT,
            format!("{base}/merge_requests/{number}/notes/{id}"),
        ),
    }
}
