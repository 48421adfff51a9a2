//! The one OCI image-reference parser for the whole project.
//!
//! Catalog entries, the reconciler, `caib` and the tests all name images; if each of them parsed
//! references its own way, the same string could mean two different images (or be valid in one
//! place and rejected in another). This module implements the grammar of
//! `github.com/distribution/reference` (`reference.go`, `regexp.go`) together with the Docker Hub
//! normalization of `normalize.go`, by hand and without a regex engine, so every crate agrees.
//!
//! ```text
//! reference        := name [ ":" tag ] [ "@" digest ]
//! name             := [domain '/'] remote-name
//! domain           := host [':' port-number]
//! host             := domain-name | IPv4address | '[' IPv6address ']'
//! domain-name      := domain-component ('.' domain-component)*
//! domain-component := /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/
//! port-number      := /[0-9]+/                        (and 1..=65535)
//! remote-name      := path-component ('/' path-component)*
//! path-component   := alpha-numeric (separator alpha-numeric)*
//! alpha-numeric    := /[a-z0-9]+/
//! separator        := /[_.]|__|[-]+/
//! tag              := /[\w][\w.-]{0,127}/
//! digest           := "sha256:" 64 lowercase hex      (the product accepts sha256 only)
//! ```

use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

/// Registry that short ("familiar") names such as `ubuntu` resolve to.
const DOCKER_HUB: &str = "docker.io";
/// Legacy spelling of Docker Hub that `normalize.go` rewrites to [`DOCKER_HUB`].
const LEGACY_DOCKER_HUB: &str = "index.docker.io";
/// Namespace of Docker Hub's official images (`ubuntu` is `library/ubuntu`).
const OFFICIAL_PREFIX: &str = "library/";
/// Host names a docker `config.json` may use for Docker Hub credentials.
const DOCKER_HUB_KEYS: [&str; 3] = ["docker.io", "index.docker.io", "registry-1.docker.io"];
/// Limit on `domain/remote-name` from `reference.go` (`NameTotalLengthMax`).
const NAME_MAX: usize = 255;
/// Limit on a tag's length from the grammar.
const TAG_MAX: usize = 128;

/// A parsed, normalized OCI image reference.
///
/// Parsing normalizes Docker Hub short names (`ubuntu` becomes `docker.io/library/ubuntu`) so
/// that [`registry`](Self::registry) and [`repository`](Self::repository) are always fully
/// qualified, while remembering whether the user omitted the registry so that `Display` can give
/// back the form they wrote. Because that remembered form is part of the value, `ubuntu` and
/// `docker.io/library/ubuntu` are not `==`; compare [`canonical`](Self::canonical) to ask whether
/// two references name the same image.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ImageReference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
    /// The registry was omitted in the input (a Docker Hub short name).
    familiar: bool,
}

/// Why a string is not an acceptable image reference.
///
/// Each message names the offending part of the reference so that whoever wrote it (in a catalog
/// entry or on the `caib` command line) can fix it without knowing the grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// The input was the empty string.
    #[error("reference is empty")]
    Empty,
    /// Whitespace, a control character or a non-ASCII character appears anywhere in the input.
    #[error("reference {reference:?} contains invalid character {character:?}")]
    InvalidCharacter { reference: String, character: char },
    /// A bare 64-character hex string, which docker would read as an image ID.
    #[error(
        "invalid repository name {reference:?}: a 64-character hexadecimal string is ambiguous \
         with an image ID; add a namespace or registry"
    )]
    AmbiguousIdentifier { reference: String },
    /// Nothing precedes the `:` or `@`.
    #[error("reference {reference:?} has no repository name before the tag or digest")]
    MissingName { reference: String },
    /// `domain/remote-name` is longer than 255 characters.
    #[error("reference exceeds {NAME_MAX} characters: name {name:?} is {length} characters long")]
    NameTooLong { name: String, length: usize },
    /// The registry host is not a domain name, IPv4 address or bracketed IPv6 address.
    #[error("invalid registry {domain:?}: {reason}")]
    InvalidDomain { domain: String, reason: String },
    /// The registry's port is missing, not a number or outside 1..=65535.
    #[error("invalid port in {domain:?}: {reason}")]
    InvalidPort { domain: String, reason: String },
    /// The repository path contains uppercase letters.
    #[error("repository name must be lowercase: {repository:?}")]
    NotLowercase { repository: String },
    /// The repository path breaks the path-component grammar.
    #[error("repository name {repository:?} is invalid: {reason}")]
    InvalidRepository { repository: String, reason: String },
    /// The tag breaks `[\w][\w.-]{0,127}`.
    #[error("tag {tag:?} is invalid: {reason}")]
    InvalidTag { tag: String, reason: String },
    /// The digest is not `sha256:` followed by 64 lowercase hex characters.
    #[error("invalid digest {digest:?}: expected sha256 followed by 64 lowercase hex characters")]
    InvalidDigest { digest: String },
    /// The digest uses an algorithm other than sha256, which the grammar allows but we do not.
    #[error(
        "unsupported digest algorithm {algorithm:?} in {digest:?}: only sha256 digests are accepted"
    )]
    UnsupportedDigestAlgorithm { digest: String, algorithm: String },
}

