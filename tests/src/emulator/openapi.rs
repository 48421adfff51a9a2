//! OpenAPI v3: the `/openapi/v3` index and one document per group/version, generated from
//! the served resources (CRD schemas for custom resources).
//!
//! kubectl needs them for three things: deciding whether the server validates fields itself
//! (it looks for a `fieldValidation` query parameter on the PATCH operation carrying the
//! kind's `x-kubernetes-group-version-kind`; without it kubectl falls back to `/openapi/v2`,
//! which we do not serve, and fails), `kubectl explain`, and picking the patch type of
//! client-side apply (we never list strategic merge, so custom resources get merge patches).

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::resources::{Flavor, ResourceDef};

const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1";

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// Schema name of a kind: `io.k8s.api.core.v1.Secret`, or the reversed group for CRDs
/// (`com.redhat.cloud.sdv.automotive.v1alpha1.CatalogImage`).
pub fn schema_name(def: &ResourceDef, kind: &str) -> String {
    let prefix = match (def.flavor, def.group.as_str()) {
        (Flavor::Custom, g) => g.split('.').rev().collect::<Vec<_>>().join("."),
        (Flavor::Crd, _) => "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions".into(),
        (_, "") => "io.k8s.api.core".into(),
        (_, g) => format!("io.k8s.api.{}", g.split('.').next().unwrap_or(g)),
    };
    format!("{prefix}.{}.{kind}", def.version)
}

fn gvk(def: &ResourceDef, kind: &str) -> Value {
    json!({"group": def.group, "version": def.version, "kind": kind})
}

fn r(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn kind_schema(def: &ResourceDef) -> Value {
    let mut s = def
        .schema
        .clone()
        .unwrap_or_else(|| json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}));
    if !s.is_object() {
        s = json!({"type": "object"});
    }
    let props = s
        .as_object_mut()
        .map(|m| m.entry("properties").or_insert_with(|| json!({})));
    if let Some(Value::Object(p)) = props {
        p.insert("apiVersion".into(), json!({"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object."}));
        p.insert("kind".into(), json!({"type": "string", "description": "Kind is a string value representing the REST resource this object represents."}));
        p.insert("metadata".into(), json!({"allOf": [r(&format!("{META}.ObjectMeta"))], "default": {},
            "description": "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"}));
    }
    s["x-kubernetes-group-version-kind"] = json!([gvk(def, &def.kind)]);
    s
}

fn list_schema(def: &ResourceDef) -> Value {
    json!({"type": "object", "required": ["items"],
        "description": format!("{} is a list of {}", def.list_kind, def.kind),
        "properties": {
            "apiVersion": {"type": "string"}, "kind": {"type": "string"},
            "items": {"type": "array", "items": r(&schema_name(def, &def.kind))},
            "metadata": {"allOf": [r(&format!("{META}.ListMeta"))], "default": {}}
        },
        "x-kubernetes-group-version-kind": [gvk(def, &def.list_kind)]})
}

