//! Counting a resource's keys in a range without walking them: a list page's
//! `remainingItemCount` is "how many keys follow this one", and counting by walking made every
//! page of a 100,000-object list cost the whole list. A sorted copy of the keys, rebuilt only
//! after the resource changed, answers with two binary searches.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::resources::StorageKey;
use super::store::ObjKey;

/// A key range as `BTreeMap::range` takes it.
pub type KeyRange = (Bound<ObjKey>, Bound<ObjKey>);

/// Sorted keys of one resource, tagged with the rv of its last change when built.
type Index = (u64, Arc<Vec<ObjKey>>);

/// Sorted keys per resource, each tagged with the resourceVersion of the resource's last
/// change when it was built (a later change makes it stale).
#[derive(Default)]
pub struct KeyIndexes {
    cache: Mutex<HashMap<StorageKey, Index>>,
}

impl KeyIndexes {
    /// The sorted keys of `live`, the current objects of `storage`, last changed at
    /// `changed_at`: cached, or copied from the map once per change.
    pub fn keys(
        &self,
        storage: &StorageKey,
        changed_at: u64,
        live: &BTreeMap<ObjKey, Arc<Value>>,
    ) -> Arc<Vec<ObjKey>> {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        match cache.get(storage) {
            Some((at, keys)) if *at == changed_at => keys.clone(),
            _ => {
                let keys = Arc::new(live.keys().cloned().collect::<Vec<_>>());
                cache.insert(storage.clone(), (changed_at, keys.clone()));
                keys
            }
        }
    }
}

/// How many of the sorted `keys` lie in `range`: O(log n).
pub fn count_in(keys: &[ObjKey], range: &KeyRange) -> usize {
    let start = match &range.0 {
        Bound::Included(k) => keys.partition_point(|x| x < k),
        Bound::Excluded(k) => keys.partition_point(|x| x <= k),
        Bound::Unbounded => 0,
    };
    let end = match &range.1 {
        Bound::Included(k) => keys.partition_point(|x| x <= k),
        Bound::Excluded(k) => keys.partition_point(|x| x < k),
        Bound::Unbounded => keys.len(),
    };
    end.saturating_sub(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ns: &str, name: &str) -> ObjKey {
        (ns.to_string(), name.to_string())
    }

    #[test]
    fn counts_match_a_walk_of_the_map() {
        let map: BTreeMap<ObjKey, Arc<Value>> = ["a", "b", "c"]
            .iter()
            .flat_map(|ns| (0..4).map(move |i| key(ns, &format!("n{i}"))))
            .map(|k| (k, Arc::new(Value::Null)))
            .collect();
        let keys: Vec<ObjKey> = map.keys().cloned().collect();
        let b = |s: &str| Bound::Included(key(s, ""));
        let ranges: Vec<KeyRange> = vec![
            (Bound::Unbounded, Bound::Unbounded),
            (b("b"), Bound::Excluded(key("b\0", ""))),
            (
                Bound::Excluded(key("b", "n1")),
                Bound::Excluded(key("b\0", "")),
            ),
            (Bound::Excluded(key("a", "n9")), Bound::Unbounded),
            (b("c"), Bound::Included(key("c", "n2"))),
            (b("z"), Bound::Unbounded),
        ];
        for range in ranges {
            assert_eq!(
                count_in(&keys, &range),
                map.range(range.clone()).count(),
                "{range:?}"
            );
        }
    }

    #[test]
    fn a_change_rebuilds_the_index() {
        let storage: StorageKey = (String::new(), "configmaps".into());
        let mut map = BTreeMap::from([(key("d", "x"), Arc::new(Value::Null))]);
        let indexes = KeyIndexes::default();
        assert_eq!(indexes.keys(&storage, 5, &map).len(), 1);
        map.insert(key("d", "y"), Arc::new(Value::Null));
        assert_eq!(indexes.keys(&storage, 5, &map).len(), 1, "cached");
        assert_eq!(indexes.keys(&storage, 6, &map).len(), 2, "rebuilt");
    }
}
