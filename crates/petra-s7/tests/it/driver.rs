//! The S7 driver against both real peers — python-snap7 3.3.0's pure Python server and
//! python-snap7 2.0.2's native snap7 C server — and against fake servers for what no real
//! server does on demand (silence, garbage).

use petra_core::{
    BadReason, Bus, BusBuilder, LosslessFeed, OverflowPolicy, Quality, SignalDef, SignalId,
    Timestamp, Value, ValueType,
};
use petra_drivers::{DriverStatus, RequestResult};
use petra_s7::{Driver, Mode, S7Config, S7Point, Variable};
use petra_test_support::s7::{S7Area, S7Impl, S7Layout, S7Sim};
use petra_test_support::wait_until;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);
const DB: S7Area = S7Area::DataBlock;

/// A point declaration: signal name and type, address, S7 type (`None`: from the address),
/// string length, array count, mode.
#[derive(Clone)]
struct P {
    name: &'static str,
    ty: ValueType,
    address: &'static str,
    s7: Option<&'static str>,
    length: Option<u32>,
    count: Option<u32>,
    mode: Mode,
}

fn p(name: &'static str, ty: ValueType, address: &'static str, s7: Option<&'static str>) -> P {
    P {
        name,
        ty,
        address,
        s7,
        length: None,
        count: None,
        mode: Mode::Read,
    }
}

impl P {
    fn mode(mut self, m: Mode) -> P {
        self.mode = m;
        self
    }
    fn length(mut self, l: u32) -> P {
        self.length = Some(l);
        self
    }
    fn count(mut self, n: u32) -> P {
        self.count = Some(n);
        self
    }
}

/// Signal names and types, and the driver's points — an array expanded into element points
/// `NAME.i` as the configuration compiler does.
fn expand(points: &[P]) -> (Vec<(String, ValueType)>, Vec<S7Point>) {
    let mut signals = Vec::new();
    let mut out = Vec::new();
    for p in points {
        let var = Variable::parse(p.address, p.s7, p.length, p.count).unwrap();
        let elements: Vec<(String, Variable)> = match var.count {
            None => vec![(p.name.to_string(), var)],
            Some(n) => (0..u32::from(n))
                .map(|i| {
                    let mut a = var.address;
                    a.byte += i * var.ty.size();
                    a.width = var.ty.width();
                    let v = Variable::new(a, var.ty, None).unwrap();
                    (format!("{}.{i}", p.name), v)
                })
                .collect(),
        };
        for (name, var) in elements {
            out.push(S7Point {
                signal: SignalId::from_index(signals.len()),
                signal_name: name.clone(),
                signal_type: p.ty,
                var,
                mode: p.mode,
                poll: Duration::from_millis(50),
            });
            signals.push((name, p.ty));
        }
    }
    (signals, out)
}

fn config(port: u16, points: Vec<S7Point>) -> S7Config {
    S7Config {
        name: "plc".into(),
        host: "127.0.0.1".into(),
        port,
        local_tsap: 0x0100,
        remote_tsap: 0x0101,
        pdu_size: 480,
        timeout: Duration::from_millis(500),
        connect_delay: Duration::ZERO,
        request_delay: Duration::ZERO,
        merge_gap: 4,
        max_items: 20,
        reconnect_max: Duration::from_millis(300),
        points,
    }
}

/// A driver running on its own runtime, with the bus it writes.
struct Running {
    bus: Arc<Bus>,
    changes: LosslessFeed,
    status: Arc<DriverStatus>,
    cancel: CancellationToken,
    rt: Option<tokio::runtime::Runtime>,
    names: Vec<String>,
}

impl Running {
    fn start(port: u16, points: &[P]) -> Running {
        Running::start_with(points, |c| c.port = port)
    }

