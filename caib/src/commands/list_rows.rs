//! The rows of `caib catalog list`'s table formats, from either source: full CatalogImages,
//! or the API server's own `Table` of them (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`,
//! as kubectl asks). The Table carries exactly the CRD's printer columns (Registry,
//! Architecture, Distro, Target, Phase, and the wide Digest and Revision) plus each object's
//! metadata (PartialObjectMetadata, the server's default `includeObject`): no spec or status
//! to serialise, and caib decodes the cells and three metadata fields, skipping the rest
//! (managedFields above all) unparsed, instead of building a whole CatalogImage per row. The
//! bytes shrink less than one might hope (metadata is most of a synced object), the parsing a
//! lot. Both sources give the same [`Row`], so the table printed is the same either way.

use std::cmp::Ordering;

use catalog_api::CatalogImage;
use catalog_api::image::Phase;
use catalog_api::labels;
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ListMeta, Time};
use kube::api::{Api, ListParams};
use serde::Deserialize;
use serde_json::Value;

use crate::cluster::{CATALOG_IMAGE, Cluster};
use crate::error::{CaibError, Result};
use crate::output::{self, NONE};

/// What one line of the list table shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub created: Option<Time>,
    pub registry: String,
    pub architecture: Option<String>,
    pub distro: Option<String>,
    /// The first declared target.
    pub target: Option<String>,
    pub phase: Phase,
    pub digest: Option<String>,
    pub revision: Option<String>,
}

impl Row {
    pub fn of_image(image: &CatalogImage) -> Row {
        let meta = &image.spec.metadata;
        let status = image.status.as_ref();
        Row {
            namespace: image.metadata.namespace.clone(),
            name: image.metadata.name.clone(),
            created: image.metadata.creation_timestamp.clone(),
            registry: image.spec.registry_url.clone(),
            architecture: meta.architecture.clone(),
            distro: meta.distro.clone(),
            target: meta.targets.first().map(|t| t.name.clone()),
            phase: super::list::phase_of(image),
            digest: status
                .and_then(|s| s.registry_metadata.as_ref())
                .and_then(|m| m.resolved_digest.clone()),
            revision: (image.metadata.annotations.as_ref())
                .and_then(|a| a.get(labels::SOURCE_REVISION).cloned()),
        }
    }

    /// Identity for merging the answers of several selectors.
    pub fn key(&self) -> (Option<String>, Option<String>) {
        (self.namespace.clone(), self.name.clone())
    }
}

/// Newest first; same age by namespace and name so the order is stable.
pub fn newest_first(
    a: (Option<&Time>, Option<&String>, Option<&String>),
    b: (Option<&Time>, Option<&String>, Option<&String>),
) -> Ordering {
    let (ta, tb) = (a.0.map(|t| t.0), b.0.map(|t| t.0));
    tb.cmp(&ta).then_with(|| (a.1, a.2).cmp(&(b.1, b.2)))
}

pub fn sort_rows(rows: &mut [Row]) {
    rows.sort_by(|a, b| {
        newest_first(
            (a.created.as_ref(), a.namespace.as_ref(), a.name.as_ref()),
            (b.created.as_ref(), b.namespace.as_ref(), b.name.as_ref()),
        )
    });
}

/// The table (`wide` adds DIGEST and REVISION; `-A` the NAMESPACE column).
pub fn table(rows: &[Row], wide: bool, all_namespaces: bool, now: Timestamp) -> String {
    let columns = [
        "REGISTRY",
        "ARCHITECTURE",
        "DISTRO",
        "TARGET",
        "PHASE",
        "AGE",
    ];
    let mut table = output::object_table(all_namespaces, &columns);
    if wide {
        table.headers.extend(["DIGEST", "REVISION"]);
    }
    let or_none = |v: &Option<String>| v.clone().unwrap_or_else(|| NONE.to_string());
    for r in rows {
        let mut row = Vec::new();
        if all_namespaces {
            row.push(or_none(&r.namespace));
        }
        row.push(r.name.clone().unwrap_or_default());
        row.push(r.registry.clone());
        row.push(or_none(&r.architecture));
        row.push(or_none(&r.distro));
        row.push(or_none(&r.target));
        row.push(r.phase.to_string());
        row.push(output::age_of(r.created.as_ref(), now));
        if wide {
            row.push(or_none(&r.digest));
            row.push(or_none(&r.revision));
        }
        table.push(row);
    }
    table.render()
}

