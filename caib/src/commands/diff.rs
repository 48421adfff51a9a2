//! `caib catalog diff [--env ENV]`: what the next sync would change — the entries of one
//! environment of the catalog repository (without `--env`, the one the CatalogSource targeting
//! the namespace syncs) (validated exactly as the reconciler validates them)
//! against the live CatalogImages of the target namespace.
//!
//! The plan is the sync's own ([`super::diff_plan`]), made for the CatalogSource that syncs
//! the environment into the namespace. Only what the repository controls is shown: `spec`
//! and the labels and annotations a user wrote. Status, server fields and everything the
//! sync derives (spec labels, source traceability, verify requests) are left out, so a freshly
//! synced catalog diffs empty. Conflicts and held deletions are listed on stderr. Exit 0 when
//! equal, 1 when different.

use std::path::{Path, PathBuf};

use catalog_api::CatalogImage;
use catalog_api::repo::{self, RepoConfig};
use catalog_api::validate::{Report, Rules};
use kube::api::{Api, ListParams};

use super::diff_plan::{PlannedSource, Summary, compare, render, warnings};
use crate::cli::{DiffArgs, Global};
use crate::cluster::{CATALOG_IMAGE, Cluster};
use crate::error::{CaibError, Result, exit};

/// The revision the plan names: a checkout has no commit to approve deletions for (the
/// sync's local mode uses the same marker).
const REVISION: &str = catalog_reconciler::sync::plan::WORKING_TREE;

pub fn run(global: &Global, _args: &DiffArgs) -> Result<()> {
    // A remote URL: the cached clone the Git commands use, read at the tip of its branch.
    let remote = match global.catalog_repo.as_deref() {
        Some(value) if crate::repo::location::is_url(value) => {
            Some(crate::repo::CatalogRepo::open(Some(value))?)
        }
        _ => None,
    };
    let root = match &remote {
        Some(_) => PathBuf::new(),
        None => repo_root(global.catalog_repo.as_deref())?,
    };
    let (env_name, env_dir, mut rules, env_namespace) = match &remote {
        Some(repo) => {
            let env = super::target_env::choose(&repo.config, global)?;
            (
                env.name.clone(),
                env.path.clone(),
                env.rules(),
                env.namespace.clone(),
            )
        }
        None => environment(&root, global)?,
    };
    super::block_on(async {
        let mut global = global.clone();
        if global.namespace.is_none() {
            global.namespace = env_namespace;
        }
        let cluster = Cluster::connect(&global).await?;
        rules.target_namespace = Some(cluster.namespace.clone());
        let report = match &remote {
            Some(repo) => {
                let env = repo.environment(&env_name)?;
                repo.report(&env)?
            }
            None => repo::validate_environment_dir(&root, &env_dir, &rules),
        };
        for d in &report.diagnostics {
            eprintln!("warning: {d} (left out of the comparison; the cluster keeps what it has)");
        }
        let source = syncing_source(&global, &env_name, &env_dir).await?;
        let api: Api<CatalogImage> = cluster.api(false);
        let live = api
            .list(&ListParams::default())
            .await
            .map_err(|e| cluster.error(e, &CATALOG_IMAGE, None))?
            .items;
        show(
            &report,
            &live,
            &source,
            &cluster.namespace,
            (&env_name, &env_dir),
        )
    })
}

/// Prints the comparison; exit 1 when anything differs.
fn show(
    report: &Report,
    live: &[CatalogImage],
    source: &PlannedSource,
    namespace: &str,
    (env_name, env_dir): (&str, &str),
) -> Result<()> {
    let comparison = compare(report, live, source, namespace, REVISION)?;
    print!("{}", render(&comparison.changes, namespace));
    for line in warnings(&comparison) {
        eprintln!("{line}");
    }
    let summary = Summary::of(&comparison);
    if summary.is_empty() {
        eprintln!(
            "No differences: environment {env_name:?} ({env_dir}) matches namespace {namespace:?}"
        );
        return Ok(());
    }
    eprintln!(
        "{} (environment {env_name:?} vs namespace {namespace:?})",
        summary.line()
    );
    Err(CaibError::Silent(exit::ERROR))
}

/// The CatalogSource targeting the namespace that syncs `env_dir` (found as `--env`'s default
/// is, [`super::target_env::targeting`]); when none does, a new one named after the
/// environment (whose sync would take over nothing that exists).
async fn syncing_source(global: &Global, env_name: &str, env_dir: &str) -> Result<PlannedSource> {
    let (namespace, sources) = super::target_env::targeting(global).await?;
    let found = sources
        .iter()
        .find(|s| super::target_env::same_dir(&s.spec.path, env_dir));
    match found {
        Some(source) => Ok(PlannedSource::of(source)),
        None => {
            eprintln!(
                "note: no CatalogSource targeting namespace {namespace:?} syncs {env_dir}; comparing as a new source {env_name:?} would sync it"
            );
            Ok(PlannedSource::new(env_name, &namespace))
        }
    }
}

/// The checkout to read: `--catalog-repo PATH` (or the config file's), else the current
/// directory (remote URLs are handled by the caller).
fn repo_root(flag: Option<&str>) -> Result<PathBuf> {
    let Some(value) = flag else {
        return Ok(PathBuf::from("."));
    };
    let path = PathBuf::from(value);
    if !path.is_dir() {
        return Err(CaibError::Usage(format!(
            "--catalog-repo {value}: no such directory"
        )));
    }
    Ok(path)
}

/// The environment to compare: `--env`, else the one the cluster names (see
/// [`super::target_env`]). Without `catalog.yaml` the directory itself is one environment.
fn environment(root: &Path, global: &Global) -> Result<(String, String, Rules, Option<String>)> {
    if !root.join(repo::CONFIG_FILE).is_file() {
        if let Some(name) = &global.environment {
            return Err(CaibError::Usage(format!(
                "--env {name}: {} has no {} to define environments",
                root.display(),
                repo::CONFIG_FILE
            )));
        }
        return Ok((".".into(), ".".into(), Rules::default(), None));
    }
    let config = RepoConfig::load(root).map_err(|diagnostics| {
        let lines: Vec<String> = diagnostics.iter().map(|d| d.to_string()).collect();
        CaibError::Other(anyhow::anyhow!(
            "invalid {} in {}:\n{}",
            repo::CONFIG_FILE,
            root.display(),
            lines.join("\n")
        ))
    })?;
    let env = super::target_env::choose(&config, global)?;
    Ok((
        env.name.clone(),
        env.path.clone(),
        env.rules(),
        env.namespace.clone(),
    ))
}
