//! A small harness for block unit tests: builds a block through its [`BlockType`]'s `build`
//! with chosen port types, then steps it through scans at given times over a local process
//! image, exactly as the engine would (`Io::new`).
//!
//! Every scan also checks the "no allocation in `execute`" rule: the test binary's global
//! allocator counts allocations per thread, and a scan that allocated fails the test.

use petra_core::{MonoTime, Quality, Value, ValueType};
use petra_engine::{Block, BlockType, BuildCtx, Io, ParamValue, Params, ResolvedPort};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

struct CountingAlloc;

thread_local! {
    // `const` and no destructor: usable from inside the allocator without allocating itself.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

fn allocations() -> u64 {
    ALLOCATIONS.try_with(Cell::get).unwrap_or(0)
}

// SAFETY: forwards every call unchanged to the system allocator; only counts.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Scan times are given in milliseconds after this origin (not zero, so "time zero" bugs show).
const ORIGIN_NS: u64 = 1_000_000_000_000;

pub fn at_ms(ms: u64) -> MonoTime {
    MonoTime::from_nanos(ORIGIN_NS + ms * 1_000_000)
}

enum In {
    Signal(ValueType),
    Const(Value),
    Open,
}

/// Describes one block instance: its input bindings, output types and parameters.
pub struct Setup {
    ty: &'static BlockType,
    inputs: Vec<(String, In)>,
    outputs: Vec<Option<ValueType>>,
    params: Params,
    period: Duration,
}

impl Setup {
    pub fn new(ty: &'static BlockType) -> Setup {
        Setup {
            ty,
            inputs: Vec::new(),
            outputs: Vec::new(),
            params: Params::default(),
            period: Duration::from_millis(10),
        }
    }

    /// The next input (spec order) wired to a signal of type `t`.
    pub fn input(mut self, name: &str, t: ValueType) -> Setup {
        self.inputs.push((name.to_string(), In::Signal(t)));
        self
    }

    /// `n` inputs `prefix1..prefixN`, all signals of type `t`.
    pub fn inputs(mut self, prefix: &str, n: usize, t: ValueType) -> Setup {
        for i in 1..=n {
            self = self.input(&format!("{prefix}{i}"), t);
        }
        self
    }

    /// The next input given as a constant.
    pub fn constant(mut self, name: &str, v: Value) -> Setup {
        self.inputs.push((name.to_string(), In::Const(v)));
        self
    }

    /// The next input left open.
    pub fn open(mut self, name: &str) -> Setup {
        self.inputs.push((name.to_string(), In::Open));
        self
    }

    /// The next output, wired to a signal of type `t`.
    pub fn output(mut self, t: ValueType) -> Setup {
        self.outputs.push(Some(t));
        self
    }

    /// The next output, not wired.
    pub fn unwired(mut self) -> Setup {
        self.outputs.push(None);
        self
    }

    pub fn param(mut self, name: &str, v: ParamValue) -> Setup {
        self.params.0.insert(name.to_string(), v);
        self
    }

    /// Task period: the `dt` of the first scan.
    pub fn period_ms(mut self, ms: u64) -> Setup {
        self.period = Duration::from_millis(ms);
        self
    }

    /// Runs the type's `build`; `Err` is its message.
    pub fn build(self) -> Result<Harness, String> {
        let resolved: Vec<ResolvedPort> = self
            .inputs
            .iter()
            .map(|(name, b)| ResolvedPort {
                name: name.clone(),
                ty: match b {
                    In::Signal(t) => Some(*t),
                    In::Const(v) => Some(v.value_type()),
                    In::Open => None,
                },
            })
            .collect();
        let ctx = BuildCtx {
            block: "x",
            inputs: &resolved,
            outputs: &self.outputs,
            params: &self.params,
        };
        let block = (self.ty.build)(&ctx)?;

        let mut image = Vec::new();
        let mut srcs = Vec::new();
        let mut wired = Vec::new();
        for (_, b) in self.inputs {
            srcs.push(match b {
                In::Signal(t) => {
                    wired.push(image.len());
                    image.push(t.zero());
                    (image.len() - 1) as u32
                }
                In::Const(v) => {
                    image.push(v);
                    (image.len() - 1) as u32
                }
                In::Open => {
                    image.push(Value::Bool(false));
                    (image.len() - 1) as u32
                }
            });
        }
        let outs = self
            .outputs
            .iter()
            .map(|t| {
                t.map(|t| {
                    image.push(t.zero());
                    (image.len() - 1) as u32
                })
            })
            .collect();
        Ok(Harness {
            name: self.ty.name,
            block,
            qualities: vec![Quality::Good; image.len()],
            image,
            srcs,
            outs,
            wired,
            period: self.period,
            last: None,
            quality: Quality::Good,
        })
    }

    /// Builds, failing the test with `build`'s message if it refuses.
    pub fn harness(self) -> Harness {
        let name = self.ty.name;
        self.build()
            .unwrap_or_else(|e| panic!("{name}: build refused: {e}"))
    }

    /// Builds, failing the test if `build` accepts; returns the message.
    pub fn refused(self) -> String {
        let name = self.ty.name;
        match self.build() {
            Ok(_) => panic!("{name}: build accepted a combination it should refuse"),
            Err(e) => e,
        }
    }
}

/// One built block over its own process image.
pub struct Harness {
    name: &'static str,
    block: Box<dyn Block>,
    image: Vec<Value>,
    /// The quality of each image slot, as the engine keeps it (all good unless a test says).
    qualities: Vec<Quality>,
    srcs: Vec<u32>,
    outs: Vec<Option<u32>>,
    /// Image slots of the signal-wired inputs, in spec order.
    wired: Vec<usize>,
    period: Duration,
    last: Option<MonoTime>,
    /// What the block asked with `Io::set_quality` in the last scan.
    quality: Quality,
}

impl Harness {
    /// One scan at `t_ms` with the signal-wired inputs set to `inputs` (in spec order).
    pub fn scan(&mut self, t_ms: u64, inputs: &[Value]) -> &mut Harness {
        self.scan_at(at_ms(t_ms), inputs)
    }

    /// One scan at an arbitrary monotonic time.
    pub fn scan_at(&mut self, now: MonoTime, inputs: &[Value]) -> &mut Harness {
        assert_eq!(
            inputs.len(),
            self.wired.len(),
            "{}: scan needs one value per wired input",
            self.name
        );
        for (slot, v) in self.wired.iter().zip(inputs) {
            self.image[*slot] = v.clone();
        }
        let dt = match self.last {
            Some(last) => now.saturating_sub(last),
            None => self.period,
        };
        let first = self.last.is_none();
        self.last = Some(now);
        let mut io = Io::new(&mut self.image, &self.srcs, &self.outs, now, dt, first)
            .with_qualities(&self.qualities);
        let before = allocations();
        self.block.execute(&mut io);
        let allocated = allocations() - before;
        self.quality = io.quality();
        assert_eq!(allocated, 0, "{}: execute allocated", self.name);
        self
    }

    /// Sets the quality of the `k`-th signal-wired input (spec order) for the next scans.
    pub fn input_quality(&mut self, k: usize, q: Quality) -> &mut Harness {
        self.qualities[self.wired[k]] = q;
        self
    }

    /// The quality the block flagged (`Io::set_quality`) in the last scan; good if none.
    pub fn quality(&self) -> Quality {
        self.quality
    }

    /// True when the last scan flagged `bad(arithmetic)`.
    pub fn flagged(&self) -> bool {
        self.quality == Quality::Bad(petra_core::BadReason::Arithmetic)
    }

    /// Hot reload as the engine does it: this freshly built instance adopts `running`'s state.
    pub fn adopt_from(&mut self, running: &mut Harness) {
        self.block.adopt(&mut *running.block);
    }

    /// Like [`Harness::adopt_from`], from a block instance made by the test.
    pub fn adopt_block(&mut self, running: &mut dyn Block) {
        self.block.adopt(running);
    }

    /// The value of output `o` after the last scan.
    pub fn out(&self, o: usize) -> &Value {
        let slot = self.outs[o].unwrap_or_else(|| panic!("output {o} is not wired"));
        &self.image[slot as usize]
    }

    pub fn bool(&self, o: usize) -> bool {
        self.out(o).as_bool().expect("bool output")
    }

    pub fn int(&self, o: usize) -> i64 {
        self.out(o).as_int().expect("int output")
    }

    pub fn float(&self, o: usize) -> f64 {
        match self.out(o) {
            Value::Float(f) => *f,
            v => panic!("float output expected, got {v:?}"),
        }
    }
}

/// Shorthands for input values.
pub fn b(v: bool) -> Value {
    Value::Bool(v)
}

pub fn i(v: i64) -> Value {
    Value::Int(v)
}

pub fn f(v: f64) -> Value {
    Value::Float(v)
}

/// Hot-reload check: runs `scans` (time in ms, wired inputs) through a reference instance and
/// through a live one that is replaced, before scan `reload`, by a fresh instance from `make`
/// adopting its state. Outputs `0..outputs` must be equal on every scan.
pub fn reload_keeps_state(
    make: impl Fn() -> Harness,
    scans: &[(u64, Vec<Value>)],
    reload: usize,
    outputs: usize,
) {
    let mut reference = make();
    let mut live = make();
    for (k, (t, ins)) in scans.iter().enumerate() {
        if k == reload {
            let mut fresh = make();
            fresh.adopt_from(&mut live);
            live = fresh;
        }
        reference.scan(*t, ins);
        live.scan(*t, ins);
        for o in 0..outputs {
            assert_eq!(
                reference.out(o),
                live.out(o),
                "{}: output {o} at scan {k} (t={t}ms), reload before scan {reload}",
                reference.name
            );
        }
    }
}
