//! The webhook tokens, cached so that deliveries cost no API request.
//!
//! Choice: a token is read with one GET the first time a delivery needs it and kept until a
//! metadata-only watch of Secrets reports a different resourceVersion for it (or its
//! deletion, or a relist). Kubernetes cannot watch a set of Secrets by name, and one watch per
//! webhook Secret would cost a connection each; a reflector of every Secret would hold every
//! tenant's credentials. The metadata watch streams names and versions only and keeps none of
//! them: the cache holds tokens of Secrets that a CatalogSource's `spec.webhook.secretRef`
//! names, pruned to those on every insert, so it is bounded by the number of sources with a
//! webhook. A GET that races an invalidation is used once and not cached.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, watcher};

use super::auth::trim_newline;

use crate::panics::LockExt as _;

/// (namespace, Secret name).
pub type SecretKey = (String, String);

/// A cached read: the Secret's resourceVersion (None: it did not exist) and its token (None:
/// no Secret, or no non-empty `token` key).
#[derive(Clone)]
struct Entry {
    version: Option<String>,
    token: Option<Arc<[u8]>>,
}

/// Tokens of webhook Secrets; see the module documentation.
pub struct SecretCache {
    client: kube::Client,
    entries: Mutex<HashMap<SecretKey, Entry>>,
    /// Bumped by every invalidation: a GET started before one must not be cached.
    epoch: AtomicU64,
    /// The watch has listed once; before that nothing is cached.
    watching: AtomicBool,
    /// Latched on the first complete list: what readiness waits for (a later relist does not
    /// make the replica unready, tokens are then read with a GET, as before the first list).
    synced: tokio::sync::watch::Sender<bool>,
}

impl SecretCache {
    pub fn new(client: kube::Client) -> SecretCache {
        SecretCache {
            client,
            entries: Mutex::default(),
            epoch: AtomicU64::new(0),
            watching: AtomicBool::new(false),
            synced: tokio::sync::watch::Sender::new(false),
        }
    }

    /// Returns once the Secret metadata watch has listed once.
    pub async fn wait_synced(&self) {
        let mut synced = self.synced.subscribe();
        let _ = synced.wait_for(|s| *s).await;
    }

    /// The token of `key`, from the cache or one GET. `wanted` says whether a Secret is still
    /// named by some source; entries it refuses are dropped when this one is cached.
    pub async fn token(
        &self,
        key: &SecretKey,
        wanted: impl Fn(&SecretKey) -> bool,
    ) -> Result<Option<Arc<[u8]>>, kube::Error> {
        if let Some(entry) = self.lock().get(key) {
            return Ok(entry.token.clone());
        }
        let epoch = self.epoch.load(Ordering::SeqCst);
        let api: Api<Secret> = Api::namespaced(self.client.clone(), &key.0);
        let secret = api.get_opt(&key.1).await?;
        let entry = Entry {
            version: secret
                .as_ref()
                .and_then(|s| s.metadata.resource_version.clone()),
            token: secret.and_then(token_of),
        };
        let mut entries = self.lock();
        if self.watching.load(Ordering::SeqCst) && self.epoch.load(Ordering::SeqCst) == epoch {
            entries.retain(|k, _| wanted(k));
            entries.insert(key.clone(), entry.clone());
        }
        Ok(entry.token)
    }

    /// Follows Secret metadata (of `api`'s namespaces) until the stream ends, invalidating
    /// cached tokens whose Secret changed.
    pub async fn watch(self: Arc<Self>, api: Api<PartialObjectMeta<Secret>>) {
        let events = watcher(api, watcher::Config::default()).default_backoff();
        futures::pin_mut!(events);
        while let Some(event) = events.next().await {
            match event {
                Ok(event) => self.observe(&event),
                Err(e) => tracing::warn!(error = %e, "watching Secret metadata for webhook tokens"),
            }
        }
    }

    fn observe(&self, event: &watcher::Event<PartialObjectMeta<Secret>>) {
        match event {
            watcher::Event::Init => {
                // A relist: deletions while disconnected are not replayed.
                self.watching.store(false, Ordering::SeqCst);
                self.invalidate(|_, _| true);
            }
            watcher::Event::InitDone => {
                self.watching.store(true, Ordering::SeqCst);
                self.synced.send_replace(true);
            }
            watcher::Event::Apply(meta) | watcher::Event::InitApply(meta) => {
                let version = meta.metadata.resource_version.clone();
                let key = key_of(meta);
                self.invalidate(|k, e| *k == key && e.version != version);
            }
            watcher::Event::Delete(meta) => {
                let key = key_of(meta);
                self.invalidate(|k, _| *k == key);
            }
        }
    }

