//! An MQTT broker peer for Petra's tests, and clients independent of Petra's own.
//!
//! * [`Broker`] — one Debian `mosquitto` 2.0.11 process (`mosquitto -c FILE`, everything in a
//!   temp dir) with four listeners on free 127.0.0.1 ports, `per_listener_settings true`:
//!
//!   | listener | port | who may connect |
//!   |---|---|---|
//!   | plain | [`Broker::plain_port`] | anyone (`allow_anonymous true`) |
//!   | password | [`Broker::auth_port`] | [`USER`] / [`PASSWORD`] only (`password_file` made by `mosquitto_passwd`) |
//!   | TLS | [`Broker::tls_port`] | [`USER`] / [`PASSWORD`] over TLS; the server certificate (for `localhost` and `127.0.0.1`) is signed by the CA in [`Broker::ca_file`] (a [`TestCa`]) |
//!   | mutual TLS | [`Broker::mtls_port`] | a client certificate ([`Broker::client_cert`], [`Broker::client_key`]) signed by a second, client-only CA; its common name [`CLIENT_CN`] is the MQTT username (`use_identity_as_username`) |
//!
//!   It can be stopped ([`Broker::stop`], SIGTERM), killed ([`Broker::kill`], SIGKILL) and
//!   started again on the same ports with the same files ([`Broker::restart`]).
//! * [`Sub`] — a `mosquitto_sub` child process that records every message it receives (topic,
//!   payload bytes, retained flag, QoS); ready (its SUBACK received) when it is returned.
//! * [`publish`] / [`try_publish`] — one message through `mosquitto_pub` (binary payloads).
//!
//! Where a client connects is an [`Endpoint`]: [`Broker::plain`], [`Broker::auth`],
//! [`Broker::tls`], [`Broker::mtls`] give one with the right credentials and files, a bare port
//! (`u16`) is the plain listener of 127.0.0.1, and [`Endpoint::credentials`] etc. change one.
//!
//! # What survives a restart
//!
//! Persistence is on (`persistence true` in the temp dir) and the broker saves its database after
//! **every** change (`autosave_on_changes true`, `autosave_interval 1`): a retained message, a
//! subscription of a persistent session (clean session false / `-c`) and a QoS 1/2 message
//! queued for such a session while it is offline.
//!
//! * [`Broker::stop`] (SIGTERM) saves on the way out: **everything** above survives it.
//! * [`Broker::kill`] (SIGKILL) loses what was not saved yet. The save of a change runs in the
//!   broker's loop right after the packet that made it — possibly after the PUBACK went out, so a
//!   publisher that got its PUBACK does not know it was saved. A test that kills and wants the
//!   state kept first waits until [`Broker::saves`] grew (it counts the broker's
//!   `Saving in-memory database` log lines of the current run).
//! * Clean-session state (QoS 0/1 messages in flight to a connected clean client, its
//!   subscriptions) never survives.
//!
//! # mosquitto quirks (2.0.11)
//!
//! * Started as root it drops to user `mosquitto` right after loading its configuration, *before*
//!   it reads the password file and the TLS keys and before it writes its database. So when the
//!   tests run as root, the broker's temp dir (mode 0700) and every file in it are handed to user
//!   `mosquitto` (chown); as another user the broker runs as that user and nothing changes. (A
//!   key only root can read makes it exit with `Unable to load server key file … Permission
//!   denied`, a password file `Unable to open pwfile`. `user root` in the configuration would
//!   keep it root — 2.0.11 accepts that with a warning — but the design runs it as Debian does.)
//! * `mosquitto_pub` exits with code 5 and prints `Connection error: Connection Refused: not
//!   authorised.` when the broker refuses its credentials (CONNACK code 5); with no broker on the
//!   port it exits non-zero with `Error: Connection refused`.
//! * `mosquitto_sub` reconnects by itself (about every second) when the broker goes away, and
//!   subscribes again; [`Sub::subscriptions`] counts the SUBACKs.
//! * `mosquitto_sub` writes its debug lines (`-d`, e.g. the SUBACK) to a pipe without flushing
//!   until a message comes; [`Sub`] runs it under `stdbuf -oL`.
//! * `mosquitto_pub -s` refuses an empty stdin; an empty payload is sent with `-n`.

use std::ffi::{CString, OsString};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Instant;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

