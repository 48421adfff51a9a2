//! Harness of the RBAC suite: raw HTTP requests (to see exact Status bodies), kubectl
//! argument helpers, the expected 403 wording, and the ServiceAccount `dev/ci` with its
//! Roles, bindings and token.

use std::io::{Read, Write};

use catalog_e2e::emulator::Emulator;
use serde_json::Value;

use super::support::*;

pub const GROUP: &str = "automotive.sdv.cloud.redhat.com";

/// One HTTP/1.1 request with `Connection: close`; the status code and body.
pub fn raw(
    emu: &Emulator,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(emu.addr()).expect("connect");
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{auth}Content-Type: \
         application/merge-patch+json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).expect("send");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    let code = out[9..12].parse().expect("status code");
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_string());
    (code, body.unwrap_or_default())
}

/// `pre` then `args`: global flags (`--token T`) before a kubectl command.
pub fn with<'a>(pre: &[&'a str], args: &[&'a str]) -> Vec<&'a str> {
    [pre, args].concat()
}

pub fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// The Roles and bindings of the first tests: `ci` in `dev` reads CatalogImages (a Role made
/// with `kubectl create role`), and through a RoleBinding to a ClusterRole may patch the
/// status of CatalogImage `x` only (and get every status: kubectl patch reads first), update CatalogSource finalizers, and get/watch the
/// ConfigMap `settings` only.
pub const CLUSTER_ROLE: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: status-writer
rules:
- apiGroups: ["automotive.sdv.cloud.redhat.com"]
  resources: ["catalogimages/status"]
  verbs: ["get"]
- apiGroups: ["automotive.sdv.cloud.redhat.com"]
  resources: ["catalogimages/status"]
  resourceNames: ["x"]
  verbs: ["patch"]
- apiGroups: ["automotive.sdv.cloud.redhat.com"]
  resources: ["catalogsources/finalizers"]
  verbs: ["update"]
- apiGroups: [""]
  resources: ["configmaps"]
  resourceNames: ["settings"]
  verbs: ["get", "list", "watch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: ci-status
  namespace: dev
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: status-writer
subjects:
- kind: ServiceAccount
  name: ci
"#;

/// Emulator with CRDs, namespaces dev and staging, CatalogImages `x` and `y` in dev, the
/// ServiceAccount `dev/ci` with its RBAC, and a token of it from `kubectl create token`.
pub fn setup() -> (Kubectl, String) {
    let k = Kubectl::tls();
    k.apply_crds();
    k.ok(&["create", "namespace", "dev"]);
    k.ok(&["create", "namespace", "staging"]);
    for name in ["x", "w"] {
        let f = write(
            k.dir(),
            &format!("{name}.yaml"),
            &image(name, "quay.io/a/b:1", "arm64", ""),
        );
        k.ok(&["apply", "-n", "dev", "-f", &f]);
    }
    k.ok(&["create", "serviceaccount", "ci", "-n", "dev"]);
    let res = format!("catalogimages.{GROUP}");
    k.ok(&[
        "create",
        "role",
        "image-reader",
        "-n",
        "dev",
        "--verb=get,list",
        "--resource",
        &res,
    ]);
    k.ok(&[
        "create",
        "rolebinding",
        "ci-reader",
        "-n",
        "dev",
        "--role=image-reader",
        "--serviceaccount=dev:ci",
    ]);
    let f = write(k.dir(), "rbac.yaml", CLUSTER_ROLE);
    k.ok(&["apply", "-f", &f]);
    let token = k
        .ok(&["create", "token", "ci", "-n", "dev"])
        .trim()
        .to_string();
    assert_eq!(token.split('.').count(), 3, "a JWT-shaped token: {token}");
    (k, token)
}

pub fn forbidden(user: &str, verb: &str, resource: &str, group: &str, scope: &str) -> String {
    format!(
        "User \"{user}\" cannot {verb} resource \"{resource}\" in API group \"{group}\" {scope}"
    )
}
