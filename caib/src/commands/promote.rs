//! `caib catalog promote NAME --to ENV [--from ENV]`: the image the source environment runs,
//! digest pinned, into the next environment, so that production runs exactly the bytes staging
//! tested. By default only what identifies the image (`registryUrl`, `digest`) changes in the
//! target: its own tags, verificationInterval, targets and notes stay; `--all-fields` copies
//! the whole spec. The digest comes from the live CatalogImage (what the reconciler verified)
//! when the cluster is reachable, else from the registry; the pull request carries the
//! source's evidence (see [`evidence`]).

use std::time::Duration;

use catalog_api::image::Phase;
use catalog_api::{CatalogImage, CatalogImageSpec, ImageReference};
use kube::Api;

use crate::cli::{Global, PromoteArgs};
use crate::cluster::Cluster;
use crate::error::{CaibError, Result};
use crate::repo::{Action, CatalogRepo, FileChange};

use super::change::{self, Proposal};
use super::entry::{self, Base, Duplicate};
use super::{block_on, resolve};

/// What the cluster says about the source entry: `Some(None)` when it was asked and has no
/// such CatalogImage, `None` when no cluster is configured or reachable (promotion then relies
/// on the registry alone).
fn live_image(
    global: &Global,
    namespace: Option<&str>,
    name: &str,
) -> Option<Option<CatalogImage>> {
    let mut global = global.clone();
    if global.namespace.is_none() {
        global.namespace = namespace.map(str::to_owned);
    }
    if global.timeout.is_none() {
        global.timeout = Some(Duration::from_secs(5));
    }
    let result = block_on(async {
        let cluster = Cluster::connect(&global).await?;
        let api: Api<CatalogImage> = cluster.api(false);
        tokio::time::timeout(Duration::from_secs(10), api.get_opt(name))
            .await
            .map_err(|_| CaibError::Timeout("cluster did not answer".into()))?
            .map_err(|e| cluster.error(e, &crate::cluster::CATALOG_IMAGE, Some(name)))
    });
    match result {
        Ok(found) => Some(found),
        Err(e) => {
            eprintln!("  cluster not reachable ({e}); resolving the digest from the registry");
            None
        }
    }
}

fn phase(image: &CatalogImage) -> Option<Phase> {
    image.status.as_ref().and_then(|s| s.phase)
}

/// The promotion's evidence from the source environment's live CatalogImage, for the pull
/// request: the digest verified, its platforms and size, when it was last verified Available,
/// and the Git revision it was applied from.
pub fn evidence(from: &str, image: &CatalogImage) -> String {
    let status = image.status.clone().unwrap_or_default();
    let metadata = status.registry_metadata.unwrap_or_default();
    let platforms: Vec<String> = if metadata.platform_variants.is_empty() {
        metadata
            .platform
            .iter()
            .map(|p| platform(&p.os, &p.architecture, p.variant.as_deref()))
            .collect()
    } else {
        metadata
            .platform_variants
            .iter()
            .map(|p| platform(&p.os, &p.architecture, p.variant.as_deref()))
            .collect()
    };
    let or_unknown = |v: Option<String>| v.unwrap_or_else(|| "unknown".into());
    let verified = (status.phase == Some(Phase::Available))
        .then_some(status.last_verification_time)
        .flatten()
        .map(|t| t.0.to_string());
    let revision = image
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(catalog_api::labels::SOURCE_REVISION).cloned());
    format!(
        "Evidence from {from} (CatalogImage {}/{}):\n\
         - Digest: {}\n- Platforms: {}\n- Size: {}\n- Last verified Available: {}\n\
         - Source revision: {}",
        image.metadata.namespace.as_deref().unwrap_or_default(),
        image.metadata.name.as_deref().unwrap_or_default(),
        or_unknown(metadata.resolved_digest),
        if platforms.is_empty() {
            "unknown".into()
        } else {
            platforms.join(", ")
        },
        or_unknown(metadata.size_bytes.map(catalog_api::size::human)),
        verified.unwrap_or_else(|| "never".into()),
        or_unknown(revision),
    )
}

fn platform(os: &str, arch: &str, variant: Option<&str>) -> String {
    match variant {
        Some(v) => format!("{os}/{arch}/{v}"),
        None => format!("{os}/{arch}"),
    }
}

/// The spec to write into the target: the target's own with the source's image (default), or
/// the source's whole spec (`--all-fields`, or no entry in the target yet).
fn promoted(
    source: &CatalogImageSpec,
    target: Option<&CatalogImageSpec>,
    digest: String,
    all: bool,
) -> CatalogImageSpec {
    let mut spec = match target {
        Some(target) if !all => CatalogImageSpec {
            registry_url: source.registry_url.clone(),
            ..target.clone()
        },
        _ => source.clone(),
    };
    spec.digest = Some(digest);
    spec
}

