//! Test support: what every integration test needs to talk to real processes.
//!
//! * [`free_port`] — an ephemeral loopback port for a peer or for Petra.
//! * [`require`] — a test peer must be installed; if it is not, the test fails with the command
//!   that installs it (`scripts/test` installs them all). Never a silent skip.
//! * [`wait_until`] — poll a condition with a deadline instead of sleeping for a guessed time.
//! * [`Child`] — a child process (Petra or a peer) whose output is collected line by line, that
//!   can be signalled and that is killed when dropped, so a failing test leaves nothing behind.
//! * [`Mosquitto`] — the MQTT broker peer on a free port (one anonymous listener).
//! * [`mqtt`] — a mosquitto broker with plain, password, TLS and mutual TLS listeners that can be
//!   stopped, killed and restarted on the same ports (persistent), and `mosquitto_sub` /
//!   `mosquitto_pub` clients independent of Petra's to check what it publishes.
//! * [`TestCa`] — a CA and a server certificate for `localhost` in a temp dir, and an HTTPS
//!   client that trusts only that CA.
//! * [`run_schemathesis`] — fuzz a running HTTP API from its OpenAPI description.
//! * [`modbus`] — a pymodbus server peer (TCP, or RTU over a socat pty pair) and a scripted
//!   fault-injecting Modbus TCP server.
//! * [`s7`] — a real S7 server peer in two implementations (python-snap7 3.3.0's pure Python
//!   server and python-snap7 2.0.2's native snap7 C library) on a free port.
//! * [`clickhouse`] — a ClickHouse 18.16 server (Debian `clickhouse-server`) in a temp dir with
//!   HTTP and HTTPS on free ports, a password user, that can be stopped, killed and restarted
//!   with its data; a small independent HTTP client to query it.
//! * [`proxy`] — a TCP proxy that passes, pauses, slows or drops the traffic to a peer, for
//!   fault injection.
//! * [`twilio`] — Prism mocking Twilio's official OpenAPI description (validates form fields,
//!   AccountSid and auth), and a scripted Twilio stand-in for the failures (429, 5xx, errors,
//!   no answer) that records the requests.

pub mod clickhouse;
pub mod modbus;
pub mod mqtt;
pub mod proxy;
pub mod s7;
pub mod schemathesis;
pub mod tls;
pub mod twilio;

pub use schemathesis::run_schemathesis;
pub use tls::TestCa;

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long helpers wait for a process to do something before failing the test.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(5);

/// A free TCP port on 127.0.0.1 (bound, then released for the peer to take).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("cannot bind an ephemeral port on 127.0.0.1")
}

/// Whether `cmd` is an executable on PATH (or a path to one).
pub fn on_path(cmd: &str) -> bool {
    if cmd.contains('/') {
        return Path::new(cmd).is_file();
    }
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(cmd).is_file()))
        .unwrap_or(false)
}

/// The message a missing peer fails with.
pub fn missing_peer_message(cmd: &str, install: &str) -> String {
    format!(
        "test peer `{cmd}` is not installed. Install it with `{install}` \
         or run the whole suite with `scripts/test`, which installs every peer."
    )
}

/// Fails the test (panics) with an install hint when `cmd` is missing.
pub fn require(cmd: &str, install: &str) {
    assert!(on_path(cmd), "{}", missing_peer_message(cmd, install));
}

/// Polls `f` until it returns true; panics after `timeout` naming `what`.
pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(POLL);
    }
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
pub fn port_open(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)).is_ok()
}

/// A child process with captured output. Killed on drop.
pub struct Child {
    name: String,
    child: std::process::Child,
    out: Arc<Mutex<Vec<String>>>,
}

impl Child {
    /// Starts `cmd` with stdout and stderr captured (interleaved, line by line).
    pub fn spawn(name: &str, cmd: &mut Command) -> Child {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let out = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        for stream in [
            Box::new(stdout) as Box<dyn std::io::Read + Send>,
            Box::new(stderr),
        ] {
            let out = out.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    out.lock().unwrap().push(line);
                }
            });
        }
        Child {
            name: name.to_string(),
            child,
            out,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything printed so far, one entry per line.
    pub fn output(&self) -> Vec<String> {
        self.out.lock().unwrap().clone()
    }

    /// Waits until a printed line contains `needle`; returns that line.
    pub fn wait_for_line(&mut self, needle: &str, timeout: Duration) -> String {
        let mut found = None;
        let name = self.name.clone();
        wait_until(&format!("{name} to print `{needle}`"), timeout, || {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{name} exited with {status} before printing `{needle}`; output:\n{}",
                    self.output().join("\n")
                );
            }
            found = self.output().into_iter().find(|l| l.contains(needle));
            found.is_some()
        });
        found.expect("found")
    }

    /// Sends a signal (e.g. `libc::SIGTERM`).
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, sig) };
        assert_eq!(rc, 0, "cannot signal {}", self.name);
    }

    /// Sends SIGTERM, the way a service manager stops a process.
    pub fn terminate(&self) {
        self.signal(libc::SIGTERM);
    }

    /// Waits for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let mut status = None;
        let name = self.name.clone();
        wait_until(&format!("{name} to exit"), timeout, || {
            status = self.child.try_wait().expect("try_wait");
            status.is_some()
        });
        status.expect("exited")
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A Mosquitto broker on a free loopback port, stopped on drop.
pub struct Mosquitto {
    pub port: u16,
    pub process: Child,
    _dir: tempfile::TempDir,
}

