//! Shared strings and label sets for the live cache's labels and annotations.
//!
//! Nearly every CatalogImage of a source carries the same label and annotation keys, and most
//! of the values repeat too (the source's name, its namespace, the revision, `arm64`, `true`).
//! Kept as one allocation per string, they were the largest part of the sync's watch cache
//! (heaptrack, bench-sync at 50,000 entries: 22 MB of 34). Interned, each distinct string is
//! held once; so is each distinct label set. Each table is swept of what no object holds any
//! more whenever it has doubled since the last sweep, so it stays within twice what the live
//! objects use (plus [`SWEEP_MIN`]), whatever names and values the objects come and go with.

use std::collections::HashSet;
use std::hash::Hash;
use std::sync::Arc;

/// Below this many strings (or label sets) a table is not swept.
const SWEEP_MIN: usize = 1024;

/// One label or annotation: key and value.
pub type Pair = (Arc<str>, Arc<str>);

/// A table of shared strings and shared label sets (see the module doc).
#[derive(Default)]
pub struct Strings {
    strings: Table<str>,
    sets: Table<[Pair]>,
}

impl Strings {
    /// The shared copy of `s`.
    pub fn get(&mut self, s: &str) -> Arc<str> {
        self.strings.get(s)
    }

    /// The shared copy of a whole label set. The labels of a source's objects mostly repeat
    /// as a set (source, architecture, distro, target): 100,000 objects hold a few sets, not
    /// 100,000 slices of five pairs (16 MB).
    pub fn set(&mut self, pairs: &[Pair]) -> Arc<[Pair]> {
        self.sets.get(pairs)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.strings.table.len()
    }
}

/// Shared copies of values of one kind, swept of those nobody else holds whenever the table
/// has doubled since the last sweep.
struct Table<T: ?Sized> {
    table: HashSet<Arc<T>>,
    sweep_at: usize,
}

impl<T: ?Sized> Default for Table<T> {
    fn default() -> Self {
        Table {
            table: HashSet::new(),
            sweep_at: SWEEP_MIN,
        }
    }
}

impl<T: ?Sized + Hash + Eq> Table<T>
where
    for<'a> Arc<T>: From<&'a T>,
{
    fn get(&mut self, value: &T) -> Arc<T> {
        if let Some(shared) = self.table.get(value) {
            return shared.clone();
        }
        if self.table.len() >= self.sweep_at {
            self.table.retain(|s| Arc::strong_count(s) > 1);
            self.sweep_at = (2 * self.table.len()).max(SWEEP_MIN);
        }
        let shared: Arc<T> = value.into();
        self.table.insert(shared.clone());
        shared
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_strings_share_one_allocation() {
        let mut strings = Strings::default();
        let a = strings.get("arm64");
        let b = strings.get("arm64");
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(strings.len(), 1);
    }

    #[test]
    fn equal_label_sets_share_one_allocation_and_unheld_ones_are_swept() {
        let mut strings = Strings::default();
        let pair = |k: &str, v: &str, strings: &mut Strings| (strings.get(k), strings.get(v));
        let arm = [pair("arch", "arm64", &mut strings)];
        let a = strings.set(&arm);
        let same = [pair("arch", "arm64", &mut strings)];
        let b = strings.set(&same);
        assert!(Arc::ptr_eq(&a, &b));
        for i in 0..10_000 {
            let gone = [pair("arch", &format!("gone-{i}"), &mut strings)];
            strings.set(&gone);
        }
        assert!(strings.sets.table.len() <= 2 * SWEEP_MIN);
        assert!(Arc::ptr_eq(&a, &strings.set(&arm)), "a held set survives");
    }

    #[test]
    fn strings_nobody_holds_are_swept_so_the_table_stays_bounded() {
        let mut strings = Strings::default();
        let kept: Vec<Arc<str>> = (0..10).map(|i| strings.get(&format!("kept-{i}"))).collect();
        for i in 0..100_000 {
            strings.get(&format!("gone-{i}"));
        }
        assert!(
            strings.len() <= 2 * SWEEP_MIN,
            "{} strings after 100,000 dropped ones",
            strings.len()
        );
        for s in &kept {
            assert!(
                Arc::ptr_eq(s, &strings.get(s)),
                "held strings survive a sweep"
            );
        }
    }
}
