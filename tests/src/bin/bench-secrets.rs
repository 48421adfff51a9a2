//! Benchmark: what the cluster's Secrets cost the reconciler. The verification controller
//! watches Secret metadata only and reads a Secret's data when a verification needs it, so
//! Secrets it never uses must not grow its memory.
//!
//! `cargo build --release -p catalog-reconciler -p catalog-e2e --bins &&
//!  target/release/bench-secrets [IMAGES]`
//!
//! Runs the real `catalog-reconciler` (both controllers, as deployed) twice against the API
//! emulator with IMAGES CatalogImages (default 200; a tenth name a docker config Secret of
//! their namespace): once in an otherwise empty cluster, once with 300 unrelated Secrets of
//! 500 KiB each spread over 10 namespaces. Prints both peak RSS values (VmHWM) once every
//! image is Available, and their difference (target: under 10 MiB).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use catalog_api::CatalogImage;
use catalog_e2e::bench::{
    UNRELATED_NAMESPACES, UNRELATED_SECRET_BYTES, UNRELATED_SECRETS, create_unrelated_secrets,
};
use catalog_e2e::emulator::{Emulator, EmulatorOptions};
use catalog_e2e::fixture;
use catalog_e2e::process::{binary_near, peak_rss_mib};
use catalog_e2e::registry::{ImageFixture, Registry, RegistryConfig};
use kube::api::{Api, PostParams};
use serde_json::json;

const NS: &str = "bench";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let images: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(200);
    let registry = Registry::start(RegistryConfig::default()).await;
    let pushed = registry
        .push_image("bench/os:v1", &ImageFixture::new("amd64"))
        .await;
    let url = format!("{}/bench/os@{}", registry.host(), pushed.digest);
    let without = run(&registry, &url, images, false).await?;
    println!("reconciler peak RSS, {images} images, no other Secrets: {without:.1} MiB");
    let with = run(&registry, &url, images, true).await?;
    println!(
        "reconciler peak RSS, {images} images, {UNRELATED_SECRETS} Secrets of {} KiB in {UNRELATED_NAMESPACES} namespaces: {with:.1} MiB ({:+.1} MiB)",
        UNRELATED_SECRET_BYTES / 1024,
        with - without
    );
    Ok(())
}

/// One reconciler run until every image is Available; returns its peak RSS in MiB.
async fn run(registry: &Registry, url: &str, images: usize, secrets: bool) -> anyhow::Result<f64> {
    let crds = concat!(env!("CARGO_MANIFEST_DIR"), "/../crds");
    let emu = Emulator::start(EmulatorOptions::with_crds(crds))?;
    let client = emu.kube_client();
    fixture::create_namespace(&client, NS).await?;
    if secrets {
        create_unrelated_secrets(&client).await?;
    }
    create_images(&client, registry, url, images).await?;

    let dir = tempfile::tempdir()?;
    emu.write_kubeconfig(dir.path().join("kubeconfig"))?;
    let port = catalog_e2e::git::free_port();
    let mut child = Command::new(binary_near("catalog-reconciler")?)
        .args(["--insecure-registry", &registry.host()])
        .arg("--http-addr")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--cache-dir")
        .arg(dir.path().join("cache"))
        .env("KUBECONFIG", dir.path().join("kubeconfig"))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting catalog-reconciler")?;
    let pid = child.id();
    let started = Instant::now();
    let api: Api<CatalogImage> = Api::namespaced(client, NS);
    let mut peak = 0f64;
    loop {
        peak = peak.max(peak_rss_mib(pid));
        if fixture::available_count(&api).await >= images {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(300),
            "not every image Available after 300 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    peak = peak.max(peak_rss_mib(pid));
    let _ = child.kill();
    let _ = child.wait();
    Ok(peak)
}

/// `images` CatalogImages; every tenth names a docker config Secret for the registry, so the
/// benchmark includes the reads of Secrets that verifications need.
async fn create_images(
    client: &kube::Client,
    registry: &Registry,
    url: &str,
    images: usize,
) -> anyhow::Result<()> {
    let config = format!(
        r#"{{"auths":{{"{}":{{"username":"u","password":"p"}}}}}}"#,
        registry.host()
    );
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), NS);
    secrets
        .create(
            &PostParams::default(),
            &fixture::secret(
                "pull",
                Some("kubernetes.io/dockerconfigjson"),
                &[(".dockerconfigjson", &config)],
            ),
        )
        .await?;
    let api: Api<CatalogImage> = Api::namespaced(client.clone(), NS);
    for i in 0..images {
        let mut spec = json!({"registryUrl": url, "metadata": {"architecture": "amd64"}});
        if i % 10 == 0 {
            spec["authSecretRef"] = json!({"name": "pull"});
        }
        let object = fixture::catalog_object("CatalogImage", &format!("image-{i:04}"), NS, spec);
        fixture::create_json(&api, object).await;
    }
    Ok(())
}
