//! `caib catalog validate`: what catalog-repository CI runs on every pull request.

use assert_cmd::Command;

fn caib() -> Command {
    Command::cargo_bin("caib").expect("caib binary")
}

const TEMPLATE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../catalog-repo-template");

#[test]
fn the_template_is_valid() {
    let out = caib()
        .args(["catalog", "validate", TEMPLATE])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(out.stdout.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "✓ 5 entries in 3 environments valid\n"
    );
}

/// A copy of the template with one broken file in production.
fn broken_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(TEMPLATE.as_ref(), dir.path());
    std::fs::write(
        dir.path().join("environments/production/broken.yaml"),
        "apiVersion: automotive.sdv.cloud.redhat.com/v1alpha1\nkind: CatalogImage\nmetadata:\n  name: broken\nspec:\n  registryUrl: quay.io/a/b:c\n  digest: sha256:nothex\n",
    )
    .unwrap();
    dir
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    for item in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(item.file_name());
        if item.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&item.path(), &target);
        } else {
            std::fs::copy(item.path(), target).unwrap();
        }
    }
}

#[test]
fn errors_are_located_and_exit_1() {
    let repo = broken_repo();
    let out = caib()
        .current_dir(repo.path())
        .args(["catalog", "validate"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "environments/production/broken.yaml:7:11: spec.digest: \"sha256:nothex\" is not a digest: expected sha256: followed by 64 lowercase hex characters, or sha512: followed by 128\n"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 problem found (5 valid entries)"));
}

#[test]
fn github_format_prints_annotations() {
    let repo = broken_repo();
    let out = caib()
        .args(["catalog", "validate", "--format", "github"])
        .arg(repo.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "::error file=environments/production/broken.yaml,line=7,col=11::spec.digest: \"sha256:nothex\" is not a digest: expected sha256: followed by 64 lowercase hex characters, or sha512: followed by 128\n"
    );
}

#[test]
fn a_plain_directory_of_entries_is_validated_too() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.yaml"), "kind: Deployment\n").unwrap();
    let out = caib()
        .args(["catalog", "validate"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .starts_with("a.yaml:1:7: kind: Deployment is not allowed")
    );
}

#[test]
fn usage_errors_exit_2() {
    let out = caib()
        .args(["catalog", "validate", "/does/not/exist"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/does/not/exist is not a directory"));

    let out = caib()
        .args(["catalog", "validate", "--format", "xml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--format"));
}
