//! Writes: create, update (PUT), patch (merge, JSON, strategic, server-side apply), delete.
//!
//! All of them end in [`finish`], which applies the rules a real API server applies to every
//! write: identity fields kept, status subresource separation (both ways), kind-specific
//! normalisation, schema pruning/defaulting/validation, generation bumps only for spec
//! changes, managedFields, no-op detection (no new resourceVersion), and finalizers.
//! Callers hold the store lock for the whole write, so writes are serialisable.

use std::sync::Arc;

use serde_json::{Value, json};

use super::error::{ApiError, ApiResult, Cause};
use super::gc;
use super::kinds;
use super::managed::{self, Scope, Tracking};
use super::meta;
pub use super::objects::{Served, present, to_storage};
pub(super) use super::objects::{
    check_identity, check_rv, meta_mut, meta_str, only_status, same_but_versions, spec_changed,
    strings,
};
use super::patch::{self, PatchKind};
use super::resources::{Flavor, ResourceDef};
use super::schema;
use super::store::{Store, obj_key};

/// `fieldValidation` query parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validation {
    Strict,
    Warn,
    Ignore,
}

/// Options every write carries (from the query string and User-Agent).
#[derive(Clone, Debug)]
pub struct WriteOpts {
    pub manager: String,
    /// Whether `fieldManager` was given explicitly (required for apply).
    pub manager_given: bool,
    pub validation: Validation,
    pub dry_run: bool,
    pub force: bool,
}

/// Result of a write: HTTP code, body, and `Warning` headers to send.
pub struct Written {
    pub code: u16,
    pub body: Body,
    pub warnings: Vec<String>,
}

/// The body of a write's response.
pub enum Body {
    /// Built for this response (a Status, a converted object).
    Built(Value),
    /// A stored object (or the one a dry run would store), served in the request's version
    /// without a copy ([`Served`]).
    Stored(Arc<Value>),
}

impl Written {
    /// The body as a value in the request's version.
    pub fn into_value(self, def: &ResourceDef) -> Value {
        match self.body {
            Body::Built(v) => v,
            Body::Stored(o) => present(def, &o),
        }
    }

    /// The body as JSON in the request's version.
    pub fn to_json(&self, def: &ResourceDef) -> Vec<u8> {
        match &self.body {
            Body::Built(v) => v.to_string().into_bytes(),
            Body::Stored(o) => Served { def, stored: o }.to_vec(),
        }
    }
}

pub(super) fn ok(code: u16, body: Value, warnings: Vec<String>) -> ApiResult<Written> {
    Ok(Written {
        code,
        body: Body::Built(body),
        warnings,
    })
}

/// A write answered with a stored object.
pub(super) fn served(code: u16, obj: Arc<Value>, warnings: Vec<String>) -> ApiResult<Written> {
    Ok(Written {
        code,
        body: Body::Stored(obj),
        warnings,
    })
}

