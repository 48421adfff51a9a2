//! Pull requests on each forge caib speaks: the same `caib catalog add` against a catalog
//! whose catalog.yaml names GitLab, Gitea or GitHub Enterprise, asserting the exact REST calls
//! (path, auth header, body) on the fake forge, and that a re-run updates instead of opening
//! a second one.

use catalog_e2e::forge::Provider;
use catalog_e2e::git::Change;

#[path = "support/write_setup.rs"]
mod support;
use support::*;

const ADD: &[&str] = &[
    "catalog",
    "add",
    "ref",
    "quay.io/org/ref:v1",
    "--architecture",
    "amd64",
    "--distro",
    "cs9",
    "--no-verify",
];

/// Points catalog.yaml's forge at `provider` and returns the API URL caib is given.
fn use_provider(s: &Setup, provider: &str) {
    let config = text(&s.remote.read("main", "catalog.yaml").unwrap());
    let config = config.replace("provider: github", &format!("provider: {provider}"));
    s.remote
        .commit("main", "forge", &[Change::write("catalog.yaml", config)])
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gitlab_merge_requests() {
    let s = Setup::new().await;
    use_provider(&s, "gitlab");
    let api = s.forge.gitlab_url();
    for _ in 0..2 {
        let out = s
            .command(ADD)
            .env("CAIB_FORGE_API_URL", &api)
            .output()
            .await
            .unwrap();
        assert!(out.status.success(), "{}", show(&out));
    }
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
    for _ in 0..2 {
        let out = s
            .command(ADD)
            .env("CAIB_FORGE_API_URL", &api)
            .output()
            .await
            .unwrap();
        assert!(out.status.success(), "{}", show(&out));
    }
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
    let out = s
        .command(ADD)
        .env("CAIB_FORGE_API_URL", s.forge.github_enterprise_url())
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
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
    let mut args = ADD.to_vec();
    args[2] = "other";
    args[3] = "quay.io/org/other:v1";
    let out = s
        .command(&args)
        .env("CAIB_FORGE_API_URL", s.forge.github_enterprise_url())
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(text(&out.stderr).contains("Server Error"), "{}", show(&out));
}
