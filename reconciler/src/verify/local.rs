//! One verification exactly as the controller runs it, from outside the cluster:
//! `caib catalog verify NAME --local` calls [`verify`], so the reasons, conditions and phase
//! it prints are the controller's by construction (the same [`check`](super::check), through
//! the one-shot entry point previews use too, [`OneShot::verify`], and the same
//! [`transition`](super::status::transition)), not a copy that drifts.

use std::time::Duration;

use catalog_api::registry::{Credentials, RegistryClient};
use catalog_api::{CatalogImage, CatalogImageStatus};

use super::check::SecretLookup;
use super::oneshot::OneShot;
use super::plan::{self, Timing, Trigger};
use super::status::{self, Inputs};

/// The status the controller writes after verifying `image` on a trigger that reads the
/// manifests (its first verification, or `caib catalog verify`), with `credentials` in
/// place of the image's Secret and `deadline` for all the registry requests together.
pub async fn verify(
    client: &RegistryClient,
    image: &CatalogImage,
    credentials: Credentials,
    deadline: Duration,
) -> CatalogImageStatus {
    let timing = Timing::default();
    let interval = plan::interval(&image.spec.verification_interval, &timing);
    let name = image.metadata.name.clone().unwrap_or_default();
    let seed = image.metadata.uid.clone().unwrap_or(name);
    let context = |now| Inputs {
        generation: image.metadata.generation,
        now,
        verify_requested: None,
        interval,
        timing: &timing,
        seed: &seed,
    };
    let trigger = match image.status.as_ref().and_then(|s| s.phase) {
        None => Trigger::First,
        Some(_) => Trigger::Requested,
    };
    let current = match trigger {
        Trigger::First => status::verifying(image.status.as_ref(), &context(now())),
        _ => image.status.clone().unwrap_or_default(),
    };
    let previous = current.registry_metadata.as_ref();
    let secret = SecretLookup::Given(credentials);
    let outcome = OneShot::single(client.clone(), deadline)
        .verify(&image.spec, &secret, previous, trigger)
        .await;
    status::transition(Some(&current), &outcome, &context(now())).status
}

fn now() -> jiff::Timestamp {
    jiff::Timestamp::now()
}
