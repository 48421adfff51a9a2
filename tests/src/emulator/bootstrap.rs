//! The default RBAC policy every cluster has, from
//! `plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go`: `cluster-admin` for
//! `system:masters`, and discovery (`system:discovery`), self reviews (`system:basic-user`) and
//! `/version`/health (`system:public-info-viewer`) for every authenticated user.
//!
//! They are consulted by the authorizer without being stored (so `kubectl get clusterroles`
//! and resourceVersions stay as before); a stored ClusterRole of the same name wins, and a
//! binding may reference these ClusterRoles by name.

use std::sync::{Arc, OnceLock};

use serde_json::{Value, json};

const DISCOVERY_URLS: [&str; 11] = [
    "/api",
    "/api/*",
    "/apis",
    "/apis/*",
    "/healthz",
    "/livez",
    "/openapi",
    "/openapi/*",
    "/readyz",
    "/version",
    "/version/",
];
const PUBLIC_URLS: [&str; 5] = ["/healthz", "/livez", "/readyz", "/version", "/version/"];

fn cluster_roles() -> &'static [Arc<Value>] {
    static ROLES: OnceLock<Vec<Arc<Value>>> = OnceLock::new();
    ROLES.get_or_init(|| {
        let role = |name: &str, rules: Value| {
            Arc::new(
                json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": {"name": name}, "rules": rules}),
            )
        };
        vec![
            role(
                "cluster-admin",
                json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                    {"nonResourceURLs": ["*"], "verbs": ["*"]}]),
            ),
            role(
                "system:discovery",
                json!([{"nonResourceURLs": DISCOVERY_URLS, "verbs": ["get"]}]),
            ),
            role(
                "system:basic-user",
                json!([{"apiGroups": ["authorization.k8s.io"],
                    "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                    "verbs": ["create"]},
                    {"apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"],
                    "verbs": ["create"]}]),
            ),
            role(
                "system:public-info-viewer",
                json!([{"nonResourceURLs": PUBLIC_URLS, "verbs": ["get"]}]),
            ),
        ]
    })
}

/// A default ClusterRole by name.
pub fn cluster_role(name: &str) -> Option<Arc<Value>> {
    cluster_roles()
        .iter()
        .find(|r| r["metadata"]["name"] == name)
        .cloned()
}

/// The default ClusterRoleBindings.
pub fn cluster_role_bindings() -> &'static [Value] {
    static BINDINGS: OnceLock<Vec<Value>> = OnceLock::new();
    BINDINGS.get_or_init(|| {
        let binding = |name: &str, groups: &[&str]| {
            let subjects: Vec<Value> = groups
                .iter()
                .map(|g| json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g}))
                .collect();
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                "metadata": {"name": name}, "subjects": subjects,
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name}})
        };
        vec![
            binding("cluster-admin", &["system:masters"]),
            binding("system:discovery", &["system:authenticated"]),
            binding("system:basic-user", &["system:authenticated"]),
            binding(
                "system:public-info-viewer",
                &["system:authenticated", "system:unauthenticated"],
            ),
        ]
    })
}
