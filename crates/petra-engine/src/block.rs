//! The block contract: named, typed ports and typed parameters, checked when the configuration
//! is compiled, and an `execute` that runs once per scan without allocating.
//!
//! A block type is a [`BlockType`]: a static description of its ports and parameters plus a
//! `build` function. The configuration compiler binds every input port to a signal or a
//! constant, every output port to a signal (or nothing), checks the types, and calls `build`
//! with the resolved types ([`BuildCtx`]). `build` may refuse a combination (for example an int
//! output fed from float inputs) with a message; the compiler reports it at the block's line.
//!
//! At run time a block sees only an [`Io`]: its inputs and outputs by position (the order of the
//! spec, with a variadic port expanded in place), the scan time, and the time since the previous
//! scan. It never sees a signal name, the bus or a clock, so it behaves the same in real and
//! virtual time.
//!
//! Quality is handled by the engine: if any wired input is bad, the block is not executed (its
//! state is frozen) and its outputs keep their last value with quality `bad(input_bad)`; if any
//! input is uncertain, the outputs are uncertain. A block whose computation has no defined
//! result this scan (division by zero, NaN, overflow) sets its documented fallback value and
//! calls [`Io::set_quality`]; downstream blocks then see a bad input. The one exception is a
//! block that [reads quality](Block::reads_quality) (the built-in `QUALITY`): it always runs and
//! turns its input's quality into values, so logic can react to a dead device link.
//!
//! Hot reload keeps state: [`Block::adopt`] hands a new instance the running one of the same
//! name and type.

use petra_core::{MonoTime, Quality, Value, ValueType};
use std::any::Any;
use std::collections::BTreeMap;
use std::time::Duration;

/// Most inputs a variadic port (`in1`..`inN`) may have.
pub const MAX_VARIADIC: usize = 16;

/// The type a port accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortType {
    Bool,
    Int,
    /// A float; an input also accepts an int signal (widened).
    Float,
    String,
    /// Int or float, resolved when the configuration is compiled.
    Num,
    /// Any type, resolved when the configuration is compiled.
    Any,
    /// A duration (IEC `TIME`): a duration constant (`500ms`) or an int signal in milliseconds.
    Time,
}

impl PortType {
    /// Whether an input port of this type accepts a signal or constant of type `t`.
    pub fn accepts_input(self, t: ValueType) -> bool {
        match self {
            PortType::Bool => t == ValueType::Bool,
            PortType::Int | PortType::Time => t == ValueType::Int,
            PortType::Float | PortType::Num => t.is_numeric(),
            PortType::String => t == ValueType::String,
            PortType::Any => true,
        }
    }

    /// Whether an output port of this type may drive a signal of type `t`.
    pub fn accepts_output(self, t: ValueType) -> bool {
        match self {
            PortType::Float => t == ValueType::Float,
            other => other.accepts_input(t),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            PortType::Bool => "bool",
            PortType::Int => "int",
            PortType::Float => "float",
            PortType::String => "string",
            PortType::Num => "int or float",
            PortType::Any => "any type",
            PortType::Time => "time (int ms)",
        }
    }
}

/// One port of a block type.
#[derive(Clone, Copy, Debug)]
pub struct PortSpec {
    /// Lower-case IEC name (`in`, `pt`, `q`). For a variadic port, the prefix: `in` means
    /// `in1`, `in2`, … `inN`.
    pub name: &'static str,
    pub ty: PortType,
    /// Inputs: must be wired or given as a constant. Ignored for outputs (always optional).
    pub required: bool,
    /// Inputs only: `name1..nameN`, at least 2 and at most [`MAX_VARIADIC`], numbered from 1
    /// without gaps.
    pub variadic: bool,
    pub doc: &'static str,
}

impl PortSpec {
    /// A required input.
    pub const fn required(name: &'static str, ty: PortType, doc: &'static str) -> PortSpec {
        PortSpec {
            name,
            ty,
            required: true,
            variadic: false,
            doc,
        }
    }

    /// An optional input (reads as false / 0 / 0.0 / "" when left open).
    pub const fn optional(name: &'static str, ty: PortType, doc: &'static str) -> PortSpec {
        PortSpec {
            required: false,
            ..PortSpec::required(name, ty, doc)
        }
    }

