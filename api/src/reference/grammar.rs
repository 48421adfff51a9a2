//! The name and tag grammar of `distribution/reference` (`regexp.go`) and the Docker Hub
//! normalization of `normalize.go`: one check per part of a reference, each error naming the part.

use std::net::Ipv6Addr;

use super::{DOCKER_HUB, LEGACY_DOCKER_HUB, OFFICIAL_PREFIX, ReferenceError, TAG_MAX};

use ReferenceError as E;

pub(super) fn is_lower_hex(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A bare 64-hex string, which docker reads as an image ID rather than a repository name.
pub(super) fn is_image_id(s: &str) -> bool {
    s.len() == 64 && is_lower_hex(s)
}

fn is_path_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// `splitDockerDomain` from normalize.go: returns (registry, repository, registry omitted).
pub(super) fn split_docker_domain(name: &str) -> (String, String, bool) {
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

pub(super) fn check_domain(domain: &str) -> Result<(), ReferenceError> {
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

pub(super) fn check_repository(repository: &str) -> Result<(), ReferenceError> {
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

pub(super) fn check_tag(tag: &str) -> Result<(), ReferenceError> {
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
