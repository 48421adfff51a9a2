//! `caib catalog tag NAME TAG...` and `caib catalog untag NAME TAG...`: the GitOps answer to
//! "tag this image as production". A tag set with kubectl is put back by the next sync; this
//! changes the entry's `spec.tags` in Git, one line per tag, through a commit and a pull
//! request (or `--direct`), and `--wait` follows it until the cluster shows it.

use std::collections::BTreeMap;

use crate::cli::{Global, TagArgs};
use crate::error::{CaibError, Result};
use crate::repo::{Action, CatalogRepo};

use super::change::{self, Proposal};
use super::{entry, target_env};

/// Adding or removing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Tag,
    Untag,
}

/// The tags after the operation: added ones at the end in the order given, removed ones gone;
/// the others keep their order.
pub fn apply(op: Op, current: &[String], tags: &[String]) -> Vec<String> {
    let mut out: Vec<String> = current.to_vec();
    match op {
        Op::Tag => {
            for tag in tags {
                if !out.contains(tag) {
                    out.push(tag.clone());
                }
            }
        }
        Op::Untag => out.retain(|t| !tags.contains(t)),
    }
    out
}

pub fn run(args: &TagArgs, op: Op, global: &Global) -> Result<()> {
    if let Some(bad) = args.tags.iter().find(|t| t.is_empty() || t.len() > 63) {
        return Err(CaibError::Usage(format!(
            "tag {bad:?}: tags must be 1 to 63 characters"
        )));
    }
    let mut repo = CatalogRepo::open(global.catalog_repo.as_deref())?;
    let env = target_env::choose(&repo.config, global)?;
    let report = repo.report(&env)?;
    let found = entry::find(&report.entries, &args.name, &env)?;
    let mut spec = found.image.spec.clone();
    spec.tags = apply(op, &spec.tags, &args.tags);
    let (verb, action) = match op {
        Op::Tag => ("tag", Action::Tag),
        Op::Untag => ("untag", Action::Untag),
    };
    if spec.tags == found.image.spec.tags {
        let state = match op {
            Op::Tag => "already carries",
            Op::Untag => "does not carry",
        };
        eprintln!(
            "✓ \"{}\" in {} {state} {}; nothing to do",
            args.name,
            env.name,
            args.tags.join(", ")
        );
        return Ok(());
    }
    eprintln!(
        "{} \"{}\" in {}: {}...",
        if op == Op::Tag {
            "Tagging"
        } else {
            "Untagging"
        },
        args.name,
        env.name,
        args.tags.join(", ")
    );
    let change = entry::change(
        &repo,
        &report.entries,
        &env.path,
        &args.name,
        &BTreeMap::new(),
        &spec,
    )?;
    let shown = |tags: &[String]| {
        if tags.is_empty() {
            "(none)".to_owned()
        } else {
            tags.join(", ")
        }
    };
    let proposal = Proposal {
        action,
        env: env.clone(),
        name: args.name.clone(),
        change,
        subject: format!(
            "catalog: {verb} {} in {} ({})",
            args.name,
            env.name,
            args.tags.join(", ")
        ),
        body: format!(
            "Tags before: {}\nTags after:  {}",
            shown(&found.image.spec.tags),
            shown(&spec.tags)
        ),
        source_imagebuild: None,
    };
    change::submit_and_report(
        &mut repo,
        &proposal,
        &args.change,
        global,
        change::Follow::entry(&spec),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn tags_are_added_once_at_the_end_and_removed_wherever_they_are() {
        let current = v(&["nightly", "tested"]);
        assert_eq!(
            apply(Op::Tag, &current, &v(&["production", "tested", "x"])),
            v(&["nightly", "tested", "production", "x"])
        );
        assert_eq!(
            apply(Op::Untag, &current, &v(&["nightly", "absent"])),
            v(&["tested"])
        );
        assert_eq!(apply(Op::Untag, &current, &current), v(&[]));
    }
}
