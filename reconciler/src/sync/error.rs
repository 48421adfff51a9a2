//! Why a sync stops, typed: each variant carries its reason ([`Error::reason`]), used alike
//! for the Ready condition, the Event and the metrics label (as controller-rs's
//! `metric_label()`), so no caller matches on a message.

use catalog_api::duration::DurationError;

use super::reason;
use crate::git::SourceError;
use crate::git::signature::{KeysError, SignatureError};

/// Why a sync stopped before it finished.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{field}: {source}; nothing is fetched or applied until it is fixed")]
    InvalidSpec {
        field: &'static str,
        source: DurationError,
    },
    #[error(
        "spec.targetNamespace {target:?} is not this CatalogSource's namespace {own:?}: nothing is applied or pruned; remove spec.targetNamespace and create the CatalogSource in {target:?}, or run the reconciler with --allow-cross-namespace-targets (single-tenant clusters)"
    )]
    CrossNamespaceTarget { target: String, own: String },
    #[error(transparent)]
    FetchFailed(#[from] FetchError),
    /// The signature check refused the revision (SourceVerified carries the inner reason).
    #[error("{0}: nothing of this revision is applied")]
    VerificationFailed(#[from] Unverified),
    #[error(
        "cannot tell whether {revision} descends from the applied revision {applied}: {message}"
    )]
    Ancestry {
        revision: String,
        applied: String,
        message: String,
    },
    /// A verified source's ref went back or sideways; the message says how to approve.
    #[error("{message}")]
    NonFastForward { message: String },
    #[error("cannot open the cache {path}: {message}")]
    Cache { path: String, message: String },
    #[error(transparent)]
    Read(#[from] SourceError),
    /// A sync panicked; the message says when it is retried.
    #[error(
        "the sync stopped on an internal error: {message}; retrying in {retry} (please report this as a bug)"
    )]
    Internal { message: String, retry: String },
}

impl Error {
    /// The CamelCase reason of the Ready condition, the Event and the metrics label.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::InvalidSpec { .. } => reason::INVALID_SPEC,
            Error::CrossNamespaceTarget { .. } => reason::CROSS_NAMESPACE_TARGET,
            Error::FetchFailed(_) => reason::FETCH_FAILED,
            Error::VerificationFailed(_) => reason::VERIFICATION_FAILED,
            Error::NonFastForward { .. } => reason::NON_FAST_FORWARD,
            Error::Ancestry { .. } | Error::Cache { .. } => reason::READ_FAILED,
            Error::Read(SourceError::TooManyEntries { .. }) => reason::TOO_MANY_ENTRIES,
            Error::Read(_) => reason::READ_FAILED,
            Error::Internal { .. } => reason::INTERNAL_ERROR,
        }
    }

    /// Whether a new occurrence is also announced as a warning Event (the trust refusals;
    /// a refused spec or an unreadable revision is on the status only).
    pub fn announced(&self) -> bool {
        matches!(
            self,
            Error::VerificationFailed(_) | Error::Ancestry { .. } | Error::NonFastForward { .. }
        )
    }
}

/// Why a fetch failed. Every message names the URL without its credentials.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("git credentials: {0}")]
    Credentials(#[from] SecretError),
    #[error(transparent)]
    Git(#[from] SourceError),
    /// The previous attempt's thread still waits on the remote (see `isolation`).
    #[error(
        "{0}; the connection of the previous attempt is still open (the remote keeps it alive), so no new fetch starts until it ends"
    )]
    StillOpen(SourceError),
    #[error(transparent)]
    Slots(#[from] tokio::sync::AcquireError),
    #[error("the fetch crashed: {0}")]
    Crashed(#[from] tokio::task::JoinError),
}

/// Why a Secret a source names could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret {namespace}/{name} not found")]
    NotFound { namespace: String, name: String },
    #[error("cannot read secret {namespace}/{name}: {source}")]
    Unreadable {
        namespace: String,
        name: String,
        source: kube::Error,
    },
}

/// Why the signature check refused a revision; [`Unverified::reason`] is SourceVerified's.
#[derive(Debug, thiserror::Error)]
pub enum Unverified {
    #[error(transparent)]
    KeysUnreadable(#[from] SecretError),
    #[error("secret {namespace}/{name} {source}")]
    NoTrustedKeys {
        namespace: String,
        name: String,
        source: KeysError,
    },
    #[error(
        "spec.verify.mode is Tag, which verifies the annotated tag of spec.ref.tag, and spec.ref names no tag"
    )]
    TagRequired,
    #[error("cannot open the cache: {0}")]
    Cache(String),
    #[error(transparent)]
    Signature(#[from] SignatureError),
}

impl Unverified {
    /// The SourceVerified reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Unverified::KeysUnreadable(_) | Unverified::NoTrustedKeys { .. } => {
                reason::TRUSTED_KEYS_UNAVAILABLE
            }
            Unverified::TagRequired => reason::TAG_REQUIRED,
            Unverified::Cache(_) => reason::INVALID_SIGNATURE,
            Unverified::Signature(
                SignatureError::Unsigned(_) | SignatureError::NotAnnotated(_),
            ) => reason::UNSIGNED,
            Unverified::Signature(SignatureError::Untrusted { .. }) => reason::UNTRUSTED_SIGNER,
            Unverified::Signature(
                SignatureError::Malformed { .. } | SignatureError::Invalid { .. },
            ) => reason::INVALID_SIGNATURE,
        }
    }
}

impl WriteError {
    /// The same failure, naming the namespace of the object (a delete outside the target).
    pub fn within(self, namespace: &str) -> WriteError {
        match self {
            WriteError::Delete { name, source } => WriteError::DeleteIn {
                namespace: namespace.to_string(),
                name,
                source,
            },
            other => other,
        }
    }
}

/// One CatalogImage write that failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("server-side apply of {name} failed: {source}")]
    Apply { name: String, source: kube::Error },
    #[error("deleting {name} failed: {source}")]
    Delete { name: String, source: kube::Error },
    /// A delete in another namespace than the target (finalizer, moved target).
    #[error("{namespace}/{name}: deleting {name} failed: {source}")]
    DeleteIn {
        namespace: String,
        name: String,
        source: kube::Error,
    },
}
