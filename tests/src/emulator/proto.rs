//! Decoding of Kubernetes protobuf request bodies for the kinds kubectl creates through its
//! typed clients (`kubectl create secret|configmap|namespace|serviceaccount|role|rolebinding|
//! token`, `kubectl auth whoami|can-i` send
//! `application/vnd.kubernetes.protobuf` and there is no fallback to JSON). Only decoding is
//! needed: kubectl also accepts JSON answers.
//!
//! Format: the magic `k8s\0`, then a `runtime.Unknown` message whose `raw` field holds the
//! typed message. Field numbers come from `k8s.io/api/core/v1/generated.proto` and
//! `k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto`.

use base64::Engine;
use serde_json::{Map, Value, json};

use super::error::{ApiError, ApiResult};

/// How one protobuf field maps to JSON.
enum Kind {
    Str,
    /// `bytes`, rendered base64 as in JSON.
    Bytes,
    Bool,
    Int,
    Time,
    Msg(&'static [Field]),
    RepStr,
    RepMsg(&'static [Field]),
    MapStr,
    MapBytes,
}

struct Field(u32, &'static str, Kind);

const OWNER_REF: &[Field] = &[
    Field(1, "kind", Kind::Str),
    Field(3, "name", Kind::Str),
    Field(4, "uid", Kind::Str),
    Field(5, "apiVersion", Kind::Str),
    Field(6, "controller", Kind::Bool),
    Field(7, "blockOwnerDeletion", Kind::Bool),
];

const OBJECT_META: &[Field] = &[
    Field(1, "name", Kind::Str),
    Field(2, "generateName", Kind::Str),
    Field(3, "namespace", Kind::Str),
    Field(5, "uid", Kind::Str),
    Field(6, "resourceVersion", Kind::Str),
    Field(7, "generation", Kind::Int),
    Field(8, "creationTimestamp", Kind::Time),
    Field(9, "deletionTimestamp", Kind::Time),
    Field(10, "deletionGracePeriodSeconds", Kind::Int),
    Field(11, "labels", Kind::MapStr),
    Field(12, "annotations", Kind::MapStr),
    Field(13, "ownerReferences", Kind::RepMsg(OWNER_REF)),
    Field(14, "finalizers", Kind::RepStr),
];

const SECRET: &[Field] = &[
    Field(1, "metadata", Kind::Msg(OBJECT_META)),
    Field(2, "data", Kind::MapBytes),
    Field(3, "type", Kind::Str),
    Field(4, "stringData", Kind::MapStr),
    Field(5, "immutable", Kind::Bool),
];

const CONFIG_MAP: &[Field] = &[
    Field(1, "metadata", Kind::Msg(OBJECT_META)),
    Field(2, "data", Kind::MapStr),
    Field(3, "binaryData", Kind::MapBytes),
    Field(4, "immutable", Kind::Bool),
];

const NAMESPACE: &[Field] = &[
    Field(1, "metadata", Kind::Msg(OBJECT_META)),
    Field(
        2,
        "spec",
        Kind::Msg(&[Field(1, "finalizers", Kind::RepStr)]),
    ),
];

const OBJECT_REF: &[Field] = &[
    Field(1, "kind", Kind::Str),
    Field(2, "namespace", Kind::Str),
    Field(3, "name", Kind::Str),
    Field(4, "uid", Kind::Str),
    Field(5, "apiVersion", Kind::Str),
];

const SERVICE_ACCOUNT: &[Field] = &[
    Field(1, "metadata", Kind::Msg(OBJECT_META)),
    Field(2, "secrets", Kind::RepMsg(OBJECT_REF)),
    Field(
        3,
        "imagePullSecrets",
        Kind::RepMsg(&[Field(1, "name", Kind::Str)]),
    ),
    Field(4, "automountServiceAccountToken", Kind::Bool),
];

/// `k8s.io/api/rbac/v1/generated.proto`.
const POLICY_RULE: &[Field] = &[
    Field(1, "verbs", Kind::RepStr),
    Field(2, "apiGroups", Kind::RepStr),
    Field(3, "resources", Kind::RepStr),
    Field(4, "resourceNames", Kind::RepStr),
    Field(5, "nonResourceURLs", Kind::RepStr),
];

const ROLE: &[Field] = &[
    Field(1, "metadata", Kind::Msg(OBJECT_META)),
    Field(2, "rules", Kind::RepMsg(POLICY_RULE)),
];

const BINDING: &[Field] = &[
    Field(1, "metadata", Kind::Msg(OBJECT_META)),
    Field(
        2,
        "subjects",
        Kind::RepMsg(&[
            Field(1, "kind", Kind::Str),
            Field(2, "apiGroup", Kind::Str),
            Field(3, "name", Kind::Str),
            Field(4, "namespace", Kind::Str),
        ]),
    ),
    Field(
        3,
        "roleRef",
        Kind::Msg(&[
            Field(1, "apiGroup", Kind::Str),
            Field(2, "kind", Kind::Str),
            Field(3, "name", Kind::Str),
        ]),
    ),
];

/// `k8s.io/api/authentication/v1/generated.proto`.
const TOKEN_REQUEST: &[Field] = &[
    Field(1, "metadata", Kind::Msg(OBJECT_META)),
    Field(
        2,
        "spec",
        Kind::Msg(&[
            Field(1, "audiences", Kind::RepStr),
            Field(3, "boundObjectRef", Kind::Msg(OBJECT_REF)),
            Field(4, "expirationSeconds", Kind::Int),
        ]),
    ),
];

/// `k8s.io/api/authorization/v1/generated.proto`.
const ACCESS_REVIEW: &[Field] = &[
    Field(1, "metadata", Kind::Msg(OBJECT_META)),
    Field(
        2,
        "spec",
        Kind::Msg(&[
            Field(
                1,
                "resourceAttributes",
                Kind::Msg(&[
                    Field(1, "namespace", Kind::Str),
                    Field(2, "verb", Kind::Str),
                    Field(3, "group", Kind::Str),
                    Field(4, "version", Kind::Str),
                    Field(5, "resource", Kind::Str),
                    Field(6, "subresource", Kind::Str),
                    Field(7, "name", Kind::Str),
                ]),
            ),
            Field(
                2,
                "nonResourceAttributes",
                Kind::Msg(&[Field(1, "path", Kind::Str), Field(2, "verb", Kind::Str)]),
            ),
        ]),
    ),
];

const RULES_REVIEW: &[Field] = &[
    Field(1, "metadata", Kind::Msg(OBJECT_META)),
    Field(2, "spec", Kind::Msg(&[Field(1, "namespace", Kind::Str)])),
];

const UNKNOWN: &[Field] = &[
    Field(
        1,
        "typeMeta",
        Kind::Msg(&[
            Field(1, "apiVersion", Kind::Str),
            Field(2, "kind", Kind::Str),
        ]),
    ),
    Field(2, "raw", Kind::Bytes),
];

/// One wire-format field: number and payload.
enum Wire<'a> {
    Varint(u64),
    Len(&'a [u8]),
    Fixed,
}

fn varint(b: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*pos)?;
        *pos += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

fn fields(b: &[u8]) -> Option<Vec<(u32, Wire<'_>)>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < b.len() {
        let key = varint(b, &mut pos)?;
        let num = u32::try_from(key >> 3).ok()?;
        let w = match key & 7 {
            0 => Wire::Varint(varint(b, &mut pos)?),
            1 => {
                pos += 8;
                Wire::Fixed
            }
            2 => {
                let len = usize::try_from(varint(b, &mut pos)?).ok()?;
                let s = b.get(pos..pos.checked_add(len)?)?;
                pos += len;
                Wire::Len(s)
            }
            5 => {
                pos += 4;
                Wire::Fixed
            }
            _ => return None,
        };
        out.push((num, w));
    }
    (pos == b.len()).then_some(out)
}

fn text(b: &[u8]) -> Option<Value> {
    std::str::from_utf8(b).ok().map(|s| json!(s))
}

fn map_entry(b: &[u8], bytes_value: bool) -> Option<(String, Value)> {
    let mut key = String::new();
    let mut value = json!("");
    for (n, w) in fields(b)? {
        match (n, w) {
            (1, Wire::Len(k)) => key = std::str::from_utf8(k).ok()?.to_string(),
            (2, Wire::Len(v)) if bytes_value => {
                value = json!(base64::engine::general_purpose::STANDARD.encode(v))
            }
            (2, Wire::Len(v)) => value = text(v)?,
            _ => {}
        }
    }
    Some((key, value))
}

fn time(b: &[u8]) -> Option<Value> {
    let mut secs = 0i64;
    for (n, w) in fields(b)? {
        if let (1, Wire::Varint(v)) = (n, w) {
            secs = v as i64;
        }
    }
    if secs == 0 {
        return Some(Value::Null);
    }
    let ts = jiff::Timestamp::from_second(secs).ok()?;
    Some(json!(ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()))
}

fn message(b: &[u8], schema: &[Field]) -> Option<Map<String, Value>> {
    let mut out = Map::new();
    for (n, w) in fields(b)? {
        let Some(Field(_, name, kind)) = schema.iter().find(|f| f.0 == n) else {
            continue;
        };
        let name = name.to_string();
        // gogo-protobuf writes empty strings, zeros and empty times; JSON omits them.
        let empty = match &w {
            Wire::Varint(0) => matches!(kind, Kind::Bool | Kind::Int),
            Wire::Len(v) => v.is_empty() && matches!(kind, Kind::Str | Kind::Time),
            _ => false,
        };
        if empty {
            continue;
        }
        match (kind, w) {
            (Kind::Str, Wire::Len(v)) => {
                out.insert(name, text(v)?);
            }
            (Kind::Bytes, Wire::Len(v)) => {
                out.insert(
                    name,
                    json!(base64::engine::general_purpose::STANDARD.encode(v)),
                );
            }
            (Kind::Bool, Wire::Varint(v)) => {
                out.insert(name, json!(v != 0));
            }
            (Kind::Int, Wire::Varint(v)) => {
                out.insert(name, json!(v as i64));
            }
            (Kind::Time, Wire::Len(v)) => {
                let t = time(v)?;
                if !t.is_null() {
                    out.insert(name, t);
                }
            }
            (Kind::Msg(s), Wire::Len(v)) => {
                out.insert(name, Value::Object(message(v, s)?));
            }
            (Kind::RepStr, Wire::Len(v)) => {
                let list = out.entry(name).or_insert_with(|| json!([]));
                if let Some(a) = list.as_array_mut() {
                    a.push(text(v)?);
                }
            }
            (Kind::RepMsg(s), Wire::Len(v)) => {
                let item = Value::Object(message(v, s)?);
                let list = out.entry(name).or_insert_with(|| json!([]));
                if let Some(a) = list.as_array_mut() {
                    a.push(item);
                }
            }
            (Kind::MapStr | Kind::MapBytes, Wire::Len(v)) => {
                let (k, val) = map_entry(v, matches!(kind, Kind::MapBytes))?;
                let m = out.entry(name).or_insert_with(|| json!({}));
                if let Some(m) = m.as_object_mut() {
                    m.insert(k, val);
                }
            }
            _ => return None,
        }
    }
    Some(out)
}

/// Whether a Content-Type is the Kubernetes protobuf media type.
pub fn is_protobuf(content_type: &str) -> bool {
    content_type.split(';').next().map(str::trim) == Some("application/vnd.kubernetes.protobuf")
}

/// Decodes a protobuf-encoded object of one of the kinds above into its JSON form.
pub fn decode(body: &[u8]) -> ApiResult<Value> {
    let bad = || ApiError::bad_request("unable to decode the protobuf request body");
    let unknown = body
        .strip_prefix(b"k8s\0")
        .and_then(|b| message(b, UNKNOWN))
        .ok_or_else(bad)?;
    let api_version = unknown
        .get("typeMeta")
        .and_then(|t| t.get("apiVersion"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kind = unknown
        .get("typeMeta")
        .and_then(|t| t.get("kind"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let schema = match (api_version, kind) {
        ("v1", "Secret") => SECRET,
        ("v1", "ConfigMap") => CONFIG_MAP,
        ("v1", "Namespace") => NAMESPACE,
        ("v1", "ServiceAccount") => SERVICE_ACCOUNT,
        ("rbac.authorization.k8s.io/v1", "Role" | "ClusterRole") => ROLE,
        ("rbac.authorization.k8s.io/v1", "RoleBinding" | "ClusterRoleBinding") => BINDING,
        ("authentication.k8s.io/v1", "TokenRequest") => TOKEN_REQUEST,
        ("authentication.k8s.io/v1", "SelfSubjectReview") => {
            &[Field(1, "metadata", Kind::Msg(OBJECT_META))]
        }
        ("authorization.k8s.io/v1", "SelfSubjectAccessReview") => ACCESS_REVIEW,
        ("authorization.k8s.io/v1", "SelfSubjectRulesReview") => RULES_REVIEW,
        _ => {
            return Err(ApiError::unsupported_media_type(&format!(
                "application/vnd.kubernetes.protobuf ({api_version} {kind})"
            )));
        }
    };
    let raw = unknown
        .get("raw")
        .and_then(Value::as_str)
        .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
        .ok_or_else(bad)?;
    let mut obj = message(&raw, schema).ok_or_else(bad)?;
    obj.insert("apiVersion".into(), json!(api_version));
    obj.insert("kind".into(), json!(kind));
    Ok(Value::Object(obj))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn len_field(n: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![((n << 3) | 2) as u8, payload.len() as u8];
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn decodes_a_secret() {
        let meta = [
            len_field(1, b"s1"),
            len_field(3, b"default"),
            len_field(11, &[len_field(1, b"a"), len_field(2, b"b")].concat()),
        ]
        .concat();
        let secret = [
            len_field(1, &meta),
            len_field(2, &[len_field(1, b"pw"), len_field(2, b"hunter2")].concat()),
            len_field(3, b"Opaque"),
        ]
        .concat();
        let type_meta = [len_field(1, b"v1"), len_field(2, b"Secret")].concat();
        let unknown = [len_field(1, &type_meta), len_field(2, &secret)].concat();
        let body = [b"k8s\0".as_slice(), &unknown].concat();
        let v = decode(&body).expect("decodes");
        assert_eq!(
            v,
            json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"name": "s1", "namespace": "default", "labels": {"a": "b"}},
                "data": {"pw": "aHVudGVyMg=="}})
        );
        assert_eq!(decode(b"k8s\0\x0a").expect_err("truncated").code, 400);
    }
}
