//! One sync of one CatalogSource: fetch → verify → read → plan → apply → status.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::Resource;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType};

use catalog_api::labels::{APPROVE_DELETIONS, CATALOG_SOURCE, RECONCILE_REQUESTED_AT};
use catalog_api::source::{CatalogSourceStatus, SyncRecord, condition};
use catalog_api::{CatalogImage, CatalogSource};

use super::entries::EntryCache;
use super::plan::{PlanInput, plan, short};
use super::status::{
    invalid_entries, merge_patch, push_history, remove_condition, set_condition, summary,
};
use super::{Key, Shared, apply};
use crate::forge::{CommitState, StatusReport};
use crate::source::{self, Credentials, FetchRequest, Fetched, RefSpec, SourceError};

/// What a source's syncs remember between runs (in memory; a restart rebuilds it).
#[derive(Default)]
pub struct SourceState {
    entries: EntryCache,
    fetched: Option<Fetched>,
    last_fetch: Option<Instant>,
    failures: u32,
    generation: Option<i64>,
    /// Objects written recently, used until the watch cache has caught up: name →
    /// (object or tombstone, resourceVersion it supersedes).
    overlay: HashMap<String, (Option<Arc<CatalogImage>>, u64)>,
    /// Last commit status sent: (revision, state, description).
    reported: Option<(String, CommitState, String)>,
    /// Status we last wrote and the resourceVersion the server gave it: used as the
    /// previous status while the watch cache still holds an older object.
    written: Option<(CatalogSourceStatus, u64)>,
}

fn rv(object: &CatalogImage) -> u64 {
    object
        .metadata
        .resource_version
        .as_deref()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The watch cache of `namespace`, with our own recent writes laid over it.
fn live_view(shared: &Shared, state: &mut SourceState, namespace: &str) -> Vec<Arc<CatalogImage>> {
    let mut live: BTreeMap<String, Arc<CatalogImage>> = shared
        .images
        .state()
        .into_iter()
        .filter(|o| o.metadata.namespace.as_deref() == Some(namespace))
        .filter_map(|o| o.metadata.name.clone().map(|n| (n, o)))
        .collect();
    state.overlay.retain(|name, (written, written_rv)| {
        let cached_rv = live.get(name).map(|o| rv(o));
        match (written, cached_rv) {
            // The cache already has this write (or something newer): forget the overlay.
            (Some(_), Some(c)) if c >= *written_rv => false,
            (None, None) => false,
            (None, Some(c)) if c > *written_rv => false,
            (Some(object), _) => {
                live.insert(name.clone(), object.clone());
                true
            }
            (None, Some(_)) => {
                live.remove(name);
                true
            }
        }
    });
    live.into_values().collect()
}

fn jitter(base: Duration, fraction: f64) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let unit = f64::from(nanos % 1000) / 1000.0; // 0..1
    base.mul_f64(1.0 + fraction * (unit * 2.0 - 1.0))
}

async fn read_secret(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<BTreeMap<String, Vec<u8>>, String> {
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
        Err(kube::Error::Api(s)) if s.code == 404 => {
            Err(format!("secret {namespace}/{name} not found"))
        }
        Err(e) => Err(format!("cannot read secret {namespace}/{name}: {e}")),
    }
}

