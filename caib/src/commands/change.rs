//! The flow every catalog-changing command shares: open the catalog repository, write or
//! remove `environments/<env>/<name>.yaml`, validate the environment, commit, push, open or
//! update the pull request, print where the change went; `--wait` then follows it through
//! merge, sync and verification.

use std::time::{Duration, Instant};

use catalog_api::image::Phase;
use catalog_api::repo::Environment;
use catalog_api::{CatalogImage, CatalogImageSpec};
use kube::Api;

use crate::cli::{ChangeArgs, Global};
use crate::cluster::Cluster;
use crate::error::{CaibError, Result};
use crate::forge::{ForgeClient, PrState, PullRequest};
use crate::repo::{Action, CatalogRepo, FileChange, Message, Submitted, Target, branch_name};

use super::block_on;

/// Default `--timeout` of `--wait`.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(600);

/// One change to propose.
pub struct Proposal {
    pub action: Action,
    pub env: Environment,
    pub name: String,
    pub change: FileChange,
    pub subject: String,
    pub body: String,
    pub source_imagebuild: Option<String>,
}

/// Where the change went.
pub enum Outcome {
    /// `--dry-run`: the diff was printed, nothing else happened.
    DryRun,
    Submitted {
        submitted: Submitted,
        /// The pull request opened or updated (None with `--direct`, or without a forge).
        pull_request: Option<PullRequest>,
        created: bool,
    },
}

/// Submits `proposal` as a pull request (or directly with `--direct`).
pub fn submit(
    repo: &mut CatalogRepo,
    proposal: &Proposal,
    args: &ChangeArgs,
    global: &Global,
) -> Result<Outcome> {
    if global.dry_run {
        print!("{}", repo.preview(&proposal.change));
        eprintln!("(dry run: nothing was committed or pushed)");
        return Ok(Outcome::DryRun);
    }
    repo.author()?;
    let message = Message::new(
        proposal.action,
        &proposal.env.name,
        &proposal.name,
        proposal.subject.clone(),
        proposal.body.clone(),
        proposal.source_imagebuild.as_deref(),
    );
    let target = if args.direct {
        Target::Direct
    } else {
        Target::Branch(branch_name(
            proposal.action,
            &proposal.env.name,
            &proposal.name,
        ))
    };
    // The forge is asked first (which also checks the token): a change must not be left as
    // a pushed branch without its pull request for want of credentials.
    let forge = match (&target, &repo.config.forge) {
        (Target::Branch(branch), Some(forge)) => {
            let client = ForgeClient::new(forge, &repo.location.url)?;
            let existing = block_on(client.find_open(branch))?;
            Some((client, existing))
        }
        _ => None,
    };
    let submitted = repo.submit(&proposal.change, &message, &target, &proposal.env)?;
    let (pull_request, created) = match forge {
        Some((client, existing)) => {
            let body = format!(
                "{}\n\n{}\n\n_Opened by `caib catalog {}`._",
                proposal.subject,
                proposal.body.trim(),
                proposal.action.as_str()
            );
            let (pr, created) = block_on(client.open_or_update(
                existing.as_ref(),
                &submitted.branch,
                &repo.branch,
                &proposal.subject,
                &body,
            ))?;
            (Some(pr), created)
        }
        None => (None, false),
    };
    Ok(Outcome::Submitted {
        submitted,
        pull_request,
        created,
    })
}

/// What a command's change leaves in the catalog, for `--wait` and the final report.
pub enum Follow<'a> {
    /// An entry with `spec`: `--wait` waits for it to be Available, and the report shows the
    /// quickstart's summary block with the phase reached, else `status`.
    Entry {
        spec: &'a CatalogImageSpec,
        status: &'a str,
    },
    /// The entry is removed: `--wait` waits for the CatalogImage to be pruned.
    Gone,
}

impl<'a> Follow<'a> {
    /// An entry with `spec`, shown with `status` when `--wait` is not given.
    pub fn entry(spec: &'a CatalogImageSpec, status: &'a str) -> Self {
        Follow::Entry { spec, status }
    }
}

/// The line that tells the user the command did its part.
fn done(action: Action) -> &'static str {
    match action {
        Action::Add => "Added successfully",
        Action::Publish => "Published successfully",
        Action::Remove => "Removed successfully",
        Action::Promote => "Promoted successfully",
    }
}

