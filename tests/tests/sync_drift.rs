//! A reverted manual change is visible: the real `catalog-reconciler` against the emulator
//! and a real git remote, the real kubectl making the change and the real caib reading it
//! back. A `kubectl patch` of a managed CatalogImage is put back, and the sync says so with a
//! Warning Event `DriftReverted` on the image (the fields, the owning file, the caib command),
//! the `catalog_sync_drift_reverted_total` counter and `caib catalog get`; a Git change is
//! not drift.

use catalog_e2e::suite::sync as sync_common;

use std::process::Command;
use std::time::Duration;

use catalog_api::labels::RECONCILE_REQUESTED_AT;
use catalog_e2e::git::BareRepo;
use catalog_e2e::kubectl::Kubectl;
use catalog_e2e::process::{binary, eventually};
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use serde_json::json;
use sync_common::*;

const RPI4: &str = "autosd-cs9-rpi4";
const RPI4_FILE: &str = "environments/dev/autosd-cs9-rpi4.yaml";
const QEMU_FILE: &str = "environments/dev/autosd-cs9-qemu.yaml";

/// The DriftReverted Events of the namespace.
async fn reverts(env: &Env) -> Vec<Event> {
    let api: Api<Event> = Api::namespaced(env.client.clone(), NS);
    let events = api.list(&Default::default()).await.unwrap().items;
    events
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("DriftReverted"))
        .collect()
}

/// The value of `catalog_sync_drift_reverted_total{source="dev"}` (0 when not exported yet).
async fn reverted_total(env: &Env) -> u64 {
    env.metrics()
        .await
        .lines()
        .find_map(|l| l.strip_prefix("catalog_sync_drift_reverted_total{source=\"dev\"} "))
        .map_or(0, |v| v.trim().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kubectl_patch_is_reverted_with_an_event_a_metric_and_caib_get_saying_so() {
    let repo = BareRepo::from_template("catalog").unwrap();
    let mut env = Env::start().await;
    env.spawn_reconciler(&[]);
    // An interval of one hour: only the watch event brings the entry back in time.
    env.create_source("dev", &repo.file_url(), json!({"interval": "1h"}))
        .await;
    env.wait_applied("dev", &repo.head("main").unwrap()).await;

    // Premise: a commit editing a file changes its entry through the same update path, and
    // that is no drift. It also leaves rpi4 written from the previous revision.
    let qemu = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../catalog-repo-template")
            .join(QEMU_FILE),
    )
    .unwrap();
    let head = repo
        .write(
            "main",
            QEMU_FILE,
            qemu.replace("- nightly", "- nightly\n    - tested"),
        )
        .unwrap();
    let request = json!({"metadata": {"annotations": {RECONCILE_REQUESTED_AT: "edit"}}});
    env.patch_source("dev", request).await;
    env.wait_applied("dev", &head).await;
    let tags = env.image("autosd-cs9-qemu").await.unwrap().spec.tags;
    assert_eq!(tags, ["nightly", "tested"]);
    env.settle(Duration::from_millis(300)).await;
    assert!(reverts(&env).await.is_empty(), "{:?}", reverts(&env).await);
    assert_eq!(reverted_total(&env).await, 0);

    // The seed guide's "tag as production", done with kubectl instead of through Git.
    let kubectl = Kubectl::new(Some(&env.emu));
    let patched = kubectl.ok(&[
        "patch",
        "-n",
        NS,
        "catalogimage",
        RPI4,
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"tags":["nightly","production"]}}"#,
    ]);
    assert!(patched.contains("patched"), "{patched}");
    eventually(Duration::from_secs(5), "the tags to come back", || async {
        let image = env.image(RPI4).await.unwrap();
        (image.spec.tags == ["nightly"]).then_some(())
    })
    .await;
    let events = eventually(Duration::from_secs(5), "a DriftReverted Event", || async {
        let events = reverts(&env).await;
        (!events.is_empty()).then_some(events)
    })
    .await;
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    let regarding = event.regarding.as_ref().unwrap();
    assert_eq!(
        (regarding.kind.as_deref(), regarding.name.as_deref()),
        (Some("CatalogImage"), Some(RPI4))
    );
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    let note = event.note.as_deref().unwrap();
    for part in [
        "reverted: spec.tags.",
        RPI4_FILE,
        "`caib catalog tag autosd-cs9-rpi4 TAG...`",
    ] {
        assert!(note.contains(part), "{part:?} in {note}");
    }
    assert_eq!(reverted_total(&env).await, 1);

    // caib shows it to whoever runs `get` next.
    let out = Command::new(binary("caib"))
        .args(["catalog", "get", RPI4, "-n", NS])
        .env("KUBECONFIG", env.kubeconfig())
        .env("HOME", env.tmp.path())
        .env("NO_COLOR", "1")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = stdout
        .split("lastDriftReverted:\n")
        .nth(1)
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(shown.starts_with("  time: \"20"), "{stdout}");
    assert!(shown.contains("reverted: spec.tags."), "{stdout}");
}
