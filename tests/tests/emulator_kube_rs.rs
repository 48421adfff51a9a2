//! kube-rs 5 against the Kubernetes API emulator: CRUD and optimistic concurrency, server-side
//! apply with conflicts, the status subresource, watchers and reflectors through a dropped
//! watch and a 410, a kube-runtime Controller, Events, and Lease create/renew.
//!
//! With `CATALOG_E2E_KUBECONFIG=/path/to/kubeconfig` the same tests run against that cluster
//! instead (the emulator-only steps, such as dropping watches or injecting faults, are skipped
//! there). Each test prints which one it ran on. A test CRD (`gadgets.e2e.catalog.example.com`)
//! is applied at runtime, so the tests do not depend on the catalog's own CRDs.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use catalog_e2e::emulator::{Emulator, EmulatorOptions, Fault};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event as CoreEvent, Namespace, ObjectReference};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Client, Resource, ResourceExt};
use serde_json::{Value, json};

const DEADLINE: Duration = Duration::from_secs(20);

fn crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.e2e.catalog.example.com"},
        "spec": {"group": "e2e.catalog.example.com", "scope": "Namespaced",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget", "shortNames": ["gdg"]},
            "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "required": ["size"], "properties": {
                        "size": {"type": "integer", "minimum": 1},
                        "color": {"type": "string", "enum": ["red", "blue"], "default": "red"},
                        "parts": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                            "items": {"type": "object", "required": ["name"], "properties": {
                                "name": {"type": "string"}, "count": {"type": "integer"}}}}}},
                    "status": {"type": "object", "properties": {
                        "phase": {"type": "string"}, "observedGeneration": {"type": "integer"}}}}}}}]}
    })
}

fn gadget_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("e2e.catalog.example.com", "v1", "Gadget"),
        "gadgets",
    )
}

/// Where a test runs: the emulator, or the cluster of `CATALOG_E2E_KUBECONFIG`.
struct Env {
    client: Client,
    emu: Option<Emulator>,
    ns: String,
}

impl Env {
    async fn new(test: &str) -> Env {
        Self::with(test, EmulatorOptions::default()).await
    }

    async fn with(test: &str, opts: EmulatorOptions) -> Env {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (client, emu) = match std::env::var("CATALOG_E2E_KUBECONFIG") {
            Ok(path) => {
                let kc = kube::config::Kubeconfig::read_from(&path)
                    .expect("read CATALOG_E2E_KUBECONFIG");
                let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
                    .await
                    .expect("kubeconfig");
                eprintln!(
                    "emulator_kube_rs::{test}: running against the cluster of {path} ({})",
                    config.cluster_url
                );
                (Client::try_from(config).expect("client"), None)
            }
            Err(_) => {
                let emu = Emulator::start(opts).expect("emulator starts");
                eprintln!(
                    "emulator_kube_rs::{test}: running against the emulator at {}",
                    emu.url()
                );
                (emu.kube_client(), Some(emu))
            }
        };
        let suffix: String = format!(
            "{:x}",
            Instant::now().elapsed().as_nanos() ^ u128::from(std::process::id())
        )
        .chars()
        .take(5)
        .collect();
        let ns = format!(
            "e2e-{}-{suffix}",
            test.replace('_', "-").chars().take(40).collect::<String>()
        );
        let env = Env { client, emu, ns };
        env.apply_crd().await;
        let nss: Api<Namespace> = Api::all(env.client.clone());
        nss.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": env.ns}})).expect("ns"),
        )
        .await
        .expect("create test namespace");
        env
    }

    /// Applies the test CRD (server-side) and waits until it is Established.
    async fn apply_crd(&self) {
        let crds: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        crds.patch(
            "gadgets.e2e.catalog.example.com",
            &PatchParams::apply("emulator-kube-rs").force(),
            &Patch::Apply(crd()),
        )
        .await
        .expect("apply CRD");
        until("CRD established", || async {
            let c = crds.get("gadgets.e2e.catalog.example.com").await.ok()?;
            let conds = c.status?.conditions?;
            conds
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
                .then_some(())
        })
        .await;
    }

    fn gadgets(&self) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), &self.ns, &gadget_resource())
    }

    async fn cleanup(self) {
        let nss: Api<Namespace> = Api::all(self.client.clone());
        let _ = nss.delete(&self.ns, &DeleteParams::default()).await;
    }
}

