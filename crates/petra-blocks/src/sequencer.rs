//! SEQUENCER: a linear step sequence (an SFC chain without branches) as one block.
//!
//! With N transition conditions `t1..tN` the sequence has steps 1..N; step 0 is "idle". A
//! rising edge of `start` in idle enters step 1; while step k is active, `tk` true moves to
//! step k+1, and `tN` true ends the sequence (back to idle with `done` set, or, with
//! `cyclic`, on to step 1 with `done` true for that one scan). At most one transition fires per
//! scan, so every step is active for at least one scan and its actions (compares on `step`)
//! are seen downstream. `reset` true forces idle and clears `done`, whatever else happens.
//!
//! `et` is the time since the current step was entered (scheduled scan time), 0 in idle —
//! compare it to build step timeouts. A hot reload keeps the step, `done`, the entry time and
//! the `start` edge memory ([`Block::adopt`]); a step that no longer exists after the reload
//! (fewer transitions) returns to idle.

use crate::{input, output, variadic};
use petra_core::MonoTime;
use petra_engine::{
    Block, BlockType, BuildCtx, BuildResult, Io, ParamSpec, ParamType, PortSpec, PortType, previous,
};
use std::time::Duration;

const START: usize = 0;
const RESET: usize = 1;
/// Input index of `t1`.
const T1: usize = 2;

static INPUTS: [PortSpec; 3] = [
    input(
        "start",
        PortType::Bool,
        "a rising edge in step 0 starts the sequence at step 1",
    ),
    input(
        "reset",
        PortType::Bool,
        "back to step 0 and done false while true (dominant)",
    ),
    variadic(
        "t",
        PortType::Bool,
        "transition conditions `t1`..`tN`: tk true in step k moves on",
    ),
];

static OUTPUTS: [PortSpec; 3] = [
    output("step", PortType::Int, "active step 1..N, 0 when idle"),
    output(
        "done",
        PortType::Bool,
        "the sequence completed (held in idle; one scan per cycle with cyclic)",
    ),
    output(
        "et",
        PortType::Time,
        "time in the active step in ms, 0 when idle",
    ),
];

static PARAMS: [ParamSpec; 1] = [ParamSpec {
    name: "cyclic",
    ty: ParamType::Bool,
    required: false,
    min: None,
    max: None,
    doc: "after tN go on to step 1 instead of idle; default false",
}];

pub static SEQUENCER: BlockType = BlockType {
    name: "SEQUENCER",
    aliases: &["SEQ"],
    summary: "step sequencer: start enters step 1, tk moves from step k to k+1, tN completes",
    inputs: &INPUTS,
    outputs: &OUTPUTS,
    params: &PARAMS,
    build: build_sequencer,
};

fn build_sequencer(ctx: &BuildCtx<'_>) -> BuildResult {
    let steps = ctx.inputs.len().saturating_sub(T1);
    if steps == 0 {
        return Err("give at least one transition condition `t1`".into());
    }
    Ok(Box::new(Sequencer {
        steps: steps as i64,
        cyclic: ctx.params.bool_or("cyclic", false),
        step: 0,
        done: false,
        entered: MonoTime::ZERO,
        start_mem: false,
    }))
}

struct Sequencer {
    /// N, the number of transitions (and steps).
    steps: i64,
    cyclic: bool,
    /// 0 idle, 1..=N active.
    step: i64,
    /// Latched completion (non-cyclic).
    done: bool,
    /// When the active step was entered.
    entered: MonoTime,
    /// `start` on the previous scan; false at first, so a `start` already true on the first
    /// scan is a rising edge (as R_TRIG).
    start_mem: bool,
}

impl Block for Sequencer {
    fn execute(&mut self, io: &mut Io<'_>) {
        let now = io.now();
        let start = io.bool(START);
        let rising = start && !self.start_mem;
        self.start_mem = start;
        let mut wrapped = false;
        if io.bool(RESET) {
            self.step = 0;
            self.done = false;
        } else if self.step == 0 {
            if rising {
                self.step = 1;
                self.done = false;
                self.entered = now;
            }
        } else if io.bool(T1 + self.step as usize - 1) {
            if self.step < self.steps {
                self.step += 1;
            } else if self.cyclic {
                self.step = 1;
                wrapped = true;
            } else {
                self.step = 0;
                self.done = true;
            }
            self.entered = now;
        }
        io.set_int(0, self.step);
        io.set_bool(1, if self.cyclic { wrapped } else { self.done });
        let et = if self.step == 0 {
            Duration::ZERO
        } else {
            now.saturating_sub(self.entered)
        };
        io.set_time(2, et);
    }