    fn invalidate(&self, stale: impl Fn(&SecretKey, &Entry) -> bool) {
        let mut entries = self.lock();
        let before = entries.len();
        entries.retain(|k, e| !stale(k, e));
        // Bumped even when nothing was cached: a GET in flight may be about to cache it.
        self.epoch.fetch_add(1, Ordering::SeqCst);
        if entries.len() != before {
            tracing::debug!(
                dropped = before - entries.len(),
                "webhook token cache invalidated"
            );
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SecretKey, Entry>> {
        self.entries.locked()
    }

    #[cfg(test)]
    fn cached(&self) -> usize {
        self.lock().len()
    }
}

fn key_of(meta: &PartialObjectMeta<Secret>) -> SecretKey {
    (
        meta.metadata.namespace.clone().unwrap_or_default(),
        meta.metadata.name.clone().unwrap_or_default(),
    )
}

/// The Secret's `token` key without a trailing newline; None when absent or empty.
fn token_of(secret: Secret) -> Option<Arc<[u8]>> {
    let raw = secret
        .data
        .and_then(|d| d.get("token").map(|t| t.0.clone()))
        .or_else(|| {
            secret
                .string_data
                .and_then(|d| d.get("token").map(|t| t.clone().into_bytes()))
        })?;
    Some(trim_newline(raw))
        .filter(|t| !t.is_empty())
        .map(Arc::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::ObjectMeta;

    fn meta(ns: &str, name: &str, version: &str) -> PartialObjectMeta<Secret> {
        PartialObjectMeta {
            types: None,
            metadata: ObjectMeta {
                namespace: Some(ns.into()),
                name: Some(name.into()),
                resource_version: Some(version.into()),
                ..ObjectMeta::default()
            },
            _phantom: Default::default(),
        }
    }

    fn cache_with(entries: &[(&str, &str, &str)]) -> SecretCache {
        let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        let cache = SecretCache::new(kube::Client::try_from(config).unwrap());
        for (ns, name, version) in entries {
            cache.lock().insert(
                (ns.to_string(), name.to_string()),
                Entry {
                    version: Some(version.to_string()),
                    token: Some(Arc::from(b"t".as_slice())),
                },
            );
        }
        cache
    }

    #[tokio::test]
    async fn a_new_resource_version_or_a_deletion_invalidates_only_that_secret() {
        let cache = cache_with(&[("a", "hook", "1"), ("b", "hook", "1")]);
        cache.observe(&watcher::Event::Apply(meta("a", "hook", "1")));
        assert_eq!(cache.cached(), 2, "same version: kept");
        cache.observe(&watcher::Event::Apply(meta("a", "other", "7")));
        assert_eq!(cache.cached(), 2, "another Secret: kept");
        cache.observe(&watcher::Event::Apply(meta("a", "hook", "2")));
        assert_eq!(cache.cached(), 1, "changed: dropped");
        cache.observe(&watcher::Event::Delete(meta("b", "hook", "1")));
        assert_eq!(cache.cached(), 0, "deleted: dropped");
    }

    #[tokio::test]
    async fn a_relist_drops_everything_and_caching_waits_for_it() {
        let cache = cache_with(&[("a", "hook", "1")]);
        cache.watching.store(true, Ordering::SeqCst);
        cache.observe(&watcher::Event::Init);
        assert_eq!(cache.cached(), 0);
        assert!(!cache.watching.load(Ordering::SeqCst));
        cache.observe(&watcher::Event::InitDone);
        assert!(cache.watching.load(Ordering::SeqCst));
    }

    #[test]
    fn the_token_loses_its_trailing_newline_and_empty_ones_count_as_missing() {
        let secret = |v: &str| Secret {
            data: Some(
                [("token".to_string(), k8s_openapi::ByteString(v.into()))]
                    .into_iter()
                    .collect(),
            ),
            ..Secret::default()
        };
        assert_eq!(
            token_of(secret("s3cret\n")).as_deref(),
            Some(&b"s3cret"[..])
        );
        assert!(token_of(secret("\n")).is_none());
        assert!(token_of(Secret::default()).is_none());
    }
}
