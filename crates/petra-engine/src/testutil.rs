//! Helpers shared by the engine's tests.

use crate::{Block, BlockInstance, Input, Io, TaskSpec};
use petra_core::{
    Bus, BusBuilder, MonoTime, SignalDef, SignalId, Timestamp, ValueType, VirtualClock,
};
use std::sync::Arc;
use std::time::Duration;

pub struct FnBlock<F>(F);
impl<F: FnMut(&mut Io<'_>) + Send + 'static> Block for FnBlock<F> {
    fn execute(&mut self, io: &mut Io<'_>) {
        (self.0)(io)
    }
}

/// Like [`FnBlock`], but [reads quality](Block::reads_quality) (runs with bad inputs).
pub struct QualityFnBlock<F>(pub F);
impl<F: FnMut(&mut Io<'_>) + Send + 'static> Block for QualityFnBlock<F> {
    fn execute(&mut self, io: &mut Io<'_>) {
        (self.0)(io)
    }
    fn reads_quality(&self) -> bool {
        true
    }
}

pub fn block(
    name: &str,
    inputs: Vec<Input>,
    outputs: Vec<Option<SignalId>>,
    f: impl FnMut(&mut Io<'_>) + Send + 'static,
) -> BlockInstance {
    BlockInstance {
        name: name.into(),
        type_name: "TEST",
        block: Box::new(FnBlock(f)),
        inputs,
        outputs,
    }
}

pub fn task(name: &str, period_ms: u64, priority: i32, blocks: Vec<BlockInstance>) -> TaskSpec {
    TaskSpec {
        name: name.into(),
        period: Duration::from_millis(period_ms),
        priority,
        watchdog: None,
        blocks,
    }
}

pub fn floats(names: &[&str]) -> Arc<Bus> {
    let defs = names
        .iter()
        .map(|n| SignalDef::new(*n, ValueType::Float).with_initial(0.0))
        .collect();
    BusBuilder::new(defs).unwrap().build(Timestamp::default())
}

pub fn vclock() -> Arc<VirtualClock> {
    Arc::new(VirtualClock::new(Timestamp::from_unix_nanos(1_000_000_000)))
}

pub fn ms(n: u64) -> MonoTime {
    MonoTime::from_nanos(n * 1_000_000)
}

pub fn get(bus: &Bus, name: &str) -> f64 {
    bus.read(bus.id(name).unwrap())
        .unwrap()
        .value
        .as_f64()
        .unwrap()
}

pub fn sig(bus: &Bus, name: &str) -> SignalId {
    bus.id(name).unwrap()
}

pub fn add_one(name: &str, bus: &Bus, from: &str, to: &str) -> BlockInstance {
    block(
        name,
        vec![Input::Signal(sig(bus, from))],
        vec![Some(sig(bus, to))],
        |io| {
            let v = io.float(0) + 1.0;
            io.set_float(0, v)
        },
    )
}

/// Polls `f` with a deadline (the workspace's one helper for that).
pub fn wait_for(what: &str, f: impl FnMut() -> bool) {
    petra_test_support::wait_until(what, petra_test_support::DEFAULT_TIMEOUT, f);
}
