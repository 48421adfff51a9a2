//! Benchmark of the verification controller: N CatalogImages (default 1,000) over 50
//! repositories of one local docker-registry that requires bearer tokens (`auth: token`, a
//! token server of the harness as its realm, as real registries work), verified by the real
//! `catalog-reconciler` as shipped (both controllers, `--leader-elect`, the ServiceAccount of
//! `deploy/rbac.yaml`, 300 unrelated 500 KiB Secrets in the cluster) against the in-process
//! Kubernetes API emulator. Prints numbers; asserts nothing.
//!
//! `cargo build --release -p catalog-reconciler -p catalog-e2e --bins &&
//!  target/release/bench-verify [COUNT] [INTERVAL_SECONDS]`
//!
//! Measures: wall time from starting the reconciler (all images Pending) until every image is
//! Available (including winning the Lease); registry requests per image on first verification
//! and on one periodic re-verification (from the reconciler's own metrics); token requests per
//! repository (from the token server); the reconciler's peak RSS (VmHWM).
//! Targets (issue 4): under 15 s, at most 3 requests per image first and exactly 1 on
//! re-verification, RSS under 64 MiB.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use catalog_api::CatalogImage;
use catalog_e2e::bench;
use catalog_e2e::emulator::{Emulator, EmulatorOptions};
use catalog_e2e::process::peak_rss_mib;
use catalog_e2e::registry::{ImageFixture, Registry, RegistryConfig, TokenServer};
use futures::StreamExt;
use kube::api::{Api, PostParams};
use serde_json::json;

