//! Local mode (`--local-source DIR --local-path environments/dev --target-namespace NS`):
//! watches a working tree with notify and syncs on every save, no commit needed. Uses the
//! same validation, planning and apply code as the CatalogSource controller; objects carry
//! the source label value [`SOURCE`].

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::Api;
use kube::api::ListParams;
use notify::{RecursiveMode, Watcher};

use catalog_api::CatalogImage;
use catalog_api::labels::CATALOG_SOURCE;
use catalog_api::repo::{RepoConfig, read_environment_files};
use catalog_api::validate::validate_environment;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::apply::{apply_all, prune_all};
use super::live::LiveImage;
use super::metrics::Metrics;
use super::plan::{PlanInput, WORKING_TREE, plan};
use crate::Context;

/// Label value of objects applied in local mode.
pub const SOURCE: &str = "local";
/// Quiet time after the last file event before syncing (editors write in several steps).
const DEBOUNCE: Duration = Duration::from_millis(75);

/// Runs local mode until shutdown.
pub async fn run(ctx: Arc<Context>, metrics: Metrics) -> anyhow::Result<()> {
    let root: PathBuf = ctx
        .config
        .local_source
        .clone()
        .expect("local mode needs --local-source");
    let dir = ctx.config.local_path.clone();
    let namespace = ctx
        .config
        .target_namespace
        .clone()
        .or_else(|| ctx.config.namespace.clone())
        .unwrap_or_else(|| "default".into());
    if !root.join(&dir).is_dir() {
        anyhow::bail!(
            "--local-path {dir}: {} is not a directory",
            root.join(&dir).display()
        );
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && event
                .paths
                .iter()
                .any(|p| !p.components().any(|c| c.as_os_str() == ".git"))
        {
            let _ = tx.send(());
        }
    })?;
    watcher
        .watch(&root.join(&dir), RecursiveMode::Recursive)
        .map_err(|e| anyhow::anyhow!("cannot watch {}: {e}", root.join(&dir).display()))?;
    tracing::info!(dir = %root.join(&dir).display(), namespace = %namespace, "local mode: syncing on every save");
    let api: Api<CatalogImage> = Api::namespaced(ctx.client.clone(), &namespace);
    sync_once(&api, &root, &dir, &namespace, &metrics).await;
    loop {
        tokio::select! {
            _ = ctx.shutdown.cancelled() => return Ok(()),
            got = rx.recv() => {
                if got.is_none() { return Ok(()); }
                // Debounce: wait until the tree is quiet.
                while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, rx.recv()).await {}
                sync_once(&api, &root, &dir, &namespace, &metrics).await;
            }
        }
    }
}

/// One sync of the working tree; problems are logged, never fatal.
pub async fn sync_once(
    api: &Api<CatalogImage>,
    root: &std::path::Path,
    dir: &str,
    namespace: &str,
    metrics: &Metrics,
) {
    let started = Instant::now();
    let mut rules = RepoConfig::load(root)
        .ok()
        .and_then(|c| {
            c.environments
                .iter()
                .find(|e| e.path.trim_matches('/') == dir.trim_matches('/'))
                .map(|e| e.rules())
        })
        .unwrap_or_default();
    rules.target_namespace = Some(namespace.to_string());
    let (files, read_errors) = read_environment_files(root, dir);
    let mut report = validate_environment(
        files.iter().map(|(p, b)| (p.as_str(), b.as_slice())),
        &rules,
    );
    report.diagnostics.extend(read_errors);
    for d in &report.diagnostics {
        tracing::warn!(diagnostic = %d, "invalid entry (its live CatalogImage is kept)");
    }
    let live = match api.list(&ListParams::default()).await {
        Ok(list) => list
            .items
            .iter()
            .map(|o| Arc::new(LiveImage::from_object(o)))
            .collect::<Vec<_>>(),
        Err(e) => {
            tracing::error!(error = %e, "cannot list CatalogImages");
            return;
        }
    };
    let broken: BTreeSet<String> = report
        .broken_paths()
        .into_iter()
        .map(str::to_string)
        .collect();
    let contested = BTreeSet::new();
    let max_deletions = IntOrString::String("100%".into());
    let input = PlanInput {
        source: SOURCE,
        source_namespace: namespace,
        namespace,
        revision: WORKING_TREE,
        desired: &report.entries,
        broken_paths: &broken,
        contested: &contested,
        prune: true,
        max_deletions: &max_deletions,
        allow_empty: false,
        approved_revision: None,
    };
    let plan = plan(&input, &live);
    for c in &plan.conflicts {
        tracing::warn!(name = %c.name, path = %c.path, "{}", c.message);
    }
    if let Some(b) = &plan.blocked {
        tracing::warn!("{}", b.message);
    }
    let mut failed = 0;
    let (mut created, mut updated, mut pruned) = (0, 0, 0);
    let mut applied = std::pin::pin!(apply_all(api, plan.apply.clone(), &input, metrics));
    while let Some(w) = applied.next().await {
        match w.result {
            Ok(_) if w.create => created += 1,
            Ok(_) => updated += 1,
            Err(e) => {
                failed += 1;
                tracing::error!(error = %e, "apply failed");
            }
        }
    }
    for (name, result) in prune_all(api, plan.prune.clone(), metrics).await {
        match result {
            Ok(()) => pruned += 1,
            Err(e) => {
                failed += 1;
                tracing::error!(name = %name, error = %e, "prune failed");
            }
        }
    }
    tracing::info!(
        created,
        updated,
        pruned,
        unchanged = plan.unchanged.len(),
        invalid = broken.len(),
        failed,
        ms = started.elapsed().as_millis() as u64,
        "local sync of {dir} done (label {CATALOG_SOURCE}={SOURCE})"
    );
}
