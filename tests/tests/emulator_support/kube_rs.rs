//! Harness of the kube-rs suite: the emulator or the cluster of `CATALOG_E2E_KUBECONFIG`, a
//! test CRD applied at runtime, a namespace per test, and deadline-bounded polling.

use std::time::{Duration, Instant};

use catalog_e2e::emulator::{Emulator, EmulatorOptions};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

pub const DEADLINE: Duration = Duration::from_secs(20);

pub fn crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.e2e.catalog.example.com"},
        "spec": {"group": "e2e.catalog.example.com", "scope": "Namespaced",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget", "shortNames": ["gdg"]},
            "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "required": ["size"], "properties": {
                        "size": {"type": "integer", "minimum": 1},
                        "color": {"type": "string", "enum": ["red", "blue"], "default": "red"},
                        "parts": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                            "items": {"type": "object", "required": ["name"], "properties": {
                                "name": {"type": "string"}, "count": {"type": "integer"}}}}}},
                    "status": {"type": "object", "properties": {
                        "phase": {"type": "string"}, "observedGeneration": {"type": "integer"}}}}}}}]}
    })
}

pub fn gadget_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("e2e.catalog.example.com", "v1", "Gadget"),
        "gadgets",
    )
}

/// Where a test runs: the emulator, or the cluster of `CATALOG_E2E_KUBECONFIG`.
pub struct Env {
    pub client: Client,
    pub emu: Option<Emulator>,
    pub ns: String,
}

impl Env {
    pub async fn new(test: &str) -> Env {
        Self::with(test, EmulatorOptions::default()).await
    }

    pub async fn with(test: &str, opts: EmulatorOptions) -> Env {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (client, emu) = match std::env::var("CATALOG_E2E_KUBECONFIG") {
            Ok(path) => {
                let kc = kube::config::Kubeconfig::read_from(&path)
                    .expect("read CATALOG_E2E_KUBECONFIG");
                let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
                    .await
                    .expect("kubeconfig");
                eprintln!(
                    "emulator_kube_rs::{test}: running against the cluster of {path} ({})",
                    config.cluster_url
                );
                (Client::try_from(config).expect("client"), None)
            }
            Err(_) => {
                let emu = Emulator::start(opts).expect("emulator starts");
                eprintln!(
                    "emulator_kube_rs::{test}: running against the emulator at {}",
                    emu.url()
                );
                (emu.kube_client(), Some(emu))
            }
        };
        let suffix: String = format!(
            "{:x}",
            Instant::now().elapsed().as_nanos() ^ u128::from(std::process::id())
        )
        .chars()
        .take(5)
        .collect();
        let ns = format!(
            "e2e-{}-{suffix}",
            test.replace('_', "-").chars().take(40).collect::<String>()
        );
        let env = Env { client, emu, ns };
        env.apply_crd().await;
        let nss: Api<Namespace> = Api::all(env.client.clone());
        nss.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": env.ns}})).expect("ns"),
        )
        .await
        .expect("create test namespace");
        env
    }

    /// Applies the test CRD (server-side) and waits until it is Established.
    pub async fn apply_crd(&self) {
        let crds: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        crds.patch(
            "gadgets.e2e.catalog.example.com",
            &PatchParams::apply("emulator-kube-rs").force(),
            &Patch::Apply(crd()),
        )
        .await
        .expect("apply CRD");
        until("CRD established", || async {
            let c = crds.get("gadgets.e2e.catalog.example.com").await.ok()?;
            let conds = c.status?.conditions?;
            conds
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
                .then_some(())
        })
        .await;
    }

    pub fn gadgets(&self) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), &self.ns, &gadget_resource())
    }

    pub async fn cleanup(self) {
        let nss: Api<Namespace> = Api::all(self.client.clone());
        let _ = nss.delete(&self.ns, &DeleteParams::default()).await;
    }
}

pub fn gadget(name: &str, spec: Value, labels: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "e2e.catalog.example.com/v1", "kind": "Gadget",
        "metadata": {"name": name, "labels": labels}, "spec": spec
    }))
    .expect("gadget")
}

/// Polls until `f` returns Some (or panics at the deadline).
pub async fn until<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let end = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn api_code(e: &kube::Error) -> u16 {
    match e {
        kube::Error::Api(s) => s.code,
        other => panic!("expected an API error, got {other:?}"),
    }
}

pub fn names(list: &[DynamicObject]) -> Vec<String> {
    let mut n: Vec<String> = list.iter().map(ResourceExt::name_any).collect();
    n.sort();
    n
}
