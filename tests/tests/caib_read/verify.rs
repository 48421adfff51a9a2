//! `caib catalog verify`: through the cluster (the test plays the controller) and `--local`.

use super::*;

async fn serve_verify(client: kube::Client, name: &'static str, mut status: Value) -> String {
    let api: Api<CatalogImage> = Api::namespaced(client, "default");
    let requested = eventually(
        Duration::from_secs(20),
        "the verify request annotation",
        || {
            let api = api.clone();
            async move {
                let image = api.get(name).await.ok()?;
                image
                    .metadata
                    .annotations?
                    .get(catalog_api::labels::VERIFY_REQUESTED_AT)
                    .cloned()
            }
        },
    )
    .await;
    status["lastHandledVerifyAt"] = json!(requested);
    fixture::patch_status(&api, name, status).await;
    requested
}

#[tokio::test]
async fn verify_requests_waits_and_reports() {
    let h = Harness::new();
    let client = h.client();
    catalog(&client).await;

    // Available: the quickstart's report, exit 0.
    let controller = tokio::spawn(serve_verify(
        client.clone(),
        "autosd-cs9-rpi4",
        json!({"phase": "Available",
               "conditions": [condition("Available", "True", ""), condition("Verified", "True", "")],
               "registryMetadata": {"resolvedDigest": DIGEST, "sizeBytes": 1234567890, "layerCount": 12},
               "lastVerificationTime": "2026-01-04T14:30:00Z"}),
    ));
    let run: Run = tokio::process::Command::from(h.command())
        .args(["catalog", "verify", "autosd-cs9-rpi4", "--timeout", "30s"])
        .output()
        .await
        .unwrap()
        .into();
    let requested = controller.await.unwrap();
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        format!(
            "Verifying catalog image \"autosd-cs9-rpi4\"...
✓ Registry accessibility: OK
✓ Digest verification: OK
✓ Metadata extraction: OK

Registry URL:     quay.io/centos-automotive/autosd:cs9-rpi4
Resolved Digest:  {DIGEST}
Size:            1.1 GiB
Layers:          12
Last Verified:   2026-01-04T14:30:00Z
Status:          Available
"
        )
    );
    assert!(
        requested.parse::<jiff::Timestamp>().is_ok(),
        "RFC 3339: {requested}"
    );
    // Written under caib's own field manager.
    let raw: Api<kube::api::DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &kube::api::ApiResource::erase::<CatalogImage>(&()),
    );
    let obj = raw.get("autosd-cs9-rpi4").await.unwrap();
    let managers: Vec<String> = obj
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert!(managers.contains(&"caib".to_string()), "{managers:?}");

    // Unavailable: the failing checks with the condition's message, exit 1.
    let controller = tokio::spawn(serve_verify(
        client.clone(),
        "autosd-cs9-qemu",
        json!({"phase": "Unavailable",
               "conditions": [condition("Available", "False", "registry unreachable: connection refused"),
                              condition("Verified", "False", "could not resolve the reference")]}),
    ));
    let run: Run = tokio::process::Command::from(h.command())
        .args(["catalog", "verify", "autosd-cs9-qemu"])
        .output()
        .await
        .unwrap()
        .into();
    controller.await.unwrap();
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout
            .contains("✗ Registry accessibility: registry unreachable: connection refused\n"),
        "{run:?}"
    );
    assert!(
        run.stdout.ends_with("Status:          Unavailable\n"),
        "{run:?}"
    );

    // --wait=false: the request only.
    let run = h.caib(&["catalog", "verify", "legacy", "--wait=false"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("requested"), "{run:?}");
    let api: Api<CatalogImage> = Api::namespaced(client.clone(), "default");
    let legacy = api.get("legacy").await.unwrap();
    assert!(
        legacy
            .metadata
            .annotations
            .unwrap()
            .contains_key(catalog_api::labels::VERIFY_REQUESTED_AT)
    );

    // Nobody answers: --timeout gives exit 6.
    let run = h.caib(&["catalog", "verify", "legacy", "--timeout", "1s"]);
    assert_eq!(run.code, 6, "{run:?}");
    assert!(run.stderr.contains("timed out after 1s"), "{run:?}");
    // Unknown name: exit 4.
    let run = h.caib(&["catalog", "verify", "nope"]);
    assert_eq!(run.code, 4, "{run:?}");
}