    fn start_with(points: &[P], tweak: impl FnOnce(&mut S7Config)) -> Running {
        let (signals, pts) = expand(points);
        let mut cfg = config(0, pts);
        tweak(&mut cfg);
        let defs = signals
            .iter()
            .map(|(n, t)| SignalDef::new(n.as_str(), *t))
            .collect();
        let mut b = BusBuilder::new(defs).unwrap();
        let outs = cfg.output_signals();
        let feed = (!outs.is_empty()).then(|| b.latest_feed(Some(&outs)));
        let changes = b.lossless_feed(100_000, OverflowPolicy::DropOldest, None);
        let bus = b.build(Timestamp::from_unix_nanos(0));
        let status = Arc::new(DriverStatus::new("plc", "s7", cfg.points.len()));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let cancel = CancellationToken::new();
        let driver = Driver::new(cfg, bus.clone(), status.clone(), feed);
        rt.spawn(driver.run(cancel.clone()));
        Running {
            bus,
            changes,
            status,
            cancel,
            rt: Some(rt),
            names: signals.into_iter().map(|(n, _)| n).collect(),
        }
    }

    fn id(&self, name: &str) -> SignalId {
        let i = self.names.iter().position(|n| n == name);
        SignalId::from_index(i.unwrap_or_else(|| panic!("no signal {name}")))
    }

    fn sample(&self, name: &str) -> (Value, Quality) {
        let s = self.bus.read(self.id(name)).unwrap();
        (s.value, s.quality)
    }

    #[track_caller]
    fn wait_value(&self, name: &str, want: Value) {
        wait_until(&format!("{name} = {want:?}, good"), WAIT, || {
            self.sample(name) == (want.clone(), Quality::Good)
        });
    }

    #[track_caller]
    fn wait_quality(&self, name: &str, want: Quality) {
        wait_until(&format!("{name} quality {want}"), WAIT, || {
            self.sample(name).1 == want
        });
    }

    /// Whether `name` has had a good quality change since the last call.
    fn had_good(&self, name: &str) -> bool {
        let id = self.id(name);
        let mut seen = false;
        while let Some(c) = self.changes.pop() {
            seen |= c.id == id && c.sample.quality.is_good();
        }
        seen
    }

