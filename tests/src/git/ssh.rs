//! A real OpenSSH server for `ssh://` remotes.
//!
//! The reconciler fetches over SSH with libgit2/libssh2; the only honest test of the identity,
//! the known_hosts check and the error messages is a real `sshd` (package openssh-server)
//! running `git-upload-pack` for a real bare repository. Each [`SshServer`] is private to
//! one test: its own config, host key, client key and authorized_keys in a temp dir, bound
//! to 127.0.0.1 on a free port, logging in as the user running the tests.

use std::io::Read as _;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tempfile::TempDir;

use super::{BareRepo, free_port, generate_ssh_key};
use crate::process::is_root;

/// How long sshd gets to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Ports tried before giving up (another process may take a free port before sshd binds it).
const PORT_ATTEMPTS: usize = 5;

/// `sshd -D -e` with a generated host key, accepting one generated client key for the
/// current user; killed on drop.
pub struct SshServer {
    dir: TempDir,
    port: u16,
    user: String,
    host_public_key: String,
    client_key: PathBuf,
    child: Child,
}

impl SshServer {
    /// Generates the host and client keys and starts sshd on a free port of 127.0.0.1;
    /// returns once it answers with its SSH banner. Panics with an install hint when
    /// `/usr/sbin/sshd` is missing.
    pub fn start() -> anyhow::Result<SshServer> {
        let sshd = crate::process::require_tool("sshd", "openssh-server");
        let dir = tempfile::Builder::new().prefix("sshd-").tempdir()?;
        let (host_key, host_public_key) = generate_ssh_key(dir.path(), "host_ed25519")?;
        let (client_key, client_public_key) = generate_ssh_key(dir.path(), "client_ed25519")?;
        let authorized_keys = dir.path().join("authorized_keys");
        std::fs::write(&authorized_keys, format!("{client_public_key}\n"))?;
        let user = current_user()?;
        // As root, sshd insists on its privilege separation directory (normally made by the
        // service unit, which containers do not run).
        if is_root() && !Path::new("/run/sshd").is_dir() {
            std::fs::create_dir_all("/run/sshd").context("cannot create /run/sshd for sshd")?;
        }
        let log = dir.path().join("sshd.log");
        let mut last_error = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            let config = dir.path().join("sshd_config");
            std::fs::write(
                &config,
                sshd_config(port, &host_key, &authorized_keys, &user),
            )?;
            let mut child = Command::new(&sshd)
                .arg("-D")
                .arg("-e")
                .arg("-f")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log)?)
                .spawn()
                .with_context(|| format!("cannot start {}", sshd.display()))?;
            match wait_ready(&mut child, port, &log) {
                Ok(()) => {
                    return Ok(SshServer {
                        dir,
                        port,
                        user,
                        host_public_key,
                        client_key,
                        child,
                    });
                }
                Err(e) => {
                    last_error = format!("{e:#}");
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
        }
        bail!("sshd did not start after {PORT_ATTEMPTS} attempts: {last_error}")
    }

    /// `ssh://USER@127.0.0.1:PORT/<absolute path of the bare repository>`.
    pub fn url(&self, repo: &BareRepo) -> String {
        format!(
            "ssh://{}@127.0.0.1:{}{}",
            self.user,
            self.port,
            repo.path().display()
        )
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The user sshd lets in (the one running the tests).
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The accepted client private key (OpenSSH format), for a Secret's `identity`.
    pub fn identity(&self) -> String {
        std::fs::read_to_string(&self.client_key).expect("client key readable")
    }

    /// Path of the accepted client private key.
    pub fn identity_path(&self) -> &Path {
        &self.client_key
    }

    /// The server's host public key line (`ssh-ed25519 AAAA... comment`).
    pub fn host_public_key(&self) -> &str {
        &self.host_public_key
    }

    /// A known_hosts line trusting this server: `[127.0.0.1]:PORT ssh-ed25519 AAAA...`.
    pub fn known_hosts(&self) -> String {
        let mut fields = self.host_public_key.split_whitespace();
        let key_type = fields.next().unwrap_or_default();
        let key = fields.next().unwrap_or_default();
        format!("[127.0.0.1]:{} {key_type} {key}\n", self.port)
    }

    /// [`SshServer::known_hosts`] with the host name hashed by the real `ssh-keygen -H`
    /// (`|1|salt|hmac ...`), as `HashKnownHosts yes` writes it.
    pub fn hashed_known_hosts(&self) -> anyhow::Result<String> {
        let keygen = crate::process::require_tool("ssh-keygen", "openssh-client");
        let file = self.dir.path().join("known_hosts.hashed");
        std::fs::write(&file, self.known_hosts())?;
        let out = Command::new(keygen)
            .arg("-H")
            .arg("-f")
            .arg(&file)
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            bail!(
                "ssh-keygen -H failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(std::fs::read_to_string(&file)?)
    }

    /// `SHA256:...` fingerprint of the host key, as the real `ssh-keygen -l` prints it.
    pub fn host_key_fingerprint(&self) -> anyhow::Result<String> {
        let keygen = crate::process::require_tool("ssh-keygen", "openssh-client");
        let out = Command::new(keygen)
            .args(["-l", "-E", "sha256", "-f"])
            .arg(self.dir.path().join("host_ed25519.pub"))
            .stdin(Stdio::null())
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        match text.split_whitespace().nth(1) {
            Some(fp) if out.status.success() => Ok(fp.to_string()),
            _ => bail!(
                "ssh-keygen -l failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        }
    }

    /// What sshd logged so far (`-e`: its log goes to stderr, captured here).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }
}

impl Drop for SshServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls until sshd sends its `SSH-2.0-` banner on `port` (so the port is sshd's, not another
/// process's); fails early when sshd exits (for example because the port was taken).
fn wait_ready(child: &mut Child, port: u16, log: &Path) -> anyhow::Result<()> {
    let log_text = || std::fs::read_to_string(log).unwrap_or_default();
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            bail!(
                "sshd on port {port} exited ({status}): {}",
                log_text().trim()
            );
        }
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) {
            stream.set_read_timeout(Some(Duration::from_secs(2)))?;
            let mut banner = [0u8; 8];
            if stream.read_exact(&mut banner).is_ok() && &banner == b"SSH-2.0-" {
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    bail!(
        "sshd did not answer on 127.0.0.1:{port} within {START_TIMEOUT:?}: {}",
        log_text().trim()
    )
}

fn sshd_config(port: u16, host_key: &Path, authorized_keys: &Path, user: &str) -> String {
    format!(
        "Port {port}
ListenAddress 127.0.0.1
HostKey {host_key}
PidFile none
UsePAM no
StrictModes no
AuthorizedKeysFile {authorized_keys}
AllowUsers {user}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
LogLevel VERBOSE
",
        host_key = host_key.display(),
        authorized_keys = authorized_keys.display(),
    )
}

/// The user running the tests (`whoami`, else `$USER`): sshd can only log in as itself when
/// not root, and as root the tests log in as root.
fn current_user() -> anyhow::Result<String> {
    if let Ok(out) = Command::new("whoami").output()
        && out.status.success()
    {
        let name = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !name.is_empty() {
            return Ok(name);
        }
    }
    std::env::var("USER").context("cannot tell the current user: neither `whoami` nor $USER")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::run_git;

    /// The harness on its own: the git CLI (OpenSSH client) lists the refs with the server's
    /// identity and known_hosts, and is refused with another key.
    #[test]
    fn git_over_ssh_with_the_identity_and_strict_host_checking() {
        let ssh = crate::process::require_tool("ssh", "openssh-client");
        let repo = BareRepo::from_template("catalog").unwrap();
        let sshd = SshServer::start().unwrap();
        let known_hosts = sshd.dir.path().join("known_hosts");
        std::fs::write(&known_hosts, sshd.known_hosts()).unwrap();
        let ssh_command = |key: &Path| {
            format!(
                "{} -i {} -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile={}",
                ssh.display(),
                key.display(),
                known_hosts.display()
            )
        };
        let good = ssh_command(sshd.identity_path());
        let refs = run_git(
            repo.path(),
            &["ls-remote", &sshd.url(&repo), "refs/heads/main"],
            &[("GIT_SSH_COMMAND", good.as_str())],
        )
        .unwrap();
        assert!(refs.starts_with(&repo.head("main").unwrap()), "{refs}");

        let (other, _) = generate_ssh_key(sshd.dir.path(), "other").unwrap();
        let bad = ssh_command(&other);
        let err = run_git(
            repo.path(),
            &["ls-remote", &sshd.url(&repo)],
            &[("GIT_SSH_COMMAND", bad.as_str())],
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("Permission denied"), "{err:#}");
    }
}
