//! Which environment of catalog.yaml a command works on when `--env` is not given: the one
//! the cluster already names. The CatalogSource that targets the namespace syncs one
//! directory of the repository, and that directory is an environment of catalog.yaml.

use catalog_api::CatalogSource;
use catalog_api::repo::{Environment, RepoConfig};
use kube::Api;
use kube::api::ListParams;

use crate::cli::Global;
use crate::cluster::{self, CATALOG_SOURCE, Cluster};
use crate::error::{CaibError, Result};

/// `--env`, else the only environment, else the one the CatalogSource targeting the namespace
/// syncs. Without any cluster configured (no kubeconfig: a CI job with only Git access) the
/// first environment, as said on stderr.
pub fn choose(config: &RepoConfig, global: &Global) -> Result<Environment> {
    if let Some(name) = &global.environment {
        return config.environment(name).cloned().ok_or_else(|| {
            CaibError::Usage(format!(
                "--env {name}: no such environment in catalog.yaml (environments: {})",
                names(config)
            ))
        });
    }
    if let [only] = config.environments.as_slice() {
        return Ok(only.clone());
    }
    if !cluster::configured(global) {
        let first = &config.environments[0];
        eprintln!(
            "  no --env and no cluster to ask: using {}, the first environment of catalog.yaml",
            first.name
        );
        return Ok(first.clone());
    }
    let (namespace, sources) = super::block_on(targeting(global)).map_err(|e| {
        CaibError::Usage(format!(
            "no --env given, and the cluster could not be asked which environment this \
             namespace holds ({e}); pass --env ({})",
            names(config)
        ))
    })?;
    from_sources(config, &namespace, &sources)
}

/// The namespace and the CatalogSources whose entries are applied to it (their own namespace,
/// or another one's naming it as `targetNamespace`, when the user may list those).
async fn targeting(global: &Global) -> Result<(String, Vec<CatalogSource>)> {
    let cluster = Cluster::connect(global).await?;
    let list = ListParams::default();
    let all: Api<CatalogSource> = cluster.api(true);
    let sources = match all.list(&list).await {
        Ok(found) => found.items,
        Err(_) => {
            let own: Api<CatalogSource> = cluster.api(false);
            own.list(&list)
                .await
                .map_err(|e| cluster.error(e, &CATALOG_SOURCE, None))?
                .items
        }
    };
    let namespace = cluster.namespace.clone();
    let targeting = sources
        .into_iter()
        .filter(|s| target(s) == Some(namespace.as_str()))
        .collect();
    Ok((namespace, targeting))
}

fn target(source: &CatalogSource) -> Option<&str> {
    source
        .spec
        .target_namespace
        .as_deref()
        .or(source.metadata.namespace.as_deref())
}

fn same_dir(a: &str, b: &str) -> bool {
    let clean = |p: &str| p.trim_start_matches("./").trim_matches('/').to_owned();
    clean(a) == clean(b)
}

/// The environment the sources targeting `namespace` agree on, or an error naming them.
pub fn from_sources(
    config: &RepoConfig,
    namespace: &str,
    sources: &[CatalogSource],
) -> Result<Environment> {
    let found: Vec<(String, String, Option<&Environment>)> = sources
        .iter()
        .map(|s| {
            let name = format!(
                "{}/{}",
                s.metadata.namespace.as_deref().unwrap_or_default(),
                s.metadata.name.as_deref().unwrap_or_default()
            );
            let env = config
                .environments
                .iter()
                .find(|e| same_dir(&e.path, &s.spec.path));
            (name, s.spec.path.clone(), env)
        })
        .collect();
    match found.as_slice() {
        [] => Err(CaibError::Usage(format!(
            "--env is required: no CatalogSource targets namespace {namespace:?} (environments: {})",
            names(config)
        ))),
        [(source, path, None)] => Err(CaibError::Usage(format!(
            "--env is required: CatalogSource {source}, which targets namespace {namespace:?}, \
             syncs {path}, which no environment of catalog.yaml has (environments: {})",
            names(config)
        ))),
        [(_, _, Some(env)), rest @ ..]
            if rest
                .iter()
                .all(|(_, _, other)| other.is_some_and(|o| o.name == env.name)) =>
        {
            Ok((*env).clone())
        }
        several => {
            let listed: Vec<String> = several
                .iter()
                .map(|(source, path, env)| {
                    format!(
                        "{source} ({path} → {})",
                        env.map_or("no environment", |e| e.name.as_str())
                    )
                })
                .collect();
            Err(CaibError::Usage(format!(
                "--env is required: {} CatalogSources target namespace {namespace:?}: {}",
                several.len(),
                listed.join(", ")
            )))
        }
    }
}

fn names(config: &RepoConfig) -> String {
    config
        .environments
        .iter()
        .map(|e| format!("{} ({})", e.name, e.path))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> RepoConfig {
        let yaml = "environments:\n  - name: dev\n    path: environments/dev\n  - name: staging\n    path: environments/staging/\n";
        RepoConfig::parse("catalog.yaml", yaml.as_bytes()).unwrap()
    }

    fn source(ns: &str, name: &str, path: &str) -> CatalogSource {
        let mut s: CatalogSource = serde_json::from_value(serde_json::json!({
            "apiVersion": catalog_api::API_VERSION, "kind": "CatalogSource",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"url": "https://git.example.com/c.git", "path": path}
        }))
        .unwrap();
        s.metadata.namespace = Some(ns.into());
        s
    }

    #[test]
    fn the_one_source_names_the_environment() {
        let env = from_sources(
            &config(),
            "team",
            &[source("team", "s", "./environments/staging")],
        );
        assert_eq!(env.unwrap().name, "staging");
    }

    #[test]
    fn none_or_several_are_errors_naming_the_candidates() {
        let err = from_sources(&config(), "team", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no CatalogSource targets namespace \"team\""),
            "{err}"
        );
        assert!(
            err.contains("dev (environments/dev), staging (environments/staging/)"),
            "{err}"
        );
        let two = [
            source("team", "a", "environments/dev"),
            source("team", "b", "environments/staging"),
        ];
        let err = from_sources(&config(), "team", &two)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "team/a (environments/dev → dev), team/b (environments/staging → staging)"
            ),
            "{err}"
        );
        let err = from_sources(&config(), "team", &[source("team", "x", "other")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("syncs other, which no environment"), "{err}");
    }
}
