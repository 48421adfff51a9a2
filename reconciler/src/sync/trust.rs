//! The trust steps of a verified source (`spec.verify`), between fetch and planning: the
//! signature of the commit (or annotated tag), then no rollback. Either refusal applies
//! nothing of the revision and leaves the cluster as the last applied revision made it.

use std::collections::BTreeMap;
use std::path::Path;

use crate::events::EventType;

use catalog_api::labels::APPROVE_REVISION;
use catalog_api::source::{CatalogSourceStatus, VerifyMode, VerifySpec, condition};
use catalog_api::{CatalogSource, CatalogSourceSpec};

use super::Shared;
use super::approval::{Approval, approval, how_to_approve, refusal_note};
use super::effects::{event, fail, read_secret};
use super::status::set_condition;
use crate::source::ancestry::{Ancestry, ancestry};
use crate::source::signature::{self, SignatureError, TrustedKeys};

/// What both steps look at.
pub(super) struct Check<'a> {
    pub shared: &'a Shared,
    pub source: &'a CatalogSource,
    pub previous: &'a CatalogSourceStatus,
    pub revision: &'a str,
    pub cache: &'a Path,
}

impl Check<'_> {
    fn namespace(&self) -> &str {
        self.source
            .metadata
            .namespace
            .as_deref()
            .unwrap_or_default()
    }

    fn name(&self) -> &str {
        self.source.metadata.name.as_deref().unwrap_or_default()
    }

    /// Records a refusal (Ready=False, Stalled) and, when its message is new, a warning Event.
    async fn refuse(
        &self,
        written: &mut Option<(CatalogSourceStatus, u64)>,
        status: &CatalogSourceStatus,
        reason: &str,
        message: &str,
    ) {
        let generation = self.source.metadata.generation;
        let ready = |s: &CatalogSourceStatus| {
            s.conditions
                .iter()
                .find(|c| c.type_ == condition::READY)
                .map(|c| c.message.clone())
        };
        let already = ready(self.previous).as_deref() == Some(message);
        fail(
            self.shared,
            written,
            self.source,
            self.previous,
            status.clone(),
            reason,
            message,
            generation,
        )
        .await;
        if !already {
            event(
                self.shared,
                self.source,
                EventType::Warning,
                reason,
                message,
            )
            .await;
        }
    }
}

/// Verifies the signature and sets `SourceVerified`. False when the sync stops here.
pub(super) async fn verify_step(
    check: &Check<'_>,
    verify: &VerifySpec,
    written: &mut Option<(CatalogSourceStatus, u64)>,
    status: &mut CatalogSourceStatus,
) -> bool {
    let generation = check.source.metadata.generation;
    match verify_revision(check, verify).await {
        Ok(message) => {
            set_condition(
                &mut status.conditions,
                condition::SOURCE_VERIFIED,
                true,
                "Verified",
                &message,
                generation,
            );
            true
        }
        Err((reason, message)) => {
            set_condition(
                &mut status.conditions,
                condition::SOURCE_VERIFIED,
                false,
                reason,
                &message,
                generation,
            );
            let message = format!("{message}: nothing of this revision is applied");
            check
                .refuse(written, status, "VerificationFailed", &message)
                .await;
            false
        }
    }
}

/// The signature verdict: the SourceVerified message, or (reason, message).
async fn verify_revision(
    check: &Check<'_>,
    verify: &VerifySpec,
) -> Result<String, (&'static str, String)> {
    let (ns, secret) = (check.namespace(), verify.secret_ref.name.as_str());
    let data = read_secret(&check.shared.client, ns, secret)
        .await
        .map_err(|e| ("TrustedKeysUnavailable", e))?;
    let trusted = TrustedKeys::from_secret_data(&data).map_err(|e| {
        (
            "TrustedKeysUnavailable",
            format!("secret {ns}/{secret} {e}"),
        )
    })?;
    let tag = tag_to_verify(&check.source.spec, verify)?;
    tokio::task::block_in_place(|| verify_blocking(check.cache, check.revision, tag, &trusted))
}

/// The tag whose signature counts in mode Tag (`None` in mode HEAD).
fn tag_to_verify<'a>(
    spec: &'a CatalogSourceSpec,
    verify: &VerifySpec,
) -> Result<Option<&'a str>, (&'static str, String)> {
    match verify.mode {
        VerifyMode::Head => Ok(None),
        VerifyMode::Tag => spec
            .git_ref
            .as_ref()
            .and_then(|r| r.tag.as_deref())
            .map(Some)
            .ok_or((
                "TagRequired",
                "spec.verify.mode is Tag, which verifies the annotated tag of spec.ref.tag, and spec.ref names no tag".into(),
            )),
    }
}

