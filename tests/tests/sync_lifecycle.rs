//! What happens to a source's CatalogImages over the source's life: deleted with it (the
//! prune finalizer) unless `prune` is off, moved when `targetNamespace` changes, and never
//! touched by a same-named source of another namespace. The tests that apply into another
//! namespace run with `--allow-cross-namespace-targets` (the single-tenant layout; the
//! default refusal is in the tenancy suite).

use catalog_e2e::suite::sync as sync_common;

use catalog_api::CatalogSource;
use catalog_api::labels::{CATALOG_SOURCE, SOURCE_FINALIZER, SOURCE_NAMESPACE};
use std::time::Duration;

use catalog_e2e::git::{BareRepo, Change};
use catalog_e2e::kubectl::{Kubectl, succeeded};
use catalog_e2e::process::eventually;
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use sync_common::*;

async fn create_namespace(env: &Env, name: &str) {
    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": name}})).unwrap(),
        )
        .await
        .expect("create namespace");
}

async fn wait_names(env: &Env, namespace: &str, want: &[&str]) {
    eventually(
        WAIT,
        &format!("CatalogImages {want:?} in {namespace}"),
        || async { (env.image_names_in(namespace).await == want).then_some(()) },
    )
    .await;
}

/// Deletes a CatalogSource and waits until its finalizer let it go.
async fn delete_source(env: &Env, name: &str) {
    env.sources()
        .delete(name, &DeleteParams::default())
        .await
        .unwrap();
    eventually(
        WAIT,
        &format!("CatalogSource {name} to be gone"),
        || async {
            env.sources()
                .get_opt(name)
                .await
                .unwrap()
                .is_none()
                .then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_source_deletes_its_images_unless_prune_is_off() {
    let repo = BareRepo::from_template("catalog").unwrap();
    let head = repo.head("main").unwrap();
    let mut env = Env::start().await;
    env.spawn_reconciler(&["--allow-cross-namespace-targets"]);
    env.create_source("dev", &repo.file_url(), json!({})).await;
    env.create_source(
        "staging",
        &repo.file_url(),
        json!({"path": "environments/staging", "prune": false, "targetNamespace": "kept"}),
    )
    .await;
    create_namespace(&env, "kept").await;
    let source = env.wait_applied("dev", &head).await;
    env.wait_applied("staging", &head).await;
    assert!(
        source
            .metadata
            .finalizers
            .unwrap_or_default()
            .contains(&SOURCE_FINALIZER.to_string()),
        "the sync adds its finalizer"
    );
    wait_names(&env, "kept", &["autosd-cs9-rpi4"]).await;

    delete_source(&env, "dev").await;
    assert!(
        env.image_names().await.is_empty(),
        "the images of dev went with it"
    );

    delete_source(&env, "staging").await;
    assert_eq!(
        env.image_names_in("kept").await,
        ["autosd-cs9-rpi4"],
        "prune: false keeps the images"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_target_namespace_gets_the_entries_and_the_old_one_is_emptied() {
    let repo = BareRepo::from_template("catalog").unwrap();
    let head = repo.head("main").unwrap();
    let mut env = Env::start().await;
    create_namespace(&env, "moved").await;
    env.spawn_reconciler(&["--allow-cross-namespace-targets"]);
    env.create_source("dev", &repo.file_url(), json!({})).await;
    env.wait_applied("dev", &head).await;
    assert_eq!(env.image_names().await, TEMPLATE_DEV);

    env.patch_source("dev", json!({"spec": {"targetNamespace": "moved"}}))
        .await;
    wait_names(&env, "moved", &TEMPLATE_DEV).await;
    wait_names(&env, NS, &[]).await;
    let source = env.source("dev").await;
    assert_eq!(ready(&source).unwrap().0, "True", "{:?}", source.status);
}

#[tokio::test(flavor = "multi_thread")]
async fn same_named_sources_of_two_namespaces_never_prune_each_other() {
    let repo = BareRepo::from_template("catalog").unwrap();
    let head = repo.head("main").unwrap();
    let mut env = Env::start().await;
    create_namespace(&env, "team-b").await;
    env.spawn_reconciler(&["--allow-cross-namespace-targets"]);
    env.create_source("dev", &repo.file_url(), json!({})).await;
    env.wait_applied("dev", &head).await;

    // Another "dev", in team-b, applying the staging entry into the same namespace.
    let team_b: Api<CatalogSource> = Api::namespaced(env.client.clone(), "team-b");
    team_b
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "automotive.sdv.cloud.redhat.com/v1alpha1", "kind": "CatalogSource",
                "metadata": {"name": "dev", "namespace": "team-b"},
                "spec": {"url": repo.file_url(), "ref": {"branch": "main"}, "interval": "1h",
                         "path": "environments/staging", "targetNamespace": NS}
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    eventually(WAIT, "team-b/dev to report a conflict", || async {
        let source = team_b.get("dev").await.unwrap();
        let status = source.status?;
        (status.last_applied_revision.as_deref() == Some(head.as_str())
            && !status.conflicts.is_empty())
        .then_some(status)
    })
    .await;
    // Both declare autosd-cs9-rpi4: a conflict on both sides; nothing of either is pruned.
    env.settle(std::time::Duration::from_millis(500)).await;
    assert_eq!(env.image_names().await, TEMPLATE_DEV);
    let rpi4 = env.image("autosd-cs9-rpi4").await.unwrap();
    let annotations = rpi4.metadata.annotations.unwrap_or_default();
    assert_eq!(
        annotations.get(SOURCE_NAMESPACE).map(String::as_str),
        Some(NS)
    );
    assert_eq!(
        rpi4.metadata.labels.unwrap_or_default().get(CATALOG_SOURCE),
        Some(&"dev".to_string())
    );
    let ours = env.source("dev").await.status.unwrap();
    assert_eq!(
        ours.summary.as_ref().map(|s| s.entries),
        Some(TEMPLATE_DEV.len() as i32),
        "{ours:?}"
    );
    assert!(!ours.conflicts.is_empty(), "{ours:?}");
    let theirs = team_b.get("dev").await.unwrap().status.unwrap();
    assert_eq!(
        theirs.summary.as_ref().map(|s| s.entries),
        Some(0),
        "{theirs:?}"
    );
    assert!(
        theirs.conflicts[0]
            .message
            .contains("another CatalogSource"),
        "{:?}",
        theirs.conflicts
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn phase_changes_reach_the_summary_in_a_batch_not_one_write_each() {
    let repo = BareRepo::from_template("catalog").unwrap();
    let extra: Vec<Change> = (0..20)
        .map(|i| {
            Change::write(
                format!("environments/dev/extra-{i:02}.yaml"),
                entry_yaml(&format!("extra-{i:02}"), &format!("quay.io/acme/extra:{i}")),
            )
        })
        .collect();
    let head = repo.commit("main", "twenty more", &extra).unwrap();
    let mut env = Env::start().await;
    env.spawn_reconciler(&[]);
    env.create_source("dev", &repo.file_url(), json!({})).await;
    env.wait_applied("dev", &head).await;
    env.settle(Duration::from_millis(300)).await;
    let status_writes = || env.emu.request_count("patch catalogsources/status");
    let before = status_writes();

    // What the verification controller does: 23 status writes, one per image.
    let names = env.image_names().await;
    assert_eq!(names.len(), 23);
    for name in &names {
        env.images()
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"phase": "Available"}})),
            )
            .await
            .unwrap();
    }
    eventually(WAIT, "the summary to count 23 available", || async {
        let summary = env.source("dev").await.status?.summary?;
        (summary.available == 23).then_some(())
    })
    .await;
    env.settle(Duration::from_millis(300)).await;
    let writes = status_writes() - before;
    assert!(
        (1..=2).contains(&writes),
        "23 phase changes cost {writes} CatalogSource status writes"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_kubectl_edit_is_reverted_by_the_watch_not_the_interval() {
    let repo = BareRepo::from_template("catalog").unwrap();
    let head = repo.head("main").unwrap();
    let mut env = Env::start().await;
    env.spawn_reconciler(&[]);
    // An interval of one hour: only the watch event can bring the entry back in time.
    env.create_source("dev", &repo.file_url(), json!({"interval": "1h"}))
        .await;
    env.wait_applied("dev", &head).await;
    env.settle(Duration::from_millis(300)).await;
    let original = "quay.io/centos-automotive/autosd:cs9-qemu";
    let kubectl = Kubectl::new(Some(&env.emu));
    let editor = format!("sed -i s#{original}#quay.io/evil/image:1#");
    let args = ["edit", "-n", NS, "catalogimage", "autosd-cs9-qemu"];
    let mut edit = kubectl.cmd(&args);
    edit.env("KUBE_EDITOR", &editor).env("EDITOR", &editor);
    let edited = succeeded(&args, &kubectl.run(edit, None));
    assert!(edited.contains("edited"), "{edited}");
    eventually(
        Duration::from_secs(5),
        "the edit to be reverted",
        || async {
            let image = env.image("autosd-cs9-qemu").await.unwrap();
            (image.spec.registry_url == original).then_some(())
        },
    )
    .await;

    kubectl.ok(&[
        "label",
        "-n",
        NS,
        "catalogimage",
        "autosd-cs9-qemu",
        "automotive.sdv.cloud.redhat.com/distro=tampered",
        "--overwrite",
    ]);
    eventually(
        Duration::from_secs(5),
        "the label to be restored",
        || async {
            let image = env.image("autosd-cs9-qemu").await.unwrap();
            (label(&image, catalog_api::labels::DISTRO) == Some("cs9")).then_some(())
        },
    )
    .await;
}
