//! CatalogSource sync controller: keeps the CatalogImages of every
//! CatalogSource equal to the files of its Git ref.
//!
//! Structure: a reflector of CatalogSources and a compact watch cache of CatalogImages
//! ([`live::LiveCache`]) feed a small scheduler that runs at most one sync per source at a
//! time. Triggers: a CatalogSource event, an event on a CatalogImage a source manages (drift
//! is reverted at once; status-only changes are batched, see [`SUMMARY_EVERY`]), the webhook
//! receiver (through the reconcile-requested-at annotation it sets), and the per-source
//! interval. Each sync is a [`run::SyncRun`] through named steps: finalize/suspend → fetch →
//! verify signature → read ([`entries`]) → plan ([`plan::plan`], pure) → [`apply`] → prune
//! ([`cleanup`]) → report (the pure [`outcome::report`], one status write); its errors are
//! typed ([`Error`], with the [`reason`]s of conditions, Events and metrics). The run says
//! when the source is next due; only [`schedule`] writes the due map.

pub mod apply;
pub mod approval;
mod cleanup;
mod contain;
pub mod drift;
pub(crate) mod effects;
pub mod entries;
pub mod error;
mod intern;
pub(crate) mod isolation;
pub mod live;
#[cfg(feature = "controller")]
pub mod local;
mod memo;
pub mod metrics;
mod outcome;
pub mod plan;
pub mod reason;
mod run;
mod spec_check;
pub mod status;

use std::cell::RefCell;

use crate::panics::LockExt as _;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::mpsc;

use catalog_api::labels::{CATALOG_SOURCE, SOURCE_NAMESPACE};
use catalog_api::{CatalogImage, CatalogSource};

use crate::Context;
pub use error::Error;
pub use metrics::Metrics;
use run::Requeue;

/// A source: (namespace, name).
pub type Key = (String, String);

/// (namespace, name) of a source, borrowed.
fn key_parts(source: &CatalogSource) -> (&str, &str) {
    (
        source.metadata.namespace.as_deref().unwrap_or_default(),
        source.metadata.name.as_deref().unwrap_or_default(),
    )
}

fn key_of(source: &CatalogSource) -> Key {
    let (ns, name) = key_parts(source);
    (ns.to_string(), name.to_string())
}

/// Asks the controller to sync a source.
#[derive(Clone, Debug)]
pub struct Trigger {
    pub key: Key,
    /// Only the summary counts may have changed: run within [`SUMMARY_EVERY`], together
    /// with every other such trigger of the source.
    pub batched: bool,
}

/// How long phase changes of a source's CatalogImages wait to be counted in its status:
/// 10,000 images turning Available cost a few status writes, not 10,000.
pub const SUMMARY_EVERY: Duration = Duration::from_secs(2);

/// Cheap handle to trigger syncs from the controller's own watches. The webhook receiver does
/// not use it: it records deliveries on the CatalogSource (see `crate::webhook`), so that
/// any replica can take them.
#[derive(Clone)]
pub struct Handle {
    tx: mpsc::UnboundedSender<Trigger>,
}

impl Handle {
    fn resync(&self, key: Key) {
        let _ = self.tx.send(Trigger {
            key,
            batched: false,
        });
    }

    fn resync_batched(&self, key: Key) {
        let _ = self.tx.send(Trigger { key, batched: true });
    }
}

/// The sync controller before it runs: created early so its metrics are registered and
/// its triggers can be queued before it runs.
pub struct Controller {
    metrics: Metrics,
    cache_dir: PathBuf,
    handle: Handle,
    rx: mpsc::UnboundedReceiver<Trigger>,
    sources: Store<CatalogSource>,
    sources_writer: reflector::store::Writer<CatalogSource>,
    previews: Option<crate::preview::Previews>,
}

impl Controller {
    /// Also runs pull-request previews ([`crate::preview`]) beside the syncs, reading the
    /// same caches; they never hold a sync's worker or fetch.
    pub fn with_previews(mut self, previews: crate::preview::Previews) -> Controller {
        self.previews = Some(previews);
        self
    }

    pub fn new(metrics: Metrics, cache_dir: PathBuf) -> Controller {
        let (tx, rx) = mpsc::unbounded_channel();
        let (sources, sources_writer) = reflector::store();
        Controller {
            metrics,
            cache_dir,
            handle: Handle { tx },
            rx,
            sources,
            sources_writer,
            previews: None,
        }
    }

