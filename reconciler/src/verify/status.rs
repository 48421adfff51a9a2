//! Pure status transitions: from the previous status and what a verification found, the
//! next status and the events to publish ([`crate::merge_patch`] writes only what changed).

use std::time::Duration;

use catalog_api::image::{CatalogImageStatus, Phase, RegistryMetadata, condition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::plan::{FAILURES_TO_FAILED, Timing, backoff_delay, jitter, periodic_delay};

/// A tag that no longer points at the pinned digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagMoved {
    pub tag: String,
    pub tag_digest: String,
    pub pinned: String,
}

/// What one verification attempt found.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The image exists and matches its declaration.
    Verified {
        metadata: RegistryMetadata,
        tag_moved: Option<TagMoved>,
    },
    /// The image exists but is not what the entry declares.
    Mismatch {
        metadata: RegistryMetadata,
        reason: &'static str,
        message: String,
    },
    /// The attempt failed.
    Failed(Failure),
}

/// A failed attempt. `reason` is the CamelCase condition reason; `message` says what to do.
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    pub reason: &'static str,
    pub message: String,
    /// Whether the failure may heal by itself (retried with backoff, Failed after
    /// [`FAILURES_TO_FAILED`]); otherwise the image is Failed at once.
    pub transient: bool,
    /// The registry's Retry-After, or the breaker's remaining open time.
    pub retry_after: Option<Duration>,
}

pub mod reason {
    pub const RESOLVED: &str = "Resolved";
    pub const VERIFYING: &str = "Verifying";
    pub const MATCHES: &str = "MatchesDeclaration";
    pub const READY: &str = "Ready";
    pub const NOT_VERIFIED: &str = "NotYetVerified";
    pub const TAG_MOVED: &str = "TagMoved";
    pub const INVALID_REFERENCE: &str = "InvalidReference";
    pub const SECRET_NOT_FOUND: &str = "SecretNotFound";
    pub const INVALID_SECRET: &str = "InvalidSecret";
    /// A Secret without a registry host of its own does not list this image's registry.
    pub const SECRET_NOT_BOUND: &str = "SecretNotBoundToRegistry";
    pub const SECRET_UNREADABLE: &str = "SecretUnreadable";
    pub const AUTHENTICATION_FAILED: &str = "AuthenticationFailed";
    pub const MANIFEST_NOT_FOUND: &str = "ManifestNotFound";
    pub const DIGEST_NOT_FOUND: &str = "DigestNotFound";
    pub const REGISTRY_UNAVAILABLE: &str = "RegistryUnavailable";
    pub const CIRCUIT_OPEN: &str = "CircuitOpen";
    pub const INVALID_MANIFEST: &str = "InvalidManifest";
    pub const ARCHITECTURE_MISMATCH: &str = "ArchitectureMismatch";
}

/// An event to publish about a transition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventSpec {
    pub warning: bool,
    pub reason: &'static str,
    pub note: String,
}

/// The result of a transition.
#[derive(Clone, Debug, PartialEq)]
pub struct Transition {
    pub status: CatalogImageStatus,
    pub events: Vec<EventSpec>,
    /// When to verify next.
    pub requeue: Duration,
}

/// Inputs common to every transition.
#[derive(Clone, Copy, Debug)]
pub struct Inputs<'a> {
    pub generation: Option<i64>,
    pub now: jiff::Timestamp,
    pub verify_requested: Option<&'a str>,
    pub interval: Duration,
    pub timing: &'a Timing,
    pub seed: &'a str,
}

/// The status written before the registry is contacted, on a first verification or after a
/// spec change, so `kubectl get` shows the work in progress.
pub fn verifying(prev: Option<&CatalogImageStatus>, ctx: &Inputs<'_>) -> CatalogImageStatus {
    let mut status = prev.cloned().unwrap_or_default();
    status.phase = Some(Phase::Verifying);
    let mut conditions = std::mem::take(&mut status.conditions);
    for ty in [condition::AVAILABLE, condition::READY] {
        set(
            &mut conditions,
            ty,
            "Unknown",
            reason::VERIFYING,
            "verification in progress",
            ctx,
        );
    }
    if find(&conditions, condition::VERIFIED).is_none() {
        set(
            &mut conditions,
            condition::VERIFIED,
            "Unknown",
            reason::NOT_VERIFIED,
            "not verified yet",
            ctx,
        );
    }
    status.conditions = conditions;
    status
}

