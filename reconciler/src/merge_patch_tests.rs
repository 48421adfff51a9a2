use serde_json::json;

use super::*;

#[test]
fn changed_keys_are_sent_and_removed_ones_nulled() {
    let old = json!({"phase": "Available", "sizeBytes": 1, "gone": "x"});
    let new = json!({"phase": "Available", "sizeBytes": 2, "added": true});
    assert_eq!(
        diff(&old, &new),
        Some(json!({"sizeBytes": 2, "added": true, "gone": null}))
    );
}

#[test]
fn nested_objects_are_patched_key_by_key() {
    let old = json!({"registryMetadata": {"platform": {"architecture": "arm64", "variant": "v8"}, "sizeBytes": 1, "layers": 3}, "x": 1});
    let new = json!({"registryMetadata": {"platform": {"architecture": "arm64"}, "sizeBytes": 2, "layers": 3}});
    assert_eq!(
        diff(&old, &new),
        Some(
            json!({"registryMetadata": {"platform": {"variant": null}, "sizeBytes": 2}, "x": null})
        )
    );
}

#[test]
fn arrays_and_changed_kinds_are_replaced_whole() {
    assert_eq!(
        diff(&json!({"a": [1, 2]}), &json!({"a": [1]})),
        Some(json!({"a": [1]}))
    );
    let conditions = |status| json!({"conditions": [{"type": "Ready", "status": status}]});
    assert_eq!(
        diff(&conditions("True"), &conditions("False")),
        Some(conditions("False"))
    );
    assert_eq!(
        diff(&json!({"a": {"b": 1}}), &json!({"a": "text"})),
        Some(json!({"a": "text"}))
    );
    assert_eq!(
        diff(&json!({"a": "text"}), &json!({"a": {"b": 1}})),
        Some(json!({"a": {"b": 1}}))
    );
}

#[test]
fn nothing_changed_is_no_patch() {
    let value = json!({"a": {"b": [1, 2]}, "c": null});
    assert_eq!(diff(&value, &value), None);
    assert_eq!(diff(&json!({}), &json!({})), None);
    let same = Status {
        phase: Some("Ready"),
        ..Status::default()
    };
    let everything = Fields {
        others: &["previews"],
        retired: &["inventory"],
    };
    assert_eq!(status(Some(&same), &same, everything), None);
}

/// A status shaped like the CRDs': empty fields are left out when serialized.
#[derive(Serialize, Default)]
struct Status {
    #[serde(skip_serializing_if = "Option::is_none")]
    phase: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    history: Vec<u32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    previews: Vec<u32>,
}

#[test]
fn a_first_status_is_sent_whole_and_a_cleared_field_as_null() {
    let new = Status {
        phase: Some("Ready"),
        history: vec![1],
        ..Status::default()
    };
    assert_eq!(
        status(None, &new, Fields::default()),
        Some(json!({"status": {"phase": "Ready", "history": [1]}}))
    );
    let cleared = Status {
        phase: Some("Ready"),
        ..Status::default()
    };
    assert_eq!(
        status(Some(&new), &cleared, Fields::default()),
        Some(json!({"status": {"history": null}}))
    );
}

#[test]
fn fields_of_other_writers_are_never_named() {
    let sync = Fields {
        others: &["previews"],
        retired: &[],
    };
    let old = Status {
        previews: vec![7],
        ..Status::default()
    };
    let new = Status {
        phase: Some("Ready"),
        previews: vec![8],
        ..Status::default()
    };
    assert_eq!(
        status(Some(&old), &new, sync),
        Some(json!({"status": {"phase": "Ready"}}))
    );
    assert_eq!(
        status(Some(&Status::default()), &old, sync),
        None,
        "a change of another writer's field alone is no write"
    );
}

#[test]
fn retired_fields_are_nulled_by_every_patch_sent() {
    let fields = Fields {
        others: &[],
        retired: &["inventory"],
    };
    let new = Status {
        history: vec![1],
        ..Status::default()
    };
    assert_eq!(
        status(Some(&Status::default()), &new, fields),
        Some(json!({"status": {"history": [1], "inventory": null}}))
    );
}
