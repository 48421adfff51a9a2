//! What the benchmarks share so that each measures the process as shipped: one
//! `catalog-reconciler` running both controllers with `--leader-elect`, authenticated as the
//! ServiceAccount of `deploy/rbac.yaml` (so the emulator enforces that RBAC on every request),
//! in a cluster that also holds large Secrets the reconciler has no business reading.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Context as _;
use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use serde_json::Value;

use crate::emulator::Emulator;
use crate::fixture;
use crate::process::binary_near;

/// The namespace `deploy/` installs the reconciler into (its Lease lives there).
pub const SYSTEM_NAMESPACE: &str = "catalog-system";
/// The ServiceAccount of `deploy/rbac.yaml`.
pub const SERVICE_ACCOUNT: &str = "catalog-reconciler";
/// Unrelated Secrets: a busy cluster's, which must cost the reconciler nothing.
pub const UNRELATED_NAMESPACES: usize = 10;
pub const UNRELATED_SECRETS: usize = 300;
pub const UNRELATED_SECRET_BYTES: usize = 500 * 1024;

/// Creates the system namespace and every object of `deploy/rbac.yaml` with the admin
/// client: the file itself, not a copy, so a benchmark fails when the shipped RBAC does.
pub async fn install_rbac(client: &kube::Client) -> anyhow::Result<()> {
    fixture::create_namespace(client, SYSTEM_NAMESPACE).await?;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/rbac.yaml");
    let text = std::fs::read_to_string(&path)?;
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).context("deploy/rbac.yaml")?;
    for doc in docs.into_iter().filter(|d| d.is_object()) {
        create_object(client, doc).await?;
    }
    Ok(())
}

/// Creates one object whose kind's plural is its lowercased kind plus "s" (true of every
/// kind in `deploy/rbac.yaml`).
async fn create_object(client: &kube::Client, doc: Value) -> anyhow::Result<()> {
    let api_version = doc["apiVersion"].as_str().context("apiVersion")?;
    let kind = doc["kind"].as_str().context("kind")?;
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let resource = ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: api_version.into(),
        kind: kind.into(),
        plural: format!("{}s", kind.to_lowercase()),
    };
    let object: DynamicObject = serde_json::from_value(doc.clone())?;
    let api: Api<DynamicObject> = match doc["metadata"]["namespace"].as_str() {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    api.create(&PostParams::default(), &object)
        .await
        .with_context(|| format!("creating {kind} from deploy/rbac.yaml"))?;
    Ok(())
}

/// Writes a kubeconfig that authenticates as the reconciler's ServiceAccount.
pub fn service_account_kubeconfig(emu: &Emulator, path: &Path) -> anyhow::Result<()> {
    let token = emu.token_for_service_account(SYSTEM_NAMESPACE, SERVICE_ACCOUNT)?;
    std::fs::write(path, emu.kubeconfig_with_token(Some(&token)))?;
    Ok(())
}

/// The reconciler as `deploy/deployment.yaml` runs it (both controllers, leader election
/// in the system namespace), serving webhooks and metrics on `127.0.0.1:http_port`.
pub fn shipped_reconciler(
    kubeconfig: &Path,
    http_port: u16,
    cache: PathBuf,
) -> anyhow::Result<Command> {
    let mut cmd = Command::new(binary_near("catalog-reconciler")?);
    cmd.args(["--leader-elect", "--log-format", "text"])
        .arg(format!("--http-addr=127.0.0.1:{http_port}"))
        .arg("--cache-dir")
        .arg(cache)
        .env("KUBECONFIG", kubeconfig)
        .env("POD_NAMESPACE", SYSTEM_NAMESPACE)
        .env("HOSTNAME", "catalog-reconciler-bench")
        .env(
            "RUST_LOG",
            std::env::var("BENCH_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    Ok(cmd)
}

/// [`UNRELATED_SECRETS`] Secrets of [`UNRELATED_SECRET_BYTES`] each over
/// [`UNRELATED_NAMESPACES`] namespaces `tenant-N`.
pub async fn create_unrelated_secrets(client: &kube::Client) -> anyhow::Result<()> {
    let blob: String = (0..UNRELATED_SECRET_BYTES)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    for n in 0..UNRELATED_NAMESPACES {
        fixture::create_namespace(client, &format!("tenant-{n}")).await?;
    }
    futures::stream::iter(0..UNRELATED_SECRETS)
        .map(|i| {
            let api: Api<Secret> = Api::namespaced(
                client.clone(),
                &format!("tenant-{}", i % UNRELATED_NAMESPACES),
            );
            let secret = fixture::secret(&format!("blob-{i}"), None, &[("blob", blob.as_str())]);
            async move {
                api.create(&PostParams::default(), &secret)
                    .await
                    .map(|_| ())
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .context("creating the unrelated Secrets")?;
    Ok(())
}

/// The write requests (create, update, patch, delete) among `requests`, keyed "verb
/// resource", for reporting every write a phase made rather than a total.
pub fn writes(requests: &std::collections::BTreeMap<String, u64>) -> String {
    let writes: Vec<String> = requests
        .iter()
        .filter(|(key, _)| {
            [
                "create ",
                "update ",
                "patch ",
                "delete",
                "deletecollection ",
            ]
            .iter()
            .any(|verb| key.starts_with(verb))
        })
        .map(|(key, n)| format!("{n} {key}"))
        .collect();
    if writes.is_empty() {
        "none".into()
    } else {
        writes.join(", ")
    }
}

/// A duration as milliseconds with one decimal, as the benchmarks print them.
pub fn ms(d: std::time::Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// `kubectl apply --server-side -f dir` of the same `n` files against the same emulator,
/// twice (the second is a no-op), with its time and writes: what a user without the
/// reconciler would run.
pub fn kubectl_apply_comparison(
    emu: &Emulator,
    n: usize,
    dir: &Path,
    kubeconfig: &Path,
    tmp: &Path,
) -> anyhow::Result<()> {
    let installed = Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !installed {
        println!("kubectl not found: comparison skipped (install kubectl)");
        return Ok(());
    }
    let home = tmp.join("kubectl-home");
    std::fs::create_dir_all(&home)?;
    let apply_all = || {
        Command::new("kubectl")
            .args([
                "apply",
                "--server-side",
                "--field-manager",
                "bench",
                "-n",
                "bench-kubectl",
                "-f",
            ])
            .arg(dir)
            .env("KUBECONFIG", kubeconfig)
            .env("HOME", &home)
            .stdout(Stdio::null())
            .output()
    };
    emu.reset_requests();
    let t = std::time::Instant::now();
    let out = apply_all()?;
    let took = t.elapsed();
    if out.status.success() {
        println!(
            "kubectl apply --server-side -f DIR ({n} files): {} ({} API writes)",
            ms(took),
            emu.writes()
        );
    } else {
        println!(
            "kubectl apply failed after {}: {}",
            ms(took),
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .take(3)
                .collect::<Vec<_>>()
                .join(" | ")
        );
    }
    let t = std::time::Instant::now();
    let out = apply_all()?;
    println!(
        "kubectl apply --server-side again (no-op): {} (success: {})",
        ms(t.elapsed()),
        out.status.success()
    );
    Ok(())
}
