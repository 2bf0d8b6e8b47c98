//! One test per transition and per decision in the crate docs.

use crate::*;
use petra_core::{BadReason, MonoTime, Quality, SignalId, Timestamp, Value};
use std::time::Duration;

/// 2026-12-04T15:00:00Z, the origin of every test's wall clock.
const T0: i64 = 1_796_396_400_000_000_000;
const BAD: Quality = Quality::Bad(BadReason::Timeout);

fn at(ms: u64) -> Now {
    Now::new(MonoTime::from_nanos(ms * 1_000_000), wall(ms))
}

fn wall(ms: u64) -> Timestamp {
    Timestamp::from_unix_nanos(T0 + ms as i64 * 1_000_000)
}

fn def(condition: Condition) -> AlarmDef {
    AlarmDef::new("tank_high", SignalId::from_index(0), condition)
}

fn alarm(d: AlarmDef) -> Alarm {
    Alarm::new(d).unwrap()
}

/// One evaluation; returns its transitions.
fn eval(a: &mut Alarm, v: &Value, q: Quality, suppressed: bool, now: Now) -> Vec<Transition> {
    let mut out = Vec::new();
    let n = a.evaluate(v, q, suppressed, now, &mut out);
    assert_eq!(n, out.len());
    out
}

/// Feeds a good value with no suppression; returns the transitions.
fn feed(a: &mut Alarm, ms: u64, v: impl Into<Value>) -> Vec<Transition> {
    eval(a, &v.into(), Quality::Good, false, at(ms))
}

/// Feeds a good value and expects exactly one transition, to `to`, caused by `cause`.
fn expect(a: &mut Alarm, ms: u64, v: impl Into<Value>, cause: Cause, to: AlarmState) -> Transition {
    let ts = feed(a, ms, v);
    assert_eq!(
        ts.len(),
        1,
        "at {ms} ms expected one transition, got {ts:#?}"
    );
    let t = ts.into_iter().next().unwrap();
    assert_eq!((t.cause, t.to.state), (cause, to), "at {ms} ms: {t:#?}");
    assert_eq!(t.at, wall(ms));
    assert_ne!(t.from, t.to);
    t
}

fn quiet(a: &mut Alarm, ms: u64, v: impl Into<Value>) {
    let ts = feed(a, ms, v);
    assert!(
        ts.is_empty(),
        "at {ms} ms expected no transition, got {ts:#?}"
    );
}

/// tank_high as in the spec: high 9.0, deadband 0.2, on 5 s, off 2 s.
fn tank_high() -> Alarm {
    let mut d = def(Condition::High(9.0));
    d.deadband = 0.2;
    d.on_delay = Duration::from_secs(5);
    d.off_delay = Duration::from_secs(2);
    d.priority = Priority::High;
    alarm(d)
}

/// An immediate high alarm (no delays, no deadband) brought to active_unacked at 0 ms.
fn active(latch: bool) -> Alarm {
    let mut d = def(Condition::High(9.0));
    d.latch = latch;
    let mut a = alarm(d);
    expect(&mut a, 0, 10.0, Cause::Condition, AlarmState::ActiveUnacked);
    a
}

// --- the four ISA-18.2 states -------------------------------------------------------------------

#[test]
fn normal_to_active_unacked_only_after_the_on_delay() {
    let mut a = tank_high();
    quiet(&mut a, 0, 9.5);
    quiet(&mut a, 1_000, 9.6);
    quiet(&mut a, 4_999, 9.5);
    let t = expect(
        &mut a,
        5_000,
        9.7,
        Cause::Condition,
        AlarmState::ActiveUnacked,
    );
    assert_eq!(t.from.state, AlarmState::Normal);
    assert_eq!(t.value, Some(Value::Float(9.7)));
    assert_eq!(t.priority, Priority::High);
    assert_eq!(&*t.alarm, "tank_high");
    assert_eq!(a.activated_at(), Some(wall(5_000)));
    assert!(t.to.annunciated());
}

#[test]
fn on_delay_restarts_when_the_condition_drops_out() {
    let mut a = tank_high();
    quiet(&mut a, 0, 9.5);
    quiet(&mut a, 4_000, 8.0); // below limit − deadband: the condition is interrupted
    quiet(&mut a, 4_100, 9.5);
    quiet(&mut a, 9_000, 9.5); // 4.9 s since the restart
    expect(
        &mut a,
        9_100,
        9.5,
        Cause::Condition,
        AlarmState::ActiveUnacked,
    );
}

