//! A hostile catalog repository or git remote: an alias bomb, a 50 MiB file, 30,000 entry
//! files, remotes that never answer or trickle bytes. Each is reported on its CatalogSource,
//! the reconciler's memory stays bounded and the other sources keep syncing.

use std::time::{Duration, Instant};

use catalog_e2e::git::{BareRepo, Change, GitDaemon, SilentRemote};
use catalog_e2e::process::{eventually, peak_rss_mib};
use serde_json::json;

use crate::sync_common::*;

/// Peak resident memory the reconciler must stay under while it reads hostile input.
const RSS_LIMIT_MIB: f64 = 150.0;

/// Under 100 KiB of YAML that expands to about 100 MiB: one 64 KiB string repeated
/// 8 x 8 x 24 times through nested aliases.
fn alias_bomb() -> String {
    let mut text = entry_yaml("bomb", "quay.io/acme/bomb:1");
    text.push_str(&format!("x-a: &a \"{}\"\n", "a".repeat(64 * 1024)));
    text.push_str("x-b: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n");
    text.push_str("x-c: &c [*b, *b, *b, *b, *b, *b, *b, *b]\n");
    text.push_str(&format!("x-d: [{}]\n", vec!["*c"; 24].join(", ")));
    text
}

fn invalid<'a>(source: &'a catalog_api::CatalogSource, path: &str) -> Option<&'a str> {
    let status = source.status.as_ref()?;
    let entry = status.invalid_entries.iter().find(|e| e.path == path)?;
    Some(entry.message.as_str())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alias_bomb_a_50_mib_file_and_30000_files_are_reported_in_bounded_memory() {
    let catalog = BareRepo::from_template("catalog").unwrap();
    let bomb = alias_bomb();
    assert!(
        bomb.len() < 100 * 1024,
        "premise: the bomb is under 100 KiB"
    );
    let hostile = catalog
        .commit(
            "main",
            "hostile files",
            &[
                Change::write("environments/dev/bomb.yaml", &bomb),
                Change::write("environments/dev/zeros.yaml", vec![0u8; 50 * 1024 * 1024]),
            ],
        )
        .unwrap();
    let crowded = BareRepo::new("crowded").unwrap();
    let first = crowded
        .write(
            "main",
            "crowd/first.yaml",
            entry_yaml("crowd-first", "quay.io/acme/c:1"),
        )
        .unwrap();
    let healthy = BareRepo::new("healthy").unwrap();
    healthy
        .write(
            "main",
            "live/healthy-1.yaml",
            entry_yaml("healthy-1", "quay.io/acme/h:1"),
        )
        .unwrap();
    let daemons: Vec<GitDaemon> = [&catalog, &crowded, &healthy]
        .iter()
        .map(|r| GitDaemon::start_for(r.base_path()).unwrap())
        .collect();
    let mut env = Env::start().await;
    env.spawn_reconciler(&[]);
    let pid = env.reconciler_pid().expect("the reconciler runs");
    env.create_source("dev", &daemons[0].url(&catalog), json!({}))
        .await;
    env.create_source(
        "crowded",
        &daemons[1].url(&crowded),
        json!({"path": "crowd", "interval": "1s"}),
    )
    .await;
    env.create_source(
        "healthy",
        &daemons[2].url(&healthy),
        json!({"path": "live", "interval": "1s"}),
    )
    .await;

    // The alias bomb and the 50 MiB file: each reported with its path, the rest applied.
    let dev = env.wait_applied("dev", &hostile).await;
    let (_, reason, message) = ready(&dev).unwrap();
    eprintln!("dev Ready: {reason}: {message}");
    assert_eq!(reason, "InvalidEntries");
    let bomb_error = invalid(&dev, "environments/dev/bomb.yaml").expect("bomb.yaml reported");
    assert!(bomb_error.contains("expands past 4 MiB"), "{bomb_error}");
    let zeros_error = invalid(&dev, "environments/dev/zeros.yaml").expect("zeros.yaml reported");
    assert!(
        zeros_error.contains("52428800 bytes, over the 256 KiB limit"),
        "{zeros_error}"
    );
    assert!(zeros_error.contains("not read"), "{zeros_error}");
    for name in TEMPLATE_DEV {
        assert!(env.image(name).await.is_some(), "{name} applied");
    }
    assert!(env.image("bomb").await.is_none());

    // 30,000 entry files: refused before parsing, the previous revision stays applied.
    env.wait_applied("crowded", &first).await;
    let paths = (0..30_000).map(|i| format!("crowd/many/e{i:05}.yaml"));
    let many = crowded
        .commit_copies(
            "main",
            paths,
            entry_yaml("same", "quay.io/acme/s:1").as_bytes(),
        )
        .unwrap();
    let source = env
        .wait_source_where(
            "crowded",
            "TooManyEntries at the 30,000-file revision",
            |s| {
                ready(s).is_some_and(|c| c.1 == "TooManyEntries")
                    && s.status
                        .as_ref()
                        .and_then(|s| s.last_fetched_revision.as_deref())
                        == Some(many.as_str())
            },
        )
        .await;
    let (status, _, message) = ready(&source).unwrap();
    eprintln!("crowded Ready: {message}");
    assert_eq!(status, "False");
    assert!(
        message.contains("holds 30001 entry files, over the limit of 20000"),
        "{message}"
    );
    assert!(message.contains("--max-entries-per-source"), "{message}");
    let applied = source
        .status
        .as_ref()
        .and_then(|s| s.last_applied_revision.clone());
    assert_eq!(
        applied.as_deref(),
        Some(first.as_str()),
        "the previous revision stays applied"
    );
    assert!(env.image("crowd-first").await.is_some(), "nothing pruned");
    assert!(env.image("same").await.is_none(), "nothing applied");

    // The healthy source kept syncing throughout.
    let next = healthy
        .write(
            "main",
            "live/healthy-2.yaml",
            entry_yaml("healthy-2", "quay.io/acme/h:2"),
        )
        .unwrap();
    env.wait_applied("healthy", &next).await;

    let peak = peak_rss_mib(pid);
    eprintln!("reconciler peak RSS: {peak:.1} MiB");
    assert!(peak.is_finite(), "premise: the reconciler is still running");
    assert!(peak < RSS_LIMIT_MIB, "peak RSS {peak:.1} MiB");
}

