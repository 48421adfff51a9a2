//! Sync metrics, registered on the process's prometheus-client Registry.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    pub source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub source: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub source: String,
    /// The Ready condition's reason ([`super::Error::reason`]).
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerbLabels {
    pub verb: String,
}

/// Handles to the sync metrics (cheap to clone).
#[derive(Clone)]
pub struct Metrics {
    pub sync_duration: Family<SourceLabels, Histogram>,
    pub entries: Family<OutcomeLabels, Counter>,
    pub api_writes: Family<VerbLabels, Counter>,
    pub commit_to_applied: Histogram,
    pub fetch_failures: Family<SourceLabels, Counter>,
    pub failures: Family<ReasonLabels, Counter>,
    pub drift_reverted: Family<SourceLabels, Counter>,
}

impl Metrics {
    /// Creates the metrics and registers them (names get the registry's prefix).
    pub fn register(registry: &mut Registry) -> Metrics {
        let metrics = Metrics::unregistered();
        registry.register(
            "sync_duration_seconds",
            "Wall time of one CatalogSource sync",
            metrics.sync_duration.clone(),
        );
        registry.register(
            "sync_entries",
            "Entries handled by syncs, by outcome (created, updated, unchanged, pruned, invalid, conflict, kept)",
            metrics.entries.clone(),
        );
        registry.register(
            "sync_api_writes",
            "Kubernetes API writes made by the sync controller, by verb",
            metrics.api_writes.clone(),
        );
        registry.register(
            "sync_commit_to_applied_seconds",
            "Time from a commit's committer date to its entries being applied",
            metrics.commit_to_applied.clone(),
        );
        registry.register(
            "sync_fetch_failures",
            "Failed fetches of a CatalogSource's remote",
            metrics.fetch_failures.clone(),
        );
        registry.register(
            "sync_failures",
            "Syncs that ended with Ready=False on an error, by the condition's reason",
            metrics.failures.clone(),
        );
        registry.register(
            "sync_drift_reverted",
            "Manual changes to managed CatalogImages that a sync reverted (a DriftReverted Event each)",
            metrics.drift_reverted.clone(),
        );
        metrics
    }

    /// Metrics not exported anywhere (tests, local mode without a registry).
    pub fn unregistered() -> Metrics {
        Metrics {
            sync_duration: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.005, 2.0, 14))
            }),
            entries: Family::default(),
            api_writes: Family::default(),
            commit_to_applied: Histogram::new(exponential_buckets(0.1, 2.0, 16)),
            fetch_failures: Family::default(),
            failures: Family::default(),
            drift_reverted: Family::default(),
        }
    }

    pub fn api_write(&self, verb: &str) {
        self.api_writes
            .get_or_create(&VerbLabels { verb: verb.into() })
            .inc();
    }

    pub fn drift_reverted(&self, source: &str) {
        self.drift_reverted
            .get_or_create(&SourceLabels {
                source: source.into(),
            })
            .inc();
    }

    pub fn entries(&self, source: &str, outcome: &str, n: usize) {
        if n > 0 {
            self.entries
                .get_or_create(&OutcomeLabels {
                    source: source.into(),
                    outcome: outcome.into(),
                })
                .inc_by(n as u64);
        }
    }
}
