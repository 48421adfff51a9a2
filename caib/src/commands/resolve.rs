//! Resolving an image's digest from this machine, with the project's one registry library:
//! `add` checks an image exists before committing it, `--pin`, `publish` and `promote` record
//! the digest so that what was reviewed is exactly what gets deployed.

use std::collections::BTreeMap;
use std::path::PathBuf;

use catalog_api::ImageReference;
use catalog_api::registry::{
    Credentials, DOCKER_CONFIG_JSON_TYPE, RegistryClient, RegistryError, RegistryOptions,
};

use crate::cli::Global;
use crate::error::{CaibError, Result};

/// Registries reached over plain HTTP: loopback ones (as docker does) and those listed in
/// `CAIB_INSECURE_REGISTRIES` (comma-separated `host:port`).
fn insecure_registries(reference: &ImageReference) -> Vec<String> {
    let mut list: Vec<String> = std::env::var("CAIB_INSECURE_REGISTRIES")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let host = reference.registry();
    let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
    if matches!(name, "localhost" | "127.0.0.1" | "[::1]") {
        list.push(host.to_owned());
    }
    list
}

/// Docker/podman auth files, in the order the tools themselves use them.
fn auth_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Some(f) = std::env::var_os("REGISTRY_AUTH_FILE") {
        files.push(PathBuf::from(f));
    }
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR") {
        files.push(PathBuf::from(dir).join("containers/auth.json"));
    }
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        files.push(PathBuf::from(dir).join("config.json"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        files.push(PathBuf::from(home).join(".docker/config.json"));
    }
    files
}

/// Credentials for `reference` from the first auth file that has an entry for its registry,
/// else anonymous.
fn credentials(reference: &ImageReference) -> Credentials {
    for file in auth_files() {
        let Ok(bytes) = std::fs::read(&file) else {
            continue;
        };
        let data = BTreeMap::from([(".dockerconfigjson".to_owned(), bytes)]);
        if let Ok(creds) =
            Credentials::from_secret_data(Some(DOCKER_CONFIG_JSON_TYPE), &data, reference)
            && creds != Credentials::Anonymous
        {
            return creds;
        }
    }
    Credentials::Anonymous
}

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
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut options = RegistryOptions {
        insecure_registries: insecure_registries(reference),
        ..Default::default()
    };
    if let Some(timeout) = global.timeout {
        options.timeout = timeout;
    }
    let client = RegistryClient::new(options).map_err(map_registry_error)?;
    let creds = credentials(reference);
    super::block_on(client.resolve(reference, &creds)).map_err(map_registry_error)
}
