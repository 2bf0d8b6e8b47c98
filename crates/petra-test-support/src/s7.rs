//! S7 peers for Petra's tests.
//!
//! [`S7Sim`] is a real S7 server (`peers/s7_sim.py`) as a child process on a free loopback port,
//! in one of two independent implementations ([`S7Impl`]):
//!
//! * [`S7Impl::Pure`] — python-snap7 3.3.0's server, written in Python
//!   (install: [`PURE_INSTALL`]);
//! * [`S7Impl::Native`] — python-snap7 2.0.2, the native snap7 C library behind ctypes, installed
//!   in its own directory ([`native_dir`]: `$PETRA_SNAP7_NATIVE`, else
//!   `/var/tmp/petra-peers/python-snap7-2.0.2`; install: [`NATIVE_INSTALL`]) and put first on
//!   `PYTHONPATH` for the script.
//!
//! It serves exactly the areas of an [`S7Layout`]; a DB that is not declared does not exist. The
//! test reads and writes the served bytes synchronously while it runs ([`S7Sim::set`],
//! [`S7Sim::get`]), kills it and starts it again on the same port. A missing peer fails the test
//! with the command that installs it (never a skip).
//!
//! How the two servers differ (all checked on the wire; `peers/s7_sim.py` has the full table and
//! `tests/s7_peers.rs` asserts the main rows):
//!
//! | | pure (3.3.0) | native (snap7 C) |
//! |---|---|---|
//! | PDU granted ([`S7Sim::pdu`] is the maximum) | min(proposal, 480) | proposal clamped to 240 ..= 4096 |
//! | multi-item read | yes | yes, at most 20 items (more: only the first 20 are answered) |
//! | multi-item write | **only the first item is written**, one code answered | yes |
//! | missing DB / out of range, read | item code `0x0A` / `0x05`, length 0 | item code `0x0A` / `0x05` with **length 4 and no data** |
//! | missing DB / out of range, write | **header error** class `0x84` code `0x04` (ack, ROSCTR 2) | item code `0x0A` / `0x05` |
//! | bit read (transport `0x01`) | **the whole byte**, data transport `0x04`, 8 bits | the bit as `0x00`/`0x01`, data transport `0x03` |
//! | bit write (transport `0x01`) | **overwrites the whole byte** with `0x00`/`0x01` | sets or clears just that bit |
//! | read bigger than the negotiated PDU | answered (up to 8191 bytes) | answered up to 4078 bytes; 4079..4130 no answer; from ~4140 **SIGSEGV** |
//! | pad byte after an odd item | `0x00` | not zeroed (stale bytes) |
//!
//! Values start at 0 and are lost by [`S7Sim::kill`] / [`S7Sim::restart`].

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Child, DEFAULT_TIMEOUT, missing_peer_message, require, wait_until};

/// What installs the pure Python server (python-snap7 3.3.0).
pub const PURE_INSTALL: &str = "python3 -m pip install python-snap7==3.3.0";
/// Where the native server (python-snap7 2.0.2 with libsnap7) lives unless `PETRA_SNAP7_NATIVE`
/// says otherwise.
pub const NATIVE_DEFAULT_DIR: &str = "/var/tmp/petra-peers/python-snap7-2.0.2";
/// What installs the native server in [`NATIVE_DEFAULT_DIR`].
pub const NATIVE_INSTALL: &str =
    "python3 -m pip install --target /var/tmp/petra-peers/python-snap7-2.0.2 python-snap7==2.0.2";
/// The environment variable naming another directory for the native server.
pub const NATIVE_ENV: &str = "PETRA_SNAP7_NATIVE";
/// What installs the Python interpreter.
pub const PYTHON_INSTALL: &str = "apt-get install -y python3 python3-pip";

/// The simulator script, next to this crate's manifest.
const SIM_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/peers/s7_sim.py");
/// The prefix of the one line the script prints once it serves (or cannot).
const TAG: &str = "PETRA-S7-SIM";
/// The address every simulator serves on.
const HOST: &str = "127.0.0.1";

/// Which S7 server implementation an [`S7Sim`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum S7Impl {
    /// python-snap7 3.3.0: a server written in Python.
    Pure,
    /// python-snap7 2.0.2: the native snap7 C library.
    Native,
}

impl S7Impl {
    /// Both, for tests that run against each.
    pub const ALL: [S7Impl; 2] = [S7Impl::Pure, S7Impl::Native];

