//! The local sandbox: the whole product on one machine, walked through the quickstart.
//!
//! Starts kube-emulator, a docker-registry holding demo images, a git remote seeded from
//! `catalog-repo-template/` (its dev entries pointed at the local registry), the harness's
//! forge stand-in (a local stand-in for GitHub's pull-request API), and `catalog-reconciler`
//! syncing the remote; then runs the quickstart's workflows with the real `caib` and `kubectl`,
//! including the review flow (a pull request opened by `caib catalog publish`, previewed by the
//! reconciler on the pull request before anyone merges it, merged through the stand-in, synced
//! and verified), and stays up until SIGINT (Ctrl-C), SIGTERM or SIGHUP
//! (or exits at once with `--exit`, as CI does).
//!
//! Every process it starts is owned by [`run`]'s future (`kill_on_drop`), so ending it ends
//! them: the signals are caught from the first instant and turned into dropping that future,
//! never into the default "die where you stand" that would leave docker-registry running.

mod cluster;
mod preview;
mod walkthrough;

use std::path::PathBuf;
use std::process::Stdio;

use anyhow::{Context, bail};
use catalog_e2e::emulator::{Emulator, EmulatorOptions};
use catalog_e2e::forge::FakeForge;
use catalog_e2e::git::BareRepo;
use catalog_e2e::process::binary_near;
use catalog_e2e::registry::{ImageFixture, Registry, RegistryConfig};
use tokio::process::{Child, Command};
use tokio::signal::unix::{Signal, SignalKind, signal};

use walkthrough::Env;

/// The token the forge stand-in accepts and caib is given.
const FORGE_TOKEN: &str = "sandbox-token";

struct Options {
    exit: bool,
    dir: Option<PathBuf>,
}

