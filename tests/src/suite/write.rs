//! Shared by the caib writing suites: a catalog remote seeded from the template and served
//! over smart HTTP with basic auth, the fake forge, and a private HOME/cache for caib.

use std::path::PathBuf;
use std::process::Output;

use crate::forge::FakeForge;
use crate::git::{BareRepo, SmartHttp};
use crate::process::binary;
use tempfile::TempDir;

pub const USER: &str = "alice";
pub const TOKEN: &str = "s3cret-token";
pub const FORGE_REPO: &str = "example-org/automotive-image-catalog";
pub const AUTHOR: &str = "Test Author";
pub const AUTHOR_EMAIL: &str = "author@example.com";

/// A catalog remote seeded from the template, served over smart HTTP, a fake forge, and a
/// private HOME/cache for caib.
pub struct Setup {
    pub home: TempDir,
    pub remote: BareRepo,
    pub http: SmartHttp,
    pub forge: FakeForge,
    /// KUBECONFIG for caib, when a test runs a cluster.
    pub kubeconfig: Option<std::path::PathBuf>,
}

impl Setup {
    pub async fn new() -> Setup {
        let remote = BareRepo::from_template("catalog").expect("seed the catalog remote");
        let http = SmartHttp::start(remote.base_path(), USER, TOKEN)
            .await
            .expect("start smart HTTP");
        let forge = FakeForge::start(TOKEN).await;
        Setup {
            home: tempfile::tempdir().unwrap(),
            remote,
            http,
            forge,
            kubeconfig: None,
        }
    }

    /// `http://alice@127.0.0.1:PORT/catalog.git`: the password comes from CAIB_GIT_TOKEN.
    pub fn url(&self) -> String {
        self.http
            .url(&self.remote)
            .replacen("http://", &format!("http://{USER}@"), 1)
    }

    pub fn cache(&self) -> PathBuf {
        self.home.path().join("cache")
    }

    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        self.command_for(&self.url(), args)
    }

    pub fn command_for(&self, repo: &str, args: &[&str]) -> tokio::process::Command {
        let mut cmd = self.command_without_repo(&[]);
        cmd.arg("--catalog-repo").arg(repo).args(args);
        cmd
    }

    /// caib with this setup's environment but no `--catalog-repo` (config file tests).
    pub fn command_without_repo(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(binary("caib"));
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("XDG_CACHE_HOME", self.cache())
            .env("XDG_CONFIG_HOME", self.home.path().join("config"))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", AUTHOR)
            .env("GIT_AUTHOR_EMAIL", AUTHOR_EMAIL)
            .env("CAIB_GIT_TOKEN", TOKEN)
            .env("CAIB_FORGE_API_URL", self.forge.github_url())
            .env("NO_COLOR", "1")
            .args(args)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        if let Some(kubeconfig) = &self.kubeconfig {
            cmd.env("KUBECONFIG", kubeconfig);
        }
        cmd
    }

    pub async fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().await.expect("run caib")
    }

    pub fn refs(&self) -> String {
        self.remote.git(&["for-each-ref"]).unwrap()
    }

    /// Text of `path` at `rev` in the remote; panics if it is not there.
    pub fn file(&self, rev: &str, path: &str) -> String {
        text(&self.remote.read(rev, path).unwrap())
    }
}

/// `catalog add NAME quay.io/org/NAME:v1 --architecture amd64 --distro cs9 --no-verify`: the
/// smallest valid add, for tests about where caib's credentials, author or forge come from
/// rather than about the entry.
pub fn org_add_args(name: &str) -> Vec<String> {
    let url = format!("quay.io/org/{name}:v1");
    [
        "catalog",
        "add",
        name,
        &url,
        "--architecture",
        "amd64",
        "--distro",
        "cs9",
        "--no-verify",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// Asserts caib exited 0, showing all it said otherwise.
#[track_caller]
pub fn assert_success(out: &Output) {
    assert!(out.status.success(), "{}", show(out));
}

/// Asserts caib exited with `code` and said `needle` on stderr (the exit codes and messages
/// are the contract with scripts and users).
#[track_caller]
pub fn assert_exit(out: &Output, code: i32, needle: &str) {
    assert_eq!(out.status.code(), Some(code), "{}", show(out));
    assert_stderr(out, needle);
}

/// Asserts caib's stdout contains `needle`.
#[track_caller]
pub fn assert_stdout(out: &Output, needle: &str) {
    assert!(text(&out.stdout).contains(needle), "{}", show(out));
}

/// Asserts caib's stderr contains `needle`.
#[track_caller]
pub fn assert_stderr(out: &Output, needle: &str) {
    assert!(text(&out.stderr).contains(needle), "{}", show(out));
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn show(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    )
}

/// `git log -1 --format=...` of a revision in the remote.
pub fn commit_info(remote: &BareRepo, rev: &str, format: &str) -> String {
    remote
        .git(&["log", "-1", &format!("--format={format}"), rev])
        .unwrap()
}

/// Installs a pre-receive hook that, on the first push only, moves `main` on the remote
/// (as a colleague's push landing at the same moment would), so that caib's push loses the
/// race with a real non-fast-forward rejection. The colleague's commit writes `path`.
pub fn install_concurrent_push_hook(remote: &BareRepo, path: &str) {
    let hook = remote.path().join("hooks/pre-receive");
    std::fs::create_dir_all(hook.parent().unwrap()).unwrap();
    let script = r#"#!/bin/sh
cat >/dev/null
[ -f "$GIT_DIR/concurrent-done" ] && exit 0
touch "$GIT_DIR/concurrent-done"
unset GIT_QUARANTINE_PATH GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES
export GIT_INDEX_FILE="$GIT_DIR/concurrent.index"
old=$(git rev-parse refs/heads/main)
git read-tree "$old"
blob=$(echo "concurrent change" | git hash-object -w --stdin)
git update-index --add --cacheinfo "100644,$blob,@FILE@"
tree=$(git write-tree)
new=$(GIT_AUTHOR_NAME=Colleague GIT_AUTHOR_EMAIL=c@example.com GIT_COMMITTER_NAME=Colleague GIT_COMMITTER_EMAIL=c@example.com git commit-tree "$tree" -p "$old" -m "concurrent change")
git update-ref refs/heads/main "$new" "$old"
exit 0
"#;
    std::fs::write(&hook, script.replace("@FILE@", path)).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}
