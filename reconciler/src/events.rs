//! Publishing Kubernetes Events (`events.k8s.io/v1`) for both controllers.
//!
//! A repeat of an Event within [`SERIES_WINDOW`] (same object, type, reason, action and note)
//! is counted on the first one as a series (`series.count`, `series.lastObservedTime`)
//! instead of creating another object, as client-go's event recorder does.
//!
//! Why not kube-runtime's `Recorder`: to count repeats it keeps every Event it published in
//! the last six minutes and scans that whole cache on every publish. Verifying 100,000
//! images publishes 100,000 Events within a minute or two: a hundred thousand kept Events
//! (a few hundred MiB) and a quadratic scan. This publisher remembers at most
//! [`SERIES_CAPACITY`] recent Events (a few dozen bytes each), forgetting the oldest first;
//! a repeat of a forgotten Event starts a new one, which is what a restart does too.

use crate::panics::LockExt as _;
use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, Patch, PatchParams, PostParams};

/// How long a repeat still counts on the earlier Event (client-go and kube-runtime: 6 min).
pub const SERIES_WINDOW: SignedDuration = SignedDuration::from_mins(6);

/// How many recent Events are remembered for counting repeats.
pub const SERIES_CAPACITY: usize = 4096;

/// The API server refuses an Event whose note exceeds 1 KiB (`validation.go`'s
/// `NoteLengthLimit`), and a refused Event is lost: notes are cut to fit.
pub const NOTE_LIMIT_BYTES: usize = 1024;

/// Normal or Warning, as Kubernetes spells them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// One Event to publish about `regarding`.
pub struct EventSpec<'a> {
    pub type_: EventType,
    pub reason: &'a str,
    /// What the controller was doing: `Sync`, `Verify`.
    pub action: &'a str,
    pub note: &'a str,
}

/// An Event published recently: enough to count a repeat on it.
struct Published {
    /// Position in [`Recent::order`]'s numbering, to tell a stale queue slot from this one.
    seq: u64,
    namespace: String,
    name: String,
    count: i32,
    last: Timestamp,
}

/// Publishes Events for one controller; cheap to share behind an `Arc`.
pub struct EventPublisher {
    client: kube::Client,
    controller: String,
    instance: String,
    recent: Mutex<Recent>,
}

#[derive(Default)]
struct Recent {
    by_key: HashMap<u64, Published>,
    /// (key, seq) in publishing order, oldest first; a slot whose seq no longer matches the
    /// key's entry is stale (the entry expired and was published again).
    order: VecDeque<(u64, u64)>,
    next_seq: u64,
}

impl EventPublisher {
    pub fn new(client: kube::Client, controller: &str, instance: Option<String>) -> Self {
        EventPublisher {
            client,
            controller: controller.to_string(),
            instance: instance.unwrap_or_else(|| controller.to_string()),
            recent: Mutex::default(),
        }
    }

    /// Publishes `event` about `regarding` (created in the object's namespace).
    pub async fn publish(
        &self,
        regarding: &ObjectReference,
        event: &EventSpec<'_>,
    ) -> Result<(), kube::Error> {
        let note = cut_note(event.note);
        let key = series_key(regarding, event, &note);
        let now = Timestamp::now();
        let repeat = self.recent.locked().repeat(key, now);
        match repeat {
            Some((namespace, name, count)) => {
                let patch = serde_json::json!({"series": EventSeries {
                    count,
                    last_observed_time: MicroTime(now),
                }});
                Api::<Event>::namespaced(self.client.clone(), &namespace)
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await?;
            }
            None => {
                let object = self.new_event(regarding, event, note, now);
                let namespace = object.metadata.namespace.clone().unwrap_or_default();
                let name = object.metadata.name.clone().unwrap_or_default();
                Api::<Event>::namespaced(self.client.clone(), &namespace)
                    .create(&PostParams::default(), &object)
                    .await?;
                self.recent.locked().insert(
                    key,
                    Published {
                        seq: 0,
                        namespace,
                        name,
                        count: 1,
                        last: now,
                    },
                );
            }
        }
        Ok(())
    }

    fn new_event(
        &self,
        regarding: &ObjectReference,
        event: &EventSpec<'_>,
        note: String,
        now: Timestamp,
    ) -> Event {
        let namespace = regarding
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_string());
        let object_name = regarding.name.as_deref().unwrap_or(&self.controller);
        Event {
            action: Some(event.action.to_string()),
            reason: Some(event.reason.to_string()),
            event_time: Some(MicroTime(now)),
            regarding: Some(regarding.clone()),
            note: Some(note),
            metadata: ObjectMeta {
                namespace: Some(namespace),
                // client-go's form: the object's name and the time in hex.
                name: Some(format!("{object_name}.{:x}", now.as_nanosecond())),
                ..Default::default()
            },
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            type_: Some(event.type_.as_str().to_string()),
            ..Default::default()
        }
    }
}

