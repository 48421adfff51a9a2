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
    /// Address of the HTTP server: /metrics, /healthz, /readyz and the webhook receiver.
    #[arg(long, default_value = "0.0.0.0:8080", env = "CATALOG_HTTP_ADDR")]
    pub http_addr: SocketAddr,
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
