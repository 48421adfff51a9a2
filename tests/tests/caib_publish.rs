//! `caib catalog publish`, `promote`, `add --pin --wait` and the full add → sync → Available →
//! list loop end to end: ImageBuilds and CatalogImages held in the Kubernetes API emulator,
//! images in Debian's docker-registry, commits pushed over smart HTTP and pull requests on the
//! fake forge. Asserts the digests pinned are the right ones.

use std::time::Duration;

use catalog_api::{CatalogImage, CatalogImageSpec};
use catalog_e2e::emulator::{Emulator, EmulatorOptions};
use catalog_e2e::forge::Provider;
use catalog_e2e::git::Change;
use catalog_e2e::process::eventually;
use catalog_e2e::registry::{ImageFixture, Registry, RegistryConfig};
use kube::Api;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::json;

#[path = "support/write_setup.rs"]
mod support;
use support::*;

const CRDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../crds");
const IMAGEBUILD_CRD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/imagebuild-crd.yaml");

fn imagebuild_resource() -> ApiResource {
    ApiResource {
        group: "automotive.sdv.cloud.redhat.com".into(),
        version: "v1alpha1".into(),
        api_version: "automotive.sdv.cloud.redhat.com/v1alpha1".into(),
        kind: "ImageBuild".into(),
        plural: "imagebuilds".into(),
    }
}

/// An emulator with the catalog CRDs and the ImageBuild CRD; its kubeconfig handed to caib.
async fn cluster(s: &mut Setup) -> Emulator {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let emu = Emulator::start(EmulatorOptions::with_crds(CRDS)).expect("emulator starts");
    let file = s.home.path().join("kubeconfig");
    emu.write_kubeconfig(&file).unwrap();
    s.kubeconfig = Some(file);
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(emu.kube_client());
    let crd = serde_saphyr::from_str(&std::fs::read_to_string(IMAGEBUILD_CRD).unwrap()).unwrap();
    crds.create(&PostParams::default(), &crd).await.unwrap();
    let builds: Api<DynamicObject> =
        Api::namespaced_with(emu.kube_client(), "default", &imagebuild_resource());
    eventually(
        Duration::from_secs(10),
        "the ImageBuild CRD to be served",
        || async { builds.list(&Default::default()).await.ok().map(|_| ()) },
    )
    .await;
    emu
}

async fn put_build(emu: &Emulator, name: &str, image: &str, phase: &str) {
    let api: Api<DynamicObject> =
        Api::namespaced_with(emu.kube_client(), "default", &imagebuild_resource());
    let mut build = DynamicObject::new(name, &imagebuild_resource());
    build.data = json!({"spec": {
        "architecture": "arm64",
        "aib": {"distro": "cs9", "target": "raspberry-pi", "mode": "bootc"},
        "export": {"container": image}
    }});
    api.create(&PostParams::default(), &build).await.unwrap();
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": phase}})),
    )
    .await
    .unwrap();
}

