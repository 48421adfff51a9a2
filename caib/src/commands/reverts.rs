//! The last manual change the sync reverted on an image, for `caib catalog get`: read from
//! the image's Warning Events with reason `DriftReverted` (published by the reconciler's
//! sync, whose note names the changed fields, the Git file that owns them and the caib
//! command that changes them). Someone whose `kubectl patch` was put back sees why here.

use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams};
use serde::Serialize;

use crate::cluster::Cluster;

/// The reconciler's Event reason for a reverted manual change.
pub const REASON: &str = "DriftReverted";

/// When the last revert happened and what the reconciler said about it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Revert {
    /// RFC 3339; the latest repeat when the Event counts a series.
    pub time: String,
    pub message: String,
}

/// The latest `DriftReverted` Event about CatalogImage `name`, if any. Not being allowed to
/// list Events (or any other error) shows nothing rather than failing `get`.
pub async fn last(cluster: &Cluster, name: &str) -> Option<Revert> {
    let api: Api<Event> = cluster.api(false);
    let params = ListParams::default().fields(&format!("regarding.name={name},reason={REASON}"));
    let events = match api.list(&params).await {
        Ok(list) => list.items,
        Err(e) => {
            tracing::debug!(error = %e, "cannot read the image's Events");
            return None;
        }
    };
    latest(events)
}

/// The newest of `events` about a CatalogImage with the reason (the server filtered already;
/// checked again because a field selector is only as good as the server's support for it).
fn latest(events: Vec<Event>) -> Option<Revert> {
    events
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some(REASON))
        .filter(|e| e.regarding.as_ref().and_then(|r| r.kind.as_deref()) == Some("CatalogImage"))
        .filter_map(|e| Some((time(&e)?, e.note.unwrap_or_default())))
        .max_by_key(|(time, _)| *time)
        .map(|(time, message)| Revert {
            time: time.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            message,
        })
}

fn time(event: &Event) -> Option<jiff::Timestamp> {
    event
        .series
        .as_ref()
        .map(|s| s.last_observed_time.0)
        .or_else(|| event.event_time.as_ref().map(|t| t.0))
        .or_else(|| event.deprecated_last_timestamp.as_ref().map(|t| t.0))
        .or_else(|| event.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ObjectReference;
    use k8s_openapi::api::events::v1::EventSeries;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

    fn event(kind: &str, reason: &str, at: &str, note: &str) -> Event {
        Event {
            reason: Some(reason.into()),
            note: Some(note.into()),
            event_time: Some(MicroTime(at.parse().unwrap())),
            regarding: Some(ObjectReference {
                kind: Some(kind.into()),
                name: Some("qemu".into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_newest_revert_of_the_image_counting_repeats() {
        let mut repeated = event("CatalogImage", REASON, "2026-01-01T10:00:00Z", "old");
        repeated.series = Some(EventSeries {
            count: 3,
            last_observed_time: MicroTime("2026-01-01T12:00:00Z".parse().unwrap()),
        });
        let events = vec![
            repeated,
            event("CatalogImage", REASON, "2026-01-01T11:00:00Z", "newer"),
            event("CatalogImage", "Available", "2026-01-01T13:00:00Z", "x"),
            event("CatalogSource", REASON, "2026-01-01T13:00:00Z", "y"),
        ];
        assert_eq!(
            latest(events),
            Some(Revert {
                time: "2026-01-01T12:00:00Z".into(),
                message: "old".into()
            })
        );
        assert_eq!(latest(Vec::new()), None);
    }
}
