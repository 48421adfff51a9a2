//! The receiver's own cache of CatalogSources, run on every replica whatever its leadership.
//!
//! Why not the sync controller's cache: only the leader runs the sync controller, and a
//! Service sends deliveries to any ready replica. A standby must still authenticate a
//! delivery (which needs the source's `spec.webhook`) and record it on the source, so every
//! replica keeps this reflector. It is bounded: each object keeps its name, namespace,
//! resourceVersion and spec only (no status with its inventory of every entry, no
//! managedFields, labels or annotations), so its size grows with the number of sources, not
//! with the number of entries they sync.

use futures::StreamExt as _;
use kube::Api;
use kube::api::ObjectMeta;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, watcher};
use kube::runtime::{WatchStreamExt as _, reflector::store::Writer};

use catalog_api::CatalogSource;

/// An empty store and the task that fills it (run it for the life of the process).
pub fn cache(api: Api<CatalogSource>) -> (Store<CatalogSource>, impl Future<Output = ()>) {
    let (store, writer) = reflector::store();
    (store, follow(api, writer))
}

/// Keeps `writer` equal to the CatalogSources of `api`, stripped by [`slim`].
async fn follow(api: Api<CatalogSource>, writer: Writer<CatalogSource>) {
    let events = watcher(api, watcher::Config::default())
        .default_backoff()
        .modify(slim);
    let events = reflector::reflector(writer, events);
    futures::pin_mut!(events);
    while let Some(event) = events.next().await {
        if let Err(e) = event {
            tracing::warn!(error = %e, "webhook: watching CatalogSources failed; retrying");
        }
    }
}

/// Keeps what the receiver reads (the key and `spec.webhook`), drops the rest.
fn slim(source: &mut CatalogSource) {
    let meta = std::mem::take(&mut source.metadata);
    source.metadata = ObjectMeta {
        name: meta.name,
        namespace: meta.namespace,
        resource_version: meta.resource_version,
        uid: meta.uid,
        ..ObjectMeta::default()
    };
    source.status = None;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_key_and_the_spec_are_kept() {
        let mut source: CatalogSource = serde_json::from_value(serde_json::json!({
            "apiVersion": "automotive.sdv.cloud.redhat.com/v1alpha1",
            "kind": "CatalogSource",
            "metadata": {
                "name": "dev", "namespace": "catalog", "resourceVersion": "7",
                "annotations": {"big": "x".repeat(10_000)},
                "managedFields": [{"manager": "kubectl"}],
            },
            "spec": {"url": "https://example.com/r.git", "webhook": {"secretRef": {"name": "hook"}}},
            "status": {"lastAppliedRevision": "abc"},
        }))
        .expect("a CatalogSource");
        slim(&mut source);
        assert_eq!(source.metadata.name.as_deref(), Some("dev"));
        assert_eq!(source.metadata.namespace.as_deref(), Some("catalog"));
        assert_eq!(source.metadata.resource_version.as_deref(), Some("7"));
        assert!(source.metadata.annotations.is_none());
        assert!(source.metadata.managed_fields.is_none());
        assert!(source.status.is_none());
        assert!(source.spec.webhook.is_some());
    }
}
