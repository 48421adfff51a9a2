//! The last step: the status, Events and commit status of the run, from the pure
//! [`outcome::report`](super::super::outcome::report), written once; and the sync metrics.

use std::sync::Arc;

use crate::events::EventType;

use super::super::effects::{event, report_commit, write_status};
use super::super::live::LiveImage;
use super::super::metrics::{ReasonLabels, SourceLabels};
use super::super::outcome::{self, Outcome, Synced};
use super::apply::Done;
use super::plan::live_view;
use super::{Step, Stop, SyncRun};

/// Reports how the run ended.
pub(super) async fn report(run: &mut SyncRun<'_>, ended: Step<Done>) {
    let done = match ended {
        Ok(done) => done,
        Err(Stop::Requeue(_)) => return,
        Err(Stop::Suspended) => return send(run, &Outcome::Suspended, None).await,
        Err(Stop::Failed(error)) => return send(run, &Outcome::Stopped(&error), None).await,
        Err(Stop::FetchFailed) => {
            let error = run.memory.fetch_error.take();
            if let Some(error) = &error {
                let failures = run.memory.failures;
                send(run, &Outcome::FetchFailed { error, failures }, None).await;
            }
            run.memory.fetch_error = error;
            return;
        }
    };
    let namespace = done.planned.desired.target_namespace.as_str();
    let (_, live) = live_view(run.shared, &mut run.memory.pending, namespace).await;
    let (ns, name) = (run.key.0.as_str(), run.key.1.as_str());
    let managed: Vec<Arc<LiveImage>> = live
        .into_iter()
        .filter(|o| o.managed_by(ns, name))
        .collect();
    let fetch_error = run.memory.fetch_error.take();
    let desired = &done.planned.desired;
    let synced = Synced {
        revision: &desired.fetched.commit,
        plan: &done.planned.plan,
        diagnostics: &desired.report.diagnostics,
        managed: &managed,
        created: done.created,
        updated: done.updated,
        pruned: done.pruned,
        errors: &done.errors,
        invalid_files: desired.broken.len(),
        failing_fetch: fetch_error.as_ref().map(|e| (e, run.memory.failures)),
        now: jiff::Timestamp::now(),
        elapsed: run.started.elapsed(),
    };
    send(run, &Outcome::Synced(synced), Some(&done)).await;
    run.memory.fetch_error = fetch_error;
}

/// Writes the status when it changed, publishes the Events, sends the commit status.
async fn send(run: &mut SyncRun<'_>, outcome: &Outcome<'_>, done: Option<&Done>) {
    let report = outcome::report(&run.previous, &run.found, outcome);
    let (shared, source) = (run.shared, &*run.source);
    if let Some(reason) = outcome.failure_reason() {
        let labels = ReasonLabels {
            source: run.key.1.clone(),
            reason: reason.into(),
        };
        shared.metrics.failures.get_or_create(&labels).inc();
    }
    if let (Outcome::Synced(synced), Some(done)) = (outcome, done) {
        record_metrics(run, synced, report.newly_applied, done);
    }
    if report.write {
        let written = &mut run.memory.written;
        write_status(shared, written, source, &run.previous, &report.status).await;
    }
    for note in &report.events {
        let kind = match note.warning {
            true => EventType::Warning,
            false => EventType::Normal,
        };
        event(shared, source, kind, note.reason, &note.text).await;
    }
    if let (Outcome::Synced(synced), Some((state, description))) = (outcome, report.commit) {
        if synced.created + synced.updated + synced.pruned > 0 {
            let (created, updated, pruned) = (synced.created, synced.updated, synced.pruned);
            let ms = synced.elapsed.as_millis() as u64;
            tracing::info!(source = %run.label(), revision = %synced.revision, created, updated, pruned, ms, "synced");
        }
        let revision = synced.revision;
        report_commit(shared, source, run.memory, revision, state, description).await;
    }
}

/// The latency from commit to applied and the sync's duration.
fn record_metrics(run: &SyncRun<'_>, synced: &Synced<'_>, newly_applied: bool, done: &Done) {
    let metrics = &run.shared.metrics;
    if newly_applied {
        let commit_time = done.planned.desired.fetched.commit_time;
        let age = jiff::Timestamp::now().as_second() - commit_time;
        if age >= 0 {
            metrics.commit_to_applied.observe(age as f64);
        }
    }
    let labels = SourceLabels {
        source: run.key.1.as_str().into(),
    };
    let duration = metrics.sync_duration.get_or_create(&labels);
    duration.observe(synced.elapsed.as_secs_f64());
}
