//! `caib catalog get NAME`: one image. By default the quickstart's view (name, namespace,
//! spec, status) that people read before flashing a board; `-o json|yaml` the full object
//! for scripts (`caib catalog get X -o json | jq ... | kubectl apply -f -`).

use catalog_api::{CatalogImage, CatalogImageSpec, CatalogImageStatus};
use kube::api::Api;
use serde::Serialize;

use super::reverts::Revert;
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
            let revert = match global.output {
                Some(OutputFormat::Json | OutputFormat::Yaml) => None,
                _ => super::reverts::last(&cluster, &args.name).await,
            };
            print!("{}", render(&image, global.output, revert.as_ref())?);
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
    /// The last manual change the sync put back (from the image's DriftReverted Events).
    #[serde(rename = "lastDriftReverted", skip_serializing_if = "Option::is_none")]
    last_drift_reverted: Option<&'a Revert>,
}

#[derive(Serialize)]
struct ViewMeta<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<&'a str>,
}

/// The full object for `-o json|yaml`; otherwise the quickstart's view with the last
/// reverted manual change, if any.
pub fn render(
    image: &CatalogImage,
    format: Option<OutputFormat>,
    revert: Option<&Revert>,
) -> Result<String> {
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
            last_drift_reverted: revert,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::testdata::{by_hand, rpi4};

    #[test]
    fn default_view_is_the_quickstarts() {
        insta::assert_snapshot!(render(&rpi4(), None, None).unwrap(), @r#"
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
    fn the_last_reverted_change_follows_the_status() {
        let revert = Revert {
            time: "2026-01-04T14:00:00Z".into(),
            message: "changed outside Git and reverted: spec.tags. ...".into(),
        };
        let view = render(&by_hand(), None, Some(&revert)).unwrap();
        assert!(
            view.ends_with(
                "lastDriftReverted:\n  time: \"2026-01-04T14:00:00Z\"\n  message: \"changed outside Git and reverted: spec.tags. ...\"\n"
            ),
            "{view}"
        );
        let full = render(&by_hand(), Some(OutputFormat::Json), Some(&revert)).unwrap();
        assert!(!full.contains("lastDriftReverted"), "{full}");
    }

    #[test]
    fn full_object_formats() {
        insta::assert_snapshot!(render(&by_hand(), Some(OutputFormat::Json), None).unwrap());
        insta::assert_snapshot!(render(&rpi4(), Some(OutputFormat::Yaml), None).unwrap());
        insta::assert_snapshot!(render(&by_hand(), Some(OutputFormat::Table), None).unwrap());
    }
}
