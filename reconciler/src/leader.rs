//! Leader election on a `coordination.k8s.io/v1` Lease (`--leader-elect`), so several
//! replicas are safe: only the holder runs controllers.
//!
//! The algorithm is client-go's: a candidate takes the Lease when it is free (released) or
//! when its record has not changed for a whole lease duration as observed on the
//! candidate's own clock (no trust in other machines' clocks); the holder renews it every
//! third of the duration and gives up (stopping the process) when it could not renew for
//! two thirds of it; on graceful shutdown the holder releases the Lease so a standby
//! replica takes over at once instead of waiting for expiry.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, PostParams};
use tokio_util::sync::CancellationToken;

use crate::Config;

/// The Lease as this replica holds it.
pub struct Leadership {
    api: Api<Lease>,
    name: String,
    identity: String,
    lost: Arc<AtomicBool>,
    stop_renewing: CancellationToken,
    renewal: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct Elector {
    api: Api<Lease>,
    name: String,
    identity: String,
    duration: Duration,
}

/// Waits until this replica holds the Lease; `None` when shutdown came first.
pub async fn acquire(
    client: &kube::Client,
    config: &Config,
    shutdown: &CancellationToken,
) -> anyhow::Result<Option<Leadership>> {
    let namespace = config
        .lease_namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let identity = config.identity.clone().unwrap_or_else(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        format!("catalog-reconciler-{}-{nanos:x}", std::process::id())
    });
    let elector = Elector {
        api: Api::namespaced(client.clone(), &namespace),
        name: config.lease_name.clone(),
        identity,
        duration: config.lease_duration.max(Duration::from_secs(1)),
    };
    let retry = (elector.duration / 3).min(Duration::from_secs(2));
    let mut observed: Option<(String, Instant)> = None;
    tracing::info!(lease = %format!("{namespace}/{}", elector.name), identity = %elector.identity, "waiting for leadership");
    loop {
        match elector.try_acquire(&mut observed).await {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => tracing::warn!(error = format!("{e:#}"), "leader election attempt failed"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(None),
            _ = tokio::time::sleep(retry) => {}
        }
    }
    tracing::info!(identity = %elector.identity, "acquired leadership");
    let lost = Arc::new(AtomicBool::new(false));
    let stop_renewing = CancellationToken::new();
    let renewal = tokio::spawn(renew(
        elector.clone(),
        lost.clone(),
        stop_renewing.clone(),
        shutdown.clone(),
    ));
    Ok(Some(Leadership {
        api: elector.api,
        name: elector.name,
        identity: elector.identity,
        lost,
        stop_renewing,
        renewal,
    }))
}

impl Leadership {
    /// Whether the Lease was lost (another replica may be running controllers).
    pub fn lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// Stops renewing and frees the Lease (if still ours) so a standby takes over at once.
    pub async fn release(self) {
        self.stop_renewing.cancel();
        let _ = self.renewal.await;
        if self.lost.load(Ordering::SeqCst) {
            return;
        }
        let result: anyhow::Result<()> = async {
            let mut lease = self.api.get(&self.name).await?;
            let spec = lease.spec.get_or_insert_with(Default::default);
            if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
                return Ok(());
            }
            spec.holder_identity = None;
            spec.lease_duration_seconds = Some(1);
            spec.renew_time = Some(MicroTime(jiff::Timestamp::now()));
            self.api
                .replace(&self.name, &PostParams::default(), &lease)
                .await?;
            Ok(())
        }
        .await;
        match result {
            Ok(()) => tracing::info!(identity = %self.identity, "released leadership"),
            Err(e) => tracing::warn!(
                error = format!("{e:#}"),
                "could not release the leader Lease; it expires on its own"
            ),
        }
    }
}

impl Elector {
    /// One attempt: `Ok(true)` when this replica now holds the Lease.
    async fn try_acquire(&self, observed: &mut Option<(String, Instant)>) -> anyhow::Result<bool> {
        let now = MicroTime(jiff::Timestamp::now());
        let seconds = i32::try_from(self.duration.as_secs())
            .unwrap_or(i32::MAX)
            .max(1);
        let Some(mut lease) = self
            .api
            .get_opt(&self.name)
            .await
            .context("reading the leader Lease")?
        else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(seconds),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(e).context("creating the leader Lease"),
            };
        };
        let spec = lease.spec.get_or_insert_with(Default::default);
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let record = format!("{holder:?}/{:?}", spec.renew_time.as_ref().map(|t| t.0));
        let held_by_me = holder.as_deref() == Some(self.identity.as_str());
        let expired = match (&holder, observed.as_ref()) {
            (None, _) => true,
            _ if held_by_me => true,
            (Some(_), Some((seen, since))) if *seen == record => since.elapsed() >= self.duration,
            (Some(_), _) => {
                *observed = Some((record, Instant::now()));
                false
            }
        };
        if !expired {
            return Ok(false);
        }
        if !held_by_me {
            spec.acquire_time = Some(now.clone());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        spec.holder_identity = Some(self.identity.clone());
        spec.lease_duration_seconds = Some(seconds);
        spec.renew_time = Some(now);
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e).context("taking the leader Lease"),
        }
    }

    /// One renewal: `Ok(false)` when someone else holds the Lease now.
    async fn renew_once(&self) -> anyhow::Result<bool> {
        let mut lease = self.api.get(&self.name).await?;
        let spec = lease.spec.get_or_insert_with(Default::default);
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(false);
        }
        spec.renew_time = Some(MicroTime(jiff::Timestamp::now()));
        self.api
            .replace(&self.name, &PostParams::default(), &lease)
            .await?;
        Ok(true)
    }
}

/// Renews until stopped; on losing the Lease stops the whole process (`shutdown`), since
/// another replica may already be running the controllers.
async fn renew(
    elector: Elector,
    lost: Arc<AtomicBool>,
    stop: CancellationToken,
    shutdown: CancellationToken,
) {
    let period = elector.duration / 3;
    let deadline = elector.duration * 2 / 3;
    let mut last_renewed = Instant::now();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(period) => {}
        }
        match elector.renew_once().await {
            Ok(true) => last_renewed = Instant::now(),
            Ok(false) => {
                tracing::error!(identity = %elector.identity, "leader Lease taken by another replica; stopping");
                break;
            }
            Err(e) if last_renewed.elapsed() < deadline => {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "leader Lease renewal failed; retrying"
                );
            }
            Err(e) => {
                tracing::error!(
                    error = format!("{e:#}"),
                    "leader Lease not renewed in time; stopping"
                );
                break;
            }
        }
    }
    lost.store(true, Ordering::SeqCst);
    shutdown.cancel();
}
