//! The HTTPS listener. kubectl only sends credentials (tokens) over TLS, so the
//! optional users of auth.rs are reachable through this second port; the plain-HTTP
//! port and its kubeconfig stay as they were. The certificate is self-signed, made
//! fresh at every start, and written next to the kubeconfig for clients to trust.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// A self-signed server certificate for loopback and its PEM text (the client's CA).
pub struct Identity {
    pub acceptor: TlsAcceptor,
    pub cert_pem: String,
}

pub fn identity() -> anyhow::Result<Identity> {
    let names = vec![
        "127.0.0.1".to_string(),
        "::1".to_string(),
        "localhost".to_string(),
    ];
    let key = rcgen::generate_simple_self_signed(names)
        .map_err(|e| anyhow::anyhow!("generating the sandbox TLS certificate failed: {e}"))?;
    let cert_der = key.cert.der().clone();
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.signing_key.serialize_der()));
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow::anyhow!("configuring TLS versions failed: {e}"))?
        .with_no_client_auth()
        .with_single_cert(vec![cert_der], key_der)
        .map_err(|e| anyhow::anyhow!("loading the sandbox TLS certificate failed: {e}"))?;
    // HTTP/1.1 only: exec and watch work over it, and it is all this server speaks.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Identity {
        acceptor: TlsAcceptor::from(Arc::new(config)),
        cert_pem: key.cert.pem(),
    })
}

/// Accepts TLS connections forever; each connection is served on its own task so a
/// slow handshake never holds up the others.
pub async fn serve(listener: TcpListener, acceptor: TlsAcceptor, router: Router) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("accepting an HTTPS connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let service = TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            let tls =
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::info!("TLS handshake with {peer} failed: {e}");
                        return;
                    }
                    Err(_) => {
                        tracing::info!("TLS handshake with {peer} timed out");
                        return;
                    }
                };
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .with_upgrades();
            if let Err(e) = conn.await {
                tracing::debug!("HTTPS connection from {peer} ended: {e}");
            }
        });
    }
}