use crate::{Child, DEFAULT_TIMEOUT, POLL, TestCa, on_path, port_open, require, wait_until};

/// What installs the broker and `mosquitto_passwd`.
pub const BROKER_INSTALL: &str = "apt-get install -y mosquitto";
/// What installs `mosquitto_sub` and `mosquitto_pub`.
pub const CLIENTS_INSTALL: &str = "apt-get install -y mosquitto-clients";
/// The user the password listeners know.
pub const USER: &str = "petra";
/// [`USER`]'s password.
pub const PASSWORD: &str = "s3cret";
/// The common name of the client certificate, which is the MQTT username on the mutual TLS
/// listener.
pub const CLIENT_CN: &str = "petra-client";
/// The host the server certificate is for (also `127.0.0.1`), used by the TLS endpoints.
pub const TLS_HOST: &str = "localhost";

/// The address every listener binds.
const HOST: &str = "127.0.0.1";
/// Where Debian installs the broker (not on every user's PATH).
const MOSQUITTO_SBIN: &str = "/usr/sbin/mosquitto";
/// What the broker logs for each database save.
const SAVE_LINE: &str = "Saving in-memory database";
/// The prefix of each message line of a [`Sub`] (its `-F` format).
const MSG_TAG: &str = "PETRA-MSG";

/// Where an MQTT client connects, and with what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or address (`127.0.0.1`, or [`TLS_HOST`] for TLS).
    pub host: String,
    pub port: u16,
    /// Username and password.
    pub credentials: Option<(String, String)>,
    /// The CA file a TLS client trusts; `None`: plain MQTT.
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key files.
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

impl Endpoint {
    /// Plain MQTT to 127.0.0.1:`port`, anonymous.
    pub fn plain(port: u16) -> Endpoint {
        Endpoint {
            host: HOST.to_string(),
            port,
            credentials: None,
            ca_file: None,
            client_cert: None,
        }
    }

    /// The same with this username and password.
    pub fn credentials(mut self, user: &str, password: &str) -> Endpoint {
        self.credentials = Some((user.to_string(), password.to_string()));
        self
    }

    /// The same without username and password.
    pub fn anonymous(mut self) -> Endpoint {
        self.credentials = None;
        self
    }

    /// The same over TLS, trusting only the CA in `ca_file`.
    pub fn tls(mut self, ca_file: &Path) -> Endpoint {
        self.ca_file = Some(ca_file.to_path_buf());
        self
    }

    /// The same presenting this client certificate.
    pub fn client_cert(mut self, cert: &Path, key: &Path) -> Endpoint {
        self.client_cert = Some((cert.to_path_buf(), key.to_path_buf()));
        self
    }

    /// The same without a client certificate.
    pub fn no_client_cert(mut self) -> Endpoint {
        self.client_cert = None;
        self
    }

    /// The same with another host name (TLS verifies it against the certificate).
    pub fn host(mut self, host: &str) -> Endpoint {
        self.host = host.to_string();
        self
    }

    /// `mqtt://HOST:PORT`, or `mqtts://HOST:PORT` with TLS (no credentials in it).
    pub fn url(&self) -> String {
        let scheme = if self.ca_file.is_some() {
            "mqtts"
        } else {
            "mqtt"
        };
        format!("{scheme}://{}:{}", self.host, self.port)
    }

    /// The connection arguments of `mosquitto_sub` / `mosquitto_pub`.
    fn args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "-h".into(),
            self.host.clone().into(),
            "-p".into(),
            self.port.to_string().into(),
        ];
        if let Some((user, password)) = &self.credentials {
            args.extend(["-u".into(), user.into(), "-P".into(), password.into()]);
        }
        if let Some(ca) = &self.ca_file {
            args.extend(["--cafile".into(), ca.clone().into()]);
        }
        if let Some((cert, key)) = &self.client_cert {
            args.extend([
                "--cert".into(),
                cert.clone().into(),
                "--key".into(),
                key.clone().into(),
            ]);
        }
        args
    }
}

impl From<u16> for Endpoint {
    /// The plain listener on 127.0.0.1:`port`.
    fn from(port: u16) -> Endpoint {
        Endpoint::plain(port)
    }
}

impl From<&Endpoint> for Endpoint {
    fn from(e: &Endpoint) -> Endpoint {
        e.clone()
    }
}

