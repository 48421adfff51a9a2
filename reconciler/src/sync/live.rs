//! The sync's watch cache of CatalogImages.
//!
//! The planner needs, per live object, its owner label, the labels and annotations it
//! compares, whether the spec equals the desired one, the resourceVersion and the phase.
//! [`LiveImage`] keeps exactly that (the spec as a fingerprint), so a 10,000-entry cache
//! costs about a third of what whole CatalogImages would. [`LiveCache`] is fed by the
//! CatalogImage watch and lets a sync wait until the watch has shown its own writes
//! ([`PendingWrites`]), so the next plan never re-applies what was just written.

use crate::panics::RwLockExt as _;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::Hasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::watcher;
use tokio::sync::Notify;

use catalog_api::image::Phase;
use catalog_api::labels::{CATALOG_SOURCE, SOURCE_NAMESPACE};
use catalog_api::{CatalogImage, CatalogImageSpec};

use super::intern::{Pair, Strings};

/// kubectl's client-side apply copy of the whole object: never compared by the sync.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Label or annotation pairs, exactly as many as there are (a growing vector would leave up
/// to half its room unused on each of 100,000 objects); the strings are shared between
/// objects, and so are whole label sets ([`Strings`]).
type Pairs = Arc<[Pair]>;

/// What the sync knows of one live CatalogImage.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveImage {
    pub name: Arc<str>,
    pub resource_version: u64,
    pub phase: Option<Phase>,
    /// Sorted by key.
    labels: Pairs,
    /// Sorted by key; without kubectl's last-applied copy.
    annotations: Pairs,
    spec_fingerprint: u64,
}

impl LiveImage {
    pub fn from_object(object: &CatalogImage) -> LiveImage {
        LiveImage::interned(object, &mut Strings::default())
    }

    /// As [`Self::from_object`], the label and annotation strings taken from `strings`.
    fn interned(object: &CatalogImage, strings: &mut Strings) -> LiveImage {
        let meta = &object.metadata;
        let mut pairs = |map: Option<&BTreeMap<String, String>>| -> Vec<Pair> {
            map.into_iter()
                .flatten()
                .filter(|(k, _)| k.as_str() != LAST_APPLIED)
                .map(|(k, v)| (strings.get(k), strings.get(v)))
                .collect()
        };
        let (labels, annotations) = (
            pairs(meta.labels.as_ref()),
            pairs(meta.annotations.as_ref()),
        );
        LiveImage {
            name: meta.name.as_deref().unwrap_or_default().into(),
            resource_version: resource_version(meta),
            phase: object.status.as_ref().and_then(|s| s.phase),
            // Annotations name the object's own file: a set per object, not worth sharing.
            labels: strings.set(&labels),
            annotations: annotations.into(),
            spec_fingerprint: spec_fingerprint(&object.spec),
        }
    }

    pub fn label(&self, key: &str) -> Option<&str> {
        lookup(&self.labels, key)
    }

    pub fn labels(&self) -> impl Iterator<Item = (&str, &str)> {
        self.labels.iter().map(|(k, v)| (&**k, &**v))
    }

    pub fn annotation(&self, key: &str) -> Option<&str> {
        lookup(&self.annotations, key)
    }

    /// The source named on this object as (namespace, name): the namespace is `None` when the
    /// object carries the label without the annotation (hand-made, or left by another tool).
    pub fn owner(&self) -> Option<(Option<&str>, &str)> {
        let name = self.label(CATALOG_SOURCE)?;
        Some((self.annotation(SOURCE_NAMESPACE), name))
    }

    /// Whether source `namespace/name` manages this object: both the `catalog-source` label
    /// and the `source-namespace` annotation must name it. Ownership is never inferred from
    /// the label alone, which anyone who can create a CatalogImage can set.
    pub fn managed_by(&self, namespace: &str, name: &str) -> bool {
        self.owner() == Some((Some(namespace), name))
    }

    /// Equal in everything the planner reads (the verifier's status writes change only the
    /// phase and the resourceVersion).
    fn same_except_status(&self, other: &LiveImage) -> bool {
        self.labels == other.labels
            && self.annotations == other.annotations
            && self.spec_fingerprint == other.spec_fingerprint
    }

