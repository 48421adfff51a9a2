//! Pure planning: when to verify, how long to wait, whether to read manifests.
//!
//! No clock, no randomness, no cluster: every input is a parameter, so the schedule
//! (jittered intervals, exponential backoff, Retry-After) is unit-tested exactly. Jitter is
//! derived from the object's uid and its last verification, so it is stable across restarts
//! and spreads images created together.

use std::time::Duration;

use catalog_api::image::{CatalogImageStatus, Phase};

/// Consecutive failed verifications after which an image is Failed.
pub const FAILURES_TO_FAILED: i32 = 5;
/// Longest wait honoured from a registry's `Retry-After`.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Timing knobs (from the command line).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    pub min_interval: Duration,
}

impl Timing {
    /// From `--verify-backoff-min`, `--verify-backoff-max` (never below the minimum) and
    /// `--min-verification-interval`.
    pub fn of(config: &crate::Config) -> Timing {
        Timing {
            backoff_min: config.verify_backoff_min,
            backoff_max: config.verify_backoff_max.max(config.verify_backoff_min),
            min_interval: config.min_verification_interval,
        }
    }
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            backoff_min: Duration::from_secs(30),
            backoff_max: Duration::from_secs(300),
            min_interval: Duration::from_secs(30),
        }
    }
}

/// A number in [0, 1) derived from `seed`: the jitter of one schedule decision.
pub use catalog_api::jitter::unit as jitter;

/// The spec's interval, with the operator's floor applied and capped at the CRD's maximum
/// (an object stored before the CRD carried that bound must not overflow a timer).
pub fn interval(spec_interval: &str, timing: &Timing) -> Duration {
    catalog_api::duration::parse(spec_interval)
        .unwrap_or(Duration::from_secs(3600))
        .min(catalog_api::duration::MAX_INTERVAL)
        .max(timing.min_interval)
}

/// Periodic re-verification delay: between 90% and 100% of the interval, so images created
/// together spread out and never wait longer than their interval.
pub fn periodic_delay(interval: Duration, jitter: f64) -> Duration {
    interval.mul_f64(1.0 - 0.1 * jitter.clamp(0.0, 1.0))
}

/// Delay after the `failures`-th consecutive transient failure: `backoff_min` doubling per
/// failure, times a jitter factor in [0.75, 1.25) (so successive delays never overlap and the
/// doubling stays visible), capped at `backoff_max`; at least the registry's `Retry-After`.
pub fn backoff_delay(
    failures: i32,
    retry_after: Option<Duration>,
    timing: &Timing,
    jitter: f64,
) -> Duration {
    let exponent = failures.clamp(1, 20) as u32 - 1;
    let base = timing
        .backoff_min
        .saturating_mul(1u32 << exponent.min(16))
        .min(timing.backoff_max);
    let jittered = base
        .mul_f64(0.75 + 0.5 * jitter.clamp(0.0, 1.0))
        .min(timing.backoff_max);
    match retry_after {
        Some(after) => jittered.max(after.min(MAX_RETRY_AFTER)),
        None => jittered,
    }
}

/// How long after the last verification the next one is due, given the status it left.
pub fn delay_after(
    status: &CatalogImageStatus,
    interval: Duration,
    timing: &Timing,
    seed: &str,
) -> Duration {
    let failures = status.verification_failures.unwrap_or(0);
    let last = status
        .last_verification_time
        .as_ref()
        .map(|t| t.0.as_second())
        .unwrap_or(0);
    match status.phase {
        Some(Phase::Unavailable) => backoff_delay(failures, None, timing, jitter((seed, failures))),
        _ => periodic_delay(interval, jitter((seed, last))),
    }
}

/// Everything [`due`] looks at.
#[derive(Clone, Debug)]
pub struct Observation<'a> {
    pub generation: Option<i64>,
    pub status: Option<&'a CatalogImageStatus>,
    /// Value of the verify-requested-at annotation.
    pub verify_requested: Option<&'a str>,
    /// Milliseconds since the epoch, now.
    pub now_ms: i64,
    /// The verification interval after the floor.
    pub interval: Duration,
    /// The referenced secret changed since the last attempt (observed in this process).
    pub secret_changed: bool,
    /// A wait imposed by the registry (Retry-After) or its circuit breaker, from now.
    pub registry_wait: Option<Duration>,
    /// Time until the next verification this process planned (exact, unlike the status'
    /// second-precision timestamp); `None` after a restart.
    pub scheduled_in: Option<Duration>,
    /// uid (or name) of the object, for stable jitter.
    pub seed: &'a str,
}

