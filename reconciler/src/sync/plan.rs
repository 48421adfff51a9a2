//! The pure half of a sync: from the desired entries, the live objects and the source's
//! settings, decide what to create, update, prune, keep and report. No I/O, so every rule
//! (ownership, conflicts, broken files, the deletion budget) is unit-tested without a cluster.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use catalog_api::CatalogImage;
use catalog_api::labels::{self, CATALOG_SOURCE, SOURCE_NAMESPACE, SOURCE_PATH, SOURCE_REVISION};
use catalog_api::source::ConflictEntry;
use catalog_api::validate::Entry;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::approval::{Approval, approval, how_to_approve, refusal_note};
use super::live::LiveImage;

/// The revision planned for entries read from a working tree, which has no commit: the sync's
/// local mode (`--local-source`) and `caib catalog diff` (no commit to approve deletions for).
pub const WORKING_TREE: &str = "local-working-tree";

/// What the plan needs to know about the source.
#[derive(Clone, Debug)]
pub struct PlanInput<'a> {
    /// Label value identifying the source (`catalog-source` label): its name.
    pub source: &'a str,
    /// The source's own namespace (`source-namespace` annotation).
    pub source_namespace: &'a str,
    /// Namespace the entries are applied to.
    pub namespace: &'a str,
    /// Commit (or `local` marker) being applied.
    pub revision: &'a str,
    /// Valid entries of the revision.
    pub desired: &'a [Entry],
    /// Files with problems: entries they used to define are kept as they are live.
    pub broken_paths: &'a BTreeSet<String>,
    /// Names other sources claim in the same namespace.
    pub contested: &'a BTreeSet<String>,
    pub prune: bool,
    pub max_deletions: &'a IntOrString,
    pub allow_empty: bool,
    /// Value of the approve-deletions annotation (only the full revision id approves).
    pub approved_revision: Option<&'a str>,
}

/// One object to server-side apply. The object itself is built by [`ApplyOp::object`] only
/// when it is sent: an initial sync of 10,000 entries would otherwise hold 10,000 full copies
/// of the manifests at once.
#[derive(Clone, Debug, PartialEq)]
pub struct ApplyOp {
    pub name: String,
    pub path: String,
    pub create: bool,
    /// Index of the entry in [`PlanInput::desired`].
    pub entry: usize,
}

impl ApplyOp {
    /// The object to apply (see [`desired_object`]), from the same inputs the plan was made of.
    pub fn object(&self, input: &PlanInput<'_>) -> CatalogImage {
        desired_object(&input.desired[self.entry], input)
    }
}

/// Why deletions were held back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocked {
    /// CamelCase condition reason.
    pub reason: &'static str,
    pub message: String,
    /// Names whose deletion waits for approval.
    pub held: Vec<String>,
}

/// The decisions of one sync.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    pub apply: Vec<ApplyOp>,
    /// Entries already live exactly as desired.
    pub unchanged: Vec<String>,
    pub prune: Vec<String>,
    /// Live entries of broken files, left as they are.
    pub kept_broken: Vec<String>,
    pub conflicts: Vec<ConflictEntry>,
    pub blocked: Option<Blocked>,
    /// How many entries this source manages once the plan is applied (desired owned + kept
    /// + held): a count, because the entries themselves are the labelled CatalogImages.
    pub managed: usize,
    /// How to adopt the unowned objects among the conflicts, when there are some.
    pub adopt: Option<String>,
}

#[cfg(test)]
impl Plan {
    pub fn creates(&self) -> usize {
        self.apply.iter().filter(|o| o.create).count()
    }
    pub fn updates(&self) -> usize {
        self.apply.iter().filter(|o| !o.create).count()
    }
}

/// Labels and annotations the sync wants on an entry's object (the file's own, the
/// spec-derived labels, the source label and the traceability annotations).
fn desired_meta(
    entry: &Entry,
    input: &PlanInput<'_>,
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let meta = &entry.image.metadata;
    let mut labels_map = meta.labels.clone().unwrap_or_default();
    labels_map.extend(labels::spec_labels(&entry.image.spec));
    labels_map.insert(CATALOG_SOURCE.into(), input.source.into());
    let mut annotations = meta.annotations.clone().unwrap_or_default();
    annotations.insert(SOURCE_NAMESPACE.into(), input.source_namespace.into());
    annotations.insert(SOURCE_REVISION.into(), input.revision.into());
    annotations.insert(SOURCE_PATH.into(), entry.path.clone());
    (labels_map, annotations)
}

