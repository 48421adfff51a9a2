//! The local sandbox: the whole product on one machine, walked through the quickstart.
//!
//! Starts kube-emulator, a docker-registry holding two demo images (one arm64, one
//! multi-arch), a git remote seeded from `catalog-repo-template/` (its dev entries pointed at
//! the local registry), and `catalog-reconciler` syncing it; then runs the quickstart's
//! workflows with the real `caib` and `kubectl`, and stays up until Ctrl-C (or exits at once
//! with `--exit`, as CI does). Every process it started is ended when it stops.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use catalog_e2e::emulator::{Emulator, EmulatorOptions};
use catalog_e2e::git::BareRepo;
use catalog_e2e::process::binary_near;
use catalog_e2e::registry::{ImageFixture, Registry, RegistryConfig};
use kube::Api;
use kube::api::{DynamicObject, PostParams};
use tokio::process::{Child, Command};

const AUTHOR: &str = "Sandbox User";
const AUTHOR_EMAIL: &str = "sandbox@example.com";

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
                    "Usage: sandbox [--exit] [--dir DIR]\n\n  --exit     stop after the walkthrough (CI)\n  --dir DIR  keep kubeconfig, logs and caches in DIR (default: a temporary directory)"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (see --help)"),
        }
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sandbox failed: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

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
    let crds = workspace().join("crds");
    let emulator = Emulator::start(EmulatorOptions::with_crds(&crds))?;
    let kubeconfig = dir.join("kubeconfig");
    emulator.write_kubeconfig(&kubeconfig)?;
    done(&format!(
        "API server {} (KUBECONFIG={})",
        emulator.url(),
        kubeconfig.display()
    ));

    step("Starting docker-registry with two demo images");
    let registry = Registry::start(RegistryConfig::default()).await;
    let host = registry.host();
    let rpi = registry
        .push_image(
            "centos-automotive/autosd:cs9-rpi4",
            &ImageFixture::new("arm64")
                .variant("v8")
                .layers(&[4096, 8192, 2048]),
        )
        .await;
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
    let reference_image = registry
        .push_image(
            "centos-automotive/autosd:cs9-reference",
            &ImageFixture::new("amd64").seed(3),
        )
        .await;
    done(&format!(
        "{host}/centos-automotive/autosd:cs9-rpi4 ({})",
        rpi.digest
    ));
    done(&format!(
        "{host}/centos-automotive/autosd:cs9-qemu (multi-arch, {})",
        qemu.digest
    ));
    done(&format!(
        "{host}/centos-automotive/autosd:cs9-reference ({}), to be added with caib",
        reference_image.digest
    ));

    step("Seeding a catalog repository from catalog-repo-template/");
    let seed = dir.join("seed");
    copy_template(&workspace().join("catalog-repo-template"), &seed, &host)?;
    let repo = BareRepo::seeded("catalog", &seed)?;
    let repo_url = repo.file_url();
    done(&format!("git remote {repo_url}"));

    step("Starting catalog-reconciler");
    let client = emulator.kube_client();
    apply_source(&client, &repo_url).await?;
    let log = std::fs::File::create(dir.join("reconciler.log"))?;
    let mut reconciler: Child = Command::new(&reconciler_bin)
        .env("KUBECONFIG", &kubeconfig)
        .args([
            "--http-addr",
            "127.0.0.1:0",
            "--log-format",
            "text",
            "--insecure-registry",
            &host,
        ])
        .arg("--cache-dir")
        .arg(dir.join("reconciler-cache"))
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .context("cannot start catalog-reconciler")?;
    wait_available(
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
        caib: caib.clone(),
        kubeconfig: kubeconfig.clone(),
        dir: dir.clone(),
        repo_url: repo_url.clone(),
    };
    println!("\n=== Quickstart walkthrough ===");
    env.caib(&["catalog", "list"]).await?;
    env.caib(&[
        "catalog",
        "list",
        "--target",
        "raspberry-pi",
        "--architecture",
        "arm64",
    ])
    .await?;
    env.caib(&["catalog", "list", "--distro", "cs9", "--phase", "Available"])
        .await?;
    env.caib(&["catalog", "get", "autosd-cs9-rpi4"]).await?;
    let reference = format!("{host}/centos-automotive/autosd:cs9-reference");
    env.caib(&[
        "catalog",
        "add",
        "reference-cs9",
        &reference,
        "--architecture",
        "amd64",
        "--distro",
        "cs9",
        "--distro-version",
        "9.4",
        "--target",
        "qemu",
        "--tags",
        "reference,baseline",
        "--bootc-capable",
        "--direct",
    ])
    .await?;
    request_sync(&client).await?;
    wait_available(&client, &["reference-cs9"]).await?;
    env.caib(&["catalog", "verify", "reference-cs9"]).await?;
    env.kubectl(&["get", "catalogimages"]).await?;
    env.caib(&["catalog", "status"]).await?;

    println!("\n=== The sandbox is up ===");
    println!("  export KUBECONFIG={}", kubeconfig.display());
    println!("  export CAIB_CATALOG_REPO={repo_url}");
    println!("  caib catalog list; kubectl get catalogimages; kubectl get catalogsources");
    println!("  reconciler log: {}", dir.join("reconciler.log").display());
    if options.exit {
        println!("Stopping (--exit).");
    } else {
        println!("Press Ctrl-C to stop; every process the sandbox started is ended.");
        tokio::signal::ctrl_c().await?;
    }
    let _ = reconciler.kill().await;
    drop(registry);
    drop(emulator);
    Ok(())
}

