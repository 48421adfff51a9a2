//! Structural-schema handling for custom resources, in the order the real API server applies
//! it: prune unknown fields (and non-nullable nulls), apply `default`s, then validate.
//!
//! Error causes use the API server's field paths (`spec.digest`, `spec.tags[0]`,
//! `spec.labels[key]`) and message shapes, so tests can assert on the named field.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use base64::Engine;
use serde_json::{Map, Value};

use super::error::Cause;

fn child(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

fn flag(schema: &Value, name: &str) -> bool {
    schema.get(name).and_then(Value::as_bool).unwrap_or(false)
}

/// Schema for the members of an object: a named property, or `additionalProperties`.
fn member_schema<'a>(schema: &'a Value, key: &str) -> Option<&'a Value> {
    if let Some(p) = schema.get("properties").and_then(|p| p.get(key)) {
        return Some(p);
    }
    match schema.get("additionalProperties") {
        Some(Value::Bool(true)) => Some(&Value::Null),
        Some(s @ Value::Object(_)) => Some(s),
        _ => None,
    }
}

/// Removes fields the schema does not declare (unless `x-kubernetes-preserve-unknown-fields`)
/// and nulls of non-nullable fields. Pruned unknown fields are reported in `unknown` (for
/// `fieldValidation=Strict|Warn`). At the root, `apiVersion`, `kind` and `metadata` are kept.
pub fn prune(schema: &Value, value: &mut Value, path: &str, unknown: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            let preserve = flag(schema, "x-kubernetes-preserve-unknown-fields");
            let embedded = flag(schema, "x-kubernetes-embedded-resource");
            // Removed after the walk (each key's fate depends on its own value only).
            let mut gone: Vec<String> = Vec::new();
            for (k, v) in map.iter_mut() {
                let is_meta_field = (path.is_empty() || embedded)
                    && matches!(k.as_str(), "apiVersion" | "kind" | "metadata");
                if is_meta_field && member_schema(schema, k).is_none() {
                    continue;
                }
                if path.is_empty() && k == "metadata" {
                    continue;
                }
                match member_schema(schema, k) {
                    Some(sub) => {
                        if v.is_null() && !flag(sub, "nullable") {
                            gone.push(k.clone());
                        } else if v.is_object() || v.is_array() {
                            // Scalars have nothing to prune: no path to build for them.
                            prune(sub, v, &child(path, k), unknown);
                        }
                    }
                    None if preserve => {}
                    None => {
                        unknown.push(child(path, k));
                        gone.push(k.clone());
                    }
                }
            }
            for k in gone {
                map.remove(&k);
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    prune(item_schema, item, &format!("{path}[{i}]"), unknown);
                }
            }
        }
        _ => {}
    }
}

/// Applies `default` values of missing properties, recursively.
pub fn apply_defaults(schema: &Value, value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (k, sub) in props {
                    if !map.contains_key(k)
                        && let Some(d) = sub.get("default")
                    {
                        map.insert(k.clone(), d.clone());
                    }
                }
            }
            for (k, v) in map.iter_mut() {
                if let Some(sub) = member_schema(schema, k) {
                    apply_defaults(sub, v);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for item in items {
                    apply_defaults(item_schema, item);
                }
            }
        }
        _ => {}
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() && n.as_f64().is_some_and(|f| f.fract() != 0.0) => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The value as the API server prints it in messages.
fn show(v: &Value) -> String {
    match v {
        Value::Object(_) => "\"object\"".into(),
        Value::Array(_) => "\"array\"".into(),
        other => other.to_string(),
    }
}

fn regex_matches(pattern: &str, s: &str) -> bool {
    static CACHE: OnceLock<Mutex<HashMap<String, Option<regex::Regex>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut cache = match cache.lock() {
        Ok(c) => c,
        Err(poisoned) => poisoned.into_inner(),
    };
    let re = cache
        .entry(pattern.to_string())
        .or_insert_with(|| regex::Regex::new(pattern).ok());
    // A pattern the regex engine cannot compile is not enforced (the CRD author's problem).
    re.as_ref().is_none_or(|re| re.is_match(s))
}

