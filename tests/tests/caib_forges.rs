//! Pull requests on each forge caib speaks: the same `caib catalog add` against a catalog
//! whose catalog.yaml names GitLab, Gitea or GitHub Enterprise, asserting the exact REST calls
//! (path, auth header, body) on the fake forge, and that a re-run updates instead of opening
//! a second one.

use catalog_e2e::forge::Provider;
use catalog_e2e::git::Change;

#[path = "support/write_setup.rs"]
mod support;
use support::*;

/// Points catalog.yaml's forge at `provider`.
fn use_provider(s: &Setup, provider: &str) {
    let config = s.file("main", "catalog.yaml");
    let config = config.replace("provider: github", &format!("provider: {provider}"));
    s.remote
        .commit("main", "forge", &[Change::write("catalog.yaml", config)])
        .unwrap();
}

/// `caib catalog add` of `name` with the forge API at `api`.
async fn add_on(s: &Setup, api: &str, name: &str) -> std::process::Output {
    s.command(&[])
        .args(org_add_args(name))
        .env("CAIB_FORGE_API_URL", api)
        .output()
        .await
        .unwrap()
}

/// The same add twice: the second run must update the first one's pull request.
async fn add_twice(s: &Setup, api: &str) {
    for _ in 0..2 {
        assert_success(&add_on(s, api, "ref").await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gitlab_merge_requests() {
    let s = Setup::new().await;
    use_provider(&s, "gitlab");
    let api = s.forge.gitlab_url();
    add_twice(&s, &api).await;
    let project = "/api/v4/projects/example-org%2Fautomotive-image-catalog";
    let creates = s.forge.requests_matching("POST", "/merge_requests");
    let creates: Vec<_> = creates
        .iter()
        .filter(|r| r.path.ends_with("/merge_requests"))
        .collect();
    assert_eq!(creates.len(), 1, "{:#?}", s.forge.requests());
    assert_eq!(creates[0].path, format!("{project}/merge_requests"));
    assert_eq!(creates[0].header("private-token"), Some(TOKEN));
    let body = creates[0].body.as_ref().unwrap();
    assert_eq!(body["source_branch"], "caib/add/dev/ref");
    assert_eq!(body["target_branch"], "main");
    let finds = s.forge.requests_matching("GET", "/merge_requests");
    assert_eq!(
        finds[0].query.as_deref(),
        Some("source_branch=caib%2Fadd%2Fdev%2Fref&state=opened")
    );
    assert_eq!(
        s.forge.requests_matching("PUT", "/merge_requests/1").len(),
        1
    );
    assert_eq!(
        s.forge
            .requests_matching("POST", "/merge_requests/1/notes")
            .len(),
        1
    );
    let mrs = s
        .forge
        .pull_requests(Provider::Gitlab, "example-org/automotive-image-catalog");
    assert_eq!(mrs.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gitea_pull_requests() {
    let s = Setup::new().await;
    use_provider(&s, "gitea");
    let api = s.forge.gitea_url();
    add_twice(&s, &api).await;
    let creates = s.forge.requests_matching("POST", "/pulls");
    assert_eq!(creates.len(), 1, "{:#?}", s.forge.requests());
    assert_eq!(creates[0].path, format!("/api/v1/repos/{FORGE_REPO}/pulls"));
    assert_eq!(
        creates[0].header("authorization"),
        Some(format!("token {TOKEN}").as_str())
    );
    assert_eq!(s.forge.requests_matching("PATCH", "/pulls/1").len(), 1);
    assert_eq!(
        s.forge
            .requests_matching("POST", "/issues/1/comments")
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_enterprise_base_url() {
    let s = Setup::new().await;
    let api = s.forge.github_enterprise_url();
    let out = add_on(&s, &api, "ref").await;
    assert_success(&out);
    let creates = s.forge.requests_matching("POST", "/pulls");
    assert_eq!(creates.len(), 1);
    assert_eq!(creates[0].path, format!("/api/v3/repos/{FORGE_REPO}/pulls"));
    assert_eq!(
        creates[0].header("x-github-api-version"),
        Some("2022-11-28")
    );
    // A forge error that is not about credentials: exit 1 with the forge's message.
    s.forge
        .inject_response(500, serde_json::json!({"message": "Server Error"}));
    let out = add_on(&s, &api, "other").await;
    assert_exit(&out, 1, "Server Error");
}

/// A pull request opened between caib's look and its create (another run, a colleague): the
/// forge answers "already exists" (GitHub 422, GitLab and Gitea 409), and caib updates that
/// one and exits 0 with its URL, on every forge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_request_that_already_exists_is_updated() {
    for (provider, name) in [
        (Provider::Github, "github"),
        (Provider::Gitlab, "gitlab"),
        (Provider::Gitea, "gitea"),
    ] {
        let s = Setup::new().await;
        if provider != Provider::Github {
            use_provider(&s, name);
        }
        let api = s.forge.api_url(provider);
        assert_success(&add_on(&s, &api, "ref").await);
        // The next look for the open pull request finds none, as if it came a moment later.
        s.forge.inject_response(200, serde_json::json!([]));
        let out = add_on(&s, &api, "ref").await;
        assert_success(&out);
        let prs = s
            .forge
            .pull_requests(provider, "example-org/automotive-image-catalog");
        assert_eq!(prs.len(), 1, "{name}: {:#?}", s.forge.requests());
        assert_stdout(&out, &format!("Pull request:  {} (updated)", prs[0].url));
        let refused: Vec<u16> = s
            .forge
            .requests()
            .iter()
            .filter(|r| r.method == "POST" && r.status >= 400)
            .map(|r| r.status)
            .collect();
        let expected = if provider == Provider::Github {
            422
        } else {
            409
        };
        assert_eq!(refused, [expected], "{name}");
        assert_eq!(prs[0].comments.len(), 1, "{name}: updated and said so");
    }
}
