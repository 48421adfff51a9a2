//! Long waits between verifications, kept in each image's [`Memory`] instead of
//! kube-runtime's scheduler.
//!
//! Every image waits for its next verification (the interval, a backoff, an open breaker).
//! kube-runtime's scheduler keeps two copies of a reference per waiting image, about 600
//! bytes with its tables: 60 MB at 100,000 images (heaptrack, bench-sync). The instant is
//! already in the image's memory, so a wait of [`TIMER_MIN`] or more is left there and a sweep
//! every [`TICK`] fires the due ones through the Controller's `reconcile_on`, at most one tick
//! late. Shorter waits (a busy host, the first backoffs, a failed write) stay with
//! kube-runtime, which keeps them exact.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use tokio::sync::mpsc;

use super::view::ImageView;
use super::{Memories, Memory, Shared};
use crate::panics::LockExt as _;

/// Waits this long or longer are fired by the sweep.
pub const TIMER_MIN: Duration = Duration::from_secs(10);

/// How often the sweep looks for due images.
pub const TICK: Duration = Duration::from_secs(1);

/// The Action that ends a reconcile waiting `wait`: kube-runtime's requeue for a short wait;
/// for a long one, the timer in `memory` (its planned instant already set by the caller).
fn after(wait: Duration) -> Action {
    if armed(wait) {
        Action::await_change()
    } else {
        Action::requeue(wait)
    }
}

/// Whether the sweep fires a wait of `wait` (kube-runtime's requeue fires a shorter one).
fn armed(wait: Duration) -> bool {
    wait >= TIMER_MIN
}

/// Plans the image's next verification in `wait` in its `memory`, and ends its reconcile
/// ([`after`]).
pub(super) fn plan(memory: &mut Memory, wait: Duration) -> Action {
    memory.scheduled = Instant::now().checked_add(wait);
    memory.timer_armed = armed(wait);
    after(wait)
}

/// References to the images whose long wait ended at `now`, each fired once.
pub(super) fn due(memories: &mut Memories, now: Instant) -> Vec<ObjectRef<ImageView>> {
    memories
        .entries
        .iter_mut()
        .filter(|(_, m)| m.timer_armed && m.scheduled.is_some_and(|t| t <= now))
        .map(|(key, m)| {
            m.timer_armed = false;
            let (namespace, name) = key.parts();
            ObjectRef::new(name).within(namespace)
        })
        .collect()
}

/// Fires due images every [`TICK`] until the Controller stops taking triggers.
pub(super) async fn fire_forever(state: Arc<Shared>, triggers: mpsc::Sender<ObjectRef<ImageView>>) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let fired = due(&mut state.memory.locked(), Instant::now());
        for image in fired {
            if triggers.send(image).await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::ImageKey;
    use super::*;

    fn plan_for(memories: &mut Memories, name: &str, wait: Duration) -> Action {
        let key = ImageKey::new("dev", name);
        plan(memories.entries.entry(key).or_default(), wait)
    }

    #[test]
    fn short_waits_stay_with_kube_runtime_and_long_ones_fire_once_when_due() {
        let mut memories = Memories::default();
        assert_eq!(
            plan_for(&mut memories, "soon", Duration::from_secs(2)),
            Action::requeue(Duration::from_secs(2))
        );
        assert_eq!(
            plan_for(&mut memories, "later", TIMER_MIN),
            Action::await_change()
        );
        let now = Instant::now();
        assert!(due(&mut memories, now).is_empty(), "nothing is due yet");

        let fired = due(&mut memories, now + TIMER_MIN + TICK);
        let names: Vec<_> = fired.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["later"], "kube-runtime fires the short wait");
        assert_eq!(fired[0].namespace.as_deref(), Some("dev"));
        assert!(
            due(&mut memories, now + 2 * TIMER_MIN).is_empty(),
            "each fires once"
        );

        plan_for(&mut memories, "later", TIMER_MIN);
        let fired = due(&mut memories, now + 3 * TIMER_MIN);
        assert_eq!(fired.len(), 1, "planned again, it fires again");
        assert_eq!(fired[0].name, "later");
    }
}
