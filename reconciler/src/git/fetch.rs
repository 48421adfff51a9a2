//! Fetching one ref of a remote into a per-source bare cache repository with libgit2.
//!
//! The cache survives between syncs (and restarts, when the cache dir is persistent), so
//! every fetch after the first is incremental: only new objects cross the network.

use std::path::PathBuf;
use std::sync::Once;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use git2::{FetchOptions, Oid, RemoteCallbacks, Repository};

use super::auth::Credentials;
use super::callbacks::{Problems, credentials, host_key};
use catalog_api::redact::{redact_text, redact_url};

use super::SourceError;

/// Which commit of the remote to sync.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefSpec {
    Branch(String),
    Tag(String),
    Commit(String),
    /// Any other ref of the remote, fetched to the same name: a pull request's head
    /// (`refs/pull/N/head`, `refs/merge-requests/N/head`).
    Ref(String),
}

impl RefSpec {
    /// From the CatalogSource's `ref` (branch `main` when absent).
    pub fn from_spec(git_ref: Option<&catalog_api::source::GitRef>) -> RefSpec {
        match git_ref {
            Some(r) if r.commit.is_some() => RefSpec::Commit(r.commit.clone().unwrap()),
            Some(r) if r.tag.is_some() => RefSpec::Tag(r.tag.clone().unwrap()),
            Some(r) if r.branch.is_some() => RefSpec::Branch(r.branch.clone().unwrap()),
            _ => RefSpec::Branch("main".into()),
        }
    }

    fn describe(&self) -> String {
        match self {
            RefSpec::Branch(b) => format!("branch {b:?}"),
            RefSpec::Tag(t) => format!("tag {t:?}"),
            RefSpec::Commit(c) => format!("commit {c}"),
            RefSpec::Ref(r) => format!("ref {r:?}"),
        }
    }
}

/// One fetch.
#[derive(Clone, Debug)]
pub struct FetchRequest {
    pub url: String,
    pub reference: RefSpec,
    pub credentials: Credentials,
    pub timeout: Duration,
    /// The bare cache repository of this source (created when missing).
    pub cache_path: PathBuf,
    /// Fetch a branch or tag with depth 1 (see [`fetch_depth`]). Off where the history
    /// matters: an ancestry check between the applied and the new revision needs both
    /// commits and the path between them.
    pub shallow: bool,
}

/// The fetched commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetched {
    pub commit: String,
    /// Committer time (unix seconds), for the commit-to-applied latency metric.
    pub commit_time: i64,
}

/// How long libgit2 waits for a TCP connection, and for any byte on an established one,
/// before giving up with a timeout error.
///
/// A fetch's own `timeout` is enforced by the progress callbacks below and by the caller
/// (which stops waiting for the blocking task); these bound how long a remote that accepts
/// a connection and then never answers can keep that blocking thread busy afterwards.
/// libgit2 only has process-wide settings for them, so they are one value for every source
/// rather than each source's `timeout`. Git servers send keep-alives while they compute a
/// pack (`uploadpack.keepAlive`, 5 s by default), so a healthy remote is never this quiet.
pub const NETWORK_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Applies [`NETWORK_IDLE_TIMEOUT`] to libgit2 once, before the first connection of the
/// process: libgit2 reads these globals when it opens a socket, and every socket is opened
/// inside [`fetch`], after this `Once` has completed.
fn set_network_timeouts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let millis = NETWORK_IDLE_TIMEOUT.as_millis() as i32;
        // SAFETY: the writes happen inside `call_once`, which every fetch goes through before
        // it opens a connection, so no libgit2 thread reads the globals while they change.
        unsafe {
            let _ = git2::opts::set_server_connect_timeout_in_milliseconds(millis);
            let _ = git2::opts::set_server_timeout_in_milliseconds(millis);
        }
    });
}

