//! One verification against the registry: resolve, check the pin, read the facts only when
//! the digest changed, check the architecture. Produces an [`Outcome`]; writes nothing.

use catalog_api::image::RegistryMetadata;
use catalog_api::labels::normalize_architecture;
use std::time::Duration;

use catalog_api::registry::{
    Credentials, CredentialsError, RegistryClient, RegistryError, with_deadline,
};
use catalog_api::{CatalogImageSpec, ImageReference};
use k8s_openapi::api::core::v1::Secret;

use super::guard::{Guards, Pass, Refused};
use super::plan::{Trigger, needs_inspection};
use super::status::{Failure, Outcome, TagMoved, reason};

/// The Secret named by `authSecretRef` (always in the image's namespace), as read for one
/// verification.
pub enum SecretLookup {
    /// No `authSecretRef`: anonymous.
    NotReferenced,
    /// Referenced (`namespace/name`) but absent.
    Missing(String),
    /// Referenced, but the API server did not answer the read (`namespace/name`, why).
    Unreadable(String, String),
    Found(String, Box<Secret>),
    /// Credentials given directly, not from a Secret: `caib catalog verify --local` uses the
    /// user's podman/docker auth files.
    Given(Credentials),
}

fn failure(reason: &'static str, message: String, transient: bool) -> Outcome {
    Outcome::Failed(failed(reason, message, transient))
}

fn failed(reason: &'static str, message: String, transient: bool) -> Failure {
    Failure {
        reason,
        message,
        transient,
        retry_after: None,
    }
}

/// What the host guard said before the verification took a worker (see `guard`).
pub enum Admission {
    /// A permit on the image's registry host, reported to its breaker at the end.
    Pass(Pass),
    /// The host's breaker is open for this long.
    Open(Duration),
    /// `spec.registryUrl` does not parse, so it names no host.
    NoHost,
}

impl Admission {
    /// How long the host's breaker stays open, when it refused.
    pub fn open_for(&self) -> Option<Duration> {
        match self {
            Admission::Open(wait) => Some(*wait),
            _ => None,
        }
    }
}

/// Asks the guard of the image's registry host (`None`: `spec.registryUrl` does not parse)
/// for a pass without waiting; `None` when the host is saturated (the caller requeues
/// shortly instead of holding a worker).
pub fn admit_host(guards: &Guards, host: Option<&str>) -> Option<Admission> {
    let Some(host) = host else {
        return Some(Admission::NoHost);
    };
    match guards.try_enter(host) {
        Ok(pass) => Some(Admission::Pass(pass)),
        Err(Refused::Open(wait)) => Some(Admission::Open(wait)),
        Err(Refused::Busy) => None,
    }
}

/// How a verification may use the registry.
pub struct Access<'a> {
    pub client: &'a RegistryClient,
    pub admission: Admission,
    /// Deadline of all the registry requests together (`--verify-timeout`).
    pub deadline: Duration,
}

/// What the deadline error calls a verification.
const VERIFICATION: &str = "the verification (--verify-timeout)";

/// Verifies `spec` against its registry.
pub async fn check(
    access: Access<'_>,
    spec: &CatalogImageSpec,
    secret: &SecretLookup,
    previous: Option<&RegistryMetadata>,
    trigger: Trigger,
) -> Outcome {
    let reference = match ImageReference::parse(&spec.registry_url) {
        Ok(r) => r,
        Err(e) => {
            return failure(
                reason::INVALID_REFERENCE,
                format!("spec.registryUrl: {e}"),
                false,
            );
        }
    };
    let pin = match (spec.digest.as_deref(), reference.digest()) {
        (Some(a), Some(b)) if a != b => {
            return failure(
                reason::INVALID_REFERENCE,
                format!(
                    "spec.digest {a} differs from the digest {b} in spec.registryUrl; keep one"
                ),
                false,
            );
        }
        (a, b) => a.or(b).map(str::to_string),
    };
    let (credentials, secret_name) = match credentials(secret, &reference) {
        Ok(found) => found,
        Err(refused) => return Outcome::Failed(refused),
    };
    let pass = match access.admission {
        Admission::Pass(pass) => pass,
        Admission::NoHost => {
            return failure(
                reason::INVALID_REFERENCE,
                "spec.registryUrl names no registry host".into(),
                false,
            );
        }
        Admission::Open(wait) => {
            return Outcome::Failed(Failure {
                reason: reason::CIRCUIT_OPEN,
                message: format!(
                    "registry {} failed repeatedly; requests are paused for {}s (circuit breaker open)",
                    reference.registry(),
                    wait.as_secs().max(1)
                ),
                transient: true,
                retry_after: Some(wait),
            });
        }
    };
    let work = resolve_and_inspect(
        access.client,
        &reference,
        pin.as_deref(),
        &credentials,
        spec,
        previous,
        trigger,
    );
    let registry = reference.registry();
    let result = with_deadline(registry, VERIFICATION, access.deadline, async {
        Ok(work.await)
    })
    .await
    .unwrap_or_else(|e| Err((None, e)));
    pass.record(matches!(&result, Err((_, e)) if e.is_transient()));
    match result {
        Ok((metadata, tag_moved)) => match architecture_mismatch(spec, &metadata) {
            Some(message) => Outcome::Mismatch {
                metadata,
                reason: reason::ARCHITECTURE_MISMATCH,
                message,
            },
            None => Outcome::Verified {
                metadata,
                tag_moved,
            },
        },
        Err((pinned_missing, error)) => {
            Outcome::Failed(from_registry_error(&error, pinned_missing, secret_name))
        }
    }
}

