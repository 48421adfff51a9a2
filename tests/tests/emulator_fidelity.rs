//! Fidelity of the Kubernetes API emulator where review found it kinder than a real API server
//! (issues #14 and #18): Event validation, namespace termination, server-side apply of
//! undeclared fields, unconditional Lease updates, and request/object size limits. Each test
//! drives the emulator with the real kubectl or kube-rs and expects the real server's answer,
//! word for word.

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use serde_json::{Value, json};

use catalog_e2e::suite::kubectl as support;
use support::*;

/// The Status of a failed kube-rs call.
fn status(e: kube::Error) -> kube::core::Status {
    match e {
        kube::Error::Api(s) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn events_api(client: &kube::Client, group: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk(group, "v1", "Event");
    Api::namespaced_with(
        client.clone(),
        "default",
        &ApiResource::from_gvk_with_plural(&gvk, "events"),
    )
}

/// An events.k8s.io/v1 Event as kube-runtime's Recorder writes it, with `overrides` merged in.
fn v1_event(name: &str, overrides: Value) -> DynamicObject {
    let mut ev = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": name},
        "eventTime": "2026-01-04T13:00:00.000000Z", "type": "Normal", "reason": "Verified",
        "action": "Verify", "reportingController": "catalog-reconciler", "reportingInstance": "pod-1",
        "regarding": {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "default", "name": "cm"}});
    for (k, v) in overrides.as_object().expect("overrides object") {
        match v {
            Value::Null => ev.as_object_mut().expect("object").remove(k),
            v => ev
                .as_object_mut()
                .expect("object")
                .insert(k.clone(), v.clone()),
        };
    }
    serde_json::from_value(ev).expect("event")
}

async fn create_err(api: &Api<DynamicObject>, ev: &DynamicObject) -> kube::core::Status {
    status(
        api.create(&PostParams::default(), ev)
            .await
            .expect_err("refused"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_validated_as_the_api_server_does() {
    let emu = catalog_e2e::emulator::Emulator::start(Default::default()).expect("emulator");
    let client = emu.kube_client();
    let v1 = events_api(&client, "events.k8s.io");
    let pp = PostParams::default();
    // The note limit counts bytes: 512 two-byte characters fit, 513 do not.
    let fits = v1_event("fits", json!({"note": "é".repeat(512)}));
    v1.create(&pp, &fits)
        .await
        .expect("a 1024-byte note is accepted");
    let s = create_err(&v1, &v1_event("long", json!({"note": "é".repeat(513)}))).await;
    assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        s.message,
        "Event \"long\" is invalid: message: Invalid value: \"\": can have at most 1024 characters"
    );
    let bad = v1_event(
        "bad",
        json!({"reportingInstance": null, "action": null, "reason": "R".repeat(129), "type": "Info"}),
    );
    assert_eq!(
        create_err(&v1, &bad).await.message,
        "Event \"bad\" is invalid: [reportingInstance: Required value, action: Required value, \
         reason: Invalid value: \"\": can have at most 128 characters, type: Invalid value: \"\": has invalid value: Info]"
    );
    assert_eq!(
        create_err(&v1, &v1_event("old", json!({"eventTime": null})))
            .await
            .message,
        "Event \"old\" is invalid: eventTime: Required value"
    );
    // core/v1: an Event without eventTime keeps the legacy rules (no length limits).
    let core = events_api(&client, "");
    let legacy: DynamicObject = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "legacy"}, "involvedObject": {"kind": "ConfigMap", "namespace": "default", "name": "cm"},
        "reason": "Old", "message": "x".repeat(2000), "type": "Normal"}))
    .expect("event");
    core.create(&pp, &legacy).await.expect("legacy event");
    let mut timed = legacy.clone();
    timed.metadata.name = Some("timed".into());
    timed.data["eventTime"] = json!("2026-01-04T13:00:00.000000Z");
    timed.data["message"] = json!("short");
    assert_eq!(
        create_err(&core, &timed).await.message,
        "Event \"timed\" is invalid: [reportingController: Required value, reportingController: Invalid value: \"\": \
         name part must be non-empty, reportingController: Invalid value: \"\": name part must consist of alphanumeric \
         characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or \
         'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]'), \
         reportingInstance: Required value, action: Required value]"
    );
    // kube-runtime's Recorder sends the note as given: cutting it is the caller's job.
    let recorder = Recorder::new(client.clone(), Reporter::from("catalog-reconciler"));
    let reference = k8s_openapi::api::core::v1::ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("ConfigMap".into()),
        namespace: Some("default".into()),
        name: Some("cm".into()),
        ..Default::default()
    };
    let ev = Event {
        type_: EventType::Normal,
        reason: "Synced".into(),
        note: Some("ü".repeat(600)),
        action: "Sync".into(),
        secondary: None,
    };
    let e = recorder
        .publish(&ev, &reference)
        .await
        .expect_err("too long");
    assert_eq!(status(e).code, 422);
}

