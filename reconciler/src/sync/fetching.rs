//! The fetch step of a sync: whether to fetch, the fetch itself, and what a failure
//! records (backoff, metrics, conditions, one status write and Event per new failure).

use crate::panics::LockExt as _;
use std::time::{Duration, Instant};

use crate::events::EventType;

use catalog_api::CatalogSource;
use catalog_api::labels::RECONCILE_REQUESTED_AT;
use catalog_api::source::{CatalogSourceStatus, condition};

use super::effects::{event, fetch, jitter, later, write_status};
use super::plan::{FetchState, fetch_due};
use super::reconcile::SourceState;
use super::status::{STALLED_AFTER_FAILURES, fetch_failed};
use super::{Key, Shared};

/// Fetches when due (see [`fetch_due`]). Returns false when the sync stops here: the fetch
/// failed (the previously applied revision stays applied).
#[allow(clippy::too_many_arguments)]
pub(super) async fn fetch_step(
    shared: &Shared,
    key: &Key,
    state: &mut SourceState,
    source: &CatalogSource,
    previous: &CatalogSourceStatus,
    status: &mut CatalogSourceStatus,
    fetch_requested: bool,
    started: Instant,
) -> bool {
    let (ns, name) = (key.0.as_str(), key.1.as_str());
    let spec = &source.spec;
    let generation = source.metadata.generation;
    let requested_at = source
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(RECONCILE_REQUESTED_AT))
        .cloned();
    // Checked before this step (reconcile.rs refuses an out-of-bounds spec).
    let interval = spec.interval().unwrap_or(Duration::from_secs(60));
    let timeout = spec
        .timeout()
        .unwrap_or(Duration::from_secs(60))
        .max(Duration::from_secs(1));
    let manual = requested_at.is_some() && requested_at != previous.last_handled_reconcile_at;
    let backing_off = state.failures > 0
        && shared
            .due
            .locked()
            .get(key)
            .is_some_and(|at| *at > Instant::now());
    let need_fetch = fetch_due(&FetchState {
        requested: fetch_requested || manual,
        spec_changed: state.generation != generation,
        backing_off,
        fetched: state.fetched.is_some(),
        since_last: state.last_fetch.map(|t| t.elapsed()),
        interval,
    });
    // Recorded now, not after a successful fetch: a failed fetch is retried with backoff,
    // not again on the next event (our own status write, say).
    state.generation = generation;
    if requested_at.is_some() {
        status.last_handled_reconcile_at = requested_at.clone();
    }
    if need_fetch {
        match fetch(shared, source, ns, name, timeout).await {
            Ok(fetched) => {
                tracing::debug!(source = %format!("{ns}/{name}"), ms = started.elapsed().as_millis() as u64, commit = %fetched.commit, "fetched");
                state.fetched = Some(fetched);
                state.last_fetch = Some(Instant::now());
                state.failures = 0;
                state.fetch_error = None;
                shared
                    .due
                    .locked()
                    .insert(key.clone(), later(jitter(interval, 0.1)));
            }
            Err(message) => {
                state.failures += 1;
                shared
                    .metrics
                    .fetch_failures
                    .get_or_create(&super::metrics::SourceLabels {
                        source: name.into(),
                    })
                    .inc();
                let backoff = Duration::from_secs(1 << state.failures.min(8))
                    .min(interval.max(Duration::from_secs(2)));
                shared
                    .due
                    .locked()
                    .insert(key.clone(), later(jitter(backoff, 0.2)));
                tracing::warn!(source = %format!("{ns}/{name}"), error = %message, "fetch failed");
                state.fetch_error = Some(message.clone());
                let already = previous.conditions.iter().any(|c| {
                    c.type_ == condition::READY
                        && c.reason == "FetchFailed"
                        && c.message.starts_with(&message)
                });
                fetch_failed(&mut status.conditions, &message, state.failures, generation);
                // The attempt counter changes every time; only write when the reason is new
                // or the source just became Stalled.
                if !already || state.failures == STALLED_AFTER_FAILURES {
                    write_status(shared, &mut state.written, source, previous, status).await;
                    event(shared, source, EventType::Warning, "FetchFailed", &message).await;
                }
                return false;
            }
        }
    }
    true
}
