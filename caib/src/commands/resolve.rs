//! Resolving an image's digest from this machine, with the project's one registry library:
//! `add` checks an image exists before committing it, `--pin`, `publish` and `promote` record
//! the digest so that what was reviewed is exactly what gets deployed.

use catalog_api::ImageReference;
use catalog_api::registry::{RegistryClient, RegistryError, RegistryOptions};

use crate::cli::Global;
use crate::error::{CaibError, Result};
use crate::registry_access::{credentials, insecure_registries};

/// Maps a registry failure to the exit codes: not found 4, refused 3, else 1.
pub fn map_registry_error(e: RegistryError) -> CaibError {
    match e {
        RegistryError::NotFound { .. } => CaibError::NotFound(e.to_string()),
        RegistryError::Unauthorized { .. } => CaibError::Auth(format!(
            "{e} (log in with `podman login` or `docker login`, or pass --no-verify)"
        )),
        other => CaibError::Other(anyhow::anyhow!("{other}")),
    }
}

/// The manifest digest `reference` resolves to now.
pub fn resolve_digest(reference: &ImageReference, global: &Global) -> Result<String> {
    let client = client_for(reference, global)?;
    let creds = credentials(reference);
    super::block_on(client.resolve(reference, &creds)).map_err(map_registry_error)
}

/// Whether `digest` (as the registry resolved it) and the user's `pin` name the same manifest,
/// also when they are of different algorithms (a sha512 pin, a registry's sha256).
pub fn names_same_manifest(
    reference: &ImageReference,
    digest: &str,
    pin: &str,
    global: &Global,
) -> Result<bool> {
    if digest == pin {
        return Ok(true);
    }
    let client = client_for(reference, global)?;
    let creds = credentials(reference);
    super::block_on(client.names_same_manifest(reference, digest, pin, &creds))
        .map_err(map_registry_error)
}

/// Checks that the manifest `pin` names exists for `reference` (`--digest` without `--pin`):
/// asked for by that digest, or, when the registry does not know it by that digest (one that
/// stores manifests by sha256 only, asked for a sha512), as the manifest the tag resolves to.
pub fn check_pinned(reference: &ImageReference, pin: &str, global: &Global) -> Result<()> {
    let exact = reference
        .with_digest(pin)
        .map_err(|e| CaibError::Usage(format!("--digest {pin}: {e}")))?;
    match resolve_digest(&exact, global) {
        Err(CaibError::NotFound(why)) if reference.tag().is_some() => {
            let tagged = reference.without_digest();
            let digest = resolve_digest(&tagged, global)?;
            if names_same_manifest(&tagged, &digest, pin, global)? {
                Ok(())
            } else {
                Err(CaibError::NotFound(why))
            }
        }
        other => other.map(|_| ()),
    }
}

fn client_for(reference: &ImageReference, global: &Global) -> Result<RegistryClient> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut options = RegistryOptions {
        insecure_registries: insecure_registries(reference),
        ..Default::default()
    };
    if let Some(timeout) = global.timeout {
        options.timeout = timeout;
    }
    RegistryClient::new(options).map_err(map_registry_error)
}