    /// Takes the phase and resourceVersion of `newer`, equal in everything else: in place
    /// when no plan holds this object. At 100,000 images the verifier's first pass changes
    /// every status; replacing each object (and its annotations) would scatter the cache's
    /// long-lived allocations among that pass's short-lived ones, which the allocator cannot
    /// give back.
    fn take_status(self: &mut Arc<Self>, newer: LiveImage) {
        match Arc::get_mut(self) {
            Some(object) => {
                object.resource_version = newer.resource_version;
                object.phase = newer.phase;
            }
            None => {
                *self = Arc::new(LiveImage {
                    name: self.name.clone(),
                    labels: self.labels.clone(),
                    annotations: self.annotations.clone(),
                    ..newer
                })
            }
        }
    }

    pub fn spec_equals(&self, spec: &CatalogImageSpec) -> bool {
        self.spec_fingerprint == spec_fingerprint(spec)
    }
}

/// An object's resourceVersion as a number (0 when absent). The API server's versions are
/// opaque strings in general; this project relies on them being increasing integers, as
/// etcd's and the emulator's are, to tell whether the watch has shown a write.
pub(crate) fn resource_version(meta: &ObjectMeta) -> u64 {
    meta.resource_version
        .as_deref()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn lookup<'a>(pairs: &'a Pairs, key: &str) -> Option<&'a str> {
    pairs
        .binary_search_by(|(k, _)| (**k).cmp(key))
        .ok()
        .map(|i| &*pairs[i].1)
}

