//! Fetch credentials and limits over smart HTTP: a bearer token sent as
//! `Authorization: Bearer` (Flux's `bearerToken`), and `spec.timeout` against a remote that
//! accepts the connection and never answers.

use catalog_e2e::suite::sync as sync_common;

use std::time::{Duration, Instant};

use catalog_e2e::git::{BareRepo, RedirectingRemote, SilentRemote, SmartHttp};
use serde_json::json;
use sync_common::*;

#[tokio::test(flavor = "multi_thread")]
async fn bearer_token_is_sent_as_an_authorization_header_and_a_wrong_one_is_fetch_failed() {
    let repo = BareRepo::from_template("catalog").unwrap();
    let http = SmartHttp::start_with_bearer_token(repo.base_path(), "t0ken-right")
        .await
        .unwrap();
    let mut env = Env::start().await;
    env.create_secret("good-token", &[("bearerToken", "t0ken-right")])
        .await;
    env.create_secret("bad-token", &[("bearerToken", "t0ken-wrong")])
        .await;
    env.spawn_reconciler(&[]);
    let url = http.url(&repo);
    env.create_source("dev", &url, json!({"secretRef": {"name": "good-token"}}))
        .await;
    env.create_source(
        "staging",
        &url,
        json!({"path": "environments/staging", "secretRef": {"name": "bad-token"}}),
    )
    .await;

    let dev = env.wait_applied("dev", &repo.head("main").unwrap()).await;
    assert_eq!(ready(&dev).unwrap().1, "Synced");

    let staging = env.wait_ready_reason("staging", "FetchFailed").await;
    let message = ready(&staging).unwrap().2;
    eprintln!("Ready message: {message}");
    assert!(message.contains(&url), "{message}");
    assert!(message.contains("bearer token"), "{message}");
    assert!(!message.contains("t0ken-wrong"), "{message}");
    assert_eq!(
        env.image_names().await,
        TEMPLATE_DEV,
        "only dev's entries: staging applied nothing"
    );
    let logs = env.logs();
    assert!(!logs.contains("t0ken-right") && !logs.contains("t0ken-wrong"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_remote_that_never_answers_times_out_and_other_sources_keep_syncing() {
    let silent = SilentRemote::start().await.unwrap();
    let repo = BareRepo::from_template("catalog").unwrap();
    let mut env = Env::start().await;
    env.spawn_reconciler(&[]);
    // A password in the URL, to check the message carries the redacted URL.
    let url = silent
        .http_url("catalog")
        .replace("http://", "http://alice:pw-in-url@");
    let created = Instant::now();
    env.create_source("stuck", &url, json!({"timeout": "2s", "interval": "1s"}))
        .await;
    let source = env.wait_ready_reason("stuck", "FetchFailed").await;
    let elapsed = created.elapsed();
    let (status, _, message) = ready(&source).unwrap();
    eprintln!("Ready message after {elapsed:?}: {message}");
    assert_eq!(status, "False");
    assert!(silent.connections() >= 1, "the fetch reached the remote");
    assert!(message.contains("timed out after 2s"), "{message}");
    assert!(
        message.contains(&format!("http://***@{}/catalog.git", silent.addr())),
        "{message}"
    );
    assert!(!message.contains("pw-in-url"), "{message}");
    assert!(
        elapsed < Duration::from_secs(10),
        "a 2s timeout reported after {elapsed:?}"
    );

    // The reconciler stays responsive: a healthy source syncs while the stuck one retries,
    // and so does its next commit.
    env.create_source("dev", &repo.file_url(), json!({"interval": "1s"}))
        .await;
    env.wait_applied("dev", &repo.head("main").unwrap()).await;
    let next = repo
        .write(
            "main",
            "environments/dev/still-syncing.yaml",
            entry_yaml("still-syncing", "quay.io/acme/still:1"),
        )
        .unwrap();
    env.wait_applied("dev", &next).await;
    assert!(env.image("still-syncing").await.is_some());
    let stuck = env.source("stuck").await;
    assert_eq!(ready(&stuck).unwrap().1, "FetchFailed");
    // Retried after its backoff, without a second connection while libgit2 still holds the
    // first one (until its own idle timeout): abandoned fetches do not pile up.
    env.wait_source_where(
        "stuck",
        "the stuck source to be retried after its backoff",
        |s| ready(s).is_some_and(|c| c.2.contains("still open")),
    )
    .await;
    assert_eq!(silent.connections(), 1);
}

/// Sets up a source whose URL redirects to `target_port` on another host name, with the
/// secret `data`, and checks it ends FetchFailed with nothing applied and no secret shown.
async fn redirected_source_fails(
    env: &mut Env,
    repo: &BareRepo,
    target_port: u16,
    data: &[(&str, &str)],
) {
    // Same server, another host name: what libgit2 counts as off-site.
    let redirector = RedirectingRemote::start(format!("http://localhost:{target_port}"))
        .await
        .unwrap();
    env.create_secret("creds", data).await;
    env.spawn_reconciler(&[]);
    let url = redirector.url(repo.name());
    env.create_source("dev", &url, json!({"secretRef": {"name": "creds"}}))
        .await;
    let source = env.wait_ready_reason("dev", "FetchFailed").await;
    let message = ready(&source).unwrap().2;
    assert!(message.contains(&url), "{message}");
    for (_, secret) in data {
        assert!(!message.contains(secret), "{message}");
    }
    assert!(env.image_names().await.is_empty());
    assert!(
        redirector.requests() > 0,
        "the fetch went to the redirecting remote"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_never_follow_a_redirect_to_another_host() {
    let repo = BareRepo::from_template("catalog").unwrap();
    let bearer = SmartHttp::start_with_bearer_token(repo.base_path(), "t0ken-right")
        .await
        .unwrap();
    let mut env = Env::start().await;
    redirected_source_fails(
        &mut env,
        &repo,
        bearer.addr().port(),
        &[("bearerToken", "t0ken-right")],
    )
    .await;
    assert_eq!(
        bearer.requests(),
        0,
        "the redirect target never saw the token"
    );

    let basic = SmartHttp::start(repo.base_path(), "alice", "pa55word")
        .await
        .unwrap();
    let mut env = Env::start().await;
    redirected_source_fails(
        &mut env,
        &repo,
        basic.addr().port(),
        &[("username", "alice"), ("password", "pa55word")],
    )
    .await;
    assert_eq!(
        basic.requests(),
        0,
        "the redirect target never saw the password"
    );
}
