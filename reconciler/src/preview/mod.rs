//! Pull-request previews: for a CatalogSource with `spec.pullRequests.enabled`, what merging
//! each open pull request into its branch would do, posted on the pull request before anyone
//! merges it.
//!
//! A pass over one source ([`pass`]) lists the open pull requests whose base is the source's
//! branch ([`crate::forge::pulls`]), and for each head not evaluated yet fetches it, validates,
//! plans and verifies it exactly as a sync would ([`evaluate`]), then posts a commit status
//! (`catalog-preview/<name>`) on the head, edits the pull request's one comment
//! ([`crate::forge::comments`]), and records a summary in `status.previews` — the only thing a
//! preview ever writes to the cluster. Closed pull requests are dropped from it.
//!
//! Passes run at each source's `spec.interval` and at once when the webhook receiver records
//! a pull-request event (the `preview-requested-at` annotation). Bounds: the newest
//! `--max-previews-per-source` pull requests of a source, `--preview-concurrency` heads
//! evaluated at once over all sources, `--max-preview-images` images verified per head.
//! Previews run beside the syncs, on none of their worker or fetch slots (their fetches share
//! only the global `--fetch-concurrency`), so a failing or slow preview never delays a sync.

mod evaluate;
pub mod report;
mod schedule;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::ObjectRef;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use catalog_api::CatalogSource;
use catalog_api::source::{CatalogSourceStatus, PreviewState, PreviewSummary};

use crate::forge::pulls::OpenPull;
use crate::forge::{StatusReport, Target};
use crate::merge_patch::{self, Fields};
use crate::sync::entries::EntryCache;
use crate::sync::{Key, Shared};
use crate::verify::oneshot::OneShot;
use evaluate::Evaluator;
use schedule::key_of;

/// How often due sources are looked for.
const TICK: Duration = Duration::from_secs(1);

/// The bounds of previews (`--max-previews-per-source`, `--preview-concurrency`,
/// `--max-preview-images`).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub per_source: usize,
    pub concurrency: usize,
    pub max_images: usize,
}

/// The preview runner before it runs (see [`crate::sync::Controller::with_previews`]).
pub struct Previews {
    limits: Limits,
    checker: Arc<OneShot>,
}

/// What a source's previews remember between passes.
#[derive(Default)]
struct Memory {
    /// Pull request → what its head evaluated to.
    evaluated: BTreeMap<u64, PreviewSummary>,
    /// Parsed blobs of earlier heads, so a push that changes one file parses one file.
    entries: EntryCache,
    /// The status was read once (heads evaluated before a restart are not evaluated again).
    seeded: bool,
    /// What this process last wrote to `status.previews` (the watch cache may lag behind it).
    written: Option<Vec<PreviewSummary>>,
}

/// Why a pass stopped.
#[derive(Debug, thiserror::Error)]
enum PassError {
    #[error(transparent)]
    Forge(#[from] crate::forge::ForgeError),
    #[error("forge token: {0}")]
    Token(crate::sync::error::SecretError),
    #[error("forge token: secret {namespace}/{name} has no `token` key")]
    NoToken { namespace: String, name: String },
}

impl Previews {
    pub fn new(limits: Limits, checker: OneShot) -> Previews {
        Previews {
            limits,
            checker: Arc::new(checker),
        }
    }

    /// Runs passes until `shutdown`.
    pub(crate) async fn run(self, shared: Arc<Shared>, shutdown: CancellationToken) {
        let runner = Arc::new(Runner {
            shared,
            limits: self.limits,
            checker: self.checker,
            slots: Arc::new(Semaphore::new(self.limits.concurrency.max(1))),
            memory: Default::default(),
        });
        let mut schedule = schedule::Schedule::default();
        let mut tasks = tokio::task::JoinSet::new();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    if let Ok(key) = done {
                        schedule.finished(&key);
                    }
                    if tasks.is_empty() {
                        runner.checker.forget_hosts();
                    }
                }
                _ = tick.tick() => {
                    let work = schedule.due(&runner.shared.sources.state(), Instant::now());
                    runner.forget_except(&schedule.live());
                    for source in work.clear {
                        let runner = runner.clone();
                        tokio::spawn(async move {
                            let mut memory = Memory::default();
                            runner.write_summaries(&key_of(&source), &mut memory).await;
                        });
                    }
                    for source in work.passes {
                        let runner = runner.clone();
                        tasks.spawn(async move {
                            let key = key_of(&source);
                            if let Err(panic) = crate::panics::contained(runner.pass(&source)).await {
                                tracing::error!(source = %format!("{}/{}", key.0, key.1), panic, "a preview pass panicked");
                            }
                            key
                        });
                    }
                }
            }
        }
        tasks.abort_all();
    }
}

