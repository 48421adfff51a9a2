//! `caib catalog publish`, `promote` and `add --pin --wait` end to end: ImageBuilds and
//! CatalogImages held in the Kubernetes API emulator, images in Debian's docker-registry,
//! commits pushed over smart HTTP and pull requests on the fake forge. Asserts the digests
//! pinned are the right ones, and what `--wait` waits for. (The loop with the real reconciler
//! is caib_loop.)

use std::time::Duration;

use catalog_api::CatalogImage;
use catalog_e2e::fixture;
use catalog_e2e::forge::Provider;
use catalog_e2e::git::Change;
use catalog_e2e::process::eventually;
use kube::Api;
use serde_json::json;

#[path = "support/write_setup.rs"]
mod support;
use support::*;
#[path = "support/catalog_cluster.rs"]
mod catalog_cluster;
use catalog_cluster::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_pins_the_registry_digest_and_records_the_build() {
    let mut s = Setup::new().await;
    let Published {
        registry: _registry,
        pushed,
        url: image,
    } = registry_with("my-org/custom-build:v1.0.0", "arm64").await;
    let cluster = cluster(&mut s).await;
    // The environment comes from the CatalogSource that syncs into the namespace.
    source(&cluster, &s, "dev", "environments/dev").await;
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
        // Without --wait no cluster phase is claimed: it was not seen.
        "Status:        Pending review (not in the cluster yet; --wait follows it)",
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

    // Available: the digest the reconciler verified is the one pinned (not the registry's),
    // and the pull request carries the evidence of dev's CatalogImage.
    let api: Api<CatalogImage> = cluster.api("default");
    let revision = s.remote.head("main").unwrap();
    applied(&cluster, "cs9-rpi", &revision).await;
    fixture::patch_status(
        &api,
        "cs9-rpi",
        json!({"phase": "Available", "lastVerificationTime": "2026-01-04T14:30:00Z",
               "registryMetadata": {"sizeBytes": 3_145_728,
                                    "platform": {"architecture": "arm64", "os": "linux"}}}),
    )
    .await;
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
    let text = body["body"].as_str().unwrap();
    let evidence = format!(
        "Evidence from dev (CatalogImage default/cs9-rpi):\n- Digest: {live_digest}\n\
         - Platforms: linux/arm64\n- Size: 3.0 MiB\n\
         - Last verified Available: 2026-01-04T14:30:00Z\n- Source revision: {revision}"
    );
    assert!(text.contains(&evidence), "{text}");
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
    args.extend(["--pin", "--wait", "--timeout", "2s", "--env", "dev"]);
    let out = s.run(&args).await;
    assert_exit(&out, 6, "to be merged");

    let mut args = base.to_vec();
    args.extend(["--pin", "--wait", "--timeout", "30s", "--env", "dev"]);
    let mut child = s
        .command(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = lines(child.stderr.take().unwrap());
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
    let before = s.remote.head("main").unwrap();
    s.remote
        .git(&["update-ref", "refs/heads/main", &tip])
        .unwrap();
    assert!(s.forge.merge(Provider::Github, FORGE_REPO, pr.number));
    // The cluster still shows the entry applied from the commit before the merge: Available
    // and current, but not this change, so caib says so and keeps waiting.
    put_image(
        &cluster,
        "ref-image",
        json!({"registryUrl": url, "digest": pushed.digest}),
        json!({"phase": "Available", "registryMetadata": {"resolvedDigest": pushed.digest}}),
    )
    .await;
    applied(&cluster, "ref-image", &before).await;
    let mut said = Vec::new();
    let older = format!(
        "is applied from commit {}, before this change",
        &before[..12]
    );
    while !said.iter().any(|l: &String| l.contains(&older)) {
        let line = tokio::time::timeout(Duration::from_secs(20), stderr.recv())
            .await
            .unwrap_or_else(|_| panic!("caib never said {older:?}: {said:#?}"));
        said.push(line.unwrap_or_else(|| panic!("caib exited: {said:#?}")));
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "caib --wait returned for an object applied from an older commit"
    );
    // Applied from the merged commit and verified at that generation: caib returns.
    applied(&cluster, "ref-image", &tip).await;
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("caib --wait returns once Available")
        .unwrap();
    while let Some(line) = stderr.recv().await {
        said.push(line);
    }
    let out = std::process::Output {
        stderr: said.join("\n").into_bytes(),
        ..out
    };
    assert_success(&out);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("✓ Merged"), "{}", show(&out));
    assert!(stderr.contains("✓ Synced to the cluster"), "{}", show(&out));
    assert_stdout(&out, "Status:        Available");
}

/// The lines a child writes to `pipe`, as they come.
fn lines(pipe: tokio::process::ChildStderr) -> tokio::sync::mpsc::UnboundedReceiver<String> {
    use tokio::io::AsyncBufReadExt;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(pipe).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}
