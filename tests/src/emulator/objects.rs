//! Object-level helpers shared by the writes: conversion between the request's version and
//! the stored form, identity checks against the URL, and the comparisons that decide
//! generation bumps, no-op writes and optimistic-concurrency conflicts.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value, json};

use super::error::{ApiError, ApiResult, Cause};
use super::events;
use super::resources::{Flavor, ResourceDef};

/// Converts an object of the request's version to the stored form.
pub fn to_storage(def: &ResourceDef, mut obj: Value) -> Value {
    if def.flavor == Flavor::EventV1 {
        events::to_core(&mut obj);
    } else if let Some(m) = obj.as_object_mut() {
        m.insert("apiVersion".into(), json!(def.storage_api_version));
        m.insert("kind".into(), json!(def.kind));
    }
    obj
}

/// Converts a stored object to the request's version.
pub fn present(def: &ResourceDef, stored: &Value) -> Value {
    let mut obj = stored.clone();
    if def.flavor == Flavor::EventV1 {
        events::to_v1(&mut obj);
    } else if let Some(m) = obj.as_object_mut() {
        m.insert("apiVersion".into(), json!(def.api_version()));
        m.insert("kind".into(), json!(def.kind));
    }
    obj
}

/// A stored object serialised in the request's version without copying it: the stored map
/// with `apiVersion` and `kind` set, written in the order [`present`]'s result would be (the
/// map's key order). Responses and watch events of every write and read go through it, and
/// copying whole objects only to change two fields was much of the emulator's cost.
/// events.k8s.io/v1 Events, which rename fields, are converted by [`present`] instead.
pub struct Served<'a> {
    pub def: &'a ResourceDef,
    pub stored: &'a Value,
}

impl Served<'_> {
    /// The serialised object (JSON bytes).
    pub fn to_vec(&self) -> Vec<u8> {
        // Most objects fit: no regrowing (and copying) while writing.
        let mut out = Vec::with_capacity(4096);
        if serde_json::to_writer(&mut out, self).is_err() {
            out = b"null".to_vec();
        }
        out
    }
}

impl Serialize for Served<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let m = match self.stored {
            Value::Object(m) if self.def.flavor != Flavor::EventV1 => m,
            _ => return present(self.def, self.stored).serialize(s),
        };
        let api_version = self.def.api_version();
        let set = [
            ("apiVersion", api_version.as_str()),
            ("kind", self.def.kind.as_str()),
        ];
        serialize_with(s, m, &set)
    }
}

/// Serialises `m` with the `set` string fields (sorted by key) inserted or replaced, keys in
/// the map's order, as inserting them into a copy of `m` and serialising that would.
fn serialize_with<S: Serializer>(
    s: S,
    m: &Map<String, Value>,
    set: &[(&str, &str)],
) -> Result<S::Ok, S::Error> {
    let added = set.iter().filter(|(k, _)| !m.contains_key(*k)).count();
    let mut out = s.serialize_map(Some(m.len() + added))?;
    let mut pending = set.iter().peekable();
    for (k, v) in m {
        while let Some((sk, sv)) = pending.next_if(|(sk, _)| *sk <= k.as_str()) {
            out.serialize_entry(sk, sv)?;
            if *sk == k.as_str() {
                break;
            }
        }
        if !set.iter().any(|(sk, _)| *sk == k.as_str()) {
            out.serialize_entry(k, v)?;
        }
    }
    for (sk, sv) in pending {
        out.serialize_entry(sk, sv)?;
    }
    out.end()
}

pub(super) fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?
        .get(field)?
        .as_str()
        .filter(|s| !s.is_empty())
}

pub(super) fn meta_mut(obj: &mut Value) -> ApiResult<&mut serde_json::Map<String, Value>> {
    let m = obj
        .as_object_mut()
        .ok_or_else(|| ApiError::bad_request("the request body must be a JSON object"))?;
    m.entry("metadata")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .ok_or_else(|| ApiError::bad_request("metadata must be an object"))
}

