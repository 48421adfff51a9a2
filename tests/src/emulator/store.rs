//! The in-memory object store: objects by resource and key, a global monotonic
//! resourceVersion (like etcd's revision), a bounded change history for watch replay and
//! consistent paging, and a broadcast channel that feeds open watches.
//!
//! Every change is committed and broadcast under one lock, so watchers see changes in
//! resourceVersion order and a watch started "after rv N" misses nothing.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, VecDeque, btree_map};
use std::iter::Peekable;
use std::ops::Bound;
use std::sync::{Arc, OnceLock};

use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::key_index::{KeyIndexes, KeyRange, count_in};
use super::meta;
use super::resources::{Flavor, ResourceDef, StorageKey, builtin_defs};

/// `(namespace or "", name)`: objects sort like etcd keys.
pub type ObjKey = (String, String);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Modified,
    Deleted,
}

/// One committed change.
#[derive(Debug)]
pub struct Change {
    pub rv: u64,
    pub key: StorageKey,
    pub kind: ChangeKind,
    /// The object after the change (for deletions: the last state, with the deletion's rv).
    pub object: Arc<Value>,
    /// The object before the change; lets watches with selectors turn a change into
    /// ADDED/DELETED when an object starts or stops matching, and lets lists rewind.
    pub prev: Option<Arc<Value>>,
}

/// A change as broadcast to open watches.
#[derive(Debug)]
pub struct Sent {
    pub change: Arc<Change>,
    /// The object's JSON in one apiVersion, built by the first watcher that sends it and
    /// reused by the others. Held here rather than on the [`Change`], so it lives as long as
    /// the broadcast buffer holds the change, not as long as the history does.
    pub json: OnceLock<(String, Vec<u8>)>,
}

/// What open watches receive.
#[derive(Clone, Debug)]
pub enum Msg {
    Change(Arc<Sent>),
    /// Periodic: every change up to this rv has been broadcast (source of BOOKMARKs).
    Tick(u64),
}

type DefKey = (String, String, String);

pub struct Store {
    rv: u64,
    defs: BTreeMap<DefKey, Arc<ResourceDef>>,
    objects: HashMap<StorageKey, BTreeMap<ObjKey, Arc<Value>>>,
    /// The rv of each resource's last change: when its key index is stale.
    changed: HashMap<StorageKey, u64>,
    indexes: KeyIndexes,
    history: VecDeque<Arc<Change>>,
    history_limit: usize,
    /// Every change with rv <= this is gone from the history.
    compacted_rv: u64,
    tx: broadcast::Sender<Msg>,
}

/// Key of an object in the store.
pub fn obj_key(namespace: Option<&str>, name: &str) -> ObjKey {
    (namespace.unwrap_or_default().to_string(), name.to_string())
}

