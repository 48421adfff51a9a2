//! `catalog-reconciler`: the sync and verification controllers, the metrics and probe
//! endpoint, and the process lifecycle (signals, graceful shutdown).

mod config;
mod forge;
mod http;
mod leader;
mod panics;
mod source;
mod sync;
#[cfg(test)]
mod test_support;
mod verify;
mod webhook;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use clap::Parser;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

pub use config::Config;

/// What every controller gets.
pub struct Context {
    pub client: kube::Client,
    pub config: Config,
    /// Fires on SIGTERM/SIGINT; controllers finish their current write and return.
    pub shutdown: CancellationToken,
}

fn main() -> std::process::ExitCode {
    // Before any worker thread exists, so none of them gets an arena of its own.
    sync::memory::limit_arenas();
    let config = Config::parse();
    init_logging(config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "catalog-reconciler stopped");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_logging(format: config::LogFormat) {
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

async fn run(config: Config) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = kube::Client::try_default()
        .await
        .context("cannot build a Kubernetes client (set KUBECONFIG or run in a cluster)")?;
    let shutdown = CancellationToken::new();
    let mut registry = Registry::with_prefix("catalog");
    let sync_metrics = sync::Metrics::register(&mut registry);
    let verify_metrics = verify::Metrics::register(&mut registry);
    let sync_controller = sync::Controller::new(
        sync_metrics.clone(),
        config
            .cache_dir
            .clone()
            .unwrap_or_else(sync::default_cache_dir),
    );
    let ready = Arc::new(AtomicBool::new(false));
    let health = http::Health {
        registry: Arc::new(registry),
        ready: ready.clone(),
    };
    let listener = tokio::net::TcpListener::bind(config.http_addr)
        .await
        .with_context(|| format!("cannot listen on {}", config.http_addr))?;
    tracing::info!(addr = %listener.local_addr()?, "serving /metrics, /healthz, /readyz");
    let app = http::router(health).merge(webhook::router(webhook::WebhookState::new(
        client.clone(),
        sync_controller.handle(),
    )));
    let server_shutdown = shutdown.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(server_shutdown.cancelled_owned())
            .await
    });

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
    });
    ready.store(true, Ordering::Relaxed);
    // With --leader-elect only the Lease holder runs controllers.
    let leadership = match config.leader_elect {
        true => leader::acquire(&ctx.client, &config, &shutdown).await?,
        false => None,
    };
    if config.leader_elect && leadership.is_none() {
        server.await.context("http server panicked")??;
        return Ok(());
    }
    let sync = if config.local_source.is_some() {
        Some(tokio::spawn(sync::local::run(ctx.clone(), sync_metrics)))
    } else {
        config
            .controllers
            .sync()
            .then(|| tokio::spawn(sync_controller.run(ctx.clone())))
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
    server.await.context("http server panicked")??;
    Ok(())
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
