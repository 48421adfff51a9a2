//! Kubernetes API emulator.
//!
//! No kube-apiserver can run on these machines, so the end-to-end suites run on
//! this: a real HTTP server on loopback serving the CRDs of a directory plus the core kinds
//! our components use (Namespaces, Secrets, ConfigMaps, Events in both APIs, Leases,
//! CustomResourceDefinitions) and those `deploy/` installs (ServiceAccounts, Services,
//! Deployments, RBAC; stored as written), with the API server semantics kubectl and kube-rs
//! rely on.
//! `tests/tests/emulator_kubectl.rs` proves it with the real kubectl,
//! `tests/tests/emulator_kube_rs.rs` with kube-rs, and `tests/tests/emulator_fidelity.rs`
//! the rules a real server is stricter about (Event validation, namespace termination,
//! undeclared fields in server-side apply, unconditional updates, size limits).
//!
//! ```no_run
//! use catalog_e2e::emulator::{Emulator, EmulatorOptions, Fault};
//! # async fn demo() -> anyhow::Result<()> {
//! let emu = Emulator::start(EmulatorOptions::with_crds(concat!(env!("CARGO_MANIFEST_DIR"), "/../crds")))?;
//! emu.write_kubeconfig("/tmp/kubeconfig")?; // for kubectl / child processes
//! let client = emu.kube_client();           // for in-process kube-rs
//! emu.fail_next(Fault::resource("catalogimages").verb("patch").status(429).retry_after(1));
//! // ... run the component ...
//! assert_eq!(emu.writes(), 0);
//! # Ok(()) }
//! ```
//!
//! The server runs on its own thread and Tokio runtime, so it keeps serving while a test
//! blocks (e.g. on `std::process::Command::output()`), and it works from sync and async
//! tests alike. Dropping the handle stops it.
//!
//! Authentication and authorization work like the API server's (`authn.rs`, `gate.rs`,
//! `rbac.rs`): bearer tokens name users and ServiceAccounts, `kubectl create token` issues
//! ServiceAccount tokens, Roles/ClusterRoles and their bindings are enforced with RBAC's
//! semantics (plus the default discovery and self-review bindings of every cluster),
//! impersonation needs the `impersonate` verb, and `kubectl auth whoami|can-i` answer. The
//! kubeconfig and client the harness hands out are the admin (`system:masters`), so suites
//! that do not care see no difference; to run a component under a ServiceAccount, apply its
//! RBAC and use [`Emulator::kubeconfig_for_service_account`] (or
//! [`Emulator::kube_client_for_service_account`]).
//!
//! HTTP hooks (no authentication): `GET /emulator/requests` (counts), `DELETE
//! /emulator/requests` or `POST /emulator/requests/reset`, `POST /emulator/faults` (JSON
//! [`Fault`]), `DELETE /emulator/faults`, `POST /emulator/drop-watches`, `POST
//! /emulator/compact`, `PUT /emulator/latency` (`{"millis": N}`).

mod apply;
mod authn;
mod bootstrap;
mod builtin;
mod cel;
mod delete;
mod discovery;
mod error;
mod event_rules;
mod events;
mod fieldset;
mod gate;
mod gc;
mod hook_routes;
mod hooks;
mod identities;
mod key_index;
mod kinds;
mod kubeconfig;
mod limits;
mod managed;
mod meta;
mod namespaces;
mod objects;
mod openapi;
mod patch;
mod proto;
mod ratchet;
mod rbac;
mod read;
mod request;
mod resources;
mod reviews;
mod schema;
mod selectors;
mod server;
mod store;
mod table;
mod tls;
mod watch;
mod write;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

pub use authn::{ADMIN_USER, API_AUDIENCE};
pub use error::{ApiError, Cause};
pub use hooks::{Fault, WRITE_VERBS};

use server::Shared;
use store::Store;

/// How to start an [`Emulator`].
#[derive(Clone, Debug)]
pub struct EmulatorOptions {
    /// Listen address; port 0 picks a free port.
    pub addr: SocketAddr,
    /// Directory of CRD YAML files (multi-document allowed) registered at startup.
    pub crds_dir: Option<PathBuf>,
    /// The admin token ([`ADMIN_USER`], group `system:masters`). When set, requests need a
    /// token this emulator knows (else 401); when unset, a request without credentials is the
    /// admin. Other tokens: [`Emulator::token_for_service_account`], `kubectl create token`,
    /// [`Emulator::add_user_token`].
    pub token: Option<String>,
    /// A token of `system:serviceaccount:default:forbidden`, which no binding names: it may
    /// only discover (403 for everything else), for permission tests.
    pub forbidden_token: Option<String>,
    /// Changes kept for watch resumption and continue tokens; older ones answer 410.
    pub history_limit: usize,
    /// How often watches that asked for bookmarks get one.
    pub bookmark_interval: Duration,
}

