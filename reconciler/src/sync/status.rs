//! Building the CatalogSource status: conditions that keep their transition time while
//! unchanged, bounded history, invalid-entry and conflict lists (the first
//! [`MAX_LISTED`] with the total beside them), summary counts from the managed CatalogImages'
//! phases, and the fields its merge patch names. Nothing in it grows with the
//! catalog: a 100,000-entry source has a status of a few KiB.

use super::reason;
use crate::merge_patch::Fields;
use std::sync::Arc;

use catalog_api::Diagnostic;
use catalog_api::image::Phase;
use catalog_api::source::{
    CatalogSourceStatus, InvalidEntry, MAX_LISTED, SourceSummary, SyncRecord,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use super::live::LiveImage;
use super::plan::{Plan, short};

/// Longest message listed for an invalid entry: a parser's message may quote the file, and
/// the list must stay small whatever the files hold.
pub const MAX_MESSAGE_CHARS: usize = 200;
/// Syncs kept in `status.history`.
pub const HISTORY: usize = 5;

/// Sets a condition to True or False, now ([`catalog_api::conditions::set`]: the transition
/// time only moves when the status flips, so an unchanged sync produces an identical status
/// and no write).
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
) {
    let status = if status { "True" } else { "False" };
    let now = jiff::Timestamp::now();
    catalog_api::conditions::set(conditions, type_, status, reason, message, generation, now);
}

/// Removes a condition type (e.g. SourceVerified when verification is switched off).
pub fn remove_condition(conditions: &mut Vec<Condition>, type_: &str) {
    conditions.retain(|c| c.type_ != type_);
}

/// What a finished sync tells about its entries.
pub struct EntryReport<'a> {
    pub diagnostics: &'a [Diagnostic],
    pub plan: &'a Plan,
    /// The live CatalogImages this source manages, for the phase counts.
    pub managed: &'a [Arc<LiveImage>],
    /// Entries live as desired after the sync (created, updated or unchanged).
    pub applied: usize,
    /// Files that failed validation.
    pub invalid_files: usize,
}

/// Sets the summary, invalid entries and conflicts of `status` from a finished sync.
pub fn set_entries(status: &mut CatalogSourceStatus, report: &EntryReport<'_>) {
    status.invalid_entries = invalid_entries(report.diagnostics);
    status.invalid_entries_total = count(report.diagnostics.len());
    status.conflicts = first_sorted(&report.plan.conflicts, |a, b| {
        (&a.name, &a.path).cmp(&(&b.name, &b.path))
    })
    .into_iter()
    .cloned()
    .collect();
    status.conflicts_total = count(report.plan.conflicts.len());
    status.summary = Some(summary(
        report.managed,
        report.plan.managed,
        report.applied,
        report.invalid_files,
    ));
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The first [`MAX_LISTED`] items in `order`, without sorting the whole list.
fn first_sorted<T>(items: &[T], order: impl Fn(&T, &T) -> std::cmp::Ordering) -> Vec<&T> {
    let mut refs: Vec<&T> = items.iter().collect();
    if refs.len() > MAX_LISTED {
        refs.select_nth_unstable_by(MAX_LISTED, |a, b| order(a, b));
        refs.truncate(MAX_LISTED);
    }
    refs.sort_by(|a, b| order(a, b));
    refs
}

/// The first [`MAX_LISTED`] diagnostics by path and position, messages cut to
/// [`MAX_MESSAGE_CHARS`].
pub fn invalid_entries(diagnostics: &[Diagnostic]) -> Vec<InvalidEntry> {
    first_sorted(diagnostics, |a, b| {
        (&a.path, a.line, a.column).cmp(&(&b.path, b.line, b.column))
    })
    .into_iter()
    .map(|d| InvalidEntry {
        path: d.path.clone(),
        line: d.line,
        column: d.column,
        message: cut(&d.message, MAX_MESSAGE_CHARS),
    })
    .collect()
}

/// `text` up to `max` characters, `…` marking a cut.
fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
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
            reason::APPLY_FAILED,
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
        let adopt = plan
            .adopt
            .as_ref()
            .map(|hint| format!(" ({hint})"))
            .unwrap_or_default();
        return (
            false,
            reason::CONFLICT,
            format!("{n} entries conflict: {}{adopt}", list.join("; ")),
        );
    }
    if !diagnostics.is_empty() {
        let files: std::collections::BTreeSet<&str> =
            diagnostics.iter().map(|d| d.path.as_str()).collect();
        let list: Vec<String> = diagnostics.iter().take(3).map(|d| d.to_string()).collect();
        return (
            false,
            reason::INVALID_ENTRIES,
            format!(
                "revision {} applied except {} invalid file(s), whose previous entries are kept: {}",
                short(revision),
                files.len(),
                list.join("; ")
            ),
        );
    }
    let n = plan.managed;
    (
        true,
        reason::SYNCED,
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
        reason::FETCH_FAILED,
        &format!("{message} (the last applied revision stays applied; retrying)"),
        generation,
    );
    set_condition(
        conditions,
        condition::RECONCILING,
        true,
        reason::RETRYING_FETCH,
        &format!("fetch attempt {failures} failed; retrying with backoff"),
        generation,
    );
    let stalled = failures >= STALLED_AFTER_FAILURES;
    set_condition(
        conditions,
        condition::STALLED,
        stalled,
        if stalled {
            reason::FETCH_FAILING
        } else {
            reason::PROGRESSING
        },
        &format!("{failures} consecutive fetch failures"),
        generation,
    );
}

/// The fields the sync's status patches ([`crate::merge_patch::status`]) name: every status
/// field but `previews`, which only the preview runner writes; and `inventory`, the list of
/// every entry that older reconcilers wrote, cleared wherever the API server has not pruned it.
pub const PATCH_FIELDS: Fields<'static> = Fields {
    others: &["previews"],
    retired: &["inventory"],
};

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