/// The status after a verification attempt, its events, and the next delay.
pub fn transition(
    prev: Option<&CatalogImageStatus>,
    outcome: &Outcome,
    ctx: &Inputs<'_>,
) -> Transition {
    let mut status = prev.cloned().unwrap_or_default();
    let mut next = Next {
        prev_phase: prev.and_then(|s| s.phase),
        prev_failures: prev.and_then(|s| s.verification_failures).unwrap_or(0),
        conditions: std::mem::take(&mut status.conditions),
        events: Vec::new(),
    };
    let now = Time(ctx.now);
    status.observed_generation = ctx.generation;
    status.last_verification_time = Some(now.clone());
    if let Some(requested) = ctx.verify_requested {
        status.last_handled_verify_at = Some(requested.to_string());
    }
    let periodic = periodic_delay(ctx.interval, jitter((ctx.seed, ctx.now.as_second())));
    let requeue = match outcome {
        Outcome::Verified {
            metadata,
            tag_moved,
        } => {
            verified(&mut next, &mut status, metadata, tag_moved.as_ref(), ctx);
            periodic
        }
        Outcome::Mismatch {
            metadata,
            reason,
            message,
        } => {
            mismatched(&mut next, &mut status, metadata, (reason, message), ctx);
            periodic
        }
        Outcome::Failed(failure) => match failed(&mut next, &mut status, failure, ctx) {
            true => periodic,
            false => backoff_delay(
                status.verification_failures.unwrap_or(1),
                failure.retry_after,
                ctx.timing,
                jitter((ctx.seed, status.verification_failures.unwrap_or(1))),
            ),
        },
    };
    status.conditions = next.conditions;
    Transition {
        status,
        events: next.events,
        requeue,
    }
}

/// What a transition builds besides the status fields: from the previous status, the
/// conditions and the events.
struct Next {
    prev_phase: Option<Phase>,
    prev_failures: i32,
    conditions: Vec<Condition>,
    events: Vec<EventSpec>,
}

fn verified(
    next: &mut Next,
    status: &mut CatalogImageStatus,
    metadata: &RegistryMetadata,
    tag_moved: Option<&TagMoved>,
    ctx: &Inputs<'_>,
) {
    let now = Time(ctx.now);
    status.phase = Some(Phase::Available);
    status.verification_failures = Some(0);
    status.registry_metadata = Some(metadata.clone());
    status.published_at.get_or_insert(now);
    let digest = metadata.resolved_digest.clone().unwrap_or_default();
    let summary = describe(metadata);
    let conditions = &mut next.conditions;
    let resolved = format!("resolved {digest}");
    set(
        conditions,
        condition::AVAILABLE,
        "True",
        reason::RESOLVED,
        &resolved,
        ctx,
    );
    set(
        conditions,
        condition::VERIFIED,
        "True",
        reason::MATCHES,
        &summary,
        ctx,
    );
    set(
        conditions,
        condition::READY,
        "True",
        reason::READY,
        &summary,
        ctx,
    );
    let previously_moved = find(conditions, condition::TAG_MOVED).map(|c| c.message.clone());
    match tag_moved {
        Some(moved) => {
            let message = format!(
                "tag {} now points to {} while spec.digest pins {}; the pinned image is still served. Update spec.digest to adopt the new image, or re-push the tag",
                moved.tag, moved.tag_digest, moved.pinned
            );
            if previously_moved.as_deref() != Some(message.as_str()) {
                next.events.push(EventSpec {
                    warning: true,
                    reason: reason::TAG_MOVED,
                    note: message.clone(),
                });
            }
            let (ty, r) = (condition::TAG_MOVED, reason::TAG_MOVED);
            set(&mut next.conditions, ty, "True", r, &message, ctx);
        }
        None => conditions.retain(|c| c.type_ != condition::TAG_MOVED),
    }
    if next.prev_phase != Some(Phase::Available) {
        next.events.push(EventSpec {
            warning: false,
            reason: "Verified",
            note: summary,
        });
    }
}

