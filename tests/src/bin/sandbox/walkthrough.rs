//! The walkthrough: the seed guide's workflows run with the real `caib` and `kubectl`, as a
//! user would type them, and the review flow of a change through a pull request.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use catalog_e2e::forge::{FakeForge, PrState, PullRequest};
use catalog_e2e::git::BareRepo;

use super::cluster::{self, BUILD_NAME};
use super::{FORGE_TOKEN, done, step};

const AUTHOR: &str = "Sandbox User";
const AUTHOR_EMAIL: &str = "sandbox@example.com";

/// How the walkthrough runs the real CLIs: a user's environment with the sandbox's kubeconfig,
/// catalog repository and forge stand-in, and a HOME of its own.
pub struct Env<'a> {
    pub caib: PathBuf,
    pub kubeconfig: PathBuf,
    pub dir: PathBuf,
    pub repo: &'a BareRepo,
    pub forge: &'a FakeForge,
    pub client: &'a kube::Client,
    /// The local registry's `host:port`.
    pub host: String,
}

impl Env<'_> {
    /// Seed guide workflows 1, 2, 4 and 6: list and filter, details, add an external image
    /// (committed directly), verify it.
    pub async fn quickstart(&self) -> anyhow::Result<()> {
        println!("\n=== Quickstart walkthrough ===");
        self.caib(&["catalog", "list"]).await?;
        self.caib(&[
            "catalog",
            "list",
            "--target",
            "raspberry-pi",
            "--architecture",
            "arm64",
        ])
        .await?;
        self.caib(&["catalog", "list", "--distro", "cs9", "--phase", "Available"])
            .await?;
        self.caib(&["catalog", "get", "autosd-cs9-rpi4"]).await?;
        let reference = format!("{}/centos-automotive/autosd:cs9-reference", self.host);
        self.caib(&[
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
        cluster::request_sync(self.client).await?;
        cluster::wait_available(self.client, &["reference-cs9"]).await?;
        self.caib(&["catalog", "verify", "reference-cs9"]).await
    }

    /// Seed guide workflow 3 the GitOps way: `caib catalog publish` opens a pull request on
    /// the forge stand-in, the walkthrough shows it as a reviewer would see it, with the
    /// reconciler's preview of what merging would do (and that the cluster holds none of it
    /// yet), merges it through the stand-in, delivers the push webhook, and waits for the
    /// entry to be Available in the cluster.
    pub async fn review_flow(&self) -> anyhow::Result<()> {
        println!("\n=== Review flow: a change is a pull request ===");
        self.caib(&[
            "catalog",
            "publish",
            BUILD_NAME,
            "--tags",
            "production,tested",
        ])
        .await?;
        let pr = self.open_pull_request()?;
        self.show_pull_request(&pr)?;
        self.preview(&pr).await?;
        step(&format!(
            "Merging pull request #{} through the forge stand-in (as a reviewer pressing Merge)",
            pr.number
        ));
        let merged = self
            .forge
            .merge_into(pr.provider, &pr.repo, pr.number, self.repo)?;
        done(&format!("{} is now {merged}", pr.base));
        step("Delivering the push webhook (asking CatalogSource catalog-dev to sync)");
        cluster::request_sync(self.client).await?;
        cluster::wait_available(self.client, &[BUILD_NAME]).await?;
        done(&format!("{BUILD_NAME} is Available in the cluster"));
        self.caib(&["catalog", "get", BUILD_NAME]).await
    }

    /// What the cluster holds now, by kubectl and caib.
    pub async fn overview(&self) -> anyhow::Result<()> {
        self.kubectl(&["get", "catalogimages"]).await?;
        self.caib(&["catalog", "status"]).await
    }

    /// The open pull request publishing [`BUILD_NAME`].
    fn open_pull_request(&self) -> anyhow::Result<PullRequest> {
        self.forge
            .all_pull_requests()
            .into_iter()
            .find(|p| p.state == PrState::Open && p.head.ends_with(&format!("/{BUILD_NAME}")))
            .context("caib catalog publish opened no pull request on the forge stand-in")
    }

    /// The pull request as its page would show it: title, branches, description, diff.
    fn show_pull_request(&self, pr: &PullRequest) -> anyhow::Result<()> {
        step(&format!(
            "Pull request #{} on the forge stand-in (a local stand-in for GitHub)",
            pr.number
        ));
        println!("  title:  {}", pr.title);
        println!("  branch: {} → {}", pr.head, pr.base);
        println!("  url:    {}", pr.url);
        for line in pr.body.lines() {
            println!("  | {line}");
        }
        let diff = self.repo.git(&[
            "diff",
            &format!("refs/heads/{}", pr.base),
            &format!("refs/heads/{}", pr.head),
        ])?;
        for line in diff.lines() {
            println!("  {line}");
        }
        Ok(())
    }

    fn command(&self, program: &Path, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", self.dir.join("home"))
            .env("XDG_CACHE_HOME", self.dir.join("home/.cache"))
            .env("CAIB_CATALOG_REPO", self.repo.file_url())
            .env("CAIB_FORGE_API_URL", self.forge.github_url())
            .env("CAIB_GIT_TOKEN", FORGE_TOKEN)
            .env("GIT_AUTHOR_NAME", AUTHOR)
            .env("GIT_AUTHOR_EMAIL", AUTHOR_EMAIL)
            .env("GIT_COMMITTER_NAME", AUTHOR)
            .env("GIT_COMMITTER_EMAIL", AUTHOR_EMAIL)
            .env("NO_COLOR", "1")
            // A stop signal during a command ends it with the rest.
            .kill_on_drop(true);
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

    pub(super) async fn caib(&self, args: &[&str]) -> anyhow::Result<()> {
        self.show(&self.caib, "caib", args).await
    }

    pub(super) async fn kubectl(&self, args: &[&str]) -> anyhow::Result<()> {
        let kubectl = catalog_e2e::process::require_tool("kubectl", "kubectl");
        self.show(&kubectl, "kubectl", args).await
    }
}
