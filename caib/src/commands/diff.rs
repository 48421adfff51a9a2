//! `caib catalog diff [--env ENV]`: what the next sync would change — the entries of one
//! environment of the catalog repository (without `--env`, the one the CatalogSource targeting
//! the namespace syncs) (validated exactly as the reconciler validates them)
//! against the live CatalogImages of the target namespace.
//!
//! Only what the repository controls is compared: `spec` and the labels and annotations a
//! user wrote. Status, server fields and everything the sync derives (spec labels, source
//! traceability, verify requests) are left out, so a freshly synced catalog diffs empty.
//! Exit 0 when equal, 1 when different.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use catalog_api::labels::{PREFIX, TARGET_PREFIX};
use catalog_api::repo::{self, RepoConfig};
use catalog_api::validate::{Entry, Report, Rules};
use catalog_api::{CatalogImage, CatalogImageSpec};
use kube::api::{Api, ListParams};
use serde::Serialize;

use crate::cli::{DiffArgs, Global};
use crate::cluster::{CATALOG_IMAGE, Cluster};
use crate::error::{CaibError, Result, exit};

/// Annotations written by tools rather than by the repository's author.
const TOOL_ANNOTATIONS: &[&str] = &["kubectl.kubernetes.io/last-applied-configuration"];

pub fn run(global: &Global, _args: &DiffArgs) -> Result<()> {
    // A remote URL: the cached clone the Git commands use, read at the tip of its branch.
    let remote = match global.catalog_repo.as_deref() {
        Some(value) if crate::repo::location::is_url(value) => {
            Some(crate::repo::CatalogRepo::open(Some(value))?)
        }
        _ => None,
    };
    let root = match &remote {
        Some(_) => PathBuf::new(),
        None => repo_root(global.catalog_repo.as_deref())?,
    };
    let (env_name, env_dir, mut rules, env_namespace) = match &remote {
        Some(repo) => {
            let env = super::target_env::choose(&repo.config, global)?;
            (
                env.name.clone(),
                env.path.clone(),
                env.rules(),
                env.namespace.clone(),
            )
        }
        None => environment(&root, global)?,
    };
    super::block_on(async {
        let mut global = global.clone();
        if global.namespace.is_none() {
            global.namespace = env_namespace;
        }
        let cluster = Cluster::connect(&global).await?;
        rules.target_namespace = Some(cluster.namespace.clone());
        let report = match &remote {
            Some(repo) => {
                let env = repo.environment(&env_name)?;
                repo.report(&env)?
            }
            None => repo::validate_environment_dir(&root, &env_dir, &rules),
        };
        for d in &report.diagnostics {
            eprintln!("warning: {d} (left out of the comparison; the cluster keeps what it has)");
        }
        let api: Api<CatalogImage> = cluster.api(false);
        let live = api
            .list(&ListParams::default())
            .await
            .map_err(|e| cluster.error(e, &CATALOG_IMAGE, None))?
            .items;
        let changes = compare(&report, &live)?;
        let text = render(&changes, &cluster.namespace);
        print!("{text}");
        let summary = Summary::of(&changes);
        if summary.is_empty() {
            eprintln!(
                "No differences: environment {env_name:?} ({env_dir}) matches namespace {:?}",
                cluster.namespace
            );
            Ok(())
        } else {
            eprintln!(
                "{} to add, {} to change, {} to remove (environment {env_name:?} vs namespace {:?})",
                summary.added, summary.changed, summary.removed, cluster.namespace
            );
            Err(CaibError::Silent(exit::ERROR))
        }
    })
}

/// The checkout to read: `--catalog-repo PATH` (or the config file's), else the current
/// directory (remote URLs are handled by the caller).
fn repo_root(flag: Option<&str>) -> Result<PathBuf> {
    let Some(value) = flag else {
        return Ok(PathBuf::from("."));
    };
    let path = PathBuf::from(value);
    if !path.is_dir() {
        return Err(CaibError::Usage(format!(
            "--catalog-repo {value}: no such directory"
        )));
    }
    Ok(path)
}

