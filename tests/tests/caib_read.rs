//! The real `caib` binary against the Kubernetes API emulator: every column, filter, output
//! format and exit code of the cluster-reading commands (list, get, verify, status, diff,
//! images), the errors users meet (no kubeconfig, unreachable, 401/403, CRD missing), and the
//! quickstart's deployment pipeline run verbatim through bash and jq.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use catalog_api::{CatalogImage, CatalogImageSpec, CatalogSource};
use catalog_e2e::emulator::{Emulator, EmulatorOptions};
use catalog_e2e::process::{binary, eventually, require_tool};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

const CRDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../crds");
const IMAGEBUILD_CRD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/imagebuild-crd.yaml");

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
        Self::with(EmulatorOptions::with_crds(CRDS))
    }

    fn with(options: EmulatorOptions) -> Harness {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let emu = Emulator::start(options).expect("emulator starts");
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        emu.write_kubeconfig(&kubeconfig).unwrap();
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
        let mut cmd = Command::new(binary("caib"));
        cmd.env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", self.dir.path().join("home"))
            .env("XDG_CONFIG_HOME", self.dir.path().join("home/.config"))
            .env("NO_COLOR", "1")
            .env_remove("CAIB_CATALOG_REPO")
            .env_remove("CAIB_CONFIG")
            .env_remove("KUBERNETES_SERVICE_HOST");
        cmd
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
        api.patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": status })),
        )
        .await
        .unwrap();
    }
}

async fn ensure_namespace(client: &kube::Client, ns: &str) {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let namespace = serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap();
    let _ = api.create(&PostParams::default(), &namespace).await;
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

#[tokio::test]
async fn list_shows_every_column_filter_and_format() {
    let h = Harness::new();
    catalog(&h.client()).await;

    let run = h.caib(&["catalog", "list"]);
    assert_eq!(run.code, 0, "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        cells(lines[0]),
        [
            "NAME",
            "REGISTRY",
            "ARCHITECTURE",
            "DISTRO",
            "TARGET",
            "PHASE",
            "AGE"
        ],
        "{run:?}"
    );
    // Newest first; same second ordered by name.
    assert_eq!(
        names(&run.stdout),
        [
            "legacy",
            "my-catalog-image",
            "autosd-cs9-qemu",
            "autosd-cs9-rpi4"
        ],
        "{run:?}"
    );
    let rpi = cells(lines[4]);
    assert_eq!(
        &rpi[..6],
        [
            "autosd-cs9-rpi4",
            "quay.io/centos-automotive/autosd:cs9-rpi4",
            "arm64",
            "cs9",
            "raspberry-pi",
            "Available"
        ]
    );
    assert!(rpi[6].ends_with('s'), "AGE like kubectl: {}", rpi[6]);
    assert_eq!(
        &cells(lines[2])[2..6],
        ["arm64", "cs9", "raspberry-pi", "Pending"],
        "no status yet"
    );
    // Columns are aligned: every row's REGISTRY starts where the header's does.
    let col = lines[0].find("REGISTRY").unwrap();
    for line in &lines[1..] {
        assert_eq!(&line[col - 3..col], "   ", "{line}");
        assert_ne!(&line[col..col + 1], " ", "{line}");
    }

    let filter = |args: &[&str]| {
        let mut all = vec!["catalog", "list"];
        all.extend_from_slice(args);
        let run = h.caib(&all);
        assert_eq!(run.code, 0, "{args:?}: {run:?}");
        names(&run.stdout)
    };
    assert_eq!(
        filter(&["--architecture", "x86_64"]),
        ["legacy", "autosd-cs9-qemu"]
    );
    assert_eq!(
        filter(&["--architecture", "amd64"]),
        ["legacy", "autosd-cs9-qemu"]
    );
    assert_eq!(
        filter(&["--architecture", "arm64"]),
        ["my-catalog-image", "autosd-cs9-rpi4"]
    );
    assert_eq!(
        filter(&["--target", "raspberry-pi"]),
        ["legacy", "my-catalog-image", "autosd-cs9-rpi4"]
    );
    assert_eq!(
        filter(&["--target", "raspberry-pi", "--architecture", "arm64"]),
        ["my-catalog-image", "autosd-cs9-rpi4"]
    );
    assert_eq!(filter(&["--distro", "autosd10"]), ["legacy"]);
    assert_eq!(
        filter(&["--distro", "cs9", "--phase", "Available"]),
        ["autosd-cs9-rpi4"]
    );
    assert_eq!(filter(&["--phase", "failed"]), ["legacy"]);
    assert_eq!(
        filter(&["--tags", "production,automotive"]),
        ["my-catalog-image", "autosd-cs9-rpi4"]
    );
    assert_eq!(filter(&["--limit", "2"]), ["legacy", "my-catalog-image"]);
    assert_eq!(filter(&["-n", "team-b"]), ["other-ns"]);

    let run = h.caib(&["catalog", "list", "--tags", "production,missing"]);
    assert_eq!(
        (run.code, run.stdout.as_str(), run.stderr.as_str()),
        (0, "", "No catalog images found\n")
    );

    let run = h.caib(&["catalog", "list", "-A"]);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(cells(lines[0])[..2], ["NAMESPACE", "NAME"], "{run:?}");
    assert!(
        lines
            .iter()
            .any(|l| cells(l)[..2] == ["team-b", "other-ns"]),
        "{run:?}"
    );
    assert_eq!(lines.len(), 6, "{run:?}");

    let run = h.caib(&["catalog", "list", "-o", "wide"]);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(cells(lines[0])[7..], ["DIGEST", "REVISION"], "{run:?}");
    assert_eq!(cells(lines[4])[7..], [DIGEST, REVISION], "{run:?}");
    assert_eq!(cells(lines[3])[7..], ["<none>", "<none>"], "{run:?}");

    let run = h.caib(&["catalog", "list", "--architecture", "arm64", "-o", "json"]);
    let list: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        (list["apiVersion"].as_str(), list["kind"].as_str()),
        (Some("v1"), Some("List"))
    );
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[1]["kind"], "CatalogImage");
    assert_eq!(
        items[1]["apiVersion"],
        "automotive.sdv.cloud.redhat.com/v1alpha1"
    );
    assert_eq!(
        items[1]["spec"]["tags"],
        json!(["production", "automotive"])
    );
    assert_eq!(items[1]["status"]["registryMetadata"]["layerCount"], 12);
    assert!(items[1]["metadata"]["uid"].is_string(), "full objects");

    let run = h.caib(&["catalog", "list", "-o", "yaml", "--distro", "autosd10"]);
    let list: Value = serde_saphyr::from_str(&run.stdout).unwrap();
    assert_eq!(list["kind"], "List");
    assert_eq!(list["items"][0]["metadata"]["name"], "legacy");

    for (args, flag) in [
        (vec!["--phase", "Ready"], "--phase"),
        (vec!["--architecture", "sparc"], "--architecture"),
        (vec!["--limit", "0"], "--limit"),
        (vec!["--limit", "many"], "--limit"),
        (vec!["-o", "xml"], "--output"),
    ] {
        let mut all = vec!["catalog", "list"];
        all.extend_from_slice(&args);
        let run = h.caib(&all);
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert!(run.stderr.contains(flag), "{args:?} names {flag}: {run:?}");
    }
}

