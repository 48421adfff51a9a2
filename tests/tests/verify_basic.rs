//! Verification end to end: the real reconciler against the emulator and real registries.
//! Exact registry facts, the request budget of re-verification, verify requests, TLS.

use catalog_e2e::suite::verify as verify_common;

use std::time::Duration;

use catalog_api::CatalogImage;
use catalog_api::image::{Phase, condition};
use catalog_e2e::fixture::registry_with;
use catalog_e2e::process::eventually;
use catalog_e2e::registry::{CountingProxy, ImageFixture, PushedImage, Registry, RegistryConfig};
use serde_json::json;
use verify_common::*;

#[tokio::test]
async fn single_arch_image_reports_exact_facts() {
    let registry = Registry::start(RegistryConfig::default()).await;
    let pushed = registry
        .push_image(
            "os/autosd:v1",
            &ImageFixture::new("arm64")
                .variant("v8")
                .layers(&[1500, 2600, 70])
                .created("2026-01-04T13:00:00Z"),
        )
        .await;
    let mut env = Env::start().await;
    env.spawn_reconciler(&["--insecure-registry", &registry.host()]);
    let url = format!("{}/os/autosd:v1", registry.host());
    env.create_image(
        "autosd",
        &url,
        json!({"metadata": {"architecture": "aarch64"}}),
    )
    .await;

    let image = env.wait_phase("autosd", Phase::Available).await;
    let status = image.status.as_ref().unwrap();
    let meta = status.registry_metadata.as_ref().unwrap();
    assert_eq!(
        meta.resolved_digest.as_deref(),
        Some(pushed.digest.as_str())
    );
    assert_eq!(meta.size_bytes, Some(pushed.config_size + 1500 + 2600 + 70));
    assert_eq!(meta.layer_count, Some(3));
    let platform = meta.platform.as_ref().unwrap();
    assert_eq!(
        (
            platform.architecture.as_str(),
            platform.os.as_str(),
            platform.variant.as_deref()
        ),
        ("arm64", "linux", Some("v8"))
    );
    assert_eq!(
        meta.created_at.as_ref().unwrap().0.to_string(),
        "2026-01-04T13:00:00Z"
    );
    assert_eq!(meta.is_multi_arch, Some(false));
    assert_eq!(status.observed_generation, image.metadata.generation);
    assert_eq!(status.verification_failures, Some(0));
    assert!(status.published_at.is_some() && status.last_verification_time.is_some());
    for ty in [condition::AVAILABLE, condition::VERIFIED, condition::READY] {
        assert_eq!(condition(&image, ty).unwrap().status, "True", "{ty}");
    }
    // Labels are never written by the verification controller.
    assert!(image.metadata.labels.as_ref().is_none_or(|l| l.is_empty()));
    let reasons = eventually(WAIT, "Verified event", || async {
        let r = env.event_reasons("autosd").await;
        r.contains(&"Verified".to_string()).then_some(r)
    })
    .await;
    assert!(!reasons.contains(&"Failed".to_string()), "{reasons:?}");

    // Counted right after the status write; the phase gauge follows the watch.
    let metrics = eventually(WAIT, "verification metrics", || async {
        let metrics = env.metrics(0).await;
        let verified = metric_sum(
            &metrics,
            "catalog_verifications_total",
            &[("result", "available")],
        );
        let gauge = metric_sum(&metrics, "catalog_images", &[("phase", "Available")]);
        (verified == 1.0 && gauge == 1.0).then_some(metrics)
    })
    .await;
    assert_eq!(
        metric_sum(
            &metrics,
            "catalog_registry_requests_total",
            &[("method", "HEAD")]
        ),
        1.0
    );
    assert!(metrics.contains("catalog_verification_duration_seconds_bucket"));
}

