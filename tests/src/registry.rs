//! Debian's docker-registry (CNCF distribution 2.8) started per test, and image fixtures
//! pushed to it.
//!
//! ```no_run
//! # async fn demo() {
//! use catalog_e2e::registry::{ImageFixture, Registry, RegistryConfig};
//! let registry = Registry::start(RegistryConfig::default()).await;
//! let image = registry.push_image("os/autosd:v1", &ImageFixture::new("arm64")).await;
//! // `registry.host()` is `127.0.0.1:<port>`; the reference is `{host}/os/autosd:v1`.
//! registry.delete_manifest("os/autosd", &image.digest).await;
//! # }
//! ```
//!
//! Plain-HTTP registries need `--insecure-registry {host}` on the reconciler; TLS registries
//! (`RegistryConfig::tls`) are signed by a private CA whose PEM is at [`Registry::ca_path`].
//! [`CountingProxy`] sits in front of a registry to count and time requests and to inject
//! failures; [`HostileRegistry`] is a fake registry that misbehaves on purpose (huge index,
//! trickled or no answer, a token realm on another host); [`TokenServer`] is the token realm
//! of a registry with `auth: token`.

mod fixture;
mod hostile;
mod proxy;
mod tls;
mod token;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub use fixture::{ImageFixture, MediaTypes, PushedImage, PushedIndex};
pub use hostile::{HostileRegistry, Seen as HostileRequest};
pub use proxy::{CountingProxy, ProxiedRequest};
pub use token::TokenServer;

use crate::process::require_tool;

/// How to start a registry.
#[derive(Clone, Debug, Default)]
pub struct RegistryConfig {
    /// Require HTTP Basic authentication with this username and password (htpasswd, bcrypt).
    pub htpasswd: Option<(String, String)>,
    /// Serve HTTPS with a certificate signed by a freshly generated private CA.
    pub tls: bool,
    /// Require bearer tokens from this realm (`auth: token`), signed by the key whose
    /// certificate is this PEM bundle: see [`TokenServer`].
    pub token: Option<(String, PathBuf)>,
}

impl RegistryConfig {
    /// A registry that requires `username`/`password`.
    pub fn with_auth(username: &str, password: &str) -> Self {
        RegistryConfig {
            htpasswd: Some((username.into(), password.into())),
            ..Default::default()
        }
    }

    /// A registry that requires tokens from `server` (`auth: token`).
    pub fn with_token(server: &TokenServer) -> Self {
        RegistryConfig {
            token: Some((server.realm(), server.root_cert_bundle())),
            ..Default::default()
        }
    }

    /// An HTTPS registry with a private CA.
    pub fn with_tls() -> Self {
        RegistryConfig {
            tls: true,
            ..Default::default()
        }
    }
}

/// A running docker-registry with its storage in a temporary directory. Killed on drop.
pub struct Registry {
    dir: tempfile::TempDir,
    config: RegistryConfig,
    port: u16,
    child: Option<Child>,
}

impl Registry {
    /// Starts a registry on 127.0.0.1 on a free port.
    ///
    /// Panics with an install hint when docker-registry (or htpasswd / openssl when asked
    /// for auth / TLS) is missing.
    pub async fn start(config: RegistryConfig) -> Registry {
        require_tool("docker-registry", "docker-registry");
        let dir = tempfile::tempdir().expect("temp dir for the registry");
        if let Some((user, password)) = &config.htpasswd {
            let htpasswd = require_tool("htpasswd", "apache2-utils");
            let out = std::process::Command::new(htpasswd)
                .args(["-Bbn", user, password])
                .output()
                .expect("run htpasswd");
            assert!(out.status.success(), "htpasswd failed: {out:?}");
            std::fs::write(dir.path().join("htpasswd"), out.stdout).unwrap();
        }
        if config.tls {
            tls::generate(dir.path());
        }
        let mut registry = Registry {
            dir,
            config,
            port: 0,
            child: None,
        };
        registry.spawn().await;
        registry
    }

    /// `127.0.0.1:<port>`, the registry part of image references.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://host` or `https://host`.
    pub fn url(&self) -> String {
        let scheme = if self.config.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.host())
    }

    /// The private CA's PEM file of a TLS registry.
    pub fn ca_path(&self) -> Option<PathBuf> {
        self.config.tls.then(|| self.dir.path().join("ca.crt"))
    }

    /// The credentials of an htpasswd registry.
    pub fn credentials(&self) -> Option<(String, String)> {
        self.config.htpasswd.clone()
    }

    pub fn is_tls(&self) -> bool {
        self.config.tls
    }

    /// Stops the registry (SIGKILL: as abrupt as a crash). Storage is kept.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Starts the registry again on the same port with the same storage.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.spawn().await;
    }

    async fn spawn(&mut self) {
        let config_path = self.write_config();
        let mut last_error = String::new();
        // Re-binding a just-released port can fail briefly; retry a few times.
        for _ in 0..50 {
            let mut child = Command::new("docker-registry")
                .arg("serve")
                .arg(&config_path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .expect("spawn docker-registry");
            let stderr = child.stderr.take().unwrap();
            let mut lines = BufReader::new(stderr).lines();
            let found = tokio::time::timeout(Duration::from_secs(20), async {
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(port) = listening_port(&line) {
                        return Ok(port);
                    }
                    if line.contains("level=fatal") || line.contains("level=panic") {
                        return Err(line);
                    }
                }
                Err("docker-registry exited before listening".to_string())
            })
            .await
            .unwrap_or_else(|_| Err("no `listening on` line within 20s".into()));
            match found {
                Ok(port) => {
                    // Keep draining the log so the registry never blocks on a full pipe.
                    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
                    self.port = port;
                    self.child = Some(child);
                    return;
                }
                Err(e) => {
                    last_error = e;
                    let _ = child.kill().await;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        panic!("docker-registry did not start: {last_error}");
    }

    fn write_config(&self) -> PathBuf {
        let dir = self.dir.path();
        let mut yaml = format!(
            "version: 0.1\nlog:\n  level: info\n  formatter: text\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  addr: 127.0.0.1:{}\n  secret: catalog-e2e\n",
            dir.join("data").display(),
            self.port
        );
        if self.config.tls {
            yaml.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                dir.join("leaf.crt").display(),
                dir.join("leaf.key").display()
            ));
        }
        if self.config.htpasswd.is_some() {
            yaml.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: catalog-e2e\n    path: {}\n",
                dir.join("htpasswd").display()
            ));
        }
        if let Some((realm, bundle)) = &self.config.token {
            yaml.push_str(&format!(
                "auth:\n  token:\n    realm: {realm}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                token::SERVICE,
                token::ISSUER,
                bundle.display()
            ));
        }
        let path = dir.join("config.yml");
        std::fs::write(&path, yaml).unwrap();
        path
    }

    /// Path of the registry's working directory (storage, certificates, config).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// The port of `msg="listening on 127.0.0.1:PORT"` (TLS adds `, tls`).
fn listening_port(line: &str) -> Option<u16> {
    let rest = &line[line.find("listening on ")? + "listening on ".len()..];
    let addr: String = rest
        .chars()
        .take_while(|c| !matches!(c, '"' | ',' | ' '))
        .collect();
    addr.rsplit(':').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_listening_lines() {
        assert_eq!(
            super::listening_port(
                r#"time="x" level=info msg="listening on 127.0.0.1:36039" go.version=go1.19.8"#
            ),
            Some(36039)
        );
        assert_eq!(
            super::listening_port(r#"level=info msg="listening on 127.0.0.1:443, tls" x=y"#),
            Some(443)
        );
    }
}
