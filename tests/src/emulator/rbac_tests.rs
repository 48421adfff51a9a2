//! Rule matching as `pkg/apis/rbac/v1/evaluation_helpers.go` and rbac.go's `RuleAllows` do.

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
