//! Field ownership (`metadata.managedFields`) and server-side apply.
//!
//! A simplified structured-merge-diff over the flat field sets of [`super::fieldset`]. This is
//! what makes the reconciler's SSA behave as on a cluster: conflicts between managers are 409
//! unless forced, fields a manager stops applying are removed (unless another manager owns
//! them), non-apply writes take ownership of what they change.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

pub use super::fieldset::{FieldSet, Path, Pe, Scope, Tracking};
use super::fieldset::{
    ListType, META_FIELDS, fieldset, is_atomic_map, items, key_of, list_type, meta_schema,
    remove_at, sub_field, value_at,
};
pub use super::fieldset::{decode, encode};

/// One `managedFields` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub manager: String,
    pub operation: String,
    pub api_version: String,
    pub time: String,
    pub subresource: String,
    pub set: FieldSet,
}

/// A field another manager owns with a different value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    pub manager: String,
    pub path: Path,
}
/// Reads `metadata.managedFields`.
pub fn read_entries(obj: &Value) -> Vec<Entry> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map_or_else(Vec::new, |list| entries_of(list))
}

/// The entries of a `managedFields` list.
pub fn entries_of(list: &[Value]) -> Vec<Entry> {
    let s = |e: &Value, k: &str| {
        e.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    list.iter()
        .map(|e| Entry {
            manager: s(e, "manager"),
            operation: s(e, "operation"),
            api_version: s(e, "apiVersion"),
            time: s(e, "time"),
            subresource: s(e, "subresource"),
            set: e.get("fieldsV1").map(decode).unwrap_or_default(),
        })
        .collect()
}

/// Writes `metadata.managedFields` (removing it when there are no entries).
pub fn write_entries(obj: &mut Value, entries: &[Entry]) {
    let list: Vec<Value> = entries
        .iter()
        .map(|e| {
            let mut v = json!({"manager": e.manager, "operation": e.operation, "apiVersion": e.api_version,
                "time": e.time, "fieldsType": "FieldsV1", "fieldsV1": encode(&e.set)});
            if !e.subresource.is_empty() {
                v["subresource"] = json!(e.subresource);
            }
            v
        })
        .collect();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if list.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(list));
        }
    }
}

/// Drops owned paths that no longer exist in `obj`, and entries left empty.
pub fn prune_entries(entries: &mut Vec<Entry>, obj: &Value) {
    for e in entries.iter_mut() {
        e.set.retain(|p| value_at(obj, p).is_some());
    }
    entries.retain(|e| !e.set.is_empty());
}

fn upsert(
    entries: &mut Vec<Entry>,
    manager: &str,
    op: &str,
    api_version: &str,
    sub: &str,
) -> usize {
    match entries
        .iter()
        .position(|e| e.manager == manager && e.operation == op && e.subresource == sub)
    {
        Some(i) => i,
        None => {
            entries.push(Entry {
                manager: manager.into(),
                operation: op.into(),
                api_version: api_version.into(),
                time: String::new(),
                subresource: sub.into(),
                set: FieldSet::new(),
            });
            entries.len() - 1
        }
    }
}

/// Records a non-apply write (create, update, patch): the manager takes ownership of every
/// field it changed, other managers lose those fields.
pub fn record_update(
    entries: &mut Vec<Entry>,
    old: Option<&Value>,
    new: &Value,
    manager: &str,
    api_version: &str,
    t: &Tracking,
    now: &str,
) {
    let changed: FieldSet = fieldset(new, t)
        .into_iter()
        .filter(|p| match old {
            None => true,
            Some(old) => match p.last() {
                Some(Pe::Key(_) | Pe::Value(_)) => value_at(old, p).is_none(),
                _ => value_at(old, p) != value_at(new, p),
            },
        })
        .collect();
    if !changed.is_empty() {
        let sub = t.subresource();
        for e in entries.iter_mut() {
            if !(e.manager == manager && e.operation == "Update" && e.subresource == sub) {
                e.set.retain(|p| !changed.contains(p));
            }
        }
        let i = upsert(entries, manager, "Update", api_version, sub);
        entries[i].set.extend(changed);
        entries[i].time = now.into();
        entries[i].api_version = api_version.into();
    }
    prune_entries(entries, new);
}

fn merge_value(target: &mut Value, applied: &Value, schema: Option<&Value>) {
    match (target, applied) {
        (Value::Object(t), Value::Object(a)) if !is_atomic_map(schema) => {
            for (k, av) in a {
                if av.is_null() {
                    continue;
                }
                let sub = sub_field(schema, k);
                merge_value(t.entry(k.clone()).or_insert(Value::Null), av, sub);
            }
        }
        (Value::Array(t), Value::Array(a)) => match list_type(schema) {
            ListType::Set => {
                for x in a {
                    if !t.contains(x) {
                        t.push(x.clone());
                    }
                }
            }
            ListType::Map(keys) => {
                for x in a {
                    let k = key_of(x, &keys);
                    match t.iter_mut().find(|e| k.is_some() && key_of(e, &keys) == k) {
                        Some(te) => merge_value(te, x, items(schema)),
                        None => t.push(x.clone()),
                    }
                }
            }
            ListType::Atomic => *t = a.clone(),
        },
        (t, a) => *t = a.clone(),
    }
}

