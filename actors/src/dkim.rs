//! DKIM signing (RFC 6376; Ed25519 per RFC 8463) of mail submitted by authenticated users,
//! with mail-auth. Keys are generated per domain into `data_dir/dkim/` (private, 0600):
//! RSA 2048 (PKCS#1 DER) or Ed25519 (PKCS#8 DER).

use anyhow::{Context, Result};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{Canonicalization, DkimSigner, Done, NeedDomain};
use postcore_storage::directory::{DkimAlgorithm, DkimSetting};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs1KeyDer};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Header fields signed (RFC 6376 §5.4.1 recommends these), when present.
const SIGNED_HEADERS: [&str; 12] = [
    "From",
    "Reply-To",
    "Subject",
    "Date",
    "To",
    "Cc",
    "Message-ID",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
];

/// A ready signer: key, domain, selector and header list fixed. Headers absent from a message
/// are still listed, so they cannot be added after signing (RFC 6376 §8.15 "oversigning").
enum Signer {
    Rsa(DkimSigner<RsaKey<Sha256>, Done>),
    Ed25519(DkimSigner<Ed25519Key, Done>),
}

/// Loaded signing keys, shared by all workers.
pub struct DkimKeys {
    dir: PathBuf,
    cache: Mutex<HashMap<(String, String, DkimAlgorithm), Arc<Signer>>>,
}

fn ext(a: DkimAlgorithm) -> &'static str {
    match a {
        DkimAlgorithm::Rsa => "rsa",
        DkimAlgorithm::Ed25519 => "ed25519",
    }
}

/// DER length octets.
fn der_len(n: usize, out: &mut Vec<u8>) {
    if n < 0x80 {
        out.push(n as u8);
    } else if n < 0x100 {
        out.extend_from_slice(&[0x81, n as u8]);
    } else {
        out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]);
    }
}

/// Wraps a PKCS#1 RSAPublicKey in a SubjectPublicKeyInfo (what DNS records usually carry and
/// every verifier accepts).
fn rsa_spki(pkcs1: &[u8]) -> Vec<u8> {
    const ALG: [u8; 15] = [
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let mut bits = vec![0x03];
    der_len(pkcs1.len() + 1, &mut bits);
    bits.push(0);
    bits.extend_from_slice(pkcs1);
    let mut out = vec![0x30];
    der_len(ALG.len() + bits.len(), &mut out);
    out.extend_from_slice(&ALG);
    out.extend_from_slice(&bits);
    out
}

impl DkimKeys {
    /// Keys under `data_dir/dkim`.
    pub fn new(data_dir: &Path) -> DkimKeys {
        DkimKeys {
            dir: data_dir.join("dkim"),
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn path(&self, domain: &str, a: DkimAlgorithm) -> PathBuf {
        self.dir.join(format!("{domain}.{}.der", ext(a)))
    }

    fn public_path(&self, domain: &str, a: DkimAlgorithm) -> PathBuf {
        self.dir.join(format!("{domain}.{}.pub", ext(a)))
    }

    /// Creates the key pair for `domain` unless it exists.
    pub fn ensure(&self, domain: &str, a: DkimAlgorithm) -> Result<()> {
        let p = self.path(domain, a);
        if p.exists() {
            return Ok(());
        }
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        let pair = match a {
            DkimAlgorithm::Rsa => mail_auth::dkim::generate::DkimKeyPair::generate_rsa(2048),
            DkimAlgorithm::Ed25519 => mail_auth::dkim::generate::DkimKeyPair::generate_ed25519(),
        }
        .map_err(|e| anyhow::anyhow!("generating DKIM key for {domain}: {e}"))?;
        let public = match a {
            DkimAlgorithm::Rsa => rsa_spki(pair.public_key()),
            DkimAlgorithm::Ed25519 => pair.public_key().to_vec(),
        };
        postcore_storage::durable_file::write(&p, pair.private_key(), 0o600)
            .with_context(|| format!("writing {}", p.display()))?;
        postcore_storage::durable_file::write(
            &self.public_path(domain, a),
            B64.encode(public).as_bytes(),
            0o644,
        )
        .context("writing DKIM public key")?;
        tracing::info!(domain, algorithm = ext(a), "generated DKIM key");
        Ok(())
    }

    /// The TXT record value for `selector._domainkey.domain`.
    pub fn txt_record(&self, domain: &str, a: DkimAlgorithm) -> Result<String> {
        let p = std::fs::read_to_string(self.public_path(domain, a))
            .with_context(|| format!("no DKIM key for {domain}"))?;
        Ok(format!("v=DKIM1; k={}; p={}", ext(a), p.trim()))
    }

    fn signer(&self, domain: &str, setting: &DkimSetting) -> Result<Arc<Signer>> {
        let a = setting.algorithm;
        let cache_key = (domain.to_string(), setting.selector.clone(), a);
        let mut c = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = c.get(&cache_key) {
            return Ok(k.clone());
        }
        let der = std::fs::read(self.path(domain, a))
            .with_context(|| format!("reading DKIM key of {domain}"))?;
        let bad = |e: mail_auth::Error| anyhow::anyhow!("DKIM key of {domain}: {e}");
        let signer = match a {
            DkimAlgorithm::Rsa => {
                let key = RsaKey::<Sha256>::from_key_der(PrivateKeyDer::Pkcs1(
                    PrivatePkcs1KeyDer::from(der),
                ))
                .map_err(bad)?;
                Signer::Rsa(configure(
                    DkimSigner::from_key(key),
                    domain,
                    &setting.selector,
                ))
            }
            DkimAlgorithm::Ed25519 => {
                let key = Ed25519Key::from_pkcs8_der(&der).map_err(bad)?;
                Signer::Ed25519(configure(
                    DkimSigner::from_key(key),
                    domain,
                    &setting.selector,
                ))
            }
        };
        let signer = Arc::new(signer);
        c.insert(cache_key, signer.clone());
        Ok(signer)
    }

    /// Signs `message` for `domain` (relaxed/relaxed) and returns the `DKIM-Signature` field
    /// with its CRLF, ready to be prepended.
    pub fn sign(&self, domain: &str, setting: &DkimSetting, message: &[u8]) -> Result<String> {
        let sig = match &*self.signer(domain, setting)? {
            Signer::Rsa(s) => s.sign(message),
            Signer::Ed25519(s) => s.sign(message),
        }
        .map_err(|e| anyhow::anyhow!("DKIM signing for {domain}: {e}"))?;
        Ok(sig.to_header())
    }
}

fn configure<T: mail_auth::common::crypto::SigningKey>(
    s: DkimSigner<T, NeedDomain>,
    domain: &str,
    selector: &str,
) -> DkimSigner<T, Done> {
    s.domain(domain)
        .selector(selector)
        .headers(SIGNED_HEADERS)
        .header_canonicalization(Canonicalization::Relaxed)
        .body_canonicalization(Canonicalization::Relaxed)
}

#[cfg(test)]
mod tests {
    #[test]
    fn spki_wraps_pkcs1() {
        let pkcs1 = vec![0x30, 0x03, 0x02, 0x01, 0x05];
        let spki = super::rsa_spki(&pkcs1);
        assert_eq!(&spki[..2], &[0x30, 23]);
        assert_eq!(&spki[17..20], &[0x03, 6, 0]);
        assert!(spki.ends_with(&pkcs1));
    }
}
