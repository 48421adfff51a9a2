//! The spec check step: what a CatalogSource may ask for at all, decided before anything is
//! fetched, applied or scheduled. A refused spec stops the sync with `Ready=False` and
//! `Stalled=True` until the spec changes; nothing is applied or pruned.

use catalog_api::CatalogSource;

use super::error::Error;

/// `None` when the spec may be synced, else why not ([`Error::InvalidSpec`],
/// [`Error::CrossNamespaceTarget`]). `allow_cross_namespace` is
/// `--allow-cross-namespace-targets`.
pub(super) fn refusal(source: &CatalogSource, allow_cross_namespace: bool) -> Option<Error> {
    if let Some((field, source)) = source.spec.invalid_duration() {
        return Some(Error::InvalidSpec { field, source });
    }
    let own = source.metadata.namespace.as_deref().unwrap_or_default();
    let target = source.target_namespace();
    if target != own && !allow_cross_namespace {
        return Some(Error::CrossNamespaceTarget {
            target: target.to_string(),
            own: own.to_string(),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(spec: serde_json::Value) -> CatalogSource {
        let mut full = serde_json::json!({"url": "https://example.com/c.git"});
        full.as_object_mut()
            .unwrap()
            .extend(spec.as_object().unwrap().clone());
        serde_json::from_value(serde_json::json!({
            "apiVersion": "automotive.sdv.cloud.redhat.com/v1alpha1", "kind": "CatalogSource",
            "metadata": {"name": "dev", "namespace": "team-a"}, "spec": full
        }))
        .unwrap()
    }

    #[test]
    fn durations_out_of_bounds_are_refused() {
        let r = refusal(
            &source(serde_json::json!({"interval": "2562047788015215h"})),
            false,
        );
        let r = r.unwrap();
        assert_eq!(r.reason(), "InvalidSpec");
        let message = r.to_string();
        assert!(message.starts_with("spec.interval: "), "{message}");
        let r = refusal(&source(serde_json::json!({"timeout": "11m"})), true).unwrap();
        let message = r.to_string();
        assert!(
            message.contains("spec.timeout") && message.contains("10m"),
            "{message}"
        );
        assert!(refusal(&source(serde_json::json!({"interval": "720h"})), false).is_none());
    }

    #[test]
    fn another_namespace_needs_the_operators_flag() {
        let cross = source(serde_json::json!({"targetNamespace": "team-b"}));
        assert_eq!(
            refusal(&cross, false).unwrap().reason(),
            "CrossNamespaceTarget"
        );
        assert!(refusal(&cross, true).is_none());
        let own = source(serde_json::json!({"targetNamespace": "team-a"}));
        assert!(refusal(&own, false).is_none());
    }
}
