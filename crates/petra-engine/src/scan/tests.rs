use super::*;
use crate::testutil::*;
use crate::{BlockInstance, TaskSpec};
use petra_core::{BusBuilder, SignalDef, SystemClock, Timestamp, ValueType};
use std::sync::mpsc;

type Log = Arc<Mutex<Vec<(String, u64)>>>;

fn logger(name: &str, log: &Log) -> BlockInstance {
    let (name2, log) = (name.to_string(), log.clone());
    block(name, vec![], vec![], move |io| {
        log.lock()
            .unwrap()
            .push((name2.clone(), io.now().nanos() / 1_000_000))
    })
}

#[test]
fn blocks_run_in_dependency_order_whatever_the_declaration_order() {
    let bus = floats(&["a", "b", "c", "d"]);
    bus.write(
        sig(&bus, "a"),
        Value::Float(1.0),
        Quality::Good,
        Timestamp::default(),
    )
    .unwrap();
    let program = Program {
        tasks: vec![task(
            "main",
            10,
            0,
            vec![
                add_one("third", &bus, "c", "d"),
                add_one("second", &bus, "b", "c"),
                add_one("first", &bus, "a", "b"),
            ],
        )],
        safe_values: vec![],
    };
    let clock = vclock();
    let mut e = Engine::new(program, bus.clone(), clock).unwrap();
    assert_eq!(e.block_order(0), vec!["first", "second", "third"]);
    e.run_due();
    assert_eq!(
        get(&bus, "d"),
        4.0,
        "one scan propagates through the whole chain"
    );
}

#[test]
fn inputs_are_latched_at_task_start() {
    let bus = floats(&["x", "y"]);
    let (x, y) = (sig(&bus, "x"), sig(&bus, "y"));
    let writer_bus = bus.clone();
    let program = Program {
        tasks: vec![task(
            "main",
            10,
            0,
            vec![
                // Simulates a driver writing `x` in the middle of the scan.
                block("driver", vec![], vec![], move |_| {
                    let _ = writer_bus.write(
                        x,
                        Value::Float(100.0),
                        Quality::Good,
                        Timestamp::default(),
                    );
                }),
                block("copy", vec![Input::Signal(x)], vec![Some(y)], |io| {
                    let v = io.float(0);
                    io.set_float(0, v)
                }),
            ],
        )],
        safe_values: vec![],
    };
    let clock = vclock();
    let mut e = Engine::new(program, bus.clone(), clock.clone()).unwrap();
    e.run_due();
    assert_eq!(
        get(&bus, "y"),
        0.0,
        "the scan saw x as it was when the task started"
    );
    e.run_until(ms(10));
    assert_eq!(get(&bus, "y"), 100.0);
}

#[test]
fn outputs_are_committed_once_at_task_end_with_the_scan_timestamp() {
    let bus = floats(&["z"]);
    let z = sig(&bus, "z");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (reader_bus, seen2) = (bus.clone(), seen.clone());
    let program = Program {
        tasks: vec![task(
            "main",
            10,
            0,
            vec![
                block("set", vec![], vec![Some(z)], |io| io.set_float(0, 5.0)),
                block("peek", vec![], vec![], move |_| {
                    seen2
                        .lock()
                        .unwrap()
                        .push(reader_bus.read(z).unwrap().value);
                }),
            ],
        )],
        safe_values: vec![],
    };
    let clock = vclock();
    clock.advance(Duration::from_millis(3));
    let mut e = Engine::new(program, bus.clone(), clock.clone()).unwrap();
    e.run_due();
    assert_eq!(*seen.lock().unwrap(), vec![Value::Float(0.0)]);
    let s = bus.read(z).unwrap();
    assert_eq!(s.value, Value::Float(5.0));
    assert_eq!(s.ts, Timestamp::from_unix_nanos(1_003_000_000));
}

#[test]
fn higher_priority_runs_first_when_due_together() {
    let bus = floats(&[]);
    let log: Log = Arc::default();
    let program = Program {
        tasks: vec![
            task("low", 10, 1, vec![logger("low", &log)]),
            task("mid", 20, 5, vec![logger("mid", &log)]),
            task("high", 10, 10, vec![logger("high", &log)]),
        ],
        safe_values: vec![],
    };
    let mut e = Engine::new(program, bus, vclock()).unwrap();
    e.run_until(ms(20));
    let got: Vec<(String, u64)> = log.lock().unwrap().clone();
    let want: Vec<(String, u64)> = [
        ("high", 0),
        ("mid", 0),
        ("low", 0),
        ("high", 10),
        ("low", 10),
        ("high", 20),
        ("mid", 20),
        ("low", 20),
    ]
    .iter()
    .map(|(n, t)| (n.to_string(), *t))
    .collect();
    assert_eq!(got, want);
}

