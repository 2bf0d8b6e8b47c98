//! TLS for the HTTP API (`server.tls`): rustls with the ring provider.
//!
//! [`server_config`] reads the PEM certificate chain and private key named in the
//! configuration and gives a [`rustls::ServerConfig`] for TLS 1.2 and 1.3 offering HTTP/2 and
//! HTTP/1.1 by ALPN; serve it with `axum_server::tls_rustls::RustlsConfig::from_config`.
//! Every problem with the files is a [`ServerError`] naming the file and what is wrong with
//! it, found at start — never at the first handshake.
//!
//! The process installs ring as rustls' default provider once ([`install_crypto_provider`]),
//! for the libraries that look it up (HTTP and MQTT clients); [`server_config`] names its
//! provider explicitly and works without it.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::{self, PemObject, SectionKind};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::ServerError;

/// ALPN protocols offered, most preferred first.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Installs ring as the process-wide default rustls crypto provider. Idempotent: later calls,
/// and a provider someone else installed first, are fine.
pub fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race with another thread installing one is fine too.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// The TLS configuration for the HTTP server: the certificate chain in `cert` (PEM, the
/// server's certificate first, then any intermediates) and the private key in `key` (PEM:
/// PKCS#8, PKCS#1 RSA or SEC1 EC).
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, ServerError> {
    let chain = read_chain(cert)?;
    let private_key = read_key(key, cert)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| tls_error(cert, format!("no usable TLS version: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => tls_error(
                key,
                format!(
                    "the private key does not match the certificate in {}; give the key the \
                     certificate was made for (or the certificate for this key)",
                    cert.display()
                ),
            ),
            other => tls_error(
                key,
                format!(
                    "the private key cannot be used with the certificate in {}: {other}",
                    cert.display()
                ),
            ),
        })?;
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

