//! `caib catalog verify NAME --local`: the verification the controller does, run from this
//! machine straight against the registry, with no cluster — for catalog-repo CI and for people
//! checking an entry before they open a pull request. Same library, same checks, same report.
//!
//! NAME is an entry of the catalog repository (`--catalog-repo PATH` or the current
//! directory; `--env` to pick one environment) or an image reference.

use std::path::{Path, PathBuf};

use catalog_api::image::{Phase, condition};
use catalog_api::registry::{
    Credentials, ImageFacts, RegistryClient, RegistryError, RegistryOptions,
};
use catalog_api::repo::{self, RepoConfig};
use catalog_api::validate::Rules;
use catalog_api::{CatalogImage, CatalogImageSpec, CatalogImageStatus, ImageReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::cli::{Global, VerifyArgs};
use crate::error::{CaibError, Result, exit};
use crate::registry_access::{credentials, insecure_registries};

pub fn run(global: &Global, args: &VerifyArgs) -> Result<()> {
    let image = find(global, &args.name)?;
    println!("Verifying catalog image {:?}...", args.name);
    let reference = ImageReference::parse(&image.spec.registry_url).map_err(|e| {
        CaibError::Usage(format!(
            "{}: spec.registryUrl {:?}: {e}",
            args.name, image.spec.registry_url
        ))
    })?;
    let client = RegistryClient::new(RegistryOptions {
        insecure_registries: insecure_registries(&reference),
        timeout: global.timeout.unwrap_or(std::time::Duration::from_secs(30)),
        ..Default::default()
    })
    .map_err(|e| CaibError::Other(e.into()))?;
    let credentials = credentials(&reference);
    let status = super::block_on(verify(&client, &credentials, &reference, &image.spec));
    let verified = CatalogImage {
        status: Some(status),
        ..image
    };
    let (text, available) = super::verify::report(&verified);
    print!("{text}");
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
                return Ok(entry.image);
            }
            searched.push(env);
        }
    }
    let looks_like_reference = name.contains('/') || name.contains(':') || name.contains('@');
    if looks_like_reference && ImageReference::parse(name).is_ok() {
        return Ok(CatalogImage::new(
            name,
            CatalogImageSpec {
                registry_url: name.to_string(),
                verification_interval: catalog_api::image::DEFAULT_VERIFICATION_INTERVAL.into(),
                ..Default::default()
            },
        ));
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

/// Runs the controller's checks and returns the status it would write.
async fn verify(
    client: &RegistryClient,
    credentials: &Credentials,
    reference: &ImageReference,
    spec: &CatalogImageSpec,
) -> CatalogImageStatus {
    let now = Time(
        jiff::Timestamp::now()
            .round(jiff::Unit::Second)
            .unwrap_or_else(|_| jiff::Timestamp::now()),
    );
    let mut status = CatalogImageStatus {
        last_verification_time: Some(now.clone()),
        ..Default::default()
    };
    let cond = |kind: &str, ok: bool, reason: &str, message: String| Condition {
        type_: kind.into(),
        status: if ok { "True" } else { "False" }.into(),
        reason: reason.into(),
        message,
        last_transition_time: now.clone(),
        observed_generation: None,
    };
    let fail = |mut status: CatalogImageStatus, e: &RegistryError, verified: bool| {
        status.phase = Some(if e.is_transient() {
            Phase::Unavailable
        } else {
            Phase::Failed
        });
        status.conditions = vec![
            cond(condition::AVAILABLE, verified, e.kind(), e.to_string()),
            cond(condition::VERIFIED, false, e.kind(), e.to_string()),
        ];
        status
    };
    // A digest that does not parse: nothing more to ask the registry.
    let invalid_digest = |mut status: CatalogImageStatus, message: String| {
        status.phase = Some(Phase::Failed);
        status.conditions = vec![cond(condition::VERIFIED, false, "InvalidDigest", message)];
        status
    };
    let resolved = match client.resolve(reference, credentials).await {
        Ok(digest) => digest,
        Err(e) => return fail(status, &e, false),
    };
    let mut tag_moved = None;
    let digest = match spec.digest.as_deref() {
        Some(pinned) if pinned != resolved => {
            let pinned_ref = match reference.with_digest(pinned) {
                Ok(r) => r,
                Err(e) => return invalid_digest(status, e.to_string()),
            };
            if let Err(e) = client.resolve(&pinned_ref, credentials).await {
                return fail(status, &e, true);
            }
            tag_moved = Some(format!(
                "{} now resolves to {resolved}, not the pinned {pinned}",
                reference.canonical()
            ));
            pinned.to_string()
        }
        _ => resolved,
    };
    let facts: ImageFacts = match reference.with_digest(&digest) {
        Ok(pinned) => match client
            .inspect(&pinned, credentials, spec.metadata.architecture.as_deref())
            .await
        {
            Ok(facts) => facts,
            Err(e) => return fail(status, &e, true),
        },
        Err(e) => return invalid_digest(status, e.to_string()),
    };
    status.registry_metadata = Some(facts.metadata());
    let mut conditions = vec![cond(condition::AVAILABLE, true, "Resolved", String::new())];
    match spec.metadata.architecture.as_deref() {
        Some(arch) if !facts.provides_architecture(arch) => {
            status.phase = Some(Phase::Failed);
            conditions.push(cond(
                condition::VERIFIED,
                false,
                "ArchitectureMismatch",
                format!(
                    "declared architecture {arch} but the image provides {}",
                    facts.architectures().join(", ")
                ),
            ));
        }
        _ => {
            status.phase = Some(Phase::Available);
            conditions.push(cond(condition::VERIFIED, true, "Verified", String::new()));
        }
    }
    if let Some(message) = tag_moved {
        conditions.push(cond(condition::TAG_MOVED, true, "TagMoved", message));
    }
    status.conditions = conditions;
    status
}
