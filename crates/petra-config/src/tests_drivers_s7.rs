//! The `type: s7` driver: what compiles into which driver configuration, and every refusal.

use crate::DriverPlan;
use crate::tests::{compile, errors, one_error, show};
use petra_s7::{Area, DataType, Mode};
use std::time::Duration;

const SIGNALS: &str = "plant: demo
signals:
  - { name: speed, type: float }
  - { name: on, type: bool }
  - { name: count, type: int }
  - { name: recipe, type: string }
  - { name: cmd, type: bool }
  - { name: t.0, type: float }
  - { name: t.1, type: float }
  - { name: t.2, type: float }
";

fn with_drivers(drivers: &str) -> String {
    format!("{SIGNALS}drivers:\n{drivers}")
}

fn s7(plan: &crate::Plan, i: usize) -> &petra_s7::S7Config {
    match &plan.drivers[i] {
        DriverPlan::S7(s) => s,
        other => panic!("driver {} is not S7", other.name()),
    }
}

#[test]
fn an_s7_driver_compiles_with_its_defaults_and_arrays_become_element_points() {
    let src = with_drivers(
        "  - name: plc2
    type: s7
    host: 10.0.0.6
    poll: 50ms
    points:
      - { signal: speed, address: DB1.DBD4, type: real }
      - { signal: on, address: DB1.DBX0.0 }
      - { signal: cmd, address: Q0.1, mode: write }
      - { signal: recipe, address: DB2.DBB10, type: string, length: 20 }
      - { signal: count, address: MW10, type: int, poll: 1s }
      - { signal: t, address: DB3.DBB0, type: real, count: 3 }
",
    );
    let plan = compile(&src).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (plan.drivers[0].name(), plan.drivers[0].kind()),
        ("plc2", "s7")
    );
    let c = s7(&plan, 0);
    assert_eq!((c.host.as_str(), c.port), ("10.0.0.6", 102));
    // Rack 0, slot 1 as a PG connection; our TSAP 0x0100.
    assert_eq!((c.local_tsap, c.remote_tsap), (0x0100, 0x0101));
    assert_eq!((c.pdu_size, c.merge_gap, c.max_items), (480, 4, 20));
    assert_eq!(c.timeout, Duration::from_secs(2));
    assert_eq!(c.request_delay, Duration::ZERO);
    assert_eq!(c.points.len(), 8, "the 3-element array is 3 points");
    let p = &c.points[0];
    assert_eq!(
        (p.var.address.area, p.var.address.db, p.var.address.byte),
        (Area::DataBlock, 1, 4)
    );
    assert_eq!(
        (p.var.ty, p.mode, p.poll),
        (DataType::Real, Mode::Read, Duration::from_millis(50))
    );
    assert_eq!(c.points[1].var.ty, DataType::Bool);
    assert_eq!(c.points[2].mode, Mode::Write);
    assert_eq!(c.points[3].var.ty, DataType::String { length: 20 });
    assert_eq!(c.points[4].poll, Duration::from_secs(1));
    let elements: Vec<(&str, u32)> = c.points[5..]
        .iter()
        .map(|p| (p.signal_name.as_str(), p.var.address.byte))
        .collect();
    assert_eq!(elements, [("t.0", 0), ("t.1", 4), ("t.2", 8)]);
    assert!(c.points[5..].iter().all(|p| p.var.count.is_none()));
    assert_eq!(plan.drivers[0].output_signals().len(), 1);
}

#[test]
fn tsaps_come_from_rack_slot_and_connection_or_are_given() {
    let src = with_drivers(
        "  - { name: a, type: s7, host: h, rack: 1, slot: 3, connection: op, points: [] }
  - { name: b, type: s7, host: h, remote_tsap: 0x0201, local_tsap: 0x1000, port: 1102, pdu_size: 240, points: [] }
",
    );
    let plan = compile(&src).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s7(&plan, 0).remote_tsap, 0x0223);
    let b = s7(&plan, 1);
    assert_eq!(
        (b.local_tsap, b.remote_tsap, b.port, b.pdu_size),
        (0x1000, 0x0201, 1102, 240)
    );
}

