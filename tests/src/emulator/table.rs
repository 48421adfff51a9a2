//! Server-side printing: `Table` and `PartialObjectMetadata` responses.
//!
//! `kubectl get` asks for `application/json;as=Table;v=v1;g=meta.k8s.io` and prints whatever
//! columns the server sends, so CRD `additionalPrinterColumns` (REGISTRY, ARCHITECTURE, ...)
//! only show up if the server renders them. Columns use the simple JSONPath subset CRDs allow.

use serde::Serialize;
use serde_json::{Value, json};

use super::meta;
use super::resources::{ColumnSource, ResourceDef};

/// What representation the client asked for in `Accept`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Json,
    /// `Table` of the given meta.k8s.io version.
    Table(&'static str),
    /// `PartialObjectMetadata` of the given meta.k8s.io version.
    Metadata(&'static str),
}

/// `includeObject` of Table requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Include {
    None,
    Metadata,
    Object,
}

impl Include {
    pub fn parse(s: Option<&str>) -> Self {
        match s {
            Some("None") => Include::None,
            Some("Object") => Include::Object,
            _ => Include::Metadata,
        }
    }
}

/// Picks the first acceptable representation of the `Accept` header (plain JSON fallback).
pub fn negotiate(accept: &str) -> Output {
    for part in accept.split(',') {
        let params: Vec<&str> = part.split(';').map(str::trim).collect();
        let get = |k: &str| {
            params
                .iter()
                .find_map(|p| p.strip_prefix(k).and_then(|r| r.strip_prefix('=')))
        };
        if get("g") == Some("meta.k8s.io") {
            let v = match get("v") {
                Some("v1") => "meta.k8s.io/v1",
                Some("v1beta1") => "meta.k8s.io/v1beta1",
                _ => continue,
            };
            match get("as") {
                Some("Table") => return Output::Table(v),
                Some("PartialObjectMetadata") | Some("PartialObjectMetadataList") => {
                    return Output::Metadata(v);
                }
                _ => continue,
            }
        } else if params
            .first()
            .is_some_and(|t| *t == "application/json" || *t == "*/*" || t.is_empty())
            && get("as").is_none()
        {
            return Output::Json;
        }
    }
    Output::Json
}

#[derive(Debug, PartialEq)]
enum Seg {
    Field(String),
    Index(i64),
    All,
    Filter(Vec<String>, bool, Value),
}

fn parse_filter(expr: &str) -> Option<Seg> {
    let inner = expr.strip_prefix("?(")?.strip_suffix(')')?.trim();
    let (lhs, eq, rhs) = if let Some((l, r)) = inner.split_once("!=") {
        (l, false, r)
    } else {
        let (l, r) = inner.split_once("==")?;
        (l, true, r)
    };
    let path = lhs.trim().strip_prefix('@')?;
    let fields = path
        .split('.')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    let rhs = rhs.trim();
    let lit = if let Some(s) = rhs.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        json!(s)
    } else if let Some(s) = rhs.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
        json!(s)
    } else {
        serde_json::from_str(rhs).unwrap_or_else(|_| json!(rhs))
    };
    Some(Seg::Filter(fields, eq, lit))
}

/// A field name up to the next unescaped `.` or `[` (`\.` is a literal dot, as in
/// `.metadata.annotations.example\.com/key`), and the byte length consumed.
fn field_name(s: &str) -> (String, usize) {
    let mut name = String::new();
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                if let Some((_, n)) = chars.next() {
                    name.push(n);
                }
            }
            '.' | '[' => return (name, i),
            c => name.push(c),
        }
    }
    (name, s.len())
}

