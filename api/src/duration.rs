//! Go-style durations (`90s`, `1h`, `1h30m`), the format Kubernetes users already write in
//! Flux and Argo CD resources.

use std::time::Duration;

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {reason} (expected e.g. 90s, 5m, 1h30m)")]
pub struct DurationError {
    pub input: String,
    pub reason: String,
}

/// The schema pattern matching what [`parse`] accepts, so the API server rejects the same
/// strings the validator does.
pub const PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$";

/// Longest `interval` (CatalogSource) and `verificationInterval` (CatalogImage): 30 days.
/// Anything longer is a typo or an attack (a huge value once overflowed the scheduler).
pub const MAX_INTERVAL: Duration = Duration::from_secs(30 * 24 * 3600);
/// Longest `timeout` of a CatalogSource fetch: 10 minutes.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(600);

/// Parses like [`parse`] and refuses anything longer than `max`, so no spec value can push a
/// timer past what the reconciler's clocks can represent. The CRDs carry the same bound as a
/// validation rule (`duration(self) <= duration('720h')`), checked by the API server.
pub fn parse_at_most(input: &str, max: Duration) -> Result<Duration, DurationError> {
    let parsed = parse(input)?;
    if parsed > max {
        return Err(DurationError {
            input: input.to_string(),
            reason: format!("longer than the maximum of {}", format(max)),
        });
    }
    Ok(parsed)
}

/// Parse a Go duration string (units ns, us, µs, ms, s, m, h; fractions allowed).
pub fn parse(input: &str) -> Result<Duration, DurationError> {
    let err = |reason: &str| DurationError {
        input: input.to_string(),
        reason: reason.to_string(),
    };
    if input.is_empty() {
        return Err(err("empty"));
    }
    let mut rest = input;
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| err("missing unit"))?;
        if number_len == 0 {
            return Err(err("expected a number"));
        }
        let number: f64 = rest[..number_len]
            .parse()
            .map_err(|_| err("malformed number"))?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(err("unknown unit")),
        };
        total += number * seconds;
        rest = &rest[unit_len..];
    }
    if !total.is_finite() || total > u64::MAX as f64 / 2.0 {
        return Err(err("too large"));
    }
    Ok(Duration::from_secs_f64(total))
}

/// Compact human form (`1h30m`, `45s`), used in messages and `caib` output.
pub fn format(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        return format!("{}ms", d.as_millis());
    }
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

/// kubectl's AGE (`duration.HumanDuration` from k8s.io/apimachinery): `45s`, `2m30s`, `5h10m`,
/// `2d5h`, `3y`. One implementation for caib's tables and the emulator's server-side tables, so
/// both read exactly like kubectl.
pub fn human(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".into();
    }
    if secs < 0 {
        return "0s".into();
    }
    if secs < 120 {
        return format!("{secs}s");
    }
    let minutes = secs / 60;
    if minutes < 10 {
        let s = secs % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = secs / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("250ms").unwrap(), Duration::from_millis(250));
    }

    #[test]
    fn rejects_malformed_durations() {
        for bad in ["", "90", "s", "1x", "1h 30m", "-1s", "1..5s"] {
            assert!(parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert_eq!(
            parse("10q").unwrap_err().to_string(),
            "invalid duration \"10q\": unknown unit (expected e.g. 90s, 5m, 1h30m)"
        );
    }

    #[test]
    fn human_reads_like_kubectl() {
        assert_eq!(human(-5), "<invalid>");
        assert_eq!(human(-1), "0s");
        assert_eq!(human(45), "45s");
        assert_eq!(human(150), "2m30s");
        assert_eq!(human(3 * 3600 + 60), "3h1m");
        assert_eq!(human(30 * 3600), "30h");
        assert_eq!(human(2 * 86400 + 5 * 3600), "2d5h");
        assert_eq!(human(400 * 86400), "400d");
        assert_eq!(human(3 * 365 * 86400 + 86400), "3y1d");
    }

    #[test]
    fn formats_compactly() {
        assert_eq!(format(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format(Duration::from_secs(45)), "45s");
        assert_eq!(format(Duration::from_secs(3600)), "1h");
    }
}