/// The environment to compare: `--env`, else the one the cluster names (see
/// [`super::target_env`]). Without `catalog.yaml` the directory itself is one environment.
fn environment(root: &Path, global: &Global) -> Result<(String, String, Rules, Option<String>)> {
    if !root.join(repo::CONFIG_FILE).is_file() {
        if let Some(name) = &global.environment {
            return Err(CaibError::Usage(format!(
                "--env {name}: {} has no {} to define environments",
                root.display(),
                repo::CONFIG_FILE
            )));
        }
        return Ok((".".into(), ".".into(), Rules::default(), None));
    }
    let config = RepoConfig::load(root).map_err(|diagnostics| {
        let lines: Vec<String> = diagnostics.iter().map(|d| d.to_string()).collect();
        CaibError::Other(anyhow::anyhow!(
            "invalid {} in {}:\n{}",
            repo::CONFIG_FILE,
            root.display(),
            lines.join("\n")
        ))
    })?;
    let env = super::target_env::choose(&config, global)?;
    Ok((
        env.name.clone(),
        env.path.clone(),
        env.rules(),
        env.namespace.clone(),
    ))
}

/// What the repository controls of an entry, in a stable order for diffing.
#[derive(Serialize, PartialEq)]
struct Comparable<'a> {
    metadata: ComparableMeta,
    spec: &'a CatalogImageSpec,
}

#[derive(Serialize, PartialEq)]
struct ComparableMeta {
    name: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
}

/// Keys the sync or the controllers write: everything under our prefixes.
fn is_derived(key: &str) -> bool {
    key.starts_with(&format!("{PREFIX}/"))
        || key.starts_with(TARGET_PREFIX)
        || TOOL_ANNOTATIONS.contains(&key)
}

