//! ObjectMeta helpers: timestamps, uids, generated names, and the name/label validation the
//! real API server applies to every object (so a controller that writes an invalid label
//! fails here exactly as it would on a cluster).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Map, Value};

use super::error::Cause;

/// Now, as a Kubernetes `Time` (RFC 3339, second precision, UTC).
pub fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Parses a Kubernetes `Time` / `MicroTime`.
pub fn parse_time(s: &str) -> Option<jiff::Timestamp> {
    s.parse::<jiff::Timestamp>().ok()
}

/// Random 64 bits without a dependency: every `RandomState` is freshly keyed by the OS.
pub fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish()
}

/// A random (version 4 layout) UUID, as the API server assigns to `metadata.uid`.
pub fn new_uid() -> String {
    let a = random_u64();
    let b = random_u64();
    let bytes: Vec<u8> = a.to_be_bytes().into_iter().chain(b.to_be_bytes()).collect();
    let mut hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    hex[6] = format!("4{}", &hex[6][1..]);
    hex[8] = format!("{:x}{}", 8 + (bytes[8] >> 6), &hex[8][1..]);
    let s = hex.concat();
    format!(
        "{}-{}-{}-{}-{}",
        &s[0..8],
        &s[8..12],
        &s[12..16],
        &s[16..20],
        &s[20..32]
    )
}

/// The 5-character suffix `generateName` gets (same alphabet as the API server).
pub fn name_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut r = random_u64();
    (0..5)
        .map(|_| {
            let c = ALPHABET[(r % ALPHABET.len() as u64) as usize] as char;
            r /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

fn is_alnum_lower(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// RFC 1123 label: the rule for namespace names.
pub fn dns_label_error(s: &str) -> Option<String> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| is_alnum_lower(c) || c == '-')
        && s.starts_with(is_alnum_lower)
        && s.ends_with(is_alnum_lower);
    (!ok).then(|| {
        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')".to_string()
    })
}

/// RFC 1123 subdomain: the rule for most object names.
pub fn dns_subdomain_error(s: &str) -> Option<String> {
    let ok = !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|part| {
            !part.is_empty()
                && part.chars().all(|c| is_alnum_lower(c) || c == '-')
                && part.starts_with(is_alnum_lower)
                && part.ends_with(is_alnum_lower)
        });
    (!ok).then(|| {
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".to_string()
    })
}

fn label_value_ok(v: &str) -> bool {
    v.is_empty()
        || (v.len() <= 63
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
            && v.starts_with(|c: char| c.is_ascii_alphanumeric())
            && v.ends_with(|c: char| c.is_ascii_alphanumeric()))
}

/// A qualified name (`[prefix/]name`) as used for label and annotation keys and finalizers.
pub fn qualified_name_error(key: &str) -> Option<String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix
        && (p.is_empty() || dns_subdomain_error(p).is_some())
    {
        return Some("prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character".into());
    }
    if name.is_empty() || !label_value_ok(name) || name.contains('/') {
        return Some("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')".into());
    }
    None
}

/// Validates `metadata.labels`, `metadata.annotations` and `metadata.finalizers`.
pub fn validate_meta(meta: &Map<String, Value>, causes: &mut Vec<Cause>) {
    if let Some(labels) = meta.get("labels").and_then(Value::as_object) {
        for (k, v) in labels {
            if let Some(e) = qualified_name_error(k) {
                causes.push(Cause::new(
                    "FieldValueInvalid",
                    "metadata.labels",
                    format!("Invalid value: {k:?}: {e}"),
                ));
            }
            match v.as_str() {
                Some(s) if label_value_ok(s) => {}
                _ => causes.push(Cause::new(
                    "FieldValueInvalid",
                    "metadata.labels",
                    format!("Invalid value: {v}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"),
                )),
            }
        }
    }
    if let Some(ann) = meta.get("annotations").and_then(Value::as_object) {
        let mut total = 0usize;
        for (k, v) in ann {
            total += k.len() + v.as_str().map_or(0, str::len);
            if let Some(e) = qualified_name_error(k) {
                causes.push(Cause::new(
                    "FieldValueInvalid",
                    "metadata.annotations",
                    format!("Invalid value: {k:?}: {e}"),
                ));
            }
            if !v.is_string() {
                causes.push(Cause::new(
                    "FieldValueTypeInvalid",
                    format!("metadata.annotations.{k}"),
                    "Invalid value: must be a string",
                ));
            }
        }
        if total > 256 * 1024 {
            causes.push(Cause::new(
                "FieldValueTooLong",
                "metadata.annotations",
                "Too long: must have at most 262144 bytes",
            ));
        }
    }
    if let Some(fins) = meta.get("finalizers").and_then(Value::as_array) {
        for (i, f) in fins.iter().enumerate() {
            let bad = match f.as_str() {
                Some(s) => qualified_name_error(s),
                None => Some("must be a string".into()),
            };
            if let Some(e) = bad {
                causes.push(Cause::new(
                    "FieldValueInvalid",
                    format!("metadata.finalizers[{i}]"),
                    format!("Invalid value: {f}: {e}"),
                ));
            }
        }
    }
}

/// Age of a timestamp string in human form, or `<unknown>`.
pub fn age(ts: Option<&str>) -> String {
    match ts.and_then(parse_time) {
        Some(t) => {
            let secs = jiff::Timestamp::now().as_second() - t.as_second();
            catalog_api::duration::human(secs)
        }
        None => "<unknown>".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_shape() {
        let u = new_uid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_ne!(new_uid(), u);
    }

    #[test]
    fn names() {
        assert!(dns_subdomain_error("autosd-cs9.rpi4").is_none());
        assert!(dns_subdomain_error("Bad_Name").is_some());
        assert!(dns_label_error("a.b").is_some());
        assert!(qualified_name_error("automotive.sdv.cloud.redhat.com/architecture").is_none());
        assert!(
            qualified_name_error("target.automotive.sdv.cloud.redhat.com/raspberry pi").is_some()
        );
        assert_eq!(name_suffix().len(), 5);
    }

    #[test]
    fn durations() {
        assert_eq!(catalog_api::duration::human(5), "5s");
        assert_eq!(catalog_api::duration::human(150), "2m30s");
        assert_eq!(catalog_api::duration::human(3 * 3600 + 60), "3h1m");
        assert_eq!(catalog_api::duration::human(2 * 86400), "2d");
    }
}