/// Submits `proposal`, follows it with `--wait`, then reports: `✓ Added successfully` (or
/// the action's own word), the summary block (for an entry) and where the change went.
/// `--dry-run` stops after the preview. The tail every catalog-changing command shares, so
/// they all report alike.
pub fn submit_and_report(
    repo: &mut CatalogRepo,
    proposal: &Proposal,
    args: &ChangeArgs,
    global: &Global,
    follow: Follow<'_>,
) -> Result<()> {
    let outcome = submit(repo, proposal, args, global)?;
    if matches!(outcome, Outcome::DryRun) {
        return Ok(());
    }
    let goal = match follow {
        Follow::Entry { spec, .. } => Goal::Available(spec),
        Follow::Gone => Goal::Gone,
    };
    let reached = if args.wait {
        Some(wait(
            repo,
            &outcome,
            &proposal.env,
            &proposal.name,
            goal,
            global,
        )?)
    } else {
        None
    };
    eprintln!("✓ {}", done(proposal.action));
    if let Follow::Entry { spec, status } = follow {
        println!();
        print_summary(&proposal.name, spec, reached.map_or(status, |p| p.as_str()));
    }
    print_outcome(repo, &outcome);
    Ok(())
}

/// The quickstart's summary block.
pub fn print_summary(name: &str, spec: &CatalogImageSpec, status: &str) {
    println!("Catalog Image: {name}");
    println!("Registry URL:   {}", spec.registry_url);
    if let Some(digest) = &spec.digest {
        println!("Digest:        {digest}");
    }
    println!(
        "Architecture:   {}",
        spec.metadata.architecture.as_deref().unwrap_or("-")
    );
    println!(
        "Distro:        {}",
        spec.metadata.distro.as_deref().unwrap_or("-")
    );
    println!(
        "Target:        {}",
        spec.metadata
            .targets
            .first()
            .map(|t| t.name.as_str())
            .unwrap_or("-")
    );
    println!("Status:        {status}");
}

/// Prints where the change went (after the command's own summary).
pub fn print_outcome(repo: &CatalogRepo, outcome: &Outcome) {
    let Outcome::Submitted {
        submitted,
        pull_request,
        created,
    } = outcome
    else {
        return;
    };
    let short = &submitted.commit.to_string()[..12];
    if submitted.attempts > 1 {
        eprintln!(
            "  (re-applied on the new tip of {} after {} rejected push{})",
            submitted.branch,
            submitted.attempts - 1,
            if submitted.attempts == 2 { "" } else { "es" }
        );
    }
    if !submitted.pushed {
        eprintln!("  ({} already held this change)", submitted.branch);
    }
    match pull_request {
        Some(pr) if *created => println!("Pull request:  {}", pr.url),
        Some(pr) => println!("Pull request:  {} (updated)", pr.url),
        None if submitted.branch == repo.branch => {
            println!("Committed:     {short} on {}", submitted.branch)
        }
        None => println!(
            "Branch:        {} ({short}); no forge in catalog.yaml, open a pull request for it",
            submitted.branch
        ),
    }
}

/// What `--wait` waits for once the change is merged.
#[derive(Clone, Copy)]
pub enum Goal<'a> {
    /// The CatalogImage carries this spec's image (registryUrl and digest) and is Available.
    Available(&'a CatalogImageSpec),
    /// The CatalogImage is gone (pruned by the sync).
    Gone,
}

/// Whether the live object shows the change: same image reference and digest, and (when the
/// controller reports it) a status describing the current generation.
fn synced(image: &CatalogImage, expected: &CatalogImageSpec) -> bool {
    image.spec.registry_url == expected.registry_url && image.spec.digest == expected.digest
}

fn current(image: &CatalogImage) -> bool {
    match (
        image.status.as_ref().and_then(|s| s.observed_generation),
        image.metadata.generation,
    ) {
        (Some(observed), Some(generation)) => observed >= generation,
        _ => true,
    }
}

