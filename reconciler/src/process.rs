//! The process as the `catalog-reconciler` binary runs it (feature `controller`): the HTTP
//! servers (webhook receiver, probes, `/metrics`), leader election, signals, and the
//! controllers started under them. Everything else in the crate is the controllers' deciding
//! and writing code, which `caib` builds without this module and its server dependencies.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use crate::{Config, Context, config, http, leader, preview, sync, verify, webhook};

/// Logs to stderr as `format` says, filtered by `RUST_LOG` (default: info, quieter kube/hyper).
pub fn init_logging(format: config::LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube=warn,hyper=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        config::LogFormat::Json => builder.json().flatten_event(true).init(),
        config::LogFormat::Text => builder.with_ansi(false).init(),
    }
}

/// Runs the process until a signal or a lost leadership: the servers, then the controllers.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = kube::Client::try_default()
        .await
        .context("cannot build a Kubernetes client (set KUBECONFIG or run in a cluster)")?;
    let shutdown = CancellationToken::new();
    let mut registry = Registry::with_prefix("catalog");
    let sync_metrics = sync::Metrics::register(&mut registry);
    let verify_metrics = verify::Metrics::register(&mut registry);
    let previews = preview::Previews::new(
        preview::Limits {
            per_source: usize::from(config.max_previews_per_source),
            concurrency: usize::from(config.preview_concurrency),
            max_images: config.max_preview_images,
        },
        verify::oneshot::OneShot::new(&config, &verify_metrics)?,
    );
    let sync_controller = sync::Controller::new(
        sync_metrics.clone(),
        config
            .cache_dir
            .clone()
            .unwrap_or_else(sync::default_cache_dir),
    )
    .with_previews(previews);
    let ready = Arc::new(AtomicBool::new(false));
    let health = http::Health {
        registry: Arc::new(registry),
        ready: ready.clone(),
    };
    let hooks = start_webhook_caches(&client, &config, ready);
    let server = spawn_servers(&config, health, hooks, shutdown.clone()).await?;

    let signal_shutdown = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        signal_shutdown.cancel();
    });

    let ctx = Arc::new(Context {
        client,
        config: config.clone(),
        shutdown: shutdown.clone(),
        sync_writes: Default::default(),
    });
    // With --leader-elect only the Lease holder runs controllers.
    let leadership = match config.leader_elect {
        true => leader::acquire(&ctx.client, &config, &shutdown).await?,
        false => None,
    };
    if config.leader_elect && leadership.is_none() {
        server.await.context("http server panicked")?;
        return Ok(());
    }
    let sync = if config.local_source.is_some() {
        Some(tokio::spawn(sync::local::run(ctx.clone(), sync_metrics)))
    } else if config.controllers.sync() {
        Some(tokio::spawn(sync_controller.run(ctx.clone())))
    } else {
        None
    };
    let verify = config
        .controllers
        .verify()
        .then(|| tokio::spawn(verify::run(ctx.clone(), verify_metrics)));
    for task in [sync, verify].into_iter().flatten() {
        task.await.context("controller task panicked")??;
    }
    if let Some(leadership) = leadership {
        let lost = leadership.lost();
        leadership.release().await;
        anyhow::ensure!(
            !lost,
            "lost the leader Lease; exiting so a restart rejoins the election"
        );
    }
    shutdown.cancel();
    server.await.context("http server panicked")?;
    Ok(())
}

fn webhook_limits(config: &Config) -> webhook::Limits {
    webhook::Limits {
        body_timeout: config.http_read_timeout,
        unauthenticated_burst: config.webhook_unauthenticated_burst,
        unauthenticated_per_second: config.webhook_unauthenticated_rate,
    }
}

/// Starts, on every replica whatever its leadership, the caches the webhook receiver reads
/// (CatalogSources, webhook tokens), and marks the replica ready once both have listed: a
/// standby serves deliveries as well as the leader, so the Service may send it traffic.
fn start_webhook_caches(
    client: &kube::Client,
    config: &Config,
    ready: Arc<AtomicBool>,
) -> webhook::WebhookState {
    let secrets = Arc::new(webhook::secrets::SecretCache::new(client.clone()));
    let (sources, follow) = webhook::sources::cache(watched(client, config));
    tokio::spawn(follow);
    tokio::spawn(secrets.clone().watch(watched(client, config)));
    let (synced_sources, synced_secrets, flag) = (sources.clone(), secrets.clone(), ready.clone());
    tokio::spawn(async move {
        if synced_sources.wait_until_ready().await.is_ok() {
            synced_secrets.wait_synced().await;
            flag.store(true, Ordering::Relaxed);
            tracing::info!("webhook caches synced; ready");
        }
    });
    let limits = webhook_limits(config);
    webhook::WebhookState::new(sources, secrets, client.clone(), ready, limits)
}

/// `K` in the namespace the controllers are limited to (`--namespace`), else in all.
fn watched<K>(client: &kube::Client, config: &Config) -> kube::Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    <K as kube::Resource>::DynamicType: Default,
{
    match &config.namespace {
        Some(ns) => kube::Api::namespaced(client.clone(), ns),
        None => kube::Api::all(client.clone()),
    }
}

/// Binds --http-addr (webhooks, probes, and /metrics unless split) and --metrics-addr when
/// it differs (metrics, probes), and serves them until `shutdown`.
async fn spawn_servers(
    config: &Config,
    health: http::Health,
    hooks: webhook::WebhookState,
    shutdown: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let limits = http::ServerLimits {
        header_timeout: config.http_read_timeout,
        max_connections: config.http_max_connections,
    };
    let split = config.metrics_addr.filter(|a| *a != config.http_addr);
    let mut app = http::probes(health.clone()).merge(webhook::router(hooks));
    let mut servers = Vec::new();
    if let Some(addr) = split {
        let listener = http::bind(addr).await?;
        tracing::info!(addr = %listener.local_addr()?, "serving /metrics, /healthz, /readyz");
        let metrics = http::probes(health.clone()).merge(http::metrics_route(health));
        servers.push(http::serve(listener, metrics, limits, shutdown.clone()));
    } else {
        app = app.merge(http::metrics_route(health));
    }
    let listener = http::bind(config.http_addr).await?;
    let what = if split.is_some() { "" } else { " /metrics," };
    tracing::info!(addr = %listener.local_addr()?, "serving /hook,{what} /healthz, /readyz");
    servers.push(http::serve(listener, app, limits, shutdown));
    Ok(tokio::spawn(async move {
        futures::future::join_all(servers).await;
    }))
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
