//! kube-rs suite, part two: a kube-runtime Controller with events, Lease create/renew, and
//! garbage collection by ownerReferences.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event as CoreEvent, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::support::*;

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
