//! Arithmetic: ADD, MUL (variadic) and SUB.
//!
//! The arithmetic is chosen in `build` from the wired output: an int output means int
//! arithmetic, and then every input must be int (a float input is refused rather than silently
//! truncated); otherwise the arithmetic is float and int inputs are widened. Int arithmetic
//! saturates at `i64::MIN`/`i64::MAX` (flagged `bad(arithmetic)`) instead of wrapping or
//! panicking; a float result that is NaN or infinite is flagged too. A variadic sum or
//! product saturates once, on the exact result (so `MAX + 1 - 1` over three inputs is `MAX`,
//! not `MAX - 1`). Float arithmetic follows IEEE 754; a NaN or infinite result keeps its IEEE
//! value and is flagged.

use crate::{input, output, variadic};
use petra_core::{BadReason, Quality, ValueType};
use petra_engine::{Block, BlockType, BuildCtx, BuildResult, Io, PortSpec, PortType};

static OPERANDS: [PortSpec; 1] = [variadic("in", PortType::Num, "operands `in1`..`inN`")];
static RESULT: [PortSpec; 1] = [output(
    "out",
    PortType::Num,
    "result; its type chooses int (saturating) or float arithmetic",
)];

pub static ADD: BlockType = BlockType {
    name: "ADD",
    aliases: &[],
    summary: "sum of the inputs",
    inputs: &OPERANDS,
    outputs: &RESULT,
    params: &[],
    build: build_add,
};

pub static MUL: BlockType = BlockType {
    name: "MUL",
    aliases: &[],
    summary: "product of the inputs",
    inputs: &OPERANDS,
    outputs: &RESULT,
    params: &[],
    build: build_mul,
};

pub static SUB: BlockType = BlockType {
    name: "SUB",
    aliases: &[],
    summary: "in1 - in2",
    inputs: &[
        input("in1", PortType::Num, "minuend"),
        input("in2", PortType::Num, "subtrahend"),
    ],
    outputs: &RESULT,
    params: &[],
    build: build_sub,
};

/// True for int arithmetic (int output); refuses an int output fed by a float input.
pub(crate) fn int_mode(ctx: &BuildCtx<'_>) -> Result<bool, String> {
    if ctx.output_type(0) != Some(ValueType::Int) {
        return Ok(false);
    }
    for p in ctx.inputs {
        if let Some(t) = p.ty
            && t != ValueType::Int
        {
            return Err(format!(
                "output `out` is int but input {} is {t}; \
                 convert the input or use a float output",
                p.name
            ));
        }
    }
    Ok(true)
}

fn build_add(ctx: &BuildCtx<'_>) -> BuildResult {
    Ok(if int_mode(ctx)? {
        Box::new(AddInt)
    } else {
        Box::new(AddFloat)
    })
}

fn build_mul(ctx: &BuildCtx<'_>) -> BuildResult {
    Ok(if int_mode(ctx)? {
        Box::new(MulInt)
    } else {
        Box::new(MulFloat)
    })
}

fn build_sub(ctx: &BuildCtx<'_>) -> BuildResult {
    Ok(if int_mode(ctx)? {
        Box::new(SubInt)
    } else {
        Box::new(SubFloat)
    })
}

struct AddInt;
struct AddFloat;
struct MulInt;
struct MulFloat;
struct SubInt;
struct SubFloat;

/// Sets int output 0 to `v`, saturated to the int range; a saturated result is flagged
/// `bad(arithmetic)` — the value is the nearest representable one, not the true result.
fn set_saturated(io: &mut Io<'_>, v: i128) {
    let clamped = v.clamp(i64::MIN as i128, i64::MAX as i128);
    if clamped != v {
        io.set_quality(Quality::Bad(BadReason::Arithmetic));
    }
    io.set_int(0, clamped as i64);
}

/// Sets float output 0; an infinite or NaN result is flagged `bad(arithmetic)`.
fn set_checked(io: &mut Io<'_>, v: f64) {
    if !v.is_finite() {
        io.set_quality(Quality::Bad(BadReason::Arithmetic));
    }
    io.set_float(0, v);
}

