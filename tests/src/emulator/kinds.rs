//! Kind-specific behaviour of the built-in resources, applied on every write before
//! validation: Secret `stringData` and immutability, Namespace defaults, Event rules
//! (event_rules.rs), and CRDs (validated, given an `Established` status, and turned into
//! served resources).

use base64::Engine;
use serde_json::{Value, json};

use super::error::Cause;
use super::meta;
use super::resources::{Flavor, ResourceDef, defs_from_crd};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Normalises `new` for its kind; `old` is the stored object on updates. Returns the served
/// resources a CRD write defines (registered by the caller once the write commits).
pub fn normalize(
    def: &ResourceDef,
    old: Option<&Value>,
    new: &mut Value,
    causes: &mut Vec<Cause>,
) -> Option<Vec<ResourceDef>> {
    match def.flavor {
        Flavor::Secret => {
            secret(old, new, causes);
            None
        }
        Flavor::Namespace => {
            namespace(old, new, causes);
            None
        }
        Flavor::Crd => crd(new, causes),
        Flavor::Event | Flavor::EventV1 => {
            super::event_rules::validate(def.flavor == Flavor::EventV1, old, new, causes);
            None
        }
        _ => None,
    }
}

fn secret(old: Option<&Value>, new: &mut Value, causes: &mut Vec<Cause>) {
    let Some(m) = new.as_object_mut() else { return };
    if let Some(Value::Object(sd)) = m.remove("stringData") {
        let data = m.entry("data").or_insert_with(|| json!({}));
        if let Some(d) = data.as_object_mut() {
            for (k, v) in sd {
                let raw = v
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string());
                d.insert(k, json!(B64.encode(raw)));
            }
        }
    }
    m.entry("type").or_insert_with(|| json!("Opaque"));
    if let Some(d) = m.get("data").and_then(Value::as_object) {
        for (k, v) in d {
            if v.as_str().is_none_or(|s| B64.decode(s).is_err()) {
                causes.push(Cause::new(
                    "FieldValueInvalid",
                    format!("data[{k}]"),
                    "Invalid value: illegal base64 data",
                ));
            }
        }
    }
    let ty = m
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let key = match ty.as_str() {
        "kubernetes.io/dockerconfigjson" => Some(".dockerconfigjson"),
        "kubernetes.io/dockercfg" => Some(".dockercfg"),
        _ => None,
    };
    if let Some(key) = key {
        let content = m
            .get("data")
            .and_then(|d| d.get(key))
            .and_then(Value::as_str);
        match content.and_then(|c| B64.decode(c).ok()) {
            None => causes.push(Cause::new(
                "FieldValueRequired",
                format!("data[{key}]"),
                "Required value",
            )),
            Some(bytes) if serde_json::from_slice::<Value>(&bytes).is_err() => {
                causes.push(Cause::new(
                    "FieldValueInvalid",
                    format!("data[{key}]"),
                    "Invalid value: \"<secret contents redacted>\": invalid JSON",
                ))
            }
            Some(_) => {}
        }
    }
    if let Some(old) = old {
        if old.get("type") != m.get("type") {
            causes.push(Cause::new(
                "FieldValueInvalid",
                "type",
                format!(
                    "Invalid value: {}: field is immutable",
                    m.get("type").cloned().unwrap_or(Value::Null)
                ),
            ));
        }
        if old.get("immutable") == Some(&json!(true))
            && (old.get("data") != m.get("data") || m.get("immutable") != Some(&json!(true)))
        {
            causes.push(Cause::new(
                "FieldValueForbidden",
                "data",
                "Forbidden: field is immutable when `immutable` is set",
            ));
        }
    }
}

