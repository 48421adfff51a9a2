//! What a source leaves behind: its CatalogImages when the source is deleted (held by the
//! [`SOURCE_FINALIZER`], as Flux's garbage collection on Kustomization deletion), and its
//! CatalogImages in the previous namespace after `spec.targetNamespace` changed.

use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::EventType;
use serde_json::json;

use catalog_api::labels::SOURCE_FINALIZER;
use catalog_api::{CatalogImage, CatalogSource};

use super::effects::event;
use super::{Shared, apply, key_parts};

/// Adds the finalizer when missing (the first sync of a source): one write, once.
pub(super) async fn ensure_finalizer(shared: &Shared, source: &CatalogSource) {
    let finalizers = source.metadata.finalizers.clone().unwrap_or_default();
    if finalizers.iter().any(|f| f == SOURCE_FINALIZER) {
        return;
    }
    let mut wanted = finalizers;
    wanted.push(SOURCE_FINALIZER.to_string());
    set_finalizers(shared, source, wanted).await;
}

/// Finishes the deletion of `source`: deletes what it manages (when `prune` is on and it
/// is not suspended), then releases the finalizer. Returns false while objects remain (a
/// failed delete): the finalizer stays and the caller retries.
pub(super) async fn finalize(shared: &Shared, source: &CatalogSource) -> bool {
    let finalizers = source.metadata.finalizers.clone().unwrap_or_default();
    if !finalizers.iter().any(|f| f == SOURCE_FINALIZER) {
        return true;
    }
    let (ns, name) = key_parts(source);
    if source.spec.prune && !source.spec.suspend {
        // Only what carries both the label and the source-namespace annotation: a
        // label-only object is nobody's and survives the deletion.
        let managed = owned(shared, source, None);
        let mut deleted = 0;
        for (object_ns, names) in managed {
            let (ok, errors) = delete(shared, &object_ns, names).await;
            deleted += ok;
            if let Some(first) = errors.first() {
                let message = format!(
                    "the CatalogSource is being deleted but {} of its CatalogImages could not be deleted (first: {first}); retrying",
                    errors.len()
                );
                tracing::warn!(source = %format!("{ns}/{name}"), "{message}");
                event(shared, source, EventType::Warning, "PruneFailed", &message).await;
                return false;
            }
        }
        if deleted > 0 {
            tracing::info!(source = %format!("{ns}/{name}"), deleted, "deleted the CatalogImages of a deleted CatalogSource");
        }
    }
    let wanted = finalizers
        .into_iter()
        .filter(|f| f != SOURCE_FINALIZER)
        .collect();
    set_finalizers(shared, source, wanted).await
}

/// Deletes the objects this source left in namespaces other than its target (its
/// `targetNamespace` changed). Returns how many were deleted and the errors.
pub(super) async fn prune_moved(shared: &Shared, source: &CatalogSource) -> (usize, Vec<String>) {
    let (ns, name) = key_parts(source);
    let target = source.target_namespace();
    let left = owned(shared, source, Some(target));
    let (mut deleted, mut errors) = (0, Vec::new());
    for (object_ns, names) in left {
        let (ok, failed) = delete(shared, &object_ns, names).await;
        deleted += ok;
        errors.extend(failed);
        if ok > 0 {
            let message = format!(
                "deleted {ok} CatalogImages from namespace {object_ns}: spec.targetNamespace is now {target}"
            );
            tracing::info!(source = %format!("{ns}/{name}"), "{message}");
            event(
                shared,
                source,
                EventType::Normal,
                "PrunedPreviousNamespace",
                &message,
            )
            .await;
        }
    }
    (deleted, errors)
}

/// What `source` owns outside `except`, by namespace. Without
/// `--allow-cross-namespace-targets` a source acts only in its own namespace, so objects
/// elsewhere that claim to be its own (anyone can write the label and annotation) are left.
fn owned(
    shared: &Shared,
    source: &CatalogSource,
    except: Option<&str>,
) -> std::collections::BTreeMap<String, Vec<String>> {
    let (ns, name) = key_parts(source);
    let mut owned = shared.images.owned_by(ns, name, except);
    if !shared.allow_cross_namespace_targets {
        owned.retain(|object_ns, _| object_ns == ns);
    }
    owned
}

async fn delete(shared: &Shared, namespace: &str, names: Vec<String>) -> (usize, Vec<String>) {
    let api: Api<CatalogImage> = Api::namespaced(shared.client.clone(), namespace);
    let (mut deleted, mut errors) = (0, Vec::new());
    for (name, result) in apply::prune_all(&api, names, &shared.metrics).await {
        match result {
            Ok(()) => deleted += 1,
            Err(e) => errors.push(format!("{namespace}/{name}: {e}")),
        }
    }
    (deleted, errors)
}

/// Replaces the finalizer list, guarded by the resourceVersion the decision was made on.
async fn set_finalizers(shared: &Shared, source: &CatalogSource, finalizers: Vec<String>) -> bool {
    let (ns, name) = key_parts(source);
    let api: Api<CatalogSource> = Api::namespaced(shared.client.clone(), ns);
    let patch = json!({"metadata": {
        "finalizers": finalizers,
        "resourceVersion": source.metadata.resource_version,
    }});
    shared.metrics.api_write("patch");
    match api
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => true,
        // Gone already, or changed since: the watch brings the new state and another try.
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => false,
        Err(e) => {
            tracing::warn!(source = %format!("{ns}/{name}"), error = %e, "cannot update the finalizers");
            false
        }
    }
}
