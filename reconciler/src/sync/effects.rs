//! The effectful helpers of a sync: secrets, fetching, status writes, Events and commit
//! statuses.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::events::{EventSpec, EventType};
use k8s_openapi::api::core::v1::Secret;
use kube::Resource;
use kube::api::{Api, Patch, PatchParams};

use catalog_api::CatalogSource;
use catalog_api::source::CatalogSourceStatus;

use super::Shared;
use super::error::{FetchError, SecretError};
use super::live::resource_version;
use super::reason;
use super::run::Memory;
use super::status::PATCH_FIELDS;
use crate::forge::{CommitState, StatusReport};
use crate::git::{Credentials, FetchRequest, Fetched, RefSpec};
use crate::merge_patch;

/// `base` spread by up to ± `fraction` ([`catalog_api::jitter`]), seeded by the clock: the
/// sync's timers need no reproducible schedule.
pub(super) fn jitter(base: Duration, fraction: f64) -> Duration {
    let unit = catalog_api::jitter::unit(std::time::SystemTime::now());
    catalog_api::jitter::spread(base, fraction, unit)
}

/// The instant `after` from now, saturating instead of panicking: no duration a spec can hold
/// may overflow the clock (spec durations are bounded too; this is the second line).
pub(super) fn later(after: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(after)
        .unwrap_or_else(|| now + catalog_api::duration::MAX_INTERVAL)
}

pub(crate) async fn read_secret(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<BTreeMap<String, Vec<u8>>, SecretError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    match api.get(name).await {
        Ok(secret) => {
            let mut data: BTreeMap<String, Vec<u8>> = secret
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect();
            for (k, v) in secret.string_data.unwrap_or_default() {
                data.insert(k, v.into_bytes());
            }
            Ok(data)
        }
        Err(kube::Error::Api(s)) if s.code == 404 => Err(SecretError::NotFound {
            namespace: namespace.to_string(),
            name: name.to_string(),
        }),
        Err(source) => Err(SecretError::Unreadable {
            namespace: namespace.to_string(),
            name: name.to_string(),
            source,
        }),
    }
}

pub(crate) fn cache_path(shared: &Shared, ns: &str, name: &str) -> std::path::PathBuf {
    shared.cache_dir.join(ns).join(format!("{name}.git"))
}

/// Branch and tag fetches take only the tip commit (depth 1) where the transport supports
/// it: a sync reads one tree. A source with `spec.verify` fetches its whole history: the
/// no-rollback check walks from the new revision back to the applied one, and a depth-1
/// fetch cuts that walk (libgit2 treats the shallow tip as parentless), so every update
/// would look like a non-fast-forward.
pub(crate) const SHALLOW_FETCHES: bool = true;

pub(super) async fn fetch(
    shared: &Shared,
    source: &CatalogSource,
    ns: &str,
    name: &str,
    timeout: Duration,
) -> Result<Fetched, FetchError> {
    let spec = &source.spec;
    let credentials = match &spec.secret_ref {
        Some(r) => Credentials::from_secret_data(&read_secret(&shared.client, ns, &r.name).await?),
        None => Credentials::default(),
    };
    let request = FetchRequest {
        url: spec.url.clone(),
        reference: RefSpec::from_spec(spec.git_ref.as_ref()),
        credentials,
        timeout,
        cache_path: cache_path(shared, ns, name),
        shallow: SHALLOW_FETCHES && spec.verify.is_none(),
    };
    let key = (ns.to_string(), name.to_string());
    shared.fetches.fetch(&shared.workers, &key, request).await
}

/// Writes what changed in the fields the sync owns ([`PATCH_FIELDS`]): a no-op sync sends no
/// write.
pub(super) async fn write_status(
    shared: &Shared,
    written: &mut Option<(CatalogSourceStatus, u64)>,
    source: &CatalogSource,
    previous: &CatalogSourceStatus,
    status: &CatalogSourceStatus,
) {
    let Some(patch) = merge_patch::status(Some(previous), status, PATCH_FIELDS) else {
        return;
    };
    let api: Api<CatalogSource> = Api::namespaced(
        shared.client.clone(),
        source.metadata.namespace.as_deref().unwrap_or_default(),
    );
    let name = source.metadata.name.as_deref().unwrap_or_default();
    shared.metrics.api_write("patch_status");
    match api
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(object) => {
            *written = Some((status.clone(), resource_version(&object.metadata)));
        }
        Err(e) => {
            tracing::warn!(source = name, error = %e, "cannot write the CatalogSource status")
        }
    }
}

pub(super) async fn event(
    shared: &Shared,
    source: &CatalogSource,
    type_: EventType,
    reason: &str,
    note: &str,
) {
    let reference = source.object_ref(&());
    shared.metrics.api_write("event");
    let ev = EventSpec {
        type_,
        reason,
        note,
        action: "Sync",
    };
    if let Err(e) = shared.events.publish(&reference, &ev).await {
        tracing::debug!(error = %e, "cannot publish an event");
    }
}

pub(super) async fn report_commit(
    shared: &Shared,
    source: &CatalogSource,
    state: &mut Memory,
    revision: &str,
    value: CommitState,
    description: String,
) {
    let Some(spec) = &source.spec.commit_status else {
        return;
    };
    let wanted = (revision.to_string(), value, description.clone());
    if state.reported.as_ref() == Some(&wanted) {
        return;
    }
    // A final state for this revision is never followed by "pending" again.
    if value == CommitState::Pending && state.reported.as_ref().is_some_and(|r| r.0 == revision) {
        return;
    }
    let ns = source.metadata.namespace.as_deref().unwrap_or_default();
    let token = match read_secret(&shared.client, ns, &spec.secret_ref.name).await {
        Ok(data) => data
            .get("token")
            .map(|t| String::from_utf8_lossy(t).trim().to_string()),
        Err(e) => {
            tracing::warn!(error = %e, "commit status not sent");
            None
        }
    };
    let Some(token) = token else { return };
    let report = StatusReport {
        provider: spec.provider,
        api_url: spec.api_url.clone(),
        repository: spec.repository.clone(),
        repo_url: source.spec.url.clone(),
        sha: revision.to_string(),
        state: value,
        description,
        context: format!(
            "catalog-reconciler/{}",
            source.metadata.name.as_deref().unwrap_or_default()
        ),
    };
    match shared.forge.send(&report, &token).await {
        Ok(()) => state.reported = Some(wanted),
        Err(e) => {
            tracing::warn!(error = %e, "commit status not sent");
            event(
                shared,
                source,
                EventType::Warning,
                reason::COMMIT_STATUS_FAILED,
                &e.to_string(),
            )
            .await;
        }
    }
}
