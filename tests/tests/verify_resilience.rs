//! Failures end to end: registry outages, throttling, the circuit breaker, digest pins and
//! architecture mismatches.

use catalog_e2e::suite::verify as verify_common;

use std::time::Duration;

use catalog_api::image::{Phase, condition};
use catalog_e2e::fixture::registry_with;
use catalog_e2e::process::eventually;
use catalog_e2e::registry::{CountingProxy, ImageFixture};
use serde_json::json;
use verify_common::*;

#[tokio::test]
async fn registry_stopped_then_restarted_heals() {
    let (mut registry, _) = registry_with("os/app:v1", "amd64").await;
    let mut env = Env::start().await;
    env.spawn_reconciler(&["--insecure-registry", &registry.host()]);
    env.create_image(
        "app",
        &format!("{}/os/app:v1", registry.host()),
        json!({"verificationInterval": "1s"}),
    )
    .await;
    env.wait_phase("app", Phase::Available).await;
    registry.stop().await;
    let down = env.wait_phase("app", Phase::Unavailable).await;
    let message = available_message(&down);
    assert!(
        message.starts_with("RegistryUnavailable") && message.contains("cannot connect"),
        "{message}"
    );
    registry.restart().await;
    let up = env.wait_phase("app", Phase::Available).await;
    assert_eq!(up.status.unwrap().verification_failures, Some(0));
}

#[tokio::test]
async fn pinned_digests_are_checked_and_moved_tags_reported() {
    let (registry, v1) = registry_with("os/pinned:v1", "amd64").await;
    let mut env = Env::start().await;
    env.spawn_reconciler(&["--insecure-registry", &registry.host()]);
    let url = format!("{}/os/pinned:v1", registry.host());
    env.create_image("pinned", &url, json!({"digest": v1.digest}))
        .await;
    let missing = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    env.create_image("bad-pin", &url, json!({"digest": missing}))
        .await;

    env.wait_phase("pinned", Phase::Available).await;
    let bad = env.wait_phase("bad-pin", Phase::Unavailable).await;
    let message = available_message(&bad);
    assert!(
        message.starts_with("DigestNotFound") && message.contains(missing),
        "{message}"
    );
    assert_eq!(condition(&bad, condition::READY).unwrap().status, "False");

    // The tag moves to new content while the entry stays pinned to v1's digest.
    let moved = registry
        .push_image("os/pinned:v1", &ImageFixture::new("amd64").seed(2))
        .await;
    assert_ne!(moved.digest, v1.digest);
    env.request_verify("pinned", "after-repush").await;
    let image = eventually(WAIT, "TagMoved condition", || async {
        let image = env.image("pinned").await;
        condition(&image, condition::TAG_MOVED)
            .is_some()
            .then_some(image)
    })
    .await;
    assert_eq!(
        phase_of(&image),
        Some(Phase::Available),
        "pinned image still served"
    );
    let tag_moved = condition(&image, condition::TAG_MOVED).unwrap();
    assert_eq!(tag_moved.status, "True");
    assert!(tag_moved.message.contains(&moved.digest) && tag_moved.message.contains(&v1.digest));
    let meta = image.status.unwrap().registry_metadata.unwrap();
    assert_eq!(meta.resolved_digest, Some(v1.digest.clone()));
    let reasons = eventually(WAIT, "TagMoved event", || async {
        let r = env.event_reasons("pinned").await;
        r.contains(&"TagMoved".to_string()).then_some(r)
    })
    .await;
    assert!(reasons.contains(&"Verified".to_string()), "{reasons:?}");
}

#[tokio::test]
async fn architecture_mismatch_fails() {
    let (registry, _) = registry_with("os/arm:v1", "arm64").await;
    registry
        .push_index(
            "os/multi:v1",
            &[ImageFixture::new("amd64"), ImageFixture::new("arm64")],
            false,
        )
        .await;
    let mut env = Env::start().await;
    env.spawn_reconciler(&["--insecure-registry", &registry.host()]);
    let host = registry.host();
    env.create_image(
        "wrong",
        &format!("{host}/os/arm:v1"),
        json!({"metadata": {"architecture": "x86_64"}}),
    )
    .await;
    env.create_image(
        "not-in-index",
        &format!("{host}/os/multi:v1"),
        json!({"metadata": {"architecture": "s390x"}}),
    )
    .await;
    env.create_image(
        "in-index",
        &format!("{host}/os/multi:v1"),
        json!({"metadata": {"architecture": "aarch64"}}),
    )
    .await;

    let wrong = env.wait_phase("wrong", Phase::Failed).await;
    let verified = condition(&wrong, condition::VERIFIED).unwrap();
    assert_eq!(verified.reason, "ArchitectureMismatch");
    assert!(
        verified.message.contains("x86_64") && verified.message.contains("arm64"),
        "{}",
        verified.message
    );
    // The facts are still reported, so the operator sees what the image really is.
    let meta = wrong.status.unwrap().registry_metadata.unwrap();
    assert_eq!(meta.platform.unwrap().architecture, "arm64");
    let missing = env.wait_phase("not-in-index", Phase::Failed).await;
    assert_eq!(
        condition(&missing, condition::VERIFIED).unwrap().reason,
        "ArchitectureMismatch"
    );
    let ok = env.wait_phase("in-index", Phase::Available).await;
    assert_eq!(
        ok.status
            .unwrap()
            .registry_metadata
            .unwrap()
            .platform
            .unwrap()
            .architecture,
        "arm64"
    );

    // A spec change alone re-verifies (generation), and the facts are re-read for the new
    // declaration.
    env.images()
        .patch(
            "in-index",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"spec": {"metadata": {"architecture": "s390x"}}})),
        )
        .await
        .unwrap();
    let changed = env.wait_phase("in-index", Phase::Failed).await;
    assert_eq!(
        changed.status.as_ref().unwrap().observed_generation,
        changed.metadata.generation
    );
    assert_eq!(
        condition(&changed, condition::VERIFIED).unwrap().reason,
        "ArchitectureMismatch"
    );
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let (registry, _) = registry_with("os/busy:v1", "amd64").await;
    let proxy = CountingProxy::start(&registry).await;
    proxy.fail_with(429, Some(4));
    let mut env = Env::start().await;
    env.spawn_reconciler(&["--insecure-registry", &proxy.host()]);
    env.create_image("busy", &format!("{}/os/busy:v1", proxy.host()), json!({}))
        .await;
    let image = env.wait_phase("busy", Phase::Unavailable).await;
    assert!(
        available_message(&image).contains("429"),
        "{}",
        available_message(&image)
    );
    eventually(WAIT, "a retry", || async {
        (proxy.requests().len() >= 2).then_some(())
    })
    .await;
    let requests = proxy.requests();
    let gap = requests[1].at - requests[0].at;
    assert!(
        gap >= Duration::from_millis(3900),
        "Retry-After 4s honoured over a 1s backoff: {gap:?}"
    );
    proxy.heal();
    env.wait_phase("busy", Phase::Available).await;
}