pub fn run(args: &PromoteArgs, global: &Global) -> Result<()> {
    let mut repo = CatalogRepo::open(global.catalog_repo.as_deref())?;
    let to = repo.environment(&args.to)?;
    let from = match &args.from {
        Some(from) => repo.environment(from)?,
        None => repo.config.previous(&to.name).cloned().ok_or_else(|| {
            CaibError::Usage(format!(
                "environment {} is the first one in catalog.yaml: there is nothing to promote \
                 from (pass --from ENV)",
                to.name
            ))
        })?,
    };
    if from.name == to.name {
        return Err(CaibError::Usage(format!(
            "--from and --to are both {}",
            to.name
        )));
    }
    eprintln!(
        "Promoting \"{}\" from {} to {}...",
        args.name, from.name, to.name
    );
    let source_report = repo.report(&from)?;
    let source = entry::find(&source_report.entries, &args.name, &from)?;

    let live = live_image(global, from.namespace.as_deref(), &args.name);
    match &live {
        Some(Some(image)) if phase(image) == Some(Phase::Available) => {
            eprintln!("✓ Source image is Available in {}", from.name)
        }
        Some(image) if !args.force => {
            let phase = image
                .as_ref()
                .and_then(phase)
                .map_or("not synced to the cluster", |p| p.as_str());
            return Err(CaibError::Usage(format!(
                "\"{}\" in {} is {phase}, not Available: promote only what was verified, or \
                 pass --force",
                args.name, from.name
            )));
        }
        _ => {}
    }
    let image = live.flatten();
    let live_digest = image.as_ref().and_then(|i| {
        i.status
            .as_ref()?
            .registry_metadata
            .as_ref()?
            .resolved_digest
            .clone()
    });
    let digest = match (source.image.spec.digest.clone(), live_digest) {
        (Some(pinned), _) => pinned,
        (None, Some(live)) => {
            eprintln!("✓ Digest from the verified image: {live}");
            live
        }
        (None, None) => {
            let spec = &source.image.spec;
            let reference = ImageReference::parse(&spec.registry_url)
                .map_err(|e| CaibError::Usage(format!("{}: {e}", spec.registry_url)))?;
            let digest = resolve::resolve_digest(&reference, global)?;
            eprintln!("✓ Digest resolved from the registry: {digest}");
            digest
        }
    };

    let target_report = repo.report(&to)?;
    let target = target_report.entries.iter().find(|e| e.name() == args.name);
    let spec = promoted(
        &source.image.spec,
        target.map(|t| &t.image.spec),
        digest,
        args.all_fields,
    );
    match entry::check(&target_report.entries, &args.name, &spec) {
        Duplicate::Identical { path } => {
            eprintln!(
                "✓ \"{}\" is already in catalog in {} ({path}); nothing to do",
                args.name, to.name
            );
            return Ok(());
        }
        Duplicate::Other { name, path, why } => {
            return Err(CaibError::Conflict(format!(
                "entry \"{name}\" ({path}) in {} already has {why}",
                to.name
            )));
        }
        // Promoting a newer version over the one in the target is what promotion is for.
        Duplicate::None | Duplicate::SameName { .. } => {}
    }
    // The target's file is edited where it exists; a new one starts from the source's file,
    // so its comments and formatting come along.
    let (base, annotations) = match target {
        Some(t) => {
            let base = Base::of(&repo, t);
            let mut annotations = base.as_ref().map(Base::annotations).unwrap_or_default();
            if args.all_fields {
                annotations = Base::of(&repo, source)
                    .map(|b| b.annotations())
                    .unwrap_or_default();
            }
            (base, annotations)
        }
        None => {
            let base = Base::of(&repo, source);
            let annotations = base.as_ref().map(Base::annotations).unwrap_or_default();
            (base, annotations)
        }
    };
    let path = entry::write_path(&target_report.entries, &to.path, &args.name)
        .map_err(CaibError::Usage)?;
    let content = entry::content(base.as_ref(), &args.name, &annotations, &spec);
    let evidence = match &image {
        Some(image) => evidence(&from.name, image),
        None => format!(
            "No evidence from {}: the cluster was not asked; the digest was resolved from the registry.",
            from.name
        ),
    };
    let proposal = Proposal {
        action: Action::Promote,
        env: to.clone(),
        name: args.name.clone(),
        change: FileChange::Write { path, content },
        subject: format!(
            "catalog: promote {} from {} to {}",
            args.name, from.name, to.name
        ),
        body: format!(
            "Registry URL: {}\nDigest: {}\nFrom: {}\n\n{evidence}",
            spec.registry_url,
            spec.digest.as_deref().unwrap_or_default(),
            source.path
        ),
        source_imagebuild: None,
    };
    let follow = change::Follow::entry(&spec);
    change::submit_and_report(&mut repo, &proposal, &args.change, global, follow)
}
