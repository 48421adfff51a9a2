//! Evaluating one pull-request head exactly as a sync would evaluate it, without applying:
//! fetch the head ([`crate::git::fetch`], into the preview cache beside the source's),
//! read and validate it ([`EntryCache::read`] with [`environment_rules`], `requireDigest`
//! included), plan it against the live CatalogImages ([`plan::plan`], deletion budget
//! included), and verify the created and updated entries' images ([`OneShot::check`]).

use std::collections::BTreeSet;
use std::path::PathBuf;

use futures::StreamExt as _;

use catalog_api::CatalogSource;
use catalog_api::image::RegistryMetadata;

use super::report::{Change, Evaluation, Row};
use crate::forge::pulls::head_ref;
use crate::git::tree::environment_rules;
use crate::git::{Credentials, FetchRequest, RefSpec};
use crate::sync::Shared;
use crate::sync::effects::{SHALLOW_FETCHES, cache_path, read_secret};
use crate::sync::entries::EntryCache;
use crate::sync::plan::{self, PlanInput, short};
use crate::verify::oneshot::{Checked, OneShot};

/// Images verified at once within one preview.
const PARALLEL_CHECKS: usize = 4;

/// Why a head could not be evaluated (it is tried again at the next pass).
#[derive(Debug, thiserror::Error)]
pub enum EvaluateError {
    #[error("git credentials: {0}")]
    Credentials(crate::sync::error::SecretError),
    #[error(transparent)]
    Fetch(crate::sync::error::FetchError),
    #[error("cannot open the preview cache {path}: {message}")]
    Cache { path: String, message: String },
}

/// What an evaluation needs besides the head.
pub struct Evaluator<'a> {
    pub shared: &'a Shared,
    pub checker: &'a OneShot,
    pub max_images: usize,
}

/// The bare repository previews fetch heads into: inside the source's cache directory (so it
/// goes with it), but a repository of its own, so a preview's fetch never contends with the
/// sync's for the same refs, lock files or shallow boundary.
pub fn preview_cache(shared: &Shared, source: &CatalogSource) -> PathBuf {
    let (ns, name) = (
        source.metadata.namespace.as_deref().unwrap_or_default(),
        source.metadata.name.as_deref().unwrap_or_default(),
    );
    cache_path(shared, ns, name).join("previews")
}

