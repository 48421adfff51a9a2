//! Talking to the cluster: one `kube::Client` built from the global flags, and the mapping of
//! every Kubernetes failure a user will meet to a message that says what to do, with the exit
//! code of the README (401/403 → 3, not found → 4, timeouts → 6).
//!
//! Every cluster-reading command (and `publish`, which reads ImageBuilds) goes through here so
//! that "no kubeconfig", "cluster unreachable" and "CRD not installed" read the same everywhere.

use std::path::PathBuf;
use std::time::Duration;

use kube::api::{Api, ApiResource, DynamicObject};
use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};
use kube::{Client, Config};

use crate::cli::Global;
use crate::error::{CaibError, Result};

/// How long to wait for a TCP/TLS connection when `--timeout` is not given.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A resource kind as users know it, with what to say when its CRD is missing.
#[derive(Debug, Clone, Copy)]
pub struct Kind {
    /// Name in messages: `catalog image "x" not found`.
    pub human: &'static str,
    /// Plural resource name with group, as kubectl spells it.
    pub resource: &'static str,
    /// What to do when the API server does not serve this resource.
    pub install_hint: &'static str,
}

pub const CATALOG_IMAGE: Kind = Kind {
    human: "catalog image",
    resource: "catalogimages.automotive.sdv.cloud.redhat.com",
    install_hint: "install the CRDs with `kubectl apply -f crds/`",
};

pub const CATALOG_SOURCE: Kind = Kind {
    human: "catalog source",
    resource: "catalogsources.automotive.sdv.cloud.redhat.com",
    install_hint: "install the CRDs with `kubectl apply -f crds/`",
};

pub const IMAGE_BUILD: Kind = Kind {
    human: "ImageBuild",
    resource: "imagebuilds.automotive.sdv.cloud.redhat.com",
    install_hint: "ImageBuilds come from automotive-dev-operator: install it (or its CRDs) in this cluster",
};

/// `automotive.sdv.cloud.redhat.com/v1alpha1` ImageBuild, served by automotive-dev-operator;
/// read as a dynamic object because this project does not own its schema.
pub fn imagebuild_resource() -> ApiResource {
    ApiResource {
        group: catalog_api::GROUP.into(),
        version: catalog_api::VERSION.into(),
        api_version: catalog_api::API_VERSION.into(),
        kind: "ImageBuild".into(),
        plural: "imagebuilds".into(),
    }
}

/// A connected client and the namespace commands work in.
#[derive(Clone)]
pub struct Cluster {
    pub client: Client,
    /// `-n`, else the config file's namespace, else the context's, else `default`.
    pub namespace: String,
    /// API server URL, for messages.
    pub server: String,
}

impl Cluster {
    /// Builds the client from `--kubeconfig` (or `KUBECONFIG`, a path list), `--context`,
    /// `-n` and `--timeout`. Inside a pod without a kubeconfig it uses the service account.
    /// Does not contact the server: the first request reports an unreachable cluster.
    pub async fn connect(global: &Global) -> Result<Cluster> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut config = load_config(global).await?;
        config.connect_timeout = Some(global.timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT));
        let namespace = global
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        let server = config.cluster_url.to_string();
        let client = Client::try_from(config).map_err(|e| {
            CaibError::Other(anyhow::anyhow!(
                "cannot set up a client for {server}: {e} (check the cluster's certificate data in the kubeconfig)"
            ))
        })?;
        Ok(Cluster {
            client,
            namespace,
            server,
        })
    }

    /// Typed API in the working namespace, or across all namespaces.
    pub fn api<K>(&self, all_namespaces: bool) -> Api<K>
    where
        K: kube::Resource<Scope = kube::core::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        if all_namespaces {
            Api::all(self.client.clone())
        } else {
            Api::namespaced(self.client.clone(), &self.namespace)
        }
    }

    /// Dynamic API (for resources we do not own, like ImageBuild).
    pub fn dynamic_api(&self, resource: &ApiResource, all_namespaces: bool) -> Api<DynamicObject> {
        if all_namespaces {
            Api::all_with(self.client.clone(), resource)
        } else {
            Api::namespaced_with(self.client.clone(), &self.namespace, resource)
        }
    }

    /// Turns a failed request about `kind` (and object `name`, when the request named one)
    /// into a user-facing error with a hint and the right exit code.
    pub fn error(&self, err: kube::Error, kind: &Kind, name: Option<&str>) -> CaibError {
        map_error(err, kind, name, &self.namespace, &self.server)
    }
}

