//! The identities suites run as: the https listener's kubeconfigs (kubectl sends tokens and
//! `--as` only over https, see `tls.rs`), ServiceAccount tokens as `kubectl create token`
//! issues them (`authn.rs`), and static user tokens.

use std::path::Path;

use anyhow::Context;

use super::{API_AUDIENCE, Emulator, authn, kubeconfig, tls};

impl Emulator {
    /// `https://127.0.0.1:PORT`: the same API behind TLS (certificate signed by the CA that
    /// [`Self::kubeconfig_tls`] trusts). kubectl sends tokens and `--as` only over https.
    pub fn https_url(&self) -> String {
        format!("https://{}", self.tls_addr)
    }

    /// A kubeconfig for [`Self::https_url`] with `token` (or none: then an admin token) and
    /// the CA: what kubectl needs to authenticate with a token or impersonate.
    pub fn kubeconfig_tls(&self, token: Option<&str>) -> String {
        let token = token.unwrap_or(&self.admin_token);
        kubeconfig::render(&self.https_url(), Some(token), Some(tls::CA_PEM))
    }

    /// A token of the stored ServiceAccount `namespace/name`, as `kubectl create token` issues
    /// (audience: the API server; valid 24 hours, and only while that ServiceAccount exists).
    /// It authenticates as `system:serviceaccount:NS:NAME` with the groups
    /// `system:serviceaccounts`, `system:serviceaccounts:NS` and `system:authenticated`, and
    /// may do what the RBAC bindings naming the ServiceAccount allow. Fails when the
    /// ServiceAccount does not exist (apply it first, e.g. `deploy/rbac.yaml`).
    pub fn token_for_service_account(&self, namespace: &str, name: &str) -> anyhow::Result<String> {
        let uid = authn::service_account_uid(&self.shared.lock_store(), namespace, name)
            .with_context(|| format!("serviceaccount {namespace}/{name} does not exist"))?;
        let audiences = vec![API_AUDIENCE.to_string()];
        let minted = self
            .shared
            .authn
            .issue(namespace, name, &uid, audiences, 24 * 3600);
        Ok(minted.token)
    }

    /// A kubeconfig (https, see [`Self::kubeconfig_tls`]) that authenticates as the
    /// ServiceAccount `namespace/name` (see [`Self::token_for_service_account`]): hand it to
    /// kubectl or a child process (`--kubeconfig`, `KUBECONFIG`) to run it with that
    /// ServiceAccount's permissions.
    pub fn kubeconfig_for_service_account(
        &self,
        namespace: &str,
        name: &str,
    ) -> anyhow::Result<String> {
        let token = self.token_for_service_account(namespace, name)?;
        Ok(self.kubeconfig_tls(Some(&token)))
    }

    /// A kube-rs client authenticated as the ServiceAccount `namespace/name`. Call inside a
    /// Tokio runtime.
    pub fn kube_client_for_service_account(
        &self,
        namespace: &str,
        name: &str,
    ) -> anyhow::Result<kube::Client> {
        let token = self.token_for_service_account(namespace, name)?;
        Ok(self.kube_client_with_token(Some(&token)))
    }

    /// Registers a static token for the user `name` with `groups` (and
    /// `system:authenticated`), as a line of the API server's `--token-auth-file` does: for
    /// tests of `User` and `Group` subjects.
    pub fn add_user_token(&self, token: &str, name: &str, groups: &[&str]) {
        let mut groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        groups.push("system:authenticated".into());
        let user = authn::UserInfo {
            name: name.into(),
            uid: String::new(),
            groups,
        };
        self.shared.authn.add_static(token, user);
    }

    /// Writes [`Self::kubeconfig_with_token`] to `path`.
    pub fn write_kubeconfig_with_token(
        &self,
        path: impl AsRef<Path>,
        token: Option<&str>,
    ) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig_with_token(token))
    }
}
