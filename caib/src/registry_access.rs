//! How caib reaches a registry from this machine, the way docker and podman do: which
//! registries speak plain HTTP and which login to use. Shared by `add`/`publish`/`promote`
//! (digest resolution) and `verify --local`, so both see the same registries the same way.

use std::collections::BTreeMap;
use std::path::PathBuf;

use catalog_api::ImageReference;
use catalog_api::registry::{Credentials, DOCKER_CONFIG_JSON_TYPE};

/// Registries reached over plain HTTP: loopback ones (as docker does) and those listed in
/// `CAIB_INSECURE_REGISTRIES` (comma-separated `host:port`). Everything else is HTTPS.
pub fn insecure_registries(reference: &ImageReference) -> Vec<String> {
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

/// Docker/podman auth files, in the order the tools themselves use them:
/// `REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json`, `$DOCKER_CONFIG/config.json`,
/// `~/.docker/config.json`.
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
/// else anonymous. Unreadable or unrelated files are skipped, as docker and podman skip them.
pub fn credentials(reference: &ImageReference) -> Credentials {
    for file in auth_files() {
        let Ok(bytes) = std::fs::read(&file) else {
            continue;
        };
        let data = BTreeMap::from([(".dockerconfigjson".to_owned(), bytes)]);
        if let Ok(creds) =
            Credentials::from_secret_data(Some(DOCKER_CONFIG_JSON_TYPE), &data, None, reference)
            && creds != Credentials::Anonymous
        {
            return creds;
        }
    }
    Credentials::Anonymous
}
