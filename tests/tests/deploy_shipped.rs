//! `deploy/` run as shipped: `kubectl apply -k deploy/` into a fresh cluster (kube-emulator),
//! then the Deployment's two replicas started from its own arguments and environment (see
//! `deploy_shipped_support::replicas` for the few values a test machine must change), both
//! controllers, `--leader-elect`, one identity per pod.
//!
//! Every test ends with the same two checks: no replica was refused anything (no 403, no
//! "forbidden" in either log), and every request the replicas made is granted by the
//! rendered `deploy/rbac.yaml`. The credentials they run with are chosen in one place,
//! `Shipped::reconciler_credentials`: the admin kubeconfig until the emulator enforces RBAC,
//! then the ServiceAccount's token, and these checks become enforced end to end.

mod deploy_shipped_support;
use catalog_e2e::suite::deploy as deploy_support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use catalog_api::image::Phase;
use catalog_api::labels::SOURCE_REVISION;
use catalog_e2e::emulator::Fault;
use catalog_e2e::fixture::registry_with;
use catalog_e2e::git::BareRepo;
use catalog_e2e::process::eventually;
use deploy_shipped_support::audit::{Access, Rules, access};
use deploy_shipped_support::*;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;

/// Applied "well within the interval" (1h): the bound for a webhook to take effect.
const WEBHOOK_APPLIED_WITHIN: Duration = Duration::from_secs(20);
/// Budget for one full sync of the 2,000-entry source on a loaded 2-core machine (20-35 s
/// seen with five suites sharing two cores; one sync is also asserted from the log).
const ONE_SYNC: Duration = Duration::from_secs(90);
/// A standby retries the Lease every 2 s: taking it may follow the expiry by that, plus load.
const HANDOVER_SLACK: Duration = Duration::from_secs(6);
const ENTRIES: usize = 2_000;

/// A CatalogImage entry file for `url`.
fn entry(name: &str, url: &str) -> String {
    format!(
        "apiVersion: automotive.sdv.cloud.redhat.com/v1alpha1\nkind: CatalogImage\nmetadata:\n  name: {name}\nspec:\n  registryUrl: {url}\n  metadata:\n    architecture: arm64\n    distro: cs9\n    targets:\n      - name: rpi4\n"
    )
}

/// An image reference nothing verifies (a plain-HTTP registry that is not allowed): for
/// tests about syncing, where verification is beside the point and must not need a network.
const UNVERIFIED: &str = "127.0.0.1:9/os/app:v1";

async fn phase(env: &Shipped, name: &str) -> Option<Phase> {
    env.images().get_opt(name).await.ok()??.status?.phase
}

/// `deploy/` installed, both replicas running, and a source whose one seed entry is applied.
async fn seeded_deployment() -> (Shipped, BareRepo) {
    let mut env = Shipped::install().await;
    env.start_deployment().await;
    let repo = BareRepo::new("catalog").unwrap();
    let seed = repo
        .write(
            "main",
            "environments/dev/seed.yaml",
            entry("seed", UNVERIFIED),
        )
        .unwrap();
    env.create_source(&repo.file_url()).await;
    env.wait_applied(&seed, WAIT).await;
    (env, repo)
}

/// `/readyz` means "can take webhook deliveries": not before the replica's webhook caches
/// listed (while `/healthz` says alive), and then for a standby as for the leader.
#[tokio::test(flavor = "multi_thread")]
async fn readiness_follows_the_webhook_caches_not_leadership() {
    let mut env = Shipped::install().await;
    let lists = Fault::resource("catalogsources")
        .verb("list")
        .times(u32::MAX);
    env.emu.fail_next(lists);
    let first = env.start_replica();
    let replica = &env.replicas[first];
    eventually(WAIT, "the first replica to be alive", || async {
        replica.probe("/healthz").await.then_some(())
    })
    .await;
    eventually(WAIT, "its CatalogSource list to be refused", || async {
        let refused = env.proxy.recorded().iter().any(|r| r.status == 500);
        refused.then_some(())
    })
    .await;
    assert!(
        !replica.probe("/readyz").await,
        "not ready before its caches list"
    );
    assert_eq!(env.deliver(&replica.hook_base()).await, Some(503));
    env.emu.clear_faults();
    env.wait_ready(first).await;

    let second = env.start_replica();
    env.wait_ready(second).await;
    let (leader, standby) = env.leader_and_standby().await;
    assert_eq!(
        (leader, standby),
        (first, second),
        "the premise: the second is a standby"
    );
    assert!(env.replicas[standby].probe("/readyz").await);
    env.assert_no_forbidden();
    env.assert_rbac_grants_every_request();
}