fn format_ok(format: &str, s: &str) -> bool {
    match format {
        "date-time" | "datetime" => s.parse::<jiff::Timestamp>().is_ok(),
        "date" => s.parse::<jiff::civil::Date>().is_ok(),
        "byte" => base64::engine::general_purpose::STANDARD.decode(s).is_ok(),
        "ipv4" => s.parse::<std::net::Ipv4Addr>().is_ok(),
        "ipv6" => s.parse::<std::net::Ipv6Addr>().is_ok(),
        "uuid" => regex_matches(
            "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
            s,
        ),
        _ => true,
    }
}

fn invalid(causes: &mut Vec<Cause>, path: &str, v: &Value, what: String) {
    causes.push(Cause::new(
        "FieldValueInvalid",
        path,
        format!("Invalid value: {}: {path} in body {what}", show(v)),
    ));
}

/// Validates `value` against `schema`, appending one cause per violation.
pub fn validate(schema: &Value, value: &Value, path: &str, causes: &mut Vec<Cause>) {
    if value.is_null() {
        if !flag(schema, "nullable") && schema.get("type").is_some() {
            causes.push(Cause::new(
                "FieldValueTypeInvalid",
                path,
                format!(
                    "Invalid value: \"null\": {path} in body must be of type {}: \"null\"",
                    schema["type"].as_str().unwrap_or("object")
                ),
            ));
        }
        return;
    }
    let actual = type_name(value);
    if flag(schema, "x-kubernetes-int-or-string") {
        if !matches!(actual, "integer" | "string") {
            causes.push(Cause::new(
                "FieldValueTypeInvalid",
                path,
                format!("Invalid value: {}: {path} in body must be of type integer,string: \"{actual}\"", show(value)),
            ));
            return;
        }
    } else if let Some(want) = schema.get("type").and_then(Value::as_str) {
        let ok = want == actual || (want == "number" && actual == "integer");
        if !ok {
            causes.push(Cause::new(
                "FieldValueTypeInvalid",
                path,
                format!("Invalid value: \"{actual}\": {path} in body must be of type {want}: \"{actual}\""),
            ));
            return;
        }
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array)
        && !options.contains(value)
    {
        let list: Vec<String> = options.iter().map(Value::to_string).collect();
        causes.push(Cause::new(
            "FieldValueNotSupported",
            path,
            format!(
                "Unsupported value: {}: supported values: {}",
                show(value),
                list.join(", ")
            ),
        ));
    }
    match value {
        Value::String(s) => validate_string(schema, value, s, path, causes),
        Value::Number(n) => validate_number(schema, value, n.as_f64().unwrap_or(0.0), path, causes),
        Value::Array(items) => validate_array(schema, value, items, path, causes),
        Value::Object(map) => validate_object(schema, value, map, path, causes),
        _ => {}
    }
    validate_combinators(schema, value, path, causes);
    super::cel::validate_rules(schema, value, path, causes);
}

fn validate_string(schema: &Value, v: &Value, s: &str, path: &str, causes: &mut Vec<Cause>) {
    let len = s.chars().count() as u64;
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
        && len > max
    {
        causes.push(Cause::new(
            "FieldValueTooLong",
            path,
            format!("Too long: may not be more than {max} bytes"),
        ));
    }
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
        && len < min
    {
        invalid(
            causes,
            path,
            v,
            format!("should be at least {min} chars long"),
        );
    }
    if let Some(p) = schema.get("pattern").and_then(Value::as_str)
        && !regex_matches(p, s)
    {
        invalid(causes, path, v, format!("should match '{p}'"));
    }
    if let Some(f) = schema.get("format").and_then(Value::as_str)
        && !format_ok(f, s)
    {
        invalid(causes, path, v, format!("must be of type {f}: {}", show(v)));
    }
}

fn validate_number(schema: &Value, v: &Value, n: f64, path: &str, causes: &mut Vec<Cause>) {
    if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
        if flag(schema, "exclusiveMinimum") && n <= min {
            invalid(causes, path, v, format!("should be greater than {min}"));
        } else if n < min {
            invalid(
                causes,
                path,
                v,
                format!("should be greater than or equal to {min}"),
            );
        }
    }
    if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
        if flag(schema, "exclusiveMaximum") && n >= max {
            invalid(causes, path, v, format!("should be less than {max}"));
        } else if n > max {
            invalid(
                causes,
                path,
                v,
                format!("should be less than or equal to {max}"),
            );
        }
    }
    if let Some(m) = schema.get("multipleOf").and_then(Value::as_f64)
        && m != 0.0
        && (n / m).fract() != 0.0
    {
        invalid(causes, path, v, format!("should be a multiple of {m}"));
    }
    if schema.get("format").and_then(Value::as_str) == Some("int32")
        && (n < f64::from(i32::MIN) || n > f64::from(i32::MAX))
    {
        invalid(causes, path, v, "must be of type int32".into());
    }
}

