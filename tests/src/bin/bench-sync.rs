//! Benchmark of the CatalogSource sync against the Kubernetes API emulator on this machine.
//!
//! A repository of N entries (default 10,000; `--entries N`) in a real bare repository:
//! initial sync time; no-op resync time and API writes; one-file-change resync; commit →
//! CR applied via webhook (p50/p90 over `--rounds`); the reconciler's peak RSS; and, for
//! comparison (unless `--no-kubectl`), `kubectl apply --server-side -f DIR` of the same files
//! against the same emulator. Prints numbers; asserts nothing about timing. The reconciler
//! gets `--max-entries-per-source` (default: the larger of N and its own 20,000), so
//! `--entries 100000` runs as is.
//!
//! Run: `cargo build --release -p catalog-reconciler -p catalog-e2e --bins &&
//! target/release/bench-sync` (a debug build works too, slower).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use catalog_api::CatalogSource;
use catalog_e2e::emulator::{Emulator, EmulatorOptions};
use catalog_e2e::git::{BareRepo, free_port};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::Api;
use kube::api::PostParams;
use serde_json::json;

const NS: &str = "bench";

fn entry(i: usize, tag: &str) -> String {
    format!(
        "apiVersion: automotive.sdv.cloud.redhat.com/v1alpha1\nkind: CatalogImage\nmetadata:\n  name: image-{i:05}\nspec:\n  registryUrl: quay.io/bench/image-{i}:{tag}\n  tags: [\"{tag}\"]\n  metadata:\n    architecture: arm64\n    distro: cs9\n    targets:\n      - name: rpi4\n"
    )
}