impl Block for AddInt {
    fn execute(&mut self, io: &mut Io<'_>) {
        // At most MAX_VARIADIC i64 terms: the i128 sum cannot overflow.
        let sum: i128 = (0..io.input_count()).map(|i| io.int(i) as i128).sum();
        set_saturated(io, sum);
    }
}

impl Block for AddFloat {
    fn execute(&mut self, io: &mut Io<'_>) {
        let sum: f64 = (0..io.input_count()).map(|i| io.float(i)).sum();
        set_checked(io, sum);
    }
}

impl Block for MulInt {
    fn execute(&mut self, io: &mut Io<'_>) {
        // Sign and magnitude separately so the saturation is on the exact product: a zero
        // anywhere gives 0 even after the magnitude saturated, and the sign is never lost.
        let mut negative = false;
        let mut magnitude: u128 = 1;
        for i in 0..io.input_count() {
            let v = io.int(i);
            if v == 0 {
                io.set_int(0, 0);
                return;
            }
            negative ^= v < 0;
            magnitude = magnitude.saturating_mul(v.unsigned_abs() as u128);
        }
        let signed = if negative {
            -(magnitude.min(i128::MAX as u128) as i128)
        } else {
            magnitude.min(i128::MAX as u128) as i128
        };
        set_saturated(io, signed);
    }
}

impl Block for MulFloat {
    fn execute(&mut self, io: &mut Io<'_>) {
        let product: f64 = (0..io.input_count()).map(|i| io.float(i)).product();
        set_checked(io, product);
    }
}

impl Block for SubInt {
    fn execute(&mut self, io: &mut Io<'_>) {
        let v = io.int(0) as i128 - io.int(1) as i128;
        set_saturated(io, v);
    }
}

