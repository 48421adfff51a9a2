//! Pull-request comments (GitHub and Gitea issue comments, GitLab merge request notes): list,
//! create, and edit, refusing an edit of another user's comment with 403 as the forges do.

use serde_json::{Value, json};

use super::routes::{Ctx, find_pull, find_pull_mut};
use super::{Comment, Provider, State, TOKEN_USER};

fn comment_json(provider: Provider, comment: &Comment) -> Value {
    match provider {
        Provider::Gitlab => json!({
            "id": comment.id, "body": comment.body, "system": false,
            "author": {"username": comment.author}, "noteable_type": "MergeRequest",
        }),
        _ => json!({"id": comment.id, "body": comment.body, "user": {"login": comment.author}}),
    }
}

/// `GET …/comments` (or notes): every comment of the pull request, oldest first.
pub(super) fn list(state: &State, ctx: &Ctx<'_>, repo: &str, n: &str) -> Option<(u16, Value)> {
    let pr = find_pull(state, ctx.provider, repo, n)?;
    let items = pr
        .comments
        .iter()
        .map(|c| comment_json(ctx.provider, c))
        .collect();
    Some((200, Value::Array(items)))
}

/// `POST …/comments` (or notes) as [`TOKEN_USER`].
pub(super) fn create(
    state: &mut State,
    ctx: &Ctx<'_>,
    repo: &str,
    n: &str,
) -> Option<(u16, Value)> {
    let Some(body) = ctx.field("body").filter(|b| !b.is_empty()) else {
        find_pull(state, ctx.provider, repo, n)?;
        return Some(super::routes::validation_failed(
            ctx.provider,
            "body is missing",
        ));
    };
    state.comment_ids += 1;
    let id = state.comment_ids;
    let pr = find_pull_mut(state, ctx.provider, repo, n)?;
    let comment = Comment {
        id,
        body,
        author: TOKEN_USER.to_owned(),
    };
    let value = comment_json(ctx.provider, &comment);
    pr.comments.push(comment);
    Some((201, value))
}

/// `PATCH …/issues/comments/{id}` or `PUT …/notes/{id}`: the comment of `repo` with `id` (on
/// pull request `iid` for GitLab, whose note URLs name it); 403 for another user's comment.
pub(super) fn edit(
    state: &mut State,
    ctx: &Ctx<'_>,
    repo: &str,
    iid: Option<&str>,
    id: &str,
) -> Option<(u16, Value)> {
    let id: u64 = id.parse().ok()?;
    let iid: Option<u64> = iid.and_then(|i| i.parse().ok());
    let body = ctx.field("body");
    let comment = state
        .pulls
        .iter_mut()
        .filter(|p| p.provider == ctx.provider && p.repo == repo)
        .filter(|p| iid.is_none_or(|i| p.number == i))
        .flat_map(|p| p.comments.iter_mut())
        .find(|c| c.id == id)?;
    if comment.author != TOKEN_USER {
        let refused = match ctx.provider {
            Provider::Github => {
                json!({"message": "Must have admin rights to Repository.", "status": "403"})
            }
            Provider::Gitlab => json!({"message": "403 Forbidden"}),
            Provider::Gitea => json!({"message": "user should be the poster of the comment"}),
        };
        return Some((403, refused));
    }
    if let Some(body) = body {
        comment.body = body;
    }
    let comment = comment.clone();
    Some((200, comment_json(ctx.provider, &comment)))
}
