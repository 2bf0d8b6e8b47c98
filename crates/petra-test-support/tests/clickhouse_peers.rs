//! The ClickHouse peer works: a real clickhouse-server 18.16 in a temp dir, its users, HTTPS,
//! and data that survives a kill and a restart.

use petra_test_support::clickhouse::{ClickHouse, PASSWORD, USER};
use petra_test_support::port_open;

#[test]
fn starts_and_creates_inserts_and_selects() {
    let ch = ClickHouse::start();
    assert_eq!(ch.url(), format!("http://127.0.0.1:{}", ch.http_port()));
    assert_eq!(ch.query("SELECT version()").trim(), "18.16.1");
    // The server's time zone is UTC whatever the machine's (18.16 names it `Etc/UTC`).
    assert!(ch.query("SELECT timezone()").ends_with("UTC\n"));
    assert_eq!(
        ch.query("SELECT toDateTime(1764860400)"),
        "2025-12-04 15:00:00\n"
    );
    ch.query("CREATE DATABASE d");
    ch.query(
        "CREATE TABLE d.t (k String, ts DateTime, v Nullable(Float64)) \
         ENGINE = MergeTree PARTITION BY toYYYYMM(ts) ORDER BY (k, ts)",
    );
    ch.query("INSERT INTO d.t VALUES ('a', 1764860400, 1.5), ('b', 1764860401, NULL)");
    assert_eq!(
        ch.query("SELECT k, ts, v FROM d.t ORDER BY k"),
        "a\t2025-12-04 15:00:00\t1.5\nb\t2025-12-04 15:00:01\t\\N\n"
    );
    // Errors carry the server's code and text.
    let e = ch.try_query("SELECT * FROM d.missing").unwrap_err();
    assert_eq!((e.status, e.code()), (404, Some(60)), "{e}");
    assert!(e.message.contains("d.missing"), "{e}");
    let e = ch.try_query("SELEC 1").unwrap_err();
    assert_eq!((e.status, e.code()), (400, Some(62)), "{e}");
}

#[test]
fn the_password_user_works_and_a_wrong_password_fails() {
    let ch = ClickHouse::start();
    assert_eq!(ch.query_as(USER, PASSWORD, "SELECT 1").unwrap(), "1\n");
    let e = ch.query_as(USER, "wrong", "SELECT 1").unwrap_err();
    assert_eq!((e.status, e.code()), (401, Some(193)), "{e}");
    assert!(e.message.contains("Wrong password for user petra"), "{e}");
    let e = ch.query_as("nobody", "x", "SELECT 1").unwrap_err();
    assert_eq!((e.status, e.code()), (401, Some(192)), "{e}");
    // `default` has no password.
    assert_eq!(ch.query_as("default", "", "SELECT 2").unwrap(), "2\n");
}

#[test]
fn https_listens_with_a_certificate_of_the_test_ca() {
    let ch = ClickHouse::start();
    assert_eq!(
        ch.https_url(),
        format!("https://localhost:{}", ch.https_port())
    );
    assert!(port_open(ch.https_port()));
    // A client that trusts only the peer's CA gets an answer over HTTPS.
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(ch.ca_file()).unwrap())
        .unwrap();
    let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .no_proxy()
        .build()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let answer = rt.block_on(async {
        let url = format!("{}/?query=SELECT%2042", ch.https_url());
        client.get(url).send().await?.text().await
    });
    assert_eq!(answer.unwrap(), "42\n");
}

#[test]
fn kill_and_restart_keep_the_data_and_the_ports() {
    let mut ch = ClickHouse::start();
    let url = ch.url();
    ch.query("CREATE TABLE t (x UInt32) ENGINE = MergeTree ORDER BY x");
    ch.query("INSERT INTO t VALUES (1), (2)");
    ch.kill();
    assert!(!ch.is_running());
    let e = ch.try_query("SELECT 1").unwrap_err();
    assert_eq!(e.status, 0, "{e}");
    ch.restart();
    assert!(ch.is_running());
    assert_eq!(ch.url(), url);
    assert_eq!(ch.query("SELECT sum(x) FROM t"), "3\n");
    ch.query("INSERT INTO t VALUES (3)");
    // A clean stop keeps it too.
    ch.stop();
    assert!(!ch.is_running());
    ch.restart();
    assert_eq!(ch.query("SELECT sum(x) FROM t"), "6\n");
    let out = ch.output();
    assert!(
        out.iter().any(|l| l == "=== clickhouse-server run 3 ==="),
        "{}",
        out.join("\n")
    );
}
