//! Making a reverted manual change visible.
//!
//! The sync's forced server-side apply puts back whatever someone changed by hand on a
//! managed CatalogImage (`kubectl apply`, `kubectl patch`). Silently, that looks to the
//! person who made the change as if it worked. So when an update is drift (the live object
//! differs although its Git file did not change since the object was last written), the
//! sync publishes a Warning Event `DriftReverted` on the CatalogImage naming the changed
//! fields, the file that owns them and the caib command that changes them through Git, and
//! counts it in `catalog_sync_drift_reverted_total{source}`.
//!
//! The watch cache keeps only a spec fingerprint, so the fields are found by reading the
//! live object (one GET per drifted entry, which is rare) just before it is re-applied.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use futures::{StreamExt, stream};
use k8s_openapi::api::core::v1::ObjectReference;
use kube::{Api, Resource as _};
use serde_json::Value;

use catalog_api::CatalogImage;
use catalog_api::labels::{SOURCE_PATH, SOURCE_REVISION};

use super::Shared;
use super::apply::{CONCURRENCY, Written};
use super::live::{LiveCache, LiveImage};
use super::plan::{ApplyOp, PlanInput, is_managed_label};
use crate::events::{EventSpec, EventType};

/// The Event reason (caib reads it back for `caib catalog get`).
pub const REASON: &str = "DriftReverted";

/// An update whose live object was written from the same file: drift, if that file did not
/// change between the object's revision and the one being applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suspect {
    pub name: String,
    pub path: String,
    pub entry: usize,
    /// The `source-revision` the live object was last written from.
    pub written_from: String,
}

/// The updates of `ops` whose live object (`live(name)`, the watch cache) carries the entry's
/// own file path and a revision. Creations are never drift (a deleted object coming back is
/// not a changed field), and an object written from another path is a moved file, a Git
/// change.
pub fn suspects(ops: &[ApplyOp], live: impl Fn(&str) -> Option<Arc<LiveImage>>) -> Vec<Suspect> {
    ops.iter()
        .filter(|op| !op.create)
        .filter_map(|op| {
            let object = live(&op.name)?;
            let written_from = object.annotation(SOURCE_REVISION)?;
            (object.annotation(SOURCE_PATH) == Some(op.path.as_str())).then(|| Suspect {
                name: op.name.clone(),
                path: op.path.clone(),
                entry: op.entry,
                written_from: written_from.to_string(),
            })
        })
        .collect()
}

/// The trees of the commits looked at, each read once: a commit touching 10,000 files asks
/// about 10,000 paths, and libgit2 does not keep a parsed tree of an environment that size.
pub struct Trees<'r> {
    repo: &'r git2::Repository,
    trees: HashMap<String, Option<git2::Tree<'r>>>,
}

impl<'r> Trees<'r> {
    pub fn new(repo: &'r git2::Repository) -> Self {
        Trees {
            repo,
            trees: HashMap::new(),
        }
    }

    /// Whether `path` is the same blob at commits `from` and `to`. Anything that cannot be
    /// read (a commit no longer in the cache after a force-push) counts as changed: no Event
    /// is better than a false accusation.
    pub fn file_unchanged(&mut self, path: &str, from: &str, to: &str) -> bool {
        if from == to {
            return true;
        }
        matches!((self.blob(from, path), self.blob(to, path)), (Some(a), Some(b)) if a == b)
    }

    fn blob(&mut self, commit: &str, path: &str) -> Option<git2::Oid> {
        let repo = self.repo;
        let tree = self.trees.entry(commit.to_string()).or_insert_with(|| {
            git2::Oid::from_str(commit)
                .and_then(|oid| repo.find_commit(oid))
                .and_then(|c| c.tree())
                .ok()
        });
        tree.as_ref()?
            .get_path(Path::new(path))
            .map(|e| e.id())
            .ok()
    }
}

/// The suspects whose file did not change between their object's revision and `revision`
/// (none when the cache cannot be opened).
fn unchanged_files(cache: &Path, suspects: Vec<Suspect>, revision: &str) -> Vec<Suspect> {
    let Ok(repo) = git2::Repository::open_bare(cache) else {
        return Vec::new();
    };
    let mut trees = Trees::new(&repo);
    suspects
        .into_iter()
        .filter(|s| trees.file_unchanged(&s.path, &s.written_from, revision))
        .collect()
}

