//! The Deployment's two addresses and the Services in front of them: webhooks on
//! `--http-addr` (the Service to expose), metrics and probes on `--metrics-addr` (the metrics
//! Service, cluster-internal), so a flood of the webhook port reaches neither.

use serde_json::Value;

use super::{all, container, name, namespace, strs};

/// The value of `--flag=value` or `--flag value` in `args`.
fn arg_value<'a>(args: &[&'a str], flag: &str) -> Option<&'a str> {
    let eq = format!("{flag}=");
    args.iter().enumerate().find_map(|(i, a)| {
        a.strip_prefix(eq.as_str())
            .or_else(|| (*a == flag).then(|| args.get(i + 1).copied()).flatten())
    })
}

/// The port of the address `flag` names.
fn port_of(args: &[&str], flag: &str) -> u64 {
    let addr = arg_value(args, flag).unwrap_or_else(|| panic!("{flag} in {args:?}"));
    addr.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{flag}={addr} has a port"))
}

/// Whether `reference` (a number or a port name) names the container port `port`.
fn names_port(container: &Value, reference: &Value, port: u64) -> bool {
    let ports = container["ports"].as_array().expect("container ports");
    ports.iter().any(|cp| {
        cp["containerPort"] == port
            && (reference == &cp["containerPort"] || reference == &cp["name"])
    })
}

/// Container ports of the Services of `objects` (every port, by Service name), resolved
/// against the Deployment's container.
fn service_ports<'a>(objects: &'a [Value], container: &Value) -> Vec<(&'a str, u64)> {
    let mut out = Vec::new();
    for svc in all(objects, "Service") {
        for p in svc["spec"]["ports"].as_array().expect("service ports") {
            let target = &p["targetPort"];
            let resolved = container["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|cp| cp["containerPort"].as_u64())
                .find(|port| names_port(container, target, *port));
            let port = resolved.unwrap_or_else(|| {
                panic!("Service {} targets {target}, no container port", name(svc))
            });
            out.push((name(svc), port));
        }
    }
    out
}

/// Probes and `/metrics` on --metrics-addr, webhooks on --http-addr, each behind its own
/// Service, both Services selecting the pods.
pub fn check_ports_and_services(objects: &[Value], deployment: &Value) {
    let c = container(deployment);
    let args = strs(&c["args"]);
    let (http, metrics) = (
        port_of(&args, "--http-addr"),
        port_of(&args, "--metrics-addr"),
    );
    assert_ne!(http, metrics, "webhooks and metrics on separate ports");
    for port in [http, metrics] {
        let declared = c["ports"].as_array().expect("ports");
        assert!(
            declared.iter().any(|cp| cp["containerPort"] == port),
            "container port {port} declared"
        );
    }
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        let get = &c[probe]["httpGet"];
        assert_eq!(get["path"], path, "{probe} path");
        assert!(
            names_port(c, &get["port"], metrics),
            "{probe} port {} is not the metrics port {metrics}: a flood of the webhook port must not fail probes",
            get["port"]
        );
    }
    let pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        .as_object()
        .expect("pod labels");
    for svc in all(objects, "Service") {
        assert_eq!(namespace(svc), namespace(deployment));
        let selector = svc["spec"]["selector"].as_object().expect("selector");
        for (k, v) in selector {
            assert_eq!(
                pod_labels.get(k),
                Some(v),
                "Service {} selector {k}",
                name(svc)
            );
        }
    }
    let ports = service_ports(objects, c);
    assert_eq!(
        ports,
        [
            ("catalog-reconciler", metrics),
            ("catalog-reconciler-webhook", http)
        ],
        "the metrics Service reaches only /metrics' port, the webhook Service only the webhook port"
    );
}