    /// Runs until `ctx.shutdown` fires.
    pub async fn run(self, ctx: Arc<Context>) -> anyhow::Result<()> {
        let client = ctx.client.clone();
        let (sources_api, images_api): (Api<CatalogSource>, Api<CatalogImage>) =
            match &ctx.config.namespace {
                Some(ns) => (
                    Api::namespaced(client.clone(), ns),
                    Api::namespaced(client.clone(), ns),
                ),
                None => (Api::all(client.clone()), Api::all(client.clone())),
            };
        let (sources, sources_writer) = (self.sources, self.sources_writer);
        let images = Arc::new(live::LiveCache::default());
        let shared = Arc::new(Shared {
            client: client.clone(),
            metrics: self.metrics,
            cache_dir: self.cache_dir,
            handle: self.handle.clone(),
            sources: sources.clone(),
            images: images.clone(),
            claims: Mutex::default(),
            memories: Mutex::default(),
            due: Mutex::default(),
            events: crate::events::EventPublisher::new(
                client.clone(),
                "catalog-reconciler",
                ctx.config.identity.clone(),
            ),
            forge: crate::forge::Client::new(),
            allow_cross_namespace_targets: ctx.config.allow_cross_namespace_targets,
            max_entries: ctx.config.max_entries_per_source,
            workers: Arc::new(tokio::sync::Semaphore::new(PARALLEL_SOURCES)),
            fetches: isolation::FetchSlots::new(ctx.config.fetch_concurrency),
            writes: ctx.sync_writes.clone(),
        });

        let handle = self.handle.clone();
        let source_events = reflector::reflector(
            sources_writer,
            watcher(sources_api, watcher::Config::default()),
        )
        .default_backoff()
        .touched_objects();
        let source_task = tokio::spawn(async move {
            futures::pin_mut!(source_events);
            while let Some(event) = source_events.next().await {
                match event {
                    Ok(source) => {
                        handle.resync(key_of(&source));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "watching CatalogSources failed; retrying")
                    }
                }
            }
        });
        let handle = self.handle.clone();
        let image_events = watcher(images_api, watcher::Config::default()).default_backoff();
        let image_task = tokio::spawn(async move {
            futures::pin_mut!(image_events);
            while let Some(event) = image_events.next().await {
                match event {
                    Ok(event) => {
                        let change = images.handle(&event);
                        let touched = match &event {
                            watcher::Event::Apply(o)
                            | watcher::Event::Delete(o)
                            | watcher::Event::InitApply(o) => Some(o),
                            watcher::Event::Init | watcher::Event::InitDone => None,
                        };
                        if let Some(key) = touched.and_then(owner_of) {
                            match change {
                                live::Change::Object => handle.resync(key),
                                live::Change::Status => handle.resync_batched(key),
                                live::Change::Nothing => {}
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "watching CatalogImages failed; retrying"),
                }
            }
        });
        tokio::select! {
            _ = ctx.shutdown.cancelled() => return Ok(()),
            r = async { tokio::join!(sources.wait_until_ready(), shared.images.wait_until_ready()) } => {
                if r.0.is_err() {
                    anyhow::bail!("the CatalogSource watch stopped before its first list");
                }
            }
        }
        let live: HashSet<Key> = sources.state().iter().map(|s| key_of(s)).collect();
        let (cache_dir, namespace) = (shared.cache_dir.clone(), ctx.config.namespace.clone());
        let orphans = tokio::task::spawn_blocking(move || {
            cleanup::remove_orphan_caches(&cache_dir, namespace.as_deref(), &live)
        });
        if let Err(e) = orphans.await {
            tracing::warn!(error = %e, "removing the caches of deleted sources failed");
        }
        tracing::info!("sync controller started");
        let previews = self
            .previews
            .map(|p| tokio::spawn(p.run(shared.clone(), ctx.shutdown.clone())));
        let result = schedule(shared, self.rx, ctx.clone()).await;
        source_task.abort();
        image_task.abort();
        if let Some(previews) = previews {
            previews.abort();
        }
        result
    }
}

/// The source managing this CatalogImage: the one its label and source-namespace annotation
/// name together (a label alone makes an object nobody's).
fn owner_of(image: &CatalogImage) -> Option<Key> {
    let meta = &image.metadata;
    let name = meta.labels.as_ref()?.get(CATALOG_SOURCE)?;
    let namespace = meta.annotations.as_ref()?.get(SOURCE_NAMESPACE)?;
    Some((namespace.clone(), name.clone()))
}

/// How many sources sync at once (fetching aside: a sync waiting on its remote gives its
/// slot to another, see [`isolation`]).
const PARALLEL_SOURCES: usize = 4;

/// Runs syncs: one at a time per source, triggers arriving during a sync queue one more run.
async fn schedule(
    shared: Arc<Shared>,
    mut rx: mpsc::UnboundedReceiver<Trigger>,
    ctx: Arc<Context>,
) -> anyhow::Result<()> {
    let mut pending: HashMap<Key, bool> = HashMap::new();
    let mut batched: HashMap<Key, Instant> = HashMap::new();
    let mut running: HashSet<Key> = HashSet::new();
    let mut tasks = tokio::task::JoinSet::new();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            trigger = rx.recv() => {
                let Some(trigger) = trigger else { break };
                if trigger.batched {
                    batched.entry(trigger.key).or_insert_with(|| Instant::now() + SUMMARY_EVERY);
                } else {
                    // A fetch outside the interval is asked for on the source itself (the
                    // reconcile-requested-at annotation), which the sync reads.
                    pending.entry(trigger.key).or_default();
                }
            }
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                match done {
                    Ok((key, requeue)) => {
                        requeue_at(&shared, &mut pending, &key, requeue);
                        running.remove(&key);
                    }
                    Err(e) => tracing::error!(error = %e, "a sync task panicked"),
                }
            }
            _ = tick.tick() => {
                let now = Instant::now();
                let due: Vec<Key> = shared.due.locked().iter().filter(|(_, t)| **t <= now).map(|(k, _)| k.clone()).collect();
                for key in due {
                    shared.due.locked().remove(&key);
                    *pending.entry(key).or_default() |= true;
                }
                batched.retain(|key, at| {
                    if *at > now {
                        return true;
                    }
                    pending.entry(key.clone()).or_default();
                    false
                });
            }
        }
        let ready: Vec<Key> = pending
            .keys()
            .filter(|k| !running.contains(*k))
            .cloned()
            .collect();
        for key in ready {
            let fetch = pending.remove(&key).unwrap_or(false);
            running.insert(key.clone());
            let shared = shared.clone();
            // One task per source; at most PARALLEL_SOURCES of them hold a worker slot.
            tasks.spawn(async move {
                let mut requeue = Requeue::OnTrigger;
                if let Ok(slot) = shared.workers.clone().acquire_owned().await {
                    let sync = run::sync_source(&shared, &key, fetch);
                    let isolated = isolation::WORKER.scope(RefCell::new(Some(slot)), sync);
                    requeue = match crate::panics::contained(isolated).await {
                        Ok(requeue) => requeue,
                        Err(panic) => contain::report_panic(&shared, &key, &panic).await,
                    };
                    if requeue == Requeue::Forget {
                        shared.forget(&key);
                    }
                }
                (key, requeue)
            });
        }
    }
    // Let running syncs finish their writes (graceful shutdown), bounded.
    let _ = tokio::time::timeout(Duration::from_secs(20), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    Ok(())
}

