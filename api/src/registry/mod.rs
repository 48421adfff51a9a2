//! The one registry-inspection library of the project (feature `registry`).
//!
//! The reconciler verifies every `CatalogImage` with it, and `caib` uses it to check an image
//! before committing it to the catalog and to verify without a cluster. Having one
//! implementation means both report the same digest, size and platform for an image.
//!
//! It speaks the OCI distribution API directly over reqwest rather than through a generic
//! client because verification needs things those clients hide: a resolve that is exactly one
//! HEAD request once the registry's auth scheme is known, credentials per image (not per
//! registry), typed errors carrying the HTTP status and `Retry-After`, and a hook that counts
//! every request for metrics.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use catalog_api::registry::{Credentials, RegistryClient, RegistryOptions};
//! use catalog_api::ImageReference;
//!
//! let client = RegistryClient::new(RegistryOptions {
//!     insecure_registries: vec!["localhost:5000".into()],
//!     ..Default::default()
//! })?;
//! let reference = ImageReference::parse("localhost:5000/os/autosd:v1")?;
//! let digest = client.resolve(&reference, &Credentials::Anonymous).await?;
//! let facts = client
//!     .inspect(&reference.with_digest(&digest)?, &Credentials::Anonymous, Some("arm64"))
//!     .await?;
//! println!("{} bytes in {} layers", facts.size_bytes, facts.layer_count);
//! # Ok(()) }
//! ```

mod auth;
mod body;
mod client;
mod credentials;
mod deadline;
mod error;
mod index;
mod manifest;

use std::sync::Arc;
use std::time::Duration;

pub use client::{RegistryClient, digest_of, sha256_digest};
pub use credentials::{Credentials, CredentialsError, DOCKER_CFG_TYPE, DOCKER_CONFIG_JSON_TYPE};
pub use deadline::{deadline_exceeded, with_deadline};
pub use error::RegistryError;
pub use index::MAX_PLATFORMS;
pub use manifest::{
    DOCKER_LIST, DOCKER_MANIFEST, ImageConfig, ImageFacts, MANIFEST_ACCEPT, OCI_INDEX,
    OCI_MANIFEST, PlatformFacts,
};

/// How a [`RegistryClient`] connects.
#[derive(Clone)]
pub struct RegistryOptions {
    /// `host:port` of registries reachable over plain HTTP. Every other registry is HTTPS;
    /// plain HTTP is never a fallback, only an operator's explicit choice.
    pub insecure_registries: Vec<String>,
    /// PEM bundles of CAs to trust in addition to the system roots (private registries).
    pub extra_ca_pem: Vec<Vec<u8>>,
    /// Limit for a whole request, body included. An operation of several requests is bounded
    /// as a whole by its caller with [`with_deadline`].
    pub timeout: Duration,
    /// Limit for establishing a connection.
    pub connect_timeout: Duration,
    /// Largest manifest, index or config accepted (token answers have their own, smaller cap
    /// and error bodies are read only up to 16 KiB).
    pub max_document_bytes: usize,
    pub user_agent: String,
    /// Told about every HTTP request sent (metrics, tests counting requests).
    pub observer: Option<Arc<dyn RequestObserver>>,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            insecure_registries: Vec::new(),
            extra_ca_pem: Vec::new(),
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            max_document_bytes: 4 * 1024 * 1024,
            user_agent: format!("catalog/{}", env!("CARGO_PKG_VERSION")),
            observer: None,
        }
    }
}

impl std::fmt::Debug for RegistryOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryOptions")
            .field("insecure_registries", &self.insecure_registries)
            .field("extra_ca_pem", &self.extra_ca_pem.len())
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_document_bytes", &self.max_document_bytes)
            .field("observer", &self.observer.is_some())
            .finish()
    }
}

/// One HTTP request a [`RegistryClient`] sent.
#[derive(Debug, Clone, Copy)]
pub struct RequestRecord<'a> {
    /// The image's registry (`host[:port]`) the request was made for.
    pub registry: &'a str,
    /// The `host[:port]` actually contacted (a token endpoint may live elsewhere).
    pub host: &'a str,
    /// `HEAD` or `GET`.
    pub method: &'a str,
    /// The HTTP status, `None` when no response arrived (network error, timeout).
    pub status: Option<u16>,
    pub elapsed: Duration,
}

/// Receives a [`RequestRecord`] for every request; must be cheap and must not block.
pub trait RequestObserver: Send + Sync {
    fn observe(&self, request: &RequestRecord<'_>);
}

impl<F: Fn(&RequestRecord<'_>) + Send + Sync> RequestObserver for F {
    fn observe(&self, request: &RequestRecord<'_>) {
        self(request)
    }
}