impl Evaluator<'_> {
    /// Fetches pull request `number`'s head ref; the commit it resolved to.
    pub async fn fetch(
        &self,
        source: &CatalogSource,
        number: u64,
        head_sha: &str,
    ) -> Result<String, EvaluateError> {
        let cache = preview_cache(self.shared, source);
        if has_commit(&cache, head_sha) {
            return Ok(head_sha.to_string());
        }
        let spec = &source.spec;
        let ns = source.metadata.namespace.as_deref().unwrap_or_default();
        let credentials = match &spec.secret_ref {
            Some(r) => Credentials::from_secret_data(
                &read_secret(&self.shared.client, ns, &r.name)
                    .await
                    .map_err(EvaluateError::Credentials)?,
            ),
            None => Credentials::default(),
        };
        let provider = spec
            .commit_status
            .as_ref()
            .map(|c| c.provider)
            .unwrap_or(catalog_api::source::ForgeProvider::Github);
        let request = FetchRequest {
            url: spec.url.clone(),
            reference: RefSpec::Ref(head_ref(provider, number)),
            credentials,
            timeout: spec
                .timeout()
                .unwrap_or(std::time::Duration::from_secs(60))
                .max(std::time::Duration::from_secs(1)),
            cache_path: cache,
            shallow: SHALLOW_FETCHES && spec.verify.is_none(),
        };
        // Its own fetch key: the sync's fetch of this source never waits for a preview's.
        let key = (
            ns.to_string(),
            format!(
                "{}#previews",
                source.metadata.name.as_deref().unwrap_or_default()
            ),
        );
        let fetched = self
            .shared
            .fetches
            .fetch(&self.shared.workers, &key, request)
            .await
            .map_err(EvaluateError::Fetch)?;
        Ok(fetched.commit)
    }

    /// Validates, plans and verifies `commit` (pull request `number`).
    pub async fn evaluate(
        &self,
        source: &CatalogSource,
        number: u64,
        commit: &str,
        entries: &mut EntryCache,
    ) -> Result<Evaluation, EvaluateError> {
        let spec = &source.spec;
        let target_ns = source.target_namespace().to_string();
        let cache = preview_cache(self.shared, source);
        let repo = git2::Repository::open_bare(&cache).map_err(|e| EvaluateError::Cache {
            path: cache.display().to_string(),
            message: e.message().to_string(),
        })?;
        let rules = environment_rules(&repo, commit, &spec.path, &target_ns);
        let max = self.shared.max_entries;
        let read =
            tokio::task::block_in_place(|| entries.read(&repo, commit, &spec.path, &rules, max));
        drop(repo);
        let mut evaluation = Evaluation {
            number,
            head: commit.to_string(),
            ..Default::default()
        };
        let report = match read {
            Ok(report) => report,
            Err(e) => {
                evaluation.unreadable = Some(e.to_string());
                return Ok(evaluation);
            }
        };
        let (ns, name) = (
            source.metadata.namespace.as_deref().unwrap_or_default(),
            source.metadata.name.as_deref().unwrap_or_default(),
        );
        let broken: BTreeSet<String> = report
            .broken_paths()
            .into_iter()
            .map(str::to_string)
            .collect();
        let contested = self.contested(ns, name, &target_ns, &report.entries);
        let input = PlanInput {
            source: name,
            source_namespace: ns,
            namespace: &target_ns,
            revision: commit,
            desired: &report.entries,
            broken_paths: &broken,
            contested: &contested,
            prune: spec.prune,
            max_deletions: &spec.max_deletions,
            allow_empty: spec.allow_empty,
            // A pull request's head is never approved: the merge commit would be.
            approved_revision: None,
        };
        let (_, live) = self.shared.images.versioned_namespace(&target_ns);
        let plan = plan::plan(&input, &live);
        drop(live);
        evaluation.rows.extend(report.diagnostics.iter().map(|d| {
            problem_row(
                format!("{}:{}", d.path, d.line),
                Change::Invalid,
                &d.message,
            )
        }));
        evaluation.rows.extend(
            plan.conflicts
                .iter()
                .map(|c| problem_row(c.name.clone(), Change::Conflict, &c.message)),
        );
        let mut checked = self.verify(&plan, &input).await.into_iter();
        for op in &plan.apply {
            let change = if op.create {
                Change::Created
            } else {
                Change::Updated
            };
            let url = &report.entries[op.entry].image.spec.registry_url;
            let result = checked.next().flatten();
            evaluation
                .rows
                .push(image_row(&op.name, change, url, result));
        }
        if plan.apply.len() > self.max_images {
            evaluation.unverified = Some((plan.apply.len() - self.max_images, self.max_images));
        }
        let held = plan.blocked.iter().flat_map(|b| b.held.iter());
        evaluation
            .rows
            .extend(plan.prune.iter().chain(held).map(|n| pruned_row(n)));
        evaluation.blocked = plan.blocked.as_ref().map(|b| blocked_note(b, commit));
        Ok(evaluation)
    }

    /// The verifier's verdict on each created or updated entry's image, in plan order (`None`
    /// past `--max-preview-images`), [`PARALLEL_CHECKS`] at a time.
    async fn verify(&self, plan: &plan::Plan, input: &PlanInput<'_>) -> Vec<Option<Checked>> {
        let (checker, client) = (self.checker, &self.shared.client);
        let images: Vec<(usize, catalog_api::CatalogImage)> = plan
            .apply
            .iter()
            .take(self.max_images)
            .map(|op| op.object(input))
            .enumerate()
            .collect();
        let done: Vec<(usize, Checked)> = futures::stream::iter(images)
            .map(|(i, image)| async move { (i, checker.check(client, &image).await) })
            .buffer_unordered(PARALLEL_CHECKS)
            .collect()
            .await;
        let mut slots = vec![None; plan.apply.len()];
        for (i, checked) in done {
            slots[i] = Some(checked);
        }
        slots
    }

    /// Names of `desired` that another source declares in the same namespace.
    fn contested(
        &self,
        ns: &str,
        name: &str,
        target_ns: &str,
        desired: &[catalog_api::validate::Entry],
    ) -> BTreeSet<String> {
        let claims = crate::panics::LockExt::locked(&self.shared.claims);
        let Some(by_name) = claims.get(target_ns) else {
            return BTreeSet::new();
        };
        desired
            .iter()
            .filter(|e| {
                by_name
                    .get(e.name())
                    .is_some_and(|claimers| claimers.iter().any(|k| k.0 != ns || k.1 != name))
            })
            .map(|e| e.name().to_string())
            .collect()
    }
}

