//! Namespace termination, as the API server and the namespace controller do it together:
//!
//! - DELETE of a namespace only marks it: `deletionTimestamp` and `status.phase: Terminating`
//!   (pkg/registry/core/namespace/storage/storage.go, `Delete`); a second DELETE while
//!   `spec.finalizers` is not empty is a 409.
//! - The namespace controller deletes its content, objects with finalizers staying (marked)
//!   until their finalizers are removed, then removes the `kubernetes` finalizer from
//!   `spec.finalizers`, and the namespace goes once it has no finalizers left
//!   (pkg/controller/namespace/deletion/namespaced_resources_deleter.go).
//! - The NamespaceLifecycle admission plugin refuses new content in a terminating namespace
//!   with 403 and a `NamespaceTerminating` cause
//!   (staging/src/k8s.io/apiserver/pkg/admission/plugin/namespace/lifecycle/admission.go).
//!
//! The real controller works asynchronously; here it runs inside the write that made progress
//! possible (the DELETE, or the removal of the last content), one of the orders it can produce.

use std::sync::Arc;

use serde_json::{Value, json};

use super::delete;
use super::error::{ApiError, ApiResult, qualified};
use super::gc;
use super::meta;
use super::resources::{ResourceDef, StorageKey};
use super::store::{Store, obj_key};
use super::write::{Written, meta_mut, meta_str, ok, present, strings};

/// The finalizer every namespace gets on create (pkg/registry/core/namespace/strategy.go).
pub const FINALIZER: &str = "kubernetes";

fn storage() -> StorageKey {
    (String::new(), "namespaces".into())
}

fn get(st: &Store, ns: &str) -> Option<Arc<Value>> {
    st.get(&storage(), &obj_key(None, ns))
}

fn terminating(ns: &Value) -> bool {
    ns.pointer("/status/phase").and_then(Value::as_str) == Some("Terminating")
}

/// NamespaceLifecycle on create: 404 for a missing namespace, 403 for a terminating one.
/// `name` is the object's name, or its generateName before one is generated.
pub fn admit_create(st: &Store, def: &ResourceDef, ns: Option<&str>, name: &str) -> ApiResult<()> {
    let Some(ns) = ns.filter(|_| def.namespaced) else {
        return Ok(());
    };
    let Some(namespace) = get(st, ns) else {
        return Err(ApiError::not_found("namespaces", "", ns));
    };
    if !terminating(&namespace) {
        return Ok(());
    }
    let cause = json!({"reason": "NamespaceTerminating", "field": "metadata.namespace",
        "message": format!("namespace {ns} is being terminated")});
    Err(ApiError::new(
        403,
        "Forbidden",
        format!(
            "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
            qualified(&def.plural, &def.group)
        ),
    )
    .with_details(
        json!({"name": name, "group": def.group, "kind": def.plural, "causes": [cause]}),
    ))
}

/// DELETE of a namespace: starts termination, or refuses while it is under way.
pub fn delete(st: &mut Store, def: &ResourceDef, old: &Value, dry_run: bool) -> ApiResult<Written> {
    let name = meta_str(old, "name").unwrap_or_default().to_string();
    if old.pointer("/metadata/deletionTimestamp").is_some() {
        if !strings(old.pointer("/spec/finalizers")).is_empty() {
            return Err(ApiError::conflict(
                "namespaces",
                "",
                &name,
                "The system is ensuring all content is removed from this namespace.  Upon completion, this namespace will automatically be purged by the system.",
            ));
        }
        return ok(200, present(def, old), Vec::new());
    }
    let mut obj = old.clone();
    meta_mut(&mut obj)?.insert("deletionTimestamp".into(), json!(meta::now()));
    obj["status"]["phase"] = json!("Terminating");
    if dry_run {
        return ok(200, present(def, &obj), Vec::new());
    }
    let marked = st.put(&storage(), obj_key(None, &name), obj);
    delete_content(st, &name);
    finalize_terminating(st);
    ok(200, present(def, &marked), Vec::new())
}

