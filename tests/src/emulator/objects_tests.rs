use serde_json::{Value, json};

use super::*;
use crate::emulator::resources::builtin_defs;

fn def(plural: &str, group: &str) -> ResourceDef {
    builtin_defs()
        .into_iter()
        .find(|d| d.plural == plural && d.group == group)
        .expect("builtin")
}

#[test]
fn served_writes_the_bytes_of_the_presented_copy() {
    let objects = [
        json!({"metadata": {"name": "a"}, "data": {"k": "v"}}),
        json!({"apiVersion": "old/v0", "kind": "Old", "metadata": {"name": "a"}}),
        // Keys sorting before `apiVersion` (upper case), between it and `kind`, and after.
        json!({"A": 1, "Zeta": [1], "apiVersion": "v1", "b": {}, "immutable": true, "zzz": null}),
        json!({"kind": "ConfigMap", "z": "x"}),
        json!({}),
    ];
    let defs = [
        def("configmaps", ""),
        def("secrets", ""),
        def("events", ""),
        // Converted (fields renamed): served through `present` itself.
        def("events", "events.k8s.io"),
    ];
    for d in &defs {
        for o in &objects {
            let served = Served { def: d, stored: o }.to_vec();
            let copied = present(d, o).to_string();
            assert_eq!(String::from_utf8_lossy(&served), copied, "{} {o}", d.plural);
        }
    }
    let event = json!({"apiVersion": "v1", "kind": "Event", "message": "m",
        "involvedObject": {"name": "x"}, "metadata": {"name": "e"}});
    let v1 = def("events", "events.k8s.io");
    let served: Value = serde_json::from_slice(
        &Served {
            def: &v1,
            stored: &event,
        }
        .to_vec(),
    )
    .expect("json");
    assert_eq!(
        (
            &served["apiVersion"],
            &served["note"],
            &served["regarding"]["name"]
        ),
        (&json!("events.k8s.io/v1"), &json!("m"), &json!("x"))
    );
}

/// What a no-op write is: the object apart from its resourceVersion and managedFields times.
fn comparable(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
        if let Some(Value::Array(mf)) = m.get_mut("managedFields") {
            for e in mf.iter_mut().filter_map(Value::as_object_mut) {
                e.remove("time");
            }
        }
    }
    v
}

#[test]
fn no_op_writes_ignore_only_resource_version_and_managed_fields_times() {
    let base = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "a", "resourceVersion": "5", "labels": {"l": "1"},
            "managedFields": [{"manager": "m", "time": "t1", "fieldsV1": {"f:data": {}}}, "odd"]},
        "data": {"k": "v"}});
    let variant = |ptr: &str, v: Value| {
        let mut o = base.clone();
        *o.pointer_mut(ptr).expect(ptr) = v;
        o
    };
    let mut fewer_entries = base.clone();
    fewer_entries["metadata"]["managedFields"] = json!([base["metadata"]["managedFields"][0]]);
    let mut no_rv = base.clone();
    no_rv["metadata"]
        .as_object_mut()
        .expect("meta")
        .remove("resourceVersion");
    let cases = [
        (variant("/metadata/resourceVersion", json!("6")), true),
        (variant("/metadata/managedFields/0/time", json!("t2")), true),
        (no_rv, true),
        (
            variant("/metadata/managedFields/0/manager", json!("n")),
            false,
        ),
        (variant("/metadata/managedFields/1", json!("other")), false),
        (variant("/metadata/managedFields", json!({})), false),
        (fewer_entries, false),
        (variant("/metadata/labels/l", json!("2")), false),
        (variant("/data/k", json!("w")), false),
        (variant("/metadata", json!("not an object")), false),
        (variant("/kind", json!("Secret")), false),
    ];
    for (other, same) in &cases {
        assert_eq!(comparable(&base) == comparable(other), *same, "{other}");
        assert_eq!(same_but_versions(&base, other), *same, "{other}");
        assert_eq!(same_but_versions(other, &base), *same, "{other}");
    }
    assert!(same_but_versions(&json!(1), &json!(1)));
    assert!(!same_but_versions(&json!(1), &base));
}

#[test]
fn spec_changes_ignore_metadata_and_a_status_subresource() {
    let old = json!({"metadata": {"name": "a"}, "spec": {"x": 1}, "status": {"s": 1}});
    let meta = json!({"metadata": {"name": "b"}, "spec": {"x": 1}, "status": {"s": 1}});
    let status = json!({"metadata": {"name": "a"}, "spec": {"x": 1}});
    let spec = json!({"metadata": {"name": "a"}, "spec": {"x": 2}, "status": {"s": 1}});
    assert!(!spec_changed(&old, &meta, true));
    assert!(!spec_changed(&old, &status, true));
    assert!(spec_changed(&old, &status, false));
    assert!(spec_changed(&old, &spec, true));
    assert!(spec_changed(&old, &json!([]), true));
}

#[test]
fn a_status_write_keeps_everything_else_stored() {
    let old = json!({"apiVersion": "v1", "kind": "K", "metadata": {"name": "a", "resourceVersion": "3"},
        "spec": {"x": 1}, "status": {"s": 1}});
    let mut new = json!({"apiVersion": "v1", "kind": "K", "metadata": {"name": "a", "labels": {"l": "x"}},
        "spec": {"x": 2}, "extra": true, "status": {"s": 2}});
    only_status(&mut new, &old);
    let mut want = old.clone();
    want["status"] = json!({"s": 2});
    assert_eq!(new, want);
    let mut without = json!({"metadata": {"name": "a"}});
    only_status(&mut without, &old);
    let mut want = old.clone();
    want.as_object_mut().expect("object").remove("status");
    assert_eq!(without, want);
    let mut not_an_object = json!("x");
    only_status(&mut not_an_object, &old);
    assert_eq!(not_an_object, want);
}