fn verify_blocking(
    cache: &Path,
    revision: &str,
    tag: Option<&str>,
    trusted: &TrustedKeys,
) -> Result<String, (&'static str, String)> {
    let repo = git2::Repository::open_bare(cache).map_err(|e| {
        (
            "InvalidSignature",
            format!("cannot open the cache: {}", e.message()),
        )
    })?;
    let object = match tag {
        Some(tag) => signature::annotated_tag(&repo, tag, revision),
        None => signature::commit(&repo, revision),
    };
    let verified = object.and_then(|o| Ok((signature::verify(&o, trusted)?, o.what)));
    match verified {
        Ok((v, what)) => Ok(format!(
            "{what} is signed by trusted key {} ({})",
            v.fingerprint, v.origin
        )),
        Err(e) => Err((reason_of(&e), e.to_string())),
    }
}

/// The SourceVerified reason of a refusal.
fn reason_of(error: &SignatureError) -> &'static str {
    match error {
        SignatureError::Unsigned(_) | SignatureError::NotAnnotated(_) => "Unsigned",
        SignatureError::Untrusted { .. } => "UntrustedSigner",
        SignatureError::Malformed { .. } | SignatureError::Invalid { .. } => "InvalidSignature",
    }
}

/// No rollback: a revision that does not descend from the last applied one (a force-push
/// back to an older, still validly signed commit, or to another history) applies nothing
/// until the `approve-revision` annotation names it in full. False when the sync stops here.
pub(super) async fn rollback_step(
    check: &Check<'_>,
    annotations: &BTreeMap<String, String>,
    written: &mut Option<(CatalogSourceStatus, u64)>,
    status: &CatalogSourceStatus,
) -> bool {
    let Some(applied) = check.previous.last_applied_revision.as_deref() else {
        return true;
    };
    let related = tokio::task::block_in_place(|| {
        git2::Repository::open_bare(check.cache)
            .and_then(|repo| ancestry(&repo, check.revision, applied))
    });
    let relation = match related {
        Ok(relation) if relation.is_forward() => return true,
        Ok(relation) => relation,
        Err(e) => {
            let message = format!(
                "cannot tell whether {} descends from the applied revision {applied}: {}",
                check.revision,
                e.message()
            );
            check.refuse(written, status, "ReadFailed", &message).await;
            return false;
        }
    };
    let approval = approval(
        annotations.get(APPROVE_REVISION).map(String::as_str),
        check.revision,
    );
    if approval == Approval::Approved {
        return true;
    }
    let message = rollback_message(check, applied, relation, approval);
    check
        .refuse(written, status, "NonFastForward", &message)
        .await;
    false
}

fn rollback_message(
    check: &Check<'_>,
    applied: &str,
    relation: Ancestry,
    approval: Approval<'_>,
) -> String {
    let revision = check.revision;
    let what = match relation {
        Ancestry::Older => "is older than (an ancestor of)",
        _ => "does not descend from",
    };
    format!(
        "revision {revision} {what} the applied revision {applied}: the ref was force-pushed or reset, and a verified source never rolls back on its own; nothing of it is applied. If this revision is intended, {}{}",
        refusal_note(APPROVE_REVISION, approval),
        how_to_approve(check.namespace(), check.name(), APPROVE_REVISION, revision)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(git_ref: serde_json::Value) -> CatalogSourceSpec {
        serde_json::from_value(serde_json::json!({"url": "file:///r.git", "ref": git_ref})).unwrap()
    }

    #[test]
    fn mode_tag_needs_a_tag_ref() {
        let verify = |mode: VerifyMode| VerifySpec {
            mode,
            secret_ref: Default::default(),
        };
        let tagged = spec(serde_json::json!({"tag": "v1"}));
        let branch = spec(serde_json::json!({"branch": "main"}));
        assert_eq!(
            tag_to_verify(&tagged, &verify(VerifyMode::Tag)),
            Ok(Some("v1"))
        );
        assert_eq!(tag_to_verify(&tagged, &verify(VerifyMode::Head)), Ok(None));
        let (reason, message) = tag_to_verify(&branch, &verify(VerifyMode::Tag)).unwrap_err();
        assert_eq!(reason, "TagRequired");
        assert!(message.contains("spec.ref names no tag"), "{message}");
    }

    #[test]
    fn refusal_reasons() {
        let what = || "commit x".to_string();
        let cases = [
            (SignatureError::Unsigned(what()), "Unsigned"),
            (SignatureError::NotAnnotated(what()), "Unsigned"),
            (
                SignatureError::Untrusted {
                    what: what(),
                    fingerprint: String::new(),
                    detail: String::new(),
                },
                "UntrustedSigner",
            ),
            (
                SignatureError::Invalid {
                    what: what(),
                    message: String::new(),
                },
                "InvalidSignature",
            ),
        ];
        for (error, reason) in cases {
            assert_eq!(reason_of(&error), reason, "{error}");
        }
    }
}