/// Runs a whole command under `--timeout` (when given): exit 6 instead of hanging on a slow
/// or stuck API server.
pub async fn within<T>(
    timeout: Option<Duration>,
    what: &str,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    match timeout {
        None => work.await,
        Some(limit) => tokio::time::timeout(limit, work).await.unwrap_or_else(|_| {
            Err(CaibError::Timeout(format!(
                "{what} did not finish within --timeout {}",
                catalog_api::duration::format(limit)
            )))
        }),
    }
}

/// Reads the kubeconfig the way kubectl does: `--kubeconfig`/`KUBECONFIG` (several files
/// merged), else `~/.kube/config`, else the in-cluster service account.
async fn load_config(global: &Global) -> Result<Config> {
    let options = KubeConfigOptions {
        context: global.context.clone(),
        ..Default::default()
    };
    let kubeconfig = match &global.kubeconfig {
        Some(list) if !list.as_os_str().is_empty() => {
            let mut merged: Option<Kubeconfig> = None;
            for path in std::env::split_paths(list) {
                if !path.is_file() {
                    return Err(CaibError::Usage(format!(
                        "kubeconfig {} does not exist (from --kubeconfig or KUBECONFIG)",
                        path.display()
                    )));
                }
                let next = Kubeconfig::read_from(&path).map_err(|e| kubeconfig_error(e, global))?;
                merged = Some(match merged {
                    None => next,
                    Some(prev) => prev.merge(next).map_err(|e| kubeconfig_error(e, global))?,
                });
            }
            merged
        }
        _ => {
            let default = home_kubeconfig();
            match default {
                Some(path) if path.is_file() => {
                    Some(Kubeconfig::read_from(&path).map_err(|e| kubeconfig_error(e, global))?)
                }
                _ => None,
            }
        }
    };
    match kubeconfig {
        Some(kubeconfig) => Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|e| kubeconfig_error(e, global)),
        None => {
            if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some()
                && let Ok(config) = Config::incluster()
            {
                return Ok(config);
            }
            Err(CaibError::Other(anyhow::anyhow!(
                "no kubeconfig found: set KUBECONFIG (export KUBECONFIG=/path/to/kubeconfig), pass --kubeconfig FILE, or create ~/.kube/config"
            )))
        }
    }
}

/// Whether any cluster is configured (a kubeconfig to read, or a pod's service account):
/// commands that only use the cluster to learn a default skip it when there is none.
pub fn configured(global: &Global) -> bool {
    global
        .kubeconfig
        .as_ref()
        .is_some_and(|k| !k.as_os_str().is_empty())
        || home_kubeconfig().is_some_and(|p| p.is_file())
        || std::env::var_os("KUBERNETES_SERVICE_HOST").is_some()
}

fn home_kubeconfig() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".kube").join("config"))
}

fn kubeconfig_error(err: KubeconfigError, global: &Global) -> CaibError {
    match &err {
        KubeconfigError::LoadContext(_) | KubeconfigError::LoadClusterOfContext(_) => {
            let context = global.context.as_deref().unwrap_or("(current-context)");
            CaibError::Usage(format!(
                "--context {context}: {err} (list contexts with `kubectl config get-contexts`)"
            ))
        }
        KubeconfigError::CurrentContextNotSet => CaibError::Usage(
            "the kubeconfig has no current-context: pass --context NAME or run `kubectl config use-context NAME`"
                .into(),
        ),
        _ => CaibError::Other(anyhow::anyhow!("invalid kubeconfig: {err}")),
    }
}