#[tokio::test(flavor = "multi_thread")]
async fn eight_remotes_that_never_answer_do_not_delay_a_healthy_source() {
    let mut silent = Vec::new();
    for _ in 0..8 {
        silent.push(SilentRemote::start().await.unwrap());
    }
    let healthy = BareRepo::from_template("catalog").unwrap();
    let mut env = Env::start().await;
    env.spawn_reconciler(&[]);
    // The default 60s timeout: longer than this test waits for anything.
    for (i, remote) in silent.iter().enumerate() {
        env.create_source(
            &format!("stuck-{i}"),
            &remote.http_url("catalog"),
            json!({}),
        )
        .await;
    }
    let connected = || silent.iter().filter(|r| r.connections() > 0).count();
    eventually(
        WAIT,
        "every sync worker to wait on a silent remote",
        || async { (connected() >= 4).then_some(()) },
    )
    .await;

    let created = Instant::now();
    env.create_source("healthy", &healthy.file_url(), json!({"interval": "2s"}))
        .await;
    env.wait_applied("healthy", &healthy.head("main").unwrap())
        .await;
    let first_sync = created.elapsed();
    eprintln!(
        "healthy applied after {first_sync:?}; silent remotes connected: {}",
        connected()
    );
    assert!(first_sync < Duration::from_secs(10), "{first_sync:?}");
    assert_eq!(
        connected(),
        8,
        "every stuck source is fetching at the same time"
    );
    let next = healthy
        .write(
            "main",
            "environments/dev/next.yaml",
            entry_yaml("next", "quay.io/acme/n:1"),
        )
        .unwrap();
    env.wait_applied("healthy", &next).await;
    for i in 0..8 {
        let stuck = env.source(&format!("stuck-{i}")).await;
        let applied = stuck.status.and_then(|s| s.last_applied_revision);
        assert_eq!(applied, None, "stuck-{i} applied nothing");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trickling_remote_is_cut_at_spec_timeout_and_not_connected_to_again_meanwhile() {
    let trickle = SilentRemote::start_trickling(Duration::from_millis(500))
        .await
        .unwrap();
    let mut env = Env::start().await;
    env.spawn_reconciler(&[]);
    let created = Instant::now();
    env.create_source(
        "trickle",
        &trickle.http_url("catalog"),
        json!({"timeout": "2s", "interval": "1s"}),
    )
    .await;
    let source = env.wait_ready_reason("trickle", "FetchFailed").await;
    let elapsed = created.elapsed();
    let message = ready(&source).unwrap().2;
    eprintln!("Ready after {elapsed:?}: {message}");
    assert!(message.contains("timed out after 2s"), "{message}");
    assert!(message.contains(&trickle.http_url("catalog")), "{message}");
    assert!(
        elapsed < Duration::from_secs(8),
        "a 2s deadline reported after {elapsed:?}"
    );

    // The retry finds the first connection still trickling and does not open another.
    let source = env
        .wait_source_where("trickle", "a retry while the first fetch still runs", |s| {
            ready(s).is_some_and(|c| c.2.contains("still open"))
        })
        .await;
    eprintln!("retry: {}", ready(&source).unwrap().2);
    assert_eq!(
        trickle.connections(),
        1,
        "one connection, however long it trickles"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_source_removes_its_cache_and_a_restart_removes_orphans() {
    let repo = BareRepo::from_template("catalog").unwrap();
    let daemon = GitDaemon::start_for(repo.base_path()).unwrap();
    let mut env = Env::start().await;
    env.spawn_reconciler(&[]);
    env.create_source("dev", &daemon.url(&repo), json!({}))
        .await;
    env.wait_applied("dev", &repo.head("main").unwrap()).await;
    let cache = env.cache_dir().join(NS).join("dev.git");
    assert!(
        cache.join("HEAD").is_file(),
        "premise: {} holds the cache",
        cache.display()
    );

    env.sources()
        .delete("dev", &Default::default())
        .await
        .unwrap();
    eventually(WAIT, "the deleted source's cache to be removed", || async {
        (!cache.exists()).then_some(())
    })
    .await;

    env.kill_reconciler();
    let orphan = env.cache_dir().join(NS).join("ghost.git");
    std::fs::create_dir_all(orphan.join("objects")).unwrap();
    env.spawn_reconciler(&[]);
    eventually(
        WAIT,
        "the cache of a source deleted while down to be removed",
        || async { (!orphan.exists()).then_some(()) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_branch_is_fetched_shallow_over_the_network_and_later_commits_still_sync() {
    let repo = BareRepo::from_template("catalog").unwrap();
    let daemon = GitDaemon::start_for(repo.base_path()).unwrap();
    let mut env = Env::start().await;
    env.spawn_reconciler(&[]);
    env.create_source("dev", &daemon.url(&repo), json!({"interval": "1s"}))
        .await;
    let first = repo.head("main").unwrap();
    env.wait_applied("dev", &first).await;
    // libgit2 records the commits whose parents it did not fetch in `shallow`.
    let shallow_file = env.cache_dir().join(NS).join("dev.git").join("shallow");
    let shallow = std::fs::read_to_string(&shallow_file).unwrap_or_default();
    assert_eq!(shallow.trim(), first, "only the tip was fetched");

    let next = repo
        .write(
            "main",
            "environments/dev/next.yaml",
            entry_yaml("next", "quay.io/acme/n:1"),
        )
        .unwrap();
    env.wait_applied("dev", &next).await;
    assert!(env.image("next").await.is_some());
}
