//! Unit tests of field ownership and server-side apply.

use super::*;
use serde_json::json;

const NOW: &str = "2026-01-04T13:00:00Z";

fn schema() -> Value {
    json!({"type": "object", "properties": {
        "spec": {"type": "object", "properties": {
            "registryUrl": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "targets": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                "items": {"type": "object", "properties": {"name": {"type": "string"}, "notes": {"type": "string"}}}}
        }},
        "status": {"type": "object", "properties": {"phase": {"type": "string"}}}
    }})
}

fn main_scope(s: &Value) -> Tracking<'_> {
    Tracking {
        schema: Some(s),
        status_sub: true,
        scope: Scope::Main,
    }
}

fn obj(spec: Value) -> Value {
    json!({"apiVersion": "x.io/v1", "kind": "Img", "metadata": {"name": "a"}, "spec": spec})
}

#[test]
fn fieldsv1_round_trip() {
    let s = schema();
    let o = obj(
        json!({"registryUrl": "r", "tags": ["a"], "targets": [{"name": "qemu", "notes": "n"}]}),
    );
    let mut o = o;
    o["metadata"]["labels"] = json!({"l": "1"});
    o["metadata"]["finalizers"] = json!(["x.io/f"]);
    o["status"] = json!({"phase": "Available"});
    let set = fieldset(&o, &main_scope(&s));
    let enc = encode(&set);
    assert_eq!(
        enc,
        json!({"f:metadata": {"f:finalizers": {"v:\"x.io/f\"": {}}, "f:labels": {"f:l": {}}},
               "f:spec": {"f:registryUrl": {}, "f:tags": {},
                          "f:targets": {"k:{\"name\":\"qemu\"}": {".": {}, "f:name": {}, "f:notes": {}}}}})
    );
    assert_eq!(decode(&enc), set);
    let status = fieldset(
        &o,
        &Tracking {
            scope: Scope::Status,
            ..main_scope(&s)
        },
    );
    assert_eq!(encode(&status), json!({"f:status": {"f:phase": {}}}));
}

