//! CatalogSource sync end to end: the real `catalog-reconciler`, the Kubernetes API emulator
//! and real git remotes (file:// bare repositories).

use catalog_e2e::suite::sync as sync_common;

use std::time::Duration;

use catalog_api::labels::{APPROVE_DELETIONS, ARCHITECTURE, CATALOG_SOURCE};
use catalog_e2e::emulator::Fault;
use catalog_e2e::git::{BareRepo, Change};
use catalog_e2e::process::eventually;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use sync_common::*;

async fn started(name: &str, spec: serde_json::Value) -> (Env, BareRepo, String) {
    let repo = BareRepo::from_template("catalog").unwrap();
    let mut env = Env::start().await;
    env.spawn_reconciler(&[]);
    env.create_source(name, &repo.file_url(), spec).await;
    let head = repo.head("main").unwrap();
    env.wait_applied(name, &head).await;
    (env, repo, head)
}

#[tokio::test(flavor = "multi_thread")]
async fn initial_sync_creates_every_entry_with_source_label_and_annotations() {
    let (env, _repo, head) = started("dev", json!({})).await;
    assert_eq!(env.image_names().await, TEMPLATE_DEV);
    for name in TEMPLATE_DEV {
        let image = env.image(name).await.unwrap();
        assert_eq!(source_label(&image), Some("dev"));
        assert_eq!(revision_of(&image), Some(head.as_str()));
        assert_eq!(
            path_of(&image),
            Some(format!("environments/dev/{name}.yaml").as_str())
        );
        assert!(
            label(&image, ARCHITECTURE).is_some(),
            "spec labels on {name}"
        );
        let managers: Vec<_> = image
            .metadata
            .managed_fields
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| m.manager)
            .collect();
        assert!(
            managers.iter().any(|m| m == "catalog-reconciler"),
            "{managers:?}"
        );
    }
    let source = env.source("dev").await;
    let status = source.status.unwrap();
    assert_eq!(status.summary.as_ref().unwrap().entries, 3);
    assert_eq!(status.summary.as_ref().unwrap().pending, 3);
    assert_eq!(status.history.len(), 1);
    assert_eq!(status.history[0].created, 3);
    assert_eq!(ready(&env.source("dev").await).unwrap().0, "True");

    // Events and metrics.
    let events: kube::Api<k8s_openapi::api::events::v1::Event> =
        kube::Api::namespaced(env.client.clone(), NS);
    // The Event is published right after the status write: poll for it.
    eventually(Duration::from_secs(5), "a Synced event", || async {
        let items = events.list(&Default::default()).await.unwrap().items;
        items
            .iter()
            .any(|e| {
                e.reason.as_deref() == Some("Synced")
                    && e.note.as_deref().unwrap_or_default().contains("3 created")
            })
            .then_some(())
    })
    .await;
    let metrics = env.metrics().await;
    for needle in [
        "catalog_sync_api_writes_total{verb=\"apply\"} 3",
        "catalog_sync_entries_total{source=\"dev\",outcome=\"created\"} 3",
        "catalog_sync_duration_seconds_count{source=\"dev\"}",
        "catalog_sync_commit_to_applied_seconds_count 1",
    ] {
        assert!(metrics.contains(needle), "{needle} missing from\n{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_commit_changing_one_file_updates_exactly_that_entry() {
    let (env, repo, first) = started("dev", json!({})).await;
    env.settle(Duration::from_millis(300)).await;
    env.emu.reset_requests();
    let path = "environments/dev/autosd-cs9-qemu.yaml";
    let text = String::from_utf8(repo.read("main", path).unwrap())
        .unwrap()
        .replace("nightly", "weekly");
    let second = repo.write("main", path, text).unwrap();
    env.patch_source("dev", json!({"metadata": {"annotations": {"automotive.sdv.cloud.redhat.com/reconcile-requested-at": "1"}}})).await;
    env.wait_applied("dev", &second).await;
    env.settle(Duration::from_millis(300)).await;
    assert_eq!(
        env.emu.request_count("patch catalogimages"),
        1,
        "{:?}",
        env.emu.requests()
    );
    assert_eq!(env.emu.request_count("delete catalogimages"), 0);
    let changed = env.image("autosd-cs9-qemu").await.unwrap();
    assert_eq!(changed.spec.tags, vec!["weekly".to_string()]);
    assert_eq!(revision_of(&changed), Some(second.as_str()));
    let untouched = env.image("autosd-cs9-rpi4").await.unwrap();
    assert_eq!(revision_of(&untouched), Some(first.as_str()));
    let status = env.source("dev").await.status.unwrap();
    assert_eq!(status.last_handled_reconcile_at.as_deref(), Some("1"));
    assert_eq!(
        (status.history[0].created, status.history[0].updated),
        (0, 1)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_file_prunes_its_entry_and_a_broken_file_keeps_its_previous_entry() {
    let (env, repo, _) = started("dev", json!({"interval": "1s"})).await;
    let before = env.image("autosd-cs9-rpi4").await.unwrap();
    let commit = repo
        .commit(
            "main",
            "break one, delete one, add one",
            &[
                Change::delete("environments/dev/autosd-cs9-qemu.yaml"),
                Change::write("environments/dev/autosd-cs9-rpi4.yaml", "apiVersion: automotive.sdv.cloud.redhat.com/v1alpha1\nkind: CatalogImage\nmetadata:\n  name: autosd-cs9-rpi4\nspec:\n  registryUrl: [oops\n"),
                Change::write("environments/dev/new-one.yaml", entry_yaml("new-one", "quay.io/acme/new:1")),
            ],
        )
        .unwrap();
    env.wait_applied("dev", &commit).await;
    assert_eq!(
        env.image_names().await,
        ["autosd-cs9-arm-boards", "autosd-cs9-rpi4", "new-one"]
    );
    let kept = env.image("autosd-cs9-rpi4").await.unwrap();
    assert_eq!(
        kept.spec, before.spec,
        "the broken file's entry is untouched"
    );
    assert_eq!(
        kept.metadata.resource_version,
        before.metadata.resource_version
    );
    let source = env.source("dev").await;
    let status = source.status.clone().unwrap();
    assert_eq!(
        status.invalid_entries.len(),
        1,
        "{:?}",
        status.invalid_entries
    );
    let invalid = &status.invalid_entries[0];
    assert_eq!(invalid.path, "environments/dev/autosd-cs9-rpi4.yaml");
    assert!(invalid.line >= 6, "{invalid:?}");
    let (ok, reason, message) = ready(&source).unwrap();
    assert_eq!((ok.as_str(), reason.as_str()), ("False", "InvalidEntries"));
    assert!(
        message.contains("environments/dev/autosd-cs9-rpi4.yaml:"),
        "{message}"
    );
    assert_eq!(
        status.summary.as_ref().map(|s| s.entries),
        Some(3),
        "the broken file's entry is still managed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn deletions_over_max_deletions_wait_for_approval() {
    let (env, repo, _) = started("dev", json!({"maxDeletions": 1})).await;
    let commit = repo
        .commit(
            "main",
            "remove two",
            &[
                Change::delete("environments/dev/autosd-cs9-qemu.yaml"),
                Change::delete("environments/dev/autosd-cs9-rpi4.yaml"),
                Change::write(
                    "environments/dev/new-one.yaml",
                    entry_yaml("new-one", "quay.io/acme/new:1"),
                ),
            ],
        )
        .unwrap();
    env.patch_source("dev", json!({"metadata": {"annotations": {"automotive.sdv.cloud.redhat.com/reconcile-requested-at": "a"}}})).await;
    let source = env.wait_ready_reason("dev", "DeletionBudgetExceeded").await;
    let message = ready(&source).unwrap().2;
    assert!(
        message.contains("would delete 2 entries, over maxDeletions (1)"),
        "{message}"
    );
    assert!(
        message.contains(&format!("{APPROVE_DELETIONS}={commit}")),
        "{message}"
    );
    let names = env.image_names().await;
    assert_eq!(
        names,
        [
            "autosd-cs9-arm-boards",
            "autosd-cs9-qemu",
            "autosd-cs9-rpi4",
            "new-one"
        ],
        "the rest applies, nothing deleted"
    );
    // A prefix approves nothing; the message gives the full id to copy.
    let short = &commit[..7];
    env.patch_source(
        "dev",
        json!({"metadata": {"annotations": {APPROVE_DELETIONS: short}}}),
    )
    .await;
    let source = env
        .wait_source("dev", "a refused short approval", |s| {
            ready(s).is_some_and(|c| c.2.contains("is not a full commit id"))
        })
        .await;
    let message = ready(&source).unwrap().2;
    assert!(
        message.contains(&format!(
            "approve-deletions \"{short}\" is not a full commit id; approve with: kubectl -n {NS} annotate catalogsource dev {APPROVE_DELETIONS}={commit} --overwrite"
        )),
        "{message}"
    );
    assert_eq!(env.image_names().await.len(), 4, "nothing deleted");
    env.patch_source(
        "dev",
        json!({"metadata": {"annotations": {APPROVE_DELETIONS: commit}}}),
    )
    .await;
    env.wait_ready_reason("dev", "Synced").await;
    assert_eq!(
        env.image_names().await,
        ["autosd-cs9-arm-boards", "new-one"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unlabelled_existing_catalog_image_is_never_taken_over() {
    let repo = BareRepo::from_template("catalog").unwrap();
    let mut env = Env::start().await;
    let manual = json!({
        "apiVersion": "automotive.sdv.cloud.redhat.com/v1alpha1", "kind": "CatalogImage",
        "metadata": {"name": "autosd-cs9-qemu", "namespace": NS},
        "spec": {"registryUrl": "quay.io/someone/else:1"}
    });
    env.images()
        .create(
            &PostParams::default(),
            &serde_json::from_value(manual).unwrap(),
        )
        .await
        .unwrap();
    env.spawn_reconciler(&[]);
    env.create_source("dev", &repo.file_url(), json!({})).await;
    let source = env.wait_ready_reason("dev", "Conflict").await;
    let status = source.status.clone().unwrap();
    assert_eq!(status.conflicts.len(), 1);
    assert_eq!(status.conflicts[0].name, "autosd-cs9-qemu");
    assert!(status.conflicts[0].message.contains("never taken over"));
    let manual = env.image("autosd-cs9-qemu").await.unwrap();
    assert_eq!(manual.spec.registry_url, "quay.io/someone/else:1");
    assert_eq!(source_label(&manual), None);
    assert!(
        env.image("autosd-cs9-rpi4").await.is_some(),
        "the other entries apply"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kubectl_edit_is_reverted_on_the_watch_event_and_a_noop_resync_writes_nothing() {
    let (env, _repo, _) = started("dev", json!({"interval": "1s"})).await;
    env.settle(Duration::from_millis(300)).await;
    // No-op: interval fetches of the same revision send no write at all.
    env.emu.reset_requests();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(env.emu.writes(), 0, "{:?}", env.emu.requests());
    // Drift: another manager edits a managed field.
    env.images()
        .patch(
            "autosd-cs9-qemu",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"registryUrl": "quay.io/evil/image:1"}})),
        )
        .await
        .unwrap();
    let started = std::time::Instant::now();
    eventually(
        Duration::from_secs(5),
        "the drift to be reverted",
        || async {
            let image = env.image("autosd-cs9-qemu").await.unwrap();
            (image.spec.registry_url == "quay.io/centos-automotive/autosd:cs9-qemu").then_some(())
        },
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "reverted in {:?}",
        started.elapsed()
    );
    // A deleted managed object comes back too.
    env.images()
        .delete("autosd-cs9-rpi4", &DeleteParams::default())
        .await
        .unwrap();
    eventually(
        Duration::from_secs(5),
        "the deleted entry to be recreated",
        || async { env.image("autosd-cs9-rpi4").await },
    )
    .await;
    let qemu = env.image("autosd-cs9-qemu").await.unwrap();
    assert_eq!(label(&qemu, CATALOG_SOURCE), Some("dev"));
}

/// Lists that grow with the catalog are capped in the status: 150 invalid files and 120
/// names held by hand-made CatalogImages list the first 100 of each, sorted, beside their
/// totals (read as raw JSON, as kubectl shows it).
#[tokio::test(flavor = "multi_thread")]
async fn invalid_entries_and_conflicts_list_the_first_100_beside_their_totals() {
    let repo = BareRepo::from_template("catalog").unwrap();
    let mut env = Env::start().await;
    let mut changes = Vec::new();
    for i in 0..150 {
        let path = format!("environments/dev/broken-{i:03}.yaml");
        changes.push(Change::write(path, "kind: [oops\n"));
    }
    for i in 0..120 {
        let name = format!("taken-{i:03}");
        let path = format!("environments/dev/{name}.yaml");
        changes.push(Change::write(path, entry_yaml(&name, "quay.io/acme/t:1")));
        let object = json!({"apiVersion": "automotive.sdv.cloud.redhat.com/v1alpha1", "kind": "CatalogImage",
            "metadata": {"name": name, "namespace": NS}, "spec": {"registryUrl": "quay.io/someone/else:1"}});
        env.images()
            .create(
                &PostParams::default(),
                &serde_json::from_value(object).unwrap(),
            )
            .await
            .unwrap();
    }
    let head = repo.commit("main", "many problems", &changes).unwrap();
    env.spawn_reconciler(&[]);
    env.create_source("dev", &repo.file_url(), json!({})).await;
    env.wait_applied("dev", &head).await;
    let resource = kube::core::ApiResource::erase::<catalog_api::CatalogSource>(&());
    let raw: kube::Api<kube::core::DynamicObject> =
        kube::Api::namespaced_with(env.client.clone(), NS, &resource);
    let source = serde_json::to_value(raw.get("dev").await.unwrap()).unwrap();
    let status = &source["status"];
    let invalid = status["invalidEntries"].as_array().unwrap();
    assert_eq!(
        (invalid.len(), &status["invalidEntriesTotal"]),
        (100, &json!(150))
    );
    assert_eq!(invalid[0]["path"], "environments/dev/broken-000.yaml");
    assert_eq!(invalid[99]["path"], "environments/dev/broken-099.yaml");
    let conflicts = status["conflicts"].as_array().unwrap();
    assert_eq!(
        (conflicts.len(), &status["conflictsTotal"]),
        (100, &json!(120))
    );
    assert_eq!(conflicts[0]["name"], "taken-000");
    assert_eq!(status["summary"]["invalid"], 150);
    assert_eq!(status["summary"]["entries"], TEMPLATE_DEV.len());
    assert!(status.get("inventory").is_none(), "{status}");
}

/// A sync's writes go before verifications (`reconciler/src/sync_writes.rs`): while the API
/// server holds one apply of the sync, the images it already created wait unverified; once
/// the sync has reported, they are verified. Both controllers run, as shipped.
#[tokio::test(flavor = "multi_thread")]
async fn verifications_wait_until_the_sync_has_written() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("tree");
    let dir = tree.join("environments/dev");
    std::fs::create_dir_all(&dir).unwrap();
    let names: Vec<String> = (0..20).map(|i| format!("image-{i:02}")).collect();
    for name in &names {
        // Nothing listens on port 1: each verification fails at once and writes a status.
        let file = entry_yaml(name, &format!("127.0.0.1:1/os/{name}:1"));
        std::fs::write(dir.join(format!("{name}.yaml")), file).unwrap();
    }
    let repo = BareRepo::seeded("catalog", &tree).unwrap();
    let head = repo.head("main").unwrap();
    let mut env = Env::start().await;
    // The sync's first apply is answered 5 s late: the sync writes all that time.
    env.emu.fail_next(
        Fault::resource("catalogimages")
            .verb("patch")
            .answer_after(Duration::from_secs(5)),
    );
    env.spawn_both_controllers(&[]);
    env.create_source("dev", &repo.file_url(), json!({})).await;
    let mut created_while_writing = 0;
    loop {
        // Counted before the source is read: when the source does not show the revision
        // yet, the sync was still writing when the count was taken.
        let verified = env.emu.request_count("patch catalogimages/status");
        let applied = env
            .source("dev")
            .await
            .status
            .and_then(|s| s.last_applied_revision);
        if applied.as_deref() == Some(head.as_str()) {
            break;
        }
        assert_eq!(verified, 0, "an image was verified while the sync wrote");
        created_while_writing = created_while_writing.max(env.image_names().await.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        created_while_writing >= 19,
        "the premise: the other images existed while one apply was held ({created_while_writing})"
    );
    for name in &names {
        eventually(WAIT, "every image verified after the sync", || async {
            env.image(name).await?.status?.phase
        })
        .await;
    }
    let metrics = env.metrics().await;
    assert!(
        metrics.lines().any(
            |l| l.starts_with("catalog_verifications_waited_for_sync_total ") && !l.ends_with(" 0")
        ),
        "{metrics}"
    );
}
