//! What the sandbox puts in the cluster and the catalog repository, and how it waits for the
//! reconciler.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use catalog_e2e::fixture;
use catalog_e2e::process::eventually;
use kube::Api;
use kube::api::{DynamicObject, PostParams};
use serde_json::json;

/// The demo ImageBuild `caib catalog publish` publishes, and the image it produced.
pub const BUILD_NAME: &str = "my-custom-build";
pub const BUILD_IMAGE: &str = "my-org/custom-build:v1.0.0";

pub fn workspace() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The template with its dev entries pointed at the local registry (the other environments
/// reference quay.io and are not synced by the sandbox).
pub fn copy_template(from: &Path, to: &Path, host: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for item in std::fs::read_dir(from)? {
        let item = item?;
        let target = to.join(item.file_name());
        if item.file_type()?.is_dir() {
            copy_template(&item.path(), &target, host)?;
        } else {
            let text = std::fs::read_to_string(item.path())?;
            let text = if item.path().components().any(|c| c.as_os_str() == "dev") {
                text.replace(
                    "quay.io/centos-automotive/autosd:cs9-arm-generic",
                    "quay.io/centos-automotive/autosd:cs9-rpi4",
                )
                .replace("quay.io/", &format!("{host}/"))
            } else {
                text
            };
            std::fs::write(target, text)?;
        }
    }
    Ok(())
}

pub async fn apply_source(client: &kube::Client, url: &str) -> anyhow::Result<()> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "default", &source_resource());
    let source: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "automotive.sdv.cloud.redhat.com/v1alpha1",
        "kind": "CatalogSource",
        "metadata": {"name": "catalog-dev", "namespace": "default"},
        "spec": {"url": url, "ref": {"branch": "main"}, "path": "environments/dev", "interval": "10s"}
    }))?;
    api.create(&PostParams::default(), &source)
        .await
        .context("cannot create the CatalogSource")?;
    Ok(())
}

/// The ImageBuild CRD and a Completed build of [`BUILD_IMAGE`], as the build operator leaves
/// them: what the seed guide's "Publish build results" starts from.
pub async fn put_demo_build(client: &kube::Client, host: &str) -> anyhow::Result<()> {
    fixture::create_imagebuild_crd(client).await;
    let builds = fixture::imagebuilds(client, "default");
    let served = || async { builds.list(&Default::default()).await.ok().map(|_| ()) };
    eventually(
        Duration::from_secs(10),
        "the ImageBuild CRD to be served",
        served,
    )
    .await;
    let spec = json!({
        "architecture": "arm64",
        "aib": {"distro": "cs9", "target": "raspberry-pi", "mode": "bootc"},
        "export": {"container": format!("{host}/{BUILD_IMAGE}")}
    });
    fixture::put_imagebuild(client, "default", BUILD_NAME, spec, "Completed").await;
    Ok(())
}

fn source_resource() -> kube::api::ApiResource {
    kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
        catalog_api::GROUP,
        catalog_api::VERSION,
        "CatalogSource",
    ))
}

/// Asks for an immediate sync, as the forge's push webhook would.
pub async fn request_sync(client: &kube::Client) -> anyhow::Result<()> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "default", &source_resource());
    let patch = json!({"metadata": {"annotations": {catalog_api::labels::RECONCILE_REQUESTED_AT: jiff::Timestamp::now().to_string()}}});
    api.patch(
        "catalog-dev",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(patch),
    )
    .await?;
    Ok(())
}

pub async fn wait_available(client: &kube::Client, names: &[&str]) -> anyhow::Result<()> {
    let api: Api<catalog_api::CatalogImage> = Api::namespaced(client.clone(), "default");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let mut missing = Vec::new();
        for name in names {
            let phase = api
                .get_opt(name)
                .await?
                .and_then(|i| i.status)
                .and_then(|s| s.phase);
            if phase != Some(catalog_api::image::Phase::Available) {
                missing.push(format!(
                    "{name} ({})",
                    phase.map_or("not synced".to_string(), |p| p.to_string())
                ));
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("timed out waiting for Available: {}", missing.join(", "));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
