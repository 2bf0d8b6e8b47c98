use super::*;
use crate::testutil::*;
use crate::{Block, BlockInstance, Input, Io, Program, TaskSpec, previous};
use petra_core::{
    BusBuilder, MonoTime, Quality, SignalDef, SystemClock, Timestamp, Value, ValueType,
};
use std::sync::Mutex;
use std::time::Duration;

/// Counts its scans; keeps the count across a reload.
struct Counter(f64);

impl Block for Counter {
    fn execute(&mut self, io: &mut Io<'_>) {
        self.0 += 1.0;
        io.set_float(0, self.0);
    }

    fn adopt(&mut self, old: &mut dyn Block) {
        if let Some(old) = previous::<Counter>(old) {
            self.0 = old.0;
        }
    }
}

fn counter(name: &str, ty: &'static str, out: SignalId) -> BlockInstance {
    BlockInstance {
        name: name.into(),
        type_name: ty,
        block: Box::new(Counter(0.0)),
        inputs: vec![],
        outputs: vec![Some(out)],
    }
}

fn one_task(period_ms: u64, blocks: Vec<BlockInstance>) -> Program {
    Program {
        tasks: vec![task("main", period_ms, 0, blocks)],
        safe_values: vec![],
    }
}

#[test]
fn state_schedule_and_statistics_carry_over() {
    let bus = floats(&["n", "m", "k"]);
    let (n, m, k) = (sig(&bus, "n"), sig(&bus, "m"), sig(&bus, "k"));
    let clock = vclock();
    let old_program = one_task(
        10,
        vec![
            counter("count", "COUNTER", n),
            counter("other", "COUNTER", m),
            counter("gone", "COUNTER", k),
        ],
    );
    let mut old = Engine::new(old_program, bus.clone(), clock.clone()).unwrap();
    old.run_until(ms(50));
    assert_eq!(get(&bus, "n"), 6.0);

    let new_program = one_task(
        10,
        vec![
            counter("count", "COUNTER", n),
            counter("other", "OTHER_TYPE", m),
            counter("fresh", "COUNTER", k),
        ],
    );
    let mut new = Engine::new(new_program, bus.clone(), clock.clone()).unwrap();
    let report = new.take_over(&mut old);
    assert_eq!(
        report,
        ReloadReport {
            kept: 1,
            fresh: 2,
            dropped: 2,
            signals_copied: 0,
            swap: Duration::ZERO,
        }
    );
    new.run_until(ms(60));
    assert_eq!(
        get(&bus, "n"),
        7.0,
        "kept its count; one scan at 60 ms, none repeated at 50"
    );
    assert_eq!(get(&bus, "m"), 1.0, "type changed: started fresh");
    assert_eq!(get(&bus, "k"), 1.0, "new block: started fresh");
    let stats = new.stats();
    assert_eq!(stats.tasks[0].scans(), 7, "statistics carried over");
    assert!(stats.tasks[0].snapshot().scan.max > 0 || stats.tasks[0].scans() == 7);
}

#[test]
fn a_new_task_starts_now_and_a_removed_one_stops() {
    let bus = floats(&["n", "m"]);
    let (n, m) = (sig(&bus, "n"), sig(&bus, "m"));
    let clock = vclock();
    let mut old = Engine::new(
        one_task(10, vec![counter("a", "C", n)]),
        bus.clone(),
        clock.clone(),
    )
    .unwrap();
    old.run_until(ms(25));
    let program = Program {
        tasks: vec![task("other", 10, 0, vec![counter("b", "C", m)])],
        safe_values: vec![],
    };
    let mut new = Engine::new(program, bus.clone(), clock.clone()).unwrap();
    new.take_over(&mut old);
    new.run_until(ms(45));
    assert_eq!(get(&bus, "n"), 3.0, "task main is gone");
    assert_eq!(get(&bus, "m"), 3.0, "task other ran at 25, 35, 45");
}

