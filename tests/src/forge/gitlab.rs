//! GitLab's merge request, note and commit status endpoints (`/api/v4`).

use axum::http::Method;
use serde_json::{Value, json};

use super::routes::{Ctx, find_pull, find_pull_mut, next_number, validation_failed};
use super::{CommitStatus, PrState, Provider, PullRequest, State};

pub(super) fn route(state: &mut State, ctx: &Ctx<'_>, segs: &[&str]) -> Option<(u16, Value)> {
    let ["projects", project, rest @ ..] = segs else {
        return None;
    };
    let repo = (*project).to_owned();
    let m = ctx.method;
    match rest {
        ["merge_requests"] if m == Method::POST => {
            let (Some(source), Some(target), Some(title)) = (
                ctx.field("source_branch"),
                ctx.field("target_branch"),
                ctx.field("title"),
            ) else {
                return Some(validation_failed(
                    ctx.provider,
                    "source_branch, target_branch, title are missing",
                ));
            };
            if let Some(existing) = state.pulls.iter().find(|p| {
                p.provider == Provider::Gitlab
                    && p.repo == repo
                    && p.head == source
                    && p.state == PrState::Open
            }) {
                return Some((
                    409,
                    json!({"message": [format!(
                        "Another open merge request already exists for this source branch: !{}",
                        existing.number)]}),
                ));
            }
            let number = next_number(state, Provider::Gitlab, &repo);
            let pr = PullRequest {
                provider: Provider::Gitlab,
                repo: repo.clone(),
                number,
                head: source,
                base: target,
                title,
                body: ctx.field("description").unwrap_or_default(),
                state: PrState::Open,
                comments: Vec::new(),
                url: format!("{}/{repo}/-/merge_requests/{number}", ctx.base),
                head_sha: "0".repeat(40),
            };
            let value = mr_json(&pr);
            state.pulls.push(pr);
            Some((201, value))
        }
        ["merge_requests"] if m == Method::GET => {
            let wanted = ctx.query.get("state").map(String::as_str).unwrap_or("all");
            let source = ctx.query.get("source_branch");
            let target = ctx.query.get("target_branch");
            let list = state
                .pulls
                .iter()
                .filter(|p| p.provider == Provider::Gitlab && p.repo == repo)
                .filter(|p| match wanted {
                    "opened" => p.state == PrState::Open,
                    "merged" => p.state == PrState::Merged,
                    "closed" => p.state == PrState::Closed,
                    _ => true,
                })
                .filter(|p| source.is_none_or(|s| &p.head == s))
                .filter(|p| target.is_none_or(|t| &p.base == t))
                .map(mr_json)
                .collect();
            Some((200, Value::Array(list)))
        }
        ["merge_requests", iid] if m == Method::GET => Some((
            200,
            mr_json(find_pull(state, Provider::Gitlab, &repo, iid)?),
        )),
        ["merge_requests", iid] if m == Method::PUT => {
            let title = ctx.field("title");
            let description = ctx.field("description");
            let event = ctx.field("state_event");
            let pr = find_pull_mut(state, Provider::Gitlab, &repo, iid)?;
            if let Some(t) = title {
                pr.title = t;
            }
            if let Some(d) = description {
                pr.body = d;
            }
            match event.as_deref() {
                Some("close") => pr.state = PrState::Closed,
                Some("reopen") if pr.state == PrState::Closed => pr.state = PrState::Open,
                _ => {}
            }
            Some((200, mr_json(pr)))
        }
        ["merge_requests", iid, "notes"] if m == Method::GET => {
            super::comments::list(state, ctx, &repo, iid)
        }
        ["merge_requests", iid, "notes"] if m == Method::POST => {
            super::comments::create(state, ctx, &repo, iid)
        }
        ["merge_requests", iid, "notes", id] if m == Method::PUT => {
            super::comments::edit(state, ctx, &repo, Some(iid), id)
        }
        ["statuses", sha] if m == Method::POST => {
            let Some(st) = ctx.field("state") else {
                return Some(validation_failed(ctx.provider, "state is missing"));
            };
            if !["pending", "running", "success", "failed", "canceled"].contains(&st.as_str()) {
                return Some((400, json!({"error": "state does not have a valid value"})));
            }
            state.statuses.push(CommitStatus {
                provider: Provider::Gitlab,
                repo,
                sha: (*sha).to_owned(),
                state: st.clone(),
                context: ctx.field("name").or_else(|| ctx.field("context")),
                description: ctx.field("description"),
                target_url: ctx.field("target_url"),
            });
            Some((
                201,
                json!({"id": state.statuses.len(), "sha": sha, "status": st}),
            ))
        }
        _ => None,
    }
}

fn mr_json(p: &PullRequest) -> Value {
    let state = match p.state {
        PrState::Open => "opened",
        PrState::Closed => "closed",
        PrState::Merged => "merged",
    };
    json!({
        "id": p.number * 1000,
        "iid": p.number,
        "web_url": p.url,
        "state": state,
        "title": p.title,
        "description": p.body,
        "source_branch": p.head,
        "sha": p.head_sha,
        "target_branch": p.base,
        "merged_at": if p.state == PrState::Merged { json!("2026-01-01T00:00:00Z") } else { Value::Null },
    })
}
