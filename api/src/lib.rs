//! Contracts shared by every part of the catalog: the custom resource types, the one image
//! reference parser, the catalog repository's file formats, and the one validator that
//! `caib catalog validate`, the reconciler and the tests all run.
//!
//! Keeping these in one crate is what guarantees that an entry `caib` accepts is an entry the
//! reconciler applies, and that the CRDs in `crds/` describe exactly the types the code uses.

pub mod conditions;
pub mod declared;
pub mod diagnostic;
pub mod duration;
pub mod entry;
pub mod expansion;
pub mod image;
pub mod jitter;
pub mod labels;
pub mod percent;
pub mod redact;
pub mod reference;
#[cfg(feature = "registry")]
pub mod registry;
pub mod repo;
pub mod size;
pub mod source;
pub mod validate;

pub use diagnostic::Diagnostic;
pub use image::{CatalogImage, CatalogImageSpec, CatalogImageStatus};
pub use reference::ImageReference;
pub use source::{CatalogSource, CatalogSourceSpec, CatalogSourceStatus};

/// API group of every resource this project defines.
pub const GROUP: &str = "automotive.sdv.cloud.redhat.com";
/// API version served for both kinds.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` as written in manifests.
pub const API_VERSION: &str = "automotive.sdv.cloud.redhat.com/v1alpha1";
/// Field manager the reconciler uses for server-side apply, so its ownership is visible in
/// `managedFields` and never collides with a human's `kubectl apply`.
pub const FIELD_MANAGER: &str = "catalog-reconciler";