/// Records when `key` is next due, as its run said: the one writer of the due map. An
/// instant already past (the interval came while the run ran) queues a fetch at once.
fn requeue_at(shared: &Shared, pending: &mut HashMap<Key, bool>, key: &Key, requeue: Requeue) {
    let mut due = shared.due.locked();
    match requeue {
        Requeue::At(at) if at <= Instant::now() => {
            due.remove(key);
            *pending.entry(key.clone()).or_default() = true;
        }
        Requeue::At(at) => {
            due.insert(key.clone(), at);
        }
        Requeue::OnTrigger | Requeue::Forget => {
            due.remove(key);
        }
    }
}

/// Entry name → sources declaring it in one namespace.
pub(crate) type Claims = HashMap<Box<str>, Vec<Arc<Key>>>;

/// Everything the syncs share.
pub(crate) struct Shared {
    pub client: kube::Client,
    pub metrics: Metrics,
    pub cache_dir: PathBuf,
    pub handle: Handle,
    pub sources: Store<CatalogSource>,
    pub images: Arc<live::LiveCache>,
    /// Target namespace → entry name → sources declaring it (nearly always one, shared).
    pub claims: Mutex<HashMap<String, Claims>>,
    pub memories: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<run::Memory>>>>,
    /// Next interval fetch per source: written by [`schedule`] alone, from each run's
    /// [`Requeue`].
    pub due: Mutex<HashMap<Key, Instant>>,
    pub events: crate::events::EventPublisher,
    pub forge: crate::forge::Client,
    /// `--allow-cross-namespace-targets`.
    pub allow_cross_namespace_targets: bool,
    /// `--max-entries-per-source`.
    pub max_entries: usize,
    /// [`PARALLEL_SOURCES`] sync worker slots (released while a sync waits on its fetch).
    pub workers: Arc<tokio::sync::Semaphore>,
    /// `--fetch-concurrency` fetch slots and the fetches still running.
    pub fetches: isolation::FetchSlots,
    /// Marks this process's syncs as writing, so that verifications wait for them.
    pub writes: crate::sync_writes::SyncWrites,
}