#[test]
fn ack_takes_active_unacked_to_active_acked() {
    let mut a = active(false);
    let t = a.ack(at(100), "alice").unwrap();
    assert_eq!(
        (t.from.state, t.to.state, t.cause),
        (
            AlarmState::ActiveUnacked,
            AlarmState::ActiveAcked,
            Cause::Ack
        )
    );
    assert_eq!(t.user.as_deref(), Some("alice"));
    assert_eq!(t.at, wall(100));
    assert_eq!(t.value, Some(Value::Float(10.0)));
    assert_eq!(a.acked(), Some((wall(100), "alice")));
    // A second ack has nothing to acknowledge and changes nothing.
    let err = a.ack(at(200), "bob").unwrap_err();
    assert!(matches!(
        err,
        AlarmError::NothingToAcknowledge {
            state: AlarmState::ActiveAcked,
            ..
        }
    ));
    assert_eq!(a.acked(), Some((wall(100), "alice")));
}

#[test]
fn active_acked_returns_to_normal_only_below_the_deadband_and_after_the_off_delay() {
    let mut a = tank_high();
    quiet(&mut a, 0, 9.5);
    expect(
        &mut a,
        5_000,
        9.5,
        Cause::Condition,
        AlarmState::ActiveUnacked,
    );
    a.ack(at(5_100), "alice").unwrap();
    // Below the limit but inside the deadband: still in alarm, however long.
    quiet(&mut a, 6_000, 8.9);
    quiet(&mut a, 60_000, 8.81);
    // Below limit − deadband: the off delay starts...
    quiet(&mut a, 61_000, 8.7);
    quiet(&mut a, 62_999, 8.7);
    let t = expect(&mut a, 63_000, 8.7, Cause::Clear, AlarmState::Normal);
    assert_eq!(t.from.state, AlarmState::ActiveAcked);
    assert!(!t.to.annunciated());
}

#[test]
fn off_delay_restarts_when_the_condition_comes_back() {
    let mut a = tank_high();
    quiet(&mut a, 0, 9.5);
    expect(
        &mut a,
        5_000,
        9.5,
        Cause::Condition,
        AlarmState::ActiveUnacked,
    );
    quiet(&mut a, 6_000, 8.0);
    quiet(&mut a, 7_000, 9.5); // back in alarm before 2 s clear
    quiet(&mut a, 7_500, 8.0);
    quiet(&mut a, 9_400, 8.0);
    expect(&mut a, 9_500, 8.0, Cause::Clear, AlarmState::RtnUnacked);
}

#[test]
fn active_unacked_goes_to_rtn_unacked_when_the_condition_clears_before_the_ack() {
    let mut a = active(false);
    let t = expect(&mut a, 100, 5.0, Cause::Clear, AlarmState::RtnUnacked);
    assert_eq!(t.from.state, AlarmState::ActiveUnacked);
    assert!(
        t.to.annunciated(),
        "an unacknowledged return is still shown"
    );
}

#[test]
fn rtn_unacked_goes_to_normal_by_ack() {
    let mut a = active(false);
    expect(&mut a, 100, 5.0, Cause::Clear, AlarmState::RtnUnacked);
    let t = a.ack(at(200), "alice").unwrap();
    assert_eq!(
        (t.from.state, t.to.state),
        (AlarmState::RtnUnacked, AlarmState::Normal)
    );
    assert!(matches!(
        a.ack(at(300), "alice"),
        Err(AlarmError::NothingToAcknowledge {
            state: AlarmState::Normal,
            ..
        })
    ));
}

#[test]
fn rtn_unacked_goes_back_to_active_unacked_when_the_condition_returns() {
    let mut a = active(false);
    expect(&mut a, 100, 5.0, Cause::Clear, AlarmState::RtnUnacked);
    expect(
        &mut a,
        200,
        10.0,
        Cause::Condition,
        AlarmState::ActiveUnacked,
    );
}

#[test]
fn a_new_activation_needs_a_new_ack() {
    let mut a = active(false);
    a.ack(at(50), "alice").unwrap();
    expect(&mut a, 100, 5.0, Cause::Clear, AlarmState::Normal);
    expect(
        &mut a,
        200,
        10.0,
        Cause::Condition,
        AlarmState::ActiveUnacked,
    );
    assert_eq!(a.acked(), None);
    assert_eq!(a.activated_at(), Some(wall(200)));
}

// --- latching -----------------------------------------------------------------------------------

#[test]
fn latch_keeps_an_unacked_alarm_active_until_acked_after_the_return() {
    let mut a = active(true);
    quiet(&mut a, 100, 5.0); // cleared, but latched: no rtn_unacked
    assert_eq!(a.state(), AlarmState::ActiveUnacked);
    assert!(!a.condition_active());
    quiet(&mut a, 10_000, 5.0);
    let t = a.ack(at(10_100), "alice").unwrap();
    assert_eq!(
        (t.from.state, t.to.state),
        (AlarmState::ActiveUnacked, AlarmState::Normal)
    );
}

