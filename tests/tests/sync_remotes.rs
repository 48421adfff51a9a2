//! Sync over real remotes: git-daemon going away and coming back, smart HTTP with basic auth,
//! two sources claiming one name, and a reconciler killed mid-sync. (Signed commits:
//! sync_signatures.)

use catalog_e2e::suite::sync as sync_common;

use std::time::Duration;

use catalog_e2e::git::{BareRepo, GitDaemon, SmartHttp};
use catalog_e2e::process::eventually;
use serde_json::json;
use sync_common::*;

const REQUEST: &str = "automotive.sdv.cloud.redhat.com/reconcile-requested-at";

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_git_daemon_is_fetch_failed_with_nothing_lost_then_recovers() {
    let repo = BareRepo::from_template("catalog").unwrap();
    let mut daemon = GitDaemon::start_for(repo.base_path()).unwrap();
    let mut env = Env::start().await;
    env.spawn_reconciler(&[]);
    env.create_source("dev", &daemon.url(&repo), json!({"interval": "1s"}))
        .await;
    env.wait_applied("dev", &repo.head("main").unwrap()).await;
    daemon.stop();
    let next = repo
        .write(
            "main",
            "environments/dev/new-one.yaml",
            entry_yaml("new-one", "quay.io/acme/new:1"),
        )
        .unwrap();
    let source = env.wait_ready_reason("dev", "FetchFailed").await;
    let message = ready(&source).unwrap().2;
    assert!(message.contains(&daemon.url(&repo)), "{message}");
    let metrics = env.metrics().await;
    let counted = "catalog_sync_failures_total{source=\"dev\",reason=\"FetchFailed\"}";
    assert!(
        metrics.contains(counted),
        "{counted} missing from\n{metrics}"
    );
    // Syncs between attempts (our own status writes trigger them) keep reporting the failure.
    let later = env
        .wait_source("dev", "a second failed fetch attempt", |s| {
            condition(s, "Reconciling").is_some_and(|c| {
                let attempt = c
                    .2
                    .strip_prefix("fetch attempt ")
                    .and_then(|rest| rest.split(' ').next().and_then(|n| n.parse::<u32>().ok()));
                attempt.is_some_and(|n| n >= 2)
            })
        })
        .await;
    assert_eq!(
        ready(&later).unwrap().1,
        "FetchFailed",
        "{:?}",
        later.status
    );
    env.settle(std::time::Duration::from_millis(300)).await;
    let settled = env.source("dev").await;
    assert_eq!(
        ready(&settled).unwrap().1,
        "FetchFailed",
        "still failing once the syncs after the attempt settled: {:?}",
        settled.status
    );
    assert_eq!(
        env.image_names().await,
        TEMPLATE_DEV,
        "nothing lost while the remote is away"
    );
    daemon.start().unwrap();
    env.wait_applied("dev", &next).await;
    assert_eq!(ready(&env.source("dev").await).unwrap().1, "Synced");
    assert!(env.image("new-one").await.is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn smart_http_with_wrong_credentials_names_the_url_without_the_password() {
    let repo = BareRepo::from_template("catalog").unwrap();
    let http = SmartHttp::start(repo.base_path(), "alice", "right-password")
        .await
        .unwrap();
    let mut env = Env::start().await;
    env.create_secret(
        "git-creds",
        &[("username", "alice"), ("password", "wrong-password")],
    )
    .await;
    env.spawn_reconciler(&[]);
    env.create_source(
        "dev",
        &http.url(&repo),
        json!({"secretRef": {"name": "git-creds"}}),
    )
    .await;
    let source = env.wait_ready_reason("dev", "FetchFailed").await;
    let message = ready(&source).unwrap().2;
    assert!(message.contains(&http.url(&repo)), "{message}");
    assert!(message.contains("authentication"), "{message}");
    assert!(!message.contains("wrong-password"), "{message}");
    assert!(env.image_names().await.is_empty());

    // Credentials in the URL are redacted as well.
    let url_with_password = http
        .url(&repo)
        .replace("http://", "http://alice:pw-in-url@");
    env.create_source(
        "inline",
        &url_with_password,
        json!({"path": "environments/staging"}),
    )
    .await;
    let source = env.wait_ready_reason("inline", "FetchFailed").await;
    let message = ready(&source).unwrap().2;
    assert!(message.contains("http://***@127.0.0.1"), "{message}");
    assert!(!message.contains("pw-in-url"), "{message}");

    // Fixing the secret recovers.
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::namespaced(env.client.clone(), NS);
    secrets
        .patch(
            "git-creds",
            &Default::default(),
            &kube::api::Patch::Merge(json!({"stringData": {"password": "right-password"}})),
        )
        .await
        .unwrap();
    env.patch_source(
        "dev",
        json!({"metadata": {"annotations": {REQUEST: "fixed"}}}),
    )
    .await;
    env.wait_applied("dev", &repo.head("main").unwrap()).await;
    assert_eq!(env.image_names().await, TEMPLATE_DEV);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_sources_claiming_one_name_are_both_in_conflict() {
    let repo = BareRepo::from_template("catalog").unwrap();
    let mut env = Env::start().await;
    env.spawn_reconciler(&[]);
    env.create_source("dev", &repo.file_url(), json!({})).await;
    env.wait_applied("dev", &repo.head("main").unwrap()).await;
    // staging also declares autosd-cs9-rpi4, in the same namespace.
    env.create_source(
        "staging",
        &repo.file_url(),
        json!({"path": "environments/staging"}),
    )
    .await;
    let staging = env.wait_ready_reason("staging", "Conflict").await;
    let dev = env.wait_ready_reason("dev", "Conflict").await;
    for source in [&staging, &dev] {
        let conflicts = &source.status.as_ref().unwrap().conflicts;
        assert_eq!(conflicts.len(), 1, "{conflicts:?}");
        assert_eq!(conflicts[0].name, "autosd-cs9-rpi4");
    }
    let image = env.image("autosd-cs9-rpi4").await.unwrap();
    assert_eq!(
        source_label(&image),
        Some("dev"),
        "the first owner keeps it untouched"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reconciler_killed_mid_sync_converges_after_restart_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let env_dir = dir.path().join("environments/dev");
    std::fs::create_dir_all(&env_dir).unwrap();
    const N: usize = 400;
    for i in 0..N {
        std::fs::write(
            env_dir.join(format!("e{i:04}.yaml")),
            entry_yaml(&format!("e{i:04}"), &format!("quay.io/acme/e{i}:1")),
        )
        .unwrap();
    }
    let repo = BareRepo::seeded("catalog", dir.path()).unwrap();
    let head = repo.head("main").unwrap();
    let mut env = Env::start().await;
    env.spawn_reconciler(&[]);
    env.create_source("dev", &repo.file_url(), json!({})).await;
    eventually(
        Duration::from_secs(20),
        "the first entries to be applied",
        || async {
            let n = env.image_names().await.len();
            (n > 0).then_some(n)
        },
    )
    .await;
    env.kill_reconciler();
    let partial = env.image_names().await.len();
    eprintln!("reconciler killed with {partial} of {N} entries applied");
    env.spawn_reconciler(&[]);
    env.wait_applied("dev", &head).await;
    let names = env.image_names().await;
    assert_eq!(names.len(), N, "killed after {partial} of {N}");
    let status = env.source("dev").await.status.unwrap();
    assert_eq!(status.summary.as_ref().map(|s| s.entries), Some(N as i32));
    let images = env.images().list(&Default::default()).await.unwrap().items;
    assert!(images.iter().all(|i| source_label(i) == Some("dev")));
}