impl Shared {
    fn memory(&self, key: &Key) -> Arc<tokio::sync::Mutex<run::Memory>> {
        self.memories
            .locked()
            .entry(key.clone())
            .or_default()
            .clone()
    }

    fn source(&self, key: &Key) -> Option<Arc<CatalogSource>> {
        self.sources.get(&ObjectRef::new(&key.1).within(&key.0))
    }

    /// Records the names `key` declares in `namespace`; returns the names other sources also
    /// declare there. Sources whose contested set changed are asked to resync, so both sides
    /// report the conflict.
    fn claim(&self, key: &Key, namespace: &str, names: &BTreeSet<String>) -> BTreeSet<String> {
        let mut claims = self.claims.locked();
        let mut affected: BTreeSet<Key> = BTreeSet::new();
        for (ns, by_name) in claims.iter_mut() {
            by_name.retain(|name, claimers| {
                if let Some(i) = claimers.iter().position(|k| **k == *key)
                    && (ns != namespace || !names.contains(&**name))
                {
                    claimers.swap_remove(i);
                    affected.extend(claimers.iter().map(|k| (**k).clone()));
                }
                !claimers.is_empty()
            });
        }
        claims.retain(|_, by_name| !by_name.is_empty());
        let mut contested = BTreeSet::new();
        if !names.is_empty() {
            let me = Arc::new(key.clone());
            let by_name = claims.entry(namespace.to_string()).or_default();
            for name in names {
                let claimers = match by_name.get_mut(name.as_str()) {
                    Some(claimers) => claimers,
                    None => by_name.entry(name.as_str().into()).or_default(),
                };
                if !claimers.iter().any(|k| **k == *key) {
                    affected.extend(claimers.iter().map(|k| (**k).clone()));
                    claimers.push(me.clone());
                }
                if claimers.len() > 1 {
                    contested.insert(name.clone());
                }
            }
        }
        drop(claims);
        for other in affected {
            if &other != key {
                self.handle.resync(other);
            }
        }
        contested
    }

    /// Drops everything kept for a source that is gone, its Git cache included (its due
    /// time is the scheduler's to drop).
    fn forget(&self, key: &Key) {
        self.claim(key, "", &BTreeSet::new());
        self.memories.locked().remove(key);
        // Kubernetes names never hold `/` or `..`; a key that does names no cache of ours.
        let plain = |part: &str| !part.is_empty() && !part.contains(['/', '\\']) && part != "..";
        if plain(&key.0) && plain(&key.1) {
            let cache = effects::cache_path(self, &key.0, &key.1);
            tokio::task::block_in_place(|| cleanup::remove_cache(&cache));
        }
    }
}

/// Default cache directory: `$XDG_CACHE_HOME/catalog-reconciler`, else
/// `~/.cache/catalog-reconciler`, else a directory under the system temp dir.
pub fn default_cache_dir() -> PathBuf {
    if let Some(xdg) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(xdg).join("catalog-reconciler");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(home)
            .join(".cache")
            .join("catalog-reconciler");
    }
    std::env::temp_dir().join("catalog-reconciler-cache")
}
