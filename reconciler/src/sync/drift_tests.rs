use std::collections::BTreeSet;

use super::*;
use crate::sync::plan::{desired_object, plan};
use catalog_api::labels::{DISTRO, TARGET};
use catalog_api::validate::{Entry, Rules, validate_file};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

const REV: &str = "1111111111111111111111111111111111111111";
const PATH: &str = "environments/dev/qemu.yaml";

fn entry(path: &str) -> Entry {
    let yaml = "apiVersion: automotive.sdv.cloud.redhat.com/v1alpha1\nkind: CatalogImage\nmetadata:\n  name: qemu\nspec:\n  registryUrl: quay.io/a/b:1\n  tags: [dev]\n  metadata:\n    distro: cs9\n    targets:\n      - name: rpi4\n";
    let (mut entries, diags) = validate_file(path, yaml.as_bytes(), &Rules::default());
    assert!(diags.is_empty(), "{diags:?}");
    entries.remove(0)
}

fn input<'a>(desired: &'a [Entry], empty: &'a BTreeSet<String>) -> PlanInput<'a> {
    PlanInput {
        source: "dev",
        source_namespace: "ns",
        namespace: "ns",
        revision: REV,
        desired,
        broken_paths: empty,
        contested: empty,
        prune: true,
        max_deletions: &IntOrString::Int(10),
        allow_empty: false,
        approved_revision: None,
    }
}

/// The object as the sync wrote it, then changed by `edit` (someone's `kubectl patch`).
fn live(edit: impl FnOnce(&mut CatalogImage)) -> (Vec<Entry>, CatalogImage, CatalogImage) {
    let desired = vec![entry(PATH)];
    let empty = BTreeSet::new();
    let wanted = desired_object(&desired[0], &input(&desired, &empty));
    let mut object = wanted.clone();
    edit(&mut object);
    (desired, wanted, object)
}

#[test]
fn a_patched_tag_list_is_one_field_and_suspected_as_drift() {
    let (desired, wanted, object) = live(|o| o.spec.tags = vec!["production".into()]);
    assert_eq!(changed_fields(&wanted, &object), ["spec.tags"]);
    let empty = BTreeSet::new();
    let live = [Arc::new(LiveImage::from_object(&object))];
    let planned = plan(&input(&desired, &empty), &live);
    assert_eq!(
        suspects(&planned.apply, |_| Some(live[0].clone())),
        [Suspect {
            name: "qemu".into(),
            path: PATH.into(),
            entry: 0,
            written_from: REV.into(),
        }]
    );
}

#[test]
fn nested_spec_fields_and_labels_are_named_by_path() {
    let (_, wanted, object) = live(|o| {
        o.spec.metadata.distro = Some("rhel".into());
        o.spec.registry_url = "quay.io/evil/x:1".into();
        let labels = o.metadata.labels.as_mut().unwrap();
        labels.insert(DISTRO.into(), "rhel".into());
        labels.remove(TARGET);
        labels.insert(
            format!("{}stray", catalog_api::labels::TARGET_PREFIX),
            "1".into(),
        );
        labels.insert("team".into(), "mine".into());
    });
    assert_eq!(
        changed_fields(&wanted, &object),
        [
            "spec.metadata.distro".to_string(),
            "spec.registryUrl".into(),
            format!("metadata.labels[{DISTRO}]"),
            format!("metadata.labels[{TARGET}]"),
            format!(
                "metadata.labels[{}stray]",
                catalog_api::labels::TARGET_PREFIX
            ),
        ],
        "an unmanaged label of someone else's is not the sync's business"
    );
}

#[test]
fn the_revision_annotation_alone_is_no_drift() {
    let (_, wanted, object) = live(|o| {
        let annotations = o.metadata.annotations.as_mut().unwrap();
        annotations.insert(SOURCE_REVISION.into(), "2222".into());
    });
    assert!(changed_fields(&wanted, &object).is_empty());
    let (_, wanted, object) = live(|o| {
        let annotations = o.metadata.annotations.as_mut().unwrap();
        annotations.insert(SOURCE_PATH.into(), "elsewhere.yaml".into());
    });
    assert_eq!(
        changed_fields(&wanted, &object),
        [format!("metadata.annotations[{SOURCE_PATH}]")]
    );
}