#[tokio::test]
async fn verify_local_checks_the_registry_without_a_cluster() {
    use catalog_e2e::registry::{ImageFixture, Registry, RegistryConfig};
    let registry = Registry::start(RegistryConfig::default()).await;
    let pushed = registry
        .push_image("os/autosd:v1", &ImageFixture::new("arm64"))
        .await;
    let host = registry.host();
    let h = Harness::new();
    let repo = h.dir.path().join("catalog");
    write(
        &repo,
        "catalog.yaml",
        "environments:\n  - name: dev\n    path: environments/dev\n",
    );
    let entry = |name: &str, url: &str, arch: &str| {
        format!(
            "apiVersion: automotive.sdv.cloud.redhat.com/v1alpha1\nkind: CatalogImage\nmetadata:\n  name: {name}\nspec:\n  registryUrl: {url}\n  metadata:\n    architecture: {arch}\n"
        )
    };
    write(
        &repo,
        "environments/dev/good.yaml",
        &entry("good", &format!("{host}/os/autosd:v1"), "aarch64"),
    );
    write(
        &repo,
        "environments/dev/wrong-arch.yaml",
        &entry("wrong-arch", &format!("{host}/os/autosd:v1"), "amd64"),
    );
    write(
        &repo,
        "environments/dev/missing.yaml",
        &entry("missing", &format!("{host}/os/autosd:v9"), "arm64"),
    );
    let local = |name: &str| -> Run {
        let mut cmd = h.command();
        // No cluster at all: a kubeconfig that does not exist.
        cmd.env("KUBECONFIG", h.dir.path().join("no-such-kubeconfig"))
            .current_dir(&repo)
            .args(["catalog", "verify", name, "--local", "--env", "dev"]);
        cmd.output().unwrap().into()
    };

    let run = local("good");
    assert_eq!(run.code, 0, "{run:?}");
    let size = catalog_api::size::human(pushed.size_bytes);
    let head = format!(
        "Verifying catalog image \"good\"...
✓ Registry accessibility: OK
✓ Digest verification: OK
✓ Metadata extraction: OK

Registry URL:     {host}/os/autosd:v1
Resolved Digest:  {}
Size:            {size}
Layers:          2
Last Verified:   ",
        pushed.digest
    );
    assert!(
        run.stdout.starts_with(&head),
        "{run:?}\nexpected start:\n{head}"
    );
    assert!(
        run.stdout.ends_with("Status:          Available\n"),
        "{run:?}"
    );

    let run = local("wrong-arch");
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.contains("✓ Registry accessibility: OK\n"),
        "{run:?}"
    );
    assert!(
        run.stdout.contains(
            "✗ Digest verification: declared architecture amd64 but the image provides arm64\n"
        ),
        "{run:?}"
    );
    assert!(run.stdout.ends_with("Status:          Failed\n"), "{run:?}");

    let run = local("missing");
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.contains("✗ Registry accessibility: ") && run.stdout.contains("not found"),
        "{run:?}"
    );

    // An image reference instead of an entry name.
    let mut cmd = h.command();
    let run: Run = cmd
        .current_dir(h.dir.path())
        .args([
            "catalog",
            "verify",
            &format!("{host}/os/autosd:v1"),
            "--local",
        ])
        .output()
        .unwrap()
        .into();
    assert_eq!(run.code, 0, "{run:?}");
    // A pinned digest the tag moved away from: still Available (the pin is what deploys),
    // the move is reported.
    write(
        &repo,
        "environments/dev/pinned.yaml",
        &format!(
            "{}  digest: {}\n",
            entry("pinned", &format!("{host}/os/autosd:v1"), "arm64"),
            pushed.digest
        ),
    );
    let moved = registry
        .push_image("os/autosd:v1", &ImageFixture::new("arm64").seed(7))
        .await;
    assert_ne!(moved.digest, pushed.digest);
    let run = local("pinned");
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains(&format!(
            "✗ Digest verification: {host}/os/autosd:v1 now resolves to {}, not the pinned {}\n",
            moved.digest, pushed.digest
        )),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains(&format!("Resolved Digest:  {}\n", pushed.digest)),
        "{run:?}"
    );
    assert!(
        run.stdout.ends_with("Status:          Available\n"),
        "{run:?}"
    );

    let run = local("nope");
    assert_eq!(run.code, 4, "{run:?}");
    assert!(
        run.stderr.contains("catalog entry \"nope\" not found"),
        "{run:?}"
    );
}
