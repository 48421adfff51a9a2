//! Benchmark of the Kubernetes API emulator: 10,000 CatalogImages created by server-side
//! apply through kube-rs, then listed. Prints numbers (targets: creation under 20 s, a
//! 10,000-item list under 1 s, RSS under 200 MiB); asserts nothing.
//!
//! `cargo run --release -p catalog-e2e --bin bench-emulator [-- COUNT]`
//!
//! The emulator runs in a child process (this binary re-executed with `--serve`), so the RSS
//! printed is the emulator's own, read from `/proc/<pid>/status`.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::Context;
use catalog_e2e::emulator::{Emulator, EmulatorOptions};
use futures::{StreamExt, TryStreamExt};
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
};
use serde_json::json;

const CRDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../crds");

fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn image(i: usize) -> serde_json::Value {
    let arch = if i.is_multiple_of(2) {
        "arm64"
    } else {
        "amd64"
    };
    json!({
        "apiVersion": "automotive.sdv.cloud.redhat.com/v1alpha1",
        "kind": "CatalogImage",
        "metadata": {
            "name": format!("image-{i:05}"),
            "labels": {
                "automotive.sdv.cloud.redhat.com/architecture": arch,
                "automotive.sdv.cloud.redhat.com/distro": "cs9",
                "automotive.sdv.cloud.redhat.com/catalog-source": "production"
            },
            "annotations": {
                "automotive.sdv.cloud.redhat.com/source-revision": "0123456789abcdef0123456789abcdef01234567",
                "automotive.sdv.cloud.redhat.com/source-path": format!("environments/production/image-{i:05}.yaml")
            }
        },
        "spec": {
            "registryUrl": format!("quay.io/centos-automotive/autosd:build-{i}"),
            "digest": format!("sha256:{:064x}", i),
            "tags": ["production", "tested"],
            "metadata": {
                "architecture": arch,
                "distro": "cs9",
                "distroVersion": "9.4",
                "targets": [{"name": "qemu", "verified": true}, {"name": "raspberry-pi", "verified": false}],
                "bootcCapable": true
            }
        }
    })
}

/// Child mode: run an emulator with the CRDs until stdin closes.
fn serve() -> anyhow::Result<()> {
    let emu = Emulator::start(EmulatorOptions::with_crds(CRDS))
        .context("starting the emulator (are the CRDs in crds/?)")?;
    println!("{}", emu.url());
    std::io::stdout().flush()?;
    let mut sink = String::new();
    while std::io::stdin().read_line(&mut sink)? > 0 {}
    Ok(())
}

/// `GET path` over plain HTTP/1.0 (the hooks need no client library).
fn http_get(addr: &str, path: &str) -> anyhow::Result<String> {
    let mut s = std::net::TcpStream::connect(addr)?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or(out))
}

fn main() -> anyhow::Result<()> {
    if std::env::args().nth(1).as_deref() == Some("--serve") {
        return serve();
    }
    let count: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(10_000);
    let mut child = Command::new(std::env::current_exe()?)
        .arg("--serve")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let pid = child.id();
    let mut url = String::new();
    BufReader::new(child.stdout.take().context("child stdout")?).read_line(&mut url)?;
    let url = url.trim().to_string();
    anyhow::ensure!(
        url.starts_with("http://"),
        "the emulator child did not start"
    );
    let addr = url.trim_start_matches("http://").to_string();
    let baseline = rss_mib(pid);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut config = kube::Config::new(url.parse()?);
        config.default_namespace = "default".into();
        let client = kube::Client::try_from(config)?;
        let ar = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(
                "automotive.sdv.cloud.redhat.com",
                "v1alpha1",
                "CatalogImage",
            ),
            "catalogimages",
        );
        let api: Api<DynamicObject> = Api::namespaced_with(client, "default", &ar);
        let pp = PatchParams::apply("bench");

        let start = Instant::now();
        futures::stream::iter(0..count)
            .map(|i| {
                let api = api.clone();
                let pp = pp.clone();
                async move {
                    let name = format!("image-{i:05}");
                    api.patch(&name, &pp, &Patch::Apply(image(i)))
                        .await
                        .map(|_| ())
                }
            })
            .buffer_unordered(16)
            .try_collect::<Vec<()>>()
            .await?;
        let create = start.elapsed();
        let rss_after_create = rss_mib(pid);

        let start = Instant::now();
        let list = api.list(&ListParams::default()).await?;
        let list_time = start.elapsed();
        anyhow::ensure!(
            list.items.len() == count,
            "listed {} of {count}",
            list.items.len()
        );

        let start = Instant::now();
        let raw = http_get(
            &addr,
            "/apis/automotive.sdv.cloud.redhat.com/v1alpha1/namespaces/default/catalogimages",
        )?;
        let raw_time = start.elapsed();

        let start = Instant::now();
        let mut paged = 0;
        let mut lp = ListParams::default().limit(500);
        loop {
            let page = api.list(&lp).await?;
            paged += page.items.len();
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(c) => lp = lp.continue_token(&c),
                None => break,
            }
        }
        let paged_time = start.elapsed();
        anyhow::ensure!(paged == count, "paged {paged} of {count}");

        println!("objects:                {count}");
        println!(
            "create by SSA:          {:.2} s ({:.0}/s, 16 in flight; target < 20 s)",
            create.as_secs_f64(),
            count as f64 / create.as_secs_f64()
        );
        println!(
            "list (one request):     {:.3} s (kube-rs, decoding included; target < 1 s)",
            list_time.as_secs_f64()
        );
        println!(
            "list (raw HTTP):        {:.3} s ({:.1} MiB of JSON; server and transfer only)",
            raw_time.as_secs_f64(),
            raw.len() as f64 / 1048576.0
        );
        println!("list (pages of 500):    {:.3} s", paged_time.as_secs_f64());
        println!("emulator RSS at start:  {baseline:.1} MiB");
        println!("emulator RSS, created:  {rss_after_create:.1} MiB (target < 200 MiB)");
        println!("emulator RSS, listed:   {:.1} MiB", rss_mib(pid));
        println!(
            "requests:               {}",
            http_get(&addr, "/emulator/requests")?
        );
        anyhow::Ok(())
    })?;
    drop(child.stdin.take());
    child.wait()?;
    Ok(())
}
