//! Random definitions and random sequences of inputs and operator actions: nothing panics and
//! the invariants the crate docs promise hold after every step.

use crate::*;
use petra_core::{BadReason, MonoTime, Quality, SignalId, Timestamp, Value};
use proptest::prelude::*;
use std::time::Duration;

const T0: i64 = 1_796_396_400_000_000_000;

#[derive(Clone, Debug)]
enum Op {
    Eval {
        dt_ms: u64,
        value: Value,
        bad: bool,
        suppressed: bool,
    },
    Ack,
    Reset,
    Shelve {
        for_ms: i64,
    },
    Unshelve,
    OutOfService(bool),
    /// Save and restore into a fresh alarm, as across a restart.
    Restart,
    /// The wall clock is stepped (NTP); monotonic time is not.
    WallStep(i64),
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        6 => (-2.0f64..12.0).prop_map(Value::Float),
        1 => Just(Value::Float(f64::NAN)),
        1 => prop_oneof![Just(f64::INFINITY), Just(f64::NEG_INFINITY)].prop_map(Value::Float),
        2 => (0i64..6).prop_map(Value::Int),
        2 => any::<bool>().prop_map(Value::Bool),
        1 => Just(Value::from("x")),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (0u64..1_500, value(), prop::bool::weighted(0.1), prop::bool::weighted(0.1))
            .prop_map(|(dt_ms, value, bad, suppressed)| Op::Eval { dt_ms, value, bad, suppressed }),
        2 => Just(Op::Ack),
        1 => Just(Op::Reset),
        1 => (-1_000i64..5_000).prop_map(|for_ms| Op::Shelve { for_ms }),
        1 => Just(Op::Unshelve),
        1 => any::<bool>().prop_map(Op::OutOfService),
        1 => Just(Op::Restart),
        1 => (-3_000i64..3_000).prop_map(Op::WallStep),
    ]
}

fn definition() -> impl Strategy<Value = AlarmDef> {
    let condition = prop_oneof![
        (0.0f64..10.0).prop_map(Condition::High),
        (0.0f64..10.0).prop_map(Condition::LowLow),
        any::<bool>().prop_map(|b| Condition::Equals(EqValue::Bool(b))),
        (0i64..6).prop_map(|i| Condition::Equals(EqValue::Int(i))),
        Just(Condition::BadQuality),
    ];
    (
        condition,
        0.0f64..2.0,
        0u64..3_000,
        0u64..3_000,
        any::<bool>(),
    )
        .prop_map(|(condition, deadband, on, off, latch)| {
            let mut d = AlarmDef::new("a", SignalId::from_index(0), condition);
            d.deadband = deadband;
            d.on_delay = Duration::from_millis(on);
            d.off_delay = Duration::from_millis(off);
            d.latch = latch;
            d
        })
}

fn check_invariants(a: &Alarm) -> Result<(), TestCaseError> {
    let s = a.status();
    if s.hidden() {
        prop_assert_ne!(
            s.state,
            AlarmState::RtnUnacked,
            "hidden alarms never wait for an ack"
        );
        prop_assert_eq!(
            s.state.is_active(),
            a.condition_active(),
            "hidden alarms are not held by a latch"
        );
    }
    if a.condition_active() {
        prop_assert!(
            s.state.is_active(),
            "an active condition is an active alarm"
        );
    }
    if !a.def().latch {
        prop_assert_eq!(s.state.is_active(), a.condition_active());
    }
    Ok(())
}

