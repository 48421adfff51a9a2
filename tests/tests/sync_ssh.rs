//! Sync over `ssh://` from a real sshd (openssh-server): an identity with known_hosts in
//! clear or hashed, an unknown or @revoked host key, and a refused or unusable identity.

use catalog_e2e::suite::sync as sync_common;

use catalog_e2e::git::{BareRepo, SshServer, generate_ssh_key};
use serde_json::json;
use sync_common::*;

const REQUEST: &str = "automotive.sdv.cloud.redhat.com/reconcile-requested-at";

/// Starts sshd, or fails with its log (sshd's own words say what is wrong with the machine).
fn start_sshd() -> SshServer {
    SshServer::start().unwrap_or_else(|e| panic!("sshd (package openssh-server) starts: {e:#}"))
}

async fn ssh_secret(env: &Env, name: &str, identity: &str, known_hosts: &str) {
    env.create_secret(
        name,
        &[("identity", identity), ("known_hosts", known_hosts)],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ssh_with_identity_and_known_hosts_applies_every_entry_and_later_commits() {
    let repo = BareRepo::from_template("catalog").unwrap();
    let sshd = start_sshd();
    let mut env = Env::start().await;
    ssh_secret(&env, "ssh-creds", &sshd.identity(), &sshd.known_hosts()).await;
    env.spawn_reconciler(&[]);
    let url = sshd.url(&repo);
    assert!(
        url.starts_with(&format!("ssh://{}@127.0.0.1:", sshd.user())),
        "{url}"
    );
    env.create_source("dev", &url, json!({"secretRef": {"name": "ssh-creds"}}))
        .await;
    let source = env.wait_applied("dev", &repo.head("main").unwrap()).await;
    let ready = ready(&source).unwrap();
    assert_eq!(
        (ready.0.as_str(), ready.1.as_str()),
        ("True", "Synced"),
        "{ready:?}"
    );
    assert_eq!(env.image_names().await, TEMPLATE_DEV);

    // The next commit arrives through the same (now incremental) SSH fetch.
    let next = repo
        .write(
            "main",
            "environments/dev/over-ssh.yaml",
            entry_yaml("over-ssh", "quay.io/acme/ssh:1"),
        )
        .unwrap();
    env.patch_source(
        "dev",
        json!({"metadata": {"annotations": {REQUEST: "next"}}}),
    )
    .await;
    env.wait_applied("dev", &next).await;
    assert!(env.image("over-ssh").await.is_some());
    assert!(
        sshd.log().contains("Accepted publickey"),
        "sshd log:\n{}",
        sshd.log()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hashed_known_hosts_and_the_user_from_the_secret_are_used() {
    let repo = BareRepo::from_template("catalog").unwrap();
    let sshd = start_sshd();
    let hashed = sshd.hashed_known_hosts().unwrap();
    assert!(hashed.starts_with("|1|"), "{hashed}");
    assert!(!hashed.contains("127.0.0.1"), "{hashed}");
    let mut env = Env::start().await;
    // No user in the URL: libgit2 first asks for a user name (the secret's `username`),
    // then for the key.
    env.create_secret(
        "ssh-creds",
        &[
            ("identity", &sshd.identity()),
            ("known_hosts", &hashed),
            ("username", sshd.user()),
        ],
    )
    .await;
    env.spawn_reconciler(&[]);
    let url = sshd.url(&repo).replace(&format!("{}@", sshd.user()), "");
    assert!(url.starts_with("ssh://127.0.0.1:"), "{url}");
    env.create_source("dev", &url, json!({"secretRef": {"name": "ssh-creds"}}))
        .await;
    env.wait_applied("dev", &repo.head("main").unwrap()).await;
    assert_eq!(env.image_names().await, TEMPLATE_DEV);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_key_missing_from_known_hosts_is_fetch_failed_naming_host_and_port() {
    let repo = BareRepo::from_template("catalog").unwrap();
    let sshd = start_sshd();
    let keys = tempfile::tempdir().unwrap();
    // known_hosts lists another key for this very host:port, and the real key for another
    // port: neither may be trusted.
    let (_, impostor) = generate_ssh_key(keys.path(), "impostor").unwrap();
    let real_key: Vec<&str> = sshd.host_public_key().split_whitespace().take(2).collect();
    let known_hosts = format!(
        "[127.0.0.1]:{} {}\n[127.0.0.1]:{} {}\n",
        sshd.port(),
        impostor,
        sshd.port() as u32 + 1,
        real_key.join(" ")
    );
    let mut env = Env::start().await;
    ssh_secret(&env, "ssh-creds", &sshd.identity(), &known_hosts).await;
    env.spawn_reconciler(&[]);
    let url = sshd.url(&repo);
    env.create_source("dev", &url, json!({"secretRef": {"name": "ssh-creds"}}))
        .await;
    let source = env.wait_ready_reason("dev", "FetchFailed").await;
    let (status, _, message) = ready(&source).unwrap();
    eprintln!("Ready message: {message}");
    assert_eq!(status, "False");
    assert!(message.contains(&url), "{message}");
    assert!(
        message.contains(&format!("127.0.0.1:{}", sshd.port())),
        "{message}"
    );
    assert!(message.contains("host key"), "{message}");
    assert!(message.contains("unknown"), "{message}");
    let fingerprint = sshd.host_key_fingerprint().unwrap();
    assert!(
        message.contains(&fingerprint),
        "the fingerprint to compare ({fingerprint}): {message}"
    );

    // A key listed as trusted but also marked @revoked is refused, as OpenSSH does.
    let revoked = format!("{}@revoked * {}\n", sshd.known_hosts(), real_key.join(" "));
    ssh_secret(&env, "revoked", &sshd.identity(), &revoked).await;
    env.create_source(
        "revoked",
        &url,
        json!({"path": "environments/staging", "secretRef": {"name": "revoked"}}),
    )
    .await;
    let source = env.wait_ready_reason("revoked", "FetchFailed").await;
    let message = ready(&source).unwrap().2;
    assert!(message.contains(&url), "{message}");
    assert!(message.contains("@revoked"), "{message}");

    // No known_hosts at all: nothing to check the server against, so no connection either.
    env.create_secret("no-known-hosts", &[("identity", &sshd.identity())])
        .await;
    env.create_source(
        "unchecked",
        &url,
        json!({"path": "environments/staging", "secretRef": {"name": "no-known-hosts"}}),
    )
    .await;
    let source = env.wait_ready_reason("unchecked", "FetchFailed").await;
    let message = ready(&source).unwrap().2;
    assert!(message.contains("add `known_hosts`"), "{message}");

    assert!(env.image_names().await.is_empty(), "nothing applied");
    assert!(
        !sshd.log().contains("Accepted publickey"),
        "no login to an untrusted server:\n{}",
        sshd.log()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_identity_is_fetch_failed_naming_the_url_without_key_material() {
    let repo = BareRepo::from_template("catalog").unwrap();
    let sshd = start_sshd();
    let keys = tempfile::tempdir().unwrap();
    let (wrong_key, _) = generate_ssh_key(keys.path(), "not-authorized").unwrap();
    let wrong_identity = std::fs::read_to_string(&wrong_key).unwrap();
    let mut env = Env::start().await;
    ssh_secret(&env, "ssh-creds", &wrong_identity, &sshd.known_hosts()).await;
    env.spawn_reconciler(&[]);
    let url = sshd.url(&repo);
    env.create_source("dev", &url, json!({"secretRef": {"name": "ssh-creds"}}))
        .await;
    let source = env.wait_ready_reason("dev", "FetchFailed").await;
    let message = ready(&source).unwrap().2;
    eprintln!("Ready message: {message}");
    assert!(message.contains(&url), "{message}");
    assert!(message.contains("authentication"), "{message}");
    assert!(message.contains("identity"), "{message}");
    assert!(!message.contains("PRIVATE KEY"), "{message}");
    for line in wrong_identity.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!message.contains(line), "key material in: {message}");
    }
    assert!(!env.logs().contains(wrong_identity.lines().nth(1).unwrap()));

    // Something that is not a private key at all fails the same way, saying so.
    env.create_secret(
        "garbage",
        &[
            ("identity", "not-a-private-key-s3cret"),
            ("known_hosts", &sshd.known_hosts()),
        ],
    )
    .await;
    env.create_source(
        "garbage",
        &url,
        json!({"path": "environments/staging", "secretRef": {"name": "garbage"}}),
    )
    .await;
    let source = env.wait_ready_reason("garbage", "FetchFailed").await;
    let message = ready(&source).unwrap().2;
    eprintln!("Ready message: {message}");
    assert!(message.contains(&url), "{message}");
    assert!(
        message.contains("`identity` is not a usable SSH private key"),
        "{message}"
    );
    assert!(!message.contains("s3cret"), "{message}");
    assert!(env.image_names().await.is_empty(), "nothing applied");
}
