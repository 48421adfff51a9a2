//! The catalog repository: `catalog.yaml` (environments in promotion order, forge settings)
//! and reading an environment's files from a working tree.

use std::path::{Component, Path};

use serde::{Deserialize, Serialize};

use crate::diagnostic::Diagnostic;
use crate::entry::parse_file;
use crate::source::ForgeProvider;
use crate::validate::{self, Report, Rules};

/// File name of the repository configuration at the repository root.
pub const CONFIG_FILE: &str = "catalog.yaml";

/// `catalog.yaml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RepoConfig {
    /// Branch pull requests target and the reconciler follows; default `main`.
    #[serde(default = "default_branch")]
    pub branch: String,
    /// Environments in promotion order (dev first, production last).
    pub environments: Vec<Environment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forge: Option<Forge>,
    #[serde(default)]
    pub defaults: Defaults,
}

fn default_branch() -> String {
    "main".into()
}

/// One environment: a directory of entries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Environment {
    pub name: String,
    /// Directory relative to the repository root (`environments/dev`).
    pub path: String,
    /// Namespace the environment's CatalogSource applies to, when fixed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Every entry must pin a digest.
    #[serde(default)]
    pub require_digest: bool,
    /// Environment entries are promoted from (`caib catalog promote --to` this one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotes_from: Option<String>,
}

impl Environment {
    pub fn rules(&self) -> Rules {
        Rules {
            target_namespace: self.namespace.clone(),
            require_digest: self.require_digest,
            environment: Some(self.name.clone()),
        }
    }
}

/// Where pull requests are opened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Forge {
    pub provider: ForgeProvider,
    /// API base URL; default the public service of the provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    /// `owner/name` (GitHub, Gitea) or the project path (GitLab).
    pub repo: String,
}

/// Values applied where entries leave them out.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Defaults {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_interval: Option<String>,
}

impl RepoConfig {
    pub fn environment(&self, name: &str) -> Option<&Environment> {
        self.environments.iter().find(|e| e.name == name)
    }

    /// The environment `name` promotes from: its `promotesFrom`, else the previous one in order.
    pub fn previous(&self, name: &str) -> Option<&Environment> {
        let env = self.environment(name)?;
        match &env.promotes_from {
            Some(from) => self.environment(from),
            None => {
                let index = self.environments.iter().position(|e| e.name == name)?;
                index.checked_sub(1).map(|i| &self.environments[i])
            }
        }
    }

    /// Parse and check `catalog.yaml`, every problem located.
    pub fn parse(path: &str, bytes: &[u8]) -> Result<RepoConfig, Vec<Diagnostic>> {
        let (documents, mut diagnostics) = parse_file(path, bytes);
        if !diagnostics.is_empty() {
            return Err(diagnostics);
        }
        let Some(document) = documents.first() else {
            return Err(vec![Diagnostic::file(path, "empty configuration")]);
        };
        let root = &document.root;
        let config: RepoConfig = match serde_path_to_error::deserialize(root.to_json()) {
            Ok(config) => config,
            Err(e) => {
                let field = e.path().to_string();
                let node = root.locate(&field);
                return Err(vec![Diagnostic::new(
                    path,
                    node.line,
                    node.column,
                    format!("{field}: {}", e.inner()),
                )]);
            }
        };
        let mut err = |field: String, message: String| {
            let node = root.locate(&field);
            diagnostics.push(Diagnostic::new(
                path,
                node.line,
                node.column,
                format!("{field}: {message}"),
            ));
        };
        if config.environments.is_empty() {
            err(
                "environments".into(),
                "at least one environment is required".into(),
            );
        }
        for (i, env) in config.environments.iter().enumerate() {
            if let Err(why) = validate::check_dns_subdomain(&env.name) {
                err(
                    format!("environments[{i}].name"),
                    format!("{:?} {why}", env.name),
                );
            }
            if config.environments[..i].iter().any(|e| e.name == env.name) {
                err(
                    format!("environments[{i}].name"),
                    format!("environment {:?} is listed twice", env.name),
                );
            }
            if !is_relative_inside(&env.path) {
                err(
                    format!("environments[{i}].path"),
                    format!(
                        "{:?} must be a relative path inside the repository",
                        env.path
                    ),
                );
            }
            if let Some(from) = &env.promotes_from
                && !config.environments[..i].iter().any(|e| &e.name == from)
            {
                err(
                    format!("environments[{i}].promotesFrom"),
                    format!("{from:?} is not an earlier environment"),
                );
            }
        }
        if diagnostics.is_empty() {
            Ok(config)
        } else {
            Err(diagnostics)
        }
    }

