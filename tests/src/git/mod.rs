//! Real git remotes: bare repositories, git-daemon, smart HTTP with basic auth.
//!
//! Everything here drives the real `git` binary (real parts, not mocks; README "Tests"):
//!
//! - [`BareRepo`]: a bare repository in a temp dir, seeded from a directory (for example the
//!   `catalog-repo-template/`), with commits made by a fixed author at fixed-increment dates so
//!   SHAs are reproducible. Commits are written with plumbing (`hash-object`, a private index,
//!   `write-tree`, `commit-tree`, `update-ref`) straight into the bare repository: no working
//!   tree, no clone, fast enough to make hundreds of commits in a test.
//! - [`GitDaemon`]: `git-daemon` started directly (not through the `git daemon` wrapper),
//!   serving `git://127.0.0.1:PORT/<repo>`; [`GitDaemon::stop`]/[`GitDaemon::start`] make the
//!   remote unreachable and back on the same port.
//! - [`SmartHttp`]: smart HTTP served by the harness: an axum handler checks basic auth and runs
//!   `git http-backend` as a CGI, so clone, fetch and push (receive-pack) all work over
//!   `http://user:pass@127.0.0.1:PORT/<repo>`. [`SmartHttp::set_reachable`] makes every
//!   request fail with 503 (or come back). [`SmartHttp::start_with_bearer_token`] wants
//!   `Authorization: Bearer <token>` instead.
//! - [`SshServer`]: a real `sshd` (openssh-server) on a free port with its own host key and
//!   one accepted client key, serving `ssh://USER@127.0.0.1:PORT/<path of the repo>`.
//! - [`SilentRemote`]: accepts connections and never answers (fetch timeouts).
//!
//! Signed commits: [`BareRepo::commit_signed`] signs with an SSH key through
//! `git commit-tree -S` with `gpg.format=ssh` (needs `ssh-keygen`, package openssh-client),
//! [`BareRepo::tag_signed`] makes signed annotated tags; [`generate_ssh_key`] makes such a key.

mod daemon;
mod http;
mod ports;
mod redirect;
mod silent;
mod ssh;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context as _, bail};
use tempfile::TempDir;

pub use daemon::GitDaemon;
pub use http::SmartHttp;
pub use ports::free_port;
pub(crate) use ports::wait_for_port;
pub use redirect::RedirectingRemote;
pub use silent::SilentRemote;
pub use ssh::SshServer;

/// Name of the fixed author and committer of every harness commit.
pub const AUTHOR_NAME: &str = "Catalog Test";
/// E-mail of the fixed author and committer.
pub const AUTHOR_EMAIL: &str = "catalog-test@example.com";
/// Unix time of the first harness commit; each later commit is one second after the previous.
const EPOCH: u64 = 1_767_225_600; // 2026-01-01T00:00:00Z

/// Path of the `git` binary the harness runs (`GIT` env var, else `git` on PATH).
pub fn git_binary() -> PathBuf {
    std::env::var_os("GIT")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::process::require_tool("git", "git"))
}

