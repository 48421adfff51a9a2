//! Helpers shared by the unit tests that build real git repositories.

use std::path::Path;

/// Runs `program` in `dir` with a fixed author and committer, panicking with its stderr on
/// failure; returns trimmed stdout.
pub fn run(dir: &Path, program: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(program)
        .current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@t")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@t")
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program} (git and openssh-client are needed): {e}")
        });
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `git` with the fixed identity.
pub fn git(dir: &Path, args: &[&str]) -> String {
    run(dir, "git", args)
}

/// Commits everything in the work tree of `dir` (additions, changes, removals) as `message`;
/// returns the new commit's id.
pub fn commit_all(dir: &Path, message: &str) -> String {
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-qm", message]);
    git(dir, &["rev-parse", "HEAD"])
}