/// One served definition per namespaced storage (both Event APIs share one).
fn namespaced_defs(st: &Store) -> Vec<Arc<ResourceDef>> {
    let mut defs: Vec<Arc<ResourceDef>> = st.defs().into_iter().filter(|d| d.namespaced).collect();
    defs.sort_by(|a, b| a.storage.cmp(&b.storage));
    defs.dedup_by(|a, b| a.storage == b.storage);
    defs
}

/// Deletes every object of `ns` as a DELETE would: finalizers hold objects (marked).
fn delete_content(st: &mut Store, ns: &str) {
    for def in namespaced_defs(st) {
        let names: Vec<String> = st
            .objects(&def.storage)
            .into_keys()
            .filter(|k| k.0 == ns)
            .map(|k| k.1)
            .collect();
        for name in names {
            // Already gone (garbage-collected with an owner): nothing to do.
            let _ = delete::delete(st, &def, Some(ns), &name, None, false);
        }
    }
}

fn has_content(st: &Store, ns: &str) -> bool {
    namespaced_defs(st)
        .iter()
        .any(|d| st.iter(&d.storage).any(|(k, _)| k.0 == ns))
}

/// Finishes every terminating namespace left without content: drops the `kubernetes`
/// finalizer, and the namespace itself once no finalizer remains. Runs after every removal.
pub fn finalize_terminating(st: &mut Store) {
    let doomed: Vec<Arc<Value>> = st
        .iter(&storage())
        .map(|(_, o)| o.clone())
        .filter(|o| o.pointer("/metadata/deletionTimestamp").is_some())
        .collect();
    for ns in doomed {
        let name = meta_str(&ns, "name").unwrap_or_default().to_string();
        if has_content(st, &name) {
            report_remaining(st, &ns, &name);
            continue;
        }
        let mut obj = (*ns).clone();
        let mut finalizers = strings(ns.pointer("/spec/finalizers"));
        finalizers.retain(|f| f != FINALIZER);
        obj["spec"]["finalizers"] = json!(finalizers);
        let key = obj_key(None, &name);
        if finalizers.is_empty() && strings(ns.pointer("/metadata/finalizers")).is_empty() {
            st.remove(&storage(), &key, obj);
            if let Some(uid) = meta_str(&ns, "uid") {
                gc::collect(st, uid, false);
            }
        } else if obj != *ns {
            st.put(&storage(), key, obj);
        }
    }
}

/// What is left in `ns`: "resource.group has N resource instances" and "finalizer in N
/// resource instances", sorted, as the controller's conditions word them.
fn remaining(st: &Store, ns: &str) -> (Vec<String>, Vec<String>) {
    let mut resources = Vec::new();
    let mut finalizers = std::collections::BTreeMap::<String, usize>::new();
    for def in namespaced_defs(st) {
        let objs: Vec<&Arc<Value>> = st
            .iter(&def.storage)
            .filter(|(k, _)| k.0 == ns)
            .map(|(_, o)| o)
            .collect();
        if !objs.is_empty() {
            let (plural, group) = (&def.storage.1, &def.group);
            resources.push(format!(
                "{plural}.{group} has {} resource instances",
                objs.len()
            ));
        }
        for f in objs
            .iter()
            .flat_map(|o| strings(o.pointer("/metadata/finalizers")))
        {
            *finalizers.entry(f).or_default() += 1;
        }
    }
    resources.sort();
    let finalizers = finalizers
        .into_iter()
        .map(|(f, n)| format!("{f} in {n} resource instances"))
        .collect();
    (resources, finalizers)
}