/// Directory with git's helper programs (`git --exec-path`): git-daemon, git-http-backend.
pub fn exec_path() -> PathBuf {
    let out = Command::new(git_binary())
        .arg("--exec-path")
        .output()
        .expect("git --exec-path: install git with `apt-get install -y git`");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// One change of a commit.
#[derive(Clone, Debug)]
pub enum Change {
    /// Create or overwrite a file (path relative to the repository root, `/` separators).
    Write(String, Vec<u8>),
    /// Remove a file (no error when it does not exist).
    Delete(String),
}

impl Change {
    pub fn write(path: impl Into<String>, content: impl AsRef<[u8]>) -> Change {
        Change::Write(path.into(), content.as_ref().to_vec())
    }
    pub fn delete(path: impl Into<String>) -> Change {
        Change::Delete(path.into())
    }
}

/// A bare repository in a temp dir (deleted on drop), written to with git plumbing.
pub struct BareRepo {
    _dir: TempDir,
    /// The bare repository (`<tmp>/<name>.git`); the parent is the base path for daemons.
    path: PathBuf,
    name: String,
    commits: AtomicU64,
}

impl BareRepo {
    /// An empty bare repository named `<name>.git` (HEAD -> `main`), accepting pushes over
    /// smart HTTP (`http.receivepack true`).
    pub fn new(name: &str) -> anyhow::Result<BareRepo> {
        let dir = tempfile::Builder::new().prefix("git-remote-").tempdir()?;
        let path = dir.path().join(format!("{name}.git"));
        run_git(
            dir.path(),
            &[
                "init",
                "--quiet",
                "--bare",
                "--initial-branch=main",
                path.to_str().unwrap(),
            ],
            &[],
        )?;
        run_git(&path, &["config", "http.receivepack", "true"], &[])?;
        run_git(
            &path,
            &["config", "uploadpack.allowAnySHA1InWant", "true"],
            &[],
        )?;
        Ok(BareRepo {
            _dir: dir,
            path,
            name: name.to_string(),
            commits: AtomicU64::new(0),
        })
    }

    /// A bare repository whose `main` has one commit with every file of `dir` (recursively,
    /// `.git` skipped). Returns the repository; [`BareRepo::head`] gives the commit.
    pub fn seeded(name: &str, dir: &Path) -> anyhow::Result<BareRepo> {
        let repo = BareRepo::new(name)?;
        let index = repo.path.join("harness-seed.index");
        let envs = [("GIT_INDEX_FILE", index.to_str().unwrap())];
        let git_dir = format!("--git-dir={}", repo.path.display());
        let work_tree = format!("--work-tree={}", dir.display());
        run_git(dir, &[&git_dir, &work_tree, "add", "--all", "."], &envs)
            .with_context(|| format!("cannot add the files of {}", dir.display()))?;
        let tree = run_git(&repo.path, &["write-tree"], &envs)?;
        let _ = std::fs::remove_file(&index);
        repo.commit_tree(&tree, None, "main", "Seed catalog", None)?;
        Ok(repo)
    }

    /// A bare repository seeded from the workspace's `catalog-repo-template/`.
    pub fn from_template(name: &str) -> anyhow::Result<BareRepo> {
        BareRepo::seeded(name, &template_dir())
    }

    /// Path of the bare repository.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Directory holding the bare repository: the base path for [`GitDaemon`] and [`SmartHttp`].
    pub fn base_path(&self) -> &Path {
        self.path.parent().unwrap()
    }

    /// Repository name without `.git` (the URL path under a daemon's base path is `<name>.git`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `file://` URL of the bare repository.
    pub fn file_url(&self) -> String {
        format!("file://{}", self.path.display())
    }

    /// SHA of `branch` (or of any ref/revision git understands), `None` when it does not exist.
    pub fn head(&self, branch: &str) -> Option<String> {
        run_git(
            &self.path,
            &["rev-parse", "--verify", "--quiet", branch],
            &[],
        )
        .ok()
    }

    /// Applies `changes` on top of `branch` (creating the branch when missing, from `main`
    /// when that exists) as one commit; returns its SHA.
    pub fn commit(
        &self,
        branch: &str,
        message: &str,
        changes: &[Change],
    ) -> anyhow::Result<String> {
        self.commit_with(branch, message, changes, None)
    }

    /// Like [`BareRepo::commit`] but signs the commit with the SSH private key at `key`
    /// (`gpg.format=ssh`), the way `git commit -S` does.
    pub fn commit_signed(
        &self,
        branch: &str,
        message: &str,
        changes: &[Change],
        key: &Path,
    ) -> anyhow::Result<String> {
        self.commit_with(branch, message, changes, Some(key))
    }

    /// Writes one file and commits it; returns the SHA.
    pub fn write(
        &self,
        branch: &str,
        path: &str,
        content: impl AsRef<[u8]>,
    ) -> anyhow::Result<String> {
        self.commit(
            branch,
            &format!("Update {path}"),
            &[Change::write(path, content)],
        )
    }

    /// Commits the same `content` at every one of `paths` (one blob, one `update-index`
    /// call: 30,000 files take a second); returns the SHA.
    pub fn commit_copies(
        &self,
        branch: &str,
        paths: impl IntoIterator<Item = String>,
        content: &[u8],
    ) -> anyhow::Result<String> {
        let blob = run_git_stdin(&self.path, &["hash-object", "-w", "--stdin"], &[], content)?;
        let index = self
            .path
            .join(format!("harness-{}.index", std::process::id()));
        let envs = [("GIT_INDEX_FILE", index.to_str().unwrap())];
        let parent = self.head(&format!("refs/heads/{branch}"));
        if let Some(parent) = &parent {
            run_git(&self.path, &["read-tree", parent], &envs)?;
        }
        let info: String = paths
            .into_iter()
            .map(|path| format!("100644 {blob}\t{path}\n"))
            .collect();
        run_git_stdin(
            &self.path,
            &["update-index", "--index-info"],
            &envs,
            info.as_bytes(),
        )?;
        let tree = run_git(&self.path, &["write-tree"], &envs)?;
        let _ = std::fs::remove_file(&index);
        self.commit_tree(&tree, parent.as_deref(), branch, "Copies", None)
    }

    /// Deletes one file and commits it; returns the SHA.
    pub fn delete(&self, branch: &str, path: &str) -> anyhow::Result<String> {
        self.commit(branch, &format!("Remove {path}"), &[Change::delete(path)])
    }

    /// Content of `path` at `rev`, `None` when it does not exist.
    pub fn read(&self, rev: &str, path: &str) -> Option<Vec<u8>> {
        let out = Command::new(git_binary())
            .current_dir(&self.path)
            .args(["cat-file", "blob", &format!("{rev}:{path}")])
            .output()
            .ok()?;
        out.status.success().then_some(out.stdout)
    }

    /// Creates (or moves) a lightweight tag.
    pub fn tag(&self, tag: &str, rev: &str) -> anyhow::Result<()> {
        run_git(&self.path, &["tag", "--force", tag, rev], &[])?;
        Ok(())
    }

    /// Creates (or moves) an annotated tag at `rev` signed with the SSH key at `key` (`git tag
    /// -s` with `gpg.format=ssh`), tagged by the harness identity at the next harness date.
    pub fn tag_signed(&self, tag: &str, rev: &str, key: &Path) -> anyhow::Result<()> {
        let n = self.commits.fetch_add(1, Ordering::SeqCst);
        let date = format!("{} +0000", EPOCH + n);
        let signing_key = format!("user.signingkey={}", key.display());
        let message = format!("Release {tag}");
        let args = [
            "-c",
            "gpg.format=ssh",
            "-c",
            &signing_key,
            "tag",
            "--force",
            "-s",
            "-m",
            &message,
            tag,
            rev,
        ];
        let envs = [
            ("GIT_COMMITTER_NAME", AUTHOR_NAME),
            ("GIT_COMMITTER_EMAIL", AUTHOR_EMAIL),
            ("GIT_COMMITTER_DATE", date.as_str()),
        ];
        run_git(&self.path, &args, &envs)?;
        Ok(())
    }

    /// Writes `content` as a raw object of type `kind` (`git hash-object -t KIND -w`), as is:
    /// a commit edited after signing, say. Returns its id.
    pub fn write_object(&self, kind: &str, content: &[u8]) -> anyhow::Result<String> {
        let args = ["hash-object", "-t", kind, "-w", "--stdin"];
        run_git_stdin(&self.path, &args, &[], content)
    }

    /// Runs any git command in the bare repository and returns its trimmed stdout.
    pub fn git(&self, args: &[&str]) -> anyhow::Result<String> {
        run_git(&self.path, args, &[])
    }

    fn commit_with(
        &self,
        branch: &str,
        message: &str,
        changes: &[Change],
        key: Option<&Path>,
    ) -> anyhow::Result<String> {
        let refname = format!("refs/heads/{branch}");
        let parent = self.head(&refname).or_else(|| self.head("refs/heads/main"));
        let index = self
            .path
            .join(format!("harness-{}.index", std::process::id()));
        let _ = std::fs::remove_file(&index);
        let envs = [("GIT_INDEX_FILE", index.to_str().unwrap())];
        if let Some(parent) = &parent {
            run_git(&self.path, &["read-tree", parent], &envs)?;
        }
        // One `update-index --index-info` call: mode 0 removes a path, so no work tree is needed.
        let mut info = String::new();
        for change in changes {
            match change {
                Change::Write(path, content) => {
                    let blob =
                        run_git_stdin(&self.path, &["hash-object", "-w", "--stdin"], &[], content)?;
                    info.push_str(&format!("100644 {blob}\t{path}\n"));
                }
                Change::Delete(path) => {
                    info.push_str(&format!("0 {}\t{path}\n", "0".repeat(40)));
                }
            }
        }
        run_git_stdin(
            &self.path,
            &["update-index", "--index-info"],
            &envs,
            info.as_bytes(),
        )?;
        let tree = run_git(&self.path, &["write-tree"], &envs)?;
        let _ = std::fs::remove_file(&index);
        self.commit_tree(&tree, parent.as_deref(), branch, message, key)
    }

    fn commit_tree(
        &self,
        tree: &str,
        parent: Option<&str>,
        branch: &str,
        message: &str,
        key: Option<&Path>,
    ) -> anyhow::Result<String> {
        let n = self.commits.fetch_add(1, Ordering::SeqCst);
        let date = format!("{} +0000", EPOCH + n);
        let mut args: Vec<String> = Vec::new();
        if let Some(key) = key {
            args.extend([
                "-c".into(),
                "gpg.format=ssh".into(),
                "-c".into(),
                format!("user.signingkey={}", key.display()),
            ]);
        }
        args.extend([
            "commit-tree".into(),
            tree.into(),
            "-m".into(),
            message.into(),
        ]);
        if let Some(parent) = parent {
            args.extend(["-p".into(), parent.into()]);
        }
        if key.is_some() {
            args.push("-S".into());
        }
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let envs = [
            ("GIT_AUTHOR_NAME", AUTHOR_NAME),
            ("GIT_AUTHOR_EMAIL", AUTHOR_EMAIL),
            ("GIT_COMMITTER_NAME", AUTHOR_NAME),
            ("GIT_COMMITTER_EMAIL", AUTHOR_EMAIL),
            ("GIT_AUTHOR_DATE", date.as_str()),
            ("GIT_COMMITTER_DATE", date.as_str()),
        ];
        let sha = run_git(&self.path, &argv, &envs)?;
        run_git(
            &self.path,
            &["update-ref", &format!("refs/heads/{branch}"), &sha],
            &[],
        )?;
        Ok(sha)
    }
}

/// Generates an ed25519 SSH key pair in `dir` (`<name>` and `<name>.pub`) with ssh-keygen;
/// returns (private key path, public key line).
pub fn generate_ssh_key(dir: &Path, name: &str) -> anyhow::Result<(PathBuf, String)> {
    let keygen = crate::process::require_tool("ssh-keygen", "openssh-client");
    let key = dir.join(name);
    let status = Command::new(keygen)
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&key)
        .stdin(Stdio::null())
        .status()?;
    if !status.success() {
        bail!("ssh-keygen failed for {}", key.display());
    }
    let public = std::fs::read_to_string(key.with_extension("pub"))
        .or_else(|_| std::fs::read_to_string(format!("{}.pub", key.display())))?;
    Ok((key, public.trim().to_string()))
}

/// The workspace's `catalog-repo-template/` directory.
pub fn template_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("catalog-repo-template")
}

pub(crate) fn run_git(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> anyhow::Result<String> {
    run_git_stdin(dir, args, envs, &[])
}

fn run_git_stdin(
    dir: &Path,
    args: &[&str],
    envs: &[(&str, &str)],
    stdin: &[u8],
) -> anyhow::Result<String> {
    use std::io::Write as _;
    let mut cmd = Command::new(git_binary());
    cmd.current_dir(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .context("cannot run git: install it with `apt-get install -y git`")?;
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin)?;
    drop(input);
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "git {} failed in {}: {}",
            args.join(" "),
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[cfg(test)]
mod tests;
