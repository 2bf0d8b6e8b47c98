//! Twilio API peers for Petra's tests.
//!
//! * [`Prism`] — Stoplight Prism (`prism mock`) serving Twilio's own OpenAPI description of the
//!   2010-04-01 API (`twilio_api_v2010.json`) on a free loopback port. With `--errors` it
//!   validates every request against the description and refuses what Twilio would refuse:
//!   a missing required form field (`To`, or `From` for a call) or an AccountSid that does not
//!   match `^AC[0-9a-fA-F]{32}$` gets `422`, a request without basic auth `401`. A valid request
//!   gets `201` with the example resource of the description (`sid` `SMaaaa…` / `CAaaaa…`).
//!   Prism is a mock: it does not check the credentials themselves, send anything, or fail
//!   on its own.
//! * [`TwilioStub`] — the failures Prism cannot play: a tiny HTTP/1.1 server on a std
//!   `TcpListener` in the test process that answers each request with the next scripted
//!   [`Reply`] (429 with `Retry-After`, 5xx, a Twilio error body, no answer at all, a closed
//!   connection) and records every request ([`StubRequest`]: method, path, `Authorization`,
//!   form fields).
//! * [`post_form`] — a small HTTP client independent of Petra's, to check the peers themselves.
//!
//! # Where Prism and the description come from
//!
//! Both are npm packages, installed by `scripts/test` into their own prefix
//! ([`NPM_PEERS_DIR`], or the directory in `PETRA_NPM_PEERS`):
//!
//! | what | package | path in the prefix |
//! |---|---|---|
//! | `prism` | `@stoplight/prism-cli@5.16.0` (pinned: we pass its flags) | `node_modules/.bin/prism` |
//! | the description | `@twilio-alpha/mcp@0.7.0` (Twilio's MCP server ships the official `twilio-oai` descriptions) | `node_modules/@twilio-alpha/mcp/twilio-oai/spec/json/twilio_api_v2010.json` |
//!
//! A `prism` on PATH and a global install (`npm install -g`, found through `npm root -g`) work
//! too; `PETRA_TWILIO_SPEC` names the description file directly. Prism needs about two seconds
//! to load the 2 MB description; ready means its port accepts connections.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::{
    Child, DEFAULT_TIMEOUT, free_port, missing_peer_message, on_path, port_open, wait_until,
};

/// Where `scripts/test` installs the npm test peers (unless `PETRA_NPM_PEERS` names another).
pub const NPM_PEERS_DIR: &str = "/var/tmp/petra-peers/npm";
/// The Prism version whose flags this module passes.
pub const PRISM_PACKAGE: &str = "@stoplight/prism-cli@5.16.0";
/// The npm package that ships Twilio's OpenAPI descriptions.
pub const SPEC_PACKAGE: &str = "@twilio-alpha/mcp@0.7.0";
/// What installs both.
pub const INSTALL: &str = "npm install --prefix /var/tmp/petra-peers/npm \
                           @stoplight/prism-cli@5.16.0 @twilio-alpha/mcp@0.7.0";
/// The description's path inside the `@twilio-alpha/mcp` package.
const SPEC_IN_PACKAGE: &str = "twilio-oai/spec/json/twilio_api_v2010.json";

/// A well-formed account SID for tests (`AC` + 32 hex digits).
pub const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
/// An auth token for tests (Prism accepts any; the stub records it).
pub const AUTH_TOKEN: &str = "petra-test-auth-token";
/// A sender number in E.164.
pub const FROM: &str = "+15005550006";

