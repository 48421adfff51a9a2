//! Where the catalog repository lives (`--catalog-repo URL|PATH`) and where its cached clone
//! is kept, so that every command works on a fresh, fetched copy without touching the user's
//! own checkout.

use std::path::{Path, PathBuf};

use catalog_api::redact::redact_url;
use sha2::{Digest, Sha256};

use crate::error::{CaibError, Result};
use crate::transport;

/// A resolved `--catalog-repo`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// What libgit2 fetches from and pushes to: a URL, or an absolute local path.
    pub url: String,
    /// The URL without credentials, for messages.
    pub display: String,
    /// A local repository with a working tree (never modified while it has uncommitted changes).
    pub worktree: Option<PathBuf>,
}

/// True for `scheme://...` and scp-like `user@host:path` remotes.
pub fn is_url(value: &str) -> bool {
    if value.contains("://") {
        return true;
    }
    // scp-like: `git@host:org/repo.git` (a colon before any slash, and not a Windows drive).
    match (value.find(':'), value.find('/')) {
        (Some(colon), slash) => colon > 1 && slash.is_none_or(|s| colon < s),
        _ => false,
    }
}

/// Resolves the flag (or `CAIB_CATALOG_REPO`, or the config file's `catalogRepo`).
pub fn resolve(value: Option<&str>) -> Result<Location> {
    let Some(value) = value.filter(|v| !v.trim().is_empty()) else {
        return Err(CaibError::Usage(
            "no catalog repository: pass --catalog-repo URL|PATH, set CAIB_CATALOG_REPO, or set \
             catalogRepo in ~/.config/caib/config.yaml"
                .into(),
        ));
    };
    if is_url(value) {
        let token_set = super::auth::env_token().is_some();
        transport::check_git_remote("--catalog-repo", value, token_set)
            .map_err(|e| CaibError::Usage(e.to_string()))?;
        return Ok(Location {
            url: value.to_owned(),
            display: redact_url(value).into_owned(),
            worktree: None,
        });
    }
    let path = Path::new(value);
    let absolute = path.canonicalize().map_err(|e| {
        CaibError::Usage(format!(
            "--catalog-repo {value}: {e} (expected a git URL or the path of a git repository)"
        ))
    })?;
    let repo = git2::Repository::open(&absolute).map_err(|e| {
        CaibError::Usage(format!(
            "--catalog-repo {}: not a git repository ({})",
            absolute.display(),
            e.message()
        ))
    })?;
    let worktree = repo.workdir().map(Path::to_path_buf);
    let git_dir = if repo.is_bare() {
        absolute.clone()
    } else {
        repo.path().to_path_buf()
    };
    Ok(Location {
        url: git_dir.display().to_string(),
        display: absolute.display().to_string(),
        worktree,
    })
}

/// `$XDG_CACHE_HOME/caib/repos/<hash of url>`, else `$HOME/.cache/caib/repos/<hash>`.
pub fn cache_dir(url: &str) -> Result<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .ok_or_else(|| {
            CaibError::Usage("cannot find a cache directory: set XDG_CACHE_HOME or HOME".into())
        })?;
    Ok(base.join("caib").join("repos").join(url_hash(url)))
}

fn url_hash(url: &str) -> String {
    let digest = Sha256::digest(url.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_urls_from_paths() {
        assert!(is_url("https://github.com/o/r.git"));
        assert!(is_url("file:///srv/catalog.git"));
        assert!(is_url("git@github.com:o/r.git"));
        assert!(!is_url("/srv/catalog"));
        assert!(!is_url("./catalog"));
        assert!(!is_url("catalog"));
    }

    #[test]
    fn cache_dirs_differ_per_url() {
        assert_ne!(url_hash("a"), url_hash("b"));
        assert_eq!(url_hash("a").len(), 16);
    }

    #[test]
    fn missing_repo_is_a_usage_error() {
        let err = resolve(None).unwrap_err();
        assert!(err.to_string().contains("--catalog-repo"));
        let err = resolve(Some("/definitely/not/here")).unwrap_err();
        assert!(err.to_string().contains("/definitely/not/here"), "{err}");
    }
}
