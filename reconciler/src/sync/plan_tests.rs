use super::*;
use catalog_api::validate::{Rules, validate_file};

const REV: &str = "1111111111111111111111111111111111111111";

fn entry(name: &str, url: &str) -> Entry {
    let path = format!("env/{name}.yaml");
    let yaml = format!(
        "apiVersion: automotive.sdv.cloud.redhat.com/v1alpha1\nkind: CatalogImage\nmetadata:\n  name: {name}\nspec:\n  registryUrl: {url}\n  metadata:\n    architecture: arm64\n    distro: cs9\n    targets:\n      - name: rpi4\n"
    );
    let (mut entries, diags) = validate_file(&path, yaml.as_bytes(), &Rules::default());
    assert!(diags.is_empty(), "{diags:?}");
    entries.remove(0)
}

fn live_of(entry: &Entry, source: Option<&str>) -> Arc<CatalogImage> {
    live_of_source_in(entry, source, "ns")
}

/// A live object as source `source_namespace/source` applied it (unlabelled when `None`).
fn live_of_source_in(
    entry: &Entry,
    source: Option<&str>,
    source_namespace: &str,
) -> Arc<CatalogImage> {
    let input = PlanInput {
        source: source.unwrap_or("x"),
        source_namespace,
        namespace: "ns",
        revision: "0000000",
        desired: &[],
        broken_paths: &BTreeSet::new(),
        contested: &BTreeSet::new(),
        prune: true,
        max_deletions: &IntOrString::Int(10),
        allow_empty: false,
        approved_revision: None,
    };
    let mut object = desired_object(entry, &input);
    if source.is_none() {
        object
            .metadata
            .labels
            .as_mut()
            .unwrap()
            .remove(CATALOG_SOURCE);
    }
    Arc::new(object)
}

struct Fixture {
    desired: Vec<Entry>,
    broken: BTreeSet<String>,
    contested: BTreeSet<String>,
    max: IntOrString,
    prune: bool,
    allow_empty: bool,
    approved: Option<String>,
    source_namespace: &'static str,
}

impl Fixture {
    fn new(desired: Vec<Entry>) -> Fixture {
        Fixture {
            desired,
            broken: BTreeSet::new(),
            contested: BTreeSet::new(),
            max: IntOrString::Int(10),
            prune: true,
            allow_empty: false,
            approved: None,
            source_namespace: "ns",
        }
    }
    fn input(&self) -> PlanInput<'_> {
        PlanInput {
            source: "dev",
            source_namespace: self.source_namespace,
            namespace: "ns",
            revision: REV,
            desired: &self.desired,
            broken_paths: &self.broken,
            contested: &self.contested,
            prune: self.prune,
            max_deletions: &self.max,
            allow_empty: self.allow_empty,
            approved_revision: self.approved.as_deref(),
        }
    }

    fn plan(&self, live: &[Arc<CatalogImage>]) -> Plan {
        let live: Vec<Arc<LiveImage>> = live
            .iter()
            .map(|o| Arc::new(LiveImage::from_object(o)))
            .collect();
        plan(&self.input(), &live)
    }
}

#[test]
fn initial_sync_creates_everything_with_labels_and_annotations() {
    let f = Fixture::new(vec![
        entry("a", "quay.io/x/a:1"),
        entry("b", "quay.io/x/b:1"),
    ]);
    let plan = f.plan(&[]);
    assert_eq!(plan.creates(), 2);
    let object = &desired_object(&f.desired[plan.apply[0].entry], &f.input());
    let labels = object.metadata.labels.as_ref().unwrap();
    assert_eq!(labels[CATALOG_SOURCE], "dev");
    assert_eq!(labels[labels::ARCHITECTURE], "arm64");
    let annotations = object.metadata.annotations.as_ref().unwrap();
    assert_eq!(annotations[SOURCE_REVISION], REV);
    assert_eq!(annotations[SOURCE_PATH], "env/a.yaml");
    assert_eq!(annotations[SOURCE_NAMESPACE], "ns");
    assert_eq!(object.metadata.namespace.as_deref(), Some("ns"));
    assert_eq!(plan.managed, 2);
}

