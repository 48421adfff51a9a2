//! The real `caib` binary against the Kubernetes API emulator: every column, filter, output
//! format and exit code of the cluster-reading commands (list, get, verify, status, diff,
//! images), the errors users meet (no kubeconfig, unreachable, 401/403, CRD missing), and the
//! quickstart's deployment pipeline run verbatim through bash and jq.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use catalog_api::{CatalogImage, CatalogImageSpec, CatalogSource};
use catalog_e2e::emulator::{Emulator, EmulatorOptions};
use catalog_e2e::fixture;
use catalog_e2e::process::{binary, caib_command, eventually, require_tool};
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

struct Harness {
    emu: Emulator,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

/// Exit code and text of one caib run.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl From<Output> for Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Harness {
    fn new() -> Harness {
        Self::with(EmulatorOptions::with_crds(fixture::crds_dir()))
    }

    fn with(options: EmulatorOptions) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        let emu = fixture::start_emulator(options, &kubeconfig);
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        Harness {
            emu,
            dir,
            kubeconfig,
        }
    }

    fn client(&self) -> kube::Client {
        self.emu.kube_client()
    }

    /// caib with a clean environment: this emulator's kubeconfig, an empty HOME (no user
    /// config file), no colours.
    fn command(&self) -> Command {
        caib_command(&self.kubeconfig, &self.dir.path().join("home"))
    }

    fn caib(&self, args: &[&str]) -> Run {
        self.command()
            .args(args)
            .output()
            .expect("caib runs")
            .into()
    }
}

/// Waits until the wall clock is in a later second than now, so that the next object gets a
/// later `creationTimestamp` (the API server stamps whole seconds).
async fn next_second() {
    let start = jiff::Timestamp::now().as_second();
    eventually(Duration::from_secs(3), "the next second", || async {
        (jiff::Timestamp::now().as_second() > start).then_some(())
    })
    .await;
}

/// Creates a CatalogImage as the sync would (labels from the spec) or, with `labels: None`,
/// as a hand-applied manifest; then writes `status` through the status subresource.
async fn put(
    client: &kube::Client,
    ns: &str,
    name: &str,
    spec: Value,
    labels: Option<Value>,
    annotations: Value,
    status: Option<Value>,
) {
    let api: Api<CatalogImage> = Api::namespaced(client.clone(), ns);
    let spec: CatalogImageSpec = serde_json::from_value(spec).unwrap();
    let mut image = CatalogImage::new(name, spec);
    image.metadata.labels = match labels {
        Some(Value::Null) => Some(catalog_api::labels::spec_labels(&image.spec)),
        Some(v) => Some(serde_json::from_value(v).unwrap()),
        None => None,
    };
    image.metadata.annotations = serde_json::from_value(annotations).unwrap();
    api.create(&PostParams::default(), &image).await.unwrap();
    if let Some(status) = status {
        fixture::patch_status(&api, name, status).await;
    }
}

/// Creates a CatalogImage as the sync would, with no annotations and no status yet.
async fn put_synced(client: &kube::Client, ns: &str, name: &str, spec: Value) {
    put(client, ns, name, spec, Some(Value::Null), json!({}), None).await;
}

/// Creates namespace `ns` unless it exists.
async fn ensure_namespace(client: &kube::Client, ns: &str) {
    let _ = fixture::create_namespace(client, ns).await;
}

const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const REVISION: &str = "4f2a9c0d1e2b3a4c5d6e7f8091a2b3c4d5e6f708";

/// The catalog of the list tests, created oldest first:
/// - autosd-cs9-rpi4: synced (labels, revision), arm64, raspberry-pi, Available, tagged;
/// - autosd-cs9-qemu: synced, x86_64 (label amd64), qemu, Unavailable;
/// - my-catalog-image: the quickstart's kubectl example (only its three hand-written labels), no status;
/// - legacy: no labels at all, x86_64, autosd10, targets [qemu, raspberry-pi];
/// - other-ns in namespace team-b.
async fn catalog(client: &kube::Client) {
    put(
        client,
        "default",
        "autosd-cs9-rpi4",
        json!({"registryUrl": "quay.io/centos-automotive/autosd:cs9-rpi4", "tags": ["production", "automotive"],
               "metadata": {"architecture": "arm64", "distro": "cs9", "targets": [{"name": "raspberry-pi", "verified": true}]}}),
        Some(Value::Null),
        json!({"automotive.sdv.cloud.redhat.com/source-revision": REVISION}),
        Some(json!({"phase": "Available", "registryMetadata": {"resolvedDigest": DIGEST, "sizeBytes": 1234567890, "layerCount": 12}})),
    )
    .await;
    next_second().await;
    put(
        client,
        "default",
        "autosd-cs9-qemu",
        json!({"registryUrl": "quay.io/centos-automotive/autosd:cs9-qemu",
               "metadata": {"architecture": "x86_64", "distro": "cs9", "targets": [{"name": "qemu"}]}}),
        Some(Value::Null),
        json!({}),
        Some(json!({"phase": "Unavailable"})),
    )
    .await;
    next_second().await;
    put(
        client,
        "default",
        "my-catalog-image",
        json!({"registryUrl": "quay.io/my-org/automotive-image:v1.0.0", "digest": DIGEST, "tags": ["production", "automotive"],
               "verificationInterval": "1h",
               "metadata": {"architecture": "arm64", "distro": "cs9", "distroVersion": "9.4",
                            "targets": [{"name": "raspberry-pi", "verified": true, "notes": "Tested on Pi 4 Model B"}], "bootcCapable": true}}),
        Some(json!({"automotive.sdv.cloud.redhat.com/architecture": "arm64",
                    "automotive.sdv.cloud.redhat.com/distro": "cs9",
                    "automotive.sdv.cloud.redhat.com/target": "raspberry-pi"})),
        json!({}),
        None,
    )
    .await;
    put(
        client,
        "default",
        "legacy",
        json!({"registryUrl": "registry.example.com:5000/legacy/image:1",
               "metadata": {"architecture": "x86_64", "distro": "autosd10", "targets": [{"name": "qemu"}, {"name": "raspberry-pi"}]}}),
        None,
        json!({}),
        Some(json!({"phase": "Failed"})),
    )
    .await;
    ensure_namespace(client, "team-b").await;
    put(
        client,
        "team-b",
        "other-ns",
        json!({"registryUrl": "quay.io/team-b/image:1", "metadata": {"architecture": "arm64", "distro": "cs9"}}),
        Some(Value::Null),
        json!({}),
        Some(json!({"phase": "Available"})),
    )
    .await;
}

/// Names (first column) of a table's rows.
fn names(table: &str) -> Vec<String> {
    table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap_or_default().to_string())
        .collect()
}

fn cells(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

/// Runs caib with `args`, asserts exit 0 and that the table's header row is `header`; the
/// run's stdout is the table.
fn table(h: &Harness, args: &[&str], header: &[&str]) -> Run {
    let run = h.caib(args);
    assert_eq!(run.code, 0, "{run:?}");
    let first = run.stdout.lines().next().unwrap_or_default();
    assert_eq!(cells(first), header, "{run:?}");
    run
}

fn condition(kind: &str, status: &str, message: &str) -> Value {
    json!({"type": kind, "status": status, "reason": "Test", "message": message,
           "lastTransitionTime": "2026-01-04T14:30:00Z"})
}

fn write(root: &Path, path: &str, text: &str) {
    let file = root.join(path);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(file, text).unwrap();
}

mod errors;
mod list;
mod sources;
mod verify;
