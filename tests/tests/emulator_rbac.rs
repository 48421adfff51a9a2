//! The emulator authenticates and authorizes like the API server, proven with the real
//! kubectl: ServiceAccount tokens from `kubectl create token`, Roles/ClusterRoles and their
//! bindings (subresources, resourceNames, a RoleBinding to a ClusterRole), the exact 403
//! Status, `kubectl auth whoami|can-i`, impersonation, discovery for every authenticated
//! user, 401 for unknown tokens, and the helpers other suites use to run a component under
//! a ServiceAccount (`deploy/rbac.yaml`'s `catalog-reconciler`).

use catalog_e2e::emulator::{Emulator, EmulatorOptions};
use serde_json::json;

use catalog_e2e::suite::kubectl as support;
use support::*;
#[path = "emulator_support/rbac.rs"]
mod rbac;
use rbac::*;

#[test]
fn service_account_token_roles_and_exact_forbidden() {
    let (k, t) = setup();
    let sa = "system:serviceaccount:dev:ci";
    let dev = "in the namespace \"dev\"";
    let flags = ["--token", t.as_str()];
    assert!(
        k.ok(&with(&flags, &["get", "cimg", "-n", "dev"]))
            .contains('x')
    );
    k.ok(&with(&flags, &["get", "cimg", "x", "-n", "dev"]));
    let patch = [
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"Available"}}"#,
    ];
    k.ok(&with(
        &flags,
        &[&["patch", "cimg", "x", "-n", "dev"], &patch[..]].concat(),
    ));
    let err = k.fails(
        &with(
            &flags,
            &[&["patch", "cimg", "w", "-n", "dev"], &patch[..]].concat(),
        ),
        None,
    );
    let want = forbidden(sa, "patch", "catalogimages/status", GROUP, dev);
    assert!(
        err.contains(&format!(
            "Error from server (Forbidden): catalogimages.{GROUP} \"w\" is forbidden: {want}"
        )),
        "{err}"
    );
    let err = k.fails(&with(&flags, &["delete", "cimg", "x", "-n", "dev"]), None);
    assert!(
        err.contains(&forbidden(sa, "delete", "catalogimages", GROUP, dev)),
        "{err}"
    );
    let err = k.fails(&with(&flags, &["get", "cimg", "-A"]), None);
    let want = forbidden(sa, "list", "catalogimages", GROUP, "at the cluster scope");
    assert!(
        err.contains(&format!("catalogimages.{GROUP} is forbidden: {want}")),
        "{err}"
    );
    let err = k.fails(&with(&flags, &["get", "cimg", "-n", "staging"]), None);
    assert!(
        err.contains("in the namespace \"staging\""),
        "a RoleBinding grants in its namespace only: {err}"
    );
    let err = k.fails(&with(&flags, &["get", "secrets", "-n", "dev"]), None);
    assert!(
        err.contains(&format!(
            "secrets is forbidden: {}",
            forbidden(sa, "list", "secrets", "", dev)
        )),
        "{err}"
    );
    // resourceNames: the named ConfigMap is readable (authorized, then not found); the list is not.
    let err = k.fails(
        &with(&flags, &["get", "configmap", "settings", "-n", "dev"]),
        None,
    );
    assert!(err.contains("(NotFound)"), "{err}");
    let err = k.fails(&with(&flags, &["get", "configmaps", "-n", "dev"]), None);
    assert!(
        err.contains(&forbidden(sa, "list", "configmaps", "", dev)),
        "{err}"
    );
    // The exact Status body.
    let path = format!("/apis/{GROUP}/v1alpha1/namespaces/dev/catalogimages/w/status");
    let (code, body) = raw(&k.emu, "PATCH", &path, Some(&t), r#"{"status":{}}"#);
    assert_eq!(code, 403);
    let msg = format!(
        "catalogimages.{GROUP} \"w\" is forbidden: {}",
        forbidden(sa, "patch", "catalogimages/status", GROUP, dev)
    );
    let want = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": msg, "reason": "Forbidden", "details": {"name": "w", "group": GROUP, "kind": "catalogimages"},
        "code": 403});
    assert_eq!(json_of(&body), want);
}

#[test]
fn watches_and_lists_are_authorized_by_verb_and_name() {
    let (k, t) = setup();
    let sa = "system:serviceaccount:dev:ci";
    let base = format!("/apis/{GROUP}/v1alpha1/namespaces/dev/catalogimages");
    let (code, body) = raw(
        &k.emu,
        "GET",
        &format!("{base}?watch=true&timeoutSeconds=1"),
        Some(&t),
        "",
    );
    assert_eq!(code, 403, "the Role grants get and list, not watch: {body}");
    assert!(
        json_of(&body)["message"]
            .as_str()
            .unwrap()
            .contains(&forbidden(
                sa,
                "watch",
                "catalogimages",
                GROUP,
                "in the namespace \"dev\""
            ))
    );
    let (code, _) = raw(&k.emu, "GET", &base, Some(&t), "");
    assert_eq!(code, 200);
    let cms = "/api/v1/namespaces/dev/configmaps";
    let named = format!("{cms}?fieldSelector=metadata.name%3Dsettings&watch=true&timeoutSeconds=1");
    let (code, body) = raw(&k.emu, "GET", &named, Some(&t), "");
    assert_eq!(
        code, 200,
        "a watch limited to a resourceName is allowed: {body}"
    );
    let (code, body) = raw(
        &k.emu,
        "GET",
        &format!("{cms}?fieldSelector=metadata.name%3Dother"),
        Some(&t),
        "",
    );
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        json_of(&body)["details"],
        json!({"name": "other", "kind": "configmaps"})
    );
}

