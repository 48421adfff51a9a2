//! Authentication: who a bearer token is.
//!
//! Emulates the API server's authenticator chain (`pkg/kubeapiserver/authenticator/config.go`):
//! a static token (`--token-auth-file`, `staging/src/k8s.io/apiserver/pkg/authentication/
//! token/tokenfile/tokenfile.go`), and bound ServiceAccount tokens issued by the TokenRequest
//! subresource (`pkg/serviceaccount/jwt.go`, `pkg/serviceaccount/claims.go`): valid until
//! they expire, only for the API server's audience, and only while the ServiceAccount they
//! name still exists with the same uid. A token nobody issued is 401, as is a missing one once
//! the emulator has an admin token (anonymous requests are disabled).
//!
//! Without an admin token (the default) a request without credentials is the admin: the
//! kubeconfig and client the harness hands out must keep working as before.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine;
use serde_json::{Value, json};

use super::error::{ApiError, ApiResult};
use super::meta;
use super::store::{Store, obj_key};

/// The identity the admin token (or no token, when none is configured) authenticates as.
pub const ADMIN_USER: &str = "kube-emulator-admin";
/// The audience of tokens the API server accepts (`--api-audiences` default).
pub const API_AUDIENCE: &str = "https://kubernetes.default.svc.cluster.local";

/// An authenticated user (`apiserver/pkg/authentication/user.Info`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
}

impl UserInfo {
    /// The admin: `system:masters`, allowed everything.
    pub fn admin() -> Self {
        UserInfo {
            name: ADMIN_USER.into(),
            uid: String::new(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
        }
    }

    /// A ServiceAccount's user (`pkg/serviceaccount/util.go` `UserInfo`).
    pub fn service_account(ns: &str, name: &str, uid: &str) -> Self {
        UserInfo {
            name: format!("system:serviceaccount:{ns}:{name}"),
            uid: uid.into(),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{ns}"),
                "system:authenticated".into(),
            ],
        }
    }

    /// `{username, uid, groups}` as SelfSubjectReview and TokenReview render it.
    pub fn to_json(&self) -> Value {
        let mut v = json!({"username": self.name, "groups": self.groups});
        if !self.uid.is_empty() {
            v["uid"] = json!(self.uid);
        }
        v
    }
}

/// A ServiceAccount token the emulator issued.
#[derive(Clone, Debug)]
struct Issued {
    namespace: String,
    name: String,
    uid: String,
    audiences: Vec<String>,
    expires: jiff::Timestamp,
}

#[derive(Clone, Debug)]
enum Entry {
    Static(UserInfo),
    ServiceAccount(Issued),
}

/// The tokens one emulator knows.
pub struct Authn {
    admin_token: Option<String>,
    tokens: Mutex<HashMap<String, Entry>>,
}

/// A token minted by [`Authn::issue`]: the bearer string and when it expires.
pub struct Minted {
    pub token: String,
    pub expires: jiff::Timestamp,
}

const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

