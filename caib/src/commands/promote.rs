//! `caib catalog promote NAME --to ENV [--from ENV]`: copies an entry to the next environment
//! with its digest pinned, so that production runs exactly the bytes staging tested. The digest
//! comes from the live CatalogImage (what the reconciler verified) when the cluster is
//! reachable, else from the registry.

use std::time::Duration;

use catalog_api::image::Phase;
use catalog_api::{CatalogImage, ImageReference};
use kube::Api;

use crate::cli::{Global, PromoteArgs};
use crate::cluster::Cluster;
use crate::error::{CaibError, Result};
use crate::repo::{Action, CatalogRepo, FileChange};

use super::change::{self, Proposal};
use super::entry::{self, Duplicate};
use super::{block_on, resolve};

/// What the cluster says about the source entry, when it can be asked.
struct Live {
    phase: Option<Phase>,
    digest: Option<String>,
}

/// Reads the source entry's CatalogImage; `None` when no cluster is configured or reachable
/// (promotion then relies on the registry alone).
fn live_status(global: &Global, namespace: Option<&str>, name: &str) -> Option<Live> {
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
        let found = tokio::time::timeout(Duration::from_secs(10), api.get_opt(name))
            .await
            .map_err(|_| CaibError::Timeout("cluster did not answer".into()))?
            .map_err(|e| cluster.error(e, &crate::cluster::CATALOG_IMAGE, Some(name)))?;
        Ok::<_, CaibError>(found)
    });
    match result {
        Ok(Some(image)) => {
            let status = image.status.unwrap_or_default();
            Some(Live {
                phase: status.phase,
                digest: status.registry_metadata.and_then(|m| m.resolved_digest),
            })
        }
        Ok(None) => Some(Live {
            phase: None,
            digest: None,
        }),
        Err(e) => {
            eprintln!("  cluster not reachable ({e}); resolving the digest from the registry");
            None
        }
    }
}

pub fn run(global: &Global, args: &PromoteArgs) -> Result<()> {
    let mut repo = CatalogRepo::open(global.catalog_repo.as_deref())?;
    let to = repo.environment(Some(&args.to))?;
    let from = match &args.from {
        Some(from) => repo.environment(Some(from))?,
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
    let mut spec = source.image.spec.clone();
    let annotations = source
        .image
        .metadata
        .annotations
        .clone()
        .unwrap_or_default();

    let live = live_status(global, from.namespace.as_deref(), &args.name);
    match &live {
        Some(Live {
            phase: Some(Phase::Available),
            ..
        }) => eprintln!("✓ Source image is Available in {}", from.name),
        Some(Live { phase, .. }) if !args.force => {
            let phase = phase.map_or("not synced to the cluster", |p| p.as_str());
            return Err(CaibError::Usage(format!(
                "\"{}\" in {} is {phase}, not Available: promote only what was verified, or \
                 pass --force",
                args.name, from.name
            )));
        }
        _ => {}
    }
    let digest = match (spec.digest.clone(), live.and_then(|l| l.digest)) {
        (Some(pinned), _) => pinned,
        (None, Some(live)) => {
            eprintln!("✓ Digest from the verified image: {live}");
            live
        }
        (None, None) => {
            let reference = ImageReference::parse(&spec.registry_url)
                .map_err(|e| CaibError::Usage(format!("{}: {e}", spec.registry_url)))?;
            let digest = resolve::resolve_digest(global, &reference)?;
            eprintln!("✓ Digest resolved from the registry: {digest}");
            digest
        }
    };
    spec.digest = Some(digest);

    let target_report = repo.report(&to)?;
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
    let proposal = Proposal {
        action: Action::Promote,
        env: to.clone(),
        name: args.name.clone(),
        change: FileChange::Write {
            path: entry::write_path(&target_report.entries, &to.path, &args.name)
                .map_err(CaibError::Usage)?,
            content: entry::render(&args.name, &annotations, &spec),
        },
        subject: format!(
            "catalog: promote {} from {} to {}",
            args.name, from.name, to.name
        ),
        body: format!(
            "Registry URL: {}\nDigest: {}\nFrom: {}",
            spec.registry_url,
            spec.digest.as_deref().unwrap_or_default(),
            source.path
        ),
        source_imagebuild: None,
    };
    let follow = change::Follow::entry(&spec, "Pending");
    change::submit_and_report(&mut repo, &proposal, &args.change, global, follow)
}
