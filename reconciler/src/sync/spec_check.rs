//! The spec check step: what a CatalogSource may ask for at all, decided before anything is
//! fetched, applied or scheduled. A refused spec stops the sync with `Ready=False` and
//! `Stalled=True` until the spec changes; nothing is applied or pruned.

use catalog_api::CatalogSource;

/// Why a spec is refused: the reason (for conditions and Events) and the message.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Refusal {
    pub reason: &'static str,
    pub message: String,
}

/// `None` when the spec may be synced. `allow_cross_namespace` is
/// `--allow-cross-namespace-targets`.
pub(super) fn refusal(source: &CatalogSource, allow_cross_namespace: bool) -> Option<Refusal> {
    if let Some((field, error)) = source.spec.invalid_duration() {
        return Some(Refusal {
            reason: "InvalidSpec",
            message: format!("{field}: {error}; nothing is fetched or applied until it is fixed"),
        });
    }
    let own = source.metadata.namespace.as_deref().unwrap_or_default();
    let target = source.target_namespace();
    if target != own && !allow_cross_namespace {
        return Some(Refusal {
            reason: "CrossNamespaceTarget",
            message: format!(
                "spec.targetNamespace {target:?} is not this CatalogSource's namespace {own:?}: nothing is applied or pruned; remove spec.targetNamespace and create the CatalogSource in {target:?}, or run the reconciler with --allow-cross-namespace-targets (single-tenant clusters)"
            ),
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
        assert_eq!(r.reason, "InvalidSpec");
        assert!(r.message.starts_with("spec.interval: "), "{}", r.message);
        let r = refusal(&source(serde_json::json!({"timeout": "11m"})), true).unwrap();
        assert!(
            r.message.contains("spec.timeout") && r.message.contains("10m"),
            "{}",
            r.message
        );
        assert_eq!(
            refusal(&source(serde_json::json!({"interval": "720h"})), false),
            None
        );
    }

    #[test]
    fn another_namespace_needs_the_operators_flag() {
        let cross = source(serde_json::json!({"targetNamespace": "team-b"}));
        assert_eq!(
            refusal(&cross, false).unwrap().reason,
            "CrossNamespaceTarget"
        );
        assert_eq!(refusal(&cross, true), None);
        let own = source(serde_json::json!({"targetNamespace": "team-a"}));
        assert_eq!(refusal(&own, false), None);
    }
}
