//! RBAC authorization with the real authorizer's semantics.
//!
//! Emulates `plugin/pkg/auth/authorizer/rbac/rbac.go` (the visitor over ClusterRoleBindings,
//! then the RoleBindings of the request's namespace; subject matching; the `RBAC: allowed by`
//! and `RBAC: ... not found` reasons) and `pkg/apis/rbac/v1/evaluation_helpers.go` (verb,
//! API group, resource with `*/subresource`, resourceName and nonResourceURL matching). The
//! `system:masters` group is allowed everything before RBAC runs, as the API server's
//! privileged-group authorizer does (`pkg/kubeapiserver/authorizer/config.go`), which also
//! keeps the admin identity the harness hands out as fast as before.
//!
//! Roles and bindings are read from the store again after any change to one of them (what a
//! user is granted in a namespace is cached in between), so a `kubectl apply` of a Role takes
//! effect on the next request, as on a real server.

use std::borrow::Cow;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::authn::UserInfo;
use super::bootstrap;
use super::store::{Store, obj_key};

const RBAC: &str = "rbac.authorization.k8s.io";

/// One `rules[]` entry of a Role or ClusterRole (`rbac/v1.PolicyRule`).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct PolicyRule {
    pub verbs: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub api_groups: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resource_names: Vec<String>,
    #[serde(rename = "nonResourceURLs", skip_serializing_if = "Vec::is_empty")]
    pub non_resource_urls: Vec<String>,
}

/// What a request asks for (`apiserver/pkg/authorization/authorizer.Attributes`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attributes {
    pub verb: String,
    /// False for non-resource URLs (discovery, `/version`, ...), which match `path`.
    pub resource_request: bool,
    pub namespace: String,
    pub group: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
    pub path: String,
}

impl Attributes {
    /// A resource request.
    pub fn resource(verb: &str, group: &str, resource: &str, namespace: &str, name: &str) -> Self {
        let (resource, sub) = resource.split_once('/').unwrap_or((resource, ""));
        Attributes {
            verb: verb.into(),
            resource_request: true,
            namespace: namespace.into(),
            group: group.into(),
            resource: resource.into(),
            subresource: sub.into(),
            name: name.into(),
            path: String::new(),
        }
    }

    /// A non-resource request (`get` of `/apis`, ...).
    pub fn path(verb: &str, path: &str) -> Self {
        Attributes {
            verb: verb.into(),
            path: path.into(),
            ..Default::default()
        }
    }
}

/// The authorizer's answer; `reason` is what a SubjectAccessReview reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub reason: String,
}

fn has(list: &[String], want: &str) -> bool {
    list.iter().any(|x| x == want)
}

/// `VerbMatches`: `*` or the verb itself.
fn verb_matches(rule: &PolicyRule, verb: &str) -> bool {
    rule.verbs.iter().any(|v| v == "*" || v == verb)
}

/// `APIGroupMatches`: `*` or the group itself (`""` is the core group).
fn group_matches(rule: &PolicyRule, group: &str) -> bool {
    rule.api_groups.iter().any(|g| g == "*" || g == group)
}

/// `ResourceMatches`: `*`, `resource/subresource` exactly, or `*/subresource`.
fn resource_matches(rule: &PolicyRule, combined: &str, sub: &str) -> bool {
    rule.resources.iter().any(|r| {
        r == "*"
            || r == combined
            || (!sub.is_empty()
                && r.len() == sub.len() + 2
                && r.starts_with("*/")
                && r.ends_with(sub))
    })
}

/// `ResourceNameMatches`: no names means all; otherwise the request must name one of them, so
/// a create or an unnamed list/watch never matches a rule with resourceNames.
fn name_matches(rule: &PolicyRule, name: &str) -> bool {
    rule.resource_names.is_empty() || has(&rule.resource_names, name)
}

/// `NonResourceURLMatches`: `*`, the path itself, or a `prefix*` wildcard.
fn url_matches(rule: &PolicyRule, path: &str) -> bool {
    rule.non_resource_urls.iter().any(|u| {
        u == "*" || u == path || (u.ends_with('*') && path.starts_with(u.trim_end_matches('*')))
    })
}

