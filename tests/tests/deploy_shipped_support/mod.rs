//! Harness of the `deploy_shipped` suite: a fresh cluster (kube-emulator) into which
//! `kubectl apply -k deploy/` installs the reconciler as shipped, its replicas started from
//! the rendered Deployment ([`replicas`]), every request they make recorded and checked
//! against the rendered RBAC ([`audit`]), and a tenant namespace with a CatalogSource.

pub mod audit;
pub mod replicas;

use std::path::PathBuf;
use std::time::Duration;

use catalog_api::{CatalogImage, CatalogSource};
use catalog_e2e::emulator::{Emulator, EmulatorOptions};
use catalog_e2e::fixture::{self, start_emulator};
use catalog_e2e::process::eventually;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::deploy_support::{kubectl, only, rendered, system_namespace};
use audit::{AuditProxy, Rules};
use replicas::{Launch, Replica};

/// The tenant namespace holding the CatalogSource and its CatalogImages.
pub const TENANT: &str = "dev";
/// The CatalogSource of the suite.
pub const SOURCE: &str = "catalog";
/// Its webhook token (the `token` key of Secret `hook`).
pub const TOKEN: &str = "s3cret-hook-token";
/// Generous bound for anything that should happen "at once" on a loaded 2-core machine.
pub const WAIT: Duration = Duration::from_secs(30);

/// The installed cluster and the replicas running in it.
pub struct Shipped {
    pub emu: Emulator,
    /// The test's own client (admin, straight to the emulator, not recorded).
    pub client: kube::Client,
    pub tmp: TempDir,
    pub proxy: AuditProxy,
    pub replicas: Vec<Replica>,
    /// host:port of the test registry, when the test has one.
    pub registry: Option<String>,
    started: usize,
}

impl Shipped {
    /// A fresh cluster with `kubectl apply -k deploy/` applied and its CRDs served.
    pub async fn install() -> Shipped {
        let tmp = tempfile::tempdir().unwrap();
        let options = EmulatorOptions {
            history_limit: 50_000,
            ..EmulatorOptions::default()
        };
        let emu = start_emulator(options, &tmp.path().join("kubeconfig"));
        let out = kubectl(Some(&emu)).ok(&["apply", "-k", "deploy/"]);
        assert!(
            out.contains("deployment.apps/catalog-reconciler created"),
            "{out}"
        );
        let client = emu.kube_client();
        let proxy = AuditProxy::start(&emu.url()).await;
        let env = Shipped {
            emu,
            client,
            tmp,
            proxy,
            replicas: Vec::new(),
            registry: None,
            started: 0,
        };
        let sources: Api<CatalogSource> = Api::all(env.client.clone());
        eventually(WAIT, "the CRDs of deploy/ to be served", || async {
            sources.list(&Default::default()).await.ok().map(|_| ())
        })
        .await;
        env
    }

    /// The credentials the reconciler processes run with: the one place that decides them.
    ///
    /// The replicas authenticate as the Deployment's ServiceAccount, with a token from the
    /// real `kubectl create token catalog-reconciler -n catalog-system`, so the emulator
    /// enforces `deploy/rbac.yaml` on every request they make. The kubeconfig points at the
    /// audit proxy, so every request is also recorded (kube-rs sends the token over plain
    /// HTTP; kubectl would not).
    pub fn reconciler_credentials(&self) -> PathBuf {
        let token = kubectl(Some(&self.emu))
            .ok(&[
                "create",
                "token",
                "catalog-reconciler",
                "-n",
                system_namespace(),
            ])
            .trim()
            .to_string();
        assert!(token.len() > 20, "kubectl create token printed {token:?}");
        let config = self.emu.kubeconfig_with_token(Some(&token));
        assert!(config.contains(&self.emu.url()), "{config}");
        let path = self.tmp.path().join("reconciler.kubeconfig");
        std::fs::write(&path, config.replace(&self.emu.url(), self.proxy.url())).unwrap();
        path
    }

