//! Tenancy, tried as an attacker would: a CatalogImage, a catalog entry or a CatalogSource acts
//! only inside its own namespace, and a credential goes only to the registry it was bound to.
//! A loopback listener that asks every client for credentials stands in for the hostile
//! registry; each test first shows the trap does catch a credential it is given.

use catalog_e2e::suite::sync as sync_common;
use catalog_e2e::suite::verify as verify_common;

use catalog_api::image::Phase;
use catalog_api::labels::{CATALOG_SOURCE, REGISTRY_HOSTS};
use catalog_e2e::git::{BareRepo, Change};
use catalog_e2e::kubectl::Kubectl;
use catalog_e2e::process::eventually;
use catalog_e2e::trap::CredentialTrap;
use kube::api::DeleteParams;
use serde_json::json;

const GROUP: &str = "automotive.sdv.cloud.redhat.com";

/// The trap is a working thief: an image whose Secret is bound to the trap's host hands it
/// the Secret. The other tests' "nothing received" means something only because of this.
async fn assert_trap_catches_a_bound_secret(env: &verify_common::Env, trap: &CredentialTrap) {
    env.put_secret(
        "bait",
        None,
        &[("username", "bait"), ("password", "bait-pw")],
    )
    .await;
    env.bind_secret("bait", &trap.host()).await;
    let url = format!("{}/bait/os:v1", trap.host());
    env.create_image("bait", &url, json!({"authSecretRef": {"name": "bait"}}))
        .await;
    eventually(
        verify_common::WAIT,
        "the trap to receive the bait",
        || async {
            trap.credentials()
                .iter()
                .any(|c| c.starts_with("Basic "))
                .then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn another_namespaces_secret_is_never_read_nor_sent() {
    let trap = CredentialTrap::basic();
    let mut env = verify_common::Env::start().await;
    env.create_namespace("victim").await;
    env.create_secret(
        "victim",
        "git-creds",
        None,
        &[("username", "git"), ("password", "victim-password")],
    )
    .await;
    env.spawn_reconciler(&["--insecure-registry", &trap.host()]);
    let stolen = |name: &str| {
        json!({
            "apiVersion": format!("{GROUP}/v1alpha1"), "kind": "CatalogImage",
            "metadata": {"name": name, "namespace": verify_common::NS},
            "spec": {"registryUrl": format!("{}/x/y:v1", trap.host()),
                     "authSecretRef": {"name": "git-creds", "namespace": "victim"}}
        })
    };

    // The schema has no such field: kubectl's strict validation refuses the object.
    let kubectl = Kubectl::new(Some(&env.emu));
    let refused = kubectl.fails(&["apply", "-f", "-"], Some(&stolen("refused").to_string()));
    assert!(
        refused.contains("unknown field \"spec.authSecretRef.namespace\""),
        "{refused}"
    );

    // An object stored before the field was removed is verified with its own namespace's
    // Secret only: there is none, so nothing is sent.
    env.emu
        .store_raw(GROUP, "v1alpha1", "catalogimages", stolen("stored"));
    let image = env.wait_phase("stored", Phase::Failed).await;
    let message = verify_common::available_message(&image);
    assert!(
        message.starts_with("SecretNotFound") && message.contains("catalog/git-creds"),
        "{message}"
    );
    assert_trap_catches_a_bound_secret(&env, &trap).await;
    let received = trap.credentials();
    assert!(
        received
            .iter()
            .all(|c| !c.contains(&base64("git:victim-password"))),
        "the victim's Secret reached the trap: {received:?}"
    );
    assert!(
        trap.seen()
            .iter()
            .all(|s| !s.request_line.contains("/x/y/")),
        "the stored image never reached the registry"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plain_secret_goes_only_to_the_registries_it_is_bound_to() {
    let trap = CredentialTrap::basic();
    let mut env = verify_common::Env::start().await;
    env.put_secret(
        "git-creds",
        Some("kubernetes.io/basic-auth"),
        &[("username", "git"), ("password", "git-password")],
    )
    .await;
    env.spawn_reconciler(&["--insecure-registry", &trap.host()]);
    let url = format!("{}/x/y:v1", trap.host());
    env.create_image("img", &url, json!({"authSecretRef": {"name": "git-creds"}}))
        .await;
    let image = env.wait_phase("img", Phase::Failed).await;
    let message = verify_common::available_message(&image);
    assert!(
        message.starts_with("SecretNotBoundToRegistry")
            && message.contains(&format!(
                "kubectl annotate secret git-creds -n catalog {REGISTRY_HOSTS}={}",
                trap.host()
            )),
        "says how to bind it: {message}"
    );

    // Bound to another registry: still nothing for this one.
    env.bind_secret("git-creds", "quay.io, github.com").await;
    env.request_verify("img", "1").await;
    eventually(verify_common::WAIT, "a second verification", || async {
        let image = env.image("img").await;
        let status = image.status.clone()?;
        (status.last_handled_verify_at.as_deref() == Some("1")).then_some(())
    })
    .await;
    let message = verify_common::available_message(&env.image("img").await);
    assert!(message.starts_with("SecretNotBoundToRegistry"), "{message}");
    assert!(
        trap.credentials().is_empty(),
        "nothing sent: {:?}",
        trap.seen()
    );

    // Bound to this registry: the trap gets it (the binding is what decides).
    env.bind_secret("git-creds", &format!("quay.io,{}", trap.host()))
        .await;
    eventually(
        verify_common::WAIT,
        "the bound Secret to be used",
        || async {
            trap.credentials()
                .contains(&format!("Basic {}", base64("git:git-password")))
                .then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_source_applies_into_another_namespace_only_when_the_operator_allows_it() {
    let repo = BareRepo::from_template("catalog").unwrap();
    let head = repo.head("main").unwrap();
    let mut env = sync_common::Env::start().await;
    env.create_namespace("team-b").await;
    env.spawn_reconciler(&[]);
    env.create_source(
        "dev",
        &repo.file_url(),
        json!({"targetNamespace": "team-b"}),
    )
    .await;
    let source = env.wait_ready_reason("dev", "CrossNamespaceTarget").await;
    let (_, _, message) = sync_common::ready(&source).unwrap();
    assert!(
        message.contains("--allow-cross-namespace-targets") && message.contains("team-b"),
        "{message}"
    );
    let stalled = sync_common::condition(&source, "Stalled").unwrap();
    assert_eq!(stalled.0, "True", "{stalled:?}");
    assert!(env.image_names_in("team-b").await.is_empty());
    assert!(env.image_names().await.is_empty());

    env.spawn_reconciler(&["--allow-cross-namespace-targets"]);
    env.wait_applied("dev", &head).await;
    assert_eq!(
        env.image_names_in("team-b").await,
        sync_common::TEMPLATE_DEV
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_label_alone_never_makes_an_object_the_sources() {
    let repo = BareRepo::from_template("catalog").unwrap();
    let mut env = sync_common::Env::start().await;
    // Hand-made objects carrying the source's label but not the source-namespace annotation:
    // one with an entry's name, one without.
    let hand_made = |name: &str| {
        json!({
            "apiVersion": format!("{GROUP}/v1alpha1"), "kind": "CatalogImage",
            "metadata": {"name": name, "namespace": sync_common::NS,
                         "labels": {CATALOG_SOURCE: "dev"}},
            "spec": {"registryUrl": "quay.io/hand/made:1"}
        })
    };
    let kubectl = Kubectl::new(Some(&env.emu));
    for name in ["autosd-cs9-qemu", "hand-made"] {
        kubectl.ok_stdin(&["apply", "-f", "-"], Some(&hand_made(name).to_string()));
    }
    let before = hand_made_versions(&env).await;

    env.spawn_reconciler(&[]);
    env.create_source("dev", &repo.file_url(), json!({})).await;
    let head = repo.head("main").unwrap();
    let source = env.wait_applied("dev", &head).await;
    let status = source.status.unwrap();
    let conflict = status
        .conflicts
        .iter()
        .find(|c| c.name == "autosd-cs9-qemu")
        .unwrap_or_else(|| panic!("a conflict for the entry's name: {:?}", status.conflicts));
    assert!(
        conflict
            .message
            .contains("no automotive.sdv.cloud.redhat.com/source-namespace annotation"),
        "{conflict:?}"
    );
    assert_eq!(
        hand_made_versions(&env).await,
        before,
        "untouched by the sync"
    );

    // A revision removing the entry of that name: nothing of the hand-made objects is pruned.
    let next = repo
        .commit(
            "main",
            "drop qemu",
            &[Change::delete("environments/dev/autosd-cs9-qemu.yaml")],
        )
        .unwrap();
    env.patch_source(
        "dev",
        json!({"metadata": {"annotations": {"automotive.sdv.cloud.redhat.com/reconcile-requested-at": "1"}}}),
    )
    .await;
    env.wait_applied("dev", &next).await;
    assert_eq!(
        hand_made_versions(&env).await,
        before,
        "untouched by the prune"
    );

    // Deleting the source deletes its own objects, not the hand-made ones.
    env.sources()
        .delete("dev", &DeleteParams::default())
        .await
        .unwrap();
    eventually(sync_common::WAIT, "the source to be gone", || async {
        env.sources()
            .get_opt("dev")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    assert_eq!(
        env.image_names().await,
        ["autosd-cs9-qemu", "hand-made"],
        "only the source's own objects went with it"
    );
    assert_eq!(
        hand_made_versions(&env).await,
        before,
        "untouched by the deletion"
    );
}

/// (resourceVersion, registryUrl) of the two hand-made objects.
async fn hand_made_versions(env: &sync_common::Env) -> Vec<(Option<String>, String)> {
    let mut out = Vec::new();
    for name in ["autosd-cs9-qemu", "hand-made"] {
        let image = env.image(name).await.expect("hand-made object exists");
        out.push((image.metadata.resource_version, image.spec.registry_url));
    }
    out
}

fn base64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}