/// `RuleAllows` of rbac.go.
pub fn rule_allows(a: &Attributes, rule: &PolicyRule) -> bool {
    if !a.resource_request {
        return verb_matches(rule, &a.verb) && url_matches(rule, &a.path);
    }
    let combined = if a.subresource.is_empty() {
        Cow::Borrowed(a.resource.as_str())
    } else {
        Cow::Owned(format!("{}/{}", a.resource, a.subresource))
    };
    verb_matches(rule, &a.verb)
        && group_matches(rule, &a.group)
        && resource_matches(rule, &combined, &a.subresource)
        && name_matches(rule, &a.name)
}

fn str_at<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or_default()
}

/// `appliesToUser` of rbac.go: a ServiceAccount subject without a namespace means the
/// binding's own namespace (never for a ClusterRoleBinding).
fn applies(user: &UserInfo, subject: &Value, binding_ns: &str) -> bool {
    let name = str_at(subject, "/name");
    match str_at(subject, "/kind") {
        "User" => user.name == name,
        "Group" => has(&user.groups, name),
        "ServiceAccount" => {
            let ns = match str_at(subject, "/namespace") {
                "" => binding_ns,
                ns => ns,
            };
            !ns.is_empty() && user.name == format!("system:serviceaccount:{ns}:{name}")
        }
        _ => false,
    }
}

/// `describeSubject` of rbac.go, for the allow reason.
fn describe_subject(subject: &Value, binding_ns: &str) -> String {
    let (kind, name) = (str_at(subject, "/kind"), str_at(subject, "/name"));
    if kind == "ServiceAccount" {
        let ns = match str_at(subject, "/namespace") {
            "" => binding_ns,
            ns => ns,
        };
        return format!("{kind} {:?}", format!("{name}/{ns}"));
    }
    format!("{kind} {name:?}")
}

