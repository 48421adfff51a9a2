//! Benchmark of the verification controller: N CatalogImages (default 1,000) over 50
//! repositories of one local docker-registry, verified by the real `catalog-reconciler`
//! against the in-process Kubernetes API emulator. Prints numbers; asserts nothing.
//!
//! `cargo build --release -p catalog-reconciler -p catalog-e2e --bins &&
//!  target/release/bench-verify [COUNT] [INTERVAL_SECONDS]`
//!
//! Measures: wall time from starting the reconciler (all images Pending) until every image is
//! Available; registry requests per image on first verification and on one periodic
//! re-verification (from the reconciler's own metrics); the reconciler's peak RSS (VmHWM).
//! Targets (issue 4): under 15 s, at most 3 requests per image first and exactly 1 on
//! re-verification, RSS under 64 MiB.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use catalog_api::CatalogImage;
use catalog_e2e::emulator::{Emulator, EmulatorOptions};
use catalog_e2e::registry::{ImageFixture, Registry, RegistryConfig};
use futures::StreamExt;
use kube::api::{Api, PostParams};
use serde_json::json;

const NS: &str = "bench";
const REPOSITORIES: usize = 50;

fn reconciler_path() -> PathBuf {
    let exe = std::env::current_exe().expect("own path");
    exe.parent().unwrap().join("catalog-reconciler")
}

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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut args = std::env::args().skip(1);
    let count: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1000);
    let interval: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(30);
    let reconciler = reconciler_path();
    anyhow::ensure!(
        reconciler.is_file(),
        "{} not found: build it with `cargo build --release -p catalog-reconciler`",
        reconciler.display()
    );

    let registry = Registry::start(RegistryConfig::default()).await;
    let pushing = Instant::now();
    let pushed: Vec<(usize, String)> = futures::stream::iter(0..count)
        .map(|i| {
            let registry = &registry;
            async move {
                let repo = format!("bench/os-{:02}", i % REPOSITORIES);
                let tag = format!("build-{i}");
                let fixture = ImageFixture::new("amd64").layers(&[512]).seed(i as u64);
                registry
                    .push_image(&format!("{repo}:{tag}"), &fixture)
                    .await;
                (i, format!("{}/{repo}:{tag}", registry.host()))
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    println!(
        "pushed {count} images over {REPOSITORIES} repositories in {:.1?}",
        pushing.elapsed()
    );

    let crds = concat!(env!("CARGO_MANIFEST_DIR"), "/../crds");
    let emu = Emulator::start(EmulatorOptions::with_crds(crds))?;
    let client = emu.kube_client();
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": NS}}))?,
        )
        .await?;
    let images: Api<CatalogImage> = Api::namespaced(client.clone(), NS);
    futures::stream::iter(pushed)
        .map(|(i, url)| {
            let images = images.clone();
            async move {
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
                images
                    .create(
                        &PostParams::default(),
                        &serde_json::from_value(object).unwrap(),
                    )
                    .await
                    .map(|_| ())
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .context("creating CatalogImages")?;

    let dir = tempfile::tempdir()?;
    emu.write_kubeconfig(dir.path().join("kubeconfig"))?;
    let port = catalog_e2e::git::free_port();
    let started = Instant::now();
    let mut child = Command::new(&reconciler)
        .args(["--controllers", "verify", "--log-format", "json"])
        .args(["--insecure-registry", &registry.host()])
        .args(["--min-verification-interval", "1s"])
        .arg("--http-addr")
        .arg(format!("127.0.0.1:{port}"))
        .env("KUBECONFIG", dir.path().join("kubeconfig"))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting catalog-reconciler")?;
    let pid = child.id();
    let mut peak = 0f64;
    // Poll the reconciler's own gauge (cheap) rather than listing 1,000 objects, which
    // would load the emulator sharing these cores; confirm with one list at the end.
    loop {
        peak = peak.max(catalog_e2e::process::peak_rss_mib(pid));
        let metrics = scrape(port).await;
        if metric(&metrics, "catalog_images{phase=\"Available\"}") >= count as f64 {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(300),
            "not all Available after 300 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::ensure!(
        catalog_e2e::fixture::available_count(&images).await == count,
        "the API disagrees with the reconciler's cache"
    );
    let first_wall = started.elapsed();
    let metrics = scrape(port).await;
    let first_requests = metric(&metrics, "catalog_registry_requests_total");
    let first_verifications = metric(&metrics, "catalog_verifications_total");
    println!(
        "first verification: {count} images Pending -> Available in {first_wall:.2?} ({:.0} images/s)",
        count as f64 / first_wall.as_secs_f64()
    );
    println!(
        "  registry requests: {first_requests} ({:.2} per image)",
        first_requests / count as f64
    );

    let waiting = Instant::now();
    loop {
        let metrics = scrape(port).await;
        peak = peak.max(catalog_e2e::process::peak_rss_mib(pid));
        if metric(&metrics, "catalog_verifications_total") >= first_verifications + count as f64 {
            let requests = metric(&metrics, "catalog_registry_requests_total") - first_requests;
            println!(
                "periodic re-verification (interval {interval}s, jittered): {} verifications, {requests} registry requests ({:.2} per image), {:.1?} after the first pass",
                count,
                requests / count as f64,
                waiting.elapsed()
            );
            break;
        }
        anyhow::ensure!(
            waiting.elapsed() < Duration::from_secs(interval * 3 + 60),
            "no re-verification round"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    peak = peak.max(catalog_e2e::process::peak_rss_mib(pid));
    println!("reconciler peak RSS (VmHWM): {peak:.1} MiB");
    let _ = child.kill();
    let _ = child.wait();
    Ok(())
}