#[test]
fn deleting_a_namespace_terminates_it_and_waits_for_its_content() {
    let k = Kubectl::new();
    k.ok(&["create", "namespace", "doomed"]);
    k.ok(&["create", "configmap", "plain", "-n", "doomed"]);
    let held = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: held\n  namespace: doomed\n  finalizers: [example.com/hold]\n";
    k.ok_stdin(&["create", "-f", "-"], Some(held));
    k.ok(&["delete", "namespace", "doomed", "--wait=false"]);
    let state = k.jsonpath(
        &["namespace", "doomed"],
        "{.status.phase} {.spec.finalizers} {.metadata.deletionTimestamp}",
    );
    let parts: Vec<&str> = state.split(' ').collect();
    assert_eq!(parts[..2], ["Terminating", "[\"kubernetes\"]"], "{state}");
    assert!(parts.get(2).is_some_and(|t| !t.is_empty()), "{state}");
    assert!(
        k.fails(&["get", "configmap", "plain", "-n", "doomed"], None)
            .contains("NotFound")
    );
    assert!(
        !k.jsonpath(
            &["configmap", "held", "-n", "doomed"],
            "{.metadata.deletionTimestamp}"
        )
        .is_empty()
    );
    let condition = |t: &str| {
        k.jsonpath(
            &["namespace", "doomed"],
            &format!("{{.status.conditions[?(@.type==\"{t}\")].message}}"),
        )
    };
    assert_eq!(
        condition("NamespaceContentRemaining"),
        "Some resources are remaining: configmaps. has 1 resource instances"
    );
    assert_eq!(
        condition("NamespaceFinalizersRemaining"),
        "Some finalizers are remaining: example.com/hold in 1 resource instances"
    );
    let late = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: late\n  namespace: doomed\n";
    let err = k.fails(&["create", "-f", "-"], Some(late));
    assert!(
        err.contains("Error from server (Forbidden): error when creating \"STDIN\": configmaps \"late\" is forbidden: unable to create new content in namespace doomed because it is being terminated"),
        "{err}"
    );
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let details = rt.block_on(async {
        let cms: Api<ConfigMap> = Api::namespaced(k.emu.kube_client(), "doomed");
        let cm: ConfigMap =
            serde_json::from_value(json!({"metadata": {"name": "late"}})).expect("cm");
        status(
            cms.create(&PostParams::default(), &cm)
                .await
                .expect_err("refused"),
        )
        .details
    });
    let cause = &details.expect("details").causes[0];
    assert_eq!(
        (
            cause.reason.as_str(),
            cause.message.as_str(),
            cause.field.as_str()
        ),
        (
            "NamespaceTerminating",
            "namespace doomed is being terminated",
            "metadata.namespace"
        )
    );
    let again = k.fails(&["delete", "namespace", "doomed", "--wait=false"], None);
    assert!(again.contains("The system is ensuring all content is removed from this namespace.  Upon completion, this namespace will automatically be purged by the system."), "{again}");
    k.ok(&[
        "patch",
        "configmap",
        "held",
        "-n",
        "doomed",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    wait_for("the namespace to be removed", || {
        let out = k.output(&["get", "namespace", "doomed"], None);
        String::from_utf8_lossy(&out.stderr)
            .contains("NotFound")
            .then_some(())
    });
}

#[test]
fn server_side_apply_of_an_undeclared_field_fails_as_on_a_real_server() {
    let k = Kubectl::new();
    k.apply_crds();
    let manifest = image("extra", "quay.io/x/y:1", "arm64", "  foo: bar\n");
    let f = write(k.dir(), "extra.yaml", &manifest);
    let want = "Error from server: failed to create typed patch object (default/extra; \
        automotive.sdv.cloud.redhat.com/v1alpha1, Kind=CatalogImage): .spec.foo: field not declared in schema";
    for validate in ["--validate=true", "--validate=false"] {
        let err = k.fails(&["apply", "--server-side", validate, "-f", &f], None);
        assert!(err.contains(want), "{validate}: {err}");
    }
    assert!(
        k.fails(&["get", "catalogimage", "extra"], None)
            .contains("NotFound")
    );
    // Client-side apply without validation still has the field pruned, as on a real server.
    k.ok(&["apply", "--validate=false", "-f", &f]);
    assert_eq!(k.jsonpath(&["catalogimage", "extra"], "{.spec.foo}"), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_update_needs_a_resource_version_a_configmap_update_does_not() {
    let emu = catalog_e2e::emulator::Emulator::start(Default::default()).expect("emulator");
    let client = emu.kube_client();
    let pp = PostParams::default();
    let leases: Api<Lease> = Api::namespaced(client.clone(), "default");
    let lease: Lease = serde_json::from_value(json!({"metadata": {"name": "leader"},
        "spec": {"holderIdentity": "pod-a", "leaseDurationSeconds": 15}}))
    .expect("lease");
    let mut lease = leases.create(&pp, &lease).await.expect("create");
    lease.metadata.resource_version = None;
    let s = status(
        leases
            .replace("leader", &pp, &lease)
            .await
            .expect_err("refused"),
    );
    assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        s.message,
        "Lease.coordination.k8s.io \"leader\" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update"
    );
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "c"}, "data": {"a": "1"}})).expect("cm");
    let mut cm = cms.create(&pp, &cm).await.expect("create");
    cm.metadata.resource_version = None;
    cm.data = Some([("a".to_string(), "2".to_string())].into());
    cms.replace("c", &pp, &cm)
        .await
        .expect("ConfigMaps allow unconditional updates");
}

