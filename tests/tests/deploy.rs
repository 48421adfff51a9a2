//! `deploy/` is how operators install the reconciler: `kubectl apply -k deploy/`, then
//! `kubectl apply -k deploy/samples/`. This suite renders both with the real `kubectl
//! kustomize`, checks the objects for what the installation promises (least-privilege RBAC; a
//! restricted, leader-elected Deployment whose every argument and variable the real
//! `catalog-reconciler` accepts; a metrics Service and a webhook Service on separate ports; one sample CatalogSource per environment of
//! `catalog-repo-template/catalog.yaml`), and applies them with the real kubectl to
//! kube-emulator, a fresh cluster, in the two steps the README gives.
//!
//! Every kubectl run gets a fresh HOME: no discovery cache, no user configuration.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use catalog_api::repo::RepoConfig;
use catalog_e2e::emulator::{Emulator, EmulatorOptions};
use catalog_e2e::process::binary;
use serde_json::{Value, json};

mod deploy_support;
use deploy_support::*;

const GROUP: &str = "automotive.sdv.cloud.redhat.com";
const RBAC: &str = "rbac.authorization.k8s.io";
const PART_OF: &str = "app.kubernetes.io/part-of";

#[test]
fn base_holds_the_crds_and_the_controller_and_no_custom_resource() {
    let base = &rendered().0.objects;
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for o in base {
        *kinds.entry(kind(o)).or_default() += 1;
    }
    let expected: BTreeMap<&str, usize> = [
        ("ClusterRole", 1),
        ("ClusterRoleBinding", 1),
        ("CustomResourceDefinition", 2),
        ("Deployment", 1),
        ("Namespace", 1),
        ("Role", 1),
        ("RoleBinding", 1),
        ("Service", 2),
        ("ServiceAccount", 1),
    ]
    .into();
    assert_eq!(kinds, expected, "kinds rendered from deploy/");
    let crds: BTreeSet<&str> = all(base, "CustomResourceDefinition")
        .into_iter()
        .map(name)
        .collect();
    let want = [
        format!("catalogimages.{GROUP}"),
        format!("catalogsources.{GROUP}"),
    ];
    assert_eq!(crds, want.iter().map(String::as_str).collect());
    // kubectl cannot create a custom resource in the run that creates its CRD.
    for o in base {
        assert!(
            !o["apiVersion"]
                .as_str()
                .unwrap_or_default()
                .starts_with(GROUP),
            "{} {} is a custom resource: `kubectl apply -k deploy/` would fail on a fresh cluster; it belongs in deploy/samples/",
            kind(o),
            name(o)
        );
    }
    let ns = only(base, "Namespace");
    assert_eq!(
        ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"], "restricted",
        "the namespace enforces the restricted Pod Security Standard the Deployment meets"
    );
    for o in base {
        if matches!(
            kind(o),
            "ServiceAccount" | "Role" | "RoleBinding" | "Deployment" | "Service"
        ) {
            assert_eq!(
                namespace(o),
                system_namespace(),
                "{} {} must name its namespace, or kubectl puts it in the current context's",
                kind(o),
                name(o)
            );
        }
        assert_eq!(
            o["metadata"]["labels"][PART_OF],
            "automotive-image-catalog",
            "{} {} lacks the {PART_OF} label",
            kind(o),
            name(o)
        );
    }
}

/// `(apiGroup, resource) -> verbs` of a Role or ClusterRole; asserts no wildcard anywhere.
fn permissions(role: &Value) -> BTreeMap<(String, String), BTreeSet<String>> {
    let mut out: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for rule in role["rules"].as_array().expect("rules") {
        let (groups, resources, verbs) = (
            strs(&rule["apiGroups"]),
            strs(&rule["resources"]),
            strs(&rule["verbs"]),
        );
        for item in groups.iter().chain(&resources).chain(&verbs) {
            assert!(!item.contains('*'), "wildcard {item:?} in {}", name(role));
        }
        assert!(
            rule.get("nonResourceURLs").is_none(),
            "nonResourceURLs in {}",
            name(role)
        );
        for g in &groups {
            for r in &resources {
                let entry = out.entry((g.to_string(), r.to_string())).or_default();
                entry.extend(verbs.iter().map(|v| v.to_string()));
            }
        }
    }
    out
}