use ReferenceError as E;

impl ImageReference {
    /// Parses and normalizes `input`, the way `ParseNormalizedNamed` of distribution/reference
    /// does, plus the product's sha256-only and port-range rules.
    pub fn parse(input: &str) -> Result<Self, ReferenceError> {
        if input.is_empty() {
            return Err(E::Empty);
        }
        if let Some(character) = input.chars().find(|c| !c.is_ascii_graphic()) {
            return Err(E::InvalidCharacter {
                reference: input.into(),
                character,
            });
        }
        if is_image_id(input) {
            return Err(E::AmbiguousIdentifier {
                reference: input.into(),
            });
        }
        let (name_tag, digest) = match input.split_once('@') {
            Some((name_tag, digest)) => (name_tag, Some(digest)),
            None => (input, None),
        };
        // A ':' after the last '/' starts the tag; earlier ones belong to a registry port.
        let last_start = name_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_tag[last_start..].find(':') {
            Some(i) => (
                &name_tag[..last_start + i],
                Some(&name_tag[last_start + i + 1..]),
            ),
            None => (name_tag, None),
        };
        if name.is_empty() {
            return Err(E::MissingName {
                reference: input.into(),
            });
        }
        let (registry, repository, familiar) = split_docker_domain(name);
        if !familiar {
            check_domain(&registry)?;
        }
        let length = registry.len() + 1 + repository.len();
        if length > NAME_MAX {
            let name = format!("{registry}/{repository}");
            return Err(E::NameTooLong { name, length });
        }
        check_repository(&repository)?;
        if let Some(tag) = tag {
            check_tag(tag)?;
        }
        if let Some(digest) = digest {
            check_digest(digest)?;
        }
        Ok(Self {
            registry,
            repository,
            tag: tag.map(str::to_owned),
            digest: digest.map(str::to_owned),
            familiar,
        })
    }

    /// The registry as `host[:port]`, e.g. `docker.io`, `quay.io`, `localhost:5000`,
    /// `[::1]:5000`; the one to contact and to look credentials up for.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path within the registry, with Docker Hub's implicit `library/` added.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if one was given; `None` does not imply `latest`, callers decide that.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest (`sha256:<64 hex>`), if the reference is pinned to one.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// Whether the image lives on Docker Hub, which has its own credential aliases and limits.
    pub fn is_docker_hub(&self) -> bool {
        self.registry == DOCKER_HUB
    }

    /// The same reference pinned to `digest`, keeping the tag so it still reads meaningfully;
    /// used after resolving a tag so that what we deploy can never change underneath us.
    pub fn with_digest(&self, digest: &str) -> Result<Self, ReferenceError> {
        check_digest(digest)?;
        Ok(Self {
            digest: Some(digest.to_owned()),
            ..self.clone()
        })
    }

    /// The same reference without its digest, e.g. to resolve the tag afresh.
    pub fn without_digest(&self) -> Self {
        Self {
            digest: None,
            ..self.clone()
        }
    }

