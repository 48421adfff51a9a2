//! Pushing a commit: to a remote over any transport libgit2 speaks, or into a local checkout
//! (which libgit2 cannot push to). The commit is pushed from a scratch ref that is always
//! deleted afterwards, so a failed push leaves the cached clone exactly as it was.

use std::path::Path;

use git2::{Oid, PushOptions, Repository};

use super::{CatalogRepo, OUTGOING_REF, auth, git_err};
use crate::error::CaibError;

/// Why a push did not land.
pub(super) enum PushError {
    /// The remote refused the update (non-fast-forward, hook).
    Rejected(String),
    Failed(CaibError),
}

impl CatalogRepo {
    pub(super) fn push(&self, commit: Oid, branch: &str, force: bool) -> Result<(), PushError> {
        self.repo
            .reference(OUTGOING_REF, commit, true, "caib: outgoing")
            .map_err(|e| PushError::Failed(git_err(e)))?;
        let result = match &self.location.worktree {
            Some(worktree) => self.push_into_worktree(worktree, commit, branch, force),
            None => self.push_ref(branch, force),
        };
        if let Ok(mut reference) = self.repo.find_reference(OUTGOING_REF) {
            let _ = reference.delete();
        }
        result?;
        let _ = self.repo.reference(
            &format!("refs/remotes/origin/{branch}"),
            commit,
            true,
            "caib: pushed",
        );
        Ok(())
    }

    fn push_ref(&self, branch: &str, force: bool) -> Result<(), PushError> {
        let state = auth::AuthState::default();
        let rejected = std::cell::RefCell::new(None::<String>);
        let mut callbacks = auth::callbacks(&state);
        callbacks.push_update_reference(|_refname, status| {
            if let Some(status) = status {
                *rejected.borrow_mut() = Some(status.to_owned());
            }
            Ok(())
        });
        let mut options = PushOptions::new();
        options
            .remote_callbacks(callbacks)
            .follow_redirects(auth::REDIRECTS);
        let mut remote = self
            .repo
            .find_remote("origin")
            .map_err(|e| PushError::Failed(git_err(e)))?;
        let refspec = format!(
            "{}{OUTGOING_REF}:refs/heads/{branch}",
            if force { "+" } else { "" }
        );
        let outcome = remote.push(&[refspec.as_str()], Some(&mut options));
        drop(options);
        match outcome {
            Err(e) if e.code() == git2::ErrorCode::NotFastForward => {
                Err(PushError::Rejected(e.message().to_owned()))
            }
            Err(e) => {
                let message = e.message().to_ascii_lowercase();
                if !auth::is_auth_error(&e, &state)
                    && (message.contains("fast-forward") || message.contains("fetch first"))
                {
                    return Err(PushError::Rejected(e.message().to_owned()));
                }
                Err(PushError::Failed(auth::map_error(
                    e,
                    "push to",
                    &self.location.display,
                    &state,
                )))
            }
            Ok(()) => match rejected.into_inner() {
                Some(why) => Err(PushError::Rejected(why)),
                None => Ok(()),
            },
        }
    }

    /// libgit2 cannot push into a non-bare repository, so for a local checkout the commit is
    /// fetched from the cache into it and the branch is moved with a compare-and-swap: the
    /// same outcome as a push, including the non-fast-forward rejection.
    fn push_into_worktree(
        &self,
        worktree: &Path,
        commit: Oid,
        branch: &str,
        force: bool,
    ) -> Result<(), PushError> {
        let failed = |e: git2::Error| {
            PushError::Failed(CaibError::Other(anyhow::anyhow!(
                "push to {}: {}",
                worktree.display(),
                e.message()
            )))
        };
        let target = Repository::open(worktree).map_err(failed)?;
        let cache = self.repo.path().display().to_string();
        let mut remote = target.remote_anonymous(&cache).map_err(failed)?;
        let incoming = "refs/caib/incoming";
        remote
            .fetch(
                &[format!("+{OUTGOING_REF}:{incoming}").as_str()],
                None,
                None,
            )
            .map_err(failed)?;
        if let Ok(mut r) = target.find_reference(incoming) {
            let _ = r.delete();
        }
        let refname = format!("refs/heads/{branch}");
        let current = target.refname_to_id(&refname).ok();
        match current {
            Some(old) if !force => {
                if old != commit && !target.graph_descendant_of(commit, old).map_err(failed)? {
                    return Err(PushError::Rejected("non-fast-forward".into()));
                }
                target
                    .reference_matching(&refname, commit, true, old, "caib: push")
                    .map_err(|_| PushError::Rejected("the branch moved".into()))?;
            }
            _ => {
                target
                    .reference(&refname, commit, true, "caib: push")
                    .map_err(failed)?;
            }
        }
        Ok(())
    }
}
