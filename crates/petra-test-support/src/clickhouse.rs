//! A ClickHouse server peer for Petra's tests.
//!
//! [`ClickHouse::start`] runs Debian's `clickhouse-server` 18.16 (`/usr/sbin/clickhouse-server
//! --config-file=FILE`) with everything in a temp dir:
//!
//! | what | where |
//! |---|---|
//! | HTTP interface | `http://127.0.0.1:PORT` ([`ClickHouse::url`]) on a free port |
//! | HTTPS interface | `https://localhost:PORT` ([`ClickHouse::https_url`]) on another free port; its certificate (for `localhost` and `127.0.0.1`) is signed by the CA in [`ClickHouse::ca_file`] (a [`TestCa`]) |
//! | native TCP protocol | off (no `tcp_port`: 18.16 then opens no TCP listener) |
//! | data, metadata, tmp | `data/`, `tmp/` in the temp dir ([`ClickHouse::dir`]) |
//! | log | stderr (`<console>1</console>`, level `information`), collected by [`ClickHouse::output`] |
//! | users | `default` without a password; [`USER`] with [`PASSWORD`] (both from 127.0.0.1 only) |
//! | time zone | `UTC` (so `DateTime` columns print in UTC whatever the machine's zone) |
//!
//! Ready means `GET /ping` answers `Ok.` (18.16 loads its metadata before it listens, so a
//! table that existed is there when the ping answers).
//!
//! [`ClickHouse::query`] / [`ClickHouse::try_query`] send SQL with a small HTTP/1.1 client of
//! this module (not Petra's), so a test checks Petra's writes with a client independent of it.
//! [`ClickHouse::stop`] (SIGTERM), [`ClickHouse::kill`] (SIGKILL) and [`ClickHouse::restart`]
//! (same ports, same data dir: inserted rows survive both, since an INSERT that was answered
//! is on disk) exercise outages.
//!
//! # ClickHouse 18.16 quirks (what Debian 12 ships)
//!
//! * `clickhouse-server --version` / `--help` do not exist (`Unknown option specified`); the
//!   version is `SELECT version()` (`18.16.1`).
//! * It runs as root without complaint (the Debian service runs it as user `clickhouse`; with a
//!   config in a temp dir nothing needs that).
//! * A POST needs a body: the query goes in the body (or in `?query=` with the data of an
//!   INSERT in the body); a POST with no body is answered `411` (Code 381).
//! * Errors are the plain text `Code: N, e.displayText() = DB::Exception: …` with HTTP 400
//!   (syntax), 401 (unknown user 192, wrong password 193), 404 (unknown table 60, database 81,
//!   identifier 47), 500 (most others, e.g. a value it cannot parse, 27).
//! * No `DateTime64`, codecs, TTL, `Map`, `Bool`, `RowBinaryWithNamesAndTypes`,
//!   `currentUser()`, query parameters (`{name:Type}`); `LowCardinality` needs
//!   `allow_experimental_low_cardinality_type = 1`; the `X-ClickHouse-Database` header is
//!   ignored (use `?database=`). JSONEachRow cannot carry a NaN into a `Nullable(Float64)`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Child, DEFAULT_TIMEOUT, TestCa, on_path, require, wait_until};

/// What installs the server.
pub const INSTALL: &str = "apt-get install -y clickhouse-server";
/// The user that needs a password (basic auth, or `user`/`password` URL parameters).
pub const USER: &str = "petra";
/// [`USER`]'s password.
pub const PASSWORD: &str = "s3cret";
/// The host name the HTTPS certificate is for (also `127.0.0.1`).
pub const TLS_HOST: &str = "localhost";

/// Where Debian installs the server (not on every user's PATH).
const SBIN: &str = "/usr/sbin/clickhouse-server";
const HOST: &str = "127.0.0.1";

/// Why a query failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryError {
    /// The HTTP status; 0 when no HTTP answer came (connection refused or reset, timeout).
    pub status: u16,
    /// The server's error text (`Code: N, e.displayText() = …`), or the connection error.
    pub message: String,
}

