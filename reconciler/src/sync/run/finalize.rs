//! The steps before any fetch: a deleted source's cleanup (its finalizer), `spec.suspend`,
//! and the spec check.
//!
//! Conditions: suspended → Reconciling=False `Suspended`; a refused spec → Ready=False,
//! Stalled=True with the refusal's reason (`InvalidSpec`, `CrossNamespaceTarget`). Neither is
//! scheduled again until the spec changes.

use std::time::Duration;

use catalog_api::CatalogSource;
use catalog_api::labels::RECONCILE_REQUESTED_AT;

use super::super::effects::{jitter, later};
use super::super::{Shared, cleanup, spec_check};
use super::{Requeue, Step, Stop, SyncRun};

/// A source being deleted: deletes what it manages, then releases the finalizer (the
/// source is then forgotten), or retries in about 5s while a delete fails. Any other source
/// gets the finalizer when it lacks it.
pub(super) async fn finalize(shared: &Shared, source: &CatalogSource) -> Step<()> {
    if source.metadata.deletion_timestamp.is_some() {
        let requeue = if cleanup::finalize(shared, source).await {
            Requeue::Forget
        } else {
            Requeue::At(later(jitter(Duration::from_secs(5), 0.2)))
        };
        return Err(Stop::Requeue(requeue));
    }
    cleanup::ensure_finalizer(shared, source).await;
    Ok(())
}

/// Stops a suspended source, or one whose spec is refused (see [`spec_check`]).
pub(super) fn admit(run: &mut SyncRun<'_>) -> Step<()> {
    if run.source.spec.suspend {
        run.memory.next_fetch = None;
        return Err(Stop::Suspended);
    }
    let allow = run.shared.allow_cross_namespace_targets;
    if let Some(refused) = spec_check::refusal(&run.source, allow) {
        run.memory.next_fetch = None;
        let annotations = run.source.metadata.annotations.as_ref();
        let requested = annotations.and_then(|a| a.get(RECONCILE_REQUESTED_AT));
        run.found.handled_request = Some(requested.cloned());
        return Err(Stop::Failed(refused));
    }
    Ok(())
}
