//! Size limits a real control plane enforces, so a component that writes an oversized object
//! fails here as it would on a cluster, and for the same reason.
//!
//! - The API server reads at most `MaxRequestBodyBytes` (3 MiB) of a write's body and
//!   answers 413 beyond it
//!   (staging/src/k8s.io/apiserver/pkg/server/config.go, `MaxRequestBodyBytes`;
//!   staging/src/k8s.io/apiserver/pkg/endpoints/handlers/rest.go, `limitedReadBody`).
//! - etcd refuses a request over its `--max-request-bytes` (1.5 MiB by default) with
//!   `etcdserver: request is too large`, which the API server relays as a 500 without a reason
//!   (staging/src/k8s.io/apiserver/pkg/storage/etcd3/store.go passes the error through).
//!   The emulator measures the stored JSON form; a real etcd request adds the key and a few
//!   bytes of framing, and built-in kinds are stored as (smaller) protobuf.

use serde_json::Value;

use super::error::{ApiError, ApiResult};

/// The API server's request body limit (3 MiB).
pub const MAX_REQUEST_BODY_BYTES: usize = 3 * 1024 * 1024;

/// etcd's default `--max-request-bytes` (1.5 MiB).
pub const ETCD_MAX_REQUEST_BYTES: usize = 1536 * 1024;

/// Refuses a write whose body is over the API server's limit (reads and watches have none).
pub fn check_body(verb: &str, body: &[u8]) -> ApiResult<()> {
    let writes = matches!(
        verb,
        "create" | "update" | "patch" | "delete" | "deletecollection"
    );
    if writes && body.len() > MAX_REQUEST_BODY_BYTES {
        return Err(ApiError::entity_too_large(MAX_REQUEST_BODY_BYTES));
    }
    Ok(())
}

/// Counts the bytes written to it (the size of a serialisation, without keeping it).
#[derive(Default)]
struct Count(usize);

impl std::io::Write for Count {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Refuses to store an object etcd would refuse.
pub fn check_stored(obj: &Value) -> ApiResult<()> {
    let mut count = Count::default();
    let size = serde_json::to_writer(&mut count, obj).map_or(0, |()| count.0);
    if size > ETCD_MAX_REQUEST_BYTES {
        return Err(ApiError::unclassified("etcdserver: request is too large"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn limits() {
        let body = vec![b' '; MAX_REQUEST_BODY_BYTES + 1];
        assert_eq!(check_body("create", &body).map_err(|e| e.code), Err(413));
        assert!(check_body("list", &body).is_ok());
        assert!(check_body("patch", &body[1..]).is_ok());
        let big = json!({"data": {"a": "x".repeat(ETCD_MAX_REQUEST_BYTES)}});
        let e = check_stored(&big).expect_err("too large");
        assert_eq!((e.code, e.reason), (500, ""));
        assert!(check_stored(&json!({"data": {"a": "x"}})).is_ok());
    }
}