fn mismatched(
    next: &mut Next,
    status: &mut CatalogImageStatus,
    metadata: &RegistryMetadata,
    (reason, message): (&'static str, &str),
    ctx: &Inputs<'_>,
) {
    status.phase = Some(Phase::Failed);
    status.verification_failures = Some(next.prev_failures.saturating_add(1));
    status.registry_metadata = Some(metadata.clone());
    next.conditions.retain(|c| c.type_ != condition::TAG_MOVED);
    for ty in [condition::AVAILABLE, condition::VERIFIED, condition::READY] {
        set(&mut next.conditions, ty, "False", reason, message, ctx);
    }
    if next.prev_phase != Some(Phase::Failed) {
        next.events.push(EventSpec {
            warning: true,
            reason: "Failed",
            note: format!("{reason}: {message}"),
        });
    }
}

/// A failed attempt; true when the image is now Failed (requeued at its interval), false
/// while it is Unavailable and retried with backoff.
fn failed(
    next: &mut Next,
    status: &mut CatalogImageStatus,
    failure: &Failure,
    ctx: &Inputs<'_>,
) -> bool {
    let failures = next.prev_failures.saturating_add(1);
    status.verification_failures = Some(failures);
    let failed = !failure.transient || failures >= FAILURES_TO_FAILED;
    let phase = if failed {
        Phase::Failed
    } else {
        Phase::Unavailable
    };
    status.phase = Some(phase);
    let message = if failure.transient && failed {
        format!(
            "{} ({failures} consecutive failures; retrying every {})",
            failure.message,
            catalog_api::duration::format(ctx.interval)
        )
    } else {
        failure.message.clone()
    };
    let conditions = &mut next.conditions;
    set(
        conditions,
        condition::AVAILABLE,
        "False",
        failure.reason,
        &message,
        ctx,
    );
    set(
        conditions,
        condition::READY,
        "False",
        failure.reason,
        &message,
        ctx,
    );
    if !failure.transient || find(conditions, condition::VERIFIED).is_none() {
        let status = if failure.transient {
            "Unknown"
        } else {
            "False"
        };
        set(
            conditions,
            condition::VERIFIED,
            status,
            failure.reason,
            &message,
            ctx,
        );
    }
    if next.prev_phase != Some(phase) {
        next.events.push(EventSpec {
            warning: true,
            reason: if failed { "Failed" } else { "Unavailable" },
            note: format!("{}: {message}", failure.reason),
        });
    }
    failed
}

/// `sha256:… (1.2 GiB, 12 layers, linux/arm64)` for messages and events.
fn describe(metadata: &RegistryMetadata) -> String {
    let mut out = metadata.resolved_digest.clone().unwrap_or_default();
    let mut parts = Vec::new();
    if let Some(size) = metadata.size_bytes {
        parts.push(catalog_api::size::human(size));
    }
    if let Some(layers) = metadata.layer_count {
        parts.push(format!("{layers} layers"));
    }
    if let Some(p) = &metadata.platform {
        parts.push(match &p.variant {
            Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
            None => format!("{}/{}", p.os, p.architecture),
        });
    }
    if metadata.is_multi_arch == Some(true) {
        let listed = metadata.platform_variants.len();
        let count = metadata
            .platform_count
            .and_then(|c| usize::try_from(c).ok())
            .unwrap_or(listed);
        parts.push(if count > listed {
            format!("{count} platforms, {listed} read")
        } else {
            format!("{count} platforms")
        });
    }
    if !parts.is_empty() {
        out.push_str(&format!(" ({})", parts.join(", ")));
    }
    out
}

fn find<'c>(conditions: &'c [Condition], ty: &str) -> Option<&'c Condition> {
    conditions.iter().find(|c| c.type_ == ty)
}

/// Sets a condition at `ctx.now` ([`catalog_api::conditions::set`]).
fn set(
    conditions: &mut Vec<Condition>,
    ty: &str,
    status: &str,
    reason: &str,
    message: &str,
    ctx: &Inputs<'_>,
) {
    let (generation, now) = (ctx.generation, ctx.now);
    catalog_api::conditions::set(conditions, ty, status, reason, message, generation, now);
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