#[test]
fn overruns_are_skipped_and_counted_never_burst() {
    let bus = floats(&[]);
    let clock = vclock();
    let log: Log = Arc::default();
    let (c2, log2) = (clock.clone(), log.clone());
    let dts = Arc::new(Mutex::new(Vec::new()));
    let dts2 = dts.clone();
    let slow = block("slow", vec![], vec![], move |io| {
        let t = io.now().nanos() / 1_000_000;
        log2.lock().unwrap().push(("slow".into(), t));
        dts2.lock().unwrap().push(io.dt().as_millis() as u64);
        if t == 20 {
            c2.advance(Duration::from_millis(25)); // this scan takes 25 ms
        }
    });
    let program = Program {
        tasks: vec![task("main", 10, 0, vec![slow])],
        safe_values: vec![],
    };
    let mut e = Engine::new(program, bus, clock.clone()).unwrap();
    let stats = e.stats();
    e.run_until(ms(70));
    let times: Vec<u64> = log.lock().unwrap().iter().map(|(_, t)| *t).collect();
    assert_eq!(
        times,
        vec![0, 10, 20, 40, 50, 60, 70],
        "30 skipped, no catch-up burst"
    );
    assert_eq!(
        dts.lock().unwrap()[3],
        20,
        "dt after the skip covers the skipped period"
    );
    let snap = stats.tasks[0].snapshot();
    assert_eq!(snap.overruns, 1);
    assert_eq!(snap.scans, 7);
    assert_eq!(snap.scan.max / 1_000_000, 25);
    // The scan scheduled at 40 started at 45.
    assert_eq!((snap.jitter.max + 500_000) / 1_000_000, 5);
}

#[test]
fn dt_and_first_scan_are_reported() {
    let bus = floats(&[]);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let program = Program {
        tasks: vec![task(
            "main",
            25,
            0,
            vec![block("b", vec![], vec![], move |io| {
                seen2
                    .lock()
                    .unwrap()
                    .push((io.first_scan(), io.dt().as_millis()))
            })],
        )],
        safe_values: vec![],
    };
    let mut e = Engine::new(program, bus, vclock()).unwrap();
    e.run_until(ms(50));
    assert_eq!(
        *seen.lock().unwrap(),
        vec![(true, 25), (false, 25), (false, 25)]
    );
}