fn parse_path(expr: &str) -> Vec<Seg> {
    let e = expr.trim();
    let e = e
        .strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .unwrap_or(e);
    let e = e.strip_prefix('$').unwrap_or(e);
    let mut segs = Vec::new();
    let mut rest = e;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let (name, end) = field_name(r);
            if name == "*" {
                segs.push(Seg::All);
            } else if !name.is_empty() {
                segs.push(Seg::Field(name));
            }
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let Some(end) = r.find(']') else { break };
            let inner = r[..end].trim();
            if inner == "*" {
                segs.push(Seg::All);
            } else if let Some(f) = parse_filter(inner) {
                segs.push(f);
            } else if let Ok(i) = inner.parse::<i64>() {
                segs.push(Seg::Index(i));
            } else {
                segs.push(Seg::Field(
                    inner.trim_matches(|c| c == '\'' || c == '"').to_string(),
                ));
            }
            rest = &r[end + 1..];
        } else {
            let (name, end) = field_name(rest);
            segs.push(Seg::Field(name));
            rest = &rest[end..];
        }
    }
    segs
}

/// Evaluates a simple JSONPath expression, returning every match. The matches borrow from
/// `obj`: a Table row of a large object costs its cells, not a copy of the object per column.
pub fn jsonpath<'a>(obj: &'a Value, expr: &str) -> Vec<&'a Value> {
    let mut cur = vec![obj];
    for seg in parse_path(expr) {
        let mut next = Vec::new();
        for v in cur {
            step(&seg, v, &mut next);
        }
        cur = next;
    }
    cur
}

/// One path segment applied to one value.
fn step<'a>(seg: &Seg, v: &'a Value, next: &mut Vec<&'a Value>) {
    match seg {
        Seg::Field(k) => next.extend(v.get(k)),
        Seg::Index(i) => {
            if let Some(a) = v.as_array() {
                let idx = if *i < 0 { a.len() as i64 + i } else { *i };
                next.extend(usize::try_from(idx).ok().and_then(|i| a.get(i)));
            }
        }
        Seg::All => match v {
            Value::Array(a) => next.extend(a),
            Value::Object(m) => next.extend(m.values()),
            _ => {}
        },
        Seg::Filter(fields, eq, lit) => {
            for item in v.as_array().into_iter().flatten() {
                let got = fields.iter().try_fold(item, |c, f| c.get(f));
                if (got == Some(lit)) == *eq {
                    next.push(item);
                }
            }
        }
    }
}

fn cell(type_: &str, v: Option<&Value>) -> Value {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Value::Null;
    };
    match type_ {
        "date" => json!(meta::age(v.as_str())),
        "integer" => v.as_i64().map_or(Value::Null, |i| json!(i)),
        "number" => v.as_f64().map_or(Value::Null, |f| json!(f)),
        "boolean" => v.as_bool().map_or(Value::Null, |b| json!(b)),
        _ => match v {
            Value::String(s) => json!(s),
            other => json!(other.to_string()),
        },
    }
}

/// The `columnDefinitions` of a resource: Name, then its printer columns.
pub fn column_definitions(def: &ResourceDef) -> Value {
    let mut cols = vec![
        json!({"name": "Name", "type": "string", "format": "name", "priority": 0,
        "description": "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"}),
    ];
    for c in &def.printer_columns {
        cols.push(json!({"name": c.name, "type": c.type_, "format": c.format, "description": c.description, "priority": c.priority}));
    }
    Value::Array(cols)
}

/// `PartialObjectMetadata` of an object.
pub fn partial(obj: &Value, api_version: &str) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": api_version,
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({}))})
}

/// A Table as written: rows borrow their objects (a list page's Table costs its cells, not a
/// copy of every object's metadata). Keys in the order serde_json sorts a `Value`'s.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TableOut<'a> {
    api_version: &'a str,
    column_definitions: Value,
    kind: &'static str,
    metadata: Value,
    rows: Vec<RowOut<'a>>,
}

#[derive(Serialize)]
struct RowOut<'a> {
    cells: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    object: Option<ObjectOut<'a>>,
}

/// `includeObject=Metadata`: a PartialObjectMetadata of the object's metadata; `Object`: the
/// object itself.
#[derive(Serialize)]
#[serde(untagged)]
enum ObjectOut<'a> {
    Partial {
        #[serde(rename = "apiVersion")]
        api_version: &'a str,
        kind: &'static str,
        metadata: &'a Value,
    },
    Whole(&'a Value),
}

