//! The registry library (`catalog_api::registry`) against a real docker-registry: exact
//! facts for every manifest kind, the request budget, credentials, TLS and error kinds.

use catalog_api::ImageReference;
use catalog_api::registry::{
    Credentials, DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, RegistryClient,
    RegistryError, RegistryOptions,
};
use catalog_e2e::registry::{CountingProxy, ImageFixture, Registry, RegistryConfig};

fn client_for(hosts: &[String]) -> RegistryClient {
    RegistryClient::new(RegistryOptions {
        insecure_registries: hosts.to_vec(),
        ..Default::default()
    })
    .unwrap()
}

fn reference(host: &str, rest: &str) -> ImageReference {
    ImageReference::parse(&format!("{host}/{rest}")).unwrap()
}

#[tokio::test]
async fn single_arch_oci_costs_one_head_then_manifest_and_config() {
    let registry = Registry::start(RegistryConfig::default()).await;
    let fixture = ImageFixture::new("arm64")
        .variant("v8")
        .layers(&[1234, 5678, 90])
        .created("2026-03-04T05:06:07Z");
    let pushed = registry.push_image("os/autosd:v1", &fixture).await;
    let proxy = CountingProxy::start(&registry).await;
    let client = client_for(&[proxy.host()]);
    let image = reference(&proxy.host(), "os/autosd:v1");

    let digest = client
        .resolve(&image, &Credentials::Anonymous)
        .await
        .unwrap();
    assert_eq!(digest, pushed.digest);
    assert_eq!(proxy.requests().len(), 1, "{:?}", proxy.requests());
    assert_eq!(proxy.count("HEAD", "/v2/os/autosd/manifests/v1"), 1);

    let facts = client
        .inspect(
            &image.with_digest(&digest).unwrap(),
            &Credentials::Anonymous,
            Some("aarch64"),
        )
        .await
        .unwrap();
    assert_eq!(proxy.requests().len(), 3, "{:?}", proxy.requests());
    assert_eq!(proxy.count("GET", "/blobs/"), 1);
    assert_eq!(facts.digest, pushed.digest);
    assert_eq!(facts.media_type, OCI_MANIFEST);
    assert!(!facts.is_index);
    assert_eq!(facts.size_bytes, pushed.config_size + 1234 + 5678 + 90);
    assert_eq!(facts.size_bytes, pushed.size_bytes);
    assert_eq!(facts.layer_count, 3);
    let meta = facts.metadata();
    let platform = meta.platform.unwrap();
    assert_eq!(
        (platform.architecture.as_str(), platform.os.as_str()),
        ("arm64", "linux")
    );
    assert_eq!(platform.variant.as_deref(), Some("v8"));
    assert_eq!(
        meta.created_at.unwrap().0.to_string(),
        "2026-03-04T05:06:07Z"
    );
    assert_eq!(meta.is_multi_arch, Some(false));
    assert!(facts.provides_architecture("arm64"));
    assert!(!facts.provides_architecture("amd64"));
}

#[tokio::test]
async fn docker_v2_manifest_and_manifest_list() {
    let registry = Registry::start(RegistryConfig::default()).await;
    let client = client_for(&[registry.host()]);
    let single = registry
        .push_image(
            "d/single:1",
            &ImageFixture::new("amd64").docker().layers(&[4096]),
        )
        .await;
    let image = reference(&registry.host(), "d/single:1");
    let digest = client
        .resolve(&image, &Credentials::Anonymous)
        .await
        .unwrap();
    assert_eq!(digest, single.digest);
    let facts = client
        .inspect(&image, &Credentials::Anonymous, None)
        .await
        .unwrap();
    assert_eq!(facts.media_type, DOCKER_MANIFEST);
    assert_eq!(facts.size_bytes, single.size_bytes);
    assert_eq!(facts.layer_count, 1);

    let index = registry
        .push_index(
            "d/multi:1",
            &[
                ImageFixture::new("amd64").docker().layers(&[100, 200]),
                ImageFixture::new("arm64")
                    .docker()
                    .variant("v8")
                    .layers(&[300, 400, 500]),
            ],
            false,
        )
        .await;
    let image = reference(&registry.host(), "d/multi:1");
    let facts = client
        .inspect(&image, &Credentials::Anonymous, Some("arm64"))
        .await
        .unwrap();
    assert_eq!(facts.digest, index.digest);
    assert_eq!(facts.media_type, DOCKER_LIST);
    assert!(facts.is_index);
    assert_eq!(facts.platforms.len(), 2);
    assert_eq!(facts.layer_count, 3, "layer count of the selected platform");
    assert_eq!(facts.size_bytes, index.platforms[1].size_bytes);
    assert_eq!(facts.config.architecture, "arm64");
}