/// Why a verification runs now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// Never verified, or interrupted while Verifying.
    First,
    /// The spec changed since the last verification.
    SpecChanged,
    /// `caib catalog verify` asked (annotation not yet echoed in status).
    Requested,
    /// The referenced secret changed.
    SecretChanged,
    /// The interval or backoff elapsed.
    Scheduled,
}

impl Trigger {
    /// Whether manifests must be read again even if the digest did not change: a person
    /// asked, or the declaration they are checked against changed.
    pub fn forces_inspection(self) -> bool {
        matches!(
            self,
            Trigger::First | Trigger::SpecChanged | Trigger::Requested
        )
    }
}

/// The decision for one reconcile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Due {
    Now(Trigger),
    Later(Duration),
}

/// Whether to verify now. Our own status writes never make this true by themselves: they
/// leave generation and annotations alone, and the last verification time they record
/// moves the schedule forward.
pub fn due(o: &Observation<'_>, timing: &Timing) -> Due {
    let Some(status) = o.status.filter(|s| s.phase.is_some()) else {
        return Due::Now(Trigger::First);
    };
    if matches!(status.phase, Some(Phase::Pending | Phase::Verifying))
        || status.last_verification_time.is_none()
    {
        return Due::Now(Trigger::First);
    }
    if status.observed_generation != o.generation {
        return Due::Now(Trigger::SpecChanged);
    }
    if let Some(requested) = o.verify_requested
        && status.last_handled_verify_at.as_deref() != Some(requested)
    {
        return Due::Now(Trigger::Requested);
    }
    if let Some(wait) = o.registry_wait.filter(|w| !w.is_zero()) {
        return Due::Later(wait);
    }
    if o.secret_changed {
        return Due::Now(Trigger::SecretChanged);
    }
    if let Some(remaining) = o.scheduled_in {
        return if remaining.is_zero() {
            Due::Now(Trigger::Scheduled)
        } else {
            Due::Later(remaining)
        };
    }
    let last_ms = status
        .last_verification_time
        .as_ref()
        .map(|t| t.0.as_millisecond())
        .unwrap_or(0);
    let next_ms = last_ms + delay_after(status, o.interval, timing, o.seed).as_millis() as i64;
    if o.now_ms >= next_ms {
        Due::Now(Trigger::Scheduled)
    } else {
        Due::Later(Duration::from_millis((next_ms - o.now_ms) as u64))
    }
}

/// Whether a due verification is deferred because its registry host's circuit breaker is open
/// (`breaker_wait`: how long it stays open): only a scheduled retry of an image whose status
/// already shows a failure. Such an attempt would reach no registry and write only a new
/// `lastVerificationTime` and `verificationFailures`, so it writes nothing: with a dead registry
/// shared by 100,000 images that is 100,000 status writes saved per retry round. It does not
/// count as a verification either, so a breaker-refused retry never moves an image from
/// `Unavailable` to `Failed`; only an attempt that reaches the registry does. A first
/// verification, a spec change, a request, a Secret change and an image still shown as
/// `Available` are not deferred: their status must say why they were not verified.
pub fn deferred(
    trigger: Trigger,
    breaker_wait: Option<Duration>,
    status: Option<&CatalogImageStatus>,
) -> Option<Duration> {
    let failing = matches!(
        status.and_then(|s| s.phase),
        Some(Phase::Unavailable | Phase::Failed)
    );
    breaker_wait.filter(|_| trigger == Trigger::Scheduled && failing)
}

