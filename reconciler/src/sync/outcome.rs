//! The pure end of a sync: from the previous status, what the steps found and how the run
//! ended, the next status (Ready, Reconciling, Stalled, SourceVerified, history, entries), the
//! Events to publish and the commit-status text. No I/O, so every ending is unit-tested
//! without a cluster, as [`crate::verify`]'s `transition` is.

use std::sync::Arc;
use std::time::Duration;

use catalog_api::Diagnostic;
use catalog_api::source::{CatalogSourceStatus, SyncRecord, condition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::error::{Error, FetchError, WriteError};
use super::live::LiveImage;
use super::plan::{Plan, short};
use super::reason;
use super::status::{
    EntryReport, STALLED_AFTER_FAILURES, fetch_failed, push_history, ready_condition,
    remove_condition, set_condition, set_entries,
};
use crate::forge::CommitState;

/// What the steps found that the status shows however the run ends.
#[derive(Debug, Default)]
pub(super) struct Findings {
    pub generation: Option<i64>,
    pub webhook_path: Option<String>,
    /// The reconcile-requested-at value this run handled (`Some(None)`: cleared).
    pub handled_request: Option<Option<String>>,
    /// The fetched revision, once fetched.
    pub revision: Option<String>,
    pub signature: Signature,
}

/// What the signature step concluded (the SourceVerified condition).
#[derive(Debug, Default)]
pub(super) enum Signature {
    /// The run stopped before the step: SourceVerified stays as it was.
    #[default]
    NotChecked,
    /// `spec.verify` is off: no SourceVerified condition.
    Off,
    /// Signed by a trusted key (the message names it).
    Verified(String),
    /// Refused: (reason, message).
    Refused(&'static str, String),
}

/// How a run ended.
#[derive(Debug)]
pub(super) enum Outcome<'a> {
    /// `spec.suspend`: nothing fetched or applied.
    Suspended,
    /// Stopped before anything was applied: Ready=False and Stalled=True until a new revision
    /// or a spec change.
    Stopped(&'a Error),
    /// The fetch failed; the applied revision stays. `failures` in a row.
    FetchFailed {
        error: &'a FetchError,
        failures: u32,
    },
    /// Planned and applied.
    Synced(Synced<'a>),
}

impl Outcome<'_> {
    /// The reason of the error the run ended on (the Ready condition's, the metrics label):
    /// `None` when it ended without one.
    pub fn failure_reason(&self) -> Option<&'static str> {
        match self {
            Outcome::Suspended => None,
            Outcome::Stopped(error) => Some(error.reason()),
            Outcome::FetchFailed { .. } => Some(reason::FETCH_FAILED),
            Outcome::Synced(synced) => (!synced.errors.is_empty()).then_some(reason::APPLY_FAILED),
        }
    }
}

/// What a finished sync did.
#[derive(Debug)]
pub(super) struct Synced<'a> {
    pub revision: &'a str,
    pub plan: &'a Plan,
    pub diagnostics: &'a [Diagnostic],
    /// The live CatalogImages the source manages after the sync (for the phase counts).
    pub managed: &'a [Arc<LiveImage>],
    pub created: usize,
    pub updated: usize,
    pub pruned: usize,
    pub errors: &'a [WriteError],
    pub invalid_files: usize,
    /// The fetch that keeps failing while this run reverted drift from the last fetched
    /// revision: it must not report Synced over it.
    pub failing_fetch: Option<(&'a FetchError, u32)>,
    pub now: jiff::Timestamp,
    pub elapsed: Duration,
}

impl Synced<'_> {
    /// Entries live as desired after the sync.
    pub fn applied(&self) -> usize {
        self.created + self.updated + self.plan.unchanged.len()
    }

    fn writes(&self) -> usize {
        self.created + self.updated + self.pruned
    }
}

/// An Event to publish after the status write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Note {
    pub warning: bool,
    pub reason: &'static str,
    pub text: String,
}