/// The common tail of every write. `new` is the full intended object in the request's version.
#[allow(clippy::too_many_arguments)]
pub(super) fn finish(
    st: &mut Store,
    def: &ResourceDef,
    scope: Scope,
    opts: &WriteOpts,
    old: Option<Arc<Value>>,
    new: Value,
    applied_entries: Option<Vec<managed::Entry>>,
    mut warnings: Vec<String>,
) -> ApiResult<Written> {
    let name = meta_str(&new, "name").unwrap_or_default().to_string();
    let mut new = to_storage(def, new);
    // The managedFields the write starts from, when not the stored ones.
    let mut rewritten: Option<Vec<managed::Entry>> = None;
    if let Some(old) = &old {
        let keep = [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ];
        // Clients may rewrite managedFields (kubectl's client-side-apply migration does):
        // an empty list resets them, a different list replaces them, as on a real server.
        match new.pointer("/metadata/managedFields") {
            Some(Value::Array(list)) if list.is_empty() => rewritten = Some(Vec::new()),
            Some(mf @ Value::Array(list)) if Some(mf) != old.pointer("/metadata/managedFields") => {
                rewritten = Some(managed::entries_of(list));
            }
            _ => {}
        }
        if scope == Scope::Status {
            only_status(&mut new, old);
        } else {
            let m = meta_mut(&mut new)?;
            for k in keep {
                match old.get("metadata").and_then(|om| om.get(k)) {
                    Some(v) => m.insert(k.into(), v.clone()),
                    None => m.remove(k),
                };
            }
            if def.status_subresource {
                match old.get("status") {
                    Some(s) if new.get("status") != Some(s) => new["status"] = s.clone(),
                    Some(_) => {}
                    None => {
                        if let Some(m) = new.as_object_mut() {
                            m.remove("status");
                        }
                    }
                }
            }
        }
    } else if def.status_subresource
        && def.flavor == Flavor::Custom
        && let Some(m) = new.as_object_mut()
    {
        m.remove("status");
    }

    let mut causes: Vec<Cause> = Vec::new();
    let crd_defs = kinds::normalize(def, old.as_deref(), &mut new, &mut causes);
    if let Some(s) = def.schema.as_ref() {
        let mut unknown = Vec::new();
        schema::prune(s, &mut new, "", &mut unknown);
        if !unknown.is_empty() {
            match opts.validation {
                Validation::Strict => {
                    let list: Vec<String> = unknown
                        .iter()
                        .map(|u| format!("unknown field \"{u}\""))
                        .collect();
                    return Err(ApiError::bad_request(format!(
                        "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}",
                        def.kind,
                        def.version,
                        def.kind,
                        list.join(", ")
                    )));
                }
                Validation::Warn => {
                    warnings.extend(unknown.iter().map(|u| format!("unknown field \"{u}\"")))
                }
                Validation::Ignore => {}
            }
        }
        schema::apply_defaults(s, &mut new);
        let mut schema_causes = Vec::new();
        schema::validate(s, &new, "", &mut schema_causes);
        if let Some(old) = old.as_deref() {
            super::ratchet::ratchet(old, &new, &mut schema_causes);
        }
        causes.extend(schema_causes);
    }
    if let Some(m) = new.get("metadata").and_then(Value::as_object) {
        meta::validate_meta(m, &mut causes);
    }
    if old.is_none()
        && def.flavor != Flavor::Namespace
        && let Some(e) = meta::dns_subdomain_error(&name)
    {
        causes.insert(
            0,
            Cause::new(
                "FieldValueInvalid",
                "metadata.name",
                format!("Invalid value: {name:?}: {e}"),
            ),
        );
    }
    if let Some(old) = &old
        && old.pointer("/metadata/deletionTimestamp").is_some()
    {
        let before = strings(old.pointer("/metadata/finalizers"));
        if strings(new.pointer("/metadata/finalizers"))
            .iter()
            .any(|f| !before.contains(f))
        {
            causes.push(Cause::new(
                "FieldValueForbidden",
                "metadata.finalizers",
                "Forbidden: no new finalizers can be added if the object is being deleted",
            ));
        }
    }
    if !causes.is_empty() {
        return Err(ApiError::invalid(
            &def.kind,
            def.error_group(),
            &name,
            causes,
        ));
    }

    if def.has_generation() {
        let generation = match &old {
            None => 1,
            Some(o) => {
                let g = o
                    .pointer("/metadata/generation")
                    .and_then(Value::as_i64)
                    .unwrap_or(1);
                if spec_changed(o, &new, def.status_subresource) {
                    g + 1
                } else {
                    g
                }
            }
        };
        meta_mut(&mut new)?.insert("generation".into(), json!(generation));
    }

    let t = Tracking {
        schema: def.schema.as_ref(),
        status_sub: def.status_subresource,
        scope,
    };
    let now = meta::now();
    let entries = match applied_entries {
        Some(mut entries) => {
            managed::prune_entries(&mut entries, &new);
            entries
        }
        None => {
            let mut entries = rewritten.unwrap_or_else(|| {
                old.as_deref()
                    .map(managed::read_entries)
                    .unwrap_or_default()
            });
            managed::record_update(
                &mut entries,
                old.as_deref(),
                &new,
                &opts.manager,
                &def.api_version(),
                &t,
                &now,
            );
            entries
        }
    };
    managed::write_entries(&mut new, &entries);

    let key = obj_key(meta_str(&new, "namespace"), &name);
    if let Some(old) = &old {
        if same_but_versions(old, &new) {
            return served(200, old.clone(), warnings);
        }
        // A namespace also waits for its `spec.finalizers` (ShouldDeleteNamespaceDuringUpdate,
        // pkg/registry/core/namespace/storage/storage.go).
        if old.pointer("/metadata/deletionTimestamp").is_some()
            && strings(new.pointer("/metadata/finalizers")).is_empty()
            && (def.flavor != Flavor::Namespace
                || strings(new.pointer("/spec/finalizers")).is_empty())
        {
            if opts.dry_run {
                return served(200, Arc::new(new), warnings);
            }
            let last = st.remove(&def.storage, &key, new);
            if let Some(uid) = meta_str(&last, "uid") {
                gc::collect(st, uid, false);
            }
            super::namespaces::finalize_terminating(st);
            return served(200, last, warnings);
        }
    }
    if opts.dry_run {
        let code = if old.is_some() { 200 } else { 201 };
        return served(code, Arc::new(new), warnings);
    }
    super::limits::check_stored(&new)?;
    let created = old.is_none();
    let stored = st.put(&def.storage, key, new);
    if let Some(defs) = crd_defs {
        if let Some(first) = defs.first() {
            st.unregister(&first.storage);
        }
        st.register(defs);
    }
    served(if created { 201 } else { 200 }, stored, warnings)
}

