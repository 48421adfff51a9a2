use super::*;
use crate::commands::testdata::{by_hand, qemu, rpi4};
use catalog_api::labels::{CATALOG_SOURCE, SOURCE_NAMESPACE, SOURCE_PATH};
use catalog_api::validate::Entry;

const REVISION: &str = "0123456789abcdef0123456789abcdef01234567";

fn entry(image: CatalogImage, path: &str) -> Entry {
    Entry {
        path: path.into(),
        line: 3,
        image: catalog_api::declared::DeclaredImage::of(image),
    }
}

/// `image` as the sync of source default/dev left it.
fn synced(mut image: CatalogImage) -> CatalogImage {
    let name = image.metadata.name.clone().unwrap();
    let meta = &mut image.metadata;
    meta.labels
        .get_or_insert_default()
        .insert(CATALOG_SOURCE.into(), "dev".into());
    let annotations = meta.annotations.get_or_insert_default();
    annotations.insert(SOURCE_NAMESPACE.into(), "default".into());
    annotations.insert(SOURCE_PATH.into(), format!("environments/dev/{name}.yaml"));
    image
}

fn dev() -> PlannedSource {
    PlannedSource::new("dev", "default")
}

#[test]
fn compares_only_what_the_repository_controls() {
    // Live: synced copies with derived labels, source annotations and status; one entry
    // since gone from Git, and one made by hand, which no source owns.
    let mut live_rpi = synced(rpi4());
    live_rpi.metadata.resource_version = Some("42".into());
    let mut live_qemu = synced(qemu());
    live_qemu.spec.tags = vec!["old".into()];
    live_qemu
        .metadata
        .labels
        .get_or_insert_default()
        .insert("team".into(), "platform".into());
    let mut gone = synced(by_hand());
    gone.metadata.name = Some("gone-image".into());
    let live = vec![live_rpi, live_qemu, gone, by_hand()];

    // Desired: files without derived labels or status; qemu's tags changed, a new entry.
    let mut want_rpi = rpi4();
    want_rpi.metadata.labels = None;
    want_rpi.metadata.annotations = None;
    want_rpi.status = None;
    let mut want_qemu = qemu();
    want_qemu.status = None;
    want_qemu.metadata.labels = Some([("team".to_string(), "platform".to_string())].into());
    want_qemu.spec.tags = vec!["reference".into()];
    let mut new = by_hand();
    new.metadata.name = Some("new-image".into());
    let report = Report {
        entries: vec![
            entry(want_rpi, "environments/dev/autosd-cs9-rpi4.yaml"),
            entry(want_qemu, "environments/dev/autosd-cs9-qemu.yaml"),
            entry(new, "environments/dev/new-image.yaml"),
        ],
        diagnostics: vec![],
    };
    let comparison = compare(&report, &live, &dev(), "dev", REVISION).unwrap();
    assert_eq!(
        Summary::of(&comparison),
        Summary {
            added: 1,
            changed: 1,
            removed: 1,
            ..Summary::default()
        }
    );
    let removed: Vec<&str> = comparison
        .changes
        .iter()
        .filter(|c| matches!(c, Change::Removed { .. }))
        .map(Change::name)
        .collect();
    assert_eq!(
        removed,
        ["gone-image"],
        "the hand-made object is not removed"
    );
    insta::assert_snapshot!(render(&comparison.changes, "dev"));
}

#[test]
fn a_broken_file_does_not_remove_its_live_entry() {
    let mut live = synced(rpi4());
    live.metadata
        .annotations
        .get_or_insert_default()
        .insert(SOURCE_PATH.into(), "environments/dev/rpi.yaml".into());
    let report = Report {
        entries: vec![],
        diagnostics: vec![catalog_api::Diagnostic::new(
            "environments/dev/rpi.yaml",
            2,
            1,
            "bad",
        )],
    };
    let comparison = compare(&report, &[live], &dev(), "dev", REVISION).unwrap();
    assert!(Summary::of(&comparison).is_empty());
}

#[test]
fn unowned_objects_are_conflicts_and_held_deletions_are_not_removals() {
    // An entry whose name a hand-made object already has: the sync leaves it alone.
    let mut want = by_hand();
    want.metadata.labels = None;
    let report = Report {
        entries: vec![entry(want, "environments/dev/my-catalog-image.yaml")],
        diagnostics: vec![],
    };
    let comparison = compare(&report, &[by_hand()], &dev(), "dev", REVISION).unwrap();
    assert!(comparison.changes.is_empty());
    assert_eq!(Summary::of(&comparison).conflicts, 1);
    assert!(comparison.adopt.is_some());
    let lines = warnings(&comparison);
    assert!(
        lines[0].starts_with("conflict: my-catalog-image"),
        "{lines:?}"
    );

    // An emptied environment: the sync deletes nothing of it without approval.
    let empty = Report {
        entries: vec![],
        diagnostics: vec![],
    };
    let live = vec![synced(rpi4()), synced(qemu())];
    let comparison = compare(&empty, &live, &dev(), "dev", REVISION).unwrap();
    let summary = Summary::of(&comparison);
    assert_eq!((summary.removed, summary.held), (0, 2));
    assert!(
        summary.line().ends_with(", 2 deletions held"),
        "{}",
        summary.line()
    );
}
