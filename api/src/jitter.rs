//! Spreading timers so that many objects scheduled together do not fire together: the one
//! jitter of both controllers. [`unit`] turns a seed into a fraction (the verification
//! controller seeds it with the image, so its schedule is reproducible); [`spread`] moves a
//! duration by up to ± a fraction of itself.

use std::hash::{Hash, Hasher};
use std::time::Duration;

/// A number in [0, 1) derived from `seed`.
pub fn unit(seed: impl Hash) -> f64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    seed.hash(&mut hasher);
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// `base` times a factor in [1 - fraction, 1 + fraction) chosen by `unit` (in [0, 1)).
/// Saturating: where the product does not fit a Duration, `base` as it is.
pub fn spread(base: Duration, fraction: f64, unit: f64) -> Duration {
    let factor = 1.0 + fraction * (unit.clamp(0.0, 1.0) * 2.0 - 1.0);
    Duration::try_from_secs_f64(base.as_secs_f64() * factor).unwrap_or(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_fractions_and_spreads_stay_within_the_fraction() {
        for seed in 0..1000 {
            let u = unit(("uid", seed));
            assert!((0.0..1.0).contains(&u), "{u}");
            let d = spread(Duration::from_secs(100), 0.2, u);
            assert!(
                d >= Duration::from_secs(80) && d < Duration::from_secs(120),
                "{d:?}"
            );
        }
        assert_eq!(unit("same"), unit("same"));
        assert_eq!(spread(Duration::MAX, 0.5, 0.99), Duration::MAX);
    }
}
