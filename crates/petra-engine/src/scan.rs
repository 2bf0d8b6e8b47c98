//! The scheduler, the process image and the scan thread.
//!
//! [`Engine`] is the whole scan logic as a plain struct: [`Engine::run_due`] runs every task
//! whose deadline has come, [`Engine::run_until`] drives it through virtual time. Nothing here
//! sleeps on its own or reads a clock other than the injected one, which is what makes the
//! engine testable in virtual time. [`Engine::spawn`] moves it onto its dedicated OS thread.
//!
//! Scheduling: task *k* runs at `origin + n × period`. When several are due, the one with the
//! highest priority runs first (ties: earliest deadline, then declaration order). A task that
//! is late by one period or more runs once, at the latest grid point that has passed, and every
//! grid point it skipped is counted as an overrun — no burst of catch-up scans.
//!
//! Watchdog: a scan that runs longer than its task's watchdog time has its outputs discarded and
//! the declared safe values (quality `bad(watchdog)`) written instead. When the engine runs on
//! its thread, a monitor thread does that *while* the scan is still hung; in virtual time the
//! check happens when the scan ends. The task recovers by itself: the next scan that finishes in
//! time commits its outputs again.

use crate::block::{Block, Io};
use crate::graph::{Node, execution_order};
use crate::reload::Layout;
use crate::{EngineError, Input, Program, ScanHook};
use hdrhistogram::Histogram;
use petra_core::{BadReason, Bus, Clock, MonoTime, Quality, SignalId, Value};
use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const MIN_PERIOD: Duration = Duration::from_millis(1);
const MAX_PERIOD: Duration = Duration::from_secs(3600);
/// Longest single sleep of the scan thread, so a stop request is seen promptly.
pub(crate) const MAX_SLEEP: Duration = Duration::from_millis(20);
pub(crate) const IDLE: usize = usize::MAX;
/// How many blocks ahead the scan prefetches block state.
const PREFETCH_AHEAD: usize = 8;

fn new_histogram() -> Histogram<u64> {
    // Nanoseconds from 1 ns to 1 h at 3 significant digits.
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid histogram bounds")
}

/// Percentiles of a histogram, in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Percentiles {
    pub p50: u64,
    pub p99: u64,
    pub max: u64,
}

/// Scan and jitter histograms of one task (nanoseconds).
pub struct Histograms {
    pub scan: Histogram<u64>,
    pub jitter: Histogram<u64>,
}

impl Histograms {
    fn new() -> Histograms {
        Histograms {
            scan: new_histogram(),
            jitter: new_histogram(),
        }
    }

    fn percentiles(h: &Histogram<u64>) -> Percentiles {
        Percentiles {
            p50: h.value_at_quantile(0.5),
            p99: h.value_at_quantile(0.99),
            max: h.max(),
        }
    }
}

/// Live statistics of one task; readable from any thread.
pub struct TaskStats {
    pub name: String,
    pub period: Duration,
    pub priority: i32,
    pub(crate) scans: AtomicU64,
    pub(crate) overruns: AtomicU64,
    pub(crate) watchdog_trips: AtomicU64,
    pub(crate) last_scan_ns: AtomicU64,
    pub(crate) hist: Mutex<Histograms>,
}

/// A consistent copy of a task's statistics.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskSnapshot {
    pub name: String,
    pub scans: u64,
    pub overruns: u64,
    pub watchdog_trips: u64,
    pub last_scan: Duration,
    pub scan: Percentiles,
    pub jitter: Percentiles,
}

impl TaskStats {
    pub fn scans(&self) -> u64 {
        self.scans.load(Ordering::Relaxed)
    }

    pub fn overruns(&self) -> u64 {
        self.overruns.load(Ordering::Relaxed)
    }

    pub fn watchdog_trips(&self) -> u64 {
        self.watchdog_trips.load(Ordering::Relaxed)
    }

