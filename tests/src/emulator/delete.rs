//! DELETE: finalizers hold an object (marked with `deletionTimestamp`) until they are gone;
//! deleting a Namespace terminates it (namespaces.rs), deleting a CRD removes its custom
//! resources; owners' dependents are garbage-collected.

use serde_json::{Value, json};

use super::error::{ApiError, ApiResult};
use super::gc;
use super::meta;
use super::namespaces;
use super::resources::{Flavor, ResourceDef};
use super::store::{Store, obj_key};
use super::write::{Written, meta_mut, meta_str, ok, served, strings};

/// DELETE of one object: marks it for deletion while finalizers remain, removes it otherwise.
pub fn delete(
    st: &mut Store,
    def: &ResourceDef,
    ns: Option<&str>,
    name: &str,
    options: Option<&Value>,
    dry_run: bool,
) -> ApiResult<Written> {
    let key = obj_key(ns.filter(|_| def.namespaced), name);
    let old = st
        .get(&def.storage, &key)
        .ok_or_else(|| ApiError::not_found(&def.plural, &def.group, name))?;
    if let Some(pre) = options.and_then(|o| o.get("preconditions")) {
        for (field, label) in [("uid", "UID"), ("resourceVersion", "ResourceVersion")] {
            if let Some(want) = pre.get(field).and_then(Value::as_str)
                && Some(want) != meta_str(&old, field)
            {
                return Err(ApiError::conflict(
                    &def.plural,
                    &def.group,
                    name,
                    &format!(
                        "Precondition failed: {label} in precondition: {want}, {label} in object meta: {}",
                        meta_str(&old, field).unwrap_or_default()
                    ),
                ));
            }
        }
    }
    if def.flavor == Flavor::Namespace && ["default", "kube-system", "kube-public"].contains(&name)
    {
        return Err(ApiError::new(
            403,
            "Forbidden",
            format!("namespaces \"{name}\" is forbidden: this namespace may not be deleted"),
        ));
    }
    if def.flavor == Flavor::Namespace {
        return namespaces::delete(st, def, &old, dry_run);
    }
    let mut obj = (*old).clone();
    let finalizers = strings(old.pointer("/metadata/finalizers"));
    if !finalizers.is_empty() {
        if old.pointer("/metadata/deletionTimestamp").is_some() || dry_run {
            return served(200, old, Vec::new());
        }
        let m = meta_mut(&mut obj)?;
        m.insert("deletionTimestamp".into(), json!(meta::now()));
        m.insert("deletionGracePeriodSeconds".into(), json!(0));
        if def.has_generation() {
            let g = m.get("generation").and_then(Value::as_i64).unwrap_or(1);
            m.insert("generation".into(), json!(g + 1));
        }
        let stored = st.put(&def.storage, key, obj);
        return served(200, stored, Vec::new());
    }
    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
        "details": {"name": name, "group": def.group, "kind": def.plural, "uid": meta_str(&old, "uid")}});
    if dry_run {
        return ok(200, status, Vec::new());
    }
    if def.flavor == Flavor::Crd {
        let group = old
            .pointer("/spec/group")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let plural = old
            .pointer("/spec/names/plural")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let storage = (group.to_string(), plural.to_string());
        st.unregister(&storage);
        st.remove_all(&storage);
    }
    let orphan = options.is_some_and(|o| {
        o.get("propagationPolicy").and_then(Value::as_str) == Some("Orphan")
            || o.get("orphanDependents") == Some(&json!(true))
    });
    st.remove(&def.storage, &key, obj);
    if let Some(uid) = meta_str(&old, "uid") {
        gc::collect(st, uid, orphan);
    }
    namespaces::finalize_terminating(st);
    ok(200, status, Vec::new())
}