#[test]
fn every_bad_s7_setting_and_point_is_reported_at_once() {
    let src = with_drivers(
        "  - name: d
    type: s7
    host: 127.0.0.1
    rack: 9
    pdu_size: 100
    connection: pc
    points:
      - { signal: speed, address: DB1.DBQ4 }
      - { signal: speed, address: DB1.DBW4, type: real }
      - { signal: count, address: DB1.DBD4, type: real }
      - { signal: recipe, address: DB1.DBB0, type: string }
      - { signal: on, address: I0.0, mode: write }
      - { signal: nope, address: DB1.DBW0 }
      - { signal: x, address: DB1.DBB0, type: real, count: 2 }
      - { signal: speed, address: DB1.DBD0, mode: sometimes }
      - { signal: speed, address: DB1.DBD0, type: real, colour: red }
",
    );
    let errs = errors(&src);
    let got: Vec<(&str, usize)> = errs.iter().map(|d| (d.code, d.line)).collect();
    assert_eq!(
        got,
        [
            ("out-of-range", 15),
            ("out-of-range", 16),
            ("bad-value", 17),
            ("bad-value", 19),
            ("bad-value", 20),
            ("wrong-type", 21),
            ("bad-value", 22),
            ("bad-value", 23),
            ("unknown-signal", 24),
            ("unknown-signal", 25),
            ("bad-value", 26),
            ("unknown-key", 27),
        ],
        "{}",
        show(&errs)
    );
    let msg = |i: usize| errs[i].message.clone();
    assert!(msg(2).contains("did you mean `pg`?"), "{}", msg(2));
    assert!(msg(4).contains("double-word address"), "{}", msg(4));
    assert!(msg(5).contains("feeds a float signal"), "{}", msg(5));
    assert!(msg(6).contains("STRING needs `length`"), "{}", msg(6));
    assert!(msg(7).contains("inputs (I/E) are read-only"), "{}", msg(7));
    assert!(msg(9).contains("`x.0`, `x.1`"), "{}", msg(9));
    assert!(msg(9).contains("one signal per element"), "{}", msg(9));
}

#[test]
fn s7_rules_for_writers() {
    // remote_tsap replaces rack/slot: both is a contradiction.
    let src = with_drivers(
        "  - { name: a, type: s7, host: h, slot: 2, remote_tsap: 0x0102, points: [] }\n",
    );
    let d = one_error(&src, "bad-value", 12, 57);
    assert!(d.message.contains("give one"), "{d}");
    // Two write points on one bit.
    let src = with_drivers(
        "  - { name: a, type: s7, host: h, points: [{ signal: on, address: Q0.1, mode: write }, { signal: cmd, address: Q0.1, mode: write }] }\n",
    );
    let d = one_error(&src, "multiple-writers", 12, 5);
    assert!(d.message.contains("both write Q0.1"), "{d}");
    // A bit inside a byte another point writes whole.
    let src = with_drivers(
        "  - { name: a, type: s7, host: h, points: [{ signal: count, address: QB0, mode: write }, { signal: cmd, address: Q0.1, mode: write }] }\n",
    );
    one_error(&src, "multiple-writers", 12, 5);
    // Different bits of one byte are fine.
    let src = with_drivers(
        "  - { name: a, type: s7, host: h, points: [{ signal: on, address: Q0.0, mode: write }, { signal: cmd, address: Q0.1, mode: write }] }\n",
    );
    compile(&src).unwrap_or_else(|e| panic!("{e}"));
    // An S7 point reading into a signal another driver reads into.
    let src = with_drivers(
        "  - { name: a, type: s7, host: h, points: [{ signal: speed, address: MD0, type: real }] }
  - { name: b, type: s7, host: h, points: [{ signal: speed, address: MD4, type: real }] }
",
    );
    let d = one_error(&src, "multiple-writers", 13, 44);
    assert!(d.message.contains("already written by driver `a`"), "{d}");
}