#[test]
fn latch_acked_before_the_return_needs_a_reset_after_it() {
    let mut a = active(true);
    a.ack(at(50), "alice").unwrap();
    assert!(matches!(
        a.reset(at(60), "alice"),
        Err(AlarmError::ConditionStillActive { .. })
    ));
    quiet(&mut a, 100, 5.0);
    assert_eq!(a.state(), AlarmState::ActiveAcked);
    assert!(matches!(
        a.ack(at(110), "alice"),
        Err(AlarmError::NothingToAcknowledge { .. })
    ));
    let t = a.reset(at(120), "bob").unwrap();
    assert_eq!(
        (t.from.state, t.to.state, t.cause),
        (AlarmState::ActiveAcked, AlarmState::Normal, Cause::Reset)
    );
    assert_eq!(t.user.as_deref(), Some("bob"));
    assert!(matches!(
        a.reset(at(130), "bob"),
        Err(AlarmError::NothingToReset {
            state: AlarmState::Normal,
            ..
        })
    ));
}

#[test]
fn latch_reset_of_an_unacked_return_also_acknowledges_it() {
    let mut a = active(true);
    quiet(&mut a, 100, 5.0);
    let t = a.reset(at(200), "bob").unwrap();
    assert_eq!(t.to.state, AlarmState::Normal);
    assert_eq!(a.acked(), Some((wall(200), "bob")));
}

#[test]
fn latched_alarm_whose_condition_returns_stays_as_it_was() {
    let mut a = active(true);
    quiet(&mut a, 100, 5.0);
    quiet(&mut a, 200, 10.0);
    assert_eq!(a.state(), AlarmState::ActiveUnacked);
    // And an ack now is an ack while active: to active_acked, not normal.
    assert_eq!(
        a.ack(at(300), "a").unwrap().to.state,
        AlarmState::ActiveAcked
    );
}

#[test]
fn reset_is_refused_for_a_non_latching_alarm() {
    let mut a = active(false);
    assert!(matches!(
        a.reset(at(100), "bob"),
        Err(AlarmError::NotLatching { .. })
    ));
    assert_eq!(a.state(), AlarmState::ActiveUnacked);
}

// --- shelving -----------------------------------------------------------------------------------

#[test]
fn shelve_hides_and_expiry_reveals_an_activation_that_happened_meanwhile() {
    let mut a = alarm(def(Condition::High(9.0)));
    quiet(&mut a, 0, 5.0);
    let t = a
        .shelve(at(100), wall(60_000), "alice", "sensor fouled")
        .unwrap();
    assert_eq!(t.cause, Cause::Shelve);
    assert!(t.to.shelved && !t.from.shelved);
    assert_eq!(t.reason.as_deref(), Some("sensor fouled"));
    assert_eq!(a.shelving().unwrap().until, wall(60_000));

    let t = expect(
        &mut a,
        1_000,
        10.0,
        Cause::Condition,
        AlarmState::ActiveUnacked,
    );
    assert!(
        t.to.shelved && !t.to.annunciated(),
        "tracked but not annunciated"
    );

    quiet(&mut a, 59_999, 10.0);
    let t = expect(
        &mut a,
        60_000,
        10.0,
        Cause::ShelveExpired,
        AlarmState::ActiveUnacked,
    );
    assert!(!t.to.shelved && t.to.annunciated());
    assert_eq!(t.user, None);
    assert!(a.shelving().is_none());
}

#[test]
fn an_alarm_that_clears_while_shelved_comes_back_normal() {
    let mut a = active(false);
    a.shelve(at(100), wall(60_000), "alice", "").unwrap();
    let t = expect(&mut a, 200, 5.0, Cause::Clear, AlarmState::Normal);
    assert_eq!(t.from.state, AlarmState::ActiveUnacked);
    let t = a.unshelve(at(300), "alice").unwrap();
    assert_eq!(
        (t.cause, t.from.state, t.to.state, t.to.shelved),
        (
            Cause::Unshelve,
            AlarmState::Normal,
            AlarmState::Normal,
            false
        )
    );
}

#[test]
fn shelving_an_rtn_unacked_or_latched_return_drops_the_pending_acknowledgement() {
    let mut a = active(false);
    expect(&mut a, 100, 5.0, Cause::Clear, AlarmState::RtnUnacked);
    let t = a.shelve(at(200), wall(1_000), "alice", "").unwrap();
    assert_eq!(
        (t.from.state, t.to.state),
        (AlarmState::RtnUnacked, AlarmState::Normal)
    );

    let mut l = active(true);
    quiet(&mut l, 100, 5.0);
    let t = l.shelve(at(200), wall(1_000), "alice", "").unwrap();
    assert_eq!(
        (t.from.state, t.to.state),
        (AlarmState::ActiveUnacked, AlarmState::Normal)
    );
}