fn comparable_yaml(image: &CatalogImage) -> Result<String> {
    let user = |map: &Option<BTreeMap<String, String>>| {
        map.iter()
            .flatten()
            .filter(|(k, _)| !is_derived(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    crate::output::to_yaml(&Comparable {
        metadata: ComparableMeta {
            name: image.metadata.name.clone().unwrap_or_default(),
            labels: user(&image.metadata.labels),
            annotations: user(&image.metadata.annotations),
        },
        spec: &image.spec,
    })
}

/// One entry that differs.
#[derive(Debug, PartialEq)]
pub enum Change {
    /// In the repository only: the sync would create it.
    Added {
        name: String,
        path: String,
        yaml: String,
    },
    /// In both, different: live (old) → repository (new).
    Changed {
        name: String,
        path: String,
        live: String,
        desired: String,
    },
    /// In the cluster only: the sync would prune it (when the source owns it).
    Removed { name: String, yaml: String },
}

/// Compares a validated environment with the live objects, by name. Live objects whose file
/// is broken are not reported as removed: the sync keeps them.
pub fn compare(report: &Report, live: &[CatalogImage]) -> Result<Vec<Change>> {
    let broken = report.broken_paths();
    let desired: BTreeMap<&str, &Entry> = report.entries.iter().map(|e| (e.name(), e)).collect();
    let live: BTreeMap<&str, &CatalogImage> = live
        .iter()
        .map(|i| (i.metadata.name.as_deref().unwrap_or_default(), i))
        .collect();
    let names: BTreeSet<&str> = desired.keys().chain(live.keys()).copied().collect();
    let mut changes = Vec::new();
    for name in names {
        match (desired.get(name), live.get(name)) {
            (Some(entry), None) => changes.push(Change::Added {
                name: name.into(),
                path: entry.path.clone(),
                yaml: comparable_yaml(&entry.image)?,
            }),
            (Some(entry), Some(image)) => {
                let (want, have) = (comparable_yaml(&entry.image)?, comparable_yaml(image)?);
                if want != have {
                    changes.push(Change::Changed {
                        name: name.into(),
                        path: entry.path.clone(),
                        live: have,
                        desired: want,
                    });
                }
            }
            (None, Some(image)) => {
                let source_path = image
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(catalog_api::labels::SOURCE_PATH));
                if source_path.is_some_and(|p| broken.contains(p.as_str())) {
                    continue;
                }
                changes.push(Change::Removed {
                    name: name.into(),
                    yaml: comparable_yaml(image)?,
                });
            }
            (None, None) => {}
        }
    }
    Ok(changes)
}

#[derive(Debug, Default, PartialEq)]
pub struct Summary {
    pub added: usize,
    pub changed: usize,
    pub removed: usize,
}

impl Summary {
    pub fn of(changes: &[Change]) -> Summary {
        let mut s = Summary::default();
        for c in changes {
            match c {
                Change::Added { .. } => s.added += 1,
                Change::Changed { .. } => s.changed += 1,
                Change::Removed { .. } => s.removed += 1,
            }
        }
        s
    }

    pub fn is_empty(&self) -> bool {
        *self == Summary::default()
    }
}

/// Unified diffs, cluster (`---`) to repository (`+++`), one per entry.
pub fn render(changes: &[Change], namespace: &str) -> String {
    let mut out = String::new();
    let diff = |old: &str, new: &str, a: &str, b: &str| {
        similar::TextDiff::from_lines(old, new)
            .unified_diff()
            .context_radius(3)
            .header(a, b)
            .to_string()
    };
    for change in changes {
        match change {
            Change::Added { path, yaml, .. } => {
                out.push_str(&diff("", yaml, "/dev/null", path));
            }
            Change::Changed {
                name,
                path,
                live,
                desired,
            } => {
                out.push_str(&diff(
                    live,
                    desired,
                    &format!("cluster/{namespace}/{name}"),
                    path,
                ));
            }
            Change::Removed { name, yaml } => {
                out.push_str(&diff(
                    yaml,
                    "",
                    &format!("cluster/{namespace}/{name}"),
                    "/dev/null",
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::testdata::{by_hand, qemu, rpi4};

    fn entry(image: CatalogImage, path: &str) -> Entry {
        Entry {
            path: path.into(),
            line: 3,
            image,
        }
    }

    #[test]
    fn compares_only_what_the_repository_controls() {
        // Live: synced copies with derived labels, source annotations and status.
        let mut live_rpi = rpi4();
        live_rpi.metadata.resource_version = Some("42".into());
        let mut live_qemu = qemu();
        live_qemu.spec.tags = vec!["old".into()];
        live_qemu
            .metadata
            .labels
            .get_or_insert_default()
            .insert("team".into(), "platform".into());
        let live = vec![live_rpi, live_qemu, by_hand()];

        // Desired: files without derived labels or status; qemu's tags changed, a new entry,
        // my-catalog-image gone from Git.
        let mut want_rpi = rpi4();
        want_rpi.metadata.labels = None;
        want_rpi.metadata.annotations = None;
        want_rpi.status = None;
        let mut want_qemu = qemu();
        want_qemu.status = None;
        want_qemu.metadata.labels = Some([("team".to_string(), "platform".to_string())].into());
        want_qemu.spec.tags = vec!["reference".into()];
        let mut new = by_hand();
        new.metadata.name = Some("new-image".into());
        let report = Report {
            entries: vec![
                entry(want_rpi, "environments/dev/autosd-cs9-rpi4.yaml"),
                entry(want_qemu, "environments/dev/autosd-cs9-qemu.yaml"),
                entry(new, "environments/dev/new-image.yaml"),
            ],
            diagnostics: vec![],
        };
        let changes = compare(&report, &live).unwrap();
        assert_eq!(
            Summary::of(&changes),
            Summary {
                added: 1,
                changed: 1,
                removed: 1
            }
        );
        insta::assert_snapshot!(render(&changes, "dev"));
    }

    #[test]
    fn a_broken_file_does_not_remove_its_live_entry() {
        let mut live = rpi4();
        live.metadata.annotations.get_or_insert_default().insert(
            catalog_api::labels::SOURCE_PATH.into(),
            "environments/dev/rpi.yaml".into(),
        );
        let report = Report {
            entries: vec![],
            diagnostics: vec![catalog_api::Diagnostic::new(
                "environments/dev/rpi.yaml",
                2,
                1,
                "bad",
            )],
        };
        assert!(compare(&report, &[live]).unwrap().is_empty());
    }
}
