//! The reasons the sync writes on CatalogSource conditions and Events (CamelCase, as
//! Kubernetes conditions have them), in one place: each is named once, so a condition, its
//! Event and a test cannot drift apart (as [`crate::verify`] keeps its own).

/// Ready: the fetched revision is applied.
pub const SYNCED: &str = "Synced";
/// Ready: some writes failed.
pub const APPLY_FAILED: &str = "ApplyFailed";
/// Ready: entries another source or nobody owns.
pub const CONFLICT: &str = "Conflict";
/// Ready: files that failed validation (their previous entries are kept).
pub const INVALID_ENTRIES: &str = "InvalidEntries";
/// Ready/Stalled: deletions held back until approved.
pub const EMPTY_REVISION_BLOCKED: &str = "EmptyRevisionBlocked";
pub const DELETION_BUDGET_EXCEEDED: &str = "DeletionBudgetExceeded";
/// Reconciling: nothing to do until the next revision.
pub const IDLE: &str = "Idle";
pub const WAITING_FOR_APPROVAL: &str = "WaitingForApproval";
/// Stalled=False.
pub const PROGRESSING: &str = "Progressing";
/// Reconciling=False while `spec.suspend` is true.
pub const SUSPENDED: &str = "Suspended";

/// The spec is refused before anything is fetched.
pub const INVALID_SPEC: &str = "InvalidSpec";
pub const CROSS_NAMESPACE_TARGET: &str = "CrossNamespaceTarget";

/// Ready (and its Event) while the remote cannot be fetched.
pub const FETCH_FAILED: &str = "FetchFailed";
/// Reconciling while fetches are retried with backoff.
pub const RETRYING_FETCH: &str = "RetryingFetch";
/// Stalled after [`super::status::STALLED_AFTER_FAILURES`] failed fetches in a row.
pub const FETCH_FAILING: &str = "FetchFailing";

/// Ready when the signature check refused the revision.
pub const VERIFICATION_FAILED: &str = "VerificationFailed";
/// Ready when the revision does not descend from the applied one.
pub const NON_FAST_FORWARD: &str = "NonFastForward";
/// Ready when the revision could not be read (or its ancestry told).
pub const READ_FAILED: &str = "ReadFailed";
/// Ready when the environment holds more entry files than `--max-entries-per-source`.
pub const TOO_MANY_ENTRIES: &str = "TooManyEntries";
/// Ready when a sync panicked.
pub const INTERNAL_ERROR: &str = "InternalError";

/// SourceVerified: the revision is signed by a trusted key.
pub const VERIFIED: &str = "Verified";
pub const UNSIGNED: &str = "Unsigned";
pub const UNTRUSTED_SIGNER: &str = "UntrustedSigner";
pub const INVALID_SIGNATURE: &str = "InvalidSignature";
pub const TRUSTED_KEYS_UNAVAILABLE: &str = "TrustedKeysUnavailable";
pub const TAG_REQUIRED: &str = "TagRequired";

/// Events.
pub const PRUNE_FAILED: &str = "PruneFailed";
pub const PRUNED_PREVIOUS_NAMESPACE: &str = "PrunedPreviousNamespace";
pub const COMMIT_STATUS_FAILED: &str = "CommitStatusFailed";
