//! Finding and running the project's real binaries from end-to-end tests.

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Path of a binary built from this workspace (`caib`, `catalog-reconciler`, `kube-emulator`).
///
/// `cargo test --workspace` builds every binary before running tests; when one is missing the
/// panic says how to build it.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test>-<hash> -> target/<profile>/<name>
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test executable lives in target/<profile>/deps");
    let candidates = [profile_dir.join(name), exe.parent().unwrap().join(name)];
    for candidate in &candidates {
        if candidate.is_file() {
            return candidate.clone();
        }
    }
    panic!(
        "binary {name} not found in {}: run `cargo build --workspace --bins` first (cargo test --workspace builds it)",
        profile_dir.display()
    );
}

/// Polls `check` until it returns `Some`, or panics with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Peak resident memory (VmHWM) of process `pid` in MiB; NaN once it is gone.
pub fn peak_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Fails with an install hint when a required external tool is missing.
pub fn require_tool(tool: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(tool);
        if candidate.is_file() {
            return candidate;
        }
    }
    for dir in [
        "/usr/sbin",
        "/usr/bin",
        "/usr/lib/git-core",
        "/usr/local/libexec/git-core",
    ] {
        let candidate = PathBuf::from(dir).join(tool);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("{tool} is required by this test: install it with `apt-get install -y {package}`");
}

/// Like [`binary`], for binaries (such as the sandbox) that run from `target/<profile>/`
/// rather than from a test's `deps/` directory.
pub fn binary_near(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .ok_or_else(|| anyhow::anyhow!("executable has no directory"))?;
    for candidate in [dir.join(name), dir.join("..").join(name)] {
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    anyhow::bail!(
        "{name} not found next to {}: run `cargo build --workspace --bins` first",
        exe.display()
    )
}

/// Whether this process runs as root (sshd needs privilege separation directories then, and
/// the scripts install packages instead of printing the command).
pub fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// A process as `/proc/<pid>/stat` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessInfo {
    pub pid: u32,
    /// The executable's name, cut to 15 bytes by the kernel (`catalog-reconci`).
    pub comm: String,
    /// `R`, `S`, `Z` (exited, not yet reaped), ...
    pub state: char,
    pub ppid: u32,
}

/// `/proc/<pid>/stat`; `None` once the process is gone.
pub fn process_info(pid: u32) -> Option<ProcessInfo> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid ...`: comm may hold spaces and parentheses, so cut at the last ')'.
    let (head, tail) = stat.rsplit_once(')')?;
    let comm = head.split_once('(')?.1.to_string();
    let mut fields = tail.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some(ProcessInfo {
        pid,
        comm,
        state,
        ppid,
    })
}

/// Every living descendant of `pid` (children, their children, ...), zombies excluded.
pub fn descendants(pid: u32) -> Vec<ProcessInfo> {
    let all: Vec<ProcessInfo> = std::fs::read_dir("/proc")
        .map(|dir| {
            dir.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .filter_map(process_info)
                .collect()
        })
        .unwrap_or_default();
    let mut found: Vec<ProcessInfo> = Vec::new();
    let mut parents = vec![pid];
    while let Some(parent) = parents.pop() {
        for p in all.iter().filter(|p| p.ppid == parent) {
            parents.push(p.pid);
            if p.state != 'Z' {
                found.push(p.clone());
            }
        }
    }
    found
}

/// Whether the process `seen` earlier still runs: same pid and name (not a reused pid), not a
/// zombie (which has exited and only waits to be reaped).
pub fn still_running(seen: &ProcessInfo) -> bool {
    process_info(seen.pid).is_some_and(|now| now.comm == seen.comm && now.state != 'Z')
}