    fn adopt(&mut self, old: &mut dyn Block) {
        if let Some(old) = previous::<Sequencer>(old) {
            self.start_mem = old.start_mem;
            if old.step <= self.steps {
                self.step = old.step;
                self.done = old.done;
                self.entered = old.entered;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Harness, Setup, b, reload_keeps_state};
    use petra_core::Value;
    use petra_core::ValueType::{Bool, Int};
    use petra_engine::ParamValue;

    fn seq(n: usize, cyclic: bool) -> Harness {
        Setup::new(&SEQUENCER)
            .input("start", Bool)
            .input("reset", Bool)
            .inputs("t", n, Bool)
            .output(Int)
            .output(Bool)
            .output(Int)
            .param("cyclic", ParamValue::Bool(cyclic))
            .harness()
    }

    /// Inputs for one scan: start, reset, and the transitions given as a bit string.
    fn ins(start: bool, reset: bool, t: &str) -> Vec<Value> {
        let mut v = vec![b(start), b(reset)];
        v.extend(t.chars().map(|c| b(c == '1')));
        v
    }

    fn expect(h: &mut Harness, at: u64, i: Vec<Value>, step: i64, done: bool, et: i64) {
        h.scan(at, &i);
        assert_eq!(
            (h.int(0), h.bool(1), h.int(2)),
            (step, done, et),
            "t={at}ms"
        );
    }

    #[test]
    fn runs_through_the_steps_one_transition_per_scan() {
        let mut h = seq(3, false);
        expect(&mut h, 0, ins(false, false, "111"), 0, false, 0); // idle ignores transitions
        expect(&mut h, 10, ins(true, false, "111"), 1, false, 0); // start edge
        // All conditions true: still one step per scan.
        expect(&mut h, 20, ins(true, false, "111"), 2, false, 0);
        expect(&mut h, 30, ins(false, false, "100"), 2, false, 10); // t2 false: stays
        expect(&mut h, 40, ins(false, false, "100"), 2, false, 20);
        expect(&mut h, 50, ins(false, false, "010"), 3, false, 0);
        expect(&mut h, 60, ins(false, false, "000"), 3, false, 10);
        expect(&mut h, 70, ins(false, false, "001"), 0, true, 0); // done, latched in idle
        expect(&mut h, 80, ins(false, false, "111"), 0, true, 0);
        // A held start does not restart it; a new edge does and clears done.
        expect(&mut h, 90, ins(true, false, "000"), 1, false, 0);
        expect(&mut h, 100, ins(true, false, "100"), 2, false, 0);
        // reset dominates, also over start and transitions.
        expect(&mut h, 110, ins(true, true, "111"), 0, false, 0);
        expect(&mut h, 120, ins(true, false, "111"), 0, false, 0); // start still held
        expect(&mut h, 130, ins(false, false, "000"), 0, false, 0);
        expect(&mut h, 140, ins(true, false, "000"), 1, false, 0);
    }

    /// The table of docs/blocks.md.
    #[test]
    fn reference_table() {
        let rows = [
            ("1", "0", "1", 1, false),
            ("1", "0", "0", 1, false),
            ("0", "1", "0", 2, false),
            ("0", "0", "1", 0, true),
            ("0", "1", "1", 0, true),
            ("1", "1", "0", 1, false),
        ];
        let mut h = seq(2, false);
        for (k, (start, t1, t2, step, done)) in rows.into_iter().enumerate() {
            h.scan(
                k as u64 * 10,
                &ins(start == "1", false, &format!("{t1}{t2}")),
            );
            assert_eq!((h.int(0), h.bool(1)), (step, done), "scan {k}");
        }
    }

    #[test]
    fn start_true_on_the_first_scan_starts() {
        let mut h = seq(2, false);
        expect(&mut h, 0, ins(true, false, "11"), 1, false, 0);
        expect(&mut h, 10, ins(true, false, "11"), 2, false, 0);
        expect(&mut h, 20, ins(true, false, "11"), 0, true, 0);
        expect(&mut h, 30, ins(true, false, "11"), 0, true, 0);
    }

    #[test]
    fn cyclic_wraps_with_a_one_scan_done() {
        let mut h = seq(2, true);
        expect(&mut h, 0, ins(true, false, "00"), 1, false, 0);
        expect(&mut h, 10, ins(false, false, "10"), 2, false, 0);
        expect(&mut h, 20, ins(false, false, "01"), 1, true, 0);
        expect(&mut h, 30, ins(false, false, "00"), 1, false, 10);
        expect(&mut h, 40, ins(false, false, "10"), 2, false, 0);
        expect(&mut h, 50, ins(false, true, "01"), 0, false, 0);
    }

    #[test]
    fn step_time_uses_scan_time_and_survives_a_clock_going_back() {
        let mut h = seq(2, false);
        expect(&mut h, 1000, ins(true, false, "00"), 1, false, 0);
        expect(&mut h, 3500, ins(false, false, "00"), 1, false, 2500);
        expect(&mut h, 500, ins(false, false, "00"), 1, false, 0);
        h.scan_at(MonoTime::from_nanos(u64::MAX), &ins(false, false, "00"));
        assert_eq!(h.int(0), 1);
    }

    #[test]
    fn reload_keeps_the_active_step() {
        let pattern = ["00", "00", "10", "00", "00", "01", "00", "10", "11", "00"];
        let scans: Vec<(u64, Vec<Value>)> = pattern
            .iter()
            .cycle()
            .take(40)
            .enumerate()
            .map(|(k, t)| (k as u64 * 10, ins(k % 9 == 1, k == 30, t)))
            .collect();
        for cyclic in [false, true] {
            for reload in [1, 2, 4, 6, 13, 31] {
                reload_keeps_state(|| seq(2, cyclic), &scans, reload, 3);
            }
        }
        // One transition fewer: a step beyond the new chain goes back to idle; others stay.
        let mut old = seq(3, false);
        old.scan(0, &ins(true, false, "000"));
        old.scan(10, &ins(false, false, "100"));
        let mut same = seq(2, false);
        same.adopt_from(&mut old);
        expect(&mut same, 20, ins(false, false, "00"), 2, false, 10);
        old.scan(20, &ins(false, false, "010"));
        let mut fewer = seq(2, false);
        fewer.adopt_from(&mut old);
        expect(&mut fewer, 30, ins(false, false, "00"), 0, false, 0);
    }
}
