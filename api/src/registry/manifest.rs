//! Manifest, index and image-config documents, and the facts derived from them.
//!
//! Pure functions over bytes, unit-tested without a registry. The rules that the upstream
//! operator got wrong live here: the size of an image is its config plus its layers (never
//! 0, never the manifest's own size), the layer count of a multi-arch image is the layer
//! count of one platform (never the number of platforms), attestation entries of an index
//! are not platforms, and platform and creation time come from the config blob.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::image::{Platform, PlatformVariant, RegistryMetadata};
use crate::labels::normalize_architecture;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1";

/// The `Accept` header of every manifest request: OCI and Docker v2, images and indexes.
/// Registries answer 404 to OCI content when the OCI types are missing here.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// Annotation buildkit puts on index entries that are attestations, not platforms.
const REFERENCE_TYPE: &str = "vnd.docker.reference.type";

#[derive(serde::Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
struct Document {
    #[serde(default)]
    schema_version: Option<u32>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
}

#[derive(serde::Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    #[serde(default)]
    media_type: Option<String>,
    digest: String,
    size: i64,
    #[serde(default)]
    platform: Option<DescriptorPlatform>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(serde::Deserialize, Clone, Debug)]
struct DescriptorPlatform {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
    #[serde(default)]
    variant: Option<String>,
}

/// A single-platform image manifest, reduced to what verification needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ImageManifest {
    pub config_digest: String,
    pub size_bytes: i64,
    pub layer_count: i32,
}

/// One platform entry of an index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    pub digest: String,
    pub architecture: String,
    pub os: String,
    pub variant: Option<String>,
}

/// What a manifest document is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    Image(ImageManifest),
    /// Platform entries, attestations already removed.
    Index(Vec<IndexEntry>),
}

/// Parses a manifest or index. `content_type` is the response's `Content-Type`; the
/// document's own `mediaType` wins when present.
pub(crate) fn parse_manifest(body: &[u8], content_type: &str) -> Result<Parsed, String> {
    let doc: Document =
        serde_json::from_slice(body).map_err(|e| format!("manifest is not valid JSON: {e}"))?;
    let media_type = doc.media_type.clone().unwrap_or_else(|| {
        content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_string()
    });
    if media_type.starts_with(DOCKER_SCHEMA1) || doc.schema_version == Some(1) {
        return Err("Docker schema 1 manifests are not supported; re-push the image".into());
    }
    let is_index = media_type == OCI_INDEX
        || media_type == DOCKER_LIST
        || (doc.manifests.is_some() && doc.config.is_none());
    if is_index {
        let entries = doc
            .manifests
            .unwrap_or_default()
            .into_iter()
            .filter(|d| !is_attestation(d))
            .map(|d| {
                let p = d.platform.unwrap_or(DescriptorPlatform {
                    architecture: String::new(),
                    os: String::new(),
                    variant: None,
                });
                IndexEntry {
                    digest: d.digest,
                    architecture: p.architecture,
                    os: p.os,
                    variant: p.variant.filter(|v| !v.is_empty()),
                }
            })
            .collect();
        return Ok(Parsed::Index(entries));
    }
    let config = doc
        .config
        .ok_or_else(|| format!("manifest of type {media_type:?} has no config descriptor"))?;
    let layers = doc.layers.unwrap_or_default();
    let size_bytes = layers
        .iter()
        .map(|l| l.size.max(0))
        .fold(config.size.max(0), i64::saturating_add);
    Ok(Parsed::Image(ImageManifest {
        config_digest: config.digest,
        size_bytes,
        layer_count: i32::try_from(layers.len()).unwrap_or(i32::MAX),
    }))
}

/// Attestation manifests (SBOM, provenance) appear in indexes as `unknown/unknown` or with
/// the buildkit reference-type annotation; they are not platforms anyone can run.
fn is_attestation(d: &Descriptor) -> bool {
    let unknown = d
        .platform
        .as_ref()
        .is_some_and(|p| p.architecture == "unknown" && p.os == "unknown");
    let annotated = d
        .annotations
        .get(REFERENCE_TYPE)
        .is_some_and(|t| t == "attestation-manifest");
    let not_an_image = d.media_type.as_deref().is_some_and(|m| {
        m != OCI_MANIFEST && m != DOCKER_MANIFEST && m != OCI_INDEX && m != DOCKER_LIST
    });
    unknown || annotated || not_an_image
}

