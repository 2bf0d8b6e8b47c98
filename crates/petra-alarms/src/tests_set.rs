//! The alarm set: per-task evaluation from the bus, actions by name, reload take-over.

use crate::*;
use petra_core::{
    BadReason, BusBuilder, MonoTime, Quality, SignalDef, SignalId, Timestamp, Value, ValueType,
};
use std::sync::Arc;

const T0: i64 = 1_796_396_400_000_000_000;

fn at(ms: u64) -> Now {
    Now::new(
        MonoTime::from_nanos(ms * 1_000_000),
        Timestamp::from_unix_nanos(T0 + ms as i64 * 1_000_000),
    )
}

/// Signals: 0 level (float), 1 running (bool), 2 stopped (bool, suppresses).
fn bus() -> Arc<petra_core::Bus> {
    BusBuilder::new(vec![
        SignalDef::new("level", ValueType::Float).with_initial(1.0),
        SignalDef::new("running", ValueType::Bool).with_initial(false),
        SignalDef::new("stopped", ValueType::Bool).with_initial(false),
    ])
    .unwrap()
    .build(Timestamp::from_unix_nanos(T0))
}

fn set() -> AlarmSet {
    let high = AlarmDef::new("level_high", SignalId::from_index(0), Condition::High(9.0));
    let mut run = AlarmDef::new(
        "running",
        SignalId::from_index(1),
        Condition::Equals(EqValue::Bool(true)),
    );
    run.suppress_by = Some(SignalId::from_index(2));
    AlarmSet::new(vec![high, run], &[0, 1]).unwrap()
}

fn write(bus: &petra_core::Bus, i: usize, v: impl Into<Value>) {
    bus.write(
        SignalId::from_index(i),
        v.into(),
        Quality::Good,
        Timestamp::from_unix_nanos(T0),
    )
    .unwrap();
}

#[test]
fn each_task_evaluates_only_its_own_alarms() {
    let (bus, mut s) = (bus(), set());
    write(&bus, 0, 9.5);
    write(&bus, 1, true);
    let mut out = Vec::new();
    assert_eq!(s.evaluate_task(1, &bus, at(10), &mut out), 1);
    assert_eq!(&*out[0].alarm, "running");
    assert_eq!(s.get("level_high").unwrap().state(), AlarmState::Normal);
    assert_eq!(s.evaluate_task(0, &bus, at(10), &mut out), 1);
    assert_eq!(&*out[1].alarm, "level_high");
    assert_eq!(out[1].to.state, AlarmState::ActiveUnacked);
    assert_eq!(out[1].value, Some(Value::Float(9.5)));
    // A task without alarms, and one the set never heard of, evaluate nothing.
    assert_eq!(s.evaluate_task(7, &bus, at(20), &mut out), 0);
}

#[test]
fn suppression_is_read_from_its_signal_and_a_bad_one_does_not_suppress() {
    let (bus, mut s) = (bus(), set());
    write(&bus, 2, true);
    let mut out = Vec::new();
    s.evaluate_all(&bus, at(10), &mut out);
    assert!(s.get("running").unwrap().is_suppressed());
    bus.set_quality(
        SignalId::from_index(2),
        Quality::Bad(BadReason::NotConnected),
        Timestamp::from_unix_nanos(T0),
    )
    .unwrap();
    s.evaluate_all(&bus, at(20), &mut out);
    assert!(!s.get("running").unwrap().is_suppressed());
    assert_eq!(out.last().unwrap().cause, Cause::Unsuppress);
}

#[test]
fn actions_by_name_and_unknown_names() {
    let (bus, mut s) = (bus(), set());
    write(&bus, 0, 10.0);
    s.evaluate_all(&bus, at(10), &mut Vec::new());
    let t = s.ack("level_high", at(20), "olga").unwrap();
    assert_eq!(t.to.state, AlarmState::ActiveAcked);
    assert!(matches!(
        s.ack("nope", at(20), "olga"),
        Err(AlarmError::UnknownAlarm { .. })
    ));
    assert!(matches!(
        s.ack("level_high", at(30), "olga"),
        Err(AlarmError::NothingToAcknowledge { .. })
    ));
}

#[test]
fn shelving_a_shelved_alarm_extends_it() {
    let mut s = set();
    let until = |ms: u64| at(ms).wall;
    let first = s
        .shelve("level_high", at(0), until(60_000), "olga", "sensor swap")
        .unwrap();
    assert_eq!(first.len(), 1);
    let again = s
        .shelve("level_high", at(1000), until(120_000), "olga", "longer")
        .unwrap();
    assert_eq!(
        again.iter().map(|t| t.cause).collect::<Vec<_>>(),
        [Cause::Unshelve, Cause::Shelve]
    );
    assert_eq!(
        s.get("level_high").unwrap().shelving().unwrap().until,
        until(120_000)
    );
    assert!(matches!(
        s.shelve("level_high", at(2000), until(1000), "olga", "past"),
        Err(AlarmError::ShelveNotInFuture { .. })
    ));
}