#[tokio::test]
async fn oci_index_reports_every_platform_and_skips_attestations() {
    let registry = Registry::start(RegistryConfig::default()).await;
    let index = registry
        .push_index(
            "os/multi:v2",
            &[
                ImageFixture::new("amd64")
                    .layers(&[1000, 2000])
                    .created("2026-01-01T00:00:00Z"),
                ImageFixture::new("arm64")
                    .variant("v8")
                    .layers(&[3000])
                    .created("2026-02-02T00:00:00Z"),
            ],
            true,
        )
        .await;
    let proxy = CountingProxy::start(&registry).await;
    let client = client_for(&[proxy.host()]);
    let image = reference(&proxy.host(), "os/multi:v2");
    let facts = client
        .inspect(&image, &Credentials::Anonymous, Some("amd64"))
        .await
        .unwrap();
    // index + two platform manifests + one config; the attestation is never fetched.
    assert_eq!(proxy.requests().len(), 4, "{:?}", proxy.requests());
    let attestation = index.attestation.as_ref().unwrap();
    assert!(
        proxy
            .requests()
            .iter()
            .all(|r| !r.path.contains(&attestation.digest))
    );

    let meta = facts.metadata();
    assert_eq!(meta.resolved_digest.as_deref(), Some(index.digest.as_str()));
    assert_eq!(meta.media_type.as_deref(), Some(OCI_INDEX));
    assert_eq!(meta.is_multi_arch, Some(true));
    assert_eq!(meta.platform_variants.len(), 2);
    for (variant, pushed) in meta.platform_variants.iter().zip(&index.platforms) {
        assert_eq!(variant.digest, pushed.digest);
        assert_eq!(variant.size_bytes, Some(pushed.size_bytes));
        assert_eq!(variant.layer_count, Some(pushed.layer_count));
    }
    assert_eq!(meta.platform_variants[1].variant.as_deref(), Some("v8"));
    assert_eq!(meta.size_bytes, Some(index.platforms[0].size_bytes));
    assert_eq!(meta.layer_count, Some(2));
    assert_eq!(
        meta.created_at.unwrap().0.to_string(),
        "2026-01-01T00:00:00Z"
    );
    assert!(facts.provides_architecture("arm64"));
    assert!(!facts.provides_architecture("s390x"));

    let arm = client
        .inspect(&image, &Credentials::Anonymous, Some("aarch64"))
        .await
        .unwrap();
    assert_eq!(arm.layer_count, 1);
    assert_eq!(
        arm.config.created.unwrap().to_string(),
        "2026-02-02T00:00:00Z"
    );
}

#[tokio::test]
async fn missing_and_deleted_manifests_are_not_found() {
    let registry = Registry::start(RegistryConfig::default()).await;
    let client = client_for(&[registry.host()]);
    let pushed = registry
        .push_image("os/gone:v1", &ImageFixture::new("amd64"))
        .await;
    let image = reference(&registry.host(), "os/gone:v1");
    assert_eq!(
        client
            .resolve(&image, &Credentials::Anonymous)
            .await
            .unwrap(),
        pushed.digest
    );

    registry.delete_manifest("os/gone", &pushed.digest).await;
    let err = client
        .resolve(&image, &Credentials::Anonymous)
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("os/gone:v1"), "{err}");

    let pinned = image
        .with_digest("sha256:0000000000000000000000000000000000000000000000000000000000000000")
        .unwrap();
    let err = client
        .resolve(&pinned, &Credentials::Anonymous)
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::NotFound { .. }), "{err}");
    let err = client
        .resolve(
            &reference(&registry.host(), "never/pushed:x"),
            &Credentials::Anonymous,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::NotFound { .. }), "{err}");
}

#[tokio::test]
async fn htpasswd_registry_learns_basic_auth_once() {
    let registry = Registry::start(RegistryConfig::with_auth("ci", "s3cret")).await;
    let pushed = registry
        .push_image("private/os:v1", &ImageFixture::new("amd64"))
        .await;
    let proxy = CountingProxy::start(&registry).await;
    let client = client_for(&[proxy.host()]);
    let image = reference(&proxy.host(), "private/os:v1");
    let good = Credentials::Basic {
        username: "ci".into(),
        password: "s3cret".into(),
    };
    assert_eq!(client.resolve(&image, &good).await.unwrap(), pushed.digest);
    // The first request learns the Basic challenge (401), the retry carries credentials.
    assert_eq!(proxy.requests().len(), 2);
    proxy.clear();
    assert_eq!(client.resolve(&image, &good).await.unwrap(), pushed.digest);
    assert_eq!(
        proxy.requests().len(),
        1,
        "credentials are sent up front once learned"
    );

    let wrong = Credentials::Basic {
        username: "ci".into(),
        password: "wrong".into(),
    };
    let err = client.resolve(&image, &wrong).await.unwrap_err();
    assert!(
        matches!(err, RegistryError::Unauthorized { status: 401, .. }),
        "{err}"
    );
    assert!(
        !err.to_string().contains("wrong"),
        "no secret in messages: {err}"
    );
    let err = client
        .resolve(&image, &Credentials::Anonymous)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("requires credentials"), "{err}");
    let facts = client.inspect(&image, &good, None).await.unwrap();
    assert_eq!(facts.size_bytes, pushed.size_bytes);
}

