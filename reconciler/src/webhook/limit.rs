//! Delivery budgets. Two kinds, so that an attacker who cannot sign cannot spend a source's
//! budget: a global one for deliveries that have not (yet) authenticated, charged before the
//! signature is checked and refunded when it matches, and one per source, charged only after
//! authentication. Memory is bounded whatever is posted: the global budget is one bucket, and
//! per-source buckets exist only for sources that exist (an authenticated delivery names one),
//! at most [`MAX_SOURCES`] of them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::sync::Key;

use crate::panics::LockExt as _;

/// Deliveries accepted per source in a burst; refilled one per [`SOURCE_REFILL`] (a push a
/// second, sustained). Floods beyond get 429; the source still syncs, since syncs coalesce.
pub const SOURCE_BURST: u32 = 60;
pub const SOURCE_REFILL: Duration = Duration::from_secs(1);
/// Most per-source buckets kept; beyond, idle buckets (full again) are dropped first. Only
/// authenticated deliveries create one, so this bounds a cluster's sources, not an attacker.
pub const MAX_SOURCES: usize = 10_000;

/// A token bucket: `burst` tokens, one more every `refill`.
#[derive(Debug, Clone)]
pub struct Bucket {
    tokens: f64,
    burst: f64,
    per_second: f64,
    at: Instant,
}

impl Bucket {
    pub fn new(burst: u32, per_second: f64) -> Bucket {
        Bucket {
            tokens: f64::from(burst),
            burst: f64::from(burst),
            per_second,
            at: Instant::now(),
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        self.at = now;
    }

    /// Takes a token; false when none is left.
    pub fn take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }

    /// Gives back a token taken by [`Bucket::take`].
    pub fn refund(&mut self) {
        self.tokens = (self.tokens + 1.0).min(self.burst);
    }

    fn full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= self.burst
    }
}

/// Both budgets of the webhook receiver.
pub struct Limiter {
    unauthenticated: Mutex<Bucket>,
    sources: Mutex<HashMap<Key, Bucket>>,
}

impl Limiter {
    /// `burst` unauthenticated deliveries at once, `per_second` sustained.
    pub fn new(burst: u32, per_second: u32) -> Limiter {
        Limiter {
            unauthenticated: Mutex::new(Bucket::new(burst, f64::from(per_second))),
            sources: Mutex::default(),
        }
    }

    /// Charges a delivery that has not authenticated yet; false when the budget is spent.
    pub fn admit_unauthenticated(&self) -> bool {
        self.unauthenticated.locked().take(Instant::now())
    }

    /// The delivery authenticated: its charge goes back to the unauthenticated budget.
    pub fn authenticated(&self) {
        self.unauthenticated.locked().refund();
    }

    /// Charges an authenticated delivery to its source; false when that budget is spent.
    pub fn admit_source(&self, key: &Key) -> bool {
        let now = Instant::now();
        let mut sources = self.sources.locked();
        if !sources.contains_key(key) && sources.len() >= MAX_SOURCES {
            sources.retain(|_, bucket| !bucket.full(now));
            if sources.len() >= MAX_SOURCES {
                // Every bucket is busy: forgetting them is generous, never unbounded.
                sources.clear();
            }
        }
        let per_second = 1.0 / SOURCE_REFILL.as_secs_f64();
        sources
            .entry(key.clone())
            .or_insert_with(|| Bucket::new(SOURCE_BURST, per_second))
            .take(now)
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.sources.locked().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_refills_at_its_rate_up_to_its_burst() {
        let start = Instant::now();
        let mut b = Bucket::new(2, 10.0);
        b.at = start;
        assert!(b.take(start) && b.take(start));
        assert!(!b.take(start), "burst spent");
        assert!(b.take(start + Duration::from_millis(100)), "one refilled");
        assert!(!b.take(start + Duration::from_millis(100)));
        b.refund();
        assert!(b.take(start + Duration::from_millis(100)), "refunded");
        assert!(b.full(start + Duration::from_secs(60)));
        assert!(b.tokens <= 2.0, "never above the burst");
    }

    #[test]
    fn authenticated_deliveries_do_not_spend_the_unauthenticated_budget() {
        let limiter = Limiter::new(3, 0);
        for _ in 0..10 {
            assert!(limiter.admit_unauthenticated());
            limiter.authenticated();
        }
        assert!(limiter.admit_unauthenticated());
        assert!(limiter.admit_unauthenticated());
        assert!(limiter.admit_unauthenticated());
        assert!(!limiter.admit_unauthenticated(), "3 failures spend it");
    }

    #[test]
    fn per_source_budgets_are_separate_and_bounded() {
        let limiter = Limiter::new(1, 1);
        let a: Key = ("ns".into(), "a".into());
        let b: Key = ("ns".into(), "b".into());
        for _ in 0..SOURCE_BURST {
            assert!(limiter.admit_source(&a));
        }
        assert!(!limiter.admit_source(&a), "a's burst spent");
        assert!(limiter.admit_source(&b), "b has its own");
        for i in 0..MAX_SOURCES + 5 {
            limiter.admit_source(&("ns".into(), format!("s{i}")));
        }
        assert!(limiter.tracked() <= MAX_SOURCES);
    }
}
