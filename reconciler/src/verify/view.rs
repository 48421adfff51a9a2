//! What the verification controller keeps of each CatalogImage between verifications.
//!
//! The controller's watch cache holds an [`ImageView`] per image: enough to decide when the
//! image is due ([`super::plan::due`]), to find the images of a changed Secret or of a
//! registry host, and to count phases for the metrics. The whole object is read (one GET)
//! only when a verification runs. A whole CatalogImage costs about 3.8 KiB in the cache
//! (heaptrack, bench-sync at 10,000 images), so 100,000 images cost 380 MiB; a view costs a
//! fraction of that.

use std::borrow::Cow;

use catalog_api::image::Phase;
use catalog_api::labels::VERIFY_REQUESTED_AT;
use catalog_api::reference::ImageReference;
use catalog_api::{CatalogImage, CatalogImageStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::Resource;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use serde::{Deserialize, Serialize};

/// The cached part of a CatalogImage (see the module doc).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct ImageView {
    /// Name, namespace, generation, deletionTimestamp and, of the annotations, only
    /// verify-requested-at: neither uid nor resourceVersion, which kube-runtime would copy.
    pub metadata: ObjectMeta,
    /// The object's uid. Kept beside `metadata`, not in it: kube-runtime copies a uid found in
    /// `metadata` into every reference it makes to the view (its cache's key, each scheduled
    /// verification), 48 bytes each time.
    pub uid: Option<Box<str>>,
    /// `host[:port]` of `spec.registryUrl`; `None` when it does not parse.
    pub registry_host: Option<Box<str>>,
    /// `spec.authSecretRef.name`.
    pub secret: Option<Box<str>>,
    /// `spec.verificationInterval`.
    pub interval: Box<str>,
    /// The status fields the schedule depends on; `None` without a status.
    pub schedule: Option<Schedule>,
    /// Whether the change that brought this view may start a verification
    /// ([`mark_triggers`]).
    pub triggers: bool,
}

/// The status fields [`super::plan::due`] reads.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Schedule {
    pub phase: Option<Phase>,
    pub observed_generation: Option<i64>,
    /// `lastVerificationTime` in Unix milliseconds, what [`super::plan::due`] computes with:
    /// 8 bytes fewer than a `Time`, which keeps a view with its `Arc` in the allocator's
    /// 512-byte size class instead of the 640-byte one (12.8 MB at 100,000 images).
    pub last_verified_ms: Option<i64>,
    pub verification_failures: Option<i32>,
    pub last_handled_verify_at: Option<Box<str>>,
}

impl ImageView {
    pub fn of(image: &CatalogImage) -> ImageView {
        let meta = &image.metadata;
        let requested = meta
            .annotations
            .as_ref()
            .and_then(|a| a.get(VERIFY_REQUESTED_AT))
            .map(|v| [(VERIFY_REQUESTED_AT.to_string(), v.clone())].into());
        let spec = &image.spec;
        ImageView {
            metadata: ObjectMeta {
                name: meta.name.clone(),
                namespace: meta.namespace.clone(),
                generation: meta.generation,
                deletion_timestamp: meta.deletion_timestamp.clone(),
                annotations: requested,
                ..Default::default()
            },
            uid: meta.uid.as_deref().map(Into::into),
            registry_host: ImageReference::parse(&spec.registry_url)
                .ok()
                .map(|r| r.registry().into()),
            secret: spec
                .auth_secret_ref
                .as_ref()
                .map(|r| r.name.as_str().into()),
            interval: spec.verification_interval.as_str().into(),
            schedule: image.status.as_ref().map(|s| Schedule {
                phase: s.phase,
                observed_generation: s.observed_generation,
                last_verified_ms: s
                    .last_verification_time
                    .as_ref()
                    .map(|t| t.0.as_millisecond()),
                verification_failures: s.verification_failures,
                last_handled_verify_at: s.last_handled_verify_at.as_deref().map(Into::into),
            }),
            triggers: false,
        }
    }

