//! Per-registry-host protection: a concurrency limit and a circuit breaker.
//!
//! One slow or failing registry must not take the others down with it, nor be hammered by a
//! thousand images retrying at once. The breaker counts only transient failures (network,
//! 5xx, 429): a 404 or 401 is the registry working as intended.
//!
//! The host permit is only ever *tried* ([`Guards::try_enter`]), never awaited: a reconcile that
//! waited for a busy host would hold one of the controller's `--verify-workers` slots while
//! doing nothing, and images of one silent registry would soon hold them all, starving every
//! healthy registry. An image whose host is saturated is requeued a moment later instead,
//! without a worker (see `verify::reconcile`).
//!
//! Hosts are created on first use and dropped by [`Guards::retain`] once no image names them, so
//! the map (and the `registry_breaker_state` series) stay bounded by the hosts images name.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::metrics::Metrics;

use crate::panics::LockExt as _;

/// Consecutive transient failures on one host that open its breaker.
pub const BREAKER_THRESHOLD: u32 = 5;
/// An image of a saturated host is requeued after this long, plus up to as much jitter
/// (1-2s): short enough that it starts soon after a permit frees, spread so that waiting
/// images do not all retry together.
pub const BUSY_RETRY: Duration = Duration::from_secs(1);

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

    /// An admitted attempt ended without a result (no request was sent): a half-open breaker
    /// lets the next attempt probe instead of waiting forever for this one.
    pub fn release(&mut self) {
        if let State::HalfOpen { cooldown, .. } = self.state {
            self.state = State::HalfOpen {
                probing: false,
                cooldown,
            };
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
/// result to the host's breaker (dropped unreported, it releases a half-open probe).
pub struct Pass {
    host: Arc<Host>,
    name: String,
    metrics: Metrics,
    recorded: bool,
    _permit: OwnedSemaphorePermit,
}

impl Pass {
    pub fn record(mut self, transient_failure: bool) {
        let mut breaker = self.host.breaker.locked();
        breaker.record(Instant::now(), transient_failure);
        self.metrics.set_breaker(&self.name, breaker.gauge());
        self.recorded = true;
    }
}

impl Drop for Pass {
    fn drop(&mut self) {
        if !self.recorded {
            self.host.breaker.locked().release();
        }
    }
}

/// Why [`Guards::try_enter`] gave no pass.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Every permit of the host is taken: try again shortly, without holding a worker.
    Busy,
    /// The host's breaker is open for this long.
    Open(Duration),
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

    /// Takes a concurrency slot on `host` if one is free, then asks its breaker. Never waits.
    pub fn try_enter(&self, host: &str) -> Result<Pass, Refused> {
        let entry = self
            .hosts
            .locked()
            .entry(host.to_string())
            .or_insert_with(|| {
                Arc::new(Host {
                    permits: Arc::new(Semaphore::new(self.per_host)),
                    breaker: Mutex::new(Breaker::new(self.cooldown_min, self.cooldown_max)),
                })
            })
            .clone();
        let permit = entry
            .permits
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refused::Busy)?;
        {
            let mut breaker = entry.breaker.locked();
            let admitted = breaker.admit(Instant::now());
            self.metrics.set_breaker(host, breaker.gauge());
            admitted.map_err(Refused::Open)?;
        }
        Ok(Pass {
            host: entry,
            name: host.to_string(),
            metrics: self.metrics.clone(),
            recorded: false,
            _permit: permit,
        })
    }

    /// Drops the guard (breaker, permits, gauge) of every host not in `named`. A pass still
    /// held on a dropped host keeps its own guard alive until it ends.
    pub fn retain(&self, named: &HashSet<String>) -> Vec<String> {
        let mut hosts = self.hosts.locked();
        let gone: Vec<String> = hosts
            .keys()
            .filter(|h| !named.contains(*h))
            .cloned()
            .collect();
        for host in &gone {
            hosts.remove(host);
            self.metrics.forget_breaker(host);
        }
        gone
    }

    /// Hosts currently guarded.
    #[cfg(test)]
    pub fn hosts(&self) -> Vec<String> {
        let mut hosts: Vec<String> = self.hosts.locked().keys().cloned().collect();
        hosts.sort();
        hosts
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

    fn guards(per_host: usize) -> (Guards, Metrics) {
        let metrics = Metrics::register(&mut prometheus_client::registry::Registry::default());
        let s = Duration::from_secs;
        (Guards::new(per_host, s(1), s(2), metrics.clone()), metrics)
    }

    #[test]
    fn a_saturated_host_refuses_without_waiting_and_others_pass() {
        let (guards, _) = guards(1);
        let held = guards.try_enter("slow:1").unwrap();
        assert_eq!(guards.try_enter("slow:1").err(), Some(Refused::Busy));
        guards.try_enter("fast:2").unwrap().record(false);
        held.record(false);
        assert!(guards.try_enter("slow:1").is_ok());
    }

    #[test]
    fn an_unreported_pass_releases_the_half_open_probe() {
        let t0 = Instant::now();
        let mut b = Breaker::new(Duration::ZERO, Duration::from_secs(1));
        for _ in 0..BREAKER_THRESHOLD {
            b.record(t0, true);
        }
        assert!(b.admit(t0).is_ok());
        assert!(b.admit(t0).is_err());
        b.release();
        assert!(b.admit(t0).is_ok());
    }

    #[test]
    fn hosts_no_image_names_disappear_from_the_breakers() {
        let (guards, metrics) = guards(2);
        for host in ["kept:1", "gone:2"] {
            guards.try_enter(host).unwrap().record(true);
        }
        let gauges = |m: &Metrics| {
            let mut text = String::new();
            let mut registry = prometheus_client::registry::Registry::default();
            registry.register("b", "b", m.breaker_state.clone());
            prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
            text
        };
        assert!(gauges(&metrics).contains("gone:2"), "premise");
        let named: HashSet<String> = ["kept:1".to_string()].into();
        assert_eq!(guards.retain(&named), vec!["gone:2".to_string()]);
        assert_eq!(guards.hosts(), vec!["kept:1".to_string()]);
        let text = gauges(&metrics);
        assert!(
            !text.contains("gone:2") && text.contains("kept:1"),
            "{text}"
        );
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
