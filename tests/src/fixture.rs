//! The arrange step every cluster-backed suite shares: an emulator serving the catalog CRDs
//! with a kubeconfig on disk, namespaces and Secrets, catalog objects built from JSON, status
//! written the way a controller writes it, the operator's ImageBuild CRD, and the real
//! `catalog-reconciler` started against all that.
//!
//! Why one module: the `sync_*`, `verify_*`, `caib_publish` and `caib_read` suites each grew
//! their own copy of this setup, and the copies drifted (different log handling, different
//! error messages). Keeping it here means a change to how the harness starts the emulator or
//! the reconciler is made once, and each suite's own layer only says what is particular to it
//! (which controllers run, which timings, which helpers it reads results with).

use std::fs::{File, OpenOptions};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::{Api, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tempfile::TempDir;

use catalog_api::CatalogImage;
use catalog_api::image::Phase;

use crate::emulator::{Emulator, EmulatorOptions};
use crate::process::{binary, eventually};
use crate::registry::{ImageFixture, PushedImage, Registry, RegistryConfig};

/// `apiVersion` of every catalog kind and of the operator's ImageBuild.
pub const API_VERSION: &str = "automotive.sdv.cloud.redhat.com/v1alpha1";

/// The repository's `crds/` directory: suites serve the same CRDs the chart installs, so a
/// schema change is exercised end to end without copying it.
pub fn crds_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../crds"))
}

/// The automotive-dev operator's ImageBuild CRD (a test fixture: the operator is not part of
/// this repository, but `caib catalog publish` and `caib images list` read its objects).
pub fn imagebuild_crd_file() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/imagebuild-crd.yaml"
    ))
}

/// A Kubernetes API emulator with a kubeconfig on disk, for suites that drive real binaries
/// (which only find a cluster through `KUBECONFIG`) and read the results with a client.
pub struct Cluster {
    pub emu: Emulator,
    /// A client of `emu`, for arranging objects and reading what the binaries did.
    pub client: kube::Client,
    /// Holds `kubeconfig` and whatever the suite keeps next to it (logs, caches, homes).
    pub tmp: TempDir,
}

impl Cluster {
    /// An emulator serving the catalog CRDs from [`crds_dir`].
    pub fn start() -> Cluster {
        Cluster::with_options(EmulatorOptions::with_crds(crds_dir()))
    }

    /// An emulator started with `options` (no CRDs, a token, ...), its kubeconfig written
    /// to [`Cluster::kubeconfig`].
    /// Needs a tokio runtime (for the client); see [`start_emulator`] for tests without one.
    pub fn with_options(options: EmulatorOptions) -> Cluster {
        let tmp = tempfile::tempdir().unwrap();
        let emu = start_emulator(options, &tmp.path().join("kubeconfig"));
        let client = emu.kube_client();
        Cluster { emu, client, tmp }
    }

    /// [`Cluster::start`] plus namespace `ns`, where a suite's objects live.
    pub async fn with_namespace(ns: &str) -> Cluster {
        let cluster = Cluster::start();
        cluster.create_namespace(ns).await;
        cluster
    }

    /// The kubeconfig file the binaries are given.
    pub fn kubeconfig(&self) -> PathBuf {
        self.tmp.path().join("kubeconfig")
    }