    /// A variadic input `name1..nameN`, N ≥ 2.
    pub const fn variadic(name: &'static str, ty: PortType, doc: &'static str) -> PortSpec {
        PortSpec {
            variadic: true,
            ..PortSpec::required(name, ty, doc)
        }
    }

    /// An output (always optional to wire).
    pub const fn output(name: &'static str, ty: PortType, doc: &'static str) -> PortSpec {
        PortSpec::optional(name, ty, doc)
    }
}

/// The type of a parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamType {
    Bool,
    Int,
    /// Accepts an int literal too.
    Float,
    /// Written `500ms`, `10s`, `5m`, `1h`, `7d`.
    Duration,
    String,
}

/// One parameter of a block type.
#[derive(Clone, Copy, Debug)]
pub struct ParamSpec {
    pub name: &'static str,
    pub ty: ParamType,
    pub required: bool,
    /// Inclusive numeric range checked by the compiler (durations in seconds).
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// What it does and its default.
    pub doc: &'static str,
}

impl ParamSpec {
    /// An optional parameter without a range.
    pub const fn optional(name: &'static str, ty: ParamType, doc: &'static str) -> ParamSpec {
        ParamSpec {
            name,
            ty,
            required: false,
            min: None,
            max: None,
            doc,
        }
    }

    /// The same parameter with an inclusive range.
    pub const fn range(self, min: Option<f64>, max: Option<f64>) -> ParamSpec {
        ParamSpec { min, max, ..self }
    }
}

/// A parameter value as given in the configuration.
#[derive(Clone, Debug, PartialEq)]
pub enum ParamValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    Duration(Duration),
    String(String),
}

/// The parameters given to one block instance (already type- and range-checked).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Params(pub BTreeMap<String, ParamValue>);

impl Params {
    pub fn get(&self, name: &str) -> Option<&ParamValue> {
        self.0.get(name)
    }

    pub fn bool_or(&self, name: &str, default: bool) -> bool {
        match self.get(name) {
            Some(ParamValue::Bool(b)) => *b,
            _ => default,
        }
    }

    pub fn int_or(&self, name: &str, default: i64) -> i64 {
        match self.get(name) {
            Some(ParamValue::Int(i)) => *i,
            _ => default,
        }
    }

    /// Float parameters also accept int literals.
    pub fn float_or(&self, name: &str, default: f64) -> f64 {
        match self.get(name) {
            Some(ParamValue::Float(f)) => *f,
            Some(ParamValue::Int(i)) => *i as f64,
            _ => default,
        }
    }

    pub fn duration_or(&self, name: &str, default: Duration) -> Duration {
        match self.get(name) {
            Some(ParamValue::Duration(d)) => *d,
            _ => default,
        }
    }

    pub fn str_or<'a>(&'a self, name: &str, default: &'a str) -> &'a str {
        match self.get(name) {
            Some(ParamValue::String(s)) => s,
            _ => default,
        }
    }
}

/// One resolved input port, as `build` sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedPort {
    /// The port name as written (`in3` for the third input of a variadic `in`).
    pub name: String,
    /// Type of the wired signal or constant; `None` when an optional input is left open.
    pub ty: Option<ValueType>,
}

/// What `build` gets: the resolved types of every port and the parameters.
pub struct BuildCtx<'a> {
    /// Instance name, for messages.
    pub block: &'a str,
    /// Inputs in spec order, variadic ports expanded in place.
    pub inputs: &'a [ResolvedPort],
    /// Outputs in spec order: the wired signal's type, or `None` when not wired.
    pub outputs: &'a [Option<ValueType>],
    pub params: &'a Params,
}

impl BuildCtx<'_> {
    /// The resolved type of input `i` (`None` if open or out of range).
    pub fn input_type(&self, i: usize) -> Option<ValueType> {
        self.inputs.get(i).and_then(|p| p.ty)
    }

    /// The resolved type of output `o` (`None` if not wired or out of range).
    pub fn output_type(&self, o: usize) -> Option<ValueType> {
        self.outputs.get(o).copied().flatten()
    }
}

