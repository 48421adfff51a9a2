//! Image fixtures with exactly known contents, pushed with oci-client.
//!
//! Tests assert the verification's numbers (sizes, layer counts, platform, creation time,
//! digests) against what was pushed here, so every byte is deterministic: layers are
//! pseudo-random bytes from a seed, and the config carries the seed so two fixtures that
//! differ only by seed have different digests ("re-push a tag with new content").

use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use reqwest::header::HeaderValue;

use super::Registry;

/// Which manifest media types a fixture is pushed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaTypes {
    /// OCI image manifest / OCI index.
    Oci,
    /// Docker v2 schema 2 manifest / Docker manifest list.
    Docker,
}

impl MediaTypes {
    fn manifest(self) -> &'static str {
        match self {
            MediaTypes::Oci => "application/vnd.oci.image.manifest.v1+json",
            MediaTypes::Docker => "application/vnd.docker.distribution.manifest.v2+json",
        }
    }
    fn config(self) -> &'static str {
        match self {
            MediaTypes::Oci => "application/vnd.oci.image.config.v1+json",
            MediaTypes::Docker => "application/vnd.docker.container.image.v1+json",
        }
    }
    fn layer(self) -> &'static str {
        match self {
            MediaTypes::Oci => "application/vnd.oci.image.layer.v1.tar",
            MediaTypes::Docker => "application/vnd.docker.image.rootfs.diff.tar.gzip",
        }
    }
    fn index(self) -> &'static str {
        match self {
            MediaTypes::Oci => "application/vnd.oci.image.index.v1+json",
            MediaTypes::Docker => "application/vnd.docker.distribution.manifest.list.v2+json",
        }
    }
}

/// A single-platform image to push.
#[derive(Clone, Debug)]
pub struct ImageFixture {
    pub architecture: String,
    pub os: String,
    pub variant: Option<String>,
    /// `created` of the config (RFC 3339).
    pub created: String,
    /// One layer per entry, of exactly this many bytes.
    pub layer_sizes: Vec<usize>,
    pub media_types: MediaTypes,
    /// Changes every byte of the layers and the config.
    pub seed: u64,
}

impl ImageFixture {
    /// linux/`architecture`, two layers (1000 and 2500 bytes), OCI media types, created
    /// 2026-01-02T03:04:05Z.
    pub fn new(architecture: &str) -> Self {
        ImageFixture {
            architecture: architecture.into(),
            os: "linux".into(),
            variant: None,
            created: "2026-01-02T03:04:05Z".into(),
            layer_sizes: vec![1000, 2500],
            media_types: MediaTypes::Oci,
            seed: 0,
        }
    }
    pub fn variant(mut self, variant: &str) -> Self {
        self.variant = Some(variant.into());
        self
    }
    pub fn layers(mut self, sizes: &[usize]) -> Self {
        self.layer_sizes = sizes.to_vec();
        self
    }
    pub fn docker(mut self) -> Self {
        self.media_types = MediaTypes::Docker;
        self
    }
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    pub fn created(mut self, created: &str) -> Self {
        self.created = created.into();
        self
    }