/// A Deployment (stored as written by the emulator, no per-field limits on a real server either)
/// whose one env value is `bytes` long.
fn deployment(bytes: usize) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: big\nspec:\n  selector:\n    matchLabels: {{app: big}}\n  template:\n    metadata:\n      labels: {{app: big}}\n    spec:\n      containers:\n      - name: c\n        image: busybox\n        env:\n        - name: BLOB\n          value: \"{}\"\n",
        "x".repeat(bytes)
    )
}

#[test]
fn request_and_object_size_limits_follow_the_api_server_and_etcd() {
    let k = Kubectl::new();
    let big = write(k.dir(), "big.yaml", &deployment(2_500_000));
    // Over etcd's 1.5 MiB, under the API server's 3 MiB: the storage refuses it, not the HTTP
    // layer; a dry run never reaches storage.
    k.ok(&["create", "--dry-run=server", "-f", &big]);
    let err = k.fails(&["create", "-f", &big], None);
    assert!(
        err.contains("Error from server: error when creating"),
        "{err}"
    );
    assert!(err.contains("etcdserver: request is too large"), "{err}");
    let huge = write(k.dir(), "huge.yaml", &deployment(3 * 1024 * 1024));
    let err = k.fails(&["create", "-f", &huge], None);
    assert!(
        err.contains("Error from server (RequestEntityTooLarge)")
            && err.contains("Request entity too large: limit is 3145728"),
        "{err}"
    );
    let fits = write(k.dir(), "fits.yaml", &deployment(1_000_000));
    k.ok(&["create", "-f", &fits]);
}
