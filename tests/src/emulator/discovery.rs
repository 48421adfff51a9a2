//! Discovery: `/version`, `/api`, `/api/v1`, `/apis`, `/apis/G`, `/apis/G/V`.
//!
//! Only the legacy (non-aggregated) documents: client-go asks for aggregated discovery first
//! and falls back when the answer's Content-Type is plain `application/json`.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

use super::resources::ResourceDef;

/// The Kubernetes version we claim. The kubectl dispatcher on these machines picks the
/// bundled kubectl of the server's minor version, so this must be one it ships (1.32).
pub fn version() -> Value {
    json!({
        "major": "1", "minor": "32", "gitVersion": "v1.32.4", "gitCommit": "kube-emulator",
        "gitTreeState": "clean", "buildDate": "2025-04-22T00:00:00Z", "goVersion": "go1.23.6",
        "compiler": "gc", "platform": "linux/amd64"
    })
}

/// `/api`.
pub fn core_versions(server_address: &str) -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]})
}

/// Orders versions like Kubernetes: GA > beta > alpha, higher numbers first.
pub fn version_priority(v: &str) -> (u8, u32, u32) {
    let rest = v.strip_prefix('v').unwrap_or(v);
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let major = digits.parse().unwrap_or(0);
    let tail = &rest[digits.len()..];
    let num = |s: &str| s.parse().unwrap_or(0);
    if tail.is_empty() {
        (3, major, 0)
    } else if let Some(b) = tail.strip_prefix("beta") {
        (2, major, num(b))
    } else if let Some(a) = tail.strip_prefix("alpha") {
        (1, major, num(a))
    } else {
        (0, major, 0)
    }
}

fn groups(defs: &[Arc<ResourceDef>]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for d in defs.iter().filter(|d| !d.group.is_empty()) {
        let vs = out.entry(d.group.clone()).or_default();
        if !vs.contains(&d.version) {
            vs.push(d.version.clone());
        }
    }
    for vs in out.values_mut() {
        vs.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
    }
    out
}

fn group_json(name: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    json!({"name": name, "versions": vs, "preferredVersion": vs.first().cloned().unwrap_or(Value::Null)})
}

/// `/apis`.
pub fn group_list(defs: &[Arc<ResourceDef>]) -> Value {
    let gs: Vec<Value> = groups(defs)
        .iter()
        .map(|(g, vs)| group_json(g, vs))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": gs})
}

/// `/apis/G`.
pub fn group(defs: &[Arc<ResourceDef>], name: &str) -> Option<Value> {
    let gs = groups(defs);
    let vs = gs.get(name)?;
    let mut g = group_json(name, vs);
    g["kind"] = json!("APIGroup");
    g["apiVersion"] = json!("v1");
    Some(g)
}

/// `/api/v1` and `/apis/G/V`.
pub fn resource_list(defs: &[Arc<ResourceDef>], group: &str, version: &str) -> Option<Value> {
    let mine: Vec<&Arc<ResourceDef>> = defs
        .iter()
        .filter(|d| d.group == group && d.version == version)
        .collect();
    if mine.is_empty() {
        return None;
    }
    let mut resources = Vec::new();
    for d in mine {
        let mut r = json!({
            "name": d.plural, "singularName": d.singular, "namespaced": d.namespaced, "kind": d.kind,
            "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
        });
        if !d.short_names.is_empty() {
            r["shortNames"] = json!(d.short_names);
        }
        if !d.categories.is_empty() {
            r["categories"] = json!(d.categories);
        }
        resources.push(r);
        if d.status_subresource {
            resources.push(
                json!({"name": format!("{}/status", d.plural), "singularName": "",
                "namespaced": d.namespaced, "kind": d.kind, "verbs": ["get", "patch", "update"]}),
            );
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::resources::builtin_defs;

    #[test]
    fn documents() {
        let defs: Vec<Arc<ResourceDef>> = builtin_defs().into_iter().map(Arc::new).collect();
        let gl = group_list(&defs);
        let names: Vec<&str> = gl["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .filter_map(|g| g["name"].as_str())
            .collect();
        assert_eq!(
            names,
            [
                "apiextensions.k8s.io",
                "apps",
                "coordination.k8s.io",
                "events.k8s.io",
                "rbac.authorization.k8s.io"
            ]
        );
        let core = resource_list(&defs, "", "v1").expect("core");
        assert!(
            core["resources"]
                .as_array()
                .expect("list")
                .iter()
                .any(|r| r["name"] == "namespaces/status")
        );
        assert!(resource_list(&defs, "nope.io", "v1").is_none());
        let mut vs = vec!["v1alpha1", "v2", "v1beta2", "v1"];
        vs.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
        assert_eq!(vs, ["v2", "v1", "v1beta2", "v1alpha1"]);
    }
}
