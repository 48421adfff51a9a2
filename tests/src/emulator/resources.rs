//! What the emulator serves: one [`ResourceDef`] per group/version/resource, built in for the
//! core kinds our components touch, and derived from `CustomResourceDefinition` objects for the
//! rest (so a CRD applied at runtime is served exactly like one loaded at startup).

use serde_json::{Value, json};

use super::builtin::age_col;
pub use super::builtin::builtin_defs;
use super::error::Cause;
use super::objects::strings;

/// Kind-specific behaviour hooks (defaulting, conversion, side effects).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    Custom,
    Namespace,
    Secret,
    ConfigMap,
    /// core/v1 Event, the storage form of all events.
    Event,
    /// events.k8s.io/v1 Event: same objects as core/v1, converted on the way in and out.
    EventV1,
    Lease,
    Crd,
    /// A built-in kind stored as written, without kind-specific behaviour or schema (so unknown
    /// fields are kept): ServiceAccounts, Services, Deployments and RBAC, which `deploy/` applies.
    Plain,
}

/// Where a table cell comes from.
#[derive(Clone, Debug)]
pub enum ColumnSource {
    /// A CRD `additionalPrinterColumns[].jsonPath`.
    JsonPath(String),
    /// A built-in column computed from the object (e.g. the number of keys of a Secret).
    Computed(fn(&Value) -> Value),
}

/// A `Table` column (additionalPrinterColumns, or the built-in columns of core kinds).
#[derive(Clone, Debug)]
pub struct PrinterColumn {
    pub name: String,
    pub type_: String,
    pub format: String,
    pub description: String,
    pub priority: i64,
    pub source: ColumnSource,
}

/// Storage identity of a resource: `(group, plural)`. All served versions share it.
pub type StorageKey = (String, String);

/// One served group/version/resource.
#[derive(Clone, Debug)]
pub struct ResourceDef {
    pub group: String,
    pub version: String,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub list_kind: String,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub namespaced: bool,
    pub status_subresource: bool,
    /// `openAPIV3Schema` of a custom resource version.
    pub schema: Option<Value>,
    pub printer_columns: Vec<PrinterColumn>,
    /// Extra field-selector labels besides `metadata.name` / `metadata.namespace`.
    pub selectable_fields: Vec<String>,
    pub flavor: Flavor,
    pub storage: StorageKey,
    /// apiVersion objects are stored with.
    pub storage_api_version: String,
}

impl ResourceDef {
    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `metadata.generation` is maintained for custom resources and CRDs (as on a real server).
    pub fn has_generation(&self) -> bool {
        matches!(self.flavor, Flavor::Custom | Flavor::Crd)
    }

    /// PUT of a missing object creates it (Leases and Events) instead of answering 404.
    pub fn allow_create_on_update(&self) -> bool {
        matches!(self.flavor, Flavor::Lease | Flavor::Event | Flavor::EventV1)
    }

    /// The group validation errors name: the internal type's, which for events.k8s.io/v1 is
    /// core's Event (pkg/apis/events/register.go registers `core.Event`), so its errors read
    /// `Event "x" is invalid`.
    pub fn error_group(&self) -> &str {
        if self.flavor == Flavor::EventV1 {
            ""
        } else {
            &self.group
        }
    }

    /// Whether a PUT may omit `metadata.resourceVersion`: the strategy's
    /// `AllowUnconditionalUpdate`. False for custom resources and CRDs
    /// (staging/src/k8s.io/apiextensions-apiserver/pkg/registry/customresource/strategy.go,
    /// .../registry/customresourcedefinition/strategy.go) and Leases
    /// (pkg/registry/coordination/lease/strategy.go); true for the other built-ins served here.
    pub fn allow_unconditional_update(&self) -> bool {
        !matches!(self.flavor, Flavor::Custom | Flavor::Crd | Flavor::Lease)
    }

    /// Whether `key` may appear in a field selector for this resource.
    pub fn field_selector_allowed(&self, key: &str) -> bool {
        if key == "metadata.name" || (key == "metadata.namespace" && self.namespaced) {
            return true;
        }
        self.selectable_fields.iter().any(|f| f == key)
    }
}

fn str_at<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    v.pointer(ptr).and_then(Value::as_str)
}