/// Fetches `request.reference` into the cache and resolves it to a commit. Blocking.
///
/// Credentials (from the source's Secret): an SSH `identity` for ssh URLs, with the server's
/// host key checked against `known_hosts`; `username`/`password` as HTTP basic auth;
/// `bearerToken` (without username/password) as an `Authorization: Bearer` header on every
/// HTTP request, as Flux does.
pub fn fetch(request: &FetchRequest) -> Result<Fetched, SourceError> {
    set_network_timeouts();
    let url = redact_url(&request.url).into_owned();
    let repo = open_cache(&request.cache_path)?;
    if let RefSpec::Commit(sha) = &request.reference
        && let Ok(found) = resolve(&repo, &request.reference, &url)
    {
        // A pinned commit never changes: no network when it is already cached.
        debug_assert_eq!(&found.commit, sha);
        return Ok(found);
    }
    let refspecs = refspecs(&request.reference);
    let deadline = Instant::now() + request.timeout;
    let problems = Problems::default();
    let creds = &request.credentials;
    let basic_auth = creds.username.is_some() && creds.password.is_some();
    let bearer = creds.bearer_token.as_ref().filter(|_| !basic_auth);
    let mut callbacks = RemoteCallbacks::new();
    callbacks.transfer_progress(|_| Instant::now() < deadline);
    callbacks.sideband_progress(|_| Instant::now() < deadline);
    callbacks.credentials(|_url, username_from_url, allowed| {
        credentials(
            creds,
            bearer.is_some(),
            &problems,
            username_from_url,
            allowed,
        )
    });
    callbacks.certificate_check(|cert, host| host_key(cert, host, request, &problems));
    let mut options = FetchOptions::new();
    options.remote_callbacks(callbacks);
    options.download_tags(git2::AutotagOption::None);
    options.depth(fetch_depth(&repo, request));
    // Never logged: FetchOptions is not printed and libgit2 does not echo request headers.
    let bearer_header = bearer
        .filter(|_| request.url.starts_with("http"))
        .map(|t| format!("Authorization: Bearer {t}"));
    if let Some(header) = &bearer_header {
        options.custom_headers(&[header.as_str()]);
    }
    // libgit2 sends custom headers to wherever a redirect points, another host included, and
    // asks the credentials callback again there: with a secret in play, an off-site redirect
    // is an error rather than a leak.
    if bearer_header.is_some() || creds.password.is_some() {
        options.follow_redirects(git2::RemoteRedirect::None);
    }
    let mut remote = repo
        .remote_anonymous(&request.url)
        .map_err(|e| SourceError::Fetch {
            url: url.clone(),
            message: scrub(e.message(), creds),
        })?;
    let result = remote.fetch(&refspecs, Some(&mut options), None);
    drop(remote);
    if let Err(e) = result {
        let timed_out = Instant::now() >= deadline;
        return Err(failure(
            e,
            request,
            url,
            timed_out,
            &problems,
            bearer_header.is_some(),
        ));
    }
    resolve(&repo, &request.reference, &url)
}

/// What the remote's refs map to in the cache.
fn refspecs(reference: &RefSpec) -> Vec<String> {
    match reference {
        RefSpec::Branch(b) => vec![format!("+refs/heads/{b}:refs/remotes/origin/{b}")],
        RefSpec::Tag(t) => vec![format!("+refs/tags/{t}:refs/tags/{t}")],
        RefSpec::Commit(_) => vec![
            "+refs/heads/*:refs/remotes/origin/*".into(),
            "+refs/tags/*:refs/tags/*".into(),
        ],
        RefSpec::Ref(r) => vec![format!("+{r}:{r}")],
    }
}

/// What a failed fetch was, said so the user can act: the deadline, what the callbacks saw
/// (a rejected credential, an untrusted host key), else libgit2's error, classified.
fn failure(
    e: git2::Error,
    request: &FetchRequest,
    url: String,
    timed_out: bool,
    problems: &Problems,
    bearer: bool,
) -> SourceError {
    let creds = &request.credentials;
    if timed_out {
        return SourceError::Timeout {
            url,
            seconds: request.timeout.as_secs(),
        };
    }
    if let Some(detail) = problems.auth.take() {
        return SourceError::Auth { url, detail };
    }
    if let Some(message) = problems.host.take() {
        return SourceError::Fetch { url, message };
    }
    let message = scrub(e.message(), creds);
    if e.class() == git2::ErrorClass::Ssh
        && creds.identity.is_some()
        && message.contains("private key")
    {
        // libssh2 could not use the identity (not a key, encrypted, unknown format).
        return SourceError::Auth {
            url,
            detail: format!(
                ": the secret's `identity` is not a usable SSH private key ({message}); it must be an unencrypted private key in OpenSSH or PEM format"
            ),
        };
    }
    if e.code() == git2::ErrorCode::Timeout {
        return SourceError::Fetch {
            url,
            message: format!(
                "the remote did not answer within {}s ({message})",
                NETWORK_IDLE_TIMEOUT.as_secs()
            ),
        };
    }
    if e.code() == git2::ErrorCode::Auth || message.contains("401") {
        // With a bearer token the 401 usually carries a `Bearer` challenge, which libgit2
        // reports as an authentication it does not support: say what actually happened.
        let detail = match bearer {
            true => format!(": the remote rejected the bearer token ({message})"),
            false => format!(": {message}"),
        };
        return SourceError::Auth { url, detail };
    }
    SourceError::Fetch { url, message }
}