    /// `Api<K>` in namespace `ns`.
    pub fn api<K>(&self, ns: &str) -> Api<K>
    where
        K: Resource<Scope = NamespaceResourceScope>,
        <K as Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), ns)
    }

    /// Creates namespace `name`; panics if that fails (it must not exist yet).
    pub async fn create_namespace(&self, name: &str) {
        create_namespace(&self.client, name)
            .await
            .expect("namespace created");
    }

    /// Creates Secret `name` in `ns` from string data (optionally typed); panics if it exists.
    pub async fn create_secret(
        &self,
        ns: &str,
        name: &str,
        type_: Option<&str>,
        data: &[(&str, &str)],
    ) {
        self.api::<Secret>(ns)
            .create(&PostParams::default(), &secret(name, type_, data))
            .await
            .expect("secret created");
    }

    /// Creates or replaces Secret `name` in `ns` (rotating credentials under a running
    /// reconciler).
    pub async fn put_secret(
        &self,
        ns: &str,
        name: &str,
        type_: Option<&str>,
        data: &[(&str, &str)],
    ) {
        let secrets = self.api::<Secret>(ns);
        let mut secret = secret(name, type_, data);
        match secrets.get_opt(name).await.unwrap() {
            None => {
                secrets
                    .create(&PostParams::default(), &secret)
                    .await
                    .expect("secret created");
            }
            Some(existing) => {
                secret.metadata.resource_version = existing.metadata.resource_version;
                secrets
                    .replace(name, &PostParams::default(), &secret)
                    .await
                    .expect("secret replaced");
            }
        }
    }

    /// Installs the ImageBuild CRD and waits until the emulator serves it in `ns`.
    pub async fn install_imagebuild_crd(&self, ns: &str) {
        create_imagebuild_crd(&self.client).await;
        let builds = imagebuilds(&self.client, ns);
        eventually(
            Duration::from_secs(10),
            "the ImageBuild CRD to be served",
            || async { builds.list(&Default::default()).await.ok().map(|_| ()) },
        )
        .await;
    }
}

/// Starts an emulator with `options` and writes its kubeconfig to `kubeconfig`; installs the
/// ring TLS provider first, as every client must. Needs no runtime, so synchronous tests
/// that only run binaries use it directly.
pub fn start_emulator(options: EmulatorOptions, kubeconfig: &Path) -> Emulator {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let emu = Emulator::start(options).expect("emulator starts");
    emu.write_kubeconfig(kubeconfig).unwrap();
    emu
}

/// Creates namespace `name` (callers decide whether "already exists" matters).
pub async fn create_namespace(client: &kube::Client, name: &str) -> kube::Result<Namespace> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    namespaces.create(&PostParams::default(), &namespace).await
}

/// A Secret from string data, as `kubectl create secret generic --from-literal` makes it.
pub fn secret(name: &str, type_: Option<&str>, data: &[(&str, &str)]) -> Secret {
    let string_data: serde_json::Map<String, Value> = data
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    let mut object = json!({"metadata": {"name": name}, "stringData": string_data});
    if let Some(t) = type_ {
        object["type"] = json!(t);
    }
    serde_json::from_value(object).unwrap()
}

/// `base` with each top-level key of `overrides` set over it: the suites state a default spec
/// once and each test only the fields it is about.
pub fn merged(mut base: Value, overrides: Value) -> Value {
    for (k, v) in overrides.as_object().expect("overrides are an object") {
        base[k] = v.clone();
    }
    base
}

/// A catalog object (`CatalogSource`, `CatalogImage`, ...) as a manifest would spell it.
pub fn catalog_object(kind: &str, name: &str, ns: &str, spec: Value) -> Value {
    json!({
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    })
}

/// Creates `object` (JSON, as a manifest) through `api`; panics naming `K`'s kind.
pub async fn create_json<K>(api: &Api<K>, object: Value) -> K
where
    K: Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
    <K as Resource>::DynamicType: Default,
{
    let kind = K::kind(&Default::default()).into_owned();
    let object: K = serde_json::from_value(object)
        .unwrap_or_else(|e| panic!("{kind} manifest does not parse: {e}"));
    api.create(&PostParams::default(), &object)
        .await
        .unwrap_or_else(|e| panic!("{kind} created: {e}"))
}

/// Writes `status` through the status subresource with a merge patch, as a controller does.
pub async fn patch_status<K>(api: &Api<K>, name: &str, status: Value)
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": status })),
    )
    .await
    .unwrap();
}

/// The ImageBuild kind, which has no Rust type here.
pub fn imagebuild_resource() -> ApiResource {
    ApiResource {
        group: "automotive.sdv.cloud.redhat.com".into(),
        version: "v1alpha1".into(),
        api_version: API_VERSION.into(),
        kind: "ImageBuild".into(),
        plural: "imagebuilds".into(),
    }
}

/// `Api` of the ImageBuilds in `ns`.
pub fn imagebuilds(client: &kube::Client, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), ns, &imagebuild_resource())
}

