//! `caib catalog status NAME --entries`: the entries a CatalogSource manages, name and path.
//!
//! The status only counts them: a list of every entry would grow with the catalog past what
//! one object may hold. The entries are the CatalogImages of the source's target namespace
//! that carry its `catalog-source` label *and* name its namespace in their `source-namespace`
//! annotation, exactly as the reconciler decides ownership; the label narrows what the
//! server sends and only object metadata is fetched, so 100,000 entries stay cheap to list.

use catalog_api::labels::{CATALOG_SOURCE as SOURCE_LABEL, SOURCE_NAMESPACE, SOURCE_PATH};
use catalog_api::{CatalogImage, CatalogSource};
use kube::api::{Api, ListParams};
use serde::Serialize;

use crate::cli::OutputFormat;
use crate::cluster::{CATALOG_IMAGE, Cluster};
use crate::error::{CaibError, Result};
use crate::output::{self, NONE, Table};

/// Objects per list request: bounded responses however large the source.
const PAGE_SIZE: u32 = 500;

/// One managed entry.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct SourceEntry {
    pub name: String,
    /// The file it comes from (`source-path` annotation), when the object carries it.
    pub path: Option<String>,
}

/// The entries `source` manages, sorted by name.
pub async fn list(cluster: &Cluster, source: &CatalogSource) -> Result<Vec<SourceEntry>> {
    let namespace = source.target_namespace();
    let owner_namespace = source.metadata.namespace.as_deref().unwrap_or_default();
    let name = source.metadata.name.as_deref().unwrap_or_default();
    let api: Api<CatalogImage> = Api::namespaced(cluster.client.clone(), namespace);
    let mut params = ListParams::default()
        .labels(&format!("{SOURCE_LABEL}={name}"))
        .limit(PAGE_SIZE);
    let mut entries = Vec::new();
    loop {
        let page = api
            .list_metadata(&params)
            .await
            .map_err(|e| cluster.error(e, &CATALOG_IMAGE, None))?;
        for object in page.items {
            let annotations = object.metadata.annotations.unwrap_or_default();
            if annotations.get(SOURCE_NAMESPACE).map(String::as_str) != Some(owner_namespace) {
                continue;
            }
            entries.push(SourceEntry {
                name: object.metadata.name.unwrap_or_default(),
                path: annotations.get(SOURCE_PATH).cloned(),
            });
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => break,
        }
    }
    entries.sort();
    Ok(entries)
}

/// A NAME PATH table, or `{"source": "ns/name", "namespace": ..., "entries": [...]}`.
pub fn render(
    source: &CatalogSource,
    entries: &[SourceEntry],
    format: OutputFormat,
) -> Result<String> {
    if matches!(format, OutputFormat::Json | OutputFormat::Yaml) {
        let value = serde_json::json!({
            "source": format!(
                "{}/{}",
                source.metadata.namespace.as_deref().unwrap_or_default(),
                source.metadata.name.as_deref().unwrap_or_default()
            ),
            "namespace": source.target_namespace(),
            "entries": entries,
        });
        return output::document(&value, format);
    }
    let mut table = Table::new(vec!["NAME", "PATH"]);
    for entry in entries {
        let path = entry.path.clone().unwrap_or_else(|| NONE.into());
        table.push(vec![entry.name.clone(), path]);
    }
    Ok(table.render())
}

/// What `--entries` says when the source manages nothing.
pub fn none_found(source: &CatalogSource) -> String {
    format!(
        "No entries found for catalog source {}",
        source.metadata.name.as_deref().unwrap_or_default()
    )
}

/// `--entries` needs one source.
pub fn usage() -> CaibError {
    CaibError::Usage("--entries lists the entries of one source: give its NAME".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_table_and_a_document() {
        let source: CatalogSource = serde_json::from_value(serde_json::json!({
            "apiVersion": "automotive.sdv.cloud.redhat.com/v1alpha1", "kind": "CatalogSource",
            "metadata": {"name": "dev", "namespace": "catalog-dev"},
            "spec": {"url": "https://git.example.com/c.git", "path": "environments/dev"}
        }))
        .unwrap();
        let entries = [
            SourceEntry {
                name: "a".into(),
                path: Some("environments/dev/a.yaml".into()),
            },
            SourceEntry {
                name: "adopted".into(),
                path: None,
            },
        ];
        insta::assert_snapshot!(render(&source, &entries, OutputFormat::Table).unwrap(), @r"
        NAME      PATH
        a         environments/dev/a.yaml
        adopted   <none>
        ");
        let json: serde_json::Value =
            serde_json::from_str(&render(&source, &entries, OutputFormat::Json).unwrap()).unwrap();
        assert_eq!(json["source"], "catalog-dev/dev");
        assert_eq!(json["entries"][0]["path"], "environments/dev/a.yaml");
    }
}