/// Whether the manifests and config must be read: only when the digest differs from the last
/// verified one, the previous facts are missing, or the trigger forces it. An unchanged image
/// therefore costs one HEAD request.
pub fn needs_inspection(previous_digest: Option<&str>, digest: &str, trigger: Trigger) -> bool {
    trigger.forces_inspection() || previous_digest != Some(digest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    const T: Timing = Timing {
        backoff_min: Duration::from_secs(30),
        backoff_max: Duration::from_secs(300),
        min_interval: Duration::from_secs(30),
    };

    fn status(phase: Phase, last: i64, failures: i32) -> CatalogImageStatus {
        CatalogImageStatus {
            observed_generation: Some(1),
            phase: Some(phase),
            last_verification_time: Some(Time(jiff::Timestamp::from_second(last).unwrap())),
            verification_failures: Some(failures),
            ..Default::default()
        }
    }

    fn obs<'a>(status: Option<&'a CatalogImageStatus>, now: i64) -> Observation<'a> {
        Observation {
            generation: Some(1),
            status,
            verify_requested: None,
            now_ms: now * 1000,
            interval: Duration::from_secs(3600),
            secret_changed: false,
            registry_wait: None,
            scheduled_in: None,
            seed: "uid-1",
        }
    }

    #[test]
    fn only_scheduled_retries_of_failing_images_are_deferred_by_an_open_breaker() {
        let wait = Some(Duration::from_secs(40));
        let unavailable = status(Phase::Unavailable, 0, 2);
        let failed = status(Phase::Failed, 0, 5);
        let available = status(Phase::Available, 0, 0);
        assert_eq!(deferred(Trigger::Scheduled, wait, Some(&unavailable)), wait);
        assert_eq!(deferred(Trigger::Scheduled, wait, Some(&failed)), wait);
        assert_eq!(
            deferred(Trigger::Scheduled, None, Some(&unavailable)),
            None,
            "breaker closed"
        );
        assert_eq!(
            deferred(Trigger::Scheduled, wait, Some(&available)),
            None,
            "an Available image must show that its registry fails"
        );
        assert_eq!(deferred(Trigger::Scheduled, wait, None), None);
        for trigger in [
            Trigger::First,
            Trigger::SpecChanged,
            Trigger::Requested,
            Trigger::SecretChanged,
        ] {
            assert_eq!(
                deferred(trigger, wait, Some(&unavailable)),
                None,
                "{trigger:?}"
            );
        }
    }

    #[test]
    fn an_interval_too_large_for_the_clock_is_capped() {
        let max = catalog_api::duration::MAX_INTERVAL;
        assert_eq!(interval("2562047788015215h", &T), max);
        assert_eq!(interval("721h", &T), max);
        assert_eq!(interval("1s", &T), T.min_interval);
        assert!(
            std::time::Instant::now()
                .checked_add(periodic_delay(max, 0.0))
                .is_some()
        );
    }

    #[test]
    fn backoff_doubles_from_min_to_max_with_jitter() {
        let d = |f, j| backoff_delay(f, None, &T, j).as_secs_f64();
        assert_eq!(d(1, 0.5), 30.0);
        assert_eq!(d(2, 0.5), 60.0);
        assert_eq!(d(3, 0.5), 120.0);
        assert_eq!(d(4, 0.5), 240.0);
        assert_eq!(d(5, 0.5), 300.0);
        assert_eq!(d(9, 0.99), 300.0, "capped");
        assert_eq!(d(1, 0.0), 22.5);
        // Jitter ranges of successive failures never overlap: the doubling is visible.
        for f in 1..4 {
            assert!(d(f, 0.999) < d(f + 1, 0.0));
        }
    }

    #[test]
    fn retry_after_is_honoured_but_bounded() {
        let d = backoff_delay(1, Some(Duration::from_secs(120)), &T, 0.5);
        assert_eq!(d, Duration::from_secs(120));
        let d = backoff_delay(3, Some(Duration::from_secs(1)), &T, 0.5);
        assert_eq!(d, Duration::from_secs(120));
        let d = backoff_delay(1, Some(Duration::from_secs(86400)), &T, 0.5);
        assert_eq!(d, MAX_RETRY_AFTER);
    }

    #[test]
    fn periodic_delay_is_within_ninety_to_hundred_percent() {
        let i = Duration::from_secs(3600);
        assert_eq!(periodic_delay(i, 0.0), i);
        assert_eq!(periodic_delay(i, 0.5), Duration::from_secs(3420));
        let spread: std::collections::BTreeSet<u64> = (0..50)
            .map(|n| periodic_delay(i, jitter(("uid", n))).as_secs())
            .collect();
        assert!(spread.len() > 20, "jitter spreads images: {spread:?}");
        assert!(spread.iter().all(|s| (3240..=3600).contains(s)));
    }

    #[test]
    fn interval_floor_and_default() {
        assert_eq!(interval("10s", &T), Duration::from_secs(30));
        assert_eq!(interval("1h30m", &T), Duration::from_secs(5400));
        assert_eq!(interval("nonsense", &T), Duration::from_secs(3600));
    }

    #[test]
    fn new_verifying_and_changed_images_are_due_now() {
        assert_eq!(due(&obs(None, 0), &T), Due::Now(Trigger::First));
        let verifying = status(Phase::Verifying, 100, 0);
        assert_eq!(
            due(&obs(Some(&verifying), 101), &T),
            Due::Now(Trigger::First)
        );
        let mut changed = status(Phase::Available, 100, 0);
        changed.observed_generation = Some(0);
        assert_eq!(
            due(&obs(Some(&changed), 101), &T),
            Due::Now(Trigger::SpecChanged)
        );
    }

    #[test]
    fn own_status_write_does_not_retrigger() {
        let s = status(Phase::Available, 1000, 0);
        let Due::Later(wait) = due(&obs(Some(&s), 1000), &T) else {
            panic!("a fresh status is not due")
        };
        assert!(wait >= Duration::from_secs(3240) && wait <= Duration::from_secs(3600));
        let failed = status(Phase::Failed, 1000, 5);
        assert!(matches!(due(&obs(Some(&failed), 1001), &T), Due::Later(_)));
    }

    #[test]
    fn annotation_triggers_until_echoed() {
        let mut s = status(Phase::Available, 1000, 0);
        let mut o = obs(Some(&s), 1001);
        o.verify_requested = Some("2026-01-01T00:00:00Z");
        assert_eq!(due(&o, &T), Due::Now(Trigger::Requested));
        s.last_handled_verify_at = Some("2026-01-01T00:00:00Z".into());
        let mut o = obs(Some(&s), 1001);
        o.verify_requested = Some("2026-01-01T00:00:00Z");
        assert!(matches!(due(&o, &T), Due::Later(_)));
    }

    #[test]
    fn unavailable_waits_for_backoff_and_retry_after() {
        let s = status(Phase::Unavailable, 1000, 1);
        let Due::Later(wait) = due(&obs(Some(&s), 1000), &T) else {
            panic!()
        };
        assert!((22..=38).contains(&wait.as_secs()), "{wait:?}");
        assert_eq!(due(&obs(Some(&s), 1040), &T), Due::Now(Trigger::Scheduled));
        let mut o = obs(Some(&s), 1040);
        o.registry_wait = Some(Duration::from_secs(50));
        assert_eq!(due(&o, &T), Due::Later(Duration::from_secs(50)));
        let mut o = obs(Some(&s), 1001);
        o.scheduled_in = Some(Duration::ZERO);
        assert_eq!(due(&o, &T), Due::Now(Trigger::Scheduled));
    }

    #[test]
    fn secret_change_heals_a_failed_image_at_once() {
        let s = status(Phase::Failed, 1000, 1);
        let mut o = obs(Some(&s), 1001);
        o.secret_changed = true;
        assert_eq!(due(&o, &T), Due::Now(Trigger::SecretChanged));
    }

    #[test]
    fn inspection_only_when_digest_changed_or_forced() {
        assert!(!needs_inspection(
            Some("sha256:a"),
            "sha256:a",
            Trigger::Scheduled
        ));
        assert!(needs_inspection(
            Some("sha256:a"),
            "sha256:b",
            Trigger::Scheduled
        ));
        assert!(needs_inspection(None, "sha256:a", Trigger::SecretChanged));
        assert!(needs_inspection(
            Some("sha256:a"),
            "sha256:a",
            Trigger::Requested
        ));
        assert!(needs_inspection(
            Some("sha256:a"),
            "sha256:a",
            Trigger::SpecChanged
        ));
    }
}
