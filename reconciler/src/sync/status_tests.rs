use super::*;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

#[test]
fn conditions_keep_their_transition_time_while_status_is_unchanged() {
    let mut c = Vec::new();
    set_condition(&mut c, "Ready", true, "Synced", "ok", Some(1));
    let first = c[0].last_transition_time.clone();
    std::thread::sleep(std::time::Duration::from_millis(2));
    set_condition(&mut c, "Ready", true, "Synced", "ok again", Some(1));
    assert_eq!(c[0].last_transition_time, first);
    set_condition(&mut c, "Ready", false, "FetchFailed", "x", Some(1));
    assert_ne!(c[0].last_transition_time, first);
    assert_eq!(c.len(), 1);
}

#[test]
fn history_is_bounded_newest_first() {
    let mut h = Vec::new();
    for i in 0..7 {
        push_history(
            &mut h,
            SyncRecord {
                revision: i.to_string(),
                ..Default::default()
            },
        );
    }
    assert_eq!(h.len(), HISTORY);
    assert_eq!(h[0].revision, "6");
}

#[test]
fn fetch_failures_stall_the_source_after_five_in_a_row() {
    let status_of = |c: &[Condition], t: &str| {
        c.iter()
            .find(|c| c.type_ == t)
            .map(|c| (c.status.clone(), c.reason.clone()))
            .unwrap()
    };
    let mut c = Vec::new();
    fetch_failed(&mut c, "fetching git://x timed out after 2s", 1, Some(1));
    assert_eq!(
        status_of(&c, "Ready"),
        ("False".into(), "FetchFailed".into())
    );
    assert_eq!(
        status_of(&c, "Stalled"),
        ("False".into(), "Progressing".into())
    );
    fetch_failed(&mut c, "fetching git://x timed out after 2s", 5, Some(1));
    assert_eq!(
        status_of(&c, "Stalled"),
        ("True".into(), "FetchFailing".into())
    );
    let ready = c.iter().find(|c| c.type_ == "Ready").unwrap();
    assert!(ready.message.contains("stays applied"), "{}", ready.message);
}

/// The sync's status patch: set fields as they serialize, cleared ones as `null`, the
/// retired `inventory` cleared, and `status.previews` (the preview runner's) never named.
#[test]
fn cleared_fields_are_nulled_set_ones_sent_as_they_serialize_and_previews_left_alone() {
    use crate::merge_patch::status as patch;
    let preview = |number| catalog_api::source::PreviewSummary {
        number,
        ..Default::default()
    };
    let status = CatalogSourceStatus {
        observed_generation: Some(3),
        invalid_entries_total: 150,
        conflicts_total: 2,
        webhook_path: Some("/hook/ns/dev".into()),
        previews: vec![preview(7)],
        ..Default::default()
    };
    let sent = patch(Some(&CatalogSourceStatus::default()), &status, PATCH_FIELDS).unwrap();
    let mut expected = serde_json::to_value(&status).unwrap();
    expected.as_object_mut().unwrap().remove("previews");
    expected["inventory"] = serde_json::Value::Null;
    assert_eq!(sent, serde_json::json!({ "status": expected }));

    let cleared = CatalogSourceStatus {
        observed_generation: Some(3),
        previews: vec![preview(8)],
        ..Default::default()
    };
    assert_eq!(
        patch(Some(&status), &cleared, PATCH_FIELDS).unwrap(),
        serde_json::json!({"status": {
            "invalidEntriesTotal": null,
            "conflictsTotal": null,
            "webhookPath": null,
            "inventory": null,
        }})
    );
    assert_eq!(
        patch(Some(&status), &status, PATCH_FIELDS),
        None,
        "an unchanged status is no write"
    );
}