    /// The fully qualified form, e.g. `docker.io/library/ubuntu:22.04`; stable regardless of
    /// how the reference was written, so suitable for comparison, keys and pulling.
    pub fn canonical(&self) -> String {
        let mut out = format!("{}/{}", self.registry, self.repository);
        self.push_suffix(&mut out);
        out
    }

    /// True when a docker `config.json` `auths` key names this reference's registry.
    ///
    /// The key may carry a scheme and a path (`https://quay.io/v1/`), which are ignored; the
    /// remaining `host[:port]` must equal the registry exactly (ASCII case-insensitively, as DNS
    /// names are), never as a prefix, so credentials cannot leak to `quay.io.evil.com`. Docker
    /// Hub references match all of Docker Hub's historical aliases.
    pub fn matches_registry_key(&self, key: &str) -> bool {
        let without_scheme = key.split_once("://").map_or(key, |(_, rest)| rest);
        let host = without_scheme.split('/').next().unwrap_or_default();
        if host.is_empty() {
            return false;
        }
        if self.is_docker_hub() {
            DOCKER_HUB_KEYS
                .iter()
                .any(|alias| host.eq_ignore_ascii_case(alias))
        } else {
            host.eq_ignore_ascii_case(&self.registry)
        }
    }

    fn push_suffix(&self, out: &mut String) {
        if let Some(tag) = &self.tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(digest);
        }
    }
}

impl FromStr for ImageReference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Shows the reference as the user would write it: the registry only if they wrote one
/// (`ubuntu:22.04` stays `ubuntu:22.04`), otherwise normalized (`index.docker.io/a/b` shows as
/// `docker.io/a/b`). Parsing the output yields an equal value.
impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = if self.familiar {
            // Like FamiliarString, but a bare 64-hex name would not parse back, so keep it long.
            let short = self.repository.strip_prefix(OFFICIAL_PREFIX);
            match short {
                Some(s) if !s.contains('/') && !is_image_id(s) => s.to_owned(),
                _ => self.repository.clone(),
            }
        } else {
            format!("{}/{}", self.registry, self.repository)
        };
        self.push_suffix(&mut out);
        f.write_str(&out)
    }
}

/// Whether `s` is a digest the product accepts: `sha256:` followed by 64 lowercase hex
/// characters. Other algorithms are valid OCI but rejected so every pinned image is comparable.
pub fn is_valid_digest(s: &str) -> bool {
    check_digest(s).is_ok()
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A bare 64-hex string, which docker reads as an image ID rather than a repository name.
fn is_image_id(s: &str) -> bool {
    s.len() == 64 && is_lower_hex(s)
}

fn is_path_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// `splitDockerDomain` from normalize.go: returns (registry, repository, registry omitted).
fn split_docker_domain(name: &str) -> (String, String, bool) {
    let Some((first, rest)) = name.split_once('/') else {
        return (DOCKER_HUB.into(), format!("{OFFICIAL_PREFIX}{name}"), true);
    };
    let (registry, remote, familiar) = if first == LEGACY_DOCKER_HUB {
        (DOCKER_HUB, rest.to_owned(), false)
    } else if first == "localhost"
        || first.contains(['.', ':'])
        || first.bytes().any(|b| b.is_ascii_uppercase())
    {
        (first, rest.to_owned(), false)
    } else {
        (DOCKER_HUB, name.to_owned(), true)
    };
    let remote = if registry == DOCKER_HUB && !remote.contains('/') {
        format!("{OFFICIAL_PREFIX}{remote}")
    } else {
        remote
    };
    (registry.to_owned(), remote, familiar)
}

fn check_domain(domain: &str) -> Result<(), ReferenceError> {
    let invalid = |reason: String| E::InvalidDomain {
        domain: domain.into(),
        reason,
    };
    let port = if let Some(rest) = domain.strip_prefix('[') {
        let Some((addr, after)) = rest.split_once(']') else {
            return Err(invalid(
                "'[' starts an IPv6 address that is never closed by ']'".into(),
            ));
        };
        let hex_colons = addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
        if addr.is_empty() || !hex_colons || addr.parse::<Ipv6Addr>().is_err() {
            return Err(invalid(format!("{addr:?} is not a valid IPv6 address")));
        }
        match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(port) => Some(port),
                None => return Err(invalid(format!("unexpected {after:?} after ']'"))),
            },
        }
    } else {
        let (host, port) = match domain.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (domain, None),
        };
        check_domain_name(host).map_err(invalid)?;
        port
    };
    match port {
        Some(port) => check_port(port).map_err(|reason| E::InvalidPort {
            domain: domain.into(),
            reason,
        }),
        None => Ok(()),
    }
}