#[test]
fn a_block_that_reads_quality_runs_with_a_bad_input_and_its_outputs_stay_good() {
    let defs = vec![
        SignalDef::new("in", ValueType::Float).with_initial(1.0),
        SignalDef::new("down", ValueType::Bool).with_initial(false),
        SignalDef::new("trip", ValueType::Bool).with_initial(false),
    ];
    let bus = BusBuilder::new(defs).unwrap().build(Timestamp::default());
    let (i, down, trip) = (sig(&bus, "in"), sig(&bus, "down"), sig(&bus, "trip"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let watcher = BlockInstance {
        block: Box::new(QualityFnBlock(move |io: &mut Io<'_>| {
            let q = io.input_quality(0);
            seen2.lock().unwrap().push(q);
            io.set_bool(0, q.is_bad());
        })),
        ..block("watch", vec![Input::Signal(i)], vec![Some(down)], |_| {})
    };
    // An ordinary block downstream: it runs because `down` is good.
    let interlock = block(
        "interlock",
        vec![Input::Signal(down)],
        vec![Some(trip)],
        |io| {
            let d = io.bool(0);
            io.set_bool(0, d)
        },
    );
    let program = Program {
        tasks: vec![task("main", 10, 0, vec![interlock, watcher])],
        safe_values: vec![],
    };
    let mut e = Engine::new(program, bus.clone(), vclock()).unwrap();
    e.run_due();
    let good = |s: petra_core::Sample| (s.value, s.quality);
    assert_eq!(
        good(bus.read(trip).unwrap()),
        (Value::Bool(false), Quality::Good)
    );

    // The link dies: the watcher still runs, sees why, and the interlock trips, all good.
    bus.set_quality(i, Quality::Bad(BadReason::Timeout), Timestamp::default())
        .unwrap();
    e.run_until(ms(10));
    assert_eq!(
        seen.lock().unwrap().last(),
        Some(&Quality::Bad(BadReason::Timeout))
    );
    assert_eq!(
        good(bus.read(down).unwrap()),
        (Value::Bool(true), Quality::Good)
    );
    assert_eq!(
        good(bus.read(trip).unwrap()),
        (Value::Bool(true), Quality::Good)
    );

    // Back: the fast path (everything good) still runs it.
    bus.write(i, Value::Float(2.0), Quality::Good, Timestamp::default())
        .unwrap();
    e.run_until(ms(30));
    assert_eq!(seen.lock().unwrap().len(), 4, "ran every scan");
    assert_eq!(
        good(bus.read(trip).unwrap()),
        (Value::Bool(false), Quality::Good)
    );
}

#[test]
fn bad_inputs_freeze_the_block_and_mark_outputs_bad() {
    let defs = vec![
        SignalDef::new("in", ValueType::Float), // no initial value: bad(no_value)
        SignalDef::new("out", ValueType::Float).with_initial(7.0),
    ];
    let bus = BusBuilder::new(defs).unwrap().build(Timestamp::default());
    let (i, o) = (sig(&bus, "in"), sig(&bus, "out"));
    let runs = Arc::new(AtomicU64::new(0));
    let runs2 = runs.clone();
    let program = Program {
        tasks: vec![task(
            "main",
            10,
            0,
            vec![block(
                "b",
                vec![Input::Signal(i)],
                vec![Some(o)],
                move |io| {
                    runs2.fetch_add(1, Ordering::SeqCst);
                    let v = io.float(0) * 2.0;
                    io.set_float(0, v)
                },
            )],
        )],
        safe_values: vec![],
    };
    let mut e = Engine::new(program, bus.clone(), vclock()).unwrap();
    e.run_due();
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    let s = bus.read(o).unwrap();
    assert_eq!(
        (s.value, s.quality),
        (Value::Float(7.0), Quality::Bad(BadReason::InputBad))
    );

    bus.write(
        i,
        Value::Float(2.0),
        Quality::Uncertain,
        Timestamp::default(),
    )
    .unwrap();
    e.run_until(ms(10));
    let s = bus.read(o).unwrap();
    assert_eq!(
        (s.value, s.quality),
        (Value::Float(4.0), Quality::Uncertain)
    );

    bus.write(i, Value::Float(3.0), Quality::Good, Timestamp::default())
        .unwrap();
    e.run_until(ms(20));
    let s = bus.read(o).unwrap();
    assert_eq!((s.value, s.quality), (Value::Float(6.0), Quality::Good));

    // All good now (the scan takes its fast path); a bad input must still be noticed.
    e.run_until(ms(30));
    let before = runs.load(Ordering::SeqCst);
    bus.set_quality(i, Quality::Bad(BadReason::Timeout), Timestamp::default())
        .unwrap();
    e.run_until(ms(40));
    assert_eq!(runs.load(Ordering::SeqCst), before, "frozen again");
    let s = bus.read(o).unwrap();
    assert_eq!(
        (s.value, s.quality),
        (Value::Float(6.0), Quality::Bad(BadReason::InputBad))
    );
}

fn watchdog_program(bus: &Bus, body: impl FnMut(&mut Io<'_>) + Send + 'static) -> Program {
    let mut t = task(
        "ctl",
        10,
        0,
        vec![block("ctl", vec![], vec![Some(sig(bus, "valve"))], body)],
    );
    t.watchdog = Some(Duration::from_millis(5));
    Program {
        tasks: vec![t],
        safe_values: vec![(sig(bus, "valve"), Value::Float(-1.0))],
    }
}

#[test]
fn watchdog_drives_safe_values_and_the_task_recovers_in_virtual_time() {
    let bus = floats(&["valve"]);
    let clock = vclock();
    let c2 = clock.clone();
    let program = watchdog_program(&bus, move |io| {
        io.set_float(0, 50.0);
        if io.now() == ms(10) {
            c2.advance(Duration::from_millis(8)); // hangs past the 5 ms watchdog
        }
    });
    let mut e = Engine::new(program, bus.clone(), clock.clone()).unwrap();
    let stats = e.stats();
    e.run_due();
    assert_eq!(get(&bus, "valve"), 50.0);
    e.run_until(ms(10));
    let s = bus.read(sig(&bus, "valve")).unwrap();
    assert_eq!(
        (s.value, s.quality),
        (Value::Float(-1.0), Quality::Bad(BadReason::Watchdog))
    );
    assert_eq!(stats.tasks[0].watchdog_trips(), 1);
    e.run_until(ms(20));
    let s = bus.read(sig(&bus, "valve")).unwrap();
    assert_eq!((s.value, s.quality), (Value::Float(50.0), Quality::Good));
}

#[test]
fn watchdog_monitor_acts_while_the_scan_thread_is_hung() {
    let bus = floats(&["valve"]);
    let valve = sig(&bus, "valve");
    let (hang_tx, hang_rx) = mpsc::channel::<mpsc::Receiver<()>>();
    let program = watchdog_program(&bus, move |io| {
        io.set_float(0, 50.0);
        // When the test sends a receiver, block on it: a hung scan.
        if let Ok(release) = hang_rx.try_recv() {
            let _ = release.recv();
        }
    });
    let engine = Engine::new(program, bus.clone(), Arc::new(SystemClock::new())).unwrap();
    let handle = engine.spawn(Box::new(|| {})).unwrap();
    wait_for("the first scan", || {
        bus.read(valve).unwrap().value == Value::Float(50.0)
    });
    let (release_tx, release_rx) = mpsc::channel();
    hang_tx.send(release_rx).unwrap();
    wait_for("the safe value while hung", || {
        bus.read(valve).unwrap().quality == Quality::Bad(BadReason::Watchdog)
    });
    assert_eq!(bus.read(valve).unwrap().value, Value::Float(-1.0));
    release_tx.send(()).unwrap();
    wait_for("recovery", || {
        bus.read(valve).unwrap().quality == Quality::Good
    });
    assert_eq!(handle.stats().tasks[0].watchdog_trips(), 1);
    handle.stop().unwrap();
}

#[test]
fn scan_thread_runs_at_its_period_and_stops_after_a_last_scan() {
    let bus = floats(&["n"]);
    let n = sig(&bus, "n");
    let program = Program {
        tasks: vec![task(
            "count",
            2,
            0,
            vec![block("count", vec![], vec![Some(n)], {
                let mut k = 0.0;
                move |io| {
                    k += 1.0;
                    io.set_float(0, k)
                }
            })],
        )],
        safe_values: vec![],
    };
    let engine = Engine::new(program, bus.clone(), Arc::new(SystemClock::new())).unwrap();
    let handle = engine.spawn(Box::new(|| {})).unwrap();
    wait_for("ten scans", || get(&bus, "n") >= 10.0);
    let stats = handle.stats().clone();
    handle.stop().unwrap();
    let scans = stats.tasks[0].scans();
    assert_eq!(
        get(&bus, "n"),
        scans as f64,
        "every scan, the last one included, committed"
    );
    assert!(
        stats.tasks[0].snapshot().scan.max > 0,
        "histograms were published"
    );
}

#[test]
fn programs_that_cannot_run_are_refused() {
    let bus = floats(&["a", "b"]);
    let cyc = Program {
        tasks: vec![task(
            "main",
            10,
            0,
            vec![add_one("ab", &bus, "a", "b"), add_one("ba", &bus, "b", "a")],
        )],
        safe_values: vec![],
    };
    let err = Engine::new(cyc, bus.clone(), vclock()).err().unwrap();
    assert!(
        matches!(&err, EngineError::Cycle { blocks, .. } if blocks == &["ab", "ba"]),
        "{err}"
    );

    let two_writers = Program {
        tasks: vec![
            task("t1", 10, 0, vec![add_one("w1", &bus, "a", "b")]),
            task("t2", 10, 0, vec![add_one("w2", &bus, "a", "b")]),
        ],
        safe_values: vec![],
    };
    let err = Engine::new(two_writers, bus.clone(), vclock())
        .err()
        .unwrap();
    assert!(matches!(err, EngineError::MultipleWriters { .. }), "{err}");

    let fast = Program {
        tasks: vec![TaskSpec {
            period: Duration::from_micros(100),
            ..task("t", 1, 0, vec![])
        }],
        safe_values: vec![],
    };
    let err = Engine::new(fast, bus.clone(), vclock()).err().unwrap();
    assert!(matches!(err, EngineError::BadPeriod { .. }), "{err}");
    let none = Program {
        tasks: vec![],
        safe_values: vec![],
    };
    assert!(matches!(
        Engine::new(none, bus, vclock()),
        Err(EngineError::NoTasks)
    ));
}

#[test]
fn a_block_can_mark_its_outputs_bad_and_downstream_blocks_see_it() {
    let bus = floats(&["a", "b", "c"]);
    let (a, b, c) = (sig(&bus, "a"), sig(&bus, "b"), sig(&bus, "c"));
    let program = Program {
        tasks: vec![task(
            "main",
            10,
            0,
            vec![
                // Division-like block: a == 0 has no defined result.
                block("div", vec![Input::Signal(a)], vec![Some(b)], |io| {
                    let x = io.float(0);
                    if x == 0.0 {
                        io.set_float(0, 0.0);
                        io.set_quality(Quality::Bad(BadReason::Arithmetic));
                    } else {
                        io.set_float(0, 1.0 / x);
                    }
                }),
                add_one("after", &bus, "b", "c"),
            ],
        )],
        safe_values: vec![],
    };
    bus.write(a, Value::Float(2.0), Quality::Good, Timestamp::default())
        .unwrap();
    let mut e = Engine::new(program, bus.clone(), vclock()).unwrap();
    e.run_due();
    e.run_until(ms(10)); // all good: the fast path
    assert_eq!(get(&bus, "c"), 1.5);
    bus.write(a, Value::Float(0.0), Quality::Good, Timestamp::default())
        .unwrap();
    e.run_until(ms(20));
    let arith = Quality::Bad(BadReason::Arithmetic);
    assert_eq!(bus.read(b).unwrap().quality, arith);
    let sc = bus.read(c).unwrap();
    assert_eq!(
        (sc.value, sc.quality),
        (Value::Float(1.5), Quality::Bad(BadReason::InputBad))
    );
    bus.write(a, Value::Float(4.0), Quality::Good, Timestamp::default())
        .unwrap();
    e.run_until(ms(30));
    assert_eq!(
        bus.read(b).unwrap().quality,
        Quality::Good,
        "the next scan starts good"
    );
    assert_eq!(get(&bus, "c"), 1.25);
}

/// Records what the hook saw: (task, signal `z` on the bus, scan time in ms).
struct Peek {
    z: SignalId,
    seen: Arc<Mutex<Vec<(usize, f64, u64)>>>,
}

impl crate::ScanHook for Peek {
    fn after_task(&mut self, task: usize, bus: &Bus, now: MonoTime, _wall: Timestamp) {
        let v = bus.read(self.z).unwrap().value.as_f64().unwrap();
        self.seen
            .lock()
            .unwrap()
            .push((task, v, now.nanos() / 1_000_000));
    }
}

#[test]
fn the_hook_runs_after_each_task_and_sees_its_committed_outputs() {
    let bus = floats(&["z"]);
    let z = sig(&bus, "z");
    let mut n = 0.0;
    let program = Program {
        tasks: vec![
            task(
                "fast",
                10,
                1,
                vec![block("inc", vec![], vec![Some(z)], move |io| {
                    n += 1.0;
                    io.set_float(0, n)
                })],
            ),
            task("slow", 20, 0, vec![logger("idle", &Log::default())]),
        ],
        safe_values: vec![],
    };
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut e = Engine::new(program, bus, vclock()).unwrap();
    e.set_hook(Box::new(Peek {
        z,
        seen: seen.clone(),
    }));
    e.run_until(ms(20));
    assert_eq!(
        *seen.lock().unwrap(),
        [
            (0, 1.0, 0),
            (1, 1.0, 0),
            (0, 2.0, 10),
            (0, 3.0, 20),
            (1, 3.0, 20)
        ]
    );
}

/// Counts `warm` calls (and `after_task` ones, to know scans happened).
struct Warmed {
    warm: Arc<AtomicU64>,
    scans: Arc<AtomicU64>,
}

impl crate::ScanHook for Warmed {
    fn after_task(&mut self, _: usize, _: &Bus, _: MonoTime, _: Timestamp) {
        self.scans.fetch_add(1, Ordering::Relaxed);
    }

    fn warm(&self) {
        self.warm.fetch_add(1, Ordering::Relaxed);
    }
}

/// On its thread the engine wakes before each deadline to warm the cache (`warm`, also the
/// hook's); with a zero lead it does not.
#[test]
fn the_scan_thread_warms_before_deadlines_unless_told_not_to() {
    for (ahead, expect_warm) in [(WARM_AHEAD, true), (Duration::ZERO, false)] {
        let bus = floats(&["z"]);
        let program = Program {
            tasks: vec![task("t", 5, 0, vec![logger("idle", &Log::default())])],
            safe_values: vec![],
        };
        let (warm, scans) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let mut e = Engine::new(program, bus, Arc::new(SystemClock::new())).unwrap();
        e.set_hook(Box::new(Warmed {
            warm: warm.clone(),
            scans: scans.clone(),
        }));
        e.set_warm_ahead(ahead);
        let handle = e.spawn(Box::new(|| {})).unwrap();
        wait_for("ten scans", || scans.load(Ordering::Relaxed) >= 10);
        handle.stop().unwrap();
        let warmed = warm.load(Ordering::Relaxed);
        if expect_warm {
            // Not every one: a scan that starts late (a loaded machine) has no time to warm.
            assert!(warmed >= 3, "warmed {warmed} times in 10 scans");
        } else {
            assert_eq!(warmed, 0);
        }
    }
}
