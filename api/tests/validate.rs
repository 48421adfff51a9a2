//! Every kind of bad input a catalog repository can hold, each with a precise, located error
//! and no effect on the other entries.

use catalog_api::repo::validate_environment_dir;
use catalog_api::validate::{Report, Rules, validate_environment};

const GOOD: &str = "apiVersion: automotive.sdv.cloud.redhat.com/v1alpha1
kind: CatalogImage
metadata:
  name: good
spec:
  registryUrl: quay.io/centos-automotive/autosd:cs9-qemu
  metadata:
    architecture: amd64
    distro: cs9
    targets:
      - name: qemu
";

fn entry(name: &str, spec_extra: &str) -> String {
    format!(
        "apiVersion: automotive.sdv.cloud.redhat.com/v1alpha1\nkind: CatalogImage\nmetadata:\n  name: {name}\nspec:\n  registryUrl: quay.io/a/b:c\n{spec_extra}"
    )
}

/// Validates `bad` beside a good file; the good entry must survive whatever `bad` holds.
fn check(bad: &str, rules: &Rules) -> Report {
    let files = [
        ("env/good.yaml", GOOD.as_bytes()),
        ("env/bad.yaml", bad.as_bytes()),
    ];
    let report = validate_environment(files, rules);
    assert!(
        report.entries.iter().any(|e| e.name() == "good"),
        "the good entry must not be affected: {report:?}"
    );
    report
}

fn only_error(report: &Report) -> String {
    assert_eq!(report.diagnostics.len(), 1, "{:#?}", report.diagnostics);
    report.diagnostics[0].to_string()
}

#[test]
fn the_template_repository_is_valid() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../catalog-repo-template");
    let config = catalog_api::repo::RepoConfig::load(root.as_ref()).expect("catalog.yaml");
    let mut total = 0;
    for env in &config.environments {
        let report = validate_environment_dir(root.as_ref(), &env.path, &env.rules());
        assert!(report.is_valid(), "{}: {:#?}", env.name, report.diagnostics);
        total += report.entries.len();
    }
    assert_eq!(total, 5);
}

#[test]
fn malformed_yaml_is_located() {
    let report = check("apiVersion: v1\nkind: [CatalogImage\n", &Rules::default());
    let error = only_error(&report);
    assert!(error.starts_with("env/bad.yaml:"), "{error}");
    assert!(error.contains("invalid YAML"), "{error}");
}

#[test]
fn tab_indentation_is_named() {
    let report = check(
        "kind: CatalogImage\nspec:\n\tregistryUrl: x\n",
        &Rules::default(),
    );
    assert_eq!(
        only_error(&report),
        "env/bad.yaml:3:1: tab character in indentation: YAML indentation must use spaces"
    );
}

#[test]
fn one_broken_document_keeps_the_other() {
    let text = format!(
        "{}---\nkind: CatalogImage\nmetadata: {{name: [\n",
        entry("first", "")
    );
    let report = check(&text, &Rules::default());
    assert!(
        report.entries.iter().any(|e| e.name() == "first"),
        "{report:?}"
    );
    let error = only_error(&report);
    assert!(
        error.starts_with("env/bad.yaml:9:") || error.starts_with("env/bad.yaml:10:"),
        "{error}"
    );
}

#[test]
fn duplicate_names_across_files_quarantine_both() {
    let dup = GOOD.to_string();
    let files = [
        ("env/a.yaml", dup.as_bytes()),
        ("env/b.yaml", dup.as_bytes()),
        (
            "env/c.yaml",
            entry("other", "").into_bytes().leak() as &[u8],
        ),
    ];
    let report = validate_environment(files, &Rules::default());
    assert_eq!(report.entries.len(), 1);
    assert_eq!(report.entries[0].name(), "other");
    let errors: Vec<String> = report.diagnostics.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        errors,
        vec![
            "env/a.yaml:4:1: duplicate entry name \"good\": also defined at env/b.yaml:4",
            "env/b.yaml:4:1: duplicate entry name \"good\": also defined at env/a.yaml:4",
        ]
    );
}

#[test]
fn other_kinds_are_refused() {
    let report = check(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: evil\n",
        &Rules::default(),
    );
    assert_eq!(
        only_error(&report),
        "env/bad.yaml:2:7: kind: Deployment is not allowed in a catalog repository: only CatalogImage manifests are applied"
    );
}

#[test]
fn status_is_refused() {
    let report = check(
        &format!("{}status:\n  phase: Available\n", entry("s", "")),
        &Rules::default(),
    );
    assert_eq!(
        only_error(&report),
        "env/bad.yaml:8:3: status: not allowed in a catalog file: status is written by the reconciler"
    );
}

