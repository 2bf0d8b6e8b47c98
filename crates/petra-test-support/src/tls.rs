//! A throw-away certificate authority for TLS tests.
//!
//! [`TestCa::new`] makes a CA and a server certificate it signs for `localhost` and
//! `127.0.0.1`, and writes them as PEM into a temporary directory (deleted on drop):
//!
//! | file | holds |
//! |---|---|
//! | `cert.pem` | the server certificate followed by the CA certificate (the chain a server sends) |
//! | `key.pem` | the server's private key (PKCS#8, ECDSA P-256) |
//! | `ca.pem` | the CA certificate, what a client trusts |
//!
//! [`TestCa::client`] is an HTTPS client that trusts that CA and nothing else, so a test
//! proves the server presented a certificate the client could verify — not merely that some
//! TLS happened.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
    SanType,
};

/// A CA and a server certificate for `localhost` / `127.0.0.1`, as PEM files in a temp dir.
pub struct TestCa {
    dir: tempfile::TempDir,
    ca_pem: String,
}

impl TestCa {
    /// Makes the CA, the server certificate and key, and writes the three files.
    /// Panics on failure (this is test support).
    pub fn new() -> TestCa {
        let dir = tempfile::tempdir().expect("temp dir for the test CA");

        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        // A name of its own, so that two test CAs are unrelated to a verifier (same name
        // would make it try the other CA's key and fail on the signature instead).
        let name = dir.path().file_name().unwrap_or_default().to_string_lossy();
        ca_params
            .distinguished_name
            .push(DnType::CommonName, format!("Petra test CA {name}"));
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = KeyPair::generate().expect("CA key");
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key).expect("self-signed CA");

        let mut params =
            CertificateParams::new(vec!["localhost".to_string()]).expect("server params");
        params
            .subject_alt_names
            .push(SanType::IpAddress([127, 0, 0, 1].into()));
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let key = KeyPair::generate().expect("server key");
        let cert = params.signed_by(&key, &ca).expect("server certificate");

        let ca_pem = ca.pem();
        std::fs::write(
            dir.path().join("cert.pem"),
            format!("{}{}", cert.pem(), ca_pem),
        )
        .expect("write cert.pem");
        std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).expect("write key.pem");
        std::fs::write(dir.path().join("ca.pem"), &ca_pem).expect("write ca.pem");
        TestCa { dir, ca_pem }
    }

    /// The temporary directory holding the files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `cert.pem`: server certificate and CA certificate.
    pub fn cert_path(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    /// `key.pem`: the server's private key.
    pub fn key_path(&self) -> PathBuf {
        self.dir.path().join("key.pem")
    }

    /// `ca.pem`: the CA certificate (for `curl --cacert`, `st run --tls-verify`).
    pub fn ca_path(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The CA certificate as PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A rustls client configuration (ring provider, HTTP/1.1 ALPN) that trusts only this CA.
    pub fn client_config(&self) -> rustls::ClientConfig {
        use rustls::pki_types::{CertificateDer, pem::PemObject};
        let mut roots = rustls::RootCertStore::empty();
        let ca = CertificateDer::from_pem_slice(self.ca_pem.as_bytes()).expect("parse ca.pem");
        roots.add(ca).expect("add the test CA to the root store");
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports TLS 1.2 and 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        config
    }

    /// An HTTPS client that trusts only this CA; no proxy, 30 s timeout.
    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .tls_backend_preconfigured(self.client_config())
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("build the HTTPS test client")
    }
}

impl Default for TestCa {
    fn default() -> TestCa {
        TestCa::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_chain_a_key_and_the_ca() {
        let ca = TestCa::new();
        let cert = std::fs::read_to_string(ca.cert_path()).unwrap();
        assert_eq!(cert.matches("BEGIN CERTIFICATE").count(), 2, "{cert}");
        assert!(cert.ends_with(ca.ca_pem()));
        let key = std::fs::read_to_string(ca.key_path()).unwrap();
        assert!(key.contains("BEGIN PRIVATE KEY"), "{key}");
        assert_eq!(std::fs::read_to_string(ca.ca_path()).unwrap(), ca.ca_pem());
        // Two CAs are unrelated: a client of one must not trust the other's server.
        assert_ne!(TestCa::new().ca_pem(), ca.ca_pem());
        let _ = ca.client();
    }
}
