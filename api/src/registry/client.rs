//! The HTTP side: requests to the distribution API with authentication, limits and typed
//! errors.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::{Method, Response, StatusCode};
use sha2::{Digest as _, Sha256, Sha512};

use super::auth::{AuthState, parse_challenge, token_key};
use super::body::{ERROR_BODY_LIMIT, read_prefix};
use super::error::{self, RegistryError};
use super::index::IndexDoc;
use super::manifest::{ImageFacts, MANIFEST_ACCEPT, Parsed, parse_config, parse_manifest};
use super::{Credentials, RegistryOptions, RequestRecord};
use crate::reference::{Algorithm, ImageReference, is_valid_digest};

/// Docker Hub's API endpoint; `docker.io` itself only redirects.
const DOCKER_HUB_ENDPOINT: &str = "registry-1.docker.io";

/// A client for OCI distribution registries. Cheap to clone; clones share connections,
/// learned authentication schemes and cached tokens.
#[derive(Clone)]
pub struct RegistryClient {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) http: reqwest::Client,
    pub(super) options: RegistryOptions,
    pub(super) auth: AuthState,
}

/// Which repository a request is for, and with which credentials.
pub(super) struct Target<'a> {
    pub(super) registry: &'a str,
    pub(super) repository: &'a str,
    pub(super) credentials: &'a Credentials,
}