/// Everything the report step sends.
#[derive(Debug)]
pub(super) struct Report {
    pub status: CatalogSourceStatus,
    /// False for a repeated fetch failure: only its attempt counter would change.
    pub write: bool,
    pub events: Vec<Note>,
    /// The commit status of the revision, when the run got that far.
    pub commit: Option<(CommitState, String)>,
    /// The revision became the applied one in this run.
    pub newly_applied: bool,
}

/// The status, Events and commit status of a run.
pub(super) fn report(
    previous: &CatalogSourceStatus,
    found: &Findings,
    outcome: &Outcome<'_>,
) -> Report {
    let mut status = previous.clone();
    let generation = found.generation;
    status.observed_generation = generation;
    status.webhook_path = found.webhook_path.clone();
    if let Some(handled) = &found.handled_request {
        status.last_handled_reconcile_at = handled.clone();
    }
    if let Some(revision) = &found.revision {
        status.last_fetched_revision = Some(revision.clone());
        status.last_attempted_revision = Some(revision.clone());
    }
    let conditions = &mut status.conditions;
    match &found.signature {
        Signature::NotChecked => {}
        Signature::Off => remove_condition(conditions, condition::SOURCE_VERIFIED),
        Signature::Verified(message) => {
            let (ty, r) = (condition::SOURCE_VERIFIED, reason::VERIFIED);
            set_condition(conditions, ty, true, r, message, generation);
        }
        Signature::Refused(r, message) => {
            set_condition(
                conditions,
                condition::SOURCE_VERIFIED,
                false,
                r,
                message,
                generation,
            );
        }
    }
    let mut report = Report {
        status,
        write: true,
        events: Vec::new(),
        commit: None,
        newly_applied: false,
    };
    match outcome {
        Outcome::Suspended => suspended(&mut report, generation),
        Outcome::Stopped(error) => stopped(&mut report, previous, error, generation),
        Outcome::FetchFailed { error, failures } => {
            fetch_failure(&mut report, previous, error, *failures, generation)
        }
        Outcome::Synced(synced) => finished(&mut report, previous, synced, generation),
    }
    report
}

fn suspended(report: &mut Report, generation: Option<i64>) {
    set_condition(
        &mut report.status.conditions,
        condition::RECONCILING,
        false,
        reason::SUSPENDED,
        "spec.suspend is true: nothing is fetched or applied; the applied entries stay as they are",
        generation,
    );
}

/// The Ready message of `status`.
fn ready_message(status: &CatalogSourceStatus) -> Option<&str> {
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == condition::READY);
    ready.map(|c| c.message.as_str())
}

fn stopped(
    report: &mut Report,
    previous: &CatalogSourceStatus,
    error: &Error,
    generation: Option<i64>,
) {
    let (reason, message) = (error.reason(), error.to_string());
    let conditions = &mut report.status.conditions;
    set_condition(
        conditions,
        condition::READY,
        false,
        reason,
        &message,
        generation,
    );
    let waiting = "waiting for a new revision or a spec change";
    set_condition(
        conditions,
        condition::RECONCILING,
        false,
        reason,
        waiting,
        generation,
    );
    set_condition(
        conditions,
        condition::STALLED,
        true,
        reason,
        &message,
        generation,
    );
    if error.announced() && ready_message(previous) != Some(message.as_str()) {
        report.events.push(Note {
            warning: true,
            reason,
            text: message,
        });
    }
}

fn fetch_failure(
    report: &mut Report,
    previous: &CatalogSourceStatus,
    error: &FetchError,
    failures: u32,
    generation: Option<i64>,
) {
    let message = error.to_string();
    fetch_failed(
        &mut report.status.conditions,
        &message,
        failures,
        generation,
    );
    let ready = |s: &CatalogSourceStatus| {
        let c = s.conditions.iter().find(|c| c.type_ == condition::READY);
        c.map(|c| (c.reason.clone(), c.message.clone()))
    };
    // The attempt counter changes every time; only write when the failure is new or the
    // source just became Stalled.
    let repeated = ready(previous) == ready(&report.status);
    report.write = !repeated || failures == STALLED_AFTER_FAILURES;
    if report.write {
        report.events.push(Note {
            warning: true,
            reason: reason::FETCH_FAILED,
            text: message,
        });
    }
}