/// The credentials `secret` yields for `reference` and the Secret's name, or the failed
/// failure that says what is wrong with it.
fn credentials<'s>(
    secret: &'s SecretLookup,
    reference: &ImageReference,
) -> Result<(Credentials, Option<&'s str>), Failure> {
    match secret {
        SecretLookup::NotReferenced => Ok((Credentials::Anonymous, None)),
        SecretLookup::Given(credentials) => Ok((credentials.clone(), None)),
        SecretLookup::Missing(name) => Err(failed(
            reason::SECRET_NOT_FOUND,
            format!(
                "secret {name} named in spec.authSecretRef does not exist; create it (kubectl create secret docker-registry {} --docker-server={})",
                name.rsplit('/').next().unwrap_or(name),
                reference.registry()
            ),
            false,
        )),
        SecretLookup::Unreadable(name, why) => Err(failed(
            reason::SECRET_UNREADABLE,
            format!("secret {name} could not be read: {why}"),
            true,
        )),
        SecretLookup::Found(name, secret) => match Credentials::from_secret(secret, reference) {
            Ok(c) => Ok((c, Some(name.as_str()))),
            Err(e @ CredentialsError::NotBound { .. }) => {
                let (namespace, short) = name.split_once('/').unwrap_or(("", name));
                let message = format!(
                    "secret {name}: {e}; if it is meant for this registry: kubectl annotate secret {short} -n {namespace} {}={}",
                    catalog_api::labels::REGISTRY_HOSTS,
                    reference.registry()
                );
                Err(failed(reason::SECRET_NOT_BOUND, message, false))
            }
            Err(e) => Err(failed(
                reason::INVALID_SECRET,
                format!("secret {name}: {e}"),
                false,
            )),
        },
    }
}

type Found = (RegistryMetadata, Option<TagMoved>);

/// `Err((pinned_digest_missing, error))`.
async fn resolve_and_inspect(
    client: &RegistryClient,
    reference: &ImageReference,
    pin: Option<&str>,
    credentials: &Credentials,
    spec: &CatalogImageSpec,
    previous: Option<&RegistryMetadata>,
    trigger: Trigger,
) -> Result<Found, (Option<String>, RegistryError)> {
    let plain = |e| (None, e);
    let (digest, tag_moved) = match (reference.tag(), pin) {
        (Some(tag), Some(pin)) => {
            let tag_digest = client
                .resolve(&reference.without_digest(), credentials)
                .await
                .map_err(plain)?;
            // A sha512 pin still names the manifest the registry resolves to by sha256: the
            // tag has not moved, and the manifest is read by the digest the registry knows.
            let same = client
                .names_same_manifest(reference, &tag_digest, pin, credentials)
                .await
                .map_err(plain)?;
            if same {
                (tag_digest, None)
            } else {
                let pinned = reference
                    .with_digest(pin)
                    .map_err(|e| plain(RegistryError::Config(e.to_string())))?;
                client
                    .resolve(&pinned, credentials)
                    .await
                    .map_err(|e| (Some(format!("{pin} (tag {tag} points to {tag_digest})")), e))?;
                let moved = TagMoved {
                    tag: tag.to_string(),
                    tag_digest,
                    pinned: pin.to_string(),
                };
                (pin.to_string(), Some(moved))
            }
        }
        (_, Some(pin)) => {
            let pinned = reference
                .with_digest(pin)
                .map_err(|e| plain(RegistryError::Config(e.to_string())))?;
            let digest = client
                .resolve(&pinned, credentials)
                .await
                .map_err(|e| (Some(pin.to_string()), e))?;
            (digest, None)
        }
        (_, None) => (
            client
                .resolve(reference, credentials)
                .await
                .map_err(plain)?,
            None,
        ),
    };
    let previous_digest = previous.and_then(|m| m.resolved_digest.as_deref());
    let metadata = match previous {
        Some(previous) if !needs_inspection(previous_digest, &digest, trigger) => previous.clone(),
        _ => {
            let pinned = reference
                .with_digest(&digest)
                .map_err(|e| plain(RegistryError::Config(e.to_string())))?;
            client
                .inspect(&pinned, credentials, spec.metadata.architecture.as_deref())
                .await
                .map_err(plain)?
                .metadata()
        }
    };
    Ok((metadata, tag_moved))
}