/// The fields the sync owns that differ between `desired` and `live`, as paths
/// (`spec.tags`, `spec.metadata.targets`, `metadata.labels[KEY]`,
/// `metadata.annotations[KEY]`), in the order the plan compares them.
pub fn changed_fields(desired: &CatalogImage, live: &CatalogImage) -> Vec<String> {
    let mut fields = Vec::new();
    let spec = |image: &CatalogImage| serde_json::to_value(&image.spec).unwrap_or(Value::Null);
    diff_values("spec", &spec(desired), &spec(live), &mut fields);
    let empty = BTreeMap::new();
    let want = desired.metadata.labels.as_ref().unwrap_or(&empty);
    let have = live.metadata.labels.as_ref().unwrap_or(&empty);
    for (key, value) in want {
        if have.get(key) != Some(value) {
            fields.push(format!("metadata.labels[{key}]"));
        }
    }
    for key in have.keys() {
        if is_managed_label(key) && !want.contains_key(key) {
            fields.push(format!("metadata.labels[{key}]"));
        }
    }
    let want = desired.metadata.annotations.as_ref().unwrap_or(&empty);
    let have = live.metadata.annotations.as_ref().unwrap_or(&empty);
    for (key, value) in want {
        if key != SOURCE_REVISION && have.get(key) != Some(value) {
            fields.push(format!("metadata.annotations[{key}]"));
        }
    }
    fields
}

/// Object keys are followed down; anything else (lists, scalars) is one field.
fn diff_values(at: &str, want: &Value, have: &Value, out: &mut Vec<String>) {
    match (want, have) {
        (Value::Object(w), Value::Object(h)) => {
            let keys: std::collections::BTreeSet<&String> = w.keys().chain(h.keys()).collect();
            for key in keys {
                let (a, b) = (w.get(key), h.get(key));
                if a != b {
                    let nested = format!("{at}.{key}");
                    diff_values(
                        &nested,
                        a.unwrap_or(&Value::Null),
                        b.unwrap_or(&Value::Null),
                        out,
                    );
                }
            }
        }
        _ if want != have => out.push(at.to_string()),
        _ => {}
    }
}

/// The Event's note: what was changed, who owns it, how to change it for good.
pub fn note(name: &str, path: &str, fields: &[String]) -> String {
    let tags = fields.iter().any(|f| f == "spec.tags");
    let others = fields.iter().any(|f| f != "spec.tags");
    let tag = format!("run `caib catalog tag {name} TAG...` or `caib catalog untag {name} TAG...`");
    let edit = format!(
        "edit {path} and open a pull request (`caib catalog publish {name}` for a new build)"
    );
    let how = match (tags, others) {
        (true, true) => format!("To change tags, {tag}; to change the others, {edit}."),
        (true, false) => format!("To change them, {tag}."),
        _ => format!("To change them, {edit}."),
    };
    format!(
        "changed outside Git and reverted: {}. {path} in Git owns these fields. {how}",
        fields.join(", ")
    )
}

/// The drift found before a sync applies its plan, published for the updates that succeed.
#[derive(Default)]
pub struct Drift {
    found: HashMap<String, (ObjectReference, String)>,
    reverted: Vec<(ObjectReference, String)>,
}

impl Drift {
    /// Finds which of `ops` are drift: reads those live objects and diffs them against the
    /// desired ones. Reading errors only lose the Event, never the revert.
    pub async fn detect(
        api: &Api<CatalogImage>,
        ops: &[ApplyOp],
        live: &LiveCache,
        input: &PlanInput<'_>,
        cache: &Path,
    ) -> Drift {
        let suspects = suspects(ops, |name| live.get(input.namespace, name));
        if suspects.is_empty() {
            return Drift::default();
        }
        let drifted = unchanged_files(cache, suspects, input.revision);
        let found = stream::iter(drifted)
            .map(|suspect| async move {
                let live = api.get(&suspect.name).await.ok()?;
                let desired = super::plan::desired_object(&input.desired[suspect.entry], input);
                let fields = changed_fields(&desired, &live);
                if fields.is_empty() {
                    return None;
                }
                let note = note(&suspect.name, &suspect.path, &fields);
                Some((suspect.name, (live.object_ref(&()), note)))
            })
            .buffer_unordered(CONCURRENCY)
            .filter_map(std::future::ready)
            .collect()
            .await;
        Drift {
            found,
            reverted: Vec::new(),
        }
    }

    /// Records one write of the plan: a drifted entry written successfully was reverted.
    pub fn applied(&mut self, written: &Written) {
        if written.result.is_ok()
            && let Some(found) = self.found.remove(&written.name)
        {
            self.reverted.push(found);
        }
    }

    /// Publishes one Warning Event per reverted entry and counts them for `source`.
    pub(crate) async fn publish(self, shared: &Shared, source: &str) {
        for (reference, note) in &self.reverted {
            shared.metrics.drift_reverted(source);
            shared.metrics.api_write("event");
            let event = EventSpec {
                type_: EventType::Warning,
                reason: REASON,
                action: "Sync",
                note,
            };
            if let Err(e) = shared.events.publish(reference, &event).await {
                tracing::debug!(error = %e, "cannot publish a DriftReverted event");
            }
            tracing::info!(source, image = reference.name.as_deref().unwrap_or_default(), %note, "drift reverted");
        }
    }
}

#[cfg(test)]
#[path = "drift_tests.rs"]
mod tests;
