//! The one place that turns a spec into labels and annotations.
//!
//! Labels make the catalog filterable server-side (`kubectl get catalogimages -l ...`,
//! `caib catalog list --target ...`). They are derived from the spec by whoever writes the
//! object (the sync, never a status write), so they can never drift from the spec.

use std::collections::BTreeMap;

use crate::image::CatalogImageSpec;

/// Prefix shared by every label and annotation key this project writes.
pub const PREFIX: &str = "automotive.sdv.cloud.redhat.com";
pub const ARCHITECTURE: &str = "automotive.sdv.cloud.redhat.com/architecture";
pub const DISTRO: &str = "automotive.sdv.cloud.redhat.com/distro";
/// The first declared target, as in the upstream operator and the quickstart's example.
pub const TARGET: &str = "automotive.sdv.cloud.redhat.com/target";
pub const BOOTC: &str = "automotive.sdv.cloud.redhat.com/bootc";
/// Prefix of the per-target labels: every target is filterable, not only the first one.
pub const TARGET_PREFIX: &str = "target.automotive.sdv.cloud.redhat.com/";
/// Which CatalogSource manages an object. Pruning only ever touches objects carrying it.
pub const CATALOG_SOURCE: &str = "automotive.sdv.cloud.redhat.com/catalog-source";
/// Commit the object was last applied from.
pub const SOURCE_REVISION: &str = "automotive.sdv.cloud.redhat.com/source-revision";
/// File (relative to the repository root) the object was last applied from.
pub const SOURCE_PATH: &str = "automotive.sdv.cloud.redhat.com/source-path";
/// Namespace of the managing CatalogSource: with the `catalog-source` label (its name) it
/// identifies the source, so same-named sources of two namespaces never prune each other's
/// objects, and a source finds its objects after its `targetNamespace` changed.
pub const SOURCE_NAMESPACE: &str = "automotive.sdv.cloud.redhat.com/source-namespace";
/// Finalizer on a CatalogSource: its CatalogImages are deleted with it (when `prune` is on).
pub const SOURCE_FINALIZER: &str = "automotive.sdv.cloud.redhat.com/prune";
/// Set by `caib catalog verify`; the verification controller echoes it in
/// `status.lastHandledVerifyAt` once it has verified.
pub const VERIFY_REQUESTED_AT: &str = "automotive.sdv.cloud.redhat.com/verify-requested-at";
/// Any new value makes a CatalogSource sync at once.
pub const RECONCILE_REQUESTED_AT: &str = "automotive.sdv.cloud.redhat.com/reconcile-requested-at";
/// Set by the webhook receiver on a pull-request event: the preview runner lists the source's
/// pull requests at once (a CatalogSource annotation, so any replica can take the delivery).
pub const PREVIEW_REQUESTED_AT: &str = "automotive.sdv.cloud.redhat.com/preview-requested-at";
/// Revision whose deletions an operator approved beyond `maxDeletions` (or to empty the source).
/// Only a full commit id approves: a prefix could name a commit pushed later.
pub const APPROVE_DELETIONS: &str = "automotive.sdv.cloud.redhat.com/approve-deletions";
/// On a Secret with `username`/`password` or `token` keys: the registries (`host[:port]`,
/// comma-separated) it may be sent to. Such a Secret carries no host of its own, so without
/// this binding it is never used for a registry: a Secret meant for git must not reach
/// whatever registry a catalog entry names.
pub const REGISTRY_HOSTS: &str = "automotive.sdv.cloud.redhat.com/registry-hosts";
/// Revision an operator approved although it does not descend from the last applied one (a
/// force-push back to an older or unrelated commit of a verified source). Full commit id only.
pub const APPROVE_REVISION: &str = "automotive.sdv.cloud.redhat.com/approve-revision";
/// ImageBuild an entry was published from (`caib catalog publish`).
pub const SOURCE_IMAGEBUILD: &str = "automotive.sdv.cloud.redhat.com/source-imagebuild";