    /// `pure` or `native`, as the ready line says.
    pub fn name(self) -> &'static str {
        match self {
            S7Impl::Pure => "pure",
            S7Impl::Native => "native",
        }
    }

    /// The command that installs this implementation where [`S7Sim`] looks for it.
    pub fn install_command(self) -> String {
        match self {
            S7Impl::Pure => PURE_INSTALL.to_string(),
            S7Impl::Native => match std::env::var_os(NATIVE_ENV) {
                Some(dir) if !dir.is_empty() => format!(
                    "python3 -m pip install --target {} python-snap7==2.0.2",
                    Path::new(&dir).display()
                ),
                _ => NATIVE_INSTALL.to_string(),
            },
        }
    }
}

/// The directory holding python-snap7 2.0.2 (a `pip install --target` tree with
/// `snap7/lib/libsnap7.so`): `$PETRA_SNAP7_NATIVE` if set, else [`NATIVE_DEFAULT_DIR`].
pub fn native_dir() -> PathBuf {
    match std::env::var_os(NATIVE_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(NATIVE_DEFAULT_DIR),
    }
}

/// An S7 memory area the simulator can serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum S7Area {
    /// Data blocks (DB), numbered 1 ..= 65535.
    DataBlock,
    /// Flags / bit memory (M).
    Flags,
    /// Process inputs (I / E).
    Inputs,
    /// Process outputs (Q / A).
    Outputs,
}

impl S7Area {
    /// The name the simulator script uses.
    fn name(self) -> &'static str {
        match self {
            S7Area::DataBlock => "db",
            S7Area::Flags => "flags",
            S7Area::Inputs => "inputs",
            S7Area::Outputs => "outputs",
        }
    }
}

/// Which areas an [`S7Sim`] serves, and their sizes in bytes (1 ..= 65535: the native server
/// keeps sizes as 16-bit words). Areas not declared do not exist.
///
/// ```
/// use petra_test_support::s7::S7Layout;
/// let layout = S7Layout::new().db(1, 1024).db(2, 64).flags(256).inputs(64).outputs(64);
/// assert_eq!(layout.db_size(1), Some(1024));
/// assert_eq!(layout.db_size(3), None);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct S7Layout {
    dbs: BTreeMap<u16, u32>,
    flags: u32,
    inputs: u32,
    outputs: u32,
}

impl S7Layout {
    /// An empty layout; declare areas with the other methods.
    pub fn new() -> S7Layout {
        S7Layout::default()
    }

    /// Declares DB `number` (1 ..= 65535) of `size` bytes. Panics on DB 0, a size out of
    /// 1 ..= 65535 or a DB declared twice.
    pub fn db(mut self, number: u16, size: u32) -> S7Layout {
        assert!(number >= 1, "S7Layout: DB numbers start at 1");
        check_size("DB", size);
        assert!(
            self.dbs.insert(number, size).is_none(),
            "S7Layout: DB {number} declared twice"
        );
        self
    }

    /// Declares the flags (M) area of `size` bytes.
    pub fn flags(mut self, size: u32) -> S7Layout {
        check_size("flags", size);
        self.flags = size;
        self
    }

    /// Declares the inputs (I) area of `size` bytes.
    pub fn inputs(mut self, size: u32) -> S7Layout {
        check_size("inputs", size);
        self.inputs = size;
        self
    }

    /// Declares the outputs (Q) area of `size` bytes.
    pub fn outputs(mut self, size: u32) -> S7Layout {
        check_size("outputs", size);
        self.outputs = size;
        self
    }

    /// The size of DB `number`, if declared.
    pub fn db_size(&self, number: u16) -> Option<u32> {
        self.dbs.get(&number).copied()
    }

    /// The size of a non-DB area, if declared (`None` for [`S7Area::DataBlock`]).
    pub fn area_size(&self, area: S7Area) -> Option<u32> {
        let size = match area {
            S7Area::DataBlock => 0,
            S7Area::Flags => self.flags,
            S7Area::Inputs => self.inputs,
            S7Area::Outputs => self.outputs,
        };
        (size > 0).then_some(size)
    }

    fn args(&self) -> Vec<String> {
        let mut args = Vec::new();
        for (number, size) in &self.dbs {
            args.push("--db".to_string());
            args.push(format!("{number}:{size}"));
        }
        for (flag, size) in [
            ("--flags", self.flags),
            ("--inputs", self.inputs),
            ("--outputs", self.outputs),
        ] {
            if size > 0 {
                args.push(flag.to_string());
                args.push(size.to_string());
            }
        }
        assert!(
            !args.is_empty(),
            "S7Layout declares no area; add one with .db(..), .flags(..), .inputs(..) or .outputs(..)"
        );
        args
    }
}