    /// What may start a verification: the object's identity, its generation (spec) and the
    /// verify request annotation. Status, labels and other annotations are deliberately not
    /// part of it: the verifier's own status writes must not start another verification.
    fn trigger(&self) -> (Option<&str>, Option<i64>, Option<&str>) {
        (
            self.uid.as_deref(),
            self.metadata.generation,
            self.verify_requested(),
        )
    }

    /// The verify-requested-at annotation.
    pub fn verify_requested(&self) -> Option<&str> {
        let annotations = self.metadata.annotations.as_ref()?;
        annotations.get(VERIFY_REQUESTED_AT).map(String::as_str)
    }

    /// A status carrying only the [`Schedule`] fields, for [`super::plan::due`].
    pub fn status(&self) -> Option<CatalogImageStatus> {
        let s = self.schedule.as_ref()?;
        Some(CatalogImageStatus {
            phase: s.phase,
            observed_generation: s.observed_generation,
            last_verification_time: s
                .last_verified_ms
                .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
                .map(Time),
            verification_failures: s.verification_failures,
            last_handled_verify_at: s.last_handled_verify_at.as_deref().map(str::to_string),
            ..Default::default()
        })
    }

    pub fn phase(&self) -> Phase {
        self.schedule
            .as_ref()
            .and_then(|s| s.phase)
            .unwrap_or(Phase::Pending)
    }
}

/// The watch's events, each object replaced by its view.
pub fn event(event: watcher::Event<CatalogImage>) -> watcher::Event<ImageView> {
    use watcher::Event::*;
    match event {
        Apply(o) => Apply(ImageView::of(&o)),
        Delete(o) => Delete(ImageView::of(&o)),
        Init => Init,
        InitApply(o) => InitApply(ImageView::of(&o)),
        InitDone => InitDone,
    }
}

/// Marks an applied view with whether it may start a verification: its trigger differs from
/// the cached view's, or there is none. The cache is read before the event reaches it. This
/// does what kube-runtime's predicate filter does without its map of every object's key
/// (about 20 MB at 100,000 images).
pub fn mark_triggers(
    cache: &Store<ImageView>,
    mut event: watcher::Event<ImageView>,
) -> watcher::Event<ImageView> {
    if let watcher::Event::Apply(view) | watcher::Event::InitApply(view) = &mut event {
        let cached = cache.get(&ObjectRef::from_obj(view));
        view.triggers = cached.is_none_or(|cached| cached.trigger() != view.trigger());
    }
    event
}

/// A view is a CatalogImage for the controller's store and requests (same kind and API).
impl Resource for ImageView {
    type DynamicType = ();
    type Scope = k8s_openapi::NamespaceResourceScope;