impl RegistryClient {
    /// Builds a client. Installs rustls' ring provider if the process has none yet, since
    /// reqwest is built without a default provider.
    pub fn new(options: RegistryOptions) -> Result<Self, RegistryError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .user_agent(options.user_agent.clone())
            .connect_timeout(options.connect_timeout)
            .timeout(options.timeout)
            .pool_idle_timeout(Duration::from_secs(90));
        let mut roots = Vec::new();
        for pem in &options.extra_ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| RegistryError::Config(format!("invalid CA certificate PEM: {e}")))?;
            if certs.is_empty() {
                return Err(RegistryError::Config(
                    "the CA file contains no PEM certificate".into(),
                ));
            }
            roots.extend(certs);
        }
        if !roots.is_empty() {
            builder = builder.tls_certs_merge(roots);
        }
        let http = builder
            .build()
            .map_err(|e| RegistryError::Config(e.to_string()))?;
        Ok(RegistryClient {
            inner: Arc::new(Inner {
                http,
                options,
                auth: AuthState::default(),
            }),
        })
    }

    /// Forgets the authentication schemes and tokens of every registry `keep` rejects (the
    /// reconciler passes the registries its images still name), so these maps stay bounded.
    pub fn retain_registries(&self, keep: &dyn Fn(&str) -> bool) {
        self.inner.auth.retain_registries(keep);
    }

    /// Whether the operator allowed plain HTTP for this `host[:port]`.
    pub fn is_insecure(&self, registry: &str) -> bool {
        self.inner
            .options
            .insecure_registries
            .iter()
            .any(|r| r.eq_ignore_ascii_case(registry))
    }

    fn base_url(&self, registry: &str) -> String {
        let scheme = if self.is_insecure(registry) {
            "http"
        } else {
            "https"
        };
        let endpoint = if registry == "docker.io" {
            DOCKER_HUB_ENDPOINT
        } else {
            registry
        };
        format!("{scheme}://{endpoint}")
    }

    /// Resolves what the reference names (its digest when pinned, else its tag, `latest`
    /// when it has neither) to a manifest digest, with a single HEAD request once the
    /// registry's authentication scheme is known.
    ///
    /// A pinned reference checks that the digest exists.
    pub async fn resolve(
        &self,
        reference: &ImageReference,
        credentials: &Credentials,
    ) -> Result<String, RegistryError> {
        let target = Target {
            registry: reference.registry(),
            repository: reference.repository(),
            credentials,
        };
        let object = object_of(reference);
        let what = format!("manifest {}", reference.canonical());
        let url = self.manifest_url(reference.registry(), reference.repository(), object);
        let response = self
            .send(&target, Method::HEAD, &url, Some(MANIFEST_ACCEPT), &what)
            .await?;
        let header = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let digest = match header {
            Some(d) if is_valid_digest(&d) => d,
            // Registries may omit the header on HEAD: hash the manifest itself.
            _ => {
                let (_, _, digest) = self.fetch_manifest(&target, object, &what).await?;
                digest
            }
        };
        if let Some(pinned) = reference.digest()
            && pinned != digest
        {
            // Asked by a digest of another algorithm (sha512), a registry may still name the
            // manifest by its own (sha256): the content, checked against the pin, decides.
            if Algorithm::of(pinned) != Algorithm::of(&digest) {
                let (_, _, verified) = self.fetch_manifest(&target, pinned, &what).await?;
                return Ok(verified);
            }
            return Err(RegistryError::Invalid {
                registry: reference.registry().into(),
                what,
                detail: format!("the registry served digest {digest} for {pinned}"),
            });
        }
        Ok(digest)
    }

    /// Whether the manifest at `digest` (in the reference's repository) is the one `pin`
    /// names, whatever algorithm each is written in: a sha512 pin compared with the sha256 a
    /// registry resolves a tag to. Equal strings need no request; digests of one algorithm
    /// that differ name different manifests; otherwise the manifest is read, checked against
    /// `digest`, and hashed with the pin's algorithm.
    pub async fn names_same_manifest(
        &self,
        reference: &ImageReference,
        digest: &str,
        pin: &str,
        credentials: &Credentials,
    ) -> Result<bool, RegistryError> {
        if digest == pin {
            return Ok(true);
        }
        let (Some(algorithm), Some(pin_algorithm)) = (Algorithm::of(digest), Algorithm::of(pin))
        else {
            return Ok(false);
        };
        if algorithm == pin_algorithm {
            return Ok(false);
        }
        let target = Target {
            registry: reference.registry(),
            repository: reference.repository(),
            credentials,
        };
        let what = format!("manifest {}", reference.without_digest().canonical());
        let (body, _, _) = self.fetch_manifest(&target, digest, &what).await?;
        Ok(digest_of(pin_algorithm, &body) == pin)
    }

    /// Reads the manifest (or index and every platform manifest) and the config blob of the
    /// image the reference names. For an index, the config read is that of the platform
    /// matching `architecture` (else the first linux platform).
    ///
    /// Requests: one for a manifest plus one config blob; for an index one more per
    /// platform, for at most [`super::MAX_PLATFORMS`] platforms (the selected one always among
    /// them; [`ImageFacts::platform_count`] says how many the index lists). Resolve first and pass a digest-pinned reference so the facts describe
    /// exactly the resolved manifest.
    pub async fn inspect(
        &self,
        reference: &ImageReference,
        credentials: &Credentials,
        architecture: Option<&str>,
    ) -> Result<ImageFacts, RegistryError> {
        let target = Target {
            registry: reference.registry(),
            repository: reference.repository(),
            credentials,
        };
        let what = format!("manifest {}", reference.canonical());
        let invalid = |what: &str, detail: String| RegistryError::Invalid {
            registry: reference.registry().into(),
            what: what.to_string(),
            detail,
        };
        let (body, media_type, digest) = self
            .fetch_manifest(&target, object_of(reference), &what)
            .await?;
        let parsed = parse_manifest(&body, &media_type).map_err(|d| invalid(&what, d))?;
        let media_type = media_type_of(&body, &media_type);
        match parsed {
            Parsed::Image(manifest) => {
                let config = self.fetch_config(&target, &manifest.config_digest).await?;
                Ok(ImageFacts {
                    digest,
                    media_type,
                    is_index: false,
                    platforms: Vec::new(),
                    platform_count: 0,
                    size_bytes: manifest.size_bytes,
                    layer_count: manifest.layer_count,
                    config,
                })
            }
            Parsed::Index(entries) => {
                let index = IndexDoc {
                    reference,
                    digest,
                    media_type,
                    entries,
                };
                self.inspect_index(&target, index, architecture).await
            }
        }
    }

    fn manifest_url(&self, registry: &str, repository: &str, object: &str) -> String {
        format!(
            "{}/v2/{repository}/manifests/{object}",
            self.base_url(registry)
        )
    }

    /// GET a manifest: body, content type and digest (verified when fetched by digest).
    pub(super) async fn fetch_manifest(
        &self,
        target: &Target<'_>,
        object: &str,
        what: &str,
    ) -> Result<(Vec<u8>, String, String), RegistryError> {
        let url = self.manifest_url(target.registry, target.repository, object);
        let response = self
            .send(target, Method::GET, &url, Some(MANIFEST_ACCEPT), what)
            .await?;
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let header_digest = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = self.read_limited(target.registry, what, response).await?;
        let expected = if is_valid_digest(object) {
            Some(object.to_string())
        } else {
            header_digest.filter(|d| is_valid_digest(d))
        };
        // Checked in the algorithm it was named by; sha256 when nothing named it.
        let algorithm = expected.as_deref().and_then(Algorithm::of);
        let computed = digest_of(algorithm.unwrap_or(Algorithm::Sha256), &body);
        if let Some(expected) = expected
            && expected != computed
        {
            return Err(RegistryError::Invalid {
                registry: target.registry.into(),
                what: what.into(),
                detail: format!("content digest {computed} does not match {expected}"),
            });
        }
        Ok((body, content_type, computed))
    }

    pub(super) async fn fetch_config(
        &self,
        target: &Target<'_>,
        digest: &str,
    ) -> Result<super::ImageConfig, RegistryError> {
        let what = format!(
            "config blob {}/{}@{digest}",
            target.registry, target.repository
        );
        let url = format!(
            "{}/v2/{}/blobs/{digest}",
            self.base_url(target.registry),
            target.repository
        );
        let response = self.send(target, Method::GET, &url, None, &what).await?;
        let body = self.read_limited(target.registry, &what, response).await?;
        let invalid = |detail: String| RegistryError::Invalid {
            registry: target.registry.into(),
            what: what.clone(),
            detail,
        };
        let algorithm = Algorithm::of(digest).unwrap_or(Algorithm::Sha256);
        if digest_of(algorithm, &body) != digest {
            return Err(invalid("content does not match its digest".into()));
        }
        parse_config(&body).map_err(invalid)
    }

    /// Sends a request with the best credentials known for the registry; on a 401 learns the
    /// registry's challenge and retries once with fresh authorization.
    async fn send(
        &self,
        target: &Target<'_>,
        method: Method,
        url: &str,
        accept: Option<&str>,
        what: &str,
    ) -> Result<Response, RegistryError> {
        let mut authorization = self.authorization(target).await?;
        let mut retried = false;
        loop {
            let mut request = self.inner.http.request(method.clone(), url);
            if let Some(accept) = accept {
                request = request.header(ACCEPT, accept);
            }
            if let Some(value) = &authorization {
                request = request.header(AUTHORIZATION, value.clone());
            }
            let response = self
                .execute(target.registry, &method, request, what)
                .await?;
            let status = response.status();
            if status.is_success() {
                return Ok(response);
            }
            if status == StatusCode::UNAUTHORIZED && !retried {
                let challenge = response
                    .headers()
                    .get(WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_challenge);
                if let Some(challenge) = challenge {
                    self.inner.auth.set_challenge(target.registry, challenge);
                    self.inner.auth.forget_token(&token_key(target));
                    let fresh = self.authorization(target).await?;
                    if fresh.is_some() && fresh != authorization {
                        authorization = fresh;
                        retried = true;
                        continue;
                    }
                }
            }
            let headers = response.headers().clone();
            let body = read_prefix(response, ERROR_BODY_LIMIT).await;
            let mut error = error::from_status(target.registry, what, status, &headers, &body);
            if let RegistryError::Unauthorized { detail, .. } = &mut error {
                detail.push_str(match target.credentials {
                    Credentials::Anonymous => ": the registry requires credentials",
                    _ => ": the credentials were refused",
                });
            }
            return Err(error);
        }
    }

    /// Sends one request, timing it and reporting it to the observer.
    pub(super) async fn execute(
        &self,
        registry: &str,
        method: &Method,
        request: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<Response, RegistryError> {
        let request = request
            .build()
            .map_err(|e| error::from_transport(registry, what, &e))?;
        let host = request
            .url()
            .host_str()
            .map(|h| match request.url().port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_string(),
            })
            .unwrap_or_default();
        let started = Instant::now();
        let result = self.inner.http.execute(request).await;
        if let Some(observer) = &self.inner.options.observer {
            observer.observe(&RequestRecord {
                registry,
                host: &host,
                method: method.as_str(),
                status: result.as_ref().ok().map(|r| r.status().as_u16()),
                elapsed: started.elapsed(),
            });
        }
        result.map_err(|e| error::from_transport(registry, what, &e))
    }
}

