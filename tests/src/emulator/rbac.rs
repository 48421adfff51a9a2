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
//! Roles and bindings are read from the store on every request, so a `kubectl apply` of a
//! Role takes effect on the next request, as on a real server.

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
        a.resource.clone()
    } else {
        format!("{}/{}", a.resource, a.subresource)
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

/// Visits every rule granted to `user` in `namespace` (cluster-wide bindings first), like
/// `VisitRulesFor`; `visit` returns false to stop. Returns the errors met on the way.
fn visit_rules(
    st: &Store,
    user: &UserInfo,
    namespace: &str,
    visit: &mut dyn FnMut(&dyn Fn() -> String, &PolicyRule) -> bool,
) -> Vec<String> {
    let mut errors = Vec::new();
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
            Err(e) => errors.push(e),
            Ok(rules) => {
                let source = || describe(binding, ns, subject);
                if !rules.iter().all(|r| visit(&source, r)) {
                    return errors;
                }
            }
        }
    }
    errors
}

/// `utilerrors.NewAggregate(...).Error()`: one message, or `[a, b]`.
fn aggregate(errors: &[String]) -> String {
    match errors {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}

/// Whether `user` may do `a` (rbac.go `Authorize`, behind the privileged-group check).
pub fn authorize(st: &Store, user: &UserInfo, a: &Attributes) -> Decision {
    if has(&user.groups, "system:masters") {
        return Decision {
            allowed: true,
            reason: String::new(),
        };
    }
    let mut reason = String::new();
    let errors = visit_rules(st, user, &a.namespace, &mut |source, rule| {
        if rule_allows(a, rule) {
            reason = format!("RBAC: allowed by {}", source());
            return false;
        }
        true
    });
    if !reason.is_empty() {
        return Decision {
            allowed: true,
            reason,
        };
    }
    let reason = if errors.is_empty() {
        String::new()
    } else {
        format!("RBAC: {}", aggregate(&errors))
    };
    Decision {
        allowed: false,
        reason,
    }
}

/// Every rule granted to `user` in `namespace` (`RulesFor`, for SelfSubjectRulesReview), and
/// the errors met (the review's `evaluationError`).
pub fn rules_for(st: &Store, user: &UserInfo, namespace: &str) -> (Vec<PolicyRule>, Vec<String>) {
    let mut rules = Vec::new();
    let errors = visit_rules(st, user, namespace, &mut |_, rule| {
        rules.push(rule.clone());
        true
    });
    (rules, errors)
}

#[cfg(test)]
#[path = "rbac_tests.rs"]
mod tests;
