//! The prune step: deletes what the plan prunes, then (when nothing failed and `spec.prune`
//! is on) what the source left in a namespace it no longer targets; remembers the plan when
//! everything succeeded, and counts the entries. Failed deletes become Ready=False
//! `ApplyFailed` in the report.

use kube::api::Api;

use catalog_api::CatalogImage;

use super::super::apply::prune_all;
use super::super::cleanup;
use super::super::live::Write;
use super::SyncRun;
use super::apply::Done;

/// Prunes, and records what the run did in the entry metrics.
pub(super) async fn prune(run: &mut SyncRun<'_>, mut done: Done) -> Done {
    let planned = &done.planned;
    let namespace = planned.desired.target_namespace.as_str();
    let api: Api<CatalogImage> = Api::namespaced(run.shared.client.clone(), namespace);
    let names = planned.plan.prune.clone();
    for (deleted, result) in prune_all(&api, names, &run.shared.metrics).await {
        match result {
            Ok(()) => {
                done.pruned += 1;
                let old_rv = planned.prune_versions.get(&deleted).copied().unwrap_or(0);
                let pending = &mut run.memory.pending;
                pending.push(namespace, &deleted, Write::Deleted(old_rv));
            }
            Err(e) => done.errors.push(e),
        }
    }
    if done.errors.is_empty() && run.source.spec.prune {
        let (moved, failed) = cleanup::prune_moved(run.shared, &run.source).await;
        done.pruned += moved;
        done.errors.extend(failed);
    }
    let memo = &mut run.memory.memo;
    let key = done.planned.memo_key.take();
    if let Some(key) = key.filter(|_| done.errors.is_empty()) {
        memo.remember(key, &done.planned.plan);
    } else {
        memo.forget();
    }
    count(run, &done);
    done
}

fn count(run: &SyncRun<'_>, done: &Done) {
    let (metrics, name) = (&run.shared.metrics, run.key.1.as_str());
    let plan = &done.planned.plan;
    metrics.entries(name, "created", done.created);
    metrics.entries(name, "updated", done.updated);
    metrics.entries(name, "unchanged", plan.unchanged.len());
    metrics.entries(name, "pruned", done.pruned);
    metrics.entries(name, "invalid", done.planned.desired.broken.len());
    metrics.entries(name, "conflict", plan.conflicts.len());
    metrics.entries(name, "kept", plan.kept_broken.len());
    tracing::debug!(source = %run.label(), ms = run.started.elapsed().as_millis() as u64, "applied");
}