const NS: &str = "bench";
const REPOSITORIES: usize = 50;

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.starts_with(name) && matches!(l.as_bytes().get(name.len()), Some(b'{' | b' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn scrape(port: u16) -> String {
    match reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Pushes `count` images round-robin over [`REPOSITORIES`]; returns (index, reference).
async fn push_images(registry: &Registry, count: usize) -> Vec<(usize, String)> {
    let pushing = Instant::now();
    let pushed = futures::stream::iter(0..count)
        .map(|i| async move {
            let repo = format!("bench/os-{:02}", i % REPOSITORIES);
            let tag = format!("build-{i}");
            let fixture = ImageFixture::new("amd64").layers(&[512]).seed(i as u64);
            registry
                .push_image(&format!("{repo}:{tag}"), &fixture)
                .await;
            (i, format!("{}/{repo}:{tag}", registry.host()))
        })
        .buffer_unordered(16)
        .collect()
        .await;
    println!(
        "pushed {count} images over {REPOSITORIES} repositories in {:.1?}",
        pushing.elapsed()
    );
    pushed
}

/// One CatalogImage per pushed image, re-verified every `interval` seconds.
async fn create_images(
    images: &Api<CatalogImage>,
    pushed: Vec<(usize, String)>,
    interval: u64,
) -> anyhow::Result<()> {
    futures::stream::iter(pushed)
        .map(|(i, url)| {
            let object = json!({
                "apiVersion": "automotive.sdv.cloud.redhat.com/v1alpha1",
                "kind": "CatalogImage",
                "metadata": {"name": format!("image-{i:05}"), "namespace": NS},
                "spec": {
                    "registryUrl": url,
                    "verificationInterval": format!("{interval}s"),
                    "metadata": {"architecture": "amd64", "distro": "cs9"},
                },
            });
            async move {
                images
                    .create(&PostParams::default(), &serde_json::from_value(object)?)
                    .await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .context("creating CatalogImages")?;
    Ok(())
}

/// "N token requests for M repositories (min/max per repository)".
fn tokens(seen: &BTreeMap<String, u64>) -> String {
    let total: u64 = seen.values().sum();
    let (min, max) = (seen.values().min(), seen.values().max());
    format!(
        "{total} token requests for {} repositories (per repository: min {}, max {})",
        seen.len(),
        min.copied().unwrap_or(0),
        max.copied().unwrap_or(0)
    )
}

/// Polls the reconciler's metrics until `done` holds; tracks its peak RSS meanwhile.
async fn wait_metrics(
    port: u16,
    pid: u32,
    peak: &mut f64,
    timeout: Duration,
    done: impl Fn(&str) -> bool,
) -> anyhow::Result<String> {
    let start = Instant::now();
    loop {
        *peak = peak.max(peak_rss_mib(pid));
        let metrics = scrape(port).await;
        if done(&metrics) {
            return Ok(metrics);
        }
        anyhow::ensure!(start.elapsed() < timeout, "not done within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut args = std::env::args().skip(1);
    let count: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1000);
    let interval: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(30);

    let token_server = TokenServer::start().await;
    let registry = Registry::start(RegistryConfig::with_token(&token_server)).await;
    let pushed = push_images(&registry, count).await;

    let crds = concat!(env!("CARGO_MANIFEST_DIR"), "/../crds");
    let emu = Emulator::start(EmulatorOptions::with_crds(crds))?;
    let client = emu.kube_client();
    bench::install_rbac(&client).await?;
    catalog_e2e::fixture::create_namespace(&client, NS).await?;
    bench::create_unrelated_secrets(&client).await?;
    let images: Api<CatalogImage> = Api::namespaced(client.clone(), NS);
    create_images(&images, pushed, interval).await?;

    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("kubeconfig");
    bench::service_account_kubeconfig(&emu, &kubeconfig)?;
    let port = catalog_e2e::git::free_port();
    token_server.reset();
    let started = Instant::now();
    let mut child = bench::shipped_reconciler(&kubeconfig, port, dir.path().join("cache"))?
        .args(["--insecure-registry", &registry.host()])
        .args(["--min-verification-interval", "1s"])
        .spawn()
        .context("starting catalog-reconciler")?;
    let result = measure(
        &images,
        &token_server,
        port,
        child.id(),
        count,
        interval,
        started,
    )
    .await;
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// The first pass, one periodic re-verification, and the peak RSS over both.
async fn measure(
    images: &Api<CatalogImage>,
    token_server: &TokenServer,
    port: u16,
    pid: u32,
    count: usize,
    interval: u64,
    started: Instant,
) -> anyhow::Result<()> {
    let mut peak = 0f64;
    // Poll the reconciler's own gauge (cheap) rather than listing 1,000 objects, which
    // would load the emulator sharing these cores; confirm with one list at the end.
    let available = |m: &str| metric(m, "catalog_images{phase=\"Available\"}") >= count as f64;
    let metrics = wait_metrics(port, pid, &mut peak, Duration::from_secs(300), available).await?;
    let first_wall = started.elapsed();
    anyhow::ensure!(
        catalog_e2e::fixture::available_count(images).await == count,
        "the API disagrees with the reconciler's cache"
    );
    let first_requests = metric(&metrics, "catalog_registry_requests_total");
    let first_verifications = metric(&metrics, "catalog_verifications_total");
    println!(
        "first verification: {count} images Pending -> Available in {first_wall:.2?} ({:.0} images/s), from process start",
        count as f64 / first_wall.as_secs_f64()
    );
    println!(
        "  registry requests: {first_requests} ({:.2} per image); {}",
        first_requests / count as f64,
        tokens(&token_server.requests())
    );
    token_server.reset();
    let waiting = Instant::now();
    let round =
        |m: &str| metric(m, "catalog_verifications_total") >= first_verifications + count as f64;
    let timeout = Duration::from_secs(interval * 3 + 60);
    let metrics = wait_metrics(port, pid, &mut peak, timeout, round).await?;
    let requests = metric(&metrics, "catalog_registry_requests_total") - first_requests;
    println!(
        "periodic re-verification (interval {interval}s, jittered): {count} verifications, {requests} registry requests ({:.2} per image), {:.1?} after the first pass; {}",
        requests / count as f64,
        waiting.elapsed(),
        tokens(&token_server.requests())
    );
    println!(
        "reconciler peak RSS (VmHWM): {:.1} MiB",
        peak.max(peak_rss_mib(pid))
    );
    Ok(())
}
