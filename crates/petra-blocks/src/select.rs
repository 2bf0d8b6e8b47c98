//! Selection and copying: MOVE and SEL.
//!
//! Both pass values through unchanged, so `build` insists that every value-carrying port has
//! the same type: these blocks never convert (use an arithmetic block with a float output to
//! widen an int).

use crate::{input, output};
use petra_core::ValueType;
use petra_engine::{Block, BlockType, BuildCtx, BuildResult, Io, PortType};

pub static MOVE: BlockType = BlockType {
    name: "MOVE",
    aliases: &[],
    summary: "copies its input to its output",
    inputs: &[input("in", PortType::Any, "value to copy")],
    outputs: &[output("out", PortType::Any, "copy of `in`; same type")],
    params: &[],
    build: build_move,
};

pub static SEL: BlockType = BlockType {
    name: "SEL",
    aliases: &[],
    summary: "binary selection: out = g ? in1 : in0",
    inputs: &[
        input(
            "g",
            PortType::Bool,
            "selector: false picks `in0`, true picks `in1`",
        ),
        input("in0", PortType::Any, "value when `g` is false"),
        input(
            "in1",
            PortType::Any,
            "value when `g` is true; same type as `in0`",
        ),
    ],
    outputs: &[output(
        "out",
        PortType::Any,
        "selected value; same type as the inputs",
    )],
    params: &[],
    build: build_sel,
};

/// Refuses unless every resolved type among `ports` is the same. The first `inputs` ports are
/// inputs and must be connected (an open input would read as `false`, of no particular type).
pub(crate) fn same_type(
    name: &str,
    inputs: usize,
    ports: &[(&str, Option<ValueType>)],
) -> Result<(), String> {
    let mut first: Option<(&str, ValueType)> = None;
    for (k, &(port, ty)) in ports.iter().enumerate() {
        let Some(ty) = ty else {
            if k < inputs {
                return Err(format!(
                    "input `{port}` is not connected; wire it or give a constant"
                ));
            }
            continue;
        };
        match first {
            None => first = Some((port, ty)),
            Some((p0, t0)) if t0 != ty => {
                return Err(format!(
                    "`{p0}` is {t0} but `{port}` is {ty}; {name} does not convert, \
                     so wire signals of one type"
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

fn build_move(ctx: &BuildCtx<'_>) -> BuildResult {
    same_type(
        "MOVE",
        1,
        &[("in", ctx.input_type(0)), ("out", ctx.output_type(0))],
    )?;
    Ok(Box::new(Move))
}

fn build_sel(ctx: &BuildCtx<'_>) -> BuildResult {
    same_type(
        "SEL",
        2,
        &[
            ("in0", ctx.input_type(1)),
            ("in1", ctx.input_type(2)),
            ("out", ctx.output_type(0)),
        ],
    )?;
    Ok(Box::new(Sel))
}

struct Move;
struct Sel;

impl Block for Move {
    fn execute(&mut self, io: &mut Io<'_>) {
        // A string clone bumps a reference count; it does not allocate.
        let v = io.value(0).clone();
        io.set(0, v);
    }
}

impl Block for Sel {
    fn execute(&mut self, io: &mut Io<'_>) {
        let pick = if io.bool(0) { 2 } else { 1 };
        let v = io.value(pick).clone();
        io.set(0, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Setup, b, f, i};
    use petra_core::Value;
    use petra_core::ValueType::{Bool, Float, Int, String};

    #[test]
    fn move_copies_every_type() {
        for v in [b(true), i(-7), f(2.5), Value::from("batch-42")] {
            let t = v.value_type();
            let mut h = Setup::new(&MOVE).input("in", t).output(t).harness();
            assert_eq!(h.scan(0, std::slice::from_ref(&v)).out(0), &v);
        }
    }

    #[test]
    fn move_refuses_a_type_change() {
        let e = Setup::new(&MOVE).input("in", Int).output(Float).refused();
        assert_eq!(
            e,
            "`in` is int but `out` is float; MOVE does not convert, \
             so wire signals of one type"
        );
        // Unwired output: nothing to disagree with.
        Setup::new(&MOVE).input("in", String).unwired().harness();
        let e = Setup::new(&MOVE).open("in").output(Int).refused();
        assert_eq!(e, "input `in` is not connected; wire it or give a constant");
    }

    #[test]
    fn sel_picks_in0_on_false_and_in1_on_true() {
        let mut h = Setup::new(&SEL)
            .input("g", Bool)
            .input("in0", Float)
            .input("in1", Float)
            .output(Float)
            .harness();
        assert_eq!(h.scan(0, &[b(false), f(1.0), f(2.0)]).float(0), 1.0);
        assert_eq!(h.scan(10, &[b(true), f(1.0), f(2.0)]).float(0), 2.0);
        let mut h = Setup::new(&SEL)
            .input("g", Bool)
            .constant("in0", Value::from("auto"))
            .constant("in1", Value::from("manual"))
            .output(String)
            .harness();
        assert_eq!(h.scan(0, &[b(true)]).out(0), &Value::from("manual"));
    }

    #[test]
    fn sel_refuses_mixed_types() {
        let e = Setup::new(&SEL)
            .input("g", Bool)
            .input("in0", Int)
            .input("in1", Float)
            .output(Float)
            .refused();
        assert!(e.starts_with("`in0` is int but `in1` is float"), "{e}");
        let e = Setup::new(&SEL)
            .input("g", Bool)
            .input("in0", Int)
            .input("in1", Int)
            .output(Float)
            .refused();
        assert!(e.starts_with("`in0` is int but `out` is float"), "{e}");
    }
}
