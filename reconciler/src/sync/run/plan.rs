//! The plan step: claims the entry names (so two sources declaring one name both report the
//! conflict), waits until the watch cache shows this source's own writes, and plans with
//! the pure [`super::super::plan::plan`], or reuses the last plan while nothing it depends on
//! changed ([`PlanMemo`](super::super::memo::PlanMemo)). Sets no condition itself: the plan's
//! conflicts and held deletions become Ready's reason in the report.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use super::super::Shared;
use super::super::live::{LiveImage, PendingWrites};
use super::super::memo::MemoKey;
use super::super::plan::{Plan, plan as make_plan};
use super::SyncRun;
use super::read::Desired;

/// A planned revision.
pub(super) struct Planned {
    pub desired: Desired,
    pub plan: Plan,
    /// What the plan was made from (taken when the plan is remembered).
    pub memo_key: Option<MemoKey>,
    /// The resourceVersion of each object to prune (the watch confirms its deletion by it).
    pub prune_versions: HashMap<String, u64>,
}

/// How long a sync waits for the watch to show its previous writes before planning.
const CATCH_UP: Duration = Duration::from_secs(10);

/// Plans the revision against the live CatalogImages of the target namespace.
pub(super) async fn plan(run: &mut SyncRun<'_>, mut desired: Desired) -> Planned {
    let names: BTreeSet<String> = desired
        .report
        .entries
        .iter()
        .map(|e| e.name().to_string())
        .collect();
    let namespace = desired.target_namespace.as_str();
    desired.contested = run.shared.claim(run.key, namespace, &names);
    drop(names);
    let (live_changes, live) = live_view(run.shared, &mut run.memory.pending, namespace).await;
    let input = desired.input(&run.source);
    let memo_key = MemoKey::new(&input, &run.source.spec.path, live_changes);
    let plan = match run.memory.memo.reuse(&memo_key) {
        Some(remembered) => remembered,
        None => make_plan(&input, &live),
    };
    let pruned: BTreeSet<&str> = plan.prune.iter().map(String::as_str).collect();
    let prune_versions = live
        .iter()
        .filter(|o| pruned.contains(&*o.name))
        .map(|o| (o.name.to_string(), o.resource_version))
        .collect();
    tracing::debug!(
        source = %run.label(),
        ms = run.started.elapsed().as_millis() as u64,
        parsed = run.memory.entries.parsed_last,
        apply = plan.apply.len(),
        prune = plan.prune.len(),
        "planned"
    );
    drop(pruned);
    Planned {
        desired,
        plan,
        memo_key: Some(memo_key),
        prune_versions,
    }
}

/// The CatalogImages of `namespace` once the watch cache shows this source's own writes,
/// so a plan never re-applies (or a summary never misses) what was just written; with the
/// cache's change count, which tells whether a remembered plan still holds.
pub(super) async fn live_view(
    shared: &Shared,
    pending: &mut PendingWrites,
    namespace: &str,
) -> (u64, Vec<Arc<LiveImage>>) {
    shared.images.catch_up(pending, CATCH_UP).await;
    shared.images.versioned_namespace(namespace)
}
