//! `steward serve --tls-cert/--tls-key`: HTTPS without a reverse proxy (issue 24; seed 004 asks
//! for secure transmission). rustls on ring, TLS 1.2 and 1.3 with rustls's safe defaults.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls;

/// The acceptor for the certificate chain at `cert` and its private key at `key` (PEM).
pub fn acceptor(cert: &Path, key: &Path) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("--tls-cert {}: cannot be read", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("--tls-cert {}: not a PEM certificate chain", cert.display()))?;
    if chain.is_empty() {
        anyhow::bail!("--tls-cert {}: holds no certificate", cert.display());
    }
    // The error names the file, never its content: the key is secret.
    let key = PrivateKeyDer::from_pem_file(key).map_err(|_| {
        anyhow::anyhow!(
            "--tls-key {}: cannot be read as a PEM private key",
            key.display()
        )
    })?;
    // ring, not aws-lc-rs: ring is already built for reqwest, and aws-lc-rs is a long C build
    // on these machines. rustls deprecates ring's provider for lacking post-quantum key
    // exchange; a deployment that needs it terminates TLS at its proxy (docs/deploy.md).
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("--tls-cert and --tls-key do not make a usable pair")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}