/// The image configuration fields the catalog reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageConfig {
    pub architecture: String,
    pub os: String,
    pub variant: Option<String>,
    /// `created` of the config; `None` when absent or not RFC 3339.
    pub created: Option<jiff::Timestamp>,
}

pub(crate) fn parse_config(body: &[u8]) -> Result<ImageConfig, String> {
    #[derive(serde::Deserialize)]
    struct Raw {
        #[serde(default)]
        architecture: String,
        #[serde(default)]
        os: String,
        #[serde(default)]
        variant: Option<String>,
        #[serde(default)]
        created: Option<String>,
    }
    let raw: Raw =
        serde_json::from_slice(body).map_err(|e| format!("image config is not valid JSON: {e}"))?;
    Ok(ImageConfig {
        architecture: raw.architecture,
        os: raw.os,
        variant: raw.variant.filter(|v| !v.is_empty()),
        created: raw.created.and_then(|c| c.parse().ok()),
    })
}

/// One platform of an index with its real size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlatformFacts {
    pub architecture: String,
    pub os: String,
    pub variant: Option<String>,
    /// Digest of the platform's image manifest.
    pub digest: String,
    /// Config plus layers of that platform.
    pub size_bytes: i64,
    pub layer_count: i32,
}

/// Everything verification learns about an image from its manifests and config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageFacts {
    /// Digest of the manifest or index the reference resolved to.
    pub digest: String,
    /// Media type of that manifest or index.
    pub media_type: String,
    /// Whether the reference is an index (manifest list).
    pub is_index: bool,
    /// Platforms of an index that were read, attestations excluded: at most
    /// [`super::MAX_PLATFORMS`]; empty for a single-platform image.
    pub platforms: Vec<PlatformFacts>,
    /// How many platforms the index lists (attestations excluded), read or not; 0 for a
    /// single-platform image.
    pub platform_count: usize,
    /// Size (config + layers) of the image whose config was read.
    pub size_bytes: i64,
    /// Layer count of the image whose config was read.
    pub layer_count: i32,
    /// Config of the single image, or of the selected platform of an index.
    pub config: ImageConfig,
}

impl ImageFacts {
    /// The status block of a `CatalogImage`.
    pub fn metadata(&self) -> RegistryMetadata {
        RegistryMetadata {
            resolved_digest: Some(self.digest.clone()),
            media_type: Some(self.media_type.clone()),
            size_bytes: Some(self.size_bytes),
            layer_count: Some(self.layer_count),
            platform: (!self.config.architecture.is_empty() || !self.config.os.is_empty()).then(
                || Platform {
                    architecture: self.config.architecture.clone(),
                    os: self.config.os.clone(),
                    variant: self.config.variant.clone(),
                },
            ),
            created_at: self.config.created.map(Time),
            is_multi_arch: Some(self.is_index),
            platform_count: self
                .is_index
                .then(|| i32::try_from(self.platform_count).unwrap_or(i32::MAX)),
            platform_variants: self
                .platforms
                .iter()
                .map(|p| PlatformVariant {
                    architecture: p.architecture.clone(),
                    os: p.os.clone(),
                    variant: p.variant.clone(),
                    digest: p.digest.clone(),
                    size_bytes: Some(p.size_bytes),
                    layer_count: Some(p.layer_count),
                })
                .collect(),
        }
    }

    /// Whether the image can run on `architecture` (aliases such as `x86_64` accepted): the
    /// config's architecture for a single image, any platform for an index.
    pub fn provides_architecture(&self, architecture: &str) -> bool {
        let want = normalize_architecture(architecture);
        if self.is_index {
            self.platforms
                .iter()
                .any(|p| normalize_architecture(&p.architecture) == want)
        } else {
            normalize_architecture(&self.config.architecture) == want
        }
    }

    /// The architectures the image provides, for messages.
    pub fn architectures(&self) -> Vec<String> {
        if self.is_index {
            self.platforms
                .iter()
                .map(|p| p.architecture.clone())
                .collect()
        } else {
            vec![self.config.architecture.clone()]
        }
    }
}