/// Runs one sync. Errors end up in the status; nothing is returned.
pub(super) async fn sync_source(shared: &Shared, key: &Key, fetch_requested: bool) {
    let Some(source) = shared.source(key) else {
        shared.forget(key);
        return;
    };
    let state = shared.state(key);
    let mut state = state.lock().await;
    let started = Instant::now();
    let (ns, name) = (key.0.as_str(), key.1.as_str());
    let spec = &source.spec;
    let source_rv: u64 = source
        .metadata
        .resource_version
        .as_deref()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let previous = match state.written.take() {
        Some((status, written_rv)) if written_rv > source_rv => {
            state.written = Some((status.clone(), written_rv));
            status
        }
        _ => source.status.clone().unwrap_or_default(),
    };
    let mut status = previous.clone();
    let generation = source.metadata.generation;
    let target_ns = spec
        .target_namespace
        .clone()
        .unwrap_or_else(|| ns.to_string());
    let annotations = source.metadata.annotations.clone().unwrap_or_default();
    let requested_at = annotations.get(RECONCILE_REQUESTED_AT).cloned();
    status.observed_generation = generation;
    status.webhook_path = spec.webhook.as_ref().map(|_| format!("/hook/{ns}/{name}"));

    if spec.suspend {
        set_condition(
            &mut status.conditions,
            condition::RECONCILING,
            false,
            "Suspended",
            "spec.suspend is true: nothing is fetched or applied; the applied entries stay as they are",
            generation,
        );
        shared.due.lock().unwrap().remove(key);
        write_status(shared, &mut state.written, &source, &previous, &status).await;
        return;
    }

    let interval = catalog_api::duration::parse(&spec.interval).unwrap_or(Duration::from_secs(60));
    let timeout = catalog_api::duration::parse(&spec.timeout).unwrap_or(Duration::from_secs(60));
    let manual = requested_at.is_some() && requested_at != previous.last_handled_reconcile_at;
    let need_fetch = fetch_requested
        || manual
        || state.fetched.is_none()
        || state.generation != generation
        || state.last_fetch.is_none_or(|t| t.elapsed() >= interval);
    if requested_at.is_some() {
        status.last_handled_reconcile_at = requested_at.clone();
    }
    if need_fetch {
        match fetch(shared, &source, ns, name, timeout).await {
            Ok(fetched) => {
                state.fetched = Some(fetched);
                state.last_fetch = Some(Instant::now());
                state.failures = 0;
                shared
                    .due
                    .lock()
                    .unwrap()
                    .insert(key.clone(), Instant::now() + jitter(interval, 0.1));
            }
            Err(message) => {
                state.failures += 1;
                shared
                    .metrics
                    .fetch_failures
                    .get_or_create(&super::metrics::SourceLabels {
                        source: name.into(),
                    })
                    .inc();
                let backoff = Duration::from_secs(1 << state.failures.min(8))
                    .min(interval.max(Duration::from_secs(2)));
                shared
                    .due
                    .lock()
                    .unwrap()
                    .insert(key.clone(), Instant::now() + jitter(backoff, 0.2));
                tracing::warn!(source = %format!("{ns}/{name}"), error = %message, "fetch failed");
                let already = previous.conditions.iter().any(|c| {
                    c.type_ == condition::READY
                        && c.reason == "FetchFailed"
                        && c.message.starts_with(&message)
                });
                set_condition(
                    &mut status.conditions,
                    condition::READY,
                    false,
                    "FetchFailed",
                    &format!("{message} (the last applied revision stays applied; retrying)"),
                    generation,
                );
                set_condition(
                    &mut status.conditions,
                    condition::RECONCILING,
                    true,
                    "RetryingFetch",
                    &format!(
                        "fetch attempt {} failed; retrying with backoff",
                        state.failures
                    ),
                    generation,
                );
                set_condition(
                    &mut status.conditions,
                    condition::STALLED,
                    state.failures >= 5,
                    if state.failures >= 5 {
                        "FetchFailing"
                    } else {
                        "Progressing"
                    },
                    &format!("{} consecutive fetch failures", state.failures),
                    generation,
                );
                // The attempt counter changes every time; only write when the reason is new.
                if !already {
                    write_status(shared, &mut state.written, &source, &previous, &status).await;
                    event(shared, &source, EventType::Warning, "FetchFailed", &message).await;
                }
                return;
            }
        }
    }
    state.generation = generation;
    let Some(fetched) = state.fetched.clone() else {
        return;
    };
    let revision = fetched.commit.clone();
    status.last_fetched_revision = Some(revision.clone());
    status.last_attempted_revision = Some(revision.clone());
    let cache_path = cache_path(shared, ns, name);
    let repo = match git2::Repository::open_bare(&cache_path) {
        Ok(r) => r,
        Err(e) => {
            fail(
                shared,
                &mut state.written,
                &source,
                &previous,
                status,
                "ReadFailed",
                &format!(
                    "cannot open the cache {}: {}",
                    cache_path.display(),
                    e.message()
                ),
                generation,
            )
            .await;
            return;
        }
    };

    // Signature verification.
    if let Some(verify) = &spec.verify {
        let verdict = match read_secret(&shared.client, ns, &verify.secret_ref.name).await {
            Err(e) => Err(("TrustedKeysUnavailable", e)),
            Ok(data) => {
                let texts: Vec<(String, String)> = data
                    .into_iter()
                    .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
                    .collect();
                let (keys, _) = source::signature::parse_trusted_keys(
                    texts.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                );
                if keys.is_empty() {
                    Err((
                        "TrustedKeysUnavailable",
                        format!(
                            "secret {ns}/{} holds no SSH public key",
                            verify.secret_ref.name
                        ),
                    ))
                } else {
                    source::signature::verify_commit(&repo, &revision, &keys).map_err(|e| {
                        let reason = match e {
                            source::signature::SignatureError::Unsigned(_) => "Unsigned",
                            source::signature::SignatureError::Untrusted { .. } => {
                                "UntrustedSigner"
                            }
                            _ => "InvalidSignature",
                        };
                        (reason, e.to_string())
                    })
                }
            }
        };
        match verdict {
            Ok(fingerprint) => set_condition(
                &mut status.conditions,
                condition::SOURCE_VERIFIED,
                true,
                "Verified",
                &format!("commit {revision} is signed by trusted key {fingerprint}"),
                generation,
            ),
            Err((reason, message)) => {
                set_condition(
                    &mut status.conditions,
                    condition::SOURCE_VERIFIED,
                    false,
                    reason,
                    &message,
                    generation,
                );
                let already = previous
                    .conditions
                    .iter()
                    .any(|c| c.type_ == condition::SOURCE_VERIFIED && c.message == message);
                fail(
                    shared,
                    &mut state.written,
                    &source,
                    &previous,
                    status,
                    "VerificationFailed",
                    &format!("{message}: nothing of this revision is applied"),
                    generation,
                )
                .await;
                if !already {
                    event(
                        shared,
                        &source,
                        EventType::Warning,
                        "VerificationFailed",
                        &message,
                    )
                    .await;
                }
                return;
            }
        }
    } else {
        remove_condition(&mut status.conditions, condition::SOURCE_VERIFIED);
    }

    // Entries, parsing only changed blobs.
    let rules = source::tree::environment_rules(&repo, &revision, &spec.path, &target_ns);
    let report = match tokio::task::block_in_place(|| {
        state.entries.read(&repo, &revision, &spec.path, &rules)
    }) {
        Ok(r) => r,
        Err(e) => {
            fail(
                shared,
                &mut state.written,
                &source,
                &previous,
                status,
                "ReadFailed",
                &e.to_string(),
                generation,
            )
            .await;
            return;
        }
    };
    drop(repo);
    let names: BTreeSet<String> = report
        .entries
        .iter()
        .map(|e| e.name().to_string())
        .collect();
    let contested = shared.claim(key, &target_ns, &names);
    let broken: BTreeSet<String> = report
        .broken_paths()
        .into_iter()
        .map(str::to_string)
        .collect();
    let live = live_view(shared, &mut state, &target_ns);
    let plan = plan(
        &PlanInput {
            source: name,
            namespace: &target_ns,
            revision: &revision,
            desired: &report.entries,
            broken_paths: &broken,
            contested: &contested,
            prune: spec.prune,
            max_deletions: &spec.max_deletions,
            allow_empty: spec.allow_empty,
            approved_revision: annotations.get(APPROVE_DELETIONS).map(String::as_str),
            previous_inventory: &previous.inventory,
        },
        &live,
    );

    tracing::debug!(
        source = %format!("{ns}/{name}"),
        ms = started.elapsed().as_millis() as u64,
        parsed = state.entries.parsed_last,
        apply = plan.apply.len(),
        prune = plan.prune.len(),
        "planned"
    );
    let changes = !plan.apply.is_empty() || !plan.prune.is_empty();
    if changes {
        report_commit(
            shared,
            &source,
            &mut state,
            &revision,
            CommitState::Pending,
            "syncing".into(),
        )
        .await;
    }
    let api: Api<CatalogImage> = Api::namespaced(shared.client.clone(), &target_ns);
    let live_rv: HashMap<String, u64> = live
        .iter()
        .filter_map(|o| o.metadata.name.clone().map(|n| (n, rv(o))))
        .collect();
    let mut errors = Vec::new();
    let (mut created, mut updated, mut pruned) = (0usize, 0usize, 0usize);
    for written in apply::apply_all(&api, plan.apply.clone(), &shared.metrics).await {
        match written.result {
            Ok(object) => {
                if written.create {
                    created += 1
                } else {
                    updated += 1
                }
                let object_rv = rv(&object);
                state
                    .overlay
                    .insert(written.name, (Some(Arc::new(object)), object_rv));
            }
            Err(e) => errors.push(e),
        }
    }
    for (deleted, result) in apply::prune_all(&api, plan.prune.clone(), &shared.metrics).await {
        match result {
            Ok(()) => {
                pruned += 1;
                let old_rv = live_rv.get(&deleted).copied().unwrap_or(0);
                state.overlay.insert(deleted, (None, old_rv));
            }
            Err(e) => errors.push(e),
        }
    }
    let metrics = &shared.metrics;
    metrics.entries(name, "created", created);
    metrics.entries(name, "updated", updated);
    metrics.entries(name, "unchanged", plan.unchanged.len());
    metrics.entries(name, "pruned", pruned);
    metrics.entries(name, "invalid", broken.len());
    metrics.entries(name, "conflict", plan.conflicts.len());
    metrics.entries(name, "kept", plan.kept_broken.len());

    tracing::debug!(source = %format!("{ns}/{name}"), ms = started.elapsed().as_millis() as u64, "applied");
    // Status.
    let live = live_view(shared, &mut state, &target_ns);
    let managed: Vec<Arc<CatalogImage>> = live
        .into_iter()
        .filter(|o| {
            o.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(CATALOG_SOURCE))
                .map(String::as_str)
                == Some(name)
        })
        .collect();
    status.invalid_entries = invalid_entries(&report.diagnostics);
    status.conflicts = plan.conflicts.clone();
    status.inventory = plan.inventory.clone();
    let applied_ok = created + updated + plan.unchanged.len();
    status.summary = Some(summary(
        &managed,
        plan.inventory.len(),
        applied_ok,
        broken.len(),
    ));
    let elapsed = started.elapsed();
    let (ready, reason, message) = if !errors.is_empty() {
        (
            false,
            "ApplyFailed",
            format!(
                "{} of the writes failed: {}",
                errors.len(),
                errors
                    .iter()
                    .take(3)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        )
    } else if let Some(blocked) = &plan.blocked {
        (false, blocked.reason, blocked.message.clone())
    } else if !plan.conflicts.is_empty() {
        let list: Vec<String> = plan
            .conflicts
            .iter()
            .take(3)
            .map(|c| format!("{} ({}): {}", c.name, c.path, c.message))
            .collect();
        (
            false,
            "Conflict",
            format!(
                "{} entries conflict: {}",
                plan.conflicts.len(),
                list.join("; ")
            ),
        )
    } else if !report.diagnostics.is_empty() {
        let list: Vec<String> = report
            .diagnostics
            .iter()
            .take(3)
            .map(|d| d.to_string())
            .collect();
        (
            false,
            "InvalidEntries",
            format!(
                "revision {} applied except {} invalid file(s), whose previous entries are kept: {}",
                short(&revision),
                broken.len(),
                list.join("; ")
            ),
        )
    } else {
        (
            true,
            "Synced",
            format!(
                "revision {} applied: {} entries",
                short(&revision),
                plan.inventory.len()
            ),
        )
    };
    set_condition(
        &mut status.conditions,
        condition::READY,
        ready,
        reason,
        &message,
        generation,
    );
    let waiting = plan.blocked.is_some();
    set_condition(
        &mut status.conditions,
        condition::RECONCILING,
        false,
        if waiting {
            "WaitingForApproval"
        } else {
            "Idle"
        },
        if waiting {
            "deletions wait for approval"
        } else {
            "in sync with the fetched revision"
        },
        generation,
    );
    set_condition(
        &mut status.conditions,
        condition::STALLED,
        waiting,
        if waiting { reason } else { "Progressing" },
        if waiting { &message } else { "" },
        generation,
    );
    let newly_applied =
        errors.is_empty() && previous.last_applied_revision.as_deref() != Some(revision.as_str());
    if errors.is_empty() {
        status.last_applied_revision = Some(revision.clone());
    }
    if created + updated + pruned > 0 || newly_applied {
        push_history(
            &mut status.history,
            SyncRecord {
                revision: revision.clone(),
                time: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    jiff::Timestamp::now(),
                )),
                created: created as i32,
                updated: updated as i32,
                pruned: pruned as i32,
                duration_ms: elapsed.as_millis() as i64,
            },
        );
    }
    if newly_applied {
        let age = jiff::Timestamp::now().as_second() - fetched.commit_time;
        if age >= 0 {
            metrics.commit_to_applied.observe(age as f64);
        }
    }
    metrics
        .sync_duration
        .get_or_create(&super::metrics::SourceLabels {
            source: name.into(),
        })
        .observe(elapsed.as_secs_f64());
    write_status(shared, &mut state.written, &source, &previous, &status).await;

    if created + updated + pruned > 0 {
        event(
            shared,
            &source,
            EventType::Normal,
            "Synced",
            &format!(
                "revision {}: {created} created, {updated} updated, {pruned} pruned",
                short(&revision)
            ),
        )
        .await;
        tracing::info!(source = %format!("{ns}/{name}"), revision = %revision, created, updated, pruned, ms = elapsed.as_millis() as u64, "synced");
    }
    if !ready
        && previous
            .conditions
            .iter()
            .find(|c| c.type_ == condition::READY)
            .is_none_or(|c| c.message != message)
    {
        event(shared, &source, EventType::Warning, reason, &message).await;
    }
    let state_value = if ready {
        CommitState::Success
    } else {
        CommitState::Failure
    };
    let description = format!(
        "{} applied, {} invalid, {} conflicts{}",
        applied_ok,
        broken.len(),
        plan.conflicts.len(),
        if plan.blocked.is_some() {
            ", deletions awaiting approval"
        } else {
            ""
        }
    );
    report_commit(
        shared,
        &source,
        &mut state,
        &revision,
        state_value,
        description,
    )
    .await;
}