fn from_registry_error(
    error: &RegistryError,
    pinned_missing: Option<String>,
    secret: Option<&str>,
) -> Failure {
    let (reason, transient, message) = match error {
        RegistryError::NotFound { .. } => match &pinned_missing {
            Some(pin) => (
                reason::DIGEST_NOT_FOUND,
                true,
                format!("pinned digest {pin} does not exist in the registry: {error}"),
            ),
            None => (reason::MANIFEST_NOT_FOUND, true, error.to_string()),
        },
        RegistryError::Unauthorized { .. } => (
            reason::AUTHENTICATION_FAILED,
            false,
            match secret {
                Some(name) => format!("{error}; check the credentials in secret {name}"),
                None => format!(
                    "{error}; set spec.authSecretRef to a secret with credentials for this registry"
                ),
            },
        ),
        RegistryError::Transient { .. } => (reason::REGISTRY_UNAVAILABLE, true, error.to_string()),
        RegistryError::Invalid { .. } | RegistryError::Config(_) => {
            (reason::INVALID_MANIFEST, false, error.to_string())
        }
    };
    Failure {
        reason,
        message,
        transient,
        retry_after: error.retry_after(),
    }
}

/// A message when the declared architecture is not what the image provides. Flashing the
/// wrong architecture bricks boards, so this fails the image.
pub fn architecture_mismatch(
    spec: &CatalogImageSpec,
    metadata: &RegistryMetadata,
) -> Option<String> {
    let declared = spec.metadata.architecture.as_deref()?;
    let want = normalize_architecture(declared);
    if metadata.is_multi_arch == Some(true) {
        let provided: Vec<&str> = metadata
            .platform_variants
            .iter()
            .map(|p| p.architecture.as_str())
            .collect();
        if provided.iter().any(|a| normalize_architecture(a) == want) {
            return None;
        }
        return Some(format!(
            "spec.metadata.architecture is {declared} but the image index provides only {}",
            provided.join(", ")
        ));
    }
    let actual = metadata
        .platform
        .as_ref()
        .map(|p| p.architecture.as_str())?;
    (normalize_architecture(actual) != want).then(|| {
        format!("spec.metadata.architecture is {declared} but the image config says {actual}; fix the entry or push the right image")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use catalog_api::image::{Platform, PlatformVariant};

    fn spec(arch: Option<&str>) -> CatalogImageSpec {
        let mut s = CatalogImageSpec::default();
        s.metadata.architecture = arch.map(str::to_string);
        s
    }

    #[test]
    fn single_arch_mismatch_uses_normalized_names() {
        let meta = RegistryMetadata {
            platform: Some(Platform {
                architecture: "amd64".into(),
                os: "linux".into(),
                variant: None,
            }),
            is_multi_arch: Some(false),
            ..Default::default()
        };
        assert_eq!(architecture_mismatch(&spec(Some("x86_64")), &meta), None);
        assert_eq!(architecture_mismatch(&spec(None), &meta), None);
        let msg = architecture_mismatch(&spec(Some("arm64")), &meta).unwrap();
        assert!(msg.contains("arm64") && msg.contains("amd64"), "{msg}");
    }

    #[test]
    fn index_must_provide_the_declared_architecture() {
        let variant = |a: &str| PlatformVariant {
            architecture: a.into(),
            os: "linux".into(),
            digest: "sha256:x".into(),
            ..Default::default()
        };
        let meta = RegistryMetadata {
            is_multi_arch: Some(true),
            platform_variants: vec![variant("amd64"), variant("arm64")],
            ..Default::default()
        };
        assert_eq!(architecture_mismatch(&spec(Some("aarch64")), &meta), None);
        let msg = architecture_mismatch(&spec(Some("s390x")), &meta).unwrap();
        assert!(msg.contains("amd64, arm64"), "{msg}");
    }

    #[test]
    fn errors_map_to_reasons() {
        let nf = RegistryError::NotFound {
            registry: "r".into(),
            what: "manifest r/a:1".into(),
            detail: String::new(),
        };
        let f = from_registry_error(&nf, None, None);
        assert_eq!((f.reason, f.transient), (reason::MANIFEST_NOT_FOUND, true));
        let f = from_registry_error(&nf, Some("sha256:p".into()), None);
        assert_eq!(f.reason, reason::DIGEST_NOT_FOUND);
        let unauthorized = RegistryError::Unauthorized {
            registry: "r".into(),
            what: "manifest r/a:1".into(),
            status: 401,
            detail: String::new(),
        };
        let f = from_registry_error(&unauthorized, None, Some("ns/creds"));
        assert_eq!(
            (f.reason, f.transient),
            (reason::AUTHENTICATION_FAILED, false)
        );
        assert!(f.message.contains("secret ns/creds"));
        let t = RegistryError::Transient {
            registry: "r".into(),
            detail: "x".into(),
            retry_after: Some(std::time::Duration::from_secs(9)),
        };
        let f = from_registry_error(&t, None, None);
        assert_eq!(f.retry_after, Some(std::time::Duration::from_secs(9)));
    }
}
