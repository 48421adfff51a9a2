//! The README's first command: the sandbox starts everything, walks the quickstart with the
//! real caib and kubectl, and ends every process it started.

use std::process::Command;

use catalog_e2e::process::binary;

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
        "$ kubectl get catalogimages",
        "reference-cs9   ",
        "catalog-dev   file://",
        "export KUBECONFIG=",
        "Stopping (--exit).",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}\nstderr:\n{stderr}"
        );
    }
    assert!(stderr.contains("✓ Added successfully"), "{stderr}");
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
