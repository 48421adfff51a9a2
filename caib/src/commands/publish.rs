//! `caib catalog publish IMAGEBUILD`: a Completed ImageBuild of automotive-dev-operator into
//! the catalog, digest pinned, through a commit and a pull request. The mapping from the build
//! to the entry is [`facts`]; the build is recorded in an annotation and a
//! commit trailer.

use std::collections::BTreeMap;

use catalog_api::image::{BuildMode, ImageMetadata, Target};
use catalog_api::{CatalogImageSpec, ImageReference};
use kube::api::DynamicObject;
use serde_json::Value;

use crate::cli::{Global, PublishArgs};
use crate::cluster::{self, Cluster};
use crate::error::{CaibError, Result};
use crate::repo::{Action, CatalogRepo};

use super::change::{self, Proposal};
use super::entry::{self, Duplicate};
use super::{block_on, resolve};

fn field<'a>(data: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut v = data;
    for key in path {
        v = v.get(key)?;
    }
    v.as_str().filter(|s| !s.is_empty())
}

/// What an ImageBuild says about the image it produced.
#[derive(Debug, PartialEq)]
pub struct BuildFacts {
    pub phase: String,
    pub spec: CatalogImageSpec,
}

/// The image is `spec.export.container`, else `spec.export.disk.oci`; architecture
/// `spec.architecture`; distro `spec.aib.distro`; target `spec.aib.target`; build mode
/// `spec.aib.mode` (default image; bootc → bootcCapable); export format
/// `status.resolvedExportFormat`, else `spec.export.format`, else qcow2 (oci for a container).
pub fn facts(name: &str, data: &Value) -> Result<BuildFacts> {
    let phase = field(data, &["status", "phase"])
        .unwrap_or("Pending")
        .to_owned();
    let container = field(data, &["spec", "export", "container"]);
    let image = container
        .or_else(|| field(data, &["spec", "export", "disk", "oci"]))
        .ok_or_else(|| {
            CaibError::Usage(format!(
                "ImageBuild {name:?} exports no OCI image (neither spec.export.container nor \
                 spec.export.disk.oci is set): there is nothing to publish"
            ))
        })?;
    let mode = match field(data, &["spec", "aib", "mode"]).unwrap_or("image") {
        "bootc" => BuildMode::Bootc,
        "package" => BuildMode::Package,
        "disk" => BuildMode::Disk,
        _ => BuildMode::Image,
    };
    let export_format = field(data, &["status", "resolvedExportFormat"])
        .or_else(|| field(data, &["spec", "export", "format"]))
        .unwrap_or(if container.is_some() { "oci" } else { "qcow2" });
    Ok(BuildFacts {
        phase,
        spec: CatalogImageSpec {
            registry_url: image.to_owned(),
            verification_interval: catalog_api::image::DEFAULT_VERIFICATION_INTERVAL.into(),
            metadata: ImageMetadata {
                architecture: field(data, &["spec", "architecture"]).map(str::to_owned),
                distro: field(data, &["spec", "aib", "distro"]).map(str::to_owned),
                targets: field(data, &["spec", "aib", "target"])
                    .map(|t| vec![Target::named(t)])
                    .unwrap_or_default(),
                bootc_capable: (mode == BuildMode::Bootc).then_some(true),
                build_mode: Some(mode),
                export_format: Some(export_format.to_owned()),
                ..Default::default()
            },
            ..Default::default()
        },
    })
}

async fn read_build(cluster: &Cluster, name: &str) -> Result<DynamicObject> {
    let api = cluster.dynamic_api(&cluster::imagebuild_resource(), false);
    api.get(name)
        .await
        .map_err(|e| cluster.error(e, &cluster::IMAGE_BUILD, Some(name)))
}

