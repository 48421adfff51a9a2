//! The fetch step: whether to fetch (see [`fetch_due`]), the fetch itself, and what a failure
//! records: backoff, the failure count, the metric.
//!
//! Conditions (set by the report): a failed fetch → Ready=False `FetchFailed` (the applied
//! revision stays), Reconciling=True `RetryingFetch`, Stalled=True `FetchFailing` after
//! [`STALLED_AFTER_FAILURES`](super::super::status::STALLED_AFTER_FAILURES) in a row.

use std::time::{Duration, Instant};

use catalog_api::labels::RECONCILE_REQUESTED_AT;

use super::super::effects::{self, jitter, later};
use super::super::metrics::SourceLabels;
use super::super::plan::{FetchState, fetch_due};
use super::{Requeue, Step, Stop, SyncRun};
use crate::git::Fetched;

/// Fetches when due; the revision to sync (the one fetched last when no fetch was due).
pub(super) async fn fetch(run: &mut SyncRun<'_>) -> Step<Fetched> {
    let spec = &run.source.spec;
    let generation = run.source.metadata.generation;
    let annotations = run.source.metadata.annotations.as_ref();
    let requested_at = annotations
        .and_then(|a| a.get(RECONCILE_REQUESTED_AT))
        .cloned();
    // Checked before this step (the spec check refuses an out-of-bounds spec).
    let interval = spec.interval().unwrap_or(Duration::from_secs(60));
    let timeout = spec.timeout().unwrap_or(Duration::from_secs(60));
    let timeout = timeout.max(Duration::from_secs(1));
    let manual = requested_at.is_some() && requested_at != run.previous.last_handled_reconcile_at;
    let memory = &mut *run.memory;
    let backing_off =
        memory.failures > 0 && memory.next_fetch.is_some_and(|at| at > Instant::now());
    let need_fetch = fetch_due(&FetchState {
        requested: run.fetch_requested || manual,
        spec_changed: memory.generation != generation,
        backing_off,
        fetched: memory.fetched.is_some(),
        since_last: memory.last_fetch.map(|t| t.elapsed()),
        interval,
    });
    // Recorded now, not after a successful fetch: a failed fetch is retried with backoff,
    // not again on the next event (our own status write, say).
    memory.generation = generation;
    if requested_at.is_some() {
        run.found.handled_request = Some(requested_at);
    }
    if need_fetch {
        let (ns, name) = (run.key.0.as_str(), run.key.1.as_str());
        match effects::fetch(run.shared, &run.source, ns, name, timeout).await {
            Ok(fetched) => {
                tracing::debug!(source = %run.label(), ms = run.started.elapsed().as_millis() as u64, commit = %fetched.commit, "fetched");
                let memory = &mut *run.memory;
                memory.fetched = Some(fetched);
                memory.last_fetch = Some(Instant::now());
                memory.failures = 0;
                memory.fetch_error = None;
                memory.next_fetch = Some(later(jitter(interval, 0.1)));
            }
            Err(error) => {
                let labels = SourceLabels {
                    source: name.into(),
                };
                run.shared
                    .metrics
                    .fetch_failures
                    .get_or_create(&labels)
                    .inc();
                tracing::warn!(source = %run.label(), error = %error, "fetch failed");
                let memory = &mut *run.memory;
                memory.failures += 1;
                let backoff = Duration::from_secs(1 << memory.failures.min(8))
                    .min(interval.max(Duration::from_secs(2)));
                memory.next_fetch = Some(later(jitter(backoff, 0.2)));
                memory.fetch_error = Some(error);
                return Err(Stop::FetchFailed);
            }
        }
    }
    let fetched = run.memory.fetched.clone();
    let fetched = fetched.ok_or(Stop::Requeue(Requeue::OnTrigger))?;
    run.found.revision = Some(fetched.commit.clone());
    Ok(fetched)
}
