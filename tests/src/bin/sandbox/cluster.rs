//! What the sandbox puts in the cluster and the catalog repository, and how it waits for the
//! reconciler.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use catalog_e2e::fixture;
use catalog_e2e::process::eventually;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{DynamicObject, PostParams};
use serde_json::json;

/// The demo ImageBuild `caib catalog publish` publishes, and the image it produced.
pub const BUILD_NAME: &str = "my-custom-build";
pub const BUILD_IMAGE: &str = "my-org/custom-build:v1.0.0";
/// The CatalogSource the sandbox applies.
pub const SOURCE: &str = "catalog-dev";

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

/// Where the CatalogSource's commit statuses and pull-request previews go: the forge
/// stand-in's GitHub API, the repository catalog.yaml names, and the Secret holding the token.
pub struct ForgeSettings {
    pub api_url: String,
    pub repository: String,
    pub token: String,
}

/// The Secret the CatalogSource's `commitStatus.secretRef` names (key `token`).
const FORGE_SECRET: &str = "forge-token";

/// The CatalogSource `catalog-dev` following `url`'s main branch, with pull-request previews
/// on (so the review flow's pull request gets one before it is merged), and its token Secret.
pub async fn apply_source(
    client: &kube::Client,
    url: &str,
    forge: &ForgeSettings,
) -> anyhow::Result<()> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let token = fixture::secret(FORGE_SECRET, None, &[("token", &forge.token)]);
    secrets
        .create(&PostParams::default(), &token)
        .await
        .with_context(|| format!("cannot create Secret {FORGE_SECRET}"))?;
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "default", &source_resource());
    let source: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "automotive.sdv.cloud.redhat.com/v1alpha1",
        "kind": "CatalogSource",
        "metadata": {"name": SOURCE, "namespace": "default"},
        "spec": {
            "url": url, "ref": {"branch": "main"}, "path": "environments/dev", "interval": "10s",
            "commitStatus": {"provider": "github", "apiUrl": forge.api_url,
                "repository": forge.repository, "secretRef": {"name": FORGE_SECRET}},
            "pullRequests": {"enabled": true},
        }
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
    annotate_now(client, catalog_api::labels::RECONCILE_REQUESTED_AT).await
}

/// Asks for the pull requests' previews at once, as the forge's `pull_request` webhook would.
pub async fn request_preview(client: &kube::Client) -> anyhow::Result<()> {
    annotate_now(client, catalog_api::labels::PREVIEW_REQUESTED_AT).await
}

/// Sets `annotation` on the CatalogSource to the current time: a new value is the request.
async fn annotate_now(client: &kube::Client, annotation: &str) -> anyhow::Result<()> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "default", &source_resource());
    let now = format!("{:.9}", jiff::Timestamp::now());
    let patch = json!({"metadata": {"annotations": {annotation: now}}});
    api.patch(
        SOURCE,
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(patch),
    )
    .await
    .with_context(|| format!("cannot annotate CatalogSource {SOURCE} with {annotation}"))?;
    Ok(())
}

/// Waits until the CatalogSource's `status.previews` records pull request `number` at `head`
/// (written after the commit status and the comment are posted).
pub async fn wait_previewed(client: &kube::Client, number: u64, head: &str) -> anyhow::Result<()> {
    let api: Api<catalog_api::CatalogSource> = Api::namespaced(client.clone(), "default");
    let recorded = || async {
        let source = api.get(SOURCE).await?;
        let previews = source.status.map(|s| s.previews).unwrap_or_default();
        let recorded = previews
            .iter()
            .any(|p| p.number == number && p.head == head);
        Ok::<_, anyhow::Error>(recorded.then_some(()))
    };
    let what = format!("status.previews of {SOURCE} to record #{number} at {head}");
    until(&what, recorded).await
}

/// Polls `check` until it yields a value, failing after a minute with `what` in the error.
pub async fn until<T, F, Fut>(what: &str, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(value) = check().await? {
            return Ok(value);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("timed out after a minute waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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