#[tokio::test]
async fn multi_arch_index_lists_every_platform_with_real_sizes() {
    let registry = Registry::start(RegistryConfig::default()).await;
    let index = registry
        .push_index(
            "os/multi:v1",
            &[
                ImageFixture::new("amd64").layers(&[1000, 2000, 3000]),
                ImageFixture::new("arm64").variant("v8").layers(&[4000]),
            ],
            true,
        )
        .await;
    let mut env = Env::start().await;
    env.spawn_reconciler(&["--insecure-registry", &registry.host()]);
    env.create_image(
        "multi",
        &format!("{}/os/multi:v1", registry.host()),
        json!({}),
    )
    .await;
    let image = env.wait_phase("multi", Phase::Available).await;
    let meta = image.status.unwrap().registry_metadata.unwrap();
    assert_eq!(meta.resolved_digest.as_deref(), Some(index.digest.as_str()));
    assert_eq!(meta.is_multi_arch, Some(true));
    assert_eq!(
        meta.platform_variants.len(),
        2,
        "attestation skipped: {meta:?}"
    );
    let amd = &meta.platform_variants[0];
    assert_eq!(
        (amd.architecture.as_str(), amd.digest.as_str()),
        ("amd64", index.platforms[0].digest.as_str())
    );
    assert_eq!(amd.size_bytes, Some(index.platforms[0].size_bytes));
    assert_eq!(amd.layer_count, Some(3));
    let arm = &meta.platform_variants[1];
    assert_eq!(arm.variant.as_deref(), Some("v8"));
    assert_eq!(arm.size_bytes, Some(index.platforms[1].size_bytes));
    assert_eq!(arm.layer_count, Some(1));
    // Top-level numbers are those of the declared architecture's image, never the count of
    // platforms or 0.
    assert_eq!(meta.layer_count, Some(3));
    assert_eq!(meta.size_bytes, Some(index.platforms[0].size_bytes));
    assert_eq!(meta.platform.unwrap().architecture, "amd64");
}

/// A registry that answers at once costs a new image one status write (no `Verifying` step);
/// one slower than `VERIFYING_NOTICE` (1 s) shows `Verifying` while it is checked.
#[tokio::test]
async fn verifying_is_shown_only_while_a_check_is_slow() {
    let registry = Registry::start(RegistryConfig::default()).await;
    registry
        .push_image("os/fast:v1", &ImageFixture::new("amd64"))
        .await;
    registry
        .push_image("os/slow:v1", &ImageFixture::new("amd64"))
        .await;
    let proxy = CountingProxy::start(&registry).await;
    let mut env = Env::start().await;
    env.spawn_reconciler(&["--insecure-registry", &proxy.host()]);
    env.create_image("fast", &format!("{}/os/fast:v1", proxy.host()), json!({}))
        .await;
    env.wait_phase("fast", Phase::Available).await;
    assert_eq!(
        env.emu.request_count("patch catalogimages/status"),
        1,
        "a fast first verification writes its status once"
    );

    proxy.hold();
    env.emu.reset_requests();
    env.create_image("slow", &format!("{}/os/slow:v1", proxy.host()), json!({}))
        .await;
    let verifying = env.wait_phase("slow", Phase::Verifying).await;
    assert!(proxy.waiting() > 0, "the registry request is still held");
    let ready = condition(&verifying, condition::READY).unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("Unknown", "Verifying")
    );
    proxy.release();
    env.wait_phase("slow", Phase::Available).await;
    assert_eq!(env.emu.request_count("patch catalogimages/status"), 2);
}

/// `os/<name>:v1` (amd64) in a real registry behind a counting proxy, a reconciler that
/// trusts the proxy, and CatalogImage `name` of that image, verified every `interval`.
struct Proxied {
    /// Bind it (`registry: _registry`, not `..`): the registry stops when it is dropped.
    registry: Registry,
    pushed: PushedImage,
    proxy: CountingProxy,
    env: Env,
    /// The image once it first shows Available.
    available: CatalogImage,
}

async fn proxied_image(name: &str, interval: &str) -> Proxied {
    let (registry, pushed) = registry_with(&format!("os/{name}:v1"), "amd64").await;
    let proxy = CountingProxy::start(&registry).await;
    let mut env = Env::start().await;
    env.spawn_reconciler(&["--insecure-registry", &proxy.host()]);
    env.create_image(
        name,
        &format!("{}/os/{name}:v1", proxy.host()),
        json!({"verificationInterval": interval}),
    )
    .await;
    let available = env.wait_phase(name, Phase::Available).await;
    Proxied {
        registry,
        pushed,
        proxy,
        env,
        available,
    }
}

