//! QUALITY: a signal's quality as values, and a fail-safe substitute for a bad value, so logic
//! can react to a dead device link.
//!
//! Every other block is skipped while one of its inputs is bad (its outputs keep their last
//! value, flagged bad), which is right for computing values but leaves logic blind to the
//! failure itself: an interlock fed by a dead link freezes, and Petra writes only good values
//! to devices, so the last command stays in force. QUALITY
//! [reads quality](petra_engine::Block::reads_quality): the engine runs it whatever its input's
//! quality, and its outputs are always good. `out` passes `in` through while it is not bad and
//! holds `subst` while it is (the "substitute value" of a PLC's input module), so putting
//! QUALITY with `subst: false` in front of a run command turns any failure upstream into a
//! stop written to the device; `good`/`uncertain`/`bad` state the quality for alarms and
//! diagnostics.

use crate::select::same_type;
use crate::{input, optional, output};
use petra_core::{Quality, Value};
use petra_engine::{Block, BlockType, BuildCtx, BuildResult, Io, PortType};

pub static QUALITY: BlockType = BlockType {
    name: "QUALITY",
    aliases: &[],
    summary: "a signal's quality as bools, and its value with a substitute while bad (runs while the input is bad)",
    inputs: &[
        input(
            "in",
            PortType::Any,
            "signal whose quality is read (any type)",
        ),
        optional(
            "subst",
            PortType::Any,
            "value of `out` while `in` is bad; same type as `in` (open: false, 0, 0.0 or \"\")",
        ),
    ],
    outputs: &[
        output(
            "out",
            PortType::Any,
            "`in` while it is good or uncertain, `subst` while it is bad; same type as `in`",
        ),
        output("good", PortType::Bool, "true while `in` is good"),
        output("uncertain", PortType::Bool, "true while `in` is uncertain"),
        output(
            "bad",
            PortType::Bool,
            "true while `in` is bad (device down, timeout, block fault)",
        ),
    ],
    params: &[],
    build: build_quality,
};

fn build_quality(ctx: &BuildCtx<'_>) -> BuildResult {
    let Some(ty) = ctx.input_type(0) else {
        return Err("input `in` is not connected; wire the signal whose quality to read".into());
    };
    same_type(
        "QUALITY",
        1,
        &[
            ("in", Some(ty)),
            ("subst", ctx.input_type(1)),
            ("out", ctx.output_type(0)),
        ],
    )?;
    Ok(Box::new(QualityOf {
        // An open `subst` reads as `false` whatever the type; its zero of the right type is
        // made here, once (a string's is shared, so `execute` never allocates).
        zero: ctx.input_type(1).is_none().then(|| ty.zero()),
    }))
}

struct QualityOf {
    /// The substitute when `subst` is open.
    zero: Option<Value>,
}

impl Block for QualityOf {
    fn execute(&mut self, io: &mut Io<'_>) {
        let q = io.input_quality(0);
        if io.output_connected(0) {
            // A clone is a copy, or a reference-count bump for a string: no allocation.
            let v = match (&self.zero, q.is_bad()) {
                (_, false) => io.value(0).clone(),
                (Some(zero), true) => zero.clone(),
                (None, true) => io.value(1).clone(),
            };
            io.set(0, v);
        }
        io.set_bool(1, q == Quality::Good);
        io.set_bool(2, q == Quality::Uncertain);
        io.set_bool(3, q.is_bad());
    }

    fn reads_quality(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Setup, b, f};
    use petra_core::BadReason;
    use petra_core::ValueType::{Bool, Float, Int, String};

    #[test]
    fn each_quality_sets_exactly_its_flag_and_out_follows_in_until_it_is_bad() {
        let mut h = Setup::new(&QUALITY)
            .input("in", Float)
            .constant("subst", f(-1.0))
            .output(Float)
            .output(Bool)
            .output(Bool)
            .output(Bool)
            .harness();
        let flags = |h: &crate::testing::Harness| [h.bool(1), h.bool(2), h.bool(3)];
        h.scan(0, &[f(2.5)]);
        assert_eq!((h.float(0), flags(&h)), (2.5, [true, false, false]));
        h.input_quality(0, Quality::Uncertain).scan(10, &[f(3.0)]);
        assert_eq!((h.float(0), flags(&h)), (3.0, [false, true, false]));
        for reason in [
            BadReason::Timeout,
            BadReason::InputBad,
            BadReason::NotConnected,
        ] {
            h.input_quality(0, Quality::Bad(reason)).scan(20, &[f(4.0)]);
            assert_eq!((h.float(0), flags(&h)), (-1.0, [false, false, true]));
            assert_eq!(h.quality(), Quality::Good, "its outputs are facts: good");
        }
        h.input_quality(0, Quality::Good).scan(30, &[f(5.0)]);
        assert_eq!((h.float(0), flags(&h)), (5.0, [true, false, false]));
    }

    #[test]
    fn an_open_subst_is_the_zero_of_the_type() {
        for (t, v) in [
            (Bool, b(true)),
            (Int, Value::Int(7)),
            (Float, f(1.5)),
            (String, Value::from("batch-42")),
        ] {
            let mut h = Setup::new(&QUALITY)
                .input("in", t)
                .open("subst")
                .output(t)
                .harness();
            h.scan(0, std::slice::from_ref(&v));
            assert_eq!(h.out(0), &v);
            h.input_quality(0, Quality::Bad(BadReason::Timeout))
                .scan(10, std::slice::from_ref(&v));
            assert_eq!(h.out(0), &t.zero(), "{t}");
        }
    }

    #[test]
    fn refuses_an_open_input_and_a_type_change() {
        let e = Setup::new(&QUALITY).open("in").open("subst").refused();
        assert!(e.contains("`in` is not connected"), "{e}");
        let e = Setup::new(&QUALITY)
            .input("in", Int)
            .constant("subst", f(0.0))
            .refused();
        assert!(e.contains("`in` is int but `subst` is float"), "{e}");
        let e = Setup::new(&QUALITY)
            .input("in", Int)
            .open("subst")
            .output(Float)
            .refused();
        assert!(e.contains("`in` is int but `out` is float"), "{e}");
        // Only the flags wired: any type is fine.
        Setup::new(&QUALITY)
            .input("in", String)
            .open("subst")
            .unwired()
            .output(Bool)
            .harness();
    }

    #[test]
    fn tells_the_engine_it_reads_quality() {
        assert!(QualityOf { zero: None }.reads_quality());
    }
}