/// libgit2's depth for "fetch everything and unshallow" (`GIT_FETCH_DEPTH_UNSHALLOW`).
const UNSHALLOW: i32 = i32::MAX;

/// How deep to fetch: only the tip of a branch or tag when `request.shallow` (a sync reads
/// one tree; the history of a large catalog is most of its size); everything otherwise,
/// and the whole history again (unshallowing) when a pinned commit or a full fetch is asked
/// of a cache an earlier shallow fetch filled. libgit2 ≥ 1.7 fetches shallow over http(s),
/// ssh and git://; its local transport (`file://`, plain paths) refuses a depth, so those
/// always fetch in full.
fn fetch_depth(repo: &Repository, request: &FetchRequest) -> i32 {
    if !remote_transport(&request.url) {
        return 0;
    }
    match request.reference {
        RefSpec::Branch(_) | RefSpec::Tag(_) | RefSpec::Ref(_) if request.shallow => 1,
        _ if repo.is_shallow() => UNSHALLOW,
        _ => 0,
    }
}

/// Whether libgit2 reaches `url` over the network (http(s), ssh, git://, scp-like
/// `user@host:path`) rather than with its local transport, which refuses a depth ("shallow
/// fetch is not supported by the local transport").
fn remote_transport(url: &str) -> bool {
    if let Some((scheme, _)) = url.split_once("://") {
        return matches!(
            scheme,
            "http" | "https" | "ssh" | "git" | "git+ssh" | "ssh+git"
        );
    }
    url.split_once(':')
        .is_some_and(|(host, _)| !host.is_empty() && !host.contains('/'))
}