#[tokio::test]
async fn unchanged_image_costs_one_head_per_interval_and_requests_are_echoed() {
    let Proxied {
        registry: _registry,
        proxy,
        env,
        ..
    } = proxied_image("steady", "2s").await;
    // First verification: HEAD + manifest + config.
    assert_eq!(proxy.requests().len(), 3, "{:?}", proxy.requests());
    proxy.clear();
    env.emu.reset_requests();

    let verified = |text: &str| metric_sum(text, "catalog_verifications_total", &[]);
    let before = verified(&env.metrics(0).await);
    let after = eventually(
        Duration::from_secs(20),
        "three periodic re-verifications",
        || async {
            let n = verified(&env.metrics(0).await);
            (n >= before + 3.0).then_some(n)
        },
    )
    .await;
    let requests = proxy.requests();
    let heads: Vec<_> = requests.iter().filter(|r| r.method == "HEAD").collect();
    assert_eq!(
        requests.len(),
        heads.len(),
        "only HEAD requests: {requests:?}"
    );
    let delta = (after - before) as usize;
    assert!(
        heads.len() == delta || heads.len() == delta + 1,
        "{} HEADs for {delta} verifications",
        heads.len()
    );
    for pair in heads.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(
            gap >= Duration::from_millis(1700),
            "re-verification every ~2s (jitter 90-100%), got {gap:?}"
        );
    }
    // One status write per verification; our writes never retrigger a verification.
    let patches = env.emu.request_count("patch catalogimages/status");
    assert!(
        patches as usize <= delta + 1,
        "{patches} status patches for {delta} verifications"
    );

    // A verify request is served at once (manifests re-read) and echoed.
    proxy.clear();
    env.request_verify("steady", "2026-01-04T14:30:00Z").await;
    eventually(
        Duration::from_secs(10),
        "lastHandledVerifyAt echo",
        || async {
            let image = env.image("steady").await;
            (image.status?.last_handled_verify_at.as_deref() == Some("2026-01-04T14:30:00Z"))
                .then_some(())
        },
    )
    .await;
    assert!(
        proxy.count("GET", "/manifests/") >= 1,
        "a requested verification re-reads the manifest"
    );
}

#[tokio::test]
async fn tls_registry_with_private_ca() {
    let registry = Registry::start(RegistryConfig::with_tls()).await;
    let pushed = registry
        .push_image("secure/os:v1", &ImageFixture::new("amd64"))
        .await;
    let mut env = Env::start().await;
    let ca = registry.ca_path().unwrap();
    env.spawn_reconciler(&["--registry-ca", ca.to_str().unwrap()]);
    env.create_image(
        "secure",
        &format!("{}/secure/os:v1", registry.host()),
        json!({}),
    )
    .await;
    let image = env.wait_phase("secure", Phase::Available).await;
    let meta = image.status.unwrap().registry_metadata.unwrap();
    assert_eq!(meta.resolved_digest, Some(pushed.digest));
    assert_eq!(meta.size_bytes, Some(pushed.size_bytes));
}

#[tokio::test]
async fn deleted_manifest_backs_off_then_fails_after_five() {
    let Proxied {
        registry,
        pushed,
        proxy,
        env,
        available: before,
    } = proxied_image("gone", "3s").await;
    let metadata = before.status.unwrap().registry_metadata;

    registry.delete_manifest("os/gone", &pushed.digest).await;
    proxy.clear();
    // The next periodic verification finds it gone.
    let image = env.wait_phase("gone", Phase::Unavailable).await;
    assert!(
        available_message(&image).starts_with("ManifestNotFound"),
        "{}",
        available_message(&image)
    );
    // Facts of the last success are kept.
    assert_eq!(image.status.as_ref().unwrap().registry_metadata, metadata);

    let image = env.wait_phase("gone", Phase::Failed).await;
    let status = image.status.as_ref().unwrap();
    assert_eq!(status.verification_failures, Some(5));
    assert!(
        available_message(&image).contains("5 consecutive failures"),
        "{}",
        available_message(&image)
    );
    let heads: Vec<_> = proxy
        .requests()
        .into_iter()
        .filter(|r| r.method == "HEAD")
        .collect();
    assert!(heads.len() >= 5, "{heads:?}");
    let gaps: Vec<Duration> = heads[..5].windows(2).map(|p| p[1].at - p[0].at).collect();
    // Backoff 1s, 2s, 4s, 8s with jitter x0.75..1.25: every gap longer than the previous.
    for pair in gaps.windows(2) {
        assert!(pair[1] > pair[0], "backoff grows: {gaps:?}");
    }
    assert!(gaps[0] >= Duration::from_millis(700), "{gaps:?}");
    // Events are published right after the status write.
    eventually(WAIT, "Unavailable and Failed events", || async {
        let reasons = env.event_reasons("gone").await;
        (reasons.contains(&"Unavailable".to_string()) && reasons.contains(&"Failed".to_string()))
            .then_some(())
    })
    .await;

    // A Failed image is retried at its interval, so the catalog heals once the image is back.
    registry
        .push_image("os/gone:v1", &ImageFixture::new("amd64"))
        .await;
    let healed = env.wait_phase("gone", Phase::Available).await;
    assert_eq!(healed.status.unwrap().verification_failures, Some(0));
}

