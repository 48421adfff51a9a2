//! `scripts/lib/packages.sh`, which `scripts/test.sh` and `scripts/sandbox.sh` source: on a
//! machine lacking a package, a user who is not root gets one line with the exact apt-get
//! command, and root gets the packages installed. Runs the real functions with real bash and a
//! PATH holding only the tools a case says are installed; nothing is installed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use catalog_e2e::process::{is_root, require_tool};

const LIB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/lib/packages.sh");

/// A directory to use as PATH, holding links to the named real tools (tool, its package) only.
fn path_with(tools: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (tool, package) in tools {
        let real = require_tool(tool, package);
        std::os::unix::fs::symlink(real, dir.path().join(tool)).unwrap();
    }
    dir
}

/// Runs `call` after sourcing the library, with `path` as the whole PATH; as an unprivileged
/// user (nobody, through setpriv) unless `as_root`. The library text is passed inline, so the
/// unprivileged shell needs no access to the worktree.
fn run(path: &Path, call: &str, as_root: bool) -> Output {
    let lib = std::fs::read_to_string(LIB).unwrap();
    let bash = require_tool("bash", "bash");
    let script = format!("{lib}\n{call}");
    let mut cmd = if as_root || !is_root() {
        Command::new(&bash)
    } else {
        let mut setpriv = Command::new(require_tool("setpriv", "util-linux"));
        setpriv
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&bash);
        setpriv
    };
    cmd.env_clear()
        .env("PATH", path)
        .current_dir("/")
        .args(["-c", &script])
        .output()
        .expect("run bash")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn not_root_missing_packages_print_the_exact_command() {
    let path = path_with(&[("git", "git")]);
    let out = run(
        path.path(),
        "ensure_packages git jq docker-registry apache2-utils",
        false,
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        "error: missing system packages; install them with: sudo apt-get update && sudo apt-get install -y --no-install-recommends jq docker-registry apache2-utils\n"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn nothing_missing_is_silent() {
    let path = path_with(&[("git", "git"), ("jq", "jq"), ("htpasswd", "apache2-utils")]);
    let out = run(path.path(), "ensure_packages git jq apache2-utils", false);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
}

/// As root the missing packages go to apt-get (here absent from PATH, so nothing is installed:
/// the failure shows which command was run and that the script stops).
#[test]
fn root_installs_with_apt_get() {
    if !is_root() {
        eprintln!("skipped: the install path runs only as root");
        return;
    }
    let path = path_with(&[("git", "git")]);
    let out = run(path.path(), "ensure_packages git jq", true);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.starts_with("installing missing system packages: jq\n"),
        "{err}"
    );
    assert!(err.contains("apt-get: command not found"), "{err}");
}

#[test]
fn missing_kubectl_says_where_to_get_it() {
    let empty = PathBuf::from("/nonexistent");
    let out = run(&empty, "require_kubectl", false);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("kubectl (1.32 or newer) is required and is not in Debian's archive; install it from the Kubernetes apt repository: https://kubernetes.io/docs/tasks/tools/install-kubectl-linux/"),
        "{}",
        stderr(&out)
    );
    let path = path_with(&[("kubectl", "kubectl")]);
    assert!(run(path.path(), "require_kubectl", false).status.success());
}