    /// Runs `f` on the histograms (the scan thread records into them directly; a scan that
    /// found them locked by a reader is added after the next one).
    pub fn with_histograms<R>(&self, f: impl FnOnce(&Histograms) -> R) -> R {
        f(&self.hist.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn snapshot(&self) -> TaskSnapshot {
        let (scan, jitter) = self.with_histograms(|h| {
            (
                Histograms::percentiles(&h.scan),
                Histograms::percentiles(&h.jitter),
            )
        });
        TaskSnapshot {
            name: self.name.clone(),
            scans: self.scans(),
            overruns: self.overruns(),
            watchdog_trips: self.watchdog_trips(),
            last_scan: Duration::from_nanos(self.last_scan_ns.load(Ordering::Relaxed)),
            scan,
            jitter,
        }
    }
}

/// Statistics of every task, shared with whoever reports them.
pub struct Stats {
    pub tasks: Vec<TaskStats>,
}

/// A block as the scan runs it. Its bindings are ranges into the task's flat arrays, laid out
/// in execution order: the scan walks memory sequentially instead of chasing four small
/// allocations per block (measured: those cache misses were most of the scan time).
pub(crate) struct RtBlock {
    pub(crate) block: Box<dyn Block>,
    srcs: Span,
    outs: Span,
    in_slots: Span,
    out_slots: Span,
}

/// A range of a flat array, in 8 bytes instead of `Range<usize>`'s 16 (a block is 48 bytes).
#[derive(Clone, Copy)]
struct Span {
    start: u32,
    end: u32,
}

impl Span {
    #[inline(always)]
    fn r(self) -> Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// A block's bindings before they are flattened into the task.
struct Pending {
    name: String,
    type_name: &'static str,
    block: Box<dyn Block>,
    srcs: Vec<u32>,
    in_slots: Vec<u32>,
    outs: Vec<Option<u32>>,
    out_slots: Vec<u32>,
}

pub(crate) struct Task {
    pub(crate) period: Duration,
    priority: i32,
    watchdog: Option<Duration>,
    pub(crate) blocks: Vec<RtBlock>,
    pub(crate) names: Vec<String>,
    /// Block type names, for pairing blocks on reload.
    pub(crate) types: Vec<&'static str>,
    /// Input sources of every block, in execution order.
    srcs: Vec<u32>,
    /// Output image slots (or unwired) of every block.
    outs: Vec<Option<u32>>,
    /// Image slots of wired inputs, for the quality check.
    in_slots: Vec<u32>,
    /// Image slots of wired outputs.
    out_slots: Vec<u32>,
    pub(crate) image: Vec<Value>,
    pub(crate) quality: Vec<Quality>,
    /// Signals copied from the bus into the image at task start.
    pub(crate) latch: Vec<(u32, SignalId)>,
    /// Signals committed from the image to the bus at task end.
    pub(crate) commit: Vec<(u32, SignalId)>,
    safe: Vec<(SignalId, Value)>,
    pub(crate) next: MonoTime,
    pub(crate) last: Option<MonoTime>,
    pub(crate) local: Histograms,
    /// Every image slot was good at the end of the last scan: with good inputs, this scan can
    /// skip the per-block quality bookkeeping.
    pub(crate) all_good: bool,
}

/// State shared between the scan thread and the watchdog monitor: which task runs since when,
/// and what the monitor needs to act. One per engine; a reload swaps it.
pub(crate) struct Watch {
    pub(crate) current: AtomicUsize,
    pub(crate) started: AtomicU64,
    pub(crate) tripped: Vec<AtomicBool>,
    pub(crate) limits: Vec<Option<Duration>>,
    pub(crate) safe: Vec<Vec<(SignalId, Value)>>,
    pub(crate) stats: Arc<Stats>,
    pub(crate) bus: Arc<Bus>,
    pub(crate) layout: Arc<Layout>,
}

/// The scan engine. See the module documentation.
pub struct Engine {
    pub(crate) bus: Arc<Bus>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) tasks: Vec<Task>,
    pub(crate) stats: Arc<Stats>,
    pub(crate) watch: Arc<Watch>,
    pub(crate) layout: Arc<Layout>,
    pub(crate) hook: Option<Box<dyn ScanHook>>,
    /// How long before a deadline the scan thread wakes to warm the cache (see `warm`).
    pub(crate) warm_ahead: Duration,
}

/// Default of [`Engine::set_warm_ahead`]: enough to prefetch a few thousand objects, short
/// against any period (the shortest is 1 ms).
pub const WARM_AHEAD: Duration = Duration::from_micros(150);

impl Engine {
    /// Prepares a program: orders each task's blocks, lays out the process images, and checks
    /// that every signal has at most one writing block. Tasks start at the clock's current time.
    pub fn new(
        program: Program,
        bus: Arc<Bus>,
        clock: Arc<dyn Clock>,
    ) -> Result<Engine, EngineError> {
        if program.tasks.is_empty() {
            return Err(EngineError::NoTasks);
        }
        let mut writers: HashMap<SignalId, String> = HashMap::new();
        for t in &program.tasks {
            for b in &t.blocks {
                for id in b.outputs.iter().flatten() {
                    if let Some(first) = writers.insert(*id, b.name.clone()) {
                        return Err(EngineError::MultipleWriters {
                            signal: *id,
                            blocks: vec![first, b.name.clone()],
                        });
                    }
                }
            }
        }
        let safe: HashMap<SignalId, Value> = program.safe_values.into_iter().collect();
        let now = clock.mono();
        let mut tasks = Vec::new();
        let mut stats = Vec::new();
        for spec in program.tasks {
            if spec.period < MIN_PERIOD || spec.period > MAX_PERIOD {
                return Err(EngineError::BadPeriod {
                    task: spec.name,
                    period: spec.period,
                });
            }
            let reads: Vec<Vec<SignalId>> = spec
                .blocks
                .iter()
                .map(|b| {
                    b.inputs
                        .iter()
                        .filter_map(|i| match i {
                            Input::Signal(id) => Some(*id),
                            _ => None,
                        })
                        .collect()
                })
                .collect();
            let writes: Vec<Vec<SignalId>> = spec
                .blocks
                .iter()
                .map(|b| b.outputs.iter().flatten().copied().collect())
                .collect();
            let nodes: Vec<Node<'_>> = reads
                .iter()
                .zip(&writes)
                .map(|(r, w)| Node {
                    reads: r,
                    writes: w,
                })
                .collect();
            let order = execution_order(&nodes).map_err(|cycle| EngineError::Cycle {
                task: spec.name.clone(),
                blocks: cycle.iter().map(|i| spec.blocks[*i].name.clone()).collect(),
            })?;

            // Lay out the image: one slot per signal the task touches.
            let mut slot_of: HashMap<SignalId, u32> = HashMap::new();
            let mut image = Vec::new();
            let mut quality = Vec::new();
            let mut slot = |input: Input| -> Result<u32, EngineError> {
                let (value, q) = match input {
                    Input::Signal(id) => {
                        if let Some(s) = slot_of.get(&id) {
                            return Ok(*s);
                        }
                        let sample = bus.read(id).ok_or(EngineError::UnknownSignal(id))?;
                        slot_of.insert(id, image.len() as u32);
                        (sample.value, sample.quality)
                    }
                    // Constants and open inputs get slots of their own that nothing overwrites.
                    Input::Const(v) => (v, Quality::Good),
                    Input::Open => (Value::Bool(false), Quality::Good),
                };
                image.push(value);
                quality.push(q);
                Ok(image.len() as u32 - 1)
            };
            let written: std::collections::HashSet<SignalId> =
                writes.iter().flatten().copied().collect();
            let mut latch = Vec::new();
            let mut latched = std::collections::HashSet::new();
            let mut commit = Vec::new();
            let mut by_index: Vec<Option<Pending>> = Vec::new();
            for b in spec.blocks {
                let mut srcs = Vec::with_capacity(b.inputs.len());
                // The slots whose bad quality skips the block: none for a block that reads
                // quality itself.
                let gated = !b.block.reads_quality();
                let mut in_slots = Vec::new();
                for i in b.inputs {
                    let signal = match &i {
                        Input::Signal(id) => Some(*id),
                        _ => None,
                    };
                    let s = slot(i)?;
                    if let Some(id) = signal {
                        if !written.contains(&id) && latched.insert(id) {
                            latch.push((s, id));
                        }
                        if gated {
                            in_slots.push(s);
                        }
                    }
                    srcs.push(s);
                }
                let mut outs = Vec::with_capacity(b.outputs.len());
                let mut out_slots = Vec::new();
                for o in b.outputs {
                    outs.push(match o {
                        Some(id) => {
                            let s = slot(Input::Signal(id))?;
                            commit.push((s, id));
                            out_slots.push(s);
                            Some(s)
                        }
                        None => None,
                    });
                }
                by_index.push(Some(Pending {
                    name: b.name,
                    type_name: b.type_name,
                    block: b.block,
                    srcs,
                    in_slots,
                    outs,
                    out_slots,
                }));
            }
            // Bus slots in id order, so latching and committing walk the bus sequentially.
            latch.sort_by_key(|(_, id)| *id);
            commit.sort_by_key(|(_, id)| *id);
            let (mut names, mut types, mut blocks) = (Vec::new(), Vec::new(), Vec::new());
            let (mut srcs, mut outs, mut in_slots, mut out_slots) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for i in order {
                let p = by_index[i].take().expect("each block ordered once");
                blocks.push(RtBlock {
                    block: p.block,
                    srcs: append(&mut srcs, p.srcs),
                    outs: append(&mut outs, p.outs),
                    in_slots: append(&mut in_slots, p.in_slots),
                    out_slots: append(&mut out_slots, p.out_slots),
                });
                names.push(p.name);
                types.push(p.type_name);
            }
            let task_safe = commit
                .iter()
                .filter_map(|(_, id)| safe.get(id).map(|v| (*id, v.clone())))
                .collect();
            stats.push(TaskStats {
                name: spec.name,
                period: spec.period,
                priority: spec.priority,
                scans: AtomicU64::new(0),
                overruns: AtomicU64::new(0),
                watchdog_trips: AtomicU64::new(0),
                last_scan_ns: AtomicU64::new(0),
                hist: Mutex::new(Histograms::new()),
            });
            tasks.push(Task {
                period: spec.period,
                priority: spec.priority,
                watchdog: spec.watchdog,
                blocks,
                names,
                types,
                srcs,
                outs,
                in_slots,
                out_slots,
                image,
                quality,
                latch,
                commit,
                safe: task_safe,
                next: now,
                last: None,
                local: Histograms::new(),
                all_good: false,
            });
        }
        let stats = Arc::new(Stats { tasks: stats });
        let layout = Arc::new(Layout {
            tasks: tasks
                .iter()
                .zip(&stats.tasks)
                .map(|(t, st)| {
                    let blocks = t.names.iter().cloned().zip(t.types.iter().copied());
                    (st.name.clone(), blocks.collect())
                })
                .collect(),
        });
        let watch = Arc::new(Watch {
            current: AtomicUsize::new(IDLE),
            started: AtomicU64::new(0),
            tripped: tasks.iter().map(|_| AtomicBool::new(false)).collect(),
            limits: tasks.iter().map(|t| t.watchdog).collect(),
            safe: tasks.iter().map(|t| t.safe.clone()).collect(),
            stats: stats.clone(),
            bus: bus.clone(),
            layout: layout.clone(),
        });
        Ok(Engine {
            bus,
            clock,
            tasks,
            stats,
            watch,
            layout,
            hook: None,
            warm_ahead: WARM_AHEAD,
        })
    }

    /// How long before each deadline the scan thread wakes to warm the cache for the scan
    /// (see `warm`); zero turns it off (for measuring what it buys).
    pub fn set_warm_ahead(&mut self, ahead: Duration) {
        self.warm_ahead = ahead;
    }

    /// Installs the hook that runs after every task (see [`ScanHook`]); replaces any earlier one.
    pub fn set_hook(&mut self, hook: Box<dyn ScanHook>) {
        self.hook = Some(hook);
    }

    /// The statistics, shared.
    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// Execution order of a task's blocks, by name.
    pub fn block_order(&self, task: usize) -> Vec<&str> {
        self.tasks
            .get(task)
            .map(|t| t.names.iter().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// Brings the state of the tasks due next back into the cache before their deadline: every
    /// block's state, the process image, the bus slots latched and committed. After a sleep of
    /// a period, the first touch of each is a cache miss, and for a thousand blocks those misses
    /// are most of a 10 ms scan; prefetching them while the thread waits anyway for its deadline
    /// takes them out of the scan. Only hints: nothing is read or written.
    pub(crate) fn warm(&self) {
        let next = self.next_deadline();
        for task in self.tasks.iter().filter(|t| t.next == next) {
            for b in &task.blocks {
                petra_core::prefetch(&*b.block as *const dyn Block);
            }
            for v in &task.image {
                petra_core::prefetch(v as *const Value);
            }
            for (_, id) in task.latch.iter().chain(&task.commit) {
                self.bus.prefetch(*id);
            }
        }
        if let Some(hook) = &self.hook {
            hook.warm();
        }
    }

    /// The earliest deadline of any task.
    pub fn next_deadline(&self) -> MonoTime {
        self.tasks
            .iter()
            .map(|t| t.next)
            .min()
            .unwrap_or(MonoTime::ZERO)
    }

    /// Moves every task's first deadline to `t` (used when the scan thread starts).
    pub(crate) fn restart_at(&mut self, t: MonoTime) {
        for task in &mut self.tasks {
            task.next = t;
            task.last = None;
        }
    }

    /// Runs, in priority order, every task whose deadline is at or before the clock's time.
    /// Returns the next deadline.
    pub fn run_due(&mut self) -> MonoTime {
        let mut now = self.clock.mono();
        while let Some(k) = self.pick_due(now) {
            self.run_task(k, now);
            now = self.clock.mono();
        }
        self.next_deadline()
    }

    /// Virtual time: runs every scan due up to and including `t`, moving the clock from
    /// deadline to deadline, and leaves the clock at `t`.
    pub fn run_until(&mut self, t: MonoTime) {
        loop {
            let d = self.next_deadline();
            if d > t {
                break;
            }
            self.clock.sleep_until(d);
            self.run_due();
        }
        self.clock.sleep_until(t);
        self.publish();
    }

    /// Runs one scan of every task now, in priority order (the last scan at shutdown).
    pub fn run_final(&mut self) {
        let mut order: Vec<usize> = (0..self.tasks.len()).collect();
        order.sort_by_key(|k| std::cmp::Reverse(self.tasks[*k].priority));
        for k in order {
            let now = self.clock.mono();
            self.tasks[k].next = now;
            self.run_task(k, now);
        }
        self.publish();
    }

    fn pick_due(&self, now: MonoTime) -> Option<usize> {
        self.tasks
            .iter()
            .enumerate()
            .filter(|(_, t)| t.next <= now)
            .min_by_key(|(k, t)| (std::cmp::Reverse(t.priority), t.next, *k))
            .map(|(k, _)| k)
    }

    fn run_task(&mut self, k: usize, now: MonoTime) {
        let task = &mut self.tasks[k];
        let stats = &self.stats.tasks[k];
        // Late by a period or more: run once at the latest grid point, count the skipped ones.
        let period = task.period.as_nanos() as u64;
        let late = now.nanos().saturating_sub(task.next.nanos());
        if late >= period {
            let skipped = late / period;
            task.next = MonoTime::from_nanos(task.next.nanos() + skipped * period);
            stats.overruns.fetch_add(skipped, Ordering::Relaxed);
        }
        let scheduled = task.next;
        let start = self.clock.mono();
        let wall = self.clock.wall();
        self.watch.started.store(start.nanos(), Ordering::Relaxed);
        self.watch.current.store(k, Ordering::Release);

        // Inputs: latch the bus into the image.
        let mut inputs_good = true;
        for (s, id) in &task.latch {
            if let Some(q) = self.bus.read_into(*id, &mut task.image[*s as usize]) {
                task.quality[*s as usize] = q;
                inputs_good &= q.is_good();
            }
        }
        let dt = match task.last {
            Some(last) => scheduled.saturating_sub(last),
            None => task.period,
        };
        let first_scan = task.last.is_none();
        let n = task.blocks.len();
        // Fast path: every input and every block output is good, so all stay good and the
        // per-block quality bookkeeping can be skipped.
        // A block that reports a bad result (`Io::set_quality`) ends the fast path: the blocks
        // after it must see that quality.
        let mut fast = inputs_good && task.all_good;
        for k in 0..n {
            // Each block's state is its own small heap allocation, cold after a sleep between
            // scans; fetching a few blocks ahead overlaps those misses instead of paying them
            // one after another (measured: the dominant cost of a 10 ms scan).
            if let Some(ahead) = task.blocks.get(k + PREFETCH_AHEAD) {
                petra_core::prefetch(&*ahead.block as *const dyn Block);
            }
            let b = &mut task.blocks[k];
            let worst = if fast {
                Quality::Good
            } else {
                task.in_slots[b.in_slots.r()]
                    .iter()
                    .fold(Quality::Good, |q, s| q.worst(task.quality[*s as usize]))
            };
            let out_q = if worst.is_bad() {
                Quality::Bad(BadReason::InputBad)
            } else {
                let mut io = Io {
                    image: &mut task.image,
                    inputs: &task.srcs[b.srcs.r()],
                    outputs: &task.outs[b.outs.r()],
                    now: scheduled,
                    dt,
                    first_scan,
                    flag: Quality::Good,
                    qualities: &task.quality,
                };
                b.block.execute(&mut io);
                worst.worst(io.flag)
            };
            if !fast || !out_q.is_good() {
                for s in &task.out_slots[b.out_slots.r()] {
                    task.quality[*s as usize] = out_q;
                }
                fast = false;
            }
        }
        if !fast {
            task.all_good = task.quality.iter().all(|q| q.is_good());
        }

        let end = self.clock.mono();
        self.watch.current.store(IDLE, Ordering::Release);
        let elapsed = end.saturating_sub(start);
        let overran_watchdog = task.watchdog.is_some_and(|w| elapsed > w);
        if overran_watchdog {
            if !self.watch.tripped[k].swap(true, Ordering::AcqRel) {
                drive_safe(&self.bus, &task.safe, self.clock.wall());
                stats.watchdog_trips.fetch_add(1, Ordering::Relaxed);
                tracing::error!(task = %stats.name, elapsed_ms = elapsed.as_secs_f64() * 1e3,
                    "task exceeded its watchdog; outputs driven to their safe values");
            }
        } else if self.watch.tripped[k].load(Ordering::Acquire) {
            // The monitor may have tripped this very scan while it ran; a scan that finished in
            // time clears the trip only if it really was within the watchdog.
            self.watch.tripped[k].store(false, Ordering::Release);
            tracing::warn!(task = %stats.name, "task back within its watchdog; outputs resumed");
        }
        if !self.watch.tripped[k].load(Ordering::Acquire) {
            // Outputs: committed once, all with the scan's timestamp.
            for (s, id) in &task.commit {
                // Cannot fail: the image is laid out from the bus and `Io::set` keeps types.
                let _ = self.bus.write_ref(
                    *id,
                    &task.image[*s as usize],
                    task.quality[*s as usize],
                    wall,
                );
            }
        }

        // The hook's work (alarm evaluation) is part of the task's scan time: it delays the
        // next task just as a block would.
        let elapsed = match &mut self.hook {
            Some(hook) => {
                hook.after_task(k, &self.bus, scheduled, wall);
                self.clock.mono().saturating_sub(start)
            }
            None => elapsed,
        };
        let jitter = start.nanos().abs_diff(scheduled.nanos());
        let scan_ns = elapsed.as_nanos().max(1) as u64;
        // Record straight into the shared histograms; never wait for a reader holding them —
        // then the scan goes to the private ones, folded in at the next uncontended scan.
        match stats.hist.try_lock() {
            Ok(mut shared) => {
                if !task.local.scan.is_empty() {
                    let _ = shared.scan.add(&task.local.scan);
                    let _ = shared.jitter.add(&task.local.jitter);
                    task.local.scan.reset();
                    task.local.jitter.reset();
                }
                shared.scan.saturating_record(scan_ns);
                shared.jitter.saturating_record(jitter.max(1));
            }
            Err(_) => {
                task.local.scan.saturating_record(scan_ns);
                task.local.jitter.saturating_record(jitter.max(1));
            }
        }
        stats.scans.fetch_add(1, Ordering::Relaxed);
        stats
            .last_scan_ns
            .store(elapsed.as_nanos() as u64, Ordering::Relaxed);
        task.last = Some(scheduled);
        task.next = MonoTime::from_nanos(scheduled.nanos() + period);
    }

    /// Folds what is left in the private histograms into the shared ones.
    pub(crate) fn publish(&mut self) {
        for (task, stats) in self.tasks.iter_mut().zip(&self.stats.tasks) {
            if task.local.scan.is_empty() {
                continue;
            }
            // Never wait for a reader: if one holds the lock, publish next time.
            if let Ok(mut shared) = stats.hist.try_lock() {
                let _ = shared.scan.add(&task.local.scan);
                let _ = shared.jitter.add(&task.local.jitter);
                task.local.scan.reset();
                task.local.jitter.reset();
            }
        }
    }
}

/// Appends `items` to `flat` and returns where they landed.
fn append<T>(flat: &mut Vec<T>, items: Vec<T>) -> Span {
    let start = flat.len() as u32;
    flat.extend(items);
    Span {
        start,
        end: flat.len() as u32,
    }
}

pub(crate) fn drive_safe(bus: &Bus, safe: &[(SignalId, Value)], ts: petra_core::Timestamp) {
    for (id, v) in safe {
        let _ = bus.write(*id, v.clone(), Quality::Bad(BadReason::Watchdog), ts);
    }
}

#[cfg(test)]
mod tests;
