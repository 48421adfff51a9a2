//! Request bodies and the non-apply patch types: JSON merge patch (RFC 7386), JSON patch
//! (RFC 6902) and strategic merge patch.
//!
//! Strategic merge patch is treated as a merge patch with its `$`-directives interpreted
//! where cheap: kubectl sends it for the core kinds (Secrets, ConfigMaps, ...) whose lists we
//! do not need to merge by key. For custom resources it is refused with 415, as the real
//! server does (a controller using it would fail on a cluster).

use serde_json::{Map, Value};

use super::error::{ApiError, ApiResult};

/// The patch flavours a PATCH request can carry, from its Content-Type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchKind {
    Merge,
    Json,
    Strategic,
    Apply,
}

impl PatchKind {
    /// Maps a Content-Type header to a patch kind (parameters like `charset` are ignored).
    pub fn from_content_type(ct: &str) -> ApiResult<Self> {
        let base = ct.split(';').next().unwrap_or_default().trim();
        match base {
            "application/merge-patch+json" => Ok(PatchKind::Merge),
            "application/json-patch+json" => Ok(PatchKind::Json),
            "application/strategic-merge-patch+json" => Ok(PatchKind::Strategic),
            "application/apply-patch+yaml"
            | "application/apply-patch+json"
            | "application/apply-patch+cbor" => Ok(PatchKind::Apply),
            other => Err(ApiError::unsupported_media_type(other)),
        }
    }
}

/// Parses a body as JSON, or as YAML when `yaml` is set (apply patches may be either; JSON is
/// YAML, but parsing JSON with serde_json first keeps numbers and error messages exact).
pub fn parse_body(body: &[u8], yaml: bool) -> ApiResult<Value> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("the request body is empty"));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => Ok(v),
        Err(e) if !yaml => Err(ApiError::bad_request(format!(
            "the body of the request could not be decoded as JSON: {e}"
        ))),
        Err(_) => {
            let text = std::str::from_utf8(body)
                .map_err(|_| ApiError::bad_request("the apply patch is not valid UTF-8"))?;
            serde_saphyr::from_str::<Value>(text)
                .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))
        }
    }
}

/// RFC 7386 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            if let Value::Object(t) = target {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// Applies a strategic merge patch as a merge patch, honouring `$patch: delete|replace` on
/// maps and dropping the list-ordering directives (`$setElementOrder/...`, `$retainKeys`).
pub fn strategic_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    match p.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            let mut replacement = patch.clone();
            strip_directives(&mut replacement);
            *target = replacement;
            return;
        }
        Some("delete") => {
            *target = Value::Null;
            return;
        }
        _ => {}
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(t) = target else { return };
    for (k, v) in p {
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Some(del)) = (t.get_mut(field), v.as_array()) {
                list.retain(|x| !del.contains(x));
            }
            continue;
        }
        if k.starts_with('$') {
            continue;
        }
        if v.is_null() {
            t.remove(k);
            continue;
        }
        let slot = t.entry(k.clone()).or_insert(Value::Null);
        strategic_patch(slot, v);
        if slot.is_null() {
            t.remove(k);
        }
    }
}

fn strip_directives(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|k, _| !k.starts_with('$'));
            m.values_mut().for_each(strip_directives);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_directives),
        _ => {}
    }
}

/// RFC 6902 JSON patch. Failures (bad path, failed `test`) are 422 on the real server.
pub fn json_patch(target: &mut Value, patch: &Value) -> ApiResult<()> {
    let ops: json_patch::Patch = serde_json::from_value(patch.clone())
        .map_err(|e| ApiError::bad_request(format!("the server rejected our request due to an error in our request: invalid JSON patch: {e}")))?;
    json_patch::patch(target, &ops).map_err(|e| {
        ApiError::new(
            422,
            "Invalid",
            format!("the server rejected our request due to an error in our request: {e}"),
        )
    })
}

/// Applies a non-apply patch of `kind` to `target`.
pub fn apply_patch(kind: PatchKind, target: &mut Value, patch: &Value) -> ApiResult<()> {
    match kind {
        PatchKind::Merge => {
            if !patch.is_object() {
                return Err(ApiError::bad_request("a merge patch must be a JSON object"));
            }
            merge_patch(target, patch);
            Ok(())
        }
        PatchKind::Strategic => {
            if !patch.is_object() {
                return Err(ApiError::bad_request(
                    "a strategic merge patch must be a JSON object",
                ));
            }
            strategic_patch(target, patch);
            Ok(())
        }
        PatchKind::Json => json_patch(target, patch),
        PatchKind::Apply => Err(ApiError::internal(
            "apply patches are handled by server-side apply",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge() {
        let mut t = json!({"a": 1, "m": {"x": 1, "y": 2}, "l": [1, 2]});
        merge_patch(&mut t, &json!({"a": null, "m": {"y": 3, "z": 4}, "l": [3]}));
        assert_eq!(t, json!({"m": {"x": 1, "y": 3, "z": 4}, "l": [3]}));
    }

    #[test]
    fn strategic() {
        let mut t = json!({"metadata": {"labels": {"a": "1"}, "finalizers": ["x", "y"]}, "data": {"k": "v"}});
        strategic_patch(
            &mut t,
            &json!({"metadata": {"labels": {"b": "2"}, "$deleteFromPrimitiveList/finalizers": ["x"],
                    "$setElementOrder/finalizers": ["y"]}, "data": {"$patch": "replace", "n": "w"}}),
        );
        assert_eq!(
            t,
            json!({"metadata": {"labels": {"a": "1", "b": "2"}, "finalizers": ["y"]}, "data": {"n": "w"}})
        );
    }

    #[test]
    fn json_patch_ops() {
        let mut t = json!({"spec": {"tags": ["a"]}});
        json_patch(
            &mut t,
            &json!([{"op": "add", "path": "/spec/tags/-", "value": "b"},
                                   {"op": "replace", "path": "/spec/x", "value": 1}]),
        )
        .expect_err("replace of a missing path fails");
        json_patch(
            &mut t,
            &json!([{"op": "add", "path": "/spec/tags/-", "value": "b"},
                                   {"op": "test", "path": "/spec/tags/0", "value": "a"}]),
        )
        .expect("valid");
        assert_eq!(t, json!({"spec": {"tags": ["a", "b"]}}));
        assert_eq!(
            json_patch(&mut t, &json!({"op": "add"}))
                .expect_err("not a list")
                .code,
            400
        );
    }

    #[test]
    fn bodies() {
        assert_eq!(
            parse_body(b"{\"a\": 1}", false).expect("json"),
            json!({"a": 1})
        );
        assert_eq!(
            parse_body(b"a: 1\nb: [x]\n", true).expect("yaml"),
            json!({"a": 1, "b": ["x"]})
        );
        assert_eq!(
            parse_body(b"a: 1", false)
                .expect_err("yaml not allowed")
                .code,
            400
        );
        assert_eq!(
            PatchKind::from_content_type("application/apply-patch+yaml; charset=utf-8")
                .expect("ct"),
            PatchKind::Apply
        );
        assert_eq!(
            PatchKind::from_content_type("text/plain")
                .expect_err("ct")
                .code,
            415
        );
    }
}
