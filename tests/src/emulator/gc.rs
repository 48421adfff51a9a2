//! Garbage collection by `ownerReferences`, as the cluster's garbage collector does it:
//! once an owner is gone, dependents whose owners are all gone are deleted (background
//! propagation, the default), or, with `propagationPolicy: Orphan`, keep living without the
//! reference. Dependents with finalizers are only marked for deletion.
//!
//! The real collector is asynchronous; here it runs right after the owner's removal, in the
//! same locked write, which is one of the orders the real one can produce.

use std::collections::HashSet;

use serde_json::{Value, json};

use super::meta;
use super::resources::StorageKey;
use super::store::{ObjKey, Store};

fn uid(obj: &Value) -> Option<&str> {
    obj.pointer("/metadata/uid").and_then(Value::as_str)
}

fn owner_uids(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|refs| {
            refs.iter()
                .filter_map(|r| r["uid"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn storages(st: &Store) -> Vec<StorageKey> {
    let mut keys: Vec<StorageKey> = st.defs().iter().map(|d| d.storage.clone()).collect();
    keys.sort();
    keys.dedup();
    keys
}

/// Objects that name `owner` among their owners.
fn dependents(st: &Store, owner: &str) -> Vec<(StorageKey, ObjKey, Value)> {
    let mut out = Vec::new();
    for s in storages(st) {
        for (k, o) in st.iter(&s) {
            if owner_uids(o).iter().any(|u| u == owner) {
                out.push((s.clone(), k.clone(), (**o).clone()));
            }
        }
    }
    out
}

fn live_uids(st: &Store) -> HashSet<String> {
    storages(st)
        .iter()
        .flat_map(|s| st.iter(s))
        .filter_map(|(_, o)| uid(o).map(String::from))
        .collect()
}

/// Runs after the object with `owner_uid` was removed from the store.
pub fn collect(st: &mut Store, owner_uid: &str, orphan: bool) {
    let deps = dependents(st, owner_uid);
    if deps.is_empty() {
        return;
    }
    if orphan {
        for (s, k, mut o) in deps {
            if let Some(refs) = o
                .pointer_mut("/metadata/ownerReferences")
                .and_then(Value::as_array_mut)
            {
                refs.retain(|r| r["uid"].as_str() != Some(owner_uid));
            }
            st.put(&s, k, o);
        }
        return;
    }
    let live = live_uids(st);
    for (s, k, mut o) in deps {
        if owner_uids(&o).iter().any(|u| live.contains(u)) {
            continue;
        }
        let has_finalizers = o
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        if has_finalizers {
            if o.pointer("/metadata/deletionTimestamp").is_none() {
                if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.insert("deletionTimestamp".into(), json!(meta::now()));
                    m.insert("deletionGracePeriodSeconds".into(), json!(0));
                }
                st.put(&s, k, o);
            }
            continue;
        }
        let dep_uid = uid(&o).map(String::from);
        st.remove(&s, &k, o);
        if let Some(u) = dep_uid {
            collect(st, &u, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::store::obj_key;

    fn cm(name: &str, uid: &str, owners: &[&str], finalizers: &[&str]) -> Value {
        let refs: Vec<Value> = owners
            .iter()
            .map(|u| json!({"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": u}))
            .collect();
        json!({"metadata": {"namespace": "default", "name": name, "uid": uid, "ownerReferences": refs, "finalizers": finalizers}})
    }

    #[test]
    fn cascades_orphans_and_respects_other_owners_and_finalizers() {
        let mut st = Store::new(100);
        let key: StorageKey = (String::new(), "configmaps".into());
        for (name, uid, owners, fins) in [
            ("owner", "u0", vec![], vec![]),
            ("child", "u1", vec!["u0"], vec![]),
            ("grandchild", "u2", vec!["u1"], vec![]),
            ("shared", "u3", vec!["u0", "u9"], vec![]),
            ("held", "u4", vec!["u0"], vec!["example.com/hold"]),
            ("other-owner", "u9", vec![], vec![]),
        ] {
            st.put(
                &key,
                obj_key(Some("default"), name),
                cm(name, uid, &owners, &fins),
            );
        }
        let owner = st
            .get(&key, &obj_key(Some("default"), "owner"))
            .expect("owner");
        st.remove(&key, &obj_key(Some("default"), "owner"), (*owner).clone());
        collect(&mut st, "u0", false);
        let names: Vec<String> = st.objects(&key).keys().map(|k| k.1.clone()).collect();
        assert_eq!(names, ["held", "other-owner", "shared"]);
        let held = st
            .get(&key, &obj_key(Some("default"), "held"))
            .expect("held");
        assert!(held.pointer("/metadata/deletionTimestamp").is_some());

        let other = st
            .get(&key, &obj_key(Some("default"), "other-owner"))
            .expect("other");
        st.remove(
            &key,
            &obj_key(Some("default"), "other-owner"),
            (*other).clone(),
        );
        collect(&mut st, "u9", true);
        let shared = st
            .get(&key, &obj_key(Some("default"), "shared"))
            .expect("orphaned, kept");
        assert_eq!(
            shared.pointer("/metadata/ownerReferences"),
            Some(&json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "u0"}]))
        );
    }
}
