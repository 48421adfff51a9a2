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
//! digest           := "sha256:" 64 lowercase hex | "sha512:" 128 lowercase hex
//!                                  (the algorithms the OCI image specification registers)
//! ```
//!
//! The 255-character limit on `name` is measured as written, before Docker Hub normalization
//! adds `docker.io/library/`: what the user typed is what must fit.

mod digest;
mod grammar;
#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

use digest::check_digest;
pub use digest::{Algorithm, DIGEST_FORMS, DIGEST_MAX, DIGEST_PATTERN, is_valid_digest};
use grammar::{check_domain, check_repository, check_tag, is_image_id, split_docker_domain};

/// Registry that short ("familiar") names such as `ubuntu` resolve to.
const DOCKER_HUB: &str = "docker.io";
/// Legacy spelling of Docker Hub that `normalize.go` rewrites to [`DOCKER_HUB`].
const LEGACY_DOCKER_HUB: &str = "index.docker.io";
/// Namespace of Docker Hub's official images (`ubuntu` is `library/ubuntu`).
const OFFICIAL_PREFIX: &str = "library/";
/// Host names a docker `config.json` may use for Docker Hub credentials.
const DOCKER_HUB_KEYS: [&str; 3] = ["docker.io", "index.docker.io", "registry-1.docker.io"];
/// Limit on the name (`[domain/]remote-name`, as written) from `reference.go`
/// (`NameTotalLengthMax`).
pub const NAME_MAX: usize = 255;
/// Limit on a tag's length from the grammar.
const TAG_MAX: usize = 128;
/// The longest reference the grammar allows: name, `:` tag, `@` digest (the CRD's limit on
/// `spec.registryUrl`).
pub const REFERENCE_MAX: usize = NAME_MAX + 1 + TAG_MAX + 1 + DIGEST_MAX;

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
    /// The name as written (`[domain/]remote-name`) is longer than 255 characters.
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
    /// The digest is not a registered algorithm followed by its number of lowercase hex
    /// characters.
    #[error("invalid digest {digest:?}: expected {DIGEST_FORMS}")]
    InvalidDigest { digest: String },
    /// The digest uses an algorithm the grammar allows but the OCI image specification does
    /// not register.
    #[error(
        "unsupported digest algorithm {algorithm:?} in {digest:?}: only the algorithms the OCI \
         image specification registers are accepted (sha256, sha512)"
    )]
    UnsupportedDigestAlgorithm { digest: String, algorithm: String },
}

use ReferenceError as E;

impl ImageReference {
    /// Parses and normalizes `input`, the way `ParseNormalizedNamed` of distribution/reference
    /// does, plus the product's registered-digest and port-range rules; the name's length is
    /// measured as written.
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
        if name.len() > NAME_MAX {
            return Err(E::NameTooLong {
                name: name.into(),
                length: name.len(),
            });
        }
        let (registry, repository, familiar) = split_docker_domain(name);
        if !familiar {
            check_domain(&registry)?;
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

    /// The digest (`sha256:<64 hex>` or `sha512:<128 hex>`), if the reference is pinned to one.
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
