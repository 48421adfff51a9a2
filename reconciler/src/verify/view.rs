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
use kube::runtime::watcher;
use serde::{Deserialize, Serialize};

/// The cached part of a CatalogImage (see the module doc).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct ImageView {
    /// Name, namespace, uid, resourceVersion, generation, deletionTimestamp and, of the
    /// annotations, only verify-requested-at.
    pub metadata: ObjectMeta,
    /// `host[:port]` of `spec.registryUrl`; `None` when it does not parse.
    pub registry_host: Option<Box<str>>,
    /// `spec.authSecretRef.name`.
    pub secret: Option<Box<str>>,
    /// `spec.verificationInterval`.
    pub interval: Box<str>,
    /// The status fields the schedule depends on; `None` without a status.
    pub schedule: Option<Schedule>,
}

/// The status fields [`super::plan::due`] reads.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Schedule {
    pub phase: Option<Phase>,
    pub observed_generation: Option<i64>,
    pub last_verification_time: Option<Time>,
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
                uid: meta.uid.clone(),
                resource_version: meta.resource_version.clone(),
                generation: meta.generation,
                deletion_timestamp: meta.deletion_timestamp.clone(),
                annotations: requested,
                ..Default::default()
            },
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
                last_verification_time: s.last_verification_time.clone(),
                verification_failures: s.verification_failures,
                last_handled_verify_at: s.last_handled_verify_at.as_deref().map(Into::into),
            }),
        }
    }

    /// A status carrying only the [`Schedule`] fields, for [`super::plan::due`].
    pub fn status(&self) -> Option<CatalogImageStatus> {
        let s = self.schedule.as_ref()?;
        Some(CatalogImageStatus {
            phase: s.phase,
            observed_generation: s.observed_generation,
            last_verification_time: s.last_verification_time.clone(),
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
            ..Default::default()
        });
        let view = ImageView::of(&image);
        assert_eq!(view.registry_host.as_deref(), Some("registry.example:5000"));
        assert_eq!(&*view.interval, "1h");
        assert_eq!(view.phase(), Phase::Available);
        assert_eq!(
            view.metadata.annotations.as_ref().map(|a| a.len()),
            Some(1),
            "only verify-requested-at is kept"
        );
        let status = view.status().unwrap();
        assert_eq!(status.observed_generation, Some(3));
        assert_eq!(status.last_handled_verify_at.as_deref(), Some("t0"));
        assert_eq!(
            ImageView::kind(&()),
            CatalogImage::kind(&()),
            "requests and ObjectRefs name CatalogImages"
        );
    }
}
