//! Event validation, as pkg/apis/core/validation/events.go does it: every write passes the
//! legacy rules (length limits apply only to Events with an `eventTime`, i.e. written by a
//! new-style recorder); writes through events.k8s.io/v1 also pass the strict rules (required
//! `eventTime`, `type` Normal or Warning, no deprecated fields on create, immutable fields on
//! update). Field paths are the internal type's (`message`, not `note`), as the real server
//! reports them. Events are stored in their core/v1 form (events.rs), whose names match the
//! internal ones except `reportingComponent` (`reportingController`).

use serde_json::Value;

use super::error::Cause;
use super::meta;

const REPORTING_INSTANCE_LENGTH_LIMIT: usize = 128;
const ACTION_LENGTH_LIMIT: usize = 128;
const REASON_LENGTH_LIMIT: usize = 128;
const NOTE_LENGTH_LIMIT: usize = 1024;

/// Validates `ev` (storage form); `v1` when written through events.k8s.io/v1, `old` on updates.
pub fn validate(v1: bool, old: Option<&Value>, ev: &Value, causes: &mut Vec<Cause>) {
    legacy(ev, causes);
    if !v1 {
        return;
    }
    match old {
        None => v1_create(ev, causes),
        Some(old) => v1_update(old, ev, causes),
    }
}

fn text<'a>(ev: &'a Value, ptr: &str) -> &'a str {
    ev.pointer(ptr).and_then(Value::as_str).unwrap_or_default()
}

fn set(ev: &Value, ptr: &str) -> bool {
    ev.pointer(ptr)
        .is_some_and(|v| !v.is_null() && v.as_str() != Some("") && v.as_i64() != Some(0))
}

fn required(path: &str) -> Cause {
    Cause::new("FieldValueRequired", path, "Required value")
}

/// `field.Invalid(path, "", detail)`: the real server reports these with an empty value.
fn invalid(path: &str, detail: impl std::fmt::Display) -> Cause {
    Cause::new(
        "FieldValueInvalid",
        path,
        format!("Invalid value: \"\": {detail}"),
    )
}

/// `legacyValidateEvent`.
fn legacy(ev: &Value, causes: &mut Vec<Cause>) {
    let ns = text(ev, "/metadata/namespace");
    let involved = text(ev, "/involvedObject/namespace");
    let mismatch = if !set(ev, "/eventTime") {
        if involved.is_empty() {
            !ns.is_empty() && ns != "default"
        } else {
            ns != involved
        }
    } else {
        involved.is_empty() && ns != "default" && ns != "kube-system"
    };
    if mismatch {
        causes.push(Cause::new(
            "FieldValueInvalid",
            "involvedObject.namespace",
            format!("Invalid value: {involved:?}: does not match event.namespace"),
        ));
    }
    if set(ev, "/eventTime") {
        reporting_controller(text(ev, "/reportingComponent"), causes);
        let limited = [
            ("reportingInstance", REPORTING_INSTANCE_LENGTH_LIMIT),
            ("action", ACTION_LENGTH_LIMIT),
            ("reason", REASON_LENGTH_LIMIT),
        ];
        for (field, limit) in limited {
            let value = text(ev, &format!("/{field}"));
            if value.is_empty() {
                causes.push(required(field));
            }
            if value.len() > limit {
                causes.push(invalid(
                    field,
                    format!("can have at most {limit} characters"),
                ));
            }
        }
        if text(ev, "/message").len() > NOTE_LENGTH_LIMIT {
            causes.push(invalid(
                "message",
                format!("can have at most {NOTE_LENGTH_LIMIT} characters"),
            ));
        }
    }
}

/// Required, then each message of `IsQualifiedName`
/// (staging/src/k8s.io/apimachinery/pkg/util/validation/validation.go).
fn reporting_controller(value: &str, causes: &mut Vec<Cause>) {
    const FIELD: &str = "reportingController";
    let mut messages = Vec::new();
    if value.is_empty() {
        causes.push(required(FIELD));
        messages.push("name part must be non-empty".to_string());
    } else if value.rsplit('/').next().is_some_and(|n| n.len() > 63) {
        messages.push("name part must be no more than 63 characters".to_string());
    }
    if let Some(e) = meta::qualified_name_error(value) {
        messages.push(e);
    }
    for m in messages {
        causes.push(Cause::new(
            "FieldValueInvalid",
            FIELD,
            format!("Invalid value: {value:?}: {m}"),
        ));
    }
}

