//! The one place that decides what of a URL is a secret, so that caib's output and the
//! reconciler's messages, logs and status conditions never carry a credential, whichever
//! way the user wrote it.
//!
//! What is removed, and why:
//! - The whole user-info of a `scheme://user-info@host` URL, replaced by `***`. Tokens are
//!   written in the user-name position as often as in the password one
//!   (`https://ghp_x@github.com/…`, `https://TOKEN:x-oauth-basic@github.com/…`), so neither
//!   half can be assumed harmless.
//! - Except for ssh URLs (`ssh://`, `git+ssh://`, `ssh+git://`), where the user name is a login
//!   (`git`) that a token cannot stand in for: it is kept, and only a password is masked.
//! - The value of every query parameter whose name contains `token`, `password`, `passwd`,
//!   `secret` or `api_key` (GitLab's `?private_token=`, OAuth's `?access_token=`).
//!
//! scp-like remotes (`git@github.com:org/repo.git`) have no scheme and are left alone: they
//! are ssh, so their user name is a login, not a secret.
//!
//! [`redact_text`] applies the same to every `scheme://` URL inside a longer message (a
//! libgit2 or HTTP client error) and leaves the rest of the message as it was.

use std::borrow::Cow;

/// What replaces a secret.
pub const MASK: &str = "***";

/// Query parameter names (lower-cased substrings) whose values are secrets.
const SECRET_PARAMS: [&str; 5] = ["token", "password", "passwd", "secret", "api_key"];

/// `url` without its credentials (see the module documentation). Borrows when there is
/// nothing to remove; anything that is not a `scheme://` URL is returned as it is.
pub fn redact_url(url: &str) -> Cow<'_, str> {
    match scheme_len(url) {
        Some(scheme) => redact_from(url, scheme).map_or(Cow::Borrowed(url), Cow::Owned),
        None => Cow::Borrowed(url),
    }
}

/// `text` with every `scheme://` URL in it passed through [`redact_url`]. A URL ends at
/// whitespace or at a character no URL holds unencoded (`"`, `<`, `>`, `` ` ``); quotes and
/// brackets around it stay as they were.
pub fn redact_text(text: &str) -> Cow<'_, str> {
    let mut out = String::new();
    let mut copied = 0;
    let mut search = 0;
    while let Some(found) = text[search..].find("://") {
        let sep = search + found;
        let start = scheme_start(text, sep);
        let end = url_end(text, sep + 3);
        search = end.max(sep + 3);
        if start == sep {
            continue;
        }
        if let Some(redacted) = redact_from(&text[start..end], sep - start) {
            out.push_str(&text[copied..start]);
            out.push_str(&redacted);
            copied = end;
        }
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

fn is_scheme_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.')
}

/// Length of the scheme when `url` starts with `scheme://`.
fn scheme_len(url: &str) -> Option<usize> {
    let sep = url.find("://")?;
    let scheme = &url.as_bytes()[..sep];
    let valid = scheme.first().is_some_and(u8::is_ascii_alphabetic)
        && scheme.iter().all(|&c| is_scheme_char(c));
    valid.then_some(sep)
}

/// Where the scheme ending at `sep` starts in `text` (`sep` itself when there is none).
fn scheme_start(text: &str, sep: usize) -> usize {
    let bytes = text.as_bytes();
    let mut start = sep;
    while start > 0 && is_scheme_char(bytes[start - 1]) {
        start -= 1;
    }
    // A scheme starts with a letter: skip leading digits and punctuation (`1.https://`).
    while start < sep && !bytes[start].is_ascii_alphabetic() {
        start += 1;
    }
    start
}

/// End of the URL whose authority starts at `from`.
fn url_end(text: &str, from: usize) -> usize {
    text[from..]
        .char_indices()
        .find(|&(_, c)| c.is_whitespace() || c.is_control() || matches!(c, '"' | '<' | '>' | '`'))
        .map_or(text.len(), |(i, _)| from + i)
}

/// `url` (whose scheme is `scheme` bytes long) redacted, or `None` when nothing changes.
fn redact_from(url: &str, scheme: usize) -> Option<String> {
    let rest = &url[scheme + 3..];
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_len);
    let info = authority
        .rsplit_once('@')
        .and_then(|(info, host)| Some((redact_userinfo(&url[..scheme], info)?, host)));
    let tail_redacted = redact_query(tail);
    if info.is_none() && tail_redacted.is_none() {
        return None;
    }
    let mut out = String::with_capacity(url.len());
    out.push_str(&url[..scheme + 3]);
    match info {
        Some((info, host)) => out.push_str(&format!("{info}@{host}")),
        None => out.push_str(authority),
    }
    out.push_str(tail_redacted.as_deref().unwrap_or(tail));
    Some(out)
}

