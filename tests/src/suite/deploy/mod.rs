//! Harness of the deploy suite: the real kubectl with a fresh HOME per run, `deploy/` and
//! `deploy/samples/` rendered once, and accessors of the rendered objects.

pub mod ports;

use std::sync::OnceLock;

use crate::emulator::Emulator;
pub use crate::kubectl::Kubectl;
use serde_json::Value;

pub const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// The real kubectl with a fresh HOME per run, in the workspace root (so `-k deploy/`
/// resolves), against `emulator` when given.
pub fn kubectl(emulator: Option<&Emulator>) -> Kubectl {
    Kubectl::new(emulator).in_dir(ROOT)
}

/// One rendered kustomization: its YAML stream and its objects.
pub struct Rendered {
    pub yaml: String,
    pub objects: Vec<Value>,
}

fn render(dir: &str) -> Rendered {
    let yaml = kubectl(None).ok(&["kustomize", dir]);
    let objects: Vec<Value> = serde_saphyr::from_multiple(&yaml)
        .unwrap_or_else(|e| panic!("`kubectl kustomize {dir}` printed invalid YAML: {e}"));
    let objects: Vec<Value> = objects.into_iter().filter(|o| !o.is_null()).collect();
    for o in &objects {
        assert!(
            !kind(o).is_empty() && !name(o).is_empty() && o["apiVersion"].is_string(),
            "{dir}: object without apiVersion/kind/metadata.name: {o}"
        );
    }
    Rendered { yaml, objects }
}

/// `deploy/` and `deploy/samples/`, rendered once for all tests.
pub fn rendered() -> &'static (Rendered, Rendered) {
    static R: OnceLock<(Rendered, Rendered)> = OnceLock::new();
    R.get_or_init(|| (render("deploy/"), render("deploy/samples/")))
}

pub fn kind(o: &Value) -> &str {
    o["kind"].as_str().unwrap_or_default()
}

pub fn name(o: &Value) -> &str {
    o["metadata"]["name"].as_str().unwrap_or_default()
}

pub fn namespace(o: &Value) -> &str {
    o["metadata"]["namespace"].as_str().unwrap_or_default()
}

pub fn all<'a>(objects: &'a [Value], k: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| kind(o) == k).collect()
}

pub fn only<'a>(objects: &'a [Value], k: &str) -> &'a Value {
    match all(objects, k).as_slice() {
        [one] => one,
        many => panic!("expected exactly one {k}, found {}", many.len()),
    }
}

pub fn strs(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// The single Namespace of `deploy/`, where the reconciler runs.
pub fn system_namespace() -> &'static str {
    name(only(&rendered().0.objects, "Namespace"))
}

pub fn container(deployment: &Value) -> &Value {
    let containers = &deployment["spec"]["template"]["spec"]["containers"];
    assert_eq!(
        containers.as_array().map(Vec::len),
        Some(1),
        "one container"
    );
    &containers[0]
}

/// `kind.group/name`, as kubectl names objects in its output.
pub fn kubectl_name(o: &Value) -> String {
    let api = o["apiVersion"].as_str().unwrap_or_default();
    let k = kind(o).to_lowercase();
    match api.rsplit_once('/') {
        Some((group, _)) => format!("{k}.{group}/{}", name(o)),
        None => format!("{k}/{}", name(o)),
    }
}

pub fn assert_each(out: &str, objects: &[Value], verb: &str) {
    for o in objects {
        let line = format!("{} {verb}", kubectl_name(o));
        assert!(out.lines().any(|l| l == line), "no `{line}` in:\n{out}");
    }
    assert_eq!(out.lines().count(), objects.len(), "{out}");
}
