//! libgit2's callbacks of one fetch: which credential to hand out (and noticing when the
//! remote refused it), and whether to trust an SSH server's host key. What they learn goes
//! into [`Problems`], from which the fetch's error is told, since libgit2's own message
//! says little ("credentials rejected").

use std::cell::Cell;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use git2::{CertificateCheckStatus, Cred, CredentialType};

use super::auth::{Credentials, HostKeyVerdict, check_host_key};
use super::fetch::{FetchRequest, fingerprint, scrub, ssh_port};

/// What the callbacks saw of a failing fetch.
#[derive(Default)]
pub(super) struct Problems {
    /// Why authentication failed (`: …`, appended to the error).
    pub auth: Cell<Option<String>>,
    /// Why the server's host key is not trusted.
    pub host: Cell<Option<String>>,
    /// The secret credential last handed to libgit2 (described, never its value): being
    /// asked again means the remote refused it.
    pub handed_out: Cell<Option<String>>,
}

/// The credentials callback. `bearer`: a bearer token goes as a header instead.
pub(super) fn credentials(
    creds: &Credentials,
    bearer: bool,
    problems: &Problems,
    username_from_url: Option<&str>,
    allowed: CredentialType,
) -> Result<Cred, git2::Error> {
    if let Some(refused) = problems.handed_out.take() {
        // libgit2 asks again after a rejection; asking forever never ends.
        problems
            .auth
            .set(Some(format!(": the remote rejected {refused}")));
        return Err(git2::Error::from_str("credentials rejected"));
    }
    if allowed.contains(CredentialType::SSH_KEY)
        && let Some(identity) = &creds.identity
    {
        let user = username_from_url
            .map(str::to_string)
            .or_else(|| creds.username.clone())
            .unwrap_or_else(|| "git".into());
        let described = format!("the SSH identity of the secret for user {user:?}");
        problems.handed_out.set(Some(described));
        return Cred::ssh_key_from_memory(&user, None, identity, None).inspect_err(|e| {
            problems.auth.set(Some(format!(
                ": the secret's `identity` is not a usable SSH private key ({})",
                scrub(e.message(), creds)
            )));
        });
    }
    if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
        if let (Some(user), Some(password)) = (&creds.username, &creds.password) {
            let described = format!("the username/password of user {user:?}");
            problems.handed_out.set(Some(described));
            return Cred::userpass_plaintext(user, password);
        }
        if bearer {
            // The token went as a header on this request and the server answered 401.
            let rejected = ": the remote rejected the bearer token".to_string();
            problems.auth.set(Some(rejected));
            return Err(git2::Error::from_str("bearer token rejected"));
        }
    }
    if allowed.contains(CredentialType::USERNAME) {
        // Only the user name (ssh asks for it before the key when the URL has none).
        return Cred::username(
            creds
                .username
                .as_deref()
                .or(username_from_url)
                .unwrap_or("git"),
        );
    }
    problems.auth.set(Some(
        ": the remote asks for credentials and the CatalogSource has no secretRef with username/password, bearerToken or identity".into(),
    ));
    Err(git2::Error::from_str("no credentials"))
}

/// The certificate callback: an SSH host key must be listed in the secret's `known_hosts`;
/// TLS certificates are libgit2's to check.
pub(super) fn host_key(
    cert: &git2::cert::Cert<'_>,
    host: &str,
    request: &FetchRequest,
    problems: &Problems,
) -> Result<CertificateCheckStatus, git2::Error> {
    let Some(hostkey) = cert.as_hostkey() else {
        return Ok(CertificateCheckStatus::CertificatePassthrough);
    };
    let Some(raw) = hostkey.hostkey() else {
        return Ok(CertificateCheckStatus::CertificatePassthrough);
    };
    let port = ssh_port(&request.url);
    let server = format!("{host}:{}", port.unwrap_or(22));
    let key_type = hostkey.hostkey_type().map_or("unknown", |t| t.name());
    let described = format!("{key_type} {}", fingerprint(raw));
    let Some(known_hosts) = &request.credentials.known_hosts else {
        problems.host.set(Some(format!(
            "the SSH host key of {server} ({described}) cannot be checked: add `known_hosts` to the CatalogSource's secret"
        )));
        return Err(git2::Error::from_str("no known_hosts"));
    };
    match check_host_key(known_hosts, host, port, &STANDARD.encode(raw)) {
        HostKeyVerdict::Trusted => Ok(CertificateCheckStatus::CertificateOk),
        HostKeyVerdict::Revoked => {
            problems.host.set(Some(format!(
                "the SSH host key of {server} ({described}) is marked @revoked in the secret's known_hosts"
            )));
            Err(git2::Error::from_str("host key revoked"))
        }
        HostKeyVerdict::Unknown => {
            let entry = match port {
                Some(p) if p != 22 => format!("[{host}]:{p}"),
                _ => host.to_string(),
            };
            // The server offers one key of each type it has and libssh2 picks ed25519
            // first: a known_hosts holding only another type is a common cause.
            let keyscan = match port {
                Some(p) if p != 22 => format!("ssh-keyscan -p {p} {host}"),
                _ => format!("ssh-keyscan {host}"),
            };
            problems.host.set(Some(format!(
                "the SSH host key of {server} ({described}) is unknown: it is not trusted by any `{entry}` entry of the secret's known_hosts (`{keyscan}` lists the keys the server offers; check them against a trusted source)"
            )));
            Err(git2::Error::from_str("host key unknown"))
        }
    }
}
