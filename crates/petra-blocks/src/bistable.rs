//! Bistables: SR (set dominant) and RS (reset dominant).
//!
//! Both start reset (`q1` false), as IEC's `Q1 : BOOL` initial value. The state is kept across
//! scans; while an input is bad the engine does not run the block, so the latch holds. A hot
//! reload keeps `q1` ([`Block::adopt`]).

use crate::{input, output};
use petra_engine::{Block, BlockType, BuildCtx, BuildResult, Io, PortType, previous};

pub static SR: BlockType = BlockType {
    name: "SR",
    aliases: &[],
    summary: "set-dominant latch: q1 := s1 OR (NOT r AND q1)",
    inputs: &[
        input("s1", PortType::Bool, "set (dominant)"),
        input("r", PortType::Bool, "reset"),
    ],
    outputs: &[output("q1", PortType::Bool, "latched state")],
    params: &[],
    build: build_sr,
};

pub static RS: BlockType = BlockType {
    name: "RS",
    aliases: &[],
    summary: "reset-dominant latch: q1 := NOT r1 AND (s OR q1)",
    inputs: &[
        input("s", PortType::Bool, "set"),
        input("r1", PortType::Bool, "reset (dominant)"),
    ],
    outputs: &[output("q1", PortType::Bool, "latched state")],
    params: &[],
    build: build_rs,
};

fn build_sr(_: &BuildCtx<'_>) -> BuildResult {
    Ok(Box::new(Sr { q1: false }))
}

fn build_rs(_: &BuildCtx<'_>) -> BuildResult {
    Ok(Box::new(Rs { q1: false }))
}

struct Sr {
    q1: bool,
}

struct Rs {
    q1: bool,
}

impl Block for Sr {
    fn execute(&mut self, io: &mut Io<'_>) {
        self.q1 = io.bool(0) || (!io.bool(1) && self.q1);
        io.set_bool(0, self.q1);
    }

    fn adopt(&mut self, old: &mut dyn Block) {
        if let Some(old) = previous::<Sr>(old) {
            self.q1 = old.q1;
        }
    }
}

impl Block for Rs {
    fn execute(&mut self, io: &mut Io<'_>) {
        self.q1 = !io.bool(1) && (io.bool(0) || self.q1);
        io.set_bool(0, self.q1);
    }

    fn adopt(&mut self, old: &mut dyn Block) {
        if let Some(old) = previous::<Rs>(old) {
            self.q1 = old.q1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Setup, b, reload_keeps_state};
    use petra_core::Value;
    use petra_core::ValueType::Bool;

    /// Steps (set, reset) → expected q1 through a fresh instance of `ty`.
    fn sequence(ty: &'static BlockType, steps: &[(bool, bool, bool)]) {
        let (s, r) = (ty.inputs[0].name, ty.inputs[1].name);
        let mut h = Setup::new(ty)
            .input(s, Bool)
            .input(r, Bool)
            .output(Bool)
            .harness();
        for (k, &(set, reset, q)) in steps.iter().enumerate() {
            h.scan(k as u64 * 10, &[b(set), b(reset)]);
            assert_eq!(h.bool(0), q, "{} step {k}: {s}={set} {r}={reset}", ty.name);
        }
    }

    #[test]
    fn sr_is_set_dominant() {
        sequence(
            &SR,
            &[
                (false, false, false), // starts reset
                (true, false, true),   // set
                (false, false, true),  // holds
                (true, true, true),    // both: set wins
                (false, true, false),  // reset
                (false, false, false), // holds reset
                (true, true, true),    // both from reset: set wins
            ],
        );
    }

    #[test]
    fn rs_is_reset_dominant() {
        sequence(
            &RS,
            &[
                (false, false, false),
                (true, false, true),
                (false, false, true),
                (true, true, false), // both: reset wins
                (true, false, true),
                (false, true, false),
                (false, false, false),
            ],
        );
    }

    #[test]
    fn reload_keeps_the_latch() {
        for ty in [&SR, &RS] {
            let (s, r) = (ty.inputs[0].name, ty.inputs[1].name);
            let make = || {
                Setup::new(ty)
                    .input(s, Bool)
                    .input(r, Bool)
                    .output(Bool)
                    .harness()
            };
            let scans: Vec<(u64, Vec<Value>)> = [(true, false), (false, false), (false, false)]
                .iter()
                .chain(&[(false, true), (false, false), (true, true), (false, false)])
                .enumerate()
                .map(|(k, &(set, reset))| (k as u64 * 10, vec![b(set), b(reset)]))
                .collect();
            for reload in 1..scans.len() {
                reload_keeps_state(make, &scans, reload, 1);
            }
            // Concretely: set, reload, and the new instance is still set.
            let mut old = make();
            old.scan(0, &[b(true), b(false)]);
            let mut new = make();
            new.adopt_from(&mut old);
            assert!(new.scan(10, &[b(false), b(false)]).bool(0), "{}", ty.name);
        }
    }

    #[test]
    fn both_set_on_the_first_scan() {
        sequence(&SR, &[(true, true, true)]);
        sequence(&RS, &[(true, true, false)]);
    }
}