#[test]
fn whoami_can_i_and_impersonation() {
    let (k, t) = setup();
    let sa = "system:serviceaccount:dev:ci";
    let me = k.ok(&["auth", "whoami", "-o", "json"]);
    assert_eq!(
        json_of(&me)["status"]["userInfo"]["groups"],
        json!(["system:masters", "system:authenticated"])
    );
    let me = json_of(&k.ok(&["--token", &t, "auth", "whoami", "-o", "json"]));
    assert_eq!(me["status"]["userInfo"]["username"], sa);
    assert_eq!(
        me["status"]["userInfo"]["groups"],
        json!([
            "system:serviceaccounts",
            "system:serviceaccounts:dev",
            "system:authenticated"
        ])
    );
    let can = |args: &[&str]| {
        let out = k.output(
            &[&["--token", t.as_str(), "auth", "can-i"], args].concat(),
            None,
        );
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
        )
    };
    assert_eq!(
        can(&["list", "catalogimages", "-n", "dev"]),
        (Some(0), "yes".into())
    );
    assert_eq!(
        can(&["delete", "catalogimages", "-n", "dev"]),
        (Some(1), "no".into())
    );
    assert_eq!(
        can(&[
            "patch",
            "catalogimages/x",
            "--subresource=status",
            "-n",
            "dev"
        ]),
        (Some(0), "yes".into())
    );
    assert_eq!(
        can(&[
            "patch",
            "catalogimages/w",
            "--subresource=status",
            "-n",
            "dev"
        ]),
        (Some(1), "no".into())
    );
    let list = k.ok(&["--token", &t, "auth", "can-i", "--list", "-n", "dev"]);
    assert!(
        list.contains(&format!("catalogimages.{GROUP}/status")) && list.contains("[x]"),
        "{list}"
    );
    // Impersonation: the admin may, as the ServiceAccount and as any user and group.
    assert!(
        k.ok(&["--as", sa, "get", "cimg", "-n", "dev"])
            .contains('x')
    );
    let err = k.fails(&["--as", sa, "delete", "cimg", "x", "-n", "dev"], None);
    assert!(
        err.contains(&forbidden(
            sa,
            "delete",
            "catalogimages",
            GROUP,
            "in the namespace \"dev\""
        )),
        "{err}"
    );
    let alice = json_of(&k.ok(&[
        "--as",
        "alice",
        "--as-group",
        "devs",
        "auth",
        "whoami",
        "-o",
        "json",
    ]));
    assert_eq!(
        alice["status"]["userInfo"],
        json!({"username": "alice", "groups": ["devs", "system:authenticated"]})
    );
    // The ServiceAccount may not (`get --raw`: no discovery, which a fresh kubectl does first).
    let raw_get = ["get", "--raw", "/api/v1/namespaces/dev/configmaps"];
    let err = k.fails(&with(&["--token", &t, "--as", "alice"], &raw_get), None);
    let want = format!(
        "users \"alice\" is forbidden: {}",
        forbidden(sa, "impersonate", "users", "", "at the cluster scope")
    );
    assert!(err.contains(&want), "{err}");
}

#[test]
fn discovery_for_any_authenticated_user_and_401_for_unknown_tokens() {
    kubectl_present();
    let emu = Emulator::start(EmulatorOptions {
        token: Some("admin-token".into()),
        forbidden_token: Some("nobody".into()),
        ..EmulatorOptions::with_crds(CRDS)
    })
    .expect("emulator");
    let k = catalog_e2e::kubectl::Kubectl::tls(&emu);
    assert!(
        k.ok(&["--token", "nobody", "api-resources"])
            .contains("catalogimages")
    );
    assert!(
        k.ok(&["--token", "nobody", "version"])
            .contains("Server Version: v1.32")
    );
    let err = k.fails(&["--token", "nobody", "get", "configmaps"], None);
    assert!(
        err.contains("User \"system:serviceaccount:default:forbidden\" cannot list"),
        "{err}"
    );
    let err = k.fails(&["--token", "wrong", "get", "configmaps"], None);
    assert!(
        err.contains("error: You must be logged in to the server"),
        "{err}"
    );
    let unauthorized = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "Unauthorized", "reason": "Unauthorized", "code": 401});
    for token in [Some("wrong"), None] {
        let (code, body) = raw(&emu, "GET", "/api", token, "");
        assert_eq!(
            (code, json_of(&body)),
            (401, unauthorized.clone()),
            "{token:?}"
        );
    }
    // A User/Group token (--token-auth-file) and a binding whose ClusterRole is missing.
    emu.add_user_token("alice-token", "alice", &["devs"]);
    let f = write(
        k.dir(),
        "b.yaml",
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: devs-missing}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: missing}
subjects: [{kind: Group, name: devs, apiGroup: rbac.authorization.k8s.io}]
"#,
    );
    k.ok(&["apply", "-f", &f]);
    let err = k.fails(&["--token", "alice-token", "get", "secrets", "-A"], None);
    assert!(err.contains("at the cluster scope: RBAC: clusterrole.rbac.authorization.k8s.io \"missing\" not found"), "{err}");
    k.ok(&[
        "create",
        "clusterrolebinding",
        "devs-view",
        "--clusterrole=cluster-admin",
        "--group=devs",
    ]);
    k.ok(&["--token", "alice-token", "get", "secrets", "-A"]);
    // A ServiceAccount's token stops working when the ServiceAccount is deleted.
    k.ok(&["create", "serviceaccount", "gone"]);
    let token = emu
        .token_for_service_account("default", "gone")
        .expect("token");
    k.ok(&["--token", &token, "auth", "whoami"]);
    k.ok(&["delete", "serviceaccount", "gone"]);
    assert!(
        k.fails(&["--token", &token, "auth", "whoami"], None)
            .contains("Unauthorized")
    );
    assert!(emu.token_for_service_account("default", "gone").is_err());
}

