//! Benchmark of the CatalogSource sync against the Kubernetes API emulator on this machine,
//! with the reconciler run as shipped (both controllers, `--leader-elect`, the ServiceAccount
//! of `deploy/rbac.yaml`, 300 unrelated 500 KiB Secrets in the cluster: see
//! `catalog_e2e::bench`).
//!
//! A repository of N entries (default 10,000; `--entries N`) in a real bare repository, packed
//! and served by `git daemon` as a forge serves its repositories (over a `file://` URL libgit2
//! would build the pack in the reconciler's own process, ~4 s of its CPU at 100,000 files):
//! initial sync time; no-op resync time and API writes; one-file-change resync; commit →
//! CR applied via webhook (p50/p90 over `--rounds`); the reconciler's peak RSS; and, for
//! comparison (unless `--no-kubectl`), `kubectl apply --server-side -f DIR` of the same files
//! against the same emulator. Writes are reported by verb and resource, counted from after
//! the previous phase's sync finished and the cluster went quiet, until this phase's sync
//! finished (its status write observed), so no phase is charged another's trailing writes.
//! The entries name a registry that refuses connections, so the verification controller
//! fails fast on them and backs off; its writes (`catalogimages/status`, Events) show up
//! under their own resource.
//!
//! `--scaling` runs the benchmark at 1,000, 10,000 and 100,000 entries (`--no-kubectl`, no
//! webhook rounds; `--scaling-max N` stops earlier). Prints numbers; asserts nothing about
//! timing. The reconciler gets `--max-entries-per-source` (default: the larger of N and its
//! own 20,000).
//!
//! Run: `cargo build --release -p catalog-reconciler -p catalog-e2e --bins &&
//! target/release/bench-sync` (a debug build works too, slower).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use catalog_api::{CatalogImage, CatalogSource};
use catalog_e2e::bench::{self, ms};
use catalog_e2e::emulator::{Emulator, EmulatorOptions};
use catalog_e2e::git::{BareRepo, GitDaemon, free_port};
use catalog_e2e::process::peak_rss_mib;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;

const NS: &str = "bench";
/// A registry address nothing listens on: verification fails at once (connection refused).
const REGISTRY: &str = "127.0.0.1:1";

