//! TLS of the server's own (`--tls-cert`, `--tls-key`), with rustls: a
//! listener that hands axum connections once their handshake is done. Each
//! handshake runs in a task of its own, with a time limit, so a slow or
//! silent client holds up no other.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::server::TlsStream;

/// How long a client has to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the certificate or the key cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadTls(String);

/// The server's TLS set-up, from a PEM file of certificates (the server's
/// first, then any intermediates) and a PEM file of its private key.
#[derive(Clone)]
pub struct Tls {
    config: Arc<ServerConfig>,
}

impl Tls {
    /// Reads and checks the certificate chain at `cert` and the key at `key`.
    pub fn load(cert: &Path, key: &Path) -> Result<Self, BadTls> {
        let chain = CertificateDer::pem_file_iter(cert)
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .map_err(|e| {
                BadTls(format!(
                    "`--tls-cert` must be a PEM file of certificates: {e}: {}",
                    cert.display()
                ))
            })?;
        if chain.is_empty() {
            return Err(BadTls(format!(
                "`--tls-cert` holds no certificate (expected `-----BEGIN CERTIFICATE-----`): {}",
                cert.display()
            )));
        }
        let private = PrivateKeyDer::from_pem_file(key).map_err(|e| {
            BadTls(format!(
                "`--tls-key` must be a PEM file of a private key: {e}: {}",
                key.display()
            ))
        })?;
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| BadTls(format!("no TLS versions to offer: {e}")))?
            .with_no_client_auth()
            .with_single_cert(chain, private)
            .map_err(|e| {
                BadTls(format!(
                    "the key in `--tls-key` does not go with the certificate in `--tls-cert`, or cannot be used: {e}"
                ))
            })?;
        let mut config = config;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            config: Arc::new(config),
        })
    }
}

/// A listener of TLS connections whose handshake is done.
pub(crate) struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    addr: SocketAddr,
    acceptor: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    pub(crate) fn new(listener: TcpListener, tls: &Tls) -> io::Result<Self> {
        let addr = listener.local_addr()?;
        let acceptor = TlsAcceptor::from(tls.config.clone());
        let (send, ready) = mpsc::channel(64);
        let acceptor = tokio::spawn(async move {
            loop {
                let Ok((tcp, peer)) = listener.accept().await else {
                    // Out of file descriptors and the like: wait, as axum's
                    // own listener does.
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                };
                let acceptor = acceptor.clone();
                let send = send.clone();
                tokio::spawn(async move {
                    if let Ok(Ok(stream)) =
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
                    {
                        let _ = send.send((stream, peer)).await;
                    }
                });
            }
        });
        Ok(Self {
            ready,
            addr,
            acceptor,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The accepting task is gone (it never ends by itself).
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.addr)
    }
}
