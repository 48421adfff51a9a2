//! sha512 pins (the OCI image specification registers sha256 and sha512) against a real
//! docker-registry, through the registry library, the real reconciler and the real caib.
//!
//! What Debian's docker-registry (distribution 2.8) can do with sha512 bounds what is tested:
//! it stores and serves sha512 blobs, but refuses a manifest pushed by a sha512 reference
//! (`DIGEST_INVALID`) and answers 404 to a manifest asked for by one. So a sha512 pin is
//! tested where it names a tagged image (compared by content with the sha256 the registry
//! resolves the tag to), and a sha512-only reference is tested to fail the way such a registry
//! makes it fail; serving a manifest by sha512 needs a registry that stores it so.

mod verify_common;
#[path = "support/write_setup.rs"]
mod write_setup;

use catalog_api::ImageReference;
use catalog_api::image::Phase;
use catalog_api::registry::{Credentials, RegistryClient, RegistryError, RegistryOptions};
use catalog_e2e::fixture::registry_with;
use serde_json::json;
use verify_common::*;

fn client(host: &str) -> RegistryClient {
    RegistryClient::new(RegistryOptions {
        insecure_registries: vec![host.into()],
        ..Default::default()
    })
    .unwrap()
}

/// A sha512 digest of other content: a pin naming some other manifest.
fn other_sha512() -> String {
    format!("sha512:{}", "5".repeat(128))
}

#[tokio::test]
async fn registry_library_compares_a_sha512_pin_by_content() {
    let (registry, pushed) = registry_with("os/pinned:v1", "amd64").await;
    let host = registry.host();
    let client = client(&host);
    let tagged = ImageReference::parse(&format!("{host}/os/pinned:v1")).unwrap();
    let anonymous = &Credentials::Anonymous;

    let resolved = client.resolve(&tagged, anonymous).await.unwrap();
    assert_eq!(resolved, pushed.digest);
    assert!(
        client
            .names_same_manifest(&tagged, &resolved, &pushed.manifest_sha512, anonymous)
            .await
            .unwrap()
    );
    assert!(
        !client
            .names_same_manifest(&tagged, &resolved, &other_sha512(), anonymous)
            .await
            .unwrap()
    );

    // The registry's limit, as the library reports it: a manifest asked for by sha512 is
    // not found (a registry storing manifests by sha512 would serve it, checked by content).
    let by_sha512 = tagged.with_digest(&pushed.manifest_sha512).unwrap();
    let err = client.resolve(&by_sha512, anonymous).await.unwrap_err();
    assert!(matches!(err, RegistryError::NotFound { .. }), "{err}");
}

/// The CRD takes a sha512 `spec.digest`, and a tag still pointing at the pinned manifest is
/// Available: the reconciler compares by content and inspects by the registry's digest.
#[tokio::test]
async fn sha512_pin_of_the_tagged_manifest_is_available() {
    let (registry, pushed) = registry_with("os/autosd:v1", "amd64").await;
    let mut env = Env::start().await;
    env.spawn_reconciler(&["--insecure-registry", &registry.host()]);
    let url = format!("{}/os/autosd:v1", registry.host());
    env.create_image("pinned", &url, json!({"digest": pushed.manifest_sha512}))
        .await;

    let image = env.wait_phase("pinned", Phase::Available).await;
    assert_eq!(
        image.spec.digest.as_deref(),
        Some(pushed.manifest_sha512.as_str())
    );
    let meta = image.status.unwrap().registry_metadata.unwrap();
    assert_eq!(meta.resolved_digest, Some(pushed.digest));
    assert_eq!(meta.size_bytes, Some(pushed.size_bytes));
}

/// A sha512 pin of some other manifest is the tag having moved away from a pin the registry
/// cannot serve: reported as the pinned digest not found, naming both digests.
#[tokio::test]
async fn sha512_pin_of_another_manifest_is_reported() {
    let (registry, pushed) = registry_with("os/moved:v1", "amd64").await;
    let mut env = Env::start().await;
    env.spawn_reconciler(&["--insecure-registry", &registry.host()]);
    let url = format!("{}/os/moved:v1", registry.host());
    env.create_image("moved", &url, json!({"digest": other_sha512()}))
        .await;

    let image = env.wait_phase("moved", Phase::Unavailable).await;
    let message = available_message(&image);
    assert!(message.starts_with("DigestNotFound"), "{message}");
    assert!(message.contains(&other_sha512()), "{message}");
    assert!(message.contains(&pushed.digest), "{message}");
}

/// The API server refuses a digest of a registered algorithm with the wrong length, by the
/// CRD's pattern.
#[tokio::test]
async fn crd_refuses_a_sha512_of_the_wrong_length() {
    let env = Env::start().await;
    let object = catalog_e2e::fixture::catalog_object(
        "CatalogImage",
        "short",
        NS,
        json!({"registryUrl": "quay.io/a/b:v1", "digest": format!("sha512:{}", "a".repeat(64))}),
    );
    let created: Result<catalog_api::CatalogImage, _> = env
        .images()
        .create(
            &kube::api::PostParams::default(),
            &serde_json::from_value(object).unwrap(),
        )
        .await;
    let err = created.unwrap_err().to_string();
    assert!(err.contains("spec.digest"), "{err}");
}

/// `caib catalog add --digest sha512:...` checks the pin by content against the tagged image,
/// keeps it as written (also with `--pin`), and refuses a pin of other content (exit 4) or of
/// the wrong length (exit 2, naming the accepted forms).
#[tokio::test]
async fn caib_add_takes_a_sha512_pin_of_the_tagged_image() {
    use write_setup::{Setup, assert_exit, assert_stdout, assert_success};
    let (registry, pushed) = registry_with("os/ref:v1", "amd64").await;
    let s = Setup::new().await;
    let url = format!("{}/os/ref:v1", registry.host());
    let add = |extra: &[&str]| {
        let mut args = vec![
            "catalog",
            "add",
            "ref-image",
            url.as_str(),
            "--architecture",
            "amd64",
            "--distro",
            "cs9",
            "--dry-run",
        ];
        args.extend_from_slice(extra);
        args.iter().map(|a| a.to_string()).collect::<Vec<_>>()
    };
    let pinned = format!("+  digest: {}", pushed.manifest_sha512);
    for extra in [&["--digest"][..], &["--pin", "--digest"][..]] {
        let mut args = add(extra);
        args.push(pushed.manifest_sha512.clone());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = s.run(&args).await;
        assert_success(&out);
        assert_stdout(&out, &pinned);
    }
    let other = other_sha512();
    let args = add(&["--digest", &other]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_exit(&s.run(&args).await, 4, "");
    let short = format!("sha512:{}", "a".repeat(64));
    let args = add(&["--digest", &short]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_exit(
        &s.run(&args).await,
        2,
        "expected sha256: followed by 64 lowercase hex characters, or sha512: followed by 128",
    );
}
