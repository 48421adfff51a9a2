//! The request gate: authentication, impersonation and authorization, in the API server's
//! filter order (`staging/src/k8s.io/apiserver/pkg/server/config.go`
//! `DefaultBuildHandlerChain`: WithAuthentication, WithImpersonation, WithAuthorization).
//!
//! Impersonation emulates `staging/src/k8s.io/apiserver/pkg/endpoints/filters/impersonation.go`
//! (`Impersonate-User`, `Impersonate-Group`, `Impersonate-Uid`, each checked with the
//! `impersonate` verb on `users`, `groups`, `serviceaccounts` or `uids`); refusals are the
//! Status of `staging/src/k8s.io/apiserver/pkg/endpoints/handlers/responsewriters/errors.go`
//! `Forbidden`.

use axum::http::{HeaderMap, header};
use serde_json::{Map, Value, json};

use super::authn::{UserInfo, service_account_uid};
use super::error::{ApiError, ApiResult, qualified};
use super::rbac::Attributes;
use super::server::Shared;

/// Who is asking: the authenticated user, or whom they impersonate.
pub fn identify(s: &Shared, headers: &HeaderMap) -> ApiResult<UserInfo> {
    let auth = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or_default());
    let user = s.authn.authenticate(auth, |ns, name| {
        service_account_uid(&s.lock_store(), ns, name)
    })?;
    impersonate(s, user, headers)
}

fn values<'a>(headers: &'a HeaderMap, name: &str) -> Vec<&'a str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect()
}

/// The impersonated user when `Impersonate-*` headers are present and `user` may use them.
fn impersonate(s: &Shared, user: UserInfo, headers: &HeaderMap) -> ApiResult<UserInfo> {
    let name = values(headers, "impersonate-user")
        .first()
        .map(|n| n.to_string());
    let groups = values(headers, "impersonate-group");
    let uid = values(headers, "impersonate-uid")
        .first()
        .map(|u| u.to_string());
    let Some(name) = name else {
        if groups.is_empty() && uid.is_none() {
            return Ok(user);
        }
        return Err(ApiError::bad_request(
            "requested impersonation of groups or a uid without impersonating a user",
        ));
    };
    let mut checks = Vec::new();
    let mut as_groups: Vec<String> = Vec::new();
    match name
        .strip_prefix("system:serviceaccount:")
        .and_then(|r| r.split_once(':'))
    {
        Some((ns, sa)) => {
            checks.push(Attributes::resource(
                "impersonate",
                "",
                "serviceaccounts",
                ns,
                sa,
            ));
            if groups.is_empty() {
                let sa_user = UserInfo::service_account(ns, sa, "");
                as_groups.extend(
                    sa_user
                        .groups
                        .into_iter()
                        .filter(|g| g != "system:authenticated"),
                );
            }
        }
        None => checks.push(Attributes::resource("impersonate", "", "users", "", &name)),
    }
    for g in &groups {
        checks.push(Attributes::resource("impersonate", "", "groups", "", g));
        as_groups.push(g.to_string());
    }
    if let Some(u) = &uid {
        checks.push(Attributes::resource(
            "impersonate",
            "authentication.k8s.io",
            "uids",
            "",
            u,
        ));
    }
    for a in &checks {
        authorize(s, &user, a)?;
    }
    if !as_groups
        .iter()
        .any(|g| g == "system:authenticated" || g == "system:unauthenticated")
    {
        as_groups.push("system:authenticated".into());
    }
    Ok(UserInfo {
        name,
        uid: uid.unwrap_or_default(),
        groups: as_groups,
    })
}

/// Ok when `user` may do `a`; the real 403 otherwise.
pub fn authorize(s: &Shared, user: &UserInfo, a: &Attributes) -> ApiResult<()> {
    if user.groups.iter().any(|g| g == "system:masters") {
        return Ok(()); // before taking the store lock: the admin path stays as fast as before
    }
    let d = s.rbac.authorize(&s.lock_store(), user, a);
    if d.allowed {
        Ok(())
    } else {
        Err(forbidden(&user.name, a, &d.reason))
    }
}

/// `responsewriters.Forbidden` + `apierrors.NewForbidden`: the message names the user, verb,
/// resource (with subresource), API group and scope; the details name the object.
pub fn forbidden(user: &str, a: &Attributes, reason: &str) -> ApiError {
    let what = if !a.resource_request {
        format!("User {user:?} cannot {} path {:?}", a.verb, a.path)
    } else {
        let resource = match a.subresource.as_str() {
            "" => a.resource.clone(),
            sub => format!("{}/{sub}", a.resource),
        };
        let scope = match a.namespace.as_str() {
            "" => "at the cluster scope".to_string(),
            ns => format!("in the namespace {ns:?}"),
        };
        format!(
            "User {user:?} cannot {} resource {resource:?} in API group {:?} {scope}",
            a.verb, a.group
        )
    };
    let what = sanitize(&what);
    let what = if reason.is_empty() {
        what
    } else {
        format!("{what}: {reason}")
    };
    let message = match (a.resource.as_str(), a.name.as_str()) {
        ("", _) => format!("forbidden: {what}"),
        (r, "") => format!("{} is forbidden: {what}", qualified(r, &a.group)),
        (r, name) => format!("{} {name:?} is forbidden: {what}", qualified(r, &a.group)),
    };
    let mut details = Map::new();
    for (k, v) in [
        ("name", &a.name),
        ("group", &a.group),
        ("kind", &a.resource),
    ] {
        if !v.is_empty() {
            details.insert(k.into(), json!(v));
        }
    }
    ApiError::new(403, "Forbidden", message).with_details(Value::Object(details))
}

/// The HTML escaping `responsewriters.Forbidden` applies to its message.
fn sanitize(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_messages_name_scope_group_and_object() {
        let path = forbidden("u", &Attributes::path("get", "/metrics"), "");
        assert_eq!(
            path.message,
            "forbidden: User \"u\" cannot get path \"/metrics\""
        );
        assert_eq!(path.details, Some(json!({})));
        let ns = Attributes::resource("get", "", "namespaces", "dev", "dev");
        let e = forbidden(
            "u",
            &ns,
            "RBAC: role.rbac.authorization.k8s.io \"r\" not found",
        );
        assert_eq!(
            e.message,
            "namespaces \"dev\" is forbidden: User \"u\" cannot get resource \"namespaces\" in API group \"\" in the namespace \"dev\": RBAC: role.rbac.authorization.k8s.io \"r\" not found"
        );
        assert_eq!(
            e.details,
            Some(json!({"name": "dev", "kind": "namespaces"}))
        );
        let crd = Attributes::resource(
            "create",
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            "",
            "",
        );
        assert_eq!(
            forbidden("<u>", &crd, "").message,
            "customresourcedefinitions.apiextensions.k8s.io is forbidden: User \"&lt;u&gt;\" cannot create resource \"customresourcedefinitions\" in API group \"apiextensions.k8s.io\" at the cluster scope"
        );
    }
}
