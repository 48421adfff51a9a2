//! The emulator's https listener: a TLS terminator in front of the plain-HTTP one.
//!
//! kubectl (client-go's `clientcmd`, `staging/src/k8s.io/client-go/tools/clientcmd/
//! client_config.go` `isConfigTransportTLS`) sends credentials and `Impersonate-*` headers
//! only to an https server: over plain HTTP a kubeconfig's token is silently dropped. So the
//! kubeconfigs that carry a token for kubectl point here. The certificate is test-only
//! material (`tls/README.md`), signed by a CA the kubeconfig trusts.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The CA (PEM) that signed the listener's certificate.
pub const CA_PEM: &str = include_str!("tls/ca.pem");

fn acceptor() -> anyhow::Result<TlsAcceptor> {
    static CONFIG: OnceLock<Arc<ServerConfig>> = OnceLock::new();
    if let Some(c) = CONFIG.get() {
        return Ok(TlsAcceptor::from(c.clone()));
    }
    let cert = CertificateDer::from(include_bytes!("tls/server.der").to_vec());
    let key = PrivatePkcs8KeyDer::from(include_bytes!("tls/server.key.der").to_vec());
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![cert], PrivateKeyDer::Pkcs8(key))?;
    Ok(TlsAcceptor::from(
        CONFIG.get_or_init(|| Arc::new(config)).clone(),
    ))
}

/// Accepts TLS connections on `listener` and pipes each to the plain server at `upstream`
/// until either side closes (watches stream through unchanged).
pub async fn serve(listener: tokio::net::TcpListener, upstream: SocketAddr) {
    let acceptor = match acceptor() {
        Ok(a) => a,
        Err(e) => {
            tracing::error!("kube-emulator: TLS listener disabled: {e}");
            return;
        }
    };
    while let Ok((tcp, _)) = listener.accept().await {
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let Ok(mut tls) = acceptor.accept(tcp).await else {
                return;
            };
            let Ok(mut plain) = tokio::net::TcpStream::connect(upstream).await else {
                return;
            };
            let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
        });
    }
}