#[test]
fn an_acked_alarm_still_active_at_unshelve_stays_acked() {
    let mut a = active(false);
    a.ack(at(50), "alice").unwrap();
    a.shelve(at(100), wall(1_000), "alice", "").unwrap();
    quiet(&mut a, 500, 10.0);
    let t = expect(
        &mut a,
        1_000,
        10.0,
        Cause::ShelveExpired,
        AlarmState::ActiveAcked,
    );
    assert!(t.to.annunciated());
}

#[test]
fn refused_shelve_actions_change_nothing() {
    let mut a = active(false);
    assert!(matches!(
        a.unshelve(at(10), "alice"),
        Err(AlarmError::NotShelved { .. })
    ));
    assert!(matches!(
        a.shelve(at(10), wall(10), "alice", ""),
        Err(AlarmError::ShelveNotInFuture { .. })
    ));
    a.shelve(at(10), wall(1_000), "alice", "").unwrap();
    let before = a.status();
    let err = a.shelve(at(20), wall(5_000), "bob", "").unwrap_err();
    assert_eq!(
        err,
        AlarmError::AlreadyShelved {
            alarm: "tank_high".into(),
            until: wall(1_000)
        }
    );
    assert_eq!(a.status(), before);
    assert_eq!(a.shelving().unwrap().until, wall(1_000));
    assert!(err.to_string().contains("unshelve it first"));
}

#[test]
fn expiry_and_activation_in_the_same_scan_are_two_ordered_transitions() {
    let mut a = alarm(def(Condition::High(9.0)));
    a.shelve(at(0), wall(1_000), "alice", "").unwrap();
    let ts = feed(&mut a, 1_000, 10.0);
    let causes: Vec<Cause> = ts.iter().map(|t| t.cause).collect();
    assert_eq!(causes, [Cause::ShelveExpired, Cause::Condition]);
    assert_eq!(ts[0].to, ts[1].from);
    assert!(ts[1].to.annunciated());
}

// --- suppression and out of service -------------------------------------------------------------

#[test]
fn suppression_hides_the_alarm_while_its_signal_is_true() {
    let mut a = alarm(def(Condition::High(9.0)));
    let ts: Vec<_> = eval(&mut a, &Value::Float(5.0), Quality::Good, true, at(0));
    assert_eq!(ts.len(), 1);
    assert_eq!(ts[0].cause, Cause::Suppress);
    assert!(ts[0].to.suppressed);

    let ts: Vec<_> = eval(&mut a, &Value::Float(10.0), Quality::Good, true, at(100));
    assert_eq!(ts[0].to.state, AlarmState::ActiveUnacked);
    assert!(!ts[0].to.annunciated());

    // Nothing while it stays suppressed.
    assert!(eval(&mut a, &Value::Float(10.0), Quality::Good, true, at(200)).is_empty());

    let ts: Vec<_> = eval(&mut a, &Value::Float(10.0), Quality::Good, false, at(300));
    assert_eq!(ts.len(), 1);
    assert_eq!(ts[0].cause, Cause::Unsuppress);
    assert!(ts[0].to.annunciated());
    assert_eq!(ts[0].to.state, AlarmState::ActiveUnacked);
}

#[test]
fn suppression_signal_counts_only_when_true_and_usable() {
    assert!(suppression_active(&Value::Bool(true), Quality::Good));
    assert!(suppression_active(&Value::Bool(true), Quality::Uncertain));
    assert!(!suppression_active(&Value::Bool(true), BAD));
    assert!(!suppression_active(&Value::Bool(false), Quality::Good));
    assert!(!suppression_active(&Value::Int(1), Quality::Good));
}

#[test]
fn out_of_service_hides_and_returns_the_alarm_in_its_current_state() {
    let mut a = active(false);
    let t = a.set_out_of_service(at(100), true, "eve").unwrap();
    assert_eq!(t.cause, Cause::OutOfService);
    assert!(t.to.out_of_service && !t.to.annunciated());
    assert!(matches!(
        a.set_out_of_service(at(150), true, "eve"),
        Err(AlarmError::OutOfServiceUnchanged {
            out_of_service: true,
            ..
        })
    ));
    expect(&mut a, 200, 5.0, Cause::Clear, AlarmState::Normal);
    let t = a.set_out_of_service(at(300), false, "eve").unwrap();
    assert_eq!(t.cause, Cause::InService);
    assert_eq!(t.to.state, AlarmState::Normal);
    assert!(!t.to.out_of_service);
}