impl QueryError {
    /// The ClickHouse error code (`Code: N`) in the message, if any.
    pub fn code(&self) -> Option<u32> {
        let rest = &self.message[self.message.find("Code: ")? + 6..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    }
}

impl std::fmt::Display for QueryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.status == 0 {
            write!(f, "no HTTP answer: {}", self.message)
        } else {
            write!(f, "HTTP {}: {}", self.status, self.message.trim_end())
        }
    }
}

impl std::error::Error for QueryError {}

/// A ClickHouse server in a temp dir on free ports of 127.0.0.1 (see the [module docs](self)).
/// Killed on drop.
///
/// ```no_run
/// use petra_test_support::clickhouse::ClickHouse;
/// let mut ch = ClickHouse::start();
/// ch.query("CREATE TABLE t (x UInt8) ENGINE = MergeTree ORDER BY x");
/// ch.query("INSERT INTO t VALUES (1)");
/// ch.kill();
/// ch.restart();
/// assert_eq!(ch.query("SELECT x FROM t"), "1\n");
/// ```
pub struct ClickHouse {
    // Dropped first: the process, then the directory it uses.
    process: Option<Child>,
    http_port: u16,
    https_port: u16,
    /// The output of the earlier runs (before the last restart).
    earlier: Vec<String>,
    runs: usize,
    dir: tempfile::TempDir,
}

impl ClickHouse {
    /// Writes the configuration, users and certificate into a temp dir, starts the server and
    /// waits until `/ping` answers. Panics with the install command if the server is missing,
    /// and with its output if it does not start.
    pub fn start() -> ClickHouse {
        server_bin();
        let dir = tempfile::tempdir().expect("temp dir for ClickHouse");
        let http_port = crate::free_port();
        let https_port = loop {
            let p = crate::free_port();
            if p != http_port {
                break p;
            }
        };
        write_files(dir.path(), http_port, https_port);
        let mut ch = ClickHouse {
            process: None,
            http_port,
            https_port,
            earlier: Vec::new(),
            runs: 0,
            dir,
        };
        ch.spawn();
        ch
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{HOST}:{}", self.http_port)
    }

    /// `https://localhost:PORT`; the certificate is signed by [`ClickHouse::ca_file`].
    pub fn https_url(&self) -> String {
        format!("https://{TLS_HOST}:{}", self.https_port)
    }

    pub fn http_port(&self) -> u16 {
        self.http_port
    }

    pub fn https_port(&self) -> u16 {
        self.https_port
    }

    /// The CA certificate (PEM) that signed the HTTPS certificate: what a client trusts.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The temp dir (`config.xml`, `users.xml`, certificate, `data/`, `tmp/`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `sql` as user `default` and returns the answer (e.g. `TabSeparated` rows, each
    /// ending in `\n`). Panics with the server's error text on failure.
    pub fn query(&self, sql: &str) -> String {
        self.try_query(sql)
            .unwrap_or_else(|e| panic!("ClickHouse query failed: {e}\nquery: {sql}"))
    }

    /// Runs `sql` as user `default`; the answer, or the error the server (or the connection)
    /// gave.
    pub fn try_query(&self, sql: &str) -> Result<String, QueryError> {
        post(self.http_port, "/", sql.as_bytes())
    }

    /// Runs `sql` as `user` with `password` (sent as the `user` / `password` URL parameters,
    /// which every ClickHouse version understands).
    pub fn query_as(&self, user: &str, password: &str, sql: &str) -> Result<String, QueryError> {
        let path = format!(
            "/?user={}&password={}",
            percent_encode(user),
            percent_encode(password)
        );
        post(self.http_port, &path, sql.as_bytes())
    }

