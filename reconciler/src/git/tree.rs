//! Reading entry files straight from the object database: no checkout, no working tree.
//! Each file is returned with its blob id so callers parse only blobs that changed.

use git2::{ObjectType, Oid, Repository, TreeWalkMode, TreeWalkResult};

use catalog_api::Diagnostic;
use catalog_api::validate::Rules;

use super::SourceError;

/// One entry file of the environment directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileBlob {
    /// Path relative to the repository root, `/` separators.
    pub path: String,
    pub blob: Oid,
}

/// Normalized directory (`.`/`./x/` → `""`/`x`).
pub fn normalize_dir(dir: &str) -> String {
    dir.trim_start_matches("./")
        .trim_matches('/')
        .trim_start_matches('.')
        .to_string()
}

/// Entry files (`*.yaml`, `*.yml`, recursively, hidden names skipped) under `dir` at
/// `commit`, sorted by path. Symlinks are reported, not followed (the object database has
/// no file system to resolve them against safely).
///
/// More than `max_files` entry files is [`SourceError::TooManyEntries`]: they are counted
/// from the trees alone, so a 30,000-file directory costs a tree walk, not 30,000 parses.
pub fn list_files(
    repo: &Repository,
    commit: &str,
    dir: &str,
    max_files: usize,
) -> Result<(Vec<FileBlob>, Vec<Diagnostic>), SourceError> {
    let read_error = |message: String| SourceError::Read {
        revision: commit.to_string(),
        path: dir.to_string(),
        message,
    };
    let oid = Oid::from_str(commit).map_err(|e| read_error(e.message().to_string()))?;
    let root = repo
        .find_commit(oid)
        .and_then(|c| c.tree())
        .map_err(|e| read_error(e.message().to_string()))?;
    let dir = normalize_dir(dir);
    let tree = if dir.is_empty() {
        root
    } else {
        let entry = root
            .get_path(std::path::Path::new(&dir))
            .map_err(|_| read_error("the directory does not exist at this revision".into()))?;
        if entry.kind() != Some(ObjectType::Tree) {
            return Err(read_error("not a directory".into()));
        }
        repo.find_tree(entry.id())
            .map_err(|e| read_error(e.message().to_string()))?
    };
    let prefix = if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    };
    let mut files = Vec::new();
    let mut diagnostics = Vec::new();
    let mut count = 0usize;
    tree.walk(TreeWalkMode::PreOrder, |parent, entry| {
        let name = entry.name().unwrap_or_default();
        if name.starts_with('.') {
            return TreeWalkResult::Skip;
        }
        let path = format!("{prefix}{parent}{name}");
        match entry.kind() {
            Some(ObjectType::Blob) if name.ends_with(".yaml") || name.ends_with(".yml") => {
                if entry.filemode() == 0o120000 {
                    diagnostics.push(Diagnostic::file(
                        &path,
                        "symlinks are not followed in a synced catalog: commit the file itself",
                    ));
                } else {
                    count += 1;
                    if count <= max_files {
                        files.push(FileBlob {
                            path,
                            blob: entry.id(),
                        });
                    }
                }
            }
            _ => {}
        }
        TreeWalkResult::Ok
    })
    .map_err(|e| read_error(e.message().to_string()))?;
    if count > max_files {
        return Err(SourceError::TooManyEntries {
            revision: commit.to_string(),
            path: if dir.is_empty() { ".".into() } else { dir },
            count,
            limit: max_files,
        });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok((files, diagnostics))
}

/// Content of the blob of file `path`, unless its object header says it is over
/// [`catalog_api::entry::MAX_FILE_BYTES`]: then the diagnostic (path, size, limit), and the
/// blob is never loaded (a 50 MiB blob would be inflated whole by `find_blob`).
pub fn read_entry_blob(repo: &Repository, path: &str, blob: Oid) -> Result<Vec<u8>, Diagnostic> {
    let cannot =
        |e: git2::Error| Diagnostic::file(path, format!("cannot read the blob: {}", e.message()));
    let (size, _) = repo
        .odb()
        .and_then(|odb| odb.read_header(blob))
        .map_err(cannot)?;
    if let Some(oversized) = catalog_api::entry::check_size(path, size as u64) {
        return Err(oversized);
    }
    Ok(repo.find_blob(blob).map_err(cannot)?.content().to_vec())
}

/// The diagnostic of a `catalog.yaml` over [`catalog_api::entry::MAX_FILE_BYTES`] at
/// `commit` (read from its object header; the file is not loaded): its rules are not used,
/// so the source says why rather than silently syncing with the defaults.
pub fn oversized_config(repo: &Repository, commit: &str) -> Option<Diagnostic> {
    let entry = Oid::from_str(commit)
        .and_then(|oid| repo.find_commit(oid))
        .and_then(|c| c.tree())
        .and_then(|t| t.get_path(std::path::Path::new("catalog.yaml")))
        .ok()?;
    let (size, _) = repo
        .odb()
        .and_then(|odb| odb.read_header(entry.id()))
        .ok()?;
    catalog_api::entry::check_size("catalog.yaml", size as u64)
}

/// Validation rules of the environment at `dir`, from the repository's `catalog.yaml` when
/// it declares that environment (`requireDigest`, name, namespace), else defaults. The
/// target namespace of the CatalogSource always wins.
pub fn environment_rules(
    repo: &Repository,
    commit: &str,
    dir: &str,
    target_namespace: &str,
) -> Rules {
    let mut rules = Rules::default();
    let dir = normalize_dir(dir);
    let config = Oid::from_str(commit)
        .and_then(|oid| repo.find_commit(oid))
        .and_then(|c| c.tree())
        .and_then(|t| t.get_path(std::path::Path::new("catalog.yaml")))
        .map_err(|e| Diagnostic::file("catalog.yaml", e.message()))
        .and_then(|e| read_entry_blob(repo, "catalog.yaml", e.id()));
    if let Err(problem) = &config {
        // As before this change, a catalog.yaml that cannot be used leaves the defaults.
        tracing::debug!(%problem, "catalog.yaml not used");
    }
    if let Ok(bytes) = config
        && let Ok(config) = catalog_api::repo::RepoConfig::parse("catalog.yaml", &bytes)
        && let Some(env) = config
            .environments
            .iter()
            .find(|e| normalize_dir(&e.path) == dir)
    {
        rules = env.rules();
    }
    rules.target_namespace = Some(target_namespace.to_string());
    rules
}