#[derive(Clone, Copy, Debug)]
struct Ports {
    plain: u16,
    auth: u16,
    tls: u16,
    mtls: u16,
}

/// A mosquitto broker with a plain, a password, a TLS and a mutual TLS listener on free ports of
/// 127.0.0.1 (see the [module docs](self)). Killed on drop.
///
/// ```no_run
/// use petra_test_support::mqtt::{self, Broker, Sub};
/// let mut broker = Broker::start();
/// let mut sub = Sub::start(broker.plain_port(), "plant/#");
/// mqtt::publish(broker.auth(), "plant/temp", b"21.5", 1, true);
/// let msg = sub.wait_for_topic("plant/temp");
/// assert_eq!(msg.payload, b"21.5");
/// broker.stop();
/// broker.restart(); // the retained message is still there
/// ```
pub struct Broker {
    // Dropped first: the process, then the directory it uses.
    process: Option<Child>,
    ports: Ports,
    /// The output of the earlier runs (before the last restart).
    earlier: Vec<String>,
    runs: usize,
    dir: tempfile::TempDir,
}

impl Broker {
    /// Writes the configuration, password file, certificates and keys into a temp dir, starts
    /// mosquitto and waits until it runs with every listener open. Panics with the install
    /// command if mosquitto is missing, and with its output if it does not start.
    pub fn start() -> Broker {
        mosquitto_bin();
        let dir = tempfile::tempdir().expect("temp dir for the broker");
        let ports = distinct_ports();
        write_files(dir.path(), ports);
        let mut broker = Broker {
            process: None,
            ports,
            earlier: Vec::new(),
            runs: 0,
            dir,
        };
        broker.spawn();
        broker
    }

    /// The plain listener's port (anonymous).
    pub fn plain_port(&self) -> u16 {
        self.ports.plain
    }

    /// The password listener's port ([`USER`] / [`PASSWORD`]).
    pub fn auth_port(&self) -> u16 {
        self.ports.auth
    }

    /// The TLS listener's port ([`USER`] / [`PASSWORD`], server CA [`Broker::ca_file`]).
    pub fn tls_port(&self) -> u16 {
        self.ports.tls
    }

    /// The mutual TLS listener's port (client certificate required).
    pub fn mtls_port(&self) -> u16 {
        self.ports.mtls
    }

    /// The CA certificate (PEM) that signed the broker's server certificate: what a TLS client
    /// trusts.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The client certificate (PEM, common name [`CLIENT_CN`]) the mutual TLS listener accepts.
    pub fn client_cert(&self) -> PathBuf {
        self.dir.path().join("client-cert.pem")
    }

    /// The client certificate's private key (PEM, PKCS#8).
    pub fn client_key(&self) -> PathBuf {
        self.dir.path().join("client-key.pem")
    }

    /// The CA certificate that signed [`Broker::client_cert`] (the mutual TLS listener's
    /// `cafile`; a second CA, unrelated to [`Broker::ca_file`]).
    pub fn client_ca_file(&self) -> PathBuf {
        self.dir.path().join("client-ca.pem")
    }

    /// The broker's temp dir (configuration, files, database `mosquitto.db`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The configuration file.
    pub fn config_file(&self) -> PathBuf {
        self.dir.path().join("mosquitto.conf")
    }

    /// `mqtt://127.0.0.1:PORT` of the plain listener.
    pub fn url_plain(&self) -> String {
        self.plain().url()
    }

    /// `mqtt://127.0.0.1:PORT` of the password listener.
    pub fn url_auth(&self) -> String {
        self.auth().url()
    }

    /// `mqtts://localhost:PORT` of the TLS listener.
    pub fn url_tls(&self) -> String {
        self.tls().url()
    }

    /// `mqtts://localhost:PORT` of the mutual TLS listener.
    pub fn url_mtls(&self) -> String {
        self.mtls().url()
    }

    /// The plain listener, anonymous.
    pub fn plain(&self) -> Endpoint {
        Endpoint::plain(self.ports.plain)
    }

    /// The password listener with [`USER`] / [`PASSWORD`].
    pub fn auth(&self) -> Endpoint {
        Endpoint::plain(self.ports.auth).credentials(USER, PASSWORD)
    }