fn open_cache(path: &std::path::Path) -> Result<Repository, SourceError> {
    let cache_error = |e: &dyn std::fmt::Display| SourceError::Cache {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    if path.join("HEAD").is_file() {
        return Repository::open_bare(path).map_err(|e| cache_error(&e));
    }
    std::fs::create_dir_all(path).map_err(|e| cache_error(&e))?;
    Repository::init_bare(path).map_err(|e| cache_error(&e))
}

/// Resolves the reference in the cache (after a fetch).
pub fn resolve(repo: &Repository, reference: &RefSpec, url: &str) -> Result<Fetched, SourceError> {
    let not_found = || SourceError::RefNotFound {
        url: url.to_string(),
        what: reference.describe(),
    };
    let object = match reference {
        RefSpec::Branch(b) => repo
            .revparse_single(&format!("refs/remotes/origin/{b}"))
            .map_err(|_| not_found())?,
        RefSpec::Tag(t) => repo
            .revparse_single(&format!("refs/tags/{t}"))
            .map_err(|_| not_found())?,
        RefSpec::Ref(r) => repo.revparse_single(r).map_err(|_| not_found())?,
        RefSpec::Commit(c) => {
            let oid = Oid::from_str(c).map_err(|_| not_found())?;
            repo.find_object(oid, None).map_err(|_| not_found())?
        }
    };
    let commit = object.peel_to_commit().map_err(|_| not_found())?;
    Ok(Fetched {
        commit: commit.id().to_string(),
        commit_time: commit.committer().when().seconds(),
    })
}

/// Removes credentials that libgit2 may echo in its messages: those of any URL in it, and
/// the secret's values wherever they appear.
pub(super) fn scrub(message: &str, creds: &Credentials) -> String {
    let mut message = redact_text(message).into_owned();
    for secret in [&creds.password, &creds.bearer_token].into_iter().flatten() {
        message = message.replace(secret.as_str(), catalog_api::redact::MASK);
    }
    message
}

pub(super) fn ssh_port(url: &str) -> Option<u16> {
    let rest = url.strip_prefix("ssh://")?;
    let authority = rest.split('/').next()?;
    let host_port = authority.rsplit('@').next()?;
    host_port.rsplit_once(':')?.1.parse().ok()
}

/// OpenSSH's fingerprint of a host key (`SHA256:` and unpadded base64), as `ssh-keygen -lf`
/// prints it, so a message can be compared with what the server's admin publishes.
pub(super) fn fingerprint(key: &[u8]) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(key);
    format!("SHA256:{}", STANDARD_NO_PAD.encode(digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_network_transports_fetch_shallow() {
        for url in [
            "https://h/r.git",
            "http://h:8080/r.git",
            "ssh://git@h:2222/r.git",
            "git://h/r.git",
            "git@github.com:org/r.git",
        ] {
            assert!(remote_transport(url), "{url}");
        }
        for url in ["file:///srv/r.git", "/srv/r.git", "./r.git", "r.git"] {
            assert!(!remote_transport(url), "{url}");
        }
    }

    #[test]
    fn depth_is_one_for_network_branches_and_unshallows_when_history_is_asked_for() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(tmp.path()).unwrap();
        let request = |url: &str, reference, shallow| FetchRequest {
            url: url.into(),
            reference,
            credentials: Credentials::default(),
            timeout: Duration::from_secs(1),
            cache_path: tmp.path().into(),
            shallow,
        };
        let branch = || RefSpec::Branch("main".into());
        let net = "git://h/r.git";
        assert_eq!(fetch_depth(&repo, &request(net, branch(), true)), 1);
        assert_eq!(
            fetch_depth(&repo, &request("file:///r.git", branch(), true)),
            0
        );
        assert_eq!(fetch_depth(&repo, &request(net, branch(), false)), 0);
        std::fs::write(tmp.path().join("shallow"), format!("{}\n", "1".repeat(40))).unwrap();
        assert!(repo.is_shallow(), "premise");
        let pinned = RefSpec::Commit("1".repeat(40));
        assert_eq!(fetch_depth(&repo, &request(net, pinned, true)), UNSHALLOW);
        assert_eq!(
            fetch_depth(&repo, &request(net, branch(), false)),
            UNSHALLOW
        );
    }

    #[test]
    fn ssh_ports() {
        assert_eq!(ssh_port("ssh://git@localhost:2222/r.git"), Some(2222));
        assert_eq!(ssh_port("ssh://git@localhost/r.git"), None);
    }

    use crate::test_support::{commit_all, git as run};

    #[test]
    fn fetches_branch_tag_and_commit_incrementally() {
        let tmp = tempfile::tempdir().unwrap();
        let work = tmp.path().join("work");
        std::fs::create_dir(&work).unwrap();
        run(&work, &["init", "-q", "-b", "main"]);
        std::fs::write(work.join("a.yaml"), "a").unwrap();
        let first = commit_all(&work, "one");
        run(&work, &["tag", "v1"]);
        let request = |reference| FetchRequest {
            url: format!("file://{}", work.display()),
            reference,
            credentials: Credentials::default(),
            timeout: Duration::from_secs(10),
            cache_path: tmp.path().join("cache"),
            shallow: true,
        };
        let got = fetch(&request(RefSpec::Branch("main".into()))).unwrap();
        assert_eq!(got.commit, first);
        std::fs::write(work.join("b.yaml"), "b").unwrap();
        let second = commit_all(&work, "two");
        assert_eq!(
            fetch(&request(RefSpec::Branch("main".into())))
                .unwrap()
                .commit,
            second
        );
        assert_eq!(
            fetch(&request(RefSpec::Tag("v1".into()))).unwrap().commit,
            first
        );
        assert_eq!(
            fetch(&request(RefSpec::Commit(first.clone())))
                .unwrap()
                .commit,
            first
        );
        let missing = fetch(&request(RefSpec::Branch("nope".into()))).unwrap_err();
        assert!(missing.to_string().contains("nope"), "{missing}");
    }
}
