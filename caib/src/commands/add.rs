//! `caib catalog add NAME URL`: an external image into the catalog, through a commit and a pull
//! request (or `--direct`), after checking the image exists in its registry.

use std::collections::BTreeMap;

use catalog_api::image::{ImageMetadata, LocalObjectRef, Target};
use catalog_api::reference::{DIGEST_FORMS, is_valid_digest};
use catalog_api::validate::check_dns_subdomain;
use catalog_api::{CatalogImageSpec, ImageReference};

use crate::cli::{AddArgs, Global};
use crate::error::{CaibError, Result};
use crate::repo::{Action, CatalogRepo};

use super::change::{self, Proposal};
use super::entry::{self, Duplicate};
use super::resolve;

/// The spec the flags describe (before any digest is resolved).
pub fn spec_from_flags(args: &AddArgs, default_interval: Option<&str>) -> Result<CatalogImageSpec> {
    if let Some(digest) = &args.digest
        && !is_valid_digest(digest)
    {
        return Err(CaibError::Usage(format!(
            "--digest {digest:?}: expected {DIGEST_FORMS}"
        )));
    }
    let interval = match &args.verification_interval {
        Some(value) => {
            catalog_api::duration::parse(value)
                .map_err(|e| CaibError::Usage(format!("--verification-interval {value:?}: {e}")))?;
            value.clone()
        }
        None => default_interval
            .unwrap_or(catalog_api::image::DEFAULT_VERIFICATION_INTERVAL)
            .to_owned(),
    };
    Ok(CatalogImageSpec {
        registry_url: args.url.clone(),
        digest: args.digest.clone(),
        tags: args
            .tags
            .iter()
            .filter(|t| !t.is_empty())
            .cloned()
            .collect(),
        auth_secret_ref: args
            .auth_secret
            .as_ref()
            .map(|name| LocalObjectRef { name: name.clone() }),
        verification_interval: interval,
        metadata: ImageMetadata {
            architecture: Some(args.architecture.clone()),
            distro: Some(args.distro.clone()),
            distro_version: args.distro_version.clone(),
            targets: args
                .targets
                .iter()
                .filter(|t| !t.is_empty())
                .map(|t| Target::named(t))
                .collect(),
            kernel_version: args.kernel_version.clone(),
            bootc_capable: args.bootc_capable.then_some(true),
            ..Default::default()
        },
    })
}

pub fn run(args: &AddArgs, global: &Global) -> Result<()> {
    eprintln!("Adding image to catalog...");
    let reference = ImageReference::parse(&args.url)
        .map_err(|e| CaibError::Usage(format!("registry URL {:?}: {e}", args.url)))?;
    check_dns_subdomain(&args.name)
        .map_err(|why| CaibError::Usage(format!("name {:?} {why}", args.name)))?;
    eprintln!("✓ Validating registry URL");

    let mut repo = CatalogRepo::open(global.catalog_repo.as_deref())?;
    let env = super::target_env::choose(&repo.config, global)?;
    let mut spec = spec_from_flags(args, repo.config.defaults.verification_interval.as_deref())?;
    eprintln!("✓ Creating catalog image \"{}\"", args.name);

    if !args.no_verify || args.pin {
        match spec.digest.clone() {
            // `--digest` alone: that exact manifest must exist.
            Some(pinned) if !args.pin => {
                resolve::check_pinned(&reference, &pinned, global)?;
            }
            pinned => {
                let digest = resolve::resolve_digest(&reference, global)?;
                if let Some(pinned) = &pinned
                    && !resolve::names_same_manifest(&reference, &digest, pinned, global)?
                {
                    return Err(CaibError::Conflict(format!(
                        "--digest {pinned} does not match {} in the registry ({digest})",
                        args.url
                    )));
                }
                // A `--digest` that matched stays as written (a sha512 pin is not
                // replaced by the registry's sha256 of the same manifest).
                if args.pin && pinned.is_none() {
                    spec.digest = Some(digest);
                }
            }
        }
        eprintln!("✓ Verifying registry accessibility...");
    }

    let report = repo.report(&env)?;
    match entry::check(&report.entries, &args.name, &spec) {
        Duplicate::None => {}
        Duplicate::Identical { path } => {
            eprintln!(
                "✓ \"{}\" is already in catalog ({path}); nothing to do",
                args.name
            );
            return Ok(());
        }
        Duplicate::SameName { path } if !args.update => {
            return Err(CaibError::Conflict(format!(
                "entry \"{}\" already exists in {} with different content ({path}); pass --update to change it",
                args.name, env.name
            )));
        }
        Duplicate::SameName { .. } => {}
        Duplicate::Other { name, path, why } => {
            return Err(CaibError::Conflict(format!(
                "entry \"{name}\" ({path}) already has {why}; change that entry (with --update) instead of adding \"{}\"",
                args.name
            )));
        }
    }
    let updating = report.entries.iter().any(|e| e.name() == args.name);
    let change = entry::change(
        &repo,
        &report.entries,
        &env.path,
        &args.name,
        &BTreeMap::new(),
        &spec,
    )?;
    let proposal = Proposal {
        action: Action::Add,
        env: env.clone(),
        name: args.name.clone(),
        change,
        subject: format!(
            "catalog: {} {} in {}",
            if updating { "update" } else { "add" },
            args.name,
            env.name
        ),
        body: format!("Registry URL: {}", spec.registry_url),
        source_imagebuild: None,
    };
    let follow = change::Follow::entry(&spec);
    change::submit_and_report(&mut repo, &proposal, &args.change, global, follow)
}
