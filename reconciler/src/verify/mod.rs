//! CatalogImage verification controller: checks every image in its registry and reports
//! the result in its status.
//!
//! Layout: [`plan`] decides when (pure), [`check`] talks to the registry, [`status`] computes
//! the next status and events (pure), [`apply`] writes them; [`guard`] holds the per-host
//! breaker and concurrency limit, [`metrics`] the Prometheus metrics.
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
mod guard;
mod hosts;
pub mod local;
pub mod metrics;
pub(crate) mod oneshot;
mod plan;
mod status;
mod view;

use crate::panics::LockExt as _;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use catalog_api::image::Phase;
use catalog_api::labels::VERIFY_REQUESTED_AT;
use catalog_api::registry::{RegistryClient, RegistryOptions};
use catalog_api::{CatalogImage, CatalogImageStatus};
use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt as _;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt as _, watcher};

pub use metrics::Metrics;

use crate::Context;
use check::{Access, SecretLookup};
use plan::{Due, Observation, Timing, Trigger};
use view::ImageView;

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
}

/// Below this many remembered images, deleted ones are not swept.
const MEMORY_SWEEP_MIN: usize = 1024;

/// [`Memory`] per image (namespace, name), swept of deleted images now and then.
struct Memories {
    entries: HashMap<(String, String), Memory>,
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

/// Runs until `ctx.shutdown` fires.
pub async fn run(ctx: Arc<Context>, metrics: Metrics) -> anyhow::Result<()> {
    let registry = match registry_client(&ctx.config, &metrics) {
        Ok(client) => client,
        Err(e) => {
            // A configuration error stops the whole process at once, not at the next
            // shutdown: nothing would ever be verified.
            tracing::error!(
                error = format!("{e:#}"),
                "verification controller cannot start"
            );
            ctx.shutdown.cancel();
            return Err(e);
        }
    };
    watch_and_verify(ctx, metrics, registry).await
}

/// The registry client from `--insecure-registry` and `--registry-ca`.
fn registry_client(config: &crate::Config, metrics: &Metrics) -> anyhow::Result<RegistryClient> {
    let mut extra_ca_pem = Vec::new();
    if let Some(path) = &config.registry_ca {
        extra_ca_pem.push(
            std::fs::read(path).with_context(|| {
                format!("--registry-ca {}: cannot read the file", path.display())
            })?,
        );
    }
    RegistryClient::new(RegistryOptions {
        insecure_registries: config.insecure_registries.clone(),
        extra_ca_pem,
        observer: Some(metrics.request_observer()),
        ..Default::default()
    })
    .with_context(|| match &config.registry_ca {
        Some(path) => format!("--registry-ca {}", path.display()),
        None => "registry client".to_string(),
    })
}

async fn watch_and_verify(
    ctx: Arc<Context>,
    metrics: Metrics,
    registry: RegistryClient,
) -> anyhow::Result<()> {
    let config = &ctx.config;
    let timing = Timing {
        backoff_min: config.verify_backoff_min,
        backoff_max: config.verify_backoff_max.max(config.verify_backoff_min),
        min_interval: config.min_verification_interval,
    };
    let (images, secrets): (Api<CatalogImage>, Api<PartialObjectMeta<Secret>>) =
        match &config.namespace {
            Some(ns) => (
                Api::namespaced(ctx.client.clone(), ns),
                Api::namespaced(ctx.client.clone(), ns),
            ),
            None => (Api::all(ctx.client.clone()), Api::all(ctx.client.clone())),
        };
    let (image_reader, image_writer) = reflector::store();
    let (secret_reader, secret_writer) = reflector::store();
    metrics.observe_images(image_reader.clone());

    // Secrets: a metadata-only watch cache, and a trigger for the images that reference a
    // changed Secret, so fixing a Secret heals its images at once.
    let (trigger_tx, trigger_rx) = tokio::sync::mpsc::channel::<ObjectRef<ImageView>>(1024);
    let images_for_secrets = image_reader.clone();
    let secret_task = tokio::spawn(async move {
        let stream = watcher(secrets, watcher::Config::default())
            .default_backoff()
            .modify(|s: &mut PartialObjectMeta<Secret>| s.managed_fields_mut().clear())
            .reflect(secret_writer)
            .applied_objects();
        futures::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(secret) => {
                    for image in referencing(&images_for_secrets, &secret) {
                        let _ = trigger_tx.send(image).await;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "watching Secrets"),
            }
        }
    });
    tokio::select! {
        _ = secret_reader.wait_until_ready() => {}
        _ = ctx.shutdown.cancelled() => { secret_task.abort(); return Ok(()); }
    }