fn check_size(what: &str, size: u32) {
    assert!(
        (1..=65535).contains(&size),
        "S7Layout: {what} size {size} must be 1 ..= 65535 bytes"
    );
}

/// A python-snap7 S7 server serving an [`S7Layout`] on 127.0.0.1, as a child process. Stopped on
/// drop.
///
/// ```no_run
/// use petra_test_support::s7::{S7Area, S7Impl, S7Layout, S7Sim};
/// let sim = S7Sim::start(S7Impl::Native, &S7Layout::new().db(1, 100).flags(16));
/// sim.set(S7Area::DataBlock, 1, 10, &[0x12, 0x34]);
/// // … point Petra at sim.host():sim.port(), rack 0 slot 1 (any rack/slot is accepted) …
/// assert_eq!(sim.get(S7Area::DataBlock, 1, 10, 2), [0x12, 0x34]);
/// ```
pub struct S7Sim {
    imp: S7Impl,
    layout: S7Layout,
    process: Option<Child>,
    /// 0 until the first start has picked one.
    port: u16,
    control_port: u16,
    pdu: u16,
}

impl S7Sim {
    /// Starts the server on a free port of 127.0.0.1 and waits until it serves (its ready line
    /// comes after it answered a connect and a setup communication of its own). Panics with the
    /// install command if the implementation is missing.
    pub fn start(imp: S7Impl, layout: &S7Layout) -> S7Sim {
        let mut sim = S7Sim {
            imp,
            layout: layout.clone(),
            process: None,
            port: 0,
            control_port: 0,
            pdu: 0,
        };
        sim.spawn();
        sim
    }

    /// Which implementation runs.
    pub fn implementation(&self) -> S7Impl {
        self.imp
    }

    /// The S7 (ISO-on-TCP) port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1`.
    pub fn host(&self) -> &'static str {
        HOST
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The largest PDU the server grants: what it answered to a setup communication proposing
    /// 65535 (480 for the pure server, 4096 for the native one).
    pub fn pdu(&self) -> u16 {
        self.pdu
    }

    /// The layout it serves.
    pub fn layout(&self) -> &S7Layout {
        &self.layout
    }