/// Which platform of an index to describe: the one matching `architecture` (preferring
/// linux), else the first linux one, else the first.
pub(crate) fn select_platform(entries: &[IndexEntry], architecture: Option<&str>) -> usize {
    let linux_first = |pred: &dyn Fn(&IndexEntry) -> bool| {
        entries
            .iter()
            .position(|e| pred(e) && e.os == "linux")
            .or_else(|| entries.iter().position(pred))
    };
    if let Some(want) = architecture.map(normalize_architecture)
        && let Some(i) = linux_first(&|e| normalize_architecture(&e.architecture) == want)
    {
        return i;
    }
    linux_first(&|_| true).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    const D3: &str = "sha256:3333333333333333333333333333333333333333333333333333333333333333";

    #[test]
    fn docker_v2_manifest_sizes_config_plus_layers() {
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"{D1}","size":100}},"layers":[{{"mediaType":"x","digest":"{D2}","size":1000}},{{"mediaType":"x","digest":"{D3}","size":24}}]}}"#
        );
        assert_eq!(
            parse_manifest(body.as_bytes(), "").unwrap(),
            Parsed::Image(ImageManifest {
                config_digest: D1.into(),
                size_bytes: 1124,
                layer_count: 2
            })
        );
    }

    #[test]
    fn oci_index_skips_attestations() {
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[
              {{"mediaType":"{OCI_MANIFEST}","digest":"{D1}","size":500,"platform":{{"architecture":"amd64","os":"linux"}}}},
              {{"mediaType":"{OCI_MANIFEST}","digest":"{D2}","size":500,"platform":{{"architecture":"arm64","os":"linux","variant":"v8"}}}},
              {{"mediaType":"{OCI_MANIFEST}","digest":"{D3}","size":500,"platform":{{"architecture":"unknown","os":"unknown"}},"annotations":{{"vnd.docker.reference.type":"attestation-manifest"}}}}]}}"#
        );
        let Parsed::Index(entries) = parse_manifest(body.as_bytes(), "").unwrap() else {
            panic!("not an index")
        };
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].variant.as_deref(), Some("v8"));
        assert_eq!(select_platform(&entries, Some("aarch64")), 1);
        assert_eq!(select_platform(&entries, Some("s390x")), 0);
        assert_eq!(select_platform(&entries, None), 0);
    }

    #[test]
    fn media_type_from_header_when_document_has_none() {
        let body = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"digest":"{D1}","size":1,"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#
        );
        assert!(matches!(
            parse_manifest(body.as_bytes(), DOCKER_LIST).unwrap(),
            Parsed::Index(e) if e.len() == 1
        ));
        let err = parse_manifest(br#"{"schemaVersion":1,"name":"x"}"#, "").unwrap_err();
        assert!(err.contains("schema 1"), "{err}");
    }

    #[test]
    fn config_gives_platform_and_creation_time() {
        let c = parse_config(
            br#"{"architecture":"arm64","os":"linux","variant":"v8","created":"2026-01-04T13:00:00.123456789Z","rootfs":{}}"#,
        )
        .unwrap();
        assert_eq!(c.architecture, "arm64");
        assert_eq!(c.variant.as_deref(), Some("v8"));
        assert_eq!(
            c.created.unwrap().to_string(),
            "2026-01-04T13:00:00.123456789Z"
        );
        let c =
            parse_config(br#"{"architecture":"amd64","os":"linux","created":"garbage"}"#).unwrap();
        assert_eq!(c.created, None);
    }

    #[test]
    fn facts_to_metadata_and_architecture_checks() {
        let facts = ImageFacts {
            digest: D1.into(),
            media_type: OCI_INDEX.into(),
            is_index: true,
            platforms: vec![
                PlatformFacts {
                    architecture: "amd64".into(),
                    os: "linux".into(),
                    variant: None,
                    digest: D2.into(),
                    size_bytes: 10,
                    layer_count: 1,
                },
                PlatformFacts {
                    architecture: "arm64".into(),
                    os: "linux".into(),
                    variant: Some("v8".into()),
                    digest: D3.into(),
                    size_bytes: 20,
                    layer_count: 2,
                },
            ],
            size_bytes: 20,
            layer_count: 2,
            platform_count: 2,
            config: ImageConfig {
                architecture: "arm64".into(),
                os: "linux".into(),
                variant: Some("v8".into()),
                created: None,
            },
        };
        let m = facts.metadata();
        assert_eq!(m.is_multi_arch, Some(true));
        assert_eq!(m.platform_variants.len(), 2);
        assert_eq!(m.platform_count, Some(2));
        assert_eq!(m.layer_count, Some(2));
        assert!(facts.provides_architecture("x86_64"));
        assert!(!facts.provides_architecture("s390x"));
    }
}
