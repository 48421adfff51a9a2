//! What a source leaves behind: its CatalogImages when the source is deleted (held by the
//! [`SOURCE_FINALIZER`], as Flux's garbage collection on Kustomization deletion), and its
//! CatalogImages in the previous namespace after `spec.targetNamespace` changed.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::events::EventType;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use catalog_api::labels::SOURCE_FINALIZER;
use catalog_api::{CatalogImage, CatalogSource};

use super::effects::event;
use super::{Key, Shared, apply, key_parts};

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

/// Removes the bare Git cache of a source that no longer exists: a deleted source must not
/// keep its clone on the (size-limited) cache volume.
pub(super) fn remove_cache(path: &Path) {
    match std::fs::remove_dir_all(path) {
        Ok(()) => tracing::info!(cache = %path.display(), "removed the cache of a deleted source"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(cache = %path.display(), error = %e, "cannot remove the cache of a deleted source")
        }
    }
}

/// Removes the caches (`<cache_dir>/<namespace>/<name>.git`) of sources that are not in
/// `live`, once at startup: sources deleted while the reconciler was down. Only the
/// namespaces this process watches (`namespace`, or all) are looked at, and only `*.git`
/// directories are touched, so a cache dir shared with other shards or tools is safe.
pub(super) fn remove_orphan_caches(cache_dir: &Path, namespace: Option<&str>, live: &HashSet<Key>) {
    let namespaces: Vec<PathBuf> = match namespace {
        Some(ns) => vec![cache_dir.join(ns)],
        None => subdirectories(cache_dir),
    };
    for ns_dir in namespaces {
        let Some(ns) = ns_dir.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        for cache in subdirectories(&ns_dir) {
            let name = cache.file_name().and_then(|n| n.to_str());
            let Some(name) = name.and_then(|n| n.strip_suffix(".git")) else {
                continue;
            };
            if !live.contains(&(ns.to_string(), name.to_string())) {
                remove_cache(&cache);
            }
        }
        // Only succeeds when empty: the namespace's last cache is gone.
        let _ = std::fs::remove_dir(&ns_dir);
    }
}

fn subdirectories(dir: &Path) -> Vec<PathBuf> {
    let Ok(listing) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    listing
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orphan_caches_are_removed_and_live_ones_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        for cache in ["a/live.git", "a/gone.git", "b/gone.git", "a/other"] {
            std::fs::create_dir_all(dir.join(cache)).unwrap();
        }
        let live = HashSet::from([("a".to_string(), "live".to_string())]);
        remove_orphan_caches(dir, None, &live);
        assert!(dir.join("a/live.git").is_dir());
        assert!(dir.join("a/other").is_dir(), "not a cache: not touched");
        assert!(!dir.join("a/gone.git").exists());
        assert!(!dir.join("b").exists(), "an emptied namespace dir goes too");
    }
}