/// The rules of a binding's roleRef, or the `not found` error rbac.go reports.
fn role_rules(st: &Store, binding: &Value, binding_ns: &str) -> Result<Vec<PolicyRule>, String> {
    let (kind, name) = (
        str_at(binding, "/roleRef/kind"),
        str_at(binding, "/roleRef/name"),
    );
    let role = match kind {
        "ClusterRole" => st
            .get(&(RBAC.into(), "clusterroles".into()), &obj_key(None, name))
            .or_else(|| bootstrap::cluster_role(name)),
        "Role" if !binding_ns.is_empty() => st.get(
            &(RBAC.into(), "roles".into()),
            &obj_key(Some(binding_ns), name),
        ),
        _ => None,
    };
    let Some(role) = role else {
        return Err(format!("{}.{RBAC} {name:?} not found", kind.to_lowercase()));
    };
    Ok(role
        .get("rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| PolicyRule::deserialize(r).ok())
        .collect())
}

/// Where a rule came from, rendered as rbac.go's binding describers do.
fn describe(binding: &Value, binding_ns: &str, subject: &Value) -> String {
    let name = str_at(binding, "/metadata/name");
    let (kind, name) = if binding_ns.is_empty() {
        ("ClusterRoleBinding", format!("{name:?}"))
    } else {
        (
            "RoleBinding",
            format!("{:?}", format!("{name}/{binding_ns}")),
        )
    };
    format!(
        "{kind} {name} of {} {:?} to {}",
        str_at(binding, "/roleRef/kind"),
        str_at(binding, "/roleRef/name"),
        describe_subject(subject, binding_ns)
    )
}

/// Every rule granted to one user in one namespace, in the order `VisitRulesFor` visits them
/// (cluster-wide bindings first), each with the binding it came from, and the errors met on
/// the way.
pub struct Grants {
    rules: Vec<(usize, PolicyRule)>,
    sources: Vec<String>,
    errors: Vec<String>,
}

impl Grants {
    /// Reads the grants of `user` in `namespace` from the store.
    pub fn read(st: &Store, user: &UserInfo, namespace: &str) -> Self {
        let mut grants = Grants {
            rules: Vec::new(),
            sources: Vec::new(),
            errors: Vec::new(),
        };
        let (crb, rb) = (
            (RBAC.to_string(), "clusterrolebindings".to_string()),
            (RBAC.to_string(), "rolebindings".to_string()),
        );
        let cluster = st.iter(&crb);
        let stored: Vec<&Value> = cluster.map(|(_, b)| b.as_ref()).collect();
        let mut bindings: Vec<(&Value, &str)> = bootstrap::cluster_role_bindings()
            .iter()
            .chain(stored)
            .map(|b| (b, ""))
            .collect();
        if !namespace.is_empty() {
            let local = st.iter(&rb);
            bindings.extend(
                local
                    .filter(|(k, _)| k.0 == namespace)
                    .map(|(_, b)| (b.as_ref(), namespace)),
            );
        }
        for (binding, ns) in bindings {
            let subjects = binding.get("subjects").and_then(Value::as_array);
            let Some(subject) = subjects
                .into_iter()
                .flatten()
                .find(|s| applies(user, s, ns))
            else {
                continue;
            };
            match role_rules(st, binding, ns) {
                Err(e) => grants.errors.push(e),
                Ok(rules) => {
                    let source = grants.sources.len();
                    grants.sources.push(describe(binding, ns, subject));
                    grants.rules.extend(rules.into_iter().map(|r| (source, r)));
                }
            }
        }
        grants
    }

    /// rbac.go `Authorize` over these grants: allowed by the first rule that allows `a`;
    /// otherwise denied, with the errors met as the reason.
    fn decide(&self, a: &Attributes) -> Decision {
        if let Some((source, _)) = self.rules.iter().find(|(_, r)| rule_allows(a, r)) {
            return Decision {
                allowed: true,
                reason: format!("RBAC: allowed by {}", self.sources[*source]),
            };
        }
        let reason = if self.errors.is_empty() {
            String::new()
        } else {
            format!("RBAC: {}", aggregate(&self.errors))
        };
        Decision {
            allowed: false,
            reason,
        }
    }
}

/// `utilerrors.NewAggregate(...).Error()`: one message, or `[a, b]`.
fn aggregate(errors: &[String]) -> String {
    match errors {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}

/// Every rule granted to `user` in `namespace` (`RulesFor`, for SelfSubjectRulesReview), and
/// the errors met (the review's `evaluationError`).
pub fn rules_for(st: &Store, user: &UserInfo, namespace: &str) -> (Vec<PolicyRule>, Vec<String>) {
    let grants = Grants::read(st, user, namespace);
    let rules = grants.rules.into_iter().map(|(_, r)| r).collect();
    (rules, grants.errors)
}

/// The RBAC objects' storage: a change to any of them changes every decision.
const RBAC_PLURALS: [&str; 4] = [
    "clusterroles",
    "clusterrolebindings",
    "roles",
    "rolebindings",
];

/// At most this many users and namespaces are remembered between RBAC changes.
const CACHED: usize = 64;

/// [`Grants`] per user and namespace, read from the store again after any change to a Role,
/// ClusterRole or binding (every request is authorized, and reading the grants, with their
/// rules decoded, cost more than serving many a request).
#[derive(Default)]
pub struct Cache(Mutex<Cached>);

#[derive(Default)]
struct Cached {
    /// The rv of the last change to each of [`RBAC_PLURALS`] when the grants were read.
    version: [u64; 4],
    grants: Vec<(String, Vec<String>, String, Arc<Grants>)>,
}

impl Cache {
    /// Whether `user` may do `a` (rbac.go `Authorize`, behind the privileged-group check).
    pub fn authorize(&self, st: &Store, user: &UserInfo, a: &Attributes) -> Decision {
        if has(&user.groups, "system:masters") {
            return Decision {
                allowed: true,
                reason: String::new(),
            };
        }
        self.grants(st, user, &a.namespace).decide(a)
    }

    fn grants(&self, st: &Store, user: &UserInfo, namespace: &str) -> Arc<Grants> {
        let version = RBAC_PLURALS.map(|p| st.last_change(&(RBAC.to_string(), p.to_string())));
        let mut cached = match self.0.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if cached.version != version || cached.grants.len() >= CACHED {
            cached.version = version;
            cached.grants.clear();
        }
        let hit = cached.grants.iter().find(|(name, groups, ns, _)| {
            *name == user.name && *groups == user.groups && ns == namespace
        });
        if let Some((.., grants)) = hit {
            return grants.clone();
        }
        let grants = Arc::new(Grants::read(st, user, namespace));
        let key = (
            user.name.clone(),
            user.groups.clone(),
            namespace.to_string(),
        );
        cached.grants.push((key.0, key.1, key.2, grants.clone()));
        grants
    }
}

#[cfg(test)]
#[path = "rbac_tests.rs"]
mod tests;
