//! The Modbus peers themselves: the pymodbus simulator checked with a third-party master
//! (`mbpoll`, libmodbus) and raw frames, the fault server with a raw `TcpStream` client.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::panic::AssertUnwindSafe;
use std::process::Command;
use std::time::{Duration, Instant};

use petra_test_support::modbus::{Fault, FaultServer, GARBAGE, ModbusSim, SimArea, SimLayout};
use petra_test_support::{DEFAULT_TIMEOUT, port_open, require, wait_until};

const MBPOLL_INSTALL: &str = "apt-get install -y mbpoll";

fn layout() -> SimLayout {
    SimLayout::new()
        .unit(
            1,
            &[
                (SimArea::Holding, 0..100),
                (SimArea::Holding, 110..200),
                (SimArea::Coil, 0..10),
                (SimArea::Discrete, 0..8),
                (SimArea::Input, 0..4),
            ],
        )
        .unit(2, &[(SimArea::Input, 5..10)])
}

/// Runs mbpoll once; returns (success, values printed as `[ref]: value`, stderr).
fn mbpoll(args: &[&str]) -> (bool, BTreeMap<u32, i64>, String) {
    require("mbpoll", MBPOLL_INSTALL);
    let out = Command::new("mbpoll")
        .args(args)
        .output()
        .expect("run mbpoll");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let values = stdout
        .lines()
        .filter_map(|l| {
            let (reference, value) = l.strip_prefix('[')?.split_once("]:")?;
            Some((
                reference.parse().ok()?,
                value.split_whitespace().next()?.parse().ok()?,
            ))
        })
        .collect();
    (
        out.status.success(),
        values,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn tcp_args<'a>(port: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["-m", "tcp", "-p", port, "-1", "-0"];
    args.extend_from_slice(rest);
    args
}

fn rtu_args<'a>(rest: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["-m", "rtu", "-b", "19200", "-P", "none", "-1", "-0"];
    args.extend_from_slice(rest);
    args
}

fn values(pairs: &[(u32, i64)]) -> BTreeMap<u32, i64> {
    pairs.iter().copied().collect()
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(DEFAULT_TIMEOUT)).unwrap();
    s
}

fn send(s: &mut TcpStream, tid: u16, unit: u8, pdu: &[u8]) {
    let mut f = tid.to_be_bytes().to_vec();
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&(pdu.len() as u16 + 1).to_be_bytes());
    f.push(unit);
    f.extend_from_slice(pdu);
    s.write_all(&f).expect("send request");
}

/// One MBAP response: (transaction id, protocol id, unit, pdu).
fn recv(s: &mut TcpStream) -> (u16, u16, u8, Vec<u8>) {
    let mut h = [0u8; 7];
    s.read_exact(&mut h).expect("read MBAP header");
    let len = u16::from_be_bytes([h[4], h[5]]) as usize;
    let mut pdu = vec![0u8; len - 1];
    s.read_exact(&mut pdu).expect("read PDU");
    (
        u16::from_be_bytes([h[0], h[1]]),
        u16::from_be_bytes([h[2], h[3]]),
        h[6],
        pdu,
    )
}

fn read_req(fc: u8, address: u16, count: u16) -> Vec<u8> {
    let mut pdu = vec![fc];
    pdu.extend_from_slice(&address.to_be_bytes());
    pdu.extend_from_slice(&count.to_be_bytes());
    pdu
}

