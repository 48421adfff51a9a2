//! Shared setup of the `verify_*` suites: a Kubernetes API emulator, real docker-registries
//! and the real `catalog-reconciler` binary running only the verification controller, with
//! short backoff and interval floors so schedules are observable within seconds.

use std::ops::Deref;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

use crate::fixture::{self, Cluster};
use crate::process::eventually;
use catalog_api::CatalogImage;
use catalog_api::image::{Phase, condition};
use catalog_api::labels::{REGISTRY_HOSTS, VERIFY_REQUESTED_AT};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

pub const NS: &str = "catalog";
pub const WAIT: Duration = Duration::from_secs(30);

/// One emulator plus any number of reconciler processes.
///
/// The cluster part (`emu`, `client`, `tmp`) is a [`Cluster`] reached through `Deref`.
pub struct Env {
    cluster: Cluster,
    reconcilers: Vec<Reconciler>,
}

impl Deref for Env {
    type Target = Cluster;
    fn deref(&self) -> &Cluster {
        &self.cluster
    }
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
        Env {
            cluster: Cluster::with_namespace(NS).await,
            reconcilers: Vec::new(),
        }
    }

    /// Starts a reconciler running the verification controller with test timings (backoff
    /// 1s..8s, interval floor 1s) plus `extra` arguments; returns its index.
    pub fn spawn_reconciler(&mut self, extra: &[&str]) -> usize {
        let index = self.reconcilers.len();
        let port = crate::git::free_port();
        let log = self.tmp.path().join(format!("reconciler-{index}.log"));
        let mut cmd = fixture::reconciler_command(&self.kubeconfig(), port, Some("verify"));
        cmd.args(["--verify-backoff-min", "1s", "--verify-backoff-max", "8s"])
            .args(["--min-verification-interval", "1s"])
            .args(extra)
            .env("RUST_LOG", "info,kube=warn")
            .stderr(fixture::log_file(&log, false));
        self.reconcilers.push(Reconciler {
            child: fixture::spawn_reconciler(cmd),
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
        self.api(NS)
    }

    /// Creates CatalogImage `name` for `registry_url` with `spec` merged in (interval 1h,
    /// architecture amd64 unless given).
    pub async fn create_image(&self, name: &str, registry_url: &str, spec: Value) {
        let full = fixture::merged(
            json!({
                "registryUrl": registry_url,
                "verificationInterval": "1h",
                "metadata": {"architecture": "amd64", "distro": "cs9"},
            }),
            spec,
        );
        let object = fixture::catalog_object("CatalogImage", name, NS, full);
        fixture::create_json(&self.images(), object).await;
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
        self.cluster.put_secret(NS, name, type_, data).await;
    }

    /// Binds Secret `name` to registry `hosts` with the registry-hosts annotation, as an
    /// operator does for a Secret with plain `username`/`password` or `token` keys.
    pub async fn bind_secret(&self, name: &str, hosts: &str) {
        self.api::<k8s_openapi::api::core::v1::Secret>(NS)
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"annotations": {REGISTRY_HOSTS: hosts}}})),
            )
            .await
            .expect("annotate the Secret");
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