/// The npm prefix the peers are looked for in.
pub fn npm_peers_dir() -> PathBuf {
    std::env::var_os("PETRA_NPM_PEERS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(NPM_PEERS_DIR))
}

fn npm_root_global() -> Option<PathBuf> {
    let out = Command::new("npm").args(["root", "-g"]).output().ok()?;
    let root = String::from_utf8(out.stdout).ok()?;
    let root = root.trim();
    (!root.is_empty()).then(|| PathBuf::from(root))
}

/// The `prism` executable; fails the test with [`INSTALL`] when there is none.
pub fn prism_bin() -> PathBuf {
    let local = npm_peers_dir().join("node_modules/.bin/prism");
    if local.is_file() {
        return local;
    }
    if on_path("prism") {
        return PathBuf::from("prism");
    }
    panic!(
        "{}",
        missing_peer_message("prism (npm @stoplight/prism-cli)", INSTALL)
    );
}

/// Twilio's `twilio_api_v2010.json`; fails the test with [`INSTALL`] when it is not installed.
pub fn spec_path() -> PathBuf {
    if let Some(p) = std::env::var_os("PETRA_TWILIO_SPEC") {
        return PathBuf::from(p);
    }
    let candidates = [
        Some(npm_peers_dir().join("node_modules")),
        npm_root_global(),
    ];
    for root in candidates.into_iter().flatten() {
        let p = root.join("@twilio-alpha/mcp").join(SPEC_IN_PACKAGE);
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "{}",
        missing_peer_message(
            "twilio_api_v2010.json (npm @twilio-alpha/mcp@0.7.0)",
            INSTALL
        )
    );
}

/// Prism mocking Twilio's API on a free port of 127.0.0.1 (see the [module docs](self)).
/// Killed on drop.
pub struct Prism {
    port: u16,
    process: Child,
}

impl Prism {
    /// Runs `prism mock SPEC --host 127.0.0.1 --port P --errors` and waits until the port
    /// accepts connections. Panics with the install command if Prism or the description is
    /// missing, and with Prism's output if it exits.
    pub fn start() -> Prism {
        let bin = prism_bin();
        let spec = spec_path();
        let port = free_port();
        let mut cmd = Command::new(&bin);
        cmd.arg("mock")
            .arg(&spec)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            // Refuse requests that violate the description (instead of answering them anyway).
            .arg("--errors");
        let mut prism = Prism {
            port,
            process: Child::spawn("prism", &mut cmd),
        };
        wait_until(
            &format!("prism on port {port}"),
            DEFAULT_TIMEOUT * 2,
            || {
                if let Ok(Some(status)) = prism.process.child.try_wait() {
                    panic!(
                        "prism ({}) exited with {status} before listening:\n{}",
                        bin.display(),
                        prism.process.output().join("\n")
                    );
                }
                port_open(port)
            },
        );
        prism
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`: the `api_base` to give Petra.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Prism's log so far (one line per request, with the validation errors).
    pub fn output(&self) -> Vec<String> {
        self.process.output()
    }
}

/// What a [`TwilioStub`] does with one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Answer with this status, extra headers and JSON body.
    Http {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// Read the request and never answer; the connection stays open until the client gives
    /// up (its timeout) or the stub is dropped.
    Silent,
    /// Read the request and close the connection without answering.
    Close,
}

impl Reply {
    /// `201` with a created message resource (`sid` `SM` + 32 hex digits, as Twilio).
    pub fn created() -> Reply {
        Reply::Http {
            status: 201,
            headers: vec![],
            body: format!(
                r#"{{"sid":"SM{:032x}","status":"queued","account_sid":"{ACCOUNT_SID}"}}"#,
                0xfeed_u32
            ),
        }
    }

    /// `429` with Twilio's error 20429 and, if given, `Retry-After: secs`.
    pub fn too_many_requests(retry_after_secs: Option<u64>) -> Reply {
        Reply::Http {
            status: 429,
            headers: retry_after_secs
                .map(|s| vec![("Retry-After".to_string(), s.to_string())])
                .unwrap_or_default(),
            body: error_body(429, 20429, "Too Many Requests"),
        }
    }

    /// An error as Twilio sends it: `{"code", "message", "more_info", "status"}`.
    pub fn error(status: u16, code: i64, message: &str) -> Reply {
        Reply::Http {
            status,
            headers: vec![],
            body: error_body(status, code, message),
        }
    }
}

fn error_body(status: u16, code: i64, message: &str) -> String {
    let message = message.replace('\\', "\\\\").replace('"', "\\\"");
    format!(
        r#"{{"code":{code},"message":"{message}","more_info":"https://www.twilio.com/docs/errors/{code}","status":{status}}}"#
    )
}

/// One request the stub received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StubRequest {
    pub method: String,
    /// Path and query, as sent (`/2010-04-01/Accounts/AC…/Messages.json`).
    pub path: String,
    /// The `Authorization` header, as sent.
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    pub body: String,
    /// The body decoded as `application/x-www-form-urlencoded`, in order.
    pub form: Vec<(String, String)>,
}

impl StubRequest {
    /// The first form field named `key`.
    pub fn form_value(&self, key: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct StubShared {
    script: Mutex<VecDeque<Reply>>,
    requests: Mutex<Vec<StubRequest>>,
    connections: AtomicUsize,
    stop: AtomicBool,
    streams: Mutex<Vec<TcpStream>>,
}

/// A scripted Twilio stand-in on a free port of 127.0.0.1 (see the [module docs](self)).
///
/// Each request takes the next [`Reply`] of the script; when the script is used up it gets a
/// `500` whose message says so (and is recorded like any other), so an unexpected extra
/// request shows up in the test. Answers carry `Connection: close`: one request per
/// connection. Bodies must come with `Content-Length` (no chunked uploads). Stopped on drop.
pub struct TwilioStub {
    port: u16,
    shared: Arc<StubShared>,
    accept: Option<JoinHandle<()>>,
}

impl TwilioStub {
    /// Starts listening (ready on return) with `script` queued.
    pub fn start(script: impl IntoIterator<Item = Reply>) -> TwilioStub {
        let listener = TcpListener::bind("127.0.0.1:0").expect("TwilioStub: bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local addr").port();
        let shared = Arc::new(StubShared::default());
        shared.script.lock().unwrap().extend(script);
        let accept = {
            let shared = shared.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if shared.stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    shared.connections.fetch_add(1, Ordering::SeqCst);
                    if let Ok(clone) = stream.try_clone() {
                        shared.streams.lock().unwrap().push(clone);
                    }
                    let shared = shared.clone();
                    std::thread::spawn(move || serve(stream, &shared));
                }
            })
        };
        TwilioStub {
            port,
            shared,
            accept: Some(accept),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`: the `api_base` to give Petra.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Appends a reply to the script.
    pub fn push(&self, reply: Reply) {
        self.shared.script.lock().unwrap().push_back(reply);
    }

    /// Replies not yet used.
    pub fn pending(&self) -> usize {
        self.shared.script.lock().unwrap().len()
    }

    /// Every complete request received so far, in order.
    pub fn requests(&self) -> Vec<StubRequest> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }
}

impl Drop for TwilioStub {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept; it sees the flag and returns, dropping the listener.
        let _ = TcpStream::connect_timeout(
            &SocketAddr::from(([127, 0, 0, 1], self.port)),
            Duration::from_secs(1),
        );
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        // Ends every connection thread blocked in a read (a `Silent` one).
        for stream in self.shared.streams.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

fn serve(mut stream: TcpStream, shared: &StubShared) {
    let Some(request) = read_request(&mut stream) else {
        return;
    };
    if shared.stop.load(Ordering::SeqCst) {
        return;
    }
    shared.requests.lock().unwrap().push(request);
    let reply = shared
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(Reply::Http {
            status: 500,
            headers: vec![],
            body: error_body(
                500,
                0,
                "TwilioStub: no scripted reply left for this request",
            ),
        });
    match reply {
        Reply::Http {
            status,
            headers,
            body,
        } => {
            let mut head = format!(
                "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
                reason(status),
                body.len()
            );
            for (k, v) in headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body.as_bytes());
            let _ = stream.flush();
            let _ = stream.shutdown(Shutdown::Both);
        }
        Reply::Silent => {
            // Until the client hangs up or the stub's drop shuts the socket down.
            let mut sink = [0u8; 1024];
            while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
        }
        Reply::Close => {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// Reads one request (head and a `Content-Length` body); `None` if the client went away first.
fn read_request(stream: &mut TcpStream) -> Option<StubRequest> {
    let _ = stream.set_read_timeout(Some(DEFAULT_TIMEOUT));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i;
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
        let n = stream.read(&mut chunk).ok().filter(|&n| n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let path = first.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let length: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).ok().filter(|&n| n > 0)?;
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    let body = String::from_utf8_lossy(&body).into_owned();
    Some(StubRequest {
        method,
        path,
        authorization: header("authorization"),
        content_type: header("content-type"),
        form: form_decode(&body),
        body,
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `application/x-www-form-urlencoded` → pairs (`+` is a space, `%XX` a byte, UTF-8).
pub fn form_decode(body: &str) -> Vec<(String, String)> {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(hi), Some(lo)) => {
                        out.push(hi << 4 | lo);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                },
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    body.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

/// Pairs → `application/x-www-form-urlencoded` (everything but `A-Za-z0-9*-._` escaped).
pub fn form_encode(pairs: &[(&str, &str)]) -> String {
    fn encode(s: &str, out: &mut String) {
        for b in s.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                    out.push(b as char)
                }
                b' ' => out.push('+'),
                b => out.push_str(&format!("%{b:02X}")),
            }
        }
    }
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        encode(k, &mut out);
        out.push('=');
        encode(v, &mut out);
    }
    out
}

/// `Basic base64(user:password)`, the header Twilio's clients send.
pub fn basic_auth(user: &str, password: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let input = format!("{user}:{password}");
    let mut out = String::from("Basic ");
    for chunk in input.as_bytes().chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// An HTTP answer: status and body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// POSTs `form` to `base_url` + `path` over plain HTTP/1.1 (`Connection: close`), with basic
/// auth when `auth` is given; waits at most `timeout` for the answer. An independent client
/// for checking the peers; `Err` says what went wrong on the wire.
pub fn post_form(
    base_url: &str,
    path: &str,
    auth: Option<(&str, &str)>,
    form: &[(&str, &str)],
    timeout: Duration,
) -> Result<HttpReply, String> {
    let hostport = base_url
        .strip_prefix("http://")
        .ok_or_else(|| format!("post_form: only http:// URLs, not {base_url}"))?
        .trim_end_matches('/');
    let addr: SocketAddr = hostport
        .parse()
        .map_err(|e| format!("post_form: {hostport} is not IP:port: {e}"))?;
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let body = form_encode(form);
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\nAccept: application/json\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some((user, password)) = auth {
        req.push_str(&format!(
            "Authorization: {}\r\n",
            basic_auth(user, password)
        ));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    s.write_all(req.as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| format!("read: {e}"))?;
    parse_reply(&raw)
}

fn parse_reply(raw: &[u8]) -> Result<HttpReply, String> {
    let end = find(raw, b"\r\n\r\n").ok_or_else(|| {
        format!(
            "no complete HTTP answer ({} bytes: {:?})",
            raw.len(),
            String::from_utf8_lossy(raw)
        )
    })?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line in {head:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        body = dechunk(&body)?;
    }
    Ok(HttpReply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = find(rest, b"\r\n").ok_or("truncated chunk size")?;
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|e| format!("bad chunk size {size_text:?}: {e}"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if rest.len() < size {
            return Err("truncated chunk".into());
        }
        out.extend_from_slice(&rest[..size]);
        rest = rest.get(size + 2..).unwrap_or(&[]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_is_base64_of_user_colon_password() {
        assert_eq!(
            basic_auth("Aladdin", "open sesame"),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert_eq!(basic_auth("a", "b"), "Basic YTpi");
        assert_eq!(basic_auth("ab", "c"), "Basic YWI6Yw==");
    }

    #[test]
    fn forms_round_trip() {
        let pairs = [("To", "+1555 0"), ("Twiml", "<Say>a&b=ü%</Say>")];
        let enc = form_encode(&pairs);
        assert_eq!(
            enc,
            "To=%2B1555+0&Twiml=%3CSay%3Ea%26b%3D%C3%BC%25%3C%2FSay%3E"
        );
        let dec = form_decode(&enc);
        assert_eq!(
            dec,
            [
                ("To".into(), "+1555 0".into()),
                ("Twiml".into(), "<Say>a&b=ü%</Say>".into())
            ]
        );
        assert_eq!(
            form_decode("a=%zz&b"),
            [("a".into(), "%zz".into()), ("b".into(), String::new())]
        );
    }

    #[test]
    fn chunked_answers_are_joined() {
        let r = parse_reply(b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
            .unwrap();
        assert_eq!((r.status, r.body.as_str()), (201, "abcde"));
    }
}
