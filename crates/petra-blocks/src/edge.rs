//! Edge detection: R_TRIG and F_TRIG. `q` is true for exactly one scan per edge.
//!
//! Both remember the previous `clk`, starting FALSE, as IEC 61131-3 specifies for R_TRIG: a
//! `clk` already TRUE on the first scan is a rising edge (IEC: memory `M` starts FALSE). For
//! F_TRIG we follow the recommendation of IEC 61131-8 (the `M := TRUE` initial value of the
//! reference implementation): a `clk` FALSE on the first scan is *not* a falling edge — a
//! falling edge needs `clk` to have been TRUE first, so a plant starting with the signal low
//! does not see a spurious event. (Some runtimes initialise it the other way and fire.)
//!
//! A hot reload keeps the memory ([`Block::adopt`]), so a reload neither invents nor loses an
//! edge.

use crate::{input, output};
use petra_engine::{Block, BlockType, BuildCtx, BuildResult, Io, PortType, previous};

pub static R_TRIG: BlockType = BlockType {
    name: "R_TRIG",
    aliases: &[],
    summary: "rising edge detector: q true for one scan when clk goes false -> true",
    inputs: &[input("clk", PortType::Bool, "signal to watch")],
    outputs: &[output(
        "q",
        PortType::Bool,
        "true for one scan on a rising edge",
    )],
    params: &[],
    build: build_r_trig,
};

pub static F_TRIG: BlockType = BlockType {
    name: "F_TRIG",
    aliases: &[],
    summary: "falling edge detector: q true for one scan when clk goes true -> false",
    inputs: &[input("clk", PortType::Bool, "signal to watch")],
    outputs: &[output(
        "q",
        PortType::Bool,
        "true for one scan on a falling edge",
    )],
    params: &[],
    build: build_f_trig,
};

fn build_r_trig(_: &BuildCtx<'_>) -> BuildResult {
    Ok(Box::new(RTrig { prev: false }))
}

fn build_f_trig(_: &BuildCtx<'_>) -> BuildResult {
    Ok(Box::new(FTrig { prev: false }))
}

struct RTrig {
    /// `clk` at the previous scan.
    prev: bool,
}

struct FTrig {
    /// `clk` at the previous scan.
    prev: bool,
}

impl Block for RTrig {
    fn execute(&mut self, io: &mut Io<'_>) {
        let clk = io.bool(0);
        io.set_bool(0, clk && !self.prev);
        self.prev = clk;
    }

    fn adopt(&mut self, old: &mut dyn Block) {
        if let Some(old) = previous::<RTrig>(old) {
            self.prev = old.prev;
        }
    }
}

impl Block for FTrig {
    fn execute(&mut self, io: &mut Io<'_>) {
        let clk = io.bool(0);
        io.set_bool(0, !clk && self.prev);
        self.prev = clk;
    }

    fn adopt(&mut self, old: &mut dyn Block) {
        if let Some(old) = previous::<FTrig>(old) {
            self.prev = old.prev;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Setup, b, reload_keeps_state};
    use petra_core::Value;
    use petra_core::ValueType::Bool;

    fn sequence(ty: &'static BlockType, clk: &[bool], q: &[bool]) {
        let mut h = Setup::new(ty).input("clk", Bool).output(Bool).harness();
        for (k, (&c, &expect)) in clk.iter().zip(q).enumerate() {
            assert_eq!(
                h.scan(k as u64 * 10, &[b(c)]).bool(0),
                expect,
                "{} scan {k}",
                ty.name
            );
        }
    }

    #[test]
    fn r_trig_pulses_once_per_rising_edge() {
        sequence(
            &R_TRIG,
            &[false, true, true, false, true, false, false],
            &[false, true, false, false, true, false, false],
        );
    }

    #[test]
    fn r_trig_fires_on_the_first_scan_when_clk_is_already_true() {
        sequence(&R_TRIG, &[true, true, false], &[true, false, false]);
    }

    #[test]
    fn f_trig_pulses_once_per_falling_edge() {
        sequence(
            &F_TRIG,
            &[true, false, false, true, true, false, true],
            &[false, true, false, false, false, true, false],
        );
    }

    #[test]
    fn reload_keeps_the_edge_memory() {
        let clk = [true, true, false, false, true, false, true, true, false];
        let scans: Vec<(u64, Vec<Value>)> = clk
            .iter()
            .enumerate()
            .map(|(k, &c)| (k as u64 * 10, vec![b(c)]))
            .collect();
        for ty in [&R_TRIG, &F_TRIG] {
            let make = || Setup::new(ty).input("clk", Bool).output(Bool).harness();
            for reload in 1..scans.len() {
                reload_keeps_state(make, &scans, reload, 1);
            }
        }
        // A clk held true across a reload is not a new rising edge.
        let make = || {
            Setup::new(&R_TRIG)
                .input("clk", Bool)
                .output(Bool)
                .harness()
        };
        let mut old = make();
        assert!(old.scan(0, &[b(true)]).bool(0));
        let mut new = make();
        new.adopt_from(&mut old);
        assert!(!new.scan(10, &[b(true)]).bool(0));
    }

    #[test]
    fn f_trig_does_not_fire_on_the_first_scan() {
        sequence(
            &F_TRIG,
            &[false, false, true, false],
            &[false, false, false, true],
        );
    }
}
