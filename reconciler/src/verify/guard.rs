//! Per-registry-host protection: a concurrency limit and a circuit breaker.
//!
//! One slow or failing registry must not take the others down with it, nor be hammered by a
//! thousand images retrying at once. The breaker counts only transient failures (network,
//! 5xx, 429): a 404 or 401 is the registry working as intended.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::metrics::Metrics;

/// Consecutive transient failures on one host that open its breaker.
pub const BREAKER_THRESHOLD: u32 = 5;

/// Circuit breaker state machine (pure: time is a parameter).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Breaker {
    failures: u32,
    state: State,
    cooldown_min: Duration,
    cooldown_max: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    Closed,
    Open { until: Instant, cooldown: Duration },
    HalfOpen { probing: bool, cooldown: Duration },
}

impl Breaker {
    pub fn new(cooldown_min: Duration, cooldown_max: Duration) -> Self {
        Breaker {
            failures: 0,
            state: State::Closed,
            cooldown_min,
            cooldown_max,
        }
    }

    /// Whether a request may go out now; `Err(wait)` while open (or while a half-open probe
    /// is in flight).
    pub fn admit(&mut self, now: Instant) -> Result<(), Duration> {
        match self.state.clone() {
            State::Closed => Ok(()),
            State::Open { until, cooldown } if now >= until => {
                self.state = State::HalfOpen {
                    probing: true,
                    cooldown,
                };
                Ok(())
            }
            State::Open { until, .. } => Err(until - now),
            State::HalfOpen {
                probing: false,
                cooldown,
            } => {
                self.state = State::HalfOpen {
                    probing: true,
                    cooldown,
                };
                Ok(())
            }
            State::HalfOpen {
                probing: true,
                cooldown,
            } => Err(cooldown.min(Duration::from_secs(1))),
        }
    }

    /// Records the result of an admitted attempt.
    pub fn record(&mut self, now: Instant, transient_failure: bool) {
        if !transient_failure {
            self.failures = 0;
            self.state = State::Closed;
            return;
        }
        self.failures = self.failures.saturating_add(1);
        match self.state.clone() {
            State::HalfOpen { cooldown, .. } => {
                let cooldown = (cooldown * 2).min(self.cooldown_max);
                self.state = State::Open {
                    until: now + cooldown,
                    cooldown,
                };
            }
            State::Closed if self.failures >= BREAKER_THRESHOLD => {
                self.state = State::Open {
                    until: now + self.cooldown_min,
                    cooldown: self.cooldown_min,
                };
            }
            _ => {}
        }
    }

    /// 0 closed, 1 open, 2 half-open (the `registry_breaker_state` gauge).
    pub fn gauge(&self) -> i64 {
        match self.state {
            State::Closed => 0,
            State::Open { .. } => 1,
            State::HalfOpen { .. } => 2,
        }
    }
}

struct Host {
    permits: Arc<Semaphore>,
    breaker: Mutex<Breaker>,
}

/// Guards of every registry host seen so far.
pub struct Guards {
    hosts: Mutex<HashMap<String, Arc<Host>>>,
    per_host: usize,
    cooldown_min: Duration,
    cooldown_max: Duration,
    metrics: Metrics,
}

/// Held while talking to a host: a concurrency permit plus the obligation to report the
/// result to the host's breaker.
pub struct Pass {
    host: Arc<Host>,
    name: String,
    metrics: Metrics,
    _permit: OwnedSemaphorePermit,
}

impl Pass {
    pub fn record(self, transient_failure: bool) {
        let mut breaker = self.host.breaker.lock().unwrap();
        breaker.record(Instant::now(), transient_failure);
        self.metrics.set_breaker(&self.name, breaker.gauge());
    }
}

impl Guards {
    pub fn new(
        per_host: usize,
        cooldown_min: Duration,
        cooldown_max: Duration,
        metrics: Metrics,
    ) -> Self {
        Guards {
            hosts: Mutex::default(),
            per_host: per_host.max(1),
            cooldown_min,
            cooldown_max,
            metrics,
        }
    }

    /// Waits for a concurrency slot on `host`, then asks its breaker; `Err(wait)` when the
    /// breaker is open.
    pub async fn enter(&self, host: &str) -> Result<Pass, Duration> {
        let entry = {
            let mut hosts = self.hosts.lock().unwrap();
            hosts
                .entry(host.to_string())
                .or_insert_with(|| {
                    Arc::new(Host {
                        permits: Arc::new(Semaphore::new(self.per_host)),
                        breaker: Mutex::new(Breaker::new(self.cooldown_min, self.cooldown_max)),
                    })
                })
                .clone()
        };
        let permit = entry
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore never closed");
        {
            let mut breaker = entry.breaker.lock().unwrap();
            let admitted = breaker.admit(Instant::now());
            self.metrics.set_breaker(host, breaker.gauge());
            admitted?;
        }
        Ok(Pass {
            host: entry,
            name: host.to_string(),
            metrics: self.metrics.clone(),
            _permit: permit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_and_probes_after_cooldown() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut b = Breaker::new(s(30), s(300));
        for _ in 0..BREAKER_THRESHOLD - 1 {
            assert!(b.admit(t0).is_ok());
            b.record(t0, true);
        }
        assert_eq!(b.gauge(), 0);
        b.record(t0, true);
        assert_eq!(b.gauge(), 1);
        assert_eq!(b.admit(t0 + s(10)), Err(s(20)));
        // After the cooldown one probe goes through; others wait.
        assert!(b.admit(t0 + s(30)).is_ok());
        assert_eq!(b.gauge(), 2);
        assert!(b.admit(t0 + s(30)).is_err());
        // A failed probe reopens for twice as long.
        b.record(t0 + s(31), true);
        assert_eq!(b.admit(t0 + s(32)), Err(s(59)));
        assert!(b.admit(t0 + s(91)).is_ok());
        b.record(t0 + s(91), false);
        assert_eq!(b.gauge(), 0);
        assert!(b.admit(t0 + s(92)).is_ok());
    }

    #[test]
    fn non_transient_results_reset_the_count() {
        let t0 = Instant::now();
        let mut b = Breaker::new(Duration::from_secs(1), Duration::from_secs(2));
        for _ in 0..10 {
            b.record(t0, true);
            b.record(t0, true);
            b.record(t0, false);
        }
        assert_eq!(b.gauge(), 0);
    }
}