fn meta_schemas() -> Vec<(String, Value)> {
    let s = |d: &str| json!({"type": "string", "description": d});
    let map = json!({"type": "object", "additionalProperties": {"type": "string", "default": ""}});
    vec![
        (
            format!("{META}.ObjectMeta"),
            json!({"type": "object",
            "description": "ObjectMeta is metadata that all persisted resources must have, which includes all objects users must create.",
            "properties": {
                "name": s("Name must be unique within a namespace."),
                "generateName": s("GenerateName is an optional prefix, used by the server, to generate a unique name ONLY IF the Name field has not been provided."),
                "namespace": s("Namespace defines the space within which each name must be unique."),
                "uid": s("UID is the unique in time and space value for this object."),
                "resourceVersion": s("An opaque value that represents the internal version of this object."),
                "generation": {"type": "integer", "format": "int64", "description": "A sequence number representing a specific generation of the desired state."},
                "creationTimestamp": {"type": "string", "format": "date-time", "description": "CreationTimestamp is a timestamp representing the server time when this object was created."},
                "deletionTimestamp": {"type": "string", "format": "date-time", "description": "DeletionTimestamp is RFC 3339 date and time at which this resource will be deleted."},
                "deletionGracePeriodSeconds": {"type": "integer", "format": "int64"},
                "labels": map, "annotations": map,
                "finalizers": {"type": "array", "items": {"type": "string", "default": ""}, "x-kubernetes-list-type": "set"},
                "ownerReferences": {"type": "array", "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["uid"]},
                "managedFields": {"type": "array", "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}
            }}),
        ),
        (
            format!("{META}.ListMeta"),
            json!({"type": "object", "properties": {
            "resourceVersion": s("resource version of the list"), "continue": s("continue token"),
            "remainingItemCount": {"type": "integer", "format": "int64"}}}),
        ),
        (
            format!("{META}.Status"),
            json!({"type": "object", "properties": {
            "status": s(""), "message": s(""), "reason": s(""), "code": {"type": "integer"}}}),
        ),
        (
            format!("{META}.Patch"),
            json!({"type": "object",
            "description": "Patch is provided to give a concrete name and type to the Kubernetes PATCH request body."}),
        ),
        (
            format!("{META}.DeleteOptions"),
            json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
        ),
    ]
}

fn q(name: &str, ty: &str) -> Value {
    json!({"name": name, "in": "query", "schema": {"type": ty, "uniqueItems": true}})
}

fn op(
    def: &ResourceDef,
    action: &str,
    id: &str,
    kind_ref: &str,
    extra: Vec<Value>,
    body: Option<Vec<&str>>,
) -> Value {
    let mut o = json!({
        "operationId": id, "description": format!("{action} {}", def.kind),
        "parameters": extra,
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": r(kind_ref)}}},
                      "401": {"description": "Unauthorized"}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk(def, &def.kind),
    });
    if let Some(types) = body {
        let schema = if action == "patch" {
            r(&format!("{META}.Patch"))
        } else {
            r(kind_ref)
        };
        let content: Map<String, Value> = types
            .into_iter()
            .map(|t| (t.to_string(), json!({"schema": schema})))
            .collect();
        o["requestBody"] = json!({"content": content, "required": true});
    }
    o
}

fn add_paths(def: &ResourceDef, paths: &mut Map<String, Value>) {
    let base = format!("/{}", gv_path(&def.group, &def.version));
    let kind = schema_name(def, &def.kind);
    let list = schema_name(def, &def.list_kind);
    let ns_word = if def.namespaced { "Namespaced" } else { "" };
    let k = &def.kind;
    let name_p = json!({"name": "name", "in": "path", "required": true, "schema": {"type": "string", "uniqueItems": true}});
    let ns_p = json!({"name": "namespace", "in": "path", "required": true, "schema": {"type": "string", "uniqueItems": true}});
    let write_q = || {
        vec![
            q("dryRun", "string"),
            q("fieldManager", "string"),
            q("fieldValidation", "string"),
        ]
    };
    let mut patch_q = write_q();
    patch_q.push(q("force", "boolean"));
    let list_q = vec![
        q("labelSelector", "string"),
        q("fieldSelector", "string"),
        q("limit", "integer"),
        q("continue", "string"),
        q("resourceVersion", "string"),
        q("watch", "boolean"),
        q("timeoutSeconds", "integer"),
    ];
    let coll = if def.namespaced {
        format!("{base}/namespaces/{{namespace}}/{}", def.plural)
    } else {
        format!("{base}/{}", def.plural)
    };
    let scope_params = if def.namespaced {
        vec![ns_p.clone()]
    } else {
        vec![]
    };
    let patch_types = vec![
        "application/apply-patch+yaml",
        "application/json-patch+json",
        "application/merge-patch+json",
    ];
    paths.insert(coll.clone(), json!({
        "get": op(def, "list", &format!("list{ns_word}{k}"), &list, list_q.clone(), None),
        "post": op(def, "post", &format!("create{ns_word}{k}"), &kind, write_q(), Some(vec!["*/*"])),
        "delete": op(def, "deletecollection", &format!("deletecollection{ns_word}{k}"), &format!("{META}.Status"), list_q.clone(), None),
        "parameters": scope_params,
    }));
    let mut item_params = scope_params_clone(def, &ns_p);
    item_params.insert(0, name_p.clone());
    paths.insert(format!("{coll}/{{name}}"), json!({
        "get": op(def, "get", &format!("read{ns_word}{k}"), &kind, vec![], None),
        "put": op(def, "put", &format!("replace{ns_word}{k}"), &kind, write_q(), Some(vec!["*/*"])),
        "patch": op(def, "patch", &format!("patch{ns_word}{k}"), &kind, patch_q.clone(), Some(patch_types.clone())),
        "delete": op(def, "delete", &format!("delete{ns_word}{k}"), &format!("{META}.Status"), vec![], None),
        "parameters": item_params.clone(),
    }));
    if def.status_subresource {
        paths.insert(format!("{coll}/{{name}}/status"), json!({
            "get": op(def, "get", &format!("read{ns_word}{k}Status"), &kind, vec![], None),
            "put": op(def, "put", &format!("replace{ns_word}{k}Status"), &kind, write_q(), Some(vec!["*/*"])),
            "patch": op(def, "patch", &format!("patch{ns_word}{k}Status"), &kind, patch_q, Some(patch_types)),
            "parameters": item_params,
        }));
    }
    if def.namespaced {
        paths.insert(
            format!("{base}/{}", def.plural),
            json!({
                "get": op(def, "list", &format!("list{k}ForAllNamespaces"), &list, list_q, None),
            }),
        );
    }
}

fn scope_params_clone(def: &ResourceDef, ns_p: &Value) -> Vec<Value> {
    if def.namespaced {
        vec![ns_p.clone()]
    } else {
        vec![]
    }
}

/// The document of one group/version, or None if nothing is served there.
pub fn document(defs: &[Arc<ResourceDef>], group: &str, version: &str) -> Option<Value> {
    let mine: Vec<&Arc<ResourceDef>> = defs
        .iter()
        .filter(|d| d.group == group && d.version == version)
        .collect();
    if mine.is_empty() {
        return None;
    }
    let mut schemas: Map<String, Value> = meta_schemas().into_iter().collect();
    let mut paths = Map::new();
    for d in mine {
        schemas.insert(schema_name(d, &d.kind), kind_schema(d));
        schemas.insert(schema_name(d, &d.list_kind), list_schema(d));
        add_paths(d, &mut paths);
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.4"},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

fn hash(v: &Value) -> String {
    let mut h = DefaultHasher::new();
    v.to_string().hash(&mut h);
    format!("{:016X}", h.finish())
}

/// `/openapi/v3`: one entry per served group/version, with a content hash in the URL.
pub fn index(defs: &[Arc<ResourceDef>]) -> Value {
    let gvs: BTreeMap<(String, String), ()> = defs
        .iter()
        .map(|d| ((d.group.clone(), d.version.clone()), ()))
        .collect();
    let mut paths = Map::new();
    for (g, v) in gvs.keys() {
        if let Some(doc) = document(defs, g, v) {
            let p = gv_path(g, v);
            paths.insert(
                p.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={}", hash(&doc))}),
            );
        }
    }
    json!({"paths": paths})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::resources::builtin_defs;

    #[test]
    fn documents_carry_gvk_and_field_validation() {
        let defs: Vec<Arc<ResourceDef>> = builtin_defs().into_iter().map(Arc::new).collect();
        let idx = index(&defs);
        assert!(
            idx["paths"]["api/v1"]["serverRelativeURL"]
                .as_str()
                .expect("url")
                .starts_with("/openapi/v3/api/v1?hash=")
        );
        let doc = document(&defs, "apiextensions.k8s.io", "v1").expect("doc");
        let patch = &doc["paths"]["/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"]
            ["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"]["kind"],
            "CustomResourceDefinition"
        );
        assert!(
            patch["parameters"]
                .as_array()
                .expect("params")
                .iter()
                .any(|p| p["name"] == "fieldValidation")
        );
        let name =
            "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition";
        assert!(doc["components"]["schemas"][name].is_object());
        let mut cr = (*defs[0]).clone();
        cr.group = "automotive.sdv.cloud.redhat.com".into();
        cr.version = "v1alpha1".into();
        cr.flavor = Flavor::Custom;
        assert_eq!(
            schema_name(&cr, "CatalogImage"),
            "com.redhat.cloud.sdv.automotive.v1alpha1.CatalogImage"
        );
    }
}
