//! Fixed objects for the rendering snapshots: the quickstart's two images, and one that was
//! applied by hand without labels or status.

use catalog_api::image::{ImageMetadata, Phase, RegistryMetadata, Target};
use catalog_api::{CatalogImage, CatalogImageSpec, CatalogImageStatus};
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// "Now" of every snapshot.
pub fn now() -> Timestamp {
    "2026-01-04T14:30:00Z".parse().unwrap()
}

pub fn time(s: &str) -> Time {
    Time(s.parse().unwrap())
}

pub fn image(
    name: &str,
    created: &str,
    spec: CatalogImageSpec,
    phase: Option<Phase>,
) -> CatalogImage {
    let mut image = CatalogImage::new(name, spec);
    image.metadata.namespace = Some("default".into());
    image.metadata.creation_timestamp = Some(time(created));
    image.metadata.labels = Some(catalog_api::labels::spec_labels(&image.spec));
    if let Some(phase) = phase {
        image.status = Some(CatalogImageStatus {
            phase: Some(phase),
            ..Default::default()
        });
    }
    image
}

pub fn rpi4() -> CatalogImage {
    let mut image = image(
        "autosd-cs9-rpi4",
        "2026-01-02T14:30:00Z",
        CatalogImageSpec {
            registry_url: "quay.io/centos-automotive/autosd:cs9-rpi4".into(),
            digest: Some(format!("sha256:{}", "ab".repeat(32))),
            tags: vec!["production".into(), "automotive".into()],
            verification_interval: "1h".into(),
            metadata: ImageMetadata {
                architecture: Some("arm64".into()),
                distro: Some("cs9".into()),
                distro_version: Some("9.4".into()),
                targets: vec![Target {
                    name: "raspberry-pi".into(),
                    verified: true,
                    notes: Some("Tested on Pi 4 Model B (8GB)".into()),
                }],
                kernel_version: Some("6.1.0-rt".into()),
                bootc_capable: Some(true),
                ..Default::default()
            },
            ..Default::default()
        },
        Some(Phase::Available),
    );
    image.metadata.annotations.get_or_insert_default().insert(
        catalog_api::labels::SOURCE_REVISION.into(),
        "0123456789abcdef0123456789abcdef01234567".into(),
    );
    let status = image.status.as_mut().unwrap();
    status.registry_metadata = Some(RegistryMetadata {
        resolved_digest: Some(format!("sha256:{}", "ab".repeat(32))),
        size_bytes: Some(2_147_483_648),
        layer_count: Some(15),
        ..Default::default()
    });
    status.last_verification_time = Some(time("2026-01-04T13:00:00Z"));
    image
}

pub fn qemu() -> CatalogImage {
    image(
        "autosd-cs9-qemu",
        "2026-01-03T14:30:00Z",
        CatalogImageSpec {
            registry_url: "quay.io/centos-automotive/autosd:cs9-qemu".into(),
            verification_interval: "1h".into(),
            metadata: ImageMetadata {
                architecture: Some("x86_64".into()),
                distro: Some("cs9".into()),
                targets: vec![Target::named("qemu")],
                ..Default::default()
            },
            ..Default::default()
        },
        Some(Phase::Unavailable),
    )
}

/// Applied with kubectl: no labels, no status yet.
pub fn by_hand() -> CatalogImage {
    let mut image = image(
        "my-catalog-image",
        "2026-01-04T14:29:15Z",
        CatalogImageSpec {
            registry_url: "quay.io/my-org/automotive-image:v1.0.0".into(),
            verification_interval: "1h".into(),
            ..Default::default()
        },
        None,
    );
    image.metadata.labels = None;
    image
}
