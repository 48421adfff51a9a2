use super::*;
use crate::git::SourceError;
use crate::sync::plan::Blocked;

const REV: &str = "0123456789abcdef0123456789abcdef01234567";

fn found() -> Findings {
    Findings {
        generation: Some(3),
        revision: Some(REV.into()),
        ..Findings::default()
    }
}

fn cond<'a>(s: &'a CatalogSourceStatus, ty: &str) -> (&'a str, &'a str, &'a str) {
    let c = s.conditions.iter().find(|c| c.type_ == ty).unwrap();
    (c.status.as_str(), c.reason.as_str(), c.message.as_str())
}

fn synced<'a>(plan: &'a Plan, errors: &'a [WriteError], created: usize) -> Synced<'a> {
    Synced {
        revision: REV,
        plan,
        diagnostics: &[],
        managed: &[],
        created,
        updated: 0,
        pruned: 0,
        errors,
        invalid_files: 0,
        failing_fetch: None,
        now: jiff::Timestamp::UNIX_EPOCH,
        elapsed: Duration::from_millis(7),
    }
}

fn timeout() -> FetchError {
    FetchError::Git(SourceError::Timeout {
        url: "git://example/c.git".into(),
        seconds: 2,
    })
}

#[test]
fn a_finished_sync_is_ready_recorded_announced_and_reported_to_the_forge() {
    let plan = Plan {
        managed: 2,
        unchanged: vec!["b".into()],
        ..Plan::default()
    };
    let report = report(
        &CatalogSourceStatus::default(),
        &found(),
        &Outcome::Synced(synced(&plan, &[], 1)),
    );
    let s = &report.status;
    assert_eq!(
        cond(s, "Ready"),
        ("True", "Synced", "revision 0123456789ab applied: 2 entries")
    );
    assert_eq!(
        cond(s, "Reconciling"),
        ("False", "Idle", "in sync with the fetched revision")
    );
    assert_eq!(cond(s, "Stalled"), ("False", "Progressing", ""));
    assert_eq!(s.observed_generation, Some(3));
    assert_eq!(s.last_applied_revision.as_deref(), Some(REV));
    assert_eq!(s.last_fetched_revision.as_deref(), Some(REV));
    assert_eq!(s.history.len(), 1);
    assert_eq!((s.history[0].created, s.history[0].duration_ms), (1, 7));
    assert!(report.write && report.newly_applied);
    assert_eq!(
        report.events,
        vec![Note {
            warning: false,
            reason: "Synced",
            text: "revision 0123456789ab: 1 created, 0 updated, 0 pruned".into()
        }]
    );
    assert_eq!(
        report.commit,
        Some((
            CommitState::Success,
            "2 applied, 0 invalid, 0 conflicts".into()
        ))
    );
    // The same revision again, nothing written: no history, no Event, same status.
    let resync = Plan {
        managed: 2,
        unchanged: vec!["a".into(), "b".into()],
        ..Plan::default()
    };
    let again = super::report(s, &found(), &Outcome::Synced(synced(&resync, &[], 0)));
    assert_eq!(&again.status, s);
    assert!(again.events.is_empty() && !again.newly_applied);
}

#[test]
fn held_deletions_stall_and_wait_for_approval_and_warn_once() {
    let plan = Plan {
        blocked: Some(Blocked {
            reason: "DeletionBudgetExceeded",
            message: "would delete 9 entries".into(),
            held: vec![],
        }),
        ..Plan::default()
    };
    let first = report(
        &CatalogSourceStatus::default(),
        &found(),
        &Outcome::Synced(synced(&plan, &[], 0)),
    );
    let s = &first.status;
    assert_eq!(
        cond(s, "Ready"),
        ("False", "DeletionBudgetExceeded", "would delete 9 entries")
    );
    assert_eq!(cond(s, "Reconciling").1, "WaitingForApproval");
    assert_eq!(
        cond(s, "Stalled"),
        ("True", "DeletionBudgetExceeded", "would delete 9 entries")
    );
    assert_eq!(first.events.len(), 1);
    assert!(first.events[0].warning);
    assert_eq!(
        first.commit.as_ref().map(|c| c.0),
        Some(CommitState::Failure)
    );
    let again = report(s, &found(), &Outcome::Synced(synced(&plan, &[], 0)));
    assert!(
        again.events.is_empty(),
        "the same message is not announced twice"
    );
}