    let identity = config.identity.clone();
    let guards = Arc::new(guard::Guards::new(
        config.registry_concurrency,
        timing.backoff_min,
        timing.backoff_max,
        metrics.clone(),
    ));
    let sweep_task = tokio::spawn(hosts::sweep_forever(
        image_reader.clone(),
        guards.clone(),
        registry.clone(),
        metrics.clone(),
    ));
    let state = Arc::new(Shared {
        client: ctx.client.clone(),
        registry,
        guards: guards.clone(),
        verify_timeout: config.verify_timeout,
        secrets: secret_reader,
        timing,
        metrics,
        events: crate::events::EventPublisher::new(
            ctx.client.clone(),
            "catalog-reconciler",
            identity,
        ),
        memory: Mutex::default(),
    });
    let image_stream = watcher(images, watcher::Config::default())
        .default_backoff()
        .map_ok(view::event)
        .reflect(image_writer)
        .applied_objects()
        .predicate_filter(trigger_hash, kube::runtime::PredicateConfig::default());
    let secret_triggers = futures::stream::unfold(trigger_rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    tracing::info!("verification controller started");
    Controller::for_stream(image_stream, image_reader)
        .reconcile_on(secret_triggers)
        .with_config(ControllerConfig::default().concurrency(config.verify_workers))
        .graceful_shutdown_on(ctx.shutdown.clone().cancelled_owned())
        .run(reconcile_contained, error_policy, state)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "verification controller");
            }
        })
        .await;
    secret_task.abort();
    sweep_task.abort();
    tracing::info!("verification controller stopped");
    Ok(())
}

/// What may start a verification: generation (spec), the verify request annotation, and the
/// object's identity. Status, labels and other annotations are deliberately not included.
fn trigger_hash(image: &ImageView) -> Option<u64> {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    image.metadata.uid.hash(&mut hasher);
    image.metadata.generation.hash(&mut hasher);
    image
        .annotations()
        .get(VERIFY_REQUESTED_AT)
        .hash(&mut hasher);
    Some(hasher.finish())
}

/// Images whose authSecretRef names this Secret (always a Secret of the image's namespace).
fn referencing(
    images: &Store<ImageView>,
    secret: &PartialObjectMeta<Secret>,
) -> Vec<ObjectRef<ImageView>> {
    let name = secret.name_any();
    let namespace = secret.namespace();
    images
        .state()
        .iter()
        .filter(|image| {
            image.namespace() == namespace && image.secret.as_deref() == Some(name.as_str())
        })
        .map(|image| ObjectRef::from_obj(image.as_ref()))
        .collect()
}

/// The resourceVersion of the Secret the image names, from the metadata cache: `None` when it
/// names none or it does not exist.
fn secret_version(
    store: &Store<PartialObjectMeta<Secret>>,
    namespace: &str,
    secret: Option<&str>,
) -> Option<String> {
    store
        .get(&ObjectRef::new(secret?).within(namespace))
        .map(|s| s.resource_version().unwrap_or_default())
}