fn merge_top(target: &mut Value, applied: &Value, t: &Tracking) {
    let (Some(tm), Some(am)) = (target.as_object_mut(), applied.as_object()) else {
        return;
    };
    for (k, av) in am {
        match k.as_str() {
            "apiVersion" | "kind" => {}
            "metadata" => {
                if t.scope != Scope::Main {
                    continue;
                }
                let meta = tm.entry("metadata").or_insert_with(|| json!({}));
                for mk in META_FIELDS {
                    if let (Some(mv), Some(mm)) = (av.get(mk), meta.as_object_mut()) {
                        merge_value(
                            mm.entry(mk).or_insert(Value::Null),
                            mv,
                            sub_field(Some(meta_schema()), mk),
                        );
                    }
                }
            }
            "status" if t.status_sub => {
                if t.scope == Scope::Status {
                    merge_value(
                        tm.entry(k.clone()).or_insert(Value::Null),
                        av,
                        sub_field(t.schema, k),
                    );
                }
            }
            _ => {
                if t.scope == Scope::Main {
                    merge_value(
                        tm.entry(k.clone()).or_insert(Value::Null),
                        av,
                        sub_field(t.schema, k),
                    );
                }
            }
        }
    }
}

/// Server-side apply of `applied` (the manager's full intent) onto `live` (taken, not copied:
/// callers pass a copy of the stored object already). Returns the merged object and updates
/// `entries`, or the conflicts when another manager owns a field with a different value and
/// `force` is false.
#[allow(clippy::too_many_arguments)]
pub fn apply(
    live: Value,
    applied: &Value,
    entries: &mut Vec<Entry>,
    manager: &str,
    api_version: &str,
    force: bool,
    t: &Tracking,
    now: &str,
) -> Result<Value, Vec<Conflict>> {
    let applied_set = fieldset(applied, t);
    let sub = t.subresource();
    let is_self =
        |e: &Entry| e.manager == manager && e.operation == "Apply" && e.subresource == sub;
    let mut conflicts = Vec::new();
    for e in entries.iter().filter(|e| !is_self(e)) {
        for p in e.set.intersection(&applied_set) {
            if matches!(p.last(), Some(Pe::Key(_) | Pe::Value(_))) {
                continue;
            }
            if value_at(&live, p) != value_at(applied, p) {
                conflicts.push(Conflict {
                    manager: e.manager.clone(),
                    path: p.clone(),
                });
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflicts);
    }
    let lost: FieldSet = conflicts.into_iter().map(|c| c.path).collect();
    for e in entries.iter_mut().filter(|e| !is_self(e)) {
        e.set.retain(|p| !lost.contains(p));
    }
    let mut merged = live;
    merge_top(&mut merged, applied, t);
    let prev = entries
        .iter()
        .find(|e| is_self(e))
        .map(|e| e.set.clone())
        .unwrap_or_default();
    let others: FieldSet = entries
        .iter()
        .filter(|e| !is_self(e))
        .flat_map(|e| e.set.iter().cloned())
        .collect();
    let mut removed: Vec<&Path> = prev
        .iter()
        .filter(|p| !applied_set.contains(*p) && !others.iter().any(|o| o.starts_with(p)))
        .collect();
    // Shallow first: removing a list element removes everything below it.
    removed.sort_by_key(|p| p.len());
    let mut done: Vec<&Path> = Vec::new();
    for p in removed {
        if done.iter().any(|d| p.starts_with(d)) {
            continue;
        }
        remove_at(&mut merged, p);
        done.push(p);
    }
    let i = upsert(entries, manager, "Apply", api_version, sub);
    entries[i].set = applied_set;
    entries[i].time = now.into();
    entries[i].api_version = api_version.into();
    prune_entries(entries, &merged);
    Ok(merged)
}

/// A path as the API server prints it in conflict messages: `.spec.metadata.targets[name="qemu"]`.
pub fn path_string(p: &[Pe]) -> String {
    let mut s = String::new();
    for pe in p {
        match pe {
            Pe::Field(k) => {
                s.push('.');
                s.push_str(k);
            }
            Pe::Key(k) => {
                let parts: Vec<String> = serde_json::from_str::<Map<String, Value>>(k)
                    .map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect())
                    .unwrap_or_default();
                s.push_str(&format!("[{}]", parts.join(",")));
            }
            Pe::Value(v) => s.push_str(&format!("[={v}]")),
            Pe::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// The Status message of a failed apply, worded like the API server's.
pub fn conflict_message(conflicts: &[Conflict]) -> String {
    let n = conflicts.len();
    let body = if n == 1 {
        format!(
            "conflict with \"{}\": {}",
            conflicts[0].manager,
            path_string(&conflicts[0].path)
        )
    } else {
        let mut by: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for c in conflicts {
            by.entry(&c.manager).or_default().push(path_string(&c.path));
        }
        let mut lines = Vec::new();
        for (m, paths) in by {
            lines.push(format!("conflicts with \"{m}\":"));
            lines.extend(paths.into_iter().map(|p| format!("- {p}")));
        }
        lines.join("\n")
    };
    format!(
        "Apply failed with {n} conflict{}: {body}",
        if n == 1 { "" } else { "s" }
    )
}

#[cfg(test)]
#[path = "managed_tests.rs"]
mod tests;