#[tokio::test]
async fn circuit_breaker_stops_hammering_a_failing_registry() {
    let (_registry, proxy, env) = failing_registry_with_images(8).await;
    let host = proxy.host();
    eventually(WAIT, "breaker open", || async {
        let metrics = env.metrics(0).await;
        (metric_sum(
            &metrics,
            "catalog_registry_breaker_state",
            &[("host", &host)],
        ) == 1.0)
            .then_some(())
    })
    .await;
    let open = eventually(WAIT, "an image short-circuited", || async {
        for i in 0..8 {
            let image = env.image(&format!("app-{i}")).await;
            if available_message(&image).starts_with("CircuitOpen") {
                return Some(image);
            }
        }
        None
    })
    .await;
    assert_eq!(phase_of(&open), Some(Phase::Unavailable));
    let attempts = metric_sum(&env.metrics(0).await, "catalog_verifications_total", &[]);
    assert!(
        (proxy.requests().len() as f64) < attempts,
        "the breaker answers without contacting the registry ({} requests, {attempts} verifications)",
        proxy.requests().len()
    );
    proxy.heal();
    for i in 0..8 {
        env.wait_phase(&format!("app-{i}"), Phase::Available).await;
    }
    let metrics = env.metrics(0).await;
    assert_eq!(
        metric_sum(
            &metrics,
            "catalog_registry_breaker_state",
            &[("host", &host)]
        ),
        0.0
    );
}

/// A registry that stays down costs no status write per retry: once an image shows the
/// failure, the retries its host's open breaker refuses are deferred without a request or a
/// write, so the status writes stay within the attempts that actually reach the registry.
#[tokio::test]
async fn retries_refused_by_an_open_breaker_write_nothing() {
    const IMAGES: usize = 16;
    let (_registry, proxy, env) = failing_registry_with_images(IMAGES).await;
    for i in 0..IMAGES {
        env.wait_phase(&format!("app-{i}"), Phase::Unavailable)
            .await;
    }
    let deferred = |metrics: &str| metric_sum(metrics, "catalog_verifications_deferred_total", &[]);
    // Requests are counted before the writes: a verification whose request preceded this
    // point and whose write follows it is the one write allowed beyond the requests.
    let requests_before = proxy.requests().len();
    env.emu.reset_requests();
    let deferred_before = deferred(&env.metrics(0).await);
    eventually(
        Duration::from_secs(90),
        "every image deferred once",
        || async {
            (deferred(&env.metrics(0).await) >= deferred_before + IMAGES as f64).then_some(())
        },
    )
    .await;
    let writes = env.emu.request_count("patch catalogimages/status");
    let requests = proxy.requests().len() - requests_before;
    assert!(
        writes as usize <= requests + 1,
        "{writes} status writes for {requests} registry requests while the breaker deferred {} retries",
        deferred(&env.metrics(0).await) - deferred_before
    );
    proxy.heal();
    for i in 0..IMAGES {
        env.wait_phase(&format!("app-{i}"), Phase::Available).await;
    }
}

/// A registry behind a proxy answering 503, a reconciler allowed one request at a time to
/// it, and `count` images `app-N` on it.
async fn failing_registry_with_images(
    count: usize,
) -> (catalog_e2e::registry::Registry, CountingProxy, Env) {
    let (registry, _) = registry_with("os/app:v1", "amd64").await;
    let proxy = CountingProxy::start(&registry).await;
    proxy.fail_with(503, None);
    let mut env = Env::start().await;
    env.spawn_reconciler(&[
        "--insecure-registry",
        &proxy.host(),
        "--registry-concurrency",
        "1",
    ]);
    for i in 0..count {
        env.create_image(
            &format!("app-{i}"),
            &format!("{}/os/app:v1", proxy.host()),
            json!({}),
        )
        .await;
    }
    (registry, proxy, env)
}
