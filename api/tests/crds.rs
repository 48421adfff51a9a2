//! `crds/` must be exactly what the Rust types generate: the cluster must never run a schema
//! the code does not match.

use std::process::Command;

#[test]
fn checked_in_crds_are_current() {
    let output = Command::new(env!("CARGO_BIN_EXE_crdgen"))
        .arg("--check")
        .output()
        .expect("run crdgen");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn check_names_a_stale_file() {
    let dir = tempfile::tempdir().unwrap();
    let dir_arg = dir.path().to_str().unwrap();
    let write = Command::new(env!("CARGO_BIN_EXE_crdgen"))
        .args(["--dir", dir_arg])
        .output()
        .unwrap();
    assert!(write.status.success());
    std::fs::write(dir.path().join("catalogsources.yaml"), "stale").unwrap();
    let check = Command::new(env!("CARGO_BIN_EXE_crdgen"))
        .args(["--check", "--dir", dir_arg])
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(stderr.contains("catalogsources.yaml is stale"), "{stderr}");
    assert!(!stderr.contains("catalogimages.yaml"), "{stderr}");
}
