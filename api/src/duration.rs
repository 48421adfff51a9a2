//! Go-style durations (`90s`, `1h`, `1h30m`), the format Kubernetes users already write in
//! Flux and Argo CD resources.

use std::time::Duration;

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {reason} (expected e.g. 90s, 5m, 1h30m)")]
pub struct DurationError {
    pub input: String,
    pub reason: &'static str,
}

/// The schema pattern matching what [`parse`] accepts, so the API server rejects the same
/// strings the validator does.
pub const PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$";

/// Parse a Go duration string (units ns, us, µs, ms, s, m, h; fractions allowed).
pub fn parse(input: &str) -> Result<Duration, DurationError> {
    let err = |reason| DurationError {
        input: input.to_string(),
        reason,
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
    fn formats_compactly() {
        assert_eq!(format(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format(Duration::from_secs(45)), "45s");
        assert_eq!(format(Duration::from_secs(3600)), "1h");
    }
}