impl Store {
    /// A store with the built-in resources and the namespaces every cluster has.
    pub fn new(history_limit: usize) -> Self {
        let (tx, _) = broadcast::channel(16384);
        let mut store = Store {
            rv: 1,
            defs: BTreeMap::new(),
            objects: HashMap::new(),
            changed: HashMap::new(),
            indexes: KeyIndexes::default(),
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            compacted_rv: 0,
            tx,
        };
        store.register(builtin_defs());
        let ns_key: StorageKey = (String::new(), "namespaces".into());
        for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let obj = json!({
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": name, "uid": meta::new_uid(), "creationTimestamp": meta::now(),
                    "labels": {"kubernetes.io/metadata.name": name}},
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"}
            });
            store.put(&ns_key, obj_key(None, name), obj);
        }
        store
    }

    /// The current (latest committed) resourceVersion.
    pub fn rv(&self) -> u64 {
        self.rv
    }

    pub fn def(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceDef>> {
        self.defs
            .get(&(group.to_string(), version.to_string(), plural.to_string()))
            .cloned()
    }

    /// Every served resource, ordered by group, version, plural.
    pub fn defs(&self) -> Vec<Arc<ResourceDef>> {
        self.defs.values().cloned().collect()
    }

    /// Serves the given resources (replacing same-named ones).
    pub fn register(&mut self, defs: Vec<ResourceDef>) {
        for d in defs {
            let k = (d.group.clone(), d.version.clone(), d.plural.clone());
            self.defs.insert(k, Arc::new(d));
        }
    }

    /// Stops serving every version of a custom resource (objects are left to the caller).
    pub fn unregister(&mut self, storage: &StorageKey) {
        self.defs
            .retain(|_, d| !(d.flavor == Flavor::Custom && &d.storage == storage));
    }

    pub fn get(&self, storage: &StorageKey, key: &ObjKey) -> Option<Arc<Value>> {
        self.objects.get(storage)?.get(key).cloned()
    }

    /// All current objects of a resource, in key order.
    pub fn objects(&self, storage: &StorageKey) -> BTreeMap<ObjKey, Arc<Value>> {
        self.objects.get(storage).cloned().unwrap_or_default()
    }

    /// Iterates the current objects of a resource without copying the map.
    pub fn iter(&self, storage: &StorageKey) -> impl Iterator<Item = (&ObjKey, &Arc<Value>)> {
        self.objects.get(storage).into_iter().flat_map(|m| m.iter())
    }

    fn record(&mut self, change: Change) -> Arc<Value> {
        self.changed.insert(change.key.clone(), change.rv);
        let change = Arc::new(change);
        let obj = change.object.clone();
        self.history.push_back(change.clone());
        while self.history.len() > self.history_limit {
            if let Some(old) = self.history.pop_front() {
                self.compacted_rv = old.rv;
            }
        }
        let sent = Sent {
            change,
            json: OnceLock::new(),
        };
        let _ = self.tx.send(Msg::Change(Arc::new(sent)));
        obj
    }

    fn stamp(&mut self, obj: &mut Value) -> u64 {
        self.rv += 1;
        if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            m.insert("resourceVersion".into(), json!(self.rv.to_string()));
        }
        self.rv
    }

    /// Creates or replaces an object, assigning the next resourceVersion.
    pub fn put(&mut self, storage: &StorageKey, key: ObjKey, mut obj: Value) -> Arc<Value> {
        let rv = self.stamp(&mut obj);
        let obj = Arc::new(obj);
        let prev = self
            .objects
            .entry(storage.clone())
            .or_default()
            .insert(key, obj.clone());
        let kind = if prev.is_some() {
            ChangeKind::Modified
        } else {
            ChangeKind::Added
        };
        self.record(Change {
            rv,
            key: storage.clone(),
            kind,
            object: obj,
            prev,
        })
    }

    /// Removes an object; `last` is its final state (it gets the deletion's resourceVersion).
    pub fn remove(&mut self, storage: &StorageKey, key: &ObjKey, mut last: Value) -> Arc<Value> {
        let rv = self.stamp(&mut last);
        let prev = self.objects.get_mut(storage).and_then(|m| m.remove(key));
        self.record(Change {
            rv,
            key: storage.clone(),
            kind: ChangeKind::Deleted,
            object: Arc::new(last),
            prev,
        })
    }

    /// Removes every object of a resource (its CRD was deleted).
    pub fn remove_all(&mut self, storage: &StorageKey) {
        for (key, obj) in self.objects(storage) {
            self.remove(storage, &key, (*obj).clone());
        }
        self.objects.remove(storage);
    }

    /// The objects of a resource as they were at `rv`, without copying them: the live map
    /// plus the state at `rv` of the few keys changed since (found by walking the history
    /// back to `rv`), so serving a page costs the page, not the whole resource. `None` when
    /// that rv has been compacted (callers answer 410 Expired).
    pub fn view(&self, storage: &StorageKey, rv: u64) -> Option<View<'_>> {
        static EMPTY: BTreeMap<ObjKey, Arc<Value>> = BTreeMap::new();
        let live = self.objects.get(storage).unwrap_or(&EMPTY);
        let mut rewound = BTreeMap::new();
        if rv < self.rv {
            if rv < self.compacted_rv {
                return None;
            }
            // Newest first: the oldest change after `rv` is applied last, and its `prev` is
            // the state at `rv`.
            let changed = self.history.iter().rev().take_while(|c| c.rv > rv);
            for ch in changed.filter(|c| &c.key == storage) {
                rewound.insert(key_of(&ch.object), ch.prev.clone());
            }
        }
        Some(View {
            live,
            rewound,
            keys: (storage.clone(), self.last_change(storage)),
            indexes: &self.indexes,
        })
    }

    /// Changes after `rv` (for a resumed watch), or `None` if some were compacted away.
    pub fn changes_since(&self, rv: u64) -> Option<Vec<Arc<Change>>> {
        if rv < self.compacted_rv {
            return None;
        }
        let start = self.history.partition_point(|c| c.rv <= rv);
        Some(self.history.iter().skip(start).cloned().collect())
    }

    /// A receiver of every change committed from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Msg> {
        self.tx.subscribe()
    }

    /// Broadcasts a bookmark tick at the current rv.
    pub fn tick(&self) {
        let _ = self.tx.send(Msg::Tick(self.rv));
    }

    /// Forgets the whole change history and moves the rv past every version handed out, so
    /// that any watch or continue token from before answers 410 Expired.
    pub fn compact(&mut self) {
        self.rv += 1;
        self.compacted_rv = self.rv;
        self.history.clear();
    }

    /// The rv of the last change to a resource's objects (0: none since startup).
    pub fn last_change(&self, storage: &StorageKey) -> u64 {
        self.changed.get(storage).copied().unwrap_or(0)
    }

    /// Sets how many changes are kept for watch replay.
    pub fn set_history_limit(&mut self, limit: usize) {
        self.history_limit = limit.max(1);
    }
}