    /// Whether the server process runs (false after [`S7Sim::kill`] or a crash).
    pub fn is_running(&mut self) -> bool {
        match &mut self.process {
            Some(p) => matches!(p.child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Everything the server process printed so far (the pure server logs a warning per
    /// refused item).
    pub fn output(&self) -> Vec<String> {
        self.process.as_ref().map(Child::output).unwrap_or_default()
    }

    /// Writes `data` at byte `offset` of `area` (`db` is the DB number, 0 for other areas), under
    /// the server's area lock. Panics if the area or a byte is not declared.
    pub fn set(&self, area: S7Area, db: u16, offset: u32, data: &[u8]) {
        assert!(!data.is_empty(), "S7Sim::set: no data");
        let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
        self.control(&format!("set {} {db} {offset} {hex}", area.name()));
    }

    /// Reads `len` bytes at `offset` of `area` as the server holds them now, including what S7
    /// clients wrote. Panics if the area or a byte is not declared.
    pub fn get(&self, area: S7Area, db: u16, offset: u32, len: usize) -> Vec<u8> {
        assert!(len > 0, "S7Sim::get: length 0");
        let answer = self.control(&format!("get {} {db} {offset} {len}", area.name()));
        let bytes = decode_hex(&answer)
            .unwrap_or_else(|| panic!("s7 sim ({}) answered `{answer}`", self.imp.name()));
        assert_eq!(
            bytes.len(),
            len,
            "s7 sim ({}) answered `{answer}`",
            self.imp.name()
        );
        bytes
    }

    /// Kills the server (SIGKILL) and waits for it to exit. Its clients see their connections
    /// reset.
    pub fn kill(&mut self) {
        if let Some(mut p) = self.process.take() {
            if matches!(p.child.try_wait(), Ok(None)) {
                p.signal(libc::SIGKILL);
            }
            p.wait_exit(DEFAULT_TIMEOUT);
        }
    }

    /// Starts the server again (killing it first if it runs) with the same layout on the same
    /// port; every byte is back to 0.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    fn spawn(&mut self) {
        require("python3", PYTHON_INSTALL);
        let name = format!("s7 sim ({})", self.imp.name());
        let mut cmd = Command::new("python3");
        cmd.arg("-u")
            .arg(SIM_SCRIPT)
            .args(["--impl", self.imp.name()]);
        if self.imp == S7Impl::Native {
            let dir = native_dir();
            let lib = dir.join("snap7/lib/libsnap7.so");
            assert!(
                lib.is_file(),
                "{}\n({} is missing; {NATIVE_ENV} can name another directory)",
                missing_peer_message(
                    "python-snap7 2.0.2 (native snap7)",
                    &self.imp.install_command()
                ),
                lib.display()
            );
            let mut path = OsString::from(dir.as_os_str());
            if let Some(old) = std::env::var_os("PYTHONPATH").filter(|p| !p.is_empty()) {
                path.push(":");
                path.push(old);
            }
            cmd.env("PYTHONPATH", path);
        }
        cmd.args(["--host", HOST, "--port", &self.port.to_string()]);
        cmd.args(self.layout.args());
        let mut process = Child::spawn(&name, &mut cmd);
        let mut ready = None;
        wait_until(&format!("{name} to serve"), DEFAULT_TIMEOUT, || {
            let output = process.output();
            if let Some(line) = output.iter().find(|l| l.starts_with(TAG)) {
                let Some(rest) = line.strip_prefix(&format!("{TAG} READY ")) else {
                    let hint = if line.contains("snap7") && line.contains("install") {
                        missing_peer_message(
                            &format!("python-snap7 ({})", self.imp.name()),
                            &self.imp.install_command(),
                        )
                    } else {
                        String::new()
                    };
                    panic!(
                        "{name} cannot start: {line}\n{hint}\nfull output:\n{}",
                        output.join("\n")
                    );
                };
                ready = Some(rest.to_string());
                return true;
            }
            if let Ok(Some(status)) = process.child.try_wait() {
                panic!(
                    "{name} exited with {status} before serving; output:\n{}",
                    process.output().join("\n")
                );
            }
            false
        });
        let ready = ready.expect("ready line");
        let field = |key: &str| -> &str {
            ready
                .split_whitespace()
                .find_map(|kv| kv.strip_prefix(key))
                .unwrap_or_else(|| panic!("{name}: no `{key}` in ready line `{ready}`"))
        };
        let number = |key: &str| -> u16 {
            field(key)
                .parse()
                .unwrap_or_else(|_| panic!("{name}: bad `{key}` in ready line `{ready}`"))
        };
        assert_eq!(
            field("impl="),
            self.imp.name(),
            "{name}: ready line `{ready}`"
        );
        let served = number("port=");
        assert!(
            self.port == 0 || self.port == served,
            "{name} serves port {served}, expected {}",
            self.port
        );
        self.port = served;
        self.control_port = number("control=");
        self.pdu = number("pdu=");
        self.process = Some(process);
    }

    /// Sends one control command; returns what follows `ok`. Panics on anything else.
    fn control(&self, command: &str) -> String {
        let name = format!("s7 sim ({})", self.imp.name());
        let Some(process) = &self.process else {
            panic!("{name} is not running (killed); cannot `{command}` — call restart()");
        };
        crate::control_command(&name, process, self.control_port, command)
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        assert_eq!(decode_hex("00ff10"), Some(vec![0, 255, 16]));
        assert_eq!(decode_hex("0"), None);
        assert_eq!(decode_hex("zz"), None);
    }

    #[test]
    fn layout_arguments() {
        let layout = S7Layout::new().db(2, 64).db(1, 1024).flags(256).outputs(8);
        assert_eq!(
            layout.args(),
            [
                "--db",
                "1:1024",
                "--db",
                "2:64",
                "--flags",
                "256",
                "--outputs",
                "8"
            ]
        );
        assert_eq!(layout.area_size(S7Area::Inputs), None);
        assert_eq!(layout.area_size(S7Area::Flags), Some(256));
    }

    #[test]
    #[should_panic(expected = "declared twice")]
    fn a_db_cannot_be_declared_twice() {
        let _ = S7Layout::new().db(1, 10).db(1, 20);
    }

    #[test]
    #[should_panic(expected = "1 ..= 65535")]
    fn areas_hold_at_most_65535_bytes() {
        let _ = S7Layout::new().db(1, 65536);
    }

    #[test]
    fn the_native_install_hint_is_exact() {
        if std::env::var_os(NATIVE_ENV).is_none() {
            assert_eq!(
                S7Impl::Native.install_command(),
                "python3 -m pip install --target /var/tmp/petra-peers/python-snap7-2.0.2 python-snap7==2.0.2"
            );
        }
        assert_eq!(
            S7Impl::Pure.install_command(),
            "python3 -m pip install python-snap7==3.3.0"
        );
    }
}
