//! Object-level helpers shared by the writes: conversion between the request's version and
//! the stored form, identity checks against the URL, and the comparisons that decide
//! generation bumps, no-op writes and optimistic-concurrency conflicts.

use serde_json::{Value, json};

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
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.as_object_mut() {
            m.remove("metadata");
            if status_sub {
                m.remove("status");
            }
        }
        v
    };
    strip(old) != strip(new)
}

/// The object without the fields a no-op write would change anyway.
pub(super) fn comparable(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
        if let Some(Value::Array(mf)) = m.get_mut("managedFields") {
            for e in mf {
                if let Some(e) = e.as_object_mut() {
                    e.remove("time");
                }
            }
        }
    }
    v
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
