//! What `caib catalog diff` shows: the sync's own plan ([`catalog_reconciler::sync::plan`])
//! of the environment against the live CatalogImages, for the CatalogSource that syncs it,
//! rendered as unified diffs of what the repository controls.
//!
//! Using the planner means the diff and the sync cannot disagree: an object no source owns
//! (made by hand) is never listed as removed, because the sync never prunes it; it is a
//! conflict, as the sync reports it. Deletions the sync would hold back (`maxDeletions`, an
//! emptied revision) are reported as held, not removed.

use std::collections::BTreeMap;
use std::sync::Arc;

use catalog_api::labels::{PREFIX, TARGET_PREFIX};
use catalog_api::source::{ConflictEntry, DEFAULT_MAX_DELETIONS};
use catalog_api::validate::Report;
use catalog_api::{CatalogImage, CatalogImageSpec, CatalogSource};
use catalog_reconciler::sync::live::LiveImage;
use catalog_reconciler::sync::plan::{Blocked, PlanInput, plan};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;

use crate::error::Result;

/// Annotations written by tools rather than by the repository's author.
const TOOL_ANNOTATIONS: &[&str] = &["kubectl.kubernetes.io/last-applied-configuration"];

/// The source the plan is made for: the CatalogSource syncing the environment, or (when
/// none does yet) a new one named after the environment, with the defaults.
#[derive(Clone, Debug)]
pub struct PlannedSource {
    pub name: String,
    pub namespace: String,
    pub prune: bool,
    pub max_deletions: IntOrString,
    pub allow_empty: bool,
    /// The approve-deletions annotation.
    pub approved_revision: Option<String>,
}

impl PlannedSource {
    pub fn of(source: &CatalogSource) -> PlannedSource {
        let annotations = source.metadata.annotations.as_ref();
        PlannedSource {
            name: source.metadata.name.clone().unwrap_or_default(),
            namespace: source.metadata.namespace.clone().unwrap_or_default(),
            prune: source.spec.prune,
            max_deletions: source.spec.max_deletions.clone(),
            allow_empty: source.spec.allow_empty,
            approved_revision: annotations
                .and_then(|a| a.get(catalog_api::labels::APPROVE_DELETIONS))
                .cloned(),
        }
    }

    /// A source that does not exist yet, in `namespace`.
    pub fn new(name: &str, namespace: &str) -> PlannedSource {
        PlannedSource {
            name: name.to_string(),
            namespace: namespace.to_string(),
            prune: true,
            max_deletions: IntOrString::Int(DEFAULT_MAX_DELETIONS),
            allow_empty: false,
            approved_revision: None,
        }
    }
}

/// What the repository controls of an entry, in a stable order for diffing.
#[derive(Serialize, PartialEq)]
struct Comparable<'a> {
    metadata: ComparableMeta,
    spec: &'a CatalogImageSpec,
}

#[derive(Serialize, PartialEq)]
struct ComparableMeta {
    name: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
}

/// Keys the sync or the controllers write: everything under our prefixes.
fn is_derived(key: &str) -> bool {
    key.starts_with(&format!("{PREFIX}/"))
        || key.starts_with(TARGET_PREFIX)
        || TOOL_ANNOTATIONS.contains(&key)
}

