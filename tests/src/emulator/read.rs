//! Reads: get and list, with selectors, `limit`/`continue` paging over a consistent snapshot
//! (a continue token pins the list's resourceVersion; once that version is compacted away
//! the token answers 410 Expired, as on a real server), and rendering as plain JSON, Table or
//! PartialObjectMetadata.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use serde_json::{Value, json};

use super::error::{ApiError, ApiResult};
use super::resources::{Flavor, ResourceDef};
use super::selectors::{FieldSelector, LabelSelector};
use super::store::{ObjKey, Store, obj_key};
use super::table::{self, Include, Output};
use super::write::present;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Selectors of a list or watch request.
pub struct Filter {
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Filter {
    pub fn from_params(
        def: &ResourceDef,
        ns: Option<&str>,
        q: &HashMap<String, String>,
    ) -> ApiResult<Self> {
        let labels = LabelSelector::parse(q.get("labelSelector").map_or("", String::as_str))
            .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
        let fields = FieldSelector::parse(q.get("fieldSelector").map_or("", String::as_str), |k| {
            def.field_selector_allowed(k)
        })
        .map_err(ApiError::bad_request)?;
        Ok(Filter {
            namespace: ns.filter(|_| def.namespaced).map(String::from),
            labels,
            fields,
        })
    }

    /// Whether a stored object is selected (field selectors see the request's version).
    pub fn matches(&self, def: &ResourceDef, stored: &Value) -> bool {
        if let Some(ns) = &self.namespace
            && stored
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                != Some(ns.as_str())
        {
            return false;
        }
        if !self.labels.matches_object(stored) {
            return false;
        }
        if self.fields.is_empty() {
            return true;
        }
        if def.flavor == Flavor::EventV1 {
            self.fields.matches(&present(def, stored))
        } else {
            self.fields.matches(stored)
        }
    }
}

/// GET of one object (the main resource or its status: both return the whole object).
pub fn get(st: &Store, def: &ResourceDef, ns: Option<&str>, name: &str) -> ApiResult<Value> {
    st.get(&def.storage, &obj_key(ns.filter(|_| def.namespaced), name))
        .map(|o| present(def, &o))
        .ok_or_else(|| ApiError::not_found(&def.plural, &def.group, name))
}

/// One page of a list.
pub struct Page {
    pub resource_version: String,
    pub continue_token: Option<String>,
    pub remaining: Option<usize>,
    pub items: Vec<Arc<Value>>,
}

fn encode_token(rv: u64, after: &ObjKey) -> String {
    B64.encode(json!({"rv": rv, "ns": after.0, "name": after.1}).to_string())
}

fn decode_token(t: &str) -> Option<(u64, ObjKey)> {
    let bytes = B64.decode(t.trim_end_matches('=')).ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    Some((
        v["rv"].as_u64()?,
        (
            v["ns"].as_str()?.to_string(),
            v["name"].as_str()?.to_string(),
        ),
    ))
}

/// Lists a resource. Holds no lock itself: pass the locked store.
pub fn list(
    st: &Store,
    def: &ResourceDef,
    filter: &Filter,
    q: &HashMap<String, String>,
) -> ApiResult<Page> {
    let limit = match q.get("limit").map(|l| l.parse::<usize>()) {
        None => None,
        Some(Ok(0)) => None,
        Some(Ok(n)) => Some(n),
        Some(Err(_)) => {
            return Err(ApiError::bad_request(
                "limit must be a non-negative integer",
            ));
        }
    };
    let (at_rv, after) = match q.get("continue").filter(|c| !c.is_empty()) {
        Some(tok) => {
            let (rv, after) =
                decode_token(tok).ok_or_else(|| ApiError::bad_request("invalid continue token"))?;
            (Some(rv), Some(after))
        }
        None => {
            let exact = q.get("resourceVersionMatch").map(String::as_str) == Some("Exact");
            let rv = q
                .get("resourceVersion")
                .filter(|s| !s.is_empty() && *s != "0");
            match (exact, rv) {
                (true, Some(rv)) => {
                    let rv = rv.parse::<u64>().map_err(|_| {
                        ApiError::bad_request(format!("invalid resource version: {rv}"))
                    })?;
                    (Some(rv), None)
                }
                _ => (None, None),
            }
        }
    };
    let list_rv = at_rv.unwrap_or_else(|| st.rv());
    let objs = match at_rv {
        None => st.objects(&def.storage),
        Some(rv) => st.snapshot(&def.storage, rv).ok_or_else(|| {
            ApiError::expired(format!(
                "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter. (resourceVersion {rv} has been compacted)"
            ))
        })?,
    };
    let mut items = Vec::new();
    let mut last: Option<ObjKey> = None;
    let mut more = false;
    let mut remaining = 0usize;
    let start = std::ops::Bound::Excluded(after.clone().unwrap_or_default());
    let range = match &after {
        Some(_) => objs.range((start, std::ops::Bound::Unbounded)),
        None => objs.range::<ObjKey, _>(..),
    };
    for (k, o) in range {
        if !filter.matches(def, o) {
            continue;
        }
        if limit.is_some_and(|l| items.len() >= l) {
            more = true;
            remaining += 1;
            continue;
        }
        items.push(o.clone());
        last = Some(k.clone());
    }
    let continue_token = match (more, &last) {
        (true, Some(k)) => Some(encode_token(list_rv, k)),
        _ => None,
    };
    let no_selectors = filter.labels.is_empty() && filter.fields.is_empty();
    Ok(Page {
        resource_version: list_rv.to_string(),
        remaining: (more && no_selectors).then_some(remaining),
        continue_token,
        items,
    })
}

fn list_meta(page: &Page) -> Value {
    let mut m = json!({"resourceVersion": page.resource_version});
    if let Some(c) = &page.continue_token {
        m["continue"] = json!(c);
    }
    if let Some(r) = page.remaining {
        m["remainingItemCount"] = json!(r);
    }
    m
}

/// Serialises a list page in the requested representation. Plain lists are written item by
/// item without building one big value (a 10,000-object list stays fast).
pub fn render_list(def: &ResourceDef, page: &Page, output: Output, include: Include) -> Vec<u8> {
    match output {
        Output::Table(av) => {
            let objs: Vec<Value> = page.items.iter().map(|o| present(def, o)).collect();
            table::table(def, &objs, include, av, list_meta(page))
                .to_string()
                .into_bytes()
        }
        Output::Metadata(av) => {
            let items: Vec<Value> = page
                .items
                .iter()
                .map(|o| table::partial(&present(def, o), av))
                .collect();
            json!({"kind": "PartialObjectMetadataList", "apiVersion": av, "metadata": list_meta(page), "items": items})
                .to_string()
                .into_bytes()
        }
        Output::Json => {
            let same_form =
                def.flavor != Flavor::EventV1 && def.storage_api_version == def.api_version();
            let mut out = Vec::with_capacity(64 + page.items.len() * 1024);
            out.extend_from_slice(
                format!(
                    "{{\"apiVersion\":{},\"kind\":{},\"metadata\":{},\"items\":[",
                    json!(def.api_version()),
                    json!(def.list_kind),
                    list_meta(page)
                )
                .as_bytes(),
            );
            for (i, o) in page.items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                let written = if same_form {
                    serde_json::to_writer(&mut out, o.as_ref())
                } else {
                    serde_json::to_writer(&mut out, &present(def, o))
                };
                if written.is_err() {
                    out.extend_from_slice(b"null");
                }
            }
            out.extend_from_slice(b"]}");
            out
        }
    }
}