/// A commit → entries synced → verified Available, with a real docker-registry; the second
/// commit arrives by webhook.
#[tokio::test(flavor = "multi_thread")]
async fn the_quickstart_loop_runs_as_shipped() {
    let (registry, _) = registry_with("os/app:v1", "arm64").await;
    let mut env = Shipped::install().await;
    env.registry = Some(registry.host());
    env.start_deployment().await;
    let url = format!("{}/os/app:v1", registry.host());
    let repo = BareRepo::new("catalog").unwrap();
    let first = repo
        .write("main", "environments/dev/app.yaml", entry("app", &url))
        .unwrap();
    env.create_source(&repo.file_url()).await;
    env.wait_applied(&first, WAIT).await;
    eventually(WAIT, "app to be verified Available", || async {
        (phase(&env, "app").await == Some(Phase::Available)).then_some(())
    })
    .await;

    let second = repo
        .write("main", "environments/dev/app2.yaml", entry("app2", &url))
        .unwrap();
    let (_, standby) = env.leader_and_standby().await;
    let hook = env.replicas[standby].hook_base();
    assert_eq!(env.deliver(&hook).await, Some(202));
    env.wait_applied(&second, WEBHOOK_APPLIED_WITHIN).await;
    eventually(WAIT, "app2 to be verified Available", || async {
        (phase(&env, "app2").await == Some(Phase::Available)).then_some(())
    })
    .await;
    env.assert_no_forbidden();
    env.assert_rbac_grants_every_request();
}

/// Commits `name`, delivers the webhook to replica `to`, and returns how long the commit
/// took to be applied from the delivery.
async fn commit_and_deliver(env: &Shipped, repo: &BareRepo, name: &str, to: usize) -> Duration {
    let path = format!("environments/dev/{name}.yaml");
    let sha = repo.write("main", &path, entry(name, UNVERIFIED)).unwrap();
    assert_ne!(env.applied().await.as_deref(), Some(sha.as_str()));
    let sent = Instant::now();
    let answer = env.deliver(&env.replicas[to].hook_base()).await;
    assert_eq!(answer, Some(202), "{} answers", env.replicas[to].name);
    env.wait_applied(&sha, WEBHOOK_APPLIED_WITHIN).await;
    sent.elapsed()
}

/// A delivery to the standby is applied as a delivery to the leader is: both well within
/// the 1h interval (no tight latency is asserted, only that neither waits for the interval).
#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_delivered_to_the_standby_is_applied_like_one_to_the_leader() {
    let (mut env, repo) = seeded_deployment().await;

    let (leader, standby) = env.leader_and_standby().await;
    let via_standby = commit_and_deliver(&env, &repo, "one", standby).await;
    let via_leader = commit_and_deliver(&env, &repo, "two", leader).await;
    eprintln!("applied {via_standby:?} after the standby's 202, {via_leader:?} after the leader's");
    let (l, s) = env.leader_and_standby().await;
    assert_eq!(
        (l, s),
        (leader, standby),
        "the premise: leadership did not move"
    );
    assert!(
        env.replicas[standby].logs().contains("sync requested"),
        "the standby took its delivery itself"
    );
    env.assert_no_forbidden();
    env.assert_rbac_grants_every_request();
}