/// Reads the Secret the image names, from the image's own namespace and nowhere else.
async fn lookup_secret(client: &kube::Client, image: &CatalogImage) -> SecretLookup {
    let Some(reference) = &image.spec.auth_secret_ref else {
        return SecretLookup::NotReferenced;
    };
    let namespace = image.namespace().unwrap_or_default();
    let name = format!("{namespace}/{}", reference.name);
    let api: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    match api.get_opt(&reference.name).await {
        Ok(Some(secret)) => SecretLookup::Found(name, Box::new(secret)),
        Ok(None) => SecretLookup::Missing(name),
        Err(e) => SecretLookup::Unreadable(name, e.to_string()),
    }
}

/// What [`plan::due`] is decided from, taken from the cached view or from the object.
struct Facts<'a> {
    namespace: &'a str,
    name: &'a str,
    uid: Option<&'a str>,
    generation: Option<i64>,
    secret: Option<&'a str>,
    interval: &'a str,
    verify_requested: Option<&'a str>,
    status: Option<&'a CatalogImageStatus>,
}

impl<'a> Facts<'a> {
    fn of_image(image: &'a CatalogImage) -> Facts<'a> {
        let meta = &image.metadata;
        Facts {
            namespace: meta.namespace.as_deref().unwrap_or_default(),
            name: meta.name.as_deref().unwrap_or_default(),
            uid: meta.uid.as_deref(),
            generation: meta.generation,
            secret: image.spec.auth_secret_ref.as_ref().map(|r| r.name.as_str()),
            interval: &image.spec.verification_interval,
            verify_requested: image
                .annotations()
                .get(VERIFY_REQUESTED_AT)
                .map(String::as_str),
            status: image.status.as_ref(),
        }
    }

    /// From the cached view; `status` is [`ImageView::status`].
    fn of_view(view: &'a ImageView, status: Option<&'a CatalogImageStatus>) -> Facts<'a> {
        let meta = &view.metadata;
        Facts {
            namespace: meta.namespace.as_deref().unwrap_or_default(),
            name: meta.name.as_deref().unwrap_or_default(),
            uid: meta.uid.as_deref(),
            generation: meta.generation,
            secret: view.secret.as_deref(),
            interval: &view.interval,
            verify_requested: view
                .annotations()
                .get(VERIFY_REQUESTED_AT)
                .map(String::as_str),
            status,
        }
    }

    fn seed(&self) -> &str {
        self.uid.unwrap_or(self.name)
    }

    fn key(&self) -> (String, String) {
        (self.namespace.to_string(), self.name.to_string())
    }
}

/// Whether the image is due, from `facts` and what this process remembers of it.
fn due(state: &Shared, facts: &Facts<'_>) -> Due {
    let secret_version = secret_version(&state.secrets, facts.namespace, facts.secret);
    let now = Instant::now();
    let (secret_changed, scheduled_in, registry_wait) = {
        let memory = state.memory.locked();
        let m = memory.entries.get(&facts.key());
        (
            m.and_then(|m| m.secret_version.as_ref())
                .is_some_and(|v| *v != secret_version),
            m.and_then(|m| m.scheduled)
                .map(|t| t.saturating_duration_since(now)),
            m.and_then(|m| m.registry_wait_until)
                .map(|t| t.saturating_duration_since(now)),
        )
    };
    let interval = plan::interval(facts.interval, &state.timing);
    let observation = Observation {
        generation: facts.generation,
        status: facts.status,
        verify_requested: facts.verify_requested,
        now_ms: jiff::Timestamp::now().as_millisecond(),
        interval,
        secret_changed,
        registry_wait,
        scheduled_in,
        seed: facts.seed(),
    };
    plan::due(&observation, &state.timing)
}

