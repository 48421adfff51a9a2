//! The catalog repository as caib changes it: a cached bare clone under the XDG cache dir,
//! fetched on every run; changes are written straight into the object database (no working
//! tree), validated with the one validator, committed, and pushed either to a review branch
//! or, with `--direct`, to the target branch with a bounded fetch-rebase-retry loop.
//!
//! The user's own checkout (a local `--catalog-repo PATH`) is only ever a remote: review
//! branches are pushed into it, and `--direct` refuses while it has uncommitted changes.

pub mod auth;
pub mod commit;
mod history;
pub mod location;
mod push;
pub mod tree;

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;

use catalog_api::repo::{CONFIG_FILE, Environment, RepoConfig};
use catalog_api::validate::{Entry, Report, combine_files, validate_file};
use git2::{AutotagOption, FetchOptions, FetchPrune, Oid, Repository};

use crate::error::{CaibError, Result};
pub use commit::{Action, Message, branch_name};
pub use location::Location;
use push::PushError;
pub use tree::FileChange;

/// How often `--direct` re-applies its change on a new tip before giving up.
pub const MAX_DIRECT_ATTEMPTS: u32 = 5;
/// Scratch ref pushed from; deleted after every push so the cache keeps no unpushed work.
const OUTGOING_REF: &str = "refs/caib/outgoing";

/// Where a change goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A review branch (force-pushed: it always holds exactly one commit on the target).
    Branch(String),
    /// The target branch itself.
    Direct,
}

/// What [`CatalogRepo::submit`] did.
#[derive(Clone, Debug)]
pub struct Submitted {
    pub commit: Oid,
    /// Branch that now holds the commit.
    pub branch: String,
    /// False when the remote branch already held an identical change (re-run).
    pub pushed: bool,
    /// Push attempts (more than one when `--direct` had to rebase).
    pub attempts: u32,
}

/// The fetched catalog repository.
pub struct CatalogRepo {
    repo: Repository,
    pub location: Location,
    pub config: RepoConfig,
    /// Target branch: catalog.yaml `branch`.
    pub branch: String,
    /// Tip of the target branch on the remote.
    base: Oid,
    /// Held while this process uses the cache: two caib runs never fetch or push through the
    /// same cached clone at once (released when the process exits, even on a crash).
    _lock: std::fs::File,
    validated: ValidationCache,
}

impl CatalogRepo {
    /// Clones (first run) or fetches the cached clone of `value` and reads `catalog.yaml`.
    pub fn open(value: Option<&str>) -> Result<CatalogRepo> {
        let location = location::resolve(value)?;
        let dir = location::cache_dir(&location.url)?;
        let lock = lock_cache(&dir)?;
        let repo = open_cache(&dir, &location.url)?;
        let default = fetch(&repo, &location)?;
        let default = default
            .or_else(|| {
                ["main", "master"]
                    .into_iter()
                    .find(|b| remote_tip(&repo, b).is_some())
                    .map(str::to_owned)
            })
            .ok_or_else(|| {
                CaibError::Other(anyhow::anyhow!(
                    "catalog repository {} has no branches: seed it from catalog-repo-template/ first",
                    location.display
                ))
            })?;
        let head = remote_tip(&repo, &default).ok_or_else(|| {
            CaibError::Other(anyhow::anyhow!(
                "catalog repository {}: default branch {default} not found",
                location.display
            ))
        })?;
        let tree = repo
            .find_commit(head)
            .and_then(|c| c.tree())
            .map_err(git_err)?;
        let bytes = tree::read_file(&repo, &tree, CONFIG_FILE).ok_or_else(|| {
            CaibError::Usage(format!(
                "{} (branch {default}) has no {CONFIG_FILE}: is it a catalog repository?",
                location.display
            ))
        })?;
        let config = RepoConfig::parse(CONFIG_FILE, &bytes).map_err(|diagnostics| {
            let lines: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
            CaibError::Usage(format!(
                "invalid {CONFIG_FILE} in {}:\n{}",
                location.display,
                lines.join("\n")
            ))
        })?;
        let branch = config.branch.clone();
        let base = remote_tip(&repo, &branch).ok_or_else(|| {
            CaibError::Usage(format!(
                "{CONFIG_FILE} names branch {branch:?}, which {} does not have",
                location.display
            ))
        })?;
        drop(tree);
        Ok(CatalogRepo {
            repo,
            location,
            config,
            branch,
            base,
            _lock: lock,
            validated: ValidationCache::default(),
        })
    }

