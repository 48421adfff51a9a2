//! One sync of one CatalogSource: fetch → verify → read → plan → apply → status.

use crate::panics::LockExt as _;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::events::EventType;
use futures::StreamExt;
use kube::api::Api;

use catalog_api::CatalogImage;
use catalog_api::labels::{APPROVE_DELETIONS, RECONCILE_REQUESTED_AT};
use catalog_api::source::{CatalogSourceStatus, SyncRecord, condition};

use super::effects::{cache_path, event, fail, jitter, later, report_commit, write_status};
use super::entries::EntryCache;
use super::fetching::fetch_step;
use super::live::{LiveImage, PendingWrites, Write, resource_version};
use super::memo::{MemoKey, PlanMemo};
use super::plan::{PlanInput, plan, short};
use super::status::{
    EntryReport, fetch_failed, push_history, ready_condition, remove_condition, set_condition,
    set_entries,
};
use super::trust::{Check, rollback_step, verify_step};
use super::{Key, Shared, apply, cleanup, spec_check};
use crate::forge::CommitState;
use crate::source::{self, Fetched};

/// What a source's syncs remember between runs (in memory; a restart rebuilds it).
#[derive(Default)]
pub struct SourceState {
    pub(super) entries: EntryCache,
    pub(super) fetched: Option<Fetched>,
    pub(super) last_fetch: Option<Instant>,
    pub(super) failures: u32,
    /// Why the last fetch failed, while fetches keep failing.
    pub(super) fetch_error: Option<String>,
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

/// Runs one sync. Errors end up in the status; nothing is returned.
pub(super) async fn sync_source(shared: &Shared, key: &Key, fetch_requested: bool) {
    let Some(source) = shared.source(key) else {
        shared.forget(key);
        return;
    };
    if source.metadata.deletion_timestamp.is_some() {
        if cleanup::finalize(shared, &source).await {
            shared.forget(key);
        } else {
            let retry = later(jitter(Duration::from_secs(5), 0.2));
            shared.due.locked().insert(key.clone(), retry);
        }
        return;
    }
    cleanup::ensure_finalizer(shared, &source).await;
    let state = shared.state(key);
    let mut state = state.lock().await;
    let started = Instant::now();
    let (ns, name) = (key.0.as_str(), key.1.as_str());
    let spec = &source.spec;
    let source_rv = resource_version(&source.metadata);
    let previous = match state.written.take() {
        Some((status, written_rv)) if written_rv > source_rv => {
            state.written = Some((status.clone(), written_rv));
            status
        }
        _ => source.status.clone().unwrap_or_default(),
    };
    let mut status = previous.clone();
    let generation = source.metadata.generation;
    let target_ns = source.target_namespace().to_string();
    let annotations = source.metadata.annotations.clone().unwrap_or_default();
    status.observed_generation = generation;
    status.webhook_path = spec.webhook.as_ref().map(|_| format!("/hook/{ns}/{name}"));

    if spec.suspend {
        set_condition(
            &mut status.conditions,
            condition::RECONCILING,
            false,
            "Suspended",
            "spec.suspend is true: nothing is fetched or applied; the applied entries stay as they are",
            generation,
        );
        shared.due.locked().remove(key);
        write_status(shared, &mut state.written, &source, &previous, &status).await;
        return;
    }

    // Spec check: durations within bounds, the target namespace allowed.
    if let Some(refused) = spec_check::refusal(&source, shared.allow_cross_namespace_targets) {
        shared.due.locked().remove(key);
        status.last_handled_reconcile_at = annotations.get(RECONCILE_REQUESTED_AT).cloned();
        fail(
            shared,
            &mut state.written,
            &source,
            &previous,
            status,
            refused.reason,
            &refused.message,
            generation,
        )
        .await;
        return;
    }

    if !fetch_step(
        shared,
        key,
        &mut state,
        &source,
        &previous,
        &mut status,
        fetch_requested,
        started,
    )
    .await
    {
        return;
    }
    let Some(fetched) = state.fetched.clone() else {
        return;
    };
    let revision = fetched.commit.clone();
    status.last_fetched_revision = Some(revision.clone());
    status.last_attempted_revision = Some(revision.clone());
    let cache_path = cache_path(shared, ns, name);

    // Signature verification, then no rollback.
    if let Some(verify) = &spec.verify {
        let check = Check {
            shared,
            source: &source,
            previous: &previous,
            revision: &revision,
            cache: &cache_path,
        };
        if !verify_step(&check, verify, &mut state.written, &mut status).await
            || !rollback_step(&check, &annotations, &mut state.written, &status).await
        {
            return;
        }
    } else {
        remove_condition(&mut status.conditions, condition::SOURCE_VERIFIED);
    }

    // Entries, parsing only changed blobs.
    let read = match git2::Repository::open_bare(&cache_path) {
        Ok(repo) => {
            let rules = source::tree::environment_rules(&repo, &revision, &spec.path, &target_ns);
            let max = shared.max_entries;
            tokio::task::block_in_place(|| {
                state
                    .entries
                    .read(&repo, &revision, &spec.path, &rules, max)
            })
            .map_err(|e| (e.read_reason(), e.to_string()))
        }
        Err(e) => Err((
            "ReadFailed",
            format!(
                "cannot open the cache {}: {}",
                cache_path.display(),
                e.message()
            ),
        )),
    };
    let report = match read {
        Ok(report) => report,
        Err((reason, message)) => {
            fail(
                shared,
                &mut state.written,
                &source,
                &previous,
                status,
                reason,
                &message,
                generation,
            )
            .await;
            return;
        }
    };
    let names: BTreeSet<String> = report
        .entries
        .iter()
        .map(|e| e.name().to_string())
        .collect();
    let contested = shared.claim(key, &target_ns, &names);
    let broken: BTreeSet<String> = report
        .broken_paths()
        .into_iter()
        .map(str::to_string)
        .collect();
    let (live_changes, live) = live_view(shared, &mut state.pending, &target_ns).await;
    let input = PlanInput {
        source: name,
        source_namespace: ns,
        namespace: &target_ns,
        revision: &revision,
        desired: &report.entries,
        broken_paths: &broken,
        contested: &contested,
        prune: spec.prune,
        max_deletions: &spec.max_deletions,
        allow_empty: spec.allow_empty,
        approved_revision: annotations.get(APPROVE_DELETIONS).map(String::as_str),
    };
    let memo_key = MemoKey::new(&input, &spec.path, live_changes);
    let mut plan = match state.memo.reuse(&memo_key) {
        Some(remembered) => remembered,
        None => plan(&input, &live),
    };

    tracing::debug!(
        source = %format!("{ns}/{name}"),
        ms = started.elapsed().as_millis() as u64,
        parsed = state.entries.parsed_last,
        apply = plan.apply.len(),
        prune = plan.prune.len(),
        "planned"
    );
    let changes = !plan.apply.is_empty() || !plan.prune.is_empty();
    if changes {
        report_commit(
            shared,
            &source,
            &mut state,
            &revision,
            CommitState::Pending,
            "syncing".into(),
        )
        .await;
    }
    let api: Api<CatalogImage> = Api::namespaced(shared.client.clone(), &target_ns);
    let live_rv: HashMap<&str, u64> = live
        .iter()
        .map(|o| (&*o.name, o.resource_version))
        .collect();
    let mut errors = Vec::new();
    let (mut created, mut updated, mut pruned) = (0usize, 0usize, 0usize);
    let mut applied = std::pin::pin!(apply::apply_all(
        &api,
        std::mem::take(&mut plan.apply),
        &input,
        &shared.metrics,
    ));
    while let Some(written) = applied.next().await {
        match written.result {
            Ok(rv) => {
                if written.create {
                    created += 1
                } else {
                    updated += 1
                }
                state
                    .pending
                    .push(&target_ns, &written.name, Write::Applied(rv));
            }
            Err(e) => errors.push(e),
        }
    }
    for (deleted, result) in apply::prune_all(&api, plan.prune.clone(), &shared.metrics).await {
        match result {
            Ok(()) => {
                pruned += 1;
                let old_rv = live_rv.get(deleted.as_str()).copied().unwrap_or(0);
                state
                    .pending
                    .push(&target_ns, &deleted, Write::Deleted(old_rv));
            }
            Err(e) => errors.push(e),
        }
    }
    drop(live_rv);
    drop(live);
    if errors.is_empty() && spec.prune {
        let (moved, failed) = cleanup::prune_moved(shared, &source).await;
        pruned += moved;
        errors.extend(failed);
    }
    if errors.is_empty() {
        state.memo.remember(memo_key, &plan);
    } else {
        state.memo.forget();
    }
    let metrics = &shared.metrics;
    metrics.entries(name, "created", created);
    metrics.entries(name, "updated", updated);
    metrics.entries(name, "unchanged", plan.unchanged.len());
    metrics.entries(name, "pruned", pruned);
    metrics.entries(name, "invalid", broken.len());
    metrics.entries(name, "conflict", plan.conflicts.len());
    metrics.entries(name, "kept", plan.kept_broken.len());

    tracing::debug!(source = %format!("{ns}/{name}"), ms = started.elapsed().as_millis() as u64, "applied");
    // Status.
    let (_, live) = live_view(shared, &mut state.pending, &target_ns).await;
    let managed: Vec<Arc<LiveImage>> = live
        .into_iter()
        .filter(|o| o.managed_by(ns, name))
        .collect();
    let applied_ok = created + updated + plan.unchanged.len();
    set_entries(
        &mut status,
        &EntryReport {
            diagnostics: &report.diagnostics,
            plan: &plan,
            managed: &managed,
            applied: applied_ok,
            invalid_files: broken.len(),
        },
    );
    let elapsed = started.elapsed();
    let (ready, reason, message) = ready_condition(&errors, &plan, &report.diagnostics, &revision);
    set_condition(
        &mut status.conditions,
        condition::READY,
        ready,
        reason,
        &message,
        generation,
    );
    let waiting = plan.blocked.is_some();
    set_condition(
        &mut status.conditions,
        condition::RECONCILING,
        false,
        if waiting {
            "WaitingForApproval"
        } else {
            "Idle"
        },
        if waiting {
            "deletions wait for approval"
        } else {
            "in sync with the fetched revision"
        },
        generation,
    );
    set_condition(
        &mut status.conditions,
        condition::STALLED,
        waiting,
        if waiting { reason } else { "Progressing" },
        if waiting { &message } else { "" },
        generation,
    );
    // While the remote keeps failing, syncs between fetch attempts still revert drift from
    // the last fetched revision, but must not report Synced over the fetch failure.
    if ready && let Some(error) = &state.fetch_error {
        fetch_failed(&mut status.conditions, error, state.failures, generation);
    }
    let newly_applied =
        errors.is_empty() && previous.last_applied_revision.as_deref() != Some(revision.as_str());
    if errors.is_empty() {
        status.last_applied_revision = Some(revision.clone());
    }
    if created + updated + pruned > 0 || newly_applied {
        push_history(
            &mut status.history,
            SyncRecord {
                revision: revision.clone(),
                time: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    jiff::Timestamp::now(),
                )),
                created: created as i32,
                updated: updated as i32,
                pruned: pruned as i32,
                duration_ms: elapsed.as_millis() as i64,
            },
        );
    }
    if newly_applied {
        let age = jiff::Timestamp::now().as_second() - fetched.commit_time;
        if age >= 0 {
            metrics.commit_to_applied.observe(age as f64);
        }
    }
    metrics
        .sync_duration
        .get_or_create(&super::metrics::SourceLabels {
            source: name.into(),
        })
        .observe(elapsed.as_secs_f64());
    write_status(shared, &mut state.written, &source, &previous, &status).await;

    if created + updated + pruned > 0 {
        event(
            shared,
            &source,
            EventType::Normal,
            "Synced",
            &format!(
                "revision {}: {created} created, {updated} updated, {pruned} pruned",
                short(&revision)
            ),
        )
        .await;
        tracing::info!(source = %format!("{ns}/{name}"), revision = %revision, created, updated, pruned, ms = elapsed.as_millis() as u64, "synced");
    }
    if !ready
        && previous
            .conditions
            .iter()
            .find(|c| c.type_ == condition::READY)
            .is_none_or(|c| c.message != message)
    {
        event(shared, &source, EventType::Warning, reason, &message).await;
    }
    let state_value = if ready {
        CommitState::Success
    } else {
        CommitState::Failure
    };
    let description = format!(
        "{} applied, {} invalid, {} conflicts{}",
        applied_ok,
        broken.len(),
        plan.conflicts.len(),
        if plan.blocked.is_some() {
            ", deletions awaiting approval"
        } else {
            ""
        }
    );
    report_commit(
        shared,
        &source,
        &mut state,
        &revision,
        state_value,
        description,
    )
    .await;
}

/// How long a sync waits for the watch to show its previous writes before planning.
const CATCH_UP: Duration = Duration::from_secs(10);

/// The CatalogImages of `namespace` once the watch cache shows this source's own writes,
/// so a plan never re-applies (or a summary never misses) what was just written; with the
/// cache's change count, which tells whether a remembered plan still holds.
async fn live_view(
    shared: &Shared,
    pending: &mut PendingWrites,
    namespace: &str,
) -> (u64, Vec<Arc<LiveImage>>) {
    shared.images.catch_up(pending, CATCH_UP).await;
    shared.images.versioned_namespace(namespace)
}