    fn kind(dt: &()) -> Cow<'_, str> {
        CatalogImage::kind(dt)
    }
    fn group(dt: &()) -> Cow<'_, str> {
        CatalogImage::group(dt)
    }
    fn version(dt: &()) -> Cow<'_, str> {
        CatalogImage::version(dt)
    }
    fn plural(dt: &()) -> Cow<'_, str> {
        CatalogImage::plural(dt)
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use catalog_api::CatalogImageSpec;

    #[test]
    fn a_cached_view_fits_the_allocators_512_byte_class() {
        // One per image in the watch cache, behind an `Arc` (two counts, 16 bytes): at
        // 100,000 images any byte over the class boundary costs 12.8 MB (the next class is 640).
        assert!(
            std::mem::size_of::<ImageView>() + 16 <= 512,
            "ImageView is {} bytes",
            std::mem::size_of::<ImageView>()
        );
    }

    #[test]
    fn a_view_keeps_what_the_schedule_and_the_indexes_need() {
        let mut image = CatalogImage::new(
            "a",
            CatalogImageSpec {
                registry_url: "registry.example:5000/os/a:v1".into(),
                verification_interval: "1h".into(),
                ..Default::default()
            },
        );
        image.metadata.namespace = Some("dev".into());
        image.metadata.generation = Some(3);
        image.metadata.uid = Some("3f0a7c2e-5b1d-4e8f-9a6c-2d4b8e1f0c93".into());
        image.metadata.resource_version = Some("41".into());
        image.metadata.annotations = Some(
            [
                (VERIFY_REQUESTED_AT.to_string(), "t1".to_string()),
                ("other".to_string(), "x".repeat(1000)),
            ]
            .into(),
        );
        image.status = Some(CatalogImageStatus {
            phase: Some(Phase::Available),
            observed_generation: Some(3),
            verification_failures: Some(0),
            last_handled_verify_at: Some("t0".into()),
            last_verification_time: Some(Time("2026-12-01T10:00:00Z".parse().unwrap())),
            ..Default::default()
        });
        let view = ImageView::of(&image);
        assert_eq!(view.registry_host.as_deref(), Some("registry.example:5000"));
        assert_eq!(&*view.interval, "1h");
        assert_eq!(view.uid.as_deref(), image.metadata.uid.as_deref());
        assert_eq!(
            (&view.metadata.uid, &view.metadata.resource_version),
            (&None, &None),
            "nothing for kube-runtime to copy into its references"
        );
        assert_eq!(view.phase(), Phase::Available);
        assert_eq!(
            view.metadata.annotations.as_ref().map(|a| a.len()),
            Some(1),
            "only verify-requested-at is kept"
        );
        let status = view.status().unwrap();
        assert_eq!(status.observed_generation, Some(3));
        assert_eq!(
            status.last_verification_time,
            image.status.as_ref().unwrap().last_verification_time
        );
        assert_eq!(status.last_handled_verify_at.as_deref(), Some("t0"));
        assert_eq!(
            ImageView::kind(&()),
            CatalogImage::kind(&()),
            "requests and ObjectRefs name CatalogImages"
        );
    }

    fn view(uid: &str, generation: i64, requested: Option<&str>, phase: Phase) -> ImageView {
        let mut image = CatalogImage::new("a", CatalogImageSpec::default());
        image.metadata.namespace = Some("dev".into());
        image.metadata.uid = Some(uid.into());
        image.metadata.generation = Some(generation);
        image.metadata.annotations =
            requested.map(|v| [(VERIFY_REQUESTED_AT.to_string(), v.to_string())].into());
        image.status = Some(CatalogImageStatus {
            phase: Some(phase),
            ..Default::default()
        });
        ImageView::of(&image)
    }

    fn triggers(cache: &Store<ImageView>, view: ImageView) -> bool {
        match mark_triggers(cache, watcher::Event::Apply(view)) {
            watcher::Event::Apply(view) => view.triggers,
            _ => unreachable!("an Apply stays an Apply"),
        }
    }

    #[test]
    fn only_identity_generation_and_a_verify_request_trigger_a_verification() {
        let (cache, mut writer) = kube::runtime::reflector::store();
        assert!(triggers(&cache, view("u1", 1, None, Phase::Pending)), "new");
        writer.apply_watcher_event(&watcher::Event::Apply(view("u1", 1, None, Phase::Pending)));
        assert!(
            !triggers(&cache, view("u1", 1, None, Phase::Available)),
            "the verifier's own status write"
        );
        assert!(
            triggers(&cache, view("u1", 2, None, Phase::Pending)),
            "spec"
        );
        assert!(
            triggers(&cache, view("u1", 1, Some("t1"), Phase::Pending)),
            "request"
        );
        assert!(
            triggers(&cache, view("u2", 1, None, Phase::Pending)),
            "re-created"
        );
        let relisted = mark_triggers(
            &cache,
            watcher::Event::InitApply(view("u1", 1, None, Phase::Failed)),
        );
        assert!(
            matches!(relisted, watcher::Event::InitApply(v) if !v.triggers),
            "a relist of an unchanged image"
        );
    }
}