fn entry(i: usize, tag: &str) -> String {
    format!(
        "apiVersion: automotive.sdv.cloud.redhat.com/v1alpha1\nkind: CatalogImage\nmetadata:\n  name: image-{i:05}\nspec:\n  registryUrl: {REGISTRY}/bench/image-{i}:{tag}\n  tags: [\"{tag}\"]\n  metadata:\n    architecture: arm64\n    distro: cs9\n    targets:\n      - name: rpi4\n"
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

/// Waits until the CatalogSource's status says `revision` is applied.
async fn wait_applied(
    sources: &Api<CatalogSource>,
    revision: &str,
    timeout: Duration,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        let source = sources.get("bench").await.ok();
        let applied = source.and_then(|s| s.status?.last_applied_revision);
        if applied.as_deref() == Some(revision) {
            return Ok(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    anyhow::bail!("revision {revision} not applied within {timeout:?}")
}

/// Waits until the CatalogImage `name` carries tag `tag` (the commit's change is live).
async fn wait_image(
    images: &Api<CatalogImage>,
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

/// Waits until the sync histogram counts more than `count` syncs: the sync finished,
/// including the status write and Events that end it. Returns the new (count, sum).
async fn wait_synced(port: u16, count: u64, timeout: Duration) -> anyhow::Result<(u64, f64)> {
    let start = Instant::now();
    loop {
        let now = sync_count(port).await;
        if now.0 > count {
            return Ok(now);
        }
        anyhow::ensure!(
            start.elapsed() < timeout,
            "no sync finished within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Waits until the sync's own status write (since the last reset) reached the emulator: the
/// sync records its duration before that write lands, and a phase's tally is only complete
/// with it. A webhook-triggered no-op writes one too (`lastHandledReconcileAt`).
async fn wait_status_write(emu: &Emulator) -> anyhow::Result<()> {
    let start = Instant::now();
    while emu.request_count("patch catalogsources/status") == 0 {
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(60),
            "no status write within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(())
}

/// Waits until the emulator saw no write for 1 s (at most `limit`), so that the previous
/// phase's trailing writes (verification of new images, Events) land before the next phase
/// starts counting. Says so when the cluster did not go quiet.
async fn quiesce(emu: &Emulator, limit: Duration) {
    let start = Instant::now();
    let mut last = emu.writes();
    while start.elapsed() < limit {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = emu.writes();
        if now == last {
            return;
        }
        last = now;
    }
    println!(
        "  (still writing after {limit:?}: {})",
        bench::writes(&emu.requests())
    );
}

/// Waits until the reconciler won the Lease and its controllers listed what they watch.
async fn wait_controllers(emu: &Emulator) -> anyhow::Result<()> {
    let start = Instant::now();
    while emu.request_count("list catalogsources") == 0
        || emu.request_count("list catalogimages") == 0
    {
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(60),
            "controllers did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    Ok(())
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

/// The running benchmark: the repository, the cluster, and the reconciler under test.
struct Bench {
    n: usize,
    emu: Emulator,
    repo: BareRepo,
    daemon: GitDaemon,
    sources: Api<CatalogSource>,
    images: Api<CatalogImage>,
    port: u16,
    pid: u32,
    hook_url: String,
}

/// The N-entry tree in one commit; returns the repository, its head and the entries' dir.
fn repository(n: usize, tmp: &Path) -> anyhow::Result<(BareRepo, String, std::path::PathBuf)> {
    let t = Instant::now();
    let tree = tmp.join("tree");
    let dir = tree.join("environments/dev");
    std::fs::create_dir_all(&dir)?;
    for i in 0..n {
        std::fs::write(dir.join(format!("image-{i:05}.yaml")), entry(i, "1"))?;
    }
    let repo = BareRepo::seeded("catalog", &tree)?;
    repo.git(&["repack", "-a", "-d", "-q"])?;
    let head = repo.head("main").context("seeded head")?;
    println!(
        "repository: {n} entries, one commit, built and packed in {}",
        ms(t.elapsed())
    );
    Ok((repo, head, dir))
}

/// The emulator with the shipped RBAC, the namespaces, the webhook Secret and the unrelated
/// Secrets; writes the admin kubeconfig (for kubectl) to `admin`.
async fn cluster(n: usize, admin: &Path) -> anyhow::Result<Emulator> {
    let crds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crds");
    let emu = Emulator::start(EmulatorOptions {
        history_limit: 8 * n + 5000,
        ..EmulatorOptions::with_crds(crds)
    })?;
    emu.write_kubeconfig(admin)?;
    let client = emu.kube_client();
    bench::install_rbac(&client).await?;
    for ns in [NS, "bench-kubectl"] {
        catalog_e2e::fixture::create_namespace(&client, ns).await?;
    }
    let hook = json!({"metadata": {"name": "hook"}, "stringData": {"token": "bench-token"}});
    Api::<Secret>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &serde_json::from_value(hook)?)
        .await?;
    bench::create_unrelated_secrets(&client).await?;
    Ok(emu)
}

impl Bench {
    /// Creates the CatalogSource; reports the initial sync and its writes.
    async fn initial(&self, head: &str) -> anyhow::Result<()> {
        let source = json!({
            "apiVersion": "automotive.sdv.cloud.redhat.com/v1alpha1", "kind": "CatalogSource",
            "metadata": {"name": "bench", "namespace": NS},
            "spec": {"url": self.daemon.url(&self.repo), "path": "environments/dev", "interval": "1h", "webhook": {"secretRef": {"name": "hook"}}}
        });
        self.emu.reset_requests();
        let t = Instant::now();
        self.sources
            .create(&PostParams::default(), &serde_json::from_value(source)?)
            .await?;
        wait_applied(&self.sources, head, Duration::from_secs(3600)).await?;
        let initial = t.elapsed();
        wait_synced(self.port, 0, Duration::from_secs(60)).await?;
        let n = self.n;
        println!(
            "initial sync: {n} entries in {} ({:.0} entries/s)",
            ms(initial),
            n as f64 / initial.as_secs_f64()
        );
        println!(
            "  writes until the sync finished: {}",
            bench::writes(&self.emu.requests())
        );
        println!(
            "  peak RSS after initial sync: {:.1} MiB",
            peak_rss_mib(self.pid)
        );
        Ok(())
    }

    /// A webhook delivery that finds nothing to change (fetch + read + plan).
    async fn noop(&self) -> anyhow::Result<()> {
        quiesce(&self.emu, Duration::from_secs(120)).await;
        let (count, sum) = sync_count(self.port).await;
        self.emu.reset_requests();
        let t = Instant::now();
        hook(&self.hook_url).await?;
        let (_, s2) = wait_synced(self.port, count, Duration::from_secs(120)).await?;
        wait_status_write(&self.emu).await?;
        println!(
            "no-op resync: {} wall (webhook -> sync done), sync itself {}; writes: {}",
            ms(t.elapsed()),
            ms(Duration::from_secs_f64((s2 - sum).max(0.0))),
            bench::writes(&self.emu.requests())
        );
        Ok(())
    }

    /// One entry changed by a commit; counted until the sync's status write is seen.
    async fn one_file(&self) -> anyhow::Result<()> {
        quiesce(&self.emu, Duration::from_secs(60)).await;
        self.repo
            .write("main", "environments/dev/image-00042.yaml", entry(42, "2"))?;
        let (count, sum) = sync_count(self.port).await;
        self.emu.reset_requests();
        let t = Instant::now();
        hook(&self.hook_url).await?;
        wait_image(&self.images, "image-00042", "2", Duration::from_secs(120)).await?;
        let wall = t.elapsed();
        let (_, s2) = wait_synced(self.port, count, Duration::from_secs(120)).await?;
        wait_status_write(&self.emu).await?;
        println!(
            "one-file change: CR updated {} after the webhook (sync {} incl. fetch); writes: {}",
            ms(wall),
            ms(Duration::from_secs_f64((s2 - sum).max(0.0))),
            bench::writes(&self.emu.requests())
        );
        Ok(())
    }

    /// Commit -> applied via webhook, `rounds` times.
    async fn rounds(&self, rounds: usize) -> anyhow::Result<()> {
        if rounds == 0 {
            return Ok(());
        }
        let mut latencies = Vec::new();
        for round in 0..rounds {
            let i = (round * 37) % self.n;
            let tag = format!("r{round}");
            self.repo.write(
                "main",
                &format!("environments/dev/image-{i:05}.yaml"),
                entry(i, &tag),
            )?;
            let t = Instant::now();
            hook(&self.hook_url).await?;
            wait_image(
                &self.images,
                &format!("image-{i:05}"),
                &tag,
                Duration::from_secs(120),
            )
            .await?;
            latencies.push(t.elapsed());
        }
        latencies.sort();
        let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p).round() as usize];
        println!(
            "commit -> applied via webhook ({rounds} rounds): p50 {}, p90 {}, max {}",
            ms(pct(0.5)),
            ms(pct(0.9)),
            ms(pct(1.0))
        );
        Ok(())
    }
}

/// `--scaling`: this benchmark at 1,000, 10,000 and 100,000 entries, one process each.
fn scaling() -> anyhow::Result<()> {
    let max = arg("--scaling-max", 100_000);
    for n in [1_000usize, 10_000, 100_000]
        .into_iter()
        .filter(|n| *n <= max)
    {
        println!("== {n} entries ==");
        let status = Command::new(std::env::current_exe()?)
            .args(["--entries", &n.to_string(), "--rounds", "0", "--no-kubectl"])
            .status()?;
        anyhow::ensure!(status.success(), "the {n}-entry run failed");
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // The emulator shares the two cores with the reconciler: it runs without transparent huge
    // pages as the reconciler does (`reconciler/src/main.rs`), so the kernel does not zero
    // 2 MiB pages for it. Its children (git daemon, the reconciler) inherit this.
    // SAFETY: prctl with PR_SET_THP_DISABLE only sets a flag of this process.
    let _ = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    let _ = rustls::crypto::ring::default_provider().install_default();
    if flag("--scaling") {
        return scaling();
    }
    let n = arg("--entries", 10_000);
    let max_entries = arg("--max-entries-per-source", n.max(20_000));
    let tmp = tempfile::tempdir()?;
    let (repo, head, dir) = repository(n, tmp.path())?;
    let admin = tmp.path().join("kubeconfig");
    let emu = cluster(n, &admin).await?;
    let kubeconfig = tmp.path().join("reconciler.kubeconfig");
    bench::service_account_kubeconfig(&emu, &kubeconfig)?;
    let port = free_port();
    let mut reconciler = bench::shipped_reconciler(&kubeconfig, port, tmp.path().join("cache"))?
        .args(["--max-entries-per-source", &max_entries.to_string()])
        .spawn()?;
    let client = emu.kube_client();
    let bench = Bench {
        n,
        daemon: GitDaemon::start_for(repo.base_path())?,
        repo,
        sources: Api::namespaced(client.clone(), NS),
        images: Api::namespaced(client, NS),
        port,
        pid: reconciler.id(),
        hook_url: format!("http://127.0.0.1:{port}/hook/{NS}/bench"),
        emu,
    };
    let result = async {
        wait_controllers(&bench.emu).await?;
        bench.initial(&head).await?;
        bench.noop().await?;
        bench.one_file().await?;
        bench.rounds(arg("--rounds", 20)).await?;
        println!("reconciler peak RSS: {:.1} MiB", peak_rss_mib(bench.pid));
        anyhow::Ok(())
    }
    .await;
    let _ = reconciler.kill();
    let _ = reconciler.wait();
    result?;
    if flag("--no-kubectl") {
        println!("kubectl comparison skipped (--no-kubectl)");
        return Ok(());
    }
    bench::kubectl_apply_comparison(&bench.emu, n, &dir, &admin, tmp.path())
}
