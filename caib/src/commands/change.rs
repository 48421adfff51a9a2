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
    /// quickstart's summary block with the phase reached (without `--wait`, where the change
    /// is: no cluster phase is shown that was not seen).
    Entry { spec: &'a CatalogImageSpec },
    /// The entry is removed: `--wait` waits for the CatalogImage to be pruned.
    Gone,
}

impl<'a> Follow<'a> {
    pub fn entry(spec: &'a CatalogImageSpec) -> Self {
        Follow::Entry { spec }
    }
}

/// The line that tells the user the command did its part.
fn done(action: Action) -> &'static str {
    match action {
        Action::Add => "Added successfully",
        Action::Publish => "Published successfully",
        Action::Remove => "Removed successfully",
        Action::Promote => "Promoted successfully",
        Action::Tag => "Tagged successfully",
        Action::Untag => "Untagged successfully",
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
        Follow::Entry { .. } => Goal::Available,
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
    if let Follow::Entry { spec } = follow {
        println!();
        let status = reached.map_or_else(|| unseen(repo, &outcome), |p| p.as_str());
        print_summary(&proposal.name, spec, status);
    }
    print_outcome(repo, &outcome);
    Ok(())
}

/// The status line of a change not followed with `--wait`: where the change is, never a
/// cluster phase that was not seen.
fn unseen(repo: &CatalogRepo, outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Submitted {
            pull_request: Some(_),
            ..
        } => "Pending review (not in the cluster yet; --wait follows it)",
        Outcome::Submitted { submitted, .. } if submitted.branch == repo.branch => {
            "Committed (not synced to the cluster yet; --wait follows it)"
        }
        _ => "Pushed for review (not in the cluster yet)",
    }
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Goal {
    /// The CatalogImage applied from the merged commit (or a later one), its status describing
    /// that generation, and Available.
    Available,
    /// The CatalogImage is gone (pruned by the sync).
    Gone,
}

/// Whether the status describes the object's current spec (its generation).
fn current(image: &CatalogImage) -> bool {
    let observed = image.status.as_ref().and_then(|s| s.observed_generation);
    observed.is_some() && observed == image.metadata.generation
}

fn revision(image: &CatalogImage) -> Option<&str> {
    image
        .metadata
        .annotations
        .as_ref()?
        .get(catalog_api::labels::SOURCE_REVISION)
        .map(String::as_str)
}

/// `--wait`: the pull request merged, then the change in the cluster: the CatalogImage's
/// `source-revision` is the merged commit or a descendant (so an older Available object never
/// counts, whatever kind of change this was, a tags-only one included), its status is current,
/// and it is Available. Exit 6 when `--timeout` (default 10m) passes first.
pub fn wait(
    repo: &CatalogRepo,
    outcome: &Outcome,
    env: &Environment,
    name: &str,
    goal: Goal,
    global: &Global,
) -> Result<Phase> {
    let Outcome::Submitted {
        pull_request,
        submitted,
        ..
    } = outcome
    else {
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
        let mut merged = submitted.commit;
        if let (Some(pr), Some(forge)) = (pull_request, &repo.config.forge) {
            let client = ForgeClient::new(forge, &repo.location.url)?;
            eprintln!("Waiting for {} to be merged...", pr.url);
            loop {
                let now = client.get(pr.number).await?;
                match now.state {
                    PrState::Merged => {
                        // A squash or rebase merge puts another commit on the branch.
                        if let Some(commit) = now.merge_commit.as_deref()
                            && let Ok(commit) = git2::Oid::from_str(commit)
                        {
                            merged = commit;
                        }
                        break;
                    }
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
        let short = &merged.to_string()[..12];
        eprintln!(
            "Waiting for catalog image \"{name}\" in namespace {} to show commit {short}...",
            cluster.namespace
        );
        let mut applied = false;
        // The last revision looked up in the history, and whether it includes the change.
        let mut checked: Option<(String, bool)> = None;
        loop {
            let image = api
                .get_opt(name)
                .await
                .map_err(|e| cluster.error(e, &crate::cluster::CATALOG_IMAGE, Some(name)))?;
            match (image, goal) {
                (None, Goal::Gone) => {
                    eprintln!("✓ Removed from the cluster");
                    return Ok(Phase::Pending);
                }
                (Some(image), Goal::Available) => {
                    if let Some(rev) = revision(&image)
                        && checked.as_ref().is_none_or(|(r, _)| r != rev)
                    {
                        let includes = repo.includes(rev, merged)?;
                        if !includes {
                            eprintln!(
                                "  catalog image \"{name}\" is applied from commit {}, \
                                 before this change; waiting",
                                rev.get(..12).unwrap_or(rev)
                            );
                        }
                        checked = Some((rev.to_owned(), includes));
                    }
                    if checked.as_ref().is_some_and(|(_, yes)| *yes) {
                        if !applied {
                            eprintln!("✓ Synced to the cluster");
                            applied = true;
                        }
                        if let Some(done) = settled(&image, name)? {
                            return Ok(done);
                        }
                    }
                }
                _ => {}
            }
            if Instant::now() > deadline {
                let state = match goal {
                    Goal::Gone => "removed from the cluster".to_owned(),
                    Goal::Available if applied => "Available".to_owned(),
                    Goal::Available => format!("applied from commit {short} or later"),
                };
                return Err(timed_out(&format!("catalog image {name:?} to be {state}")));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
}

/// The end of the wait for an image showing the change: Available, or an error when its
/// current status is Failed; `None` while verification is still to come.
fn settled(image: &CatalogImage, name: &str) -> Result<Option<Phase>> {
    if !current(image) {
        return Ok(None);
    }
    let status = image.status.as_ref();
    match status.and_then(|s| s.phase) {
        Some(Phase::Available) => Ok(Some(Phase::Available)),
        Some(Phase::Failed) => {
            let why = status
                .and_then(|s| s.conditions.iter().find(|c| c.status == "False"))
                .map(|c| format!(": {}", c.message))
                .unwrap_or_default();
            Err(CaibError::Other(anyhow::anyhow!(
                "catalog image {name:?} failed verification{why}"
            )))
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(generation: i64, observed: Option<i64>, phase: Phase) -> CatalogImage {
        let mut image = CatalogImage::new("x", CatalogImageSpec::default());
        image.metadata.generation = Some(generation);
        image.status = Some(catalog_api::CatalogImageStatus {
            observed_generation: observed,
            phase: Some(phase),
            ..Default::default()
        });
        image
    }

    #[test]
    fn only_a_status_of_the_current_generation_settles_the_wait() {
        assert_eq!(
            settled(&image(3, Some(3), Phase::Available), "x").unwrap(),
            Some(Phase::Available)
        );
        // Available, but for the spec before this change (a tags-only change included).
        assert_eq!(
            settled(&image(3, Some(2), Phase::Available), "x").unwrap(),
            None
        );
        assert_eq!(
            settled(&image(3, None, Phase::Available), "x").unwrap(),
            None
        );
        assert_eq!(
            settled(&image(3, Some(3), Phase::Verifying), "x").unwrap(),
            None
        );
        assert!(settled(&image(3, Some(3), Phase::Failed), "x").is_err());
    }
}