/// The object the sync wants live for an entry: the file's manifest in the target namespace,
/// with the spec-derived labels, the source label and the traceability annotations.
pub fn desired_object(entry: &Entry, input: &PlanInput<'_>) -> CatalogImage {
    let (labels_map, annotations) = desired_meta(entry, input);
    let mut object = entry.image.to_object();
    object.metadata.namespace = Some(input.namespace.to_string());
    object.metadata.labels = Some(labels_map);
    object.metadata.annotations = Some(annotations);
    object
}

/// Label keys the sync owns: a live one the desired object lacks is removed.
pub(super) fn is_managed_label(key: &str) -> bool {
    key.starts_with(labels::PREFIX) || key.starts_with(labels::TARGET_PREFIX)
}

/// Whether the live object differs from the desired one in anything the sync owns. The
/// revision annotation is ignored: an entry untouched by a commit is not rewritten just to
/// carry the new SHA (a one-file commit is one write). Compared on the parts, so unchanged
/// entries (nearly all of them on a resync) never cost a whole object.
fn differs_parts(
    spec: &catalog_api::CatalogImageSpec,
    want_labels: &BTreeMap<String, String>,
    want_annotations: &BTreeMap<String, String>,
    live: &LiveImage,
) -> bool {
    if !live.spec_equals(spec) {
        return true;
    }
    if want_labels
        .iter()
        .any(|(k, v)| live.label(k) != Some(v.as_str()))
    {
        return true;
    }
    // Our label keys must not linger (a removed target must lose its label).
    if live
        .labels()
        .any(|(k, _)| is_managed_label(k) && !want_labels.contains_key(k))
    {
        return true;
    }
    want_annotations
        .iter()
        .any(|(k, v)| k != SOURCE_REVISION && live.annotation(k) != Some(v.as_str()))
}

/// Deletion budget: an absolute number, or a percentage of the entries managed before.
pub fn deletion_budget(max: &IntOrString, managed_before: usize) -> usize {
    match max {
        IntOrString::Int(n) => (*n).max(0) as usize,
        IntOrString::String(s) => {
            let s = s.trim();
            if let Some(percent) = s.strip_suffix('%') {
                let p: f64 = percent.trim().parse().unwrap_or(0.0);
                ((managed_before as f64) * p.clamp(0.0, 100.0) / 100.0).floor() as usize
            } else {
                s.parse()
                    .unwrap_or(catalog_api::source::DEFAULT_MAX_DELETIONS as usize)
            }
        }
    }
}

/// Why an existing object of the entry's name is left alone. Short, because up to
/// [`MAX_LISTED`](catalog_api::source::MAX_LISTED) of them are listed in the status; how to
/// adopt an unowned object is said once, by [`adopt_hint`].
fn conflict_message(owner: Option<(Option<&str>, &str)>) -> String {
    match owner {
        Some((Some(ns), other)) => {
            format!("managed by CatalogSource {ns}/{other}; it is left as it is")
        }
        Some((None, _)) => format!(
            "carries the {CATALOG_SOURCE} label but no {SOURCE_NAMESPACE} annotation, so no source owns it; it is never taken over"
        ),
        None => "exists and is not managed by a CatalogSource; it is never taken over".into(),
    }
}

/// How to adopt a CatalogImage no source owns, for the Ready message.
pub fn adopt_hint(input: &PlanInput<'_>) -> String {
    format!(
        "to adopt an existing CatalogImage, label it {CATALOG_SOURCE}={} and annotate it {SOURCE_NAMESPACE}={}, or delete it",
        input.source, input.source_namespace
    )
}

