//! TLS server configuration (rustls, TLS 1.2 and 1.3 only), with a self-signed certificate
//! generated on first start when none is configured.

use anyhow::{Context, Result};
use postcore_storage::durable_file;
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;

/// Loads the configured certificate and key, or creates/loads `data_dir/tls/{cert,key}.pem`.
pub fn server_config(
    cert: Option<&Path>,
    key: Option<&Path>,
    data_dir: &Path,
    hostname: &str,
) -> Result<Arc<ServerConfig>> {
    let (cert_path, key_path) = match (cert, key) {
        (Some(c), Some(k)) => (c.to_path_buf(), k.to_path_buf()),
        (None, None) => {
            let dir = data_dir.join("tls");
            let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
            if !c.exists() || !k.exists() {
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                let ck = rcgen::generate_simple_self_signed(vec![
                    hostname.to_string(),
                    "localhost".into(),
                ])
                .context("generating self-signed certificate")?;
                // Key first: a certificate on disk means its key is too.
                durable_file::write(&k, ck.signing_key.serialize_pem().as_bytes(), 0o600)
                    .with_context(|| format!("writing {}", k.display()))?;
                durable_file::write(&c, ck.cert.pem().as_bytes(), 0o644)
                    .with_context(|| format!("writing {}", c.display()))?;
                tracing::info!(cert = %c.display(), "generated self-signed TLS certificate for {hostname}");
            }
            (c, k)
        }
        _ => anyhow::bail!("tls.cert and tls.key must be set together"),
    };
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut std::io::BufReader::new(
        std::fs::File::open(&cert_path)
            .with_context(|| format!("opening {}", cert_path.display()))?,
    ))
    .collect::<Result<_, _>>()
    .with_context(|| format!("reading {}", cert_path.display()))?;
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut std::io::BufReader::new(
        std::fs::File::open(&key_path)
            .with_context(|| format!("opening {}", key_path.display()))?,
    ))
    .with_context(|| format!("reading {}", key_path.display()))?
    .with_context(|| format!("no private key in {}", key_path.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("TLS versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("TLS certificate and key do not match")?;
    Ok(Arc::new(cfg))
}