fn workspace() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn step(what: &str) {
    println!("▸ {what}");
}

fn done(what: &str) {
    println!("  ✓ {what}");
}

/// The template with its dev entries pointed at the local registry (the other environments
/// reference quay.io and are not synced by the sandbox).
fn copy_template(from: &Path, to: &Path, host: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for item in std::fs::read_dir(from)? {
        let item = item?;
        let target = to.join(item.file_name());
        if item.file_type()?.is_dir() {
            copy_template(&item.path(), &target, host)?;
        } else {
            let text = std::fs::read_to_string(item.path())?;
            let text = if item.path().components().any(|c| c.as_os_str() == "dev") {
                text.replace(
                    "quay.io/centos-automotive/autosd:cs9-arm-generic",
                    "quay.io/centos-automotive/autosd:cs9-rpi4",
                )
                .replace("quay.io/", &format!("{host}/"))
            } else {
                text
            };
            std::fs::write(target, text)?;
        }
    }
    Ok(())
}

async fn apply_source(client: &kube::Client, url: &str) -> anyhow::Result<()> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "default", &source_resource());
    let source: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "automotive.sdv.cloud.redhat.com/v1alpha1",
        "kind": "CatalogSource",
        "metadata": {"name": "catalog-dev", "namespace": "default"},
        "spec": {"url": url, "ref": {"branch": "main"}, "path": "environments/dev", "interval": "10s"}
    }))?;
    api.create(&PostParams::default(), &source)
        .await
        .context("cannot create the CatalogSource")?;
    Ok(())
}

fn source_resource() -> kube::api::ApiResource {
    kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
        catalog_api::GROUP,
        catalog_api::VERSION,
        "CatalogSource",
    ))
}

/// Asks for an immediate sync, as a webhook would.
async fn request_sync(client: &kube::Client) -> anyhow::Result<()> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "default", &source_resource());
    let patch = serde_json::json!({"metadata": {"annotations": {catalog_api::labels::RECONCILE_REQUESTED_AT: jiff::Timestamp::now().to_string()}}});
    api.patch(
        "catalog-dev",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(patch),
    )
    .await?;
    Ok(())
}

async fn wait_available(client: &kube::Client, names: &[&str]) -> anyhow::Result<()> {
    let api: Api<catalog_api::CatalogImage> = Api::namespaced(client.clone(), "default");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let mut missing = Vec::new();
        for name in names {
            let phase = api
                .get_opt(name)
                .await?
                .and_then(|i| i.status)
                .and_then(|s| s.phase);
            if phase != Some(catalog_api::image::Phase::Available) {
                missing.push(format!(
                    "{name} ({})",
                    phase.map_or("not synced".to_string(), |p| p.to_string())
                ));
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("timed out waiting for Available: {}", missing.join(", "));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How the walkthrough runs the real CLIs: a user's environment with the sandbox's kubeconfig
/// and catalog repository, and a HOME of its own.
struct Env {
    caib: PathBuf,
    kubeconfig: PathBuf,
    dir: PathBuf,
    repo_url: String,
}

impl Env {
    fn command(&self, program: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", self.dir.join("home"))
            .env("XDG_CACHE_HOME", self.dir.join("home/.cache"))
            .env("CAIB_CATALOG_REPO", &self.repo_url)
            .env("GIT_AUTHOR_NAME", AUTHOR)
            .env("GIT_AUTHOR_EMAIL", AUTHOR_EMAIL)
            .env("GIT_COMMITTER_NAME", AUTHOR)
            .env("GIT_COMMITTER_EMAIL", AUTHOR_EMAIL)
            .env("NO_COLOR", "1");
        cmd
    }

    async fn show(&self, program: &Path, label: &str, args: &[&str]) -> anyhow::Result<()> {
        println!("\n$ {label} {}", args.join(" "));
        // Inherit the terminal so progress (stderr) and results (stdout) interleave as a user sees them.
        use std::io::Write;
        std::io::stdout().flush()?;
        let status = self.command(program, args).status().await?;
        if !status.success() {
            bail!("`{label} {}` exited with {status}", args.join(" "));
        }
        Ok(())
    }

    async fn caib(&self, args: &[&str]) -> anyhow::Result<()> {
        self.show(&self.caib.clone(), "caib", args).await
    }

    async fn kubectl(&self, args: &[&str]) -> anyhow::Result<()> {
        let kubectl = catalog_e2e::process::require_tool("kubectl", "kubectl");
        self.show(&kubectl, "kubectl", args).await
    }
}