/// Creates a CatalogImage (as the sync would) with `spec` and then `status` (as the
/// verification would).
async fn put_image(emu: &Emulator, name: &str, spec: serde_json::Value, status: serde_json::Value) {
    let api: Api<CatalogImage> = Api::namespaced(emu.kube_client(), "default");
    let spec: CatalogImageSpec = serde_json::from_value(spec).unwrap();
    api.create(&PostParams::default(), &CatalogImage::new(name, spec))
        .await
        .unwrap();
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": status })),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_pins_the_registry_digest_and_records_the_build() {
    let mut s = Setup::new().await;
    let registry = Registry::start(RegistryConfig::default()).await;
    let pushed = registry
        .push_image("my-org/custom-build:v1.0.0", &ImageFixture::new("arm64"))
        .await;
    let emu = cluster(&mut s).await;
    let image = format!("{}/my-org/custom-build:v1.0.0", registry.host());
    put_build(&emu, "my-custom-build", &image, "Completed").await;
    put_build(&emu, "still-building", &image, "Building").await;

    let out = s
        .run(&[
            "catalog",
            "publish",
            "my-custom-build",
            "--tags",
            "production,tested",
        ])
        .await;
    assert!(out.status.success(), "{}", show(&out));
    let stderr = text(&out.stderr);
    for line in [
        "Publishing ImageBuild \"my-custom-build\" to catalog...",
        "✓ ImageBuild status: Completed",
        &format!("✓ Registry location: {image}"),
        "✓ Creating catalog image \"my-custom-build\"",
        "✓ Verifying registry accessibility...",
        "✓ Published successfully",
    ] {
        assert!(stderr.contains(line), "missing {line:?}\n{}", show(&out));
    }
    let stdout = text(&out.stdout);
    for line in [
        "Catalog Image: my-custom-build",
        &format!("Registry URL:   {image}"),
        "Architecture:   arm64",
        "Distro:        cs9",
        "Target:        raspberry-pi",
        "Status:        Available",
    ] {
        assert!(stdout.contains(line), "missing {line:?}\n{}", show(&out));
    }

    let branch = "caib/publish/dev/my-custom-build";
    let tip = s.remote.head(branch).expect("review branch");
    let file = text(
        &s.remote
            .read(&tip, "environments/dev/my-custom-build.yaml")
            .unwrap(),
    );
    let expected = format!(
        "apiVersion: automotive.sdv.cloud.redhat.com/v1alpha1
kind: CatalogImage
metadata:
  name: my-custom-build
  annotations:
    automotive.sdv.cloud.redhat.com/source-imagebuild: default/my-custom-build
spec:
  registryUrl: {image}
  digest: {}
  tags:
    - production
    - tested
  verificationInterval: 1h
  metadata:
    architecture: arm64
    distro: cs9
    targets:
      - name: raspberry-pi
        verified: false
    bootcCapable: true
    buildMode: bootc
    exportFormat: oci
",
        pushed.digest
    );
    // The template's defaults set verificationInterval: 1h, which equals the built-in
    // default and so is left out.
    let expected = expected.replace("  verificationInterval: 1h\n", "");
    assert_eq!(file, expected);
    assert_eq!(
        commit_info(&s.remote, &tip, "%(trailers:only,unfold)"),
        "Catalog-Action: publish\nCatalog-Entry: dev/my-custom-build\nSource-ImageBuild: default/my-custom-build"
    );
    assert_eq!(s.forge.requests_matching("POST", "/pulls").len(), 1);
    assert_eq!(
        s.forge.pull_requests(Provider::Github, FORGE_REPO)[0].head,
        branch
    );

    // A build that is not Completed is refused, naming its phase.
    let out = s.run(&["catalog", "publish", "still-building"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        text(&out.stderr).contains("is Building, not Completed"),
        "{}",
        show(&out)
    );

    // A missing build: exit 4.
    let out = s.run(&["catalog", "publish", "no-such-build"]).await;
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));

    // Published directly, then again: the second run is a no-op success (CI retries).
    let out = s
        .run(&[
            "catalog",
            "publish",
            "my-custom-build",
            "--tags",
            "production,tested",
            "--direct",
        ])
        .await;
    assert!(out.status.success(), "{}", show(&out));
    let main = s.remote.head("main").unwrap();
    let out = s
        .run(&[
            "catalog",
            "publish",
            "my-custom-build",
            "--tags",
            "production,tested",
            "--direct",
        ])
        .await;
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        text(&out.stderr).contains("already in catalog"),
        "{}",
        show(&out)
    );
    assert_eq!(s.remote.head("main").unwrap(), main);
}

const DEV_ENTRY: &str = "apiVersion: automotive.sdv.cloud.redhat.com/v1alpha1
kind: CatalogImage
metadata:
  name: cs9-rpi