/// `--wait`: the pull request merged, the entry synced to the cluster, and Available.
/// Exit 6 when `--timeout` (default 10m) passes first.
pub fn wait(
    repo: &CatalogRepo,
    outcome: &Outcome,
    env: &Environment,
    name: &str,
    goal: Goal<'_>,
    global: &Global,
) -> Result<Phase> {
    let Outcome::Submitted { pull_request, .. } = outcome else {
        return Ok(Phase::Pending);
    };
    let timeout = global.timeout.unwrap_or(DEFAULT_WAIT);
    let deadline = Instant::now() + timeout;
    let timed_out = |what: &str| {
        CaibError::Timeout(format!(
            "timed out after {} waiting for {what}",
            catalog_api::duration::format(timeout)
        ))
    };
    block_on(async {
        if let (Some(pr), Some(forge)) = (pull_request, &repo.config.forge) {
            let client = ForgeClient::new(forge, &repo.location.url)?;
            eprintln!("Waiting for {} to be merged...", pr.url);
            loop {
                match client.get(pr.number).await?.state {
                    PrState::Merged => break,
                    PrState::Closed => {
                        return Err(CaibError::Other(anyhow::anyhow!(
                            "{} was closed without being merged",
                            pr.url
                        )));
                    }
                    PrState::Open => {}
                }
                if Instant::now() > deadline {
                    return Err(timed_out(&format!("{} to be merged", pr.url)));
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            eprintln!("✓ Merged");
        }
        let mut global = global.clone();
        if global.namespace.is_none() {
            global.namespace = env.namespace.clone();
        }
        let cluster = Cluster::connect(&global).await?;
        let api: Api<CatalogImage> = cluster.api(false);
        eprintln!(
            "Waiting for catalog image \"{name}\" to sync and verify in namespace {}...",
            cluster.namespace
        );
        let mut seen = false;
        loop {
            match (api.get_opt(name).await, goal) {
                (Ok(None), Goal::Gone) => {
                    eprintln!("✓ Removed from the cluster");
                    return Ok(Phase::Pending);
                }
                (Ok(Some(image)), Goal::Available(expected)) if synced(&image, expected) => {
                    if !seen {
                        eprintln!("✓ Synced to the cluster");
                        seen = true;
                    }
                    let phase = image.status.as_ref().and_then(|s| s.phase);
                    if phase == Some(Phase::Available) && current(&image) {
                        return Ok(Phase::Available);
                    }
                    if phase == Some(Phase::Failed) && current(&image) {
                        let why = image
                            .status
                            .as_ref()
                            .and_then(|s| s.conditions.iter().find(|c| c.status == "False"))
                            .map(|c| format!(": {}", c.message))
                            .unwrap_or_default();
                        return Err(CaibError::Other(anyhow::anyhow!(
                            "catalog image {name:?} failed verification{why}"
                        )));
                    }
                }
                (Ok(_), _) => {}
                (Err(e), _) => {
                    return Err(cluster.error(e, &crate::cluster::CATALOG_IMAGE, Some(name)));
                }
            }
            if Instant::now() > deadline {
                let state = match goal {
                    Goal::Gone => "removed from the cluster",
                    Goal::Available(_) if seen => "Available",
                    Goal::Available(_) => "synced",
                };
                return Err(timed_out(&format!("catalog image {name:?} to be {state}")));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(
        url: &str,
        digest: Option<&str>,
        generation: i64,
        observed: Option<i64>,
    ) -> CatalogImage {
        let mut image = CatalogImage::new(
            "x",
            CatalogImageSpec {
                registry_url: url.into(),
                digest: digest.map(str::to_owned),
                ..Default::default()
            },
        );
        image.metadata.generation = Some(generation);
        image.status = Some(catalog_api::CatalogImageStatus {
            observed_generation: observed,
            phase: Some(Phase::Available),
            ..Default::default()
        });
        image
    }

    #[test]
    fn waits_for_the_new_spec_and_a_current_status() {
        let expected = CatalogImageSpec {
            registry_url: "r/x:2".into(),
            digest: Some("sha256:1".into()),
            ..Default::default()
        };
        assert!(!synced(
            &image("r/x:1", Some("sha256:1"), 1, None),
            &expected
        ));
        assert!(!synced(&image("r/x:2", None, 1, None), &expected));
        assert!(synced(
            &image("r/x:2", Some("sha256:1"), 1, None),
            &expected
        ));
        assert!(!current(&image("r/x:2", None, 3, Some(2))));
        assert!(current(&image("r/x:2", None, 3, Some(3))));
        assert!(current(&image("r/x:2", None, 3, None)));
    }
}