/// Result of `build`: the instance, or a message saying what is wrong with the combination.
/// The message does not name the block: the compiler prefixes ``block `NAME` (TYPE): ``.
pub type BuildResult = Result<Box<dyn Block>, String>;

/// A block type: its description and its constructor.
pub struct BlockType {
    /// IEC 61131-3 name where one exists, upper case (`TON`).
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub summary: &'static str,
    pub inputs: &'static [PortSpec],
    pub outputs: &'static [PortSpec],
    pub params: &'static [ParamSpec],
    pub build: fn(&BuildCtx<'_>) -> BuildResult,
}

/// A block instance. `execute` runs once per scan of its task, in dependency order.
pub trait Block: Any + Send {
    fn execute(&mut self, io: &mut Io<'_>);

    /// Hot reload: called once on the freshly built instance, before its first scan, with the
    /// running instance of the same name and type. Copy the state worth keeping — a running
    /// timer's start, a counter's count, a PID's integral — so a reload does not disturb the
    /// process; parameters stay the new ones. The default keeps nothing (the block starts
    /// fresh). Use [`previous`] to get the old instance as its concrete type.
    fn adopt(&mut self, previous: &mut dyn Block) {
        let _ = previous;
    }

    /// A block that reads its inputs' quality itself ([`Io::input_quality`]) returns true: the
    /// engine then runs it whatever the quality of its inputs, and its outputs are good unless
    /// it calls [`Io::set_quality`]. Every other block is skipped while an input is bad, so it
    /// can never report that its input went bad; this is how plant logic sees a dead link.
    fn reads_quality(&self) -> bool {
        false
    }
}

/// The running instance handed to [`Block::adopt`], as `T` — `None` if it is another type
/// (which the engine never does: it only pairs blocks of the same name and type).
pub fn previous<T: Block>(previous: &mut dyn Block) -> Option<&mut T> {
    (previous as &mut dyn Any).downcast_mut::<T>()
}

static OPEN: Value = Value::Bool(false);

/// A block's view of one scan: its inputs, its outputs, and time.
///
/// Inputs and outputs are indices into the task's process image. Constants given under
/// `params` and open optional inputs have image slots of their own (an open input's slot holds
/// `false`, which reads as false / 0 / 0.0 / ""), so reading an input is one index.
pub struct Io<'a> {
    pub(crate) image: &'a mut [Value],
    pub(crate) inputs: &'a [u32],
    pub(crate) outputs: &'a [Option<u32>],
    pub(crate) now: MonoTime,
    pub(crate) dt: Duration,
    pub(crate) first_scan: bool,
    /// Quality the block asked for its outputs this scan (see [`Io::set_quality`]).
    pub(crate) flag: Quality,
    /// The quality of each image slot (same indices as `image`); empty reads as good.
    pub(crate) qualities: &'a [Quality],
}

impl<'a> Io<'a> {
    /// Builds an `Io` over a caller-owned image — for block unit tests and the SDK's harness.
    /// `inputs[i]` and `outputs[o]` are image indices.
    pub fn new(
        image: &'a mut [Value],
        inputs: &'a [u32],
        outputs: &'a [Option<u32>],
        now: MonoTime,
        dt: Duration,
        first_scan: bool,
    ) -> Io<'a> {
        Io {
            image,
            inputs,
            outputs,
            now,
            dt,
            first_scan,
            flag: Quality::Good,
            qualities: &[],
        }
    }

