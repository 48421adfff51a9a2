//! `caib catalog verify NAME --local`: the verification the controller does, run from this
//! machine straight against the registry, with no cluster — for catalog-repo CI and for people
//! checking an entry before they open a pull request. It calls the controller's own check and
//! status transition ([`catalog_reconciler::verify::local`]), so the phase, reasons and
//! conditions are the ones the controller writes; `-o yaml|json` prints the CatalogImage with
//! that status.
//!
//! NAME is an entry of the catalog repository (`--catalog-repo PATH` or the current
//! directory; `--env` to pick one environment) or an image reference.

use std::path::{Path, PathBuf};

use catalog_api::registry::{RegistryClient, RegistryOptions};
use catalog_api::repo::{self, RepoConfig};
use catalog_api::validate::Rules;
use catalog_api::{CatalogImage, CatalogImageSpec, ImageReference};

use crate::cli::{Global, OutputFormat, VerifyArgs};
use crate::error::{CaibError, Result, exit};
use crate::output;
use crate::registry_access::{credentials, insecure_registries};

pub fn run(global: &Global, args: &VerifyArgs) -> Result<()> {
    let image = find(global, &args.name)?;
    let document = matches!(global.output, Some(OutputFormat::Json | OutputFormat::Yaml));
    if !document {
        println!("Verifying catalog image {:?}...", args.name);
    }
    let reference = ImageReference::parse(&image.spec.registry_url).map_err(|e| {
        CaibError::Usage(format!(
            "{}: spec.registryUrl {:?}: {e}",
            args.name, image.spec.registry_url
        ))
    })?;
    let timeout = global.timeout.unwrap_or(std::time::Duration::from_secs(30));
    let client = RegistryClient::new(RegistryOptions {
        insecure_registries: insecure_registries(&reference),
        timeout,
        ..Default::default()
    })
    .map_err(|e| CaibError::Other(e.into()))?;
    let credentials = credentials(&reference);
    let verify = catalog_reconciler::verify::local::verify(&client, &image, credentials, timeout);
    let status = super::block_on(verify);
    let verified = CatalogImage {
        status: Some(status),
        ..image
    };
    let (text, available) = super::verify::report(&verified);
    match global.output {
        Some(format @ (OutputFormat::Json | OutputFormat::Yaml)) => {
            let value = output::object_value(&verified, catalog_api::API_VERSION, "CatalogImage")?;
            print!("{}", output::document(&value, format)?);
        }
        _ => print!("{text}"),
    }
    if available {
        Ok(())
    } else {
        Err(CaibError::Silent(exit::ERROR))
    }
}

/// The entry named `name` in the catalog repository, else `name` read as an image reference.
fn find(global: &Global, name: &str) -> Result<CatalogImage> {
    let root = PathBuf::from(global.catalog_repo.as_deref().unwrap_or("."));
    let mut searched = Vec::new();
    if root.is_dir() {
        for (env, dir, rules) in environments(&root, global.environment.as_deref())? {
            let report = repo::validate_environment_dir(&root, &dir, &rules);
            if let Some(entry) = report.entries.into_iter().find(|e| e.name() == name) {
                return Ok(as_created(entry.image.into_object()));
            }
            searched.push(env);
        }
    }
    let looks_like_reference = name.contains('/') || name.contains(':') || name.contains('@');
    if looks_like_reference && ImageReference::parse(name).is_ok() {
        return Ok(as_created(CatalogImage::new(
            name,
            CatalogImageSpec {
                registry_url: name.to_string(),
                verification_interval: catalog_api::image::DEFAULT_VERIFICATION_INTERVAL.into(),
                ..Default::default()
            },
        )));
    }
    Err(CaibError::NotFound(format!(
        "catalog entry {name:?} not found in {} ({}); pass an entry name of the catalog repository or an image reference",
        root.display(),
        if searched.is_empty() {
            "no catalog entries there".to_string()
        } else {
            format!("searched {}", searched.join(", "))
        }
    )))
}

/// `image` as the API server stores it on creation (generation 1), so the status printed is
/// the one the controller writes for the new object (its conditions' `observedGeneration`).
fn as_created(mut image: CatalogImage) -> CatalogImage {
    image.metadata.generation.get_or_insert(1);
    image
}

/// (name, directory, rules) of the environments to search.
fn environments(root: &Path, only: Option<&str>) -> Result<Vec<(String, String, Rules)>> {
    if !root.join(repo::CONFIG_FILE).is_file() {
        return Ok(vec![(
            root.display().to_string(),
            ".".into(),
            Rules::default(),
        )]);
    }
    let config = RepoConfig::load(root).map_err(|d| {
        let lines: Vec<String> = d.iter().map(ToString::to_string).collect();
        CaibError::Other(anyhow::anyhow!(
            "invalid catalog.yaml:\n{}",
            lines.join("\n")
        ))
    })?;
    let envs: Vec<_> = config
        .environments
        .iter()
        .filter(|e| only.is_none_or(|o| o == e.name))
        .map(|e| (format!("environment {}", e.name), e.path.clone(), e.rules()))
        .collect();
    if let Some(only) = only
        && envs.is_empty()
    {
        return Err(CaibError::Usage(format!(
            "--env {only}: no such environment in catalog.yaml"
        )));
    }
    Ok(envs)
}
