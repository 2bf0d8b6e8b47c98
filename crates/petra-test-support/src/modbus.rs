//! Modbus peers for Petra's tests.
//!
//! * [`ModbusSim`] — a real Modbus server (pymodbus 3.16, `peers/modbus_sim.py`) as a child
//!   process, serving TCP on a free loopback port or RTU over a `socat` pty pair, with exactly
//!   the units and address ranges of a [`SimLayout`]. The test reads and writes its values
//!   synchronously while it runs ([`ModbusSim::set_registers`], [`ModbusSim::registers`], …),
//!   kills it and starts it again on the same port or pty.
//! * [`FaultServer`] — a scripted fake Modbus TCP server (std threads) that answers each request
//!   with the next queued [`Fault`]: wrong transaction id, wrong unit, short frame, delay,
//!   garbage, exception, close, silence.
//!
//! What the simulator answers (verified against pymodbus 3.16.1 by `tests/modbus_peers.rs`):
//!
//! * a request touching any address outside the declared ranges of its area — also a read
//!   spanning a gap between two declared ranges, and also for coils and discrete inputs — gets
//!   exception 2 (illegal data address); adjacent ranges join;
//! * a unit that is not declared gets **no answer at all on RTU** (as on a real line), and on
//!   TCP exception 0x0B (gateway target device failed to respond) for the data functions
//!   1–6, 15, 16, 22, 23;
//! * values start at 0 / `false` and are lost by [`ModbusSim::kill`] / [`ModbusSim::restart`].

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::{Child, DEFAULT_TIMEOUT, missing_peer_message, require, wait_until};

/// What installs the simulator's Python side.
pub const PYMODBUS_INSTALL: &str = "python3 -m pip install pymodbus==3.16.1 pyserial";
/// What installs the pty pair for RTU.
pub const SOCAT_INSTALL: &str = "apt-get install -y socat";
/// What installs the Python interpreter.
pub const PYTHON_INSTALL: &str = "apt-get install -y python3 python3-pip";

/// The simulator script, next to this crate's manifest.
const SIM_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/peers/modbus_sim.py");
/// The prefix of the one line the script prints once it serves (or cannot).
const TAG: &str = "PETRA-MODBUS-SIM";

/// One of the four Modbus data areas.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SimArea {
    /// Coils (read 1, write 5/15), bits.
    Coil,
    /// Discrete inputs (read 2), bits.
    Discrete,
    /// Input registers (read 4), 16-bit.
    Input,
    /// Holding registers (read 3, write 6/16), 16-bit.
    Holding,
}

impl SimArea {
    /// The name the simulator script uses.
    fn name(self) -> &'static str {
        match self {
            SimArea::Coil => "coil",
            SimArea::Discrete => "discrete",
            SimArea::Input => "input",
            SimArea::Holding => "holding",
        }
    }

    /// Whether the area holds bits (coils, discrete inputs) rather than registers.
    pub fn is_bits(self) -> bool {
        matches!(self, SimArea::Coil | SimArea::Discrete)
    }
}

/// Which units a [`ModbusSim`] serves and, per unit, which addresses exist in each area.
///
/// ```
/// use petra_test_support::modbus::{SimArea, SimLayout};
/// // Holding 0..100 and 110..200 (a read of 95..115 gets exception 2), coils 0..16.
/// let layout = SimLayout::new()
///     .unit(1, &[(SimArea::Holding, 0..100), (SimArea::Holding, 110..200), (SimArea::Coil, 0..16)])
///     .unit(2, &[(SimArea::Input, 0..10)]);
/// # let _ = layout;
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimLayout {
    units: BTreeMap<u8, Vec<(SimArea, Range<u32>)>>,
}

impl SimLayout {
    /// An empty layout; add units with [`SimLayout::unit`].
    pub fn new() -> SimLayout {
        SimLayout::default()
    }

