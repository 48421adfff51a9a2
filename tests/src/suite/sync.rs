//! Shared setup of the `sync_*` suites: an emulator, the real `catalog-reconciler` binary,
//! real git remotes, and helpers to read what the reconciler did.

use std::ops::Deref;
use std::path::PathBuf;
use std::process::Child;
use std::time::Duration;

use crate::fixture::{self, Cluster};
use crate::process::eventually;
use catalog_api::labels::{CATALOG_SOURCE, SOURCE_PATH, SOURCE_REVISION};
use catalog_api::{CatalogImage, CatalogSource};
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

pub const NS: &str = "catalog";
pub const WAIT: Duration = Duration::from_secs(20);

pub fn crds_dir() -> PathBuf {
    fixture::crds_dir()
}

/// One emulator plus (at most) one reconciler process.
///
/// The cluster part (`emu`, `client`, `tmp`) is a [`Cluster`] reached through `Deref`, so
/// `env.emu`, `env.client` and `env.tmp` read as before.
pub struct Env {
    cluster: Cluster,
    pub http_port: u16,
    reconciler: Option<Child>,
}

impl Deref for Env {
    type Target = Cluster;
    fn deref(&self) -> &Cluster {
        &self.cluster
    }
}

impl Env {
    pub async fn start() -> Env {
        Env {
            cluster: Cluster::with_namespace(NS).await,
            http_port: crate::git::free_port(),
            reconciler: None,
        }
    }

    /// Starts `catalog-reconciler` (sync controller only) with extra arguments.
    pub fn spawn_reconciler(&mut self, extra: &[&str]) {
        self.spawn(Some("sync"), extra);
    }

    /// Starts `catalog-reconciler` with both controllers, as it ships.
    pub fn spawn_both_controllers(&mut self, extra: &[&str]) {
        self.spawn(None, extra);
    }

    fn spawn(&mut self, controllers: Option<&str>, extra: &[&str]) {
        self.stop_reconciler();
        let log = fixture::log_file(&self.tmp.path().join("reconciler.log"), true);
        let mut cmd = fixture::reconciler_command(&self.kubeconfig(), self.http_port, controllers);
        cmd.arg("--cache-dir")
            .arg(self.cache_dir())
            .args(extra)
            .env("RUST_LOG", "info,catalog_reconciler=debug,kube=warn")
            .stderr(log);
        self.reconciler = Some(fixture::spawn_reconciler(cmd));
    }

    /// Process id of the running reconciler, to read its memory from /proc.
    pub fn reconciler_pid(&self) -> Option<u32> {
        self.reconciler.as_ref().map(Child::id)
    }

    /// Waits until the reconciler answers `/healthz` on its HTTP port.
    pub async fn wait_serving(&self) {
        let port = self.http_port;
        eventually(WAIT, "the reconciler to serve", || async {
            reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
                .await
                .ok()
                .filter(|r| r.status().is_success())
        })
        .await;
    }

    /// Whether the reconciler process is still running (false once it exited, by a crash or
    /// otherwise).
    pub fn reconciler_running(&mut self) -> bool {
        self.reconciler
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// The reconciler's `--cache-dir`.
    pub fn cache_dir(&self) -> PathBuf {
        self.tmp.path().join("cache")
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

    /// The reconciler's `/metrics` text (it must be serving).
    pub async fn metrics(&self) -> String {
        let url = format!("http://127.0.0.1:{}/metrics", self.http_port);
        reqwest::get(&url).await.unwrap().text().await.unwrap()
    }

    pub fn webhook_url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/hook/{NS}/{name}", self.http_port)
    }

    pub fn images(&self) -> Api<CatalogImage> {
        self.api(NS)
    }

    pub fn sources(&self) -> Api<CatalogSource> {
        self.api(NS)
    }

    /// Creates a CatalogSource `name` with `spec` merged over {url, path: environments/dev,
    /// interval 1h}.
    pub async fn create_source(&self, name: &str, url: &str, spec: Value) {
        let full = fixture::merged(
            json!({"url": url, "path": "environments/dev", "interval": "1h", "ref": {"branch": "main"}}),
            spec,
        );
        let object = fixture::catalog_object("CatalogSource", name, NS, full);
        fixture::create_json(&self.sources(), object).await;
    }

    pub async fn patch_source(&self, name: &str, patch: Value) {
        self.sources()
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .expect("patch CatalogSource");
    }

    pub async fn create_secret(&self, name: &str, data: &[(&str, &str)]) {
        self.cluster.create_secret(NS, name, None, data).await;
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
        self.image_names_in(NS).await
    }

    /// Sorted names of the CatalogImages of `namespace`.
    pub async fn image_names_in(&self, namespace: &str) -> Vec<String> {
        let mut names: Vec<String> = self
            .api::<CatalogImage>(namespace)
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
        self.wait_source(
            name,
            &format!("CatalogSource {name} to apply {revision}"),
            |s| {
                s.status
                    .as_ref()
                    .and_then(|s| s.last_applied_revision.as_deref())
                    == Some(revision)
            },
        )
        .await
    }

    /// Waits until the Ready condition has `reason`.
    pub async fn wait_ready_reason(&self, name: &str, reason: &str) -> CatalogSource {
        self.wait_source(name, &format!("Ready reason {reason} on {name}"), |s| {
            ready(s).is_some_and(|c| c.1 == reason)
        })
        .await
    }

    /// Waits (up to [`WAIT`]) until `done` holds for source `name`.
    pub async fn wait_source_where(
        &self,
        name: &str,
        what: &str,
        done: impl Fn(&CatalogSource) -> bool,
    ) -> CatalogSource {
        self.wait_source(name, what, done).await
    }

    /// Waits (up to [`WAIT`]) until `done` holds for source `name`; on timeout the panic
    /// shows `what`, the source's status and the reconciler's log.
    pub async fn wait_source(
        &self,
        name: &str,
        what: &str,
        done: impl Fn(&CatalogSource) -> bool,
    ) -> CatalogSource {
        fixture::wait_or_explain(
            WAIT,
            || async {
                let source = self.source(name).await;
                done(&source).then_some(source)
            },
            || async {
                format!(
                    "timed out waiting for {what}; status: {:?}\nreconciler log:\n{}",
                    self.source(name).await.status,
                    self.logs()
                )
            },
        )
        .await
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

/// HMAC-SHA256 hex of `body` with `key`, computed by the openssl CLI (independent of the
/// reconciler's implementation): how the webhook suites sign deliveries as a forge does.
pub fn hmac_hex(key: &str, body: &[u8]) -> String {
    use std::io::Write as _;
    let openssl = crate::process::require_tool("openssl", "openssl");
    let mut child = std::process::Command::new(openssl)
        .args(["dgst", "-sha256", "-hmac", key, "-r"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("openssl runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(body)
        .expect("write to openssl");
    let out = child.wait_with_output().expect("openssl output");
    let text = String::from_utf8(out.stdout).expect("hex");
    text.split_whitespace()
        .next()
        .expect("a digest")
        .to_string()
}