/// Validates a CustomResourceDefinition and derives one [`ResourceDef`] per served version.
/// Errors are the causes of a 422 on the CRD.
pub fn defs_from_crd(crd: &Value) -> Result<Vec<ResourceDef>, Vec<Cause>> {
    let mut causes = Vec::new();
    let group = str_at(crd, "/spec/group").unwrap_or_default().to_string();
    let plural = str_at(crd, "/spec/names/plural")
        .unwrap_or_default()
        .to_string();
    let kind = str_at(crd, "/spec/names/kind")
        .unwrap_or_default()
        .to_string();
    let name = str_at(crd, "/metadata/name").unwrap_or_default();
    if group.is_empty() {
        causes.push(Cause::new(
            "FieldValueRequired",
            "spec.group",
            "Required value",
        ));
    } else if !group.contains('.') {
        causes.push(Cause::new(
            "FieldValueInvalid",
            "spec.group",
            format!("Invalid value: {group:?}: should be a domain with at least one dot"),
        ));
    }
    if plural.is_empty() {
        causes.push(Cause::new(
            "FieldValueRequired",
            "spec.names.plural",
            "Required value",
        ));
    }
    if kind.is_empty() {
        causes.push(Cause::new(
            "FieldValueRequired",
            "spec.names.kind",
            "Required value",
        ));
    }
    if !plural.is_empty() && !group.is_empty() && name != format!("{plural}.{group}") {
        causes.push(Cause::new(
            "FieldValueInvalid",
            "metadata.name",
            format!("Invalid value: {name:?}: must be spec.names.plural+\".\"+spec.group"),
        ));
    }
    let namespaced = match str_at(crd, "/spec/scope") {
        Some("Namespaced") => true,
        Some("Cluster") => false,
        other => {
            causes.push(Cause::new(
                "FieldValueNotSupported",
                "spec.scope",
                format!(
                    "Unsupported value: {:?}: supported values: \"Cluster\", \"Namespaced\"",
                    other.unwrap_or_default()
                ),
            ));
            true
        }
    };
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if versions.is_empty() {
        causes.push(Cause::new(
            "FieldValueRequired",
            "spec.versions",
            "Required value",
        ));
    }
    let storage: Vec<&Value> = versions
        .iter()
        .filter(|v| v["storage"] == json!(true))
        .collect();
    if !versions.is_empty() && storage.len() != 1 {
        causes.push(Cause::new(
            "FieldValueInvalid",
            "spec.versions",
            "Invalid value: must have exactly one version marked as storage version",
        ));
    }
    let storage_version = storage
        .first()
        .and_then(|v| v["name"].as_str())
        .unwrap_or("v1");
    let storage_api_version = format!("{group}/{storage_version}");
    let mut defs = Vec::new();
    for (i, v) in versions.iter().enumerate() {
        let Some(vname) = v["name"].as_str().filter(|s| !s.is_empty()) else {
            causes.push(Cause::new(
                "FieldValueRequired",
                format!("spec.versions[{i}].name"),
                "Required value",
            ));
            continue;
        };
        let schema = v.pointer("/schema/openAPIV3Schema").cloned();
        if schema.is_none() {
            causes.push(Cause::new(
                "FieldValueRequired",
                format!("spec.versions[{i}].schema.openAPIV3Schema"),
                "Required value: schemas are required",
            ));
        }
        if v["served"] != json!(true) {
            continue;
        }
        let mut columns: Vec<PrinterColumn> = v["additionalPrinterColumns"]
            .as_array()
            .map(|cols| {
                cols.iter()
                    .map(|c| PrinterColumn {
                        name: c["name"].as_str().unwrap_or_default().into(),
                        type_: c["type"].as_str().unwrap_or("string").into(),
                        format: c["format"].as_str().unwrap_or_default().into(),
                        description: c["description"].as_str().unwrap_or_default().into(),
                        priority: c["priority"].as_i64().unwrap_or(0),
                        source: ColumnSource::JsonPath(
                            c["jsonPath"].as_str().unwrap_or_default().into(),
                        ),
                    })
                    .collect()
            })
            .unwrap_or_default();
        if columns.is_empty() {
            columns.push(age_col());
        }
        let selectable = v["selectableFields"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|f| f["jsonPath"].as_str())
                    .map(|p| p.trim_start_matches('.').to_string())
                    .collect()
            })
            .unwrap_or_default();
        defs.push(ResourceDef {
            group: group.clone(),
            version: vname.into(),
            plural: plural.clone(),
            singular: str_at(crd, "/spec/names/singular")
                .map(String::from)
                .unwrap_or_else(|| kind.to_lowercase()),
            kind: kind.clone(),
            list_kind: str_at(crd, "/spec/names/listKind")
                .map(String::from)
                .unwrap_or_else(|| format!("{kind}List")),
            short_names: strings(crd.pointer("/spec/names/shortNames")),
            categories: strings(crd.pointer("/spec/names/categories")),
            namespaced,
            status_subresource: v.pointer("/subresources/status").is_some(),
            schema,
            printer_columns: columns,
            selectable_fields: selectable,
            flavor: Flavor::Custom,
            storage: (group.clone(), plural.clone()),
            storage_api_version: storage_api_version.clone(),
        });
    }
    if causes.is_empty() {
        Ok(defs)
    } else {
        Err(causes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crd_parsing() {
        let crd = json!({
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"]},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object"}},
                    "subresources": {"status": {}}}]}
        });
        let defs = defs_from_crd(&crd).expect("valid");
        assert_eq!(defs.len(), 1);
        assert_eq!(defs[0].singular, "widget");
        assert_eq!(defs[0].list_kind, "WidgetList");
        assert!(defs[0].status_subresource);
        let mut bad = crd.clone();
        bad["metadata"]["name"] = json!("wrong");
        let causes = defs_from_crd(&bad).expect_err("invalid");
        assert_eq!(causes[0].field, "metadata.name");
    }
}