#[test]
fn overlays_combine_and_the_alarm_is_revealed_only_when_all_are_gone() {
    let mut a = active(false);
    a.shelve(at(10), wall(10_000), "alice", "").unwrap();
    a.set_out_of_service(at(20), true, "eve").unwrap();
    let t = a.unshelve(at(30), "alice").unwrap();
    assert!(t.to.hidden());
    let t = a.set_out_of_service(at(40), false, "eve").unwrap();
    assert!(!t.to.hidden());
    assert_eq!(t.to.state, AlarmState::ActiveUnacked);
}

// --- delays, deadband, conditions ---------------------------------------------------------------

#[test]
fn on_and_off_delays_filter_a_chattering_signal() {
    // The signal crosses the limit every second.
    let chatter = |a: &mut Alarm, kpis: &mut Kpis| {
        for k in 0..60u64 {
            let v = if k % 2 == 0 { 10.0 } else { 5.0 };
            for t in feed(a, k * 1_000, v) {
                kpis.record(&t);
            }
        }
    };
    let mut raw = alarm(def(Condition::High(9.0)));
    let mut kpis = Kpis::default();
    chatter(&mut raw, &mut kpis);
    assert!(kpis.is_chattering("tank_high", wall(59_000)));

    let mut d = def(Condition::High(9.0));
    d.on_delay = Duration::from_secs(3);
    let mut delayed = alarm(d);
    let mut kpis = Kpis::default();
    chatter(&mut delayed, &mut kpis);
    assert_eq!(delayed.state(), AlarmState::Normal);
    assert!(!kpis.is_chattering("tank_high", wall(59_000)));

    // An off delay keeps an active alarm from flickering back to normal.
    let mut d = def(Condition::High(9.0));
    d.off_delay = Duration::from_secs(3);
    let mut held = alarm(d);
    let mut kpis = Kpis::default();
    chatter(&mut held, &mut kpis);
    assert_eq!(held.state(), AlarmState::ActiveUnacked);
    assert_eq!(kpis.rate_per_10min(wall(59_000)), 1);
}

#[test]
fn deadband_prevents_chatter_around_the_limit() {
    let mut d = def(Condition::High(9.0));
    d.deadband = 0.2;
    let mut a = alarm(d);
    expect(&mut a, 0, 9.05, Cause::Condition, AlarmState::ActiveUnacked);
    for k in 1..50u64 {
        quiet(&mut a, k * 100, if k % 2 == 0 { 9.05 } else { 8.85 });
    }
    expect(&mut a, 5_000, 8.79, Cause::Clear, AlarmState::RtnUnacked);
    // Without a deadband the same signal clears and re-alarms every time.
    let mut b = alarm(def(Condition::High(9.0)));
    let n: usize = (0..50u64)
        .map(|k| feed(&mut b, k * 100, if k % 2 == 0 { 9.05 } else { 8.85 }).len())
        .sum();
    assert_eq!(n, 50);
}

#[test]
fn the_limit_itself_is_not_above_the_limit() {
    let mut a = alarm(def(Condition::High(9.0)));
    quiet(&mut a, 0, 9.0);
    expect(
        &mut a,
        1,
        9.000001,
        Cause::Condition,
        AlarmState::ActiveUnacked,
    );
    quiet(&mut a, 2, 9.0); // with no deadband, clears strictly below the limit
    expect(&mut a, 3, 8.99, Cause::Clear, AlarmState::RtnUnacked);
}

#[test]
fn low_conditions_mirror_high_ones() {
    let mut d = def(Condition::LowLow(1.0));
    d.deadband = 0.5;
    d.on_delay = Duration::from_secs(1);
    let mut a = alarm(d);
    quiet(&mut a, 0, 0.5);
    expect(
        &mut a,
        1_000,
        0.5,
        Cause::Condition,
        AlarmState::ActiveUnacked,
    );
    quiet(&mut a, 2_000, 1.4); // above the limit, inside the deadband
    expect(&mut a, 3_000, 1.6, Cause::Clear, AlarmState::RtnUnacked);
}

#[test]
fn int_signals_work_with_limits() {
    let mut a = alarm(def(Condition::HighHigh(100.0)));
    quiet(&mut a, 0, 100i64);
    expect(
        &mut a,
        1,
        101i64,
        Cause::Condition,
        AlarmState::ActiveUnacked,
    );
}

