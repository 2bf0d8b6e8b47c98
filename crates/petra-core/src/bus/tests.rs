use super::*;
use crate::feed::OverflowPolicy;
use std::sync::atomic::AtomicBool;
use std::thread;

fn ts(n: i64) -> Timestamp {
    Timestamp::from_unix_nanos(n)
}

fn bus_of(defs: Vec<SignalDef>) -> Arc<Bus> {
    BusBuilder::new(defs).unwrap().build(ts(0))
}

#[test]
fn signals_start_with_initial_value_or_bad_no_value() {
    let bus = bus_of(vec![
        SignalDef::new("a", ValueType::Float).with_initial(2.5),
        SignalDef::new("b", ValueType::Bool),
        SignalDef::new("c", ValueType::String).with_initial("hi"),
    ]);
    let a = bus.read(bus.id("a").unwrap()).unwrap();
    assert_eq!(a.value, Value::Float(2.5));
    assert_eq!(a.quality, Quality::Good);
    let b = bus.read(bus.id("b").unwrap()).unwrap();
    assert_eq!(b.value, Value::Bool(false));
    assert_eq!(b.quality, Quality::Bad(BadReason::NoValue));
    assert_eq!(
        bus.read(bus.id("c").unwrap()).unwrap().value,
        Value::from("hi")
    );
    assert_eq!(bus.id("nope"), None);
}

#[test]
fn duplicate_names_and_mistyped_initial_values_are_refused() {
    let dup = BusBuilder::new(vec![
        SignalDef::new("a", ValueType::Int),
        SignalDef::new("a", ValueType::Int),
    ]);
    assert_eq!(dup.err(), Some(BusError::Duplicate("a".into())));
    let bad = BusBuilder::new(vec![SignalDef::new("a", ValueType::Int).with_initial(1.0)]);
    assert!(matches!(bad.err(), Some(BusError::TypeMismatch { .. })));
}

#[test]
fn names_are_found_among_many_and_the_first_repeat_is_reported() {
    let names: Vec<String> = (0..1000)
        .map(|i| format!("s{}", (i * 7919) % 1000))
        .collect();
    let bus = bus_of(
        names
            .iter()
            .map(|n| SignalDef::new(n, ValueType::Int))
            .collect(),
    );
    for (i, n) in names.iter().enumerate() {
        assert_eq!(bus.id(n), Some(SignalId::from_index(i)), "{n}");
    }
    assert_eq!(bus.id("s1000"), None);
    assert_eq!(bus.id(""), None);
    // In declaration order: `b` repeats before `a` does; a wrong initial value before both.
    let defs = |first_ok: bool| {
        let first = SignalDef::new("z", ValueType::Int);
        vec![
            if first_ok {
                first
            } else {
                first.with_initial(1.0)
            },
            SignalDef::new("a", ValueType::Int),
            SignalDef::new("b", ValueType::Int),
            SignalDef::new("b", ValueType::Int),
            SignalDef::new("a", ValueType::Int),
        ]
    };
    let dup = BusBuilder::new(defs(true));
    assert_eq!(dup.err(), Some(BusError::Duplicate("b".into())));
    let bad = BusBuilder::new(defs(false));
    assert!(matches!(bad.err(), Some(BusError::TypeMismatch { .. })));
}

#[test]
fn writes_are_type_checked_and_carry_quality_and_timestamp() {
    let bus = bus_of(vec![SignalDef::new("flag", ValueType::Bool)]);
    let id = bus.id("flag").unwrap();
    let err = bus
        .write(id, Value::Float(1.0), Quality::Good, ts(5))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "signal `flag` is bool, but was given a float value"
    );
    assert_eq!(
        bus.read(id).unwrap().ts,
        ts(0),
        "a refused write changes nothing"
    );
    bus.write(id, Value::Bool(true), Quality::Uncertain, ts(7))
        .unwrap();
    let s = bus.read(id).unwrap();
    assert_eq!(
        (s.value, s.quality, s.ts),
        (Value::Bool(true), Quality::Uncertain, ts(7))
    );
    assert_eq!(
        bus.write(
            SignalId::from_index(9),
            Value::Bool(true),
            Quality::Good,
            ts(1)
        ),
        Err(BusError::UnknownId(SignalId::from_index(9)))
    );
}

