//! Shared setup of the `verify_*` suites: a Kubernetes API emulator, real docker-registries
//! and the real `catalog-reconciler` binary running only the verification controller, with
//! short backoff and interval floors so schedules are observable within seconds.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use catalog_api::CatalogImage;
use catalog_api::image::{Phase, condition};
use catalog_api::labels::VERIFY_REQUESTED_AT;
use catalog_e2e::emulator::{Emulator, EmulatorOptions};
use catalog_e2e::process::{binary, eventually};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tempfile::TempDir;

pub const NS: &str = "catalog";
pub const WAIT: Duration = Duration::from_secs(30);

/// One emulator plus any number of reconciler processes.
pub struct Env {
    pub emu: Emulator,
    pub client: kube::Client,
    pub tmp: TempDir,
    reconcilers: Vec<Reconciler>,
}

/// A running `catalog-reconciler`.
pub struct Reconciler {
    pub child: Child,
    pub http_port: u16,
    pub log: PathBuf,
}

impl Drop for Env {
    fn drop(&mut self) {
        for r in &mut self.reconcilers {
            let _ = r.child.kill();
            let _ = r.child.wait();
        }
    }
}

impl Env {
    pub async fn start() -> Env {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let crds = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../crds"));
        let emu = Emulator::start(EmulatorOptions::with_crds(crds)).expect("emulator starts");
        let client = emu.kube_client();
        let namespaces: Api<Namespace> = Api::all(client.clone());
        namespaces
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": NS}})).unwrap(),
            )
            .await
            .expect("namespace created");
        let tmp = tempfile::tempdir().unwrap();
        emu.write_kubeconfig(tmp.path().join("kubeconfig")).unwrap();
        Env {
            emu,
            client,
            tmp,
            reconcilers: Vec::new(),
        }
    }

    /// Starts a reconciler running the verification controller with test timings (backoff
    /// 1s..8s, interval floor 1s) plus `extra` arguments; returns its index.
    pub fn spawn_reconciler(&mut self, extra: &[&str]) -> usize {
        let index = self.reconcilers.len();
        let port = catalog_e2e::git::free_port();
        let log = self.tmp.path().join(format!("reconciler-{index}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(binary("catalog-reconciler"))
            .args(["--controllers", "verify", "--log-format", "text"])
            .args(["--verify-backoff-min", "1s", "--verify-backoff-max", "8s"])
            .args(["--min-verification-interval", "1s"])
            .arg("--http-addr")
            .arg(format!("127.0.0.1:{port}"))
            .args(extra)
            .env("KUBECONFIG", self.tmp.path().join("kubeconfig"))
            .env("RUST_LOG", "info,kube=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("catalog-reconciler starts (run `cargo build -p catalog-reconciler` first)");
        self.reconcilers.push(Reconciler {
            child,
            http_port: port,
            log,
        });
        index
    }

    pub fn reconciler(&mut self, index: usize) -> &mut Reconciler {
        &mut self.reconcilers[index]
    }

    /// Sends SIGTERM (graceful shutdown) and waits for the exit.
    pub fn terminate(&mut self, index: usize) -> std::process::ExitStatus {
        let r = &mut self.reconcilers[index];
        let _ = Command::new("kill")
            .args(["-TERM", &r.child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = r.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "reconciler did not exit on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn logs(&self, index: usize) -> String {
        std::fs::read_to_string(&self.reconcilers[index].log).unwrap_or_default()
    }

    pub fn images(&self) -> Api<CatalogImage> {
        Api::namespaced(self.client.clone(), NS)
    }

    /// Creates CatalogImage `name` for `registry_url` with `spec` merged in (interval 1h,
    /// architecture amd64 unless given).
    pub async fn create_image(&self, name: &str, registry_url: &str, spec: Value) {
        let mut full = json!({
            "registryUrl": registry_url,
            "verificationInterval": "1h",
            "metadata": {"architecture": "amd64", "distro": "cs9"},
        });
        for (k, v) in spec.as_object().unwrap() {
            full[k] = v.clone();
        }
        let object = json!({
            "apiVersion": "automotive.sdv.cloud.redhat.com/v1alpha1",
            "kind": "CatalogImage",
            "metadata": {"name": name, "namespace": NS},
            "spec": full,
        });
        self.images()
            .create(
                &PostParams::default(),
                &serde_json::from_value(object).unwrap(),
            )
            .await
            .expect("CatalogImage created");
    }

    pub async fn image(&self, name: &str) -> CatalogImage {
        self.images().get(name).await.expect("CatalogImage exists")
    }

    /// Asks for an immediate verification, as `caib catalog verify` does.
    pub async fn request_verify(&self, name: &str, value: &str) {
        self.images()
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"annotations": {VERIFY_REQUESTED_AT: value}}})),
            )
            .await
            .expect("annotate CatalogImage");
    }

    /// Waits until the image reaches `phase`, and returns it.
    pub async fn wait_phase(&self, name: &str, phase: Phase) -> CatalogImage {
        let what = format!("CatalogImage {name} to be {phase}");
        eventually(WAIT, &what, || async {
            let image = self.images().get_opt(name).await.ok().flatten()?;
            (phase_of(&image) == Some(phase)).then_some(image)
        })
        .await
    }

    /// Creates or replaces a Secret from string data with an optional type.
    pub async fn put_secret(&self, name: &str, type_: Option<&str>, data: &[(&str, &str)]) {
        let string_data: serde_json::Map<String, Value> = data
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        let mut object = json!({"metadata": {"name": name}, "stringData": string_data});
        if let Some(t) = type_ {
            object["type"] = json!(t);
        }
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), NS);
        let secret: Secret = serde_json::from_value(object).unwrap();
        match secrets.get_opt(name).await.unwrap() {
            None => {
                secrets
                    .create(&PostParams::default(), &secret)
                    .await
                    .expect("secret created");
            }
            Some(existing) => {
                let mut secret = secret;
                secret.metadata.resource_version = existing.metadata.resource_version;
                secrets
                    .replace(name, &PostParams::default(), &secret)
                    .await
                    .expect("secret replaced");
            }
        }
    }

    /// Reasons of the events recorded for `name` (both Event APIs).
    pub async fn event_reasons(&self, name: &str) -> Vec<String> {
        let api: Api<k8s_openapi::api::events::v1::Event> =
            Api::namespaced(self.client.clone(), NS);
        let mut reasons: Vec<String> = api
            .list(&Default::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
            .filter_map(|e| e.reason)
            .collect();
        reasons.sort();
        reasons.dedup();
        reasons
    }

    /// The reconciler's `/metrics` text.
    pub async fn metrics(&self, index: usize) -> String {
        let url = format!(
            "http://127.0.0.1:{}/metrics",
            self.reconcilers[index].http_port
        );
        match reqwest::get(&url).await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }
}

/// `docker-config.json` for one registry.
pub fn docker_config(host: &str, user: &str, password: &str) -> String {
    json!({"auths": {host: {"username": user, "password": password}}}).to_string()
}

pub fn phase_of(image: &CatalogImage) -> Option<Phase> {
    image.status.as_ref().and_then(|s| s.phase)
}

pub fn condition<'a>(image: &'a CatalogImage, ty: &str) -> Option<&'a Condition> {
    image
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == ty)
}

pub fn available_message(image: &CatalogImage) -> String {
    condition(image, condition::AVAILABLE)
        .map(|c| format!("{}: {}", c.reason, c.message))
        .unwrap_or_default()
}

/// Sum of the samples of `metric` whose labels contain every `label="value"` of `labels`.
pub fn metric_sum(text: &str, metric: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.starts_with(metric)
                && matches!(l.as_bytes().get(metric.len()), Some(b'{') | Some(b' '))
        })
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