    /// Declares `unit` with address `ranges` (half-open, PDU addresses starting at 0, end at most
    /// 65536). Calling it again for the same unit adds ranges. A unit with no range exists (it
    /// answers) but every address of it is illegal. Panics on an empty, too large or overlapping
    /// range.
    pub fn unit(mut self, unit: u8, ranges: &[(SimArea, Range<u32>)]) -> SimLayout {
        let declared = self.units.entry(unit).or_default();
        for (area, range) in ranges {
            assert!(
                range.start < range.end && range.end <= 65536,
                "SimLayout: unit {unit} {area:?} range {range:?} must be non-empty and end at most at 65536"
            );
            if let Some((_, other)) = declared
                .iter()
                .find(|(a, r)| a == area && r.start < range.end && range.start < r.end)
            {
                panic!("SimLayout: unit {unit} {area:?} range {range:?} overlaps {other:?}");
            }
            declared.push((*area, range.clone()));
        }
        self
    }

    /// The declared units.
    pub fn units(&self) -> impl Iterator<Item = u8> + '_ {
        self.units.keys().copied()
    }

    fn args(&self) -> Vec<String> {
        assert!(
            !self.units.is_empty(),
            "SimLayout declares no unit; add one with .unit(..)"
        );
        let mut args = Vec::new();
        for (unit, ranges) in &self.units {
            args.push("--unit".to_string());
            args.push(unit.to_string());
            for (area, range) in ranges {
                args.push("--range".to_string());
                args.push(format!(
                    "{unit}:{}:{}:{}",
                    area.name(),
                    range.start,
                    range.end - range.start
                ));
            }
        }
        args
    }
}

enum Transport {
    Tcp {
        /// 0 until the first start has picked one.
        port: u16,
    },
    Rtu {
        baud: u32,
        /// The end Petra opens.
        petra: PathBuf,
        /// The end the simulator serves.
        sim: PathBuf,
        socat: Child,
        // After `socat`: the pty links live in it.
        _dir: tempfile::TempDir,
    },
}

/// A pymodbus 3.16 Modbus server serving a [`SimLayout`], as a child process. Stopped (with its
/// `socat` for RTU) on drop.
///
/// ```no_run
/// use petra_test_support::modbus::{ModbusSim, SimArea, SimLayout};
/// let layout = SimLayout::new().unit(1, &[(SimArea::Holding, 0..200), (SimArea::Coil, 0..100)]);
/// let sim = ModbusSim::tcp(&layout);
/// sim.set_registers(1, SimArea::Holding, 10, &[1234, 5678]);
/// // … point Petra at sim.url() ("tcp://127.0.0.1:PORT") …
/// assert_eq!(sim.registers(1, SimArea::Holding, 10, 2), [1234, 5678]);
/// ```
pub struct ModbusSim {
    // Fields drop in order: the server first, then socat (in `transport`) and the pty directory.
    process: Option<Child>,
    control_port: u16,
    layout: SimLayout,
    transport: Transport,
}

impl ModbusSim {
    /// Starts a Modbus TCP server on a free port of 127.0.0.1 and waits until it serves.
    pub fn tcp(layout: &SimLayout) -> ModbusSim {
        let mut sim = ModbusSim {
            process: None,
            control_port: 0,
            layout: layout.clone(),
            transport: Transport::Tcp { port: 0 },
        };
        sim.start();
        sim
    }