/// The namespace controller's status conditions while content remains
/// (pkg/controller/namespace/deletion/status_condition_utils.go); a condition keeps its
/// `lastTransitionTime` while its status does not change.
fn report_remaining(st: &mut Store, ns: &Value, name: &str) {
    let (resources, finalizers) = remaining(st, name);
    let ok = |t: &str, reason: &str, message: &str| {
        (
            t.to_string(),
            "False",
            reason.to_string(),
            message.to_string(),
        )
    };
    let mut wanted = vec![
        ok(
            "NamespaceDeletionDiscoveryFailure",
            "ResourcesDiscovered",
            "All resources successfully discovered",
        ),
        ok(
            "NamespaceDeletionGroupVersionParsingFailure",
            "ParsedGroupVersions",
            "All legacy kube types successfully parsed",
        ),
        ok(
            "NamespaceDeletionContentFailure",
            "ContentDeleted",
            "All content successfully deleted, may be waiting on finalization",
        ),
        (
            "NamespaceContentRemaining".into(),
            "True",
            "SomeResourcesRemain".into(),
            format!("Some resources are remaining: {}", resources.join(", ")),
        ),
        ok(
            "NamespaceFinalizersRemaining",
            "ContentRemoved",
            "All content successfully removed",
        ),
    ];
    if !finalizers.is_empty() {
        wanted[4] = (
            "NamespaceFinalizersRemaining".into(),
            "True",
            "SomeFinalizerRemain".into(),
            format!("Some finalizers are remaining: {}", finalizers.join(", ")),
        );
    }
    let old = ns
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let conditions: Vec<Value> = wanted
        .into_iter()
        .map(|(t, status, reason, message)| {
            let since = old
                .iter()
                .find(|c| c["type"] == t.as_str() && c["status"] == status)
                .and_then(|c| c.get("lastTransitionTime").cloned())
                .unwrap_or_else(|| json!(meta::now()));
            json!({"type": t, "status": status, "lastTransitionTime": since, "reason": reason, "message": message})
        })
        .collect();
    if old != conditions {
        let mut obj = ns.clone();
        obj["status"]["conditions"] = json!(conditions);
        st.put(&storage(), obj_key(None, name), obj);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::write::{self, Validation, WriteOpts};

    fn opts() -> WriteOpts {
        WriteOpts {
            manager: "test".into(),
            manager_given: true,
            validation: Validation::Strict,
            dry_run: false,
            force: false,
        }
    }

    fn create(st: &mut Store, plural: &str, ns: Option<&str>, obj: Value) -> ApiResult<Written> {
        let def = st.def("", "v1", plural).expect("served");
        write::create(st, &def, ns, obj, &opts())
    }

    #[test]
    fn termination_waits_for_finalizers_and_refuses_new_content() {
        let mut st = Store::new(100);
        let ns_def = st.def("", "v1", "namespaces").expect("served");
        create(
            &mut st,
            "namespaces",
            None,
            json!({"metadata": {"name": "t"}}),
        )
        .expect("ns");
        let held = json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}});
        create(&mut st, "configmaps", Some("t"), held).expect("held");
        create(
            &mut st,
            "configmaps",
            Some("t"),
            json!({"metadata": {"name": "free"}}),
        )
        .expect("free");
        let old = get(&st, "t").expect("ns");
        delete(&mut st, &ns_def, &old, false).expect("terminating");
        let ns = get(&st, "t").expect("still there");
        assert!(terminating(&ns));
        assert_eq!(strings(ns.pointer("/spec/finalizers")), [FINALIZER]);
        let cms = (String::new(), "configmaps".to_string());
        assert!(st.get(&cms, &obj_key(Some("t"), "free")).is_none());
        let e = create(
            &mut st,
            "configmaps",
            Some("t"),
            json!({"metadata": {"generateName": "late-"}}),
        )
        .err()
        .expect("refused");
        assert_eq!(e.code, 403);
        assert!(
            e.message.starts_with("configmaps \"late-\" is forbidden"),
            "{}",
            e.message
        );
        let again = get(&st, "t").expect("ns");
        assert_eq!(
            delete(&mut st, &ns_def, &again, false)
                .err()
                .map(|e| e.code),
            Some(409)
        );
        let cm_def = st.def("", "v1", "configmaps").expect("served");
        let held = st.get(&cms, &obj_key(Some("t"), "held")).expect("held");
        let mut released = (*held).clone();
        released["metadata"]["finalizers"] = json!([]);
        write::update(
            &mut st,
            &cm_def,
            Some("t"),
            "held",
            crate::emulator::managed::Scope::Main,
            released,
            &opts(),
        )
        .expect("finalizer removed");
        assert!(
            get(&st, "t").is_none(),
            "an empty terminating namespace is removed"
        );
    }
}
