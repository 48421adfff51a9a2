//! Shared by the caib suites that run a cluster: images in a real registry, the Kubernetes API
//! emulator with the catalog and ImageBuild CRDs, and the objects the controllers would write
//! (CatalogImages applied from a commit, with their verification status).
#![allow(dead_code)]

use catalog_api::{CatalogImage, CatalogImageSpec, CatalogSource};
use catalog_e2e::fixture::{self, Cluster};
use catalog_e2e::registry::{PushedImage, Registry};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

use super::support::Setup;

/// A registry holding one image, `repo_tag` built for `arch`. Bind `registry` (to
/// `_registry` when unused, not `_`): dropping it stops the registry.
pub struct Published {
    pub registry: Registry,
    pub pushed: PushedImage,
    /// `host/repo_tag`, as an entry's registryUrl names it.
    pub url: String,
}

pub async fn registry_with(repo_tag: &str, arch: &str) -> Published {
    let (registry, pushed) = fixture::registry_with(repo_tag, arch).await;
    let url = format!("{}/{repo_tag}", registry.host());
    Published {
        registry,
        pushed,
        url,
    }
}

/// An emulator with the catalog CRDs and the ImageBuild CRD; its kubeconfig handed to caib.
pub async fn cluster(s: &mut Setup) -> Cluster {
    let cluster = Cluster::start();
    s.kubeconfig = Some(cluster.kubeconfig());
    cluster.install_imagebuild_crd("default").await;
    cluster
}

pub async fn put_build(cluster: &Cluster, name: &str, image: &str, phase: &str) {
    let spec = json!({
        "architecture": "arm64",
        "aib": {"distro": "cs9", "target": "raspberry-pi", "mode": "bootc"},
        "export": {"container": image}
    });
    fixture::put_imagebuild(&cluster.client, "default", name, spec, phase).await;
}

/// Creates a CatalogImage (as the sync would) with `spec` and then `status` (as the
/// verification would).
pub async fn put_image(
    cluster: &Cluster,
    name: &str,
    spec: serde_json::Value,
    status: serde_json::Value,
) {
    let api: Api<CatalogImage> = cluster.api("default");
    let spec: CatalogImageSpec = serde_json::from_value(spec).unwrap();
    api.create(&PostParams::default(), &CatalogImage::new(name, spec))
        .await
        .unwrap();
    fixture::patch_status(&api, name, status).await;
}

/// A CatalogSource `name` in `default` syncing `path` of the catalog remote, as an
/// administrator sets it up: caib commands without `--env` take their environment from it.
pub async fn source(cluster: &Cluster, s: &Setup, name: &str, path: &str) -> Api<CatalogSource> {
    let sources: Api<CatalogSource> = cluster.api("default");
    let spec = json!({"url": s.remote.file_url(), "path": path, "interval": "1h",
                      "ref": {"branch": "main"}});
    fixture::create_json(
        &sources,
        fixture::catalog_object("CatalogSource", name, "default", spec),
    )
    .await;
    sources
}

/// What the sync and the verification would leave on CatalogImage `name`: applied from
/// `revision`, and a status describing its current generation.
pub async fn applied(cluster: &Cluster, name: &str, revision: &str) {
    let api: Api<CatalogImage> = cluster.api("default");
    let annotations = json!({"metadata": {"annotations": {
        catalog_api::labels::SOURCE_REVISION: revision}}});
    let image = api
        .patch(name, &PatchParams::default(), &Patch::Merge(annotations))
        .await
        .unwrap();
    let generation = image.metadata.generation.expect("a generation");
    fixture::patch_status(&api, name, json!({"observedGeneration": generation})).await;
}