fn finished(
    report: &mut Report,
    previous: &CatalogSourceStatus,
    synced: &Synced<'_>,
    generation: Option<i64>,
) {
    let status = &mut report.status;
    let plan = synced.plan;
    set_entries(
        status,
        &EntryReport {
            diagnostics: synced.diagnostics,
            plan,
            managed: synced.managed,
            applied: synced.applied(),
            invalid_files: synced.invalid_files,
        },
    );
    let errors: Vec<String> = synced.errors.iter().map(ToString::to_string).collect();
    let (ready, reason, message) =
        ready_condition(&errors, plan, synced.diagnostics, synced.revision);
    set_progress(
        &mut status.conditions,
        (ready, reason, &message),
        plan,
        generation,
    );
    if ready && let Some((error, failures)) = synced.failing_fetch {
        fetch_failed(
            &mut status.conditions,
            &error.to_string(),
            failures,
            generation,
        );
    }
    let revision = synced.revision;
    let newly_applied =
        synced.errors.is_empty() && previous.last_applied_revision.as_deref() != Some(revision);
    if synced.errors.is_empty() {
        status.last_applied_revision = Some(revision.to_string());
    }
    if synced.writes() > 0 || newly_applied {
        push_history(&mut status.history, record(synced));
    }
    report.newly_applied = newly_applied;
    if synced.writes() > 0 {
        report.events.push(Note {
            warning: false,
            reason: reason::SYNCED,
            text: format!(
                "revision {}: {} created, {} updated, {} pruned",
                short(revision),
                synced.created,
                synced.updated,
                synced.pruned
            ),
        });
    }
    if !ready && ready_message(previous) != Some(message.as_str()) {
        report.events.push(Note {
            warning: true,
            reason,
            text: message,
        });
    }
    let state = if ready {
        CommitState::Success
    } else {
        CommitState::Failure
    };
    report.commit = Some((state, commit_description(synced)));
}

/// Ready, Reconciling and Stalled of a finished sync.
fn set_progress(
    conditions: &mut Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
    (ready, reason, message): (bool, &'static str, &str),
    plan: &Plan,
    generation: Option<i64>,
) {
    set_condition(
        conditions,
        condition::READY,
        ready,
        reason,
        message,
        generation,
    );
    let waiting = plan.blocked.is_some();
    let (reconciling, text) = match waiting {
        true => (reason::WAITING_FOR_APPROVAL, "deletions wait for approval"),
        false => (reason::IDLE, "in sync with the fetched revision"),
    };
    set_condition(
        conditions,
        condition::RECONCILING,
        false,
        reconciling,
        text,
        generation,
    );
    let (stalled, text) = match waiting {
        true => (reason, message),
        false => (reason::PROGRESSING, ""),
    };
    set_condition(
        conditions,
        condition::STALLED,
        waiting,
        stalled,
        text,
        generation,
    );
}

fn record(synced: &Synced<'_>) -> SyncRecord {
    SyncRecord {
        revision: synced.revision.to_string(),
        time: Some(Time(synced.now)),
        created: synced.created as i32,
        updated: synced.updated as i32,
        pruned: synced.pruned as i32,
        duration_ms: synced.elapsed.as_millis() as i64,
    }
}

/// The commit-status description: what the revision came to.
fn commit_description(synced: &Synced<'_>) -> String {
    let plan = synced.plan;
    format!(
        "{} applied, {} invalid, {} conflicts{}",
        synced.applied(),
        synced.invalid_files,
        plan.conflicts.len(),
        if plan.blocked.is_some() {
            ", deletions awaiting approval"
        } else {
            ""
        }
    )
}

#[cfg(test)]
#[path = "outcome_tests.rs"]
mod tests;