fn grants(list: &[(&str, &str, &[&str])]) -> BTreeMap<(String, String), BTreeSet<String>> {
    list.iter()
        .map(|(g, r, verbs)| {
            let verbs = verbs.iter().map(|v| v.to_string()).collect();
            ((g.to_string(), r.to_string()), verbs)
        })
        .collect()
}

/// A binding's roleRef names `role`, and its only subject is the reconciler's ServiceAccount.
fn binds(binding: &Value, role: &Value, sa: &Value) {
    let expected_ref = json!({"apiGroup": RBAC, "kind": kind(role), "name": name(role)});
    assert_eq!(binding["roleRef"], expected_ref, "{}", name(binding));
    let subject = json!({"kind": "ServiceAccount", "name": name(sa), "namespace": namespace(sa)});
    assert_eq!(binding["subjects"], json!([subject]), "{}", name(binding));
}

#[test]
fn rbac_grants_exactly_what_the_reconciler_does() {
    let base = &rendered().0.objects;
    let sa = only(base, "ServiceAccount");
    let cluster_role = only(base, "ClusterRole");
    const STATUS: &[&str] = &["patch"];
    let events: &[&str] = &["create", "patch"];
    // What tests/tests/deploy_shipped.rs records the reconciler doing, plus `create` (a
    // server-side apply that creates is authorized as create) and `delete` (pruning).
    // `get`: the verifier reads the whole image when it verifies one.
    let expected = grants(&[
        (
            GROUP,
            "catalogimages",
            &["create", "delete", "get", "list", "patch", "watch"],
        ),
        (GROUP, "catalogimages/status", STATUS),
        // The prune finalizer, and webhook deliveries recorded as an annotation.
        (GROUP, "catalogsources", &["list", "patch", "watch"]),
        (GROUP, "catalogsources/status", STATUS),
        // Registry and Git credentials, and webhook secrets, named by the custom resources.
        ("", "secrets", &["get", "list", "watch"]),
        ("events.k8s.io", "events", events),
    ]);
    assert_eq!(permissions(cluster_role), expected, "ClusterRole rules");
    binds(only(base, "ClusterRoleBinding"), cluster_role, sa);

    // Leader election: the Lease lives in the reconciler's namespace only.
    let role = only(base, "Role");
    assert_eq!(namespace(role), system_namespace());
    let lease = grants(&[(
        "coordination.k8s.io",
        "leases",
        &["create", "get", "update"],
    )]);
    assert_eq!(permissions(role), lease, "Role rules");
    let binding = only(base, "RoleBinding");
    assert_eq!(namespace(binding), system_namespace());
    binds(binding, role, sa);
}

/// The value of `--flag=value` or `--flag value` in `args`.
fn arg_value<'a>(args: &[&'a str], flag: &str) -> Option<&'a str> {
    let eq = format!("{flag}=");
    args.iter().enumerate().find_map(|(i, a)| {
        a.strip_prefix(eq.as_str())
            .or_else(|| (*a == flag).then(|| args.get(i + 1).copied()).flatten())
    })
}