    /// The TLS listener at [`TLS_HOST`], trusting [`Broker::ca_file`], with [`USER`] /
    /// [`PASSWORD`].
    pub fn tls(&self) -> Endpoint {
        Endpoint::plain(self.ports.tls)
            .host(TLS_HOST)
            .tls(&self.ca_file())
            .credentials(USER, PASSWORD)
    }

    /// The mutual TLS listener at [`TLS_HOST`], trusting [`Broker::ca_file`], presenting
    /// [`Broker::client_cert`] (no password).
    pub fn mtls(&self) -> Endpoint {
        Endpoint::plain(self.ports.mtls)
            .host(TLS_HOST)
            .tls(&self.ca_file())
            .client_cert(&self.client_cert(), &self.client_key())
    }

    /// Whether the broker process runs (false after [`Broker::stop`], [`Broker::kill`] or a
    /// crash).
    pub fn is_running(&mut self) -> bool {
        match &mut self.process {
            Some(p) => matches!(p.child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Everything the broker logged (`log_type all`) in every run since [`Broker::start`]; each
    /// run after the first starts with a `=== mosquitto run N ===` line.
    pub fn output(&self) -> Vec<String> {
        let mut out = self.earlier.clone();
        if let Some(p) = &self.process {
            out.extend(p.output());
        }
        out
    }

    /// How many times the running broker saved its database (0 when it does not run).
    pub fn saves(&self) -> usize {
        self.process
            .as_ref()
            .map(|p| p.output().iter().filter(|l| l.contains(SAVE_LINE)).count())
            .unwrap_or(0)
    }

    /// Waits until the running broker has saved its database more than `n` times — e.g.
    /// `broker.wait_saved(before)` with `before = broker.saves()` taken before the change that
    /// must survive a [`Broker::kill`].
    pub fn wait_saved(&self, n: usize) {
        wait_until(
            &format!("mosquitto to save its database (more than {n} saves)"),
            DEFAULT_TIMEOUT,
            || self.saves() > n,
        );
    }

    /// Stops the broker the way a service manager does (SIGTERM) and waits until it exited; it
    /// saves its database first. Does nothing if it does not run.
    pub fn stop(&mut self) {
        self.end(libc::SIGTERM);
    }

    /// Kills the broker (SIGKILL) and waits until it exited; what it had not saved is lost.
    /// Does nothing if it does not run.
    pub fn kill(&mut self) {
        self.end(libc::SIGKILL);
    }

    /// Starts the broker again on the same ports with the same configuration, files and
    /// database, and waits until it runs. If it runs, it is stopped first ([`Broker::stop`]).
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
        let bin = mosquitto_bin();
        self.runs += 1;
        if self.runs > 1 {
            self.earlier
                .push(format!("=== mosquitto run {} ===", self.runs));
        }
        let mut process = Child::spawn(
            "mosquitto",
            Command::new(&bin).arg("-c").arg(self.config_file()),
        );
        let ports = [
            self.ports.plain,
            self.ports.auth,
            self.ports.tls,
            self.ports.mtls,
        ];
        let earlier = &self.earlier;
        wait_until(
            &format!("mosquitto to run with listeners on ports {ports:?}"),
            DEFAULT_TIMEOUT,
            || {
                if let Ok(Some(status)) = process.child.try_wait() {
                    panic!(
                        "mosquitto ({bin}) exited with {status} before running; output:\n{}",
                        earlier
                            .iter()
                            .chain(&process.output())
                            .cloned()
                            .collect::<Vec<_>>()
                            .join("\n")
                    );
                }
                let out = process.output();
                out.iter()
                    .any(|l| l.contains("mosquitto version") && l.ends_with(" running"))
                    && ports.iter().all(|p| {
                        let opening = format!("Opening ipv4 listen socket on port {p}.");
                        out.iter().any(|l| l.contains(&opening))
                    })
            },
        );
        for port in ports {
            assert!(
                port_open(port),
                "mosquitto runs but port {port} does not accept connections; output:\n{}",
                process.output().join("\n")
            );
        }
        self.process = Some(process);
    }
}

/// The broker binary: `/usr/sbin/mosquitto` (Debian), else `mosquitto` on PATH. Panics with the
/// install command if neither exists.
fn mosquitto_bin() -> String {
    if on_path(MOSQUITTO_SBIN) {
        return MOSQUITTO_SBIN.to_string();
    }
    require("mosquitto", BROKER_INSTALL);
    "mosquitto".to_string()
}

/// Four different free ports.
fn distinct_ports() -> Ports {
    let mut ports: Vec<u16> = Vec::new();
    while ports.len() < 4 {
        let p = crate::free_port();
        if !ports.contains(&p) {
            ports.push(p);
        }
    }
    Ports {
        plain: ports[0],
        auth: ports[1],
        tls: ports[2],
        mtls: ports[3],
    }
}

/// Writes the configuration, the password file and the TLS material into `dir`, and hands it
/// all to user `mosquitto` when running as root.
fn write_files(dir: &Path, ports: Ports) {
    let passwd = dir.join("passwd");
    require("mosquitto_passwd", BROKER_INSTALL);
    let out = Command::new("mosquitto_passwd")
        .args(["-b", "-c"])
        .arg(&passwd)
        .args([USER, PASSWORD])
        .output()
        .expect("run mosquitto_passwd");
    assert!(
        out.status.success(),
        "mosquitto_passwd failed with {}: {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // The server certificate: the crate's test CA, copied here so that user mosquitto can
    // read it (the CA's own temp dir is root's).
    let ca = TestCa::new();
    for (from, to) in [
        (ca.cert_path(), "cert.pem"),
        (ca.key_path(), "key.pem"),
        (ca.ca_path(), "ca.pem"),
    ] {
        std::fs::copy(&from, dir.join(to))
            .unwrap_or_else(|e| panic!("copy {} to the broker dir: {e}", from.display()));
    }
    write_client_ca(dir);

    let d = dir.display();
    let Ports {
        plain,
        auth,
        tls,
        mtls,
    } = ports;
    let config = format!(
        "# Written by petra-test-support (mqtt.rs) for one test.\n\
         per_listener_settings true\n\
         log_dest stderr\n\
         log_type all\n\
         log_timestamp_format %Y-%m-%dT%H:%M:%S\n\
         persistence true\n\
         persistence_location {d}/\n\
         autosave_on_changes true\n\
         autosave_interval 1\n\
         \n\
         listener {plain} {HOST}\n\
         allow_anonymous true\n\
         \n\
         listener {auth} {HOST}\n\
         allow_anonymous false\n\
         password_file {d}/passwd\n\
         \n\
         listener {tls} {HOST}\n\
         allow_anonymous false\n\
         password_file {d}/passwd\n\
         cafile {d}/ca.pem\n\
         certfile {d}/cert.pem\n\
         keyfile {d}/key.pem\n\
         \n\
         listener {mtls} {HOST}\n\
         allow_anonymous false\n\
         cafile {d}/client-ca.pem\n\
         certfile {d}/cert.pem\n\
         keyfile {d}/key.pem\n\
         require_certificate true\n\
         use_identity_as_username true\n"
    );
    std::fs::write(dir.join("mosquitto.conf"), config).expect("write mosquitto.conf");
    hand_to_mosquitto_user(dir);
}

/// A client-only CA and a client certificate it signs (common name [`CLIENT_CN`]):
/// `client-ca.pem`, `client-cert.pem`, `client-key.pem`. (The server side is [`TestCa`]; it
/// makes no client certificates.)
fn write_client_ca(dir: &Path) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("client CA params");
    let name = dir.file_name().unwrap_or_default().to_string_lossy();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("Petra test client CA {name}"));
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().expect("client CA key");
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).expect("self-signed client CA");