#[test]
fn unchanged_entries_are_not_written_even_with_an_older_revision() {
    let a = entry("a", "quay.io/x/a:1");
    let b = entry("b", "quay.io/x/b:1");
    let live = vec![live_of(&a, Some("dev")), live_of(&b, Some("dev"))];
    let changed = entry("b", "quay.io/x/b:2");
    let plan = Fixture::new(vec![a, changed]).plan(&live);
    assert_eq!(plan.unchanged, vec!["a"]);
    assert_eq!(plan.updates(), 1);
    assert_eq!(plan.apply[0].name, "b");
    assert!(plan.prune.is_empty());
}

#[test]
fn drift_is_detected_in_spec_labels_and_lingering_managed_labels() {
    let a = entry("a", "quay.io/x/a:1");
    let mut edited = (*live_of(&a, Some("dev"))).clone();
    edited.spec.registry_url = "quay.io/evil/a:1".into();
    assert_eq!(
        Fixture::new(vec![a.clone()])
            .plan(&[Arc::new(edited)])
            .updates(),
        1
    );
    let mut extra = (*live_of(&a, Some("dev"))).clone();
    extra.metadata.labels.as_mut().unwrap().insert(
        "target.automotive.sdv.cloud.redhat.com/old".into(),
        "true".into(),
    );
    assert_eq!(
        Fixture::new(vec![a.clone()])
            .plan(&[Arc::new(extra)])
            .updates(),
        1
    );
    let mut foreign = (*live_of(&a, Some("dev"))).clone();
    foreign
        .metadata
        .labels
        .as_mut()
        .unwrap()
        .insert("team".into(), "x".into());
    assert_eq!(
        Fixture::new(vec![a]).plan(&[Arc::new(foreign)]).updates(),
        0
    );
}

#[test]
fn removed_files_are_pruned_only_when_labelled_with_this_source() {
    let a = entry("a", "quay.io/x/a:1");
    let gone = entry("gone", "quay.io/x/g:1");
    let other = entry("other", "quay.io/x/o:1");
    let manual = entry("manual", "quay.io/x/m:1");
    let live = vec![
        live_of(&a, Some("dev")),
        live_of(&gone, Some("dev")),
        live_of(&other, Some("staging")),
        live_of(&manual, None),
    ];
    let plan = Fixture::new(vec![a]).plan(&live);
    assert_eq!(plan.prune, vec!["gone"]);
    assert!(plan.apply.is_empty());
}

#[test]
fn prune_false_keeps_removed_entries() {
    let a = entry("a", "quay.io/x/a:1");
    let gone = entry("gone", "quay.io/x/g:1");
    let mut f = Fixture::new(vec![a.clone()]);
    f.prune = false;
    let plan = f.plan(&[live_of(&a, Some("dev")), live_of(&gone, Some("dev"))]);
    assert!(plan.prune.is_empty());
    assert_eq!(plan.managed, 2);
}

#[test]
fn a_broken_file_keeps_its_previous_object() {
    let a = entry("a", "quay.io/x/a:1");
    let broken = entry("broken", "quay.io/x/b:1");
    let mut f = Fixture::new(vec![a.clone()]);
    f.broken.insert("env/broken.yaml".into());
    let plan = f.plan(&[live_of(&a, Some("dev")), live_of(&broken, Some("dev"))]);
    assert!(plan.prune.is_empty());
    assert_eq!(plan.kept_broken, vec!["broken"]);
    assert!(plan.apply.is_empty());
    assert_eq!(plan.managed, 2, "the kept entry is still managed");
}

