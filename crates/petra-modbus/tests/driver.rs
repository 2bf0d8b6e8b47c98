//! The Modbus driver against real peers: pymodbus 3.16 over TCP and over RTU (a socat pty
//! pair), and a scripted fake for the faults a real device shows (wrong transaction id, wrong
//! unit, short frames, garbage, silence, closed connections).

use petra_core::{
    BadReason, Bus, BusBuilder, Quality, SignalDef, SignalId, Timestamp, Value, ValueType,
};
use petra_drivers::{DriverStatus, RequestResult};
use petra_modbus::{
    Area, DataType, Driver, Encoding, ModbusConfig, ModbusPoint, Mode, Order, Transport,
};
use petra_test_support::modbus::{Fault, FaultServer, ModbusSim, SimArea, SimLayout};
use petra_test_support::wait_until;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(20);

/// A point declaration: signal name and type, then where it lives.
struct P {
    name: &'static str,
    ty: ValueType,
    area: Area,
    address: u16,
    enc: Encoding,
    mode: Mode,
    unit: u8,
}

fn p(name: &'static str, ty: ValueType, area: Area, address: u16, enc: Encoding) -> P {
    P {
        name,
        ty,
        area,
        address,
        enc,
        mode: Mode::Read,
        unit: 1,
    }
}

fn enc(ty: DataType, order: Order) -> Encoding {
    Encoding {
        order,
        ..Encoding::new(ty)
    }
}

fn url_transport(url: &str) -> Transport {
    if let Some(rest) = url.strip_prefix("tcp://") {
        let (host, port) = rest.rsplit_once(':').unwrap();
        return Transport::Tcp {
            host: host.into(),
            port: port.parse().unwrap(),
        };
    }
    let rest = url.strip_prefix("rtu://").unwrap();
    let (path, _) = rest.split_once('?').unwrap();
    Transport::Rtu(petra_modbus::SerialLine {
        path: path.into(),
        baud: 19200,
        parity: petra_modbus::Parity::None,
        stop_bits: 1,
        data_bits: 8,
    })
}

fn config(url: &str, points: &[P]) -> ModbusConfig {
    ModbusConfig {
        name: "dev".into(),
        transport: url_transport(url),
        timeout: Duration::from_millis(300),
        connect_delay: Duration::ZERO,
        request_delay: Duration::ZERO,
        max_gap: 16,
        reconnect_max: Duration::from_millis(300),
        points: points
            .iter()
            .enumerate()
            .map(|(i, p)| ModbusPoint {
                signal: SignalId::from_index(i),
                signal_name: p.name.into(),
                signal_type: p.ty,
                unit: p.unit,
                area: p.area,
                address: p.address,
                encoding: p.enc,
                mode: p.mode,
                poll: Duration::from_millis(50),
            })
            .collect(),
    }
}

/// A driver running on its own runtime, with the bus it writes.
struct Running {
    bus: Arc<Bus>,
    /// Every change, to see quality dips shorter than a poll of the test.
    changes: petra_core::LosslessFeed,
    status: Arc<DriverStatus>,
    cancel: CancellationToken,
    rt: Option<tokio::runtime::Runtime>,
    names: Vec<&'static str>,
}

impl Running {
    fn start(url: &str, points: &[P]) -> Running {
        Running::start_with(config(url, points), points)
    }

