//! Credentials end to end: an htpasswd-protected docker-registry and Secrets of every kind.

use catalog_e2e::suite::verify as verify_common;

use catalog_api::image::{Phase, condition};
use catalog_e2e::process::eventually;
use catalog_e2e::registry::{ImageFixture, Registry, RegistryConfig};
use serde_json::json;
use verify_common::*;

const DOCKER_CONFIG: &str = "kubernetes.io/dockerconfigjson";

#[tokio::test]
async fn wrong_password_fails_naming_the_secret_and_a_fixed_secret_heals() {
    let registry = Registry::start(RegistryConfig::with_auth("ci", "s3cret")).await;
    let pushed = registry
        .push_image("private/os:v1", &ImageFixture::new("amd64"))
        .await;
    let host = registry.host();
    let mut env = Env::start().await;
    env.put_secret(
        "good",
        Some(DOCKER_CONFIG),
        &[(".dockerconfigjson", &docker_config(&host, "ci", "s3cret"))],
    )
    .await;
    env.put_secret(
        "bad",
        Some(DOCKER_CONFIG),
        &[(".dockerconfigjson", &docker_config(&host, "ci", "wrong"))],
    )
    .await;
    env.spawn_reconciler(&["--insecure-registry", &host]);
    let url = format!("{host}/private/os:v1");
    env.create_image(
        "with-good",
        &url,
        json!({"authSecretRef": {"name": "good"}}),
    )
    .await;
    env.create_image("with-bad", &url, json!({"authSecretRef": {"name": "bad"}}))
        .await;

    let good = env.wait_phase("with-good", Phase::Available).await;
    assert_eq!(
        good.status
            .unwrap()
            .registry_metadata
            .unwrap()
            .resolved_digest,
        Some(pushed.digest.clone())
    );
    let bad = env.wait_phase("with-bad", Phase::Failed).await;
    let message = available_message(&bad);
    assert!(message.starts_with("AuthenticationFailed"), "{message}");
    assert!(
        message.contains("secret catalog/bad"),
        "names the secret: {message}"
    );
    assert!(
        !message.contains("wrong"),
        "never prints the password: {message}"
    );
    let generation = bad.metadata.generation;
    let annotations = bad.metadata.annotations.clone();

    // Fix the secret only: the image heals at once, untouched.
    env.put_secret(
        "bad",
        Some(DOCKER_CONFIG),
        &[(".dockerconfigjson", &docker_config(&host, "ci", "s3cret"))],
    )
    .await;
    let healed = env.wait_phase("with-bad", Phase::Available).await;
    assert_eq!(healed.metadata.generation, generation);
    assert_eq!(healed.metadata.annotations, annotations);
    assert_eq!(condition(&healed, condition::READY).unwrap().status, "True");
    assert!(!env.logs(0).contains("s3cret"), "credentials never logged");
}

#[tokio::test]
async fn missing_secret_fails_until_created_and_plain_keys_work() {
    let registry = Registry::start(RegistryConfig::with_auth("robot", "t0ken")).await;
    registry
        .push_image("private/os:v1", &ImageFixture::new("amd64"))
        .await;
    let host = registry.host();
    let mut env = Env::start().await;
    env.spawn_reconciler(&["--insecure-registry", &host]);
    let url = format!("{host}/private/os:v1");
    env.create_image("later", &url, json!({"authSecretRef": {"name": "creds"}}))
        .await;
    env.create_image("anonymous", &url, json!({})).await;

    let missing = env.wait_phase("later", Phase::Failed).await;
    let message = available_message(&missing);
    assert!(
        message.starts_with("SecretNotFound") && message.contains("catalog/creds"),
        "{message}"
    );
    let anonymous = env.wait_phase("anonymous", Phase::Failed).await;
    let message = available_message(&anonymous);
    assert!(
        message.contains("authSecretRef"),
        "says how to fix it: {message}"
    );

    env.put_secret(
        "creds",
        None,
        &[("username", "robot"), ("password", "t0ken")],
    )
    .await;
    // Plain keys without a registry binding are not sent.
    eventually(WAIT, "the unbound Secret to be reported", || async {
        available_message(&env.image("later").await)
            .starts_with("SecretNotBoundToRegistry")
            .then_some(())
    })
    .await;
    env.bind_secret("creds", &host).await;
    env.wait_phase("later", Phase::Available).await;
    eventually(WAIT, "Failed and Verified events", || async {
        let reasons = env.event_reasons("later").await;
        (reasons.contains(&"Failed".to_string()) && reasons.contains(&"Verified".to_string()))
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn docker_config_entry_for_another_registry_is_never_used() {
    let registry = Registry::start(RegistryConfig::with_auth("ci", "pw")).await;
    registry
        .push_image("private/os:v1", &ImageFixture::new("amd64"))
        .await;
    let host = registry.host();
    let mut env = Env::start().await;
    // Right password, wrong host: must not be sent.
    env.put_secret(
        "other",
        Some(DOCKER_CONFIG),
        &[(".dockerconfigjson", &docker_config("quay.io", "ci", "pw"))],
    )
    .await;
    env.spawn_reconciler(&["--insecure-registry", &host]);
    env.create_image(
        "img",
        &format!("{host}/private/os:v1"),
        json!({"authSecretRef": {"name": "other"}}),
    )
    .await;
    let image = env.wait_phase("img", Phase::Failed).await;
    let message = available_message(&image);
    assert!(
        message.starts_with("InvalidSecret") && message.contains("no entry for registry"),
        "{message}"
    );
}