    let mut params = CertificateParams::new(Vec::<String>::new()).expect("client params");
    params
        .distinguished_name
        .push(DnType::CommonName, CLIENT_CN);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate().expect("client key");
    let cert = params.signed_by(&key, &ca).expect("client certificate");
    std::fs::write(dir.join("client-ca.pem"), ca.pem()).expect("write client-ca.pem");
    std::fs::write(dir.join("client-cert.pem"), cert.pem()).expect("write client-cert.pem");
    std::fs::write(dir.join("client-key.pem"), key.serialize_pem()).expect("write client-key.pem");
}

/// As root, mosquitto drops to user `mosquitto` before reading the password file and the keys
/// and before writing its database: give it the directory and everything in it.
fn hand_to_mosquitto_user(dir: &Path) {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return;
    }
    let name = CString::new("mosquitto").expect("no NUL");
    // SAFETY: getpwnam with a NUL-terminated name; the result is read at once, before any
    // other passwd call of this thread (tests do not call getpwnam concurrently on purpose,
    // and a race would only give a wrong owner, which the broker's output then reports).
    let (uid, gid) = unsafe {
        let pw = libc::getpwnam(name.as_ptr());
        if pw.is_null() {
            // No such user: mosquitto stays root (it says so in its output).
            return;
        }
        ((*pw).pw_uid, (*pw).pw_gid)
    };
    let entries = std::fs::read_dir(dir).expect("read the broker dir");
    let paths = std::iter::once(dir.to_path_buf())
        .chain(entries.map(|e| e.expect("broker dir entry").path()));
    for path in paths {
        std::os::unix::fs::chown(&path, Some(uid), Some(gid))
            .unwrap_or_else(|e| panic!("chown {} to mosquitto: {e}", path.display()));
    }
}

