//! The read step: the entries of the revision, validated, parsing only blobs that changed
//! ([`EntryCache`](super::super::entries::EntryCache)).
//!
//! Conditions: an unreadable revision → Ready=False, Stalled=True `ReadFailed`, or
//! `TooManyEntries` over `--max-entries-per-source`; nothing of it is applied or pruned.

use std::collections::BTreeSet;
use std::sync::Arc;

use catalog_api::CatalogSource;
use catalog_api::labels::APPROVE_DELETIONS;
use catalog_api::validate::Report;

use super::super::effects::cache_path;
use super::super::error::Error;
use super::super::plan::PlanInput;
use super::{Step, Stop, SyncRun};
use crate::git::{self, Fetched};

/// What the revision declares, owned, so that each later step can lend it to the planner's
/// [`PlanInput`].
pub(super) struct Desired {
    pub fetched: Fetched,
    pub target_namespace: String,
    pub report: Arc<Report>,
    /// Files with problems: their previous entries are kept.
    pub broken: BTreeSet<String>,
    /// Names other sources declare in the same namespace (set by the plan step).
    pub contested: BTreeSet<String>,
}

impl Desired {
    /// The planner's view of this revision of `source`.
    pub fn input<'a>(&'a self, source: &'a CatalogSource) -> PlanInput<'a> {
        let spec = &source.spec;
        let annotations = source.metadata.annotations.as_ref();
        PlanInput {
            source: source.metadata.name.as_deref().unwrap_or_default(),
            source_namespace: source.metadata.namespace.as_deref().unwrap_or_default(),
            namespace: &self.target_namespace,
            revision: &self.fetched.commit,
            desired: &self.report.entries,
            broken_paths: &self.broken,
            contested: &self.contested,
            prune: spec.prune,
            max_deletions: &spec.max_deletions,
            allow_empty: spec.allow_empty,
            approved_revision: annotations
                .and_then(|a| a.get(APPROVE_DELETIONS))
                .map(String::as_str),
        }
    }
}

/// Reads and validates the entries of `fetched` under `spec.path`.
pub(super) fn read_entries(run: &mut SyncRun<'_>, fetched: Fetched) -> Step<Desired> {
    let spec = &run.source.spec;
    let target_namespace = run.source.target_namespace().to_string();
    let cache = cache_path(run.shared, &run.key.0, &run.key.1);
    let repo = git2::Repository::open_bare(&cache).map_err(|e| {
        Stop::Failed(Error::Cache {
            path: cache.display().to_string(),
            message: e.message().to_string(),
        })
    })?;
    let revision = &fetched.commit;
    let rules = git::tree::environment_rules(&repo, revision, &spec.path, &target_namespace);
    let (max, entries) = (run.shared.max_entries, &mut run.memory.entries);
    let report =
        tokio::task::block_in_place(|| entries.read(&repo, revision, &spec.path, &rules, max))
            .map_err(|e| Stop::Failed(Error::Read(e)))?;
    let broken = report
        .broken_paths()
        .into_iter()
        .map(str::to_string)
        .collect();
    Ok(Desired {
        fetched,
        target_namespace,
        report,
        broken,
        contested: BTreeSet::new(),
    })
}
