//! The apply step: server-side apply of the planned objects ([`super::super::apply`]), each
//! write remembered until the watch shows it. The commit status turns `pending` first when
//! the revision changes anything, and the run counts as writing until its report is written
//! (verifications wait for it: [`crate::sync_writes`]). Failed writes become Ready=False
//! `ApplyFailed` in the report; the others stand (per-entry isolation).

use futures::StreamExt;
use kube::api::Api;

use catalog_api::CatalogImage;

use super::super::apply::apply_all;
use super::super::drift::Drift;
use super::super::effects::{cache_path, report_commit};
use super::super::error::WriteError;
use super::super::live::Write;
use super::SyncRun;
use super::plan::Planned;
use crate::forge::CommitState;

/// What the apply and prune steps did.
pub(super) struct Done {
    pub planned: Planned,
    pub created: usize,
    pub updated: usize,
    pub pruned: usize,
    pub errors: Vec<WriteError>,
}

/// Applies the plan's creates and updates.
pub(super) async fn apply(run: &mut SyncRun<'_>, mut planned: Planned) -> Done {
    let plan = &mut planned.plan;
    let revision = planned.desired.fetched.commit.as_str();
    if !plan.apply.is_empty() || !plan.prune.is_empty() {
        run.writing = Some(run.shared.writes.writing());
        let syncing = "syncing".to_string();
        let pending = CommitState::Pending;
        report_commit(
            run.shared,
            &run.source,
            run.memory,
            revision,
            pending,
            syncing,
        )
        .await;
    }
    let namespace = planned.desired.target_namespace.as_str();
    let api: Api<CatalogImage> = Api::namespaced(run.shared.client.clone(), namespace);
    let (mut created, mut updated, mut errors) = (0, 0, Vec::new());
    // Taken: the plan remembered for the next run has nothing left to apply.
    let ops = std::mem::take(&mut plan.apply);
    {
        let input = planned.desired.input(&run.source);
        let cache = cache_path(run.shared, &run.key.0, &run.key.1);
        let images = &run.shared.images;
        let mut drift = Drift::detect(&api, &ops, images, &input, &cache).await;
        let mut applied = std::pin::pin!(apply_all(&api, ops, &input, &run.shared.metrics));
        while let Some(written) = applied.next().await {
            drift.applied(&written);
            match written.result {
                Ok(rv) => {
                    match written.create {
                        true => created += 1,
                        false => updated += 1,
                    }
                    let pending = &mut run.memory.pending;
                    pending.push(namespace, &written.name, Write::Applied(rv));
                }
                Err(e) => errors.push(e),
            }
        }
        drift.publish(run.shared, &run.key.1).await;
    }
    Done {
        planned,
        created,
        updated,
        pruned: 0,
        errors,
    }
}