fn gadget(name: &str, spec: Value, labels: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "e2e.catalog.example.com/v1", "kind": "Gadget",
        "metadata": {"name": name, "labels": labels}, "spec": spec
    }))
    .expect("gadget")
}

/// Polls until `f` returns Some (or panics at the deadline).
async fn until<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let end = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn api_code(e: &kube::Error) -> u16 {
    match e {
        kube::Error::Api(s) => s.code,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn names(list: &[DynamicObject]) -> Vec<String> {
    let mut n: Vec<String> = list.iter().map(ResourceExt::name_any).collect();
    n.sort();
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crud_concurrency_and_status() {
    let env = Env::new("crud").await;
    let api = env.gadgets();
    let pp = PostParams::default();
    let g1 = api
        .create(&pp, &gadget("g1", json!({"size": 2}), json!({"tier": "a"})))
        .await
        .expect("create");
    assert!(
        g1.metadata.uid.is_some()
            && g1.metadata.creation_timestamp.is_some()
            && g1.metadata.resource_version.is_some()
    );
    assert_eq!(g1.metadata.generation, Some(1));
    assert_eq!(g1.data["spec"]["color"], "red", "schema default");
    assert_eq!(
        api_code(
            &api.create(&pp, &gadget("g1", json!({"size": 2}), json!({})))
                .await
                .expect_err("exists")
        ),
        409
    );
    api.create(&pp, &gadget("g2", json!({"size": 5}), json!({"tier": "b"})))
        .await
        .expect("create g2");
    let bad = api
        .create(
            &pp,
            &gadget("bad", json!({"size": 0, "color": "green"}), json!({})),
        )
        .await
        .expect_err("invalid");
    let kube::Error::Api(status) = &bad else {
        panic!("{bad:?}")
    };
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert!(
        status.message.contains("spec.size") && status.message.contains("spec.color"),
        "{}",
        status.message
    );

    let sel = |s: &str| ListParams::default().labels(s);
    assert_eq!(
        names(&api.list(&sel("tier in (a)")).await.expect("list").items),
        ["g1"]
    );
    assert_eq!(
        names(&api.list(&sel("tier!=a")).await.expect("list").items),
        ["g2"]
    );
    assert_eq!(
        names(&api.list(&sel("!tier")).await.expect("list").items),
        Vec::<String>::new()
    );
    assert_eq!(
        names(
            &api.list(&ListParams::default().fields("metadata.name=g2"))
                .await
                .expect("list")
                .items
        ),
        ["g2"]
    );

    // Optimistic concurrency: a replace with a stale resourceVersion is a 409.
    let mut current = api.get("g1").await.expect("get");
    current.data["spec"]["size"] = json!(3);
    let stale = current.clone();
    let updated = api.replace("g1", &pp, &current).await.expect("replace");
    assert_eq!(updated.metadata.generation, Some(2));
    assert_eq!(
        api_code(&api.replace("g1", &pp, &stale).await.expect_err("stale")),
        409
    );

    // Status subresource: separate in both directions, no generation bump.
    let st = api
        .patch_status("g1", &PatchParams::default(), &Patch::Merge(json!({"status": {"phase": "Ready", "observedGeneration": 2}, "spec": {"size": 99}})))
        .await
        .expect("patch_status");
    assert_eq!(
        (
            st.data["status"]["phase"].clone(),
            st.data["spec"]["size"].clone(),
            st.metadata.generation
        ),
        (json!("Ready"), json!(3), Some(2))
    );
    let main = api
        .patch(
            "g1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Hacked"}})),
        )
        .await
        .expect("patch");
    assert_eq!(main.data["status"]["phase"], "Ready");
    // Custom resources take no strategic merge patches (415), on a real server too.
    let strategic = api
        .patch(
            "g1",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"size": 4}})),
        )
        .await
        .expect_err("strategic merge on a custom resource");
    assert_eq!(api_code(&strategic), 415);

    // Paging with limit/continue sees every object exactly once.
    for i in 0..5 {
        api.create(
            &pp,
            &gadget(&format!("p{i}"), json!({"size": 1}), json!({"page": "yes"})),
        )
        .await
        .expect("create");
    }
    let mut seen = Vec::new();
    let mut lp = ListParams::default().limit(2);
    loop {
        let page = api.list(&lp).await.expect("page");
        seen.extend(page.items.iter().map(ResourceExt::name_any));
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(c) => lp = lp.continue_token(&c),
            None => break,
        }
    }
    assert_eq!(seen, ["g1", "g2", "p0", "p1", "p2", "p3", "p4"]);

    // Delete: immediate without finalizers, pending with one.
    assert!(
        api.delete("g2", &DeleteParams::default())
            .await
            .expect("delete")
            .is_right()
    );
    api.patch(
        "g1",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": ["e2e.catalog.example.com/hold"]}})),
    )
    .await
    .expect("add finalizer");
    let pending = api
        .delete("g1", &DeleteParams::default())
        .await
        .expect("delete")
        .left()
        .expect("still there");
    assert!(pending.metadata.deletion_timestamp.is_some());
    api.patch(
        "g1",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("release");
    assert_eq!(api_code(&api.get("g1").await.expect_err("gone")), 404);
    api.delete_collection(&DeleteParams::default(), &sel("page=yes"))
        .await
        .expect("delete_collection");
    assert!(
        api.list(&ListParams::default())
            .await
            .expect("list")
            .items
            .is_empty()
    );
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_and_field_managers() {
    let env = Env::new("ssa").await;
    let api = env.gadgets();
    let g = |size: i64, parts: Value| gadget("s", json!({"size": size, "parts": parts}), json!({}));
    let alice = PatchParams::apply("alice");
    let created = api
        .patch(
            "s",
            &alice,
            &Patch::Apply(g(2, json!([{"name": "a", "count": 1}]))),
        )
        .await
        .expect("apply creates");
    let managers: Vec<String> = created
        .managed_fields()
        .iter()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert_eq!(managers, ["alice"]);
    let err = api
        .patch(
            "s",
            &PatchParams::apply("bob"),
            &Patch::Apply(g(3, json!([{"name": "b"}]))),
        )
        .await
        .expect_err("conflict");
    let kube::Error::Api(status) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(status.code, 409);
    assert!(
        status.message.contains("conflict with \"alice\"") && status.message.contains(".spec.size"),
        "{}",
        status.message
    );
    // Forced: bob takes spec.size; list-map elements of both managers are merged by key.
    let forced = api
        .patch(
            "s",
            &PatchParams::apply("bob").force(),
            &Patch::Apply(g(3, json!([{"name": "b"}]))),
        )
        .await
        .expect("forced");
    assert_eq!(forced.data["spec"]["size"], 3);
    assert_eq!(
        forced.data["spec"]["parts"],
        json!([{"name": "a", "count": 1}, {"name": "b"}])
    );
    // Alice stops applying her part: it is removed; bob's stays.
    let a2 = gadget("s", json!({"size": 3}), json!({}));
    let after = api
        .patch("s", &alice, &Patch::Apply(a2))
        .await
        .expect("alice again");
    assert_eq!(after.data["spec"]["parts"], json!([{"name": "b"}]));
    // Status through SSA on the subresource.
    let status = json!({"apiVersion": "e2e.catalog.example.com/v1", "kind": "Gadget", "status": {"phase": "Applied"}});
    let st = api
        .patch_status(
            "s",
            &PatchParams::apply("status-writer"),
            &Patch::Apply(status),
        )
        .await
        .expect("apply status");
    assert_eq!(st.data["status"]["phase"], "Applied");
    assert!(
        st.managed_fields()
            .iter()
            .any(|m| m.manager.as_deref() == Some("status-writer")
                && m.subresource.as_deref() == Some("status"))
    );
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_and_reflector_survive_dropped_watch_and_410() {
    let env = Env::with(
        "watch",
        EmulatorOptions {
            bookmark_interval: Duration::from_millis(200),
            ..Default::default()
        },
    )
    .await;
    let api = env.gadgets();
    let pp = PostParams::default();
    let writer = reflector::store::Writer::<DynamicObject>::new(gadget_resource());
    let reader = writer.as_reader();
    let stream = watcher(api.clone(), watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .applied_objects();
    let task = tokio::spawn(stream.for_each(|_| async {}));
    let store_names = || {
        let mut n: Vec<String> = reader.state().iter().map(|o| o.name_any()).collect();
        n.sort();
        n
    };
    for n in ["w1", "w2"] {
        api.create(&pp, &gadget(n, json!({"size": 1}), json!({"tier": "a"})))
            .await
            .expect("create");
    }
    until("reflector has w1, w2", || async {
        (store_names() == ["w1", "w2"]).then_some(())
    })
    .await;

    if let Some(emu) = &env.emu {
        // Dropped watch: the watcher resumes from its resourceVersion and misses nothing.
        let watches = emu.request_count("watch gadgets");
        emu.drop_watches();
        api.create(&pp, &gadget("w3", json!({"size": 1}), json!({})))
            .await
            .expect("create w3");
        until("reflector has w3", || async {
            store_names().contains(&"w3".to_string()).then_some(())
        })
        .await;
        until("watch resumed", || async {
            (emu.request_count("watch gadgets") > watches).then_some(())
        })
        .await;

        // Compacted history: the resumed watch gets 410 Expired and the watcher relists.
        let lists = emu.request_count("list gadgets");
        emu.compact();
        api.delete("w1", &DeleteParams::default())
            .await
            .expect("delete w1");
        api.create(&pp, &gadget("w4", json!({"size": 1}), json!({})))
            .await
            .expect("create w4");
        until("reflector converges after 410", || async {
            (store_names() == ["w2", "w3", "w4"]).then_some(())
        })
        .await;
        assert!(
            emu.request_count("list gadgets") > lists,
            "the watcher relisted after 410"
        );
    } else {
        eprintln!(
            "dropped-watch and 410 steps need the emulator's hooks; skipped on a real cluster"
        );
    }

    // A raw watch: replay after a resourceVersion, selector transitions, bookmarks, timeout.
    let rv = api
        .list(&ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("rv");
    let wp = WatchParams::default().labels("tier=a").timeout(5);
    let mut events = api.watch(&wp, &rv).await.expect("watch").boxed();
    api.patch(
        "w2",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"tier": "b"}}})),
    )
    .await
    .expect("relabel");
    let ev = loop {
        let ev = tokio::time::timeout(DEADLINE, events.try_next())
            .await
            .expect("event in time")
            .expect("stream")
            .expect("event");
        if !matches!(ev, WatchEvent::Bookmark(_)) {
            break ev;
        }
    };
    assert!(
        matches!(&ev, WatchEvent::Deleted(o) if o.name_any() == "w2"),
        "leaving the selector is DELETED: {ev:?}"
    );
    if let Some(emu) = &env.emu {
        let wp = WatchParams::default().timeout(1);
        let evs: Vec<_> = api
            .watch(&wp, &rv)
            .await
            .expect("watch")
            .try_collect()
            .await
            .expect("events until timeout");
        assert!(
            evs.iter().any(|e| matches!(e, WatchEvent::Bookmark(_))),
            "bookmarks: {evs:?}"
        );
        emu.compact();
        let mut expired = api
            .watch(&WatchParams::default(), &rv)
            .await
            .expect("watch")
            .boxed();
        let first = tokio::time::timeout(DEADLINE, expired.try_next())
            .await
            .expect("in time")
            .expect("stream")
            .expect("event");
        assert!(
            matches!(first, WatchEvent::Error(ref e) if e.code == 410),
            "{first:?}"
        );
    }
    task.abort();
    env.cleanup().await;
}