fn check_domain_name(host: &str) -> Result<(), String> {
    for label in host.split('.') {
        if label.is_empty() {
            return Err(
                "empty host name label (check for a leading, trailing or doubled '.')".into(),
            );
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(format!(
                "host name label {label:?} contains {c:?}; only letters, digits and '-' are allowed"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "host name label {label:?} must not start or end with '-'"
            ));
        }
    }
    Ok(())
}

fn check_port(port: &str) -> Result<(), String> {
    if port.is_empty() {
        return Err("port is empty after ':'".into());
    }
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("port {port:?} is not a number"));
    }
    match port.parse::<u32>() {
        Ok(1..=65535) => Ok(()),
        _ => Err(format!("port {port} is outside 1-65535")),
    }
}

fn check_repository(repository: &str) -> Result<(), ReferenceError> {
    if repository.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(E::NotLowercase {
            repository: repository.into(),
        });
    }
    repository
        .split('/')
        .try_for_each(check_path_component)
        .map_err(|reason| E::InvalidRepository {
            repository: repository.into(),
            reason,
        })
}

fn check_path_component(component: &str) -> Result<(), String> {
    let bytes = component.as_bytes();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return Err("empty path component (check for a leading, trailing or doubled '/')".into());
    };
    if let Some(c) = component
        .chars()
        .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '.' | '_' | '-'))
    {
        return Err(format!(
            "{c:?} in {component:?} is not allowed; use lowercase letters, digits, '.', '_' and '-'"
        ));
    }
    if !is_path_alnum(first) || !is_path_alnum(last) {
        return Err(format!(
            "{component:?} must start and end with a lowercase letter or digit"
        ));
    }
    // Every maximal run of non-alphanumerics must be exactly one separator.
    for separator in component.split(|c: char| c.is_ascii_alphanumeric()) {
        let ok = matches!(separator, "" | "." | "_" | "__") || separator.bytes().all(|b| b == b'-');
        if !ok {
            return Err(format!(
                "separator {separator:?} in {component:?} is not allowed; use '.', '_', '__' or \
                 one or more '-'"
            ));
        }
    }
    Ok(())
}

fn check_tag(tag: &str) -> Result<(), ReferenceError> {
    let invalid = |reason: String| {
        Err(E::InvalidTag {
            tag: tag.into(),
            reason,
        })
    };
    match tag.bytes().next() {
        None => return invalid("tag is empty; add a tag after ':' or remove the ':'".into()),
        Some(b) if !is_word(b) => {
            return invalid("must start with a letter, digit or '_'".into());
        }
        Some(_) => {}
    }
    if tag.len() > TAG_MAX {
        return invalid(format!(
            "must be at most {TAG_MAX} characters, got {}",
            tag.len()
        ));
    }
    if let Some(c) = tag
        .chars()
        .find(|&c| !(c.is_ascii() && is_word(c as u8) || c == '.' || c == '-'))
    {
        return invalid(format!(
            "{c:?} is not allowed; use letters, digits, '_', '.' and '-'"
        ));
    }
    Ok(())
}