impl Default for EmulatorOptions {
    fn default() -> Self {
        EmulatorOptions {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            crds_dir: None,
            token: None,
            forbidden_token: None,
            history_limit: 10_000,
            bookmark_interval: Duration::from_secs(5),
        }
    }
}

impl EmulatorOptions {
    /// Defaults plus the CRDs of `dir`.
    pub fn with_crds(dir: impl Into<PathBuf>) -> Self {
        EmulatorOptions {
            crds_dir: Some(dir.into()),
            ..Default::default()
        }
    }
}

/// A running emulator. Stops when dropped.
pub struct Emulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    tls_addr: SocketAddr,
    /// The admin token of the https kubeconfigs (`opts.token`, else an internal one).
    admin_token: String,
    token: Option<String>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Registers every CustomResourceDefinition found in the YAML/JSON files of `dir`.
fn load_crds(store: &mut Store, dir: &Path) -> anyhow::Result<()> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading CRD directory {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml" | "json")
            )
        })
        .collect();
    files.sort();
    let def = store
        .def("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        .context("CRD resource missing")?;
    let opts = write::WriteOpts {
        manager: "kube-emulator".into(),
        manager_given: true,
        validation: write::Validation::Strict,
        dry_run: false,
        force: false,
    };
    for f in files {
        let text =
            std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?;
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text)
            .with_context(|| format!("parsing {}", f.display()))?;
        for doc in docs
            .into_iter()
            .filter(|d| d["kind"] == "CustomResourceDefinition")
        {
            write::create(store, &def, None, doc, &opts)
                .map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
        }
    }
    Ok(())
}

