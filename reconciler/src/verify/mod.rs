//! CatalogImage verification controller: checks every image in its registry and reports
//! the result in its status.
//!
//! Layout: [`controller`] wires the watches and kube-runtime's Controller, [`reconcile`] is one
//! image's reconcile; [`plan`] decides when (pure), [`check`] talks to the registry, [`status`]
//! computes the next status and events (pure), [`apply`] writes them; [`guard`] holds the
//! per-host breaker and concurrency limit, [`metrics`] the Prometheus metrics.
//!
//! Triggers: a spec change (generation), the verify-requested-at annotation, a change of the
//! referenced Secret, and the schedule (interval or backoff).
//!
//! Bounds against slow or hostile registries: a due image first *tries* its host's permit
//! (`--registry-concurrency`) and, when the host is saturated, is requeued in 1-2s without
//! holding one of the `--verify-workers` slots, so a silent registry cannot starve the others;
//! all the registry requests of one verification share one deadline (`--verify-timeout`); and
//! per-host state is swept once no image names the host ([`hosts`]).
//!
//! Secrets: only their metadata is watched (to notice a change of a referenced Secret), and a
//! Secret's data is read with one GET when a verification needs it, from the image's own
//! namespace only. Caching every Secret of the cluster would cost memory proportional to what
//! tenants store, and hold credentials this controller never uses. Status writes change neither
//! generation nor annotations, and the watch is filtered on exactly those, so the
//! controller's own writes never start a verification.

mod apply;
mod check;
mod controller;
mod guard;
mod hosts;
pub mod local;
pub mod metrics;
pub(crate) mod oneshot;
mod plan;
mod reconcile;
mod status;
mod timers;
mod view;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use catalog_api::registry::RegistryClient;
use k8s_openapi::api::core::v1::Secret;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::Store;

pub use controller::run;
pub use metrics::Metrics;
pub use reconcile::VERIFYING_NOTICE;

use controller::registry_client;
use plan::Timing;
use reconcile::lookup_secret;
/// What this process remembers about one image between reconciles (not in the status:
/// precise timers and the Secret version last used).
#[derive(Default)]
struct Memory {
    /// resourceVersion of the referenced Secret at the last attempt (`Some(None)`: absent).
    secret_version: Option<Option<String>>,
    /// When the next verification is planned.
    scheduled: Option<Instant>,
    /// Not before this instant: the registry's Retry-After or an open breaker.
    registry_wait_until: Option<Instant>,
    /// `scheduled` is a long wait that [`timers`] fires (not yet fired).
    timer_armed: bool,
}

/// Below this many remembered images, deleted ones are not swept.
const MEMORY_SWEEP_MIN: usize = 1024;

/// An image's `namespace/name` in one allocation: the key of [`Memories`], held for every
/// image (a pair of strings cost 7 MB more at 100,000 images). Neither a namespace nor an
/// object name can contain `/`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct ImageKey(Box<str>);

impl ImageKey {
    fn new(namespace: &str, name: &str) -> ImageKey {
        ImageKey(format!("{namespace}/{name}").into())
    }

    /// (namespace, name).
    fn parts(&self) -> (&str, &str) {
        self.0.split_once('/').unwrap_or(("", &self.0))
    }
}

/// [`Memory`] per image, swept of deleted images now and then.
struct Memories {
    entries: HashMap<ImageKey, Memory>,
    /// Sweep when `entries` reaches this size.
    sweep_at: usize,
}

impl Default for Memories {
    fn default() -> Self {
        Memories {
            entries: HashMap::new(),
            sweep_at: MEMORY_SWEEP_MIN,
        }
    }
}

/// Everything the verifications share; [`Memory`] is what one image's verifications remember
/// (the sync uses the same two words).
struct Shared {
    client: kube::Client,
    registry: RegistryClient,
    guards: Arc<guard::Guards>,
    /// `--verify-timeout`: deadline of one verification's registry requests together.
    verify_timeout: Duration,
    /// Metadata of the Secrets (names, resourceVersions): no data.
    secrets: Store<PartialObjectMeta<Secret>>,
    timing: Timing,
    metrics: Metrics,
    events: crate::events::EventPublisher,
    memory: Mutex<Memories>,
    /// Whether a sync is writing: a verification waits for it ([`crate::sync_writes`]).
    sync_writes: crate::sync_writes::SyncWrites,
}

/// Why a reconcile ended without its normal requeue.
#[derive(Debug, thiserror::Error)]
enum ReconcileError {
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("reading {namespace}/{name}: {source}")]
    Read {
        namespace: String,
        name: String,
        source: kube::Error,
    },
    /// A bug hit on this image: contained so the controller keeps verifying the others.
    #[error("verifying {namespace}/{name} panicked: {message}")]
    Panicked {
        namespace: String,
        name: String,
        message: String,
    },
}

#[derive(Debug, thiserror::Error)]
#[error("writing the status of {namespace}/{name}: {source}")]
struct WriteError {
    namespace: String,
    name: String,
    source: kube::Error,
}