#[test]
fn unlabelled_or_foreign_objects_are_conflicts_never_taken_over() {
    let a = entry("a", "quay.io/x/a:1");
    let b = entry("b", "quay.io/x/b:1");
    let live = vec![
        live_of(&entry("a", "quay.io/other/a:9"), None),
        live_of(&b, Some("staging")),
    ];
    let plan = Fixture::new(vec![a, b]).plan(&live);
    assert!(plan.apply.is_empty());
    assert!(plan.prune.is_empty());
    assert_eq!(plan.conflicts.len(), 2);
    assert!(plan.conflicts[0].message.contains("never taken over"));
    let adopt = plan.adopt.as_deref().unwrap_or_default();
    assert!(
        adopt.contains("label it automotive.sdv.cloud.redhat.com/catalog-source=dev and annotate it automotive.sdv.cloud.redhat.com/source-namespace=ns"),
        "{adopt}"
    );
    assert!(
        plan.conflicts[1]
            .message
            .contains("CatalogSource ns/staging")
    );
    assert_eq!(plan.managed, 0);
}

#[test]
fn names_claimed_by_two_sources_are_left_alone_and_reported() {
    let a = entry("a", "quay.io/x/a:2");
    let mut f = Fixture::new(vec![a.clone()]);
    f.contested.insert("a".into());
    let plan = f.plan(&[live_of(&entry("a", "quay.io/x/a:1"), Some("dev"))]);
    assert!(plan.apply.is_empty());
    assert_eq!(plan.conflicts.len(), 1);
    assert_eq!(plan.managed, 1);
    assert!(f.plan(&[]).apply.is_empty());
}

#[test]
fn deletions_over_budget_wait_for_approval() {
    let entries: Vec<Entry> = (0..20)
        .map(|i| entry(&format!("e{i}"), "quay.io/x/a:1"))
        .collect();
    let live: Vec<_> = entries.iter().map(|e| live_of(e, Some("dev"))).collect();
    let mut f = Fixture::new(entries[..5].to_vec());
    f.desired.push(entry("new", "quay.io/x/n:1"));
    let plan = f.plan(&live);
    let blocked = plan.blocked.clone().unwrap();
    assert_eq!(blocked.reason, "DeletionBudgetExceeded");
    assert!(
        blocked
            .message
            .contains("delete 15 entries, over maxDeletions (10)")
    );
    assert!(
        blocked
            .message
            .contains(&format!("approve-deletions={REV}"))
    );
    assert!(plan.prune.is_empty());
    assert_eq!(plan.creates(), 1, "the rest of the revision still applies");
    assert_eq!(plan.managed, 21);
    f.approved = Some(REV[..8].into());
    let refused = f.plan(&live).blocked.expect("a prefix does not approve");
    assert!(
        refused.message.contains(&format!(
            "(approve-deletions \"{}\" is not a full commit id; approve with: kubectl -n {} annotate catalogsource dev {}={REV} --overwrite)",
            &REV[..8],
            f.source_namespace,
            labels::APPROVE_DELETIONS
        )),
        "{}",
        refused.message
    );
    f.approved = Some(REV.into());
    let plan = f.plan(&live);
    assert!(plan.blocked.is_none());
    assert_eq!(plan.prune.len(), 15);
    f.approved = Some("2".repeat(40));
    let other = f.plan(&live).blocked.expect("approval is per revision");
    assert!(
        other.message.contains("names another revision"),
        "{}",
        other.message
    );
}

#[test]
fn percentage_budgets() {
    assert_eq!(deletion_budget(&IntOrString::String("20%".into()), 50), 10);
    assert_eq!(deletion_budget(&IntOrString::String("100%".into()), 7), 7);
    assert_eq!(deletion_budget(&IntOrString::String("3".into()), 7), 3);
    assert_eq!(deletion_budget(&IntOrString::Int(0), 7), 0);
    let entries: Vec<Entry> = (0..10)
        .map(|i| entry(&format!("e{i}"), "quay.io/x/a:1"))
        .collect();
    let live: Vec<_> = entries.iter().map(|e| live_of(e, Some("dev"))).collect();
    let mut f = Fixture::new(entries[..8].to_vec());
    f.max = IntOrString::String("20%".into());
    assert_eq!(f.plan(&live).prune.len(), 2);
    f.desired.truncate(7);
    assert!(f.plan(&live).blocked.is_some());
}