    /// Read `catalog.yaml` from a working tree.
    pub fn load(root: &Path) -> Result<RepoConfig, Vec<Diagnostic>> {
        let file = root.join(CONFIG_FILE);
        match read_bounded(&file, CONFIG_FILE) {
            Ok(bytes) => RepoConfig::parse(CONFIG_FILE, &bytes),
            Err(diagnostic) => Err(vec![diagnostic]),
        }
    }
}

fn is_relative_inside(path: &str) -> bool {
    let p = Path::new(path);
    !path.is_empty()
        && p.components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

/// Files of an environment directory in a working tree: `*.yaml`/`*.yml`, recursively,
/// hidden files skipped, paths relative to `root` with `/` separators, sorted. A symlink is
/// followed only when it stays inside the repository.
pub fn read_environment_files(root: &Path, dir: &str) -> (Vec<(String, Vec<u8>)>, Vec<Diagnostic>) {
    let mut files = Vec::new();
    let mut diagnostics = Vec::new();
    let canonical_root = match root.canonicalize() {
        Ok(r) => r,
        Err(e) => {
            diagnostics.push(Diagnostic::file(
                dir,
                format!("cannot open {}: {e}", root.display()),
            ));
            return (files, diagnostics);
        }
    };
    let mut stack = vec![root.join(dir)];
    while let Some(current) = stack.pop() {
        let listing = match std::fs::read_dir(&current) {
            Ok(listing) => listing,
            Err(e) => {
                diagnostics.push(Diagnostic::file(
                    relative(root, &current),
                    format!("cannot read directory: {e}"),
                ));
                continue;
            }
        };
        for item in listing.flatten() {
            let path = item.path();
            let name = item.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let rel = relative(root, &path);
            let Ok(file_type) = item.file_type() else {
                continue;
            };
            if file_type.is_symlink() {
                match path.canonicalize() {
                    Ok(target) if target.starts_with(&canonical_root) => {}
                    Ok(target) => {
                        diagnostics.push(Diagnostic::file(&rel, format!("symlink points outside the repository (to {}); entry files must live in the repository", target.display())));
                        continue;
                    }
                    Err(e) => {
                        diagnostics.push(Diagnostic::file(&rel, format!("broken symlink: {e}")));
                        continue;
                    }
                }
            }
            if path.is_dir() {
                stack.push(path);
            } else if name.ends_with(".yaml") || name.ends_with(".yml") {
                match read_bounded(&path, &rel) {
                    Ok(bytes) => files.push((rel, bytes)),
                    Err(diagnostic) => diagnostics.push(diagnostic),
                }
            }
        }
    }
    files.sort();
    (files, diagnostics)
}

/// Reads a file of the working tree unless its metadata says it is over
/// [`crate::entry::MAX_FILE_BYTES`]: a 50 MiB file committed by mistake is reported, never
/// loaded. The read itself stops past the limit too, for a file that grows meanwhile.
pub fn read_bounded(path: &Path, rel: &str) -> Result<Vec<u8>, Diagnostic> {
    use std::io::Read as _;
    let cannot = |e: std::io::Error| Diagnostic::file(rel, format!("cannot read file: {e}"));
    let file = std::fs::File::open(path).map_err(cannot)?;
    let size = file.metadata().map_err(cannot)?.len();
    if let Some(oversized) = crate::entry::check_size(rel, size) {
        return Err(oversized);
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(crate::entry::MAX_FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    Ok(bytes)
}

fn relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Validate one environment of a working tree.
pub fn validate_environment_dir(root: &Path, dir: &str, rules: &Rules) -> Report {
    let (files, read_errors) = read_environment_files(root, dir);
    let mut report = validate::validate_environment(
        files.iter().map(|(p, b)| (p.as_str(), b.as_slice())),
        rules,
    );
    report.diagnostics.extend(read_errors);
    report.diagnostics.sort();
    report
}
