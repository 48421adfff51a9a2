//! One sync of one CatalogSource, as a [`SyncRun`] passed through named steps (Flux's
//! sub-reconcilers): [`finalize`] (deletion, finalizer) → [`finalize::admit`] (suspend, spec)
//! → [`fetch`] → [`trust`] (signature, no rollback) → [`read`] → [`plan`] → [`apply`] →
//! [`prune`] → [`report`]. Each step returns `Result<Next, Stop>`: the value the next step
//! needs, or why the run ends early. Only [`report`] writes the status, once, from the pure
//! [`super::outcome::report`]; the run returns when the source is next due ([`Requeue`], as
//! kube-runtime's `Action`), and only the scheduler writes the due map.

mod apply;
mod fetch;
mod finalize;
mod plan;
mod prune;
mod read;
mod report;
mod trust;

use std::sync::Arc;
use std::time::Instant;

use catalog_api::CatalogSource;
use catalog_api::source::CatalogSourceStatus;

use super::entries::EntryCache;
use super::error::{Error, FetchError};
use super::live::{PendingWrites, resource_version};
use super::memo::PlanMemo;
use super::outcome::Findings;
use super::{Key, Shared};
use crate::forge::CommitState;
use crate::git::Fetched;

/// What a source's syncs remember between runs (in memory; a restart rebuilds it); what all
/// syncs share is [`super::Shared`] (the verification controller uses the same two words).
#[derive(Default)]
pub struct Memory {
    pub(super) entries: EntryCache,
    pub(super) fetched: Option<Fetched>,
    pub(super) last_fetch: Option<Instant>,
    pub(super) failures: u32,
    /// Why the last fetch failed, while fetches keep failing.
    pub(super) fetch_error: Option<FetchError>,
    /// When the next fetch is due (interval or backoff): what the run hands the scheduler.
    pub(super) next_fetch: Option<Instant>,
    pub(super) generation: Option<i64>,
    /// Writes the watch cache has not shown yet: planning waits for them.
    pub(super) pending: PendingWrites,
    /// Last commit status sent: (revision, state, description).
    pub(super) reported: Option<(String, CommitState, String)>,
    /// Status we last wrote and the resourceVersion the server gave it: used as the
    /// previous status while the watch cache still holds an older object.
    pub(super) written: Option<(CatalogSourceStatus, u64)>,
    /// The last plan carried out without errors, reused while nothing it depends on changes.
    pub(super) memo: PlanMemo,
}

/// What the scheduler does with a source after a run (kube-runtime's `Action`).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Requeue {
    /// Run again, fetching, at this instant.
    At(Instant),
    /// Only when something triggers it.
    OnTrigger,
    /// The source is gone (or its deletion finished): forget it.
    Forget,
}

/// Why a run ends before the last step.
#[derive(Debug)]
pub(super) enum Stop {
    /// Nothing to report; hand the scheduler this.
    Requeue(Requeue),
    /// `spec.suspend`.
    Suspended,
    /// An error that stalls the source until a new revision or a spec change.
    Failed(Error),
    /// The fetch failed; the error is in [`Memory::fetch_error`] for the next runs too.
    FetchFailed,
}

/// A step's result: what the next step needs, or why the run ends.
pub(super) type Step<T> = Result<T, Stop>;

/// One run: the source as the watch showed it, its memory (locked for the run), the
/// status it started from and what the steps found.
pub(super) struct SyncRun<'a> {
    pub shared: &'a Shared,
    pub key: &'a Key,
    pub source: Arc<CatalogSource>,
    pub memory: &'a mut Memory,
    /// The status this run started from: the source's, or the one we wrote last when the
    /// watch has not shown it yet.
    pub previous: CatalogSourceStatus,
    pub found: Findings,
    pub started: Instant,
    /// The scheduler asked for a fetch (the interval came).
    pub fetch_requested: bool,
    /// Held from the apply step to the end of the report when the run writes CatalogImages:
    /// verifications wait for it ([`crate::sync_writes`]).
    pub writing: Option<crate::sync_writes::Writing>,
}

impl<'a> SyncRun<'a> {
    fn new(
        shared: &'a Shared,
        key: &'a Key,
        source: Arc<CatalogSource>,
        memory: &'a mut Memory,
        fetch_requested: bool,
    ) -> SyncRun<'a> {
        let source_rv = resource_version(&source.metadata);
        let previous = match memory.written.take() {
            Some((status, written_rv)) if written_rv > source_rv => {
                memory.written = Some((status.clone(), written_rv));
                status
            }
            _ => source.status.clone().unwrap_or_default(),
        };
        let found = Findings {
            generation: source.metadata.generation,
            webhook_path: source.spec.webhook.as_ref().map(|_| {
                let (ns, name) = key;
                format!("/hook/{ns}/{name}")
            }),
            ..Findings::default()
        };
        SyncRun {
            shared,
            key,
            source,
            memory,
            previous,
            found,
            started: Instant::now(),
            fetch_requested,
            writing: None,
        }
    }

    /// `namespace/name`, for logs.
    fn label(&self) -> String {
        format!("{}/{}", self.key.0, self.key.1)
    }

    /// The steps between admission and the report.
    async fn steps(&mut self) -> Step<apply::Done> {
        finalize::admit(self)?;
        let fetched = fetch::fetch(self).await?;
        trust::verify_signature(self, &fetched.commit).await?;
        let desired = read::read_entries(self, fetched)?;
        let planned = plan::plan(self, desired).await;
        let applied = apply::apply(self, planned).await;
        Ok(prune::prune(self, applied).await)
    }
}

/// Runs one sync; errors end up in the status. Returns when the source is next due.
pub(super) async fn sync_source(shared: &Shared, key: &Key, fetch_requested: bool) -> Requeue {
    let Some(source) = shared.source(key) else {
        return Requeue::Forget;
    };
    if let Err(stop) = finalize::finalize(shared, &source).await {
        return match stop {
            Stop::Requeue(requeue) => requeue,
            _ => Requeue::OnTrigger,
        };
    }
    let memory = shared.memory(key);
    let mut memory = memory.lock().await;
    let mut run = SyncRun::new(shared, key, source, &mut memory, fetch_requested);
    let ended = run.steps().await;
    report::report(&mut run, ended).await;
    match run.memory.next_fetch {
        Some(at) => Requeue::At(at),
        None => Requeue::OnTrigger,
    }
}

/// Reports a panic of `key`'s sync on its status ([`Error::Internal`]), through the same
/// report as every run.
pub(super) async fn report_panic(shared: &Shared, key: &Key, error: Error) {
    let Some(source) = shared.source(key) else {
        return;
    };
    let memory = shared.memory(key);
    let mut memory = memory.lock().await;
    let mut run = SyncRun::new(shared, key, source, &mut memory, false);
    // The status as the source has it: the panic may have come before our last write.
    run.previous = run.source.status.clone().unwrap_or_default();
    run.found.webhook_path = run.previous.webhook_path.clone();
    report::report(&mut run, Err(Stop::Failed(error))).await;
}