/// A resource's objects as of one resourceVersion (see [`Store::view`]).
pub struct View<'a> {
    live: &'a BTreeMap<ObjKey, Arc<Value>>,
    /// Keys changed after the view's rv, with their state then (`None`: absent then).
    rewound: BTreeMap<ObjKey, Option<Arc<Value>>>,
    /// The resource and the rv of its last change, to find its key index.
    keys: (StorageKey, u64),
    indexes: &'a KeyIndexes,
}

impl View<'_> {
    /// The objects in key order, after `after` (a continue token's last key) and, given a
    /// namespace, only that namespace's (a key's namespace is its object's), so a namespaced
    /// page and the count of what follows it never look at other namespaces' objects.
    pub fn entries(&self, after: Option<&ObjKey>, namespace: Option<&str>) -> Entries<'_> {
        let range = key_range(after, namespace);
        Entries {
            live: self.live.range(range.clone()).peekable(),
            rewound: self.rewound.range(range).peekable(),
        }
    }

    /// How many [`View::entries`] there are, in O(log n) plus the keys changed since the
    /// view's rv: the live keys in range, corrected by the rewound ones (present then but
    /// not now, or the reverse).
    pub fn count(&self, after: Option<&ObjKey>, namespace: Option<&str>) -> usize {
        let range = key_range(after, namespace);
        let keys = self.indexes.keys(&self.keys.0, self.keys.1, self.live);
        let live = count_in(&keys, &range) as isize;
        let rewound: isize = (self.rewound.range(range))
            .map(|(k, then)| isize::from(then.is_some()) - isize::from(self.live.contains_key(k)))
            .sum();
        usize::try_from(live + rewound).unwrap_or(0)
    }
}

/// The keys after `after` within `namespace`: `(ns, "")` up to, excluded, `(ns + "\0", "")`,
/// as no string sorts between `ns` and `ns + "\0"`. Empty (not a panicking inverted range)
/// when `after` is past the namespace.
fn key_range(after: Option<&ObjKey>, namespace: Option<&str>) -> KeyRange {
    let key = |ns: String| (ns, String::new());
    let (mut lower, upper) = match namespace {
        Some(ns) => (
            Bound::Included(key(ns.to_string())),
            Bound::Excluded(key(format!("{ns}\0"))),
        ),
        None => (Bound::Unbounded, Bound::Unbounded),
    };
    if let Some(after) = after {
        if let Bound::Excluded(end) = &upper
            && after >= end
        {
            return (Bound::Included(end.clone()), upper);
        }
        if !matches!(&lower, Bound::Included(start) if after < start) {
            lower = Bound::Excluded(after.clone());
        }
    }
    (lower, upper)
}

/// Iterator of [`View::entries`]: merges the live map with the rewound keys, which win.
pub struct Entries<'a> {
    live: Peekable<btree_map::Range<'a, ObjKey, Arc<Value>>>,
    rewound: Peekable<btree_map::Range<'a, ObjKey, Option<Arc<Value>>>>,
}

impl<'a> Iterator for Entries<'a> {
    type Item = (&'a ObjKey, &'a Arc<Value>);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let order = match (self.live.peek(), self.rewound.peek()) {
                (None, None) => return None,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some((l, _)), Some((r, _))) => l.cmp(r),
            };
            if order == Ordering::Less {
                return self.live.next();
            }
            if order == Ordering::Equal {
                self.live.next();
            }
            if let Some((k, Some(o))) = self.rewound.next() {
                return Some((k, o));
            }
        }
    }
}

/// The store key of a stored object.
pub fn key_of(obj: &Value) -> ObjKey {
    let s = |p: &str| {
        obj.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    (s("/metadata/namespace"), s("/metadata/name"))
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