fn check_transitions(
    before: Status,
    after: Status,
    ts: &[Transition],
    now: Timestamp,
) -> Result<(), TestCaseError> {
    let mut prev = before;
    for t in ts {
        prop_assert_ne!(t.from, t.to, "{:?}", t);
        prop_assert_eq!(t.from, prev, "transitions chain");
        prop_assert_eq!(t.at, now, "stamped with the time of the scan or action");
        if t.to.state.is_unacked() && !t.from.state.is_unacked() {
            prop_assert_eq!(
                t.cause,
                Cause::Condition,
                "unacked again only by a new activation"
            );
            prop_assert_eq!(t.from.state, AlarmState::Normal);
        }
        match t.cause {
            Cause::Condition => prop_assert!(t.is_activation()),
            Cause::Clear => prop_assert!(!t.to.state.is_active()),
            Cause::Ack | Cause::Reset => {
                prop_assert!(t.user.is_some());
                prop_assert!(!t.to.state.is_unacked());
            }
            // Overlays change the state only by settling a hidden alarm to normal.
            _ => prop_assert!(t.from.state == t.to.state || t.to.state == AlarmState::Normal),
        }
        prev = t.to;
    }
    prop_assert_eq!(
        prev,
        after,
        "the last transition ends in the current status"
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_inputs_and_actions_keep_the_invariants(
        def in definition(),
        ops in prop::collection::vec(op(), 1..120),
    ) {
        let mut a = Alarm::new(def.clone()).unwrap();
        let mut kpis = Kpis::default();
        let (mut mono, mut skew) = (0u64, 0i64);
        for op in ops {
            let now = |mono: u64, skew: i64| Now::new(
                MonoTime::from_nanos(mono * 1_000_000),
                Timestamp::from_unix_nanos(T0 + (mono as i64 + skew) * 1_000_000),
            );
            let before = a.status();
            let snap_before = a.snapshot();
            let result: Result<Vec<Transition>, AlarmError> = match op {
                Op::Eval { dt_ms, value, bad, suppressed } => {
                    mono += dt_ms;
                    let q = if bad { Quality::Bad(BadReason::Timeout) } else { Quality::Good };
                    let mut out = Vec::new();
                    a.evaluate(&value, q, suppressed, now(mono, skew), &mut out);
                    Ok(out)
                }
                Op::Ack => a.ack(now(mono, skew), "op").map(|t| vec![t]),
                Op::Reset => a.reset(now(mono, skew), "op").map(|t| vec![t]),
                Op::Shelve { for_ms } => {
                    let n = now(mono, skew);
                    let until = Timestamp::from_unix_nanos(n.wall.unix_nanos() + for_ms * 1_000_000);
                    a.shelve(n, until, "op", "why").map(|t| vec![t])
                }
                Op::Unshelve => a.unshelve(now(mono, skew), "op").map(|t| vec![t]),
                Op::OutOfService(oos) => a.set_out_of_service(now(mono, skew), oos, "op").map(|t| vec![t]),
                Op::Restart => {
                    let json = serde_json::to_string(&a.snapshot()).unwrap();
                    let snap: AlarmSnapshot = serde_json::from_str(&json).unwrap();
                    let mut b = Alarm::new(def.clone()).unwrap();
                    b.restore(&snap).unwrap();
                    prop_assert_eq!(b.status(), a.status());
                    prop_assert_eq!(b.snapshot(), snap);
                    a = b;
                    Ok(vec![])
                }
                Op::WallStep(ms) => {
                    skew += ms;
                    Ok(vec![])
                }
            };
            match result {
                Ok(ts) => {
                    check_transitions(before, a.status(), &ts, now(mono, skew).wall)?;
                    for t in &ts {
                        kpis.record(t);
                    }
                }
                Err(e) => {
                    prop_assert_eq!(a.status(), before, "a refused action changes nothing");
                    prop_assert_eq!(a.snapshot(), snap_before);
                    prop_assert!(!e.to_string().is_empty());
                }
            }
            check_invariants(&a)?;
            let w = now(mono, skew).wall;
            let _ = (kpis.rate_per_10min(w), kpis.is_flood(w), kpis.chattering(w), kpis.standing(w));
            let _ = a.message("m");
        }
    }

    #[test]
    fn any_template_renders_without_panicking(template in ".{0,40}", plain in "[^{]{0,40}") {
        let v = Value::Float(1.5);
        let args = MessageArgs {
            name: "n",
            value: Some(&v),
            unit: "u",
            priority: Priority::Low,
            state: AlarmState::Normal,
            time: None,
        };
        let _ = render_message(&template, &args);
        prop_assert_eq!(render_message(&plain, &args), plain);
    }
}
