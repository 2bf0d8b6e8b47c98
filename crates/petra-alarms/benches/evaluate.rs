//! Cost of `Alarm::evaluate` for 10,000 alarms, the budget being ≤ 1 ms per 10 ms scan
//! (≤ 100 ns per alarm). Throughput is per alarm, so criterion's time per element is the cost of
//! one evaluate. Compare with `baseline`, measured in the same run: reading each value and
//! comparing it to a limit, the least any alarm evaluation must do.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use petra_alarms::{Alarm, AlarmDef, Condition, EqValue, Now, Transition};
use petra_core::{BadReason, MonoTime, Quality, SignalId, Timestamp, Value};
use std::hint::black_box;
use std::time::Duration;

const SCAN: u64 = 10_000_000; // 10 ms in ns

/// 10,000 alarms unless `ALARMS_N` says otherwise (e.g. 1000 to see the cost with everything
/// in cache).
fn n() -> usize {
    std::env::var("ALARMS_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000)
}

fn now(scan: u64) -> Now {
    Now::new(
        MonoTime::from_nanos(scan * SCAN),
        Timestamp::from_unix_nanos(1_796_396_400_000_000_000 + (scan * SCAN) as i64),
    )
}

/// The alarms of one plant and the transition buffer the manager reuses from scan to scan.
struct Plant {
    alarms: Vec<Alarm>,
    out: Vec<Transition>,
    scan: u64,
}

impl Plant {
    fn new(
        n: usize,
        condition: impl Fn(usize) -> Condition,
        on_delay: Duration,
        off_delay: Duration,
    ) -> Plant {
        let alarms = (0..n)
            .map(|i| {
                let mut d = AlarmDef::new(format!("a{i}"), SignalId::from_index(i), condition(i));
                d.deadband = 0.5;
                d.on_delay = on_delay;
                d.off_delay = off_delay;
                Alarm::new(d).unwrap()
            })
            .collect();
        Plant {
            alarms,
            out: Vec::new(),
            scan: 0,
        }
    }

    /// Evaluates every alarm once, at the next scan time; returns the number of transitions.
    fn scan(&mut self, inputs: &[(Value, Quality)]) -> usize {
        self.scan += 1;
        let now = now(self.scan);
        self.out.clear();
        for (a, (v, q)) in self.alarms.iter_mut().zip(inputs) {
            a.evaluate(v, *q, false, now, &mut self.out);
        }
        self.out.len()
    }
}

fn evaluate(c: &mut Criterion) {
    let n = n();
    let mut g = c.benchmark_group("alarms");
    g.throughput(Throughput::Elements(n as u64));

    let below: Vec<(Value, Quality)> = (0..n)
        .map(|i| (Value::Float(5.0 + (i % 3) as f64), Quality::Good))
        .collect();
    let limits: Vec<f64> = vec![9.0; n];
    g.bench_function("baseline", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for ((v, q), l) in black_box(&below).iter().zip(&limits) {
                n += usize::from(q.is_good() && v.as_f64().is_some_and(|x| x > *l));
            }
            black_box(n)
        })
    });

    // The steady state of a healthy plant: every condition clear, nothing changes.
    let mut p = Plant::new(
        n,
        |_| Condition::High(9.0),
        Duration::from_secs(5),
        Duration::from_secs(2),
    );
    g.bench_function("normal", |b| {
        b.iter(|| assert_eq!(p.scan(black_box(&below)), 0))
    });

    // Every alarm active, value inside the deadband: nothing changes.
    let inside: Vec<(Value, Quality)> =
        (0..n).map(|_| (Value::Float(8.8), Quality::Good)).collect();
    let mut p = Plant::new(
        n,
        |_| Condition::High(9.0),
        Duration::ZERO,
        Duration::from_secs(2),
    );
    assert_eq!(p.scan(&vec![(Value::Float(10.0), Quality::Good); n]), n);
    g.bench_function("active_in_deadband", |b| {
        b.iter(|| assert_eq!(p.scan(black_box(&inside)), 0))
    });

    // Every alarm waiting out an on-delay (one that never ends, however long criterion runs).
    let above: Vec<(Value, Quality)> = (0..n)
        .map(|_| (Value::Float(10.0), Quality::Good))
        .collect();
    let mut p = Plant::new(n, |_| Condition::High(9.0), Duration::MAX, Duration::ZERO);
    g.bench_function("on_delay_pending", |b| {
        b.iter(|| assert_eq!(p.scan(black_box(&above)), 0))
    });

    // A mix of every condition kind and input type, none changing.
    let kinds = |i: usize| match i % 5 {
        0 => Condition::High(9.0),
        1 => Condition::LowLow(1.0),
        2 => Condition::Equals(EqValue::Bool(true)),
        3 => Condition::Equals(EqValue::Int(3)),
        _ => Condition::BadQuality,
    };
    let mixed: Vec<(Value, Quality)> = (0..n)
        .map(|i| match i % 5 {
            0 | 1 => (Value::Float(5.0), Quality::Good),
            2 => (Value::Bool(false), Quality::Good),
            3 => (Value::Int(2), Quality::Uncertain),
            _ => (Value::Float(0.0), Quality::Good),
        })
        .collect();
    let mut p = Plant::new(n, kinds, Duration::ZERO, Duration::ZERO);
    g.bench_function("mixed", |b| {
        b.iter(|| assert_eq!(p.scan(black_box(&mixed)), 0))
    });

    // The worst case, for scale: every alarm transitions every scan (bad-quality alarms on
    // signals that flip between bad and good, no delays).
    let bad: Vec<(Value, Quality)> = (0..n)
        .map(|_| (Value::Float(0.0), Quality::Bad(BadReason::Timeout)))
        .collect();
    let good: Vec<(Value, Quality)> = (0..n).map(|_| (Value::Float(0.0), Quality::Good)).collect();
    let mut p = Plant::new(n, |_| Condition::BadQuality, Duration::ZERO, Duration::ZERO);
    g.bench_function("every_alarm_transitions", |b| {
        b.iter(|| {
            let inputs = if p.scan.is_multiple_of(2) {
                &bad
            } else {
                &good
            };
            assert_eq!(p.scan(black_box(inputs)), n)
        })
    });
    g.finish();
}

criterion_group!(benches, evaluate);
criterion_main!(benches);