    /// Starts `socat` with a pty pair (`DIR/petra` for Petra, `DIR/sim` for the server) and a
    /// Modbus RTU server on `DIR/sim` at `baud`, 8 data bits, no parity, 1 stop bit; waits until
    /// it serves.
    pub fn rtu(layout: &SimLayout, baud: u32) -> ModbusSim {
        require("socat", SOCAT_INSTALL);
        let dir = tempfile::tempdir().expect("temp dir for the pty links");
        let petra = dir.path().join("petra");
        let sim = dir.path().join("sim");
        let mut socat = Child::spawn(
            "socat",
            Command::new("socat")
                .args(["-d", "-d"])
                .arg(format!("pty,raw,echo=0,link={}", petra.display()))
                .arg(format!("pty,raw,echo=0,link={}", sim.display())),
        );
        wait_until("socat to create its pty links", DEFAULT_TIMEOUT, || {
            if let Ok(Some(status)) = socat.child.try_wait() {
                panic!(
                    "socat exited with {status} before creating its ptys; output:\n{}",
                    socat.output().join("\n")
                );
            }
            petra.exists() && sim.exists()
        });
        let mut sim = ModbusSim {
            process: None,
            control_port: 0,
            layout: layout.clone(),
            transport: Transport::Rtu {
                baud,
                petra,
                sim,
                socat,
                _dir: dir,
            },
        };
        sim.start();
        sim
    }

    /// The TCP port. Panics for an RTU simulator.
    pub fn port(&self) -> u16 {
        match &self.transport {
            Transport::Tcp { port } => *port,
            Transport::Rtu { .. } => panic!("ModbusSim::port: this simulator serves RTU"),
        }
    }

    /// The serial device Petra opens (absolute path of a pty link). Panics for a TCP simulator.
    pub fn serial_path(&self) -> &Path {
        match &self.transport {
            Transport::Rtu { petra, .. } => petra,
            Transport::Tcp { .. } => panic!("ModbusSim::serial_path: this simulator serves TCP"),
        }
    }

    /// `tcp://127.0.0.1:PORT` or `rtu:///abs/path/petra?baud=19200&parity=N&stop=1`.
    pub fn url(&self) -> String {
        match &self.transport {
            Transport::Tcp { port } => format!("tcp://127.0.0.1:{port}"),
            Transport::Rtu { baud, petra, .. } => {
                format!("rtu://{}?baud={baud}&parity=N&stop=1", petra.display())
            }
        }
    }

    /// The layout it serves.
    pub fn layout(&self) -> &SimLayout {
        &self.layout
    }

