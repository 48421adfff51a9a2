//! kube-rs 5 against the Kubernetes API emulator: CRUD and optimistic concurrency, server-side
//! apply with conflicts, the status subresource, watchers and reflectors through a dropped
//! watch and a 410, a kube-runtime Controller, Events, and Lease create/renew.
//!
//! With `CATALOG_E2E_KUBECONFIG=/path/to/kubeconfig` the same tests run against that cluster
//! instead (the emulator-only steps, such as dropping watches or injecting faults, are skipped
//! there). Each test prints which one it ran on. A test CRD (`gadgets.e2e.catalog.example.com`)
//! is applied at runtime, so the tests do not depend on the catalog's own CRDs.

use std::time::{Duration, Instant};

use catalog_e2e::emulator::{EmulatorOptions, Fault};
use futures::{StreamExt, TryStreamExt};
use kube::ResourceExt;
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, WatchEvent,
    WatchParams,
};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use serde_json::{Value, json};

#[path = "emulator_support/kube_rs.rs"]
mod support;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crud_concurrency_and_status() {
    let env = Env::new("crud").await;
    let api = env.gadgets();
    let pp = PostParams::default();
    let g1 = api
        .create(&pp, &gadget("g1", json!({"size": 2}), json!({"tier": "a"})))
        .await
        .expect("create");
    assert!(
        g1.metadata.uid.is_some()
            && g1.metadata.creation_timestamp.is_some()
            && g1.metadata.resource_version.is_some()
    );
    assert_eq!(g1.metadata.generation, Some(1));
    assert_eq!(g1.data["spec"]["color"], "red", "schema default");
    assert_eq!(
        api_code(
            &api.create(&pp, &gadget("g1", json!({"size": 2}), json!({})))
                .await
                .expect_err("exists")
        ),
        409
    );
    api.create(&pp, &gadget("g2", json!({"size": 5}), json!({"tier": "b"})))
        .await
        .expect("create g2");
    let bad = api
        .create(
            &pp,
            &gadget("bad", json!({"size": 0, "color": "green"}), json!({})),
        )
        .await
        .expect_err("invalid");
    let kube::Error::Api(status) = &bad else {
        panic!("{bad:?}")
    };
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert!(
        status.message.contains("spec.size") && status.message.contains("spec.color"),
        "{}",
        status.message
    );

    let sel = |s: &str| ListParams::default().labels(s);
    assert_eq!(
        names(&api.list(&sel("tier in (a)")).await.expect("list").items),
        ["g1"]
    );
    assert_eq!(
        names(&api.list(&sel("tier!=a")).await.expect("list").items),
        ["g2"]
    );
    assert_eq!(
        names(&api.list(&sel("!tier")).await.expect("list").items),
        Vec::<String>::new()
    );
    assert_eq!(
        names(
            &api.list(&ListParams::default().fields("metadata.name=g2"))
                .await
                .expect("list")
                .items
        ),
        ["g2"]
    );

    // Optimistic concurrency: a replace with a stale resourceVersion is a 409.
    let mut current = api.get("g1").await.expect("get");
    current.data["spec"]["size"] = json!(3);
    let stale = current.clone();
    let updated = api.replace("g1", &pp, &current).await.expect("replace");
    assert_eq!(updated.metadata.generation, Some(2));
    assert_eq!(
        api_code(&api.replace("g1", &pp, &stale).await.expect_err("stale")),
        409
    );