/// POST: creates an object.
pub fn create(
    st: &mut Store,
    def: &ResourceDef,
    ns: Option<&str>,
    mut obj: Value,
    opts: &WriteOpts,
) -> ApiResult<Written> {
    check_identity(def, &mut obj, ns, None)?;
    let m = meta_mut(&mut obj)?;
    if m.get("resourceVersion")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty())
    {
        return Err(ApiError::bad_request(
            "resourceVersion should not be set on objects to be created",
        ));
    }
    // Admission names the object by its generateName until a name is generated.
    let requested = ["name", "generateName"]
        .iter()
        .find_map(|k| m.get(*k).and_then(Value::as_str).filter(|s| !s.is_empty()))
        .unwrap_or("Unknown")
        .to_string();
    if m.get("name")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        match m.get("generateName").and_then(Value::as_str) {
            Some(prefix) if !prefix.is_empty() => {
                let generated = format!("{prefix}{}", meta::name_suffix());
                m.insert("name".into(), json!(generated));
            }
            _ => {
                return Err(ApiError::invalid(
                    &def.kind,
                    &def.group,
                    "",
                    vec![Cause::new(
                        "FieldValueRequired",
                        "metadata.name",
                        "Required value: name or generateName is required",
                    )],
                ));
            }
        }
    }
    let name = m
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    for k in [
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "managedFields",
    ] {
        m.remove(k);
    }
    m.insert("uid".into(), json!(meta::new_uid()));
    m.insert("creationTimestamp".into(), json!(meta::now()));
    super::namespaces::admit_create(st, def, ns, &requested)?;
    if st
        .get(&def.storage, &obj_key(ns.filter(|_| def.namespaced), &name))
        .is_some()
    {
        return Err(ApiError::already_exists(&def.plural, &def.group, &name));
    }
    finish(st, def, Scope::Main, opts, None, obj, None, Vec::new())
}

/// PUT: replaces an object (or its status).
pub fn update(
    st: &mut Store,
    def: &ResourceDef,
    ns: Option<&str>,
    name: &str,
    scope: Scope,
    mut obj: Value,
    opts: &WriteOpts,
) -> ApiResult<Written> {
    check_identity(def, &mut obj, ns, Some(name))?;
    let key = obj_key(ns.filter(|_| def.namespaced), name);
    let Some(old) = st.get(&def.storage, &key) else {
        if scope == Scope::Main && def.allow_create_on_update() {
            if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("resourceVersion");
            }
            return create(st, def, ns, obj, opts);
        }
        return Err(ApiError::not_found(&def.plural, &def.group, name));
    };
    check_rv(def, name, &old, &obj, !def.allow_unconditional_update())?;
    finish(st, def, scope, opts, Some(old), obj, None, Vec::new())
}

/// PATCH: merge, JSON, strategic-merge (as merge) or server-side apply.
#[allow(clippy::too_many_arguments)]
pub fn patch(
    st: &mut Store,
    def: &ResourceDef,
    ns: Option<&str>,
    name: &str,
    scope: Scope,
    kind: PatchKind,
    body: &[u8],
    opts: &WriteOpts,
) -> ApiResult<Written> {
    if kind == PatchKind::Apply {
        return super::apply::apply(st, def, ns, name, scope, body, opts);
    }
    // As on a real server: custom resources have no patch strategies to merge by.
    if kind == PatchKind::Strategic && def.flavor == Flavor::Custom {
        return Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
        ));
    }
    let patch_doc = patch::parse_body(body, false)?;
    let key = obj_key(ns.filter(|_| def.namespaced), name);
    let old = st
        .get(&def.storage, &key)
        .ok_or_else(|| ApiError::not_found(&def.plural, &def.group, name))?;
    let mut cur = present(def, &old);
    patch::apply_patch(kind, &mut cur, &patch_doc)?;
    check_identity(def, &mut cur, ns, Some(name))?;
    check_rv(def, name, &old, &cur, false)?;
    finish(st, def, scope, opts, Some(old), cur, None, Vec::new())
}