    /// The same `Io` with the quality of each image slot (`qualities[s]` for `image[s]`), for
    /// unit tests of a block that [reads quality](Block::reads_quality).
    pub fn with_qualities(self, qualities: &'a [Quality]) -> Io<'a> {
        Io { qualities, ..self }
    }

    /// Marks every output of this block, for this scan, with (at least) quality `q` — e.g.
    /// `Quality::Bad(BadReason::Arithmetic)` after a division by zero, with the outputs set to
    /// the block's documented fallback value. The worst of repeated calls wins; the next scan
    /// starts good again.
    #[inline(always)]
    pub fn set_quality(&mut self, q: Quality) {
        self.flag = self.flag.worst(q);
    }

    /// What [`Io::set_quality`] asked for this scan (good if nothing).
    pub fn quality(&self) -> Quality {
        self.flag
    }

    pub fn input_count(&self) -> usize {
        self.inputs.len()
    }

    /// The quality of input `i`: what the engine read from the bus this scan, or what an earlier
    /// block of the task produced (good for a constant, an open input or an index out of range).
    /// Only a block that [reads quality](Block::reads_quality) ever runs with a bad input.
    #[inline(always)]
    pub fn input_quality(&self, i: usize) -> Quality {
        self.inputs
            .get(i)
            .and_then(|s| self.qualities.get(*s as usize))
            .copied()
            .unwrap_or(Quality::Good)
    }

    /// The raw value of input `i` (false for an index out of range).
    #[inline(always)]
    pub fn value(&self, i: usize) -> &Value {
        self.inputs
            .get(i)
            .and_then(|s| self.image.get(*s as usize))
            .unwrap_or(&OPEN)
    }

    #[inline(always)]
    pub fn bool(&self, i: usize) -> bool {
        self.value(i).as_bool().unwrap_or(false)
    }

    #[inline(always)]
    pub fn int(&self, i: usize) -> i64 {
        self.value(i).as_int().unwrap_or(0)
    }

    /// Float inputs; int inputs are widened.
    #[inline(always)]
    pub fn float(&self, i: usize) -> f64 {
        self.value(i).as_f64().unwrap_or(0.0)
    }

    #[inline(always)]
    pub fn str(&self, i: usize) -> &str {
        self.value(i).as_str().unwrap_or("")
    }

    /// A `Time` input (int milliseconds; negative reads as zero).
    #[inline(always)]
    pub fn time(&self, i: usize) -> Duration {
        Duration::from_millis(self.int(i).max(0) as u64)
    }

    pub fn output_connected(&self, o: usize) -> bool {
        matches!(self.outputs.get(o), Some(Some(_)))
    }

    /// Sets output `o`. A value of another type than the wired signal is ignored (the compiler
    /// has made that impossible for correct blocks; this keeps the image well-typed regardless).
    #[inline(always)]
    pub fn set(&mut self, o: usize, v: Value) {
        if let Some(Some(s)) = self.outputs.get(o) {
            let slot = &mut self.image[*s as usize];
            if slot.value_type() == v.value_type() {
                *slot = v;
            } else {
                debug_assert!(
                    false,
                    "block wrote {v:?} into a {} output",
                    slot.value_type()
                );
            }
        }
    }

    #[inline(always)]
    pub fn set_bool(&mut self, o: usize, v: bool) {
        self.set(o, Value::Bool(v));
    }

    #[inline(always)]
    pub fn set_int(&mut self, o: usize, v: i64) {
        self.set(o, Value::Int(v));
    }

    #[inline(always)]
    pub fn set_float(&mut self, o: usize, v: f64) {
        self.set(o, Value::Float(v));
    }

    /// A `Time` output, in int milliseconds.
    #[inline(always)]
    pub fn set_time(&mut self, o: usize, d: Duration) {
        self.set(o, Value::Int(d.as_millis().min(i64::MAX as u128) as i64));
    }

    /// Sets a `Num` output: stored as float, or rounded to int when the wired signal is int.
    #[inline(always)]
    pub fn set_num(&mut self, o: usize, v: f64) {
        if let Some(Some(s)) = self.outputs.get(o) {
            let slot = &mut self.image[*s as usize];
            *slot = match slot {
                Value::Int(_) => Value::Int(v.round() as i64),
                _ => Value::Float(v),
            };
        }
    }

    /// The scheduled time of this scan (not the moment it actually started), so timers are
    /// exact at period boundaries whatever the jitter.
    pub fn now(&self) -> MonoTime {
        self.now
    }

    /// Scheduled time since this task's previous scan (the period on the first scan, and a
    /// multiple of it after skipped overruns).
    pub fn dt(&self) -> Duration {
        self.dt
    }

    /// True on the first scan after start (IEC "first scan" flag).
    pub fn first_scan(&self) -> bool {
        self.first_scan
    }
}