/// The sizes of issue #18: a 100,000-entry source of which 5,000 files are invalid (and a few
/// hundred names conflict) keeps its whole CatalogSource object under 64 KiB, listing the
/// first 100 problems and counting the rest.
#[test]
fn a_100k_entry_source_with_5000_invalid_files_stays_under_64_kib() {
    use super::super::plan::{PlanInput, desired_object, plan};
    use std::collections::BTreeSet;

    const ENTRIES: usize = 100_000;
    const INVALID: usize = 5_000;
    const CONFLICTS: usize = 300;
    let path = production_path;
    let all = production_entries(ENTRIES);
    let (broken, valid) = all.split_at(INVALID);
    let revision = "4f2a9c0d1e2b3a4c5d6e7f8091a2b3c4d5e6f708";
    let broken_paths: BTreeSet<String> = broken.iter().map(|e| e.path.clone()).collect();
    let (contested, max_deletions) = (BTreeSet::new(), Default::default());
    let input = PlanInput {
        source: "production",
        source_namespace: "catalog-production",
        namespace: "catalog-production",
        revision,
        desired: valid,
        broken_paths: &broken_paths,
        contested: &contested,
        prune: true,
        max_deletions: &max_deletions,
        allow_empty: false,
        approved_revision: None,
    };
    // Everything was applied by an earlier revision, except CONFLICTS names someone else made.
    let live: Vec<Arc<LiveImage>> = all
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let mut object = desired_object(entry, &input);
            if i >= ENTRIES - CONFLICTS {
                object.metadata.labels = None;
            }
            Arc::new(LiveImage::from_object(&object))
        })
        .collect();
    let plan = plan(&input, &live);
    assert_eq!(plan.kept_broken.len(), INVALID);
    assert_eq!(plan.conflicts.len(), CONFLICTS);
    let quote = "x".repeat(400);
    let diagnostics: Vec<Diagnostic> = broken
        .iter()
        .rev()
        .map(|e| {
            let message = format!("spec.registryUrl: invalid image reference {quote:?}");
            Diagnostic::new(e.path.clone(), 6, 16, message)
        })
        .collect();

    let mut status = CatalogSourceStatus {
        observed_generation: Some(7),
        last_fetched_revision: Some(revision.into()),
        last_applied_revision: Some(revision.into()),
        last_attempted_revision: Some(revision.into()),
        last_handled_reconcile_at: Some("2026-01-04T14:00:00Z".into()),
        webhook_path: Some("/hook/catalog-production/production".into()),
        ..Default::default()
    };
    let managed: Vec<Arc<LiveImage>> = live
        .iter()
        .filter(|o| o.managed_by("catalog-production", "production"))
        .cloned()
        .collect();
    set_entries(
        &mut status,
        &EntryReport {
            diagnostics: &diagnostics,
            plan: &plan,
            managed: &managed,
            applied: plan.unchanged.len(),
            invalid_files: INVALID,
        },
    );
    fill_conditions_and_history(&mut status, &plan, &diagnostics, revision, ENTRIES);

    assert_eq!(status.invalid_entries.len(), MAX_LISTED);
    assert_eq!(status.invalid_entries_total, INVALID as u32);
    assert_eq!(status.invalid_entries[0].path, path(0), "sorted by path");
    assert!(status.invalid_entries[0].message.ends_with('…'));
    assert_eq!(status.conflicts.len(), MAX_LISTED);
    assert_eq!(status.conflicts_total, CONFLICTS as u32);
    let summary = status.summary.clone().unwrap();
    assert_eq!(
        (summary.entries, summary.invalid),
        ((ENTRIES - CONFLICTS) as i32, INVALID as i32)
    );
    let mut source: catalog_api::CatalogSource = serde_json::from_value(serde_json::json!({
        "apiVersion": "automotive.sdv.cloud.redhat.com/v1alpha1", "kind": "CatalogSource",
        "metadata": {"name": "production", "namespace": "catalog-production",
            "finalizers": ["automotive.sdv.cloud.redhat.com/prune"]},
        "spec": {"url": "https://git.example.com/platform/automotive-image-catalog.git",
            "path": "environments/production", "webhook": {"secretRef": {"name": "hook"}}}
    }))
    .unwrap();
    source.status = Some(status);
    let bytes = serde_json::to_vec(&source).unwrap().len();
    eprintln!("the CatalogSource is {bytes} bytes");
    assert!(bytes < 64 * 1024, "the CatalogSource is {bytes} bytes");
}

fn production_path(i: usize) -> String {
    format!("environments/production/image-{i:06}.yaml")
}

/// `n` valid entries named `image-NNNNNN`, one per file.
fn production_entries(n: usize) -> Vec<catalog_api::validate::Entry> {
    let template: catalog_api::CatalogImage = serde_json::from_value(serde_json::json!({
        "apiVersion": "automotive.sdv.cloud.redhat.com/v1alpha1", "kind": "CatalogImage",
        "metadata": {"name": "x"},
        "spec": {"registryUrl": "quay.io/centos-automotive/autosd:cs9-nightly", "tags": ["nightly"],
            "metadata": {"architecture": "arm64", "distro": "cs9", "targets": [{"name": "rpi4"}]}}
    }))
    .unwrap();
    (0..n)
        .map(|i| {
            let mut image = template.clone();
            image.metadata.name = Some(format!("image-{i:06}"));
            catalog_api::validate::Entry {
                path: production_path(i),
                line: 4,
                image: catalog_api::declared::DeclaredImage::of(image),
            }
        })
        .collect()
}

/// Every condition a status carries and a full history, with the longest messages the plan
/// gives: the worst case for the object's size.
fn fill_conditions_and_history(
    status: &mut CatalogSourceStatus,
    plan: &super::super::plan::Plan,
    diagnostics: &[Diagnostic],
    revision: &str,
    entries: usize,
) {
    let (ready, reason, message) = ready_condition(&[], plan, diagnostics, revision);
    for type_ in ["Ready", "Reconciling", "Stalled", "SourceVerified"] {
        set_condition(
            &mut status.conditions,
            type_,
            ready,
            reason,
            &message,
            Some(7),
        );
    }
    for _ in 0..HISTORY {
        push_history(
            &mut status.history,
            SyncRecord {
                revision: revision.into(),
                time: Some(Time(jiff::Timestamp::now())),
                created: entries as i32,
                duration_ms: 25_000,
                ..Default::default()
            },
        );
    }
}