    /// The environment `name`, or a usage error listing the ones that exist.
    pub fn environment(&self, name: &str) -> Result<Environment> {
        self.config.environment(name).cloned().ok_or_else(|| {
            let names: Vec<&str> = self
                .config
                .environments
                .iter()
                .map(|e| e.name.as_str())
                .collect();
            CaibError::Usage(format!(
                "unknown environment {name:?}: {CONFIG_FILE} defines {}",
                names.join(", ")
            ))
        })
    }

    /// Content of `path` on the target branch.
    pub fn file(&self, path: &str) -> Option<Vec<u8>> {
        let tree = self.base_tree().ok()?;
        tree::read_file(&self.repo, &tree, path)
    }

    /// Validation report of `env` on the target branch.
    pub fn report(&self, env: &Environment) -> Result<Report> {
        let tree = self.base_tree()?;
        Ok(self.validated.report(&self.repo, &tree, env))
    }

    /// Unified diff of `change` against the target branch (for `--dry-run`).
    pub fn preview(&self, change: &FileChange) -> String {
        tree::unified_diff(self.file(change.path()).as_deref(), change)
    }

    fn base_tree(&self) -> Result<git2::Tree<'_>> {
        self.repo
            .find_commit(self.base)
            .and_then(|c| c.tree())
            .map_err(git_err)
    }

    fn blob_at(&self, commit: Oid, path: &str) -> Option<Oid> {
        let tree = self.repo.find_commit(commit).ok()?.tree().ok()?;
        tree.get_path(Path::new(path)).ok().map(|e| e.id())
    }

    /// The commit author (see [`commit::author`]); commands ask before doing anything else.
    pub fn author(&self) -> Result<git2::Signature<'static>> {
        commit::author(&self.repo)
    }

    /// Applies `change` on the target branch's tip, validates the environment, commits and
    /// pushes to `target`. With [`Target::Direct`] a rejected (non-fast-forward) push fetches,
    /// re-applies the change on the new tip and retries, at most [`MAX_DIRECT_ATTEMPTS`] times.
    pub fn submit(
        &mut self,
        change: &FileChange,
        message: &Message,
        target: &Target,
        env: &Environment,
    ) -> Result<Submitted> {
        let author = self.author()?;
        let text = message.render();
        let branch = match target {
            Target::Branch(name) => name.clone(),
            Target::Direct => self.branch.clone(),
        };
        if *target == Target::Direct {
            self.check_worktree_clean()?;
        }
        // The file as the command saw it: if a concurrent push changed it, re-applying our
        // version on the new tip would silently overwrite someone else's change.
        let seen = self.blob_at(self.base, change.path());
        for attempt in 1..=MAX_DIRECT_ATTEMPTS {
            if self.blob_at(self.base, change.path()) != seen {
                return Err(CaibError::Conflict(format!(
                    "{} was changed on {branch} by someone else while this command ran; nothing \
                     was pushed. Run the command again to start from the new version",
                    change.path()
                )));
            }
            let base_commit = self.repo.find_commit(self.base).map_err(git_err)?;
            let base_tree = base_commit.tree().map_err(git_err)?;
            let new_tree_id = tree::apply(&self.repo, &base_tree, change).map_err(git_err)?;
            let new_tree = self.repo.find_tree(new_tree_id).map_err(git_err)?;
            check_environment(&self.repo, &self.validated, &base_tree, &new_tree, env)?;
            if let Target::Branch(name) = target
                && let Some(existing) = remote_tip(&self.repo, name)
                && let Ok(existing) = self.repo.find_commit(existing)
                && existing.tree_id() == new_tree_id
                && existing.parent_ids().eq([self.base])
            {
                return Ok(Submitted {
                    commit: existing.id(),
                    branch,
                    pushed: false,
                    attempts: attempt,
                });
            }
            let commit = self
                .repo
                .commit(None, &author, &author, &text, &new_tree, &[&base_commit])
                .map_err(git_err)?;
            let force = matches!(target, Target::Branch(_));
            match self.push(commit, &branch, force) {
                Ok(()) => {
                    if *target == Target::Direct {
                        self.base = commit;
                        self.sync_worktree(commit)?;
                    }
                    return Ok(Submitted {
                        commit,
                        branch,
                        pushed: true,
                        attempts: attempt,
                    });
                }
                Err(PushError::Rejected(why)) if *target == Target::Direct => {
                    tracing::info!("push to {branch} rejected ({why}); fetching and retrying");
                    eprintln!(
                        "  {branch} moved on the remote; re-applying the change on the new tip"
                    );
                    fetch(&self.repo, &self.location)?;
                    self.base = remote_tip(&self.repo, &branch).ok_or_else(|| {
                        CaibError::Other(anyhow::anyhow!(
                            "branch {branch} disappeared from the remote"
                        ))
                    })?;
                }
                // A force push refused is a hook or a protection rule, not a conflict with
                // anyone's change: exit 1, not 5.
                Err(PushError::Rejected(why)) => {
                    return Err(CaibError::Other(anyhow::anyhow!(
                        "{} refused the push of {branch}: {why} (a protected branch or a hook?)",
                        self.location.display
                    )));
                }
                Err(PushError::Failed(e)) => return Err(e),
            }
        }
        Err(CaibError::Conflict(format!(
            "{} kept moving: the push to {branch} was rejected {MAX_DIRECT_ATTEMPTS} times; run the command again",
            self.location.display
        )))
    }

    /// `--direct` into a local checkout whose checked-out branch is the target: refuse while
    /// it has uncommitted changes (they are the user's work).
    fn check_worktree_clean(&self) -> Result<()> {
        let Some(path) = self.checked_out_target() else {
            return Ok(());
        };
        let repo = Repository::open(&path).map_err(git_err)?;
        let mut options = git2::StatusOptions::new();
        options.include_untracked(false).include_ignored(false);
        let dirty = repo
            .statuses(Some(&mut options))
            .map_err(git_err)?
            .iter()
            .filter_map(|s| s.path().ok().map(str::to_owned))
            .collect::<Vec<_>>();
        if dirty.is_empty() {
            return Ok(());
        }
        Err(CaibError::Usage(format!(
            "{} has uncommitted changes ({}): caib never modifies a checkout with uncommitted \
             work. Commit or stash them, or leave out --direct to push a review branch instead",
            path.display(),
            dirty.join(", ")
        )))
    }

    /// After a direct push into a clean local checkout of the target branch, bring its index
    /// and files up to the new commit (it was clean, so nothing of the user's is lost).
    fn sync_worktree(&self, commit: Oid) -> Result<()> {
        let Some(path) = self.checked_out_target() else {
            return Ok(());
        };
        let repo = Repository::open(&path).map_err(git_err)?;
        let object = repo.find_object(commit, None).map_err(git_err)?;
        repo.reset(&object, git2::ResetType::Hard, None)
            .map_err(git_err)
    }

    fn checked_out_target(&self) -> Option<std::path::PathBuf> {
        let path = self.location.worktree.clone()?;
        let repo = Repository::open(&path).ok()?;
        let head = repo.head().ok()?;
        (head.shorthand().ok() == Some(self.branch.as_str())).then_some(path)
    }
}