static EMPTY_METADATA: std::sync::LazyLock<Value> = std::sync::LazyLock::new(|| json!({}));

/// One Table row of an object (already in the request's version).
fn row<'a>(
    def: &ResourceDef,
    obj: &'a Value,
    include: Include,
    api_version: &'a str,
) -> RowOut<'a> {
    let mut cells = vec![
        obj.pointer("/metadata/name")
            .cloned()
            .unwrap_or(Value::Null),
    ];
    for c in &def.printer_columns {
        cells.push(match &c.source {
            ColumnSource::JsonPath(p) => cell(&c.type_, jsonpath(obj, p).into_iter().next()),
            ColumnSource::Computed(f) => cell(&c.type_, Some(&f(obj))),
        });
    }
    let object = match include {
        Include::None => None,
        Include::Metadata => Some(ObjectOut::Partial {
            api_version,
            kind: "PartialObjectMetadata",
            metadata: obj.get("metadata").unwrap_or(&EMPTY_METADATA),
        }),
        Include::Object => Some(ObjectOut::Whole(obj)),
    };
    RowOut { cells, object }
}

fn table_out<'a>(
    def: &ResourceDef,
    objs: &[&'a Value],
    include: Include,
    api_version: &'a str,
    list_meta: Value,
) -> TableOut<'a> {
    TableOut {
        api_version,
        column_definitions: column_definitions(def),
        kind: "Table",
        metadata: list_meta,
        rows: (objs.iter())
            .map(|o| row(def, o, include, api_version))
            .collect(),
    }
}

/// A whole Table (of one object, or a watch event's).
pub fn table(
    def: &ResourceDef,
    objs: &[&Value],
    include: Include,
    api_version: &str,
    list_meta: Value,
) -> Value {
    serde_json::to_value(table_out(def, objs, include, api_version, list_meta))
        .unwrap_or(Value::Null)
}

/// A whole Table written as JSON bytes (a list page), without building it as a `Value`.
pub fn table_bytes(
    def: &ResourceDef,
    objs: &[&Value],
    include: Include,
    api_version: &str,
    list_meta: Value,
) -> Vec<u8> {
    let out = table_out(def, objs, include, api_version, list_meta);
    serde_json::to_vec(&out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_negotiation() {
        let kubectl = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(negotiate(kubectl), Output::Table("meta.k8s.io/v1"));
        assert_eq!(negotiate("application/json"), Output::Json);
        assert_eq!(negotiate(""), Output::Json);
        assert_eq!(
            negotiate("application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"),
            Output::Metadata("meta.k8s.io/v1")
        );
        let discovery =
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
        assert_eq!(negotiate(discovery), Output::Json);
    }

    fn jsonpath(obj: &Value, expr: &str) -> Vec<Value> {
        super::jsonpath(obj, expr).into_iter().cloned().collect()
    }

    #[test]
    fn jsonpath_subset() {
        let o = json!({"spec": {"registryUrl": "quay.io/a:b", "metadata": {"targets": [{"name": "qemu"}, {"name": "rpi"}]}},
            "status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "Available", "status": "True"}]}});
        assert_eq!(jsonpath(&o, ".spec.registryUrl"), [json!("quay.io/a:b")]);
        assert_eq!(
            jsonpath(&o, "{.spec.metadata.targets[*].name}"),
            [json!("qemu"), json!("rpi")]
        );
        assert_eq!(
            jsonpath(&o, ".spec.metadata.targets[1].name"),
            [json!("rpi")]
        );
        assert_eq!(
            jsonpath(&o, ".status.conditions[?(@.type==\"Available\")].status"),
            [json!("True")]
        );
        assert_eq!(jsonpath(&o, ".spec['registryUrl']"), [json!("quay.io/a:b")]);
        assert!(jsonpath(&o, ".spec.missing").is_empty());
        let a = json!({"metadata": {"annotations": {"example.com/rev": "abc"}}});
        assert_eq!(
            jsonpath(&a, ".metadata.annotations.example\\.com/rev"),
            [json!("abc")]
        );
    }
}
