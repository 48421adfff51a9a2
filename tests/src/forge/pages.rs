//! Paging of list answers the way each forge pages them, so clients that read only the first
//! page are caught: `per_page`/`page` (GitHub: 30 by default, at most 100; GitLab: 20, at most
//! 100) or `limit`/`page` (Gitea: 30, at most 50), a `Link` header with `first`, `prev`, `next`
//! and `last`, GitLab's `X-Page`/`X-Next-Page`/`X-Per-Page`/`X-Total` and Gitea's `X-Total-Count`.

use std::collections::BTreeMap;

use serde_json::Value;

use super::Provider;

/// (default, maximum) page size of `provider`.
pub fn sizes(provider: Provider) -> (usize, usize) {
    match provider {
        Provider::Github => (30, 100),
        Provider::Gitlab => (20, 100),
        Provider::Gitea => (30, 50),
    }
}

/// One page of `items` for the request `url` (`base` + path, `query` its parameters), and the
/// headers to send with it.
pub fn page(
    provider: Provider,
    base_url: &str,
    query: &BTreeMap<String, String>,
    items: Vec<Value>,
) -> (Value, Vec<(String, String)>) {
    let (default, max) = sizes(provider);
    let size_key = if provider == Provider::Gitea {
        "limit"
    } else {
        "per_page"
    };
    let size = query
        .get(size_key)
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
        .min(max);
    let page = query
        .get("page")
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(1);
    let total = items.len();
    let last = total.div_ceil(size).max(1);
    let slice: Vec<Value> = items
        .into_iter()
        .skip((page - 1) * size)
        .take(size)
        .collect();
    let link_to = |n: usize| {
        let mut q = query.clone();
        q.insert("page".into(), n.to_string());
        q.insert(size_key.into(), size.to_string());
        let encoded: Vec<String> = q
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        format!("<{base_url}?{}>", encoded.join("&"))
    };
    let mut links = Vec::new();
    if page < last {
        links.push(format!("{}; rel=\"next\"", link_to(page + 1)));
        links.push(format!("{}; rel=\"last\"", link_to(last)));
    }
    if page > 1 {
        links.push(format!("{}; rel=\"first\"", link_to(1)));
        links.push(format!("{}; rel=\"prev\"", link_to(page - 1)));
    }
    let mut headers = Vec::new();
    if !links.is_empty() {
        headers.push(("link".to_string(), links.join(", ")));
    }
    match provider {
        Provider::Gitlab => {
            headers.push(("x-page".into(), page.to_string()));
            headers.push(("x-per-page".into(), size.to_string()));
            headers.push(("x-total".into(), total.to_string()));
            let next = if page < last {
                (page + 1).to_string()
            } else {
                String::new()
            };
            headers.push(("x-next-page".into(), next));
        }
        Provider::Gitea => headers.push(("x-total-count".into(), total.to_string())),
        Provider::Github => {}
    }
    (Value::Array(slice), headers)
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
