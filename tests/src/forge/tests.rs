//! The fake answers like the real APIs for the calls the project makes.
use super::*;
use serde_json::json;

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

#[tokio::test]
async fn github_pull_request_lifecycle() {
    let forge = FakeForge::start("t0k").await;
    let http = client();
    let base = forge.github_enterprise_url();
    let created: Value = http
        .post(format!("{base}/repos/acme/cat/pulls"))
        .bearer_auth("t0k")
        .json(&json!({"title": "Add x", "head": "caib/add/dev/x", "base": "main", "body": "b"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(created["number"], 1);
    let again = http
        .post(format!("{base}/repos/acme/cat/pulls"))
        .bearer_auth("t0k")
        .json(&json!({"title": "Add x", "head": "acme:caib/add/dev/x", "base": "main"}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 422);
    let listed: Value = http
        .get(format!(
            "{base}/repos/acme/cat/pulls?head=acme:caib%2Fadd%2Fdev%2Fx&state=open"
        ))
        .bearer_auth("t0k")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(forge.merge(Provider::Github, "acme/cat", 1));
    let one: Value = http
        .get(format!("{base}/repos/acme/cat/pulls/1"))
        .bearer_auth("t0k")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["merged"], true);
    let bad = http
        .get(format!("{base}/repos/acme/cat/pulls/1"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    let body: Value = bad.json().await.unwrap();
    assert_eq!(body["message"], "Bad credentials");
    assert_eq!(forge.requests().len(), 5);
}

#[tokio::test]
async fn gitlab_merge_request_and_status() {
    let forge = FakeForge::start("t0k").await;
    let http = client();
    let base = forge.gitlab_url();
    let created = http
        .post(format!("{base}/projects/grp%2Fcat/merge_requests"))
        .header("PRIVATE-TOKEN", "t0k")
        .json(&json!({"title": "t", "source_branch": "b", "target_branch": "main"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let prs = forge.pull_requests(Provider::Gitlab, "grp/cat");
    assert_eq!(prs.len(), 1);
    let status = http
        .post(format!("{base}/projects/grp%2Fcat/statuses/abc"))
        .header("PRIVATE-TOKEN", "t0k")
        .json(&json!({"state": "success", "name": "catalog"}))
        .send()
        .await
        .unwrap();
    assert_eq!(status.status(), 201);
    assert_eq!(forge.statuses()[0].context.as_deref(), Some("catalog"));
    let unauth = http
        .get(format!("{base}/projects/grp%2Fcat/merge_requests"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauth.status(), 401);
}

#[tokio::test]
async fn gitea_lists_all_open_pulls() {
    let forge = FakeForge::start("t0k").await;
    let http = client();
    let base = forge.gitea_url();
    for head in ["a", "b"] {
        http.post(format!("{base}/repos/o/r/pulls"))
            .header("Authorization", "token t0k")
            .json(&json!({"title": "t", "head": head, "base": "main"}))
            .send()
            .await
            .unwrap();
    }
    let listed: Value = http
        .get(format!("{base}/repos/o/r/pulls?state=open&head=a"))
        .header("Authorization", "token t0k")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
}
