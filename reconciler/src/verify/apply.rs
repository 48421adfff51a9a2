//! The thin apply step: a merge patch on the status subresource (never labels, never the
//! spec) and Events.

use crate::events::{EventPublisher, EventSpec as Event, EventType};
use catalog_api::{CatalogImage, CatalogImageStatus};
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource as _, ResourceExt as _};

use super::WriteError;
use super::status::EventSpec;
use crate::merge_patch::{self, Fields};

/// Writes `new` as the status, sending only what differs from `old`; nothing at all when
/// they are equal. A deleted object is not an error.
pub async fn write_status(
    client: &kube::Client,
    image: &CatalogImage,
    old: Option<&CatalogImageStatus>,
    new: &CatalogImageStatus,
) -> Result<(), WriteError> {
    // The verifier owns the whole CatalogImage status.
    let Some(patch) = merge_patch::status(old, new, Fields::default()) else {
        return Ok(());
    };
    let namespace = image.namespace().unwrap_or_default();
    let name = image.name_any();
    let api: Api<CatalogImage> = Api::namespaced(client.clone(), &namespace);
    match api
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(source) => Err(WriteError {
            namespace,
            name,
            source,
        }),
    }
}

/// Publishes the transition's events. Failing to record an event never fails the
/// verification (events are best effort in Kubernetes too).
pub async fn publish_events(
    publisher: &EventPublisher,
    image: &CatalogImage,
    events: &[EventSpec],
) {
    let reference = image.object_ref(&());
    for spec in events {
        let event = Event {
            type_: if spec.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: spec.reason,
            note: &spec.note,
            action: "Verify",
        };
        if let Err(e) = publisher.publish(&reference, &event).await {
            tracing::warn!(error = %e, reason = spec.reason, name = %image.name_any(), "event not recorded");
        }
    }
}