    /// The Deployment as `deploy/` renders it.
    pub fn deployment() -> &'static Value {
        only(&rendered().0.objects, "Deployment")
    }

    /// Starts one more replica ("pod" `catalog-reconciler-<n>`); returns its index.
    pub fn start_replica(&mut self) -> usize {
        let kubeconfig = self.reconciler_credentials();
        let launch = Launch {
            name: format!("catalog-reconciler-{}", self.started),
            kubeconfig: &kubeconfig,
            dir: self.tmp.path(),
            insecure_registry: self.registry.as_deref(),
        };
        self.started += 1;
        self.replicas
            .push(Replica::start(Self::deployment(), &launch));
        self.replicas.len() - 1
    }

    /// Starts as many replicas as the Deployment asks for and waits until all are ready.
    pub async fn start_deployment(&mut self) {
        let wanted = Self::deployment()["spec"]["replicas"].as_u64().unwrap_or(1);
        assert!(wanted >= 2, "the suite is about {wanted} >= 2 replicas");
        for _ in 0..wanted {
            let i = self.start_replica();
            self.wait_ready(i).await;
        }
    }

    /// Waits until replica `i` answers its readiness probe; on timeout panics with its log.
    pub async fn wait_ready(&self, i: usize) {
        let probe = &crate::deploy_support::container(Self::deployment())["readinessProbe"];
        let path = probe["httpGet"]["path"]
            .as_str()
            .expect("readinessProbe path");
        let replica = &self.replicas[i];
        let ready = || async { replica.probe(path).await.then_some(()) };
        fixture::wait_or_explain(WAIT, ready, || async {
            format!(
                "{} not ready within {WAIT:?}:\n{}",
                replica.name,
                replica.logs()
            )
        })
        .await;
    }

    /// The identity holding the leader Lease, once one does.
    pub async fn leader(&self) -> String {
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), system_namespace());
        eventually(WAIT, "a leader", || async {
            let lease = leases.get_opt("catalog-reconciler").await.ok()??;
            lease.spec?.holder_identity.filter(|h| !h.is_empty())
        })
        .await
    }

    /// Index of the replica holding the Lease, and of a running one that does not.
    pub async fn leader_and_standby(&mut self) -> (usize, usize) {
        let leader = self.leader().await;
        let index = |name: &str| self.replicas.iter().position(|r| r.name == name);
        let l = index(&leader).unwrap_or_else(|| panic!("{leader} is no replica of the suite"));
        let s = (0..self.replicas.len())
            .find(|i| *i != l && self.replicas[*i].running())
            .expect("a running standby");
        (l, s)
    }

    /// Creates the tenant namespace, the webhook Secret and the CatalogSource of `url`
    /// (`environments/dev`, interval 1h: only webhooks and the first sync fetch).
    pub async fn create_source(&self, url: &str) {
        fixture::create_namespace(&self.client, TENANT)
            .await
            .expect("tenant namespace");
        let secrets = Api::namespaced(self.client.clone(), TENANT);
        let secret = fixture::secret("hook", None, &[("token", TOKEN)]);
        secrets
            .create(&Default::default(), &secret)
            .await
            .expect("webhook Secret");
        let spec = json!({"url": url, "path": "environments/dev", "interval": "1h",
            "ref": {"branch": "main"}, "webhook": {"secretRef": {"name": "hook"}}});
        let object = fixture::catalog_object("CatalogSource", SOURCE, TENANT, spec);
        fixture::create_json(&self.sources(), object).await;
    }

    pub fn sources(&self) -> Api<CatalogSource> {
        Api::namespaced(self.client.clone(), TENANT)
    }

    pub fn images(&self) -> Api<CatalogImage> {
        Api::namespaced(self.client.clone(), TENANT)
    }

    /// The revision the source applied last.
    pub async fn applied(&self) -> Option<String> {
        let source = self.sources().get_opt(SOURCE).await.ok()??;
        source.status?.last_applied_revision
    }

    /// Waits (at most `within`) until the source applied `revision`; on timeout panics with
    /// the source's status and the tail of every replica's log.
    pub async fn wait_applied(&self, revision: &str, within: Duration) {
        let applied =
            || async { (self.applied().await.as_deref() == Some(revision)).then_some(()) };
        fixture::wait_or_explain(within, applied, || async {
            let status = self
                .sources()
                .get_opt(SOURCE)
                .await
                .ok()
                .flatten()
                .map(|s| s.status);
            let mut why =
                format!("{SOURCE} did not apply {revision} within {within:?}: {status:?}");
            for r in &self.replicas {
                let logs = r.logs();
                let sync = logs
                    .lines()
                    .filter(|l| !l.contains("catalog_reconciler::verify"));
                let tail: Vec<&str> = sync
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .take(15)
                    .collect();
                why += &format!(
                    "\n--- {} (last lines, newest first)\n{}",
                    r.name,
                    tail.join("\n")
                );
            }
            why
        })
        .await;
    }

    /// Posts a GitLab-style delivery to `base`; the status, or None when nothing answered.
    pub async fn deliver(&self, base: &str) -> Option<u16> {
        let url = format!("{base}/hook/{TENANT}/{SOURCE}");
        let answer = reqwest::Client::new()
            .post(url)
            .header("X-Gitlab-Token", TOKEN)
            .header("X-Gitlab-Event", "Push Hook")
            .body("{}")
            .send()
            .await;
        answer.ok().map(|a| a.status().as_u16())
    }

    /// No replica was refused anything: no 403 reached the proxy, none is in a log.
    pub fn assert_no_forbidden(&self) {
        let refused: Vec<_> = self
            .proxy
            .recorded()
            .into_iter()
            .filter(|r| r.status == 403)
            .collect();
        assert!(refused.is_empty(), "403 answers: {refused:?}");
        for r in &self.replicas {
            let logs = r.logs();
            let line = logs
                .lines()
                .find(|l| l.to_lowercase().contains("forbidden"));
            assert!(line.is_none(), "{} was refused: {line:?}", r.name);
        }
    }

    /// Every request the replicas made is granted by the rendered ClusterRole and Role.
    pub fn assert_rbac_grants_every_request(&self) {
        let rules = Rules::of(&rendered().0.objects);
        let accesses = self.proxy.accesses();
        assert!(!accesses.is_empty(), "the proxy recorded nothing");
        let denied: Vec<String> = accesses
            .iter()
            .filter(|a| !rules.allow(a))
            .map(ToString::to_string)
            .collect();
        let all: Vec<String> = accesses.iter().map(ToString::to_string).collect();
        eprintln!("requests of the replicas:\n  {}", all.join("\n  "));
        assert!(
            denied.is_empty(),
            "deploy/rbac.yaml does not grant what the reconciler does: {denied:#?}"
        );
    }
}
