use super::*;

fn image(name: &str, rv: u64, url: &str) -> CatalogImage {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "automotive.sdv.cloud.redhat.com/v1alpha1", "kind": "CatalogImage",
        "metadata": {"name": name, "namespace": "ns", "resourceVersion": rv.to_string(),
            "labels": {"b": "2", "a": "1"},
            "annotations": {LAST_APPLIED: "{...}", "x": "y"}},
        "spec": {"registryUrl": url}
    }))
    .unwrap()
}

#[test]
fn keeps_what_the_planner_reads() {
    let object = image("a", 7, "quay.io/x/a:1");
    let live = LiveImage::from_object(&object);
    assert_eq!(&*live.name, "a");
    assert_eq!(live.resource_version, 7);
    assert_eq!(live.label("a"), Some("1"));
    assert_eq!(live.label("c"), None);
    assert_eq!(live.annotation("x"), Some("y"));
    assert_eq!(live.annotation(LAST_APPLIED), None);
    assert!(live.spec_equals(&object.spec));
    assert!(!live.spec_equals(&image("a", 7, "quay.io/x/a:2").spec));
}

#[test]
fn status_only_changes_are_told_apart_from_drift() {
    let cache = LiveCache::default();
    let mut object = image("a", 1, "quay.io/x/a:1");
    assert_eq!(
        cache.handle(&watcher::Event::Apply(object.clone())),
        Change::Object
    );
    object.metadata.resource_version = Some("2".into());
    object.status = Some(catalog_api::CatalogImageStatus {
        phase: Some(Phase::Available),
        ..Default::default()
    });
    assert_eq!(
        cache.handle(&watcher::Event::Apply(object.clone())),
        Change::Status
    );
    assert_eq!(cache.get("ns", "a").unwrap().phase, Some(Phase::Available));
    object.spec.registry_url = "quay.io/x/a:2".into();
    assert_eq!(
        cache.handle(&watcher::Event::Apply(object.clone())),
        Change::Object
    );
    object
        .metadata
        .labels
        .as_mut()
        .unwrap()
        .insert("a".into(), "edited".into());
    assert_eq!(
        cache.handle(&watcher::Event::Apply(object.clone())),
        Change::Object
    );
    assert_eq!(
        cache.handle(&watcher::Event::Delete(object)),
        Change::Object
    );
}

#[test]
fn a_status_change_updates_the_object_in_place_unless_a_plan_holds_it() {
    let cache = LiveCache::default();
    let mut object = image("a", 1, "quay.io/x/a:1");
    cache.handle(&watcher::Event::Apply(object.clone()));
    let first = Arc::as_ptr(&cache.get("ns", "a").unwrap());
    let status = |object: &mut CatalogImage, rv: u64, phase| {
        object.metadata.resource_version = Some(rv.to_string());
        object.status = Some(catalog_api::CatalogImageStatus {
            phase: Some(phase),
            ..Default::default()
        });
        cache.handle(&watcher::Event::Apply(object.clone()))
    };
    assert_eq!(status(&mut object, 2, Phase::Verifying), Change::Status);
    let updated = cache.get("ns", "a").unwrap();
    assert_eq!(Arc::as_ptr(&updated), first, "updated in place");
    assert_eq!(
        (updated.resource_version, updated.phase),
        (2, Some(Phase::Verifying))
    );

    // `updated` stands for a plan's snapshot: it keeps what it saw.
    assert_eq!(status(&mut object, 3, Phase::Available), Change::Status);
    let newest = cache.get("ns", "a").unwrap();
    assert_eq!(
        (newest.resource_version, newest.phase),
        (3, Some(Phase::Available))
    );
    assert_eq!(
        (updated.resource_version, updated.phase),
        (2, Some(Phase::Verifying))
    );
    assert!(
        Arc::ptr_eq(&newest.annotations, &updated.annotations),
        "sets are shared"
    );
    assert_eq!(*newest, LiveImage::from_object(&object));
}

#[tokio::test]
async fn catch_up_returns_once_the_watch_shows_the_writes() {
    let cache = Arc::new(LiveCache::default());
    cache.handle(&watcher::Event::Init);
    cache.handle(&watcher::Event::InitApply(image(
        "gone",
        3,
        "quay.io/x/g:1",
    )));
    cache.handle(&watcher::Event::InitDone);
    cache.wait_until_ready().await;
    let mut pending = PendingWrites::default();
    pending.push("ns", "a", Write::Applied(5));
    pending.push("ns", "gone", Write::Deleted(3));
    let feeder = {
        let cache = cache.clone();
        tokio::spawn(async move {
            tokio::task::yield_now().await;
            cache.handle(&watcher::Event::Apply(image("a", 5, "quay.io/x/a:1")));
            cache.handle(&watcher::Event::Delete(image("gone", 6, "quay.io/x/g:1")));
        })
    };
    assert!(cache.catch_up(&mut pending, Duration::from_secs(30)).await);
    assert!(cache.get("ns", "gone").is_none());
    assert_eq!(cache.namespace("ns").len(), 1);
    feeder.await.unwrap();
}

#[tokio::test]
async fn catch_up_gives_up_at_the_limit() {
    let cache = LiveCache::default();
    let mut pending = PendingWrites::default();
    pending.push("ns", "never", Write::Applied(9));
    assert!(
        !cache
            .catch_up(&mut pending, Duration::from_millis(20))
            .await
    );
    assert!(pending.queue.is_empty(), "given up writes are forgotten");
}