/// Whether a label or annotation key belongs to the reconciler, so a catalog file may not set
/// it: ownership (`catalog-source`, `source-namespace`), traceability and the spec-derived
/// labels are only trustworthy if no entry author can forge them. The one exception is
/// [`SOURCE_IMAGEBUILD`], provenance that `caib catalog publish` writes into the file itself.
pub fn is_reserved_key(key: &str) -> bool {
    let reserved = key
        .strip_prefix(PREFIX)
        .is_some_and(|rest| rest.starts_with('/'))
        || key.starts_with(TARGET_PREFIX);
    reserved && key != SOURCE_IMAGEBUILD
}

/// Canonical architecture name as used by OCI image configs, accepting the kernel's
/// spellings people copy from `uname -m`. Unknown names are returned unchanged so the
/// validator can reject them with the original spelling.
pub fn normalize_architecture(arch: &str) -> &str {
    match arch {
        "x86_64" | "x86-64" => "amd64",
        "aarch64" => "arm64",
        "armhf" | "armv7" | "armv7l" => "arm",
        "i386" | "i686" => "386",
        other => other,
    }
}

/// Architectures a catalog entry may declare (canonical names and accepted aliases).
pub const ARCHITECTURES: &[&str] = &[
    "amd64", "arm64", "arm", "386", "ppc64le", "s390x", "riscv64", "x86_64", "x86-64", "aarch64",
    "armhf", "armv7", "armv7l", "i386", "i686",
];

/// Labels derived from a spec. Values that are not valid label values are left out (the
/// validator reports them on the entry; a label is an index, not the source of truth).
pub fn spec_labels(spec: &CatalogImageSpec) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let meta = &spec.metadata;
    let mut put = |key: String, value: &str| {
        if is_label_value(value) {
            labels.insert(key, value.to_string());
        }
    };
    if let Some(arch) = meta.architecture.as_deref() {
        put(ARCHITECTURE.into(), normalize_architecture(arch));
    }
    if let Some(distro) = meta.distro.as_deref() {
        put(DISTRO.into(), distro);
    }
    if let Some(first) = meta.targets.first() {
        put(TARGET.into(), &first.name);
    }
    if let Some(bootc) = meta.bootc_capable {
        put(BOOTC.into(), if bootc { "true" } else { "false" });
    }
    for target in &meta.targets {
        if is_label_name(&target.name) {
            put(format!("{TARGET_PREFIX}{}", target.name), "true");
        }
    }
    labels
}

/// Label selector matching entries that declare `target` (any position, not only the first).
pub fn target_selector(target: &str) -> String {
    format!("{TARGET_PREFIX}{target}=true")
}

/// A valid label value: at most 63 characters, alphanumerics at both ends, `-_.` inside.
pub fn is_label_value(value: &str) -> bool {
    value.is_empty() || is_label_name(value)
}

/// A valid label name part (the text after an optional `prefix/`).
pub fn is_label_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{ImageMetadata, Target};

    #[test]
    fn labels_are_derived_and_normalized() {
        let spec = CatalogImageSpec {
            registry_url: "quay.io/a/b:c".into(),
            metadata: ImageMetadata {
                architecture: Some("aarch64".into()),
                distro: Some("cs9".into()),
                bootc_capable: Some(true),
                targets: vec![Target::named("raspberry-pi"), Target::named("qemu")],
                ..Default::default()
            },
            ..Default::default()
        };
        let labels = spec_labels(&spec);
        assert_eq!(labels[ARCHITECTURE], "arm64");
        assert_eq!(labels[DISTRO], "cs9");
        assert_eq!(labels[TARGET], "raspberry-pi");
        assert_eq!(labels[BOOTC], "true");
        assert_eq!(
            labels["target.automotive.sdv.cloud.redhat.com/raspberry-pi"],
            "true"
        );
        assert_eq!(
            labels["target.automotive.sdv.cloud.redhat.com/qemu"],
            "true"
        );
        assert_eq!(labels.len(), 6);
    }

    #[test]
    fn invalid_label_values_are_left_out() {
        let spec = CatalogImageSpec {
            metadata: ImageMetadata {
                distro: Some("not a label value".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        assert!(spec_labels(&spec).is_empty());
    }

    #[test]
    fn label_name_rules() {
        assert!(is_label_name("raspberry-pi"));
        assert!(is_label_name("a.b_c"));
        assert!(!is_label_name("-a"));
        assert!(!is_label_name("a-"));
        assert!(!is_label_name(&"a".repeat(64)));
        assert!(!is_label_name("a b"));
    }
}