/// Decides from the cached view, then (only when due) reads the object and decides again
/// from it, since the cache may not show this controller's last write yet.
async fn reconcile(view: Arc<ImageView>, state: Arc<Shared>) -> Result<Action, ReconcileError> {
    if view.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let (namespace, name) = (view.namespace().unwrap_or_default(), view.name_any());
    let cached = view.status();
    let facts = Facts::of_view(&view, cached.as_ref());
    if let Due::Later(wait) = due(&state, &facts) {
        return Ok(Action::requeue(wait));
    }
    // Before anything else: an image of a saturated host gives its worker back at once.
    let Some(admission) = check::admit_host(&state.guards, view.registry_host.as_deref()) else {
        let jitter = plan::jitter((facts.seed(), jiff::Timestamp::now().as_millisecond()));
        return Ok(Action::requeue(guard::BUSY_RETRY.mul_f64(1.0 + jitter)));
    };
    let api: Api<CatalogImage> = Api::namespaced(state.client.clone(), &namespace);
    let image = match api.get_opt(&name).await {
        Ok(Some(image)) => image,
        Ok(None) => return Ok(Action::await_change()),
        Err(source) => {
            return Err(ReconcileError::Read {
                namespace,
                name,
                source,
            });
        }
    };
    let trigger = match due(&state, &Facts::of_image(&image)) {
        Due::Later(wait) => return Ok(Action::requeue(wait)),
        Due::Now(trigger) => trigger,
    };
    Ok(verify(&image, trigger, admission, &state).await?)
}

/// One verification of `image`: check, status, events, metrics, log, memory.
async fn verify(
    image: &CatalogImage,
    trigger: Trigger,
    admission: check::Admission,
    state: &Shared,
) -> Result<Action, WriteError> {
    let facts = Facts::of_image(image);
    // The Secret version this attempt uses, read before the Secret is: a change that lands
    // during the attempt must still count as a change afterwards.
    let secret_version = secret_version(&state.secrets, facts.namespace, facts.secret);
    let interval = plan::interval(facts.interval, &state.timing);
    let started = Instant::now();
    let context = |now| status::Inputs {
        generation: facts.generation,
        now,
        verify_requested: facts.verify_requested,
        interval,
        timing: &state.timing,
        seed: facts.seed(),
    };
    let (outcome, transition) = verify_and_write(state, image, trigger, admission, context).await?;
    apply::publish_events(&state.events, image, &transition.events).await;
    record(
        state,
        image,
        trigger,
        &outcome,
        &transition,
        started.elapsed(),
    );
    let registry_wait_until = match &outcome {
        status::Outcome::Failed(f)
            if f.transient && transition.status.phase == Some(Phase::Unavailable) =>
        {
            Instant::now().checked_add(transition.requeue)
        }
        _ => None,
    };
    remember(
        state,
        facts.key(),
        Memory {
            secret_version: Some(secret_version),
            scheduled: Instant::now().checked_add(transition.requeue),
            registry_wait_until,
        },
    );
    Ok(Action::requeue(transition.requeue))
}

/// Metrics and the log line of one verification.
fn record(
    state: &Shared,
    image: &CatalogImage,
    trigger: Trigger,
    outcome: &status::Outcome,
    transition: &status::Transition,
    elapsed: Duration,
) {
    let new_phase = transition.status.phase.unwrap_or_default();
    state.metrics.duration.observe(elapsed.as_secs_f64());
    state
        .metrics
        .verifications
        .get_or_create(&metrics::ResultLabels {
            result: new_phase.as_str().to_ascii_lowercase(),
        })
        .inc();
    let (reason, detail) = match outcome {
        status::Outcome::Verified { .. } => ("Verified", String::new()),
        status::Outcome::Mismatch {
            reason, message, ..
        } => (*reason, message.clone()),
        status::Outcome::Failed(f) => (f.reason, f.message.clone()),
    };
    tracing::info!(
        namespace = %image.namespace().unwrap_or_default(),
        name = %image.name_any(),
        trigger = ?trigger,
        phase = %new_phase,
        reason,
        detail,
        digest = transition.status.registry_metadata.as_ref().and_then(|m| m.resolved_digest.as_deref()).unwrap_or(""),
        duration_ms = elapsed.as_millis() as u64,
        next_in_s = transition.requeue.as_secs(),
        "verification done"
    );
}

