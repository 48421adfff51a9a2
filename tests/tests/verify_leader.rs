//! Leader election: two reconciler replicas, one verifies; killing it hands over.

use catalog_e2e::suite::verify as verify_common;

use std::time::{Duration, Instant};

use catalog_api::image::Phase;
use catalog_e2e::fixture::registry_with;
use catalog_e2e::process::eventually;
use catalog_e2e::registry::CountingProxy;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use serde_json::json;
use verify_common::*;

async fn holder(env: &Env) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), NS);
    leases
        .get_opt("catalog-reconciler")
        .await
        .ok()??
        .spec?
        .holder_identity
        .filter(|h| !h.is_empty())
}

fn registry_requests(metrics: &str) -> f64 {
    metric_sum(metrics, "catalog_registry_requests_total", &[])
}

async fn start_pair(env: &mut Env, host: &str, lease_duration: &str) {
    for identity in ["replica-a", "replica-b"] {
        env.spawn_reconciler(&[
            "--insecure-registry",
            host,
            "--leader-elect",
            "--lease-namespace",
            NS,
            "--identity",
            identity,
            "--lease-duration",
            lease_duration,
        ]);
    }
}

#[tokio::test]
async fn only_the_leader_verifies_and_sigterm_hands_over_at_once() {
    let (registry, _) = registry_with("os/app:v1", "amd64").await;
    let proxy = CountingProxy::start(&registry).await;
    let mut env = Env::start().await;
    // A long Lease: taking over by expiry would need 15 s; a released one is taken at once.
    start_pair(&mut env, &proxy.host(), "15s").await;
    let url = format!("{}/os/app:v1", proxy.host());
    env.create_image("first", &url, json!({})).await;
    env.wait_phase("first", Phase::Available).await;

    let leader = eventually(WAIT, "a Lease holder", || holder(&env)).await;
    let (leader_index, follower_index) = if leader == "replica-a" {
        (0, 1)
    } else {
        (1, 0)
    };
    let leader_metrics = env.metrics(leader_index).await;
    let follower_metrics = env.metrics(follower_index).await;
    assert!(
        registry_requests(&leader_metrics) >= 1.0,
        "{leader_metrics}"
    );
    assert_eq!(
        registry_requests(&follower_metrics),
        0.0,
        "the standby never talks to the registry"
    );
    assert!(!follower_metrics.is_empty(), "the standby serves /metrics");

    let stopped = Instant::now();
    let status = env.terminate(leader_index);
    assert!(status.success(), "graceful shutdown exits 0: {status:?}");
    let other = if leader == "replica-a" {
        "replica-b"
    } else {
        "replica-a"
    };
    eventually(WAIT, "the standby to take the Lease", || async {
        (holder(&env).await.as_deref() == Some(other)).then_some(())
    })
    .await;
    let handover = stopped.elapsed();
    assert!(
        handover < Duration::from_secs(10),
        "released Lease is taken without waiting for its 15 s expiry: {handover:?}"
    );

    env.create_image("second", &url, json!({})).await;
    env.wait_phase("second", Phase::Available).await;
    assert!(registry_requests(&env.metrics(follower_index).await) >= 1.0);
    assert!(
        env.logs(leader_index).contains("released leadership"),
        "{}",
        env.logs(leader_index)
    );
}

#[tokio::test]
async fn a_killed_leader_is_replaced_after_the_lease_expires() {
    let (registry, _) = registry_with("os/app:v1", "amd64").await;
    let mut env = Env::start().await;
    start_pair(&mut env, &registry.host(), "3s").await;
    let url = format!("{}/os/app:v1", registry.host());
    let leader = eventually(WAIT, "a Lease holder", || holder(&env)).await;
    let (leader_index, follower_index) = if leader == "replica-a" {
        (0, 1)
    } else {
        (1, 0)
    };
    let _ = env.reconciler(leader_index).child.kill();
    let _ = env.reconciler(leader_index).child.wait();
    env.create_image("after-crash", &url, json!({})).await;
    env.wait_phase("after-crash", Phase::Available).await;
    assert!(registry_requests(&env.metrics(follower_index).await) >= 1.0);
}