#[test]
fn creations_moved_files_and_unannotated_objects_are_not_suspects() {
    let op = |create: bool| ApplyOp {
        name: "qemu".into(),
        path: PATH.into(),
        create,
        entry: 0,
    };
    let (_, _, object) = live(|_| {});
    let here = Arc::new(LiveImage::from_object(&object));
    let only = |object: &Arc<LiveImage>| {
        let object = object.clone();
        move |name: &str| (name == "qemu").then(|| object.clone())
    };
    assert!(suspects(&[op(true)], only(&here)).is_empty());
    assert!(suspects(&[op(false)], |_| None).is_empty());
    let (_, _, moved) = live(|o| {
        let annotations = o.metadata.annotations.as_mut().unwrap();
        annotations.insert(SOURCE_PATH.into(), "environments/dev/old.yaml".into());
    });
    let moved = Arc::new(LiveImage::from_object(&moved));
    assert!(suspects(&[op(false)], only(&moved)).is_empty());
    let (_, _, bare) = live(|o| {
        o.metadata
            .annotations
            .as_mut()
            .unwrap()
            .remove(SOURCE_REVISION);
    });
    let bare = Arc::new(LiveImage::from_object(&bare));
    assert!(suspects(&[op(false)], only(&bare)).is_empty());
    assert_eq!(suspects(&[op(false)], only(&here)).len(), 1);
}

#[test]
fn the_note_names_fields_file_and_the_command_that_changes_them() {
    let tags = note("qemu", PATH, &["spec.tags".into()]);
    assert_eq!(
        tags,
        "changed outside Git and reverted: spec.tags. environments/dev/qemu.yaml in Git owns these fields. To change them, run `caib catalog tag qemu TAG...` or `caib catalog untag qemu TAG...`."
    );
    let other = note("qemu", PATH, &["spec.registryUrl".into()]);
    assert!(
        other.ends_with(
            "To change them, edit environments/dev/qemu.yaml and open a pull request (`caib catalog publish qemu` for a new build)."
        ),
        "{other}"
    );
    let both = note("qemu", PATH, &["spec.tags".into(), "spec.digest".into()]);
    assert!(
        both.contains("reverted: spec.tags, spec.digest. ")
            && both.contains("TAG...`; to change the others, edit environments/dev/qemu.yaml"),
        "{both}"
    );
}

/// A real repository: the file's blob decides, not the commit.
#[test]
fn a_file_is_unchanged_when_its_blob_is_the_same_in_both_commits() {
    let dir = tempfile::tempdir().unwrap();
    let repo = git2::Repository::init_bare(dir.path()).unwrap();
    let commit = |files: &[(&str, &str)], parent: Option<git2::Oid>| {
        let mut tree = repo.treebuilder(None).unwrap();
        for (name, text) in files {
            let blob = repo.blob(text.as_bytes()).unwrap();
            tree.insert(name, blob, 0o100644).unwrap();
        }
        let tree = repo.find_tree(tree.write().unwrap()).unwrap();
        let sig = git2::Signature::now("t", "t@example.com").unwrap();
        let parents: Vec<git2::Commit> = parent
            .map(|p| repo.find_commit(p).unwrap())
            .into_iter()
            .collect();
        let parents: Vec<&git2::Commit> = parents.iter().collect();
        repo.commit(None, &sig, &sig, "c", &tree, &parents).unwrap()
    };
    let first = commit(&[("a.yaml", "a: 1\n"), ("b.yaml", "b: 1\n")], None);
    let second = commit(&[("a.yaml", "a: 1\n"), ("b.yaml", "b: 2\n")], Some(first));
    let (first, second) = (first.to_string(), second.to_string());
    let mut trees = Trees::new(&repo);
    assert!(trees.file_unchanged("a.yaml", &first, &second));
    assert!(!trees.file_unchanged("b.yaml", &first, &second));
    assert!(!trees.file_unchanged("a.yaml", &"0".repeat(40), &second));
    assert!(!trees.file_unchanged("gone.yaml", &first, &second));
    assert!(trees.file_unchanged("b.yaml", &second, &second));
}