/// Previews need `pullRequests.enabled`, a forge (`commitStatus`) and a branch to merge into;
/// a suspended or deleted source gets none.
fn previews_on(source: &CatalogSource) -> bool {
    let spec = &source.spec;
    spec.pull_requests.as_ref().is_some_and(|p| p.enabled)
        && spec.commit_status.is_some()
        && !spec.suspend
        && source.metadata.deletion_timestamp.is_none()
        && branch(source).is_some()
}

/// The branch pull requests are merged into: `ref.branch`, or `main` without a ref.
fn branch(source: &CatalogSource) -> Option<String> {
    match &source.spec.git_ref {
        None => Some("main".into()),
        Some(r) if r.tag.is_none() && r.commit.is_none() => {
            Some(r.branch.clone().unwrap_or_else(|| "main".into()))
        }
        Some(_) => None,
    }
}

struct Runner {
    shared: Arc<Shared>,
    limits: Limits,
    checker: Arc<OneShot>,
    /// `--preview-concurrency` evaluation slots.
    slots: Arc<Semaphore>,
    memory: std::sync::Mutex<HashMap<Key, Arc<tokio::sync::Mutex<Memory>>>>,
}

impl Runner {
    fn memory(&self, key: &Key) -> Arc<tokio::sync::Mutex<Memory>> {
        crate::panics::LockExt::locked(&self.memory)
            .entry(key.clone())
            .or_default()
            .clone()
    }

    fn forget_except(&self, live: &HashSet<Key>) {
        crate::panics::LockExt::locked(&self.memory).retain(|k, _| live.contains(k));
    }

    /// One pass over one source; problems are logged and end the pass (tried again at the
    /// next interval).
    async fn pass(&self, source: &CatalogSource) {
        let key = key_of(source);
        if let Err(e) = self.try_pass(&key, source).await {
            tracing::warn!(source = %format!("{}/{}", key.0, key.1), error = %e, "pull-request previews not refreshed");
        }
    }

    async fn try_pass(&self, key: &Key, source: &CatalogSource) -> Result<(), PassError> {
        let Some(spec) = source.spec.commit_status.as_ref() else {
            return Ok(());
        };
        let target = Target::new(spec, &source.spec.url)?;
        let token = self.token(key, &spec.secret_ref.name).await?;
        let branch = branch(source).unwrap_or_default();
        let mut open = self
            .shared
            .forge
            .open_pulls(&target, &branch, &token)
            .await?;
        open.truncate(self.limits.per_source);
        let memory = self.memory(key);
        let mut memory = memory.lock().await;
        if !memory.seeded {
            memory.seeded = true;
            let stored = source
                .status
                .as_ref()
                .map(|s| s.previews.clone())
                .unwrap_or_default();
            memory.evaluated = stored.into_iter().map(|p| (p.number, p)).collect();
        }
        let numbers: HashSet<u64> = open.iter().map(|p| p.number).collect();
        memory.evaluated.retain(|n, _| numbers.contains(n));
        self.write_summaries(key, &mut memory).await;
        for pull in &open {
            let done = memory
                .evaluated
                .get(&pull.number)
                .is_some_and(|s| s.head == pull.head_sha && s.state != PreviewState::Error);
            if done {
                continue;
            }
            let Ok(_slot) = self.slots.acquire().await else {
                return Ok(());
            };
            let summary = self
                .preview(source, &target, &token, pull, &mut memory.entries)
                .await;
            memory.evaluated.insert(pull.number, summary);
            self.write_summaries(key, &mut memory).await;
        }
        Ok(())
    }