/// Every page of one list request as server-side Tables (paged with limit/continue like a
/// plain list); `None` when the Table lacks the CRD's printer columns.
pub async fn fetch_table(
    cluster: &Cluster,
    api: &Api<CatalogImage>,
    selector: Option<&str>,
) -> Result<Option<Vec<Row>>> {
    let mut params = super::list::list_params(selector);
    let mut rows = Vec::new();
    loop {
        let page = table_page(cluster, api, &params).await?;
        let next = page.metadata.continue_.clone().filter(|c| !c.is_empty());
        match page.rows()? {
            Some(page) => rows.extend(page),
            None => return Ok(None),
        }
        match next {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(Some(rows)),
        }
    }
}

/// One list request answered as a Table.
async fn table_page(
    cluster: &Cluster,
    api: &Api<CatalogImage>,
    params: &ListParams,
) -> Result<TablePage> {
    let error = |e| cluster.error(e, &CATALOG_IMAGE, None);
    let mut request = kube::core::Request::new(api.resource_url())
        .list(params)
        .map_err(|e| error(kube::Error::BuildRequest(e)))?;
    request.headers_mut().insert(
        reqwest::header::ACCEPT,
        reqwest::header::HeaderValue::from_static(TABLE_ACCEPT),
    );
    cluster.client.request(request).await.map_err(error)
}

/// The `Accept` header of a Table request (what kubectl sends first).
pub const TABLE_ACCEPT: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";

/// One page of a `meta.k8s.io/v1` Table, reduced to what the rows need.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TablePage {
    #[serde(default)]
    pub metadata: ListMeta,
    #[serde(default)]
    column_definitions: Vec<ColumnDefinition>,
    #[serde(default)]
    rows: Vec<TableRow>,
}

#[derive(Debug, Deserialize)]
struct ColumnDefinition {
    name: String,
}

#[derive(Debug, Deserialize)]
struct TableRow {
    #[serde(default)]
    cells: Vec<Value>,
    /// `includeObject=Metadata` (the default): a PartialObjectMetadata.
    object: Option<RowObject>,
}

#[derive(Debug, Deserialize)]
struct RowObject {
    #[serde(default)]
    metadata: RowMetadata,
}

/// The metadata the table needs; the rest (managedFields above all) is skipped unparsed.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RowMetadata {
    name: Option<String>,
    namespace: Option<String>,
    creation_timestamp: Option<Time>,
}

/// Positions of the printer columns in a Table, found by name.
struct Columns {
    registry: usize,
    architecture: usize,
    distro: usize,
    target: usize,
    phase: usize,
    digest: usize,
    revision: usize,
}

impl TablePage {
    /// The page's rows, or `None` when the server's columns are not the CRD's printer columns
    /// (an older CRD, or a server that ignored the Table request and sent a plain list: every
    /// field is optional, so that parses as a Table without columns) or it left out the
    /// objects' metadata: then only full objects give the table.
    pub fn rows(self) -> Result<Option<Vec<Row>>> {
        let Some(columns) = self.columns() else {
            return Ok(None);
        };
        let mut rows = Vec::with_capacity(self.rows.len());
        for row in self.rows {
            let Some(object) = row.object else {
                return Ok(None);
            };
            rows.push(columns.row(&row.cells, object.metadata)?);
        }
        Ok(Some(rows))
    }