fn check_digest(digest: &str) -> Result<(), ReferenceError> {
    match digest.split_once(':') {
        Some(("sha256", hex)) if hex.len() == 64 && is_lower_hex(hex) => Ok(()),
        Some((algorithm, _))
            if algorithm != "sha256"
                && !algorithm.is_empty()
                && algorithm
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+._-".contains(&b)) =>
        {
            Err(E::UnsupportedDigestAlgorithm {
                digest: digest.into(),
                algorithm: algorithm.into(),
            })
        }
        _ => Err(E::InvalidDigest {
            digest: digest.into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn sha() -> String {
        format!("sha256:{HEX}")
    }

    /// (input, registry, repository, tag, digest)
    type Accepted<'a> = (&'a str, &'a str, &'a str, Option<&'a str>, Option<&'a str>);

    #[test]
    fn accepts_valid_references() {
        let d = sha();
        let with_digest = format!("registry.example.com/a/b@{d}");
        let tag_and_digest = format!("quay.io/a/b:v1@{d}");
        let short_digest = format!("ubuntu@{d}");
        #[rustfmt::skip]
        let cases: Vec<Accepted> = vec![
            ("ubuntu", "docker.io", "library/ubuntu", None, None),
            ("ubuntu:22.04", "docker.io", "library/ubuntu", Some("22.04"), None),
            ("library/ubuntu", "docker.io", "library/ubuntu", None, None),
            ("docker.io/library/ubuntu:22.04", "docker.io", "library/ubuntu", Some("22.04"), None),
            ("docker.io/ubuntu", "docker.io", "library/ubuntu", None, None),
            ("index.docker.io/foo/bar", "docker.io", "foo/bar", None, None),
            ("quay.io/centos-automotive/autosd:cs9-rpi4", "quay.io", "centos-automotive/autosd", Some("cs9-rpi4"), None),
            ("quay.io/centos-automotive/autosd:cs9-rpi4-v1.0.0", "quay.io", "centos-automotive/autosd", Some("cs9-rpi4-v1.0.0"), None),
            ("localhost/foo", "localhost", "foo", None, None),
            ("localhost:5000/foo/bar:1.0", "localhost:5000", "foo/bar", Some("1.0"), None),
            ("kind-registry:5000/x:y", "kind-registry:5000", "x", Some("y"), None),
            ("127.0.0.1:5000/a/b", "127.0.0.1:5000", "a/b", None, None),
            ("10.0.0.1/a", "10.0.0.1", "a", None, None),
            ("[::1]:5000/a", "[::1]:5000", "a", None, None),
            ("[2001:db8::1]/a:tag", "[2001:db8::1]", "a", Some("tag"), None),
            (&with_digest, "registry.example.com", "a/b", None, Some(&d)),
            (&tag_and_digest, "quay.io", "a/b", Some("v1"), Some(&d)),
            (&short_digest, "docker.io", "library/ubuntu", None, Some(&d)),
            ("a/b__c/d-e/f.g", "docker.io", "a/b__c/d-e/f.g", None, None),
            ("a--b", "docker.io", "library/a--b", None, None),
            ("a---b_c.d", "docker.io", "library/a---b_c.d", None, None),
            ("Foo.example.com/repo", "Foo.example.com", "repo", None, None),
            // normalize.go: an uppercase first component can only be a registry.
            ("UPPER/repo", "UPPER", "repo", None, None),
            // No '/': a Docker Hub short name, so ":5000" is a tag (as in distribution/reference).
            ("localhost:5000", "docker.io", "library/localhost", Some("5000"), None),
            ("quay.io/a:_T.a-g", "quay.io", "a", Some("_T.a-g"), None),
            ("registry-1.docker.io/a", "registry-1.docker.io", "a", None, None),
        ];
        for (input, registry, repository, tag, digest) in cases {
            let r = ImageReference::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.registry(), registry, "{input}");
            assert_eq!(r.repository(), repository, "{input}");
            assert_eq!(r.tag(), tag, "{input}");
            assert_eq!(r.digest(), digest, "{input}");
            assert_eq!(r.is_docker_hub(), registry == "docker.io", "{input}");
            assert_eq!(
                ImageReference::parse(&r.to_string()),
                Ok(r.clone()),
                "{input}"
            );
            assert_eq!(input.parse::<ImageReference>(), Ok(r));
        }
    }

    #[test]
    fn rejects_invalid_references() {
        use std::mem::discriminant;
        let long_tag = format!("quay.io/a:{}", "t".repeat(129));
        let max_tag = format!("quay.io/a:{}", "t".repeat(128));
        assert!(ImageReference::parse(&max_tag).is_ok());
        let long_name = format!("quay.io/{}", "a".repeat(248));
        let max_name = format!("quay.io/{}", "a".repeat(247));
        assert!(ImageReference::parse(&max_name).is_ok());
        let md5 = "quay.io/a@md5:d41d8cd98f00b204e9800998ecf8427e";
        let upper_hex = format!("quay.io/a@sha256:{}", HEX.to_uppercase());
        let no_name = format!("@{}", sha());
        let two_digests = format!("quay.io/a@{}@x", sha());
        let s = String::new;
        let domain = || E::InvalidDomain {
            domain: s(),
            reason: s(),
        };
        let port = || E::InvalidPort {
            domain: s(),
            reason: s(),
        };
        let repo = || E::InvalidRepository {
            repository: s(),
            reason: s(),
        };
        let tag = || E::InvalidTag {
            tag: s(),
            reason: s(),
        };
        let digest = || E::InvalidDigest { digest: s() };
        let chr = || E::InvalidCharacter {
            reference: s(),
            character: ' ',
        };
        let cases: Vec<(&str, ReferenceError)> = vec![
            ("", E::Empty),
            ("quay.io/Upper/repo", E::NotLowercase { repository: s() }),
            ("Upper", E::NotLowercase { repository: s() }),
            ("quay.io/a:b:c", tag()),
            ("quay.io/a@sha256:short", digest()),
            (
                md5,
                E::UnsupportedDigestAlgorithm {
                    digest: s(),
                    algorithm: s(),
                },
            ),
            (&upper_hex, digest()),
            (&two_digests, digest()),
            ("quay.io/-a", repo()),
            ("quay.io/a-", repo()),
            ("quay.io/a..b", repo()),
            ("quay.io/a___b", repo()),
            ("quay.io/a._b", repo()),
            ("quay.io/a/", repo()),
            ("quay.io//a", repo()),
            ("/a", repo()),
            ("quay.io/a/b:t/c", repo()),
            ("quay.io/a$b", repo()),
            ("quay.io:99999/a", port()),
            ("quay.io:0/a", port()),
            ("quay.io:port/a", port()),
            ("quay.io:/a", port()),
            ("[::1]:/a", port()),
            ("[::1/a", domain()),
            ("[::g]/a", domain()),
            ("[1.2.3.4]/a", domain()),
            ("[::1]x/a", domain()),
            ("-bad.io/a", domain()),
            ("quay..io/a", domain()),
            ("qu_ay.io/a", domain()),
            ("quay.io/a:-tag", tag()),
            ("quay.io/a:", tag()),
            ("quay.io/a:t+g", tag()),
            (&long_tag, tag()),
            (
                &long_name,
                E::NameTooLong {
                    name: s(),
                    length: 0,
                },
            ),
            ("quay.io/a b", chr()),
            (" ubuntu", chr()),
            ("ubuntu\n", chr()),
            ("ubüntu", chr()),
            ("a@", digest()),
            (":tag", E::MissingName { reference: s() }),
            (&no_name, E::MissingName { reference: s() }),
            (HEX, E::AmbiguousIdentifier { reference: s() }),
        ];
        for (input, expected) in cases {
            let err = ImageReference::parse(input).expect_err(input);
            assert_eq!(
                discriminant(&err),
                discriminant(&expected),
                "{input}: {err}"
            );
        }
    }

    #[test]
    fn error_messages_name_the_offending_part() {
        let msg = |s: &str| ImageReference::parse(s).unwrap_err().to_string();
        assert_eq!(
            msg("quay.io/Centos-Automotive/autosd"),
            "repository name must be lowercase: \"Centos-Automotive/autosd\""
        );
        assert_eq!(
            msg("quay.io/a@sha256:abc"),
            "invalid digest \"sha256:abc\": expected sha256 followed by 64 lowercase hex characters"
        );
        assert_eq!(msg(""), "reference is empty");
        assert!(msg("quay.io/a:-bad").starts_with("tag \"-bad\" is invalid: "));
        assert!(msg("host:99999/a").starts_with("invalid port in \"host:99999\": "));
        assert!(msg(&format!("q.io/{}", "a".repeat(300))).starts_with("reference exceeds 255"));
        assert!(msg("quay.io/a@md5:00").contains("only sha256"));
        assert!(msg("quay.io/a..b").contains("\"..\""));
    }

    #[test]
    fn display_keeps_the_written_form() {
        let d = sha();
        let cases = [
            ("ubuntu:22.04", "ubuntu:22.04".to_owned()),
            ("library/ubuntu", "ubuntu".to_owned()),
            ("foo/bar", "foo/bar".to_owned()),
            ("quay.io/a/b:t", "quay.io/a/b:t".to_owned()),
            ("docker.io/ubuntu", "docker.io/library/ubuntu".to_owned()),
            ("index.docker.io/foo/bar", "docker.io/foo/bar".to_owned()),
            (&*format!("library/{HEX}"), format!("library/{HEX}")),
            (&*format!("a:t@{d}"), format!("a:t@{d}")),
        ];
        for (input, shown) in cases {
            let r = ImageReference::parse(input).unwrap();
            assert_eq!(r.to_string(), shown);
            assert_eq!(ImageReference::parse(&shown), Ok(r));
        }
        let r = ImageReference::parse("ubuntu:22.04").unwrap();
        assert_eq!(r.canonical(), "docker.io/library/ubuntu:22.04");
    }

    #[test]
    fn digest_helpers() {
        let d = sha();
        assert!(is_valid_digest(&d));
        assert!(!is_valid_digest("sha256:abc"));
        assert!(!is_valid_digest(&format!("sha512:{HEX}{HEX}")));
        assert!(!is_valid_digest(&d.to_uppercase()));
        let r = ImageReference::parse("quay.io/a/b:v1").unwrap();
        let pinned = r.with_digest(&d).unwrap();
        assert_eq!(pinned.tag(), Some("v1"));
        assert_eq!(pinned.digest(), Some(d.as_str()));
        assert_eq!(pinned.to_string(), format!("quay.io/a/b:v1@{d}"));
        assert_eq!(pinned.without_digest(), r);
        assert!(matches!(
            r.with_digest("sha256:x"),
            Err(E::InvalidDigest { .. })
        ));
        let familiar = ImageReference::parse("ubuntu")
            .unwrap()
            .with_digest(&d)
            .unwrap();
        assert_eq!(familiar.to_string(), format!("ubuntu@{d}"));
    }

    #[test]
    fn registry_keys() {
        let hub = ImageReference::parse("ubuntu").unwrap();
        for key in [
            "docker.io",
            "index.docker.io",
            "registry-1.docker.io",
            "https://index.docker.io/v1/",
            "https://registry-1.docker.io",
        ] {
            assert!(hub.matches_registry_key(key), "{key}");
        }
        for key in [
            "quay.io",
            "docker.io.evil.com",
            "evil-docker.io",
            "",
            "https://",
        ] {
            assert!(!hub.matches_registry_key(key), "{key}");
        }
        let quay = ImageReference::parse("quay.io/a/b").unwrap();
        for key in [
            "quay.io",
            "https://quay.io/v1/",
            "http://quay.io",
            "QUAY.IO",
            "quay.io/",
        ] {
            assert!(quay.matches_registry_key(key), "{key}");
        }
        for key in [
            "quay.io.evil.com",
            "evilquay.io",
            "quay.io:443",
            "docker.io",
            "quay",
        ] {
            assert!(!quay.matches_registry_key(key), "{key}");
        }
        let local = ImageReference::parse("localhost:5000/a").unwrap();
        assert!(local.matches_registry_key("localhost:5000"));
        assert!(local.matches_registry_key("http://localhost:5000/v2/"));
        assert!(!local.matches_registry_key("localhost"));
        assert!(!local.matches_registry_key("localhost:50000"));
        let v6 = ImageReference::parse("[::1]:5000/a").unwrap();
        assert!(v6.matches_registry_key("https://[::1]:5000"));
        assert!(!v6.matches_registry_key("[::1]"));
    }

    fn host() -> impl Strategy<Value = String> {
        let label = "[a-zA-Z0-9]([a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?";
        let port = prop_oneof![
            Just(String::new()),
            (1u32..=65535).prop_map(|p| format!(":{p}"))
        ];
        let ipv6 = any::<[u16; 8]>().prop_flat_map(|segs| {
            let full = segs.map(|s| format!("{s:x}")).join(":");
            let short = Ipv6Addr::from(segs).to_string();
            prop_oneof![Just(full), Just(short)].prop_filter("no dots", |a| !a.contains('.'))
        });
        let name = prop_oneof![
            Just("localhost".to_owned()),
            Just("docker.io".to_owned()),
            Just("index.docker.io".to_owned()),
            prop::collection::vec(label, 2..4).prop_map(|l| l.join(".")),
            any::<[u8; 4]>().prop_map(|o| o.map(|b| b.to_string()).join(".")),
            ipv6.prop_map(|a| format!("[{a}]")),
        ];
        let dotless =
            ("[a-z][a-z0-9-]{0,10}[a-z0-9]", 1u32..=65535).prop_map(|(h, p)| format!("{h}:{p}"));
        prop_oneof![(name, port).prop_map(|(n, p)| n + &p), dotless]
    }

    fn path() -> impl Strategy<Value = Vec<String>> {
        let component = "[a-z0-9]{1,6}((\\.|_|__|-{1,3})[a-z0-9]{1,6}){0,3}";
        prop::collection::vec(component, 1..5)
    }

    proptest! {
        #[test]
        fn generated_references_round_trip(
            host in prop::option::of(host()),
            mut path in path(),
            tag in prop::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"),
            digest in prop::option::of("[0-9a-f]{64}".prop_map(|h| format!("sha256:{h}"))),
        ) {
            if host.is_none() && path.len() > 1 {
                // A first component with a '.' would be read as a registry (normalize.go).
                path[0] = path[0].replace('.', "-");
            }
            let mut input = match &host { Some(h) => format!("{h}/"), None => String::new() };
            input.push_str(&path.join("/"));
            if let Some(t) = &tag { input.push(':'); input.push_str(t); }
            if let Some(d) = &digest { input.push('@'); input.push_str(d); }

            let r = ImageReference::parse(&input).map_err(|e| TestCaseError::fail(format!("{input}: {e}")))?;
            let registry = match host.as_deref() {
                None | Some("index.docker.io") => "docker.io",
                Some(h) => h,
            };
            let mut repository = path.join("/");
            if registry == "docker.io" && path.len() == 1 {
                repository = format!("library/{repository}");
            }
            prop_assert_eq!(r.registry(), registry);
            prop_assert_eq!(r.repository(), repository.as_str());
            prop_assert_eq!(r.tag(), tag.as_deref());
            prop_assert_eq!(r.digest(), digest.as_deref());
            prop_assert_eq!(ImageReference::parse(&r.to_string()), Ok(r.clone()));
            let canonical = ImageReference::parse(&r.canonical()).unwrap();
            prop_assert_eq!(canonical.registry(), r.registry());
            prop_assert_eq!(canonical.repository(), r.repository());
            prop_assert_eq!(canonical.tag(), r.tag());
            prop_assert_eq!(canonical.digest(), r.digest());
            prop_assert_eq!(canonical.canonical(), r.canonical());
        }

        #[test]
        fn arbitrary_strings_never_panic(s in any::<String>(), t in "[a-zA-Z0-9:/@.\\[\\]_-]{0,80}") {
            for input in [&s, &t] {
                if let Ok(r) = ImageReference::parse(input) {
                    prop_assert_eq!(ImageReference::parse(&r.to_string()), Ok(r.clone()));
                    prop_assert!(ImageReference::parse(&r.canonical()).is_ok());
                    let _ = r.matches_registry_key(input);
                }
            }
        }
    }
}
