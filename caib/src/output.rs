//! Rendering for every read command: kubectl-style tables (same padding, same AGE), human
//! sizes, and Kubernetes `List` documents in JSON or YAML so `jq`/`yq` pipelines written for
//! kubectl work unchanged on caib's output.
//!
//! Everything here is a pure function of its input (and a given "now"), so every format is
//! snapshot-tested without a cluster.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use serde::Serialize;
use serde_json::{Value, json};

use crate::cli::OutputFormat;
use crate::error::{CaibError, Result};

/// kubectl's tabwriter settings: cells padded by 3 spaces, columns at least 6 wide.
const PADDING: usize = 3;
const MIN_WIDTH: usize = 6;

/// Shown for an absent value, as kubectl does.
pub const NONE: &str = "<none>";

/// A table of text cells, printed like `kubectl get`.
#[derive(Debug, Default, Clone)]
pub struct Table {
    pub headers: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: Vec<&'static str>) -> Self {
        Table {
            headers,
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    /// Left-aligned columns, each as wide as its widest cell plus 3 spaces (at least 6), the
    /// last column unpadded: byte for byte what kubectl's tabwriter prints.
    pub fn render(&self) -> String {
        let columns = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let mut line = |cells: &mut dyn Iterator<Item = &str>| {
            let mut text = String::new();
            for (i, cell) in cells.enumerate().take(columns) {
                text.push_str(cell);
                if i + 1 < columns {
                    let width = (widths[i] + PADDING).max(MIN_WIDTH);
                    text.extend(std::iter::repeat_n(' ', width - cell.chars().count()));
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        };
        line(&mut self.headers.iter().copied());
        for row in &self.rows {
            line(&mut row.iter().map(String::as_str));
        }
        out
    }
}

/// kubectl's AGE: `45s`, `5m`, `5h`, `2d`, `3y`, with the extra precision kubectl shows for
/// young objects (`2m30s` under 10 minutes, `5h10m` under 8 hours, `2d5h` under 8 days, ...).
/// Mirrors `duration.HumanDuration` from k8s.io/apimachinery ([`catalog_api::duration::human`]).
pub fn age(created: Timestamp, now: Timestamp) -> String {
    let secs = now.as_second() - created.as_second();
    if secs < -1 {
        return "<invalid>".into();
    }
    catalog_api::duration::human(secs.max(0))
}

/// AGE of an object's creation timestamp; `<unknown>` when the server did not set one.
pub fn age_of(created: Option<&Time>, now: Timestamp) -> String {
    match created {
        Some(t) => age(t.0, now),
        None => "<unknown>".into(),
    }
}

/// `-o json|yaml`: `items` as one Kubernetes `List` of `kind` objects (apiVersion defaulting to
/// the catalog's group); `None` for the table formats, which each command renders itself.
pub fn list_document<T: Serialize>(
    items: &[T],
    kind: &str,
    format: OutputFormat,
) -> Result<Option<String>> {
    if !matches!(format, OutputFormat::Json | OutputFormat::Yaml) {
        return Ok(None);
    }
    let values = items
        .iter()
        .map(|item| object_value(item, catalog_api::API_VERSION, kind))
        .collect::<Result<Vec<_>>>()?;
    document(&list_value(values), format).map(Some)
}

/// Prints a list command's output. An empty table is `none_found` on stderr instead, as
/// kubectl says "No resources found", so scripts reading stdout see nothing; an empty JSON or
/// YAML list is still printed, for `jq`/`yq`.
pub fn print_list(
    empty: bool,
    format: OutputFormat,
    none_found: &str,
    render: impl FnOnce() -> Result<String>,
) -> Result<()> {
    if empty && matches!(format, OutputFormat::Table | OutputFormat::Wide) {
        eprintln!("{none_found}");
        return Ok(());
    }
    print!("{}", render()?);
    Ok(())
}

/// A `kubectl get` table of objects: NAMESPACE first when listing every namespace (`-A`), then
/// NAME, then the kind's own `columns`.
pub fn object_table(all_namespaces: bool, columns: &[&'static str]) -> Table {
    let mut headers = Vec::new();
    if all_namespaces {
        headers.push("NAMESPACE");
    }
    headers.push("NAME");
    headers.extend_from_slice(columns);
    Table::new(headers)
}

/// The cells an [`object_table`] row starts with: the namespace (with `-A`) and the name.
pub fn object_cells(meta: &ObjectMeta, all_namespaces: bool) -> Vec<String> {
    let mut row = Vec::new();
    if all_namespaces {
        row.push(meta.namespace.clone().unwrap_or_default());
    }
    row.push(meta.name.clone().unwrap_or_default());
    row
}

/// Serializes `value` as a Kubernetes object for output: `managedFields` dropped (kubectl
/// hides them too), `apiVersion`/`kind` filled in when the server left them out of a list.
pub fn object_value<T: Serialize>(value: &T, api_version: &str, kind: &str) -> Result<Value> {
    let mut v = serde_json::to_value(value).map_err(|e| CaibError::Other(e.into()))?;
    if let Value::Object(map) = &mut v {
        if !map.contains_key("apiVersion") || map["apiVersion"].is_null() {
            map.insert("apiVersion".into(), json!(api_version));
        }
        if !map.contains_key("kind") || map["kind"].is_null() {
            map.insert("kind".into(), json!(kind));
        }
        if let Some(Value::Object(meta)) = map.get_mut("metadata") {
            meta.remove("managedFields");
        }
    }
    Ok(v)
}

/// `{"apiVersion":"v1","kind":"List","items":[...]}`, what `kubectl get -o json` prints.
pub fn list_value(items: Vec<Value>) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "List",
        "metadata": {"resourceVersion": ""},
        "items": items,
    })
}

/// JSON as kubectl prints it: indented, trailing newline.
pub fn to_json(value: &Value) -> Result<String> {
    let mut text = serde_json::to_string_pretty(value).map_err(|e| CaibError::Other(e.into()))?;
    text.push('\n');
    Ok(text)
}

/// YAML with lists indented under their key, like the quickstart's `caib catalog get`.
pub fn to_yaml<T: Serialize>(value: &T) -> Result<String> {
    let options = serde_saphyr::ser_options! {
        compact_list_indent: false,
    };
    serde_saphyr::to_string_with_options(value, options)
        .map_err(|e| CaibError::Other(anyhow::anyhow!("cannot render YAML: {e}")))
}

/// Renders a machine-readable document in the requested format (`json` or `yaml`).
pub fn document(value: &Value, format: OutputFormat) -> Result<String> {
    match format {
        OutputFormat::Yaml => to_yaml(value),
        _ => to_json(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn ages_read_like_kubectl() {
        let now = ts("2026-01-04T14:30:00Z");
        let cases = [
            (0, "0s"),
            (45, "45s"),
            (119, "119s"),
            (150, "2m30s"),
            (300, "5m"),
            (3600, "60m"),
            (5 * 3600, "5h"),
            (5 * 3600 + 600, "5h10m"),
            (30 * 3600, "30h"),
            (2 * 86400, "2d"),
            (2 * 86400 + 5 * 3600, "2d5h"),
            (20 * 86400, "20d"),
            (3 * 365 * 86400, "3y"),
            (3 * 365 * 86400 + 10 * 86400, "3y10d"),
            (9 * 365 * 86400 + 10 * 86400, "9y"),
        ];
        for (secs, want) in cases {
            let created = Timestamp::from_second(now.as_second() - secs).unwrap();
            assert_eq!(age(created, now), want, "{secs}s");
        }
        assert_eq!(age(ts("2026-01-05T00:00:00Z"), now), "<invalid>");
    }

    #[test]
    fn tables_are_padded_like_kubectl() {
        let mut table = Table::new(vec!["NAME", "READY", "AGE"]);
        table.push(vec!["a".into(), "1/1".into(), "5m".into()]);
        table.push(vec!["longer-name".into(), "".into(), "2d".into()]);
        insta::assert_snapshot!(table.render(), @r"
        NAME          READY   AGE
        a             1/1     5m
        longer-name           2d
        ");
    }

    #[test]
    fn list_documents_are_kubernetes_lists() {
        let item = object_value(
            &json!({"metadata": {"name": "x", "managedFields": [{}]}}),
            "automotive.sdv.cloud.redhat.com/v1alpha1",
            "CatalogImage",
        )
        .unwrap();
        let list = list_value(vec![item]);
        insta::assert_snapshot!(to_json(&list).unwrap(), @r#"
        {
          "apiVersion": "v1",
          "items": [
            {
              "apiVersion": "automotive.sdv.cloud.redhat.com/v1alpha1",
              "kind": "CatalogImage",
              "metadata": {
                "name": "x"
              }
            }
          ],
          "kind": "List",
          "metadata": {
            "resourceVersion": ""
          }
        }
        "#);
        insta::assert_snapshot!(to_yaml(&list).unwrap(), @r#"
        apiVersion: v1
        items:
          - apiVersion: automotive.sdv.cloud.redhat.com/v1alpha1
            kind: CatalogImage
            metadata:
              name: x
        kind: List
        metadata:
          resourceVersion: ""
        "#);
    }
}
