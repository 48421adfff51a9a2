//! Forgetting registry hosts no CatalogImage names any more.
//!
//! Every per-host structure of the verification controller (breakers and permits, the registry
//! client's challenge map and token cache, the per-host metric series) is created when an image
//! names a host. Without a sweep they would only grow: a catalog that churns through registries,
//! or entries pointing at throwaway hosts, would cost memory and metric series for ever. The
//! sweep bounds all of them by the hosts the current images name.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use super::view::ImageView;
use catalog_api::registry::RegistryClient;
use kube::runtime::reflector::Store;

use super::guard::Guards;
use super::metrics::Metrics;

/// How often hosts no image names are forgotten.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// The registry hosts (`host[:port]`, as in the breaker and metric labels) the images name.
pub fn named_hosts<'a>(images: impl IntoIterator<Item = &'a Arc<ImageView>>) -> HashSet<String> {
    images
        .into_iter()
        .filter_map(|image| image.registry_host.as_deref())
        .map(str::to_string)
        .collect()
}

/// Drops every per-host structure of hosts not in `named`.
pub fn forget_unnamed(
    named: &HashSet<String>,
    guards: &Guards,
    registry: &RegistryClient,
    metrics: &Metrics,
) {
    let gone = guards.retain(named);
    let keep = |host: &str| named.contains(host);
    registry.retain_registries(&keep);
    metrics.retain_request_hosts(&keep);
    if !gone.is_empty() {
        tracing::debug!(hosts = ?gone, "forgot registry hosts no image names");
    }
}

/// Sweeps every [`SWEEP_INTERVAL`] until the task is aborted.
pub async fn sweep_forever(
    images: Store<ImageView>,
    guards: Arc<Guards>,
    registry: RegistryClient,
    metrics: Metrics,
) {
    let mut ticks = tokio::time::interval(SWEEP_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let named = named_hosts(images.state().iter());
        forget_unnamed(&named, &guards, &registry, &metrics);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use catalog_api::registry::RegistryOptions;
    use catalog_api::{CatalogImage, CatalogImageSpec};

    fn image(url: &str) -> Arc<ImageView> {
        let spec = CatalogImageSpec {
            registry_url: url.into(),
            ..Default::default()
        };
        Arc::new(ImageView::of(&CatalogImage::new("x", spec)))
    }

    #[test]
    fn only_hosts_images_name_are_kept() {
        let images = [
            image("127.0.0.1:5000/os/a:v1"),
            image("quay.io/os/b:v1"),
            image("not a reference"),
        ];
        let named = named_hosts(images.iter());
        let want: HashSet<String> = ["127.0.0.1:5000".into(), "quay.io".into()].into();
        assert_eq!(named, want);

        let metrics = Metrics::register(&mut prometheus_client::registry::Registry::default());
        let s = Duration::from_secs;
        let guards = Guards::new(1, s(1), s(2), metrics.clone());
        for host in ["quay.io", "gone.example:1"] {
            guards.try_enter(host).unwrap().record(false);
        }
        let client = RegistryClient::new(RegistryOptions::default()).unwrap();
        forget_unnamed(&named, &guards, &client, &metrics);
        assert_eq!(guards.hosts(), vec!["quay.io".to_string()]);
    }
}