impl Recent {
    /// The Event `key` repeats, with its new count, when it was published within
    /// [`SERIES_WINDOW`]; records the repeat.
    fn repeat(&mut self, key: u64, now: Timestamp) -> Option<(String, String, i32)> {
        let published = self.by_key.get_mut(&key)?;
        if published.last + SERIES_WINDOW <= now {
            self.by_key.remove(&key);
            return None;
        }
        published.count = published.count.saturating_add(1);
        published.last = now;
        Some((
            published.namespace.clone(),
            published.name.clone(),
            published.count,
        ))
    }

    /// Remembers a new Event, forgetting the oldest beyond [`SERIES_CAPACITY`].
    fn insert(&mut self, key: u64, mut published: Published) {
        published.seq = self.next_seq;
        self.next_seq += 1;
        self.order.push_back((key, published.seq));
        self.by_key.insert(key, published);
        while self.by_key.len() > SERIES_CAPACITY || self.order.len() > 2 * SERIES_CAPACITY {
            let Some((oldest, seq)) = self.order.pop_front() else {
                break;
            };
            if self.by_key.get(&oldest).is_some_and(|p| p.seq == seq) {
                self.by_key.remove(&oldest);
            }
        }
    }
}

/// What makes two Events the same (client-go's `getKey`: the object, type, reason, action,
/// the reporting controller's fields, and the note), hashed: the cache keeps no strings.
fn series_key(regarding: &ObjectReference, event: &EventSpec<'_>, note: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    (
        &regarding.api_version,
        &regarding.kind,
        &regarding.namespace,
        &regarding.name,
        &regarding.uid,
        &regarding.field_path,
    )
        .hash(&mut hasher);
    (event.type_, event.reason, event.action, note).hash(&mut hasher);
    hasher.finish()
}

/// `note`, or when over [`NOTE_LIMIT_BYTES`] its longest prefix ending on a character
/// boundary that fits with a trailing `…`.
pub fn cut_note(note: &str) -> String {
    if note.len() <= NOTE_LIMIT_BYTES {
        return note.to_string();
    }
    let mut end = NOTE_LIMIT_BYTES - '…'.len_utf8();
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &note[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn published(name: &str, last: Timestamp) -> Published {
        Published {
            seq: 0,
            namespace: "ns".into(),
            name: name.into(),
            count: 1,
            last,
        }
    }

    #[test]
    fn a_repeat_within_the_window_counts_on_the_first_event() {
        let mut recent = Recent::default();
        let t0 = Timestamp::now();
        recent.insert(7, published("a.1", t0));
        let (_, name, count) = recent.repeat(7, t0 + SignedDuration::from_mins(1)).unwrap();
        assert_eq!((name.as_str(), count), ("a.1", 2));
        let (_, _, count) = recent.repeat(7, t0 + SignedDuration::from_mins(5)).unwrap();
        assert_eq!(count, 3);
        // Six minutes after the last repeat: a new Event.
        assert!(
            recent
                .repeat(7, t0 + SignedDuration::from_mins(12))
                .is_none()
        );
    }

    #[test]
    fn the_memory_of_recent_events_is_bounded() {
        let mut recent = Recent::default();
        let t0 = Timestamp::now();
        for key in 0..(3 * SERIES_CAPACITY as u64) {
            recent.insert(key, published("x", t0));
        }
        assert_eq!(recent.by_key.len(), SERIES_CAPACITY);
        assert!(recent.order.len() <= 2 * SERIES_CAPACITY);
        // The newest are kept, the oldest forgotten.
        assert!(recent.repeat(3 * SERIES_CAPACITY as u64 - 1, t0).is_some());
        assert!(recent.repeat(0, t0).is_none());
    }

    #[test]
    fn event_notes_are_cut_in_bytes_on_a_character_boundary() {
        assert_eq!(cut_note("synced 3 entries"), "synced 3 entries");
        let exact = "é".repeat(NOTE_LIMIT_BYTES / 2);
        assert_eq!(cut_note(&exact), exact);
        // 600 three-byte characters: 1800 bytes, under 1000 characters (the old cut kept them all).
        for text in [
            "€".repeat(600),
            "é".repeat(700),
            format!("a{}", "😀".repeat(400)),
        ] {
            let cut = cut_note(&text);
            assert!(cut.len() <= NOTE_LIMIT_BYTES, "{} bytes", cut.len());
            assert!(
                cut.len() > NOTE_LIMIT_BYTES - 7,
                "cut too short: {}",
                cut.len()
            );
            assert!(cut.ends_with('…'));
            assert!(text.starts_with(cut.trim_end_matches('…')));
        }
    }

    #[test]
    fn a_different_note_is_a_different_event() {
        let reference = ObjectReference {
            name: Some("x".into()),
            ..Default::default()
        };
        let spec = |note| EventSpec {
            type_: EventType::Warning,
            reason: "Failed",
            action: "Verify",
            note,
        };
        assert_ne!(
            series_key(&reference, &spec("a"), "a"),
            series_key(&reference, &spec("b"), "b")
        );
    }
}
