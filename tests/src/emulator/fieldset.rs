//! Field sets: the paths of an object a manager owns, computed with the list semantics of the
//! schema (`x-kubernetes-list-type: atomic|set|map`, atomic by default; ObjectMeta's
//! `finalizers` as a set and `ownerReferences` keyed by uid), and their `FieldsV1` encoding
//! (`f:spec: {f:registryUrl: {}}`, `k:{"name":"qemu"}`, `v:"x"`, `.` for list members).

use std::collections::BTreeSet;
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
    pub(super) fn subresource(&self) -> &'static str {
        match self.scope {
            Scope::Main => "",
            Scope::Status => "status",
        }
    }
}

pub(super) fn meta_schema() -> &'static Value {
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

pub(super) const META_FIELDS: [&str; 4] =
    ["labels", "annotations", "finalizers", "ownerReferences"];

pub(super) fn sub_field<'a>(schema: Option<&'a Value>, k: &str) -> Option<&'a Value> {
    let s = schema?;
    s.get("properties")
        .and_then(|p| p.get(k))
        .or_else(|| s.get("additionalProperties").filter(|a| a.is_object()))
}

pub(super) fn items(schema: Option<&Value>) -> Option<&Value> {
    schema?.get("items")
}

pub(super) fn is_atomic_map(schema: Option<&Value>) -> bool {
    schema
        .and_then(|s| s.get("x-kubernetes-map-type"))
        .and_then(Value::as_str)
        == Some("atomic")
}

pub(super) enum ListType {
    Atomic,
    Set,
    Map(Vec<String>),
}

pub(super) fn list_type(schema: Option<&Value>) -> ListType {
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
pub(super) fn key_of(item: &Value, keys: &[String]) -> Option<String> {
    let obj = item.as_object()?;
    let mut k = Map::new();
    for name in keys {
        if let Some(v) = obj.get(name) {
            k.insert(name.clone(), v.clone());
        }
    }
    (!k.is_empty()).then(|| Value::Object(k).to_string())
}

pub(super) fn with(path: &Path, pe: Pe) -> Path {
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

pub(super) fn remove_at(obj: &mut Value, path: &[Pe]) {
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

/// `FieldsV1` JSON of a field set. The set is sorted, so the paths below one element are
/// consecutive: each element is encoded once, straight into its JSON map.
pub fn encode(set: &FieldSet) -> Value {
    let paths: Vec<&[Pe]> = set.iter().map(Vec::as_slice).collect();
    encode_level(&paths, 0)
}

/// The JSON of the node that `paths` (all sharing their first `depth` elements) lead to: a
/// child per element at `depth`, and `.` when the node itself is in the set besides them.
fn encode_level(paths: &[&[Pe]], depth: usize) -> Value {
    let mut m = Map::new();
    let mut member = false;
    let mut rest = paths;
    while let Some(first) = rest.first() {
        let Some(pe) = first.get(depth) else {
            member = true;
            rest = &rest[1..];
            continue;
        };
        let n = rest.iter().take_while(|p| p.get(depth) == Some(pe)).count();
        m.insert(encode_pe(pe), encode_level(&rest[..n], depth + 1));
        rest = &rest[n..];
    }
    if member && !m.is_empty() {
        m.insert(".".into(), json!({}));
    }
    Value::Object(m)
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
