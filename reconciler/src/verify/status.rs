//! Pure status transitions: from the previous status and what a verification found, the
//! next status, the events to publish, and the minimal merge patch that writes it.

use std::time::Duration;

use catalog_api::image::{CatalogImageStatus, Phase, RegistryMetadata, condition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use serde_json::Value;

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
pub struct Context<'a> {
    pub generation: Option<i64>,
    pub now: jiff::Timestamp,
    pub verify_requested: Option<&'a str>,
    pub interval: Duration,
    pub timing: &'a Timing,
    pub seed: &'a str,
}

/// The status written before the registry is contacted, on a first verification or after a
/// spec change, so `kubectl get` shows the work in progress.
pub fn verifying(prev: Option<&CatalogImageStatus>, ctx: &Context<'_>) -> CatalogImageStatus {
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
    ctx: &Context<'_>,
) -> Transition {
    let prev_phase = prev.and_then(|s| s.phase);
    let prev_failures = prev.and_then(|s| s.verification_failures).unwrap_or(0);
    let mut status = prev.cloned().unwrap_or_default();
    let mut conditions = std::mem::take(&mut status.conditions);
    let mut events = Vec::new();
    let now = Time(ctx.now);
    status.observed_generation = ctx.generation;
    status.last_verification_time = Some(now.clone());
    if let Some(requested) = ctx.verify_requested {
        status.last_handled_verify_at = Some(requested.to_string());
    }
    let periodic = periodic_delay(ctx.interval, jitter((ctx.seed, ctx.now.as_second())));
    let requeue;
    match outcome {
        Outcome::Verified {
            metadata,
            tag_moved,
        } => {
            status.phase = Some(Phase::Available);
            status.verification_failures = Some(0);
            status.registry_metadata = Some(metadata.clone());
            status.published_at.get_or_insert(now);
            let digest = metadata.resolved_digest.clone().unwrap_or_default();
            let summary = describe(metadata);
            set(
                &mut conditions,
                condition::AVAILABLE,
                "True",
                reason::RESOLVED,
                &format!("resolved {digest}"),
                ctx,
            );
            set(
                &mut conditions,
                condition::VERIFIED,
                "True",
                reason::MATCHES,
                &summary,
                ctx,
            );
            set(
                &mut conditions,
                condition::READY,
                "True",
                reason::READY,
                &summary,
                ctx,
            );
            let previously_moved =
                find(&conditions, condition::TAG_MOVED).map(|c| c.message.clone());
            match tag_moved {
                Some(moved) => {
                    let message = format!(
                        "tag {} now points to {} while spec.digest pins {}; the pinned image is still served. Update spec.digest to adopt the new image, or re-push the tag",
                        moved.tag, moved.tag_digest, moved.pinned
                    );
                    if previously_moved.as_deref() != Some(message.as_str()) {
                        events.push(EventSpec {
                            warning: true,
                            reason: reason::TAG_MOVED,
                            note: message.clone(),
                        });
                    }
                    set(
                        &mut conditions,
                        condition::TAG_MOVED,
                        "True",
                        reason::TAG_MOVED,
                        &message,
                        ctx,
                    );
                }
                None => conditions.retain(|c| c.type_ != condition::TAG_MOVED),
            }
            if prev_phase != Some(Phase::Available) {
                events.push(EventSpec {
                    warning: false,
                    reason: "Verified",
                    note: summary,
                });
            }
            requeue = periodic;
        }
        Outcome::Mismatch {
            metadata,
            reason,
            message,
        } => {
            status.phase = Some(Phase::Failed);
            status.verification_failures = Some(prev_failures.saturating_add(1));
            status.registry_metadata = Some(metadata.clone());
            conditions.retain(|c| c.type_ != condition::TAG_MOVED);
            for ty in [condition::AVAILABLE, condition::VERIFIED, condition::READY] {
                set(&mut conditions, ty, "False", reason, message, ctx);
            }
            if prev_phase != Some(Phase::Failed) {
                events.push(EventSpec {
                    warning: true,
                    reason: "Failed",
                    note: format!("{reason}: {message}"),
                });
            }
            requeue = periodic;
        }
        Outcome::Failed(failure) => {
            let failures = prev_failures.saturating_add(1);
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
            set(
                &mut conditions,
                condition::AVAILABLE,
                "False",
                failure.reason,
                &message,
                ctx,
            );
            set(
                &mut conditions,
                condition::READY,
                "False",
                failure.reason,
                &message,
                ctx,
            );
            if !failure.transient || find(&conditions, condition::VERIFIED).is_none() {
                let status = if failure.transient {
                    "Unknown"
                } else {
                    "False"
                };
                set(
                    &mut conditions,
                    condition::VERIFIED,
                    status,
                    failure.reason,
                    &message,
                    ctx,
                );
            }
            if prev_phase != Some(phase) {
                events.push(EventSpec {
                    warning: true,
                    reason: if failed { "Failed" } else { "Unavailable" },
                    note: format!("{}: {message}", failure.reason),
                });
            }
            requeue = if failed {
                periodic
            } else {
                backoff_delay(
                    failures,
                    failure.retry_after,
                    ctx.timing,
                    jitter((ctx.seed, failures)),
                )
            };
        }
    }
    status.conditions = conditions;
    Transition {
        status,
        events,
        requeue,
    }
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

/// Sets a condition, keeping its lastTransitionTime when the status did not change.
fn set(
    conditions: &mut Vec<Condition>,
    ty: &str,
    status: &str,
    reason: &str,
    message: &str,
    ctx: &Context<'_>,
) {
    let transition_time = match find(conditions, ty) {
        Some(c) if c.status == status => c.last_transition_time.clone(),
        _ => Time(ctx.now),
    };
    let condition = Condition {
        type_: ty.to_string(),
        status: status.to_string(),
        reason: reason.to_string(),
        message: message.to_string(),
        observed_generation: ctx.generation,
        last_transition_time: transition_time,
    };
    match conditions.iter_mut().find(|c| c.type_ == ty) {
        Some(existing) => *existing = condition,
        None => conditions.push(condition),
    }
}

/// The JSON merge patch turning `old` into `new` (RFC 7386): changed keys, `null` for removed
/// ones, recursing into objects; `None` when nothing differs, so nothing is written.
pub fn merge_patch(old: &Value, new: &Value) -> Option<Value> {
    match (old, new) {
        (Value::Object(old), Value::Object(new)) => {
            let mut patch = serde_json::Map::new();
            for (key, value) in new {
                match old.get(key) {
                    Some(previous) if previous == value => {}
                    Some(previous) if previous.is_object() && value.is_object() => {
                        if let Some(inner) = merge_patch(previous, value) {
                            patch.insert(key.clone(), inner);
                        }
                    }
                    _ => {
                        patch.insert(key.clone(), value.clone());
                    }
                }
            }
            for key in old.keys() {
                if !new.contains_key(key) {
                    patch.insert(key.clone(), Value::Null);
                }
            }
            (!patch.is_empty()).then_some(Value::Object(patch))
        }
        (old, new) if old == new => None,
        (_, new) => Some(new.clone()),
    }
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