/// A 64-bit hash of the spec's JSON form: equal specs hash equally, and two different specs
/// colliding is as likely as a random 64-bit match.
fn spec_fingerprint(spec: &CatalogImageSpec) -> u64 {
    struct HashWriter(std::hash::DefaultHasher);
    impl std::io::Write for HashWriter {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.write(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut writer = HashWriter(std::hash::DefaultHasher::new());
    serde_json::to_writer(&mut writer, spec).expect("a spec always serializes");
    writer.0.finish()
}

type Namespaces = HashMap<String, HashMap<Arc<str>, Arc<LiveImage>>>;

#[derive(Default)]
struct Inner {
    objects: Namespaces,
    /// Counts the changes a plan can see (not the verifier's status-only writes): a plan made
    /// at the same count saw the same objects.
    object_changes: u64,
    /// A re-list in progress: replaces `objects` when complete, as kube's reflector does.
    relist: Option<Namespaces>,
    ready: bool,
    /// The label and annotation strings of `objects` and `relist`.
    strings: Strings,
}

/// The CatalogImages of every watched namespace, by namespace and name.
#[derive(Default)]
pub struct LiveCache {
    inner: RwLock<Inner>,
    /// Highest resourceVersion the watch has shown (events arrive in resourceVersion order).
    seen: AtomicU64,
    changed: Notify,
}

impl LiveCache {
    /// Applies one watch event and says what it changed for the sync.
    pub fn handle(&self, event: &watcher::Event<CatalogImage>) -> Change {
        let key = |o: &CatalogImage, strings: &mut Strings| {
            (
                o.metadata.namespace.clone().unwrap_or_default(),
                LiveImage::interned(o, strings),
            )
        };
        let change = {
            let mut inner = self.inner.write_locked();
            let inner = &mut *inner;
            let change = match event {
                watcher::Event::Init => {
                    inner.relist = Some(Namespaces::new());
                    Change::Nothing
                }
                watcher::Event::InitApply(o) => {
                    let (ns, live) = key(o, &mut inner.strings);
                    let relist = inner.relist.get_or_insert_default();
                    relist
                        .entry(ns)
                        .or_default()
                        .insert(live.name.clone(), Arc::new(live));
                    Change::Object
                }
                watcher::Event::InitDone => {
                    inner.objects = inner.relist.take().unwrap_or_default();
                    inner.ready = true;
                    let newest = inner
                        .objects
                        .values()
                        .flat_map(|m| m.values())
                        .map(|o| o.resource_version)
                        .max()
                        .unwrap_or(0);
                    self.seen.fetch_max(newest, Ordering::SeqCst);
                    Change::Nothing
                }
                watcher::Event::Apply(o) => {
                    let (ns, live) = key(o, &mut inner.strings);
                    self.seen.fetch_max(live.resource_version, Ordering::SeqCst);
                    let names = inner.objects.entry(ns).or_default();
                    match names.get_mut(&live.name) {
                        Some(old) if old.same_except_status(&live) => {
                            old.take_status(live);
                            Change::Status
                        }
                        _ => {
                            names.insert(live.name.clone(), Arc::new(live));
                            Change::Object
                        }
                    }
                }
                watcher::Event::Delete(o) => {
                    let (ns, live) = key(o, &mut inner.strings);
                    self.seen.fetch_max(live.resource_version, Ordering::SeqCst);
                    if let Some(names) = inner.objects.get_mut(&ns) {
                        names.remove(&live.name);
                        if names.is_empty() {
                            inner.objects.remove(&ns);
                        }
                    }
                    Change::Object
                }
            };
            if change == Change::Object || matches!(event, watcher::Event::InitDone) {
                inner.object_changes += 1;
            }
            change
        };
        self.changed.notify_waiters();
        change
    }

    /// Waits for the first complete list.
    pub async fn wait_until_ready(&self) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.inner.read_locked().ready {
                return;
            }
            changed.await;
        }
    }

    /// The names of the objects source `namespace/name` manages by its source-namespace
    /// annotation, by namespace, in every namespace but `except`: what it leaves behind when
    /// it is deleted or its target namespace moves.
    pub fn owned_by(
        &self,
        namespace: &str,
        name: &str,
        except: Option<&str>,
    ) -> BTreeMap<String, Vec<String>> {
        let inner = self.inner.read_locked();
        let mut owned: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (ns, names) in inner
            .objects
            .iter()
            .filter(|(ns, _)| Some(ns.as_str()) != except)
        {
            for object in names.values() {
                if object.owner() == Some((Some(namespace), name)) {
                    owned
                        .entry(ns.clone())
                        .or_default()
                        .push(object.name.to_string());
                }
            }
        }
        owned
    }

    /// The objects of `namespace`, in no particular order.
    #[cfg(test)]
    pub fn namespace(&self, namespace: &str) -> Vec<Arc<LiveImage>> {
        self.versioned_namespace(namespace).1
    }

    /// The objects of `namespace` and the count of changes they reflect (see
    /// [`Inner::object_changes`]): equal counts mean the same objects as a plan reads them.
    pub fn versioned_namespace(&self, namespace: &str) -> (u64, Vec<Arc<LiveImage>>) {
        let inner = self.inner.read_locked();
        let objects = inner
            .objects
            .get(namespace)
            .map(|names| names.values().cloned().collect())
            .unwrap_or_default();
        (inner.object_changes, objects)
    }

    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<LiveImage>> {
        self.inner
            .read_locked()
            .objects
            .get(namespace)
            .and_then(|names| names.get(name).cloned())
    }

    /// Waits (at most `limit`) until the cache shows every write in `pending`, forgetting
    /// the ones it shows. Past the limit the rest is forgotten too (returns false): the next
    /// plan then works from the cache as it is, which at worst re-applies an object unchanged.
    pub async fn catch_up(&self, pending: &mut PendingWrites, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            while let Some((name, write)) = pending.queue.front() {
                if !self.shows(&pending.namespace, name, *write) {
                    break;
                }
                pending.queue.pop_front();
            }
            if pending.queue.is_empty() {
                return true;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                tracing::debug!(
                    namespace = %pending.namespace,
                    unseen = pending.queue.len(),
                    "the watch has not shown every write in time; planning from the cache as it is"
                );
                pending.queue.clear();
                return false;
            }
        }
    }

    fn shows(&self, namespace: &str, name: &str, write: Write) -> bool {
        let cached = self.get(namespace, name);
        match write {
            // Anything the watch has shown since is newer than our write.
            Write::Applied(rv) => {
                self.seen.load(Ordering::SeqCst) >= rv
                    || cached.is_some_and(|o| o.resource_version >= rv)
            }
            Write::Deleted(old_rv) => cached.is_none_or(|o| o.resource_version > old_rv),
        }
    }
}

/// What a watch event changed, for the sources managing the object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Nothing,
    /// Only the status (the verifier's writes): the source's summary counts, which are
    /// refreshed in batches rather than on every event.
    Status,
    /// Something the plan reads, or the object came or went: drift is reverted at once.
    Object,
}

/// One write of a sync, as the cache must show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Write {
    /// Applied; the server answered with this resourceVersion.
    Applied(u64),
    /// Deleted; the object had this resourceVersion before.
    Deleted(u64),
}

/// A source's writes the watch has not shown yet, in the order they were made (so checking
/// from the front is linear overall).
#[derive(Default)]
pub struct PendingWrites {
    namespace: String,
    queue: VecDeque<(Box<str>, Write)>,
}

impl PendingWrites {
    pub fn push(&mut self, namespace: &str, name: &str, write: Write) {
        if self.namespace != namespace {
            self.queue.clear();
            self.namespace = namespace.to_string();
        }
        self.queue.push_back((name.into(), write));
    }
}

#[cfg(test)]
#[path = "live_tests.rs"]
mod tests;