#[tokio::test]
async fn tls_registry_needs_its_private_ca() {
    let registry = Registry::start(RegistryConfig::with_tls()).await;
    let pushed = registry
        .push_image("secure/os:v1", &ImageFixture::new("arm64"))
        .await;
    let image = reference(&registry.host(), "secure/os:v1");

    let untrusting = RegistryClient::new(RegistryOptions::default()).unwrap();
    let err = untrusting
        .resolve(&image, &Credentials::Anonymous)
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );

    let trusting = RegistryClient::new(RegistryOptions {
        extra_ca_pem: vec![std::fs::read(registry.ca_path().unwrap()).unwrap()],
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        trusting
            .resolve(&image, &Credentials::Anonymous)
            .await
            .unwrap(),
        pushed.digest
    );
    let facts = trusting
        .inspect(&image, &Credentials::Anonymous, None)
        .await
        .unwrap();
    assert_eq!(facts.size_bytes, pushed.size_bytes);

    let err = RegistryClient::new(RegistryOptions {
        extra_ca_pem: vec![b"not a pem".to_vec()],
        ..Default::default()
    })
    .err()
    .expect("garbage CA is rejected");
    assert!(matches!(err, RegistryError::Config(_)), "{err}");
}

#[tokio::test]
async fn unreachable_and_throttled_registries_are_transient() {
    let mut registry = Registry::start(RegistryConfig::default()).await;
    registry
        .push_image("os/app:v1", &ImageFixture::new("amd64"))
        .await;
    let proxy = CountingProxy::start(&registry).await;
    let client = client_for(&[registry.host(), proxy.host()]);

    proxy.fail_with(429, Some(7));
    let err = client
        .resolve(
            &reference(&proxy.host(), "os/app:v1"),
            &Credentials::Anonymous,
        )
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert_eq!(err.retry_after(), Some(std::time::Duration::from_secs(7)));
    proxy.fail_with(503, None);
    let err = client
        .resolve(
            &reference(&proxy.host(), "os/app:v1"),
            &Credentials::Anonymous,
        )
        .await
        .unwrap_err();
    assert!(err.is_transient() && err.retry_after().is_none(), "{err}");

    let image = reference(&registry.host(), "os/app:v1");
    registry.stop().await;
    let err = client
        .resolve(&image, &Credentials::Anonymous)
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains("cannot connect"), "{err}");
    registry.restart().await;
    assert!(
        client
            .resolve(&image, &Credentials::Anonymous)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn plain_http_only_where_allowed() {
    let registry = Registry::start(RegistryConfig::default()).await;
    registry
        .push_image("os/app:v1", &ImageFixture::new("amd64"))
        .await;
    let strict = client_for(&[]);
    let err = strict
        .resolve(
            &reference(&registry.host(), "os/app:v1"),
            &Credentials::Anonymous,
        )
        .await
        .unwrap_err();
    assert!(
        err.is_transient(),
        "an HTTPS handshake with a plain-HTTP server fails: {err}"
    );
}

#[tokio::test]
async fn credentials_wait_for_the_registrys_challenge() {
    // A registry serving the image anonymously never sees the credentials held for it.
    let anonymous = catalog_e2e::trap::CredentialTrap::anonymous_registry();
    let client = client_for(&[anonymous.host()]);
    for credentials in [
        Credentials::Bearer("registry-token".into()),
        Credentials::Basic {
            username: "u".into(),
            password: "p".into(),
        },
    ] {
        client
            .resolve(&reference(&anonymous.host(), "os/img:1"), &credentials)
            .await
            .expect("served anonymously");
    }
    assert_eq!(anonymous.seen().len(), 2, "premise: both resolves asked it");
    assert!(anonymous.credentials().is_empty(), "{:?}", anonymous.seen());

    // One that asks for them gets them, after its challenge.
    let asking = catalog_e2e::trap::CredentialTrap::with_challenge("Bearer realm=\"x\"".into());
    let client = client_for(&[asking.host()]);
    let _ = client
        .resolve(
            &reference(&asking.host(), "os/img:1"),
            &Credentials::Bearer("registry-token".into()),
        )
        .await;
    let seen = asking.seen();
    assert!(seen[0].header("authorization").is_none(), "{seen:?}");
    assert_eq!(
        asking.credentials(),
        ["Bearer registry-token"],
        "sent once asked"
    );
}
