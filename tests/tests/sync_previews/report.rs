//! What a preview reports for each kind of pull request, and that it is reported once.

use catalog_api::source::PreviewState;
use catalog_e2e::forge::Provider;
use catalog_e2e::git::Change;
use catalog_e2e::process::eventually;

use super::sync_common::*;
use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn previews_report_what_each_pull_request_would_do_and_apply_nothing() {
    let s = Setup::start(Provider::Github).await;
    let base = s.env.image_names().await;
    let missing = format!("sha256:{}", "e".repeat(64));
    let (good, good_sha) = s.push(
        None,
        "good",
        &[Change::write(
            path("good"),
            entry("good", &s.image, "amd64", Some(&s.digest)),
        )],
    );
    let (absent, absent_sha) = s.push(
        None,
        "absent",
        &[Change::write(
            path("absent"),
            entry("absent", &s.image, "amd64", Some(&missing)),
        )],
    );
    let (arm, arm_sha) = s.push(
        None,
        "arm",
        &[Change::write(
            path("arm"),
            entry("arm", &s.image, "arm64", None),
        )],
    );
    let (deletes, deletes_sha) = s.push(
        None,
        "deletes",
        &[
            Change::delete(path("base-0")),
            Change::delete(path("base-1")),
        ],
    );
    s.ask().await;

    let status = s.status_of(&good_sha).await;
    assert_eq!(status.state, "success", "{status:?}");
    assert_eq!(described(&status), "1 created: every image verified");
    let comment = s.comment(good, "| good |").await;
    let row = comment
        .lines()
        .find(|l| l.starts_with("| good |"))
        .unwrap_or_else(|| panic!("a row for the entry: {comment}"));
    assert!(
        row.contains("| created |") && row.contains("| ok |"),
        "{row}"
    );
    assert!(
        row.contains(&s.digest) && row.contains("linux/amd64"),
        "{row}"
    );

    let status = s.status_of(&absent_sha).await;
    assert_eq!(status.state, "failure", "{status:?}");
    assert!(described(&status).contains("1 image failed"), "{status:?}");
    let comment = s.comment(absent, "| absent |").await;
    assert!(
        comment.contains(&missing) && comment.contains("DigestNotFound"),
        "{comment}"
    );

    let status = s.status_of(&arm_sha).await;
    assert_eq!(status.state, "failure", "{status:?}");
    let comment = s.comment(arm, "| arm |").await;
    assert!(
        comment.contains("ArchitectureMismatch") && comment.contains("arm64"),
        "{comment}"
    );

    let status = s.status_of(&deletes_sha).await;
    assert_eq!(status.state, "failure", "{status:?}");
    assert!(
        described(&status).contains("will need approval"),
        "{status:?}"
    );
    let comment = s.comment(deletes, "| base-0 |").await;
    assert!(comment.contains("| base-0 | pruned |"), "{comment}");
    assert!(comment.contains("approve-deletions"), "{comment}");

    let previews = s.previews(|p| p.len() == 4).await;
    let states: Vec<(u64, PreviewState)> = previews.iter().map(|p| (p.number, p.state)).collect();
    assert_eq!(
        states,
        [
            (deletes, PreviewState::Failure),
            (arm, PreviewState::Failure),
            (absent, PreviewState::Failure),
            (good, PreviewState::Success)
        ]
    );
    assert_eq!(
        (previews[3].created, previews[3].head.as_str()),
        (1, good_sha.as_str())
    );
    assert_eq!(previews[0].pruned, 2);
    // Nothing of any pull request reached the cluster.
    assert_eq!(s.env.image_names().await, base);
    // `caib catalog status` shows them.
    let out = std::process::Command::new(catalog_e2e::process::binary("caib"))
        .args(["catalog", "status", "dev", "-n", NS])
        .env("KUBECONFIG", s.env.kubeconfig())
        .env("HOME", s.env.tmp.path())
        .output()
        .expect("caib runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let section = text
        .split("Pull-request previews:")
        .nth(1)
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        section.contains(&format!("#{good} ")) && section.contains("Success"),
        "{text}"
    );
    assert!(
        section.contains(&format!("#{deletes} ")) && section.contains("will need approval"),
        "{text}"
    );
    let _ = &s.registry;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_evaluated_head_is_not_evaluated_again_even_after_a_restart() {
    let mut s = Setup::start(Provider::Github).await;
    let (_, first) = s.push(
        None,
        "one",
        &[Change::write(
            path("one"),
            entry("one", &s.image, "amd64", None),
        )],
    );
    s.ask().await;
    s.status_of(&first).await;
    // Recorded in the status (after the status and comment are posted) before the restart.
    s.env
        .wait_source("dev", "the first preview to be recorded", |src| {
            src.status
                .as_ref()
                .is_some_and(|st| st.previews.iter().any(|p| p.head == first))
        })
        .await;
    let host = s.registry.host();
    s.env.spawn_reconciler(&["--insecure-registry", &host]);
    let (second_pr, second) = s.push(
        None,
        "two",
        &[Change::write(
            path("two"),
            entry("two", &s.image, "amd64", None),
        )],
    );
    s.ask().await;
    s.status_of(&second).await;
    s.comment(second_pr, "| two |").await;
    // The pass that evaluated #2 has ended once the next one lists the pull requests.
    let listed = s.forge.requests_matching("GET", "/pulls").len();
    s.ask().await;
    let forge = &s.forge;
    eventually(WAIT, "another pass", || async {
        (forge.requests_matching("GET", "/pulls").len() > listed).then_some(())
    })
    .await;
    let posted = |sha: &str| {
        s.forge
            .statuses()
            .iter()
            .filter(|st| st.sha == sha && st.context.as_deref() == Some("catalog-preview/dev"))
            .count()
    };
    assert_eq!(posted(&first), 1, "the head evaluated before the restart");
    assert_eq!(posted(&second), 1);
}
