//! What an entry file declares, kept compact.
//!
//! A valid entry file is a CatalogImage manifest with only `metadata.{name, namespace, labels,
//! annotations}` and a spec (the validator refuses everything else). Held as a whole
//! [`CatalogImage`] it costs about 1 KiB inline, most of it the server-set metadata and the
//! status an entry never has; the sync holds one per entry of a source (100,000 entries:
//! 100 MiB inline alone). A [`DeclaredImage`] keeps what a file can declare, in about 40% of
//! that, and becomes the object when one is needed ([`DeclaredImage::to_object`]).
//!
//! Its fields mirror the object's (`image.metadata.labels`, `image.spec`), so code reading a
//! declaration reads like code reading the object.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::image::{CatalogImage, CatalogImageSpec};

/// An entry file's CatalogImage: its declared metadata and its spec.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeclaredImage {
    pub metadata: DeclaredMeta,
    pub spec: CatalogImageSpec,
}

/// The metadata an entry file may set.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeclaredMeta {
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub labels: Option<BTreeMap<String, String>>,
    pub annotations: Option<BTreeMap<String, String>>,
}

impl DeclaredImage {
    /// The declaration of `image`: its name, namespace, labels, annotations and spec (any
    /// other metadata and the status are dropped).
    pub fn of(image: CatalogImage) -> DeclaredImage {
        let meta = image.metadata;
        DeclaredImage {
            metadata: DeclaredMeta {
                name: meta.name,
                namespace: meta.namespace,
                labels: meta.labels,
                annotations: meta.annotations,
            },
            spec: image.spec,
        }
    }

    /// The CatalogImage manifest the file declares (no status).
    pub fn to_object(&self) -> CatalogImage {
        self.clone().into_object()
    }

    /// As [`Self::to_object`], without copying.
    pub fn into_object(self) -> CatalogImage {
        let meta = self.metadata;
        let mut object = CatalogImage::new(meta.name.as_deref().unwrap_or_default(), self.spec);
        object.metadata = ObjectMeta {
            name: meta.name,
            namespace: meta.namespace,
            labels: meta.labels,
            annotations: meta.annotations,
            ..ObjectMeta::default()
        };
        object
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_declaration_round_trips_and_is_well_under_half_the_object() {
        let mut image = CatalogImage::new(
            "app",
            CatalogImageSpec {
                registry_url: "quay.io/a/app:v1".into(),
                tags: vec!["v1".into()],
                ..Default::default()
            },
        );
        image.metadata.namespace = Some("dev".into());
        image.metadata.labels = Some([("team".to_string(), "os".to_string())].into());
        image.metadata.annotations = Some([("note".to_string(), "x".to_string())].into());
        let declared = DeclaredImage::of(image.clone());
        assert_eq!(declared.to_object(), image);
        assert_eq!(declared.clone().into_object(), image);
        assert!(
            std::mem::size_of::<DeclaredImage>() * 2 < std::mem::size_of::<CatalogImage>(),
            "{} vs {}",
            std::mem::size_of::<DeclaredImage>(),
            std::mem::size_of::<CatalogImage>()
        );
    }

    #[test]
    fn server_set_metadata_and_status_are_not_declared() {
        let mut image = CatalogImage::new("app", CatalogImageSpec::default());
        image.metadata.uid = Some("u".into());
        image.metadata.resource_version = Some("7".into());
        image.status = Some(Default::default());
        let object = DeclaredImage::of(image).into_object();
        assert_eq!(object.metadata.uid, None);
        assert_eq!(object.metadata.resource_version, None);
        assert_eq!(object.status, None);
    }
}