/// Checks apiVersion/kind of a body against the endpoint, and name/namespace against the URL.
pub(super) fn check_identity(
    def: &ResourceDef,
    obj: &mut Value,
    ns: Option<&str>,
    name: Option<&str>,
) -> ApiResult<()> {
    if let Some(av) = obj.get("apiVersion").and_then(Value::as_str)
        && av != def.api_version()
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({av}) does not match the expected API version ({})",
            def.api_version()
        )));
    }
    if let Some(k) = obj.get("kind").and_then(Value::as_str)
        && k != def.kind
    {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({k}) does not match the expected kind ({})",
            def.kind
        )));
    }
    if let Some(want) = name
        && let Some(got) = meta_str(obj, "name")
        && got != want
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({got}) does not match the name on the URL ({want})"
        )));
    }
    if def.namespaced {
        let ns = ns.ok_or_else(ApiError::method_not_allowed)?;
        if let Some(got) = meta_str(obj, "namespace")
            && got != ns
        {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        meta_mut(obj)?.insert("namespace".into(), json!(ns));
    } else {
        meta_mut(obj)?.remove("namespace");
    }
    if let Some(n) = name {
        meta_mut(obj)?.insert("name".into(), json!(n));
    }
    Ok(())
}

/// Whether anything besides metadata (and status, when it is a subresource) differs.
pub(super) fn spec_changed(old: &Value, new: &Value, status_sub: bool) -> bool {
    let skip = |k: &str| k == "metadata" || (status_sub && k == "status");
    match (old.as_object(), new.as_object()) {
        (Some(o), Some(n)) => !equal_except(o, n, skip),
        _ => old != new,
    }
}

/// Whether a write leaves the object as it was apart from what any write changes: the
/// resourceVersion and the `time` of managedFields entries (a no-op write). Compares in place.
pub(super) fn same_but_versions(old: &Value, new: &Value) -> bool {
    let (Some(o), Some(n)) = (old.as_object(), new.as_object()) else {
        return old == new;
    };
    if !equal_except(o, n, |k| k == "metadata") {
        return false;
    }
    let (om, nm) = (o.get("metadata"), n.get("metadata"));
    let (Some(Value::Object(om)), Some(Value::Object(nm))) = (om, nm) else {
        return om == nm;
    };
    let fields = |k: &str| k == "resourceVersion" || k == "managedFields";
    if !equal_except(om, nm, fields) {
        return false;
    }
    match (om.get("managedFields"), nm.get("managedFields")) {
        (Some(Value::Array(a)), Some(Value::Array(b))) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_entry(x, y))
        }
        (a, b) => a == b,
    }
}

/// Two managedFields entries, ignoring their `time`.
fn same_entry(a: &Value, b: &Value) -> bool {
    match (a.as_object(), b.as_object()) {
        (Some(a), Some(b)) => equal_except(a, b, |k| k == "time"),
        _ => a == b,
    }
}

/// Whether two maps hold the same entries apart from the keys `skip` names.
fn equal_except(
    a: &Map<String, Value>,
    b: &Map<String, Value>,
    skip: impl Fn(&str) -> bool,
) -> bool {
    let kept = |m: &Map<String, Value>| m.keys().filter(|k| !skip(k)).count();
    kept(a) == kept(b)
        && a.iter()
            .filter(|(k, _)| !skip(k))
            .all(|(k, v)| b.get(k) == Some(v))
}

/// Makes `new` the stored object `old` with `new`'s status (a write to `/status`). Parts equal
/// to the stored ones are kept rather than copied again: the caller's object is usually a copy
/// of the stored one already.
pub(super) fn only_status(new: &mut Value, old: &Value) {
    let (Some(n), Some(o)) = (new.as_object_mut(), old.as_object()) else {
        let status = new.get("status").cloned();
        *new = old.clone();
        match (status, new.as_object_mut()) {
            (Some(s), _) => new["status"] = s,
            (None, Some(m)) => {
                m.remove("status");
            }
            (None, None) => {}
        }
        return;
    };
    n.retain(|k, _| k == "status" || o.contains_key(k));
    for (k, v) in o {
        if k != "status" && n.get(k) != Some(v) {
            n.insert(k.clone(), v.clone());
        }
    }
}

pub(super) fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn check_rv(
    def: &ResourceDef,
    name: &str,
    old: &Value,
    new: &Value,
    required: bool,
) -> ApiResult<()> {
    match meta_str(new, "resourceVersion") {
        None if required => Err(ApiError::invalid(
            &def.kind,
            &def.group,
            name,
            vec![Cause::new(
                "FieldValueInvalid",
                "metadata.resourceVersion",
                "Invalid value: 0x0: must be specified for an update",
            )],
        )),
        None => Ok(()),
        Some(rv) if Some(rv) != meta_str(old, "resourceVersion") => {
            Err(ApiError::stale(&def.plural, &def.group, name))
        }
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
#[path = "objects_tests.rs"]
mod tests;