fn tls_error(path: &Path, problem: String) -> ServerError {
    ServerError::Tls {
        path: path.to_path_buf(),
        problem,
    }
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, ServerError> {
    std::fs::read(path).map_err(|source| ServerError::Io {
        op: what,
        path: path.to_path_buf(),
        source,
    })
}

/// What kinds of PEM sections `bytes` holds, for the error message when the wanted one is
/// absent (a key in the certificate file is the classic swap).
fn sections(bytes: &[u8]) -> Vec<SectionKind> {
    let mut kinds = Vec::new();
    for (kind, _) in <(SectionKind, Vec<u8>)>::pem_slice_iter(bytes).map_while(Result::ok) {
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    kinds
}

fn pem_problem(e: pem::Error) -> String {
    format!("it is not valid PEM ({e})")
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, ServerError> {
    let bytes = read(path, "read the TLS certificate file")?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_error(path, pem_problem(e)))?;
    if chain.is_empty() {
        let found = sections(&bytes);
        let problem = if found.iter().any(is_key) {
            "it holds a private key but no certificate — are `cert` and `key` swapped?".to_string()
        } else {
            "it holds no certificate (expected PEM `-----BEGIN CERTIFICATE-----` blocks, the \
             server's certificate first)"
                .to_string()
        };
        return Err(tls_error(path, problem));
    }
    // Catch a corrupt certificate here, with the file's name, rather than at every handshake.
    for (i, c) in chain.iter().enumerate() {
        if let Err(e) = rustls::server::ParsedCertificate::try_from(c) {
            return Err(tls_error(
                path,
                format!("certificate {} of the chain cannot be parsed: {e}", i + 1),
            ));
        }
    }
    Ok(chain)
}

fn is_key(kind: &SectionKind) -> bool {
    matches!(
        kind,
        SectionKind::PrivateKey | SectionKind::RsaPrivateKey | SectionKind::EcPrivateKey
    )
}

fn read_key(path: &Path, cert: &Path) -> Result<PrivateKeyDer<'static>, ServerError> {
    let bytes = read(path, "read the TLS private key file")?;
    match PrivateKeyDer::from_pem_slice(&bytes) {
        Ok(key) => Ok(key),
        Err(pem::Error::NoItemsFound) => {
            let found = sections(&bytes);
            let problem = if found.contains(&SectionKind::Certificate) {
                format!(
                    "it holds a certificate but no private key — are `cert` and `key` swapped? \
                     (the certificate is {})",
                    cert.display()
                )
            } else if bytes.windows(9).any(|w| w == b"ENCRYPTED") {
                "the private key is encrypted; Petra needs it unencrypted (protect it with \
                 file permissions: chmod 600)"
                    .to_string()
            } else {
                "it holds no private key (expected PEM `PRIVATE KEY`, `RSA PRIVATE KEY` or \
                 `EC PRIVATE KEY`)"
                    .to_string()
            };
            Err(tls_error(path, problem))
        }
        Err(e) => Err(tls_error(path, pem_problem(e))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use petra_test_support::TestCa;
    use std::net::TcpListener;
    use std::time::Duration;

    fn message(r: Result<Arc<rustls::ServerConfig>, ServerError>) -> String {
        r.expect_err("the configuration must be refused")
            .to_string()
    }

    #[test]
    fn good_files_give_tls12_and_13_with_h2_and_http11() {
        let ca = TestCa::new();
        let config = server_config(&ca.cert_path(), &ca.key_path()).unwrap();
        assert_eq!(
            config.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        // Twice is fine.
        install_crypto_provider();
        install_crypto_provider();
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    }

    #[test]
    fn sec1_ec_and_pkcs1_rsa_keys_are_accepted() {
        // rcgen writes PKCS#8 (above); openssl's `ecparam -genkey` and `genrsa -traditional`
        // write these (testdata/tls/README.md).
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/tls");
        for (cert, key) in [("ec.pem", "ec-sec1.key"), ("rsa.pem", "rsa-pkcs1.key")] {
            server_config(&data.join(cert), &data.join(key))
                .unwrap_or_else(|e| panic!("{key}: {e}"));
        }
        let e = message(server_config(
            &data.join("ec.pem"),
            &data.join("rsa-pkcs1.key"),
        ));
        assert!(e.contains("does not match"), "{e}");
    }

    #[test]
    fn a_missing_file_is_named() {
        let ca = TestCa::new();
        let missing = ca.dir().join("nope.pem");
        let e = message(server_config(&missing, &ca.key_path()));
        assert!(
            e.contains("read the TLS certificate file") && e.contains("nope.pem"),
            "{e}"
        );
        let e = message(server_config(&ca.cert_path(), &missing));
        assert!(
            e.contains("read the TLS private key file") && e.contains("nope.pem"),
            "{e}"
        );
    }

    #[test]
    fn garbage_and_swapped_files_say_what_is_wrong() {
        let ca = TestCa::new();
        let garbage = ca.dir().join("garbage.pem");
        std::fs::write(&garbage, "this is not a certificate\n").unwrap();
        let e = message(server_config(&garbage, &ca.key_path()));
        assert!(
            e.contains("garbage.pem") && e.contains("holds no certificate"),
            "{e}"
        );
        let e = message(server_config(&ca.cert_path(), &garbage));
        assert!(
            e.contains("garbage.pem") && e.contains("holds no private key"),
            "{e}"
        );
        let e = message(server_config(&ca.key_path(), &ca.cert_path()));
        assert!(e.contains("swapped"), "{e}");

        let broken = ca.dir().join("broken.pem");
        std::fs::write(
            &broken,
            "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let e = message(server_config(&broken, &ca.key_path()));
        assert!(
            e.contains("broken.pem") && e.contains("not valid PEM"),
            "{e}"
        );

        let bad_der = ca.dir().join("bad-der.pem");
        std::fs::write(
            &bad_der,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let e = message(server_config(&bad_der, &ca.key_path()));
        assert!(
            e.contains("bad-der.pem") && e.contains("cannot be parsed"),
            "{e}"
        );
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let ca = TestCa::new();
        let other = TestCa::new();
        let e = message(server_config(&ca.cert_path(), &other.key_path()));
        assert!(
            e.contains("does not match the certificate")
                && e.contains(&*other.key_path().to_string_lossy()),
            "{e}"
        );
    }

    /// Serves a one-route app (`GET /health` → `ok`) over TLS with `server_config` on a free
    /// port, the way the HTTP server does; returns the port.
    fn serve(rt: &tokio::runtime::Runtime, ca: &TestCa) -> u16 {
        let config = server_config(&ca.cert_path(), &ca.key_path()).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = axum::Router::new().route("/health", axum::routing::get(|| async { "ok" }));
        let rustls = axum_server::tls_rustls::RustlsConfig::from_config(config);
        let _guard = rt.enter();
        let server = axum_server::from_tcp_rustls(listener, rustls).unwrap();
        rt.spawn(server.serve(app.into_make_service()));
        port
    }

    #[test]
    fn https_with_the_test_ca_works_and_anything_else_fails() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let ca = TestCa::new();
        let port = serve(&rt, &ca);
        rt.block_on(async {
            // The client trusts only the test CA: a 200 means the server's chain verified.
            let url = format!("https://localhost:{port}/health");
            let r = ca.client().get(&url).send().await.unwrap();
            assert_eq!(r.status(), 200);
            assert_eq!(r.text().await.unwrap(), "ok");
            let by_ip = format!("https://127.0.0.1:{port}/health");
            assert_eq!(ca.client().get(&by_ip).send().await.unwrap().status(), 200);

            // A client trusting another CA refuses the certificate.
            let stranger = TestCa::new();
            let e = stranger.client().get(&url).send().await.unwrap_err();
            let chain = format!("{:?}", e);
            assert!(chain.contains("UnknownIssuer"), "{chain}");

            // Plain HTTP to the TLS port gets no HTTP answer (a TLS alert or a closed
            // connection).
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut plain = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap();
            plain
                .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
                .await
                .unwrap();
            let mut answer = Vec::new();
            let read = plain.read_to_end(&mut answer);
            let _ = tokio::time::timeout(Duration::from_secs(10), read)
                .await
                .expect("the server closes a plain HTTP connection");
            assert!(
                !answer.starts_with(b"HTTP/"),
                "plain HTTP was answered: {}",
                String::from_utf8_lossy(&answer)
            );
        });
    }
}
