//! The virtual, create-only resources of authentication and authorization:
//!
//! - `serviceaccounts/token` (TokenRequest, `pkg/registry/core/serviceaccount/storage/token.go`):
//!   what `kubectl create token` calls;
//! - SelfSubjectReview (`pkg/registry/authentication/selfsubjectreview/rest.go`): `kubectl
//!   auth whoami`;
//! - SelfSubjectAccessReview and SelfSubjectRulesReview
//!   (`pkg/registry/authorization/selfsubjectaccessreview/rest.go`,
//!   `pkg/registry/authorization/selfsubjectrulesreview/rest.go`): `kubectl auth can-i
//!   [--list]`.
//!
//! They are authorized like any request (`create` on the resource) before they get here.

use axum::http::{HeaderMap, Method};
use axum::response::Response;
use serde_json::{Value, json};

use super::authn::{API_AUDIENCE, UserInfo, service_account_uid};
use super::error::{ApiError, ApiResult, Cause};
use super::meta;
use super::rbac::{self, Attributes, PolicyRule};
use super::request::Target;
use super::server::{Shared, json_response, object_body};

const AUTHN: &str = "authentication.k8s.io";
const AUTHZ: &str = "authorization.k8s.io";

/// Serves `t` when it is one of these resources; `None` otherwise.
pub fn serve(
    s: &Shared,
    user: &UserInfo,
    method: &Method,
    t: &Target,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult<Option<Response>> {
    let kind = match (t.group.as_str(), t.resource.as_str(), t.sub.as_deref()) {
        ("", "serviceaccounts", Some("token")) => "TokenRequest",
        (AUTHN, "selfsubjectreviews", None) => "SelfSubjectReview",
        (AUTHZ, "selfsubjectaccessreviews", None) => "SelfSubjectAccessReview",
        (AUTHZ, "selfsubjectrulesreviews", None) => "SelfSubjectRulesReview",
        _ => return Ok(None),
    };
    if *method != Method::POST {
        return Err(ApiError::method_not_allowed());
    }
    let req = object_body(headers, body)?;
    // A TokenRequest is served under core/v1 ServiceAccounts but is authentication.k8s.io/v1.
    let api_version = match kind {
        "TokenRequest" => format!("{AUTHN}/v1"),
        _ => format!("{}/{}", t.group, t.version),
    };
    let mut out = match kind {
        "TokenRequest" => token_request(s, t, &req)?,
        "SelfSubjectReview" => json!({"status": {"userInfo": user.to_json()}}),
        "SelfSubjectAccessReview" => access_review(s, user, &req),
        _ => rules_review(s, user, &req),
    };
    out["apiVersion"] = json!(api_version);
    out["kind"] = json!(kind);
    if out.get("metadata").is_none() {
        out["metadata"] = json!({"creationTimestamp": null});
    }
    Ok(Some(json_response(201, &out, &[])))
}

/// Mints a token for an existing ServiceAccount (404 otherwise), valid for the requested
/// `expirationSeconds` (default 3600, at least 600, as `ValidateTokenRequest` checks) and the
/// requested audiences (default: the API server's).
fn token_request(s: &Shared, t: &Target, req: &Value) -> ApiResult<Value> {
    let ns = t.namespace.clone().unwrap_or_default();
    let name = t.name.clone().unwrap_or_default();
    let uid = service_account_uid(&s.lock_store(), &ns, &name)
        .ok_or_else(|| ApiError::not_found("serviceaccounts", "", &name))?;
    let seconds = req
        .pointer("/spec/expirationSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(3600);
    let field = "spec.expirationSeconds";
    let cause = if seconds < 600 {
        Some(format!(
            "Invalid value: {seconds}: may not specify a duration less than 10 minutes"
        ))
    } else if seconds > i64::from(u32::MAX) {
        Some(format!("Too long: may not be more than {} bytes", u32::MAX))
    } else {
        None
    };
    if let Some(c) = cause {
        let causes = vec![Cause::new("FieldValueInvalid", field, c)];
        return Err(ApiError::invalid("TokenRequest", AUTHN, "", causes));
    }
    let mut audiences: Vec<String> = req
        .pointer("/spec/audiences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect();
    if audiences.is_empty() {
        audiences.push(API_AUDIENCE.into());
    }
    let minted = s.authn.issue(&ns, &name, &uid, audiences.clone(), seconds);
    let expires = minted.expires.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    Ok(json!({
        "metadata": {"name": name, "namespace": ns, "creationTimestamp": meta::now()},
        "spec": {"audiences": audiences, "expirationSeconds": seconds,
            "boundObjectRef": req.pointer("/spec/boundObjectRef")},
        "status": {"token": minted.token, "expirationTimestamp": expires},
    }))
}

fn attr(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Whether the requester may do what `spec` describes, with the authorizer's reason.
fn access_review(s: &Shared, user: &UserInfo, req: &Value) -> Value {
    let spec = req.get("spec").cloned().unwrap_or_else(|| json!({}));
    let a = if let Some(r) = spec.get("resourceAttributes") {
        let mut a = Attributes::resource(
            &attr(r, "verb"),
            &attr(r, "group"),
            &attr(r, "resource"),
            &attr(r, "namespace"),
            &attr(r, "name"),
        );
        a.subresource = attr(r, "subresource");
        a
    } else {
        let n = spec
            .get("nonResourceAttributes")
            .cloned()
            .unwrap_or_default();
        Attributes::path(&attr(&n, "verb"), &attr(&n, "path"))
    };
    let d = s.rbac.authorize(&s.lock_store(), user, &a);
    let mut status = json!({"allowed": d.allowed});
    if !d.reason.is_empty() {
        status["reason"] = json!(d.reason);
    }
    json!({"metadata": {"creationTimestamp": null}, "spec": spec, "status": status})
}

/// Every rule the requester has in `spec.namespace`, split like the review reports them.
fn rules_review(s: &Shared, user: &UserInfo, req: &Value) -> Value {
    let ns = req
        .pointer("/spec/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let (rules, errors) = rbac::rules_for(&s.lock_store(), user, ns);
    let (non_resource, resource): (Vec<PolicyRule>, Vec<PolicyRule>) = rules
        .into_iter()
        .partition(|r| !r.non_resource_urls.is_empty());
    let resource: Vec<Value> = resource
        .iter()
        .map(|r| {
            json!({"verbs": r.verbs, "apiGroups": r.api_groups, "resources": r.resources,
                "resourceNames": r.resource_names})
        })
        .collect();
    let non_resource: Vec<Value> = non_resource
        .iter()
        .map(|r| json!({"verbs": r.verbs, "nonResourceURLs": r.non_resource_urls}))
        .collect();
    let mut status = json!({"resourceRules": resource, "nonResourceRules": non_resource,
        "incomplete": !errors.is_empty()});
    if !errors.is_empty() {
        status["evaluationError"] = json!(errors.join(", "));
    }
    json!({"metadata": {"creationTimestamp": null}, "spec": {"namespace": ns}, "status": status})
}