    /// Evaluates one head and posts the result; the summary to record.
    async fn preview(
        &self,
        source: &CatalogSource,
        target: &Target,
        token: &str,
        pull: &OpenPull,
        entries: &mut EntryCache,
    ) -> PreviewSummary {
        let evaluator = Evaluator {
            shared: &self.shared,
            checker: &self.checker,
            max_images: self.limits.max_images,
        };
        let (ns, name) = key_of(source);
        let evaluated = match evaluator.fetch(source, pull.number, &pull.head_sha).await {
            Ok(commit) => {
                evaluator
                    .evaluate(source, pull.number, &commit, entries)
                    .await
            }
            Err(e) => Err(e),
        };
        let evaluation = match evaluated {
            Ok(evaluation) => evaluation,
            Err(e) => {
                tracing::warn!(source = %format!("{ns}/{name}"), pull = pull.number, error = %e, "pull-request preview failed");
                return report::error_summary(pull.number, &pull.head_sha, &e.to_string());
            }
        };
        let status = StatusReport {
            provider: target.provider,
            api_url: target.api_url.clone(),
            repository: Some(target.repository.clone()),
            repo_url: source.spec.url.clone(),
            sha: evaluation.head.clone(),
            state: evaluation.commit_state(),
            description: evaluation.description(),
            context: format!("catalog-preview/{name}"),
        };
        let marker = format!("<!-- catalog-preview:{ns}/{name} -->");
        let comment = evaluation.comment(&marker, &format!("{ns}/{name}"));
        let forge = &self.shared.forge;
        let posted = match forge.send(&status, token).await {
            Ok(()) => forge
                .upsert_comment(target, pull.number, &marker, &comment, token)
                .await
                .map(|_| ()),
            Err(e) => Err(e),
        };
        tracing::info!(source = %format!("{ns}/{name}"), pull = pull.number, head = %evaluation.head, success = evaluation.success(), description = %evaluation.description(), "pull-request preview evaluated");
        match posted {
            Ok(()) => evaluation.summary(),
            Err(e) => {
                tracing::warn!(source = %format!("{ns}/{name}"), pull = pull.number, error = %e, "pull-request preview not posted");
                report::error_summary(pull.number, &evaluation.head, &e.to_string())
            }
        }
    }

    async fn token(&self, key: &Key, secret: &str) -> Result<String, PassError> {
        let data = crate::sync::effects::read_secret(&self.shared.client, &key.0, secret)
            .await
            .map_err(PassError::Token)?;
        data.get("token")
            .map(|t| String::from_utf8_lossy(t).trim().to_string())
            .ok_or_else(|| PassError::NoToken {
                namespace: key.0.clone(),
                name: secret.to_string(),
            })
    }

    /// Writes `status.previews` (newest first) when it differs from what was last written
    /// (or, before the first write, from what the source shows).
    async fn write_summaries(&self, key: &Key, memory: &mut Memory) {
        let wanted: Vec<PreviewSummary> = memory.evaluated.values().rev().cloned().collect();
        let current = match &memory.written {
            Some(written) => written.clone(),
            None => self
                .shared
                .sources
                .get(&ObjectRef::new(&key.1).within(&key.0))
                .and_then(|s| s.status.as_ref().map(|s| s.previews.clone()))
                .unwrap_or_default(),
        };
        // Statuses holding only the previews: the patch names `previews` and nothing else.
        let only = |previews| CatalogSourceStatus {
            previews,
            ..Default::default()
        };
        let (current, wanted) = (only(current), only(wanted));
        let Some(patch) = merge_patch::status(Some(&current), &wanted, Fields::default()) else {
            return;
        };
        let api: Api<CatalogSource> = Api::namespaced(self.shared.client.clone(), &key.0);
        self.shared.metrics.api_write("patch_status");
        match api
            .patch_status(&key.1, &PatchParams::default(), &Patch::Merge(patch))
            .await
        {
            Ok(_) => memory.written = Some(wanted.previews),
            Err(e) => {
                tracing::warn!(source = %format!("{}/{}", key.0, key.1), error = %e, "cannot write status.previews")
            }
        }
    }
}