impl Mosquitto {
    pub const INSTALL: &'static str = "apt-get install -y mosquitto";

    /// Starts a broker allowing anonymous clients and waits until it accepts connections.
    pub fn start() -> Mosquitto {
        require("mosquitto", Mosquitto::INSTALL);
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
        )
        .expect("write mosquitto.conf");
        let process = Child::spawn("mosquitto", Command::new("mosquitto").arg("-c").arg(&conf));
        let mut m = Mosquitto {
            port,
            process,
            _dir: dir,
        };
        let name = format!("mosquitto on port {port}");
        wait_until(&name, DEFAULT_TIMEOUT, || {
            if let Ok(Some(s)) = m.process.child.try_wait() {
                panic!(
                    "mosquitto exited with {s}: {}",
                    m.process.output().join("\n")
                );
            }
            port_open(port)
        });
        m
    }
}

/// How long one control command to a peer script may take before the test fails.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends one line to a peer script's control port on 127.0.0.1 (the Modbus and S7 simulators)
/// and returns what follows `ok` in its one-line answer. Panics with the peer's output on
/// anything else: a test cannot go on with a peer in an unknown state.
pub(crate) fn control_command(name: &str, process: &Child, port: u16, command: &str) -> String {
    use std::io::{BufRead, BufReader, Write};
    let fail = |why: String| -> ! {
        panic!(
            "{name} control `{command}` failed: {why}; server output:\n{}",
            process.output().join("\n")
        )
    };
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let stream = std::net::TcpStream::connect_timeout(&addr, CONTROL_TIMEOUT)
        .unwrap_or_else(|e| fail(format!("cannot connect to its control port: {e}")));
    stream
        .set_read_timeout(Some(CONTROL_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(CONTROL_TIMEOUT)))
        .unwrap_or_else(|e| fail(format!("socket timeouts: {e}")));
    (&stream)
        .write_all(format!("{command}\n").as_bytes())
        .unwrap_or_else(|e| fail(format!("cannot send: {e}")));
    let mut line = String::new();
    match BufReader::new(&stream).read_line(&mut line) {
        Ok(0) => fail("it closed the connection without answering".into()),
        Ok(_) => {}
        Err(e) => fail(format!("no answer within {CONTROL_TIMEOUT:?}: {e}")),
    }
    let line = line.trim_end();
    if line == "ok" {
        return String::new();
    }
    match line.strip_prefix("ok ") {
        Some(rest) => rest.to_string(),
        None => fail(format!("it answered `{line}`")),
    }
}

/// How to install duckdb for [`duckdb_rows`].
pub const DUCKDB_INSTALL: &str = "python3 -m pip install duckdb";

/// Runs `sql` in duckdb (the Python package: an independent Parquet reader) and returns the
/// rows, each column as text (`str()` of the value; NULL as `None`). `{glob}` in `sql` is
/// replaced by `glob`, quoted for SQL. Fails the test with the install hint when duckdb is
/// missing or the query fails.
pub fn duckdb_rows(sql: &str, glob: &Path) -> Vec<Vec<String>> {
    require("python3", "apt-get install -y python3 python3-pip");
    let sql = sql.replace("{glob}", &format!("'{}'", glob.display()));
    let script = r#"import duckdb, sys
for row in duckdb.connect().execute(sys.argv[1]).fetchall():
    print("\t".join(str(c) for c in row))"#;
    let out = Command::new("python3")
        .args(["-c", script, &sql])
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "duckdb failed (install: {DUCKDB_INSTALL}): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn a_missing_peer_fails_with_an_install_hint() {
        assert!(!on_path("petra-no-such-peer"));
        let r = std::panic::catch_unwind(|| require("petra-no-such-peer", "apt-get install -y x"));
        let msg = *r.unwrap_err().downcast::<String>().unwrap();
        assert!(
            msg.contains("apt-get install -y x") && msg.contains("scripts/test"),
            "{msg}"
        );
    }

    #[test]
    fn free_ports_are_bindable() {
        let p = free_port();
        assert!(p > 0);
        TcpListener::bind(("127.0.0.1", p)).expect("the port is free");
    }

    #[test]
    fn mosquitto_peer_starts_on_a_free_port_and_speaks_mqtt() {
        let m = Mosquitto::start();
        // MQTT 3.1.1 CONNECT with client id "t"; the broker must answer CONNACK accepted.
        let mut s = TcpStream::connect(("127.0.0.1", m.port)).unwrap();
        s.set_read_timeout(Some(DEFAULT_TIMEOUT)).unwrap();
        s.write_all(&[
            0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 60, 0, 1, b't',
        ])
        .unwrap();
        let mut ack = [0u8; 4];
        s.read_exact(&mut ack).unwrap();
        assert_eq!(ack, [0x20, 2, 0, 0]);
    }

    #[test]
    fn child_output_is_collected_and_the_process_is_signalled() {
        let mut c = Child::spawn(
            "sh",
            Command::new("sh").args(["-c", "echo ready; exec sleep 30"]),
        );
        assert_eq!(c.wait_for_line("ready", DEFAULT_TIMEOUT), "ready");
        c.signal(libc::SIGTERM);
        let status = c.wait_exit(DEFAULT_TIMEOUT);
        assert!(!status.success());
    }
}
