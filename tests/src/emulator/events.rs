//! core/v1 Events and events.k8s.io/v1 Events are the same objects on a real cluster (kube-rs'
//! `Recorder` writes the latter, `kubectl get events` reads the former). We store the core/v1
//! form and convert field names on the way in and out.

use serde_json::{Map, Value};

/// (events.k8s.io/v1 field, core/v1 field) pairs that differ only by name.
const RENAMES: [(&str, &str); 7] = [
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

fn rename(obj: &mut Value, api_version: &str, to_core: bool) {
    let Some(m) = obj.as_object_mut() else { return };
    let mut out = Map::new();
    for (k, v) in std::mem::take(m) {
        let renamed = RENAMES
            .iter()
            .find(|(v1, core)| if to_core { k == *v1 } else { k == *core })
            .map(|(v1, core)| if to_core { *core } else { *v1 });
        out.insert(renamed.map_or(k, String::from), v);
    }
    out.insert("apiVersion".into(), Value::String(api_version.into()));
    *m = out;
}

/// events.k8s.io/v1 → core/v1 (storage form).
pub fn to_core(obj: &mut Value) {
    rename(obj, "v1", true);
}

/// core/v1 (storage form) → events.k8s.io/v1.
pub fn to_v1(obj: &mut Value) {
    rename(obj, "events.k8s.io/v1", false);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trip() {
        let v1 = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"},
            "regarding": {"kind": "CatalogImage", "name": "a"}, "note": "verified", "reason": "Verified",
            "reportingController": "catalog-reconciler", "reportingInstance": "pod-1", "type": "Normal",
            "eventTime": "2026-01-04T13:00:00.000000Z", "action": "Verify"});
        let mut core = v1.clone();
        to_core(&mut core);
        assert_eq!(core["apiVersion"], "v1");
        assert_eq!(core["involvedObject"]["name"], "a");
        assert_eq!(core["message"], "verified");
        assert_eq!(core["reportingComponent"], "catalog-reconciler");
        let mut back = core.clone();
        to_v1(&mut back);
        assert_eq!(back, v1);
    }
}
