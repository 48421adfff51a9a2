//! `caib catalog validate [DIR]`: the reconciler's own validation, offline, for catalog CI.

use std::path::{Path, PathBuf};

use catalog_api::Diagnostic;
use catalog_api::repo::{self, RepoConfig};
use catalog_api::validate::Rules;

use crate::cli::{ValidateArgs, ValidateFormat};
use crate::error::{CaibError, Result, exit};

pub fn run(args: &ValidateArgs) -> Result<()> {
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from("."));
    if !dir.is_dir() {
        return Err(CaibError::Usage(format!(
            "{} is not a directory (pass a catalog repository or an environment directory)",
            dir.display()
        )));
    }
    let (diagnostics, entries, environments) = validate_dir(&dir);
    for d in &diagnostics {
        match args.format {
            ValidateFormat::Text => println!("{d}"),
            ValidateFormat::Github => println!("{}", d.github_annotation()),
        }
    }
    if diagnostics.is_empty() {
        eprintln!("✓ {entries} entries in {environments} valid");
        Ok(())
    } else {
        eprintln!(
            "✗ {} problem{} found ({entries} valid entries)",
            diagnostics.len(),
            if diagnostics.len() == 1 { "" } else { "s" }
        );
        Err(CaibError::Silent(exit::ERROR))
    }
}

/// Validates a repository (when `catalog.yaml` is present: every environment with its rules)
/// or a single directory of entries. Paths in diagnostics are relative to `dir`.
pub fn validate_dir(dir: &Path) -> (Vec<Diagnostic>, usize, String) {
    if dir.join(repo::CONFIG_FILE).is_file() {
        let config = match RepoConfig::load(dir) {
            Ok(config) => config,
            Err(diagnostics) => return (diagnostics, 0, "catalog.yaml".into()),
        };
        let mut diagnostics = Vec::new();
        let mut entries = 0;
        for env in &config.environments {
            if !dir.join(&env.path).is_dir() {
                diagnostics.push(Diagnostic::file(
                    repo::CONFIG_FILE,
                    format!(
                        "environment {:?}: directory {} does not exist",
                        env.name, env.path
                    ),
                ));
                continue;
            }
            let report = repo::validate_environment_dir(dir, &env.path, &env.rules());
            entries += report.entries.len();
            diagnostics.extend(report.diagnostics);
        }
        let n = config.environments.len();
        (
            diagnostics,
            entries,
            format!("{n} environment{}", if n == 1 { "" } else { "s" }),
        )
    } else {
        let report = repo::validate_environment_dir(dir, ".", &Rules::default());
        (
            report.diagnostics,
            report.entries.len(),
            "the directory".into(),
        )
    }
}