#[test]
fn another_namespace_is_refused() {
    let text = "apiVersion: automotive.sdv.cloud.redhat.com/v1alpha1\nkind: CatalogImage\nmetadata:\n  name: n\n  namespace: kube-system\nspec:\n  registryUrl: quay.io/a/b\n";
    let rules = Rules {
        target_namespace: Some("catalog-dev".into()),
        ..Rules::default()
    };
    let error = only_error(&check(text, &rules));
    assert!(
        error.starts_with("env/bad.yaml:5:14: metadata.namespace: \"kube-system\" differs"),
        "{error}"
    );
}

#[test]
fn non_utf8_empty_and_oversized_files() {
    let error = only_error(&check_bytes(b"kind: CatalogImage\nname: caf\xe9\n"));
    assert_eq!(
        error,
        "env/bad.yaml:2:10: file is not valid UTF-8 (entry files must be UTF-8 text)"
    );

    let error = only_error(&check("", &Rules::default()));
    assert_eq!(
        error,
        "env/bad.yaml:1:1: file is empty: an entry file holds one CatalogImage manifest"
    );

    let big = format!("{}# {}\n", entry("big", ""), "x".repeat(300 * 1024));
    let error = only_error(&check(&big, &Rules::default()));
    assert!(error.contains("over the 256 KiB limit"), "{error}");
}

fn check_bytes(bad: &[u8]) -> Report {
    let files = [("env/good.yaml", GOOD.as_bytes()), ("env/bad.yaml", bad)];
    let report = validate_environment(files, &Rules::default());
    assert_eq!(report.entries.len(), 1);
    report
}

#[test]
fn symlink_outside_the_repository_is_refused() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.yaml"), GOOD).unwrap();
    let repo = tempfile::tempdir().unwrap();
    let env = repo.path().join("environments/dev");
    std::fs::create_dir_all(&env).unwrap();
    std::fs::write(env.join("good.yaml"), entry("inside", "")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret.yaml"), env.join("link.yaml")).unwrap();
    let report = validate_environment_dir(repo.path(), "environments/dev", &Rules::default());
    assert_eq!(report.entries.len(), 1);
    let error = only_error(&report);
    assert!(
        error.starts_with("environments/dev/link.yaml:1:1: symlink points outside the repository"),
        "{error}"
    );
}

#[test]
fn invalid_digest_is_named() {
    let report = check(&entry("d", "  digest: sha256:abc\n"), &Rules::default());
    assert_eq!(
        only_error(&report),
        "env/bad.yaml:7:11: spec.digest: \"sha256:abc\" is not a digest: expected sha256: followed by 64 lowercase hex characters, or sha512: followed by 128"
    );
}

#[test]
fn production_requires_a_digest() {
    let rules = Rules {
        require_digest: true,
        environment: Some("production".into()),
        ..Rules::default()
    };
    let files = [("env/bad.yaml", entry("p", "").into_bytes())];
    let report = validate_environment(files.iter().map(|(p, b)| (*p, b.as_slice())), &rules);
    let error = only_error(&report);
    assert!(
        error.contains("spec.digest: required in production"),
        "{error}"
    );
}

#[test]
fn short_verification_interval_is_refused() {
    let report = check(
        &entry("i", "  verificationInterval: 10s\n"),
        &Rules::default(),
    );
    assert_eq!(
        only_error(&report),
        "env/bad.yaml:7:25: spec.verificationInterval: \"10s\" is shorter than the minimum of 30s"
    );
}

#[test]
fn unknown_architecture_is_refused() {
    let report = check(
        &entry("a", "  metadata:\n    architecture: sparc\n"),
        &Rules::default(),
    );
    let error = only_error(&report);
    assert!(
        error.starts_with(
            "env/bad.yaml:8:19: spec.metadata.architecture: unknown architecture \"sparc\""
        ),
        "{error}"
    );
}

#[test]
fn unknown_fields_are_refused_with_a_hint() {
    let report = check(
        &entry("u", "  registryURL: quay.io/x/y\n"),
        &Rules::default(),
    );
    assert_eq!(
        only_error(&report),
        "env/bad.yaml:7:16: spec.registryURL: unknown field (did you mean \"registryUrl\"?)"
    );
}

#[test]
fn wrong_types_say_how_to_fix_them() {
    let report = check(
        &entry("t", "  metadata:\n    distroVersion: 9.4\n"),
        &Rules::default(),
    );
    let error = only_error(&report);
    assert!(
        error.starts_with("env/bad.yaml:8:20: spec.metadata.distroVersion:"),
        "{error}"
    );
    assert!(error.contains("quote the value"), "{error}");
}

#[test]
fn every_rejected_reference_is_reported_at_registry_url() {
    let rejected = [
        "quay.io/Upper/repo",
        "quay.io/a:b:c",
        "quay.io/a@sha256:short",
        "quay.io/-a",
        "quay.io/a-",
        "quay.io/a..b",
        "quay.io/a/",
        "/a",
        "quay.io:99999/a",
        "quay.io:port/a",
        "[::1/a",
        "quay.io/a:-tag",
        "a@",
        ":tag",
        "quay.io/a:",
    ];
    for reference in rejected {
        let text = format!(
            "apiVersion: automotive.sdv.cloud.redhat.com/v1alpha1\nkind: CatalogImage\nmetadata:\n  name: r\nspec:\n  registryUrl: \"{reference}\"\n"
        );
        let report = check(&text, &Rules::default());
        let error = only_error(&report);
        assert!(
            error.starts_with("env/bad.yaml:6:16: spec.registryUrl: "),
            "{reference}: {error}"
        );
    }
}