pub fn run(args: &PublishArgs, global: &Global) -> Result<()> {
    eprintln!(
        "Publishing ImageBuild \"{}\" to catalog...",
        args.imagebuild
    );
    let (build, namespace) = block_on(async {
        let cluster = Cluster::connect(global).await?;
        let build = read_build(&cluster, &args.imagebuild).await?;
        Ok::<_, CaibError>((build, cluster.namespace.clone()))
    })?;
    let BuildFacts { phase, mut spec } = facts(&args.imagebuild, &build.data)?;
    if phase != "Completed" {
        return Err(CaibError::Usage(format!(
            "ImageBuild \"{}\" is {phase}, not Completed: only a completed build can be published",
            args.imagebuild
        )));
    }
    eprintln!("✓ ImageBuild status: Completed");
    let reference = ImageReference::parse(&spec.registry_url).map_err(|e| {
        CaibError::Usage(format!(
            "ImageBuild \"{}\" exports {:?}, which is not a valid image reference: {e}",
            args.imagebuild, spec.registry_url
        ))
    })?;
    eprintln!("✓ Registry location: {}", spec.registry_url);

    let name = args
        .catalog_name
        .clone()
        .unwrap_or_else(|| args.imagebuild.clone());
    catalog_api::validate::check_dns_subdomain(&name)
        .map_err(|why| CaibError::Usage(format!("catalog name {name:?} {why}")))?;
    let mut repo = CatalogRepo::open(global.catalog_repo.as_deref())?;
    let env = super::target_env::choose(&repo.config, global)?;
    spec.tags = args
        .tags
        .iter()
        .filter(|t| !t.is_empty())
        .cloned()
        .collect();
    if let Some(interval) = &repo.config.defaults.verification_interval {
        spec.verification_interval = interval.clone();
    }
    eprintln!("✓ Creating catalog image \"{name}\"");
    let digest = resolve::resolve_digest(&reference, global)?;
    spec.digest = Some(digest);
    eprintln!("✓ Verifying registry accessibility...");

    let source = format!("{namespace}/{}", args.imagebuild);
    let annotations = BTreeMap::from([(
        catalog_api::labels::SOURCE_IMAGEBUILD.to_owned(),
        source.clone(),
    )]);
    let report = repo.report(&env)?;
    match entry::check(&report.entries, &name, &spec) {
        Duplicate::None | Duplicate::SameName { .. } if args.update => {}
        Duplicate::None => {}
        Duplicate::Identical { path } => {
            eprintln!("✓ \"{name}\" is already in catalog ({path}); nothing to do");
            return Ok(());
        }
        Duplicate::SameName { path } => {
            return Err(CaibError::Conflict(format!(
                "entry \"{name}\" already exists in {} with different content ({path}); pass \
                 --update to replace it, or --catalog-name to publish under another name",
                env.name
            )));
        }
        Duplicate::Other {
            name: other,
            path,
            why,
        } => {
            return Err(CaibError::Conflict(format!(
                "entry \"{other}\" ({path}) already has {why}; it is already published under that name"
            )));
        }
    }
    let proposal = Proposal {
        action: Action::Publish,
        env: env.clone(),
        name: name.clone(),
        change: entry::change(
            &repo,
            &report.entries,
            &env.path,
            &name,
            &annotations,
            &spec,
        )?,
        subject: format!("catalog: publish {name} to {}", env.name),
        body: format!(
            "ImageBuild: {source}\nRegistry URL: {}\nDigest: {}",
            spec.registry_url,
            spec.digest.as_deref().unwrap_or_default()
        ),
        source_imagebuild: Some(source),
    };
    let follow = change::Follow::entry(&spec);
    change::submit_and_report(&mut repo, &proposal, &args.change, global, follow)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn maps_a_container_build() {
        let data = json!({
            "spec": {"architecture": "arm64", "aib": {"distro": "cs9", "target": "raspberry-pi", "mode": "bootc"},
                     "export": {"container": "quay.io/my-org/custom-build:v1.0.0"}},
            "status": {"phase": "Completed"}
        });
        let f = facts("b", &data).unwrap();
        assert_eq!(f.phase, "Completed");
        assert_eq!(f.spec.registry_url, "quay.io/my-org/custom-build:v1.0.0");
        let m = &f.spec.metadata;
        assert_eq!(m.architecture.as_deref(), Some("arm64"));
        assert_eq!(m.distro.as_deref(), Some("cs9"));
        assert_eq!(m.targets[0].name, "raspberry-pi");
        assert_eq!(m.build_mode, Some(BuildMode::Bootc));
        assert_eq!(m.bootc_capable, Some(true));
        assert_eq!(m.export_format.as_deref(), Some("oci"));
    }

    #[test]
    fn maps_a_disk_build_and_its_export_format() {
        let data = json!({
            "spec": {"architecture": "amd64", "aib": {"distro": "autosd10", "target": "qemu"},
                     "export": {"format": "raw", "disk": {"oci": "quay.io/my-org/disk:v2"}}},
            "status": {"phase": "Building", "resolvedExportFormat": "qcow2"}
        });
        let f = facts("b", &data).unwrap();
        assert_eq!(f.phase, "Building");
        assert_eq!(f.spec.registry_url, "quay.io/my-org/disk:v2");
        assert_eq!(f.spec.metadata.build_mode, Some(BuildMode::Image));
        assert_eq!(f.spec.metadata.bootc_capable, None);
        assert_eq!(f.spec.metadata.export_format.as_deref(), Some("qcow2"));
        let data = json!({"spec": {"export": {"disk": {"oci": "quay.io/x/d:1"}}}});
        assert_eq!(
            facts("b", &data)
                .unwrap()
                .spec
                .metadata
                .export_format
                .as_deref(),
            Some("qcow2")
        );
        assert!(facts("b", &json!({"spec": {}})).is_err());
    }
}
