//! Building the CatalogSource status: conditions that keep their transition time while
//! unchanged, bounded history and invalid-entry lists, summary counts from the managed
//! CatalogImages' phases, and the merge patch that also clears emptied fields.

use std::sync::Arc;

use catalog_api::Diagnostic;
use catalog_api::image::Phase;
use catalog_api::source::{CatalogSourceStatus, InvalidEntry, SourceSummary, SyncRecord};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::live::LiveImage;
use super::plan::{Plan, short};

/// Most invalid entries listed in the status (the rest are counted in the summary).
pub const MAX_INVALID_ENTRIES: usize = 50;
/// Syncs kept in `status.history`.
pub const HISTORY: usize = 5;

/// Sets a condition; returns whether anything changed. The transition time only moves when
/// the status flips, so an unchanged sync produces an identical status (and no write).
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
) {
    let status = if status { "True" } else { "False" };
    if let Some(existing) = conditions.iter_mut().find(|c| c.type_ == type_) {
        if existing.status != status {
            existing.last_transition_time = Time(jiff::Timestamp::now());
        }
        existing.status = status.into();
        existing.reason = reason.into();
        existing.message = message.into();
        existing.observed_generation = generation;
        return;
    }
    conditions.push(Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message: message.into(),
        observed_generation: generation,
        last_transition_time: Time(jiff::Timestamp::now()),
    });
}

/// Removes a condition type (e.g. SourceVerified when verification is switched off).
pub fn remove_condition(conditions: &mut Vec<Condition>, type_: &str) {
    conditions.retain(|c| c.type_ != type_);
}

/// Invalid entries from validation diagnostics, bounded.
pub fn invalid_entries(diagnostics: &[Diagnostic]) -> Vec<InvalidEntry> {
    diagnostics
        .iter()
        .take(MAX_INVALID_ENTRIES)
        .map(|d| InvalidEntry {
            path: d.path.clone(),
            line: d.line,
            column: d.column,
            message: d.message.clone(),
        })
        .collect()
}

/// Adds a sync record, newest first, keeping [`HISTORY`].
pub fn push_history(history: &mut Vec<SyncRecord>, record: SyncRecord) {
    history.insert(0, record);
    history.truncate(HISTORY);
}

/// Counts for `status.summary`; `managed` are the live CatalogImages carrying this source's label.
pub fn summary(
    managed: &[Arc<LiveImage>],
    entries: usize,
    applied: usize,
    invalid: usize,
) -> SourceSummary {
    let mut s = SourceSummary {
        entries: entries as i32,
        applied: applied as i32,
        invalid: invalid as i32,
        ..Default::default()
    };
    for object in managed {
        match object.phase {
            Some(Phase::Available) => s.available += 1,
            Some(Phase::Unavailable) => s.unavailable += 1,
            Some(Phase::Failed) => s.failed += 1,
            _ => s.pending += 1,
        }
    }
    s
}

/// The Ready condition of a finished sync: (status, reason, message), worst problem first.
pub fn ready_condition(
    errors: &[String],
    plan: &Plan,
    diagnostics: &[Diagnostic],
    revision: &str,
) -> (bool, &'static str, String) {
    if !errors.is_empty() {
        let first: Vec<&str> = errors.iter().take(3).map(String::as_str).collect();
        return (
            false,
            "ApplyFailed",
            format!(
                "{} of the writes failed: {}",
                errors.len(),
                first.join("; ")
            ),
        );
    }
    if let Some(blocked) = &plan.blocked {
        return (false, blocked.reason, blocked.message.clone());
    }
    if !plan.conflicts.is_empty() {
        let list: Vec<String> = plan
            .conflicts
            .iter()
            .take(3)
            .map(|c| format!("{} ({}): {}", c.name, c.path, c.message))
            .collect();
        let n = plan.conflicts.len();
        return (
            false,
            "Conflict",
            format!("{n} entries conflict: {}", list.join("; ")),
        );
    }
    if !diagnostics.is_empty() {
        let files: std::collections::BTreeSet<&str> =
            diagnostics.iter().map(|d| d.path.as_str()).collect();
        let list: Vec<String> = diagnostics.iter().take(3).map(|d| d.to_string()).collect();
        return (
            false,
            "InvalidEntries",
            format!(
                "revision {} applied except {} invalid file(s), whose previous entries are kept: {}",
                short(revision),
                files.len(),
                list.join("; ")
            ),
        );
    }
    let n = plan.inventory.len();
    (
        true,
        "Synced",
        format!("revision {} applied: {n} entries", short(revision)),
    )
}

/// Consecutive fetch failures after which a source is Stalled.
pub const STALLED_AFTER_FAILURES: u32 = 5;

/// The conditions of a failed fetch: Ready=False FetchFailed (the applied revision stays),
/// Reconciling while retrying, Stalled after [`STALLED_AFTER_FAILURES`] in a row.
pub fn fetch_failed(
    conditions: &mut Vec<Condition>,
    message: &str,
    failures: u32,
    generation: Option<i64>,
) {
    use catalog_api::source::condition;
    set_condition(
        conditions,
        condition::READY,
        false,
        "FetchFailed",
        &format!("{message} (the last applied revision stays applied; retrying)"),
        generation,
    );
    set_condition(
        conditions,
        condition::RECONCILING,
        true,
        "RetryingFetch",
        &format!("fetch attempt {failures} failed; retrying with backoff"),
        generation,
    );
    let stalled = failures >= STALLED_AFTER_FAILURES;
    set_condition(
        conditions,
        condition::STALLED,
        stalled,
        if stalled {
            "FetchFailing"
        } else {
            "Progressing"
        },
        &format!("{failures} consecutive fetch failures"),
        generation,
    );
}