#[test]
fn fetch_failures_are_written_when_new_or_newly_stalled_and_keep_the_applied_revision() {
    let error = timeout();
    let mut found = found();
    found.revision = None;
    let applied = CatalogSourceStatus {
        last_applied_revision: Some(REV.into()),
        ..Default::default()
    };
    let first = report(
        &applied,
        &found,
        &Outcome::FetchFailed {
            error: &error,
            failures: 1,
        },
    );
    assert!(first.write);
    assert_eq!(cond(&first.status, "Ready").1, "FetchFailed");
    assert_eq!(first.status.last_applied_revision.as_deref(), Some(REV));
    assert_eq!(first.events.len(), 1);
    let second = report(
        &first.status,
        &found,
        &Outcome::FetchFailed {
            error: &error,
            failures: 2,
        },
    );
    assert!(
        !second.write && second.events.is_empty(),
        "only the counter changed"
    );
    let stalled = report(
        &second.status,
        &found,
        &Outcome::FetchFailed {
            error: &error,
            failures: 5,
        },
    );
    assert!(stalled.write);
    assert_eq!(cond(&stalled.status, "Stalled").1, "FetchFailing");
}

#[test]
fn drift_reverted_while_the_remote_fails_does_not_report_synced() {
    let (plan, error) = (Plan::default(), timeout());
    let mut between = synced(&plan, &[], 0);
    between.failing_fetch = Some((&error, 3));
    let report = report(
        &CatalogSourceStatus::default(),
        &found(),
        &Outcome::Synced(between),
    );
    assert_eq!(cond(&report.status, "Ready").1, "FetchFailed");
    assert_eq!(cond(&report.status, "Reconciling").1, "RetryingFetch");
}

#[test]
fn stops_stall_and_only_trust_refusals_are_announced() {
    let nff = Error::NonFastForward {
        message: "revision x does not descend".into(),
    };
    let mut found = found();
    found.signature = Signature::Verified("commit x is signed".into());
    let stopped = report(
        &CatalogSourceStatus::default(),
        &found,
        &Outcome::Stopped(&nff),
    );
    let s = &stopped.status;
    assert_eq!(
        cond(s, "Ready"),
        ("False", "NonFastForward", "revision x does not descend")
    );
    assert_eq!(cond(s, "Stalled").0, "True");
    assert_eq!(
        cond(s, "SourceVerified"),
        ("True", "Verified", "commit x is signed")
    );
    assert_eq!(stopped.events.len(), 1);
    assert_eq!(stopped.commit, None);
    let again = report(s, &found, &Outcome::Stopped(&nff));
    assert!(again.events.is_empty());

    let spec = Error::CrossNamespaceTarget {
        target: "b".into(),
        own: "a".into(),
    };
    let refused = report(
        &CatalogSourceStatus::default(),
        &found,
        &Outcome::Stopped(&spec),
    );
    assert_eq!(cond(&refused.status, "Ready").1, "CrossNamespaceTarget");
    assert!(
        refused.events.is_empty(),
        "a refused spec is on the status only"
    );
}

#[test]
fn suspension_and_signature_settings_show_in_the_conditions() {
    let mut found = found();
    found.signature = Signature::Off;
    let previous = CatalogSourceStatus {
        conditions: report(
            &CatalogSourceStatus::default(),
            &Findings {
                signature: Signature::Refused("Unsigned", "commit x is not signed".into()),
                ..Findings::default()
            },
            &Outcome::Suspended,
        )
        .status
        .conditions,
        ..Default::default()
    };
    assert_eq!(
        cond(&previous, "SourceVerified"),
        ("False", "Unsigned", "commit x is not signed")
    );
    assert_eq!(cond(&previous, "Reconciling").1, "Suspended");
    let off = report(&previous, &found, &Outcome::Suspended);
    assert!(
        off.status
            .conditions
            .iter()
            .all(|c| c.type_ != "SourceVerified")
    );
}

#[test]
fn the_failure_reason_labels_the_metric_as_the_ready_condition() {
    let (plan, error) = (Plan::default(), timeout());
    let fetch = Outcome::FetchFailed {
        error: &error,
        failures: 1,
    };
    assert_eq!(fetch.failure_reason(), Some("FetchFailed"));
    let refused = Error::NonFastForward {
        message: String::new(),
    };
    assert_eq!(
        Outcome::Stopped(&refused).failure_reason(),
        Some("NonFastForward")
    );
    assert_eq!(Outcome::Suspended.failure_reason(), None);
    assert_eq!(
        Outcome::Synced(synced(&plan, &[], 0)).failure_reason(),
        None
    );
}
