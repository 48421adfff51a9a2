//! Verification metrics, registered on the process's prometheus-client Registry (names get
//! the registry's `catalog_` prefix).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};

use super::view::ImageView;
use catalog_api::image::Phase;
use catalog_api::registry::{RequestObserver, RequestRecord};
use kube::runtime::reflector::Store;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::panics::LockExt as _;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// available, unavailable, failed
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The registry (`host[:port]`) of the image the request was for, as a CatalogImage names
    /// it: a token realm elsewhere is counted under its registry, so the label values are
    /// chosen by catalog authors, never by what a registry answers.
    pub host: String,
    pub method: String,
    /// HTTP status, or `error` when no response arrived.
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HostLabels {
    pub host: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    phase: String,
}

/// Handles to the verification metrics (cheap to clone).
#[derive(Clone)]
pub struct Metrics {
    pub verifications: Family<ResultLabels, Counter>,
    /// Scheduled retries an open circuit breaker deferred without a request or a write.
    pub deferred: Counter,
    /// Verifications that waited for a sync's writes before they started.
    pub waited_for_sync: Counter,
    pub duration: Histogram,
    pub registry_requests: Family<RequestLabels, Counter>,
    pub breaker_state: Family<HostLabels, Gauge>,
    images: Arc<ImagesByPhase>,
    /// Label sets of `registry_requests` in use, so a host's series can be removed.
    request_series: Arc<Mutex<HashSet<RequestLabels>>>,
}

impl Metrics {
    /// Creates the metrics and registers them.
    pub fn register(registry: &mut Registry) -> Metrics {
        let metrics = Metrics {
            verifications: Family::default(),
            deferred: Counter::default(),
            waited_for_sync: Counter::default(),
            duration: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
            registry_requests: Family::default(),
            breaker_state: Family::default(),
            images: Arc::default(),
            request_series: Arc::default(),
        };
        registry.register(
            "verifications",
            "CatalogImage verifications, by result (available, unavailable, failed)",
            metrics.verifications.clone(),
        );
        registry.register(
            "verifications_deferred",
            "Scheduled retries of failing CatalogImages deferred, without a request or a status write, while their registry's circuit breaker is open",
            metrics.deferred.clone(),
        );
        registry.register(
            "verifications_waited_for_sync",
            "Verifications that waited (at most 30s) for a sync's CatalogImage writes before they started",
            metrics.waited_for_sync.clone(),
        );
        registry.register(
            "verification_duration_seconds",
            "Wall time of one CatalogImage verification (registry requests included)",
            metrics.duration.clone(),
        );
        registry.register(
            "registry_requests",
            "HTTP requests sent to registries, by host, method and status code",
            metrics.registry_requests.clone(),
        );
        registry.register(
            "registry_breaker_state",
            "Circuit breaker per registry host: 0 closed, 1 open, 2 half-open",
            metrics.breaker_state.clone(),
        );
        registry.register_collector(Box::new(metrics.images.clone()));
        metrics
    }

    /// Counts images by phase from this store at every scrape.
    pub fn observe_images(&self, store: Store<ImageView>) {
        let _ = self.images.store.set(store);
    }

    pub fn set_breaker(&self, host: &str, state: i64) {
        self.breaker_state
            .get_or_create(&HostLabels { host: host.into() })
            .set(state);
    }

    /// Removes the breaker gauge of a host no image names any more.
    pub fn forget_breaker(&self, host: &str) {
        self.breaker_state.remove(&HostLabels { host: host.into() });
    }

    /// Removes the request counters of every host `keep` rejects (hosts no image names).
    pub fn retain_request_hosts(&self, keep: &dyn Fn(&str) -> bool) {
        let mut series = self.request_series.locked();
        series.retain(|labels| {
            let kept = keep(&labels.host);
            if !kept {
                self.registry_requests.remove(labels);
            }
            kept
        });
    }

    /// The observer handed to the registry client: counts every request under the registry
    /// of the image it was made for (`RequestRecord::registry`, not the host contacted).
    pub fn request_observer(&self) -> Arc<dyn RequestObserver> {
        let metrics = self.clone();
        Arc::new(move |r: &RequestRecord<'_>| metrics.count_request(r))
    }

    fn count_request(&self, r: &RequestRecord<'_>) {
        let labels = RequestLabels {
            host: r.registry.to_string(),
            method: r.method.to_string(),
            code: r.status.map_or("error".into(), |s| s.to_string()),
        };
        self.registry_requests.get_or_create(&labels).inc();
        let mut series = self.request_series.locked();
        if !series.contains(&labels) {
            series.insert(labels);
        }
    }
}

/// `catalog_images{phase}`, computed from the watch cache at scrape time so it is always
/// exact (deleted images included).
#[derive(Default, Debug)]
struct ImagesByPhase {
    store: OnceLock<Store<ImageView>>,
}

impl Collector for ImagesByPhase {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(store) = self.store.get() else {
            return Ok(());
        };
        let mut counts = [0i64; Phase::ALL.len()];
        for image in store.state() {
            let phase = image.phase();
            if let Some(i) = Phase::ALL.iter().position(|p| *p == phase) {
                counts[i] += 1;
            }
        }
        let mut family = encoder.encode_descriptor(
            "images",
            "CatalogImages by phase",
            None,
            MetricType::Gauge,
        )?;
        for (phase, count) in Phase::ALL.iter().zip(counts) {
            let labels = PhaseLabels {
                phase: phase.as_str().to_string(),
            };
            ConstGauge::new(count).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_token_realm_is_counted_under_its_registry_and_forgotten_with_it() {
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        let observer = metrics.request_observer();
        for host in ["reg:5000", "auth.example:8443"] {
            observer.observe(&RequestRecord {
                registry: "reg:5000",
                host,
                method: "GET",
                status: Some(200),
                elapsed: Duration::ZERO,
            });
        }
        let text = || {
            let mut out = String::new();
            prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
            out
        };
        let before = text();
        assert!(
            before
                .contains(r#"registry_requests_total{host="reg:5000",method="GET",code="200"} 2"#),
            "{before}"
        );
        assert!(!before.contains("auth.example"), "{before}");
        metrics.retain_request_hosts(&|h| h != "reg:5000");
        assert!(!text().contains("reg:5000"), "{}", text());
    }
}
