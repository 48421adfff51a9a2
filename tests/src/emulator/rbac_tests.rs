//! Rule matching as `pkg/apis/rbac/v1/evaluation_helpers.go` and rbac.go's `RuleAllows` do.

use serde_json::{Value, json};

use super::*;

fn rule(v: serde_json::Value) -> PolicyRule {
    serde_json::from_value(v).expect("rule")
}

fn res(verb: &str, resource: &str, name: &str) -> Attributes {
    Attributes::resource(verb, "g.io", resource, "dev", name)
}

#[test]
fn resources_and_subresources() {
    let r = rule(
        serde_json::json!({"apiGroups": ["g.io"], "resources": ["widgets/status"],
        "verbs": ["patch"]}),
    );
    assert!(rule_allows(&res("patch", "widgets/status", "x"), &r));
    assert!(!rule_allows(&res("patch", "widgets", "x"), &r));
    assert!(!rule_allows(&res("update", "widgets/status", "x"), &r));
    let r =
        rule(serde_json::json!({"apiGroups": ["*"], "resources": ["*/status"], "verbs": ["*"]}));
    assert!(rule_allows(&res("update", "widgets/status", "x"), &r));
    assert!(!rule_allows(&res("update", "widgets/finalizers", "x"), &r));
    assert!(!rule_allows(&res("get", "widgets", "x"), &r));
    let r = rule(serde_json::json!({"apiGroups": [""], "resources": ["*"], "verbs": ["get"]}));
    assert!(
        !rule_allows(&res("get", "widgets", "x"), &r),
        "core group only"
    );
    let all =
        rule(serde_json::json!({"apiGroups": ["g.io"], "resources": ["*"], "verbs": ["get"]}));
    assert!(
        rule_allows(&res("get", "widgets/status", "x"), &all),
        "* covers subresources"
    );
}

#[test]
fn resource_names_never_match_create_or_unnamed_collections() {
    let r = rule(
        serde_json::json!({"apiGroups": ["g.io"], "resources": ["widgets"],
        "resourceNames": ["a"], "verbs": ["get", "list", "watch", "create"]}),
    );
    assert!(rule_allows(&res("get", "widgets", "a"), &r));
    assert!(!rule_allows(&res("get", "widgets", "b"), &r));
    assert!(!rule_allows(&res("create", "widgets", ""), &r));
    assert!(!rule_allows(&res("list", "widgets", ""), &r));
    assert!(
        rule_allows(&res("watch", "widgets", "a"), &r),
        "fieldSelector metadata.name=a"
    );
}

#[test]
fn non_resource_urls() {
    let r = rule(serde_json::json!({"nonResourceURLs": ["/apis/*", "/version"], "verbs": ["get"]}));
    assert!(rule_allows(&Attributes::path("get", "/apis/g.io/v1"), &r));
    assert!(rule_allows(&Attributes::path("get", "/version"), &r));
    assert!(!rule_allows(&Attributes::path("get", "/version/x"), &r));
    assert!(!rule_allows(&Attributes::path("post", "/version"), &r));
    assert!(
        !rule_allows(&res("get", "widgets", "a"), &r),
        "never a resource request"
    );
}

#[test]
fn subjects_and_reasons() {
    let sa = UserInfo::service_account("dev", "bot", "u");
    let binding_ns = "dev";
    let subject = serde_json::json!({"kind": "ServiceAccount", "name": "bot"});
    assert!(applies(&sa, &subject, binding_ns));
    assert!(
        !applies(&sa, &subject, ""),
        "no namespace in a ClusterRoleBinding"
    );
    assert!(applies(
        &sa,
        &serde_json::json!({"kind": "Group", "name": "system:serviceaccounts:dev"}),
        ""
    ));
    assert!(!applies(
        &sa,
        &serde_json::json!({"kind": "User", "name": "bot"}),
        ""
    ));
    assert_eq!(
        describe_subject(&subject, "dev"),
        "ServiceAccount \"bot/dev\""
    );
    assert_eq!(aggregate(&["a".into(), "b".into()]), "[a, b]");
}

#[test]
fn cached_grants_follow_every_rbac_change() {
    let mut st = Store::new(100);
    let cache = Cache::default();
    let user = UserInfo::service_account("dev", "app", "");
    let get = Attributes::resource("get", "", "configmaps", "dev", "c");
    let put = |st: &mut Store, plural: &str, ns: Option<&str>, obj: Value| {
        let name = obj["metadata"]["name"].as_str().expect("name").to_string();
        st.put(&(RBAC.into(), plural.into()), obj_key(ns, &name), obj);
    };
    let decide = |st: &Store| cache.authorize(st, &user, &get);
    assert_eq!(
        decide(&st),
        Decision {
            allowed: false,
            reason: String::new()
        }
    );
    let binding = json!({"metadata": {"name": "b", "namespace": "dev"},
        "roleRef": {"kind": "Role", "name": "r"},
        "subjects": [{"kind": "ServiceAccount", "name": "app"}]});
    put(&mut st, "rolebindings", Some("dev"), binding);
    let missing = "RBAC: role.rbac.authorization.k8s.io \"r\" not found";
    assert_eq!(
        (decide(&st).allowed, decide(&st).reason),
        (false, missing.into())
    );
    let role = |verbs: Value| {
        json!({"metadata": {"name": "r", "namespace": "dev"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": verbs}]})
    };
    put(&mut st, "roles", Some("dev"), role(json!(["get"])));
    let allowed =
        "RBAC: allowed by RoleBinding \"b/dev\" of Role \"r\" to ServiceAccount \"app/dev\"";
    assert_eq!(
        (decide(&st).allowed, decide(&st).reason),
        (true, allowed.into())
    );
    put(&mut st, "roles", Some("dev"), role(json!(["list"])));
    assert!(!decide(&st).allowed, "the role lost get");
    let admin = json!({"metadata": {"name": "all"}, "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "Group", "name": "system:serviceaccounts:dev"}]});
    put(&mut st, "clusterrolebindings", None, admin);
    assert!(
        decide(&st)
            .reason
            .starts_with("RBAC: allowed by ClusterRoleBinding \"all\"")
    );
    let other = UserInfo::service_account("prod", "app", "");
    assert!(
        !cache.authorize(&st, &other, &get).allowed,
        "cached per user"
    );
    let elsewhere = Attributes::resource("get", "", "configmaps", "prod", "c");
    assert!(
        cache.authorize(&st, &user, &elsewhere).allowed,
        "cluster-wide"
    );
}
