//! A pull request's life: pushes, merge, previews turned off; and a stuck preview beside the sync.

use catalog_api::labels::{PREVIEW_REQUESTED_AT, RECONCILE_REQUESTED_AT};
use catalog_e2e::forge::Provider;
use catalog_e2e::git::Change;
use catalog_e2e::process::eventually;
use catalog_e2e::registry::HostileRegistry;
use serde_json::json;

use super::sync_common::*;
use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_push_edits_the_comment_and_a_merge_is_applied_and_forgotten() {
    let s = Setup::start(Provider::Github).await;
    let (n, first) = s.push(
        None,
        "feature",
        &[Change::write(
            path("feature"),
            entry("feature", &s.image, "amd64", None),
        )],
    );
    // Reviewers talked first: the preview comment lands past the first page of comments.
    for i in 0..120 {
        s.forge
            .add_comment(s.provider, REPO, n, "alice", &format!("remark {i}"));
    }
    s.ask().await;
    assert_eq!(s.status_of(&first).await.state, "success");
    s.comment(n, &first[..12]).await;
    let (_, second) = s.push(
        Some(n),
        "feature",
        &[Change::write(
            path("feature-2"),
            entry("feature-2", &s.image, "amd64", None),
        )],
    );
    s.ask().await;
    let status = s.status_of(&second).await;
    assert_eq!(described(&status), "2 created: every image verified");
    let comment = s.comment(n, &second[..12]).await;
    assert!(comment.contains("| feature-2 |"), "{comment}");
    assert_eq!(
        s.forge.comments(s.provider, REPO, n).len(),
        121,
        "edited, not added"
    );
    s.previews(|p| p.first().is_some_and(|p| p.head == second))
        .await;
    assert_eq!(s.env.image("feature").await.map(|_| ()), None);

    // Merged: main moves to the head, the sync applies it, the preview is forgotten.
    s.repo
        .git(&["update-ref", "refs/heads/main", &second])
        .unwrap();
    assert!(s.forge.merge(s.provider, REPO, n));
    let at = format!("{:.9}", jiff::Timestamp::now());
    s.env
        .patch_source(
            "dev",
            json!({"metadata": {"annotations": {RECONCILE_REQUESTED_AT: at.clone(), PREVIEW_REQUESTED_AT: at}}}),
        )
        .await;
    s.env.wait_applied("dev", &second).await;
    assert!(s.env.image("feature-2").await.is_some());
    s.env
        .wait_source("dev", "the merged preview to be forgotten", |src| {
            src.status.as_ref().is_some_and(|st| st.previews.is_empty())
        })
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_preview_stuck_on_a_silent_registry_never_delays_the_sync() {
    let silent = HostileRegistry::silent().await;
    let silent_host = silent.host();
    let s = Setup::start_with(
        Provider::Github,
        &[
            "--insecure-registry",
            &silent_host,
            "--verify-timeout",
            "5m",
        ],
    )
    .await;
    let (_, stuck) = s.push(
        None,
        "stuck",
        &[Change::write(
            path("stuck"),
            entry("stuck", &silent.reference("os/x"), "amd64", None),
        )],
    );
    s.ask().await;
    eventually(WAIT, "the preview to reach the silent registry", || async {
        (silent.connections() > 0).then_some(())
    })
    .await;
    let main = s
        .repo
        .commit(
            "main",
            "more",
            &[Change::write(
                path("more"),
                entry("more", &s.image, "amd64", None),
            )],
        )
        .unwrap();
    let at = format!("{:.9}", jiff::Timestamp::now());
    s.env
        .patch_source(
            "dev",
            json!({"metadata": {"annotations": {RECONCILE_REQUESTED_AT: at}}}),
        )
        .await;
    s.env.wait_applied("dev", &main).await;
    assert!(s.env.image("more").await.is_some());
    assert!(
        !s.forge.statuses().iter().any(|st| st.sha == stuck),
        "the preview is still waiting on the registry"
    );
}
