//! Server-side apply (`application/apply-patch+yaml`): creates when missing, merges the
//! manager's intent into the live object, and answers 409 with the conflicting fields and
//! managers unless `force=true`.

use serde_json::{Value, json};

use super::error::{ApiError, ApiResult, Cause};
use super::managed::{self, Scope, Tracking};
use super::meta;
use super::patch;
use super::resources::ResourceDef;
use super::schema;
use super::store::{Store, obj_key};
use super::write::{WriteOpts, Written, check_identity, check_rv, finish, meta_mut, present};

pub(super) fn apply(
    st: &mut Store,
    def: &ResourceDef,
    ns: Option<&str>,
    name: &str,
    scope: Scope,
    body: &[u8],
    opts: &WriteOpts,
) -> ApiResult<Written> {
    if !opts.manager_given {
        return Err(ApiError::invalid(
            "PatchOptions",
            "meta.k8s.io",
            "",
            vec![Cause::new(
                "FieldValueRequired",
                "fieldManager",
                "Required value: is required for apply patch",
            )],
        ));
    }
    let mut applied = patch::parse_body(body, true)?;
    if !applied.is_object() {
        return Err(ApiError::bad_request("an apply patch must be an object"));
    }
    for field in ["apiVersion", "kind"] {
        if applied
            .get(field)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(ApiError::bad_request(format!(
                "{field} must be set in an apply patch"
            )));
        }
    }
    if let Some(schema) = def.schema.as_ref() {
        undeclared_fields(schema, &applied)?;
    }
    check_identity(def, &mut applied, ns, Some(name))?;
    let key = obj_key(ns.filter(|_| def.namespaced), name);
    let t = Tracking {
        schema: def.schema.as_ref(),
        status_sub: def.status_subresource,
        scope,
    };
    let now = meta::now();
    let conflict = |c: Vec<managed::Conflict>| {
        let causes: Vec<Value> = c
            .iter()
            .map(|c| {
                let p = managed::path_string(&c.path);
                json!({"reason": "FieldManagerConflict", "message": format!("conflict with \"{}\": {p}", c.manager), "field": p})
            })
            .collect();
        ApiError::new(409, "Conflict", managed::conflict_message(&c)).with_details(
            json!({"name": name, "group": def.group, "kind": def.plural, "causes": causes}),
        )
    };
    // The applied configuration merged over `base` (a fresh object or the live one).
    let merge = |base: Value, entries: &mut Vec<_>| {
        managed::apply(
            base,
            &applied,
            entries,
            &opts.manager,
            &def.api_version(),
            opts.force,
            &t,
            &now,
        )
        .map_err(conflict)
    };
    match st.get(&def.storage, &key) {
        None => {
            if scope == Scope::Status {
                return Err(ApiError::not_found(&def.plural, &def.group, name));
            }
            let mut base = json!({"apiVersion": def.api_version(), "kind": def.kind, "metadata": {"name": name}});
            if let Some(ns) = ns.filter(|_| def.namespaced) {
                base["metadata"]["namespace"] = json!(ns);
            }
            let mut entries = Vec::new();
            let merged = merge(base, &mut entries)?;
            let mut obj = merged;
            let m = meta_mut(&mut obj)?;
            m.insert("uid".into(), json!(meta::new_uid()));
            m.insert("creationTimestamp".into(), json!(meta::now()));
            super::namespaces::admit_create(st, def, ns, name)?;
            finish(
                st,
                def,
                Scope::Main,
                opts,
                None,
                obj,
                Some(entries),
                Vec::new(),
            )
        }
        Some(old) => {
            check_rv(def, name, &old, &applied, false)?;
            let live = present(def, &old);
            let mut entries = managed::read_entries(&old);
            let merged = merge(live, &mut entries)?;
            finish(
                st,
                def,
                scope,
                opts,
                Some(old),
                merged,
                Some(entries),
                Vec::new(),
            )
        }
    }
}

/// Server-side apply converts the applied configuration to a typed object before anything
/// else, and a field the schema does not declare fails that conversion whatever the
/// `fieldValidation` (where other writes prune it): a plain Go error, hence a 500 without a
/// reason (staging/src/k8s.io/apimachinery/pkg/util/managedfields/internal/structuredmerge.go,
/// `Apply`; the path and list format are structured-merge-diff's typed/validate.go).
fn undeclared_fields(schema: &Value, applied: &Value) -> ApiResult<()> {
    let mut unknown = Vec::new();
    schema::prune(schema, &mut applied.clone(), "", &mut unknown);
    let errors: Vec<String> = unknown
        .iter()
        .map(|path| format!(".{path}: field not declared in schema"))
        .collect();
    let detail = match errors.as_slice() {
        [] => return Ok(()),
        [one] => one.clone(),
        many => format!("errors:\n  {}", many.join("\n  ")),
    };
    let text = |f: &str| applied.get(f).and_then(Value::as_str).unwrap_or_default();
    let meta = |f: &str| {
        applied
            .pointer(&format!("/metadata/{f}"))
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let api_version = text("apiVersion");
    let group_version = if api_version.contains('/') {
        api_version.to_string()
    } else {
        format!("/{api_version}")
    };
    Err(ApiError::unclassified(format!(
        "failed to create typed patch object ({}/{}; {group_version}, Kind={}): {detail}",
        meta("namespace"),
        meta("name"),
        text("kind")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undeclared_fields_are_listed_as_structured_merge_diff_does() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
            "properties": {"size": {"type": "integer"}}}}});
        let one = json!({"apiVersion": "g.io/v1", "kind": "W", "metadata": {"name": "w", "namespace": "n"},
            "spec": {"size": 1, "foo": 2}});
        let e = undeclared_fields(&schema, &one).expect_err("undeclared");
        assert_eq!((e.code, e.reason), (500, ""));
        assert_eq!(
            e.message,
            "failed to create typed patch object (n/w; g.io/v1, Kind=W): .spec.foo: field not declared in schema"
        );
        let two = json!({"apiVersion": "v1", "kind": "W", "metadata": {"name": "w"}, "spec": {"a": 1, "b": 2}});
        assert_eq!(
            undeclared_fields(&schema, &two)
                .expect_err("undeclared")
                .message,
            "failed to create typed patch object (/w; /v1, Kind=W): errors:\n  .spec.a: field not declared in schema\n  .spec.b: field not declared in schema"
        );
        assert!(undeclared_fields(&schema, &json!({"spec": {"size": 3}})).is_ok());
    }
}
