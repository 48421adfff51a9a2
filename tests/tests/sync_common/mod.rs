//! Shared setup of the `sync_*` suites: an emulator, the real `catalog-reconciler` binary,
//! real git remotes, and helpers to read what the reconciler did.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use catalog_api::labels::{CATALOG_SOURCE, SOURCE_PATH, SOURCE_REVISION};
use catalog_api::{CatalogImage, CatalogSource};
use catalog_e2e::emulator::{Emulator, EmulatorOptions};
use catalog_e2e::process::{binary, eventually};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tempfile::TempDir;

pub const NS: &str = "catalog";
pub const WAIT: Duration = Duration::from_secs(20);

pub fn crds_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../crds"))
}

/// One emulator plus (at most) one reconciler process.
pub struct Env {
    pub emu: Emulator,
    pub client: kube::Client,
    pub tmp: TempDir,
    pub http_port: u16,
    reconciler: Option<Child>,
}

impl Env {
    pub async fn start() -> Env {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let emu = Emulator::start(EmulatorOptions::with_crds(crds_dir())).expect("emulator starts");
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
            http_port: catalog_e2e::git::free_port(),
            reconciler: None,
        }
    }

    /// Starts `catalog-reconciler` (sync controller only) with extra arguments.
    pub fn spawn_reconciler(&mut self, extra: &[&str]) {
        self.stop_reconciler();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.tmp.path().join("reconciler.log"))
            .unwrap();
        let child = Command::new(binary("catalog-reconciler"))
            .args(["--controllers", "sync", "--log-format", "text"])
            .arg("--http-addr")
            .arg(format!("127.0.0.1:{}", self.http_port))
            .arg("--cache-dir")
            .arg(self.tmp.path().join("cache"))
            .args(extra)
            .env("KUBECONFIG", self.tmp.path().join("kubeconfig"))
            .env("RUST_LOG", "info,catalog_reconciler=debug,kube=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("catalog-reconciler starts (run `cargo build -p catalog-reconciler` first)");
        self.reconciler = Some(child);
    }

    /// Kills the reconciler (SIGKILL: no graceful shutdown).
    pub fn kill_reconciler(&mut self) {
        if let Some(mut child) = self.reconciler.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn stop_reconciler(&mut self) {
        self.kill_reconciler();
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.tmp.path().join("reconciler.log")).unwrap_or_default()
    }

    pub fn webhook_url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/hook/{NS}/{name}", self.http_port)
    }

    pub fn images(&self) -> Api<CatalogImage> {
        Api::namespaced(self.client.clone(), NS)
    }

    pub fn sources(&self) -> Api<CatalogSource> {
        Api::namespaced(self.client.clone(), NS)
    }

    /// Creates a CatalogSource `name` with `spec` merged over {url, path: environments/dev,
    /// interval 1h}.
    pub async fn create_source(&self, name: &str, url: &str, spec: Value) {
        let mut full = json!({"url": url, "path": "environments/dev", "interval": "1h", "ref": {"branch": "main"}});
        for (k, v) in spec.as_object().unwrap() {
            full[k] = v.clone();
        }
        let object = json!({
            "apiVersion": "automotive.sdv.cloud.redhat.com/v1alpha1",
            "kind": "CatalogSource",
            "metadata": {"name": name, "namespace": NS},
            "spec": full,
        });
        self.sources()
            .create(
                &PostParams::default(),
                &serde_json::from_value(object).unwrap(),
            )
            .await
            .expect("CatalogSource created");
    }

    pub async fn patch_source(&self, name: &str, patch: Value) {
        self.sources()
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .expect("patch CatalogSource");
    }

    pub async fn create_secret(&self, name: &str, data: &[(&str, &str)]) {
        let string_data: serde_json::Map<String, Value> = data
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), NS);
        secrets
            .create(
                &PostParams::default(),
                &serde_json::from_value(
                    json!({"metadata": {"name": name}, "stringData": string_data}),
                )
                .unwrap(),
            )
            .await
            .expect("secret created");
    }

    pub async fn source(&self, name: &str) -> CatalogSource {
        self.sources()
            .get(name)
            .await
            .expect("CatalogSource exists")
    }

    pub async fn image(&self, name: &str) -> Option<CatalogImage> {
        self.images().get_opt(name).await.expect("get CatalogImage")
    }

    pub async fn image_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .images()
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|i| i.metadata.name)
            .collect();
        names.sort();
        names
    }

    /// Waits until the source reports `revision` as applied.
    pub async fn wait_applied(&self, name: &str, revision: &str) -> CatalogSource {
        let what = format!("CatalogSource {name} to apply {revision}");
        let logs = || self.logs();
        let result = tokio::time::timeout(WAIT, async {
            loop {
                let source = self.source(name).await;
                if source
                    .status
                    .as_ref()
                    .and_then(|s| s.last_applied_revision.as_deref())
                    == Some(revision)
                {
                    return source;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        })
        .await;
        match result {
            Ok(s) => s,
            Err(_) => panic!(
                "timed out waiting for {what}; status: {:?}\nreconciler log:\n{}",
                self.source(name).await.status,
                logs()
            ),
        }
    }

    /// Waits until the Ready condition has `reason`.
    pub async fn wait_ready_reason(&self, name: &str, reason: &str) -> CatalogSource {
        let result = tokio::time::timeout(WAIT, async {
            loop {
                let source = self.source(name).await;
                if ready(&source).is_some_and(|c| c.1 == reason) {
                    return source;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        })
        .await;
        match result {
            Ok(s) => s,
            Err(_) => panic!(
                "timed out waiting for Ready reason {reason} on {name}; status: {:?}\nreconciler log:\n{}",
                self.source(name).await.status,
                self.logs()
            ),
        }
    }

    /// Waits until no write reaches the emulator for `quiet` (the reconciler settled).
    pub async fn settle(&self, quiet: Duration) {
        eventually(WAIT, "the reconciler to stop writing", || async {
            let before = self.emu.writes();
            tokio::time::sleep(quiet).await;
            (self.emu.writes() == before).then_some(())
        })
        .await;
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.kill_reconciler();
        if std::thread::panicking() {
            eprintln!("--- reconciler log ---\n{}", self.logs());
        }
    }
}

/// (status, reason, message) of the Ready condition.
pub fn ready(source: &CatalogSource) -> Option<(String, String, String)> {
    condition(source, "Ready")
}

pub fn condition(source: &CatalogSource, type_: &str) -> Option<(String, String, String)> {
    source
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

pub fn label<'a>(image: &'a CatalogImage, key: &str) -> Option<&'a str> {
    image.metadata.labels.as_ref()?.get(key).map(String::as_str)
}

pub fn annotation<'a>(image: &'a CatalogImage, key: &str) -> Option<&'a str> {
    image
        .metadata
        .annotations
        .as_ref()?
        .get(key)
        .map(String::as_str)
}

pub fn source_label(image: &CatalogImage) -> Option<&str> {
    label(image, CATALOG_SOURCE)
}
pub fn revision_of(image: &CatalogImage) -> Option<&str> {
    annotation(image, SOURCE_REVISION)
}
pub fn path_of(image: &CatalogImage) -> Option<&str> {
    annotation(image, SOURCE_PATH)
}

/// A valid entry file.
pub fn entry_yaml(name: &str, url: &str) -> String {
    format!(
        "apiVersion: automotive.sdv.cloud.redhat.com/v1alpha1\nkind: CatalogImage\nmetadata:\n  name: {name}\nspec:\n  registryUrl: {url}\n  metadata:\n    architecture: arm64\n    distro: cs9\n    targets:\n      - name: rpi4\n"
    )
}

/// Names of the entries in the template's environments/dev.
pub const TEMPLATE_DEV: [&str; 3] = [
    "autosd-cs9-arm-boards",
    "autosd-cs9-qemu",
    "autosd-cs9-rpi4",
];