fn git_err(e: git2::Error) -> CaibError {
    let message = catalog_api::redact::redact_text(e.message()).into_owned();
    CaibError::Other(anyhow::anyhow!("git: {message}"))
}

fn remote_tip(repo: &Repository, branch: &str) -> Option<Oid> {
    repo.refname_to_id(&format!("refs/remotes/origin/{branch}"))
        .ok()
}

/// Takes the cache's lock file (`<dir>.lock`), waiting while another caib run holds it.
fn lock_cache(dir: &Path) -> Result<std::fs::File> {
    let io = |e: std::io::Error| {
        CaibError::Other(anyhow::anyhow!(
            "cannot lock the cache {}: {e}",
            dir.display()
        ))
    };
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.with_extension("lock"))
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            eprintln!("  waiting for another caib run using {}", dir.display());
            file.lock().map_err(io)?;
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
    }
    Ok(file)
}

fn open_cache(dir: &Path, url: &str) -> Result<Repository> {
    let open = Repository::open_bare(dir);
    let repo = match open {
        Ok(repo) => repo,
        Err(_) => {
            std::fs::create_dir_all(dir).map_err(|e| {
                CaibError::Other(anyhow::anyhow!(
                    "cannot create the cache directory {}: {e}",
                    dir.display()
                ))
            })?;
            Repository::init_bare(dir).map_err(git_err)?
        }
    };
    match repo.find_remote("origin") {
        Ok(remote) if remote.url().ok() == Some(url) => {}
        Ok(_) => repo.remote_set_url("origin", url).map_err(git_err)?,
        Err(_) => {
            repo.remote("origin", url).map_err(git_err)?;
        }
    }
    Ok(repo)
}