#[tokio::test]
async fn the_quickstart_deployment_pipeline_runs_verbatim() {
    require_tool("jq", "jq");
    let h = Harness::new();
    let bin_dir = binary("caib").parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let script = r#"IMAGE=$(caib catalog list --target raspberry-pi --phase Available --output json | \
    jq -r '.items | sort_by(.metadata.creationTimestamp) | reverse | .[0].spec.registryUrl')
echo "$IMAGE""#;
    let pipeline = || -> Run {
        // caib's clean environment, with `caib` found on PATH as in a deployment script.
        let base = h.command();
        let mut bash = Command::new("bash");
        bash.envs(base.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))))
            .env("PATH", &path)
            .args(["-c", script]);
        bash.output().unwrap().into()
    };
    let run = pipeline();
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (0, "null\n"),
        "empty catalog: {run:?}"
    );

    let client = h.client();
    let rpi = |tag: &str| {
        json!({"registryUrl": format!("quay.io/centos-automotive/autosd:{tag}"),
        "metadata": {"architecture": "arm64", "targets": [{"name": "raspberry-pi"}]}})
    };
    put(
        &client,
        "default",
        "rpi-old",
        rpi("v1"),
        Some(Value::Null),
        json!({}),
        Some(json!({"phase": "Available"})),
    )
    .await;
    next_second().await;
    put(
        &client,
        "default",
        "rpi-new",
        rpi("v2"),
        Some(Value::Null),
        json!({}),
        Some(json!({"phase": "Available"})),
    )
    .await;
    put(
        &client,
        "default",
        "rpi-broken",
        rpi("v3"),
        Some(Value::Null),
        json!({}),
        Some(json!({"phase": "Failed"})),
    )
    .await;
    let run = pipeline();
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (0, "quay.io/centos-automotive/autosd:v2\n"),
        "{run:?}"
    );
}