#[test]
fn reconciler_service_account_of_deploy_rbac() {
    let k = Kubectl::tls();
    k.apply_crds();
    k.ok(&["create", "namespace", "catalog-system"]);
    k.ok(&["create", "namespace", "dev"]);
    let rbac = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/rbac.yaml");
    k.ok(&["apply", "-f", rbac]);
    let kc = write(
        k.dir(),
        "reconciler.kubeconfig",
        &k.emu
            .kubeconfig_for_service_account("catalog-system", "catalog-reconciler")
            .expect("kubeconfig"),
    );
    let flags = ["--kubeconfig", kc.as_str()];
    let user = "system:serviceaccount:catalog-system:catalog-reconciler";
    let me = json_of(&k.ok(&with(&flags, &["auth", "whoami", "-o", "json"])));
    assert_eq!(me["status"]["userInfo"]["username"], user);
    k.ok(&with(&flags, &["get", "catalogimages", "-A"]));
    let lease = ["get", "lease", "catalog-reconciler"];
    let err = k.fails(
        &with(&flags, &[&lease[..], &["-n", "catalog-system"]].concat()),
        None,
    );
    assert!(
        err.contains("(NotFound)"),
        "leader election may read its Lease: {err}"
    );
    let err = k.fails(&with(&flags, &[&lease[..], &["-n", "dev"]].concat()), None);
    let want = forbidden(
        user,
        "get",
        "leases",
        "coordination.k8s.io",
        "in the namespace \"dev\"",
    );
    assert!(
        err.contains(&format!(
            "leases.coordination.k8s.io \"catalog-reconciler\" is forbidden: {want}"
        )),
        "{err}"
    );
    let err = k.fails(
        &with(&flags, &["create", "configmap", "c", "-n", "dev"]),
        None,
    );
    assert!(
        err.contains(&forbidden(
            user,
            "create",
            "configmaps",
            "",
            "in the namespace \"dev\""
        )),
        "{err}"
    );
}

/// kube-rs (what the reconciler uses) with [`Emulator::kube_client_for_service_account`]:
/// allowed reads succeed, a refused write is the exact 403.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_client_of_the_reconciler_service_account() {
    use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams};
    let emu = Emulator::start(EmulatorOptions::with_crds(CRDS)).expect("emulator");
    let k = catalog_e2e::kubectl::Kubectl::new(Some(&emu));
    k.ok(&["create", "namespace", "catalog-system"]);
    k.ok(&[
        "apply",
        "-f",
        concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/rbac.yaml"),
    ]);
    let client = emu
        .kube_client_for_service_account("catalog-system", "catalog-reconciler")
        .expect("client");
    let resource = |kind: &str, plural: &str| {
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(GROUP, "v1alpha1", kind), plural)
    };
    let images: Api<DynamicObject> =
        Api::all_with(client.clone(), &resource("CatalogImage", "catalogimages"));
    images
        .list(&ListParams::default())
        .await
        .expect("list allowed");
    let sources: Api<DynamicObject> = Api::namespaced_with(
        client,
        "default",
        &resource("CatalogSource", "catalogsources"),
    );
    let user = "system:serviceaccount:catalog-system:catalog-reconciler";
    match sources.delete("s", &DeleteParams::default()).await {
        Err(kube::Error::Api(s)) => assert_eq!(
            (s.code, s.reason.as_str(), s.message.as_str()),
            (
                403,
                "Forbidden",
                format!(
                    "catalogsources.{GROUP} \"s\" is forbidden: {}",
                    forbidden(
                        user,
                        "delete",
                        "catalogsources",
                        GROUP,
                        "in the namespace \"default\""
                    )
                )
                .as_str()
            )
        ),
        other => panic!("expected 403, got {other:?}"),
    }
}