impl Emulator {
    /// Starts an emulator on its own thread; returns once it accepts connections.
    pub fn start(opts: EmulatorOptions) -> anyhow::Result<Emulator> {
        let mut store = Store::new(opts.history_limit);
        if let Some(dir) = &opts.crds_dir {
            load_crds(&mut store, dir)?;
        }
        let listener = std::net::TcpListener::bind(opts.addr)
            .with_context(|| format!("binding {}", opts.addr))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let tls_listener = std::net::TcpListener::bind((addr.ip(), 0))
            .with_context(|| format!("binding {} for TLS", addr.ip()))?;
        tls_listener.set_nonblocking(true)?;
        let tls_addr = tls_listener.local_addr()?;
        let shared = Arc::new(Shared::new(
            store,
            opts.token.clone(),
            opts.forbidden_token.clone(),
            addr,
        ));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("kube-emulator")
            .enable_all()
            .build()?;
        let state = shared.clone();
        let interval = opts.bookmark_interval;
        let thread = std::thread::Builder::new()
            .name("kube-emulator".into())
            .spawn(move || {
                rt.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            tracing::error!("kube-emulator: cannot use listener: {e}");
                            return;
                        }
                    };
                    let tls = match tokio::net::TcpListener::from_std(tls_listener) {
                        Ok(l) => tokio::spawn(tls::serve(l, addr)),
                        Err(e) => {
                            tracing::error!("kube-emulator: cannot use TLS listener: {e}");
                            return;
                        }
                    };
                    let ticks = state.clone();
                    let ticker = tokio::spawn(async move {
                        loop {
                            tokio::time::sleep(interval).await;
                            ticks.lock_store().tick();
                        }
                    });
                    let app = server::router(state);
                    tokio::select! {
                        r = axum::serve(listener, app) => if let Err(e) = r {
                            tracing::error!("kube-emulator: server failed: {e}");
                        },
                        _ = stopped => {}
                    }
                    ticker.abort();
                    tls.abort();
                });
                rt.shutdown_timeout(Duration::from_secs(1));
            })?;
        // kubectl prompts for a password when an https user has no credentials: without an
        // admin token, the https kubeconfigs carry an internal one.
        let token = opts.token.clone().unwrap_or_else(|| {
            let t = format!("admin-{}", meta::new_uid());
            shared.authn.add_static(&t, authn::UserInfo::admin());
            t
        });
        Ok(Emulator {
            shared,
            addr,
            tls_addr,
            admin_token: token,
            token: opts.token,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A kubeconfig for this emulator (context namespace `default`, the configured token).
    pub fn kubeconfig(&self) -> String {
        kubeconfig::render(&self.url(), self.token.as_deref(), None)
    }

    /// Same as [`Self::kubeconfig`], with another token (or none), to test 401/403 handling.
    /// Plain HTTP: kube-rs sends the token, kubectl does not (use [`Self::kubeconfig_tls`]).
    pub fn kubeconfig_with_token(&self, token: Option<&str>) -> String {
        kubeconfig::render(&self.url(), token, None)
    }

    /// Writes [`Self::kubeconfig`] to `path`.
    pub fn write_kubeconfig(&self, path: impl AsRef<Path>) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig())
    }

    /// A kube-rs client for this emulator. Call inside a Tokio runtime.
    pub fn kube_client(&self) -> kube::Client {
        self.kube_client_with_token(self.token.as_deref())
    }

    /// A kube-rs client with another token (or none), to test 401/403 handling.
    pub fn kube_client_with_token(&self, token: Option<&str>) -> kube::Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let url = self.url().parse().expect("the emulator URL is a valid URI");
        let mut config = kube::Config::new(url);
        config.default_namespace = "default".into();
        config.auth_info.token = token.map(|t| t.to_string().into());
        kube::Client::try_from(config).expect("kube-rs accepts a plain-HTTP config")
    }

    /// Requests so far, keyed `"<verb> <resource>"`: verbs are the audit verbs (`get`,
    /// `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`), the
    /// resource is the plural, with `/status` for the subresource (e.g. `"patch
    /// catalogimages/status"`). Discovery and OpenAPI requests are not counted.
    pub fn requests(&self) -> BTreeMap<String, u64> {
        self.shared.hooks.counts()
    }

    /// One counter of [`Self::requests`] (0 if absent), e.g. `request_count("list catalogimages")`.
    pub fn request_count(&self, key: &str) -> u64 {
        self.requests().get(key).copied().unwrap_or(0)
    }

    /// Number of create/update/patch/delete/deletecollection requests so far.
    pub fn writes(&self) -> u64 {
        self.shared.hooks.writes()
    }

    pub fn reset_requests(&self) {
        self.shared.hooks.reset_counts();
    }

    /// Fails the next matching requests (see [`Fault`]).
    pub fn fail_next(&self, fault: Fault) {
        self.shared.hooks.add_fault(fault);
    }

    pub fn clear_faults(&self) {
        self.shared.hooks.clear_faults();
    }

    /// Closes every open watch stream (clients resume from their last resourceVersion).
    pub fn drop_watches(&self) {
        self.shared.hooks.drop_watches();
    }

    /// Forgets the change history and drops watches: every client resuming from an older
    /// resourceVersion gets 410 Expired and must relist.
    pub fn compact(&self) {
        let mut st = self.shared.lock_store();
        st.compact();
        self.shared.hooks.drop_watches();
    }

    /// Sets how many changes are kept for watch resumption (default 10,000).
    pub fn set_history_limit(&self, limit: usize) {
        self.shared.lock_store().set_history_limit(limit);
    }

    /// Delays every API request (not the `/emulator` hooks) by `d`.
    pub fn set_latency(&self, d: Duration) {
        self.shared.hooks.set_latency(d);
    }

    /// Stores `object` as it is, without defaulting, pruning or validation: an object written
    /// before a schema change (what an etcd holds from an older CRD version). Watchers see it
    /// like any write. Panics when the resource is not served (a test's own mistake).
    pub fn store_raw(&self, group: &str, version: &str, plural: &str, mut object: Value) {
        let mut st = self.shared.lock_store();
        let def = st
            .def(group, version, plural)
            .unwrap_or_else(|| panic!("{group}/{version} {plural} is not served"));
        let meta = object["metadata"].as_object_mut().expect("metadata");
        meta.entry("uid")
            .or_insert_with(|| Value::String(format!("raw-{}", st.rv() + 1)));
        meta.entry("generation").or_insert(Value::from(1));
        meta.entry("creationTimestamp").or_insert_with(|| {
            Value::String(
                jiff::Timestamp::now()
                    .strftime("%Y-%m-%dT%H:%M:%SZ")
                    .to_string(),
            )
        });
        let key = store::key_of(&object);
        st.put(&def.storage, key, object);
    }

    /// The current resourceVersion (the latest committed change).
    pub fn resource_version(&self) -> u64 {
        self.shared.lock_store().rv()
    }

    /// Stops the server and waits for its thread.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.stop_now();
    }
}
