//! The webhook endpoint (`POST /hook/<namespace>/<name>`) faces the internet: no delivery may
//! crash, starve or exhaust the reconciler, cost an API request, or tell which sources exist.

use std::time::{Duration, Instant};

use catalog_e2e::git::BareRepo;
use catalog_e2e::process::eventually;
use futures::StreamExt as _;
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::sync_common::*;

const TOKEN: &str = "s3cret";
const BODY: &[u8] = br#"{"ref":"refs/heads/main"}"#;

fn github(key: &str) -> (&'static str, String) {
    (
        "X-Hub-Signature-256",
        format!("sha256={}", hmac_hex(key, BODY)),
    )
}

/// Status, Content-Type and body of an answer.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    status: u16,
    content_type: Option<String>,
    body: String,
}

async fn post(client: &reqwest::Client, url: &str, headers: &[(&str, String)]) -> Answer {
    let mut request = client.post(url).body(BODY);
    for (k, v) in headers {
        request = request.header(*k, v);
    }
    let response = request.send().await.expect("the reconciler answers");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = response.text().await.expect("a body");
    Answer {
        status,
        content_type,
        body,
    }
}

/// An emulator, a reconciler started with `extra`, and source `dev` with a webhook Secret
/// `hook`, synced once.
async fn env_with_webhook_source(extra: &[&str]) -> (Env, BareRepo) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let repo = BareRepo::from_template("catalog").expect("template repository");
    let mut env = Env::start().await;
    env.create_secret("hook", &[("token", TOKEN)]).await;
    env.spawn_reconciler(extra);
    env.create_source(
        "dev",
        &repo.file_url(),
        json!({"webhook": {"secretRef": {"name": "hook"}}}),
    )
    .await;
    env.wait_applied("dev", &repo.head("main").expect("head"))
        .await;
    env.settle(Duration::from_millis(300)).await;
    (env, repo)
}

/// Current resident memory (VmRSS) of `pid` in MiB.
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status");
    kb / 1024.0
}