/// Plans one sync. `live` are the CatalogImages of the target namespace (any owner).
pub fn plan(input: &PlanInput<'_>, live: &[Arc<LiveImage>]) -> Plan {
    let mut plan = Plan::default();
    let live_by_name: BTreeMap<&str, &LiveImage> =
        live.iter().map(|o| (&*o.name, o.as_ref())).collect();
    let mut wanted: BTreeSet<&str> = BTreeSet::new();

    for (index, entry) in input.desired.iter().enumerate() {
        let name = entry.name();
        wanted.insert(name);
        let existing = live_by_name.get(name);
        let owner = existing.map(|o| o.owner());
        let mine = existing.is_some_and(|o| o.managed_by(input.source_namespace, input.source));
        if input.contested.contains(name) {
            plan.conflicts.push(ConflictEntry {
                name: name.into(),
                path: entry.path.clone(),
                message: "another CatalogSource declares an entry with this name in the same namespace; remove it from one of them".into(),
            });
            plan.managed += usize::from(mine);
            continue;
        }
        if let Some(owner) = owner
            && !mine
        {
            if owner.is_none_or(|(ns, _)| ns.is_none()) {
                plan.adopt = Some(adopt_hint(input));
            }
            plan.conflicts.push(ConflictEntry {
                name: name.into(),
                path: entry.path.clone(),
                message: conflict_message(owner),
            });
            continue;
        }
        plan.managed += 1;
        if let Some(live) = existing {
            let (want_labels, want_annotations) = desired_meta(entry, input);
            if !differs_parts(&entry.image.spec, &want_labels, &want_annotations, live) {
                plan.unchanged.push(name.into());
                continue;
            }
        }
        plan.apply.push(ApplyOp {
            name: name.into(),
            path: entry.path.clone(),
            create: existing.is_none(),
            entry: index,
        });
    }

    let mut deletions = Vec::new();
    let mut managed_before = 0usize;
    for (name, live) in &live_by_name {
        if !live.managed_by(input.source_namespace, input.source) {
            continue;
        }
        managed_before += 1;
        if wanted.contains(name) {
            continue;
        }
        // Every object the sync writes carries its file's path: an entry of a broken file
        // is recognised by it.
        let path = live.annotation(SOURCE_PATH).unwrap_or_default();
        if input.broken_paths.contains(path) {
            plan.kept_broken.push((*name).to_string());
            plan.managed += 1;
            continue;
        }
        if input.contested.contains(*name) || !input.prune {
            plan.managed += 1;
            continue;
        }
        deletions.push((*name).to_string());
    }

    if let Some(mut blocked) = held_back(input, &deletions, managed_before) {
        plan.managed += deletions.len();
        blocked.held = std::mem::take(&mut deletions);
        plan.blocked = Some(blocked);
    }
    plan.prune = deletions;
    plan
}

/// Why `deletions` wait for approval (an emptied revision, or more than `maxDeletions`), or
/// `None` when they may go.
fn held_back(
    input: &PlanInput<'_>,
    deletions: &[String],
    managed_before: usize,
) -> Option<Blocked> {
    let approval = approval(input.approved_revision, input.revision);
    if deletions.is_empty() || approval == Approval::Approved {
        return None;
    }
    let budget = deletion_budget(input.max_deletions, managed_before);
    let remaining = managed_before - deletions.len();
    let how = format!(
        "{}{}",
        refusal_note(labels::APPROVE_DELETIONS, approval),
        how_to_approve(
            input.source_namespace,
            input.source,
            labels::APPROVE_DELETIONS,
            input.revision
        )
    );
    let revision = short(input.revision);
    if remaining == 0 && !input.allow_empty {
        return Some(Blocked {
            reason: super::reason::EMPTY_REVISION_BLOCKED,
            message: format!(
                "revision {revision} would delete all {} entries of this source; nothing was deleted ({how}, or set spec.allowEmpty)",
                deletions.len()
            ),
            held: Vec::new(),
        });
    }
    (deletions.len() > budget).then(|| Blocked {
        reason: super::reason::DELETION_BUDGET_EXCEEDED,
        message: format!(
            "revision {revision} would delete {} entries, over maxDeletions ({budget}); nothing was deleted ({how})",
            deletions.len()
        ),
        held: Vec::new(),
    })
}

/// What decides whether a sync fetches the remote.
#[derive(Clone, Debug, Default)]
pub struct FetchState {
    /// A webhook, the reconcile-requested-at annotation, or the interval timer asked.
    pub requested: bool,
    /// The spec changed since the last fetch attempt.
    pub spec_changed: bool,
    /// The last fetch failed and its retry time has not come.
    pub backing_off: bool,
    /// A revision was fetched before.
    pub fetched: bool,
    pub since_last: Option<std::time::Duration>,
    pub interval: std::time::Duration,
}

/// Whether to fetch before planning. Other triggers (drift, status events) plan against the
/// revision fetched last, and a failing remote is only asked again at its backoff time.
pub fn fetch_due(s: &FetchState) -> bool {
    if s.requested || s.spec_changed {
        return true;
    }
    if s.backing_off {
        return false;
    }
    !s.fetched || s.since_last.is_none_or(|t| t >= s.interval)
}

/// First 12 characters of a SHA, for messages.
pub fn short(revision: &str) -> &str {
    &revision[..revision.len().min(12)]
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
