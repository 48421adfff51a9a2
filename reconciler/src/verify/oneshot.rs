//! One verification outside the controller's loop: the entry point ([`OneShot::verify`]) that
//! pull-request previews ([`OneShot::check`]) and `caib catalog verify --local`
//! ([`super::local`]) share. The same [`check::check`](super::check::check) against the
//! registry, behind a host guard and within the verification deadline, but no status write, no
//! Event and no schedule.
//!
//! It has a registry client and host guards of its own: a preview's requests are counted in
//! `catalog_registry_requests_total` like any other, but its breakers and token cache are not
//! the controller's, so a pull request naming a broken registry can neither open the breaker
//! that live images depend on nor read tokens the controller obtained.

use std::time::{Duration, Instant};

use catalog_api::image::RegistryMetadata;
use catalog_api::registry::RegistryClient;
use catalog_api::{CatalogImage, CatalogImageSpec, ImageReference};
use prometheus_client::registry::Registry;

use super::check::{self, Access, Admission, SecretLookup};
use super::guard::{BUSY_RETRY, Guards};
use super::metrics::Metrics;
use super::plan::{Timing, Trigger};
use super::status::Outcome;

/// What a one-shot verification found.
#[derive(Clone, Debug, PartialEq)]
pub enum Checked {
    /// Reachable, digest as pinned, declared architecture present.
    Verified(RegistryMetadata),
    /// Something is wrong: the verifier's reason and message (and what was read, if anything).
    Failed {
        reason: &'static str,
        message: String,
        metadata: Option<RegistryMetadata>,
    },
}

/// A registry client and host guards for one-shot verifications.
pub struct OneShot {
    registry: RegistryClient,
    guards: Guards,
    deadline: Duration,
}

impl OneShot {
    /// For previews, from the reconciler's flags (`--insecure-registry`, `--registry-ca`,
    /// `--registry-concurrency`, `--verify-timeout`); requests are counted in `metrics`.
    pub fn new(config: &crate::Config, metrics: &Metrics) -> anyhow::Result<OneShot> {
        let registry = super::registry_client(config, metrics)?;
        Ok(OneShot::with_guards(
            registry,
            config.registry_concurrency,
            Timing::of(config),
            config.verify_timeout,
        ))
    }

    /// For one process verifying one image (`caib catalog verify --local`): one permit per
    /// host and the default backoff, so the breaker never opens before this verification.
    pub fn single(registry: RegistryClient, deadline: Duration) -> OneShot {
        OneShot::with_guards(registry, 1, Timing::default(), deadline)
    }

    fn with_guards(
        registry: RegistryClient,
        per_host: usize,
        timing: Timing,
        deadline: Duration,
    ) -> OneShot {
        // Breaker gauges of their own, never exported: the controller's per-host series must
        // show the controller's breakers only.
        let detached = Metrics::register(&mut Registry::default());
        OneShot {
            registry,
            guards: Guards::new(per_host, timing.backoff_min, timing.backoff_max, detached),
            deadline,
        }
    }

    /// Verifies `spec` with `secret` as the controller does on `trigger` (`previous`: the
    /// registry facts already in the status), waiting for a permit on its registry host for
    /// at most the verification deadline.
    pub async fn verify(
        &self,
        spec: &CatalogImageSpec,
        secret: &SecretLookup,
        previous: Option<&RegistryMetadata>,
        trigger: Trigger,
    ) -> Outcome {
        let access = Access {
            client: &self.registry,
            admission: self.admit(&spec.registry_url).await,
            deadline: self.deadline,
        };
        check::check(access, spec, secret, previous, trigger).await
    }

    /// A preview's verification of `image`: its namespace decides whose Secret
    /// `authSecretRef` names (read through `client`), and there is no status to start from.
    pub async fn check(&self, client: &kube::Client, image: &CatalogImage) -> Checked {
        let secret = super::lookup_secret(client, image).await;
        match self
            .verify(&image.spec, &secret, None, Trigger::First)
            .await
        {
            Outcome::Verified { metadata, .. } => Checked::Verified(metadata),
            Outcome::Mismatch {
                metadata,
                reason,
                message,
            } => Checked::Failed {
                reason,
                message,
                metadata: Some(metadata),
            },
            Outcome::Failed(failure) => Checked::Failed {
                reason: failure.reason,
                message: failure.message,
                metadata: None,
            },
        }
    }

    /// A pass on the image's host; while the host is saturated, tried again every
    /// [`BUSY_RETRY`] (the guard has no queue to wait in), up to the deadline, after which
    /// the host is taken as open.
    async fn admit(&self, registry_url: &str) -> Admission {
        let host = ImageReference::parse(registry_url).ok();
        let host = host.as_ref().map(|r| r.registry());
        let give_up = Instant::now() + self.deadline;
        loop {
            if let Some(admission) = check::admit_host(&self.guards, host) {
                return admission;
            }
            if Instant::now() >= give_up {
                return Admission::Open(BUSY_RETRY);
            }
            tokio::time::sleep(BUSY_RETRY).await;
        }
    }

    /// Forgets every host's guard and cached token: called when no preview runs, so what
    /// previews named does not accumulate.
    pub fn forget_hosts(&self) {
        self.guards.retain(&Default::default());
        self.registry.retain_registries(&|_| false);
    }
}