    /// Writes as the engine or the API would.
    fn set(&self, name: &str, v: Value) {
        let now = Timestamp::from_unix_nanos(1);
        self.bus
            .write(self.id(name), v, Quality::Good, now)
            .unwrap();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.cancel.cancel();
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

fn layout() -> S7Layout {
    S7Layout::new()
        .db(1, 1200)
        .db(2, 1100)
        .flags(64)
        .inputs(16)
        .outputs(16)
}

fn f(v: f64) -> Value {
    Value::Float(v)
}
fn i(v: i64) -> Value {
    Value::Int(v)
}
fn s(v: &str) -> Value {
    Value::String(v.into())
}

#[test]
fn every_type_and_area_reads_from_both_servers() {
    use ValueType::{Bool, Float, Int, String as Str};
    for imp in S7Impl::ALL {
        let sim = S7Sim::start(imp, &layout());
        sim.set(DB, 1, 0, &[0b0000_0100, 200, b'x']);
        sim.set(DB, 1, 4, &0xBEEFu16.to_be_bytes());
        sim.set(DB, 1, 6, &(-1234i16).to_be_bytes());
        sim.set(DB, 1, 8, &0xDEAD_BEEFu32.to_be_bytes());
        sim.set(DB, 1, 12, &(-100_000i32).to_be_bytes());
        sim.set(DB, 1, 16, &3.25f32.to_be_bytes());
        sim.set(DB, 1, 20, &(-2.5e100f64).to_be_bytes());
        // STRING[20] holding "Grüße" in Latin-1: max 20, actual 5.
        sim.set(DB, 1, 30, &[20, 5, b'G', b'r', 0xFC, 0xDF, b'e']);
        let arr: Vec<u8> = [7i16, -8, 9].iter().flat_map(|v| v.to_be_bytes()).collect();
        sim.set(DB, 1, 60, &arr);
        sim.set(S7Area::Flags, 0, 10, &(-5i16).to_be_bytes());
        sim.set(S7Area::Flags, 0, 0, &[0b10]);
        sim.set(S7Area::Inputs, 0, 2, &0x0102u16.to_be_bytes());
        sim.set(S7Area::Outputs, 0, 1, &[0x7F]);
        let points = [
            p("bit", Bool, "DB1.DBX0.2", None),
            p("bit_off", Bool, "DB1.DBX0.1", None),
            p("byte", Int, "DB1.DBB1", None),
            p("char", Str, "DB1.DBB2", Some("char")),
            p("word", Int, "DB1.DBW4", None),
            p("int", Int, "DB1.DBW6", Some("int")),
            p("dword", Int, "DB1.DBD8", None),
            p("dint", Float, "DB1.DBD12", Some("dint")),
            p("real", Float, "DB1.DBD16", Some("real")),
            p("lreal", Float, "DB1.DBB20", Some("lreal")),
            p("text", Str, "DB1.DBB30", Some("string")).length(20),
            p("arr", Int, "DB1.DBB60", Some("int")).count(3),
            p("mw", Int, "MW10", Some("int")),
            p("m", Bool, "M0.1", None),
            p("iw", Int, "IW2", None),
            p("qb", Int, "QB1", None),
        ];
        let r = Running::start(sim.port(), &points);
        for (name, want) in [
            ("bit", Value::Bool(true)),
            ("bit_off", Value::Bool(false)),
            ("byte", i(200)),
            ("char", s("x")),
            ("word", i(0xBEEF)),
            ("int", i(-1234)),
            ("dword", i(0xDEAD_BEEF)),
            ("dint", f(-100_000.0)),
            ("real", f(3.25)),
            ("lreal", f(-2.5e100)),
            ("text", s("Grüße")),
            ("arr.0", i(7)),
            ("arr.1", i(-8)),
            ("arr.2", i(9)),
            ("mw", i(-5)),
            ("m", Value::Bool(true)),
            ("iw", i(0x0102)),
            ("qb", i(0x7F)),
        ] {
            r.wait_value(name, want);
        }
        // Values change in the PLC: the next polls bring them.
        sim.set(DB, 1, 16, &(-0.5f32).to_be_bytes());
        r.wait_value("real", f(-0.5));
        // DB1 in one item, the other areas one each: one request.
        assert_eq!(r.status.planned_requests(), 1, "{}", imp.name());
        assert_eq!(r.status.requests(RequestResult::Error), 0);
    }
}

#[test]
fn writes_reach_both_servers_and_readwrite_points_follow_the_plc() {
    use ValueType::{Bool, Float, Int, String as Str};
    for imp in S7Impl::ALL {
        let sim = S7Sim::start(imp, &layout());
        let points = [
            p("w_int", Int, "DB1.DBW100", Some("int")).mode(Mode::Write),
            p("w_real", Float, "DB1.DBD104", Some("real")).mode(Mode::Write),
            p("w_text", Str, "DB1.DBB110", Some("string"))
                .length(8)
                .mode(Mode::Write),
            p("w_bit", Bool, "Q0.0", None).mode(Mode::Write),
            p("w_mw", Int, "MW20", None).mode(Mode::Write),
            p("rw", Float, "DB1.DBD200", Some("real")).mode(Mode::ReadWrite),
        ];
        let r = Running::start(sim.port(), &points);
        r.wait_value("rw", f(0.0));
        // Five writes at once: one request of five items. The pure server writes only the
        // first item of a request; the driver sees the short answer and writes one per request.
        r.set("w_int", i(-300));
        r.set("w_real", f(1.5));
        r.set("w_text", s("abc"));
        r.set("w_bit", Value::Bool(true));
        r.set("w_mw", i(0xABCD));
        let want: [(S7Area, u32, Vec<u8>); 5] = [
            (DB, 100, (-300i16).to_be_bytes().to_vec()),
            (DB, 104, 1.5f32.to_be_bytes().to_vec()),
            (DB, 110, vec![8, 3, b'a', b'b', b'c', 0, 0, 0, 0, 0]),
            (S7Area::Outputs, 0, vec![1]),
            (S7Area::Flags, 20, vec![0xAB, 0xCD]),
        ];
        for (area, at, bytes) in &want {
            let db = if *area == DB { 1 } else { 0 };
            wait_until(
                &format!("{} {area:?} {at} = {bytes:?}", imp.name()),
                WAIT,
                || sim.get(*area, db, *at, bytes.len()) == *bytes,
            );
        }
        assert_eq!(r.status.write_failures(), 0);
        // An operator writes the readwrite point; then the PLC changes it itself.
        r.set("rw", f(2.0));
        wait_until("rw written", WAIT, || {
            sim.get(DB, 1, 200, 4) == 2.0f32.to_be_bytes()
        });
        sim.set(DB, 1, 200, &7.0f32.to_be_bytes());
        r.wait_value("rw", f(7.0));
        // The PLC's own value is not echoed back as a write.
        assert_eq!(sim.get(DB, 1, 200, 4), 7.0f32.to_be_bytes());
    }
}

#[test]
fn a_bool_write_changes_only_its_bit_on_the_native_server() {
    // The pure server overwrites the whole byte on a bit write (see s7_sim.py); a CPU and the
    // native server change the one bit.
    let sim = S7Sim::start(S7Impl::Native, &layout());
    sim.set(S7Area::Outputs, 0, 2, &[0b1000_0001]);
    let points = [p("q", ValueType::Bool, "Q2.3", None).mode(Mode::Write)];
    let r = Running::start(sim.port(), &points);
    r.set("q", Value::Bool(true));
    wait_until("Q2.3 set", WAIT, || {
        sim.get(S7Area::Outputs, 0, 2, 1) == [0b1000_1001]
    });
    r.set("q", Value::Bool(false));
    wait_until("Q2.3 cleared", WAIT, || {
        sim.get(S7Area::Outputs, 0, 2, 1) == [0b1000_0001]
    });
}

#[test]
fn many_items_are_packed_by_pdu_size_and_item_limit() {
    // 60 words 10 bytes apart: no merging (gap 8 > 4), 60 items.
    let names: Vec<&'static str> = (0..60)
        .map(|k| &*Box::leak(format!("v{k}").into_boxed_str()))
        .collect();
    let addrs: Vec<&'static str> = (0..60)
        .map(|k| &*Box::leak(format!("DB1.DBW{}", k * 10).into_boxed_str()))
        .collect();
    let points: Vec<P> = names
        .iter()
        .zip(&addrs)
        .map(|(n, a)| p(n, ValueType::Int, a, None))
        .collect();
    for imp in S7Impl::ALL {
        let sim = S7Sim::start(imp, &layout());
        for k in 0..60u32 {
            sim.set(DB, 1, k * 10, &(k as u16 + 1000).to_be_bytes());
        }
        // PDU 240: (240 - 12) / 12 = 19 items per request → 4 requests.
        let r = Running::start_with(&points, |c| {
            c.port = sim.port();
            c.pdu_size = 240;
        });
        for (k, n) in names.iter().enumerate() {
            r.wait_value(n, i(k as i64 + 1000));
        }
        assert_eq!(r.status.planned_requests(), 4, "{} at PDU 240", imp.name());
        drop(r);
        // PDU 480 allows 39 items, the item limit 20: 3 requests.
        let r = Running::start(sim.port(), &points);
        r.wait_value("v59", i(1059));
        assert_eq!(r.status.planned_requests(), 3, "{} at PDU 480", imp.name());
        drop(r);
        // Asking for more items than snap7 answers (it answers 20): the driver learns the
        // limit from the short answer and plans again; every value arrives.
        let r = Running::start_with(&points, |c| {
            c.port = sim.port();
            c.max_items = 255;
        });
        for (k, n) in names.iter().enumerate() {
            r.wait_value(n, i(k as i64 + 1000));
        }
        assert!(r.status.planned_requests() <= 3, "{}", imp.name());
    }
}

#[test]
fn a_1000_byte_array_and_a_long_string_are_split_across_pdus() {
    let points = [
        p("a", ValueType::Int, "DB2.DBB0", Some("byte")).count(1000),
        p("t", ValueType::String, "DB1.DBB300", Some("string")).length(254),
    ];
    for imp in S7Impl::ALL {
        let sim = S7Sim::start(imp, &layout());
        let pattern: Vec<u8> = (0..1000u32).map(|k| (k * 7 % 251) as u8).collect();
        sim.set(DB, 2, 0, &pattern);
        let text: Vec<u8> = (0..254u32).map(|k| b'a' + (k % 26) as u8).collect();
        let mut string = vec![254, 254];
        string.extend_from_slice(&text);
        sim.set(DB, 1, 300, &string);
        let r = Running::start_with(&points, |c| {
            c.port = sim.port();
            c.pdu_size = 240;
        });
        let want_text: std::string::String = text.iter().map(|&b| char::from(b)).collect();
        r.wait_value("t", s(&want_text));
        for (k, b) in pattern.iter().enumerate() {
            r.wait_value(&format!("a.{k}"), i(i64::from(*b)));
        }
        // 1256 bytes in items of at most 222 bytes (PDU 240): at least 6 requests.
        let n = r.status.planned_requests();
        assert!((6..=7).contains(&n), "{}: {n} requests", imp.name());
    }
}

#[test]
fn a_missing_db_or_an_address_past_its_end_marks_only_those_points_bad() {
    let points = [
        p("good", ValueType::Int, "DB1.DBW10", None),
        p("missing", ValueType::Int, "DB9.DBW0", None),
        p("missing2", ValueType::Int, "DB9.DBW2", None),
        // DB2 is 1100 bytes: 1096..1098 and 1098..1100 are inside, a DWORD at 1098 is not.
        // All three merge into one item, which the PLC refuses whole.
        p("near_end", ValueType::Int, "DB2.DBW1096", None),
        p("last", ValueType::Int, "DB2.DBW1098", None),
        p("past_end", ValueType::Int, "DB2.DBD1098", None),
    ];
    for imp in S7Impl::ALL {
        let sim = S7Sim::start(imp, &layout());
        sim.set(DB, 1, 10, &[0, 42]);
        sim.set(DB, 2, 1096, &[0, 1, 0, 2]);
        let r = Running::start(sim.port(), &points);
        r.wait_value("good", i(42));
        r.wait_value("near_end", i(1));
        r.wait_value("last", i(2));
        let bad = Quality::Bad(BadReason::ConfigError);
        r.wait_quality("missing", bad);
        r.wait_quality("missing2", bad);
        r.wait_quality("past_end", bad);
        // The session survives item errors: still connected, good values keep coming.
        assert!(r.status.is_connected());
        assert_eq!(r.status.requests(RequestResult::Error), 0, "{}", imp.name());
        sim.set(DB, 1, 10, &[0, 43]);
        r.wait_value("good", i(43));
    }
}

#[test]
fn a_killed_and_restarted_server_is_recovered_and_write_only_points_are_sent_again() {
    for imp in S7Impl::ALL {
        let mut sim = S7Sim::start(imp, &layout());
        sim.set(DB, 1, 0, &[0, 5]);
        let points = [
            p("x", ValueType::Int, "DB1.DBW0", None),
            p("cmd", ValueType::Int, "DB1.DBW50", None).mode(Mode::Write),
        ];
        let r = Running::start(sim.port(), &points);
        r.wait_value("x", i(5));
        r.set("cmd", i(77));
        wait_until("cmd written", WAIT, || sim.get(DB, 1, 50, 2) == [0, 77]);
        sim.kill();
        r.wait_quality("x", Quality::Bad(BadReason::NotConnected));
        wait_until("disconnected", WAIT, || !r.status.is_connected());
        r.had_good("x");
        sim.restart();
        // The restarted PLC lost its memory: the write-only point is written again, and
        // reads resume — without restarting the driver.
        wait_until("cmd written again", WAIT, || {
            sim.get(DB, 1, 50, 2) == [0, 77]
        });
        sim.set(DB, 1, 0, &[0, 6]);
        r.wait_value("x", i(6));
        assert!(r.had_good("x"));
        assert!(r.status.connects() >= 2, "{}", imp.name());
    }
}

/// A TCP server that accepts connections and answers each by `answer` (given what it read),
/// counting connections.
struct Fake {
    port: u16,
    connections: Arc<AtomicUsize>,
}

impl Fake {
    fn start(answer: fn(&[u8]) -> Option<Vec<u8>>) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let c = connections.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                c.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = stream.read(&mut buf) {
                        if n == 0 {
                            return;
                        }
                        if let Some(a) = answer(&buf[..n])
                            && stream.write_all(&a).is_err()
                        {
                            return;
                        }
                    }
                });
            }
        });
        Fake { port, connections }
    }
}