fn validate_array(schema: &Value, v: &Value, items: &[Value], path: &str, causes: &mut Vec<Cause>) {
    let n = items.len() as u64;
    if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
        && n > max
    {
        causes.push(Cause::new(
            "FieldValueTooMany",
            path,
            format!("Too many: {n}: must have at most {max} items"),
        ));
    }
    if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
        && n < min
    {
        causes.push(Cause::new(
            "FieldValueInvalid",
            path,
            format!("Invalid value: {n}: {path} in body should have at least {min} items"),
        ));
    }
    let set_like = flag(schema, "uniqueItems")
        || schema.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("set");
    if set_like {
        for (i, item) in items.iter().enumerate() {
            if items[..i].contains(item) {
                causes.push(Cause::new(
                    "FieldValueDuplicate",
                    format!("{path}[{i}]"),
                    format!("Duplicate value: {}", show(item)),
                ));
            }
        }
    }
    if let Some(item_schema) = schema.get("items") {
        for (i, item) in items.iter().enumerate() {
            validate(item_schema, item, &format!("{path}[{i}]"), causes);
        }
    }
    let _ = v;
}

fn validate_object(
    schema: &Value,
    v: &Value,
    map: &Map<String, Value>,
    path: &str,
    causes: &mut Vec<Cause>,
) {
    if let Some(req) = schema.get("required").and_then(Value::as_array) {
        for r in req.iter().filter_map(Value::as_str) {
            if !map.contains_key(r) && (!path.is_empty() || r != "metadata") {
                causes.push(Cause::new(
                    "FieldValueRequired",
                    child(path, r),
                    "Required value",
                ));
            }
        }
    }
    let n = map.len() as u64;
    if let Some(max) = schema.get("maxProperties").and_then(Value::as_u64)
        && n > max
    {
        causes.push(Cause::new(
            "FieldValueTooMany",
            path,
            format!("Too many: {n}: must have at most {max} items"),
        ));
    }
    if let Some(min) = schema.get("minProperties").and_then(Value::as_u64)
        && n < min
    {
        invalid(
            causes,
            path,
            v,
            format!("should have at least {min} properties"),
        );
    }
    let props = schema.get("properties").and_then(Value::as_object);
    for (k, val) in map {
        if path.is_empty() && k == "metadata" {
            continue;
        }
        if let Some(sub) = props.and_then(|p| p.get(k)) {
            validate(sub, val, &child(path, k), causes);
        } else if let Some(sub @ Value::Object(_)) = schema.get("additionalProperties") {
            validate(sub, val, &format!("{path}[{k}]"), causes);
        }
    }
}

fn passes(schema: &Value, value: &Value, path: &str) -> bool {
    let mut c = Vec::new();
    validate(schema, value, path, &mut c);
    c.is_empty()
}

fn validate_combinators(schema: &Value, value: &Value, path: &str, causes: &mut Vec<Cause>) {
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for s in all {
            validate(s, value, path, causes);
        }
    }
    if let Some(any) = schema.get("anyOf").and_then(Value::as_array)
        && !any.iter().any(|s| passes(s, value, path))
    {
        invalid(
            causes,
            path,
            value,
            "must validate at least one schema (anyOf)".into(),
        );
    }
    if let Some(one) = schema.get("oneOf").and_then(Value::as_array) {
        let n = one.iter().filter(|s| passes(s, value, path)).count();
        if n != 1 {
            invalid(
                causes,
                path,
                value,
                "must validate one and only one schema (oneOf)".into(),
            );
        }
    }
    if let Some(not) = schema.get("not")
        && passes(not, value, path)
    {
        invalid(
            causes,
            path,
            value,
            "must not validate the schema (not)".into(),
        );
    }
}

#[cfg(test)]
#[path = "schema_tests.rs"]
mod tests;
