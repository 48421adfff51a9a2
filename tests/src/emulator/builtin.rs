//! The built-in resources and their table columns: Namespaces, Secrets, ConfigMaps, Events
//! (core/v1, and events.k8s.io/v1 stored as core/v1), Leases, CustomResourceDefinitions; and,
//! so `deploy/` applies, ServiceAccounts, Services, Deployments and RBAC, stored as written.

use serde_json::{Value, json};

use super::resources::{ColumnSource, Flavor, PrinterColumn, ResourceDef};

fn col(name: &str, type_: &str, source: ColumnSource) -> PrinterColumn {
    PrinterColumn {
        name: name.into(),
        type_: type_.into(),
        format: String::new(),
        description: String::new(),
        priority: 0,
        source,
    }
}

pub(super) fn age_col() -> PrinterColumn {
    col(
        "Age",
        "date",
        ColumnSource::JsonPath(".metadata.creationTimestamp".into()),
    )
}

fn count_keys(obj: &Value) -> Value {
    let n = |k: &str| obj.get(k).and_then(Value::as_object).map_or(0, |m| m.len());
    json!(n("data") + n("binaryData"))
}

fn event_last_seen(obj: &Value) -> Value {
    [
        "lastTimestamp",
        "deprecatedLastTimestamp",
        "eventTime",
        "firstTimestamp",
    ]
    .iter()
    .find_map(|k| obj.get(*k).and_then(Value::as_str))
    .or_else(|| {
        obj.pointer("/series/lastObservedTime")
            .and_then(Value::as_str)
    })
    .or_else(|| {
        obj.pointer("/metadata/creationTimestamp")
            .and_then(Value::as_str)
    })
    .map_or(Value::Null, |s| json!(s))
}

fn event_object(obj: &Value) -> Value {
    let r = obj.get("involvedObject").or_else(|| obj.get("regarding"));
    let kind = r
        .and_then(|r| r.get("kind"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_lowercase();
    let name = r
        .and_then(|r| r.get("name"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    json!(format!("{kind}/{name}"))
}

#[allow(clippy::too_many_arguments)]
fn builtin(
    group: &str,
    plural: &str,
    kind: &str,
    namespaced: bool,
    status: bool,
    short: &[&str],
    flavor: Flavor,
    columns: Vec<PrinterColumn>,
    fields: &[&str],
) -> ResourceDef {
    let storage_group = if flavor == Flavor::EventV1 { "" } else { group };
    ResourceDef {
        group: group.into(),
        version: "v1".into(),
        plural: plural.into(),
        singular: kind.to_lowercase(),
        kind: kind.into(),
        list_kind: format!("{kind}List"),
        short_names: short.iter().map(|s| s.to_string()).collect(),
        categories: Vec::new(),
        namespaced,
        status_subresource: status,
        schema: None,
        printer_columns: columns,
        selectable_fields: fields.iter().map(|s| s.to_string()).collect(),
        flavor,
        storage: (storage_group.into(), plural.into()),
        storage_api_version: "v1".into(),
    }
}

const RBAC: &str = "rbac.authorization.k8s.io";

/// The kinds `deploy/` installs, stored as written: (group, plural, kind, namespaced, status
/// subresource, short names), as a real server's discovery lists them.
type PlainKind = (
    &'static str,
    &'static str,
    &'static str,
    bool,
    bool,
    &'static [&'static str],
);
const PLAIN: [PlainKind; 7] = [
    (
        "",
        "serviceaccounts",
        "ServiceAccount",
        true,
        false,
        &["sa"],
    ),
    ("", "services", "Service", true, true, &["svc"]),
    ("apps", "deployments", "Deployment", true, true, &["deploy"]),
    (RBAC, "clusterroles", "ClusterRole", false, false, &[]),
    (
        RBAC,
        "clusterrolebindings",
        "ClusterRoleBinding",
        false,
        false,
        &[],
    ),
    (RBAC, "roles", "Role", true, false, &[]),
    (RBAC, "rolebindings", "RoleBinding", true, false, &[]),
];

/// The built-in resources: Namespaces, Secrets, ConfigMaps, Events (both APIs), Leases, CRDs,
/// and the plain kinds of `deploy/` (ServiceAccounts, Services, Deployments, RBAC).
pub fn builtin_defs() -> Vec<ResourceDef> {
    use ColumnSource::{Computed, JsonPath};
    let event_cols = || {
        vec![
            col("Last Seen", "date", Computed(event_last_seen)),
            col("Type", "string", JsonPath(".type".into())),
            col("Reason", "string", JsonPath(".reason".into())),
            col("Object", "string", Computed(event_object)),
            col(
                "Message",
                "string",
                Computed(|o| {
                    o.get("message")
                        .or_else(|| o.get("note"))
                        .cloned()
                        .unwrap_or(Value::Null)
                }),
            ),
        ]
    };
    let core_event_fields = [
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ];
    let v1_event_fields = [
        "regarding.kind",
        "regarding.namespace",
        "regarding.name",
        "regarding.uid",
        "regarding.apiVersion",
        "regarding.resourceVersion",
        "regarding.fieldPath",
        "reason",
        "reportingController",
        "type",
    ];
    let mut defs = vec![
        builtin(
            "",
            "namespaces",
            "Namespace",
            false,
            true,
            &["ns"],
            Flavor::Namespace,
            vec![
                col("Status", "string", JsonPath(".status.phase".into())),
                age_col(),
            ],
            &["status.phase"],
        ),
        builtin(
            "",
            "secrets",
            "Secret",
            true,
            false,
            &[],
            Flavor::Secret,
            vec![
                col("Type", "string", JsonPath(".type".into())),
                col("Data", "string", Computed(count_keys)),
                age_col(),
            ],
            &["type"],
        ),
        builtin(
            "",
            "configmaps",
            "ConfigMap",
            true,
            false,
            &["cm"],
            Flavor::ConfigMap,
            vec![col("Data", "string", Computed(count_keys)), age_col()],
            &[],
        ),
        builtin(
            "",
            "events",
            "Event",
            true,
            false,
            &["ev"],
            Flavor::Event,
            event_cols(),
            &core_event_fields,
        ),
        builtin(
            "events.k8s.io",
            "events",
            "Event",
            true,
            false,
            &["ev"],
            Flavor::EventV1,
            event_cols(),
            &v1_event_fields,
        ),
        builtin(
            "coordination.k8s.io",
            "leases",
            "Lease",
            true,
            false,
            &[],
            Flavor::Lease,
            vec![
                col("Holder", "string", JsonPath(".spec.holderIdentity".into())),
                age_col(),
            ],
            &[],
        ),
        builtin(
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            false,
            true,
            &["crd", "crds"],
            Flavor::Crd,
            vec![col(
                "Created At",
                "string",
                JsonPath(".metadata.creationTimestamp".into()),
            )],
            &[],
        ),
    ];
    defs.extend(
        PLAIN
            .iter()
            .map(|&(group, plural, kind, namespaced, status, short)| {
                let cols = vec![age_col()];
                builtin(
                    group,
                    plural,
                    kind,
                    namespaced,
                    status,
                    short,
                    Flavor::Plain,
                    cols,
                    &[],
                )
            }),
    );
    defs
}
