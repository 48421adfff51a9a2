//! Webhook receiver, commit statuses on a (fake) forge, suspend, and local mode.

use catalog_e2e::suite::sync as sync_common;

use std::process::Command;
use std::time::{Duration, Instant};

use catalog_e2e::forge::{FakeForge, Provider};
use catalog_e2e::git::{BareRepo, Change};
use catalog_e2e::process::eventually;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::PostParams;
use serde_json::json;
use sync_common::*;

async fn post(url: &str, headers: &[(&str, String)], body: &'static [u8]) -> u16 {
    let client = reqwest::Client::new();
    let mut request = client.post(url).body(body);
    for (k, v) in headers {
        request = request.header(*k, v);
    }
    request.send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn webhooks_with_good_signatures_sync_at_once_and_bad_ones_are_refused() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let repo = BareRepo::from_template("catalog").unwrap();
    let mut env = Env::start().await;
    env.create_secret("hook", &[("token", "s3cret")]).await;
    env.spawn_reconciler(&[]);
    env.create_source(
        "dev",
        &repo.file_url(),
        json!({"interval": "1h", "webhook": {"secretRef": {"name": "hook"}}}),
    )
    .await;
    let source = env.wait_applied("dev", &repo.head("main").unwrap()).await;
    assert_eq!(
        source.status.unwrap().webhook_path.as_deref(),
        Some("/hook/catalog/dev")
    );
    let url = env.webhook_url("dev");
    let body: &'static [u8] = br#"{"ref":"refs/heads/main"}"#;

    let next = repo
        .write(
            "main",
            "environments/dev/one.yaml",
            entry_yaml("one", "quay.io/acme/one:1"),
        )
        .unwrap();
    let bad = hmac_hex("wrong", body);
    assert_eq!(
        post(
            &url,
            &[("X-Hub-Signature-256", format!("sha256={bad}"))],
            body
        )
        .await,
        401
    );
    assert_eq!(
        post(&url, &[("X-Gitlab-Token", "nope".into())], body).await,
        401
    );
    assert_eq!(post(&url, &[], body).await, 401);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        env.image("one").await.is_none(),
        "a refused webhook triggers nothing"
    );

    let good = hmac_hex("s3cret", body);
    let sent = Instant::now();
    assert_eq!(
        post(
            &url,
            &[("X-Hub-Signature-256", format!("sha256={good}"))],
            body
        )
        .await,
        202
    );
    env.wait_applied("dev", &next).await;
    eprintln!("GitHub webhook -> applied in {:?}", sent.elapsed());

    let next = repo
        .write(
            "main",
            "environments/dev/two.yaml",
            entry_yaml("two", "quay.io/acme/two:1"),
        )
        .unwrap();
    assert_eq!(
        post(&url, &[("X-Gitlab-Token", "s3cret".into())], body).await,
        202
    );
    env.wait_applied("dev", &next).await;
    let next = repo
        .write(
            "main",
            "environments/dev/three.yaml",
            entry_yaml("three", "quay.io/acme/three:1"),
        )
        .unwrap();
    assert_eq!(
        post(&url, &[("X-Gitea-Signature", good.clone())], body).await,
        202
    );
    env.wait_applied("dev", &next).await;

    assert_eq!(
        post(
            &env.webhook_url("missing"),
            &[("X-Gitlab-Token", "s3cret".into())],
            body
        )
        .await,
        401,
        "a missing source is answered like a bad signature"
    );
    // Rate limit per source: a burst of 60, one more per second. Each accepted delivery costs
    // a PATCH of the source, so the sequential deliveries take a few seconds: 90 outrun the
    // refill.
    let mut codes = Vec::new();
    for _ in 0..90 {
        codes.push(post(&url, &[("X-Gitlab-Token", "s3cret".into())], body).await);
    }
    assert!(codes.contains(&429), "{codes:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn commit_statuses_reach_github_gitlab_and_gitea() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let forge = FakeForge::start("forge-token").await;
    let repo = BareRepo::from_template("catalog").unwrap();
    let mut env = Env::start().await;
    let namespaces: kube::Api<Namespace> = kube::Api::all(env.client.clone());
    for ns in ["stg", "prd"] {
        namespaces
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap(),
            )
            .await
            .unwrap();
    }
    env.create_secret("forge", &[("token", "forge-token")])
        .await;
    // Three environments from one namespace: the single-tenant layout.
    env.spawn_reconciler(&["--allow-cross-namespace-targets"]);
    let sources = [
        ("dev", "environments/dev", NS, "github", forge.github_url()),
        (
            "staging",
            "environments/staging",
            "stg",
            "gitlab",
            forge.gitlab_url(),
        ),
        (
            "production",
            "environments/production",
            "prd",
            "gitea",
            forge.gitea_url(),
        ),
    ];
    for (name, path, ns, provider, api) in &sources {
        env.create_source(
            name,
            &repo.file_url(),
            json!({"path": path, "targetNamespace": ns, "commitStatus": {"provider": provider, "apiUrl": api, "repository": "acme/catalog", "secretRef": {"name": "forge"}}}),
        )
        .await;
    }
    let head = repo.head("main").unwrap();
    for (name, ..) in &sources {
        env.wait_applied(name, &head).await;
    }
    let statuses = eventually(WAIT, "a final status from every forge", || async {
        let s = forge.statuses();
        let finals = s
            .iter()
            .filter(|s| s.sha == head && s.state == "success")
            .count();
        (finals == 3).then_some(s)
    })
    .await;
    for provider in [Provider::Github, Provider::Gitlab, Provider::Gitea] {
        let mine: Vec<_> = statuses.iter().filter(|s| s.provider == provider).collect();
        assert_eq!(
            mine.iter().map(|s| s.state.as_str()).collect::<Vec<_>>(),
            ["pending", "success"],
            "{provider:?}: {mine:?}"
        );
        assert_eq!(mine[0].repo, "acme/catalog");
        assert!(
            mine[1]
                .description
                .as_deref()
                .unwrap_or_default()
                .contains("applied"),
            "{mine:?}"
        );
    }
    // A broken file: failure, with counts.
    let broken = repo
        .commit(
            "main",
            "broken",
            &[Change::write(
                "environments/dev/bad.yaml",
                "kind: CatalogImage\nmetadata: {name: bad}\n",
            )],
        )
        .unwrap();
    env.patch_source("dev", json!({"metadata": {"annotations": {"automotive.sdv.cloud.redhat.com/reconcile-requested-at": "x"}}})).await;
    let failure = eventually(WAIT, "a failure status for the broken commit", || async {
        forge
            .statuses()
            .into_iter()
            .find(|s| s.sha == broken && s.state == "failure")
    })
    .await;
    assert!(
        failure
            .description
            .as_deref()
            .unwrap()
            .contains("1 invalid"),
        "{failure:?}"
    );
    let auth = forge.requests_matching("POST", &format!("/statuses/{broken}"));
    assert_eq!(
        auth.last().unwrap().header("authorization"),
        Some("Bearer forge-token")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_suspended_source_applies_nothing_until_resumed() {
    let repo = BareRepo::from_template("catalog").unwrap();
    let mut env = Env::start().await;
    env.spawn_reconciler(&[]);
    env.create_source("dev", &repo.file_url(), json!({})).await;
    env.wait_applied("dev", &repo.head("main").unwrap()).await;
    env.patch_source("dev", json!({"spec": {"suspend": true}}))
        .await;
    eventually(WAIT, "Reconciling=Suspended", || async {
        let source = env.source("dev").await;
        (condition(&source, "Reconciling")?.1 == "Suspended").then_some(())
    })
    .await;
    let next = repo
        .write(
            "main",
            "environments/dev/one.yaml",
            entry_yaml("one", "quay.io/acme/one:1"),
        )
        .unwrap();
    env.patch_source("dev", json!({"metadata": {"annotations": {"automotive.sdv.cloud.redhat.com/reconcile-requested-at": "s"}}})).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(env.image("one").await.is_none());
    env.patch_source("dev", json!({"spec": {"suspend": false}}))
        .await;
    env.wait_applied("dev", &next).await;
    assert!(env.image("one").await.is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn local_mode_applies_a_saved_file_within_a_second() {
    let work = tempfile::tempdir().unwrap();
    let status = Command::new("cp")
        .arg("-r")
        .arg(catalog_e2e::git::template_dir())
        .arg(work.path().join("repo"))
        .status()
        .unwrap();
    assert!(status.success());
    let root = work.path().join("repo");
    let mut env = Env::start().await;
    env.spawn_reconciler(&[
        "--local-source",
        root.to_str().unwrap(),
        "--local-path",
        "environments/dev",
        "--target-namespace",
        NS,
    ]);
    eventually(WAIT, "the working tree to be applied", || async {
        (env.image_names().await == TEMPLATE_DEV).then_some(())
    })
    .await;
    let image = env.image("autosd-cs9-qemu").await.unwrap();
    assert_eq!(source_label(&image), Some("local"));

    let saved = Instant::now();
    std::fs::write(
        root.join("environments/dev/fresh.yaml"),
        entry_yaml("fresh", "quay.io/acme/fresh:1"),
    )
    .unwrap();
    eventually(
        Duration::from_secs(5),
        "the saved file to be applied",
        || async { env.image("fresh").await },
    )
    .await;
    let took = saved.elapsed();
    eprintln!("local mode: save -> applied in {took:?}");
    assert!(took < Duration::from_secs(1), "applied after {took:?}");

    std::fs::write(
        root.join("environments/dev/fresh.yaml"),
        entry_yaml("fresh", "quay.io/acme/fresh:2"),
    )
    .unwrap();
    eventually(Duration::from_secs(5), "the edit to be applied", || async {
        (env.image("fresh").await?.spec.registry_url == "quay.io/acme/fresh:2").then_some(())
    })
    .await;
    std::fs::remove_file(root.join("environments/dev/fresh.yaml")).unwrap();
    eventually(
        Duration::from_secs(5),
        "the removed file to be pruned",
        || async { env.image("fresh").await.is_none().then_some(()) },
    )
    .await;
}