/// One message a [`Sub`] received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Msg {
    pub topic: String,
    pub payload: Vec<u8>,
    /// The retained flag as delivered: true for a retained message sent because of the
    /// subscription, false for a live one.
    pub retained: bool,
    /// The QoS it was delivered with (the lower of the publish's and the subscription's).
    pub qos: u8,
}

impl Msg {
    /// The payload as UTF-8 (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }

    /// Parses one `PETRA-MSG RETAINED QOS HEX TOPIC` line.
    fn parse(line: &str) -> Option<Msg> {
        let rest = line.strip_prefix(MSG_TAG)?.strip_prefix(' ')?;
        let mut fields = rest.splitn(4, ' ');
        let retained = fields.next()? == "1";
        let qos = fields.next()?.parse().ok()?;
        let hex = fields.next()?;
        let topic = fields.next()?.to_string();
        if hex.len() % 2 != 0 {
            return None;
        }
        let payload = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        Some(Msg {
            topic,
            payload,
            retained,
            qos,
        })
    }
}

/// How to start a [`Sub`]: [`Sub::builder`], then [`SubBuilder::start`].
#[derive(Clone, Debug)]
pub struct SubBuilder {
    endpoint: Endpoint,
    filters: Vec<String>,
    qos: u8,
    client_id: Option<String>,
    clean_session: bool,
}

impl SubBuilder {
    /// Subscribes to one more topic filter.
    pub fn filter(mut self, filter: &str) -> SubBuilder {
        self.filters.push(filter.to_string());
        self
    }

    /// The subscription QoS (default 1).
    pub fn qos(mut self, qos: u8) -> SubBuilder {
        assert!(qos <= 2, "QoS {qos}");
        self.qos = qos;
        self
    }

    /// The client id (default: chosen by `mosquitto_sub`).
    pub fn client_id(mut self, id: &str) -> SubBuilder {
        self.client_id = Some(id.to_string());
        self
    }

    /// A persistent session (clean session false, `-c`) under client id `id`: the broker keeps
    /// the subscription and queues QoS ≥ 1 messages while this client is away, also across a
    /// broker restart (see the module docs).
    pub fn persistent(mut self, id: &str) -> SubBuilder {
        self.client_id = Some(id.to_string());
        self.clean_session = false;
        self
    }

    /// Starts `mosquitto_sub` and waits until the broker acknowledged the subscriptions. Panics
    /// (with its output) if it cannot connect or a subscription is refused.
    pub fn start(self) -> Sub {
        require("mosquitto_sub", CLIENTS_INSTALL);
        require("stdbuf", "apt-get install -y coreutils");
        // -d: debug lines on stdout, among them the SUBACK we wait for. mosquitto_sub flushes
        // stdout after a message only, so its debug lines would sit in the buffer of the pipe:
        // stdbuf makes it line-buffered (it execs mosquitto_sub, same pid).
        let mut cmd = Command::new("stdbuf");
        cmd.args(["-oL", "mosquitto_sub", "-d"])
            .args(self.endpoint.args());
        for f in &self.filters {
            cmd.args(["-t", f]);
        }
        cmd.args(["-q", &self.qos.to_string()]);
        if let Some(id) = &self.client_id {
            cmd.args(["-i", id]);
        }
        if !self.clean_session {
            cmd.arg("-c");
        }
        cmd.args(["-F", &format!("{MSG_TAG} %r %q %x %t")]);
        let name = format!("mosquitto_sub {}", self.endpoint.url());
        let mut sub = Sub {
            process: Child::spawn(&name, &mut cmd),
            name,
            builder: self,
        };
        sub.wait_subscribed(1);
        sub
    }
}