/// A lowercase DNS label of 12 characters, different for each `n`.
fn random_name(seed: u64, n: u64) -> String {
    let mut x = seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..12)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (b'a' + (x % 26) as u8) as char
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn deliveries_to_random_paths_cost_no_memory_and_no_api_request() {
    // A budget large enough that every delivery reaches the source lookup.
    let (env, _repo) =
        env_with_webhook_source(&["--webhook-unauthenticated-burst", "100000"]).await;
    let pid = env.reconciler_pid().expect("the reconciler runs");
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{}/hook", env.http_port);
    // Warm up the server's buffers and the allocator before measuring.
    for i in 0..50 {
        post(&client, &format!("{base}/warm/w{i}"), &[]).await;
    }
    let before_rss = rss_mib(pid);
    let before_requests = env.emu.requests();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    let urls: Vec<String> = (0..5_000u64)
        .map(|n| {
            let (ns, name) = (random_name(seed, n), random_name(!seed, n));
            format!("{base}/{ns}/{name}")
        })
        .collect();
    let signature = github(TOKEN);
    let answers: Vec<u16> = futures::stream::iter(&urls)
        .map(|url| {
            let (client, signature) = (client.clone(), signature.clone());
            async move { post(&client, url, &[signature]).await.status }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let after_rss = rss_mib(pid);
    assert_eq!(answers.len(), 5_000);
    assert!(
        answers.iter().all(|s| *s == 401),
        "every delivery to a source that does not exist is refused: {:?}",
        answers
            .iter()
            .filter(|s| **s != 401)
            .take(5)
            .collect::<Vec<_>>()
    );
    assert_eq!(
        env.emu.requests(),
        before_requests,
        "deliveries cause no API request"
    );
    let grew = after_rss - before_rss;
    eprintln!("reconciler RSS {before_rss:.1} MiB -> {after_rss:.1} MiB after 5,000 random paths");
    assert!(grew < 20.0, "RSS grew by {grew:.1} MiB");
}

#[tokio::test(flavor = "multi_thread")]
async fn unauthenticated_deliveries_do_not_spend_the_source_budget_nor_read_the_secret() {
    let (env, repo) = env_with_webhook_source(&[]).await;
    let client = reqwest::Client::new();
    let url = env.webhook_url("dev");
    let next = repo
        .write(
            "main",
            "environments/dev/one.yaml",
            entry_yaml("one", "quay.io/acme/one:1"),
        )
        .expect("commit");
    let secret_reads = env.emu.request_count("get secrets");
    let bad: [&[(&str, String)]; 3] = [
        &[github("wrong")],
        &[("X-Gitlab-Token", "nope".into())],
        &[],
    ];
    for i in 0..100 {
        let answer = post(&client, &url, bad[i % bad.len()]).await;
        assert_eq!(answer.status, 401, "delivery {i}: {answer:?}");
    }
    assert!(
        env.image("one").await.is_none(),
        "a refused delivery triggers nothing"
    );
    let answer = post(&client, &url, &[github(TOKEN)]).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    env.wait_applied("dev", &next).await;
    assert!(
        env.emu.request_count("get secrets") <= secret_reads + 1,
        "101 deliveries read the webhook Secret at most once: {} reads",
        env.emu.request_count("get secrets") - secret_reads
    );

    // A rotated token is used once the Secret changes, without a restart.
    env.put_secret(NS, "hook", None, &[("token", "rotated")])
        .await;
    eventually(WAIT, "the rotated token to be accepted", || async {
        (post(&client, &url, &[github("rotated")]).await.status == 202).then_some(())
    })
    .await;
    assert_eq!(post(&client, &url, &[github(TOKEN)]).await.status, 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_paths_are_refused_before_any_api_request() {
    let (env, _repo) = env_with_webhook_source(&[]).await;
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{}/hook", env.http_port);
    let before = env.emu.requests();
    let long = "a".repeat(64);
    for path in [
        format!("{NS}/de%2Fv"),
        format!("{NS}%2Fdev/dev"),
        format!("{NS}/%2F"),
        "Catalog/dev".to_string(),
        "-catalog/dev".to_string(),
        "cata_log/dev".to_string(),
        "cata.log/dev".to_string(),
        format!("{long}/dev"),
        format!("{NS}/Dev"),
        format!("{NS}/%FF"),
    ] {
        let answer = post(&client, &format!("{base}/{path}"), &[github(TOKEN)]).await;
        assert_eq!(answer.status, 400, "/hook/{path}: {answer:?}");
    }
    assert_eq!(env.emu.requests(), before, "no API request for a bad path");
    // The premise: the same source under a valid path is accepted.
    let answer = post(&client, &env.webhook_url("dev"), &[github(TOKEN)]).await;
    assert_eq!(answer.status, 202, "{answer:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_source_a_source_without_webhook_and_a_bad_signature_look_the_same() {
    let (env, repo) = env_with_webhook_source(&[]).await;
    env.create_source("plain", &repo.file_url(), json!({}))
        .await;
    env.wait_applied("plain", &repo.head("main").expect("head"))
        .await;
    let client = reqwest::Client::new();
    let signed = [github(TOKEN)];
    let missing = post(&client, &env.webhook_url("missing"), &signed).await;
    let no_webhook = post(&client, &env.webhook_url("plain"), &signed).await;
    let bad_signature = post(&client, &env.webhook_url("dev"), &[github("wrong")]).await;
    let unsigned = post(&client, &env.webhook_url("dev"), &[]).await;
    assert_eq!(missing.status, 401, "{missing:?}");
    assert_eq!(no_webhook, missing);
    assert_eq!(bad_signature, missing);
    assert_eq!(unsigned, missing);
    // The premise: the real signature is accepted at that path.
    assert_eq!(
        post(&client, &env.webhook_url("dev"), &signed).await.status,
        202
    );
}

/// Sends `sent` on a fresh connection and waits for the server to close it (at most 15 s);
/// returns how long that took and what the server sent.
async fn closed_after_stall(port: u16, sent: &[u8]) -> (Duration, String) {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    stream
        .write_all(sent)
        .await
        .expect("send part of a request");
    let start = Instant::now();
    let mut received = Vec::new();
    let closed =
        tokio::time::timeout(Duration::from_secs(15), stream.read_to_end(&mut received)).await;
    assert!(
        closed.is_ok(),
        "the server kept a stalled connection open for 15 s"
    );
    (
        start.elapsed(),
        String::from_utf8_lossy(&received).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_header_or_body_is_closed_within_15_seconds_and_a_huge_header_refused() {
    let (env, _repo) = env_with_webhook_source(&[]).await;
    let half_header = format!("POST /hook/{NS}/dev HTTP/1.1\r\nHost: x\r\nContent-Le");
    let half_body =
        format!("POST /hook/{NS}/dev HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{{\"ref\":");
    // A whole request on a keep-alive connection, then silence: idle connections close too.
    let idle = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    let ((header_took, _), (body_took, body_answer), (idle_took, idle_answer)) = tokio::join!(
        closed_after_stall(env.http_port, half_header.as_bytes()),
        closed_after_stall(env.http_port, half_body.as_bytes()),
        closed_after_stall(env.http_port, idle.as_bytes()),
    );
    eprintln!("half a header: closed after {header_took:?}");
    assert!(body_answer.starts_with("HTTP/1.1 408"), "{body_answer}");
    eprintln!("half a body: answered 408 and closed after {body_took:?}");
    assert!(idle_answer.starts_with("HTTP/1.1 200"), "{idle_answer}");
    eprintln!("idle keep-alive: closed after {idle_took:?}");
    let client = reqwest::Client::new();
    let huge = [("X-Padding", "a".repeat(64 * 1024)), github(TOKEN)];
    let answer = client
        .post(env.webhook_url("dev"))
        .header(huge[0].0, &huge[0].1)
        .header(huge[1].0, &huge[1].1)
        .body(BODY)
        .send()
        .await
        .expect("an answer to a 64 KiB header");
    assert_eq!(answer.status().as_u16(), 431, "a 64 KiB header is refused");
    // The server still serves.
    let answer = post(&client, &env.webhook_url("dev"), &[github(TOKEN)]).await;
    assert_eq!(answer.status, 202, "{answer:?}");
}

async fn get(port: u16, path: &str) -> (u16, String) {
    let response = reqwest::get(format!("http://127.0.0.1:{port}{path}"))
        .await
        .expect("the reconciler answers");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_move_to_their_own_address_and_leave_the_webhook_port() {
    let mut env = Env::start().await;
    env.spawn_reconciler(&[]);
    env.wait_serving().await;
    let port = env.http_port;
    let (status, body) = get(port, "/metrics").await;
    assert_eq!(status, 200, "by default /metrics is on --http-addr");
    assert!(body.contains("catalog_sync"), "{body}");

    let metrics_port = catalog_e2e::git::free_port();
    let metrics_addr = format!("127.0.0.1:{metrics_port}");
    env.spawn_reconciler(&["--metrics-addr", &metrics_addr]);
    // Ready (not only alive): its webhook caches listed, so /readyz answers 200 below.
    eventually(WAIT, "the metrics address to serve, ready", || async {
        reqwest::get(format!("http://127.0.0.1:{metrics_port}/readyz"))
            .await
            .ok()
            .filter(|r| r.status().is_success())
    })
    .await;
    let (status, body) = get(metrics_port, "/metrics").await;
    assert_eq!(status, 200);
    assert!(body.contains("catalog_sync"), "{body}");
    assert_eq!(
        get(port, "/metrics").await.0,
        404,
        "no /metrics on the webhook port"
    );
    for probe in ["/healthz", "/readyz"] {
        assert_eq!(get(port, probe).await.0, 200, "{probe} on --http-addr");
        assert_eq!(
            get(metrics_port, probe).await.0,
            200,
            "{probe} on --metrics-addr"
        );
    }
    let client = reqwest::Client::new();
    let on_metrics_port = format!("http://127.0.0.1:{metrics_port}/hook/{NS}/dev");
    assert_eq!(
        post(&client, &on_metrics_port, &[]).await.status,
        404,
        "no webhooks on the metrics port"
    );
    assert_eq!(
        post(&client, &env.webhook_url("missing"), &[]).await.status,
        401,
        "webhooks stay on --http-addr"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_connections_waits_its_turn_and_never_reaches_the_metrics_port() {
    let mut env = Env::start().await;
    let metrics_port = catalog_e2e::git::free_port();
    let metrics_addr = format!("127.0.0.1:{metrics_port}");
    env.spawn_reconciler(&[
        "--metrics-addr",
        &metrics_addr,
        "--http-max-connections",
        "4",
        "--http-read-timeout",
        "3s",
    ]);
    env.wait_serving().await;
    let port = env.http_port;
    // Four connections that send nothing hold every slot of the webhook port.
    let mut stalled = Vec::new();
    for _ in 0..4 {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        stalled.push(stream);
    }
    let mut fifth = tokio::spawn(get(port, "/healthz"));
    let probe = tokio::time::timeout(Duration::from_secs(2), get(metrics_port, "/healthz")).await;
    assert_eq!(
        probe.map(|a| a.0).ok(),
        Some(200),
        "the metrics port answers while the webhook port is full"
    );
    // The premise: the slots are held for 3 s, so a fifth client is not served within 1 s.
    assert!(
        tokio::time::timeout(Duration::from_secs(1), &mut fifth)
            .await
            .is_err(),
        "the webhook port is full: a fifth client waits"
    );
    // The stalled connections time out; the fifth client is served then.
    let (status, _) = tokio::time::timeout(Duration::from_secs(15), fifth)
        .await
        .expect("the fifth client is served once the stalled ones are closed")
        .expect("the request task");
    assert_eq!(status, 200);
    drop(stalled);
}
