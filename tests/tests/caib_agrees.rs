//! caib and the controller on the same inputs say the same thing: `caib catalog diff` plans
//! with the sync's own planner, so what it lists is what the real reconciler then does
//! (and a hand-made CatalogImage is never listed as removed); `caib catalog verify --local
//! -o json` prints the status the real verification controller writes for the same entry
//! against the same docker-registry.

use catalog_e2e::suite::sync as sync_common;
use catalog_e2e::suite::verify as verify_common;

use std::path::Path;
use std::process::Output;

use catalog_api::image::Phase;
use catalog_e2e::fixture;
use catalog_e2e::git::BareRepo;
use catalog_e2e::process::caib_command;
use serde_json::{Value, json};
use sync_common::*;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn explain(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    )
}

fn diff(env: &Env, repo: &BareRepo) -> Output {
    let home = env.tmp.path().join("home");
    caib_command(&env.kubeconfig(), &home)
        .args(["catalog", "diff", "--catalog-repo", &repo.file_url()])
        .args(["--env", "dev", "-n", NS])
        .output()
        .expect("caib runs")
}

/// The entry names in the diff's headers, by kind: (added, changed, removed).
fn listed(stdout: &str) -> (Vec<String>, Vec<String>, Vec<String>) {
    let (mut added, mut changed, mut removed) = (Vec::new(), Vec::new(), Vec::new());
    let lines: Vec<&str> = stdout.lines().collect();
    for pair in lines.windows(2) {
        let (Some(old), Some(new)) = (pair[0].strip_prefix("--- "), pair[1].strip_prefix("+++ "))
        else {
            continue;
        };
        let name = |path: &str| {
            let file = path.rsplit('/').next().unwrap_or(path);
            file.trim_end_matches(".yaml").to_string()
        };
        match (old, new) {
            ("/dev/null", path) => added.push(name(path)),
            (cluster, "/dev/null") => removed.push(name(cluster)),
            (_, path) => changed.push(name(path)),
        }
    }
    (added, changed, removed)
}

#[tokio::test(flavor = "multi_thread")]
async fn diff_lists_what_the_sync_then_does_and_never_a_hand_made_object() {
    let repo = BareRepo::from_template("catalog").unwrap();
    let mut env = Env::start().await;
    env.spawn_reconciler(&[]);
    env.create_source("dev", &repo.file_url(), json!({})).await;
    let first = repo.head("main").unwrap();
    env.wait_applied("dev", &first).await;
    let hand_made = fixture::catalog_object(
        "CatalogImage",
        "by-hand",
        NS,
        json!({"registryUrl": "quay.io/org/by-hand:v1", "verificationInterval": "1h"}),
    );
    fixture::create_json(&env.images(), hand_made).await;

    // A commit that changes one entry, deletes one and adds one.
    let qemu = "environments/dev/autosd-cs9-qemu.yaml";
    let changed = text(&repo.read("main", qemu).unwrap()).replace("nightly", "weekly");
    repo.write("main", qemu, changed).unwrap();
    repo.delete("main", "environments/dev/autosd-cs9-rpi4.yaml")
        .unwrap();
    let added = entry_yaml("added-image", "quay.io/org/added:v1");
    let second = repo
        .write("main", "environments/dev/added-image.yaml", added)
        .unwrap();

    let out = diff(&env, &repo);
    assert_eq!(out.status.code(), Some(1), "{}", explain(&out));
    let (added, changed, removed) = listed(&text(&out.stdout));
    assert_eq!(added, ["added-image"], "{}", explain(&out));
    assert_eq!(changed, ["autosd-cs9-qemu"], "{}", explain(&out));
    assert_eq!(removed, ["autosd-cs9-rpi4"], "{}", explain(&out));
    assert!(!text(&out.stdout).contains("by-hand"), "{}", explain(&out));

    // The sync of the same revision does exactly that.
    env.patch_source("dev", json!({"metadata": {"annotations": {"automotive.sdv.cloud.redhat.com/reconcile-requested-at": "1"}}})).await;
    let source = env.wait_applied("dev", &second).await;
    let record = &source.status.unwrap().history[0];
    assert_eq!(
        (record.created, record.updated, record.pruned),
        (
            added.len() as i32,
            changed.len() as i32,
            removed.len() as i32
        )
    );
    assert!(env.image("by-hand").await.is_some(), "the sync kept it too");
    assert!(env.image("autosd-cs9-rpi4").await.is_none());

    let out = diff(&env, &repo);
    assert_eq!(out.status.code(), Some(0), "{}", explain(&out));
    assert!(
        text(&out.stderr).contains("No differences"),
        "{}",
        explain(&out)
    );
}

/// What two verifications of one entry must share: everything but the clocks.
fn comparable(status: &Value) -> Value {
    let mut status = status.clone();
    let map = status.as_object_mut().unwrap();
    map.remove("lastVerificationTime");
    map.remove("publishedAt");
    for condition in map
        .get_mut("conditions")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        condition
            .as_object_mut()
            .unwrap()
            .remove("lastTransitionTime");
    }
    status
}

fn write(root: &Path, path: &str, contents: &str) {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_local_prints_the_status_the_controller_writes() {
    let (registry, _pushed) = fixture::registry_with("os/autosd:v1", "arm64").await;
    let host = registry.host();
    let mut env = verify_common::Env::start().await;
    env.spawn_reconciler(&["--insecure-registry", &host]);
    let repo = env.tmp.path().join("catalog");
    write(
        &repo,
        "catalog.yaml",
        "environments:\n  - name: dev\n    path: environments/dev\n",
    );
    let url = format!("{host}/os/autosd:v1");
    let cases = [
        ("good", "aarch64", Phase::Available),
        ("wrong-arch", "amd64", Phase::Failed),
    ];
    for (name, arch, phase) in cases {
        let spec = json!({"metadata": {"architecture": arch}});
        env.create_image(name, &url, spec).await;
        // The entry file: the same manifest as created, without a namespace (JSON is YAML).
        let created = env.image(name).await;
        let file = json!({
            "apiVersion": catalog_api::API_VERSION, "kind": "CatalogImage",
            "metadata": {"name": name}, "spec": created.spec,
        });
        let path = format!("environments/dev/{name}.yaml");
        write(&repo, &path, &file.to_string());
        let live = env.wait_phase(name, phase).await;
        let home = env.tmp.path().join("home");
        let out = caib_command(&env.tmp.path().join("no-such-kubeconfig"), &home)
            .current_dir(&repo)
            .args([
                "catalog", "verify", name, "--local", "--env", "dev", "-o", "json",
            ])
            .output()
            .expect("caib runs");
        let printed: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", explain(&out)));
        assert_eq!(printed["metadata"]["name"], json!(name));
        let controller_wrote = serde_json::to_value(live.status.unwrap()).unwrap();
        assert_eq!(
            comparable(&printed["status"]),
            comparable(&controller_wrote),
            "{name}: caib --local and the controller disagree\n{}",
            explain(&out)
        );
        let expected_exit = if phase == Phase::Available { 0 } else { 1 };
        assert_eq!(out.status.code(), Some(expected_exit), "{}", explain(&out));
    }
}