spec:
  registryUrl: URL
  metadata:
    architecture: arm64
    distro: cs9
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_pins_the_digest_from_the_registry_or_the_live_status() {
    let mut s = Setup::new().await;
    let registry = Registry::start(RegistryConfig::default()).await;
    let pushed = registry
        .push_image("os/rpi:latest", &ImageFixture::new("arm64"))
        .await;
    let url = format!("{}/os/rpi:latest", registry.host());
    s.remote
        .commit(
            "main",
            "add cs9-rpi to dev",
            &[Change::write(
                "environments/dev/cs9-rpi.yaml",
                DEV_ENTRY.replace("URL", &url),
            )],
        )
        .unwrap();

    // No cluster: the digest comes from the registry.
    let out = s
        .run(&[
            "catalog", "promote", "cs9-rpi", "--to", "staging", "--direct",
        ])
        .await;
    assert!(out.status.success(), "{}", show(&out));
    let staged = text(
        &s.remote
            .read("main", "environments/staging/cs9-rpi.yaml")
            .unwrap(),
    );
    assert!(
        staged.contains(&format!("  digest: {}\n", pushed.digest)),
        "{staged}"
    );
    assert_eq!(
        commit_info(&s.remote, "main", "%(trailers:only,unfold)"),
        "Catalog-Action: promote\nCatalog-Entry: staging/cs9-rpi"
    );

    // With a cluster: an image that is not Available is not promoted without --force.
    let emu = cluster(&mut s).await;
    let live_digest = format!("sha256:{}", "c".repeat(64));
    put_image(
        &emu,
        "cs9-rpi",
        json!({"registryUrl": url}),
        json!({"phase": "Failed", "registryMetadata": {"resolvedDigest": live_digest}}),
    )
    .await;
    let out = s
        .run(&[
            "catalog",
            "promote",
            "cs9-rpi",
            "--to",
            "production",
            "--from",
            "dev",
        ])
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        text(&out.stderr).contains("Failed, not Available"),
        "{}",
        show(&out)
    );

    // Available: the digest the reconciler verified is the one pinned (not the registry's).
    let api: Api<CatalogImage> = Api::namespaced(emu.kube_client(), "default");
    api.patch_status(
        "cs9-rpi",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "Available"}})),
    )
    .await
    .unwrap();
    let out = s
        .run(&[
            "catalog",
            "promote",
            "cs9-rpi",
            "--to",
            "production",
            "--from",
            "dev",
        ])
        .await;
    assert!(out.status.success(), "{}", show(&out));
    let tip = s.remote.head("caib/promote/production/cs9-rpi").unwrap();
    let promoted = text(
        &s.remote
            .read(&tip, "environments/production/cs9-rpi.yaml")
            .unwrap(),
    );
    assert!(
        promoted.contains(&format!("  digest: {live_digest}\n")),
        "{promoted}"
    );
    let body = s.forge.requests_matching("POST", "/pulls")[0]
        .body
        .clone()
        .unwrap();
    assert_eq!(body["head"], "caib/promote/production/cs9-rpi");
    assert_eq!(
        body["title"],
        "catalog: promote cs9-rpi from dev to production"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_verifies_the_image_and_wait_follows_merge_sync_and_available() {
    let mut s = Setup::new().await;
    let registry = Registry::start(RegistryConfig::default()).await;
    let pushed = registry
        .push_image("os/ref:v1", &ImageFixture::new("amd64"))
        .await;
    let url = format!("{}/os/ref:v1", registry.host());
    let base = [
        "catalog",
        "add",
        "ref-image",
        url.as_str(),
        "--architecture",
        "amd64",
        "--distro",
        "cs9",
    ];

    // An image that does not exist: exit 4, nothing pushed.
    let refs = s.refs();
    let missing = format!("{}/os/ref:nope", registry.host());
    let out = s
        .run(&[
            "catalog",
            "add",
            "ref-image",
            &missing,
            "--architecture",
            "amd64",
            "--distro",
            "cs9",
        ])
        .await;
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    assert_eq!(s.refs(), refs);

    // --digest alone: that manifest must exist in the repository.
    let wrong = format!("sha256:{}", "d".repeat(64));
    let mut args = base.to_vec();
    args.extend(["--digest", &wrong, "--dry-run"]);
    let out = s.run(&args).await;
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    let mut args = base.to_vec();
    args.extend(["--digest", &pushed.digest, "--dry-run"]);
    let out = s.run(&args).await;
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        text(&out.stdout).contains(&format!("+  digest: {}", pushed.digest)),
        "{}",
        show(&out)
    );
    assert_eq!(s.refs(), refs);

    // --wait: the pull request merged, the entry synced, and Available. Here the test plays
    // reviewer and controllers; exit 6 when that does not happen in time.
    let emu = cluster(&mut s).await;
    let mut args = base.to_vec();
    args.extend(["--pin", "--wait", "--timeout", "2s"]);
    let out = s.run(&args).await;
    assert_eq!(out.status.code(), Some(6), "{}", show(&out));
    assert!(text(&out.stderr).contains("to be merged"), "{}", show(&out));

    let mut args = base.to_vec();
    args.extend(["--pin", "--wait", "--timeout", "30s"]);
    let child = s
        .command(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let forge = &s.forge;
    let pr = eventually(
        Duration::from_secs(20),
        "the pull request to be re-pushed",
        || async {
            let updates = forge.requests_matching("POST", "/comments");
            (!updates.is_empty())
                .then(|| forge.pull_requests(Provider::Github, FORGE_REPO)[0].clone())
        },
    )
    .await;
    let tip = s.remote.head(&pr.head).unwrap();
    let entry = text(
        &s.remote
            .read(&tip, "environments/dev/ref-image.yaml")
            .unwrap(),
    );
    assert!(
        entry.contains(&format!("  digest: {}\n", pushed.digest)),
        "{entry}"
    );
    s.remote
        .git(&["update-ref", "refs/heads/main", &tip])
        .unwrap();
    assert!(s.forge.merge(Provider::Github, FORGE_REPO, pr.number));
    put_image(
        &emu,
        "ref-image",
        json!({"registryUrl": url, "digest": pushed.digest}),
        json!({"phase": "Available", "registryMetadata": {"resolvedDigest": pushed.digest}}),
    )
    .await;
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("caib --wait returns once Available")
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("✓ Merged"), "{}", show(&out));
    assert!(stderr.contains("✓ Synced to the cluster"), "{}", show(&out));
    assert!(
        text(&out.stdout).contains("Status:        Available"),
        "{}",
        show(&out)
    );
}