/// Merge patch body for the status subresource. Fields that became empty are sent as
/// `null`, because a merge patch leaves absent fields as they were. Serialized straight from
/// the status, with no JSON tree in between: a large source's inventory has 10,000 items.
pub fn merge_patch(status: &CatalogSourceStatus) -> StatusPatch<'_> {
    StatusPatch {
        status: NullableStatus(status),
    }
}

#[derive(Debug, serde::Serialize)]
pub struct StatusPatch<'a> {
    status: NullableStatus<'a>,
}

/// Every field of the status, empty ones as `null`.
#[derive(Debug)]
pub struct NullableStatus<'a>(&'a CatalogSourceStatus);

impl serde::Serialize for NullableStatus<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        fn list<T>(items: &[T]) -> Option<&[T]> {
            (!items.is_empty()).then_some(items)
        }
        let s = self.0;
        let mut map = serializer.serialize_map(Some(12))?;
        map.serialize_entry("observedGeneration", &s.observed_generation)?;
        map.serialize_entry("conditions", &list(&s.conditions))?;
        map.serialize_entry("lastFetchedRevision", &s.last_fetched_revision)?;
        map.serialize_entry("lastAppliedRevision", &s.last_applied_revision)?;
        map.serialize_entry("lastAttemptedRevision", &s.last_attempted_revision)?;
        map.serialize_entry("lastHandledReconcileAt", &s.last_handled_reconcile_at)?;
        map.serialize_entry("inventory", &list(&s.inventory))?;
        map.serialize_entry("summary", &s.summary)?;
        map.serialize_entry("invalidEntries", &list(&s.invalid_entries))?;
        map.serialize_entry("conflicts", &list(&s.conflicts))?;
        map.serialize_entry("webhookPath", &s.webhook_path)?;
        map.serialize_entry("history", &list(&s.history))?;
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_keep_their_transition_time_while_status_is_unchanged() {
        let mut c = Vec::new();
        set_condition(&mut c, "Ready", true, "Synced", "ok", Some(1));
        let first = c[0].last_transition_time.clone();
        std::thread::sleep(std::time::Duration::from_millis(2));
        set_condition(&mut c, "Ready", true, "Synced", "ok again", Some(1));
        assert_eq!(c[0].last_transition_time, first);
        set_condition(&mut c, "Ready", false, "FetchFailed", "x", Some(1));
        assert_ne!(c[0].last_transition_time, first);
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn history_is_bounded_newest_first() {
        let mut h = Vec::new();
        for i in 0..7 {
            push_history(
                &mut h,
                SyncRecord {
                    revision: i.to_string(),
                    ..Default::default()
                },
            );
        }
        assert_eq!(h.len(), HISTORY);
        assert_eq!(h[0].revision, "6");
    }

    #[test]
    fn fetch_failures_stall_the_source_after_five_in_a_row() {
        let status_of = |c: &[Condition], t: &str| {
            c.iter()
                .find(|c| c.type_ == t)
                .map(|c| (c.status.clone(), c.reason.clone()))
                .unwrap()
        };
        let mut c = Vec::new();
        fetch_failed(&mut c, "fetching git://x timed out after 2s", 1, Some(1));
        assert_eq!(
            status_of(&c, "Ready"),
            ("False".into(), "FetchFailed".into())
        );
        assert_eq!(
            status_of(&c, "Stalled"),
            ("False".into(), "Progressing".into())
        );
        fetch_failed(&mut c, "fetching git://x timed out after 2s", 5, Some(1));
        assert_eq!(
            status_of(&c, "Stalled"),
            ("True".into(), "FetchFailing".into())
        );
        let ready = c.iter().find(|c| c.type_ == "Ready").unwrap();
        assert!(ready.message.contains("stays applied"), "{}", ready.message);
    }

    #[test]
    fn cleared_fields_are_nulled_and_set_ones_sent_as_they_serialize() {
        let patch = serde_json::to_value(merge_patch(&CatalogSourceStatus::default())).unwrap();
        let fields = patch["status"].as_object().unwrap();
        assert_eq!(fields.len(), 12);
        assert!(fields.values().all(serde_json::Value::is_null), "{patch}");

        let status = CatalogSourceStatus {
            observed_generation: Some(3),
            inventory: vec![catalog_api::source::InventoryEntry {
                name: "a".into(),
                path: "env/a.yaml".into(),
            }],
            webhook_path: Some("/hook/ns/dev".into()),
            ..Default::default()
        };
        let patch = serde_json::to_value(merge_patch(&status)).unwrap();
        let mut expected = serde_json::to_value(&status).unwrap();
        for (key, value) in patch["status"].as_object().unwrap() {
            if value.is_null() {
                assert!(expected.get(key).is_none(), "{key} is set but sent as null");
            } else {
                assert_eq!(
                    expected.as_object_mut().unwrap().remove(key).as_ref(),
                    Some(value)
                );
            }
        }
        assert_eq!(expected, serde_json::json!({}), "every set field is sent");
    }
}