/// Applies the ImageBuild CRD from [`imagebuild_crd_file`] (not waiting for it to be served).
pub async fn create_imagebuild_crd(client: &kube::Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd =
        serde_saphyr::from_str(&std::fs::read_to_string(imagebuild_crd_file()).unwrap()).unwrap();
    crds.create(&PostParams::default(), &crd).await.unwrap();
}

/// Creates ImageBuild `name` in `ns` with `spec`, then sets its `status.phase` (as the
/// operator would once the build ran).
pub async fn put_imagebuild(client: &kube::Client, ns: &str, name: &str, spec: Value, phase: &str) {
    let builds = imagebuilds(client, ns);
    let mut build = DynamicObject::new(name, &imagebuild_resource());
    build.data = json!({ "spec": spec });
    builds.create(&PostParams::default(), &build).await.unwrap();
    patch_status(&builds, name, json!({ "phase": phase })).await;
}

/// A plain-HTTP docker-registry holding one image, `repo_tag` built for `arch`: what most
/// verification and publishing tests start from. Keep the `Registry` bound: dropping it
/// stops the registry.
pub async fn registry_with(repo_tag: &str, arch: &str) -> (Registry, PushedImage) {
    let registry = Registry::start(RegistryConfig::default()).await;
    let pushed = registry
        .push_image(repo_tag, &ImageFixture::new(arch))
        .await;
    (registry, pushed)
}

/// `catalog-reconciler` with what every suite passes: text logs, `--http-addr` on
/// `http_port`, `KUBECONFIG`, no stdin/stdout; `controllers` limits which controllers run
/// (`None`: all of them). Callers add their own flags, `RUST_LOG` and the log file.
pub fn reconciler_command(kubeconfig: &Path, http_port: u16, controllers: Option<&str>) -> Command {
    let mut cmd = Command::new(binary("catalog-reconciler"));
    if let Some(controllers) = controllers {
        cmd.args(["--controllers", controllers]);
    }
    cmd.args(["--log-format", "text"])
        .arg("--http-addr")
        .arg(format!("127.0.0.1:{http_port}"))
        .env("KUBECONFIG", kubeconfig)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    cmd
}

/// A log file for a reconciler's stderr: truncated, or appended to so that one file holds
/// the logs of every restart in a test.
pub fn log_file(path: &Path, append: bool) -> File {
    if append {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap()
    } else {
        File::create(path).unwrap()
    }
}

/// What a failed spawn says: the binary is built separately from the tests.
const RECONCILER_MISSING: &str =
    "catalog-reconciler starts (run `cargo build -p catalog-reconciler` first)";

/// Spawns a command from [`reconciler_command`]; the caller owns (and kills) the child.
pub fn spawn_reconciler(mut cmd: Command) -> Child {
    cmd.spawn().expect(RECONCILER_MISSING)
}

/// Spawns a command from [`reconciler_command`] as a tokio child that is killed when dropped,
/// so a failing test leaves no reconciler behind.
pub fn spawn_reconciler_async(cmd: Command) -> tokio::process::Child {
    tokio::process::Command::from(cmd)
        .kill_on_drop(true)
        .spawn()
        .expect(RECONCILER_MISSING)
}

/// Polls `check` every 25 ms until it returns `Some`; after `timeout` panics with the text
/// `explain` builds then (the object's status and the reconciler's log, say), which a
/// fixed message as in [`eventually`] cannot carry.
pub async fn wait_or_explain<T, F, Fut, E, EFut>(timeout: Duration, mut check: F, explain: E) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
    E: FnOnce() -> EFut,
    EFut: Future<Output = String>,
{
    let result = tokio::time::timeout(timeout, async {
        loop {
            if let Some(value) = check().await {
                return value;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    })
    .await;
    match result {
        Ok(value) => value,
        Err(_) => panic!("{}", explain().await),
    }
}

/// How many CatalogImages of `api` are Available (0 when the list fails).
pub async fn available_count(api: &Api<CatalogImage>) -> usize {
    api.list(&Default::default())
        .await
        .map(|l| {
            l.items
                .iter()
                .filter(|i| i.status.as_ref().and_then(|s| s.phase) == Some(Phase::Available))
                .count()
        })
        .unwrap_or(0)
}