impl Authn {
    /// `admin_token` authenticates as [`UserInfo::admin`]; `forbidden_token` as a
    /// ServiceAccount no binding names (`system:serviceaccount:default:forbidden`).
    pub fn new(admin_token: Option<String>, forbidden_token: Option<String>) -> Self {
        let mut tokens = HashMap::new();
        if let Some(t) = forbidden_token {
            let user = UserInfo::service_account("default", "forbidden", "");
            tokens.insert(t, Entry::Static(user));
        }
        Authn {
            admin_token,
            tokens: Mutex::new(tokens),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        match self.tokens.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Adds a static token for `user` (what `--token-auth-file` lines do).
    pub fn add_static(&self, token: &str, user: UserInfo) {
        self.lock().insert(token.into(), Entry::Static(user));
    }

    /// Who the `Authorization` header value is; 401 when nobody. `sa_uid` looks up the uid of
    /// a stored ServiceAccount (namespace, name).
    pub fn authenticate(
        &self,
        header: Option<&str>,
        sa_uid: impl FnOnce(&str, &str) -> Option<String>,
    ) -> ApiResult<UserInfo> {
        let token = header
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim);
        let Some(token) = token else {
            return match self.admin_token {
                None if header.is_none() => Ok(UserInfo::admin()),
                _ => Err(ApiError::unauthorized()),
            };
        };
        if self.admin_token.as_deref() == Some(token) {
            return Ok(UserInfo::admin());
        }
        let entry = self.lock().get(token).cloned();
        match entry {
            Some(Entry::Static(user)) => Ok(user),
            Some(Entry::ServiceAccount(i))
                if valid(&i) && sa_uid(&i.namespace, &i.name).as_deref() == Some(&i.uid) =>
            {
                Ok(UserInfo::service_account(&i.namespace, &i.name, &i.uid))
            }
            _ => Err(ApiError::unauthorized()),
        }
    }

    /// Mints a ServiceAccount token shaped like the real JWT (header, claims, signature), so
    /// tools that decode it see the usual claims; the emulator checks it by lookup.
    pub fn issue(
        &self,
        ns: &str,
        name: &str,
        uid: &str,
        audiences: Vec<String>,
        seconds: i64,
    ) -> Minted {
        let now = jiff::Timestamp::now();
        let expires = now + jiff::SignedDuration::from_secs(seconds);
        let claims = json!({
            "aud": audiences, "exp": expires.as_second(), "iat": now.as_second(),
            "iss": API_AUDIENCE, "nbf": now.as_second(),
            "kubernetes.io": {"namespace": ns, "serviceaccount": {"name": name, "uid": uid}},
            "sub": format!("system:serviceaccount:{ns}:{name}"),
        });
        let header = json!({"alg": "RS256", "kid": "kube-emulator"});
        let signature = format!("{}{}", meta::new_uid(), meta::new_uid());
        let token = [header.to_string(), claims.to_string(), signature]
            .map(|p| B64URL.encode(p))
            .join(".");
        let issued = Issued {
            namespace: ns.into(),
            name: name.into(),
            uid: uid.into(),
            audiences,
            expires,
        };
        self.lock()
            .insert(token.clone(), Entry::ServiceAccount(issued));
        Minted { token, expires }
    }
}

/// Not expired, and meant for the API server.
fn valid(i: &Issued) -> bool {
    i.expires > jiff::Timestamp::now() && i.audiences.iter().any(|a| a == API_AUDIENCE)
}

/// The uid of the stored ServiceAccount `ns/name`, if it exists.
pub fn service_account_uid(st: &Store, ns: &str, name: &str) -> Option<String> {
    st.get(
        &("".into(), "serviceaccounts".into()),
        &obj_key(Some(ns), name),
    )
    .and_then(|sa| {
        sa.pointer("/metadata/uid")
            .and_then(Value::as_str)
            .map(str::to_string)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(t: &str) -> String {
        format!("Bearer {t}")
    }

    #[test]
    fn service_account_tokens_expire_need_the_api_audience_and_the_same_account() {
        let authn = Authn::new(Some("admin".into()), None);
        let live = authn.issue("ns", "sa", "u1", vec![API_AUDIENCE.into()], 600);
        let found = |_: &str, _: &str| Some("u1".to_string());
        let user = authn
            .authenticate(Some(&header(&live.token)), found)
            .expect("valid");
        assert_eq!(user, UserInfo::service_account("ns", "sa", "u1"));
        let recreated = |_: &str, _: &str| Some("u2".to_string());
        let err = authn.authenticate(Some(&header(&live.token)), recreated);
        assert_eq!(err.expect_err("another uid").code, 401);
        let expired = authn.issue("ns", "sa", "u1", vec![API_AUDIENCE.into()], -1);
        let err = authn.authenticate(Some(&header(&expired.token)), found);
        assert_eq!(err.expect_err("expired").code, 401);
        let other = authn.issue("ns", "sa", "u1", vec!["vault".into()], 600);
        let err = authn.authenticate(Some(&header(&other.token)), found);
        assert_eq!(err.expect_err("other audience").code, 401);
    }

    #[test]
    fn admin_token_and_anonymous_requests() {
        let none = |_: &str, _: &str| None;
        let open = Authn::new(None, None);
        assert_eq!(
            open.authenticate(None, none).expect("admin"),
            UserInfo::admin()
        );
        assert_eq!(
            open.authenticate(Some("Bearer x"), none)
                .expect_err("unknown")
                .code,
            401
        );
        let secured = Authn::new(Some("admin".into()), Some("nobody".into()));
        assert_eq!(
            secured
                .authenticate(None, none)
                .expect_err("anonymous")
                .code,
            401
        );
        let nobody = secured
            .authenticate(Some("Bearer nobody"), none)
            .expect("static");
        assert_eq!(nobody.name, "system:serviceaccount:default:forbidden");
    }
}