fn comparable_yaml(image: &CatalogImage) -> Result<String> {
    let user = |map: &Option<BTreeMap<String, String>>| {
        map.iter()
            .flatten()
            .filter(|(k, _)| !is_derived(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    crate::output::to_yaml(&Comparable {
        metadata: ComparableMeta {
            name: image.metadata.name.clone().unwrap_or_default(),
            labels: user(&image.metadata.labels),
            annotations: user(&image.metadata.annotations),
        },
        spec: &image.spec,
    })
}

/// One entry the next sync changes.
#[derive(Debug, PartialEq)]
pub enum Change {
    /// In the repository only: the sync creates it.
    Added {
        name: String,
        path: String,
        yaml: String,
    },
    /// In both, different: live (old) → repository (new).
    Changed {
        name: String,
        path: String,
        live: String,
        desired: String,
    },
    /// Managed by the source and gone from the repository: the sync prunes it.
    Removed { name: String, yaml: String },
}

impl Change {
    fn name(&self) -> &str {
        match self {
            Change::Added { name, .. } | Change::Changed { name, .. } => name,
            Change::Removed { name, .. } => name,
        }
    }
}

/// The plan, as the diff shows it.
#[derive(Debug, Default)]
pub struct Comparison {
    /// By name.
    pub changes: Vec<Change>,
    /// Entries the sync leaves alone: another source's or nobody's object of that name.
    pub conflicts: Vec<ConflictEntry>,
    /// How to adopt the unowned objects among the conflicts.
    pub adopt: Option<String>,
    /// Deletions the sync holds back, and why.
    pub held: Option<Blocked>,
}

/// Plans `report` (one environment, validated) against the `live` CatalogImages of
/// `namespace` as the sync of `source` would at `revision`.
pub fn compare(
    report: &Report,
    live: &[CatalogImage],
    source: &PlannedSource,
    namespace: &str,
    revision: &str,
) -> Result<Comparison> {
    let broken = report
        .broken_paths()
        .into_iter()
        .map(str::to_string)
        .collect();
    let contested = Default::default();
    let input = PlanInput {
        source: &source.name,
        source_namespace: &source.namespace,
        namespace,
        revision,
        desired: &report.entries,
        broken_paths: &broken,
        contested: &contested,
        prune: source.prune,
        max_deletions: &source.max_deletions,
        allow_empty: source.allow_empty,
        approved_revision: source.approved_revision.as_deref(),
    };
    let views: Vec<Arc<LiveImage>> = live
        .iter()
        .map(|o| Arc::new(LiveImage::from_object(o)))
        .collect();
    let plan = plan(&input, &views);
    let by_name: BTreeMap<&str, &CatalogImage> = live
        .iter()
        .map(|i| (i.metadata.name.as_deref().unwrap_or_default(), i))
        .collect();
    let mut changes = Vec::new();
    for op in &plan.apply {
        let entry = &report.entries[op.entry];
        let want = comparable_yaml(&entry.image.to_object())?;
        match by_name.get(op.name.as_str()) {
            None => changes.push(Change::Added {
                name: op.name.clone(),
                path: op.path.clone(),
                yaml: want,
            }),
            Some(image) => {
                let have = comparable_yaml(image)?;
                // An update of derived metadata only (labels, traceability): not shown.
                if have != want {
                    changes.push(Change::Changed {
                        name: op.name.clone(),
                        path: op.path.clone(),
                        live: have,
                        desired: want,
                    });
                }
            }
        }
    }
    for name in &plan.prune {
        if let Some(image) = by_name.get(name.as_str()) {
            changes.push(Change::Removed {
                name: name.clone(),
                yaml: comparable_yaml(image)?,
            });
        }
    }
    changes.sort_by(|a, b| a.name().cmp(b.name()));
    Ok(Comparison {
        changes,
        conflicts: plan.conflicts,
        adopt: plan.adopt,
        held: plan.blocked,
    })
}

/// Counts of a comparison.
#[derive(Debug, Default, PartialEq)]
pub struct Summary {
    pub added: usize,
    pub changed: usize,
    pub removed: usize,
    pub conflicts: usize,
    pub held: usize,
}

impl Summary {
    pub fn of(comparison: &Comparison) -> Summary {
        let mut s = Summary {
            conflicts: comparison.conflicts.len(),
            held: comparison.held.as_ref().map_or(0, |b| b.held.len()),
            ..Summary::default()
        };
        for c in &comparison.changes {
            match c {
                Change::Added { .. } => s.added += 1,
                Change::Changed { .. } => s.changed += 1,
                Change::Removed { .. } => s.removed += 1,
            }
        }
        s
    }

    pub fn is_empty(&self) -> bool {
        *self == Summary::default()
    }

    /// `1 to add, 1 to change, 1 to remove[, N in conflict][, N deletions held]`.
    pub fn line(&self) -> String {
        let mut line = format!(
            "{} to add, {} to change, {} to remove",
            self.added, self.changed, self.removed
        );
        if self.conflicts > 0 {
            line.push_str(&format!(", {} in conflict", self.conflicts));
        }
        if self.held > 0 {
            line.push_str(&format!(", {} deletions held", self.held));
        }
        line
    }
}

/// What the sync leaves alone and why, one line each (for stderr).
pub fn warnings(comparison: &Comparison) -> Vec<String> {
    let mut lines: Vec<String> = comparison
        .conflicts
        .iter()
        .map(|c| format!("conflict: {} ({}): {}", c.name, c.path, c.message))
        .collect();
    if let Some(hint) = &comparison.adopt {
        lines.push(format!("hint: {hint}"));
    }
    if let Some(held) = &comparison.held {
        lines.push(format!("held: {} ({})", held.message, held.reason));
    }
    lines
}

/// Unified diffs, cluster (`---`) to repository (`+++`), one per entry.
pub fn render(changes: &[Change], namespace: &str) -> String {
    let mut out = String::new();
    let diff = |old: &str, new: &str, a: &str, b: &str| {
        similar::TextDiff::from_lines(old, new)
            .unified_diff()
            .context_radius(3)
            .header(a, b)
            .to_string()
    };
    for change in changes {
        match change {
            Change::Added { path, yaml, .. } => {
                out.push_str(&diff("", yaml, "/dev/null", path));
            }
            Change::Changed {
                name,
                path,
                live,
                desired,
            } => {
                let cluster = format!("cluster/{namespace}/{name}");
                out.push_str(&diff(live, desired, &cluster, path));
            }
            Change::Removed { name, yaml } => {
                let cluster = format!("cluster/{namespace}/{name}");
                out.push_str(&diff(yaml, "", &cluster, "/dev/null"));
            }
        }
    }
    out
}

#[cfg(test)]
#[path = "diff_plan_tests.rs"]
mod tests;