fn has_commit(cache: &std::path::Path, sha: &str) -> bool {
    let Ok(repo) = git2::Repository::open_bare(cache) else {
        return false;
    };
    git2::Oid::from_str(sha).is_ok_and(|oid| repo.find_commit(oid).is_ok())
}

fn image_row(name: &str, change: Change, image: &str, checked: Option<Checked>) -> Row {
    let (ok, metadata, message) = match checked {
        Some(Checked::Verified(metadata)) => (true, Some(metadata), "verified".to_string()),
        Some(Checked::Failed {
            reason,
            message,
            metadata,
        }) => (false, metadata, format!("{reason}: {message}")),
        None => (
            false,
            None,
            "not verified (over --max-preview-images)".into(),
        ),
    };
    Row {
        entry: name.to_string(),
        change,
        image: image.to_string(),
        digest: metadata
            .as_ref()
            .and_then(|m| m.resolved_digest.clone())
            .unwrap_or_default(),
        platforms: metadata.as_ref().map(platforms).unwrap_or_default(),
        ok,
        message,
    }
}

fn problem_row(entry: String, change: Change, message: &str) -> Row {
    Row {
        entry,
        change,
        image: String::new(),
        digest: String::new(),
        platforms: String::new(),
        ok: false,
        message: message.to_string(),
    }
}

fn pruned_row(name: &str) -> Row {
    Row {
        entry: name.to_string(),
        change: Change::Pruned,
        image: String::new(),
        digest: String::new(),
        platforms: String::new(),
        ok: true,
        message: "deleted on merge".into(),
    }
}

/// `linux/amd64`, or every variant of an index (`linux/amd64, linux/arm64/v8`).
fn platforms(metadata: &RegistryMetadata) -> String {
    if metadata.is_multi_arch == Some(true) {
        return metadata
            .platform_variants
            .iter()
            .map(|p| match &p.variant {
                Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
                None => format!("{}/{}", p.os, p.architecture),
            })
            .collect::<Vec<_>>()
            .join(", ");
    }
    metadata
        .platform
        .as_ref()
        .map(|p| match &p.variant {
            Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
            None => format!("{}/{}", p.os, p.architecture),
        })
        .unwrap_or_default()
}

/// What the sync will do with the merge's deletions, in the pull request's words.
fn blocked_note(blocked: &plan::Blocked, head: &str) -> String {
    let n = blocked.held.len();
    match blocked.reason {
        crate::sync::reason::EMPTY_REVISION_BLOCKED => format!(
            "Merging would delete all {n} entries of this source: the sync will apply none of it until an operator approves the merged commit with the approve-deletions annotation (or sets spec.allowEmpty)."
        ),
        _ => format!(
            "Merging would delete {n} entries, over spec.maxDeletions: the sync will delete none of them until an operator approves the merged commit with the approve-deletions annotation (evaluated at {}).",
            short(head)
        ),
    }
}
