//! Validation ratcheting (KEP-4008, on by default since Kubernetes 1.30, GA in 1.33): on an
//! update, a schema or CEL error at a field whose value is unchanged from the stored object is
//! dropped. Without it, an object stored before a stricter CRD version could never be
//! updated again — not even its status or finalizers.

use serde_json::Value;

use super::error::Cause;

/// Drops the causes whose field holds the same value in `old` and `new`.
pub fn ratchet(old: &Value, new: &Value, causes: &mut Vec<Cause>) {
    causes.retain(|cause| {
        let unchanged = match (value_at(old, &cause.field), value_at(new, &cause.field)) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        };
        !unchanged
    });
}

/// The value at an API server field path (`spec.tags[0]`, `metadata.labels[app]`).
fn value_at<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    let mut current = root;
    for part in path.split('.') {
        let (name, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            current = current.get(name)?;
        }
        while let Some(inner) = rest.strip_prefix('[') {
            let end = inner.find(']')?;
            let key = &inner[..end];
            current = match current {
                Value::Array(items) => items.get(key.parse::<usize>().ok()?)?,
                other => other.get(key)?,
            };
            rest = &inner[end + 1..];
        }
    }
    Some(current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unchanged_invalid_fields_are_ratcheted() {
        let old = json!({"spec": {"interval": "9999h", "tags": ["a", ""]}, "metadata": {"labels": {"k": "v"}}});
        let mut new = old.clone();
        new["spec"]["tags"][0] = json!("b");
        let mut causes = vec![
            Cause::new("FieldValueInvalid", "spec.interval", "too long"),
            Cause::new("FieldValueInvalid", "spec.tags[1]", "empty"),
            Cause::new("FieldValueInvalid", "spec.tags[0]", "changed"),
            Cause::new("FieldValueInvalid", "metadata.labels[k]", "label"),
            Cause::new("FieldValueRequired", "spec.url", "missing"),
        ];
        ratchet(&old, &new, &mut causes);
        let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["spec.tags[0]", "spec.url"]);
    }
}