/// A `mosquitto_sub` child process recording what it receives; killed on drop.
///
/// Each message is one output line (`-F '%r %q %x %t'`: retained flag, QoS, payload in hex,
/// topic), so payloads may be any bytes; a topic with a line break in it would not parse.
pub struct Sub {
    process: Child,
    name: String,
    builder: SubBuilder,
}

impl Sub {
    /// Subscribes to `filter` with QoS 1 (clean session) at `to` (a port of the plain listener
    /// or an [`Endpoint`]); returns once subscribed.
    pub fn start(to: impl Into<Endpoint>, filter: &str) -> Sub {
        Sub::builder(to, filter).start()
    }

    /// A builder for more filters, another QoS, a client id or a persistent session.
    pub fn builder(to: impl Into<Endpoint>, filter: &str) -> SubBuilder {
        SubBuilder {
            endpoint: to.into(),
            filters: vec![filter.to_string()],
            qos: 1,
            client_id: None,
            clean_session: true,
        }
    }

    /// The endpoint it connects to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.builder.endpoint
    }

    /// Every message received so far, in order.
    pub fn messages(&self) -> Vec<Msg> {
        self.process
            .output()
            .iter()
            .filter_map(|l| Msg::parse(l))
            .collect()
    }

    /// The messages received on exactly `topic`, in order.
    pub fn messages_on(&self, topic: &str) -> Vec<Msg> {
        self.messages()
            .into_iter()
            .filter(|m| m.topic == topic)
            .collect()
    }

    /// Everything `mosquitto_sub` printed (debug lines and message lines).
    pub fn output(&self) -> Vec<String> {
        self.process.output()
    }

    /// How many times it subscribed (SUBACKs received): 1, plus one per reconnect.
    pub fn subscriptions(&self) -> usize {
        self.process
            .output()
            .iter()
            .filter(|l| l.starts_with("Subscribed (mid:"))
            .count()
    }

    /// Waits until `done(all messages so far)` is true; returns those messages. Panics after
    /// [`DEFAULT_TIMEOUT`] (with what was received) or if `mosquitto_sub` exited.
    pub fn wait_for(&mut self, what: &str, mut done: impl FnMut(&[Msg]) -> bool) -> Vec<Msg> {
        let deadline = Instant::now() + DEFAULT_TIMEOUT;
        loop {
            self.check_alive(what);
            let msgs = self.messages();
            if done(&msgs) {
                return msgs;
            }
            assert!(
                Instant::now() < deadline,
                "{}: timed out after {DEFAULT_TIMEOUT:?} waiting for {what}; received:\n{}\noutput:\n{}",
                self.name,
                msgs.iter()
                    .map(|m| format!("{m:?}"))
                    .collect::<Vec<_>>()
                    .join("\n"),
                self.process.output().join("\n")
            );
            std::thread::sleep(POLL);
        }
    }

    /// Waits for the first message on exactly `topic` and returns it.
    pub fn wait_for_topic(&mut self, topic: &str) -> Msg {
        let msgs = self.wait_for(&format!("a message on `{topic}`"), |m| {
            m.iter().any(|m| m.topic == topic)
        });
        msgs.into_iter().find(|m| m.topic == topic).expect("found")
    }

    /// Waits until it has subscribed `n` times in all (e.g. 2 after the broker restarted once).
    /// Panics (with its output) if a subscription is refused, it exits or [`DEFAULT_TIMEOUT`]
    /// passes.
    pub fn wait_subscribed(&mut self, n: usize) {
        let what = format!("subscription number {n} (SUBACK)");
        let deadline = Instant::now() + DEFAULT_TIMEOUT;
        loop {
            self.check_alive(&what);
            let out = self.process.output();
            // `Subscribed (mid: 1): 1, 1`: the granted QoS per filter, 128 for a refusal.
            if let Some(refused) = out.iter().find(|l| {
                l.strip_prefix("Subscribed (mid:")
                    .and_then(|rest| rest.split_once("):"))
                    .is_some_and(|(_, granted)| granted.split(',').any(|g| g.trim() == "128"))
            }) {
                panic!(
                    "{}: the broker refused a subscription: `{refused}`; output:\n{}",
                    self.name,
                    out.join("\n")
                );
            }
            if self.subscriptions() >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{}: timed out after {DEFAULT_TIMEOUT:?} waiting for {what}; output:\n{}",
                self.name,
                out.join("\n")
            );
            std::thread::sleep(POLL);
        }
    }

    /// Kills `mosquitto_sub` (SIGKILL: no DISCONNECT, the broker sees the connection drop) and
    /// waits until it exited.
    pub fn kill(&mut self) {
        if matches!(self.process.child.try_wait(), Ok(None)) {
            self.process.signal(libc::SIGKILL);
        }
        self.process.wait_exit(DEFAULT_TIMEOUT);
    }

    fn check_alive(&mut self, what: &str) {
        if let Ok(Some(status)) = self.process.child.try_wait() {
            panic!(
                "{} exited with {status} while waiting for {what}; output:\n{}",
                self.name,
                self.process.output().join("\n")
            );
        }
    }
}