    // Status subresource: separate in both directions, no generation bump.
    let st = api
        .patch_status("g1", &PatchParams::default(), &Patch::Merge(json!({"status": {"phase": "Ready", "observedGeneration": 2}, "spec": {"size": 99}})))
        .await
        .expect("patch_status");
    assert_eq!(
        (
            st.data["status"]["phase"].clone(),
            st.data["spec"]["size"].clone(),
            st.metadata.generation
        ),
        (json!("Ready"), json!(3), Some(2))
    );
    let main = api
        .patch(
            "g1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Hacked"}})),
        )
        .await
        .expect("patch");
    assert_eq!(main.data["status"]["phase"], "Ready");
    // Custom resources take no strategic merge patches (415), on a real server too.
    let strategic = api
        .patch(
            "g1",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"size": 4}})),
        )
        .await
        .expect_err("strategic merge on a custom resource");
    assert_eq!(api_code(&strategic), 415);

    // Paging with limit/continue sees every object exactly once.
    for i in 0..5 {
        api.create(
            &pp,
            &gadget(&format!("p{i}"), json!({"size": 1}), json!({"page": "yes"})),
        )
        .await
        .expect("create");
    }
    let mut seen = Vec::new();
    let mut lp = ListParams::default().limit(2);
    loop {
        let page = api.list(&lp).await.expect("page");
        seen.extend(page.items.iter().map(ResourceExt::name_any));
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(c) => lp = lp.continue_token(&c),
            None => break,
        }
    }
    assert_eq!(seen, ["g1", "g2", "p0", "p1", "p2", "p3", "p4"]);

    // Delete: immediate without finalizers, pending with one.
    assert!(
        api.delete("g2", &DeleteParams::default())
            .await
            .expect("delete")
            .is_right()
    );
    api.patch(
        "g1",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": ["e2e.catalog.example.com/hold"]}})),
    )
    .await
    .expect("add finalizer");
    let pending = api
        .delete("g1", &DeleteParams::default())
        .await
        .expect("delete")
        .left()
        .expect("still there");
    assert!(pending.metadata.deletion_timestamp.is_some());
    api.patch(
        "g1",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("release");
    assert_eq!(api_code(&api.get("g1").await.expect_err("gone")), 404);
    api.delete_collection(&DeleteParams::default(), &sel("page=yes"))
        .await
        .expect("delete_collection");
    assert!(
        api.list(&ListParams::default())
            .await
            .expect("list")
            .items
            .is_empty()
    );
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_and_field_managers() {
    let env = Env::new("ssa").await;
    let api = env.gadgets();
    let g = |size: i64, parts: Value| gadget("s", json!({"size": size, "parts": parts}), json!({}));
    let alice = PatchParams::apply("alice");
    let created = api
        .patch(
            "s",
            &alice,
            &Patch::Apply(g(2, json!([{"name": "a", "count": 1}]))),
        )
        .await
        .expect("apply creates");
    let managers: Vec<String> = created
        .managed_fields()
        .iter()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert_eq!(managers, ["alice"]);
    let err = api
        .patch(
            "s",
            &PatchParams::apply("bob"),
            &Patch::Apply(g(3, json!([{"name": "b"}]))),
        )
        .await
        .expect_err("conflict");
    let kube::Error::Api(status) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(status.code, 409);
    assert!(
        status.message.contains("conflict with \"alice\"") && status.message.contains(".spec.size"),
        "{}",
        status.message
    );
    // Forced: bob takes spec.size; list-map elements of both managers are merged by key.
    let forced = api
        .patch(
            "s",
            &PatchParams::apply("bob").force(),
            &Patch::Apply(g(3, json!([{"name": "b"}]))),
        )
        .await
        .expect("forced");
    assert_eq!(forced.data["spec"]["size"], 3);
    assert_eq!(
        forced.data["spec"]["parts"],
        json!([{"name": "a", "count": 1}, {"name": "b"}])
    );
    // Alice stops applying her part: it is removed; bob's stays.
    let a2 = gadget("s", json!({"size": 3}), json!({}));
    let after = api
        .patch("s", &alice, &Patch::Apply(a2))
        .await
        .expect("alice again");
    assert_eq!(after.data["spec"]["parts"], json!([{"name": "b"}]));
    // Status through SSA on the subresource.
    let status = json!({"apiVersion": "e2e.catalog.example.com/v1", "kind": "Gadget", "status": {"phase": "Applied"}});
    let st = api
        .patch_status(
            "s",
            &PatchParams::apply("status-writer"),
            &Patch::Apply(status),
        )
        .await
        .expect("apply status");
    assert_eq!(st.data["status"]["phase"], "Applied");
    assert!(
        st.managed_fields()
            .iter()
            .any(|m| m.manager.as_deref() == Some("status-writer")
                && m.subresource.as_deref() == Some("status"))
    );
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_and_reflector_survive_dropped_watch_and_410() {
    let env = Env::with(
        "watch",
        EmulatorOptions {
            bookmark_interval: Duration::from_millis(200),
            ..Default::default()
        },
    )
    .await;
    let api = env.gadgets();
    let pp = PostParams::default();
    let writer = reflector::store::Writer::<DynamicObject>::new(gadget_resource());
    let reader = writer.as_reader();
    let stream = watcher(api.clone(), watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .applied_objects();
    let task = tokio::spawn(stream.for_each(|_| async {}));
    let store_names = || {
        let mut n: Vec<String> = reader.state().iter().map(|o| o.name_any()).collect();
        n.sort();
        n
    };
    for n in ["w1", "w2"] {
        api.create(&pp, &gadget(n, json!({"size": 1}), json!({"tier": "a"})))
            .await
            .expect("create");
    }
    until("reflector has w1, w2", || async {
        (store_names() == ["w1", "w2"]).then_some(())
    })
    .await;

    if let Some(emu) = &env.emu {
        // Dropped watch: the watcher resumes from its resourceVersion and misses nothing.
        let watches = emu.request_count("watch gadgets");
        emu.drop_watches();
        api.create(&pp, &gadget("w3", json!({"size": 1}), json!({})))
            .await
            .expect("create w3");
        until("reflector has w3", || async {
            store_names().contains(&"w3".to_string()).then_some(())
        })
        .await;
        until("watch resumed", || async {
            (emu.request_count("watch gadgets") > watches).then_some(())
        })
        .await;

        // Compacted history: the resumed watch gets 410 Expired and the watcher relists.
        let lists = emu.request_count("list gadgets");
        emu.compact();
        api.delete("w1", &DeleteParams::default())
            .await
            .expect("delete w1");
        api.create(&pp, &gadget("w4", json!({"size": 1}), json!({})))
            .await
            .expect("create w4");
        until("reflector converges after 410", || async {
            (store_names() == ["w2", "w3", "w4"]).then_some(())
        })
        .await;
        assert!(
            emu.request_count("list gadgets") > lists,
            "the watcher relisted after 410"
        );
    } else {
        eprintln!(
            "dropped-watch and 410 steps need the emulator's hooks; skipped on a real cluster"
        );
    }

    // A raw watch: replay after a resourceVersion, selector transitions, bookmarks, timeout.
    let rv = api
        .list(&ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("rv");
    let wp = WatchParams::default().labels("tier=a").timeout(5);
    let mut events = api.watch(&wp, &rv).await.expect("watch").boxed();
    api.patch(
        "w2",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"tier": "b"}}})),
    )
    .await
    .expect("relabel");
    let ev = loop {
        let ev = tokio::time::timeout(DEADLINE, events.try_next())
            .await
            .expect("event in time")
            .expect("stream")
            .expect("event");
        if !matches!(ev, WatchEvent::Bookmark(_)) {
            break ev;
        }
    };
    assert!(
        matches!(&ev, WatchEvent::Deleted(o) if o.name_any() == "w2"),
        "leaving the selector is DELETED: {ev:?}"
    );
    if let Some(emu) = &env.emu {
        let wp = WatchParams::default().timeout(1);
        let evs: Vec<_> = api
            .watch(&wp, &rv)
            .await
            .expect("watch")
            .try_collect()
            .await
            .expect("events until timeout");
        assert!(
            evs.iter().any(|e| matches!(e, WatchEvent::Bookmark(_))),
            "bookmarks: {evs:?}"
        );
        emu.compact();
        let mut expired = api
            .watch(&WatchParams::default(), &rv)
            .await
            .expect("watch")
            .boxed();
        let first = tokio::time::timeout(DEADLINE, expired.try_next())
            .await
            .expect("in time")
            .expect("stream")
            .expect("event");
        assert!(
            matches!(first, WatchEvent::Error(ref e) if e.code == 410),
            "{first:?}"
        );
    }
    task.abort();
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_latency_counters_and_auth() {
    if std::env::var("CATALOG_E2E_KUBECONFIG").is_ok() {
        eprintln!(
            "emulator_kube_rs::faults: needs the emulator's hooks; skipped on a real cluster"
        );
        return;
    }
    let opts = EmulatorOptions {
        token: Some("good".into()),
        forbidden_token: Some("denied".into()),
        ..Default::default()
    };
    let env = Env::with("faults", opts).await;
    let emu = env.emu.as_ref().expect("emulator");
    let api = env.gadgets();
    emu.reset_requests();
    emu.fail_next(Fault::resource("gadgets").verb("list").status(500));
    assert_eq!(
        api_code(
            &api.list(&ListParams::default())
                .await
                .expect_err("injected 500")
        ),
        500
    );
    // kube-rs retries 429 by itself; the emulator saw both attempts.
    emu.fail_next(
        Fault::resource("gadgets")
            .verb("list")
            .status(429)
            .retry_after(0),
    );
    api.list(&ListParams::default())
        .await
        .expect("retried after 429");
    assert_eq!(emu.request_count("list gadgets"), 3);
    api.create(
        &PostParams::default(),
        &gadget("f", json!({"size": 1}), json!({})),
    )
    .await
    .expect("create");
    api.patch_status(
        "f",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "x"}})),
    )
    .await
    .expect("status");
    assert_eq!(emu.request_count("create gadgets"), 1);
    assert_eq!(emu.request_count("patch gadgets/status"), 1);
    assert_eq!(emu.writes(), 2);
    emu.set_latency(Duration::from_millis(300));
    let t = Instant::now();
    api.get("f").await.expect("get");
    assert!(t.elapsed() >= Duration::from_millis(300));
    emu.set_latency(Duration::ZERO);
    for (token, code) in [(None, 401), (Some("wrong"), 401), (Some("denied"), 403)] {
        let other: Api<DynamicObject> = Api::namespaced_with(
            emu.kube_client_with_token(token),
            &env.ns,
            &gadget_resource(),
        );
        assert_eq!(
            api_code(
                &other
                    .list(&ListParams::default())
                    .await
                    .expect_err("rejected")
            ),
            code,
            "token {token:?}"
        );
    }
    env.cleanup().await;
}

#[path = "emulator_support/kube_rs_runtime.rs"]
mod kube_rs_runtime;
