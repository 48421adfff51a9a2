//! Command-line interface definition: global flags (README "Usage") and every subcommand.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "caib",
    version,
    about = "Catalog of automotive OS images: read live status from the cluster, change the catalog through Git",
    long_about = "caib reads the image catalog from the cluster (list, get, verify, status, diff) and \
changes it through Git (add, publish, remove, promote, tag and untag create commits and pull \
requests on the catalog repository; they never write to the cluster)."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command accepts.
#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(
        long,
        global = true,
        env = "KUBECONFIG",
        value_name = "FILE",
        hide_env_values = true
    )]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context to use.
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// Namespace (default: the context's namespace, then `default`).
    #[arg(short = 'n', long, global = true, value_name = "NS")]
    pub namespace: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, global = true, value_enum)]
    pub output: Option<OutputFormat>,
    /// Give up after this long (`30s`, `5m`).
    #[arg(long, global = true, value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Option<Duration>,
    /// More logging on stderr (repeat for more).
    #[arg(short = 'v', long = "verbose", global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Show what would change and change nothing.
    #[arg(long, global = true)]
    pub dry_run: bool,
    /// Catalog repository: a URL or a local path.
    #[arg(
        long,
        global = true,
        env = "CAIB_CATALOG_REPO",
        value_name = "URL|PATH"
    )]
    pub catalog_repo: Option<String>,
    /// Environment of the catalog repository (from catalog.yaml).
    #[arg(long = "env", global = true, value_name = "NAME")]
    pub environment: Option<String>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Table,
    Wide,
    Json,
    Yaml,
}

// Parsed once per process: the size difference between variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Work with the image catalog.
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Work with ImageBuilds.
    #[command(subcommand)]
    Images(ImagesCommand),
    /// Print a shell completion script.
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write man pages to a directory.
    #[command(hide = true)]
    Manpages { dir: PathBuf },
}

#[derive(Subcommand, Debug)]
pub enum ImagesCommand {
    /// List ImageBuilds in the namespace.
    List(ImagesListArgs),
}

#[derive(Args, Debug)]
pub struct ImagesListArgs {
    /// List across all namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
}

#[derive(Subcommand, Debug)]
pub enum CatalogCommand {
    /// List catalog images, newest first.
    List(ListArgs),
    /// Show one catalog image.
    Get(GetArgs),
    /// Ask the reconciler to verify an image now and show the result.
    Verify(VerifyArgs),
    /// Show the catalog sources: synced revision, readiness, counts, invalid entries.
    Status(StatusArgs),
    /// Compare the catalog repository with the cluster (exit 1 when they differ).
    Diff(DiffArgs),
    /// Validate a catalog repository offline, as its CI does.
    Validate(ValidateArgs),
    /// Add an external image to the catalog (through a commit and pull request).
    Add(AddArgs),
    /// Publish a completed ImageBuild to the catalog (through a commit and pull request).
    Publish(PublishArgs),
    /// Remove an image from the catalog (through a commit and pull request).
    Remove(RemoveArgs),
    /// Promote an image to the next environment, digest pinned (through a pull request).
    Promote(PromoteArgs),
    /// Add tags to a catalog image (through a commit and pull request).
    Tag(TagArgs),
    /// Remove tags from a catalog image (through a commit and pull request).
    Untag(TagArgs),
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Only this architecture (x86_64 finds amd64).
    #[arg(long)]
    pub architecture: Option<String>,
    #[arg(long)]
    pub distro: Option<String>,
    /// Only images declaring this hardware target.
    #[arg(long)]
    pub target: Option<String>,
    /// Only images in this phase (Pending, Verifying, Available, Unavailable, Failed).
    #[arg(long)]
    pub phase: Option<String>,
    /// Only images carrying all these tags (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub tags: Vec<String>,
    /// At most this many images.
    #[arg(long)]
    pub limit: Option<u32>,
    /// List across all namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
}

