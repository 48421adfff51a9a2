//! Checking a delivery's signature against the source's token: GitHub `X-Hub-Signature-256`
//! (HMAC-SHA256 of the body), Gitea/Forgejo `X-Gitea-Signature` (same HMAC, hex without
//! prefix), GitLab `X-Gitlab-Token` (the token itself). Every comparison is constant-time.

use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The token as stored: a trailing newline (`echo token | kubectl create secret ...`) is not
/// part of it.
pub fn trim_newline(mut t: Vec<u8>) -> Vec<u8> {
    while matches!(t.last(), Some(b'\n' | b'\r')) {
        t.pop();
    }
    t
}

/// Checks whichever forge signature the request carries.
pub fn authenticate(headers: &HeaderMap, body: &[u8], token: &[u8]) -> Result<(), &'static str> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(signature) = get("x-hub-signature-256") {
        let hex = signature
            .strip_prefix("sha256=")
            .ok_or("X-Hub-Signature-256 must start with sha256=")?;
        return verify_hmac(token, body, hex);
    }
    if let Some(signature) = get("x-gitea-signature").or_else(|| get("x-gogs-signature")) {
        return verify_hmac(token, body, signature);
    }
    if let Some(given) = get("x-gitlab-token") {
        return if constant_time_eq(given.as_bytes(), token) {
            Ok(())
        } else {
            Err("X-Gitlab-Token does not match")
        };
    }
    Err("no signature header (X-Hub-Signature-256, X-Gitea-Signature or X-Gitlab-Token)")
}

fn verify_hmac(token: &[u8], body: &[u8], hex: &str) -> Result<(), &'static str> {
    let expected = decode_hex(hex).ok_or("signature is not hex")?;
    let mut mac = Hmac::<Sha256>::new_from_slice(token).map_err(|_| "bad key")?;
    mac.update(body);
    // verify_slice compares in constant time.
    mac.verify_slice(&expected)
        .map_err(|_| "signature does not match")
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Byte equality whose time does not depend on where the inputs differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// HMAC-SHA256 of `body` as lowercase hex: what GitHub and Gitea send.
#[cfg(test)]
pub fn sign(token: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(token).expect("any key length");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn github_gitea_and_gitlab_signatures() {
        let body = br#"{"ref":"refs/heads/main"}"#;
        let sig = sign(b"s3cret", body);
        assert!(
            authenticate(
                &headers(&[("x-hub-signature-256", format!("sha256={sig}"))]),
                body,
                b"s3cret"
            )
            .is_ok()
        );
        assert!(
            authenticate(
                &headers(&[("x-hub-signature-256", format!("sha256={sig}"))]),
                b"tampered",
                b"s3cret"
            )
            .is_err()
        );
        assert!(
            authenticate(
                &headers(&[("x-hub-signature-256", sig.clone())]),
                body,
                b"s3cret"
            )
            .is_err()
        );
        assert!(
            authenticate(
                &headers(&[("x-gitea-signature", sig.clone())]),
                body,
                b"s3cret"
            )
            .is_ok()
        );
        assert!(authenticate(&headers(&[("x-gitea-signature", sig)]), body, b"other").is_err());
        assert!(
            authenticate(
                &headers(&[("x-gitlab-token", "s3cret".into())]),
                body,
                b"s3cret"
            )
            .is_ok()
        );
        assert!(
            authenticate(
                &headers(&[("x-gitlab-token", "s3cre".into())]),
                body,
                b"s3cret"
            )
            .is_err()
        );
        assert!(authenticate(&HeaderMap::new(), body, b"s3cret").is_err());
    }

    #[test]
    fn constant_time_equality() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
