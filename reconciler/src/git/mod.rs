//! The Git side of a CatalogSource (named `git`, not `source`, so it is not mistaken for
//! [`catalog_api::source`], the resource): fetching a ref into a per-source bare cache,
//! credentials, reading entry files straight from the object database, and commit signature
//! checks.
//!
//! Everything here is blocking libgit2 work; callers run it on `spawn_blocking`.

pub mod ancestry;
pub mod auth;
mod callbacks;
pub mod fetch;
pub mod signature;
pub mod tree;

pub use auth::Credentials;
pub use fetch::{FetchRequest, Fetched, RefSpec, fetch};

/// Why fetching or reading a source failed. Every message names the URL without its
/// credentials ([`catalog_api::redact::redact_url`]).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot open the cache repository {path}: {message}")]
    Cache { path: String, message: String },
    #[error("fetching {url} failed: {message}")]
    Fetch { url: String, message: String },
    #[error("fetching {url} timed out after {seconds}s")]
    Timeout { url: String, seconds: u64 },
    #[error("authentication to {url} failed{detail}")]
    Auth { url: String, detail: String },
    #[error("{what} not found in {url}")]
    RefNotFound { url: String, what: String },
    #[error("reading {path} at {revision}: {message}")]
    Read {
        revision: String,
        path: String,
        message: String,
    },
    #[error(
        "{path} at {revision} holds {count} entry files, over the limit of {limit} per source (--max-entries-per-source): nothing of this revision is applied or pruned"
    )]
    TooManyEntries {
        revision: String,
        path: String,
        count: usize,
        limit: usize,
    },
}

impl SourceError {
    /// The Ready condition's reason when reading a revision failed with this error.
    pub fn read_reason(&self) -> &'static str {
        match self {
            SourceError::TooManyEntries { .. } => "TooManyEntries",
            _ => "ReadFailed",
        }
    }
}
