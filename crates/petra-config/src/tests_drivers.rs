//! The `drivers:` section: what compiles into which driver configuration, and every refusal.

use crate::DriverPlan;
use crate::tests::{compile, errors, one_error, show};
use petra_core::SignalId;
use petra_modbus::{Area, DataType, Mode, Order, Parity, SerialLine, Transport};
use std::path::PathBuf;
use std::time::Duration;

const SIGNALS: &str = "plant: demo
signals:
  - { name: level, type: float }
  - { name: count, type: int }
  - { name: pump, type: bool }
  - { name: door, type: bool }
  - { name: batch, type: string }
  - { name: cmd, type: float, write: [operator] }
  - { name: big, type: float }
";

fn with_drivers(drivers: &str) -> String {
    format!("{SIGNALS}drivers:\n{drivers}")
}

fn modbus(plan: &crate::Plan, i: usize) -> &petra_modbus::ModbusConfig {
    match &plan.drivers[i] {
        DriverPlan::Modbus(m) => m,
        other => panic!("driver {} is not Modbus", other.name()),
    }
}

#[test]
fn a_modbus_driver_compiles_with_its_defaults() {
    let src = with_drivers(
        "  - name: plc1
    type: modbus
    url: tcp://10.0.0.5:1502
    unit: 3
    poll: 100ms
    points:
      - { signal: level, area: holding, address: 100, type: f32, order: CDAB, scale: 0.1, offset: -5 }
      - { signal: pump, area: coil, address: 5, mode: write }
      - { signal: count, area: input, address: 7, type: i32, unit: 4, poll: 1s }
      - { signal: door, area: holding, address: 8, bit: 3 }
      - { signal: batch, area: holding, address: 20, type: string, length: 16, byte_swap: true }
      - { signal: cmd, area: holding, address: 30, mode: readwrite }
      - { signal: big, area: holding, address: 40, type: f64, order: GHEFCDAB }
",
    );
    let plan = compile(&src).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(plan.drivers.len(), 1);
    assert_eq!(
        (plan.drivers[0].name(), plan.drivers[0].kind()),
        ("plc1", "modbus")
    );
    let m = modbus(&plan, 0);
    assert_eq!(
        m.transport,
        Transport::Tcp {
            host: "10.0.0.5".into(),
            port: 1502
        }
    );
    assert_eq!((m.timeout, m.max_gap), (Duration::from_secs(1), 16));
    let p = &m.points;
    assert_eq!(p.len(), 7);
    assert_eq!(
        (p[0].signal, p[0].unit, p[0].area, p[0].address),
        (SignalId::from_index(0), 3, Area::Holding, 100)
    );
    assert_eq!(
        (p[0].encoding.ty, p[0].encoding.order),
        (DataType::F32, Order::Cdab)
    );
    assert_eq!((p[0].encoding.scale, p[0].encoding.offset), (0.1, -5.0));
    assert_eq!(
        (p[0].poll, p[0].mode),
        (Duration::from_millis(100), Mode::Read)
    );
    assert_eq!((p[1].encoding.ty, p[1].mode), (DataType::Bool, Mode::Write));
    assert_eq!((p[2].unit, p[2].poll), (4, Duration::from_secs(1)));
    assert_eq!(
        (p[3].encoding.ty, p[3].encoding.bit),
        (DataType::Bool, Some(3))
    );
    assert_eq!(p[4].encoding.ty, DataType::String { len: 16 });
    assert!(p[4].encoding.swap_bytes);
    assert_eq!(
        (p[5].encoding.ty, p[5].mode),
        (DataType::U16, Mode::ReadWrite)
    );
    assert_eq!(p[6].encoding.order, Order::Cdab);
    assert_eq!(
        m.output_signals(),
        vec![SignalId::from_index(2), SignalId::from_index(5)]
    );
}

#[test]
fn rtu_urls_carry_the_serial_settings() {
    let src = with_drivers(
        "  - { name: line, type: modbus, url: 'rtu:///dev/ttyUSB0?baud=9600&parity=N&stop=2', points: [] }
  - { name: line2, type: modbus, url: 'rtu:///dev/ttyS1', points: [] }
  - { name: gw, type: modbus, url: 'tcp://plc.local', points: [] }
",
    );
    let plan = compile(&src).unwrap_or_else(|e| panic!("{e}"));
    let line = |path: &str, baud, parity, stop_bits| {
        Transport::Rtu(SerialLine {
            path: PathBuf::from(path),
            baud,
            parity,
            stop_bits,
            data_bits: 8,
        })
    };
    assert_eq!(
        modbus(&plan, 0).transport,
        line("/dev/ttyUSB0", 9600, Parity::None, 2)
    );
    // Modbus over serial line: 19200 baud, even parity by default.
    assert_eq!(
        modbus(&plan, 1).transport,
        line("/dev/ttyS1", 19200, Parity::Even, 1)
    );
    assert_eq!(
        modbus(&plan, 2).transport,
        Transport::Tcp {
            host: "plc.local".into(),
            port: 502
        }
    );
}

