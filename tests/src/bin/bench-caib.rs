//! Benchmark: `caib catalog list` over 10,000 CatalogImages in the Kubernetes API emulator,
//! as a table and as JSON (target: under 1 s wall each). Prints numbers; asserts nothing.
//!
//! ```text
//! cargo build --release -p caib -p catalog-e2e --bins && target/release/bench-caib [ENTRIES]
//! ```

use std::process::{Command, Stdio};
use std::time::Instant;

use catalog_api::{CatalogImage, CatalogImageSpec};
use catalog_e2e::emulator::{Emulator, EmulatorOptions};
use futures::StreamExt;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

const ROUNDS: usize = 5;
const JSON: &str = "application/json";
/// What caib asks for its table formats.
const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";

fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let entries: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(10_000);
    let crds = concat!(env!("CARGO_MANIFEST_DIR"), "/../crds");
    let emu = Emulator::start(EmulatorOptions::with_crds(crds))?;
    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("kubeconfig");
    emu.write_kubeconfig(&kubeconfig)?;

    let rt = tokio::runtime::Runtime::new()?;
    let started = Instant::now();
    rt.block_on(fill(&emu, entries))?;
    println!(
        "created {entries} CatalogImages in {:.2?} ({:.0}/s)",
        started.elapsed(),
        entries as f64 / started.elapsed().as_secs_f64()
    );

    // The API server's share: the same paged list, raw JSON bodies, no caib; full objects
    // (json, and tables filtered on fields the Table lacks) and the Table (the table formats).
    for (page, accept) in [(500u32, JSON), (2000, JSON), (500, TABLE)] {
        let started = Instant::now();
        let bytes = rt.block_on(raw_list(&emu, page, accept))?;
        println!(
            "raw paged list (limit={page}, {accept}): {:.1?} for {bytes} bytes",
            started.elapsed()
        );
    }

    let caib = catalog_e2e::process::binary("caib");
    let profile = if caib.to_string_lossy().contains("/release/") {
        "release"
    } else {
        "debug"
    };
    println!("caib: {} ({profile} build)", caib.display());
    for (label, args) in [
        ("table", vec!["catalog", "list"]),
        ("json", vec!["catalog", "list", "-o", "json"]),
        (
            "table --architecture x86_64",
            vec!["catalog", "list", "--architecture", "x86_64"],
        ),
        (
            "table --target raspberry-pi --phase Available",
            vec![
                "catalog",
                "list",
                "--target",
                "raspberry-pi",
                "--phase",
                "Available",
            ],
        ),
    ] {
        let mut times = Vec::new();
        let mut bytes = 0;
        for _ in 0..ROUNDS {
            let start = Instant::now();
            let out = Command::new(&caib)
                .args(&args)
                .env("KUBECONFIG", &kubeconfig)
                .env("HOME", dir.path())
                .stderr(Stdio::inherit())
                .output()?;
            times.push(start.elapsed());
            anyhow::ensure!(out.status.success(), "caib {args:?} failed");
            bytes = out.stdout.len();
        }
        times.sort();
        println!(
            "caib {label:<48} min {:>8.1?}  median {:>8.1?}  max {:>8.1?}  ({} bytes of output)",
            times[0],
            times[ROUNDS / 2],
            times[ROUNDS - 1],
            bytes
        );
    }
    Ok(())
}

/// Lists every CatalogImage page by page as caib does, returning the bytes received.
async fn raw_list(emu: &Emulator, page: u32, accept: &str) -> anyhow::Result<usize> {
    let client = reqwest::Client::new();
    let mut bytes = 0;
    let mut token = String::new();
    loop {
        let mut uri = format!(
            "{}/apis/automotive.sdv.cloud.redhat.com/v1alpha1/namespaces/default/catalogimages?limit={page}",
            emu.url()
        );
        if !token.is_empty() {
            uri.push_str(&format!("&continue={token}"));
        }
        let text = client
            .get(uri)
            .header("Accept", accept)
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        bytes += text.len();
        let list: serde_json::Value = serde_json::from_str(&text)?;
        match list["metadata"]["continue"].as_str() {
            Some(next) if !next.is_empty() => token = next.to_string(),
            _ => return Ok(bytes),
        }
    }
}

/// Creates `n` entries as the sync would (labels from the spec, status written separately):
/// a mix of architectures, targets and phases.
async fn fill(emu: &Emulator, n: usize) -> anyhow::Result<()> {
    let api: Api<CatalogImage> = Api::namespaced(emu.kube_client(), "default");
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(0..n)
        .map(|i| {
            let api = api.clone();
            async move {
                let (arch, target) = match i % 3 {
                    0 => ("arm64", "raspberry-pi"),
                    1 => ("x86_64", "qemu"),
                    _ => ("aarch64", "ridesx4"),
                };
                let spec: CatalogImageSpec = serde_json::from_value(json!({
                    "registryUrl": format!("quay.io/centos-automotive/autosd:build-{i}"),
                    "tags": ["nightly"],
                    "metadata": {"architecture": arch, "distro": "cs9", "targets": [{"name": target}]}
                }))?;
                let name = format!("image-{i:05}");
                let mut image = CatalogImage::new(&name, spec);
                image.metadata.labels = Some(catalog_api::labels::spec_labels(&image.spec));
                api.create(&PostParams::default(), &image).await?;
                let phase = if i % 10 == 0 { "Unavailable" } else { "Available" };
                api.patch_status(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"status": {"phase": phase, "registryMetadata": {
                        "resolvedDigest": format!("sha256:{:064x}", i), "sizeBytes": 1_234_567_890, "layerCount": 12}}})),
                )
                .await?;
                Ok(())
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    results.into_iter().collect::<anyhow::Result<()>>()
}