#[tokio::test]
async fn get_shows_the_quickstart_view_and_full_objects() {
    let h = Harness::new();
    catalog(&h.client()).await;
    let run = h.caib(&["catalog", "get", "my-catalog-image"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        r#"metadata:
  name: my-catalog-image
  namespace: default
spec:
  registryUrl: quay.io/my-org/automotive-image:v1.0.0
  digest: sha256:1111111111111111111111111111111111111111111111111111111111111111
  tags:
    - production
    - automotive
  verificationInterval: 1h
  metadata:
    architecture: arm64
    distro: cs9
    distroVersion: "9.4"
    targets:
      - name: raspberry-pi
        verified: true
        notes: Tested on Pi 4 Model B
    bootcCapable: true
"#
    );
    let run = h.caib(&["catalog", "get", "autosd-cs9-rpi4"]);
    assert!(
        run.stdout
            .contains("status:\n  phase: Available\n  registryMetadata:\n"),
        "{run:?}"
    );

    let run = h.caib(&["catalog", "get", "autosd-cs9-rpi4", "--output", "json"]);
    let obj: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(obj["kind"], "CatalogImage");
    assert_eq!(
        obj["metadata"]["labels"]["automotive.sdv.cloud.redhat.com/architecture"],
        "arm64"
    );
    assert!(obj["metadata"].get("managedFields").is_none());
    let run = h.caib(&["catalog", "get", "autosd-cs9-rpi4", "-o", "yaml"]);
    let obj: Value = serde_saphyr::from_str(&run.stdout).unwrap();
    assert_eq!(obj["status"]["phase"], "Available");

    let run = h.caib(&["catalog", "get", "nope"]);
    assert_eq!(run.code, 4, "{run:?}");
    assert_eq!(
        run.stderr,
        "Error: catalog image \"nope\" not found in namespace \"default\"\n"
    );
    let run = h.caib(&["catalog", "get", "autosd-cs9-rpi4", "-n", "team-b"]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(run.stderr.contains("in namespace \"team-b\""), "{run:?}");
}

#[tokio::test]
async fn cluster_errors_have_hints_and_exit_codes() {
    let h = Harness::new();

    // No kubeconfig anywhere.
    let mut cmd = h.command();
    let run: Run = cmd
        .env_remove("KUBECONFIG")
        .args(["catalog", "list"])
        .output()
        .unwrap()
        .into();
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("no kubeconfig found") && run.stderr.contains("KUBECONFIG"),
        "{run:?}"
    );

    // A kubeconfig file that does not exist.
    let mut cmd = h.command();
    let run: Run = cmd
        .env("KUBECONFIG", h.dir.path().join("missing"))
        .args(["catalog", "list"])
        .output()
        .unwrap()
        .into();
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("does not exist"), "{run:?}");

    // Unknown context.
    let run = h.caib(&["catalog", "list", "--context", "prod"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("--context prod"), "{run:?}");

    // Unreachable API server: a port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let unreachable = h.dir.path().join("unreachable");
    std::fs::write(
        &unreachable,
        h.emu
            .kubeconfig()
            .replace(&h.emu.url(), &format!("http://{closed}")),
    )
    .unwrap();
    let run = h.caib(&[
        "catalog",
        "list",
        "--kubeconfig",
        unreachable.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("cannot reach the Kubernetes API server"),
        "{run:?}"
    );

    // CRDs not installed.
    let bare = Harness::with(EmulatorOptions::default());
    let run = bare.caib(&["catalog", "list"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("kubectl apply -f crds/"), "{run:?}");
    let run = bare.caib(&["catalog", "get", "x"]);
    assert!(run.stderr.contains("kubectl apply -f crds/"), "{run:?}");
    let run = bare.caib(&["images", "list"]);
    assert!(run.stderr.contains("automotive-dev-operator"), "{run:?}");

    // 401 and 403.
    let secured = Harness::with(EmulatorOptions {
        token: Some("good".into()),
        forbidden_token: Some("forbidden".into()),
        ..EmulatorOptions::with_crds(CRDS)
    });
    for (token, what) in [
        (None, "401"),
        (Some("wrong"), "401"),
        (Some("forbidden"), "forbidden"),
    ] {
        let file = secured
            .dir
            .path()
            .join(format!("kc-{what}-{}", token.unwrap_or("none")));
        std::fs::write(&file, secured.emu.kubeconfig_with_token(token)).unwrap();
        let run = secured.caib(&["catalog", "list", "--kubeconfig", file.to_str().unwrap()]);
        assert_eq!(run.code, 3, "{token:?}: {run:?}");
        assert!(run.stderr.contains(what), "{token:?}: {run:?}");
    }
    let run = secured.caib(&["catalog", "list"]);
    assert_eq!(run.code, 0, "{run:?}");

    // A stuck API server: --timeout gives exit 6.
    h.emu.set_latency(Duration::from_secs(5));
    let run = h.caib(&["catalog", "list", "--timeout", "1s"]);
    assert_eq!(run.code, 6, "{run:?}");
    assert!(run.stderr.contains("--timeout 1s"), "{run:?}");
}

/// Plays the verification controller for one request: waits for the annotation, then writes
/// the status (with `lastHandledVerifyAt` echoing it).
async fn serve_verify(client: kube::Client, name: &'static str, mut status: Value) -> String {
    let api: Api<CatalogImage> = Api::namespaced(client, "default");
    let requested = eventually(
        Duration::from_secs(20),
        "the verify request annotation",
        || {
            let api = api.clone();
            async move {
                let image = api.get(name).await.ok()?;
                image
                    .metadata
                    .annotations?
                    .get(catalog_api::labels::VERIFY_REQUESTED_AT)
                    .cloned()
            }
        },
    )
    .await;
    status["lastHandledVerifyAt"] = json!(requested);
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": status })),
    )
    .await
    .unwrap();
    requested
}

fn condition(kind: &str, status: &str, message: &str) -> Value {
    json!({"type": kind, "status": status, "reason": "Test", "message": message,
           "lastTransitionTime": "2026-01-04T14:30:00Z"})
}

#[tokio::test]
async fn verify_requests_waits_and_reports() {
    let h = Harness::new();
    let client = h.client();
    catalog(&client).await;

    // Available: the quickstart's report, exit 0.
    let controller = tokio::spawn(serve_verify(
        client.clone(),
        "autosd-cs9-rpi4",
        json!({"phase": "Available",
               "conditions": [condition("Available", "True", ""), condition("Verified", "True", "")],
               "registryMetadata": {"resolvedDigest": DIGEST, "sizeBytes": 1234567890, "layerCount": 12},
               "lastVerificationTime": "2026-01-04T14:30:00Z"}),
    ));
    let run: Run = tokio::process::Command::from(h.command())
        .args(["catalog", "verify", "autosd-cs9-rpi4", "--timeout", "30s"])
        .output()
        .await
        .unwrap()
        .into();
    let requested = controller.await.unwrap();
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        format!(
            "Verifying catalog image \"autosd-cs9-rpi4\"...
✓ Registry accessibility: OK
✓ Digest verification: OK
✓ Metadata extraction: OK

Registry URL:     quay.io/centos-automotive/autosd:cs9-rpi4
Resolved Digest:  {DIGEST}
Size:            1.2 GB
Layers:          12
Last Verified:   2026-01-04T14:30:00Z
Status:          Available
"
        )
    );
    assert!(
        requested.parse::<jiff::Timestamp>().is_ok(),
        "RFC 3339: {requested}"
    );
    // Written under caib's own field manager.
    let raw: Api<kube::api::DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &kube::api::ApiResource::erase::<CatalogImage>(&()),
    );
    let obj = raw.get("autosd-cs9-rpi4").await.unwrap();
    let managers: Vec<String> = obj
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert!(managers.contains(&"caib".to_string()), "{managers:?}");

    // Unavailable: the failing checks with the condition's message, exit 1.
    let controller = tokio::spawn(serve_verify(
        client.clone(),
        "autosd-cs9-qemu",
        json!({"phase": "Unavailable",
               "conditions": [condition("Available", "False", "registry unreachable: connection refused"),
                              condition("Verified", "False", "could not resolve the reference")]}),
    ));
    let run: Run = tokio::process::Command::from(h.command())
        .args(["catalog", "verify", "autosd-cs9-qemu"])
        .output()
        .await
        .unwrap()
        .into();
    controller.await.unwrap();
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout
            .contains("✗ Registry accessibility: registry unreachable: connection refused\n"),
        "{run:?}"
    );
    assert!(
        run.stdout.ends_with("Status:          Unavailable\n"),
        "{run:?}"
    );

    // --wait=false: the request only.
    let run = h.caib(&["catalog", "verify", "legacy", "--wait=false"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("requested"), "{run:?}");
    let api: Api<CatalogImage> = Api::namespaced(client.clone(), "default");
    let legacy = api.get("legacy").await.unwrap();
    assert!(
        legacy
            .metadata
            .annotations
            .unwrap()
            .contains_key(catalog_api::labels::VERIFY_REQUESTED_AT)
    );

    // Nobody answers: --timeout gives exit 6.
    let run = h.caib(&["catalog", "verify", "legacy", "--timeout", "1s"]);
    assert_eq!(run.code, 6, "{run:?}");
    assert!(run.stderr.contains("timed out after 1s"), "{run:?}");
    // Unknown name: exit 4.
    let run = h.caib(&["catalog", "verify", "nope"]);
    assert_eq!(run.code, 4, "{run:?}");
}

