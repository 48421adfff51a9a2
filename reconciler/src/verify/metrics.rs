//! Verification metrics, registered on the process's prometheus-client Registry (names get
//! the registry's `catalog_` prefix).

use std::sync::{Arc, OnceLock};

use catalog_api::CatalogImage;
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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// available, unavailable, failed
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
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
    pub duration: Histogram,
    pub registry_requests: Family<RequestLabels, Counter>,
    pub breaker_state: Family<HostLabels, Gauge>,
    images: Arc<ImagesByPhase>,
}

impl Metrics {
    /// Creates the metrics and registers them.
    pub fn register(registry: &mut Registry) -> Metrics {
        let metrics = Metrics {
            verifications: Family::default(),
            duration: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
            registry_requests: Family::default(),
            breaker_state: Family::default(),
            images: Arc::default(),
        };
        registry.register(
            "verifications",
            "CatalogImage verifications, by result (available, unavailable, failed)",
            metrics.verifications.clone(),
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
    pub fn observe_images(&self, store: Store<CatalogImage>) {
        let _ = self.images.store.set(store);
    }

    pub fn set_breaker(&self, host: &str, state: i64) {
        self.breaker_state
            .get_or_create(&HostLabels { host: host.into() })
            .set(state);
    }

    /// The observer handed to the registry client.
    pub fn request_observer(&self) -> Arc<dyn RequestObserver> {
        let requests = self.registry_requests.clone();
        Arc::new(move |r: &RequestRecord<'_>| {
            requests
                .get_or_create(&RequestLabels {
                    host: r.host.to_string(),
                    method: r.method.to_string(),
                    code: r.status.map_or("error".into(), |s| s.to_string()),
                })
                .inc();
        })
    }
}

/// `catalog_images{phase}`, computed from the watch cache at scrape time so it is always
/// exact (deleted images included).
#[derive(Default, Debug)]
struct ImagesByPhase {
    store: OnceLock<Store<CatalogImage>>,
}

impl Collector for ImagesByPhase {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(store) = self.store.get() else {
            return Ok(());
        };
        let mut counts = [0i64; Phase::ALL.len()];
        for image in store.state() {
            let phase = image
                .status
                .as_ref()
                .and_then(|s| s.phase)
                .unwrap_or(Phase::Pending);
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