/// The mapping behind [`Cluster::error`], separate so it is testable without a client.
pub fn map_error(
    err: kube::Error,
    kind: &Kind,
    name: Option<&str>,
    namespace: &str,
    server: &str,
) -> CaibError {
    match err {
        kube::Error::Api(status) => {
            let message = if status.message.is_empty() {
                status.reason.clone()
            } else {
                status.message.clone()
            };
            match status.code {
                401 => CaibError::Auth(format!(
                    "the API server at {server} rejected the credentials (401 Unauthorized: {message}); log in again or check the user of your kubeconfig context"
                )),
                403 => CaibError::Auth(format!(
                    "forbidden: {message} (ask for RBAC permission on {} in namespace {namespace:?})",
                    kind.resource
                )),
                404 => {
                    let named_object = status.details.as_ref().is_some_and(|d| !d.name.is_empty());
                    match name {
                        Some(name) if named_object => CaibError::NotFound(format!(
                            "{} {name:?} not found in namespace {namespace:?}",
                            kind.human
                        )),
                        _ => CaibError::Other(anyhow::anyhow!(
                            "the cluster does not serve {} ({message}): {}",
                            kind.resource,
                            kind.install_hint
                        )),
                    }
                }
                409 => CaibError::Conflict(message),
                408 | 504 => CaibError::Timeout(format!("the API server timed out: {message}")),
                code => CaibError::Other(anyhow::anyhow!(
                    "the API server answered {code} {}: {message}",
                    status.reason
                )),
            }
        }
        kube::Error::Auth(e) => CaibError::Auth(format!(
            "cannot authenticate to {server}: {e} (check the user of your kubeconfig context)"
        )),
        other => {
            let chain = error_chain(&other);
            if chain.contains("timed out") || chain.contains("elapsed") {
                CaibError::Timeout(format!(
                    "the API server at {server} did not answer in time: {chain}"
                ))
            } else {
                CaibError::Other(anyhow::anyhow!(
                    "cannot reach the Kubernetes API server at {server}: {chain} (is the cluster running? check --context and KUBECONFIG)"
                ))
            }
        }
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        let s = e.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        source = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::{Status, response::StatusDetails};

    fn api_err(code: u16, reason: &str, name: Option<&str>) -> kube::Error {
        let mut status = Status::failure("msg", reason).with_code(code);
        if let Some(name) = name {
            let details: StatusDetails =
                serde_json::from_value(serde_json::json!({ "name": name })).unwrap();
            status = status.with_details(details);
        }
        kube::Error::Api(status.boxed())
    }

    fn map(err: kube::Error, name: Option<&str>) -> CaibError {
        map_error(err, &CATALOG_IMAGE, name, "ns", "https://api:6443/")
    }

    #[test]
    fn maps_statuses_to_exit_codes_and_hints() {
        let e = map(api_err(404, "NotFound", Some("x")), Some("x"));
        assert_eq!(e.exit_code(), 4);
        assert_eq!(
            e.to_string(),
            r#"catalog image "x" not found in namespace "ns""#
        );

        let e = map(api_err(404, "NotFound", None), Some("x"));
        assert_eq!(e.exit_code(), 1);
        assert!(e.to_string().contains("kubectl apply -f crds/"), "{e}");

        let e = map(api_err(404, "Failed to parse error data", None), None);
        assert!(e.to_string().contains("kubectl apply -f crds/"), "{e}");

        assert_eq!(map(api_err(401, "Unauthorized", None), None).exit_code(), 3);
        let e = map(api_err(403, "Forbidden", None), None);
        assert_eq!(e.exit_code(), 3);
        assert!(e.to_string().contains("RBAC"), "{e}");
        assert_eq!(
            map(api_err(500, "InternalError", None), None).exit_code(),
            1
        );
    }
}
