//! GitLab merge requests and Gitea pull requests, each asked for by its forge's webhook.

use catalog_e2e::forge::Provider;
use catalog_e2e::git::Change;
use serde_json::json;

use super::sync_common::*;
use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn gitlab_merge_requests_are_previewed_from_their_merge_request_ref_on_a_webhook() {
    let s = Setup::start(Provider::Gitlab).await;
    s.enable_webhook("h00k").await;
    let (n, sha) = s.push(
        None,
        "feature",
        &[Change::write(
            path("feature"),
            entry("feature", &s.image, "amd64", None),
        )],
    );
    let headers = [
        ("X-Gitlab-Event", "Merge Request Hook"),
        ("X-Gitlab-Token", "h00k"),
    ];
    s.deliver(
        "merge request",
        &headers,
        r#"{"object_kind":"merge_request"}"#,
    )
    .await;
    let status = s.status_of(&sha).await;
    assert_eq!(status.state, "success", "{status:?}");
    s.comment(n, "| feature | created |").await;
    assert_eq!(s.env.image("feature").await.map(|_| ()), None);

    // Previews turned off: the listed ones go.
    s.env
        .patch_source("dev", json!({"spec": {"pullRequests": {"enabled": false}}}))
        .await;
    s.env
        .wait_source("dev", "status.previews to be emptied", |src| {
            src.status.as_ref().is_some_and(|st| st.previews.is_empty())
        })
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn gitea_pull_requests_are_previewed_on_a_signed_pull_request_webhook() {
    let s = Setup::start(Provider::Gitea).await;
    s.enable_webhook("h00k").await;
    let (n, sha) = s.push(
        None,
        "feature",
        &[Change::write(
            path("feature"),
            entry("feature", &s.image, "arm64", None),
        )],
    );
    let body = r#"{"action":"opened","number":1}"#;
    let signature = hmac_hex("h00k", body.as_bytes());
    let headers = [
        ("X-Gitea-Event", "pull_request"),
        ("X-Gitea-Signature", signature.as_str()),
    ];
    s.deliver("pull request", &headers, body).await;
    let status = s.status_of(&sha).await;
    assert_eq!(status.state, "failure", "{status:?}");
    s.comment(n, "ArchitectureMismatch").await;
    assert_eq!(s.env.image("feature").await.map(|_| ()), None);
}