    fn start_with(cfg: ModbusConfig, points: &[P]) -> Running {
        let defs = points
            .iter()
            .map(|p| SignalDef::new(p.name, p.ty))
            .collect();
        let mut b = BusBuilder::new(defs).unwrap();
        let outs = cfg.output_signals();
        let feed = (!outs.is_empty()).then(|| b.latest_feed(Some(&outs)));
        let changes = b.lossless_feed(100_000, petra_core::OverflowPolicy::DropOldest, None);
        let bus = b.build(Timestamp::from_unix_nanos(0));
        let status = Arc::new(DriverStatus::new("dev", "modbus", points.len()));
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
            names: points.iter().map(|p| p.name).collect(),
        }
    }

    fn id(&self, name: &str) -> SignalId {
        SignalId::from_index(self.names.iter().position(|n| *n == name).unwrap())
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

    /// Whether `name` has had a bad quality since the last call.
    fn dipped(&self, name: &str) -> bool {
        let id = self.id(name);
        let mut seen = false;
        while let Some(c) = self.changes.pop() {
            seen |= c.id == id && !c.sample.quality.is_good();
        }
        seen
    }

    /// Writes as the engine or the API would.
    fn set(&self, name: &str, v: Value) {
        self.bus
            .write(
                self.id(name),
                v,
                Quality::Good,
                Timestamp::from_unix_nanos(1),
            )
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

fn full_layout() -> SimLayout {
    SimLayout::new().unit(
        1,
        &[
            (SimArea::Holding, 0..300),
            (SimArea::Input, 0..50),
            (SimArea::Coil, 0..32),
            (SimArea::Discrete, 0..32),
        ],
    )
}

const ORDERS: [Order; 4] = [Order::Abcd, Order::Cdab, Order::Badc, Order::Dcba];

/// A known value stored in registers: signal name and type, data type, address, registers,
/// the value Petra must read.
type Stored<'a> = (&'static str, ValueType, DataType, u16, &'a [u16], Value);

/// Registers of known values in every order (computed with Python's `struct`, then permuted by
/// hand per the order letters), and the points that read them.
fn type_matrix(sim: &ModbusSim) -> (Vec<P>, Vec<(&'static str, Value)>) {
    use ValueType::{Bool, Float, Int, String as Str};
    let f32s = [
        [0x42F6, 0xE979],
        [0xE979, 0x42F6],
        [0xF642, 0x79E9],
        [0x79E9, 0xF642],
    ];
    let i32s = [
        [0xFFFE, 0x1DC0],
        [0x1DC0, 0xFFFE],
        [0xFEFF, 0xC01D],
        [0xC01D, 0xFEFF],
    ];
    let u32s = [
        [0xB2D0, 0x5E00],
        [0x5E00, 0xB2D0],
        [0xD0B2, 0x005E],
        [0x005E, 0xD0B2],
    ];
    let f64s = [
        [0xC0C3, 0x4A45, 0x87E7, 0xC06E],
        [0xC06E, 0x87E7, 0x4A45, 0xC0C3],
        [0xC3C0, 0x454A, 0xE787, 0x6EC0],
        [0x6EC0, 0xE787, 0x454A, 0xC3C0],
    ];
    let i64s = [
        [0xFFFF, 0xFEE0, 0x8E04, 0xFB35],
        [0xFB35, 0x8E04, 0xFEE0, 0xFFFF],
        [0xFFFF, 0xE0FE, 0x048E, 0x35FB],
        [0x35FB, 0x048E, 0xE0FE, 0xFFFF],
    ];
    let u64s = [
        [0x0102, 0x0304, 0x0506, 0x0708],
        [0x0708, 0x0506, 0x0304, 0x0102],
        [0x0201, 0x0403, 0x0605, 0x0807],
        [0x0807, 0x0605, 0x0403, 0x0201],
    ];
    const NAMES: [[&str; 6]; 4] = [
        [
            "f32.abcd", "i32.abcd", "u32.abcd", "f64.abcd", "i64.abcd", "u64.abcd",
        ],
        [
            "f32.cdab", "i32.cdab", "u32.cdab", "f64.cdab", "i64.cdab", "u64.cdab",
        ],
        [
            "f32.badc", "i32.badc", "u32.badc", "f64.badc", "i64.badc", "u64.badc",
        ],
        [
            "f32.dcba", "i32.dcba", "u32.dcba", "f64.dcba", "i64.dcba", "u64.dcba",
        ],
    ];
    let mut points = Vec::new();
    let mut want = Vec::new();
    for (o, order) in ORDERS.into_iter().enumerate() {
        // 24 registers per order, from 40 × order; a gap of 4 between types.
        let base = 10 + 40 * o as u16;
        let n = NAMES[o];
        let layout: [Stored; 6] = [
            (
                n[0],
                Float,
                DataType::F32,
                base,
                &f32s[o],
                Value::Float(123.456f32 as f64),
            ),
            (
                n[1],
                Int,
                DataType::I32,
                base + 4,
                &i32s[o],
                Value::Int(-123456),
            ),
            (
                n[2],
                Int,
                DataType::U32,
                base + 8,
                &u32s[o],
                Value::Int(3_000_000_000),
            ),
            (
                n[3],
                Float,
                DataType::F64,
                base + 12,
                &f64s[o],
                Value::Float(-9876.54321),
            ),
            (
                n[4],
                Int,
                DataType::I64,
                base + 20,
                &i64s[o],
                Value::Int(-1234567890123),
            ),
            (
                n[5],
                Int,
                DataType::U64,
                base + 28,
                &u64s[o],
                Value::Int(72623859790382856),
            ),
        ];
        for (name, ty, dt, addr, regs, value) in layout {
            sim.set_registers(1, SimArea::Holding, addr, regs);
            points.push(p(name, ty, Area::Holding, addr, enc(dt, order)));
            want.push((name, value));
        }
    }
    // 16-bit types, scale/offset, bits, strings, input registers, coils, discrete inputs.
    sim.set_registers(
        1,
        SimArea::Holding,
        200,
        &[0xFFFE, 0xFFFE, 1234, 0b1000_0000_0000_1000],
    );
    sim.set_registers(1, SimArea::Holding, 210, &[0x5045, 0x5452, 0x412D, 0x3031]);
    sim.set_registers(1, SimArea::Holding, 220, &[0x4550, 0x5254, 0x0041, 0x0000]);
    sim.set_registers(1, SimArea::Input, 7, &[42]);
    sim.set_bits(1, SimArea::Coil, 3, &[true]);
    sim.set_bits(1, SimArea::Discrete, 9, &[true]);
    let scaled = Encoding {
        scale: 0.1,
        offset: -10.0,
        ..Encoding::new(DataType::U16)
    };
    let bit = |b| Encoding {
        bit: Some(b),
        ..Encoding::new(DataType::Bool)
    };
    let swapped = Encoding {
        swap_bytes: true,
        ..Encoding::new(DataType::String { len: 8 })
    };
    let extra = [
        (
            p("u16", Int, Area::Holding, 200, Encoding::new(DataType::U16)),
            Value::Int(65534),
        ),
        (
            p("i16", Int, Area::Holding, 201, Encoding::new(DataType::I16)),
            Value::Int(-2),
        ),
        (
            p("scaled", Float, Area::Holding, 202, scaled),
            Value::Float(1234.0 * 0.1 - 10.0),
        ),
        (
            p("bit3", Bool, Area::Holding, 203, bit(3)),
            Value::Bool(true),
        ),
        (
            p("bit4", Bool, Area::Holding, 203, bit(4)),
            Value::Bool(false),
        ),
        (
            p("bit15", Bool, Area::Holding, 203, bit(15)),
            Value::Bool(true),
        ),
        (
            p(
                "text",
                Str,
                Area::Holding,
                210,
                Encoding::new(DataType::String { len: 8 }),
            ),
            Value::String("PETRA-01".into()),
        ),
        (
            p("swapped", Str, Area::Holding, 220, swapped),
            Value::String("PETRA".into()),
        ),
        (
            p("input", Int, Area::Input, 7, Encoding::new(DataType::U16)),
            Value::Int(42),
        ),
        (
            p("coil3", Bool, Area::Coil, 3, Encoding::new(DataType::Bool)),
            Value::Bool(true),
        ),
        (
            p("coil4", Bool, Area::Coil, 4, Encoding::new(DataType::Bool)),
            Value::Bool(false),
        ),
        (
            p(
                "di9",
                Bool,
                Area::Discrete,
                9,
                Encoding::new(DataType::Bool),
            ),
            Value::Bool(true),
        ),
    ];
    for (pt, v) in extra {
        want.push((pt.name, v));
        points.push(pt);
    }
    (points, want)
}

fn reads_every_type_and_order(sim: &ModbusSim) {
    let (points, want) = type_matrix(sim);
    let d = Running::start(&sim.url(), &points);
    for (name, value) in want {
        d.wait_value(name, value);
    }
    // 24 × 4 + 12 points; the planner covers them in a handful of requests.
    let planned = d.status.planned_requests();
    assert!(
        (4..=8).contains(&planned),
        "{planned} requests for {} points",
        points.len()
    );
}

#[test]
fn reads_every_type_and_order_over_tcp() {
    let sim = ModbusSim::tcp(&full_layout());
    reads_every_type_and_order(&sim);
}

#[test]
fn reads_every_type_and_order_over_rtu() {
    let sim = ModbusSim::rtu(&full_layout(), 19200);
    reads_every_type_and_order(&sim);
}

fn writes_land_in_the_device(sim: &ModbusSim) {
    use ValueType::{Bool, Float, Int, String as Str};
    let w = |mut p: P| {
        p.mode = Mode::Write;
        p
    };
    let bit5 = Encoding {
        bit: Some(5),
        ..Encoding::new(DataType::Bool)
    };
    sim.set_registers(1, SimArea::Holding, 60, &[0b1000_0000_0000_0001]);
    let points = [
        w(p(
            "pump",
            Bool,
            Area::Coil,
            5,
            Encoding::new(DataType::Bool),
        )),
        w(p(
            "speed",
            Float,
            Area::Holding,
            50,
            enc(DataType::F32, Order::Cdab),
        )),
        w(p(
            "setpoint",
            Int,
            Area::Holding,
            55,
            Encoding::new(DataType::U16),
        )),
        w(p("flag", Bool, Area::Holding, 60, bit5)),
        w(p(
            "recipe",
            Str,
            Area::Holding,
            70,
            Encoding::new(DataType::String { len: 6 }),
        )),
        P {
            mode: Mode::ReadWrite,
            ..p(
                "target",
                Int,
                Area::Holding,
                80,
                Encoding::new(DataType::I16),
            )
        },
    ];
    let d = Running::start(&sim.url(), &points);
    d.set("pump", Value::Bool(true));
    d.set("speed", Value::Float(123.456f32 as f64));
    d.set("setpoint", Value::Int(700));
    d.set("flag", Value::Bool(true));
    d.set("recipe", Value::String("AB-12".into()));
    let holding = |a, n| sim.registers(1, SimArea::Holding, a, n);
    wait_until("writes landed", WAIT, || {
        sim.bits(1, SimArea::Coil, 5, 1) == [true]
            && holding(50, 2) == [0xE979, 0x42F6]
            && holding(55, 1) == [700]
            // Read-modify-write: bits 0 and 15 stay.
            && holding(60, 1) == [0b1000_0000_0010_0001]
            && holding(70, 3) == [0x4142, 0x2D31, 0x3200]
    });
    // A readwrite point follows the device, and takes writes from the bus.
    sim.set_registers(1, SimArea::Holding, 80, &[0xFFF6]);
    d.wait_value("target", Value::Int(-10));
    d.set("target", Value::Int(25));
    wait_until("readwrite value written", WAIT, || holding(80, 1) == [25]);
    d.wait_value("target", Value::Int(25));
    // Coalesced: many changes between two passes end as the last value, no error.
    for v in 0..50 {
        d.set("setpoint", Value::Int(v));
    }
    wait_until("last setpoint written", WAIT, || holding(55, 1) == [49]);
    assert_eq!(d.status.write_failures(), 0);
    assert_eq!(d.status.pending_writes(), 0);
}

#[test]
fn writes_land_in_the_device_over_tcp() {
    writes_land_in_the_device(&ModbusSim::tcp(&full_layout()));
}

#[test]
fn writes_land_in_the_device_over_rtu() {
    writes_land_in_the_device(&ModbusSim::rtu(&full_layout(), 19200));
}

#[test]
fn a_failed_write_is_counted_visible_and_retried() {
    // Holding 0..10 only: a write to 20 gets exception 2 until the layout has it.
    let sim = ModbusSim::tcp(&SimLayout::new().unit(1, &[(SimArea::Holding, 0..10)]));
    let mut pt = p(
        "sp",
        ValueType::Int,
        Area::Holding,
        20,
        Encoding::new(DataType::U16),
    );
    pt.mode = Mode::Write;
    let d = Running::start(&sim.url(), &[pt]);
    d.set("sp", Value::Int(5));
    wait_until("two failed attempts", WAIT, || {
        d.status.write_failures() >= 2
    });
    assert_eq!(d.status.pending_writes(), 1);
    assert!(d.status.requests(RequestResult::Exception) >= 2);
    let err = d.status.last_error().unwrap();
    assert!(err.contains("writing `sp` (holding 20 of unit 1)"), "{err}");
}

fn heals_after_the_server_is_killed(mut sim: ModbusSim) {
    sim.set_registers(1, SimArea::Holding, 10, &[7]);
    let pt = p(
        "v",
        ValueType::Int,
        Area::Holding,
        10,
        Encoding::new(DataType::U16),
    );
    let d = Running::start(&sim.url(), &[pt]);
    d.wait_value("v", Value::Int(7));
    sim.kill();
    wait_until("quality bad", WAIT, || !d.sample("v").1.is_good());
    // TCP: the connection is refused; RTU: the port stays open but no unit answers.
    wait_until("disconnected", WAIT, || !d.status.is_connected());
    sim.restart();
    sim.set_registers(1, SimArea::Holding, 10, &[8]);
    d.wait_value("v", Value::Int(8));
    assert!(d.status.is_connected());
    assert!(
        d.status.connects() >= 2,
        "connects: {}",
        d.status.connects()
    );
}

#[test]
fn heals_after_the_server_is_killed_over_tcp() {
    let sim = ModbusSim::tcp(&full_layout());
    heals_after_the_server_is_killed(sim);
}

#[test]
fn heals_after_the_server_is_killed_over_rtu() {
    heals_after_the_server_is_killed(ModbusSim::rtu(&full_layout(), 19200));
}

#[test]
fn a_dead_device_is_not_connected_until_it_answers() {
    let port = petra_test_support::free_port();
    let url = format!("tcp://127.0.0.1:{port}");
    let pt = p(
        "v",
        ValueType::Int,
        Area::Holding,
        0,
        Encoding::new(DataType::U16),
    );
    let d = Running::start(&url, &[pt]);
    d.wait_quality("v", Quality::Bad(BadReason::NotConnected));
    assert!(d.status.last_error().unwrap().contains("cannot connect"));
    assert_eq!(d.status.connects(), 0);
}

#[test]
fn exception_2_on_part_of_a_batch_marks_only_those_points() {
    // Holding 0..100 and 110..200 exist: a batch over 95..115 is refused as a whole.
    let sim = ModbusSim::tcp(&SimLayout::new().unit(
        1,
        &[(SimArea::Holding, 0..100), (SimArea::Holding, 110..200)],
    ));
    sim.set_registers(1, SimArea::Holding, 95, &[1, 2]);
    sim.set_registers(1, SimArea::Holding, 110, &[3]);
    let u16p = |name, a| {
        p(
            name,
            ValueType::Int,
            Area::Holding,
            a,
            Encoding::new(DataType::U16),
        )
    };
    let points = [
        u16p("a", 95),
        u16p("b", 96),
        u16p("gone", 104),
        u16p("c", 110),
    ];
    let d = Running::start(&sim.url(), &points);
    d.wait_value("a", Value::Int(1));
    d.wait_value("b", Value::Int(2));
    d.wait_value("c", Value::Int(3));
    d.wait_quality("gone", Quality::Bad(BadReason::ConfigError));
    // One batch became: 95..96, 104 alone, 110.
    assert_eq!(d.status.planned_requests(), 3);
    // The good points keep updating; the rejected one stays bad.
    sim.set_registers(1, SimArea::Holding, 110, &[4]);
    d.wait_value("c", Value::Int(4));
    assert_eq!(d.sample("gone").1, Quality::Bad(BadReason::ConfigError));
}

#[test]
fn a_silent_rtu_unit_does_not_block_the_others() {
    // Unit 2 is not on the line: it never answers.
    let sim = ModbusSim::rtu(
        &SimLayout::new().unit(1, &[(SimArea::Holding, 0..10)]),
        19200,
    );
    sim.set_registers(1, SimArea::Holding, 0, &[1]);
    let mut ghost = p(
        "ghost",
        ValueType::Int,
        Area::Holding,
        0,
        Encoding::new(DataType::U16),
    );
    ghost.unit = 2;
    let here = p(
        "here",
        ValueType::Int,
        Area::Holding,
        0,
        Encoding::new(DataType::U16),
    );
    let d = Running::start(&sim.url(), &[ghost, here]);
    d.wait_quality("ghost", Quality::Bad(BadReason::Timeout));
    d.wait_value("here", Value::Int(1));
    // While unit 2 keeps timing out, unit 1's changes arrive within a few polls.
    for v in 2..5 {
        sim.set_registers(1, SimArea::Holding, 0, &[v]);
        let t = std::time::Instant::now();
        d.wait_value("here", Value::Int(v as i64));
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    }
    assert!(d.status.requests(RequestResult::Timeout) >= 1);
    assert_eq!(d.sample("ghost").1, Quality::Bad(BadReason::Timeout));
}

/// Each fault the fake device shows ends the session; the driver reconnects, and the value is
/// good again — no transaction-id desync survives a reconnect.
#[test]
fn recovers_from_every_kind_of_bad_answer() {
    let server = FaultServer::start();
    // The fake answers register = address.
    let pt = p(
        "v",
        ValueType::Int,
        Area::Holding,
        33,
        Encoding::new(DataType::U16),
    );
    let d = Running::start(&server.url(), &[pt]);
    d.wait_value("v", Value::Int(33));
    for fault in [
        Fault::WrongTransactionId,
        Fault::WrongUnit,
        Fault::ShortFrame,
        Fault::Garbage,
        Fault::Close,
        Fault::Silent,
        Fault::Delay(Duration::from_millis(600)),
    ] {
        let name = format!("{fault:?}");
        let connections = server.connections();
        d.dipped("v");
        server.push(fault);
        // The dip may be shorter than this test's polling: the change feed keeps it.
        let mut dipped = false;
        wait_until(&format!("{name}: bad quality"), WAIT, || {
            dipped |= d.dipped("v");
            dipped
        });
        wait_until(&format!("{name}: reconnected"), WAIT, || {
            server.connections() > connections
        });
        d.wait_value("v", Value::Int(33));
    }
    let errors =
        d.status.requests(RequestResult::Error) + d.status.requests(RequestResult::Timeout);
    assert!(errors >= 7, "{errors} failed requests counted");
}

/// A write from outside that lands while a read of the same register is on the wire is still
/// sent: the old value coming back must not overwrite it on the bus and so cancel it.
#[test]
fn a_write_while_its_register_is_being_read_is_not_lost() {
    let server = FaultServer::start();
    let pt = P {
        mode: Mode::ReadWrite,
        ..p(
            "v",
            ValueType::Int,
            Area::Holding,
            5,
            Encoding::new(DataType::U16),
        )
    };
    let d = Running::start(&server.url(), &[pt]);
    d.wait_value("v", Value::Int(5));
    // The next read is answered (with the old value, 5) 150 ms after it arrives.
    server.push(Fault::Delay(Duration::from_millis(150)));
    wait_until("the slow read is on the wire", WAIT, || {
        server.pending() == 0
    });
    d.set("v", Value::Int(77));
    wait_until("the write reaches the device", WAIT, || {
        server.writes().contains(&(1, 5, vec![77]))
    });
}

#[test]
fn an_exception_marks_the_points_bad_and_keeps_the_session() {
    let server = FaultServer::start();
    let pt = p(
        "v",
        ValueType::Int,
        Area::Holding,
        5,
        Encoding::new(DataType::U16),
    );
    let d = Running::start(&server.url(), &[pt]);
    d.wait_value("v", Value::Int(5));
    server.push(Fault::Exception(4));
    d.wait_quality("v", Quality::Bad(BadReason::DeviceError));
    d.wait_value("v", Value::Int(5));
    assert_eq!(server.connections(), 1);
    assert_eq!(d.status.requests(RequestResult::Exception), 1);
}

/// Pacing: a pause after connecting and between requests. Only lower bounds are checked, so a
/// slow machine cannot make this fail.
#[test]
fn pacing_spaces_the_requests() {
    let server = FaultServer::start();
    let u16p = |name, a| {
        p(
            name,
            ValueType::Int,
            Area::Holding,
            a,
            Encoding::new(DataType::U16),
        )
    };
    // Far apart: three requests per poll.
    let points = [u16p("a", 0), u16p("b", 1000), u16p("c", 2000)];
    let mut cfg = config(&server.url(), &points);
    cfg.connect_delay = Duration::from_millis(500);
    cfg.request_delay = Duration::from_millis(500);
    let d = Running::start_with(cfg, &points);
    wait_until("connected", WAIT, || server.connections() >= 1);
    let connected = std::time::Instant::now();
    wait_until("first request", WAIT, || server.requests() >= 1);
    let first = std::time::Instant::now();
    wait_until("third request", WAIT, || server.requests() >= 3);
    let third = std::time::Instant::now();
    // The test sees each event up to one poll (5 ms) late.
    let slack = Duration::from_millis(10);
    assert!(
        first - connected + slack >= Duration::from_millis(300),
        "{:?}",
        first - connected
    );
    assert!(
        third - first + slack >= Duration::from_millis(400),
        "{:?}",
        third - first
    );
    d.wait_value("c", Value::Int(2000));
}

/// Whatever bytes come back — random, truncated, oversized — a read ends in a value or an
/// error, never a panic (debug builds included, where tokio-modbus' own readers would assert).
mod random_answers {
    use petra_modbus::Area;
    use petra_modbus::driver::{self, Data};
    use petra_modbus::plan::ReadRequest;
    use proptest::prelude::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn answer(rtu: bool, area: Area, count: u16, reply: Vec<u8>) -> Option<Data> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let (client, mut device) = tokio::io::duplex(4096);
            let mut ctx = if rtu {
                tokio_modbus::client::rtu::attach(client)
            } else {
                tokio_modbus::client::tcp::attach(client)
            };
            let fake = tokio::spawn(async move {
                let mut buf = [0u8; 300];
                let _ = device.read(&mut buf).await;
                let _ = device.write_all(&reply).await;
                // Keep the stream open so a short answer is a timeout, not EOF.
                let _ = device.read(&mut buf).await;
            });
            let req = ReadRequest {
                unit: 1,
                area,
                start: 0,
                count,
                points: Vec::new(),
            };
            let got = driver::read(&mut ctx, &req, Duration::from_millis(20)).await;
            fake.abort();
            got.ok()
        })
    }

    /// A well-formed answer with fewer registers or coils than asked is refused.
    #[test]
    fn a_short_but_well_formed_answer_is_refused() {
        // Function 3, 2 bytes: one register where ten were asked.
        let regs = vec![0, 0, 0, 0, 0, 5, 1, 3, 2, 0x12, 0x34];
        assert_eq!(answer(false, Area::Holding, 10, regs), None);
        // Function 1, 1 byte: eight coils where twenty were asked.
        let coils = vec![0, 0, 0, 0, 0, 4, 1, 1, 1, 0xFF];
        assert_eq!(answer(false, Area::Coil, 20, coils), None);
        // The same answers are taken when they are what was asked.
        let regs = vec![0, 0, 0, 0, 0, 5, 1, 3, 2, 0x12, 0x34];
        assert_eq!(
            answer(false, Area::Holding, 1, regs),
            Some(Data::Registers(vec![0x1234]))
        );
    }

    fn area() -> impl Strategy<Value = Area> {
        prop_oneof![
            Just(Area::Coil),
            Just(Area::Discrete),
            Just(Area::Input),
            Just(Area::Holding)
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        #[test]
        fn tcp_reads_never_panic(area in area(), count in 1u16..130, reply in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Some(data) = answer(false, area, count, reply) {
                // Anything accepted has exactly the asked size.
                let n = match data { Data::Bits(b) => b.len(), Data::Registers(r) => r.len() };
                prop_assert_eq!(n, usize::from(count));
            }
        }

        #[test]
        fn rtu_reads_never_panic(area in area(), count in 1u16..130, reply in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Some(data) = answer(true, area, count, reply) {
                let n = match data { Data::Bits(b) => b.len(), Data::Registers(r) => r.len() };
                prop_assert_eq!(n, usize::from(count));
            }
        }

        /// Valid MBAP framing around a random PDU: gets past the framing into the PDU decoder.
        #[test]
        fn tcp_random_pdus_never_panic(area in area(), count in 1u16..130, pdu in proptest::collection::vec(any::<u8>(), 1..260)) {
            let mut reply = vec![0, 0, 0, 0];
            reply.extend_from_slice(&((pdu.len() + 1) as u16).to_be_bytes());
            reply.push(1);
            reply.extend_from_slice(&pdu);
            if let Some(data) = answer(false, area, count, reply) {
                let n = match data { Data::Bits(b) => b.len(), Data::Registers(r) => r.len() };
                prop_assert_eq!(n, usize::from(count));
            }
        }
    }
}

/// A device behind a link that accepts and closes every connection (a gateway whose device is
/// gone; here a proxy dropping everything): its points turn bad, the driver says disconnected,
/// and the reconnects back off — no tight loop of connect, fail, connect, also with a write
/// pending. Back to pass: it heals and the write lands.
#[test]
fn a_link_that_accepts_and_closes_is_a_dead_device_not_a_tight_loop() {
    use petra_test_support::proxy::{Mode as Link, Proxy};
    let sim = ModbusSim::tcp(&full_layout());
    sim.set_registers(1, SimArea::Holding, 10, &[7]);
    let addr: std::net::SocketAddr = sim.url().trim_start_matches("tcp://").parse().unwrap();
    let proxy = Proxy::start(addr);
    let v = p(
        "v",
        ValueType::Int,
        Area::Holding,
        10,
        Encoding::new(DataType::U16),
    );
    let mut w = p(
        "w",
        ValueType::Int,
        Area::Holding,
        20,
        Encoding::new(DataType::U16),
    );
    w.mode = Mode::Write;
    let d = Running::start(&format!("tcp://{}", proxy.addr()), &[v, w]);
    d.wait_value("v", Value::Int(7));
    proxy.set(Link::Drop);
    d.set("w", Value::Int(3));
    let (before, t) = (proxy.accepted(), std::time::Instant::now());
    d.wait_quality("v", Quality::Bad(BadReason::NotConnected));
    wait_until("disconnected", WAIT, || !d.status.is_connected());
    // Five attempts on the dead link take at least the fixed halves of the first backoff
    // steps (50 + 100 + 150 + 150 ms with reconnect_max 300 ms); a tight loop took 1 ms.
    wait_until("five attempts", WAIT, || proxy.accepted() - before >= 5);
    assert!(
        t.elapsed() >= Duration::from_millis(400),
        "five attempts in {:?}",
        t.elapsed()
    );
    proxy.set(Link::Pass);
    d.wait_value("v", Value::Int(7));
    wait_until("the write landed", WAIT, || {
        sim.registers(1, SimArea::Holding, 20, 1) == [3]
    });
    assert!(d.status.is_connected());
}