#[test]
fn a_secret_of_another_namespace_cannot_be_named() {
    let report = check(
        &entry(
            "s",
            "  authSecretRef:\n    name: git-creds\n    namespace: victim\n",
        ),
        &Rules::default(),
    );
    let error = only_error(&report);
    assert!(
        error.starts_with("env/bad.yaml:9:16: spec.authSecretRef.namespace: unknown field"),
        "{error}"
    );
}

#[test]
fn reconciler_keys_are_refused_in_entry_files() {
    for (kind, key) in [
        ("labels", "automotive.sdv.cloud.redhat.com/catalog-source"),
        ("labels", "automotive.sdv.cloud.redhat.com/architecture"),
        ("labels", "target.automotive.sdv.cloud.redhat.com/qemu"),
        (
            "annotations",
            "automotive.sdv.cloud.redhat.com/source-namespace",
        ),
        (
            "annotations",
            "automotive.sdv.cloud.redhat.com/approve-deletions",
        ),
    ] {
        let bad = format!(
            "apiVersion: automotive.sdv.cloud.redhat.com/v1alpha1\nkind: CatalogImage\nmetadata:\n  name: r\n  {kind}:\n    team: os\n    {key}: \"x\"\nspec:\n  registryUrl: quay.io/a/b:c\n"
        );
        let error = only_error(&check(&bad, &Rules::default()));
        assert!(
            error.starts_with("env/bad.yaml:7:")
                && error.contains(&format!("metadata.{kind}.{key}: keys under")),
            "{error}"
        );
    }
    // caib publish's provenance annotation and keys of other prefixes are the author's.
    let fine = "apiVersion: automotive.sdv.cloud.redhat.com/v1alpha1\nkind: CatalogImage\nmetadata:\n  name: r\n  labels:\n    example.com/automotive.sdv.cloud.redhat.com: x\n  annotations:\n    automotive.sdv.cloud.redhat.com/source-imagebuild: ns/build\nspec:\n  registryUrl: quay.io/a/b:c\n";
    assert!(check(fine, &Rules::default()).is_valid());
}

#[test]
fn an_oversized_file_on_disk_is_reported_from_its_metadata_without_being_read() {
    let repo = tempfile::tempdir().unwrap();
    let env = repo.path().join("environments/dev");
    std::fs::create_dir_all(&env).unwrap();
    std::fs::write(env.join("good.yaml"), entry("good", "")).unwrap();
    // 50 MiB of zeros, sparse: nothing to read but what the file claims.
    let big = std::fs::File::create(env.join("zeros.yaml")).unwrap();
    big.set_len(50 * 1024 * 1024).unwrap();
    assert_eq!(big.metadata().unwrap().len(), 52_428_800, "premise");
    let report = validate_environment_dir(repo.path(), "environments/dev", &Rules::default());
    assert_eq!(report.entries.len(), 1, "the good entry is unaffected");
    assert_eq!(
        only_error(&report),
        "environments/dev/zeros.yaml:1:1: file is 52428800 bytes, over the 256 KiB limit for an entry file (262144 bytes): it is not read"
    );
}

#[test]
fn an_oversized_catalog_yaml_is_reported_without_being_read() {
    let repo = tempfile::tempdir().unwrap();
    let config = std::fs::File::create(repo.path().join("catalog.yaml")).unwrap();
    config.set_len(300 * 1024).unwrap();
    let errors = catalog_api::repo::RepoConfig::load(repo.path()).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0]
            .to_string()
            .starts_with("catalog.yaml:1:1: file is 307200 bytes, over the 256 KiB limit"),
        "{}",
        errors[0]
    );
}

#[test]
fn an_alias_bomb_is_invalid_and_the_other_entries_are_not() {
    // Under 100 KiB of text; resolved, 64 anchors of 64 KiB repeated 8 x 8 x 16 times.
    let mut bomb = entry("bomb", "");
    bomb.push_str(&format!("x-a: &a \"{}\"\n", "a".repeat(64 * 1024)));
    bomb.push_str("x-b: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n");
    bomb.push_str("x-c: &c [*b, *b, *b, *b, *b, *b, *b, *b]\n");
    bomb.push_str("x-d: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n");
    assert!(bomb.len() < 100 * 1024, "premise: a file under 100 KiB");
    let report = check(&bomb, &Rules::default());
    let error = only_error(&report);
    assert!(error.starts_with("env/bad.yaml:1:1: "), "{error}");
    assert!(
        error.contains("expands past 4 MiB once its aliases (*name) are resolved"),
        "{error}"
    );
}