#[test]
fn bad_urls_are_refused_with_the_forms_that_work() {
    for (url, why) in [
        ("http://x:502", "the scheme must be tcp:// or rtu://"),
        ("tcp://x:99999", "the port must be a number"),
        ("tcp://:502", "it names no host"),
        ("rtu://?baud=9600", "it names no serial device"),
        ("rtu:///dev/ttyS0?baud=fast", "`baud=fast` is not valid"),
        ("rtu:///dev/ttyS0?parity=X", "`parity=X` is not valid"),
        (
            "rtu:///dev/ttyS0?speed=9600",
            "`speed` is not a serial setting",
        ),
    ] {
        let src = with_drivers(&format!(
            "  - {{ name: d, type: modbus, url: '{url}', points: [] }}\n"
        ));
        let d = one_error(&src, "bad-value", 11, 35);
        assert!(d.message.contains(why), "{url}: {d}");
        assert!(d.message.contains("write tcp://HOST:PORT"), "{d}");
    }
}

#[test]
fn every_bad_point_is_reported_at_once() {
    let src = with_drivers(
        "  - name: d
    type: modbus
    url: tcp://127.0.0.1:502
    points:
      - { signal: level, area: holdin, address: 1 }
      - { signal: level, area: holding, address: 70000 }
      - { signal: level, area: holding, address: 1, type: f16 }
      - { signal: level, area: holding, address: 1, type: u16, order: CDAB }
      - { signal: level, area: holding, address: 1, type: f32, order: GHEFCDAB }
      - { signal: batch, area: holding, address: 1, type: string }
      - { signal: level, area: holding, address: 1, length: 4 }
      - { signal: door, area: holding, address: 1, bit: 16 }
      - { signal: level, area: input, address: 1, mode: write }
      - { signal: count, area: holding, address: 1, type: f32 }
      - { signal: nope, area: holding, address: 1 }
      - { signal: level, area: holding, address: 65535, type: f32 }
      - { signal: level, area: holding, address: 1, mode: sometimes }
      - { signal: level, area: holding, address: 1, scale: 0 }
",
    );
    let errs = errors(&src);
    let got: Vec<(&str, usize)> = errs.iter().map(|d| (d.code, d.line)).collect();
    assert_eq!(
        got,
        [
            ("bad-value", 15),
            ("out-of-range", 16),
            ("bad-value", 17),
            ("bad-value", 18),
            ("bad-value", 19),
            ("missing-key", 20),
            ("bad-value", 21),
            ("out-of-range", 22),
            ("bad-value", 23),
            ("wrong-type", 24),
            ("unknown-signal", 25),
            ("out-of-range", 26),
            ("bad-value", 27),
            ("out-of-range", 28),
        ],
        "{}",
        show(&errs)
    );
    assert!(
        errs[0].message.contains("did you mean `holding`?"),
        "{}",
        errs[0]
    );
    assert!(
        errs[4]
            .message
            .contains("a f32 uses `ABCD`, `CDAB`, `BADC`"),
        "{}",
        errs[4]
    );
    assert!(
        errs[8].message.contains("the input area is read-only"),
        "{}",
        errs[8]
    );
    assert!(errs[9].message.contains("float"), "{}", errs[9]);
}

#[test]
fn a_signal_has_one_writer_across_blocks_and_drivers() {
    // Two drivers reading into one signal.
    let src = with_drivers(
        "  - { name: a, type: modbus, url: 'tcp://h', points: [{ signal: level, area: holding, address: 1 }] }
  - { name: b, type: modbus, url: 'tcp://h', points: [{ signal: level, area: holding, address: 1 }] }
",
    );
    let d = one_error(&src, "multiple-writers", 12, 55);
    assert!(d.message.contains("already written by driver `a`"), "{d}");
    // A read point on a signal that is writable from outside: the next poll would undo writes.
    let src = with_drivers(
        "  - { name: a, type: modbus, url: 'tcp://h', points: [{ signal: cmd, area: holding, address: 1 }] }\n",
    );
    let d = one_error(&src, "multiple-writers", 11, 55);
    assert!(d.message.contains("mode: readwrite"), "{d}");
    // Two write points on one register.
    let src = with_drivers(
        "  - { name: a, type: modbus, url: 'tcp://h', points: [{ signal: level, area: holding, address: 1, type: f32, mode: write }, { signal: big, area: holding, address: 2, mode: write }] }\n",
    );
    let d = one_error(&src, "multiple-writers", 11, 5);
    assert!(d.message.contains("both write holding 2 of unit 1"), "{d}");
}

#[test]
fn driver_names_are_unique_and_types_known() {
    let src = with_drivers(
        "  - { name: a, type: modbus, url: 'tcp://h', points: [] }
  - { name: a, type: modbus, url: 'tcp://h', points: [] }
  - { name: c, type: modbsu, url: 'tcp://h', points: [] }
",
    );
    let errs = errors(&src);
    let got: Vec<(&str, usize)> = errs.iter().map(|d| (d.code, d.line)).collect();
    assert_eq!(
        got,
        [("duplicate-name", 12), ("bad-value", 13)],
        "{}",
        show(&errs)
    );
    assert!(
        errs[1].message.contains("did you mean `modbus`?"),
        "{}",
        errs[1]
    );
}