impl Block for SubFloat {
    fn execute(&mut self, io: &mut Io<'_>) {
        let v = io.float(0) - io.float(1);
        set_checked(io, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Setup, f, i};
    use petra_core::Value;
    use petra_core::ValueType::{Float, Int};

    /// Wires each value as a signal of its own type, output of type `out`.
    fn run(ty: &'static BlockType, out: ValueType, ins: &[Value]) -> Value {
        let mut s = Setup::new(ty);
        for (k, v) in ins.iter().enumerate() {
            s = s.input(&format!("in{}", k + 1), v.value_type());
        }
        s.output(out).harness().scan(0, ins).out(0).clone()
    }

    #[test]
    fn int_arithmetic() {
        assert_eq!(run(&ADD, Int, &[i(2), i(3), i(-4)]), i(1));
        assert_eq!(run(&MUL, Int, &[i(2), i(3), i(-4)]), i(-24));
        assert_eq!(run(&SUB, Int, &[i(2), i(5)]), i(-3));
    }

    /// The output and whether the scan flagged `bad(arithmetic)`.
    fn run_flag(ty: &'static BlockType, out: ValueType, ins: &[Value]) -> (Value, bool) {
        let mut s = Setup::new(ty);
        for (k, v) in ins.iter().enumerate() {
            s = s.input(&format!("in{}", k + 1), v.value_type());
        }
        let mut h = s.output(out).harness();
        h.scan(0, ins);
        (h.out(0).clone(), h.flagged())
    }

    #[test]
    fn saturated_and_non_finite_results_are_flagged() {
        assert_eq!(
            run_flag(&ADD, Int, &[i(i64::MAX), i(1)]),
            (i(i64::MAX), true)
        );
        assert_eq!(
            run_flag(&ADD, Int, &[i(i64::MAX), i(1), i(-1)]),
            (i(i64::MAX), false)
        );
        assert_eq!(
            run_flag(&MUL, Int, &[i(i64::MIN), i(-1)]),
            (i(i64::MAX), true)
        );
        assert_eq!(run_flag(&MUL, Int, &[i(i64::MAX), i(0)]), (i(0), false));
        assert_eq!(
            run_flag(&SUB, Int, &[i(0), i(i64::MIN)]),
            (i(i64::MAX), true)
        );
        assert_eq!(run_flag(&SUB, Int, &[i(5), i(7)]), (i(-2), false));
        assert!(run_flag(&ADD, Float, &[f(f64::MAX), f(f64::MAX)]).1);
        assert!(run_flag(&MUL, Float, &[f(f64::NAN), f(1.0)]).1);
        assert_eq!(run_flag(&SUB, Float, &[f(1.5), f(0.5)]), (f(1.0), false));
    }

    #[test]
    fn int_arithmetic_saturates() {
        assert_eq!(run(&ADD, Int, &[i(i64::MAX), i(1)]), i(i64::MAX));
        assert_eq!(run(&ADD, Int, &[i(i64::MIN), i(-1)]), i(i64::MIN));
        // Saturation applies to the exact sum, not step by step.
        assert_eq!(run(&ADD, Int, &[i(i64::MAX), i(1), i(-1)]), i(i64::MAX));
        let max16 = vec![i(i64::MAX); 16];
        assert_eq!(run(&ADD, Int, &max16), i(i64::MAX));
        assert_eq!(run(&MUL, Int, &[i(i64::MAX), i(2)]), i(i64::MAX));
        assert_eq!(run(&MUL, Int, &[i(i64::MAX), i(-2)]), i(i64::MIN));
        assert_eq!(run(&MUL, Int, &[i(i64::MIN), i(-1)]), i(i64::MAX));
        assert_eq!(run(&MUL, Int, &[i(i64::MIN), i(1)]), i(i64::MIN));
        assert_eq!(run(&MUL, Int, &[i(i64::MAX), i(2), i(0)]), i(0));
        assert_eq!(
            run(&MUL, Int, &[i(i64::MAX), i(i64::MAX), i(-1)]),
            i(i64::MIN)
        );
        let min16 = vec![i(i64::MIN); 16];
        assert_eq!(run(&MUL, Int, &min16), i(i64::MAX));
        assert_eq!(run(&SUB, Int, &[i(i64::MIN), i(1)]), i(i64::MIN));
        assert_eq!(run(&SUB, Int, &[i(0), i(i64::MIN)]), i(i64::MAX));
    }

    #[test]
    fn float_output_means_float_arithmetic() {
        assert_eq!(run(&ADD, Float, &[f(0.5), i(2)]), f(2.5));
        assert_eq!(run(&MUL, Float, &[f(0.5), i(3), f(2.0)]), f(3.0));
        assert_eq!(run(&SUB, Float, &[i(1), f(0.25)]), f(0.75));
        // All-int inputs into a float output: float arithmetic, no saturation.
        assert_eq!(
            run(&ADD, Float, &[i(i64::MAX), i(i64::MAX)]),
            f(2.0 * i64::MAX as f64)
        );
        assert_eq!(run(&SUB, Float, &[i(7), i(2)]), f(5.0));
    }

    #[test]
    fn float_specials_pass_through() {
        assert!(matches!(run(&ADD, Float, &[f(f64::NAN), f(1.0)]), Value::Float(x) if x.is_nan()));
        assert_eq!(run(&MUL, Float, &[f(1e308), f(10.0)]), f(f64::INFINITY));
        assert!(matches!(
            run(&SUB, Float, &[f(f64::INFINITY), f(f64::INFINITY)]),
            Value::Float(x) if x.is_nan()
        ));
    }

    #[test]
    fn int_output_refuses_a_float_input() {
        let e = Setup::new(&ADD)
            .input("in1", Int)
            .input("in2", Float)
            .output(Int)
            .refused();
        assert_eq!(
            e,
            "output `out` is int but input in2 is float; \
             convert the input or use a float output"
        );
        let e = Setup::new(&SUB)
            .input("in1", Float)
            .input("in2", Int)
            .output(Int)
            .refused();
        assert!(
            e.starts_with("output `out` is int but input in1 is float"),
            "{e}"
        );
        let e = Setup::new(&MUL)
            .input("in1", Int)
            .constant("in2", Value::Float(1.5))
            .output(Int)
            .refused();
        assert!(e.contains("input in2 is float"), "{e}");
    }

    #[test]
    fn unwired_output_builds_with_any_inputs() {
        let mut h = Setup::new(&ADD)
            .input("in1", Int)
            .input("in2", Float)
            .unwired()
            .harness();
        h.scan(0, &[i(1), f(2.0)]);
    }

    #[test]
    fn constants_take_part() {
        let mut h = Setup::new(&ADD)
            .input("in1", Int)
            .constant("in2", Value::Int(10))
            .output(Int)
            .harness();
        assert_eq!(h.scan(0, &[i(5)]).int(0), 15);
    }
}
