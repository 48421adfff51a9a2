//! Whether a fetched revision moves forward from the applied one: a verified source refuses to
//! roll back, since an old commit keeps its valid signature forever and replaying it (a
//! force-push) would otherwise be as trusted as a new one.

use git2::{Oid, Repository};

/// How `new` relates to `applied`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ancestry {
    /// The same commit.
    Same,
    /// `new` has `applied` in its history: a fast-forward.
    Descends,
    /// `new` is in the history of `applied`: going back.
    Older,
    /// Neither: another line of history (or `applied` is not in the repository any more).
    Unrelated,
}

impl Ancestry {
    /// Whether applying `new` after `applied` moves forward.
    pub fn is_forward(self) -> bool {
        matches!(self, Ancestry::Same | Ancestry::Descends)
    }
}

/// How commit `new` relates to commit `applied` in `repo`.
pub fn ancestry(repo: &Repository, new: &str, applied: &str) -> Result<Ancestry, git2::Error> {
    if new == applied {
        return Ok(Ancestry::Same);
    }
    let new = Oid::from_str(new)?;
    let Ok(applied) = Oid::from_str(applied) else {
        return Ok(Ancestry::Unrelated);
    };
    if repo.find_commit(applied).is_err() {
        // Every ancestor of `new` is in the repository: a missing commit is not one of them.
        return Ok(Ancestry::Unrelated);
    }
    if repo.graph_descendant_of(new, applied)? {
        Ok(Ancestry::Descends)
    } else if repo.graph_descendant_of(applied, new)? {
        Ok(Ancestry::Older)
    } else {
        Ok(Ancestry::Unrelated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::git;

    #[test]
    fn forward_back_and_sideways() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        git(dir, &["init", "-q", "-b", "main"]);
        let commit = |message: &str| {
            git(dir, &["commit", "-q", "--allow-empty", "-m", message]);
            git(dir, &["rev-parse", "HEAD"])
        };
        let one = commit("one");
        let two = commit("two");
        git(dir, &["checkout", "-q", "--orphan", "other"]);
        let other = commit("other");
        let repo = Repository::open(dir).unwrap();
        assert_eq!(ancestry(&repo, &two, &two).unwrap(), Ancestry::Same);
        assert_eq!(ancestry(&repo, &two, &one).unwrap(), Ancestry::Descends);
        assert_eq!(ancestry(&repo, &one, &two).unwrap(), Ancestry::Older);
        assert_eq!(ancestry(&repo, &other, &two).unwrap(), Ancestry::Unrelated);
        let missing = "0123456789012345678901234567890123456789";
        assert_eq!(ancestry(&repo, &two, missing).unwrap(), Ancestry::Unrelated);
        assert!(!Ancestry::Older.is_forward() && Ancestry::Descends.is_forward());
    }
}
