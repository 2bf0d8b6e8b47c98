//! Petra's deterministic scan engine.
//!
//! The engine runs [`Program`]s: tasks with a period and a priority, each a list of block
//! instances. It is a PLC scan, on one dedicated OS thread:
//!
//! 1. tasks run at absolute deadlines (`start + k × period`), so they never drift; when several
//!    are due, the higher priority runs first;
//! 2. at task start the signals the task reads are copied from the bus into the task's
//!    *process image*; blocks run in dependency order against the image; outputs are committed
//!    to the bus once, at the end of the task, all with the scan's timestamp;
//! 3. a task that misses deadlines skips them and counts an overrun — it never runs a burst of
//!    catch-up scans;
//! 4. scan time and jitter (|actual start − scheduled start|) go into HDR histograms per task;
//! 5. a watchdog drives the declared safe values when a task runs longer than its watchdog time.
//!
//! Time comes from a [`petra_core::Clock`], so the same engine runs in virtual time for
//! `petra test`. This crate does no IO and never reads the wall clock itself.

pub mod block;
pub mod graph;
pub mod registry;
mod reload;
mod scan;
#[cfg(test)]
mod testutil;
mod thread;

pub use block::{
    Block, BlockType, BuildCtx, BuildResult, Io, MAX_VARIADIC, ParamSpec, ParamType, ParamValue,
    Params, PortSpec, PortType, ResolvedPort, previous,
};
pub use registry::Registry;
pub use reload::ReloadReport;
pub use scan::{Engine, Histograms, Percentiles, Stats, TaskSnapshot, TaskStats, WARM_AHEAD};
pub use thread::{EngineHandle, StatsSource};

use petra_core::{Bus, MonoTime, SignalId, Timestamp, Value};

/// Work that runs on the scan thread right after a task committed its outputs — the alarm
/// evaluation, which must see the values the task just wrote, in the same scan, at the scan's
/// time (`now` is the task's scheduled time, `wall` the wall time its outputs carry). Counted
/// in the task's scan time. It must not block: it runs inside the scan.
pub trait ScanHook: Send {
    fn after_task(&mut self, task: usize, bus: &Bus, now: MonoTime, wall: Timestamp);

    /// Called shortly before a deadline while the scan thread waits for it: prefetch what
    /// `after_task` will touch (see `Engine::warm`). Only hints; the default does nothing.
    fn warm(&self) {}
}
use std::time::Duration;

/// Where a block input comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    Signal(SignalId),
    Const(Value),
    /// An optional input left unconnected.
    Open,
}

/// A built block with its bindings, ready to run.
pub struct BlockInstance {
    pub name: String,
    pub type_name: &'static str,
    pub block: Box<dyn Block>,
    /// In the block type's port order, variadic ports expanded.
    pub inputs: Vec<Input>,
    /// In the block type's output order; `None` when the output is not wired.
    pub outputs: Vec<Option<SignalId>>,
}

/// A task: blocks that run together at one period.
pub struct TaskSpec {
    pub name: String,
    pub period: Duration,
    /// Higher runs first when tasks are due together.
    pub priority: i32,
    /// When a scan of this task runs longer, the task's outputs are driven to their safe values.
    pub watchdog: Option<Duration>,
    pub blocks: Vec<BlockInstance>,
}

/// What the engine runs.
pub struct Program {
    pub tasks: Vec<TaskSpec>,
    /// Safe values of signals (`safe:` in the configuration), driven by the watchdog.
    pub safe_values: Vec<(SignalId, Value)>,
}

/// Errors of the engine layer.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("block type name `{0}` is taken or not upper case")]
    BlockTypeName(String),
    #[error(
        "blocks {blocks:?} in task `{task}` form a cycle; break it by moving one to another task"
    )]
    Cycle { task: String, blocks: Vec<String> },
    #[error("signal {signal} is written by more than one block: {blocks:?}")]
    MultipleWriters {
        signal: SignalId,
        blocks: Vec<String>,
    },
    #[error("signal {0} is used by a block but is not on the bus")]
    UnknownSignal(SignalId),
    #[error("task `{task}` has period {period:?}; periods must be between 1ms and 1h")]
    BadPeriod { task: String, period: Duration },
    #[error("no task to run")]
    NoTasks,
    #[error("could not start the scan thread: {0}")]
    Thread(String),
}