/// Fetches every branch into `refs/remotes/origin/*`; returns the remote's default branch.
fn fetch(repo: &Repository, location: &Location) -> Result<Option<String>> {
    let state = auth::AuthState::default();
    let mut remote = repo.find_remote("origin").map_err(git_err)?;
    let mut options = FetchOptions::new();
    options
        .remote_callbacks(auth::callbacks(&state))
        .prune(FetchPrune::On)
        .download_tags(AutotagOption::None)
        .follow_redirects(auth::REDIRECTS);
    remote
        .fetch(
            &["+refs/heads/*:refs/remotes/origin/*"],
            Some(&mut options),
            None,
        )
        .map_err(|e| auth::map_error(e, "fetch", &location.display, &state))?;
    let default = remote.default_branch().ok().and_then(|b| {
        b.as_str()
            .ok()
            .map(|s| s.trim_start_matches("refs/heads/").to_owned())
    });
    Ok(default.filter(|b| remote_tip(repo, b).is_some()))
}

/// Per-file validation results by (environment, path, blob id): a command validates the same
/// environment several times (duplicates, before and after the change, after a rebase) and
/// only the changed file needs parsing again.
type FileResults = (Vec<Entry>, Vec<catalog_api::Diagnostic>);

#[derive(Default)]
struct ValidationCache(RefCell<HashMap<(String, String, Oid), FileResults>>);

impl ValidationCache {
    fn report(&self, repo: &Repository, tree: &git2::Tree<'_>, env: &Environment) -> Report {
        let rules = env.rules();
        let mut cache = self.0.borrow_mut();
        let results: Vec<FileResults> = tree::dir_blobs(repo, tree, &env.path)
            .into_iter()
            .map(|(path, id)| {
                cache
                    .entry((env.name.clone(), path.clone(), id))
                    .or_insert_with(|| {
                        // The object header gives the size: an oversized blob is not loaded.
                        let size = repo.odb().and_then(|odb| odb.read_header(id));
                        if let Ok((size, _)) = size
                            && let Some(oversized) =
                                catalog_api::entry::check_size(&path, size as u64)
                        {
                            return (Vec::new(), vec![oversized]);
                        }
                        let bytes = repo
                            .find_blob(id)
                            .map(|b| b.content().to_vec())
                            .unwrap_or_default();
                        validate_file(&path, &bytes, &rules)
                    })
                    .clone()
            })
            .collect();
        combine_files(results)
    }
}

/// Refuses a change that introduces validation problems into its environment. Problems that
/// were already there are not the change's fault: they are reported as warnings only.
fn check_environment(
    repo: &Repository,
    cache: &ValidationCache,
    before: &git2::Tree<'_>,
    after: &git2::Tree<'_>,
    env: &Environment,
) -> Result<()> {
    let old = cache.report(repo, before, env);
    let new = cache.report(repo, after, env);
    let (introduced, existing): (Vec<_>, Vec<_>) = new.diagnostics.iter().partition(|d| {
        !old.diagnostics
            .iter()
            .any(|o| o.path == d.path && o.message == d.message)
    });
    for d in existing {
        eprintln!("warning: already broken on {}: {d}", env.name);
    }
    if introduced.is_empty() {
        return Ok(());
    }
    let lines: Vec<String> = introduced.iter().map(ToString::to_string).collect();
    Err(CaibError::Other(anyhow::anyhow!(
        "the change would make environment {:?} invalid; nothing was committed:\n{}",
        env.name,
        lines.join("\n")
    )))
}