    fn columns(&self) -> Option<Columns> {
        let find = |name: &str| self.column_definitions.iter().position(|c| c.name == name);
        Some(Columns {
            registry: find("Registry")?,
            architecture: find("Architecture")?,
            distro: find("Distro")?,
            target: find("Target")?,
            phase: find("Phase")?,
            digest: find("Digest")?,
            revision: find("Revision")?,
        })
    }
}

impl Columns {
    fn row(&self, cells: &[Value], meta: RowMetadata) -> Result<Row> {
        let text = |i: usize| match cells.get(i) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => Some(other.to_string()),
        };
        Ok(Row {
            registry: text(self.registry).unwrap_or_default(),
            architecture: text(self.architecture),
            distro: text(self.distro),
            target: text(self.target),
            phase: phase_cell(cells.get(self.phase), meta.name.as_deref())?,
            digest: text(self.digest),
            revision: text(self.revision),
            namespace: meta.namespace,
            name: meta.name,
            created: meta.creation_timestamp,
        })
    }
}

/// The Phase cell: empty when the image has no status yet (shown as Pending, like
/// [`super::list::phase_of`]); a value that is no phase fails as reading the object would.
fn phase_cell(cell: Option<&Value>, name: Option<&str>) -> Result<Phase> {
    match cell {
        None | Some(Value::Null) => Ok(Phase::Pending),
        Some(v) => Phase::deserialize(v).map_err(|e| {
            CaibError::Other(anyhow::anyhow!(
                "catalog image {:?}: invalid status.phase: {e}",
                name.unwrap_or_default()
            ))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn page(cells: Value, metadata: Value) -> TablePage {
        let columns = [
            "Name",
            "Registry",
            "Architecture",
            "Distro",
            "Target",
            "Phase",
            "Age",
            "Digest",
            "Revision",
        ];
        let defs: Vec<Value> = columns.iter().map(|c| json!({"name": c})).collect();
        serde_json::from_value(json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1",
            "metadata": {"continue": "next"}, "columnDefinitions": defs,
            "rows": [{"cells": cells, "object": {"kind": "PartialObjectMetadata",
                "metadata": metadata}}]}))
        .unwrap()
    }

    #[test]
    fn rows_read_cells_by_column_name() {
        let meta = json!({"name": "a", "namespace": "ns", "creationTimestamp": "2026-01-02T14:30:00Z",
            "managedFields": [{"manager": "x"}]});
        let cells = json!([
            "a",
            "quay.io/a:1",
            "arm64",
            null,
            "qemu",
            null,
            "2d",
            "sha256:1",
            null
        ]);
        let p = page(cells, meta);
        assert_eq!(p.metadata.continue_.as_deref(), Some("next"));
        let rows = p.rows().unwrap().unwrap();
        let row = &rows[0];
        assert_eq!(
            (row.name.as_deref(), row.namespace.as_deref(), row.phase),
            (Some("a"), Some("ns"), Phase::Pending)
        );
        assert_eq!(
            (row.architecture.as_deref(), row.distro.as_deref()),
            (Some("arm64"), None)
        );
        assert_eq!(
            (row.digest.as_deref(), row.revision.as_deref()),
            (Some("sha256:1"), None)
        );
    }

    #[test]
    fn a_table_without_the_crd_columns_or_objects_is_not_used() {
        let mut p = page(json!([]), json!({"name": "a"}));
        p.column_definitions.retain(|c| c.name != "Revision");
        assert!(p.rows().unwrap().is_none());
        let mut p = page(json!([]), json!({"name": "a"}));
        p.rows[0].object = None;
        assert!(p.rows().unwrap().is_none());
    }

    #[test]
    fn an_unknown_phase_is_an_error() {
        let cells = json!(["a", "r", null, null, null, "Ready", "1s", null, null]);
        let err = page(cells, json!({"name": "a"})).rows().unwrap_err();
        assert!(err.to_string().contains("invalid status.phase"), "{err}");
    }
}