#[test]
fn equals_bool() {
    let mut a = alarm(def(Condition::Equals(EqValue::Bool(true))));
    quiet(&mut a, 0, false);
    expect(&mut a, 1, true, Cause::Condition, AlarmState::ActiveUnacked);
    expect(&mut a, 2, false, Cause::Clear, AlarmState::RtnUnacked);
}

#[test]
fn equals_int_ignores_the_deadband_and_values_of_another_type() {
    let mut d = def(Condition::Equals(EqValue::Int(3)));
    d.deadband = 10.0;
    let mut a = alarm(d);
    quiet(&mut a, 0, 2i64);
    expect(&mut a, 1, 3i64, Cause::Condition, AlarmState::ActiveUnacked);
    quiet(&mut a, 2, 3.5); // a float cannot decide an int equality: held
    quiet(&mut a, 3, true);
    expect(&mut a, 4, 4i64, Cause::Clear, AlarmState::RtnUnacked);
}

#[test]
fn bad_quality_condition_alarms_on_a_bad_signal() {
    let mut d = def(Condition::BadQuality);
    d.on_delay = Duration::from_secs(2);
    let mut a = alarm(d);
    let mut ev = |ms, q| -> Vec<Transition> { eval(&mut a, &Value::Float(0.0), q, false, at(ms)) };
    assert!(ev(0, Quality::Uncertain).is_empty());
    assert!(ev(100, BAD).is_empty());
    assert!(ev(2_099, BAD).is_empty());
    let t = ev(2_100, BAD);
    assert_eq!(t[0].to.state, AlarmState::ActiveUnacked);
    assert_eq!(ev(2_200, Quality::Good)[0].to.state, AlarmState::RtnUnacked);
}

#[test]
fn a_value_condition_on_bad_data_holds_and_restarts_its_delay() {
    let mut d = def(Condition::High(9.0));
    d.on_delay = Duration::from_secs(5);
    let mut a = alarm(d);
    let mut ev =
        |ms, v: f64, q| -> Vec<Transition> { eval(&mut a, &Value::Float(v), q, false, at(ms)) };
    assert!(ev(0, 10.0, Quality::Good).is_empty());
    assert!(ev(4_000, 10.0, BAD).is_empty()); // not trusted: the delay starts again
    assert!(ev(5_000, 10.0, Quality::Good).is_empty());
    assert!(ev(9_999, 10.0, Quality::Good).is_empty());
    assert_eq!(
        ev(10_000, 10.0, Quality::Good)[0].to.state,
        AlarmState::ActiveUnacked
    );
    // An active alarm does not clear on a bad value, nor on NaN.
    assert!(ev(10_100, 0.0, BAD).is_empty());
    assert!(ev(10_200, f64::NAN, Quality::Good).is_empty());
    assert!(ev(10_300, 10.0, Quality::Uncertain).is_empty());
    assert_eq!(
        ev(10_400, 0.0, Quality::Uncertain)[0].to.state,
        AlarmState::RtnUnacked
    );
}

#[test]
fn a_string_value_never_decides_a_limit() {
    let mut a = alarm(def(Condition::Low(1.0)));
    quiet(&mut a, 0, "0");
    assert_eq!(a.last_value(), Some(&Value::from("0")));
    assert_eq!(a.state(), AlarmState::Normal);
}

#[test]
fn definitions_that_cannot_work_are_refused() {
    for d in [
        def(Condition::High(f64::NAN)),
        def(Condition::Low(f64::INFINITY)),
        AlarmDef {
            deadband: -0.1,
            ..def(Condition::High(1.0))
        },
        AlarmDef {
            deadband: f64::NAN,
            ..def(Condition::High(1.0))
        },
        AlarmDef::new("", SignalId::from_index(0), Condition::BadQuality),
    ] {
        assert!(matches!(
            Alarm::new(d),
            Err(AlarmError::InvalidDefinition { .. })
        ));
    }
}

// --- messages -----------------------------------------------------------------------------------

#[test]
fn messages_fill_known_placeholders_and_keep_the_rest() {
    let v = Value::Float(9.3);
    let args = MessageArgs {
        name: "tank_high",
        value: Some(&v),
        unit: "m",
        priority: Priority::High,
        state: AlarmState::ActiveUnacked,
        time: Some(wall(1_500)),
    };
    assert_eq!(
        render_message("Tank level high: {value} {unit}", &args),
        "Tank level high: 9.3 m"
    );
    assert_eq!(
        render_message("{name} {priority} {state} at {time}", &args),
        "tank_high high active_unacked at 2026-12-04T15:00:01.500Z"
    );
    assert_eq!(
        render_message("{nope} {{value}} {value", &args),
        "{nope} {9.3} {value"
    );
    assert_eq!(render_message("", &args), "");
    let s = Value::from("open");
    let none = MessageArgs {
        value: Some(&s),
        time: None,
        ..args
    };
    assert_eq!(render_message("{value} {time}", &none), "open ?");
}

