//! The verification controller's wiring: the registry client, the watches (CatalogImages as
//! [`ImageView`]s, Secret metadata), kube-runtime's Controller, and what ends a reconcile.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use catalog_api::CatalogImage;
use catalog_api::registry::{RegistryClient, RegistryOptions};
use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt as _;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt as _, watcher};

use super::plan::Timing;
use super::reconcile::reconcile;
use super::view::{self, ImageView};
use super::{Metrics, ReconcileError, Shared, guard, hosts, timers};
use crate::Context;

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
pub(super) fn registry_client(
    config: &crate::Config,
    metrics: &Metrics,
) -> anyhow::Result<RegistryClient> {
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
    let timing = Timing::of(config);
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
    let timer_triggers = trigger_tx.clone();
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
        sync_writes: ctx.sync_writes.clone(),
    });
    let cached = image_reader.clone();
    let image_stream = watcher(images, watcher::Config::default())
        .default_backoff()
        .map_ok(move |event| view::mark_triggers(&cached, view::event(event)))
        .reflect(image_writer)
        .applied_objects()
        .try_filter(|image| std::future::ready(image.triggers));
    // Long waits between verifications are fired from the images' memory (`timers`).
    let timer_task = tokio::spawn(timers::fire_forever(state.clone(), timer_triggers));
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
    timer_task.abort();
    tracing::info!("verification controller stopped");
    Ok(())
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