fn cache_path(shared: &Shared, ns: &str, name: &str) -> std::path::PathBuf {
    shared.cache_dir.join(ns).join(format!("{name}.git"))
}

async fn fetch(
    shared: &Shared,
    source: &CatalogSource,
    ns: &str,
    name: &str,
    timeout: Duration,
) -> Result<Fetched, String> {
    let spec = &source.spec;
    let credentials = match &spec.secret_ref {
        Some(r) => Credentials::from_secret_data(
            &read_secret(&shared.client, ns, &r.name)
                .await
                .map_err(|e| format!("git credentials: {e}"))?,
        ),
        None => Credentials::default(),
    };
    let request = FetchRequest {
        url: spec.url.clone(),
        reference: RefSpec::from_spec(spec.git_ref.as_ref()),
        credentials,
        timeout,
        cache_path: cache_path(shared, ns, name),
    };
    let url = source::redact_url(&spec.url);
    let work = tokio::task::spawn_blocking(move || source::fetch(&request));
    match tokio::time::timeout(timeout + Duration::from_secs(1), work).await {
        Ok(Ok(result)) => result.map_err(|e: SourceError| e.to_string()),
        Ok(Err(e)) => Err(format!("fetching {url} crashed: {e}")),
        Err(_) => Err(SourceError::Timeout {
            url,
            seconds: timeout.as_secs(),
        }
        .to_string()),
    }
}