#[tokio::test]
async fn status_lists_sources_and_details_one() {
    let h = Harness::new();
    let client = h.client();
    let run = h.caib(&["catalog", "status"]);
    assert_eq!(
        (run.code, run.stderr.as_str()),
        (0, "No catalog sources found\n"),
        "{run:?}"
    );

    let api: Api<CatalogSource> = Api::namespaced(client.clone(), "default");
    let source: CatalogSource = serde_json::from_value(json!({
        "apiVersion": "automotive.sdv.cloud.redhat.com/v1alpha1", "kind": "CatalogSource",
        "metadata": {"name": "dev"},
        "spec": {"url": "https://git.example.com/platform/catalog.git", "ref": {"branch": "main"}, "path": "environments/dev"}
    }))
    .unwrap();
    api.create(&PostParams::default(), &source).await.unwrap();
    api.patch_status("dev", &PatchParams::default(), &Patch::Merge(json!({"status": {
        "lastAppliedRevision": REVISION,
        "conditions": [condition("Ready", "False", "1 invalid entry")],
        "summary": {"entries": 12, "applied": 11, "invalid": 1, "available": 9, "unavailable": 1, "failed": 1, "pending": 0},
        "invalidEntries": [{"path": "environments/dev/broken.yaml", "line": 7, "column": 5, "message": "spec.registryUrl: invalid reference"}],
        "history": [{"revision": REVISION, "time": "2026-01-04T14:00:00Z", "created": 2, "updated": 1, "pruned": 0, "durationMs": 84}]
    }})))
    .await
    .unwrap();

    let run = h.caib(&["catalog", "status"]);
    assert_eq!(run.code, 0, "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        cells(lines[0]),
        [
            "NAME",
            "URL",
            "REVISION",
            "READY",
            "ENTRIES",
            "AVAILABLE",
            "UNAVAILABLE",
            "INVALID",
            "AGE"
        ]
    );
    assert_eq!(
        cells(lines[1])[..8],
        [
            "dev",
            "https://git.example.com/platform/catalog.git",
            "4f2a9c0d1e2b",
            "False",
            "12",
            "9",
            "2",
            "1"
        ]
    );

    let run = h.caib(&["catalog", "status", "dev"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .contains("  environments/dev/broken.yaml:7:5: spec.registryUrl: invalid reference\n"),
        "{run:?}"
    );
    assert!(run.stdout.contains("History:\n"), "{run:?}");
    assert!(
        run.stdout
            .contains(&format!("Applied Revision:  {REVISION}")),
        "{run:?}"
    );

    let run = h.caib(&["catalog", "status", "prod"]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(
        run.stderr.contains("catalog source \"prod\" not found"),
        "{run:?}"
    );
    let run = h.caib(&["catalog", "status", "-o", "json"]);
    let list: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(list["items"][0]["status"]["summary"]["entries"], 12);
}

fn write(root: &Path, path: &str, text: &str) {
    let file = root.join(path);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(file, text).unwrap();
}

#[tokio::test]
async fn diff_compares_the_repository_with_the_cluster() {
    let h = Harness::new();
    let client = h.client();
    let repo = h.dir.path().join("catalog");
    write(
        &repo,
        "catalog.yaml",
        "environments:\n  - name: dev\n    path: environments/dev\n  - name: production\n    path: environments/production\n    requireDigest: true\n",
    );
    write(&repo, "environments/production/.keep", "");
    let entry = |name: &str, tag: &str| {
        format!(
            "apiVersion: automotive.sdv.cloud.redhat.com/v1alpha1\nkind: CatalogImage\nmetadata:\n  name: {name}\nspec:\n  registryUrl: quay.io/org/{name}:{tag}\n  metadata:\n    architecture: arm64\n    distro: cs9\n"
        )
    };
    write(&repo, "environments/dev/same.yaml", &entry("same", "v1"));
    write(
        &repo,
        "environments/dev/changed.yaml",
        &entry("changed", "v2"),
    );
    write(&repo, "environments/dev/added.yaml", &entry("added", "v1"));
    let live = |tag: &str| json!({"registryUrl": format!("quay.io/org/x:{tag}"), "metadata": {"architecture": "arm64", "distro": "cs9"}});
    let mut same = live("v1");
    same["registryUrl"] = json!("quay.io/org/same:v1");
    put(
        &client,
        "default",
        "same",
        same,
        Some(Value::Null),
        json!({"automotive.sdv.cloud.redhat.com/source-revision": REVISION}),
        Some(json!({"phase": "Available"})),
    )
    .await;
    let mut changed = live("v1");
    changed["registryUrl"] = json!("quay.io/org/changed:v1");
    put(
        &client,
        "default",
        "changed",
        changed,
        Some(Value::Null),
        json!({}),
        None,
    )
    .await;
    put(
        &client,
        "default",
        "removed",
        live("v1"),
        Some(Value::Null),
        json!({}),
        None,
    )
    .await;

    let repo_arg = repo.to_str().unwrap();
    let run = h.caib(&[
        "catalog",
        "diff",
        "--catalog-repo",
        repo_arg,
        "--env",
        "dev",
    ]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout
            .contains("--- cluster/default/changed\n+++ environments/dev/changed.yaml\n"),
        "{run:?}"
    );
    assert!(
        run.stdout.contains(
            "-  registryUrl: quay.io/org/changed:v1\n+  registryUrl: quay.io/org/changed:v2\n"
        ),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("--- /dev/null\n+++ environments/dev/added.yaml\n"),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("--- cluster/default/removed\n+++ /dev/null\n"),
        "{run:?}"
    );
    assert!(
        !run.stdout.contains("same"),
        "an equal entry is not shown: {run:?}"
    );
    assert!(
        run.stderr.contains("1 to add, 1 to change, 1 to remove"),
        "{run:?}"
    );

    // From inside the checkout, without --catalog-repo.
    let mut cmd = h.command();
    let run: Run = cmd
        .current_dir(&repo)
        .args(["catalog", "diff", "--env", "dev"])
        .output()
        .unwrap()
        .into();
    assert_eq!(run.code, 1, "{run:?}");

    // Make them equal: exit 0.
    std::fs::remove_file(repo.join("environments/dev/added.yaml")).unwrap();
    write(
        &repo,
        "environments/dev/changed.yaml",
        &entry("changed", "v1"),
    );
    write(
        &repo,
        "environments/dev/removed.yaml",
        &entry("removed", "v1").replace("quay.io/org/removed:v1", "quay.io/org/x:v1"),
    );
    let run = h.caib(&[
        "catalog",
        "diff",
        "--catalog-repo",
        repo_arg,
        "--env",
        "dev",
    ]);
    assert_eq!((run.code, run.stdout.as_str()), (0, ""), "{run:?}");
    assert!(run.stderr.contains("No differences"), "{run:?}");

    // A remote URL: read through caib's cached clone of the repository.
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .current_dir(&repo)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "-A"]);
    git(&[
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@example.com",
        "commit",
        "-qm",
        "catalog",
    ]);
    let url = format!("file://{}", repo.display());
    let run = h.caib(&["catalog", "diff", "--catalog-repo", &url, "--env", "dev"]);
    assert_eq!((run.code, run.stdout.as_str()), (0, ""), "{run:?}");
    std::fs::remove_file(repo.join("environments/dev/removed.yaml")).unwrap();
    git(&["add", "-A"]);
    git(&[
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@example.com",
        "commit",
        "-qm",
        "remove",
    ]);
    let run = h.caib(&["catalog", "diff", "--catalog-repo", &url, "--env", "dev"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout
            .contains("--- cluster/default/removed\n+++ /dev/null\n"),
        "{run:?}"
    );

    // Bad flag values.
    let run = h.caib(&["catalog", "diff", "--catalog-repo", repo_arg]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("--env is required") && run.stderr.contains("dev, production"),
        "{run:?}"
    );
    let run = h.caib(&["catalog", "diff", "--catalog-repo", repo_arg, "--env", "qa"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("--env qa"), "{run:?}");
}

#[tokio::test]
async fn images_list_shows_imagebuilds() {
    let h = Harness::new();
    let client = h.client();
    let run = h.caib(&["images", "list"]);
    assert_eq!(run.code, 1, "no ImageBuild CRD yet: {run:?}");

    // The operator's CRD, applied at runtime.
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client.clone());
    let crd = serde_saphyr::from_str(&std::fs::read_to_string(IMAGEBUILD_CRD).unwrap()).unwrap();
    crds.create(&PostParams::default(), &crd).await.unwrap();
    let resource = kube::api::ApiResource {
        group: "automotive.sdv.cloud.redhat.com".into(),
        version: "v1alpha1".into(),
        api_version: "automotive.sdv.cloud.redhat.com/v1alpha1".into(),
        kind: "ImageBuild".into(),
        plural: "imagebuilds".into(),
    };
    let builds: Api<kube::api::DynamicObject> =
        Api::namespaced_with(client.clone(), "default", &resource);
    let run = eventually(
        Duration::from_secs(10),
        "the ImageBuild CRD to be served",
        || async {
            let run = h.caib(&["images", "list"]);
            (run.code == 0).then_some(run)
        },
    )
    .await;
    assert_eq!(run.stderr, "No ImageBuilds found\n", "{run:?}");

    for (name, spec, phase) in [
        (
            "my-custom-build",
            json!({"architecture": "arm64", "aib": {"distro": "cs9", "target": "raspberry-pi"},
                                    "export": {"container": "quay.io/my-org/custom-build:v1.0.0"}}),
            "Completed",
        ),
        (
            "disk-build",
            json!({"architecture": "amd64", "aib": {"distro": "autosd10", "target": "qemu"},
                               "export": {"format": "qcow2", "disk": {"oci": "quay.io/my-org/disk:v2"}}}),
            "Building",
        ),
    ] {
        let obj: kube::api::DynamicObject = serde_json::from_value(json!({
            "apiVersion": "automotive.sdv.cloud.redhat.com/v1alpha1", "kind": "ImageBuild",
            "metadata": {"name": name}, "spec": spec
        }))
        .unwrap();
        builds.create(&PostParams::default(), &obj).await.unwrap();
        builds
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"phase": phase}})),
            )
            .await
            .unwrap();
    }
    let run = h.caib(&["images", "list"]);
    assert_eq!(run.code, 0, "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        cells(lines[0]),
        [
            "NAME",
            "PHASE",
            "ARCHITECTURE",
            "DISTRO",
            "TARGET",
            "IMAGE",
            "AGE"
        ]
    );
    let mut rows: Vec<Vec<&str>> = lines[1..].iter().map(|l| cells(l)[..6].to_vec()).collect();
    rows.sort();
    assert_eq!(
        rows,
        [
            vec![
                "disk-build",
                "Building",
                "amd64",
                "autosd10",
                "qemu",
                "quay.io/my-org/disk:v2"
            ],
            vec![
                "my-custom-build",
                "Completed",
                "arm64",
                "cs9",
                "raspberry-pi",
                "quay.io/my-org/custom-build:v1.0.0"
            ],
        ]
    );
    let run = h.caib(&["images", "list", "-o", "json"]);
    let list: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
}

