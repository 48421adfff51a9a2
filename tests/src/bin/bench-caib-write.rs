//! Benchmark of caib's writing commands against a real smart-HTTP remote holding a catalog of
//! N entries in `environments/dev` (default 2,000; first argument): cold run (clone into the
//! cache), warm runs (fetch only) of `add --direct`, `add` with a pull request on the fake
//! forge, and `--dry-run`. Each one validates the whole environment. Prints numbers; asserts
//! nothing about timing.
//!
//! ```text
//! cargo build --release -p caib -p catalog-e2e --bins && target/release/bench-caib-write [ENTRIES]
//! ```

use std::time::{Duration, Instant};

use catalog_e2e::forge::FakeForge;
use catalog_e2e::git::{BareRepo, Change, SmartHttp};
use catalog_e2e::process::binary;

const TOKEN: &str = "bench-token";

fn entry(i: usize) -> String {
    format!(
        "apiVersion: automotive.sdv.cloud.redhat.com/v1alpha1\nkind: CatalogImage\nmetadata:\n  name: image-{i:05}\nspec:\n  registryUrl: quay.io/bench/image-{i}:v1\n  metadata:\n    architecture: arm64\n    distro: cs9\n    targets:\n      - name: rpi4\n"
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let entries: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(2_000);
    let remote = BareRepo::from_template("catalog")?;
    let changes: Vec<Change> = (0..entries)
        .map(|i| Change::write(format!("environments/dev/image-{i:05}.yaml"), entry(i)))
        .collect();
    remote.commit("main", &format!("{entries} entries"), &changes)?;
    let http = SmartHttp::start(remote.base_path(), "bench", TOKEN).await?;
    let forge = FakeForge::start(TOKEN).await;
    let url = http.url(&remote).replacen("http://", "http://bench@", 1);
    let home = tempfile::tempdir()?;
    let caib = binary("caib");

    let run = |args: Vec<String>| {
        let mut cmd = tokio::process::Command::new(&caib);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home.path())
            .env("XDG_CACHE_HOME", home.path().join("cache"))
            .env("GIT_AUTHOR_NAME", "Bench")
            .env("GIT_AUTHOR_EMAIL", "bench@example.com")
            .env("CAIB_GIT_TOKEN", TOKEN)
            .env("CAIB_FORGE_API_URL", forge.github_url())
            .args(["--catalog-repo", &url])
            .args(args);
        async move {
            let start = Instant::now();
            let out = cmd.output().await?;
            if !out.status.success() {
                anyhow::bail!("caib failed: {}", String::from_utf8_lossy(&out.stderr));
            }
            Ok::<Duration, anyhow::Error>(start.elapsed())
        }
    };
    let add = |name: String, extra: &[&str]| {
        let mut args: Vec<String> = [
            "catalog",
            "add",
            &name,
            &format!("quay.io/bench/{name}:v1"),
            "--architecture",
            "arm64",
            "--distro",
            "cs9",
            "--no-verify",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };

    println!("caib writing commands, {entries} entries in environments/dev, smart HTTP remote");
    let cold = run(add("new-00".into(), &["--direct"])).await?;
    println!("add --direct, cold cache (clone):   {:>8.1} ms", ms(cold));
    let mut warm = Vec::new();
    for i in 1..=5 {
        warm.push(run(add(format!("new-{i:02}"), &["--direct"])).await?);
    }
    println!(
        "add --direct, warm cache (fetch):   {:>8.1} ms median of 5",
        ms(median(&mut warm))
    );
    let mut pr = Vec::new();
    for i in 6..=10 {
        pr.push(run(add(format!("new-{i:02}"), &[])).await?);
    }
    println!(
        "add with pull request:              {:>8.1} ms median of 5",
        ms(median(&mut pr))
    );
    let mut dry = Vec::new();
    for _ in 0..5 {
        dry.push(run(add("new-99".into(), &["--dry-run"])).await?);
    }
    println!(
        "add --dry-run:                      {:>8.1} ms median of 5",
        ms(median(&mut dry))
    );
    println!("forge requests: {}", forge.requests().len());
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(values: &mut [Duration]) -> Duration {
    values.sort();
    values[values.len() / 2]
}
