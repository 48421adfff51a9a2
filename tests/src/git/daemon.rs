//! `git-daemon` for `git://` remotes.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};

use super::{BareRepo, exec_path, free_port, wait_for_port};

/// `git-daemon` serving every repository under a base path over `git://`, killed on drop.
pub struct GitDaemon {
    base: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl GitDaemon {
    /// Starts git-daemon on a free port, exporting every repository under `base_path`
    /// (use [`BareRepo::base_path`]); returns once it accepts connections.
    pub fn start_for(base_path: &Path) -> anyhow::Result<GitDaemon> {
        let mut daemon = GitDaemon {
            base: base_path.to_path_buf(),
            port: free_port(),
            child: None,
        };
        daemon.start()?;
        Ok(daemon)
    }

    /// `git://127.0.0.1:PORT/<name>.git`.
    pub fn url(&self, repo: &BareRepo) -> String {
        format!("git://127.0.0.1:{}/{}.git", self.port, repo.name())
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Makes the remote unreachable (connection refused) by killing the daemon.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// (Re)starts the daemon on the same port; returns once it accepts connections.
    pub fn start(&mut self) -> anyhow::Result<()> {
        self.stop();
        let daemon = exec_path().join("git-daemon");
        if !daemon.is_file() {
            bail!(
                "{} not found: install git (`apt-get install -y git`)",
                daemon.display()
            );
        }
        let child = Command::new(daemon)
            .arg("--reuseaddr")
            .arg("--export-all")
            .arg("--listen=127.0.0.1")
            .arg(format!("--port={}", self.port))
            .arg(format!("--base-path={}", self.base.display()))
            .arg(&self.base)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start git-daemon")?;
        self.child = Some(child);
        wait_for_port(self.port, Duration::from_secs(10))
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        self.stop();
    }
}