fn flag(name: &str) -> bool {
    std::env::args().any(|a| a == name)
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn applied(sources: &Api<CatalogSource>) -> Option<String> {
    sources
        .get("bench")
        .await
        .ok()?
        .status?
        .last_applied_revision
}

async fn wait_applied(
    sources: &Api<CatalogSource>,
    revision: &str,
    timeout: Duration,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if applied(sources).await.as_deref() == Some(revision) {
            return Ok(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    anyhow::bail!("revision {revision} not applied within {timeout:?}")
}

/// Waits until the CatalogImage `name` carries tag `tag` (the commit's change is live).
async fn wait_image(
    images: &Api<catalog_api::CatalogImage>,
    name: &str,
    tag: &str,
    timeout: Duration,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if let Ok(image) = images.get(name).await
            && image.spec.tags.iter().any(|t| t == tag)
        {
            return Ok(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    anyhow::bail!("{name} did not get tag {tag} within {timeout:?}")
}

/// (count, sum) of the sync duration histogram.
async fn sync_count(port: u16) -> (u64, f64) {
    let text = match reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => return (0, 0.0),
    };
    let value = |prefix: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (
        value("catalog_sync_duration_seconds_count{source=\"bench\"}") as u64,
        value("catalog_sync_duration_seconds_sum{source=\"bench\"}"),
    )
}

async fn hook(url: &str) -> anyhow::Result<()> {
    let status = reqwest::Client::new()
        .post(url)
        .header("X-Gitlab-Token", "bench-token")
        .body("{}")
        .send()
        .await?
        .status();
    anyhow::ensure!(status.as_u16() == 202, "webhook answered {status}");
    Ok(())
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let n = arg("--entries", 10_000);
    let rounds = arg("--rounds", 20);
    let max_entries = arg("--max-entries-per-source", n.max(20_000));
    let tmp = tempfile::tempdir()?;

    // Repository.
    let t = Instant::now();
    let tree = tmp.path().join("tree");
    let dir = tree.join("environments/dev");
    std::fs::create_dir_all(&dir)?;
    for i in 0..n {
        std::fs::write(dir.join(format!("image-{i:05}.yaml")), entry(i, "1"))?;
    }
    let repo = BareRepo::seeded("catalog", &tree)?;
    let head = repo.head("main").context("seeded head")?;
    println!(
        "repository: {n} entries, one commit, built in {}",
        ms(t.elapsed())
    );

    // Emulator and reconciler.
    let crds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crds");
    let emu = Emulator::start(EmulatorOptions {
        history_limit: 4 * n + 1000,
        ..EmulatorOptions::with_crds(crds)
    })?;
    let client = emu.kube_client();
    let kubeconfig = tmp.path().join("kubeconfig");
    emu.write_kubeconfig(&kubeconfig)?;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for ns in [NS, "bench-kubectl"] {
        namespaces
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": ns}}))?,
            )
            .await?;
    }
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"metadata": {"name": "hook"}, "stringData": {"token": "bench-token"}}),
            )?,
        )
        .await?;
    let port = free_port();
    let exe = std::env::current_exe()?;
    let reconciler_path = exe.with_file_name("catalog-reconciler");
    anyhow::ensure!(
        reconciler_path.is_file(),
        "{} missing: build it with cargo build -p catalog-reconciler",
        reconciler_path.display()
    );
    let mut reconciler = Command::new(&reconciler_path)
        .args([
            "--controllers",
            "sync",
            "--log-format",
            "text",
            "--http-addr",
            &format!("127.0.0.1:{port}"),
            "--max-entries-per-source",
            &max_entries.to_string(),
        ])
        .arg("--cache-dir")
        .arg(tmp.path().join("cache"))
        .env("KUBECONFIG", &kubeconfig)
        .env(
            "RUST_LOG",
            std::env::var("BENCH_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()?;
    let pid = reconciler.id();
    let hook_url = format!("http://127.0.0.1:{port}/hook/{NS}/bench");
    let sources: Api<CatalogSource> = Api::namespaced(client.clone(), NS);
    let images: Api<catalog_api::CatalogImage> = Api::namespaced(client.clone(), NS);
    let result = async {
        // Initial sync.
        let source = json!({
            "apiVersion": "automotive.sdv.cloud.redhat.com/v1alpha1", "kind": "CatalogSource",
            "metadata": {"name": "bench", "namespace": NS},
            "spec": {"url": repo.file_url(), "path": "environments/dev", "interval": "1h", "webhook": {"secretRef": {"name": "hook"}}}
        });
        // Let the reconciler start its watches first.
        tokio::time::sleep(Duration::from_millis(500)).await;
        emu.reset_requests();
        let t = Instant::now();
        sources.create(&PostParams::default(), &serde_json::from_value(source)?).await?;
        wait_applied(&sources, &head, Duration::from_secs(1800)).await?;
        let initial = t.elapsed();
        println!("initial sync: {n} entries in {} ({:.0} entries/s), {} API writes", ms(initial), n as f64 / initial.as_secs_f64(), emu.writes());
        println!("  peak RSS after initial sync: {:.1} MiB", catalog_e2e::process::peak_rss_mib(pid));

        // Let trailing watch events settle.
        let mut last = emu.writes();
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let now = emu.writes();
            if now == last {
                break;
            }
            last = now;
        }

        // No-op resync via webhook (fetch + read + plan; nothing differs).
        emu.reset_requests();
        let (count, sum) = sync_count(port).await;
        let t = Instant::now();
        hook(&hook_url).await?;
        let (mut c2, mut s2) = (count, sum);
        while c2 == count && t.elapsed() < Duration::from_secs(60) {
            tokio::time::sleep(Duration::from_millis(2)).await;
            (c2, s2) = sync_count(port).await;
        }
        println!(
            "no-op resync: {} wall (webhook -> sync done), sync itself {}, {} API writes",
            ms(t.elapsed()),
            ms(Duration::from_secs_f64((s2 - sum).max(0.0))),
            emu.writes()
        );

        // One-file change.
        repo.write("main", "environments/dev/image-00042.yaml", entry(42, "2"))?;
        emu.reset_requests();
        let (_, sum) = sync_count(port).await;
        let t = Instant::now();
        hook(&hook_url).await?;
        wait_image(&images, "image-00042", "2", Duration::from_secs(60)).await?;
        let wall = t.elapsed();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (_, s2) = sync_count(port).await;
        let requests = emu.requests();
        println!(
            "one-file change: CR updated {} after the webhook (sync {} incl. fetch); CatalogImage writes: {} (all writes incl. status/event: {})",
            ms(wall),
            ms(Duration::from_secs_f64((s2 - sum).max(0.0))),
            requests.get("patch catalogimages").copied().unwrap_or(0),
            emu.writes()
        );

        // Commit -> applied via webhook.
        let mut latencies = Vec::new();
        for round in 0..rounds {
            let i = (round * 37) % n;
            let tag = format!("r{round}");
            repo.write("main", &format!("environments/dev/image-{i:05}.yaml"), entry(i, &tag))?;
            let t = Instant::now();
            hook(&hook_url).await?;
            wait_image(&images, &format!("image-{i:05}"), &tag, Duration::from_secs(60)).await?;
            latencies.push(t.elapsed());
        }
        latencies.sort();
        let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p).round() as usize];
        println!("commit -> applied via webhook ({rounds} rounds): p50 {}, p90 {}, max {}", ms(pct(0.5)), ms(pct(0.9)), ms(pct(1.0)));
        println!("reconciler peak RSS: {:.1} MiB", catalog_e2e::process::peak_rss_mib(pid));
        anyhow::Ok(())
    }
    .await;
    let _ = reconciler.kill();
    let _ = reconciler.wait();
    result?;

    // kubectl apply --server-side of the same files, same emulator.
    if flag("--no-kubectl") {
        println!("kubectl comparison skipped (--no-kubectl)");
    } else if Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
    {
        let home = tmp.path().join("kubectl-home");
        std::fs::create_dir_all(&home)?;
        let apply_all = || {
            Command::new("kubectl")
                .args([
                    "apply",
                    "--server-side",
                    "--field-manager",
                    "bench",
                    "-n",
                    "bench-kubectl",
                    "-f",
                ])
                .arg(&dir)
                .env("KUBECONFIG", &kubeconfig)
                .env("HOME", &home)
                .stdout(Stdio::null())
                .output()
        };
        emu.reset_requests();
        let t = Instant::now();
        let out = apply_all()?;
        let took = t.elapsed();
        if out.status.success() {
            println!(
                "kubectl apply --server-side -f DIR ({n} files): {} ({} API writes)",
                ms(took),
                emu.writes()
            );
        } else {
            println!(
                "kubectl apply failed after {}: {}",
                ms(took),
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .take(3)
                    .collect::<Vec<_>>()
                    .join(" | ")
            );
        }
        let t = Instant::now();
        let out = apply_all()?;
        println!(
            "kubectl apply --server-side again (no-op): {} (success: {})",
            ms(t.elapsed()),
            out.status.success()
        );
    } else {
        println!("kubectl not found: comparison skipped (install kubectl)");
    }
    Ok(())
}
