//! Command-line configuration of the reconciler.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, ValueEnum};

#[derive(Parser, Debug, Clone)]
#[command(
    name = "catalog-reconciler",
    version,
    about = "Syncs catalog Git repositories into CatalogImages and verifies every image in its registry",
    long_about = "catalog-reconciler runs two controllers: the sync controller keeps the CatalogImages \
of every CatalogSource equal to the files of its Git ref, and the verification controller checks \
every CatalogImage in its OCI registry and reports the result in its status. It reads KUBECONFIG \
or the in-cluster configuration."
)]
pub struct Config {
    /// Address of the HTTP server: the webhook receiver (POST /hook/<namespace>/<name>),
    /// /healthz and /readyz, and /metrics unless --metrics-addr names another address.
    #[arg(long, default_value = "0.0.0.0:8080", env = "CATALOG_HTTP_ADDR")]
    pub http_addr: SocketAddr,
    /// Address for /metrics (and /healthz, /readyz), so the internet-facing --http-addr can
    /// carry only webhooks and probes. Default: --http-addr, which then serves everything.
    #[arg(long, env = "CATALOG_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// HTTP: a request's header, and a webhook's body, must arrive within this; a stalled
    /// connection is closed (idle keep-alive connections too).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub http_read_timeout: std::time::Duration,
    /// HTTP: connections served at once per address; further clients wait in the accept
    /// queue, so no client can exhaust file descriptors or memory.
    #[arg(long, default_value_t = 256)]
    pub http_max_connections: usize,
    /// Webhooks: deliveries that have not authenticated (all sources together) accepted at
    /// once; beyond, 429. A delivery whose signature matches gives its charge back.
    #[arg(long, default_value_t = 200)]
    pub webhook_unauthenticated_burst: u32,
    /// Webhooks: unauthenticated deliveries accepted per second, sustained (each costs at most
    /// a 1 MiB read and an HMAC). Authenticated deliveries are limited per source instead: 60
    /// at once, one more per second.
    #[arg(long, default_value_t = 20)]
    pub webhook_unauthenticated_rate: u32,
    /// Registry host:port allowed over plain HTTP (repeatable).
    #[arg(long = "insecure-registry", value_name = "HOST:PORT")]
    pub insecure_registries: Vec<String>,
    /// PEM file of a CA to trust for registries, in addition to the system roots.
    #[arg(long, value_name = "FILE")]
    pub registry_ca: Option<PathBuf>,
    /// Only watch this namespace (default: all namespaces).
    #[arg(long, env = "CATALOG_NAMESPACE")]
    pub namespace: Option<String>,
    /// Run the controllers only while holding the leader Lease, so replicas are safe.
    #[arg(long)]
    pub leader_elect: bool,
    /// Name of the leader Lease.
    #[arg(long, default_value = "catalog-reconciler")]
    pub lease_name: String,
    /// Namespace of the leader Lease (default: POD_NAMESPACE, then `default`).
    #[arg(long, env = "POD_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// Identity in the Lease (default: HOSTNAME, then a random id).
    #[arg(long, env = "HOSTNAME")]
    pub identity: Option<String>,
    /// Which controllers to run.
    #[arg(long, value_enum, default_value = "all")]
    pub controllers: Controllers,
    /// Development mode: sync this working tree on every save instead of a CatalogSource.
    #[arg(long, value_name = "DIR")]
    pub local_source: Option<PathBuf>,
    /// With --local-source: the environment directory inside it (e.g. environments/dev).
    #[arg(
        long,
        value_name = "PATH",
        default_value = ".",
        requires = "local_source"
    )]
    pub local_path: String,
    /// With --local-source: namespace to apply to.
    #[arg(long, value_name = "NS", requires = "local_source")]
    pub target_namespace: Option<String>,
    /// Directory of the per-source bare Git caches (fetches after the first are incremental;
    /// default: $XDG_CACHE_HOME/catalog-reconciler, else ~/.cache/catalog-reconciler).
    #[arg(long, value_name = "DIR", env = "CATALOG_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Verification: first retry delay after a transient registry failure (doubles per
    /// consecutive failure, with jitter).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub verify_backoff_min: std::time::Duration,
    /// Verification: longest retry delay after transient failures.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub verify_backoff_max: std::time::Duration,
    /// Verification: floor applied to every `spec.verificationInterval`.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub min_verification_interval: std::time::Duration,
    /// Verification: concurrent verifications per registry host. An image whose host is at
    /// this limit waits without holding a worker (requeued after 1-2s), so a slow registry
    /// cannot occupy every `--verify-workers` slot.
    #[arg(long, default_value_t = 8)]
    pub registry_concurrency: usize,
    /// Verification: CatalogImages verified concurrently.
    #[arg(long, default_value_t = 64)]
    pub verify_workers: u16,
    /// Verification: deadline of one whole verification, every registry request of it
    /// together (token requests included), 1s to 10m. A registry that answers slowly (one byte
    /// per second) ends it here as RegistryUnavailable; each single request is also limited to
    /// 30s.
    #[arg(long, default_value = "60s", value_parser = parse_verify_timeout)]
    pub verify_timeout: std::time::Duration,
    /// Leader election: how long a Lease stays valid without renewal.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub lease_duration: std::time::Duration,
    /// Let a CatalogSource apply into another namespace than its own (`spec.targetNamespace`).
    /// Off by default: on a shared cluster a tenant's source must not write into another
    /// tenant's namespace. Turn it on only where every CatalogSource author is trusted with
    /// every namespace (single-tenant clusters).
    #[arg(long)]
    pub allow_cross_namespace_targets: bool,
    /// Most entry files one CatalogSource may hold (counted in the Git trees before any file
    /// is parsed). A source over it is Ready=False with reason `TooManyEntries` and keeps
    /// what it applied before: a runaway commit (a generator loop, a wrong path) must not
    /// make the reconciler parse and hold an unbounded number of entries.
    #[arg(long, default_value_t = 20_000, value_name = "N")]
    pub max_entries_per_source: usize,
    /// Git fetches running at once, over all sources. A fetch abandoned at its deadline
    /// (`spec.timeout`) keeps its slot until libgit2 really lets go of the connection, so
    /// hung remotes are bounded by this; syncs do not hold a worker while they fetch.
    #[arg(long, default_value_t = 32, value_name = "N")]
    pub fetch_concurrency: usize,
    /// Pull-request previews: open pull requests previewed per CatalogSource (the newest by
    /// number; older ones get no preview), 1 to 50 (the CatalogSource status lists at most
    /// 50). A catalog repository with hundreds of open pull requests must not make the
    /// reconciler fetch and verify hundreds of heads.
    #[arg(long, default_value_t = 10, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=50))]
    pub max_previews_per_source: u16,
    /// Pull-request previews evaluated at once, over all sources. Previews never take a
    /// sync's worker or fetch slot of its own source, so a slow preview delays only other
    /// previews.
    #[arg(long, default_value_t = 2, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub preview_concurrency: u16,
    /// Pull-request previews: images verified per preview (created and updated entries);
    /// beyond it the preview fails, naming how many were not verified.
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub max_preview_images: usize,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value = "json", env = "CATALOG_LOG_FORMAT")]
    pub log_format: LogFormat,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Controllers {
    All,
    Sync,
    Verify,
}

impl Controllers {
    pub fn sync(self) -> bool {
        matches!(self, Controllers::All | Controllers::Sync)
    }
    pub fn verify(self) -> bool {
        matches!(self, Controllers::All | Controllers::Verify)
    }
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

/// `--verify-timeout`: long enough for a real index and a token exchange, short enough that a
/// stalled registry frees its host permit within minutes.
fn parse_verify_timeout(input: &str) -> Result<std::time::Duration, String> {
    let d = parse_duration(input)?;
    let (min, max) = (
        std::time::Duration::from_secs(1),
        std::time::Duration::from_secs(600),
    );
    if d < min || d > max {
        return Err(format!("{input} is outside 1s..10m"));
    }
    Ok(d)
}

fn parse_duration(input: &str) -> Result<std::time::Duration, String> {
    catalog_api::duration::parse(input).map_err(|e| e.to_string())
}
