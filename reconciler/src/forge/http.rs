//! The requests every forge call makes: the provider's auth header, JSON bodies read up to a
//! bound, and list pages followed through `Link: <…>; rel="next"` (GitHub, GitLab and Gitea
//! all send it) only while the next page stays on the API's own origin, so the token never
//! follows a link to another host.

use reqwest::{Method, Url};
use serde_json::Value;

use catalog_api::redact::redact_url;
use catalog_api::source::ForgeProvider;

use super::ForgeError;

/// Largest JSON answer read from a forge (one page of 100 pull requests with their bodies is
/// well under 1 MiB); a larger one is an error, not an unbounded allocation.
pub const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// Most pages read of one list: 20 pages of 100 items.
pub const MAX_PAGES: usize = 20;

/// One forge, one token.
pub(super) struct Call<'a> {
    pub http: &'a reqwest::Client,
    pub provider: ForgeProvider,
    pub token: &'a str,
}

impl Call<'_> {
    fn request(&self, method: Method, url: &str) -> reqwest::RequestBuilder {
        let builder = self
            .http
            .request(method, url)
            .header("Accept", "application/json");
        match self.provider {
            ForgeProvider::Github => {
                builder.header("Authorization", format!("Bearer {}", self.token))
            }
            ForgeProvider::Gitea => {
                builder.header("Authorization", format!("token {}", self.token))
            }
            ForgeProvider::Gitlab => builder.header("PRIVATE-TOKEN", self.token),
        }
    }

    /// Sends `body` (when some) with `method`; the JSON answer (`Null` for an empty one).
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<Value, ForgeError> {
        let mut request = self.request(method, url);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| http_error(url, &e))?;
        let (value, _) = answer(url, response).await?;
        Ok(value)
    }

    /// Every item of a paged list, following `rel="next"` links for at most [`MAX_PAGES`].
    pub async fn list(&self, first: &str) -> Result<Vec<Value>, ForgeError> {
        let home = origin(first)?;
        let mut items = Vec::new();
        let mut next = Some(first.to_string());
        for _ in 0..MAX_PAGES {
            let Some(url) = next.take() else { break };
            let response = self
                .request(Method::GET, &url)
                .send()
                .await
                .map_err(|e| http_error(&url, &e))?;
            let (value, link) = answer(&url, response).await?;
            let Value::Array(page) = value else {
                return Err(ForgeError::Invalid {
                    url: redact_url(&url).into_owned(),
                    message: "expected a JSON array".into(),
                });
            };
            items.extend(page);
            next = link.as_deref().and_then(next_link);
            if let Some(link) = &next
                && origin(link)? != home
            {
                return Err(ForgeError::OffSite {
                    url: redact_url(&url).into_owned(),
                    next: redact_url(link).into_owned(),
                });
            }
        }
        Ok(items)
    }
}

fn http_error(url: &str, error: &reqwest::Error) -> ForgeError {
    ForgeError::Http {
        url: redact_url(url).into_owned(),
        message: error.to_string(),
    }
}

/// The JSON of a 2xx answer and its `Link` header; any other status is [`ForgeError::Status`]
/// with the start of the body.
async fn answer(
    url: &str,
    mut response: reqwest::Response,
) -> Result<(Value, Option<String>), ForgeError> {
    let status = response.status();
    let link = response
        .headers()
        .get("link")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| http_error(url, &e))? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(ForgeError::Invalid {
                url: redact_url(url).into_owned(),
                message: format!("the answer is over {MAX_ANSWER_BYTES} bytes"),
            });
        }
        body.extend_from_slice(&chunk);
    }
    if !status.is_success() {
        let text: String = String::from_utf8_lossy(&body).chars().take(300).collect();
        return Err(ForgeError::Status {
            url: redact_url(url).into_owned(),
            status: status.as_u16(),
            body: text,
        });
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok((Value::Null, link));
    }
    let value = serde_json::from_slice(&body).map_err(|e| ForgeError::Invalid {
        url: redact_url(url).into_owned(),
        message: e.to_string(),
    })?;
    Ok((value, link))
}

/// The `rel="next"` target of a `Link` header (RFC 8288).
pub fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        params
            .split(';')
            .any(|p| {
                let p = p.trim().replace(' ', "");
                p == "rel=\"next\"" || p == "rel=next"
            })
            .then(|| target.to_string())
    })
}

/// scheme://host:port of a URL.
fn origin(url: &str) -> Result<String, ForgeError> {
    let parsed = Url::parse(url).map_err(|e| ForgeError::Invalid {
        url: redact_url(url).into_owned(),
        message: e.to_string(),
    })?;
    Ok(parsed.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_links_are_read_from_every_forge_form() {
        let github = r#"<https://api.github.com/repositories/1/pulls?page=2>; rel="next", <https://api.github.com/repositories/1/pulls?page=5>; rel="last""#;
        assert_eq!(
            next_link(github).as_deref(),
            Some("https://api.github.com/repositories/1/pulls?page=2")
        );
        let gitlab = r#"<https://gl/api/v4/projects/1/merge_requests?page=1>; rel="prev", <https://gl/api/v4/projects/1/merge_requests?page=3>; rel="next""#;
        assert_eq!(
            next_link(gitlab).as_deref(),
            Some("https://gl/api/v4/projects/1/merge_requests?page=3")
        );
        assert_eq!(next_link(r#"<https://x/?page=1>; rel="first""#), None);
        assert_eq!(next_link("garbage"), None);
    }

    #[test]
    fn origins_compare_scheme_host_and_port() {
        assert_eq!(
            origin("https://api.github.com/x").unwrap(),
            origin("https://api.github.com:443/y?page=2").unwrap()
        );
        assert_ne!(
            origin("http://127.0.0.1:1/x").unwrap(),
            origin("http://127.0.0.1:2/x").unwrap()
        );
    }
}
