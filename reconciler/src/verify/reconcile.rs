//! One reconcile of one image: decide from the cached view whether it is due, let a writing
//! sync go first, take the host's pass, read the object, check it in its registry, write the
//! status, publish the events and remember the schedule.

use std::time::{Duration, Instant};

use catalog_api::image::Phase;
use catalog_api::labels::VERIFY_REQUESTED_AT;
use catalog_api::{CatalogImage, CatalogImageStatus};
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt as _;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use std::sync::Arc;

use super::check::{self, Access, SecretLookup};
use super::plan::{self, Due, Observation, Trigger};
use super::view::ImageView;
use super::{
    ImageKey, MEMORY_SWEEP_MIN, Memory, ReconcileError, Shared, WriteError, apply, guard, metrics,
    status, timers,
};
use crate::panics::LockExt as _;
use crate::sync_writes::MAX_WAIT;

/// The resourceVersion of the Secret the image names, from the metadata cache: `None` when it
/// names none or it does not exist.
pub(super) fn secret_version(
    store: &Store<PartialObjectMeta<Secret>>,
    namespace: &str,
    secret: Option<&str>,
) -> Option<String> {
    store
        .get(&ObjectRef::new(secret?).within(namespace))
        .map(|s| s.resource_version().unwrap_or_default())
}

/// Reads the Secret the image names, from the image's own namespace and nowhere else.
pub(super) async fn lookup_secret(client: &kube::Client, image: &CatalogImage) -> SecretLookup {
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
            uid: view.uid.as_deref(),
            generation: meta.generation,
            secret: view.secret.as_deref(),
            interval: &view.interval,
            verify_requested: view.verify_requested(),
            status,
        }
    }

    fn seed(&self) -> &str {
        self.uid.unwrap_or(self.name)
    }

    fn key(&self) -> ImageKey {
        ImageKey::new(self.namespace, self.name)
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
pub(super) async fn reconcile(
    view: Arc<ImageView>,
    state: Arc<Shared>,
) -> Result<Action, ReconcileError> {
    if view.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let (namespace, name) = (view.namespace().unwrap_or_default(), view.name_any());
    let cached = view.status();
    let facts = Facts::of_view(&view, cached.as_ref());
    let cached_trigger = match due(&state, &facts) {
        Due::Later(wait) => return Ok(later(&state, &facts, wait)),
        Due::Now(trigger) => trigger,
    };
    // The syncs' writes go first; the object read below decides again after the wait.
    if state.sync_writes.wait_quiet(MAX_WAIT).await {
        state.metrics.waited_for_sync.inc();
    }
    // Before anything else: an image of a saturated host gives its worker back at once.
    let Some(admission) = check::admit_host(&state.guards, view.registry_host.as_deref()) else {
        return Ok(Action::requeue(spread(&facts, guard::BUSY_RETRY)));
    };
    if let Some(wait) = plan::deferred(cached_trigger, admission.open_for(), facts.status) {
        return Ok(defer(&state, &facts, wait));
    }
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
    let facts = Facts::of_image(&image);
    let trigger = match due(&state, &facts) {
        Due::Later(wait) => return Ok(later(&state, &facts, wait)),
        Due::Now(trigger) => trigger,
    };
    if let Some(wait) = plan::deferred(trigger, admission.open_for(), facts.status) {
        return Ok(defer(&state, &facts, wait));
    }
    Ok(verify(&image, trigger, admission, &state).await?)
}

/// A retry deferred by its host's open breaker ([`plan::deferred`]): no request, no status
/// write, no Event. It is retried once the breaker lets requests through again, spread over
/// up to twice that wait so that the images of one host do not all come back at once.
fn defer(state: &Shared, facts: &Facts<'_>, wait: Duration) -> Action {
    let delay = spread(facts, wait.max(guard::BUSY_RETRY));
    let action = {
        let mut memory = state.memory.locked();
        let entry = memory.entries.entry(facts.key()).or_default();
        let action = timers::plan(entry, delay);
        entry.registry_wait_until = entry.scheduled;
        action
    };
    state.metrics.deferred.inc();
    action
}

/// An image not due for `wait`: planned in its memory ([`timers`]).
fn later(state: &Shared, facts: &Facts<'_>, wait: Duration) -> Action {
    let mut memory = state.memory.locked();
    timers::plan(memory.entries.entry(facts.key()).or_default(), wait)
}

/// `base` to twice `base`, jittered per image and attempt: images turned away together
/// (a busy host, an open breaker) do not all come back at once.
fn spread(facts: &Facts<'_>, base: Duration) -> Duration {
    let jitter = plan::jitter((facts.seed(), jiff::Timestamp::now().as_millisecond()));
    base.mul_f64(1.0 + jitter)
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
    let mut memory = Memory {
        secret_version: Some(secret_version),
        registry_wait_until,
        ..Memory::default()
    };
    let action = timers::plan(&mut memory, transition.requeue);
    remember(state, facts.key(), memory);
    Ok(action)
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
fn remember(state: &Shared, key: ImageKey, memory_entry: Memory) {
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