#[test]
fn emptying_a_source_needs_allow_empty_or_approval() {
    let a = entry("a", "quay.io/x/a:1");
    let live = vec![live_of(&a, Some("dev"))];
    let mut f = Fixture::new(vec![]);
    let plan = f.plan(&live);
    assert_eq!(
        plan.blocked.as_ref().unwrap().reason,
        "EmptyRevisionBlocked"
    );
    assert!(plan.prune.is_empty());
    f.allow_empty = true;
    assert_eq!(f.plan(&live).prune, vec!["a"]);
}

#[test]
fn a_same_named_source_of_another_namespace_is_another_owner() {
    let a = entry("a", "quay.io/x/a:1");
    let theirs = entry("theirs", "quay.io/x/t:1");
    // Objects of source "dev" in namespace "other" (annotated), both in our target namespace.
    let live = [
        live_of_source_in(&a, Some("dev"), "other"),
        live_of_source_in(&theirs, Some("dev"), "other"),
    ];
    let plan = Fixture::new(vec![a.clone()]).plan(&live);
    assert!(plan.prune.is_empty(), "{plan:?}");
    assert!(plan.apply.is_empty());
    assert_eq!(plan.conflicts.len(), 1);
    assert!(
        plan.conflicts[0]
            .message
            .contains("CatalogSource other/dev"),
        "{:?}",
        plan.conflicts
    );

    // An object carrying only the label (hand-made, or left by another tool) is nobody's:
    // a conflict for its entry, never updated, adopted or pruned.
    let mut legacy = (*live_of(&a, Some("dev"))).clone();
    legacy
        .metadata
        .annotations
        .as_mut()
        .unwrap()
        .remove(SOURCE_NAMESPACE);
    let gone = entry("gone", "quay.io/x/g:1");
    let mut legacy_gone = (*live_of(&gone, Some("dev"))).clone();
    legacy_gone
        .metadata
        .annotations
        .as_mut()
        .unwrap()
        .remove(SOURCE_NAMESPACE);
    let plan = Fixture::new(vec![a]).plan(&[Arc::new(legacy), Arc::new(legacy_gone)]);
    assert!(plan.prune.is_empty(), "{plan:?}");
    assert!(plan.apply.is_empty(), "{plan:?}");
    assert_eq!(plan.conflicts.len(), 1);
    assert!(
        plan.conflicts[0]
            .message
            .contains("but no automotive.sdv.cloud.redhat.com/source-namespace annotation"),
        "{:?}",
        plan.conflicts
    );
    assert_eq!(plan.managed, 0);
}

#[test]
fn fetching_follows_requests_spec_changes_the_interval_and_backoff() {
    let minute = std::time::Duration::from_secs(60);
    let synced = FetchState {
        fetched: true,
        since_last: Some(std::time::Duration::from_secs(5)),
        interval: minute,
        ..Default::default()
    };
    assert!(
        !fetch_due(&synced),
        "drift and status events plan on the fetched revision"
    );
    assert!(fetch_due(&FetchState {
        requested: true,
        ..synced.clone()
    }));
    assert!(fetch_due(&FetchState {
        spec_changed: true,
        ..synced.clone()
    }));
    assert!(fetch_due(&FetchState {
        since_last: Some(minute),
        ..synced.clone()
    }));
    let never_fetched = FetchState {
        interval: minute,
        ..Default::default()
    };
    assert!(fetch_due(&never_fetched), "the first sync fetches");
    let failing = FetchState {
        backing_off: true,
        ..never_fetched
    };
    assert!(
        !fetch_due(&failing),
        "a failing remote waits for its backoff"
    );
    assert!(fetch_due(&FetchState {
        requested: true,
        ..failing.clone()
    }));
    assert!(fetch_due(&FetchState {
        spec_changed: true,
        ..failing
    }));
}