#[test]
fn a_silent_plc_times_out_and_is_reconnected_with_the_points_bad() {
    let fake = Fake::start(|_| None);
    let points = [p("x", ValueType::Int, "DB1.DBW0", None)];
    let r = Running::start(fake.port, &points);
    r.wait_quality("x", Quality::Bad(BadReason::NotConnected));
    wait_until("three connects", WAIT, || {
        fake.connections.load(Ordering::SeqCst) >= 3
    });
    assert!(r.status.last_error().unwrap().contains("no answer within"));
}

#[test]
fn garbage_from_the_plc_ends_the_session_without_a_panic() {
    // Not TPKT at all.
    let fake = Fake::start(|_| Some(b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec()));
    let points = [p("x", ValueType::Int, "DB1.DBW0", None)];
    let r = Running::start(fake.port, &points);
    wait_until("three connects", WAIT, || {
        fake.connections.load(Ordering::SeqCst) >= 3
    });
    r.wait_quality("x", Quality::Bad(BadReason::NotConnected));
    let e = r.status.last_error().unwrap();
    assert!(e.contains("TPKT version"), "{e}");
}

#[test]
fn request_delay_paces_the_requests_of_a_split_poll() {
    // 60 unmerged words at PDU 240: 4 requests per poll, 3 pauses between them.
    let names: Vec<&'static str> = (0..60)
        .map(|k| &*Box::leak(format!("v{k}").into_boxed_str()))
        .collect();
    let addrs: Vec<&'static str> = (0..60)
        .map(|k| &*Box::leak(format!("DB1.DBW{}", k * 10).into_boxed_str()))
        .collect();
    let points: Vec<P> = names
        .iter()
        .zip(&addrs)
        .map(|(n, a)| p(n, ValueType::Int, a, None))
        .collect();
    let sim = S7Sim::start(S7Impl::Native, &layout());
    let delay = Duration::from_millis(100);
    let r = Running::start_with(&points, |c| {
        c.port = sim.port();
        c.pdu_size = 240;
        c.request_delay = delay;
    });
    r.wait_value("v0", i(0));
    let ok = || r.status.requests(RequestResult::Ok);
    let (start, first) = (std::time::Instant::now(), ok());
    wait_until("eight more requests", WAIT, || ok() >= first + 8);
    // Eight requests span at least two polls: at least six pauses between them.
    assert!(
        start.elapsed() >= delay * 6,
        "8 requests in {:?}",
        start.elapsed()
    );
    assert_eq!(r.status.planned_requests(), 4);
}
