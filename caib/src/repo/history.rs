//! Whether the cluster shows a change: the reconciler stamps every CatalogImage it applies with
//! the commit it read (`source-revision`), and a change is in the cluster once that commit is
//! the change's own or a later one of the same history.

use git2::Oid;

use super::{CatalogRepo, fetch, git_err};
use crate::error::Result;

impl CatalogRepo {
    /// Whether `revision` (a commit id as the cluster reports it) is `commit` or descends from
    /// it. A revision not known here yet is fetched once.
    pub fn includes(&self, revision: &str, commit: Oid) -> Result<bool> {
        let Ok(revision) = Oid::from_str(revision) else {
            return Ok(false);
        };
        if revision == commit {
            return Ok(true);
        }
        if self.repo.find_commit(revision).is_err() {
            fetch(&self.repo, &self.location)?;
            if self.repo.find_commit(revision).is_err() {
                return Ok(false);
            }
        }
        self.repo
            .graph_descendant_of(revision, commit)
            .map_err(git_err)
    }
}
