//! Hostile registries against the real reconciler: a huge index, an answer trickled one byte
//! per second, a silent registry beside a healthy one, a token realm on another plain-HTTP
//! host. Each fake is a loopback listener from `catalog_e2e::registry::HostileRegistry`.

use std::time::Duration;

use catalog_api::CatalogImage;
use catalog_api::image::Phase;
use catalog_e2e::process::eventually;
use catalog_e2e::registry::HostileRegistry;
use serde_json::json;

use crate::verify_common::{Env, WAIT, available_message, metric_sum};

/// The Available condition once its message contains `needle`.
async fn wait_message(env: &Env, name: &str, needle: &str) -> CatalogImage {
    let what = format!("CatalogImage {name}'s Available message to contain {needle:?}");
    eventually(WAIT, &what, || async {
        let image = env.images().get_opt(name).await.ok().flatten()?;
        available_message(&image).contains(needle).then_some(image)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_of_5000_platforms_costs_at_most_64_child_requests() {
    let fake = HostileRegistry::huge_index(5_000).await;
    let mut env = Env::start().await;
    env.spawn_reconciler(&["--insecure-registry", &fake.host()]);
    env.create_image("huge", &fake.reference("os/huge"), json!({}))
        .await;
    let image = env.wait_phase("huge", Phase::Available).await;
    let meta = image
        .status
        .and_then(|s| s.registry_metadata)
        .expect("registry metadata");
    let children = fake.child_requests();
    assert!(
        (1..=64).contains(&children),
        "{children} platform manifests read"
    );
    // Premise: the reconciler saw the whole index, and says so.
    assert_eq!(
        meta.platform_count,
        Some(5_000),
        "{:?}",
        meta.platform_count
    );
    assert!(meta.platform_variants.len() <= 64);
    // The declared platform (amd64, the index's last entry) is among those read.
    assert!(
        meta.platform_variants
            .iter()
            .any(|v| v.architecture == "amd64"),
        "{:?}",
        meta.platform_variants.last()
    );
    let size = serde_json::to_vec(&meta).expect("serialize").len();
    assert!(size < 32 * 1024, "registryMetadata is {size} bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_trickling_one_byte_per_second_ends_at_the_deadline() {
    let fake = HostileRegistry::trickle().await;
    let mut env = Env::start().await;
    env.spawn_reconciler(&[
        "--insecure-registry",
        &fake.host(),
        "--verify-timeout",
        "3s",
    ]);
    env.create_image("slow", &fake.reference("os/slow"), json!({}))
        .await;
    let image = wait_message(&env, "slow", "deadline of 3s").await;
    let message = available_message(&image);
    assert!(fake.connections() >= 1, "premise: the registry was asked");
    assert!(
        message.starts_with("RegistryUnavailable:") && message.contains("--verify-timeout"),
        "{message}"
    );
    assert_eq!(
        image.status.and_then(|s| s.phase),
        Some(Phase::Unavailable),
        "a deadline is transient: retried, not failed at once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_registry_does_not_hold_the_workers_of_a_healthy_one() {
    let silent = HostileRegistry::silent().await;
    let healthy = HostileRegistry::healthy().await;
    let mut env = Env::start().await;
    env.spawn_reconciler(&[
        "--insecure-registry",
        &silent.host(),
        "--insecure-registry",
        &healthy.host(),
        "--verify-workers",
        "2",
        "--registry-concurrency",
        "1",
    ]);
    // More images on the silent host than there are workers.
    for i in 0..4 {
        let name = format!("silent-{i}");
        env.create_image(&name, &silent.reference(&format!("os/s{i}")), json!({}))
            .await;
    }
    // Premise: a verification is stuck on the silent registry (its answer never comes; each
    // request may wait 30s).
    eventually(WAIT, "the silent registry to be asked", || async {
        (silent.connections() >= 1).then_some(())
    })
    .await;
    env.create_image("healthy", &healthy.reference("os/ok"), json!({}))
        .await;
    let prompt = Duration::from_secs(15);
    eventually(
        prompt,
        "the healthy image to verify while the silent host stalls",
        || async {
            let image = env.images().get_opt("healthy").await.ok().flatten()?;
            (image.status.and_then(|s| s.phase) == Some(Phase::Available)).then_some(())
        },
    )
    .await;
    assert!(
        silent.connections() <= 1,
        "--registry-concurrency 1 bounds the silent host: {} connections",
        silent.connections()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_realm_on_another_plain_http_host_receives_no_credentials() {
    // `trusted`'s realm is listed as insecure: credentials go there (the premise that this
    // test can see them); `hostile`'s realm is not: nothing may reach it.
    let trusted = HostileRegistry::bearer_realm().await;
    let hostile = HostileRegistry::bearer_realm().await;
    let trusted_realm = trusted.realm_host().expect("realm");
    let hostile_realm = hostile.realm_host().expect("realm");
    let mut env = Env::start().await;
    for (name, fake) in [("trusted-creds", &trusted), ("hostile-creds", &hostile)] {
        env.put_secret(name, None, &[("username", "ci"), ("password", "s3cret")])
            .await;
        env.bind_secret(name, &fake.host()).await;
    }
    env.spawn_reconciler(&[
        "--insecure-registry",
        &trusted.host(),
        "--insecure-registry",
        &trusted_realm,
        "--insecure-registry",
        &hostile.host(),
    ]);
    let with_secret = |name: &str| json!({"authSecretRef": {"name": name}});
    env.create_image(
        "trusted",
        &trusted.reference("os/t"),
        with_secret("trusted-creds"),
    )
    .await;
    env.create_image(
        "hostile",
        &hostile.reference("os/h"),
        with_secret("hostile-creds"),
    )
    .await;

    env.wait_phase("trusted", Phase::Available).await;
    let basic = |fake: &HostileRegistry, listener: &str| {
        fake.requests()
            .iter()
            .filter(|s| s.listener == listener)
            .filter(|s| {
                s.authorization
                    .as_deref()
                    .is_some_and(|a| a.starts_with("Basic "))
            })
            .count()
    };
    assert!(
        basic(&trusted, "realm") >= 1,
        "premise: the trusted realm got the credentials"
    );

    let image = wait_message(&env, "hostile", "is not HTTPS").await;
    assert_eq!(image.status.and_then(|s| s.phase), Some(Phase::Failed));
    let realm_requests = hostile
        .requests()
        .iter()
        .filter(|s| s.listener == "realm")
        .count();
    assert_eq!(realm_requests, 0, "the plain-HTTP realm was contacted");
    assert_eq!(
        basic(&hostile, "registry"),
        0,
        "credentials sent to the registry"
    );
    assert!(
        !hostile_realm.is_empty() && hostile.requests().iter().any(|s| s.listener == "registry"),
        "premise: the hostile registry was asked and challenged"
    );

    // Requests to a realm count under the registry's host label, never the realm's.
    let text = env.metrics(0).await;
    let requests = "catalog_registry_requests_total";
    assert!(
        metric_sum(&text, requests, &[("host", &trusted.host())]) >= 3.0,
        "{text}"
    );
    assert_eq!(
        metric_sum(&text, requests, &[("host", &trusted_realm)]),
        0.0,
        "{text}"
    );
}