/// Serialises one object in the requested representation.
pub fn render_object(def: &ResourceDef, obj: &Value, output: Output, include: Include) -> Value {
    match output {
        Output::Json => obj.clone(),
        Output::Table(av) => {
            let rv = obj
                .pointer("/metadata/resourceVersion")
                .cloned()
                .unwrap_or(Value::Null);
            table::table(
                def,
                std::slice::from_ref(obj),
                include,
                av,
                json!({"resourceVersion": rv}),
            )
        }
        Output::Metadata(av) => table::partial(obj, av),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::resources::StorageKey;

    #[test]
    fn paging_is_consistent_and_expires() {
        let mut st = Store::new(1000);
        let def = st.def("", "v1", "configmaps").expect("builtin");
        let key: StorageKey = def.storage.clone();
        for i in 0..5 {
            let name = format!("cm-{i}");
            st.put(&key, obj_key(Some("default"), &name), json!({"metadata": {"namespace": "default", "name": name, "labels": {"i": i.to_string()}}}));
        }
        let filter = Filter::from_params(&def, Some("default"), &HashMap::new()).expect("filter");
        let mut q = HashMap::from([("limit".to_string(), "2".to_string())]);
        let p1 = list(&st, &def, &filter, &q).expect("page 1");
        assert_eq!(p1.items.len(), 2);
        assert_eq!(p1.remaining, Some(3));
        // A change after the first page is not visible in later pages.
        st.put(
            &key,
            obj_key(Some("default"), "cm-9"),
            json!({"metadata": {"namespace": "default", "name": "cm-9"}}),
        );
        q.insert("continue".into(), p1.continue_token.clone().expect("more"));
        let p2 = list(&st, &def, &filter, &q).expect("page 2");
        q.insert("continue".into(), p2.continue_token.clone().expect("more"));
        let p3 = list(&st, &def, &filter, &q).expect("page 3");
        assert_eq!(p3.items.len(), 1);
        assert!(p3.continue_token.is_none());
        assert_eq!(p3.resource_version, p1.resource_version);
        st.compact();
        assert_eq!(
            list(&st, &def, &filter, &q).err().map(|e| e.code),
            Some(410)
        );
        let sel = HashMap::from([("labelSelector".to_string(), "i in (1,3)".to_string())]);
        let f = Filter::from_params(&def, None, &sel).expect("filter");
        assert_eq!(
            list(&st, &def, &f, &HashMap::new())
                .expect("list")
                .items
                .len(),
            2
        );
    }
}
