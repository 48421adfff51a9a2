//! Reading and changing catalog files straight in the object database: caib never checks out
//! a working tree, so its cached clone cannot be left dirty by an interrupted command.

use std::path::Path;

use git2::{FileMode, ObjectType, Oid, Repository, Tree, TreeWalkMode, TreeWalkResult};

/// One change to the catalog: write a file or remove it (paths relative to the repository root,
/// `/` separators).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileChange {
    Write { path: String, content: Vec<u8> },
    Remove { path: String },
}

impl FileChange {
    pub fn path(&self) -> &str {
        match self {
            FileChange::Write { path, .. } | FileChange::Remove { path } => path,
        }
    }
}

/// Content of the blob at `path`, if any.
pub fn read_file(repo: &Repository, tree: &Tree<'_>, path: &str) -> Option<Vec<u8>> {
    let entry = tree.get_path(Path::new(path)).ok()?;
    let blob = entry.to_object(repo).ok()?.into_blob().ok()?;
    Some(blob.content().to_vec())
}

/// The `*.yaml`/`*.yml` files below `dir`, recursively, hidden names and symlinks skipped,
/// sorted by path: the same selection as `catalog_api::repo::read_environment_files`.
#[cfg(test)]
pub fn read_dir_files(repo: &Repository, tree: &Tree<'_>, dir: &str) -> Vec<(String, Vec<u8>)> {
    dir_blobs(repo, tree, dir)
        .into_iter()
        .filter_map(|(path, id)| {
            let blob = repo.find_blob(id).ok()?;
            Some((path, blob.content().to_vec()))
        })
        .collect()
}

/// Paths and blob ids of the files [`read_dir_files`] selects, without reading them: blob ids
/// let unchanged files skip re-validation.
pub fn dir_blobs(repo: &Repository, tree: &Tree<'_>, dir: &str) -> Vec<(String, Oid)> {
    let dir = dir.trim_matches('/');
    let whole = dir.is_empty() || dir == ".";
    let sub = if whole {
        Some(tree.clone())
    } else {
        tree.get_path(Path::new(dir))
            .ok()
            .and_then(|e| e.to_object(repo).ok())
            .and_then(|o| o.into_tree().ok())
    };
    let Some(sub) = sub else {
        return Vec::new();
    };
    let prefix = if whole {
        String::new()
    } else {
        format!("{dir}/")
    };
    let mut files = Vec::new();
    let _ = sub.walk(TreeWalkMode::PreOrder, |root, entry| {
        let name = entry.name().unwrap_or_default();
        if name.starts_with('.') {
            return TreeWalkResult::Skip;
        }
        if entry.kind() == Some(ObjectType::Blob)
            && entry.filemode() != i32::from(FileMode::Link)
            && (name.ends_with(".yaml") || name.ends_with(".yml"))
        {
            files.push((format!("{prefix}{root}{name}"), entry.id()));
        }
        TreeWalkResult::Ok
    });
    files.sort();
    files
}

/// The tree `base` with `change` applied.
pub fn apply(repo: &Repository, base: &Tree<'_>, change: &FileChange) -> Result<Oid, git2::Error> {
    let mut builder = git2::build::TreeUpdateBuilder::new();
    match change {
        FileChange::Write { path, content } => {
            let blob = repo.blob(content)?;
            builder.upsert(path.as_str(), blob, FileMode::Blob);
        }
        FileChange::Remove { path } => {
            builder.remove(path.as_str());
        }
    }
    builder.create_updated(repo, base)
}

/// Unified diff of `change` against `base` (`a/` and `b/` headers like git).
pub fn unified_diff(old: Option<&[u8]>, change: &FileChange) -> String {
    let path = change.path();
    let old_text = old.map(String::from_utf8_lossy).unwrap_or_default();
    let new_text = match change {
        FileChange::Write { content, .. } => String::from_utf8_lossy(content),
        FileChange::Remove { .. } => Default::default(),
    };
    let a = if old.is_some() {
        format!("a/{path}")
    } else {
        "/dev/null".into()
    };
    let b = match change {
        FileChange::Write { .. } => format!("b/{path}"),
        FileChange::Remove { .. } => "/dev/null".into(),
    };
    let diff = similar::TextDiff::from_lines(old_text.as_ref(), new_text.as_ref());
    let body = diff
        .unified_diff()
        .context_radius(3)
        .header(&a, &b)
        .to_string();
    format!("diff --git a/{path} b/{path}\n{body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_with(files: &[(&str, &str)]) -> (tempfile::TempDir, Repository, Oid) {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let empty = repo.treebuilder(None).unwrap().write().unwrap();
        let mut tree = empty;
        for (path, content) in files {
            let base = repo.find_tree(tree).unwrap();
            tree = apply(
                &repo,
                &base,
                &FileChange::Write {
                    path: (*path).into(),
                    content: content.as_bytes().to_vec(),
                },
            )
            .unwrap();
        }
        (dir, repo, tree)
    }

    #[test]
    fn reads_yaml_files_below_a_directory() {
        let (_d, repo, tree) = repo_with(&[
            ("catalog.yaml", "x"),
            ("environments/dev/a.yaml", "a"),
            ("environments/dev/sub/b.yml", "b"),
            ("environments/dev/.hidden.yaml", "h"),
            ("environments/dev/README.md", "r"),
            ("environments/prod/c.yaml", "c"),
        ]);
        let tree = repo.find_tree(tree).unwrap();
        let files = read_dir_files(&repo, &tree, "environments/dev");
        let paths: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            ["environments/dev/a.yaml", "environments/dev/sub/b.yml"]
        );
        assert_eq!(read_file(&repo, &tree, "catalog.yaml").unwrap(), b"x");
        assert!(read_dir_files(&repo, &tree, "environments/none").is_empty());
    }

    #[test]
    fn removes_files() {
        let (_d, repo, tree) = repo_with(&[("e/a.yaml", "a"), ("e/b.yaml", "b")]);
        let tree = repo.find_tree(tree).unwrap();
        let new = apply(
            &repo,
            &tree,
            &FileChange::Remove {
                path: "e/a.yaml".into(),
            },
        )
        .unwrap();
        let new = repo.find_tree(new).unwrap();
        assert!(read_file(&repo, &new, "e/a.yaml").is_none());
        assert!(read_file(&repo, &new, "e/b.yaml").is_some());
    }

    #[test]
    fn diff_shows_added_and_removed_lines() {
        let change = FileChange::Write {
            path: "e/a.yaml".into(),
            content: b"one\nthree\n".to_vec(),
        };
        let diff = unified_diff(Some(b"one\ntwo\n"), &change);
        assert!(diff.contains("--- a/e/a.yaml"), "{diff}");
        assert!(diff.contains("-two"), "{diff}");
        assert!(diff.contains("+three"), "{diff}");
        let removal = unified_diff(
            Some(b"one\n"),
            &FileChange::Remove {
                path: "e/a.yaml".into(),
            },
        );
        assert!(removal.contains("+++ /dev/null"), "{removal}");
    }
}