/// The whole loop with the real reconciler: `caib catalog add --direct --wait` commits, the
/// sync controller applies the entry, the verification controller finds the image in the
/// registry, caib returns once it is Available, and `caib catalog list` shows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_loop_add_sync_verify_list() {
    use std::process::Stdio;
    let mut s = Setup::new().await;
    let registry = Registry::start(RegistryConfig::default()).await;
    registry
        .push_image("os/loop:v1", &ImageFixture::new("amd64"))
        .await;
    let url = format!("{}/os/loop:v1", registry.host());
    let emu = cluster(&mut s).await;
    let client = emu.kube_client();

    // A CatalogSource for dev in `default`, reading the same remote (file://).
    let sources: Api<catalog_api::CatalogSource> = Api::namespaced(client.clone(), "default");
    let source = json!({
        "apiVersion": "automotive.sdv.cloud.redhat.com/v1alpha1",
        "kind": "CatalogSource",
        "metadata": {"name": "dev", "namespace": "default"},
        "spec": {"url": s.remote.file_url(), "path": "environments/dev", "interval": "1h",
                 "ref": {"branch": "main"}},
    });
    sources
        .create(
            &PostParams::default(),
            &serde_json::from_value(source).unwrap(),
        )
        .await
        .unwrap();
    let log = std::fs::File::create(s.home.path().join("reconciler.log")).unwrap();
    let mut reconciler =
        tokio::process::Command::new(catalog_e2e::process::binary("catalog-reconciler"))
            .args([
                "--log-format",
                "text",
                "--insecure-registry",
                &registry.host(),
            ])
            .arg("--http-addr")
            .arg(format!("127.0.0.1:{}", catalog_e2e::git::free_port()))
            .arg("--cache-dir")
            .arg(s.home.path().join("reconciler-cache"))
            .env("KUBECONFIG", s.kubeconfig.as_ref().unwrap())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("catalog-reconciler starts (cargo build -p catalog-reconciler)");

    let main_before = s.remote.head("main").unwrap();
    let child = s
        .command(&[
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
            "--direct",
            "--wait",
            "--timeout",
            "60s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Stand in for the push webhook: ask for a sync once the commit is on main.
    let remote = &s.remote;
    eventually(Duration::from_secs(30), "caib's commit on main", || async {
        (remote.head("main").unwrap() != main_before).then_some(())
    })
    .await;
    sources
        .patch(
            "dev",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {
                catalog_api::labels::RECONCILE_REQUESTED_AT: "after-caib-add"}}})),
        )
        .await
        .unwrap();
    let out = tokio::time::timeout(Duration::from_secs(90), child.wait_with_output())
        .await
        .expect("caib --wait returns")
        .unwrap();
    let logs = std::fs::read_to_string(s.home.path().join("reconciler.log")).unwrap_or_default();
    assert!(
        out.status.success(),
        "{}\nreconciler log:\n{logs}",
        show(&out)
    );
    assert!(
        text(&out.stdout).contains("Status:        Available"),
        "{}",
        show(&out)
    );

    let out = s.run(&["catalog", "list"]).await;
    assert!(out.status.success(), "{}", show(&out));
    let line = text(&out.stdout)
        .lines()
        .find(|l| l.starts_with("loop-image"))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("loop-image not listed\n{}", show(&out)));
    assert!(line.contains(&url) && line.contains("Available"), "{line}");

    // And back out: remove --wait returns once the sync pruned it.
    let before = s.remote.head("main").unwrap();
    let child = s
        .command(&[
            "catalog",
            "remove",
            "loop-image",
            "--force",
            "--direct",
            "--wait",
            "--timeout",
            "60s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    eventually(Duration::from_secs(30), "the removal on main", || async {
        (remote.head("main").unwrap() != before).then_some(())
    })
    .await;
    sources
        .patch(
            "dev",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {
                catalog_api::labels::RECONCILE_REQUESTED_AT: "after-caib-remove"}}})),
        )
        .await
        .unwrap();
    let out = tokio::time::timeout(Duration::from_secs(90), child.wait_with_output())
        .await
        .expect("caib remove --wait returns")
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        text(&out.stderr).contains("✓ Removed from the cluster"),
        "{}",
        show(&out)
    );
    let _ = reconciler.kill().await;
}
