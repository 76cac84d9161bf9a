//! TLS for `serve` (rustls, HTTP/1.1): a certificate chain and key from PEM files, read again
//! when either file changes, so a renewed certificate is served without a restart.
//!
//! **Invariants:** `serve` does not start with files that do not load; a reload that fails (a
//! half-written file, a key that does not match) keeps the certificate in use and says why in
//! the log; new connections get the newest certificate that loaded, open ones keep theirs.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
    time::{Duration, SystemTime},
};

use rustls::{
    ServerConfig,
    crypto::aws_lc_rs,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject as _},
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};

/// Where the certificate chain and its key are.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// How often the files are checked for changes.
    pub reload: Duration,
}

/// The certificate served, swapped when the files change.
#[derive(Debug)]
struct Current {
    key: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Current {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.key.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone())
    }
}

/// Loads the files into a key rustls can serve.
fn load(files: &TlsFiles) -> Result<CertifiedKey, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|error| format!("{}: {error}", files.cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|error| format!("{}: {error}", files.cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: no PEM certificate in it", files.cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|error| format!("{}: {error}", files.key.display()))?;
    let provider = aws_lc_rs::default_provider();
    let certified = CertifiedKey::from_der(chain, key, &provider).map_err(|error| {
        format!("{} and {} do not make a usable key pair: {error}", files.cert.display(), files.key.display())
    })?;
    Ok(certified)
}

fn modified(path: &Path) -> Option<(SystemTime, u64)> {
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.modified().ok()?, metadata.len()))
}

/// A TLS acceptor over `files`, and a task that reloads them when they change (until the
/// acceptor is dropped).
pub fn acceptor(files: TlsFiles) -> Result<tokio_rustls::TlsAcceptor, String> {
    let current = Arc::new(Current { key: RwLock::new(Arc::new(load(&files)?)) });
    let mut config = ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|error| error.to_string())?
        .with_no_client_auth()
        .with_cert_resolver(current.clone());
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let watched = Arc::downgrade(&current);
    tokio::spawn(async move {
        let mut seen = (modified(&files.cert), modified(&files.key));
        loop {
            tokio::time::sleep(files.reload).await;
            let Some(current) = watched.upgrade() else { return };
            let now = (modified(&files.cert), modified(&files.key));
            if now == seen {
                continue;
            }
            seen = now;
            match load(&files) {
                Ok(key) => {
                    *current.key.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(key);
                    tracing::info!(cert = %files.cert.display(), "reloaded the TLS certificate");
                }
                Err(error) => {
                    tracing::warn!(%error, "the TLS certificate was not reloaded; the previous one is served")
                }
            }
        }
    });
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}
