//! The README's first command: the sandbox starts everything, walks the quickstart and the
//! review flow (the pull request previewed before it is merged) with the real caib and
//! kubectl, and ends every process it started, whether it stops on its own (`--exit`) or on
//! SIGTERM, SIGINT or SIGHUP.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use catalog_e2e::process::{ProcessInfo, binary, descendants, still_running};

#[test]
fn sandbox_walks_the_quickstart_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(binary("sandbox"))
        .arg("--exit")
        .arg("--dir")
        .arg(dir.path())
        .output()
        .expect("run the sandbox");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "sandbox failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for expected in [
        "✓ dev environment synced and verified",
        "$ caib catalog list --target raspberry-pi --architecture arm64",
        "NAME                    REGISTRY",
        "$ caib catalog get autosd-cs9-rpi4",
        "  phase: Available",
        "$ caib catalog verify reference-cs9",
        "✓ Digest verification: OK",
        "Status:          Available",
        // The review flow, on the forge stand-in, said to be one.
        "▸ Starting the forge stand-in (a local stand-in for GitHub, not GitHub)",
        "$ caib catalog publish my-custom-build --tags production,tested",
        "▸ Pull request #1 on the forge stand-in (a local stand-in for GitHub)",
        "  branch: caib/publish/dev/my-custom-build → main",
        "  +++ b/environments/dev/my-custom-build.yaml",
        "  +  digest: sha256:",
        // The preview, on the pull request before it is merged.
        "  ✓ refs/pull/1/head → ",
        "  catalog-preview/catalog-dev: success — 1 created: every image verified",
        "  | ### Catalog preview: `default/catalog-dev` at `",
        "  | | entry | change | image | digest | platforms | result | message |",
        "  | | my-custom-build | created | ",
        "/my-org/custom-build:v1.0.0 | sha256:",
        " | linux/arm64/v8 | ok | ",
        "$ caib catalog status catalog-dev",
        "Pull-request previews:",
        "  ✓ my-custom-build is not in the cluster: nothing from a pull request is applied before it is merged",
        "▸ Merging pull request #1 through the forge stand-in",
        "  ✓ my-custom-build is Available in the cluster",
        "$ caib catalog get my-custom-build",
        "$ kubectl get catalogimages",
        "reference-cs9   ",
        "my-custom-build   ",
        "catalog-dev   file://",
        "export KUBECONFIG=",
        "Stopping (--exit).",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}\nstderr:\n{stderr}"
        );
    }
    // The preview is shown, and the cluster checked, before the merge.
    let position = |needle: &str| stdout.find(needle).unwrap();
    let merging = position("▸ Merging pull request #1");
    for before in [
        "  catalog-preview/catalog-dev: success",
        "  | | my-custom-build | created | ",
        "  ✓ my-custom-build is not in the cluster",
    ] {
        assert!(
            position(before) < merging,
            "{before:?} after the merge:\n{stdout}"
        );
    }
    assert!(stderr.contains("✓ Added successfully"), "{stderr}");
    assert!(stderr.contains("✓ Published successfully"), "{stderr}");
    // Nothing it started outlives it: the reconciler's log is closed and no process holds the dir.
    let leftover = Command::new("pgrep")
        .args(["-f", &dir.path().display().to_string()])
        .output()
        .unwrap();
    assert!(
        leftover.stdout.is_empty(),
        "processes left running: {}",
        String::from_utf8_lossy(&leftover.stdout)
    );
}

/// A running sandbox whose stdout is read line by line.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    _dir: tempfile::TempDir,
}

impl Running {
    fn start() -> Running {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(binary("sandbox"))
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the sandbox");
        let stdout = child.stdout.take().unwrap();
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = send.send(line);
            }
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
            _dir: dir,
        }
    }

    /// Reads stdout until a line contains `needle` (the sandbox got that far).
    fn wait_for(&mut self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            match self.lines.recv_timeout(Duration::from_secs(1)) {
                Ok(line) => {
                    let found = line.contains(needle);
                    self.seen.push(line);
                    if found {
                        return;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        panic!(
            "the sandbox never printed {needle:?}:\n{}",
            self.seen.join("\n")
        );
    }

    /// Sends `signal` (as `kill -SIG pid` does) and waits for the sandbox to exit.
    fn signal_and_wait(&mut self, signal: &str) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -{signal} {pid}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the sandbox did not exit on {signal}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The rest of stdout, once the sandbox exited.
    fn rest(&mut self) -> String {
        self.seen.extend(self.lines.iter());
        self.seen.join("\n")
    }
}

/// Starts the sandbox, waits for `ready`, sends `signal`, and asserts every process it had
/// started (snapshotted just before the signal; `expected` names some by their first 15
/// bytes, as /proc does) has ended.
fn stops_on(signal: &str, ready: &str, expected: &[&str]) {
    let mut sandbox = Running::start();
    sandbox.wait_for(ready);
    let started: Vec<ProcessInfo> = descendants(sandbox.child.id());
    for name in expected {
        assert!(
            started.iter().any(|p| p.comm == *name),
            "{name} not among the sandbox's processes: {started:?}"
        );
    }
    let status = sandbox.signal_and_wait(signal);
    let stdout = sandbox.rest();
    assert!(status.success(), "{status}\n{stdout}");
    assert!(
        stdout.contains(&format!(
            "Stopping (SIG{signal}): ending every process the sandbox started."
        )),
        "{stdout}"
    );
    // Ended with SIGKILL by the sandbox as it stopped: gone at once, or a zombie until reaped.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left: Vec<&ProcessInfo> = started.iter().filter(|p| still_running(p)).collect();
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still running after SIG{signal}: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_after_the_walkthrough_ends_every_process() {
    stops_on(
        "TERM",
        "every process the sandbox started is ended",
        &["docker-registry", "catalog-reconci"],
    );
}

#[test]
fn sighup_while_starting_ends_every_process() {
    stops_on(
        "HUP",
        "✓ dev environment synced and verified",
        &["docker-registry", "catalog-reconci"],
    );
}

/// SIGINT sent to the sandbox alone (not Ctrl-C in a terminal, which reaches every process
/// of the foreground group and so hides a sandbox that does not stop its children).
#[test]
fn sigint_to_the_sandbox_alone_ends_every_process() {
    stops_on(
        "INT",
        "every process the sandbox started is ended",
        &["docker-registry", "catalog-reconci"],
    );
}
