//! Percent-encoding of one URL path segment or query value (RFC 3986): everything but the
//! unreserved characters is encoded, `/` included, as GitLab's project ids (`group%2Frepo`)
//! and forge query values need. The one encoder of caib's and the reconciler's forge clients.

/// `value` with every byte outside `A-Z a-z 0-9 - _ . ~` written as `%XX`.
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_unreserved_characters_stay() {
        assert_eq!(super::encode("group/sub repo"), "group%2Fsub%20repo");
        assert_eq!(super::encode("a-b_c.d~e"), "a-b_c.d~e");
        assert_eq!(super::encode("é"), "%C3%A9");
    }
}
