//! Unit tests of schema pruning, defaulting and validation.
use super::*;
use serde_json::json;

fn schema() -> Value {
    json!({"type": "object", "properties": {
        "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"},
        "spec": {"type": "object", "required": ["registryUrl"], "properties": {
            "registryUrl": {"type": "string", "minLength": 1},
            "digest": {"type": "string", "pattern": "^sha256:[a-f0-9]{64}$"},
            "interval": {"type": "string", "default": "1h"},
            "tags": {"type": "array", "maxItems": 2, "items": {"type": "string"}},
            "mode": {"type": "string", "enum": ["bootc", "image"]},
            "count": {"type": "integer", "minimum": 30},
            "labels": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 3}},
            "opaque": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            "note": {"type": "string", "nullable": true},
            "created": {"type": "string", "format": "date-time"}
        }},
        "status": {"type": "object", "properties": {"phase": {"type": "string"}}}
    }})
}

fn check(v: Value) -> Vec<Cause> {
    let mut c = Vec::new();
    validate(&schema(), &v, "", &mut c);
    c
}

#[test]
fn required_pattern_enum_minimum() {
    let c = check(json!({"spec": {"digest": "sha256:xyz", "mode": "disk", "count": 5}}));
    let fields: Vec<&str> = c.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(
        fields,
        ["spec.registryUrl", "spec.count", "spec.digest", "spec.mode"]
    );
    assert_eq!(c[0].message, "Required value");
    assert!(c[1].message.contains("greater than or equal to 30"));
    assert!(
        c[2].message
            .contains("should match '^sha256:[a-f0-9]{64}$'"),
        "{}",
        c[2].message
    );
    assert!(
        c[3].message
            .starts_with("Unsupported value: \"disk\": supported values: \"bootc\", \"image\"")
    );
}

#[test]
fn types_items_maps_formats() {
    let c = check(json!({"spec": {"registryUrl": "x", "tags": "a"}}));
    assert_eq!(c[0].field, "spec.tags");
    assert_eq!(c[0].reason, "FieldValueTypeInvalid");
    let c = check(json!({"spec": {"registryUrl": "x", "tags": [1, "b", "c"]}}));
    let fields: Vec<&str> = c.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(fields, ["spec.tags", "spec.tags[0]"]);
    let c = check(
        json!({"spec": {"registryUrl": "x", "labels": {"k": "long"}, "created": "yesterday"}}),
    );
    let fields: Vec<&str> = c.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(fields, ["spec.created", "spec.labels[k]"]);
    assert!(
        check(
            json!({"spec": {"registryUrl": "x", "note": null, "created": "2026-01-04T13:00:00Z"}})
        )
        .is_empty()
    );
}

#[test]
fn prune_and_default() {
    let mut v = json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "a", "odd": 1},
        "spec": {"registryUrl": "r", "bogus": 1, "digest": null, "opaque": {"any": {"thing": 1}},
                 "labels": {"free": "x"}},
        "extra": true, "status": {"phase": "p", "x": 1}, "zzz": 1});
    let mut unknown = Vec::new();
    prune(&schema(), &mut v, "", &mut unknown);
    apply_defaults(&schema(), &mut v);
    assert_eq!(
        unknown,
        ["extra", "spec.bogus", "status.x", "zzz"],
        "in key order, depth first"
    );
    assert_eq!(v["spec"]["interval"], "1h");
    assert!(
        v["spec"].get("digest").is_none(),
        "non-nullable null pruned"
    );
    assert_eq!(v["spec"]["opaque"]["any"]["thing"], 1);
    assert_eq!(
        v["metadata"]["odd"], 1,
        "metadata is not pruned by the CR schema"
    );
    assert_eq!(v["spec"]["labels"]["free"], "x");
}