#[test]
fn float_values_read_as_an_operator_would() {
    let render = |f: f64| {
        let v = Value::Float(f);
        let args = MessageArgs {
            name: "x",
            value: Some(&v),
            unit: "",
            priority: Priority::Low,
            state: AlarmState::Normal,
            time: None,
        };
        render_message("{value}", &args)
    };
    assert_eq!(render(9.319999999999995), "9.32");
    assert_eq!(render(10.0), "10");
    assert_eq!(render(-0.0004), "0");
    assert_eq!(render(-2.5), "-2.5");
    assert_eq!(render(1234.5678), "1234.568");
    assert_eq!(render(f64::INFINITY), "inf");
}

#[test]
fn the_alarm_renders_its_own_message() {
    let mut d = def(Condition::High(9.0));
    d.message = "Tank level high: {value} {unit} ({state})".into();
    let mut a = alarm(d);
    assert_eq!(a.message("m"), "Tank level high: ? m (normal)");
    feed(&mut a, 0, 9.5);
    assert_eq!(a.message("m"), "Tank level high: 9.5 m (active_unacked)");
}

// --- persistence --------------------------------------------------------------------------------

#[test]
fn snapshot_round_trips_through_json_and_restores_the_state() {
    let mut a = tank_high();
    quiet(&mut a, 0, 9.5);
    expect(
        &mut a,
        5_000,
        9.5,
        Cause::Condition,
        AlarmState::ActiveUnacked,
    );
    a.ack(at(6_000), "alice").unwrap();
    a.shelve(at(7_000), wall(3_600_000), "alice", "work permit 42")
        .unwrap();
    a.set_out_of_service(at(8_000), true, "eve").unwrap();
    let json = serde_json::to_string(&a.snapshot()).unwrap();
    assert!(json.contains(r#""state":"active_acked""#), "{json}");

    let snap: AlarmSnapshot = serde_json::from_str(&json).unwrap();
    let mut b = tank_high();
    b.restore(&snap).unwrap();
    assert_eq!(b.status(), a.status());
    assert_eq!(b.snapshot(), a.snapshot());
    assert_eq!(b.acked(), Some((wall(6_000), "alice")));
    assert_eq!(&*b.shelving().unwrap().reason, "work permit 42");
    assert!(b.condition_active());

    // After the restart the condition is re-evaluated with a fresh off delay (mono time starts
    // again at 0 in the new process).
    b.set_out_of_service(at(0), false, "eve").unwrap();
    assert!(feed(&mut b, 0, 5.0).is_empty());
    let ts = feed(&mut b, 2_000, 5.0);
    assert_eq!(ts[0].to.state, AlarmState::Normal);
    assert!(ts[0].to.shelved);
}

#[test]
fn a_restored_shelve_that_expired_during_the_downtime_is_lifted_on_the_first_scan() {
    let mut a = active(false);
    a.shelve(at(0), wall(1_000), "alice", "").unwrap();
    let snap = a.snapshot();
    let mut b = active(false);
    b.restore(&snap).unwrap();
    let ts = feed(&mut b, 5_000, 10.0);
    assert_eq!(ts[0].cause, Cause::ShelveExpired);
    assert!(ts[0].to.annunciated());
}

#[test]
fn restore_refuses_another_alarms_snapshot_and_fills_missing_fields() {
    let mut snap: AlarmSnapshot =
        serde_json::from_str(r#"{"name":"other","state":"rtn_unacked"}"#).unwrap();
    let mut a = alarm(def(Condition::High(9.0)));
    assert!(matches!(
        a.restore(&snap),
        Err(AlarmError::SnapshotMismatch { .. })
    ));
    assert_eq!(a.state(), AlarmState::Normal);
    snap.name = "tank_high".into();
    a.restore(&snap).unwrap();
    assert_eq!(a.state(), AlarmState::RtnUnacked);
    // A hidden rtn_unacked cannot exist here; restoring one settles it.
    snap.out_of_service = true;
    a.restore(&snap).unwrap();
    assert_eq!(a.state(), AlarmState::Normal);
}

// --- KPIs ---------------------------------------------------------------------------------------

/// Activates and clears `a` at `ms`, recording both transitions.
fn pulse(kpis: &mut Kpis, a: &mut Alarm, ms: u64) {
    for t in feed(a, ms, 10.0).into_iter().chain(feed(a, ms + 1, 0.0)) {
        kpis.record(&t);
    }
}

#[test]
fn flood_is_more_than_ten_activations_in_ten_minutes() {
    let mut kpis = Kpis::default();
    let mut alarms: Vec<Alarm> = (0..11)
        .map(|i| {
            alarm(AlarmDef::new(
                format!("a{i}"),
                SignalId::from_index(i),
                Condition::High(9.0),
            ))
        })
        .collect();
    for (i, a) in alarms.iter_mut().enumerate().take(10) {
        pulse(&mut kpis, a, i as u64 * 10_000);
    }
    assert_eq!(kpis.rate_per_10min(wall(100_000)), 10);
    assert!(!kpis.is_flood(wall(100_000)));
    pulse(&mut kpis, &mut alarms[10], 100_000);
    assert!(kpis.is_flood(wall(100_001)));
    // Ten minutes after the first activation it has left the window.
    assert!(!kpis.is_flood(wall(600_000)));
    assert_eq!(kpis.rate_per_10min(wall(600_000)), 10);
    assert_eq!(kpis.rate_per_10min(wall(2_000_000)), 0);
}

#[test]
fn hidden_activations_are_not_counted_in_the_rate_but_do_chatter() {
    let mut kpis = Kpis::default();
    let mut a = alarm(def(Condition::High(9.0)));
    kpis.record(&a.set_out_of_service(at(0), true, "eve").unwrap());
    for k in 0..3 {
        pulse(&mut kpis, &mut a, 1_000 + k * 1_000);
    }
    assert_eq!(kpis.rate_per_10min(wall(10_000)), 0);
    assert!(kpis.is_chattering("tank_high", wall(10_000)));
    assert_eq!(
        kpis.chattering(wall(10_000)),
        vec![std::sync::Arc::from("tank_high")]
    );
    // A minute later it no longer is.
    assert!(!kpis.is_chattering("tank_high", wall(62_000)));
    assert!(kpis.chattering(wall(62_000)).is_empty());
}

#[test]
fn standing_alarms_are_those_active_longer_than_the_threshold() {
    let mut kpis = Kpis::new(KpiConfig {
        standing_after: Duration::from_secs(3600),
        ..KpiConfig::default()
    });
    let mut a = alarm(def(Condition::High(9.0)));
    let mut b = alarm(AlarmDef::new(
        "b",
        SignalId::from_index(1),
        Condition::High(9.0),
    ));
    for t in feed(&mut a, 0, 10.0)
        .into_iter()
        .chain(feed(&mut b, 1_000, 10.0))
    {
        kpis.record(&t);
    }
    kpis.record(&a.ack(at(5_000), "alice").unwrap()); // acked but still active: still standing
    assert!(kpis.standing(wall(3_599_999)).is_empty());
    let s = kpis.standing(wall(3_601_000));
    assert_eq!(
        s.iter().map(|(n, t)| (&**n, *t)).collect::<Vec<_>>(),
        [("tank_high", wall(0)), ("b", wall(1_000))]
    );
    for t in feed(&mut a, 3_602_000, 0.0) {
        kpis.record(&t);
    }
    assert_eq!(kpis.standing(wall(3_603_000)).len(), 1);
    kpis.forget("b");
    assert!(kpis.standing(wall(3_603_000)).is_empty());
}

// --- cost ---------------------------------------------------------------------------------------

/// Counts the allocations of the current thread, so tests running in parallel do not disturb
/// each other's counts.
struct CountingAlloc;

thread_local! {
    static ALLOCATIONS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

// SAFETY: forwards to the system allocator; the counter is a const-initialised thread-local
// `Cell`, which neither allocates nor panics.
unsafe impl std::alloc::GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { std::alloc::System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: same contract as ours.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

fn allocations() -> usize {
    ALLOCATIONS.with(|c| c.get())
}

#[test]
fn evaluate_allocates_nothing_when_nothing_changes_nor_when_the_buffer_has_room() {
    let mut d = def(Condition::High(9.0));
    d.deadband = 0.5;
    d.on_delay = Duration::from_secs(1);
    let mut a = alarm(d);
    let mut out = Vec::with_capacity(16);
    let v = [Value::Float(5.0), Value::Float(6.0), Value::Int(7)];
    let before = allocations();
    for k in 0..1_000u64 {
        a.evaluate(&v[k as usize % 3], Quality::Good, false, at(k), &mut out);
    }
    // Transitions themselves only share what they carry (name, value).
    for (k, x) in [(2_000u64, 10.0), (3_000, 10.0), (4_000, 0.0)] {
        a.evaluate(&Value::Float(x), Quality::Good, false, at(k), &mut out);
    }
    assert_eq!(allocations() - before, 0);
    assert_eq!(out.len(), 2);
}
