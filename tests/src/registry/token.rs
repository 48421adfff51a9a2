//! A token server for docker-registry's `auth: token`, as real registries (Quay, Harbor,
//! Docker Hub) authenticate: the registry answers 401 with a `Bearer realm=…` challenge, the
//! client fetches a JWT from the realm, and the registry checks the JWT's signature against
//! `rootcertbundle`. Anyone gets pull and push: the point is the round trips, counted per
//! repository, not the authorization.
//!
//! The JWT is ES256 with the signing certificate in its `x5c` header; distribution 2.8
//! verifies that chain against the bundle (a self-signed certificate is its own root).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::{RawQuery, State};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde_json::{Value, json};

/// The `service` (JWT audience) the registry is configured with.
pub const SERVICE: &str = "catalog-e2e-registry";
/// The `issuer` the registry is configured with.
pub const ISSUER: &str = "catalog-e2e-token-server";

struct Signer {
    key: EcdsaKeyPair,
    cert_der: Vec<u8>,
    rng: SystemRandom,
    /// JWT ids: distinct per token.
    next: AtomicU64,
    /// Token requests per repository of the requested scope ("" when none was asked for).
    seen: Mutex<BTreeMap<String, u64>>,
}

/// A running token endpoint; stops on drop.
pub struct TokenServer {
    dir: tempfile::TempDir,
    addr: SocketAddr,
    signer: Arc<Signer>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TokenServer {
    /// Generates a signing key and certificate (openssl CLI) and serves `/token` on a free
    /// port of 127.0.0.1.
    pub async fn start() -> TokenServer {
        let dir = tempfile::tempdir().expect("temp dir for the token server");
        generate_key(dir.path());
        let read = |name: &str| std::fs::read(dir.path().join(name)).expect(name);
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &read("key.p8"), &rng)
            .expect("openssl wrote a P-256 PKCS#8 key");
        let signer = Arc::new(Signer {
            key,
            cert_der: read("cert.der"),
            rng,
            next: AtomicU64::new(1),
            seen: Mutex::default(),
        });
        let app = axum::Router::new()
            .route("/token", axum::routing::get(issue))
            .with_state(signer.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TokenServer {
            dir,
            addr,
            signer,
            task,
        }
    }

    /// The realm URL for the registry's challenge.
    pub fn realm(&self) -> String {
        format!("http://{}/token", self.addr)
    }

    /// The PEM certificate the registry trusts (`auth.token.rootcertbundle`).
    pub fn root_cert_bundle(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    /// Token requests so far, per repository.
    pub fn requests(&self) -> BTreeMap<String, u64> {
        self.signer.seen.lock().unwrap().clone()
    }

    pub fn reset(&self) {
        self.signer.seen.lock().unwrap().clear();
    }
}

/// `GET /token?service=…&scope=repository:NAME:ACTIONS…`: a JWT granting what was asked.
async fn issue(State(signer): State<Arc<Signer>>, RawQuery(query): RawQuery) -> Json<Value> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query.as_deref().unwrap_or("")).unwrap_or_default();
    let access: Vec<Value> = pairs
        .iter()
        .filter(|(k, _)| k == "scope")
        .filter_map(|(_, scope)| {
            let (kind, rest) = scope.split_once(':')?;
            let (name, actions) = rest.rsplit_once(':')?;
            Some(json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
        })
        .collect();
    {
        let mut seen = signer.seen.lock().unwrap();
        let names: Vec<String> = access
            .iter()
            .map(|a| a["name"].as_str().unwrap_or("").to_string())
            .collect();
        for name in if names.is_empty() {
            vec![String::new()]
        } else {
            names
        } {
            *seen.entry(name).or_default() += 1;
        }
    }
    let token = signer.sign(access);
    Json(json!({"token": token, "access_token": token, "expires_in": 300}))
}

impl Signer {
    fn sign(&self, access: Vec<Value>) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header =
            json!({"typ": "JWT", "alg": "ES256", "x5c": [STANDARD.encode(&self.cert_der)]});
        let claims = json!({
            "iss": ISSUER, "sub": "", "aud": SERVICE, "access": access,
            "iat": now, "nbf": now - 10, "exp": now + 300, "jti": self.next.fetch_add(1, Ordering::Relaxed).to_string(),
        });
        let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
        let input = format!("{}.{}", b64(&header), b64(&claims));
        let signature = self
            .key
            .sign(&self.rng, input.as_bytes())
            .expect("ES256 signature");
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    }
}

/// `key.p8` (PKCS#8 DER, for ring), `cert.pem` (the bundle) and `cert.der` (for `x5c`).
fn generate_key(dir: &std::path::Path) {
    let run = |args: &[&str]| super::tls::openssl(dir, args);
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "key.pem",
        "-out",
        "cert.pem",
        "-days",
        "2",
        "-subj",
        "/CN=catalog-e2e-token",
    ]);
    run(&[
        "pkcs8", "-topk8", "-nocrypt", "-in", "key.pem", "-outform", "DER", "-out", "key.p8",
    ]);
    run(&[
        "x509", "-in", "cert.pem", "-outform", "DER", "-out", "cert.der",
    ]);
}
