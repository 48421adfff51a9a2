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

/// Follows `rel="next"` links from `url`; every page's items.
async fn all_pages(http: &reqwest::Client, url: String, token: &str) -> Vec<Vec<Value>> {
    let mut pages = Vec::new();
    let mut next = Some(url);
    while let Some(url) = next.take() {
        let response = http.get(&url).bearer_auth(token).send().await.unwrap();
        assert_eq!(response.status(), 200, "{url}");
        next = response
            .headers()
            .get("link")
            .and_then(|v| v.to_str().ok())
            .and_then(|l| {
                l.split(',').find(|p| p.contains("rel=\"next\"")).map(|p| {
                    p.split(';')
                        .next()
                        .unwrap()
                        .trim()
                        .trim_matches(['<', '>'])
                        .to_string()
                })
            });
        pages.push(
            response
                .json::<Value>()
                .await
                .unwrap()
                .as_array()
                .unwrap()
                .clone(),
        );
    }
    pages
}

#[tokio::test]
async fn lists_are_paged_like_the_real_apis_and_filtered_by_base() {
    let forge = FakeForge::start("t0k").await;
    let http = client();
    let sha = "ab".repeat(20);
    for i in 0..45 {
        for provider in [Provider::Github, Provider::Gitlab, Provider::Gitea] {
            forge.open_pull(provider, "acme/cat", &format!("f{i}"), "main", &sha);
        }
    }
    forge.open_pull(Provider::Github, "acme/cat", "other", "dev", &sha);
    let github = all_pages(
        &http,
        format!(
            "{}/repos/acme/cat/pulls?state=open&base=main",
            forge.github_url()
        ),
        "t0k",
    )
    .await;
    assert_eq!(
        github.iter().map(Vec::len).collect::<Vec<_>>(),
        [30, 15],
        "GitHub: 30 per page by default"
    );
    assert_eq!(github[0][0]["head"]["sha"], sha.as_str());
    let gitlab = all_pages(
        &http,
        format!(
            "{}/projects/acme%2Fcat/merge_requests?state=opened&target_branch=main&per_page=100",
            forge.gitlab_url()
        ),
        "t0k",
    )
    .await;
    assert_eq!(gitlab.iter().map(Vec::len).collect::<Vec<_>>(), [45]);
    assert_eq!(gitlab[0][0]["sha"], sha.as_str());
    let gitea = all_pages(
        &http,
        format!(
            "{}/repos/acme/cat/pulls?state=open&limit=100",
            forge.gitea_url()
        ),
        "t0k",
    )
    .await;
    assert_eq!(
        gitea.iter().map(Vec::len).collect::<Vec<_>>(),
        [45],
        "Gitea caps limit at 50"
    );
    let gitea = all_pages(
        &http,
        format!("{}/repos/acme/cat/pulls?state=open", forge.gitea_url()),
        "t0k",
    )
    .await;
    assert_eq!(gitea.iter().map(Vec::len).collect::<Vec<_>>(), [30, 15]);
}

#[tokio::test]
async fn comments_are_listed_created_and_edited_only_by_their_author() {
    let forge = FakeForge::start("t0k").await;
    let http = client();
    let n = forge.open_pull(Provider::Github, "acme/cat", "f", "main", &"1".repeat(40));
    forge.add_comment(Provider::Github, "acme/cat", n, "alice", "looks good");
    let base = format!("{}/repos/acme/cat", forge.github_url());
    let created: Value = http
        .post(format!("{base}/issues/{n}/comments"))
        .bearer_auth("t0k")
        .json(&json!({"body": "mine"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_u64().unwrap();
    let listed = all_pages(&http, format!("{base}/issues/{n}/comments"), "t0k").await;
    assert_eq!(listed[0].len(), 2);
    let edit = |id: u64| {
        http.patch(format!("{base}/issues/comments/{id}"))
            .bearer_auth("t0k")
            .json(&json!({"body": "edited"}))
            .send()
    };
    assert_eq!(edit(id).await.unwrap().status(), 200);
    assert_eq!(edit(1).await.unwrap().status(), 403, "alice's comment");
    assert_eq!(edit(999).await.unwrap().status(), 404);
    let bodies: Vec<String> = forge
        .comments(Provider::Github, "acme/cat", n)
        .into_iter()
        .map(|c| c.body)
        .collect();
    assert_eq!(bodies, ["looks good", "edited"]);
    let missing = http
        .get(format!("{base}/issues/99/comments"))
        .bearer_auth("t0k")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let unauthorized = http
        .get(format!("{base}/issues/{n}/comments"))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), 401);

    let gl = format!("{}/projects/acme%2Fcat/merge_requests", forge.gitlab_url());
    let m = forge.open_pull(Provider::Gitlab, "acme/cat", "f", "main", &"1".repeat(40));
    let note: Value = http
        .post(format!("{gl}/{m}/notes"))
        .header("PRIVATE-TOKEN", "t0k")
        .json(&json!({"body": "note"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let put = http
        .put(format!("{gl}/{m}/notes/{}", note["id"]))
        .header("PRIVATE-TOKEN", "t0k")
        .json(&json!({"body": "note 2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    assert_eq!(
        forge.comments(Provider::Gitlab, "acme/cat", m)[0].body,
        "note 2"
    );
}
