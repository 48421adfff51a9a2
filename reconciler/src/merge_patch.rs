//! JSON merge patches (RFC 7386) for the status subresource: the one place that decides
//! whether a status write is needed and what it sends, for the sync (CatalogSource), the
//! verifier (CatalogImage) and the preview runner (`CatalogSource.status.previews`).
//!
//! A patch names only what changed between the status as last seen and the status wanted
//! (`null` for what was removed), so an unchanged status is no write at all, and a writer
//! never names the fields another writer owns: the sync and the preview runner patch the same
//! CatalogSource status, each its own fields, without reading the other's.

use serde::Serialize;
use serde_json::{Map, Value};

/// Which fields of a status one writer's patches may name.
#[derive(Clone, Copy, Debug, Default)]
pub struct Fields<'a> {
    /// Fields another writer owns: never in the patch, whatever `old` and `new` hold.
    pub others: &'a [&'a str],
    /// Fields older versions wrote that the schema no longer has: `null` in every patch
    /// sent, so they go wherever the API server has not pruned them.
    pub retired: &'a [&'a str],
}

/// The merge patch `{"status": …}` turning `old` (`None`: no status yet) into `new`, naming
/// only `fields`; `None` when nothing they cover differs, so nothing is written.
pub fn status<T: Serialize>(old: Option<&T>, new: &T, fields: Fields<'_>) -> Option<Value> {
    let owned = |status: Option<&T>| {
        let mut value = match status {
            Some(status) => serde_json::to_value(status).expect("a status serializes"),
            None => Value::Object(Map::new()),
        };
        if let Value::Object(map) = &mut value {
            for key in fields.others {
                map.remove(*key);
            }
        }
        value
    };
    let mut patch = diff(&owned(old), &owned(Some(new)))?;
    if let Value::Object(map) = &mut patch {
        for key in fields.retired {
            map.insert((*key).to_string(), Value::Null);
        }
    }
    Some(serde_json::json!({ "status": patch }))
}

/// The JSON merge patch turning `old` into `new` (RFC 7386): changed keys, `null` for removed
/// ones, recursing into objects (arrays are replaced whole); `None` when nothing differs.
pub fn diff(old: &Value, new: &Value) -> Option<Value> {
    match (old, new) {
        (Value::Object(old), Value::Object(new)) => {
            let mut patch = Map::new();
            for (key, value) in new {
                match old.get(key) {
                    Some(previous) if previous == value => {}
                    Some(previous) if previous.is_object() && value.is_object() => {
                        if let Some(inner) = diff(previous, value) {
                            patch.insert(key.clone(), inner);
                        }
                    }
                    _ => {
                        patch.insert(key.clone(), value.clone());
                    }
                }
            }
            for key in old.keys() {
                if !new.contains_key(key) {
                    patch.insert(key.clone(), Value::Null);
                }
            }
            (!patch.is_empty()).then_some(Value::Object(patch))
        }
        (old, new) if old == new => None,
        (_, new) => Some(new.clone()),
    }
}

#[cfg(test)]
#[path = "merge_patch_tests.rs"]
mod tests;