#[derive(Args, Debug)]
pub struct GetArgs {
    pub name: String,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    pub name: String,
    /// Wait for the verification result (default true).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub wait: bool,
    /// Verify from this machine against the registry, without a cluster. NAME is then an entry
    /// of the catalog repository (or a registry reference).
    #[arg(long)]
    pub local: bool,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// One source, with its invalid entries and last syncs.
    pub name: Option<String>,
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// List the entries the source manages (name and path), read from its CatalogImages.
    #[arg(long)]
    pub entries: bool,
}

#[derive(Args, Debug)]
pub struct DiffArgs {}

#[derive(Args, Debug)]
pub struct ValidateArgs {
    /// Catalog repository (or one environment directory); default the current directory.
    pub dir: Option<PathBuf>,
    /// `github` prints workflow annotations.
    #[arg(long, value_enum, default_value = "text")]
    pub format: ValidateFormat,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValidateFormat {
    Text,
    Github,
}

/// Flags shared by the commands that change the catalog through Git.
#[derive(Args, Debug, Clone)]
pub struct ChangeArgs {
    /// Commit straight to the target branch instead of opening a pull request.
    #[arg(long)]
    pub direct: bool,
    /// Wait until the change is merged and the cluster shows it: the CatalogImage applied
    /// from the merged commit (or a later one), its status current, and Available.
    #[arg(long)]
    pub wait: bool,
}

#[derive(Args, Debug)]
pub struct AddArgs {
    pub name: String,
    /// OCI reference of the image.
    pub url: String,
    #[arg(long, required = true)]
    pub architecture: String,
    #[arg(long, required = true)]
    pub distro: String,
    #[arg(long)]
    pub distro_version: Option<String>,
    /// Hardware target (repeatable or comma-separated).
    #[arg(long = "target", value_delimiter = ',')]
    pub targets: Vec<String>,
    #[arg(long, value_delimiter = ',')]
    pub tags: Vec<String>,
    /// Pin this digest.
    #[arg(long)]
    pub digest: Option<String>,
    /// Pin the digest resolved from the registry.
    #[arg(long)]
    pub pin: bool,
    /// Secret with registry credentials.
    #[arg(long)]
    pub auth_secret: Option<String>,
    #[arg(long)]
    pub bootc_capable: bool,
    #[arg(long)]
    pub kernel_version: Option<String>,
    #[arg(long)]
    pub verification_interval: Option<String>,
    /// Do not check the image in the registry first.
    #[arg(long)]
    pub no_verify: bool,
    /// Change an existing entry of that name.
    #[arg(long)]
    pub update: bool,
    #[command(flatten)]
    pub change: ChangeArgs,
}

#[derive(Args, Debug)]
pub struct PublishArgs {
    /// Name of a Completed ImageBuild.
    pub imagebuild: String,
    /// Entry name (default: the ImageBuild's name).
    #[arg(long)]
    pub catalog_name: Option<String>,
    #[arg(long, value_delimiter = ',')]
    pub tags: Vec<String>,
    #[arg(long)]
    pub update: bool,
    #[command(flatten)]
    pub change: ChangeArgs,
}

#[derive(Args, Debug)]
pub struct RemoveArgs {
    pub name: String,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub change: ChangeArgs,
}

#[derive(Args, Debug)]
pub struct PromoteArgs {
    pub name: String,
    /// Environment to promote to.
    #[arg(long, required = true)]
    pub to: String,
    /// Environment to promote from (default: the previous one in catalog.yaml).
    #[arg(long)]
    pub from: Option<String>,
    /// Promote even when the source entry is not Available.
    #[arg(long)]
    pub force: bool,
    /// Copy the whole spec from the source environment; by default only what identifies the
    /// image (registryUrl and digest) changes, and the target keeps its own tags,
    /// verificationInterval, targets and notes.
    #[arg(long)]
    pub all_fields: bool,
    #[command(flatten)]
    pub change: ChangeArgs,
}

#[derive(Args, Debug)]
pub struct TagArgs {
    pub name: String,
    /// Tags to add (tag) or remove (untag).
    #[arg(required = true, num_args = 1.., value_name = "TAG")]
    pub tags: Vec<String>,
    #[command(flatten)]
    pub change: ChangeArgs,
}

/// Go-style duration for flags (`30s`, `5m`, `1h30m`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    catalog_api::duration::parse(s).map_err(|e| e.to_string())
}