#[test]
fn a_change_is_a_new_value_or_quality_not_a_new_timestamp() {
    let bus = bus_of(vec![SignalDef::new("x", ValueType::Int).with_initial(1)]);
    let id = bus.id("x").unwrap();
    assert!(!bus.write(id, Value::Int(1), Quality::Good, ts(1)).unwrap());
    assert!(bus.write(id, Value::Int(2), Quality::Good, ts(2)).unwrap());
    assert!(
        bus.write(id, Value::Int(2), Quality::Uncertain, ts(3))
            .unwrap()
    );
    assert_eq!(bus.updates_total(), 3);
}

#[test]
fn set_quality_keeps_the_value() {
    let bus = bus_of(vec![
        SignalDef::new("s", ValueType::String).with_initial("ok"),
    ]);
    let id = bus.id("s").unwrap();
    let bad = Quality::Bad(BadReason::NotConnected);
    assert!(bus.set_quality(id, bad, ts(9)).unwrap());
    assert!(!bus.set_quality(id, bad, ts(10)).unwrap());
    let s = bus.read(id).unwrap();
    assert_eq!((s.value, s.quality, s.ts), (Value::from("ok"), bad, ts(9)));
}

#[test]
fn latest_feed_coalesces_and_filters() {
    let mut b = BusBuilder::new(vec![
        SignalDef::new("a", ValueType::Int).with_initial(0),
        SignalDef::new("b", ValueType::Int).with_initial(0),
    ])
    .unwrap();
    let (a, bb) = (b.id("a").unwrap(), b.id("b").unwrap());
    let all = b.latest_feed(None);
    let only_b = b.latest_feed(Some(&[bb]));
    let bus = b.build(ts(0));
    let wakes = Arc::new(AtomicU64::new(0));
    let w = wakes.clone();
    assert!(all.set_waker(Arc::new(move || {
        w.fetch_add(1, Ordering::SeqCst);
    })));
    for i in 1..=10 {
        bus.write(a, Value::Int(i), Quality::Good, ts(i)).unwrap();
    }
    bus.write(bb, Value::Int(1), Quality::Good, ts(1)).unwrap();
    assert_eq!(wakes.load(Ordering::SeqCst), 1, "woken once until drained");
    let mut out = Vec::new();
    assert_eq!(all.drain(&mut out), 2);
    assert_eq!(out, vec![a, bb]);
    out.clear();
    assert_eq!(all.drain(&mut out), 0);
    assert_eq!(only_b.drain(&mut out), 1);
    assert_eq!(out, vec![bb]);
    bus.write(a, Value::Int(99), Quality::Good, ts(20)).unwrap();
    assert_eq!(wakes.load(Ordering::SeqCst), 2, "woken again after a drain");
    assert!(!only_b.has_pending());
}

#[test]
fn lossless_feed_keeps_every_change_in_order() {
    let mut b = BusBuilder::new(vec![
        SignalDef::new("a", ValueType::Float).with_initial(0.0),
    ])
    .unwrap();
    let a = b.id("a").unwrap();
    let feed = b.lossless_feed(100, OverflowPolicy::DropNewest, None);
    let bus = b.build(ts(0));
    for i in 1..=50 {
        bus.write(a, Value::Float(i as f64), Quality::Good, ts(i))
            .unwrap();
        bus.write(a, Value::Float(i as f64), Quality::Good, ts(i))
            .unwrap(); // not a change
    }
    let mut out = Vec::new();
    assert_eq!(feed.drain(&mut out, usize::MAX), 50);
    let values: Vec<f64> = out
        .iter()
        .map(|c| c.sample.value.as_f64().unwrap())
        .collect();
    assert_eq!(values, (1..=50).map(|i| i as f64).collect::<Vec<_>>());
    assert_eq!(out[49].sample.ts, ts(50));
    assert_eq!(feed.dropped(), 0);
}

