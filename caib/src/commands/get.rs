//! `caib catalog get NAME`: one image. By default the quickstart's view (name, namespace,
//! spec, status) that people read before flashing a board; `-o json|yaml` the full object
//! for scripts (`caib catalog get X -o json | jq ... | kubectl apply -f -`).

use catalog_api::{CatalogImage, CatalogImageSpec, CatalogImageStatus};
use kube::api::Api;
use serde::Serialize;

use crate::cli::{GetArgs, Global, OutputFormat};
use crate::cluster::{CATALOG_IMAGE, Cluster};
use crate::error::Result;
use crate::output;

pub fn run(global: &Global, args: &GetArgs) -> Result<()> {
    super::block_on(crate::cluster::within(
        global.timeout,
        "reading the catalog image",
        async {
            let cluster = Cluster::connect(global).await?;
            let image = fetch(&cluster, &args.name).await?;
            print!("{}", render(&image, global.output)?);
            Ok(())
        },
    ))
}

/// Reads one image; a missing one is `catalog image "NAME" not found in namespace "NS"`
/// (exit 4).
pub async fn fetch(cluster: &Cluster, name: &str) -> Result<CatalogImage> {
    let api: Api<CatalogImage> = cluster.api(false);
    api.get(name)
        .await
        .map_err(|e| cluster.error(e, &CATALOG_IMAGE, Some(name)))
}

#[derive(Serialize)]
struct View<'a> {
    metadata: ViewMeta<'a>,
    spec: &'a CatalogImageSpec,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'a CatalogImageStatus>,
}

#[derive(Serialize)]
struct ViewMeta<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<&'a str>,
}

pub fn render(image: &CatalogImage, format: Option<OutputFormat>) -> Result<String> {
    match format {
        Some(format @ (OutputFormat::Json | OutputFormat::Yaml)) => {
            let value = output::object_value(image, catalog_api::API_VERSION, "CatalogImage")?;
            output::document(&value, format)
        }
        _ => output::to_yaml(&View {
            metadata: ViewMeta {
                name: image.metadata.name.as_deref().unwrap_or_default(),
                namespace: image.metadata.namespace.as_deref(),
            },
            spec: &image.spec,
            status: image.status.as_ref(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::testdata::{by_hand, rpi4};

    #[test]
    fn default_view_is_the_quickstarts() {
        insta::assert_snapshot!(render(&rpi4(), None).unwrap(), @r#"
        metadata:
          name: autosd-cs9-rpi4
          namespace: default
        spec:
          registryUrl: quay.io/centos-automotive/autosd:cs9-rpi4
          digest: sha256:abababababababababababababababababababababababababababababababab
          tags:
            - production
            - automotive
          verificationInterval: 1h
          metadata:
            architecture: arm64
            distro: cs9
            distroVersion: "9.4"
            targets:
              - name: raspberry-pi
                verified: true
                notes: Tested on Pi 4 Model B (8GB)
            kernelVersion: 6.1.0-rt
            bootcCapable: true
        status:
          phase: Available
          registryMetadata:
            resolvedDigest: sha256:abababababababababababababababababababababababababababababababab
            sizeBytes: 2147483648
            layerCount: 15
          lastVerificationTime: "2026-01-04T13:00:00Z"
        "#);
    }

    #[test]
    fn full_object_formats() {
        insta::assert_snapshot!(render(&by_hand(), Some(OutputFormat::Json)).unwrap());
        insta::assert_snapshot!(render(&rpi4(), Some(OutputFormat::Yaml)).unwrap());
        insta::assert_snapshot!(render(&by_hand(), Some(OutputFormat::Table)).unwrap());
    }
}