/// The manifest a reference names: its digest, else its tag, else `latest`.
fn object_of(reference: &ImageReference) -> &str {
    reference.digest().or(reference.tag()).unwrap_or("latest")
}

fn media_type_of(body: &[u8], content_type: &str) -> String {
    #[derive(serde::Deserialize)]
    struct M {
        #[serde(default, rename = "mediaType")]
        media_type: Option<String>,
    }
    serde_json::from_slice::<M>(body)
        .ok()
        .and_then(|m| m.media_type)
        .unwrap_or_else(|| {
            content_type
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        })
}

/// `sha256:<hex>` of some bytes: the digest registries compute by default.
pub fn sha256_digest(bytes: &[u8]) -> String {
    digest_of(Algorithm::Sha256, bytes)
}

/// `<algorithm>:<hex>` of some bytes.
pub fn digest_of(algorithm: Algorithm, bytes: &[u8]) -> String {
    let hash: Vec<u8> = match algorithm {
        Algorithm::Sha256 => Sha256::digest(bytes).to_vec(),
        Algorithm::Sha512 => Sha512::digest(bytes).to_vec(),
    };
    let mut out = String::with_capacity(algorithm.name().len() + 1 + algorithm.hex_len());
    out.push_str(algorithm.name());
    out.push(':');
    for b in hash {
        out.push_str(&format!("{b:02x}"));
    }
    out
}