#[test]
fn completion_and_man_pages() {
    let h = Harness::new();
    for shell in ["bash", "zsh", "fish"] {
        let run = h.caib(&["completion", shell]);
        assert_eq!(run.code, 0, "{shell}: {run:?}");
        assert!(
            run.stdout.contains("caib") && run.stdout.contains("catalog"),
            "{shell}: {run:?}"
        );
    }
    let run = h.caib(&["completion", "tcsh"]);
    assert_eq!(run.code, 2, "{run:?}");
    let dir = h.dir.path().join("man");
    let run = h.caib(&["manpages", dir.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{run:?}");
    let page = std::fs::read_to_string(dir.join("caib.1")).unwrap();
    assert!(page.contains(".TH caib"), "{page}");
}

#[test]
fn config_file_gives_defaults_and_flags_win() {
    let h = Harness::new();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = h.client();
        ensure_namespace(&client, "team-b").await;
        put(
            &client,
            "team-b",
            "b-image",
            json!({"registryUrl": "quay.io/b:1"}),
            Some(Value::Null),
            json!({}),
            None,
        )
        .await;
        put(
            &client,
            "default",
            "d-image",
            json!({"registryUrl": "quay.io/d:1"}),
            Some(Value::Null),
            json!({}),
            None,
        )
        .await;
    });
    let config = h.dir.path().join("home/.config/caib/config.yaml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(&config, "namespace: team-b\noutput: wide\n").unwrap();
    let run = h.caib(&["catalog", "list"]);
    assert_eq!(names(&run.stdout), ["b-image"], "{run:?}");
    assert!(
        run.stdout.lines().next().unwrap().ends_with("REVISION"),
        "{run:?}"
    );
    let run = h.caib(&["catalog", "list", "-n", "default", "-o", "table"]);
    assert_eq!(names(&run.stdout), ["d-image"], "{run:?}");
    assert!(
        run.stdout.lines().next().unwrap().ends_with("AGE"),
        "{run:?}"
    );
    std::fs::write(&config, "namespce: team-b\n").unwrap();
    let run = h.caib(&["catalog", "list"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("config.yaml"), "{run:?}");
}

#[tokio::test]
async fn verify_local_checks_the_registry_without_a_cluster() {
    use catalog_e2e::registry::{ImageFixture, Registry, RegistryConfig};
    let registry = Registry::start(RegistryConfig::default()).await;
    let pushed = registry
        .push_image("os/autosd:v1", &ImageFixture::new("arm64"))
        .await;
    let host = registry.host();
    let h = Harness::new();
    let repo = h.dir.path().join("catalog");
    write(
        &repo,
        "catalog.yaml",
        "environments:\n  - name: dev\n    path: environments/dev\n",
    );
    let entry = |name: &str, url: &str, arch: &str| {
        format!(
            "apiVersion: automotive.sdv.cloud.redhat.com/v1alpha1\nkind: CatalogImage\nmetadata:\n  name: {name}\nspec:\n  registryUrl: {url}\n  metadata:\n    architecture: {arch}\n"
        )
    };
    write(
        &repo,
        "environments/dev/good.yaml",
        &entry("good", &format!("{host}/os/autosd:v1"), "aarch64"),
    );
    write(
        &repo,
        "environments/dev/wrong-arch.yaml",
        &entry("wrong-arch", &format!("{host}/os/autosd:v1"), "amd64"),
    );
    write(
        &repo,
        "environments/dev/missing.yaml",
        &entry("missing", &format!("{host}/os/autosd:v9"), "arm64"),
    );
    let local = |name: &str| -> Run {
        let mut cmd = h.command();
        // No cluster at all: a kubeconfig that does not exist.
        cmd.env("KUBECONFIG", h.dir.path().join("no-such-kubeconfig"))
            .current_dir(&repo)
            .args(["catalog", "verify", name, "--local", "--env", "dev"]);
        cmd.output().unwrap().into()
    };

    let run = local("good");
    assert_eq!(run.code, 0, "{run:?}");
    let size = format!("{:.1} kB", pushed.size_bytes as f64 / 1000.0);
    let head = format!(
        "Verifying catalog image \"good\"...
✓ Registry accessibility: OK
✓ Digest verification: OK
✓ Metadata extraction: OK

Registry URL:     {host}/os/autosd:v1
Resolved Digest:  {}
Size:            {size}
Layers:          2
Last Verified:   ",
        pushed.digest
    );
    assert!(
        run.stdout.starts_with(&head),
        "{run:?}\nexpected start:\n{head}"
    );
    assert!(
        run.stdout.ends_with("Status:          Available\n"),
        "{run:?}"
    );

    let run = local("wrong-arch");
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.contains("✓ Registry accessibility: OK\n"),
        "{run:?}"
    );
    assert!(
        run.stdout.contains(
            "✗ Digest verification: declared architecture amd64 but the image provides arm64\n"
        ),
        "{run:?}"
    );
    assert!(run.stdout.ends_with("Status:          Failed\n"), "{run:?}");

    let run = local("missing");
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.contains("✗ Registry accessibility: ") && run.stdout.contains("not found"),
        "{run:?}"
    );

    // An image reference instead of an entry name.
    let mut cmd = h.command();
    let run: Run = cmd
        .current_dir(h.dir.path())
        .args([
            "catalog",
            "verify",
            &format!("{host}/os/autosd:v1"),
            "--local",
        ])
        .output()
        .unwrap()
        .into();
    assert_eq!(run.code, 0, "{run:?}");
    let run = local("nope");
    assert_eq!(run.code, 4, "{run:?}");
    assert!(
        run.stderr.contains("catalog entry \"nope\" not found"),
        "{run:?}"
    );
}

#[tokio::test]
async fn list_pages_through_large_catalogs() {
    use futures::StreamExt;
    let h = Harness::new();
    let client = h.client();
    let api: Api<CatalogImage> = Api::namespaced(client.clone(), "default");
    let created: Vec<()> = futures::stream::iter(0..1001)
        .map(|i| {
            let api = api.clone();
            async move {
                let spec: CatalogImageSpec = serde_json::from_value(
                    json!({"registryUrl": format!("quay.io/org/image:{i}")}),
                )
                .unwrap();
                api.create(
                    &PostParams::default(),
                    &CatalogImage::new(&format!("image-{i:04}"), spec),
                )
                .await
                .unwrap();
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    assert_eq!(created.len(), 1001);
    h.emu.reset_requests();
    let run = h.caib(&["catalog", "list", "--limit", "3"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout.lines().count(), 4, "header and 3 rows: {run:?}");
    // 1001 objects in pages of 500: three list requests, never one unbounded response.
    assert_eq!(
        h.emu.request_count("list catalogimages"),
        3,
        "{:?}",
        h.emu.requests()
    );
    let run = h.caib(&["catalog", "list", "-o", "json"]);
    let list: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1001);
}
