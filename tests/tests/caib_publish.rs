//! `caib catalog publish`, `promote`, `add --pin --wait` and the full add → sync → Available →
//! list loop end to end: ImageBuilds and CatalogImages held in the Kubernetes API emulator,
//! images in Debian's docker-registry, commits pushed over smart HTTP and pull requests on the
//! fake forge. Asserts the digests pinned are the right ones.

use std::time::Duration;

use catalog_api::{CatalogImage, CatalogImageSpec, CatalogSource};
use catalog_e2e::fixture::{self, Cluster};
use catalog_e2e::forge::Provider;
use catalog_e2e::git::Change;
use catalog_e2e::process::eventually;
use catalog_e2e::registry::{PushedImage, Registry};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

use catalog_e2e::suite::write as support;
use support::*;

/// A registry holding one image, `repo_tag` built for `arch`. Bind `registry` (to
/// `_registry` when unused, not `_`): dropping it stops the registry.
struct Published {
    registry: Registry,
    pushed: PushedImage,
    /// `host/repo_tag`, as an entry's registryUrl names it.
    url: String,
}

async fn registry_with(repo_tag: &str, arch: &str) -> Published {
    let (registry, pushed) = fixture::registry_with(repo_tag, arch).await;
    let url = format!("{}/{repo_tag}", registry.host());
    Published {
        registry,
        pushed,
        url,
    }
}

/// An emulator with the catalog CRDs and the ImageBuild CRD; its kubeconfig handed to caib.
async fn cluster(s: &mut Setup) -> Cluster {
    let cluster = Cluster::start();
    s.kubeconfig = Some(cluster.kubeconfig());
    cluster.install_imagebuild_crd("default").await;
    cluster
}

async fn put_build(cluster: &Cluster, name: &str, image: &str, phase: &str) {
    let spec = json!({
        "architecture": "arm64",
        "aib": {"distro": "cs9", "target": "raspberry-pi", "mode": "bootc"},
        "export": {"container": image}
    });
    fixture::put_imagebuild(&cluster.client, "default", name, spec, phase).await;
}

/// Creates a CatalogImage (as the sync would) with `spec` and then `status` (as the
/// verification would).
async fn put_image(
    cluster: &Cluster,
    name: &str,
    spec: serde_json::Value,
    status: serde_json::Value,
) {
    let api: Api<CatalogImage> = cluster.api("default");
    let spec: CatalogImageSpec = serde_json::from_value(spec).unwrap();
    api.create(&PostParams::default(), &CatalogImage::new(name, spec))
        .await
        .unwrap();
    fixture::patch_status(&api, name, status).await;
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_pins_the_registry_digest_and_records_the_build() {
    let mut s = Setup::new().await;
    let Published {
        registry: _registry,
        pushed,
        url: image,
    } = registry_with("my-org/custom-build:v1.0.0", "arm64").await;
    let cluster = cluster(&mut s).await;
    put_build(&cluster, "my-custom-build", &image, "Completed").await;
    put_build(&cluster, "still-building", &image, "Building").await;

    let out = s
        .run(&[
            "catalog",
            "publish",
            "my-custom-build",
            "--tags",
            "production,tested",
        ])
        .await;
    assert_success(&out);
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
    let file = s.file(&tip, "environments/dev/my-custom-build.yaml");
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
    assert_exit(&out, 2, "is Building, not Completed");

    // A missing build: exit 4.
    let out = s.run(&["catalog", "publish", "no-such-build"]).await;
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));

    // Published directly, then again: the second run is a no-op success (CI retries).
    let direct = [
        "catalog",
        "publish",
        "my-custom-build",
        "--tags",
        "production,tested",
        "--direct",
    ];
    let out = s.run(&direct).await;
    assert_success(&out);
    let main = s.remote.head("main").unwrap();
    let out = s.run(&direct).await;
    assert_success(&out);
    assert_stderr(&out, "already in catalog");
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
    let Published {
        registry: _registry,
        pushed,
        url,
    } = registry_with("os/rpi:latest", "arm64").await;
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
    assert_success(&out);
    let staged = s.file("main", "environments/staging/cs9-rpi.yaml");
    assert!(
        staged.contains(&format!("  digest: {}\n", pushed.digest)),
        "{staged}"
    );
    assert_eq!(
        commit_info(&s.remote, "main", "%(trailers:only,unfold)"),
        "Catalog-Action: promote\nCatalog-Entry: staging/cs9-rpi"
    );

    // With a cluster: an image that is not Available is not promoted without --force.
    let cluster = cluster(&mut s).await;
    let live_digest = format!("sha256:{}", "c".repeat(64));
    put_image(
        &cluster,
        "cs9-rpi",
        json!({"registryUrl": url}),
        json!({"phase": "Failed", "registryMetadata": {"resolvedDigest": live_digest}}),
    )
    .await;
    let to_production = [
        "catalog",
        "promote",
        "cs9-rpi",
        "--to",
        "production",
        "--from",
        "dev",
    ];
    let out = s.run(&to_production).await;
    assert_exit(&out, 2, "Failed, not Available");

    // Available: the digest the reconciler verified is the one pinned (not the registry's).
    let api: Api<CatalogImage> = cluster.api("default");
    fixture::patch_status(&api, "cs9-rpi", json!({"phase": "Available"})).await;
    let out = s.run(&to_production).await;
    assert_success(&out);
    let tip = s.remote.head("caib/promote/production/cs9-rpi").unwrap();
    let promoted = s.file(&tip, "environments/production/cs9-rpi.yaml");
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
    let Published {
        registry,
        pushed,
        url,
    } = registry_with("os/ref:v1", "amd64").await;
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
    assert_success(&out);
    assert_stdout(&out, &format!("+  digest: {}", pushed.digest));
    assert_eq!(s.refs(), refs);

    // --wait: the pull request merged, the entry synced, and Available. Here the test plays
    // reviewer and controllers; exit 6 when that does not happen in time.
    let cluster = cluster(&mut s).await;
    let mut args = base.to_vec();
    args.extend(["--pin", "--wait", "--timeout", "2s"]);
    let out = s.run(&args).await;
    assert_exit(&out, 6, "to be merged");

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
    let entry = s.file(&tip, "environments/dev/ref-image.yaml");
    assert!(
        entry.contains(&format!("  digest: {}\n", pushed.digest)),
        "{entry}"
    );
    s.remote
        .git(&["update-ref", "refs/heads/main", &tip])
        .unwrap();
    assert!(s.forge.merge(Provider::Github, FORGE_REPO, pr.number));
    put_image(
        &cluster,
        "ref-image",
        json!({"registryUrl": url, "digest": pushed.digest}),
        json!({"phase": "Available", "registryMetadata": {"resolvedDigest": pushed.digest}}),
    )
    .await;
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("caib --wait returns once Available")
        .unwrap();
    assert_success(&out);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("✓ Merged"), "{}", show(&out));
    assert!(stderr.contains("✓ Synced to the cluster"), "{}", show(&out));
    assert_stdout(&out, "Status:        Available");
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

    // A CatalogSource for dev in `default`, reading the same remote (file://).
    let sources: Api<CatalogSource> = cluster.api("default");
    let spec = json!({"url": s.remote.file_url(), "path": "environments/dev", "interval": "1h",
                      "ref": {"branch": "main"}});
    fixture::create_json(
        &sources,
        fixture::catalog_object("CatalogSource", "dev", "default", spec),
    )
    .await;
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
