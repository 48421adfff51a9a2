//! When a source's previews are refreshed: at its `spec.interval`, at once when its
//! `preview-requested-at` annotation changes (a pull-request webhook), never two passes of one
//! source at once; and which sources' `status.previews` must be emptied because previews were
//! turned off. Pure (time is a parameter), so it is unit-tested.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use catalog_api::CatalogSource;
use catalog_api::labels::PREVIEW_REQUESTED_AT;

use crate::sync::Key;

/// What to do on one tick.
#[derive(Default)]
pub struct Work {
    /// Sources whose previews to refresh.
    pub passes: Vec<Arc<CatalogSource>>,
    /// Sources with previews off whose `status.previews` still lists some.
    pub clear: Vec<Arc<CatalogSource>>,
}

#[derive(Default)]
pub struct Schedule {
    next: HashMap<Key, Instant>,
    requested: HashMap<Key, Option<String>>,
    running: HashSet<Key>,
    cleared: HashSet<Key>,
}

impl Schedule {
    /// The work due at `now` among `sources`; the passes returned count as running until
    /// [`Schedule::finished`].
    pub fn due(&mut self, sources: &[Arc<CatalogSource>], now: Instant) -> Work {
        let mut work = Work::default();
        let on: HashSet<Key> = sources
            .iter()
            .filter(|s| super::previews_on(s))
            .map(|s| key_of(s))
            .collect();
        self.next.retain(|k, _| on.contains(k));
        self.requested.retain(|k, _| on.contains(k));
        self.cleared.retain(|k| !on.contains(k));
        for source in sources {
            let key = key_of(source);
            if !on.contains(&key) {
                let listed = source
                    .status
                    .as_ref()
                    .is_some_and(|s| !s.previews.is_empty());
                let deleting = source.metadata.deletion_timestamp.is_some();
                if listed && !deleting && self.cleared.insert(key) {
                    work.clear.push(source.clone());
                }
                continue;
            }
            let asked = requested_at(source);
            let fresh = self.requested.get(&key).is_none_or(|seen| *seen != asked);
            let due = self.next.get(&key).is_none_or(|at| *at <= now);
            if self.running.contains(&key) || !(fresh || due) {
                continue;
            }
            let interval = source.spec.interval().unwrap_or(Duration::from_secs(60));
            self.requested.insert(key.clone(), asked);
            self.next.insert(key.clone(), now + interval);
            self.running.insert(key);
            work.passes.push(source.clone());
        }
        work
    }

    pub fn finished(&mut self, key: &Key) {
        self.running.remove(key);
    }

    /// The sources with previews on (what the runner keeps memory for).
    pub fn live(&self) -> HashSet<Key> {
        self.next.keys().cloned().collect()
    }
}

pub fn key_of(source: &CatalogSource) -> Key {
    (
        source.metadata.namespace.clone().unwrap_or_default(),
        source.metadata.name.clone().unwrap_or_default(),
    )
}

fn requested_at(source: &CatalogSource) -> Option<String> {
    source
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(PREVIEW_REQUESTED_AT))
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(enabled: bool, asked: Option<&str>, listed: bool) -> Arc<CatalogSource> {
        let mut value = serde_json::json!({
            "apiVersion": "automotive.sdv.cloud.redhat.com/v1alpha1", "kind": "CatalogSource",
            "metadata": {"name": "dev", "namespace": "ns"},
            "spec": {"url": "https://g/a/b.git", "interval": "1m",
                "commitStatus": {"provider": "github", "apiUrl": "https://api", "secretRef": {"name": "t"}},
                "pullRequests": {"enabled": enabled}},
        });
        if let Some(at) = asked {
            value["metadata"]["annotations"] = serde_json::json!({PREVIEW_REQUESTED_AT: at});
        }
        if listed {
            value["status"] =
                serde_json::json!({"previews": [{"number": 1, "head": "a", "state": "Success"}]});
        }
        Arc::new(serde_json::from_value(value).unwrap())
    }

    #[test]
    fn passes_run_at_the_interval_or_on_a_new_request_one_at_a_time() {
        let mut schedule = Schedule::default();
        let t0 = Instant::now();
        let key = ("ns".to_string(), "dev".to_string());
        assert_eq!(
            schedule.due(&[source(true, None, false)], t0).passes.len(),
            1,
            "first"
        );
        let asked = [source(true, Some("1"), false)];
        assert!(
            schedule.due(&asked, t0).passes.is_empty(),
            "one pass at a time"
        );
        schedule.finished(&key);
        assert_eq!(
            schedule.due(&asked, t0).passes.len(),
            1,
            "the request waited for it"
        );
        schedule.finished(&key);
        assert!(
            schedule
                .due(&asked, t0 + Duration::from_secs(30))
                .passes
                .is_empty()
        );
        assert_eq!(
            schedule
                .due(&asked, t0 + Duration::from_secs(61))
                .passes
                .len(),
            1,
            "interval"
        );
        schedule.finished(&key);
        let again = [source(true, Some("2"), false)];
        assert_eq!(
            schedule
                .due(&again, t0 + Duration::from_secs(62))
                .passes
                .len(),
            1,
            "request"
        );
        assert_eq!(schedule.live(), HashSet::from([key]));
    }

    #[test]
    fn turning_previews_off_clears_the_listed_ones_once() {
        let mut schedule = Schedule::default();
        let t0 = Instant::now();
        let off = [source(false, None, true)];
        let work = schedule.due(&off, t0);
        assert!(work.passes.is_empty());
        assert_eq!(work.clear.len(), 1);
        assert!(schedule.due(&off, t0).clear.is_empty(), "once");
        assert!(
            schedule
                .due(&[source(false, None, false)], t0)
                .clear
                .is_empty()
        );
        assert!(schedule.live().is_empty());
    }
}
