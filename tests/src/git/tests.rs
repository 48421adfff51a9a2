//! Tests of the git harness against the real git CLI.

use super::*;
use tempfile::TempDir;

fn clone(url: &str, dest: &Path) -> anyhow::Result<String> {
    run_git(
        dest.parent().unwrap(),
        &["clone", "--quiet", url, dest.to_str().unwrap()],
        &[("GIT_TERMINAL_PROMPT", "0")],
    )
}

#[test]
fn commits_are_reproducible_and_readable() {
    let a = BareRepo::from_template("catalog").unwrap();
    let b = BareRepo::from_template("catalog").unwrap();
    assert_eq!(a.head("main"), b.head("main"));
    let sha = a
        .write("main", "environments/dev/x.yaml", "hello\n")
        .unwrap();
    assert_eq!(a.head("main").as_deref(), Some(sha.as_str()));
    assert_eq!(
        a.read("main", "environments/dev/x.yaml").unwrap(),
        b"hello\n"
    );
    assert!(a.read("main", "catalog.yaml").is_some());
    a.delete("main", "environments/dev/x.yaml").unwrap();
    assert!(a.read("main", "environments/dev/x.yaml").is_none());
    let branch = a.write("feature", "f.txt", "f").unwrap();
    assert_eq!(a.head("feature").as_deref(), Some(branch.as_str()));
    assert!(a.read("feature", "catalog.yaml").is_some());
}

#[test]
fn git_daemon_serves_and_stops() {
    let repo = BareRepo::from_template("catalog").unwrap();
    let mut daemon = GitDaemon::start_for(repo.base_path()).unwrap();
    let tmp = TempDir::new().unwrap();
    clone(&daemon.url(&repo), &tmp.path().join("one")).unwrap();
    daemon.stop();
    assert!(clone(&daemon.url(&repo), &tmp.path().join("two")).is_err());
    daemon.start().unwrap();
    clone(&daemon.url(&repo), &tmp.path().join("three")).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn smart_http_clone_push_and_auth() {
    let repo = BareRepo::from_template("catalog").unwrap();
    let http = SmartHttp::start(repo.base_path(), "alice", "s3cret")
        .await
        .unwrap();
    let tmp = TempDir::new().unwrap();
    let good = http.url_with_credentials(&repo);
    let work = tmp.path().join("work");
    let (g, w) = (good.clone(), work.clone());
    tokio::task::spawn_blocking(move || clone(&g, &w))
        .await
        .unwrap()
        .unwrap();
    std::fs::write(work.join("pushed.txt"), "x").unwrap();
    let w = work.clone();
    tokio::task::spawn_blocking(move || {
        let envs = [
            ("GIT_AUTHOR_NAME", "a"),
            ("GIT_AUTHOR_EMAIL", "a@b"),
            ("GIT_COMMITTER_NAME", "a"),
            ("GIT_COMMITTER_EMAIL", "a@b"),
            ("GIT_TERMINAL_PROMPT", "0"),
        ];
        run_git(&w, &["add", "pushed.txt"], &envs)?;
        run_git(&w, &["commit", "-q", "-m", "push"], &envs)?;
        run_git(&w, &["push", "-q", "origin", "HEAD:main"], &envs)
    })
    .await
    .unwrap()
    .unwrap();
    assert!(repo.read("main", "pushed.txt").is_some());
    let bad = http.url(&repo).replace("http://", "http://alice:wrong@");
    let dest = tmp.path().join("bad");
    let err = tokio::task::spawn_blocking(move || clone(&bad, &dest))
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("Authentication failed") || format!("{err:#}").contains("401"),
        "{err:#}"
    );
    http.set_reachable(false);
    let dest = tmp.path().join("down");
    assert!(
        tokio::task::spawn_blocking(move || clone(&good, &dest))
            .await
            .unwrap()
            .is_err()
    );
}

#[test]
fn free_ports_are_below_the_ephemeral_range_and_never_repeat() {
    let ephemeral_start: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    let ports: Vec<u16> = (0..50).map(|_| free_port()).collect();
    assert!(ports.iter().all(|p| *p < ephemeral_start), "{ports:?}");
    let distinct: std::collections::BTreeSet<_> = ports.iter().collect();
    assert_eq!(distinct.len(), ports.len(), "{ports:?}");
    for port in ports {
        std::net::TcpListener::bind(("127.0.0.1", port)).expect("still free");
    }
}