#[test]
fn lossless_overflow_policies_are_applied_and_counted() {
    let mut b = BusBuilder::new(vec![SignalDef::new("a", ValueType::Int).with_initial(0)]).unwrap();
    let a = b.id("a").unwrap();
    let newest = b.lossless_feed(4, OverflowPolicy::DropNewest, None);
    let oldest = b.lossless_feed(4, OverflowPolicy::DropOldest, None);
    let bus = b.build(ts(0));
    for i in 1..=10 {
        bus.write(a, Value::Int(i), Quality::Good, ts(i)).unwrap();
    }
    let ints = |f: &LosslessFeed| {
        let mut out = Vec::new();
        f.drain(&mut out, usize::MAX);
        out.iter()
            .map(|c| c.sample.value.as_int().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(newest.dropped(), 6);
    assert_eq!(oldest.dropped(), 6);
    assert_eq!(bus.feed_drops_total(), 12);
    assert_eq!(ints(&newest), vec![1, 2, 3, 4]);
    assert_eq!(ints(&oldest), vec![7, 8, 9, 10]);
}

#[test]
fn concurrent_readers_never_see_a_torn_sample() {
    // Two writers write (v, ts = v) pairs; readers must always see ts == value.
    let bus = bus_of(vec![
        SignalDef::new("x", ValueType::Int).with_initial(0),
        SignalDef::new("s", ValueType::String).with_initial("0"),
    ]);
    let (x, s) = (bus.id("x").unwrap(), bus.id("s").unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let bus = bus.clone();
            thread::spawn(move || {
                for i in 0..50_000i64 {
                    let v = i * 2 + w;
                    bus.write(x, Value::Int(v), Quality::Good, ts(v)).unwrap();
                    if i % 16 == 0 {
                        let text = v.to_string();
                        bus.write(s, Value::from(text.as_str()), Quality::Good, ts(v))
                            .unwrap();
                    }
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let bus = bus.clone();
            let stop = stop.clone();
            thread::spawn(move || {
                let mut reads = 0u64;
                while !stop.load(Ordering::Relaxed) || reads == 0 {
                    let a = bus.read(x).unwrap();
                    assert_eq!(a.value.as_int().unwrap(), a.ts.unix_nanos());
                    let b = bus.read(s).unwrap();
                    assert_eq!(b.value.as_str().unwrap(), b.ts.unix_nanos().to_string());
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    assert_eq!(bus.updates_total(), 100_000 + 2 * 3125);
}

#[test]
fn read_into_copies_value_and_quality_of_every_type() {
    let bus = bus_of(vec![
        SignalDef::new("b", ValueType::Bool).with_initial(true),
        SignalDef::new("i", ValueType::Int).with_initial(-4),
        SignalDef::new("f", ValueType::Float),
        SignalDef::new("s", ValueType::String).with_initial("txt"),
    ]);
    let mut dst = [
        Value::Bool(false),
        Value::Int(0),
        Value::Float(1.0),
        Value::from(""),
    ];
    let q: Vec<Quality> = ["b", "i", "f", "s"]
        .iter()
        .zip(dst.iter_mut())
        .map(|(n, d)| bus.read_into(bus.id(n).unwrap(), d).unwrap())
        .collect();
    assert_eq!(
        dst,
        [
            Value::Bool(true),
            Value::Int(-4),
            Value::Float(0.0),
            Value::from("txt")
        ]
    );
    assert_eq!(q[2], Quality::Bad(BadReason::NoValue));
    assert_eq!(q[3], Quality::Good);
    // A destination of another type is replaced, not left stale.
    let mut wrong = Value::Bool(true);
    bus.read_into(bus.id("i").unwrap(), &mut wrong).unwrap();
    assert_eq!(wrong, Value::Int(-4));
    assert_eq!(bus.read_into(SignalId::from_index(99), &mut wrong), None);
}