#[test]
fn fieldsv1_marks_members_that_have_members_below() {
    let f = |k: &str| Pe::Field(k.into());
    let key = Pe::Key(r#"{"name":"x"}"#.into());
    let set: FieldSet = [
        vec![],
        vec![f("a")],
        vec![f("a"), f("b")],
        vec![f("a"), key.clone(), f("c")],
        vec![f("a"), key, Pe::Index(0)],
        vec![Pe::Index(3)],
        vec![Pe::Value("\"v\"".into())],
        vec![f("z"), f("y"), f("x")],
    ]
    .into_iter()
    .collect();
    let enc = encode(&set);
    assert_eq!(
        enc,
        json!({".": {}, "f:a": {".": {}, "f:b": {}, "k:{\"name\":\"x\"}": {"f:c": {}, "i:0": {}}},
            "i:3": {}, "v:\"v\"": {}, "f:z": {"f:y": {"f:x": {}}}})
    );
    assert_eq!(decode(&enc), set);
}

#[test]
fn conflicts_force_and_sharing() {
    let s = schema();
    let t = main_scope(&s);
    let mut entries = Vec::new();
    let a = obj(json!({"registryUrl": "one", "tags": ["x"]}));
    let live = apply(
        json!({"metadata": {"name": "a"}}),
        &a,
        &mut entries,
        "alice",
        "x.io/v1",
        false,
        &t,
        NOW,
    )
    .expect("first apply");
    // Same value: shared ownership, no conflict.
    let b_same = obj(json!({"registryUrl": "one"}));
    let live = apply(
        live,
        &b_same,
        &mut entries,
        "bob",
        "x.io/v1",
        false,
        &t,
        NOW,
    )
    .expect("same value");
    assert_eq!(entries.len(), 2);
    // Different value: conflict naming the other manager and field.
    let b = obj(json!({"registryUrl": "two"}));
    let err = apply(
        live.clone(),
        &b,
        &mut entries,
        "carol",
        "x.io/v1",
        false,
        &t,
        NOW,
    )
    .expect_err("conflict");
    let mut managers: Vec<&str> = err.iter().map(|c| c.manager.as_str()).collect();
    managers.sort();
    assert_eq!(managers, ["alice", "bob"]);
    assert_eq!(path_string(&err[0].path), ".spec.registryUrl");
    assert!(
        conflict_message(&err[..1]).starts_with("Apply failed with 1 conflict: conflict with \"")
    );
    // Forced: carol takes the field, alice keeps tags.
    let live = apply(live, &b, &mut entries, "carol", "x.io/v1", true, &t, NOW).expect("forced");
    assert_eq!(live["spec"]["registryUrl"], "two");
    let alice = entries
        .iter()
        .find(|e| e.manager == "alice")
        .expect("alice keeps tags");
    assert_eq!(encode(&alice.set), json!({"f:spec": {"f:tags": {}}}));
    assert!(
        !entries.iter().any(|e| e.manager == "bob"),
        "bob lost its only field"
    );
}

#[test]
fn dropped_fields_are_removed_unless_owned_by_others() {
    let s = schema();
    let t = main_scope(&s);
    let mut entries = Vec::new();
    let first = obj(
        json!({"registryUrl": "r", "tags": ["x"], "targets": [{"name": "a"}, {"name": "b", "notes": "n"}]}),
    );
    let live = apply(
        json!({}),
        &first,
        &mut entries,
        "alice",
        "x.io/v1",
        false,
        &t,
        NOW,
    )
    .expect("apply");
    // Another manager takes ownership of tags through a plain update.
    let mut updated = live.clone();
    updated["spec"]["tags"] = json!(["y"]);
    record_update(
        &mut entries,
        Some(&live),
        &updated,
        "kubectl-edit",
        "x.io/v1",
        &t,
        NOW,
    );
    let second = obj(json!({"registryUrl": "r", "targets": [{"name": "a"}]}));
    let live = apply(
        updated,
        &second,
        &mut entries,
        "alice",
        "x.io/v1",
        false,
        &t,
        NOW,
    )
    .expect("apply 2");
    assert_eq!(
        live["spec"]["tags"],
        json!(["y"]),
        "owned by kubectl-edit, kept"
    );
    assert_eq!(
        live["spec"]["targets"],
        json!([{"name": "a"}]),
        "element b no longer applied, removed"
    );
}

#[test]
fn list_map_merge_keeps_other_managers_elements() {
    let s = schema();
    let t = main_scope(&s);
    let mut entries = Vec::new();
    let a = obj(json!({"targets": [{"name": "a", "notes": "1"}]}));
    let live = apply(json!({}), &a, &mut entries, "alice", "v", false, &t, NOW).expect("a");
    let b = obj(json!({"targets": [{"name": "b"}]}));
    let live = apply(live, &b, &mut entries, "bob", "v", false, &t, NOW).expect("b");
    assert_eq!(
        live["spec"]["targets"],
        json!([{"name": "a", "notes": "1"}, {"name": "b"}])
    );
}

#[test]
fn update_takes_ownership_and_prunes() {
    let s = schema();
    let t = main_scope(&s);
    let mut entries = Vec::new();
    let created = obj(json!({"registryUrl": "r", "tags": ["x"]}));
    record_update(&mut entries, None, &created, "creator", "v", &t, NOW);
    let mut next = created.clone();
    next["spec"]["registryUrl"] = json!("r2");
    next["spec"].as_object_mut().expect("spec").remove("tags");
    record_update(&mut entries, Some(&created), &next, "editor", "v", &t, NOW);
    assert!(
        !entries.iter().any(|e| e.manager == "creator"),
        "creator owned nothing left"
    );
    let mut o = next.clone();
    write_entries(&mut o, &entries);
    let back = read_entries(&o);
    assert_eq!(back, entries);
    assert_eq!(
        o["metadata"]["managedFields"][0]["fieldsV1"],
        json!({"f:spec": {"f:registryUrl": {}}})
    );
}
