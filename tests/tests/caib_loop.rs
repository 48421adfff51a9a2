//! The whole loop with the real reconciler: caib commits (`--direct --wait`), the sync
//! controller applies, the verification controller checks the image in a real registry, and
//! caib returns once the cluster shows its change.

use std::time::Duration;

use catalog_api::{CatalogImage, CatalogSource};
use catalog_e2e::fixture;
use catalog_e2e::process::eventually;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;

#[path = "support/write_setup.rs"]
mod support;
use support::*;
#[path = "support/catalog_cluster.rs"]
mod catalog_cluster;
use catalog_cluster::*;

/// Runs caib with `args` plus `--direct --wait --timeout 60s` in the background; once its commit
/// moved `main`, stands in for the push webhook by asking source `dev` for a sync (annotation
/// value `request`); returns caib's output, which must come within 90 s (`landed` and
/// `returns` name what was awaited).
async fn run_direct_wait(
    s: &Setup,
    sources: &Api<CatalogSource>,
    args: &[&str],
    request: &str,
    landed: &str,
    returns: &str,
) -> std::process::Output {
    use std::process::Stdio;
    let before = s.remote.head("main").unwrap();
    let child = s
        .command(args)
        .args(["--direct", "--wait", "--timeout", "60s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let remote = &s.remote;
    eventually(Duration::from_secs(30), landed, || async {
        (remote.head("main").unwrap() != before).then_some(())
    })
    .await;
    sources
        .patch(
            "dev",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {
                catalog_api::labels::RECONCILE_REQUESTED_AT: request}}})),
        )
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(90), child.wait_with_output())
        .await
        .expect(returns)
        .unwrap()
}

/// The whole loop with the real reconciler: `caib catalog add --direct --wait` commits, the
/// sync controller applies the entry, the verification controller finds the image in the
/// registry, caib returns once it is Available, and `caib catalog list` shows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_loop_add_sync_verify_list() {
    let mut s = Setup::new().await;
    let Published {
        registry,
        pushed: _,
        url,
    } = registry_with("os/loop:v1", "amd64").await;
    let cluster = cluster(&mut s).await;

    // A CatalogSource for dev in `default`, reading the same remote (file://): caib takes
    // its environment from it (no --env anywhere below).
    let sources = source(&cluster, &s, "dev", "environments/dev").await;
    let log = cluster.tmp.path().join("reconciler.log");
    let port = catalog_e2e::git::free_port();
    let mut cmd = fixture::reconciler_command(&cluster.kubeconfig(), port, None);
    cmd.args(["--insecure-registry", &registry.host()])
        .arg("--cache-dir")
        .arg(cluster.tmp.path().join("reconciler-cache"))
        .stderr(fixture::log_file(&log, false));
    let mut reconciler = fixture::spawn_reconciler_async(cmd);

    let add = [
        "catalog",
        "add",
        "loop-image",
        &url,
        "--architecture",
        "amd64",
        "--distro",
        "cs9",
        "--target",
        "qemu",
    ];
    let out = run_direct_wait(
        &s,
        &sources,
        &add,
        "after-caib-add",
        "caib's commit on main",
        "caib --wait returns",
    )
    .await;
    let logs = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        out.status.success(),
        "{}\nreconciler log:\n{logs}",
        show(&out)
    );
    assert_stdout(&out, "Status:        Available");

    let out = s.run(&["catalog", "list"]).await;
    assert_success(&out);
    let line = text(&out.stdout)
        .lines()
        .find(|l| l.starts_with("loop-image"))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("loop-image not listed\n{}", show(&out)));
    assert!(line.contains(&url) && line.contains("Available"), "{line}");

    // A tags-only change: --wait returns once the CatalogImage was applied from the tag's
    // commit and verified at its new generation (the Available object before it does not count).
    let tag = ["catalog", "tag", "loop-image", "production"];
    let out = run_direct_wait(
        &s,
        &sources,
        &tag,
        "after-caib-tag",
        "the tag on main",
        "caib tag --wait returns",
    )
    .await;
    let logs = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        out.status.success(),
        "{}\nreconciler log:\n{logs}",
        show(&out)
    );
    assert_stdout(&out, "Status:        Available");
    let tagged = s.remote.head("main").unwrap();
    let api: Api<CatalogImage> = cluster.api("default");
    let live = api.get("loop-image").await.unwrap();
    assert_eq!(live.spec.tags, ["production"]);
    assert_eq!(
        live.metadata.annotations.unwrap()[catalog_api::labels::SOURCE_REVISION],
        tagged
    );
    let out = s.run(&["catalog", "list", "--tags", "production"]).await;
    assert_success(&out);
    assert_stdout(&out, "loop-image");

    // And back out: remove --wait returns once the sync pruned it.
    let remove = ["catalog", "remove", "loop-image", "--force"];
    let out = run_direct_wait(
        &s,
        &sources,
        &remove,
        "after-caib-remove",
        "the removal on main",
        "caib remove --wait returns",
    )
    .await;
    assert_success(&out);
    assert_stderr(&out, "✓ Removed from the cluster");
    let _ = reconciler.kill().await;
}