#[allow(clippy::too_many_arguments)]
async fn fail(
    shared: &Shared,
    written: &mut Option<(CatalogSourceStatus, u64)>,
    source: &CatalogSource,
    previous: &CatalogSourceStatus,
    mut status: CatalogSourceStatus,
    reason: &str,
    message: &str,
    generation: Option<i64>,
) {
    set_condition(
        &mut status.conditions,
        condition::READY,
        false,
        reason,
        message,
        generation,
    );
    set_condition(
        &mut status.conditions,
        condition::RECONCILING,
        false,
        reason,
        "waiting for a new revision or a spec change",
        generation,
    );
    set_condition(
        &mut status.conditions,
        condition::STALLED,
        true,
        reason,
        message,
        generation,
    );
    write_status(shared, written, source, previous, &status).await;
}

/// Writes the status only when it changed: a no-op sync sends no write.
async fn write_status(
    shared: &Shared,
    written: &mut Option<(CatalogSourceStatus, u64)>,
    source: &CatalogSource,
    previous: &CatalogSourceStatus,
    status: &CatalogSourceStatus,
) {
    if status == previous {
        return;
    }
    let api: Api<CatalogSource> = Api::namespaced(
        shared.client.clone(),
        source.metadata.namespace.as_deref().unwrap_or_default(),
    );
    let name = source.metadata.name.as_deref().unwrap_or_default();
    shared.metrics.api_write("patch_status");
    match api
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(merge_patch(status)),
        )
        .await
    {
        Ok(object) => {
            let rv = object
                .metadata
                .resource_version
                .as_deref()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            *written = Some((status.clone(), rv));
        }
        Err(e) => {
            tracing::warn!(source = name, error = %e, "cannot write the CatalogSource status")
        }
    }
}

async fn event(
    shared: &Shared,
    source: &CatalogSource,
    type_: EventType,
    reason: &str,
    note: &str,
) {
    let reference = source.object_ref(&());
    shared.metrics.api_write("event");
    let ev = Event {
        type_,
        reason: reason.into(),
        note: Some(note.chars().take(1000).collect()),
        action: "Sync".into(),
        secondary: None,
    };
    if let Err(e) = shared.recorder.publish(&ev, &reference).await {
        tracing::debug!(error = %e, "cannot publish an event");
    }
}

async fn report_commit(
    shared: &Shared,
    source: &CatalogSource,
    state: &mut SourceState,
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
                "CommitStatusFailed",
                &e.to_string(),
            )
            .await;
        }
    }
}