/// A repository of [`ENTRIES`] entries in one commit; returns it with its head.
fn big_repository() -> (BareRepo, String, tempfile::TempDir) {
    let tree = tempfile::tempdir().unwrap();
    let dir = tree.path().join("environments/dev");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..ENTRIES {
        let name = format!("image-{i:05}");
        std::fs::write(dir.join(format!("{name}.yaml")), entry(&name, UNVERIFIED)).unwrap();
    }
    let repo = BareRepo::seeded("catalog", tree.path()).unwrap();
    let head = repo.head("main").unwrap();
    (repo, head, tree)
}

/// CatalogImage writes of replica `i` so far (its `catalog_sync_api_writes_total`).
async fn sync_writes(env: &Shipped, i: usize) -> f64 {
    let text = env.replicas[i].metrics().await;
    text.lines()
        .filter(|l| l.starts_with("catalog_sync_api_writes_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// `created` of every "synced" log line (JSON, as the Deployment logs) of the suite's source
/// that created something.
fn synced_lines(logs: &str) -> Vec<usize> {
    let lines = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok());
    let ours = format!("{TENANT}/{SOURCE}");
    lines
        .filter(|l| l["message"] == "synced" && l["source"] == ours.as_str())
        .filter_map(|l| l["created"].as_u64().map(|c| c as usize))
        .filter(|created| *created > 0)
        .collect()
}

/// The Lease's duration as the leader wrote it.
async fn lease_duration(env: &Shipped) -> Duration {
    let leases: Api<Lease> =
        Api::namespaced(env.client.clone(), deploy_support::system_namespace());
    let lease = leases.get("catalog-reconciler").await.expect("the Lease");
    let seconds = lease.spec.and_then(|s| s.lease_duration_seconds);
    Duration::from_secs(seconds.expect("leaseDurationSeconds") as u64)
}

/// Killing the leader with SIGKILL in the middle of a 2,000-entry sync loses and duplicates
/// nothing: the other replica takes the Lease when it expires and finishes the sync.
#[tokio::test(flavor = "multi_thread")]
async fn a_leader_killed_mid_sync_loses_no_entry_and_the_standby_finishes() {
    let (repo, head, _tree) = big_repository();
    let mut env = Shipped::install().await;
    env.start_deployment().await;
    let (leader, standby) = env.leader_and_standby().await;
    let lease = lease_duration(&env).await;
    // Slower API answers stretch the sync over seconds, so the kill lands inside it.
    env.emu.set_latency(Duration::from_millis(10));
    env.create_source(&repo.file_url()).await;
    eventually(WAIT, "the leader to start applying", || async {
        (sync_writes(&env, leader).await >= 50.0).then_some(())
    })
    .await;
    env.replicas[leader].kill();
    let killed = Instant::now();
    env.emu.set_latency(Duration::ZERO);
    let at_kill = env
        .images()
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .len();
    assert!(
        at_kill > 0 && at_kill < ENTRIES,
        "the premise: the kill came mid-sync ({at_kill} of {ENTRIES} applied)"
    );

    let handover = eventually(
        lease + HANDOVER_SLACK,
        "the standby to take the Lease",
        || async { (env.leader().await == env.replicas[standby].name).then(|| killed.elapsed()) },
    )
    .await;
    assert!(
        handover <= lease + HANDOVER_SLACK,
        "handover after {handover:?}"
    );
    env.wait_applied(&head, ONE_SYNC).await;
    eprintln!(
        "{at_kill} of {ENTRIES} applied at the kill; Lease taken {handover:?} and all applied {:?} after it (lease {lease:?})",
        killed.elapsed()
    );
    // The "synced" line follows the status write and the Synced Event.
    let syncs = eventually(WAIT, "the standby to log its sync", || async {
        let syncs = synced_lines(&env.replicas[standby].logs());
        (!syncs.is_empty()).then_some(syncs)
    })
    .await;
    let [created] = syncs.as_slice() else {
        panic!("one sync of the standby created the missing entries: {syncs:?}");
    };
    assert!(
        *created > 0 && *created <= ENTRIES - at_kill,
        "the standby created only what was missing: {created} (after {at_kill})"
    );
    let images = env.images().list(&Default::default()).await.unwrap().items;
    let names: BTreeSet<String> = images
        .iter()
        .filter_map(|i| i.metadata.name.clone())
        .collect();
    let wanted: BTreeSet<String> = (0..ENTRIES).map(|i| format!("image-{i:05}")).collect();
    assert_eq!(images.len(), ENTRIES, "no entry duplicated");
    assert_eq!(names, wanted, "no entry lost");
    for image in &images {
        let annotations = image.metadata.annotations.as_ref();
        let revision = annotations.and_then(|a| a.get(SOURCE_REVISION));
        assert_eq!(revision, Some(&head), "{:?}", image.metadata.name);
    }
    env.assert_no_forbidden();
    env.assert_rbac_grants_every_request();
}

/// The webhook Service's endpoints: the hook addresses of the ready replicas.
type Endpoints = Arc<Mutex<Vec<String>>>;

/// Delivers to the endpoints as a Service and a forge's redelivery do: another endpoint, or
/// again, until one answers 202.
async fn deliver_via_service(client: &reqwest::Client, endpoints: &Endpoints, turn: usize) {
    let deadline = Instant::now() + WAIT;
    for attempt in turn.. {
        let targets = endpoints.lock().unwrap().clone();
        assert!(Instant::now() < deadline, "no endpoint took the delivery");
        let Some(base) = targets.get(attempt % targets.len().max(1)) else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let url = format!("{base}/hook/{TENANT}/{SOURCE}");
        let answer = client
            .post(url)
            .header("X-Gitlab-Token", TOKEN)
            .body("{}")
            .send()
            .await;
        if answer.is_ok_and(|a| a.status().as_u16() == 202) {
            return;
        }
        // A redelivery's pause: nothing to await, the sender only retries.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Commits and delivers until `stop`, each commit awaited until applied (the 1h interval
/// would apply none of them: only the delivery can), counting them in `delivered`.
async fn keep_delivering(
    repo: BareRepo,
    sources: Api<catalog_api::CatalogSource>,
    endpoints: Endpoints,
    delivered: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) {
    let client = reqwest::Client::new();
    for k in 0.. {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let name = format!("rolling-{k}");
        let path = format!("environments/dev/{name}.yaml");
        let sha = repo.write("main", &path, entry(&name, UNVERIFIED)).unwrap();
        deliver_via_service(&client, &endpoints, k).await;
        let what = format!("commit {k} ({sha}) to be applied after its 202");
        eventually(WAIT, &what, || async {
            let status = sources.get(SOURCE).await.ok()?.status?;
            (status.last_applied_revision.as_deref() == Some(sha.as_str())).then_some(())
        })
        .await;
        delivered.fetch_add(1, Ordering::SeqCst);
    }
}

/// Waits until more than `than` deliveries were applied.
async fn wait_more(delivered: &AtomicUsize, than: usize) {
    let what = format!("more than {than} deliveries applied");
    eventually(WAIT, &what, || async {
        (delivered.load(Ordering::SeqCst) > than).then_some(())
    })
    .await
}

/// One step of a rolling restart: replica `old` leaves the endpoints and gets SIGTERM, a
/// new one starts and joins them once ready; a delivery is applied after each change.
async fn replace_replica(
    env: &mut Shipped,
    old: usize,
    endpoints: &Endpoints,
    delivered: &AtomicUsize,
) {
    let base = env.replicas[old].hook_base();
    endpoints.lock().unwrap().retain(|b| *b != base);
    // The audit proxy runs on this runtime: wait for the exit off its workers.
    let status = tokio::task::block_in_place(|| env.replicas[old].terminate());
    assert!(status.success(), "graceful exit: {status:?}");
    wait_more(delivered, delivered.load(Ordering::SeqCst)).await;
    let new = env.start_replica();
    env.wait_ready(new).await;
    endpoints
        .lock()
        .unwrap()
        .push(env.replicas[new].hook_base());
    wait_more(delivered, delivered.load(Ordering::SeqCst)).await;
}

/// A rolling restart (SIGTERM one, start a new one, then the other) loses no delivery:
/// deliveries go on throughout, and each commit is applied.
#[tokio::test(flavor = "multi_thread")]
async fn a_rolling_restart_loses_no_webhook_delivery() {
    let (mut env, repo) = seeded_deployment().await;

    let bases = env.replicas.iter().map(|r| r.hook_base()).collect();
    let endpoints: Endpoints = Arc::new(Mutex::new(bases));
    let delivered = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let count = || delivered.load(Ordering::SeqCst);
    let deliveries = tokio::spawn(keep_delivering(
        repo,
        env.sources(),
        endpoints.clone(),
        delivered.clone(),
        stop.clone(),
    ));
    wait_more(&delivered, 1).await;
    let before = count();
    for old in [0, 1] {
        replace_replica(&mut env, old, &endpoints, &delivered).await;
    }
    let during = count() - before;
    stop.store(true, Ordering::SeqCst);
    deliveries.await.expect("every delivery was applied");
    assert!(during >= 4, "deliveries throughout the restart: {during}");
    eprintln!(
        "{} deliveries, {during} during the rolling restart, all applied",
        count()
    );
    env.assert_no_forbidden();
    env.assert_rbac_grants_every_request();
}

#[test]
fn requests_are_classified_as_rbac_sees_them() {
    let a = |m: &str, p: &str, q: &str| access(m, p, q).map(|a| a.to_string());
    let cases = [
        (
            ("GET", "/api/v1/secrets", "watch=true"),
            "watch secrets. in *",
        ),
        (
            ("GET", "/api/v1/namespaces/dev/secrets/hook", ""),
            "get secrets. in dev",
        ),
        (
            (
                "PATCH",
                "/apis/automotive.sdv.cloud.redhat.com/v1alpha1/namespaces/dev/catalogsources/catalog/status",
                "",
            ),
            "patch catalogsources/status.automotive.sdv.cloud.redhat.com in dev",
        ),
        (
            (
                "PUT",
                "/apis/coordination.k8s.io/v1/namespaces/catalog-system/leases/x",
                "",
            ),
            "update leases.coordination.k8s.io in catalog-system",
        ),
        (
            ("POST", "/apis/events.k8s.io/v1/namespaces/dev/events", ""),
            "create events.events.k8s.io in dev",
        ),
        (
            ("GET", "/api/v1/namespaces/dev", ""),
            "get namespaces. in *",
        ),
    ];
    for ((m, p, q), want) in cases {
        assert_eq!(a(m, p, q).as_deref(), Some(want), "{m} {p}?{q}");
    }
    assert_eq!(
        a("GET", "/apis", ""),
        None,
        "discovery is no resource request"
    );
    assert_eq!(a("GET", "/version", ""), None);
}

#[test]
fn the_rbac_check_refuses_what_deploy_does_not_grant() {
    let rules = Rules::of(&deploy_support::rendered().0.objects);
    let ask = |group: &str, resource: &str, verb: &str, ns: Option<&str>| Access {
        group: group.into(),
        resource: resource.into(),
        verb: verb.into(),
        namespace: ns.map(String::from),
    };
    let group = "automotive.sdv.cloud.redhat.com";
    assert!(rules.allow(&ask("", "secrets", "get", Some("dev"))));
    assert!(rules.allow(&ask(group, "catalogsources", "patch", Some("dev"))));
    let lease = |ns| ask("coordination.k8s.io", "leases", "update", Some(ns));
    assert!(rules.allow(&lease(deploy_support::system_namespace())));
    assert!(
        !rules.allow(&lease("dev")),
        "the Role holds in its namespace only"
    );
    assert!(!rules.allow(&ask("", "secrets", "delete", Some("dev"))));
    assert!(!rules.allow(&ask(group, "catalogsources", "create", Some("dev"))));
    assert!(!rules.allow(&ask("", "configmaps", "get", Some("dev"))));
}