#[derive(Clone)]
struct Ctx {
    api: Api<DynamicObject>,
    recorder: Recorder,
    reconciles: Arc<AtomicUsize>,
}

async fn reconcile(obj: Arc<DynamicObject>, ctx: Arc<Ctx>) -> Result<Action, kube::Error> {
    ctx.reconciles.fetch_add(1, Ordering::SeqCst);
    let generation = obj.metadata.generation.unwrap_or_default();
    if obj.data["status"]["observedGeneration"] != json!(generation) {
        let status = json!({"status": {"phase": "Reconciled", "observedGeneration": generation}});
        ctx.api
            .patch_status(
                &obj.name_any(),
                &PatchParams::default(),
                &Patch::Merge(status),
            )
            .await?;
        let reference: ObjectReference = obj.object_ref(&gadget_resource());
        let event = Event {
            type_: EventType::Normal,
            reason: "Reconciled".into(),
            note: Some(format!("generation {generation}")),
            action: "Reconcile".into(),
            secondary: None,
        };
        ctx.recorder.publish(&event, &reference).await?;
    }
    Ok(Action::await_change())
}

fn error_policy(_: Arc<DynamicObject>, e: &kube::Error, _: Arc<Ctx>) -> Action {
    eprintln!("reconcile failed: {e}");
    Action::requeue(Duration::from_millis(200))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_reconciles_and_records_events() {
    let env = Env::new("controller").await;
    let api = env.gadgets();
    let reporter = Reporter {
        controller: "gadget-controller".into(),
        instance: Some("test".into()),
    };
    let ctx = Arc::new(Ctx {
        api: api.clone(),
        recorder: Recorder::new(env.client.clone(), reporter),
        reconciles: Arc::default(),
    });
    let controller =
        Controller::new_with(api.clone(), watcher::Config::default(), gadget_resource())
            .run(reconcile, error_policy, ctx.clone())
            .for_each(|_| async {});
    let task = tokio::spawn(controller);
    api.create(
        &PostParams::default(),
        &gadget("c1", json!({"size": 1}), json!({})),
    )
    .await
    .expect("create");
    let observed = |want: i64| {
        let api = api.clone();
        async move {
            let o = api.get("c1").await.ok()?;
            (o.data["status"]["observedGeneration"] == json!(want)).then_some(o)
        }
    };
    until("observedGeneration 1", || observed(1)).await;
    api.patch(
        "c1",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"size": 2}})),
    )
    .await
    .expect("spec change");
    let o = until("observedGeneration 2", || observed(2)).await;
    assert_eq!(o.data["status"]["phase"], "Reconciled");
    assert!(ctx.reconciles.load(Ordering::SeqCst) >= 2);
    // The recorder writes events.k8s.io/v1 Events (the second one as a series update of the
    // first); they are visible through core/v1 too, which is what `kubectl get events` reads.
    let v1: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(env.client.clone(), &env.ns);
    let series = until("an event series of 2", || {
        let v1 = v1.clone();
        async move {
            let l = v1
                .list(&ListParams::default().fields("regarding.name=c1"))
                .await
                .ok()?;
            l.items
                .into_iter()
                .find(|e| e.series.as_ref().is_some_and(|s| s.count >= 2))
        }
    })
    .await;
    assert_eq!(
        series.reporting_controller.as_deref(),
        Some("gadget-controller")
    );
    let core: Api<CoreEvent> = Api::namespaced(env.client.clone(), &env.ns);
    let evs = core
        .list(&ListParams::default().fields("involvedObject.name=c1"))
        .await
        .expect("core events")
        .items;
    assert!(!evs.is_empty());
    assert!(evs.iter().all(|e| e.reason.as_deref() == Some("Reconciled")
        && e.involved_object.kind.as_deref() == Some("Gadget")));
    assert_eq!(
        evs[0].reporting_component.as_deref(),
        Some("gadget-controller")
    );
    task.abort();
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_create_and_renew() {
    let env = Env::new("lease").await;
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), &env.ns);
    let now = || MicroTime(k8s_openapi::jiff::Timestamp::now());
    let lease: Lease = serde_json::from_value(json!({"metadata": {"name": "catalog-reconciler"},
        "spec": {"holderIdentity": "pod-a", "leaseDurationSeconds": 15}}))
    .expect("lease");
    let mut lease = leases
        .create(&PostParams::default(), &lease)
        .await
        .expect("create");
    let spec = lease.spec.get_or_insert_with(Default::default);
    spec.acquire_time = Some(now());
    spec.renew_time = Some(now());
    let stale = lease.clone();
    let renewed = leases
        .replace("catalog-reconciler", &PostParams::default(), &lease)
        .await
        .expect("renew");
    assert_ne!(
        renewed.metadata.resource_version,
        stale.metadata.resource_version
    );
    assert!(
        renewed
            .spec
            .as_ref()
            .and_then(|s| s.renew_time.as_ref())
            .is_some()
    );
    // A competing candidate holding an old resourceVersion loses.
    let mut theirs = stale;
    theirs
        .spec
        .get_or_insert_with(Default::default)
        .holder_identity = Some("pod-b".into());
    assert_eq!(
        api_code(
            &leases
                .replace("catalog-reconciler", &PostParams::default(), &theirs)
                .await
                .expect_err("stale")
        ),
        409
    );
    let got = leases.get("catalog-reconciler").await.expect("get");
    assert_eq!(
        got.spec.and_then(|s| s.holder_identity).as_deref(),
        Some("pod-a")
    );
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_latency_counters_and_auth() {
    if std::env::var("CATALOG_E2E_KUBECONFIG").is_ok() {
        eprintln!(
            "emulator_kube_rs::faults: needs the emulator's hooks; skipped on a real cluster"
        );
        return;
    }
    let opts = EmulatorOptions {
        token: Some("good".into()),
        forbidden_token: Some("denied".into()),
        ..Default::default()
    };
    let env = Env::with("faults", opts).await;
    let emu = env.emu.as_ref().expect("emulator");
    let api = env.gadgets();
    emu.reset_requests();
    emu.fail_next(Fault::resource("gadgets").verb("list").status(500));
    assert_eq!(
        api_code(
            &api.list(&ListParams::default())
                .await
                .expect_err("injected 500")
        ),
        500
    );
    // kube-rs retries 429 by itself; the emulator saw both attempts.
    emu.fail_next(
        Fault::resource("gadgets")
            .verb("list")
            .status(429)
            .retry_after(0),
    );
    api.list(&ListParams::default())
        .await
        .expect("retried after 429");
    assert_eq!(emu.request_count("list gadgets"), 3);
    api.create(
        &PostParams::default(),
        &gadget("f", json!({"size": 1}), json!({})),
    )
    .await
    .expect("create");
    api.patch_status(
        "f",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "x"}})),
    )
    .await
    .expect("status");
    assert_eq!(emu.request_count("create gadgets"), 1);
    assert_eq!(emu.request_count("patch gadgets/status"), 1);
    assert_eq!(emu.writes(), 2);
    emu.set_latency(Duration::from_millis(300));
    let t = Instant::now();
    api.get("f").await.expect("get");
    assert!(t.elapsed() >= Duration::from_millis(300));
    emu.set_latency(Duration::ZERO);
    for (token, code) in [(None, 401), (Some("wrong"), 401), (Some("denied"), 403)] {
        let other: Api<DynamicObject> = Api::namespaced_with(
            emu.kube_client_with_token(token),
            &env.ns,
            &gadget_resource(),
        );
        assert_eq!(
            api_code(
                &other
                    .list(&ListParams::default())
                    .await
                    .expect_err("rejected")
            ),
            code,
            "token {token:?}"
        );
    }
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_references_are_garbage_collected() {
    use k8s_openapi::api::core::v1::ConfigMap;
    let env = Env::new("gc").await;
    let api = env.gadgets();
    let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.ns);
    let owned_by = |g: &DynamicObject, name: &str| -> ConfigMap {
        serde_json::from_value(json!({"metadata": {"name": name, "ownerReferences": [{
            "apiVersion": "e2e.catalog.example.com/v1", "kind": "Gadget",
            "name": g.name_any(), "uid": g.uid().expect("uid")}]}, "data": {"k": "v"}}))
        .expect("configmap")
    };
    let pp = PostParams::default();
    let g1 = api
        .create(&pp, &gadget("owner1", json!({"size": 1}), json!({})))
        .await
        .expect("owner1");
    let g2 = api
        .create(&pp, &gadget("owner2", json!({"size": 1}), json!({})))
        .await
        .expect("owner2");
    cms.create(&pp, &owned_by(&g1, "dependent"))
        .await
        .expect("dependent");
    cms.create(&pp, &owned_by(&g2, "orphan"))
        .await
        .expect("orphan");
    // Background propagation (the default): the dependent goes with its owner.
    api.delete("owner1", &DeleteParams::default())
        .await
        .expect("delete owner1");
    until("dependent collected", || {
        let cms = cms.clone();
        async move {
            matches!(cms.get("dependent").await, Err(kube::Error::Api(ref s)) if s.code == 404)
                .then_some(())
        }
    })
    .await;
    // Orphan propagation: the dependent stays, without the reference.
    api.delete("owner2", &DeleteParams::orphan())
        .await
        .expect("delete owner2");
    let orphan = until("orphan released", || {
        let cms = cms.clone();
        async move {
            let cm = cms.get("orphan").await.ok()?;
            cm.metadata
                .owner_references
                .as_ref()
                .is_none_or(|r| r.is_empty())
                .then_some(cm)
        }
    })
    .await;
    assert_eq!(
        orphan.data.and_then(|d| d.get("k").cloned()).as_deref(),
        Some("v")
    );
    env.cleanup().await;
}