/// Why [`try_publish`] failed.
#[derive(Clone, Debug)]
pub struct PubError {
    pub status: ExitStatus,
    /// What `mosquitto_pub` printed (stdout and stderr).
    pub output: String,
}

impl std::fmt::Display for PubError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "mosquitto_pub exited with {}: {}",
            self.status, self.output
        )
    }
}

impl std::error::Error for PubError {}

/// Publishes one message with `mosquitto_pub` (the payload bytes as they are, also empty) at
/// `to` (a port of the plain listener or an [`Endpoint`], credentials included). With QoS ≥ 1 it
/// returns after the broker acknowledged it. Panics on failure, with `mosquitto_pub`'s output.
pub fn publish(to: impl Into<Endpoint>, topic: &str, payload: &[u8], qos: u8, retain: bool) {
    if let Err(e) = try_publish(to, topic, payload, qos, retain) {
        panic!("publish to `{topic}` failed: {e}");
    }
}

/// [`publish`], returning the failure (e.g. refused credentials: exit code 5, `Connection
/// Refused: not authorised`). Panics only if `mosquitto_pub` is missing or hangs for
/// [`DEFAULT_TIMEOUT`].
pub fn try_publish(
    to: impl Into<Endpoint>,
    topic: &str,
    payload: &[u8],
    qos: u8,
    retain: bool,
) -> Result<(), PubError> {
    require("mosquitto_pub", CLIENTS_INSTALL);
    assert!(qos <= 2, "QoS {qos}");
    let to = to.into();
    let mut cmd = Command::new("mosquitto_pub");
    cmd.args(to.args())
        .args(["-t", topic, "-q", &qos.to_string()]);
    if retain {
        cmd.arg("-r");
    }
    // -f sends the file's bytes unchanged; an empty payload needs -n (-f/-s refuse it).
    let file = tempfile::NamedTempFile::new().expect("temp file for the payload");
    if payload.is_empty() {
        cmd.arg("-n");
    } else {
        std::fs::write(file.path(), payload).expect("write the payload");
        cmd.arg("-f").arg(file.path());
    }
    let (status, output) = run_to_end(&format!("mosquitto_pub {}", to.url()), &mut cmd);
    if status.success() {
        Ok(())
    } else {
        Err(PubError { status, output })
    }
}

/// Runs `cmd` to its end (killed and a panic after [`DEFAULT_TIMEOUT`]); returns its exit status
/// and all it printed (stdout, then stderr).
fn run_to_end(name: &str, cmd: &mut Command) -> (ExitStatus, String) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
    let readers: Vec<_> = [
        Box::new(child.stdout.take().expect("piped stdout")) as Box<dyn Read + Send>,
        Box::new(child.stderr.take().expect("piped stderr")),
    ]
    .into_iter()
    .map(|mut stream| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let mut bytes = Vec::new();
            let _ = stream.read_to_end(&mut bytes);
            text.push_str(&String::from_utf8_lossy(&bytes));
            text
        })
    })
    .collect();
    let deadline = Instant::now() + DEFAULT_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{name} did not exit within {DEFAULT_TIMEOUT:?}");
        }
        std::thread::sleep(POLL);
    };
    // The pipes are at EOF now that it exited.
    let output = readers
        .into_iter()
        .map(|r| r.join().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("");
    (status, output.trim_end().to_string())
}
