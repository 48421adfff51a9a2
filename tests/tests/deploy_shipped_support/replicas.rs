//! Reconciler processes started the way `deploy/deployment.yaml` starts its pods.
//!
//! The container's arguments and environment are read from the rendered Deployment, never
//! copied here. What must differ on a test machine is replaced and nothing else:
//! - `--http-addr` and `--metrics-addr`: 127.0.0.1 and a free port per replica (two
//!   processes share one network namespace here, unlike two pods);
//! - `--cache-dir`: a temporary directory per replica (the pod's emptyDir);
//! - the downward-API variables get the values the kubelet would give: `POD_NAMESPACE` the
//!   Deployment's namespace, `HOSTNAME` a pod name of its own per replica;
//! - one argument is added, `--insecure-registry` for the test registry, which serves plain
//!   HTTP on loopback where production registries serve HTTPS.
//!
//! `KUBECONFIG` stands for the pod's ServiceAccount credentials; see
//! [`super::Shipped::reconciler_credentials`].

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use catalog_e2e::git::free_port;
use catalog_e2e::process::binary;
use serde_json::Value;

use crate::deploy_support::{container, namespace, strs};

/// One running replica ("pod").
pub struct Replica {
    /// The pod name: `HOSTNAME`, hence the leader-election identity.
    pub name: String,
    pub http_port: u16,
    pub metrics_port: u16,
    child: Child,
    log: PathBuf,
}

/// What a replica needs besides the Deployment.
pub struct Launch<'a> {
    pub name: String,
    pub kubeconfig: &'a Path,
    pub dir: &'a Path,
    pub insecure_registry: Option<&'a str>,
}

/// The container's arguments with the addresses and the cache directory replaced (see the
/// module documentation); panics when one of those flags is missing from the Deployment.
pub fn shipped_args(deployment: &Value, http: u16, metrics: u16, cache: &Path) -> Vec<String> {
    let replaced = [
        ("--http-addr=", format!("127.0.0.1:{http}")),
        ("--metrics-addr=", format!("127.0.0.1:{metrics}")),
        ("--cache-dir=", cache.display().to_string()),
    ];
    let args = strs(&container(deployment)["args"]);
    for (flag, _) in &replaced {
        assert!(
            args.iter().any(|a| a.starts_with(flag)),
            "deploy/deployment.yaml has no {flag}VALUE argument: {args:?}"
        );
    }
    args.iter()
        .map(|arg| {
            let swap = replaced.iter().find(|(flag, _)| arg.starts_with(flag));
            match swap {
                Some((flag, value)) => format!("{flag}{value}"),
                None => arg.to_string(),
            }
        })
        .collect()
}

/// The container's environment, each downward-API field resolved as the kubelet would.
fn shipped_env(deployment: &Value, pod: &str) -> Vec<(String, String)> {
    let env = container(deployment)["env"].as_array().cloned();
    let resolve = |e: &Value| {
        let name = e["name"].as_str().unwrap_or_default().to_string();
        if let Some(value) = e["value"].as_str() {
            return (name, value.to_string());
        }
        let value = match e["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
            Some("metadata.namespace") => namespace(deployment).to_string(),
            Some("metadata.name") => pod.to_string(),
            other => panic!("the suite cannot resolve env {name} from {other:?}: {e}"),
        };
        (name, value)
    };
    env.unwrap_or_default().iter().map(resolve).collect()
}

impl Replica {
    /// Starts a replica of `deployment`.
    pub fn start(deployment: &Value, launch: &Launch) -> Replica {
        let (http_port, metrics_port) = (free_port(), free_port());
        let cache = launch.dir.join(format!("{}-cache", launch.name));
        let log = launch.dir.join(format!("{}.log", launch.name));
        let mut cmd = Command::new(binary("catalog-reconciler"));
        cmd.args(shipped_args(deployment, http_port, metrics_port, &cache));
        if let Some(host) = launch.insecure_registry {
            cmd.args(["--insecure-registry", host]);
        }
        cmd.envs(shipped_env(deployment, &launch.name))
            .env("KUBECONFIG", launch.kubeconfig)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        let child = cmd
            .spawn()
            .expect("catalog-reconciler starts (cargo build -p catalog-reconciler)");
        Replica {
            name: launch.name.clone(),
            http_port,
            metrics_port,
            child,
            log,
        }
    }

    /// Its stderr so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `http://127.0.0.1:PORT` of the webhook port.
    pub fn hook_base(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// Whether `path` on the probe port (the Deployment's probes target the metrics port)
    /// answers 200.
    pub async fn probe(&self, path: &str) -> bool {
        let url = format!("http://127.0.0.1:{}{path}", self.metrics_port);
        let answer = reqwest::get(url).await;
        answer.is_ok_and(|a| a.status().is_success())
    }

    /// `/metrics` as text (empty when it does not answer).
    pub async fn metrics(&self) -> String {
        let url = format!("http://127.0.0.1:{}/metrics", self.metrics_port);
        match reqwest::get(url).await {
            Ok(a) => a.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// SIGKILL, as a node failure or an OOM kill: no shutdown code runs.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, as the kubelet stops a pod; waits for the exit (at most 30 s, the default
    /// terminationGracePeriodSeconds).
    pub fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "{} ignored SIGTERM", self.name);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the process still runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}