    /// Whether the server process runs (false after [`ClickHouse::stop`],
    /// [`ClickHouse::kill`] or a crash).
    pub fn is_running(&mut self) -> bool {
        match &mut self.process {
            Some(p) => matches!(p.child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Everything the server logged in every run since [`ClickHouse::start`]; each run after
    /// the first starts with a `=== clickhouse-server run N ===` line.
    pub fn output(&self) -> Vec<String> {
        let mut out = self.earlier.clone();
        if let Some(p) = &self.process {
            out.extend(p.output());
        }
        out
    }

    /// Stops the server the way a service manager does (SIGTERM) and waits until it exited.
    /// Does nothing if it does not run.
    pub fn stop(&mut self) {
        self.end(libc::SIGTERM);
    }

    /// Kills the server (SIGKILL) and waits until it exited. Does nothing if it does not run.
    pub fn kill(&mut self) {
        self.end(libc::SIGKILL);
    }

    /// Starts the server again on the same ports with the same configuration and data, and
    /// waits until it answers. If it runs, it is stopped first ([`ClickHouse::stop`]).
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    fn end(&mut self, signal: i32) {
        if let Some(mut p) = self.process.take() {
            if matches!(p.child.try_wait(), Ok(None)) {
                p.signal(signal);
            }
            p.wait_exit(DEFAULT_TIMEOUT);
            self.earlier.extend(p.output());
        }
    }

    fn spawn(&mut self) {
        let bin = server_bin();
        self.runs += 1;
        if self.runs > 1 {
            self.earlier
                .push(format!("=== clickhouse-server run {} ===", self.runs));
        }
        let mut process = Child::spawn(
            "clickhouse-server",
            Command::new(&bin)
                .arg(format!(
                    "--config-file={}",
                    self.dir.path().join("config.xml").display()
                ))
                .current_dir(self.dir.path()),
        );
        let port = self.http_port;
        let earlier = &self.earlier;
        wait_until(
            &format!("clickhouse-server to answer /ping on port {port}"),
            DEFAULT_TIMEOUT,
            || {
                if let Ok(Some(status)) = process.child.try_wait() {
                    panic!(
                        "clickhouse-server ({bin}) exited with {status} before answering; \
                         output:\n{}",
                        earlier
                            .iter()
                            .chain(&process.output())
                            .cloned()
                            .collect::<Vec<_>>()
                            .join("\n")
                    );
                }
                get(port, "/ping").is_ok_and(|answer| answer == "Ok.\n")
            },
        );
        self.process = Some(process);
    }
}

/// The server binary: `/usr/sbin/clickhouse-server` (Debian), else `clickhouse-server` on
/// PATH. Panics with the install command if neither exists.
fn server_bin() -> String {
    if on_path(SBIN) {
        return SBIN.to_string();
    }
    require("clickhouse-server", INSTALL);
    "clickhouse-server".to_string()
}

/// Writes `config.xml`, `users.xml` and the HTTPS certificate into `dir`.
fn write_files(dir: &Path, http_port: u16, https_port: u16) {
    let ca = TestCa::new();
    for (from, to) in [
        (ca.cert_path(), "cert.pem"),
        (ca.key_path(), "key.pem"),
        (ca.ca_path(), "ca.pem"),
    ] {
        std::fs::copy(&from, dir.join(to))
            .unwrap_or_else(|e| panic!("copy {} to the ClickHouse dir: {e}", from.display()));
    }
    let d = dir.display();
    // `mark_cache_size` has no default in 18.16 (it exits with `Not found: mark_cache_size`); caches are
    // allocated on demand, so the number is a cap, not a reservation.
    let config = format!(
        r#"<?xml version="1.0"?>
<!-- Written by petra-test-support (clickhouse.rs) for one test. -->
<yandex>
    <logger>
        <level>information</level>
        <console>1</console>
    </logger>
    <listen_host>{HOST}</listen_host>
    <http_port>{http_port}</http_port>
    <https_port>{https_port}</https_port>
    <openSSL>
        <server>
            <certificateFile>{d}/cert.pem</certificateFile>
            <privateKeyFile>{d}/key.pem</privateKeyFile>
            <verificationMode>none</verificationMode>
            <loadDefaultCAFile>false</loadDefaultCAFile>
            <cacheSessions>true</cacheSessions>
            <disableProtocols>sslv2,sslv3</disableProtocols>
            <preferServerCiphers>true</preferServerCiphers>
        </server>
    </openSSL>
    <path>{d}/data/</path>
    <tmp_path>{d}/tmp/</tmp_path>
    <user_files_path>{d}/user_files/</user_files_path>
    <format_schema_path>{d}/format_schemas/</format_schema_path>
    <users_config>{d}/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mark_cache_size>268435456</mark_cache_size>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
</yandex>
"#
    );
    std::fs::write(dir.join("config.xml"), config).expect("write config.xml");
    let users = format!(
        r#"<?xml version="1.0"?>
<!-- Written by petra-test-support (clickhouse.rs) for one test. -->
<yandex>
    <profiles>
        <default></default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
        <{USER}>
            <password>{PASSWORD}</password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </{USER}>
    </users>
    <quotas>
        <default></default>
    </quotas>
</yandex>
"#
    );
    std::fs::write(dir.join("users.xml"), users).expect("write users.xml");
}

/// `GET path` on 127.0.0.1:`port`.
fn get(port: u16, path: &str) -> Result<String, QueryError> {
    exchange(port, "GET", path, None)
}

/// `POST path` on 127.0.0.1:`port` with `body`.
fn post(port: u16, path: &str, body: &[u8]) -> Result<String, QueryError> {
    exchange(port, "POST", path, Some(body))
}

/// One HTTP/1.1 exchange on a new connection (`Connection: close`): the body of a 200 answer
/// as text, or the status and body of any other.
fn exchange(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
) -> Result<String, QueryError> {
    let io = |e: std::io::Error| QueryError {
        status: 0,
        message: format!("127.0.0.1:{port}: {e}"),
    };
    let mut s = TcpStream::connect_timeout(
        &(HOST.parse::<std::net::IpAddr>().expect("ip"), port).into(),
        DEFAULT_TIMEOUT,
    )
    .map_err(io)?;
    s.set_read_timeout(Some(DEFAULT_TIMEOUT)).map_err(io)?;
    s.set_write_timeout(Some(DEFAULT_TIMEOUT)).map_err(io)?;
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n");
    if let Some(b) = body {
        req.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body.unwrap_or_default());
    s.write_all(&bytes).map_err(io)?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).map_err(io)?;
    let (status, body) = parse_response(&answer).ok_or_else(|| QueryError {
        status: 0,
        message: format!(
            "127.0.0.1:{port}: malformed HTTP answer: {}",
            String::from_utf8_lossy(&answer)
        ),
    })?;
    let text = String::from_utf8_lossy(&body).into_owned();
    if status == 200 {
        Ok(text)
    } else {
        Err(QueryError {
            status,
            message: text,
        })
    }
}

/// The status and (de-chunked) body of a complete HTTP/1.x response.
fn parse_response(r: &[u8]) -> Option<(u16, Vec<u8>)> {
    let head_end = r.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&r[..head_end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let chunked = lines.any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("transfer-encoding")
                && v.trim().eq_ignore_ascii_case("chunked")
        })
    });
    let mut rest = &r[head_end + 4..];
    if !chunked {
        return Some((status, rest.to_vec()));
    }
    let mut body = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&rest[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Some((status, body));
        }
        body.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_answers_parse_plain_and_chunked() {
        assert_eq!(
            parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nOk.\n"),
            Some((200, b"Ok.\n".to_vec()))
        );
        assert_eq!(
            parse_response(
                b"HTTP/1.1 500 Internal\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
            ),
            Some((500, b"abcde".to_vec()))
        );
        assert_eq!(parse_response(b"HTTP/1.1 200 OK\r\n"), None);
        assert_eq!(
            parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"),
            None
        );
    }

    #[test]
    fn codes_are_read_from_error_texts() {
        let e = QueryError {
            status: 401,
            message: "Code: 193, e.displayText() = DB::Exception: Wrong password".into(),
        };
        assert_eq!(e.code(), Some(193));
        let e = QueryError {
            status: 0,
            message: "refused".into(),
        };
        assert_eq!(e.code(), None);
        assert_eq!(percent_encode("a b&é"), "a%20b%26%C3%A9");
    }
}