    /// Whether the server process runs (false after [`ModbusSim::kill`] or a crash).
    pub fn is_running(&mut self) -> bool {
        match &mut self.process {
            Some(p) => matches!(p.child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Everything the server process printed so far (pymodbus logs errors and frame dumps).
    pub fn output(&self) -> Vec<String> {
        self.process.as_ref().map(Child::output).unwrap_or_default()
    }

    /// Writes registers (`area` Holding or Input) starting at `address`. Panics if the unit or
    /// an address is not declared.
    pub fn set_registers(&self, unit: u8, area: SimArea, address: u16, values: &[u16]) {
        assert!(
            !area.is_bits(),
            "ModbusSim::set_registers on {area:?}: use set_bits"
        );
        assert!(!values.is_empty(), "ModbusSim::set_registers: no value");
        let values: Vec<String> = values.iter().map(u16::to_string).collect();
        self.control(&format!(
            "set {} {unit} {address} {}",
            area.name(),
            values.join(" ")
        ));
    }

    /// Writes bits (`area` Coil or Discrete) starting at `address`. Panics if the unit or an
    /// address is not declared.
    pub fn set_bits(&self, unit: u8, area: SimArea, address: u16, values: &[bool]) {
        assert!(
            area.is_bits(),
            "ModbusSim::set_bits on {area:?}: use set_registers"
        );
        assert!(!values.is_empty(), "ModbusSim::set_bits: no value");
        let values: Vec<&str> = values.iter().map(|&b| if b { "1" } else { "0" }).collect();
        self.control(&format!(
            "set {} {unit} {address} {}",
            area.name(),
            values.join(" ")
        ));
    }

    /// Reads `count` registers (`area` Holding or Input) as the server holds them now, including
    /// what Modbus clients wrote.
    pub fn registers(&self, unit: u8, area: SimArea, address: u16, count: u16) -> Vec<u16> {
        assert!(
            !area.is_bits(),
            "ModbusSim::registers on {area:?}: use bits"
        );
        let answer = self.control(&format!("get {} {unit} {address} {count}", area.name()));
        let values: Vec<u16> = answer
            .split_whitespace()
            .map(|v| {
                v.parse()
                    .unwrap_or_else(|_| panic!("modbus sim answered `{answer}`"))
            })
            .collect();
        assert_eq!(
            values.len(),
            count as usize,
            "modbus sim answered `{answer}`"
        );
        values
    }

    /// Reads `count` bits (`area` Coil or Discrete) as the server holds them now.
    pub fn bits(&self, unit: u8, area: SimArea, address: u16, count: u16) -> Vec<bool> {
        assert!(area.is_bits(), "ModbusSim::bits on {area:?}: use registers");
        let answer = self.control(&format!("get {} {unit} {address} {count}", area.name()));
        let values: Vec<bool> = answer
            .split_whitespace()
            .map(|v| match v {
                "0" => false,
                "1" => true,
                _ => panic!("modbus sim answered `{answer}`"),
            })
            .collect();
        assert_eq!(
            values.len(),
            count as usize,
            "modbus sim answered `{answer}`"
        );
        values
    }

    /// Kills the server (SIGKILL) and waits for it to exit. For RTU, `socat` keeps running, so
    /// Petra's end of the line stays open and simply gets no answer.
    pub fn kill(&mut self) {
        if let Some(mut p) = self.process.take() {
            if matches!(p.child.try_wait(), Ok(None)) {
                p.signal(libc::SIGKILL);
            }
            p.wait_exit(DEFAULT_TIMEOUT);
        }
    }

    /// Starts the server again (killing it first if it runs) with the same layout, on the same
    /// port or pty; values are back to 0 / `false`.
    pub fn restart(&mut self) {
        self.kill();
        self.start();
    }

    fn start(&mut self) {
        require("python3", PYTHON_INSTALL);
        let mut cmd = Command::new("python3");
        cmd.arg("-u").arg(SIM_SCRIPT);
        let name = match &mut self.transport {
            Transport::Tcp { port } => {
                cmd.arg("--tcp-port").arg(port.to_string());
                "modbus sim (tcp)"
            }
            Transport::Rtu {
                baud, sim, socat, ..
            } => {
                if let Ok(Some(status)) = socat.child.try_wait() {
                    panic!(
                        "socat exited with {status}, the pty pair is gone; output:\n{}",
                        socat.output().join("\n")
                    );
                }
                cmd.arg("--rtu")
                    .arg(sim)
                    .arg("--baud")
                    .arg(baud.to_string())
                    .args(["--parity", "N", "--stop", "1"]);
                "modbus sim (rtu)"
            }
        };
        cmd.args(self.layout.args());
        let mut process = Child::spawn(name, &mut cmd);
        let mut ready = None;
        wait_until(&format!("{name} to serve"), DEFAULT_TIMEOUT, || {
            let output = process.output();
            if let Some(line) = output.iter().find(|l| l.starts_with(TAG)) {
                let Some(rest) = line.strip_prefix(&format!("{TAG} READY ")) else {
                    let hint = if line.contains("pymodbus") {
                        missing_peer_message("pymodbus 3.16.1", PYMODBUS_INSTALL)
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
        let field = |key: &str| -> u16 {
            ready
                .split_whitespace()
                .find_map(|kv| kv.strip_prefix(key))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name}: bad ready line `{ready}`"))
        };
        self.control_port = field("control=");
        if let Transport::Tcp { port } = &mut self.transport {
            let served = field("port=");
            assert!(
                *port == 0 || *port == served,
                "{name} serves port {served}, expected {port}"
            );
            *port = served;
        }
        self.process = Some(process);
    }

    /// Sends one control command; returns what follows `ok`. Panics on anything else.
    fn control(&self, command: &str) -> String {
        let Some(process) = &self.process else {
            panic!("modbus sim is not running (killed); cannot `{command}` — call restart()");
        };
        crate::control_command("modbus sim", process, self.control_port, command)
    }
}

/// What a [`FaultServer`] does with one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer correctly.
    None,
    /// Answer correctly but with transaction id + 1.
    WrongTransactionId,
    /// Answer correctly but with unit id + 1.
    WrongUnit,
    /// Answer with the correct PDU less its last 2 bytes (a read declares N registers in its
    /// byte count but carries 2 bytes less), the MBAP length matching the bytes sent; the
    /// connection stays open.
    ShortFrame,
    /// Answer correctly after this delay (only this connection waits).
    Delay(Duration),
    /// Send bytes that are not an MBAP frame (protocol id 0xBEEF, then text); stay open.
    Garbage,
    /// Answer with this exception code.
    Exception(u8),
    /// Close the connection without answering.
    Close,
    /// Never answer this request; the connection stays open and serves the next one.
    Silent,
}

/// The bytes [`Fault::Garbage`] sends.
pub const GARBAGE: &[u8] = b"\xde\xad\xbe\xef\x00\x10 not a modbus frame\r\n";

#[derive(Default)]
struct FaultShared {
    faults: Mutex<VecDeque<Fault>>,
    requests: AtomicUsize,
    connections: AtomicUsize,
    stop: AtomicBool,
    /// A clone of each open connection, by connection number, to shut it down on drop.
    streams: Mutex<HashMap<usize, TcpStream>>,
    writes: Mutex<Vec<(u8, u16, Vec<u16>)>>,
}

/// A fake Modbus TCP server on a free 127.0.0.1 port for fault injection.
///
/// Function 3 and 4 answer each register with its own address (wrapping); 6 and 16 answer as a
/// device does (and are recorded, see [`FaultServer::writes`]); any other function gets
/// exception 1, a malformed request exception 3. Every unit id is served. Each request takes the
/// next [`Fault`] pushed by the test, [`Fault::None`] when none is queued. Stopped on drop.
pub struct FaultServer {
    port: u16,
    shared: Arc<FaultShared>,
    accept: Option<JoinHandle<()>>,
}

impl FaultServer {
    /// Starts listening on a free port of 127.0.0.1 (ready on return).
    pub fn start() -> FaultServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("FaultServer: bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local addr").port();
        let shared = Arc::new(FaultShared::default());
        let accept = {
            let shared = shared.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if shared.stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let id = shared.connections.fetch_add(1, Ordering::SeqCst);
                    if let Ok(clone) = stream.try_clone() {
                        shared.streams.lock().unwrap().insert(id, clone);
                    }
                    let shared = shared.clone();
                    std::thread::spawn(move || {
                        serve_connection(stream, &shared);
                        shared.streams.lock().unwrap().remove(&id);
                    });
                }
            })
        };
        FaultServer {
            port,
            shared,
            accept: Some(accept),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `tcp://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }

    /// Queues the fault for the next request that has none yet.
    pub fn push(&self, fault: Fault) {
        self.shared.faults.lock().unwrap().push_back(fault);
    }

    /// Faults queued and not yet taken by a request.
    pub fn pending(&self) -> usize {
        self.shared.faults.lock().unwrap().len()
    }

    /// Complete requests received so far (each took a fault).
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Writes received (function 6 and 16, also those answered with a fault other than
    /// `Exception`): `(unit, address, values)` in arrival order.
    pub fn writes(&self) -> Vec<(u8, u16, Vec<u16>)> {
        self.shared.writes.lock().unwrap().clone()
    }
}

impl Drop for FaultServer {
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
        // Ends every connection thread blocked in a read (a delayed one fails its write).
        for (_, stream) in self.shared.streams.lock().unwrap().drain() {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

fn serve_connection(mut stream: TcpStream, shared: &FaultShared) {
    let _ = stream.set_nodelay(true);
    loop {
        let mut header = [0u8; 7];
        if stream.read_exact(&mut header).is_err() || shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let tid = u16::from_be_bytes([header[0], header[1]]);
        let len = u16::from_be_bytes([header[4], header[5]]) as usize;
        let unit = header[6];
        if !(2..=254).contains(&len) {
            return; // not Modbus: hang up, as devices do
        }
        let mut pdu = vec![0u8; len - 1];
        if stream.read_exact(&mut pdu).is_err() {
            return;
        }
        shared.requests.fetch_add(1, Ordering::SeqCst);
        let fault = shared
            .faults
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Fault::None);
        let answer = fault_answer(&pdu);
        if answer[0] & 0x80 == 0 && !matches!(fault, Fault::Exception(_)) {
            record_write(shared, unit, &pdu);
        }
        let sent = match fault {
            Fault::None => stream.write_all(&frame(tid, unit, &answer)),
            Fault::WrongTransactionId => {
                stream.write_all(&frame(tid.wrapping_add(1), unit, &answer))
            }
            Fault::WrongUnit => stream.write_all(&frame(tid, unit.wrapping_add(1), &answer)),
            Fault::ShortFrame => {
                let keep = answer.len().saturating_sub(2).max(1);
                stream.write_all(&frame(tid, unit, &answer[..keep]))
            }
            Fault::Delay(delay) => {
                std::thread::sleep(delay);
                stream.write_all(&frame(tid, unit, &answer))
            }
            Fault::Garbage => stream.write_all(GARBAGE),
            Fault::Exception(code) => stream.write_all(&frame(tid, unit, &[pdu[0] | 0x80, code])),
            Fault::Close => {
                let _ = stream.shutdown(Shutdown::Both);
                return;
            }
            Fault::Silent => Ok(()),
        };
        if sent.is_err() {
            return;
        }
    }
}

/// An MBAP frame: transaction id, protocol 0, length, unit, PDU.
fn frame(tid: u16, unit: u8, pdu: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(7 + pdu.len());
    f.extend_from_slice(&tid.to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&(pdu.len() as u16 + 1).to_be_bytes());
    f.push(unit);
    f.extend_from_slice(pdu);
    f
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// The correct answer to a request PDU.
fn fault_answer(pdu: &[u8]) -> Vec<u8> {
    let fc = pdu[0];
    let exception = |code: u8| vec![fc | 0x80, code];
    match fc {
        3 | 4 => {
            if pdu.len() != 5 {
                return exception(3);
            }
            let (address, count) = (be16(pdu, 1), be16(pdu, 3));
            if !(1..=125).contains(&count) {
                return exception(3);
            }
            let mut answer = vec![fc, (count * 2) as u8];
            for i in 0..count {
                answer.extend_from_slice(&address.wrapping_add(i).to_be_bytes());
            }
            answer
        }
        6 if pdu.len() == 5 => pdu.to_vec(),
        16 => {
            if pdu.len() < 6 {
                return exception(3);
            }
            let count = be16(pdu, 3);
            let bytes = pdu[5] as usize;
            if !(1..=123).contains(&count) || bytes != count as usize * 2 || pdu.len() != 6 + bytes
            {
                return exception(3);
            }
            pdu[..5].to_vec()
        }
        6 => exception(3),
        _ => exception(1),
    }
}

fn record_write(shared: &FaultShared, unit: u8, pdu: &[u8]) {
    let write = match pdu[0] {
        6 => (unit, be16(pdu, 1), vec![be16(pdu, 3)]),
        16 => (
            unit,
            be16(pdu, 1),
            pdu[6..].chunks(2).map(|c| be16(c, 0)).collect(),
        ),
        _ => return,
    };
    shared.writes.lock().unwrap().push(write);
}
