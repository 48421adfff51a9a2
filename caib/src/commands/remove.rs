//! `caib catalog remove NAME`: deletes an entry file through a commit and a pull request.
//! Asks first on a terminal; without one it needs `--force`, so a script never deletes by
//! accident.

use std::io::{BufRead, IsTerminal, Write};

use crate::cli::{Global, RemoveArgs};
use crate::error::{CaibError, Result};
use crate::repo::{Action, CatalogRepo, FileChange};

use super::change::{self, Proposal};

pub fn run(args: &RemoveArgs, global: &Global) -> Result<()> {
    let interactive = std::io::stdin().is_terminal();
    if !args.force && !interactive && !global.dry_run {
        return Err(CaibError::Usage(format!(
            "refusing to remove \"{}\" without confirmation: stdin is not a terminal; pass --force",
            args.name
        )));
    }
    let mut repo = CatalogRepo::open(global.catalog_repo.as_deref())?;
    let env = super::target_env::choose(&repo.config, global)?;
    let report = repo.report(&env)?;
    let entry = super::entry::find(&report.entries, &args.name, &env)?;
    let path = entry.path.clone();
    let url = entry.image.spec.registry_url.clone();
    let other_in_file = report
        .entries
        .iter()
        .filter(|e| e.path == path && e.name() != args.name)
        .map(|e| e.name().to_owned())
        .collect::<Vec<_>>();
    if !other_in_file.is_empty() {
        return Err(CaibError::Usage(format!(
            "{path} also defines {}: edit that file by hand to remove only \"{}\"",
            other_in_file.join(", "),
            args.name
        )));
    }
    if !args.force && !global.dry_run {
        eprint!(
            "Remove \"{}\" ({url}) from {}? This deletes {path}. [y/N] ",
            args.name, env.name
        );
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes" | "Yes") {
            eprintln!("Aborted; nothing changed.");
            return Err(CaibError::Silent(crate::error::exit::ERROR));
        }
    }
    eprintln!("Removing \"{}\" from {}...", args.name, env.name);
    let proposal = Proposal {
        action: Action::Remove,
        env: env.clone(),
        name: args.name.clone(),
        change: FileChange::Remove { path },
        subject: format!("catalog: remove {} from {}", args.name, env.name),
        body: format!("Registry URL: {url}"),
        source_imagebuild: None,
    };
    let follow = change::Follow::Gone;
    change::submit_and_report(&mut repo, &proposal, &args.change, global, follow)
}