fn namespace(old: Option<&Value>, new: &mut Value, causes: &mut Vec<Cause>) {
    let name = new
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if let Some(e) = meta::dns_label_error(&name) {
        causes.push(Cause::new(
            "FieldValueInvalid",
            "metadata.name",
            format!("Invalid value: {name:?}: {e}"),
        ));
    }
    let Some(m) = new.as_object_mut() else { return };
    if let Some(meta) = m.get_mut("metadata").and_then(Value::as_object_mut) {
        let labels = meta.entry("labels").or_insert_with(|| json!({}));
        if let Some(l) = labels.as_object_mut() {
            l.insert("kubernetes.io/metadata.name".into(), json!(name));
        }
    }
    // On create the `kubernetes` finalizer is added; on update `spec.finalizers` is kept
    // (only the namespace controller changes it): pkg/registry/core/namespace/strategy.go.
    let spec = m.entry("spec").or_insert_with(|| json!({}));
    if let Some(s) = spec.as_object_mut() {
        let finalizers = match old {
            Some(o) => o.pointer("/spec/finalizers").cloned(),
            None => {
                let mut f = super::objects::strings(s.get("finalizers"));
                if !f.iter().any(|x| x == "kubernetes") {
                    f.push("kubernetes".into());
                }
                Some(json!(f))
            }
        };
        match finalizers {
            Some(f) => s.insert("finalizers".into(), f),
            None => s.remove("finalizers"),
        };
    }
    if old.is_none() || m.get("status").is_none() {
        m.insert("status".into(), json!({"phase": "Active"}));
    }
}

fn crd(new: &mut Value, causes: &mut Vec<Cause>) -> Option<Vec<ResourceDef>> {
    let defs = match defs_from_crd(new) {
        Ok(d) => d,
        Err(c) => {
            causes.extend(c);
            return None;
        }
    };
    let now = meta::now();
    let names = new
        .pointer("/spec/names")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let mut accepted = names.clone();
    if let (Some(a), Some(first)) = (accepted.as_object_mut(), defs.first()) {
        a.entry("singular").or_insert_with(|| json!(first.singular));
        a.entry("listKind")
            .or_insert_with(|| json!(first.list_kind));
    }
    let storage: Vec<Value> = new
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter(|v| v["storage"] == json!(true))
                .map(|v| v["name"].clone())
                .collect()
        })
        .unwrap_or_default();
    let mut stored = new
        .pointer("/status/storedVersions")
        .cloned()
        .unwrap_or_else(|| json!([]));
    if let Some(list) = stored.as_array_mut() {
        for s in storage {
            if !list.contains(&s) {
                list.push(s);
            }
        }
    }
    let cond = |t: &str, reason: &str, msg: &str| json!({"type": t, "status": "True", "lastTransitionTime": now, "reason": reason, "message": msg});
    new["status"] = json!({
        "acceptedNames": accepted,
        "conditions": [
            cond("NamesAccepted", "NoConflicts", "no conflicts found"),
            cond("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        ],
        "storedVersions": stored,
    });
    Some(defs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::resources::builtin_defs;

    fn def(flavor: Flavor) -> ResourceDef {
        builtin_defs()
            .into_iter()
            .find(|d| d.flavor == flavor)
            .expect("builtin")
    }

    #[test]
    fn secret_string_data_and_immutability() {
        let d = def(Flavor::Secret);
        let mut s = json!({"metadata": {"name": "s"}, "stringData": {"password": "hunter2"}});
        let mut causes = Vec::new();
        normalize(&d, None, &mut s, &mut causes);
        assert!(causes.is_empty());
        assert_eq!(s["data"]["password"], "aHVudGVyMg==");
        assert_eq!(s["type"], "Opaque");
        let mut changed = s.clone();
        changed["type"] = json!("kubernetes.io/dockerconfigjson");
        normalize(&d, Some(&s), &mut changed, &mut causes);
        let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["data[.dockerconfigjson]", "type"]);
    }

    #[test]
    fn namespace_defaults() {
        let d = def(Flavor::Namespace);
        let mut ns = json!({"metadata": {"name": "team-a"}});
        let mut causes = Vec::new();
        normalize(&d, None, &mut ns, &mut causes);
        assert_eq!(
            ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
            "team-a"
        );
        assert_eq!(ns["status"]["phase"], "Active");
        let mut bad = json!({"metadata": {"name": "a.b"}});
        normalize(&d, None, &mut bad, &mut causes);
        assert_eq!(causes[0].field, "metadata.name");
    }
}
