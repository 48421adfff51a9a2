//! Field ownership (`metadata.managedFields`, `FieldsV1`) and server-side apply.
//!
//! A simplified structured-merge-diff: field sets are flat sets of paths; lists are atomic
//! unless the schema says `x-kubernetes-list-type: set|map` (plus `metadata.finalizers` as a
//! set and `metadata.ownerReferences` keyed by uid, as in ObjectMeta). This is what makes the
//! reconciler's SSA behave as on a cluster: conflicts between managers are 409 unless forced,
//! fields a manager stops applying are removed, non-apply writes take ownership.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use serde_json::{Map, Value, json};

/// One step of a field path.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Pe {
    /// `f:name`
    Field(String),
    /// `k:{"name":"x"}`: list-map element, identified by its key fields (canonical JSON).
    Key(String),
    /// `v:"x"`: set element (canonical JSON).
    Value(String),
    /// `i:0`
    Index(usize),
}

pub type Path = Vec<Pe>;
pub type FieldSet = BTreeSet<Path>;

/// Which part of the object a write may touch (main resource vs `/status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Main,
    Status,
}

/// How to compute field sets for one resource.
#[derive(Clone, Copy, Debug)]
pub struct Tracking<'a> {
    pub schema: Option<&'a Value>,
    pub status_sub: bool,
    pub scope: Scope,
}

impl Tracking<'_> {
    fn subresource(&self) -> &'static str {
        match self.scope {
            Scope::Main => "",
            Scope::Status => "status",
        }
    }
}

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

fn meta_schema() -> &'static Value {
    static S: OnceLock<Value> = OnceLock::new();
    S.get_or_init(|| {
        json!({"type": "object", "properties": {
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
            "finalizers": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
            "ownerReferences": {"type": "array", "items": {"type": "object"},
                "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["uid"]}
        }})
    })
}

const META_FIELDS: [&str; 4] = ["labels", "annotations", "finalizers", "ownerReferences"];

fn sub_field<'a>(schema: Option<&'a Value>, k: &str) -> Option<&'a Value> {
    let s = schema?;
    s.get("properties")
        .and_then(|p| p.get(k))
        .or_else(|| s.get("additionalProperties").filter(|a| a.is_object()))
}

fn items(schema: Option<&Value>) -> Option<&Value> {
    schema?.get("items")
}

fn is_atomic_map(schema: Option<&Value>) -> bool {
    schema
        .and_then(|s| s.get("x-kubernetes-map-type"))
        .and_then(Value::as_str)
        == Some("atomic")
}

enum ListType {
    Atomic,
    Set,
    Map(Vec<String>),
}

fn list_type(schema: Option<&Value>) -> ListType {
    let s = schema
        .and_then(|s| s.get("x-kubernetes-list-type"))
        .and_then(Value::as_str);
    match s {
        Some("set") => ListType::Set,
        Some("map") => {
            let keys = schema
                .and_then(|s| s.get("x-kubernetes-list-map-keys"))
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default();
            ListType::Map(keys)
        }
        _ => ListType::Atomic,
    }
}

/// Canonical key of a list-map element, or None if it has none of the key fields.
fn key_of(item: &Value, keys: &[String]) -> Option<String> {
    let obj = item.as_object()?;
    let mut k = Map::new();
    for name in keys {
        if let Some(v) = obj.get(name) {
            k.insert(name.clone(), v.clone());
        }
    }
    (!k.is_empty()).then(|| Value::Object(k).to_string())
}

fn with(path: &Path, pe: Pe) -> Path {
    let mut p = path.clone();
    p.push(pe);
    p
}

fn walk(v: &Value, schema: Option<&Value>, path: Path, out: &mut FieldSet) {
    match v {
        Value::Object(m) if !m.is_empty() && !is_atomic_map(schema) => {
            for (k, cv) in m {
                walk(
                    cv,
                    sub_field(schema, k),
                    with(&path, Pe::Field(k.clone())),
                    out,
                );
            }
        }
        Value::Array(list) if !list.is_empty() => match list_type(schema) {
            ListType::Set => {
                for it in list {
                    out.insert(with(&path, Pe::Value(it.to_string())));
                }
            }
            ListType::Map(keys) => {
                for it in list {
                    let Some(k) = key_of(it, &keys) else {
                        out.insert(path);
                        return;
                    };
                    let p = with(&path, Pe::Key(k));
                    out.insert(p.clone());
                    if let Some(m) = it.as_object() {
                        for (k2, v2) in m {
                            walk(
                                v2,
                                sub_field(items(schema), k2),
                                with(&p, Pe::Field(k2.clone())),
                                out,
                            );
                        }
                    }
                }
            }
            ListType::Atomic => {
                out.insert(path);
            }
        },
        _ => {
            out.insert(path);
        }
    }
}

/// The fields of `obj` that the given scope tracks (apiVersion, kind and identity metadata
/// are never owned).
pub fn fieldset(obj: &Value, t: &Tracking) -> FieldSet {
    let mut out = FieldSet::new();
    let Some(map) = obj.as_object() else {
        return out;
    };
    for (k, v) in map {
        let f = vec![Pe::Field(k.clone())];
        match k.as_str() {
            "apiVersion" | "kind" => {}
            "metadata" => {
                if t.scope == Scope::Main
                    && let Some(m) = v.as_object()
                {
                    for mk in META_FIELDS {
                        if let Some(mv) = m.get(mk) {
                            walk(
                                mv,
                                sub_field(Some(meta_schema()), mk),
                                with(&f, Pe::Field(mk.into())),
                                &mut out,
                            );
                        }
                    }
                }
            }
            "status" if t.status_sub => {
                if t.scope == Scope::Status {
                    walk(v, sub_field(t.schema, k), f, &mut out);
                }
            }
            _ => {
                if t.scope == Scope::Main {
                    walk(v, sub_field(t.schema, k), f, &mut out);
                }
            }
        }
    }
    out
}