fn parse_args() -> anyhow::Result<Options> {
    let mut options = Options {
        exit: false,
        dir: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--exit" => options.exit = true,
            "--dir" => options.dir = Some(args.next().context("--dir needs a directory")?.into()),
            "-h" | "--help" => {
                println!(
                    "Usage: sandbox [--exit] [--dir DIR]\n\n  --exit     stop after the walkthrough (CI)\n  --dir DIR  keep kubeconfig, logs and caches in DIR (default: a temporary directory)\n\nStops on SIGINT (Ctrl-C), SIGTERM or SIGHUP, ending every process it started."
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (see --help)"),
        }
    }
    Ok(options)
}

/// The signals that mean "stop", listened to before anything is started.
struct StopSignals {
    term: Signal,
    int: Signal,
    hup: Signal,
}

impl StopSignals {
    fn listen() -> std::io::Result<StopSignals> {
        Ok(StopSignals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// The name of the first stop signal received.
    async fn received(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
            _ = self.hup.recv() => "SIGHUP",
        }
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut signals = match StopSignals::listen() {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("sandbox failed: cannot listen for signals: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = tokio::select! {
        result = run() => result,
        name = signals.received() => {
            // Leaving the select drops `run`'s future, and with it every child and directory.
            println!("Stopping ({name}): ending every process the sandbox started.");
            Ok(())
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sandbox failed: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Starts everything, walks through the quickstart, then waits forever (or returns with
/// `--exit`). Everything it started lives in this future.
async fn run() -> anyhow::Result<()> {
    let options = parse_args()?;
    let temp = tempfile::Builder::new()
        .prefix("catalog-sandbox-")
        .tempdir()?;
    let dir = options
        .dir
        .clone()
        .unwrap_or_else(|| temp.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    let caib = binary_near("caib")?;
    let reconciler_bin = binary_near("catalog-reconciler")?;

    step("Starting the Kubernetes API emulator");
    let emulator = Emulator::start(EmulatorOptions::with_crds(
        cluster::workspace().join("crds"),
    ))?;
    let kubeconfig = dir.join("kubeconfig");
    emulator.write_kubeconfig(&kubeconfig)?;
    done(&format!(
        "API server {} (KUBECONFIG={})",
        emulator.url(),
        kubeconfig.display()
    ));

    step("Starting docker-registry with the demo images");
    let registry = Registry::start(RegistryConfig::default()).await;
    push_demo_images(&registry).await;

    step("Seeding a catalog repository from catalog-repo-template/");
    let seed = dir.join("seed");
    let host = registry.host();
    cluster::copy_template(
        &cluster::workspace().join("catalog-repo-template"),
        &seed,
        &host,
    )?;
    let repo = BareRepo::seeded("catalog", &seed)?;
    done(&format!("git remote {}", repo.file_url()));

    step("Starting the forge stand-in (a local stand-in for GitHub, not GitHub)");
    let forge = FakeForge::start(FORGE_TOKEN).await;
    done(&format!(
        "GitHub-style pull-request API on {} (CAIB_FORGE_API_URL); pull requests live in memory",
        forge.github_url()
    ));

    step("Starting catalog-reconciler");
    let client = emulator.kube_client();
    let settings = cluster::ForgeSettings {
        api_url: forge.github_url(),
        repository: forge_repository(&seed)?,
        token: FORGE_TOKEN.into(),
    };
    cluster::apply_source(&client, &repo.file_url(), &settings).await?;
    cluster::put_demo_build(&client, &host).await?;
    let mut reconciler = spawn_reconciler(&reconciler_bin, &kubeconfig, &dir, &host)?;
    cluster::wait_available(
        &client,
        &[
            "autosd-cs9-rpi4",
            "autosd-cs9-qemu",
            "autosd-cs9-arm-boards",
        ],
    )
    .await?;
    done("dev environment synced and verified");

    let env = Env {
        caib,
        kubeconfig: kubeconfig.clone(),
        dir: dir.clone(),
        repo: &repo,
        forge: &forge,
        client: &client,
        host,
    };
    env.quickstart().await?;
    env.review_flow().await?;
    env.overview().await?;

    println!("\n=== The sandbox is up ===");
    println!("  export KUBECONFIG={}", kubeconfig.display());
    println!("  export CAIB_CATALOG_REPO={}", repo.file_url());
    println!(
        "  export CAIB_FORGE_API_URL={} CAIB_GIT_TOKEN={FORGE_TOKEN}   # the forge stand-in",
        forge.github_url()
    );
    println!("  caib catalog list; kubectl get catalogimages; kubectl get catalogsources");
    println!("  reconciler log: {}", dir.join("reconciler.log").display());
    if options.exit {
        println!("Stopping (--exit).");
    } else {
        println!(
            "Press Ctrl-C (or send SIGTERM or SIGHUP to pid {}) to stop; every process the sandbox started is ended.",
            std::process::id()
        );
        std::future::pending::<()>().await;
    }
    let _ = reconciler.kill().await;
    Ok(())
}

/// The repository catalog.yaml's `forge.repo` names: where caib opens pull requests, and so
/// where the CatalogSource's previews look for them.
fn forge_repository(seed: &std::path::Path) -> anyhow::Result<String> {
    let config = catalog_api::repo::RepoConfig::load(seed).map_err(|diagnostics| {
        let text: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("{}", text.join("\n"))
    })?;
    config
        .forge
        .map(|f| f.repo)
        .with_context(|| format!("{}/catalog.yaml has no `forge`", seed.display()))
}

fn spawn_reconciler(
    binary: &std::path::Path,
    kubeconfig: &std::path::Path,
    dir: &std::path::Path,
    host: &str,
) -> anyhow::Result<Child> {
    let log = std::fs::File::create(dir.join("reconciler.log"))?;
    Command::new(binary)
        .env("KUBECONFIG", kubeconfig)
        .args([
            "--http-addr",
            "127.0.0.1:0",
            "--log-format",
            "text",
            "--insecure-registry",
            host,
        ])
        .arg("--cache-dir")
        .arg(dir.join("reconciler-cache"))
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .context("cannot start catalog-reconciler")
}

/// The images the template's dev entries name, one for `caib catalog add`, and the one the
/// demo ImageBuild produced (for `caib catalog publish`).
async fn push_demo_images(registry: &Registry) {
    let host = registry.host();
    let rpi = registry
        .push_image(
            "centos-automotive/autosd:cs9-rpi4",
            &ImageFixture::new("arm64")
                .variant("v8")
                .layers(&[4096, 8192, 2048]),
        )
        .await;
    done(&format!(
        "{host}/centos-automotive/autosd:cs9-rpi4 ({})",
        rpi.digest
    ));
    let qemu = registry
        .push_index(
            "centos-automotive/autosd:cs9-qemu",
            &[
                ImageFixture::new("amd64").seed(1),
                ImageFixture::new("arm64").variant("v8").seed(2),
            ],
            true,
        )
        .await;
    done(&format!(
        "{host}/centos-automotive/autosd:cs9-qemu (multi-arch, {})",
        qemu.digest
    ));
    let reference = registry
        .push_image(
            "centos-automotive/autosd:cs9-reference",
            &ImageFixture::new("amd64").seed(3),
        )
        .await;
    done(&format!(
        "{host}/centos-automotive/autosd:cs9-reference ({}), to be added with caib",
        reference.digest
    ));
    let build = registry
        .push_image(
            cluster::BUILD_IMAGE,
            &ImageFixture::new("arm64").variant("v8").seed(4),
        )
        .await;
    done(&format!(
        "{host}/{} ({}), the output of ImageBuild {}, to be published with caib",
        cluster::BUILD_IMAGE,
        build.digest,
        cluster::BUILD_NAME
    ));
}

fn step(what: &str) {
    println!("▸ {what}");
}

fn done(what: &str) {
    println!("  ✓ {what}");
}