#[test]
fn snapshots_hold_only_the_alarms_not_at_rest_and_restore_from_them() {
    let (bus, mut s) = (bus(), set());
    s.evaluate_all(&bus, at(10), &mut Vec::new());
    assert!(s.snapshots().is_empty(), "both at rest: nothing to save");

    write(&bus, 0, 10.0);
    s.evaluate_all(&bus, at(20), &mut Vec::new());
    s.shelve("running", at(30), at(60_000).wall, "olga", "maintenance")
        .unwrap();
    let snaps = s.snapshots();
    let names: Vec<&str> = snaps.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["level_high", "running"]);

    // A fresh set restored from them is the same; an alarm not in them stays at rest.
    let mut fresh = set();
    assert!(fresh.restore(&snaps[..1]).is_empty());
    assert_eq!(
        fresh.get("level_high").unwrap().state(),
        AlarmState::ActiveUnacked
    );
    assert!(!fresh.get("running").unwrap().status().shelved);
    fresh.restore(&snaps);
    assert!(fresh.get("running").unwrap().status().shelved);

    // Back to rest: gone from the snapshots again.
    s.unshelve("running", at(40), "olga").unwrap();
    write(&bus, 0, 1.0);
    s.evaluate_all(&bus, at(50), &mut Vec::new());
    s.ack("level_high", at(60), "olga").unwrap();
    assert_eq!(s.get("level_high").unwrap().state(), AlarmState::Normal);
    assert!(s.snapshots().is_empty());
}

#[test]
fn restore_reports_alarms_that_no_longer_exist() {
    let (bus, mut s) = (bus(), set());
    write(&bus, 0, 10.0);
    s.evaluate_all(&bus, at(10), &mut Vec::new());
    let mut snaps = s.snapshots();
    snaps.push(AlarmSnapshot {
        name: "gone".into(),
        ..snaps[0].clone()
    });
    let mut fresh = set();
    assert_eq!(fresh.restore(&snaps), ["gone"]);
    assert_eq!(
        fresh.get("level_high").unwrap().state(),
        AlarmState::ActiveUnacked
    );
}

#[test]
fn take_over_keeps_state_of_alarms_of_the_same_name_only() {
    let (bus, mut old) = (bus(), set());
    write(&bus, 0, 10.0);
    old.evaluate_all(&bus, at(10), &mut Vec::new());
    old.ack("level_high", at(20), "olga").unwrap();
    // The new configuration moved the alarm to another task and added one.
    let defs = vec![
        AlarmDef::new("level_high", SignalId::from_index(0), Condition::High(8.0)),
        AlarmDef::new("level_low", SignalId::from_index(0), Condition::Low(2.0)),
    ];
    let mut new = AlarmSet::new(defs, &[2, 0]).unwrap();
    new.take_over(&old);
    let a = new.get("level_high").unwrap();
    assert_eq!(a.state(), AlarmState::ActiveAcked);
    assert_eq!(a.acked().unwrap().1, "olga");
    assert_eq!(new.get("level_low").unwrap().state(), AlarmState::Normal);
    // And it is now evaluated after task 2.
    write(&bus, 0, 1.0);
    let mut out = Vec::new();
    assert_eq!(new.evaluate_task(2, &bus, at(30), &mut out), 1);
    assert_eq!(out[0].to.state, AlarmState::Normal);
}

#[test]
fn duplicate_names_are_refused() {
    let d = AlarmDef::new("x", SignalId::from_index(0), Condition::High(1.0));
    let err = AlarmSet::new(vec![d.clone(), d], &[0, 0]).unwrap_err();
    assert!(err.to_string().contains("unique"), "{err}");
}

#[test]
fn off_scan_alarms_are_evaluated_only_on_request() {
    let (bus, _) = (bus(), ());
    let sys = AlarmDef::new(
        "petra.x",
        SignalId::from_index(u32::MAX as usize),
        Condition::Equals(EqValue::Bool(true)),
    );
    let high = AlarmDef::new("level_high", SignalId::from_index(0), Condition::High(0.5));
    let mut s = AlarmSet::new(vec![sys, high], &[OFF_SCAN, 0]).unwrap();
    let mut out = Vec::new();
    assert_eq!(s.evaluate_all(&bus, at(10), &mut out), 1);
    assert_eq!(&*out[0].alarm, "level_high");
    let n = s
        .evaluate_one(
            "petra.x",
            &Value::Bool(true),
            Quality::Good,
            at(20),
            &mut out,
        )
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(s.get("petra.x").unwrap().state(), AlarmState::ActiveUnacked);
}