fn matches_key(item: &Value, key: &str) -> bool {
    let Ok(Value::Object(k)) = serde_json::from_str::<Value>(key) else {
        return false;
    };
    k.iter().all(|(name, v)| item.get(name) == Some(v))
}

fn step<'a>(cur: &'a Value, pe: &Pe) -> Option<&'a Value> {
    match pe {
        Pe::Field(k) => cur.get(k),
        Pe::Key(k) => cur.as_array()?.iter().find(|it| matches_key(it, k)),
        Pe::Value(v) => {
            let want: Value = serde_json::from_str(v).ok()?;
            cur.as_array()?.iter().find(|it| **it == want)
        }
        Pe::Index(i) => cur.as_array()?.get(*i),
    }
}

/// The value at `path`, if present.
pub fn value_at<'a>(obj: &'a Value, path: &[Pe]) -> Option<&'a Value> {
    path.iter().try_fold(obj, step)
}

fn value_at_mut<'a>(obj: &'a mut Value, path: &[Pe]) -> Option<&'a mut Value> {
    let mut cur = obj;
    for pe in path {
        cur = match pe {
            Pe::Field(k) => cur.get_mut(k)?,
            Pe::Key(k) => cur
                .as_array_mut()?
                .iter_mut()
                .find(|it| matches_key(it, k))?,
            Pe::Value(v) => {
                let want: Value = serde_json::from_str(v).ok()?;
                cur.as_array_mut()?.iter_mut().find(|it| **it == want)?
            }
            Pe::Index(i) => cur.as_array_mut()?.get_mut(*i)?,
        };
    }
    Some(cur)
}

fn remove_at(obj: &mut Value, path: &[Pe]) {
    let Some((last, parent)) = path.split_last() else {
        return;
    };
    let Some(p) = value_at_mut(obj, parent) else {
        return;
    };
    match last {
        Pe::Field(k) => {
            if let Some(m) = p.as_object_mut() {
                m.remove(k);
            }
        }
        Pe::Key(k) => {
            if let Some(a) = p.as_array_mut() {
                a.retain(|it| !matches_key(it, k));
            }
        }
        Pe::Value(v) => {
            if let (Some(a), Ok(want)) = (p.as_array_mut(), serde_json::from_str::<Value>(v)) {
                a.retain(|it| *it != want);
            }
        }
        Pe::Index(i) => {
            if let Some(a) = p.as_array_mut()
                && *i < a.len()
            {
                a.remove(*i);
            }
        }
    }
}

fn encode_pe(pe: &Pe) -> String {
    match pe {
        Pe::Field(k) => format!("f:{k}"),
        Pe::Key(k) => format!("k:{k}"),
        Pe::Value(v) => format!("v:{v}"),
        Pe::Index(i) => format!("i:{i}"),
    }
}

fn decode_pe(s: &str) -> Option<Pe> {
    let (tag, rest) = s.split_at_checked(2)?;
    match tag {
        "f:" => Some(Pe::Field(rest.into())),
        "k:" => Some(Pe::Key(
            serde_json::from_str::<Value>(rest).ok()?.to_string(),
        )),
        "v:" => Some(Pe::Value(
            serde_json::from_str::<Value>(rest).ok()?.to_string(),
        )),
        "i:" => rest.parse().ok().map(Pe::Index),
        _ => None,
    }
}

#[derive(Default)]
struct Node {
    member: bool,
    children: BTreeMap<String, Node>,
}

impl Node {
    fn to_json(&self) -> Value {
        let mut m = Map::new();
        if self.member && !self.children.is_empty() {
            m.insert(".".into(), json!({}));
        }
        for (k, c) in &self.children {
            m.insert(k.clone(), c.to_json());
        }
        Value::Object(m)
    }
}

/// `FieldsV1` JSON of a field set.
pub fn encode(set: &FieldSet) -> Value {
    let mut root = Node::default();
    for p in set {
        let mut n = &mut root;
        for pe in p {
            n = n.children.entry(encode_pe(pe)).or_default();
        }
        n.member = true;
    }
    root.to_json()
}

fn decode_into(v: &Value, prefix: &Path, out: &mut FieldSet) {
    let Some(m) = v.as_object() else { return };
    for (k, child) in m {
        if k == "." {
            out.insert(prefix.clone());
            continue;
        }
        let Some(pe) = decode_pe(k) else { continue };
        let p = with(prefix, pe);
        if child.as_object().is_none_or(Map::is_empty) {
            out.insert(p);
        } else {
            decode_into(child, &p, out);
        }
    }
}

/// Field set of a `FieldsV1` JSON value.
pub fn decode(v: &Value) -> FieldSet {
    let mut out = FieldSet::new();
    decode_into(v, &Vec::new(), &mut out);
    out
}

/// Reads `metadata.managedFields`.
pub fn read_entries(obj: &Value) -> Vec<Entry> {
    let Some(list) = obj
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
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

/// Server-side apply of `applied` (the manager's full intent) onto `live`. Returns the merged
/// object and updates `entries`, or the conflicts when another manager owns a field with a
/// different value and `force` is false.
#[allow(clippy::too_many_arguments)]
pub fn apply(
    live: &Value,
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
            if value_at(live, p) != value_at(applied, p) {
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
    let mut merged = live.clone();
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
