//! Reading response bodies, always with a cap: a hostile or broken registry cannot make the
//! controller allocate without bound, whatever it declares in `Content-Length`.

use reqwest::Response;

use super::client::RegistryClient;
use super::error::{self, RegistryError};

/// Error bodies are read up to this size for their error code, never more.
pub(super) const ERROR_BODY_LIMIT: usize = 16 * 1024;
/// Largest token endpoint answer accepted. Real tokens are a few KiB of JWT; the endpoint is
/// chosen by the registry (`realm`), so it gets a budget of its own, smaller than a manifest's.
pub(super) const TOKEN_BODY_LIMIT: usize = 64 * 1024;

impl RegistryClient {
    /// Reads a manifest, index or config body up to `max_document_bytes`.
    pub(super) async fn read_limited(
        &self,
        registry: &str,
        what: &str,
        response: Response,
    ) -> Result<Vec<u8>, RegistryError> {
        read_capped(
            registry,
            what,
            response,
            self.inner.options.max_document_bytes,
        )
        .await
    }
}

/// The whole body, or an [`RegistryError::Invalid`] as soon as it exceeds `limit` (declared
/// or actual): nothing beyond `limit` is ever buffered.
pub(super) async fn read_capped(
    registry: &str,
    what: &str,
    mut response: Response,
    limit: usize,
) -> Result<Vec<u8>, RegistryError> {
    let too_big = || RegistryError::Invalid {
        registry: registry.into(),
        what: what.into(),
        detail: format!("document larger than {limit} bytes"),
    };
    if response.content_length().is_some_and(|l| l > limit as u64) {
        return Err(too_big());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| error::from_transport(registry, what, &e))?
    {
        if body.len() + chunk.len() > limit {
            return Err(too_big());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// At most the first `limit` bytes of an error body, for its error code: the rest is never
/// read, and a body that breaks off yields what arrived (the status is what matters).
pub(super) async fn read_prefix(mut response: Response, limit: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = limit - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(body: Vec<u8>) -> Response {
        Response::from(http::Response::new(reqwest::Body::from(body)))
    }

    fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn error_bodies_are_read_only_up_to_their_cap() {
        let body = block_on(read_prefix(response(vec![b'x'; 1 << 20]), ERROR_BODY_LIMIT));
        assert_eq!(body.len(), ERROR_BODY_LIMIT);
    }

    #[test]
    fn documents_over_the_cap_are_refused() {
        let big = vec![b'x'; TOKEN_BODY_LIMIT + 1];
        let refused = block_on(read_capped("r", "token", response(big), TOKEN_BODY_LIMIT));
        assert!(
            matches!(refused, Err(RegistryError::Invalid { .. })),
            "{refused:?}"
        );
        let small = block_on(read_capped("r", "token", response(b"{}".to_vec()), 2));
        assert_eq!(small.unwrap(), b"{}");
    }
}