#[test]
fn deployment_runs_two_leader_elected_restricted_replicas() {
    let base = &rendered().0.objects;
    let d = only(base, "Deployment");
    let spec = &d["spec"];
    assert_eq!(spec["replicas"], 2, "two replicas");
    let pod_labels = spec["template"]["metadata"]["labels"]
        .as_object()
        .expect("pod labels");
    for (k, v) in spec["selector"]["matchLabels"]
        .as_object()
        .expect("matchLabels")
    {
        assert_eq!(pod_labels.get(k), Some(v), "selector {k} matches the pods");
    }
    let pod = &spec["template"]["spec"];
    let sa = only(base, "ServiceAccount");
    assert_eq!(pod["serviceAccountName"], name(sa));
    assert_eq!(namespace(d), namespace(sa));

    let c = container(d);
    let args = strs(&c["args"]);
    assert!(
        args.contains(&"--leader-elect"),
        "--leader-elect in {args:?}"
    );
    let env: BTreeMap<&str, &Value> = c["env"]
        .as_array()
        .expect("env")
        .iter()
        .map(|e| (e["name"].as_str().unwrap_or_default(), e))
        .collect();
    // The Lease goes to the pod's namespace (where the Role allows it), held under the pod name.
    for (var, field) in [
        ("POD_NAMESPACE", "metadata.namespace"),
        ("HOSTNAME", "metadata.name"),
    ] {
        let from = env
            .get(var)
            .map(|e| &e["valueFrom"]["fieldRef"]["fieldPath"]);
        assert_eq!(from, Some(&json!(field)), "{var} from the downward API");
    }

    deploy_support::ports::check_ports_and_services(base, d);

    for what in ["requests", "limits"] {
        for res in ["cpu", "memory"] {
            let v = &c["resources"][what][res];
            assert!(v.is_string() || v.is_number(), "resources.{what}.{res} set");
        }
    }

    // Restricted Pod Security Standard, each setting at container or pod level.
    let sc = &c["securityContext"];
    let psc = &pod["securityContext"];
    let either = |key: &str| sc.get(key).or_else(|| psc.get(key)).cloned();
    assert_eq!(either("runAsNonRoot"), Some(json!(true)), "runAsNonRoot");
    assert_eq!(
        either("seccompProfile").map(|p| p["type"].clone()),
        Some(json!("RuntimeDefault"))
    );
    assert_eq!(sc["readOnlyRootFilesystem"], true, "readOnlyRootFilesystem");
    assert_eq!(
        sc["allowPrivilegeEscalation"], false,
        "allowPrivilegeEscalation"
    );
    assert_eq!(
        sc["capabilities"]["drop"],
        json!(["ALL"]),
        "all capabilities dropped"
    );
    assert!(sc["privileged"] != true, "not privileged");

    // With a read-only root filesystem, the Git cache and /tmp must be emptyDir mounts.
    let volumes = pod["volumes"].as_array().expect("volumes");
    let cache = arg_value(&args, "--cache-dir").expect("--cache-dir");
    for path in [cache, "/tmp"] {
        let mount = c["volumeMounts"]
            .as_array()
            .and_then(|ms| ms.iter().find(|m| m["mountPath"] == path))
            .unwrap_or_else(|| panic!("{path} is not mounted: the root filesystem is read-only"));
        let volume = volumes.iter().find(|v| v["name"] == mount["name"]);
        assert!(
            volume.is_some_and(|v| v["emptyDir"].is_object()),
            "{path} is an emptyDir"
        );
        // A hostile repository must not fill the node's disk: both are bounded.
        let limit = volume.and_then(|v| v["emptyDir"]["sizeLimit"].as_str());
        let wanted = if path == cache { "2Gi" } else { "64Mi" };
        assert_eq!(limit, Some(wanted), "{path}'s emptyDir sizeLimit");
    }
}