fn panic_message(r: std::thread::Result<()>) -> String {
    let e = r.expect_err("expected a panic");
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn tcp_sim_serves_what_the_test_sets_to_mbpoll() {
    let sim = ModbusSim::tcp(&layout());
    assert_eq!(sim.url(), format!("tcp://127.0.0.1:{}", sim.port()));
    let port = sim.port().to_string();

    sim.set_registers(1, SimArea::Holding, 10, &[1234, 65535]);
    sim.set_registers(2, SimArea::Input, 5, &[7, 8, 9]);
    sim.set_bits(1, SimArea::Coil, 2, &[true, true, false, true]);
    sim.set_bits(1, SimArea::Discrete, 6, &[true, true]);
    assert_eq!(
        sim.registers(1, SimArea::Holding, 9, 4),
        [0, 1234, 65535, 0]
    );
    assert_eq!(sim.bits(1, SimArea::Discrete, 5, 3), [false, true, true]);

    // mbpoll's references are 1-based unless -0: reference 11 is PDU address 10.
    let (ok, got, err) = mbpoll(&[
        "-m",
        "tcp",
        "-p",
        &port,
        "-a",
        "1",
        "-r",
        "11",
        "-c",
        "2",
        "-t",
        "4",
        "-1",
        "127.0.0.1",
    ]);
    assert!(ok, "{err}");
    assert_eq!(got, values(&[(11, 1234), (12, 65535)]));

    let (ok, got, err) = mbpoll(&tcp_args(
        &port,
        &["-a", "2", "-t", "3", "-r", "5", "-c", "3", "127.0.0.1"],
    ));
    assert!(ok, "{err}");
    assert_eq!(got, values(&[(5, 7), (6, 8), (7, 9)]));

    let (ok, got, err) = mbpoll(&tcp_args(
        &port,
        &["-a", "1", "-t", "0", "-r", "0", "-c", "6", "127.0.0.1"],
    ));
    assert!(ok, "{err}");
    assert_eq!(
        got,
        values(&[(0, 0), (1, 0), (2, 1), (3, 1), (4, 0), (5, 1)])
    );

    let (ok, got, err) = mbpoll(&tcp_args(
        &port,
        &["-a", "1", "-t", "1", "-r", "6", "-c", "2", "127.0.0.1"],
    ));
    assert!(ok, "{err}");
    assert_eq!(got, values(&[(6, 1), (7, 1)]));
}

#[test]
fn tcp_sim_answers_exception_2_outside_the_declared_ranges() {
    let sim = ModbusSim::tcp(&layout());
    let mut s = connect(sim.port());
    let mut tid = 0;
    let mut ask = |unit: u8, pdu: &[u8]| {
        tid += 1;
        send(&mut s, tid, unit, pdu);
        let (rtid, proto, runit, answer) = recv(&mut s);
        assert_eq!((rtid, proto, runit), (tid, 0, unit));
        answer
    };
    // Holding 0..100 and 110..200: a read across the gap, into the gap, past the end.
    assert_eq!(ask(1, &read_req(3, 95, 20)), [0x83, 2]);
    assert_eq!(ask(1, &read_req(3, 100, 1)), [0x83, 2]);
    assert_eq!(ask(1, &read_req(3, 199, 2)), [0x83, 2]);
    assert_eq!(ask(1, &read_req(3, 98, 2))[..2], [3, 4]);
    assert_eq!(ask(1, &read_req(3, 110, 90))[..2], [3, 180]);
    // Write into the gap.
    assert_eq!(ask(1, &[6, 0, 105, 0, 1]), [0x86, 2]);
    // Bits are checked bit by bit, not per 16-bit word: coils 0..10.
    assert_eq!(ask(1, &read_req(1, 5, 6)), [0x81, 2]);
    assert_eq!(ask(1, &read_req(1, 0, 10))[..2], [1, 2]);
    assert_eq!(ask(1, &[5, 0, 10, 0xff, 0]), [0x85, 2]);
    // An area without any range, and another unit's ranges.
    assert_eq!(ask(2, &read_req(3, 0, 1)), [0x83, 2]);
    assert_eq!(ask(2, &read_req(4, 4, 2)), [0x84, 2]);
    assert_eq!(ask(2, &read_req(4, 5, 5))[..2], [4, 10]);
    // An undeclared unit on TCP: exception 0x0B (gateway target device failed to respond).
    assert_eq!(ask(7, &read_req(3, 0, 1)), [0x83, 0x0b]);

    let (ok, _, err) = mbpoll(&tcp_args(
        &sim.port().to_string(),
        &["-a", "1", "-t", "4", "-r", "95", "-c", "20", "127.0.0.1"],
    ));
    assert!(!ok && err.contains("Illegal data address"), "{err}");
}

#[test]
fn tcp_sim_shows_what_a_client_wrote_and_refuses_bad_control_commands() {
    let sim = ModbusSim::tcp(&layout());
    let port = sim.port().to_string();
    let (ok, _, err) = mbpoll(&tcp_args(
        &port,
        &[
            "-a",
            "1",
            "-t",
            "4",
            "-r",
            "20",
            "127.0.0.1",
            "11",
            "22",
            "40000",
        ],
    ));
    assert!(ok, "{err}");
    assert_eq!(sim.registers(1, SimArea::Holding, 20, 3), [11, 22, 40000]);
    let (ok, _, err) = mbpoll(&tcp_args(
        &port,
        &["-a", "1", "-t", "0", "-r", "3", "127.0.0.1", "1", "0", "1"],
    ));
    assert!(ok, "{err}");
    assert_eq!(
        sim.bits(1, SimArea::Coil, 2, 5),
        [false, true, false, true, false]
    );

    let msg = panic_message(std::panic::catch_unwind(AssertUnwindSafe(|| {
        sim.set_registers(1, SimArea::Holding, 105, &[1]);
    })));
    assert!(msg.contains("not declared"), "{msg}");
    let msg = panic_message(std::panic::catch_unwind(AssertUnwindSafe(|| {
        sim.registers(9, SimArea::Holding, 0, 1);
    })));
    assert!(msg.contains("unit 9 is not declared"), "{msg}");
}

#[test]
fn tcp_sim_is_killed_and_restarted_on_the_same_port() {
    let mut sim = ModbusSim::tcp(&layout());
    let port = sim.port();
    sim.set_registers(1, SimArea::Holding, 0, &[42]);
    let mut s = connect(port);
    sim.kill();
    assert!(!sim.is_running());
    assert!(!port_open(port));
    // The open connection is gone with the server.
    let mut buf = [0u8; 1];
    assert!(!matches!(s.read(&mut buf), Ok(n) if n > 0));
    let msg = panic_message(std::panic::catch_unwind(AssertUnwindSafe(|| {
        sim.registers(1, SimArea::Holding, 0, 1);
    })));
    assert!(msg.contains("not running"), "{msg}");

    sim.restart();
    assert!(sim.is_running());
    assert_eq!(sim.port(), port);
    assert_eq!(sim.registers(1, SimArea::Holding, 0, 1), [0]);
    sim.set_registers(1, SimArea::Holding, 0, &[43]);
    let mut s = connect(port);
    send(&mut s, 1, 1, &read_req(3, 0, 1));
    assert_eq!(recv(&mut s).3, [3, 2, 0, 43]);
}

#[test]
fn rtu_sim_over_a_pty_serves_mbpoll_and_ignores_undeclared_units() {
    let mut sim = ModbusSim::rtu(&layout(), 19200);
    let path = sim.serial_path().to_path_buf();
    assert!(path.is_absolute() && path.exists(), "{}", path.display());
    assert_eq!(
        sim.url(),
        format!("rtu://{}?baud=19200&parity=N&stop=1", path.display())
    );
    assert!(sim.url().starts_with("rtu:///"));
    let dev = path.to_str().unwrap();

    sim.set_registers(1, SimArea::Holding, 10, &[7, 65000]);
    let (ok, got, err) = mbpoll(&rtu_args(&[
        "-a", "1", "-t", "4", "-r", "10", "-c", "2", dev,
    ]));
    assert!(ok, "{err}");
    assert_eq!(got, values(&[(10, 7), (11, 65000)]));

    let (ok, _, err) = mbpoll(&rtu_args(&[
        "-a", "1", "-t", "4", "-r", "95", "-c", "20", dev,
    ]));
    assert!(!ok && err.contains("Illegal data address"), "{err}");

    // A unit that is not on the line never answers; the line still works afterwards.
    let (ok, _, err) = mbpoll(&rtu_args(&[
        "-a", "3", "-o", "0.3", "-t", "4", "-r", "10", "-c", "1", dev,
    ]));
    assert!(!ok && err.contains("timed out"), "{err}");

    let (ok, _, err) = mbpoll(&rtu_args(&[
        "-a", "1", "-t", "4", "-r", "50", dev, "5", "6",
    ]));
    assert!(ok, "{err}");
    assert_eq!(sim.registers(1, SimArea::Holding, 50, 2), [5, 6]);
    let (ok, _, err) = mbpoll(&rtu_args(&["-a", "1", "-t", "0", "-r", "8", dev, "1", "1"]));
    assert!(ok, "{err}");
    assert_eq!(sim.bits(1, SimArea::Coil, 8, 2), [true, true]);

    // Killed: socat keeps Petra's end open, nobody answers; restarted on the same pty.
    sim.kill();
    assert!(path.exists());
    let (ok, _, err) = mbpoll(&rtu_args(&[
        "-a", "1", "-o", "0.3", "-t", "4", "-r", "10", "-c", "1", dev,
    ]));
    assert!(!ok && err.contains("timed out"), "{err}");
    sim.restart();
    assert_eq!(sim.serial_path(), path);
    sim.set_registers(1, SimArea::Holding, 10, &[99]);
    let (ok, got, err) = mbpoll(&rtu_args(&[
        "-a", "1", "-t", "4", "-r", "10", "-c", "1", dev,
    ]));
    assert!(ok, "{err}");
    assert_eq!(got, values(&[(10, 99)]));
}

#[test]
fn fault_server_answers_correctly_without_faults() {
    let server = FaultServer::start();
    assert_eq!(server.url(), format!("tcp://127.0.0.1:{}", server.port()));
    let mut s = connect(server.port());
    send(&mut s, 1, 9, &read_req(3, 65534, 3));
    assert_eq!(
        recv(&mut s),
        (1, 0, 9, vec![3, 6, 0xff, 0xfe, 0xff, 0xff, 0, 0])
    );
    send(&mut s, 2, 9, &[6, 0, 7, 0x12, 0x34]);
    assert_eq!(recv(&mut s), (2, 0, 9, vec![6, 0, 7, 0x12, 0x34]));
    send(&mut s, 3, 9, &[16, 0, 8, 0, 2, 4, 0, 1, 0, 2]);
    assert_eq!(recv(&mut s), (3, 0, 9, vec![16, 0, 8, 0, 2]));
    send(&mut s, 4, 9, &read_req(1, 0, 1));
    assert_eq!(recv(&mut s), (4, 0, 9, vec![0x81, 1]));
    assert_eq!(server.requests(), 4);
    assert_eq!(server.connections(), 1);
    assert_eq!(server.writes(), [(9, 7, vec![0x1234]), (9, 8, vec![1, 2])]);
}

#[test]
fn fault_server_wrong_ids_short_frame_garbage_and_exception() {
    let server = FaultServer::start();
    let mut s = connect(server.port());
    server.push(Fault::WrongTransactionId);
    server.push(Fault::WrongUnit);
    server.push(Fault::ShortFrame);
    server.push(Fault::Exception(4));
    server.push(Fault::Garbage);
    assert_eq!(server.pending(), 5);

    send(&mut s, 10, 1, &read_req(3, 10, 2));
    assert_eq!(recv(&mut s), (11, 0, 1, vec![3, 4, 0, 10, 0, 11]));
    send(&mut s, 11, 1, &read_req(3, 10, 2));
    assert_eq!(recv(&mut s), (11, 0, 2, vec![3, 4, 0, 10, 0, 11]));
    // Declares 3 registers (6 bytes), carries 4 bytes; MBAP length matches what is sent.
    send(&mut s, 12, 1, &read_req(3, 10, 3));
    let (tid, _, _, pdu) = recv(&mut s);
    assert_eq!((tid, pdu), (12, vec![3, 6, 0, 10, 0, 11]));
    send(&mut s, 13, 1, &read_req(3, 10, 1));
    assert_eq!(recv(&mut s), (13, 0, 1, vec![0x83, 4]));
    send(&mut s, 14, 1, &read_req(3, 10, 1));
    let mut garbage = vec![0u8; GARBAGE.len()];
    s.read_exact(&mut garbage).unwrap();
    assert_eq!(garbage, GARBAGE);
    assert_ne!(
        u16::from_be_bytes([garbage[2], garbage[3]]),
        0,
        "protocol id"
    );
    // The connection stays open and the queue is empty: a correct answer.
    send(&mut s, 15, 1, &read_req(3, 10, 1));
    assert_eq!(recv(&mut s), (15, 0, 1, vec![3, 2, 0, 10]));
    assert_eq!(server.requests(), 6);
    assert_eq!(server.pending(), 0);
}

#[test]
fn fault_server_silent_close_and_counters() {
    let server = FaultServer::start();
    let mut s = connect(server.port());
    server.push(Fault::Silent);
    send(&mut s, 1, 1, &read_req(3, 0, 1));
    send(&mut s, 2, 1, &read_req(3, 1, 1));
    // The first answer on the connection is the second request's: the first got none.
    assert_eq!(recv(&mut s), (2, 0, 1, vec![3, 2, 0, 1]));

    server.push(Fault::Close);
    send(&mut s, 3, 1, &read_req(3, 0, 1));
    let mut buf = [0u8; 8];
    assert_eq!(s.read(&mut buf).expect("EOF, not an error"), 0);
    assert_eq!(server.requests(), 3);

    let mut s = connect(server.port());
    send(&mut s, 4, 1, &read_req(3, 5, 1));
    assert_eq!(recv(&mut s), (4, 0, 1, vec![3, 2, 0, 5]));
    assert_eq!(server.connections(), 2);

    // Dropping the server ends its connections and frees the port.
    let port = server.port();
    drop(server);
    assert_eq!(s.read(&mut buf).unwrap_or(0), 0);
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn fault_server_delay_holds_only_its_own_connection() {
    let server = FaultServer::start();
    let delay = Duration::from_millis(1500);
    server.push(Fault::Delay(delay));
    let mut slow = connect(server.port());
    let start = Instant::now();
    send(&mut slow, 1, 1, &read_req(3, 1, 1));
    wait_until("the delayed request to arrive", DEFAULT_TIMEOUT, || {
        server.requests() == 1
    });
    let mut fast = connect(server.port());
    send(&mut fast, 2, 1, &read_req(3, 2, 1));
    assert_eq!(recv(&mut fast), (2, 0, 1, vec![3, 2, 0, 2]));
    assert!(
        start.elapsed() < delay,
        "the other connection waited for the delay"
    );
    assert_eq!(recv(&mut slow), (1, 0, 1, vec![3, 2, 0, 1]));
    assert!(start.elapsed() >= delay);
}