/// The replacement user-info, or `None` when it holds nothing secret.
fn redact_userinfo(scheme: &str, info: &str) -> Option<String> {
    let ssh = matches!(
        scheme.to_ascii_lowercase().as_str(),
        "ssh" | "git+ssh" | "ssh+git"
    );
    match info.split_once(':') {
        _ if info == MASK => None,
        Some((user, password)) if ssh && password != MASK => Some(format!("{user}:{MASK}")),
        Some(_) if ssh => None,
        None if ssh => None,
        _ => Some(MASK.to_owned()),
    }
}

/// Path, query and fragment with secret query values masked, or `None` when none is.
fn redact_query(tail: &str) -> Option<String> {
    let query_start = tail.find('?')? + 1;
    let query_end = tail[query_start..]
        .find('#')
        .map_or(tail.len(), |i| query_start + i);
    let mut changed = false;
    let params: Vec<String> = tail[query_start..query_end]
        .split('&')
        .map(|param| match param.split_once('=') {
            Some((name, value)) if is_secret_param(name) && value != MASK => {
                changed = true;
                format!("{name}={MASK}")
            }
            _ => param.to_owned(),
        })
        .collect();
    changed.then(|| {
        format!(
            "{}{}{}",
            &tail[..query_start],
            params.join("&"),
            &tail[query_end..]
        )
    })
}

fn is_secret_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_PARAMS.iter().any(|s| name.contains(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_info_of_http_urls_is_masked_whole() {
        for (url, expected) in [
            (
                "https://alice:s3cret@git.example.com/org/repo.git",
                "https://***@git.example.com/org/repo.git",
            ),
            (
                "https://ghp_abc123@github.com/org/repo.git",
                "https://***@github.com/org/repo.git",
            ),
            (
                "https://ghp_abc123:x-oauth-basic@github.com/o/r",
                "https://***@github.com/o/r",
            ),
            ("http://tok@127.0.0.1:8080", "http://***@127.0.0.1:8080"),
            (
                "HTTPS://a:b@[::1]:3000/r?x=1",
                "HTTPS://***@[::1]:3000/r?x=1",
            ),
            // An unencoded `@` in the password: the host is after the last one.
            ("https://u:p@ss@host/r", "https://***@host/r"),
        ] {
            assert_eq!(redact_url(url), expected, "{url}");
        }
    }

    #[test]
    fn ssh_logins_are_kept_and_passwords_masked() {
        assert_eq!(
            redact_url("ssh://git@host:22/r.git"),
            "ssh://git@host:22/r.git"
        );
        assert_eq!(
            redact_url("ssh://git:pw@host/r.git"),
            "ssh://git:***@host/r.git"
        );
        assert_eq!(redact_url("git+ssh://git@host/r"), "git+ssh://git@host/r");
        // scp-like syntax is ssh: `git` is a login, not a secret.
        assert_eq!(
            redact_url("git@github.com:org/repo.git"),
            "git@github.com:org/repo.git"
        );
    }

    #[test]
    fn secret_query_values_are_masked() {
        assert_eq!(
            redact_url("https://gitlab.example.com/api/v4/projects?private_token=glpat-x&page=2"),
            "https://gitlab.example.com/api/v4/projects?private_token=***&page=2"
        );
        assert_eq!(
            redact_url("https://h/p?Access_Token=abc#frag"),
            "https://h/p?Access_Token=***#frag"
        );
        assert_eq!(
            redact_url("https://h/p?state=open&head=a:b"),
            "https://h/p?state=open&head=a:b"
        );
    }

    #[test]
    fn urls_without_secrets_are_borrowed_unchanged() {
        for url in [
            "https://github.com/org/repo.git",
            "file:///tmp/r.git",
            "/srv/catalog",
            "https://h/a@b",
            "https://***@h/r",
            "",
        ] {
            assert!(
                matches!(redact_url(url), Cow::Borrowed(u) if u == url),
                "{url}"
            );
        }
    }

    #[test]
    fn urls_inside_a_message_are_redacted_and_the_rest_kept() {
        assert_eq!(
            redact_text(
                "fetch 'https://ghp_x@github.com/o/r.git': 401; see (http://u:p@h/x), \
                 https://ok.example.com/a and git@github.com:o/r.git"
            ),
            "fetch 'https://***@github.com/o/r.git': 401; see (http://***@h/x), \
             https://ok.example.com/a and git@github.com:o/r.git"
        );
        assert_eq!(
            redact_text("a\"https://t@h\"b<https://h/?token=z>"),
            "a\"https://***@h\"b<https://h/?token=***>"
        );
        assert_eq!(
            redact_text("x://y :// ://@ é://t@h"),
            "x://y :// ://@ é://t@h"
        );
        let plain = "nothing here: only a:b@c and ://";
        assert!(matches!(redact_text(plain), Cow::Borrowed(_)));
    }

    #[test]
    fn redacting_twice_changes_nothing_more() {
        let once = redact_text("https://a:b@h/?token=t ssh://g:p@h").into_owned();
        assert_eq!(redact_text(&once), once.as_str());
    }
}