    fn layer(&self, index: usize) -> Vec<u8> {
        let mut state = self
            .seed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(index as u64 + 1)
            ^ self
                .architecture
                .bytes()
                .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64));
        (0..self.layer_sizes[index])
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    }

    fn config(&self, diff_ids: &[String]) -> Vec<u8> {
        let mut config = serde_json::json!({
            "architecture": self.architecture,
            "os": self.os,
            "created": self.created,
            "config": {"Labels": {"catalog-e2e.seed": self.seed.to_string()}},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        if let Some(variant) = &self.variant {
            config["variant"] = variant.clone().into();
        }
        serde_json::to_vec(&config).unwrap()
    }
}

/// What [`Registry::push_image`] pushed.
#[derive(Clone, Debug)]
pub struct PushedImage {
    /// Manifest digest.
    pub digest: String,
    pub media_type: String,
    pub config_digest: String,
    pub config_size: i64,
    /// Config plus layers.
    pub size_bytes: i64,
    pub layer_count: i32,
    /// Size of the manifest document itself (what an index entry's `size` says).
    pub manifest_size: i64,
    /// The manifest's sha512 digest. docker-registry stores manifests by sha256 only (it
    /// refuses a manifest pushed by a sha512 reference and answers 404 to one), so this is the
    /// pin a test writes to see a sha512 pin compared by content.
    pub manifest_sha512: String,
}

/// What [`Registry::push_index`] pushed.
#[derive(Clone, Debug)]
pub struct PushedIndex {
    pub digest: String,
    pub media_type: String,
    /// The platform images, in the order given.
    pub platforms: Vec<PushedImage>,
    /// The attestation manifest listed as `unknown/unknown`, when asked for.
    pub attestation: Option<PushedImage>,
}

fn sha256(bytes: &[u8]) -> String {
    catalog_api::registry::sha256_digest(bytes)
}

impl Registry {
    /// An oci-client for this registry (plain HTTP or the private CA; its credentials).
    pub fn oci_client(&self) -> (Client, RegistryAuth) {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut config = ClientConfig {
            protocol: if self.is_tls() {
                ClientProtocol::Https
            } else {
                ClientProtocol::Http
            },
            ..Default::default()
        };
        if let Some(ca) = self.ca_path() {
            config.extra_root_certificates.push(Certificate {
                encoding: CertificateEncoding::Pem,
                data: std::fs::read(ca).unwrap(),
            });
        }
        let auth = match self.credentials() {
            Some((user, password)) => RegistryAuth::Basic(user, password),
            None => RegistryAuth::Anonymous,
        };
        (Client::new(config), auth)
    }

    /// Pushes a single-platform image and tags it: `repo_tag` is `repository:tag`.
    pub async fn push_image(&self, repo_tag: &str, image: &ImageFixture) -> PushedImage {
        let (repository, tag) = repo_tag
            .split_once(':')
            .expect("push_image takes repository:tag");
        self.push_image_as(repository, Some(tag), image).await
    }

    async fn push_image_as(
        &self,
        repository: &str,
        tag: Option<&str>,
        image: &ImageFixture,
    ) -> PushedImage {
        let (client, auth) = self.oci_client();
        let reference = Reference::with_tag(self.host(), repository.into(), "push".into());
        client
            .auth(&reference, &auth, RegistryOperation::Push)
            .await
            .unwrap_or_else(|e| panic!("authenticate to push to {}: {e}", self.host()));
        let mut layers = Vec::new();
        let mut diff_ids = Vec::new();
        for i in 0..image.layer_sizes.len() {
            let data = image.layer(i);
            let digest = sha256(&data);
            client
                .push_blob(&reference, data.clone(), &digest)
                .await
                .unwrap_or_else(|e| panic!("push layer {i} to {repository}: {e}"));
            diff_ids.push(digest.clone());
            layers.push(serde_json::json!({
                "mediaType": image.media_types.layer(), "digest": digest, "size": data.len()
            }));
        }
        let config = image.config(&diff_ids);
        let config_digest = sha256(&config);
        client
            .push_blob(&reference, config.clone(), &config_digest)
            .await
            .unwrap_or_else(|e| panic!("push config to {repository}: {e}"));
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": image.media_types.manifest(),
            "config": {"mediaType": image.media_types.config(), "digest": config_digest, "size": config.len()},
            "layers": layers,
        });
        let body = serde_json::to_vec(&manifest).unwrap();
        let digest = sha256(&body);
        self.put_manifest(
            &client,
            repository,
            tag.unwrap_or(&digest),
            image.media_types.manifest(),
            &body,
        )
        .await;
        PushedImage {
            digest,
            media_type: image.media_types.manifest().into(),
            config_digest,
            config_size: config.len() as i64,
            size_bytes: config.len() as i64 + image.layer_sizes.iter().sum::<usize>() as i64,
            layer_count: image.layer_sizes.len() as i32,
            manifest_size: body.len() as i64,
            manifest_sha512: catalog_api::registry::digest_of(
                catalog_api::reference::Algorithm::Sha512,
                &body,
            ),
        }
    }

    async fn put_manifest(
        &self,
        client: &Client,
        repository: &str,
        tag_or_digest: &str,
        media_type: &str,
        body: &[u8],
    ) {
        let reference = if tag_or_digest.starts_with("sha256:") {
            Reference::with_digest(self.host(), repository.into(), tag_or_digest.into())
        } else {
            Reference::with_tag(self.host(), repository.into(), tag_or_digest.into())
        };
        client
            .push_manifest_raw(
                &reference,
                body.to_vec(),
                HeaderValue::from_str(media_type).unwrap(),
            )
            .await
            .unwrap_or_else(|e| panic!("push manifest {repository}:{tag_or_digest}: {e}"));
    }

    /// Pushes one image per fixture and an index over them, tagged `repo_tag`. With
    /// `attestation`, the index also lists an attestation manifest as `unknown/unknown`
    /// (as buildkit does). Media types follow the first fixture.
    pub async fn push_index(
        &self,
        repo_tag: &str,
        images: &[ImageFixture],
        attestation: bool,
    ) -> PushedIndex {
        let (repository, tag) = repo_tag
            .split_once(':')
            .expect("push_index takes repository:tag");
        let media_types = images.first().expect("at least one platform").media_types;
        let mut platforms = Vec::new();
        let mut entries = Vec::new();
        for image in images {
            let pushed = self.push_image_as(repository, None, image).await;
            let mut platform =
                serde_json::json!({"architecture": image.architecture, "os": image.os});
            if let Some(variant) = &image.variant {
                platform["variant"] = variant.clone().into();
            }
            entries.push(serde_json::json!({
                "mediaType": pushed.media_type, "digest": pushed.digest,
                "size": pushed.manifest_size, "platform": platform,
            }));
            platforms.push(pushed);
        }
        let attestation = if attestation {
            let fixture = ImageFixture {
                architecture: "unknown".into(),
                os: "unknown".into(),
                layer_sizes: vec![321],
                media_types,
                ..ImageFixture::new("unknown")
            };
            let pushed = self.push_image_as(repository, None, &fixture).await;
            entries.push(serde_json::json!({
                "mediaType": pushed.media_type, "digest": pushed.digest, "size": pushed.manifest_size,
                "platform": {"architecture": "unknown", "os": "unknown"},
                "annotations": {
                    "vnd.docker.reference.type": "attestation-manifest",
                    "vnd.docker.reference.digest": platforms[0].digest,
                },
            }));
            Some(pushed)
        } else {
            None
        };
        let index = serde_json::json!({
            "schemaVersion": 2, "mediaType": media_types.index(), "manifests": entries,
        });
        let body = serde_json::to_vec(&index).unwrap();
        let (client, auth) = self.oci_client();
        let reference = Reference::with_tag(self.host(), repository.into(), tag.into());
        client
            .auth(&reference, &auth, RegistryOperation::Push)
            .await
            .expect("authenticate to push the index");
        self.put_manifest(&client, repository, tag, media_types.index(), &body)
            .await;
        PushedIndex {
            digest: sha256(&body),
            media_type: media_types.index().into(),
            platforms,
            attestation,
        }
    }

    /// Deletes a manifest by digest. Every tag pointing at it disappears with it (the
    /// registry's semantics); blobs stay (never garbage-collected in tests).
    pub async fn delete_manifest(&self, repository: &str, digest: &str) {
        let mut builder = reqwest::Client::builder();
        if let Some(ca) = self.ca_path() {
            let pem = std::fs::read(ca).unwrap();
            builder = builder.tls_certs_merge(reqwest::Certificate::from_pem_bundle(&pem).unwrap());
        }
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = builder.build().unwrap();
        let mut request =
            client.delete(format!("{}/v2/{repository}/manifests/{digest}", self.url()));
        if let Some((user, password)) = self.credentials() {
            request = request.basic_auth(user, Some(password));
        }
        let response = request.send().await.expect("DELETE manifest");
        assert_eq!(
            response.status().as_u16(),
            202,
            "deleting {repository}@{digest}: {}",
            response.text().await.unwrap_or_default()
        );
    }
}
