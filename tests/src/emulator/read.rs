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
use super::write::{Served, present};

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
/// Returns the stored object: [`render_object`] serves it in the request's version.
pub fn get(st: &Store, def: &ResourceDef, ns: Option<&str>, name: &str) -> ApiResult<Arc<Value>> {
    st.get(&def.storage, &obj_key(ns.filter(|_| def.namespaced), name))
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
    let view = st.view(&def.storage, list_rv).ok_or_else(|| {
        ApiError::expired(format!(
            "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter. (resourceVersion {list_rv} has been compacted)"
        ))
    })?;
    let mut entries = view.entries(after.as_ref(), filter.namespace.as_deref());
    let limit = limit.unwrap_or(usize::MAX);
    let mut items = Vec::new();
    let mut last: Option<&ObjKey> = None;
    let mut more = false;
    for (k, o) in entries.by_ref() {
        if !filter.matches(def, o) {
            continue;
        }
        if items.len() == limit {
            more = true;
            break;
        }
        items.push(o.clone());
        last = Some(k);
    }
    let continue_token = match (more, last) {
        (true, Some(k)) => Some(encode_token(list_rv, k)),
        _ => None,
    };
    // As on the API server, the count is only given without label or field selectors; with
    // selectors the scan stopped at the first further match. Without them every entry after
    // the page's last (already limited to the namespace) is selected, so the count is the
    // view's key count after it: binary searches, not a walk of the rest of the list.
    let no_selectors = filter.labels.is_empty() && filter.fields.is_empty();
    let remaining = match (more && no_selectors, last) {
        (true, Some(k)) => Some(view.count(Some(k), filter.namespace.as_deref())),
        _ => None,
    };
    Ok(Page {
        resource_version: list_rv.to_string(),
        remaining,
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

/// Whether stored objects are already in the served form (no conversion, same apiVersion).
fn same_form(def: &ResourceDef) -> bool {
    def.flavor != Flavor::EventV1 && def.storage_api_version == def.api_version()
}

/// Serialises a list page in the requested representation. Plain lists are written item by
/// item without building one big value (a 10,000-object list stays fast).
pub fn render_list(def: &ResourceDef, page: &Page, output: Output, include: Include) -> Vec<u8> {
    match output {
        Output::Table(av) => {
            // Stored objects already in the request's form are read in place, not copied.
            let copy = include == Include::Object || !same_form(def);
            let presented: Vec<Value>;
            let objs: Vec<&Value> = if copy {
                presented = page.items.iter().map(|o| present(def, o)).collect();
                presented.iter().collect()
            } else {
                page.items.iter().map(Arc::as_ref).collect()
            };
            table::table_bytes(def, &objs, include, av, list_meta(page))
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
            let same_form = same_form(def);
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

/// Serialises one stored object in the requested representation (plain JSON without copying
/// the object).
pub fn render_object(
    def: &ResourceDef,
    stored: &Value,
    output: Output,
    include: Include,
) -> Vec<u8> {
    let rendered = match output {
        Output::Json => return Served { def, stored }.to_vec(),
        Output::Table(av) => {
            let obj = present(def, stored);
            let rv = obj
                .pointer("/metadata/resourceVersion")
                .cloned()
                .unwrap_or(Value::Null);
            table::table(def, &[&obj], include, av, json!({"resourceVersion": rv}))
        }
        Output::Metadata(av) => table::partial(&present(def, stored), av),
    };
    rendered.to_string().into_bytes()
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

    /// Configmaps `cm-0`..`cm-{n-1}` in `ns`, labelled `i`.
    fn configmaps(st: &mut Store, key: &StorageKey, ns: &str, n: usize) {
        for i in 0..n {
            let name = format!("cm-{i}");
            let obj = json!({"metadata": {"namespace": ns, "name": name, "labels": {"i": i.to_string()}}});
            st.put(key, obj_key(Some(ns), &name), obj);
        }
    }

    fn names(page: &Page) -> Vec<&str> {
        let names = page.items.iter();
        names
            .filter_map(|o| o["metadata"]["name"].as_str())
            .collect()
    }

    /// Pages `q` to the end, following continue tokens.
    fn next_page(
        st: &Store,
        def: &ResourceDef,
        f: &Filter,
        q: &mut HashMap<String, String>,
        prev: &Page,
    ) -> Page {
        q.insert(
            "continue".into(),
            prev.continue_token.clone().expect("more"),
        );
        list(st, def, f, q).expect("page")
    }

    #[test]
    fn continue_pages_keep_the_snapshot_across_changes() {
        let mut st = Store::new(1000);
        let def = st.def("", "v1", "configmaps").expect("builtin");
        let secrets = st
            .def("", "v1", "secrets")
            .expect("builtin")
            .storage
            .clone();
        let key = def.storage.clone();
        configmaps(&mut st, &key, "default", 6);
        let f = Filter::from_params(&def, Some("default"), &HashMap::new()).expect("filter");
        let mut q = HashMap::from([("limit".to_string(), "2".to_string())]);
        let p1 = list(&st, &def, &f, &q).expect("page 1");
        assert_eq!((names(&p1), p1.remaining), (vec!["cm-0", "cm-1"], Some(4)));
        // Only another resource changed: the next page is served from the live objects.
        let cm = |name: &str| json!({"metadata": {"namespace": "default", "name": name}});
        st.put(&secrets, obj_key(Some("default"), "s"), cm("s"));
        let p2 = next_page(&st, &def, &f, &mut q, &p1);
        assert_eq!((names(&p2), p2.remaining), (vec!["cm-2", "cm-3"], Some(2)));
        // Now this resource changes: created after/before the token, deleted, modified.
        st.put(&key, obj_key(Some("default"), "cm-9"), cm("cm-9"));
        st.put(&key, obj_key(Some("default"), "cm-10"), cm("cm-10"));
        st.put(&key, obj_key(Some("default"), "cm-2a"), cm("cm-2a"));
        st.remove(&key, &obj_key(Some("default"), "cm-4"), cm("cm-4"));
        st.put(&key, obj_key(Some("default"), "cm-5"), cm("cm-5"));
        let p3 = next_page(&st, &def, &f, &mut q, &p2);
        assert_eq!((names(&p3), p3.remaining), (vec!["cm-4", "cm-5"], None));
        assert!(p3.continue_token.is_none());
        assert_eq!(p3.items[1]["metadata"]["labels"]["i"], "5", "the old cm-5");
        assert_eq!(p3.resource_version, p1.resource_version);
        // The same token again after more changes, and a fresh list, which sees them all.
        st.remove(&key, &obj_key(Some("default"), "cm-5"), cm("cm-5"));
        assert_eq!(
            names(&list(&st, &def, &f, &q).expect("again")),
            ["cm-4", "cm-5"]
        );
        let fresh = list(&st, &def, &f, &HashMap::new()).expect("fresh");
        assert_eq!(
            names(&fresh),
            ["cm-0", "cm-1", "cm-10", "cm-2", "cm-2a", "cm-3", "cm-9"]
        );
        // resourceVersionMatch=Exact reads the same snapshot.
        let exact = HashMap::from([
            ("resourceVersion".to_string(), p1.resource_version.clone()),
            ("resourceVersionMatch".to_string(), "Exact".to_string()),
            ("limit".to_string(), "4".to_string()),
        ]);
        let e = list(&st, &def, &f, &exact).expect("exact");
        assert_eq!(
            (names(&e), e.remaining),
            (vec!["cm-0", "cm-1", "cm-2", "cm-3"], Some(2))
        );
    }

    #[test]
    fn remaining_item_count_only_without_selectors() {
        let mut st = Store::new(1000);
        let def = st.def("", "v1", "configmaps").expect("builtin");
        let key = def.storage.clone();
        configmaps(&mut st, &key, "default", 5);
        configmaps(&mut st, &key, "other", 3);
        let limit = |n: &str| HashMap::from([("limit".to_string(), n.to_string())]);
        let all = Filter::from_params(&def, None, &HashMap::new()).expect("filter");
        let p = list(&st, &def, &all, &limit("3")).expect("all namespaces");
        assert_eq!(p.remaining, Some(5));
        let ns = Filter::from_params(&def, Some("other"), &HashMap::new()).expect("filter");
        let p = list(&st, &def, &ns, &limit("1")).expect("namespace");
        assert_eq!((names(&p), p.remaining), (vec!["cm-0"], Some(2)));
        // Exactly the limit: no continue, no count.
        let p = list(&st, &def, &ns, &limit("3")).expect("exact fit");
        assert_eq!(
            (p.items.len(), p.continue_token.is_none(), p.remaining),
            (3, true, None)
        );
        // Selectors: more pages, but no count; the next page continues where this one ended.
        let mut q = limit("1");
        q.insert("labelSelector".into(), "i notin (0,2)".into());
        let sel = Filter::from_params(&def, Some("default"), &q).expect("filter");
        let p1 = list(&st, &def, &sel, &q).expect("selected");
        assert_eq!((names(&p1), p1.remaining), (vec!["cm-1"], None));
        let p2 = next_page(&st, &def, &sel, &mut q, &p1);
        let p3 = next_page(&st, &def, &sel, &mut q, &p2);
        assert_eq!((names(&p2), names(&p3)), (vec!["cm-3"], vec!["cm-4"]));
        assert!(p3.continue_token.is_none());
        q.insert("fieldSelector".into(), "metadata.name!=cm-4".into());
        q.remove("labelSelector");
        q.remove("continue");
        let fields = Filter::from_params(&def, Some("default"), &q).expect("filter");
        let p = list(&st, &def, &fields, &q).expect("fields");
        assert_eq!((p.continue_token.is_some(), p.remaining), (true, None));
    }

    #[test]
    fn table_pages_carry_the_paging_metadata_and_row_metadata() {
        let mut st = Store::new(1000);
        let def = st.def("", "v1", "configmaps").expect("builtin");
        let key = def.storage.clone();
        configmaps(&mut st, &key, "default", 3);
        let f = Filter::from_params(&def, Some("default"), &HashMap::new()).expect("filter");
        let q = HashMap::from([("limit".to_string(), "2".to_string())]);
        let page = list(&st, &def, &f, &q).expect("page");
        let table = Output::Table("meta.k8s.io/v1");
        let body = render_list(&def, &page, table, Include::Metadata);
        let t: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(
            (t["kind"].as_str(), t["apiVersion"].as_str()),
            (Some("Table"), Some("meta.k8s.io/v1"))
        );
        assert_eq!(t["metadata"]["remainingItemCount"], 1);
        assert_eq!(
            t["metadata"]["continue"].as_str(),
            page.continue_token.as_deref()
        );
        let row = &t["rows"][1];
        assert_eq!(row["cells"][0], "cm-1");
        assert_eq!(row["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(row["object"]["metadata"]["labels"]["i"], "1");
        let none = render_list(&def, &page, table, Include::None);
        let t: Value = serde_json::from_slice(&none).expect("json");
        assert!(t["rows"][0].get("object").is_none(), "{t}");
    }
}