/// Records what this process remembers of an image. Entries of deleted images are swept
/// when the map has doubled since the last sweep (amortised: one pass per doubling, not one
/// per verification, which at 100,000 images would be quadratic).
fn remember(state: &Shared, key: (String, String), memory_entry: Memory) {
    let mut memory = state.memory.locked();
    if memory.entries.len() >= memory.sweep_at {
        let now = Instant::now();
        // A deleted image's plan lies in the past; dropping a live image's entry only loses
        // its precise timer (the status still schedules it).
        memory.entries.retain(|_, m| {
            m.scheduled
                .is_some_and(|t| t + Duration::from_secs(3600) > now)
        });
        memory.sweep_at = (2 * memory.entries.len()).max(MEMORY_SWEEP_MIN);
    }
    memory.entries.insert(key, memory_entry);
}

/// How long a first verification (or one after a spec change) may take before its status
/// says `Verifying`: a registry that answers within it costs one status write, not two
/// (verifying 100,000 new images is 100,000 writes fewer), and a slow one still shows the
/// work in progress.
pub const VERIFYING_NOTICE: Duration = Duration::from_secs(1);

/// Checks the image in its registry and writes the resulting status: `Verifying` first when
/// a first (or spec-changed) check outlasts [`VERIFYING_NOTICE`]. The transition is always
/// computed from the `Verifying` status on those triggers, written or not, so conditions
/// and events are the same either way.
async fn verify_and_write<'a>(
    state: &Shared,
    image: &CatalogImage,
    trigger: Trigger,
    admission: check::Admission,
    context: impl Fn(jiff::Timestamp) -> status::Inputs<'a>,
) -> Result<(status::Outcome, status::Transition), WriteError> {
    let secret = lookup_secret(&state.client, image).await;
    let live = image.status.as_ref();
    let announce = matches!(trigger, Trigger::First | Trigger::SpecChanged)
        && live.and_then(|s| s.phase) != Some(Phase::Verifying);
    let verifying = announce.then(|| status::verifying(live, &context(jiff::Timestamp::now())));
    let access = Access {
        client: &state.registry,
        admission,
        deadline: state.verify_timeout,
    };
    let previous = live.and_then(|s| s.registry_metadata.as_ref());
    let check = check::check(access, &image.spec, &secret, previous, trigger);
    futures::pin_mut!(check);
    let mut written = live;
    let outcome = match &verifying {
        Some(verifying) => tokio::select! {
            outcome = &mut check => outcome,
            _ = tokio::time::sleep(VERIFYING_NOTICE) => {
                apply::write_status(&state.client, image, live, verifying).await?;
                written = Some(verifying);
                check.await
            }
        },
        None => check.await,
    };
    let base = verifying.as_ref().or(live);
    let transition = status::transition(base, &outcome, &context(jiff::Timestamp::now()));
    apply::write_status(&state.client, image, written, &transition.status).await?;
    Ok((outcome, transition))
}

/// One image's verification, with a panic kept inside it (the Controller would otherwise
/// end with it, and no image would be verified again).
async fn reconcile_contained(
    image: Arc<ImageView>,
    state: Arc<Shared>,
) -> Result<Action, ReconcileError> {
    let (namespace, name) = (image.namespace().unwrap_or_default(), image.name_any());
    match crate::panics::contained(reconcile(image, state)).await {
        Ok(result) => result,
        Err(message) => Err(ReconcileError::Panicked {
            namespace,
            name,
            message,
        }),
    }
}

fn error_policy(_image: Arc<ImageView>, error: &ReconcileError, _state: Arc<Shared>) -> Action {
    match error {
        ReconcileError::Write(_) | ReconcileError::Read { .. } => {
            tracing::warn!(error = %error, "verification not done; retrying in 5s");
            Action::requeue(Duration::from_secs(5))
        }
        ReconcileError::Panicked { .. } => {
            tracing::error!(error = %error, "a verification panicked; retrying in 5m (please report this as a bug)");
            Action::requeue(Duration::from_secs(300))
        }
    }
}