#[tokio::test]
async fn namespace_flag_limits_the_watch() {
    let (registry, _) = registry_with("os/app:v1", "amd64").await;
    let mut env = Env::start().await;
    let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> =
        kube::Api::all(env.client.clone());
    namespaces
        .create(
            &Default::default(),
            &serde_json::from_value(json!({"metadata": {"name": "elsewhere"}})).unwrap(),
        )
        .await
        .unwrap();
    env.spawn_reconciler(&["--insecure-registry", &registry.host(), "--namespace", NS]);
    let url = format!("{}/os/app:v1", registry.host());
    let elsewhere: kube::Api<catalog_api::CatalogImage> =
        kube::Api::namespaced(env.client.clone(), "elsewhere");
    let object = json!({
        "apiVersion": "automotive.sdv.cloud.redhat.com/v1alpha1",
        "kind": "CatalogImage",
        "metadata": {"name": "not-mine", "namespace": "elsewhere"},
        "spec": {"registryUrl": url, "metadata": {"architecture": "amd64"}},
    });
    elsewhere
        .create(
            &Default::default(),
            &serde_json::from_value(object).unwrap(),
        )
        .await
        .unwrap();
    env.create_image("mine", &url, json!({})).await;
    env.wait_phase("mine", Phase::Available).await;
    let other = elsewhere.get("not-mine").await.unwrap();
    assert!(
        other.status.is_none(),
        "outside --namespace: {:?}",
        other.status
    );
}

#[tokio::test]
async fn unreadable_registry_ca_stops_the_process_naming_the_flag() {
    let mut env = Env::start().await;
    let index = env.spawn_reconciler(&["--registry-ca", "/nonexistent/ca.pem"]);
    let status = eventually(WAIT, "the reconciler to exit", || {
        let status = env.reconciler(index).child.try_wait().unwrap();
        async move { status }
    })
    .await;
    assert!(!status.success());
    let logs = env.logs(index);
    assert!(
        logs.contains("--registry-ca /nonexistent/ca.pem: cannot read the file"),
        "{logs}"
    );
}

/// A wait of 10 s or more is kept in the image's memory and fired by the verifier's timer
/// sweep (`reconciler/src/verify/timers.rs`), not by kube-runtime's scheduler: an image with
/// a 12 s interval is verified again, about 12 s (jitter 90-100%) after the last time.
#[tokio::test]
async fn a_long_interval_is_fired_from_the_images_memory() {
    let Proxied {
        registry: _registry,
        proxy,
        env,
        ..
    } = proxied_image("slow-steady", "12s").await;
    let available = std::time::Instant::now();
    proxy.clear();
    let verified = |text: &str| metric_sum(text, "catalog_verifications_total", &[]);
    let before = verified(&env.metrics(0).await);
    eventually(
        Duration::from_secs(60),
        "a periodic re-verification",
        || async { (verified(&env.metrics(0).await) > before).then_some(()) },
    )
    .await;
    assert!(
        available.elapsed() >= Duration::from_secs(9),
        "the premise: a wait over 10 s ({:?})",
        available.elapsed()
    );
    let image = env.image("slow-steady").await;
    let status = image.status.unwrap();
    assert_eq!(status.phase, Some(Phase::Available));
    let heads = proxy
        .requests()
        .into_iter()
        .filter(|r| r.method == "HEAD")
        .count();
    assert_eq!(heads, 1, "one HEAD for the re-verification");
}
