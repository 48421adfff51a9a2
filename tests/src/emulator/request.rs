//! Resource URLs parsed like the API server's RequestInfo
//! (`staging/src/k8s.io/apiserver/pkg/endpoints/request/requestinfo.go`):
//! `/api/v1/namespaces/{ns}/{resource}/{name}/{subresource}`, with `namespaces/{name}/status`
//! meaning the namespace's status; and the authorization attributes of a request.

use std::collections::HashMap;

use axum::http::Method;

use super::rbac::Attributes;

/// A parsed resource URL.
pub struct Target {
    pub group: String,
    pub version: String,
    pub namespace: Option<String>,
    pub resource: String,
    pub name: Option<String>,
    pub sub: Option<String>,
    pub watch_path: bool,
}

pub fn parse_target(segs: &[&str]) -> Option<Target> {
    let (group, version, rest) = match segs {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return None,
    };
    let mut rest: Vec<&str> = rest.to_vec();
    let watch_path = rest.first() == Some(&"watch");
    if watch_path {
        rest.remove(0);
    }
    let mut namespace = None;
    if rest.len() >= 3
        && rest[0] == "namespaces"
        && !(rest.len() == 3 && matches!(rest[2], "status" | "finalize"))
    {
        namespace = Some(rest[1].to_string());
        rest.drain(..2);
    }
    if rest.is_empty() || rest.len() > 3 {
        return None;
    }
    Some(Target {
        group: group.into(),
        version: version.into(),
        namespace,
        resource: rest[0].into(),
        name: rest.get(1).map(|s| s.to_string()),
        sub: rest.get(2).map(|s| s.to_string()),
        watch_path,
    })
}

/// The authorization verb of a request (`requestinfo.go`): `get`/`list`/`watch` for reads
/// (a watch with `?watch=true` or the `/watch/` prefix), `create`, `update`, `patch`,
/// `delete`, `deletecollection`; `None` for a method the API does not serve.
pub fn verb(method: &Method, named: bool, watch: bool) -> Option<&'static str> {
    Some(match (method, named) {
        (&Method::GET, _) if watch => "watch",
        (&Method::GET, true) => "get",
        (&Method::GET, false) => "list",
        (&Method::POST, _) => "create",
        (&Method::PUT, _) => "update",
        (&Method::PATCH, _) => "patch",
        (&Method::DELETE, true) => "delete",
        (&Method::DELETE, false) => "deletecollection",
        _ => return None,
    })
}

/// The name an unnamed list/watch is limited to by `fieldSelector=metadata.name=X`, which
/// RequestInfo takes as the request's name (so resourceNames rules can allow it).
fn selected_name(q: &HashMap<String, String>) -> Option<&str> {
    q.get("fieldSelector")?.split(',').find_map(|term| {
        let v = term.trim().strip_prefix("metadata.name")?;
        let v = v.strip_prefix("==").or_else(|| v.strip_prefix('='))?;
        (!v.is_empty()).then_some(v)
    })
}

/// Whether the query asks for a watch.
pub fn is_watch(t: &Target, q: &HashMap<String, String>) -> bool {
    t.watch_path || matches!(q.get("watch").map(String::as_str), Some("true" | "1"))
}

/// The authorization attributes of a resource request. `namespaces/{name}` is in namespace
/// `{name}`, as RequestInfo has it.
pub fn attributes(method: &Method, t: &Target, q: &HashMap<String, String>) -> Attributes {
    let verb = verb(method, t.name.is_some(), is_watch(t, q)).unwrap_or_default();
    let mut name = t.name.clone().unwrap_or_default();
    if name.is_empty() && matches!(verb, "list" | "watch") {
        name = selected_name(q).unwrap_or_default().to_string();
    }
    let namespace = match (&t.namespace, t.resource.as_str(), &t.name) {
        (Some(ns), _, _) => ns.clone(),
        (None, "namespaces", Some(n)) => n.clone(),
        _ => String::new(),
    };
    let mut a = Attributes::resource(verb, &t.group, &t.resource, &namespace, &name);
    a.subresource = t.sub.clone().unwrap_or_default();
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn urls() {
        let t = parse_target(&[
            "apis",
            "g.io",
            "v1",
            "namespaces",
            "ns",
            "widgets",
            "w",
            "status",
        ])
        .expect("t");
        assert_eq!(
            (
                t.namespace.as_deref(),
                t.resource.as_str(),
                t.name.as_deref(),
                t.sub.as_deref()
            ),
            (Some("ns"), "widgets", Some("w"), Some("status"))
        );
        let t = parse_target(&["api", "v1", "namespaces", "ns", "status"]).expect("t");
        assert_eq!(
            (
                t.namespace,
                t.resource.as_str(),
                t.name.as_deref(),
                t.sub.as_deref()
            ),
            (None, "namespaces", Some("ns"), Some("status"))
        );
        let t = parse_target(&["api", "v1", "namespaces", "ns"]).expect("t");
        assert_eq!(
            (t.resource.as_str(), t.name.as_deref()),
            ("namespaces", Some("ns"))
        );
        let t = parse_target(&["apis", "g.io", "v1", "widgets"]).expect("t");
        assert_eq!((t.namespace, t.name), (None, None));
        let t = parse_target(&["api", "v1", "watch", "namespaces", "ns", "configmaps"]).expect("t");
        assert!(t.watch_path);
        assert!(parse_target(&["apis", "g.io"]).is_none());
    }

    #[test]
    fn authorization_attributes() {
        let segs = ["api", "v1", "namespaces", "dev", "configmaps"];
        let t = parse_target(&segs).expect("t");
        let a = attributes(
            &Method::GET,
            &t,
            &q(&[("fieldSelector", "metadata.name=x")]),
        );
        assert_eq!(
            (a.verb.as_str(), a.name.as_str(), a.namespace.as_str()),
            ("list", "x", "dev")
        );
        let a = attributes(&Method::GET, &t, &q(&[("watch", "true")]));
        assert_eq!((a.verb.as_str(), a.name.as_str()), ("watch", ""));
        let t = parse_target(&["api", "v1", "namespaces", "dev"]).expect("t");
        let a = attributes(&Method::GET, &t, &q(&[]));
        assert_eq!(
            (a.resource.as_str(), a.namespace.as_str()),
            ("namespaces", "dev")
        );
        let segs = [
            "api",
            "v1",
            "namespaces",
            "ns",
            "serviceaccounts",
            "sa",
            "token",
        ];
        let a = attributes(&Method::POST, &parse_target(&segs).expect("t"), &q(&[]));
        assert_eq!(
            (a.verb.as_str(), a.subresource.as_str(), a.name.as_str()),
            ("create", "token", "sa")
        );
    }
}
