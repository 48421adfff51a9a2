//! `CatalogImage`: one published OS image, its declared properties (spec, from Git) and what
//! the registry says about it (status, written only by the verification controller).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use crate::source::LocalObjectRef;

/// Default `verificationInterval`: an unchanged image costs one HEAD request per interval.
pub const DEFAULT_VERIFICATION_INTERVAL: &str = "1h";
/// Shortest `verificationInterval` accepted; anything faster hammers registries.
pub const MIN_VERIFICATION_INTERVAL_SECS: u64 = 30;

fn default_verification_interval() -> String {
    DEFAULT_VERIFICATION_INTERVAL.to_string()
}

/// A published automotive OS image: where it lives in an OCI registry, what it is for, and
/// whether it is still pullable.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "automotive.sdv.cloud.redhat.com",
    version = "v1alpha1",
    kind = "CatalogImage",
    namespaced,
    status = "CatalogImageStatus",
    derive = "PartialEq",
    derive = "Default",
    shortname = "cimg",
    category = "catalog",
    doc = "A published automotive OS image in the catalog: its OCI registry location, what it runs on, and its live verification status.",
    printcolumn = r#"{"name":"Registry","type":"string","description":"OCI reference of the image","jsonPath":".spec.registryUrl"}"#,
    printcolumn = r#"{"name":"Architecture","type":"string","jsonPath":".spec.metadata.architecture"}"#,
    printcolumn = r#"{"name":"Distro","type":"string","jsonPath":".spec.metadata.distro"}"#,
    printcolumn = r#"{"name":"Target","type":"string","description":"First declared hardware target","jsonPath":".spec.metadata.targets[0].name"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Digest","type":"string","priority":1,"description":"Digest the registry resolved at the last verification","jsonPath":".status.registryMetadata.resolvedDigest"}"#,
    printcolumn = r#"{"name":"Revision","type":"string","priority":1,"description":"Git commit the entry was applied from","jsonPath":".metadata.annotations.automotive\\.sdv\\.cloud\\.redhat\\.com/source-revision"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct CatalogImageSpec {
    /// OCI reference of the image: `[host[:port]/]repository[:tag][@digest]` (digest
    /// `sha256:` and 64, or `sha512:` and 128 lowercase hex characters). Short names such as
    /// `ubuntu:22.04` mean Docker Hub; the name before the tag is at most 255 characters as
    /// written.
    #[schemars(length(min = 1, max = crate::reference::REFERENCE_MAX))]
    pub registry_url: String,

    /// Pinned manifest digest: `sha256:` and 64, or `sha512:` and 128 lowercase hex characters
    /// (the algorithms the OCI image specification registers). When set, the
    /// verification fails unless this digest exists, and a tag that moved away from it is
    /// reported with the TagMoved condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = crate::reference::DIGEST_PATTERN))]
    pub digest: Option<String>,

    /// Free-form tags for finding images (`production`, `tested`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,

    /// Secret in this CatalogImage's namespace holding registry credentials: a
    /// `kubernetes.io/dockerconfigjson` or `kubernetes.io/dockercfg` secret (only the entry
    /// whose host matches the image's registry is used), or a secret with `username`/`password`
    /// or `token` keys that names the registries it is for in the annotation
    /// `automotive.sdv.cloud.redhat.com/registry-hosts` (comma-separated `host[:port]`).
    /// Secrets of other namespaces are never read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_secret_ref: Option<LocalObjectRef>,

    /// How often the image is re-verified in its registry (`90s`, `1h`, `1h30m`); minimum 30s,
    /// maximum 720h (30 days).
    #[serde(default = "default_verification_interval")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"))]
    #[schemars(extend("x-kubernetes-validations" = [{"rule": "duration(self) <= duration('720h')", "message": "must be at most 720h (30 days)"}]))]
    pub verification_interval: String,

    /// What the image is and what it runs on.
    #[serde(default)]
    pub metadata: ImageMetadata,
}

/// Build mode the image was produced with by automotive-image-builder.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BuildMode {
    Bootc,
    Image,
    Package,
    Disk,
}

