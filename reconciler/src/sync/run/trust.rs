//! The trust steps of a verified source (`spec.verify`), between fetch and reading: the
//! signature of the commit (or annotated tag), then no rollback. Either refusal applies
//! nothing of the revision and leaves the cluster as the last applied revision made it.
//!
//! Conditions: SourceVerified=True `Verified` (the key that signed), or False with the
//! refusal's reason (`Unsigned`, `UntrustedSigner`, `InvalidSignature`,
//! `TrustedKeysUnavailable`, `TagRequired`) and then Ready=False `VerificationFailed`,
//! Stalled=True; a rollback → Ready=False `NonFastForward` (`ReadFailed` when the ancestry
//! cannot be told). No `spec.verify`: no SourceVerified condition.

use std::path::Path;

use catalog_api::CatalogSourceSpec;
use catalog_api::labels::APPROVE_REVISION;
use catalog_api::source::{VerifyMode, VerifySpec};

use super::super::approval::{Approval, approval, how_to_approve, refusal_note};
use super::super::effects::{cache_path, read_secret};
use super::super::error::{Error, Unverified};
use super::super::outcome::Signature;
use super::{Step, Stop, SyncRun};
use crate::git::ancestry::{Ancestry, ancestry};
use crate::git::signature::{self, TrustedKeys};

/// Verifies the signature (SourceVerified), then that the revision does not roll back.
pub(super) async fn verify_signature(run: &mut SyncRun<'_>, revision: &str) -> Step<()> {
    let Some(verify) = &run.source.spec.verify else {
        run.found.signature = Signature::Off;
        return Ok(());
    };
    let cache = cache_path(run.shared, &run.key.0, &run.key.1);
    match verify_revision(run, verify, &cache, revision).await {
        Ok(message) => run.found.signature = Signature::Verified(message),
        Err(refused) => {
            run.found.signature = Signature::Refused(refused.reason(), refused.to_string());
            return Err(Stop::Failed(Error::VerificationFailed(refused)));
        }
    }
    no_rollback(run, &cache, revision)
}

/// The signature verdict: the SourceVerified message, or why not.
async fn verify_revision(
    run: &SyncRun<'_>,
    verify: &VerifySpec,
    cache: &Path,
    revision: &str,
) -> Result<String, Unverified> {
    let (ns, secret) = (run.key.0.as_str(), verify.secret_ref.name.as_str());
    let data = read_secret(&run.shared.client, ns, secret).await?;
    let trusted =
        TrustedKeys::from_secret_data(&data).map_err(|source| Unverified::NoTrustedKeys {
            namespace: ns.to_string(),
            name: secret.to_string(),
            source,
        })?;
    let tag = tag_to_verify(&run.source.spec, verify)?;
    tokio::task::block_in_place(|| verify_blocking(cache, revision, tag, &trusted))
}

/// The tag whose signature counts in mode Tag (`None` in mode HEAD).
fn tag_to_verify<'a>(
    spec: &'a CatalogSourceSpec,
    verify: &VerifySpec,
) -> Result<Option<&'a str>, Unverified> {
    match verify.mode {
        VerifyMode::Head => Ok(None),
        VerifyMode::Tag => spec
            .git_ref
            .as_ref()
            .and_then(|r| r.tag.as_deref())
            .map(Some)
            .ok_or(Unverified::TagRequired),
    }
}

fn verify_blocking(
    cache: &Path,
    revision: &str,
    tag: Option<&str>,
    trusted: &TrustedKeys,
) -> Result<String, Unverified> {
    let repo = git2::Repository::open_bare(cache)
        .map_err(|e| Unverified::Cache(e.message().to_string()))?;
    let object = match tag {
        Some(tag) => signature::annotated_tag(&repo, tag, revision),
        None => signature::commit(&repo, revision),
    }?;
    let verified = signature::verify(&object, trusted)?;
    Ok(format!(
        "{} is signed by trusted key {} ({})",
        object.what, verified.fingerprint, verified.origin
    ))
}

/// No rollback: a revision that does not descend from the last applied one (a force-push
/// back to an older, still validly signed commit, or to another history) applies nothing
/// until the `approve-revision` annotation names it in full.
fn no_rollback(run: &SyncRun<'_>, cache: &Path, revision: &str) -> Step<()> {
    let Some(applied) = run.previous.last_applied_revision.as_deref() else {
        return Ok(());
    };
    let related = tokio::task::block_in_place(|| {
        git2::Repository::open_bare(cache).and_then(|repo| ancestry(&repo, revision, applied))
    });
    let relation = match related {
        Ok(relation) if relation.is_forward() => return Ok(()),
        Ok(relation) => relation,
        Err(e) => {
            return Err(Stop::Failed(Error::Ancestry {
                revision: revision.to_string(),
                applied: applied.to_string(),
                message: e.message().to_string(),
            }));
        }
    };
    let annotations = run.source.metadata.annotations.as_ref();
    let approved = annotations.and_then(|a| a.get(APPROVE_REVISION));
    let approval = approval(approved.map(String::as_str), revision);
    if approval == Approval::Approved {
        return Ok(());
    }
    let message = rollback_message(run.key, revision, applied, relation, approval);
    Err(Stop::Failed(Error::NonFastForward { message }))
}

fn rollback_message(
    (ns, name): &(String, String),
    revision: &str,
    applied: &str,
    relation: Ancestry,
    approval: Approval<'_>,
) -> String {
    let what = match relation {
        Ancestry::Older => "is older than (an ancestor of)",
        _ => "does not descend from",
    };
    format!(
        "revision {revision} {what} the applied revision {applied}: the ref was force-pushed or reset, and a verified source never rolls back on its own; nothing of it is applied. If this revision is intended, {}{}",
        refusal_note(APPROVE_REVISION, approval),
        how_to_approve(ns, name, APPROVE_REVISION, revision)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::signature::SignatureError;

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
            tag_to_verify(&tagged, &verify(VerifyMode::Tag)).unwrap(),
            Some("v1")
        );
        assert_eq!(
            tag_to_verify(&tagged, &verify(VerifyMode::Head)).unwrap(),
            None
        );
        let refused = tag_to_verify(&branch, &verify(VerifyMode::Tag)).unwrap_err();
        assert_eq!(refused.reason(), "TagRequired");
        let message = refused.to_string();
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
            let refused = Unverified::from(error);
            assert_eq!(refused.reason(), reason, "{refused}");
        }
    }
}