#[test]
fn every_argument_and_variable_is_accepted_by_the_real_reconciler() {
    let c = container(only(&rendered().0.objects, "Deployment"));
    assert!(
        c.get("command").is_none(),
        "the image's entrypoint is catalog-reconciler"
    );
    let args = strs(&c["args"]);
    let bin = binary("catalog-reconciler");
    let out = Command::new(&bin)
        .arg("--help")
        .output()
        .expect("catalog-reconciler --help");
    assert!(out.status.success(), "catalog-reconciler --help failed");
    let help = String::from_utf8_lossy(&out.stdout);
    let flags: BTreeSet<&str> = help
        .lines()
        .filter(|l| l.trim_start().starts_with('-'))
        .flat_map(|l| l.split_whitespace())
        .map(|t| t.trim_end_matches(','))
        .filter(|t| t.starts_with("--"))
        .collect();
    for arg in args.iter().filter(|a| a.starts_with("--")) {
        let flag = arg.split('=').next().unwrap_or_default();
        assert!(
            flags.contains(flag),
            "deploy/deployment.yaml passes {flag}, which catalog-reconciler does not accept; its flags: {flags:?}"
        );
    }
    for e in c["env"].as_array().expect("env") {
        let var = e["name"].as_str().unwrap_or_default();
        assert!(
            help.contains(&format!("[env: {var}=")),
            "deploy/deployment.yaml sets {var}, which catalog-reconciler does not read"
        );
    }
    // The values parse too: clap validates every argument before acting on --help.
    let out = Command::new(&bin)
        .args(&args)
        .arg("--help")
        .output()
        .expect("catalog-reconciler runs");
    assert!(
        out.status.success(),
        "catalog-reconciler rejects the Deployment's arguments {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn samples_hold_one_catalog_source_per_environment() {
    let samples = &rendered().1.objects;
    let template = Path::new(ROOT).join("catalog-repo-template");
    let config = RepoConfig::load(&template)
        .unwrap_or_else(|d| panic!("catalog-repo-template/catalog.yaml: {d:?}"));
    let sources = all(samples, "CatalogSource");
    assert_eq!(
        sources.len(),
        config.environments.len(),
        "one CatalogSource per environment"
    );
    let namespaces: BTreeSet<&str> = all(samples, "Namespace").into_iter().map(name).collect();
    let mut targets = BTreeSet::new();
    for env in &config.environments {
        let matching: Vec<&&Value> = sources
            .iter()
            .filter(|s| s["spec"]["path"] == env.path.as_str())
            .collect();
        let [source] = matching.as_slice() else {
            panic!("{} CatalogSources sync {}", matching.len(), env.path);
        };
        let spec = &source["spec"];
        assert_eq!(
            spec["ref"]["branch"],
            config.branch.as_str(),
            "{}",
            name(source)
        );
        // Multi-tenant layout: each source lives in the namespace it applies into.
        assert!(
            spec.get("targetNamespace").is_none(),
            "{}: no targetNamespace",
            name(source)
        );
        let target = namespace(source);
        if let Some(fixed) = &env.namespace {
            assert_eq!(target, fixed, "{}", env.name);
        }
        assert!(
            namespaces.contains(target),
            "{target} is created by deploy/samples/"
        );
        targets.insert(target);
    }
    assert_eq!(
        namespaces, targets,
        "every sample Namespace is an environment's"
    );
    assert_eq!(
        samples.len(),
        sources.len() + namespaces.len(),
        "only Namespaces and CatalogSources"
    );
}

#[test]
fn applies_to_a_fresh_cluster_in_two_steps() {
    let (base, samples) = rendered();
    let emu = Emulator::start(EmulatorOptions::default()).expect("emulator starts");
    let k = kubectl(Some(&emu));
    // Client-side apply with server-side field validation (the default --validate=strict).
    let out = k.ok_stdin(&["apply", "-f", "-"], Some(&base.yaml));
    assert_each(&out, &base.objects, "created");
    let out = k.ok_stdin(&["apply", "-f", "-"], Some(&samples.yaml));
    assert_each(&out, &samples.objects, "created");

    let both = format!("{}\n---\n{}", base.yaml, samples.yaml);
    let listed: Value =
        serde_json::from_str(&k.ok_stdin(&["get", "-f", "-", "-o", "json"], Some(&both)))
            .expect("json");
    let stored = listed["items"].as_array().expect("items");
    let id = |o: &Value| {
        (
            kind(o).to_string(),
            namespace(o).to_string(),
            name(o).to_string(),
        )
    };
    let want: BTreeSet<_> = base
        .objects
        .iter()
        .chain(&samples.objects)
        .map(id)
        .collect();
    let got: BTreeSet<_> = stored.iter().map(id).collect();
    assert_eq!(got, want, "every rendered object is stored where it says");
    // Built-in kinds are stored as written: nothing of the Deployment or RBAC is lost.
    for o in base
        .objects
        .iter()
        .filter(|o| !matches!(kind(o), "Namespace" | "CustomResourceDefinition"))
    {
        let s = stored.iter().find(|s| id(s) == id(o)).expect("stored");
        for (key, value) in o.as_object().expect("object") {
            if !matches!(key.as_str(), "metadata" | "status") {
                assert_eq!(&s[key], value, "{} {}: {key}", kind(o), name(o));
            }
        }
    }
    assert_eq!(
        k.ok_stdin(
            &["get", "catalogsources", "--all-namespaces", "-o", "name"],
            None
        )
        .lines()
        .count(),
        all(&samples.objects, "CatalogSource").len()
    );

    // Applying again changes nothing.
    assert_each(
        &k.ok_stdin(&["apply", "-f", "-"], Some(&base.yaml)),
        &base.objects,
        "unchanged",
    );
    assert_each(
        &k.ok_stdin(&["apply", "-f", "-"], Some(&samples.yaml)),
        &samples.objects,
        "unchanged",
    );
}