/// Declared properties of the image. The architecture is checked against the image's own
/// config during verification: flashing the wrong architecture bricks boards.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageMetadata {
    /// CPU architecture (`amd64`, `arm64`, ...; `x86_64` and `aarch64` are accepted and
    /// normalized in labels).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["amd64", "arm64", "arm", "386", "ppc64le", "s390x", "riscv64", "x86_64", "x86-64", "aarch64", "armhf", "armv7", "armv7l", "i386", "i686"]))]
    pub architecture: Option<String>,

    /// Operating system of the image; defaults to linux.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,

    /// CPU variant (`v8` for arm64, `v7` for arm).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,

    /// Distribution identifier (`cs9`, `autosd10`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distro: Option<String>,

    /// Distribution version (`9.4`). Quote it in YAML so it stays a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distro_version: Option<String>,

    /// Hardware targets the image runs on, the first one being the primary target.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<Target>,

    /// Kernel version shipped in the image (`6.1.0-rt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_version: Option<String>,

    /// Whether the image can be managed with bootc (image-mode updates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootc_capable: Option<bool>,

    /// How the image was built: bootc, image, package or disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_mode: Option<BuildMode>,

    /// Export format of the artifact (`qcow2`, `raw`, `oci`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_format: Option<String>,
}

/// A hardware target the image is meant for.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct Target {
    /// Target name as used by automotive-image-builder (`raspberry-pi`, `qemu`, ...). Each
    /// target becomes a label `target.automotive.sdv.cloud.redhat.com/<name>: "true"`.
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// Whether the image was tested on this hardware.
    #[serde(default)]
    pub verified: bool,
    /// Free text, such as the board revision it was tested on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

impl Target {
    /// An unverified target without notes.
    pub fn named(name: &str) -> Self {
        Target {
            name: name.to_string(),
            ..Default::default()
        }
    }
}

/// Lifecycle of a verification.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum Phase {
    /// Not verified yet.
    #[default]
    Pending,
    /// A verification is in progress.
    Verifying,
    /// The image resolved and matches its declaration.
    Available,
    /// The registry could not be reached or answered with a transient error; retried with backoff.
    Unavailable,
    /// The image does not match its declaration, credentials were refused, or it failed
    /// repeatedly; retried at the verification interval.
    Failed,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Verifying => "Verifying",
            Phase::Available => "Available",
            Phase::Unavailable => "Unavailable",
            Phase::Failed => "Failed",
        }
    }

    pub const ALL: [Phase; 5] = [
        Phase::Pending,
        Phase::Verifying,
        Phase::Available,
        Phase::Unavailable,
        Phase::Failed,
    ];
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Phase {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Phase::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!("unknown phase {s:?} (expected Pending, Verifying, Available, Unavailable or Failed)")
            })
    }
}

/// What the verification controller observed. Written only through the status subresource.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CatalogImageStatus {
    /// Generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Pending, Verifying, Available, Unavailable or Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// Available, Verified and Ready conditions (and TagMoved when a tag left its pinned digest).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// What the registry reported at the last successful verification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_metadata: Option<RegistryMetadata>,
    /// When the image was last verified, successfully or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_verification_time: Option<Time>,
    /// Consecutive failed verifications; reset on success. Five make the image Failed. A retry
    /// deferred while the registry's circuit breaker is open is not a verification and does
    /// not count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_failures: Option<i32>,
    /// When the image first became Available.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_at: Option<Time>,
    /// Echo of the last handled `verify-requested-at` annotation, so `caib catalog verify` knows
    /// its request was served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_verify_at: Option<String>,
}

/// Image facts read from the registry (manifest and config blob).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegistryMetadata {
    /// Digest the reference resolved to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_digest: Option<String>,
    /// Media type of the resolved manifest or index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// Config plus layer sizes in bytes (for an index: of the platform matching the declared
    /// architecture, else the first platform).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<i64>,
    /// Number of layers (for an index: of the selected platform, never the number of platforms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer_count: Option<i32>,
    /// Platform from the image config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Creation time from the image config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Time>,
    /// Whether the reference is an index (manifest list) of several platforms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_multi_arch: Option<bool>,
    /// Platforms of an index, attestation entries excluded: at most 64 (the one matching the
    /// declared architecture always among them), so a huge index keeps the status small.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platform_variants: Vec<PlatformVariant>,
    /// How many platforms the index lists (attestations excluded), including those beyond the
    /// 64 in `platformVariants`. Absent for a single-platform image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_count: Option<i32>,
}

/// An OCI platform.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// One platform of a multi-architecture index, with its real size.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlatformVariant {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Manifest digest of this platform.
    pub digest: String,
    /// Config plus layer sizes in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer_count: Option<i32>,
}

/// Condition types the verification controller maintains.
pub mod condition {
    pub const AVAILABLE: &str = "Available";
    pub const VERIFIED: &str = "Verified";
    pub const READY: &str = "Ready";
    pub const TAG_MOVED: &str = "TagMoved";
}