/// `validateV1EventSeries`.
fn series(ev: &Value, causes: &mut Vec<Cause>) {
    let Some(s) = ev.get("series").filter(|s| !s.is_null()) else {
        return;
    };
    if s.get("count").and_then(Value::as_i64).unwrap_or(0) < 2 {
        causes.push(invalid("series.count", "should be at least 2"));
    }
    if !set(s, "/lastObservedTime") {
        causes.push(required("series.lastObservedTime"));
    }
}

/// The strict part of `ValidateEventCreate`.
fn v1_create(ev: &Value, causes: &mut Vec<Cause>) {
    series(ev, causes);
    if !set(ev, "/eventTime") {
        causes.push(required("eventTime"));
    }
    let ty = text(ev, "/type");
    if ty != "Normal" && ty != "Warning" {
        causes.push(invalid("type", format!("has invalid value: {ty}")));
    }
    for field in ["firstTimestamp", "lastTimestamp", "count"] {
        if set(ev, &format!("/{field}")) {
            causes.push(invalid(field, "needs to be unset"));
        }
    }
    if set(ev, "/source/component") || set(ev, "/source/host") {
        causes.push(invalid("source", "needs to be unset"));
    }
}

/// The strict part of `ValidateEventUpdate` (which lists `reason` twice, hence two causes).
fn v1_update(old: &Value, ev: &Value, causes: &mut Vec<Cause>) {
    if ev.get("series") != old.get("series") {
        series(ev, causes);
    }
    let immutable = [
        ("involvedObject", "involvedObject"),
        ("reason", "reason"),
        ("message", "message"),
        ("source", "source"),
        ("firstTimestamp", "firstTimestamp"),
        ("lastTimestamp", "lastTimestamp"),
        ("count", "count"),
        ("reason", "reason"),
        ("type", "type"),
        ("eventTime", "eventTime"),
        ("action", "action"),
        ("related", "related"),
        ("reportingComponent", "reportingController"),
        ("reportingInstance", "reportingInstance"),
    ];
    for (key, path) in immutable {
        let new = ev.get(key).filter(|v| !v.is_null());
        if new != old.get(key).filter(|v| !v.is_null()) {
            let shown = new.map_or("null".to_string(), Value::to_string);
            causes.push(Cause::new(
                "FieldValueInvalid",
                path,
                format!("Invalid value: {shown}: field is immutable"),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(v1: bool, old: Option<&Value>, ev: &Value) -> Vec<String> {
        let mut causes = Vec::new();
        validate(v1, old, ev, &mut causes);
        causes.into_iter().map(|c| c.field).collect()
    }

    #[test]
    fn legacy_and_strict_rules() {
        let ev = json!({"metadata": {"namespace": "team"}, "involvedObject": {"namespace": "team"},
            "eventTime": "2026-01-04T13:00:00.000000Z", "reportingComponent": "c", "reportingInstance": "i",
            "action": "A", "reason": "R", "type": "Normal", "message": "m"});
        assert!(fields(true, None, &ev).is_empty());
        let mut old_style = ev.clone();
        old_style["eventTime"] = Value::Null;
        old_style["message"] = json!("x".repeat(2000));
        old_style["involvedObject"]["namespace"] = json!("other");
        assert_eq!(
            fields(false, None, &old_style),
            ["involvedObject.namespace"]
        );
        let mut counted = ev.clone();
        counted["count"] = json!(3);
        counted["series"] = json!({"count": 1});
        assert_eq!(
            fields(true, None, &counted),
            ["series.count", "series.lastObservedTime", "count"]
        );
        let mut changed = ev.clone();
        changed["reason"] = json!("Other");
        assert_eq!(fields(true, Some(&ev), &changed), ["reason", "reason"]);
        assert!(fields(false, Some(&ev), &changed).is_empty());
    }
}