#[test]
fn a_new_bus_receives_the_values_of_signals_that_stayed() {
    let old_bus = BusBuilder::new(vec![
        SignalDef::new("a", ValueType::Float).with_initial(0.0),
        SignalDef::new("b", ValueType::Int).with_initial(0),
        SignalDef::new("x", ValueType::Float).with_initial(0.0),
    ])
    .unwrap()
    .build(Timestamp::default());
    let ts = Timestamp::from_unix_nanos(77);
    old_bus
        .write(
            old_bus.id("a").unwrap(),
            Value::Float(4.5),
            Quality::Uncertain,
            ts,
        )
        .unwrap();
    old_bus
        .write(old_bus.id("b").unwrap(), Value::Int(9), Quality::Good, ts)
        .unwrap();
    let new_bus = BusBuilder::new(vec![
        SignalDef::new("c", ValueType::Bool).with_initial(false),
        SignalDef::new("a", ValueType::Float).with_initial(0.0),
        SignalDef::new("b", ValueType::Float).with_initial(1.0), // type changed
        SignalDef::new("x", ValueType::Float).with_initial(0.0),
    ])
    .unwrap()
    .build(Timestamp::default());
    let clock = vclock();
    let x_old = old_bus.id("x").unwrap();
    let mut old = Engine::new(
        one_task(10, vec![counter("a", "C", x_old)]),
        old_bus,
        clock.clone(),
    )
    .unwrap();
    old.run_due();
    let x_new = new_bus.id("x").unwrap();
    let mut new = Engine::new(
        one_task(10, vec![counter("a", "C", x_new)]),
        new_bus.clone(),
        clock.clone(),
    )
    .unwrap();
    let report = new.take_over(&mut old);
    assert_eq!(report.signals_copied, 2, "a and x; b changed type");
    let a = new_bus.read(new_bus.id("a").unwrap()).unwrap();
    assert_eq!(
        (a.value, a.quality, a.ts),
        (Value::Float(4.5), Quality::Uncertain, ts)
    );
    assert_eq!(get(&new_bus, "b"), 1.0);
    new.run_until(ms(10));
    assert_eq!(
        get(&new_bus, "x"),
        2.0,
        "the block kept its count on the new bus"
    );
}

#[test]
fn reload_on_the_scan_thread_misses_no_scan() {
    let bus = floats(&["n"]);
    let n = sig(&bus, "n");
    let times = std::sync::Arc::new(Mutex::new(Vec::<MonoTime>::new()));
    let probe = |times: &std::sync::Arc<Mutex<Vec<MonoTime>>>| {
        let times = times.clone();
        block("probe", vec![Input::Signal(n)], vec![], move |io| {
            times.lock().unwrap().push(io.now())
        })
    };
    let program = |times| Program {
        tasks: vec![TaskSpec {
            name: "main".into(),
            // Long enough that a loaded CI machine does not stall a scan past its period.
            period: Duration::from_millis(50),
            priority: 0,
            watchdog: None,
            blocks: vec![counter("count", "C", n), probe(times)],
        }],
        safe_values: vec![],
    };
    let clock: std::sync::Arc<dyn petra_core::Clock> = std::sync::Arc::new(SystemClock::new());
    let handle = Engine::new(program(&times), bus.clone(), clock)
        .unwrap()
        .spawn(Box::new(|| {}))
        .unwrap();
    wait_for("five scans", || get(&bus, "n") >= 5.0);
    let next = Engine::new(program(&times), handle.bus(), handle.clock()).unwrap();
    let report = handle.reload(next).unwrap();
    assert_eq!((report.kept, report.fresh, report.dropped), (2, 0, 0));
    assert!(report.swap > Duration::ZERO && report.swap < Duration::from_millis(50));
    let at_reload = get(&bus, "n");
    wait_for("five more scans", || get(&bus, "n") >= at_reload + 5.0);
    let stats = handle.stats();
    handle.stop().unwrap();
    let scans = stats.tasks[0].scans();
    assert_eq!(
        get(&bus, "n"),
        scans as f64,
        "the counter continued through the reload"
    );
    let times = times.lock().unwrap();
    let gaps: Vec<u64> = times
        .windows(2)
        .map(|w| (w[1].nanos() - w[0].nanos()) / 1_000_000)
        .collect();
    // The last scan runs at stop time, off the grid.
    let on_grid = &gaps[..gaps.len() - 1];
    assert!(
        on_grid.iter().all(|g| *g == 50),
        "a scan was skipped or repeated: {gaps:?}"
    );
    assert_eq!(stats.tasks[0].overruns(), 0);
}

struct Count(Arc<std::sync::atomic::AtomicU64>);

impl crate::ScanHook for Count {
    fn after_task(&mut self, _: usize, _: &Bus, _: MonoTime, _: Timestamp) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn a_new_engine_without_a_hook_keeps_the_old_one() {
    let bus = floats(&["a"]);
    let a = sig(&bus, "a");
    let runs = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let clock = vclock();
    let mut old = Engine::new(
        one_task(10, vec![counter("c", "CTR", a)]),
        bus.clone(),
        clock.clone(),
    )
    .unwrap();
    old.set_hook(Box::new(Count(runs.clone())));
    old.run_until(ms(10));
    assert_eq!(runs.load(Ordering::Relaxed), 2);
    let mut new = Engine::new(one_task(10, vec![counter("c", "CTR", a)]), bus, clock).unwrap();
    new.take_over(&mut old);
    new.run_until(ms(20));
    assert_eq!(runs.load(Ordering::Relaxed), 3);
}
