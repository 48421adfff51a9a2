//! Durations a tenant writes: a CatalogSource whose interval overflows the clock once killed
//! the reconciler at its first sync (and at every restart). The API server now refuses it; one
//! stored before the bound existed is refused by the reconciler, which keeps serving the rest.

use catalog_api::labels::RECONCILE_REQUESTED_AT;
use catalog_e2e::git::{BareRepo, Change};
use catalog_e2e::kubectl::Kubectl;
use serde_json::json;

use crate::sync_common::{Env, NS, entry_yaml, ready};

const HUGE: &str = "2562047788015215h";

fn source_object(name: &str, url: &str, interval: &str) -> serde_json::Value {
    json!({
        "apiVersion": "automotive.sdv.cloud.redhat.com/v1alpha1", "kind": "CatalogSource",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"url": url, "ref": {"branch": "main"}, "path": "environments/staging",
                 "interval": interval, "timeout": "60s"}
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interval_that_overflows_the_clock_is_refused_and_the_reconciler_survives() {
    let repo = BareRepo::from_template("catalog").unwrap();
    let mut env = Env::start().await;

    // The API server refuses it (the CRD's validation rule), with the field named.
    let refused = Kubectl::new(Some(&env.emu)).fails(
        &["apply", "-f", "-"],
        Some(&source_object("huge", &repo.file_url(), HUGE).to_string()),
    );
    assert!(
        refused.contains("spec.interval") && refused.contains("must be at most 720h (30 days)"),
        "{refused}"
    );

    // One stored before the bound existed.
    env.emu.store_raw(
        "automotive.sdv.cloud.redhat.com",
        "v1alpha1",
        "catalogsources",
        source_object("huge", &repo.file_url(), HUGE),
    );
    env.spawn_reconciler(&[]);
    env.create_source("good", &repo.file_url(), json!({})).await;
    env.wait_applied("good", &repo.head("main").unwrap()).await;
    let source = env.wait_ready_reason("huge", "InvalidSpec").await;
    let (_, _, message) = ready(&source).unwrap();
    assert!(
        message.contains("spec.interval") && message.contains("720h"),
        "{message}"
    );

    for attempt in 1..=5 {
        let value = format!("forced-{attempt}");
        env.patch_source(
            "huge",
            json!({"metadata": {"annotations": {RECONCILE_REQUESTED_AT: value}}}),
        )
        .await;
        env.wait_source("huge", &format!("forced sync {attempt} handled"), |s| {
            s.status
                .as_ref()
                .and_then(|s| s.last_handled_reconcile_at.as_deref())
                == Some(value.as_str())
        })
        .await;
        assert!(
            env.reconciler_running(),
            "the reconciler died at forced sync {attempt}"
        );
    }
    assert_eq!(
        ready(&env.source("huge").await).unwrap().1,
        "InvalidSpec",
        "still refused, nothing applied"
    );

    // Another source keeps syncing.
    let next = repo
        .commit(
            "main",
            "one more",
            &[Change::write(
                "environments/dev/after.yaml",
                entry_yaml("after", "quay.io/acme/after:1"),
            )],
        )
        .unwrap();
    env.patch_source(
        "good",
        json!({"metadata": {"annotations": {RECONCILE_REQUESTED_AT: "after"}}}),
    )
    .await;
    env.wait_applied("good", &next).await;
    assert!(env.reconciler_running());
    assert!(!env.logs().contains("panicked"), "{}", env.logs());
}
