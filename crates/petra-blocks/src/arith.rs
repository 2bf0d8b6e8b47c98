//! More arithmetic: DIV, MOD, ABS, NEG, MIN, MAX (variadic), LIMIT, SQRT, EXPT.
//!
//! Typing is ADD's (see [`crate::math`]): the wired output chooses int or float arithmetic, an
//! int output needs int inputs. SQRT and EXPT are float only.
//!
//! Where a result is undefined or not representable, the block writes a documented fallback
//! value and flags its outputs `bad(arithmetic)` with [`Io::set_quality`]:
//!
//! * DIV, MOD: a zero divisor gives 0; a float quotient that is NaN or infinite gives 0.0; the
//!   one int quotient that overflows (`i64::MIN / -1`) saturates to `i64::MAX`;
//! * ABS, NEG: `i64::MIN` (whose magnitude has no int) saturates to `i64::MAX`;
//! * LIMIT: `mn > mx` gives `mn`; a NaN `in` gives `mn`, a NaN bound gives 0.0;
//! * SQRT: a negative (or NaN) input gives 0.0; EXPT: a NaN or infinite power gives 0.0.
//!
//! Float NaN and infinities otherwise propagate as in ADD (ABS, NEG, MIN, MAX: a NaN input
//! gives NaN, unflagged), since there the result is the IEEE one and well defined.

use crate::math::int_mode;
use crate::{input, output, variadic};
use petra_core::{BadReason, Quality};
use petra_engine::{Block, BlockType, BuildCtx, BuildResult, Io, PortSpec, PortType};

const ARITHMETIC: Quality = Quality::Bad(BadReason::Arithmetic);

static RESULT: [PortSpec; 1] = [output(
    "out",
    PortType::Num,
    "result; its type chooses int or float arithmetic",
)];
static FLOAT_RESULT: [PortSpec; 1] = [output("out", PortType::Float, "result")];
static ONE: [PortSpec; 1] = [input("in", PortType::Num, "operand")];
static MANY: [PortSpec; 1] = [variadic("in", PortType::Num, "operands `in1`..`inN`")];

pub static DIV: BlockType = BlockType {
    name: "DIV",
    aliases: &[],
    summary: "in1 / in2 (int division truncates toward zero)",
    inputs: &[
        input("in1", PortType::Num, "dividend"),
        input(
            "in2",
            PortType::Num,
            "divisor; 0 gives 0 and bad(arithmetic)",
        ),
    ],
    outputs: &RESULT,
    params: &[],
    build: build_div,
};

pub static MOD: BlockType = BlockType {
    name: "MOD",
    aliases: &[],
    summary: "remainder of in1 / in2, with the sign of in1",
    inputs: &[
        input("in1", PortType::Num, "dividend"),
        input(
            "in2",
            PortType::Num,
            "divisor; 0 gives 0 and bad(arithmetic)",
        ),
    ],
    outputs: &RESULT,
    params: &[],
    build: build_mod,
};

pub static ABS: BlockType = BlockType {
    name: "ABS",
    aliases: &[],
    summary: "absolute value",
    inputs: &ONE,
    outputs: &RESULT,
    params: &[],
    build: build_abs,
};

pub static NEG: BlockType = BlockType {
    name: "NEG",
    aliases: &[],
    summary: "negation: out = -in",
    inputs: &ONE,
    outputs: &RESULT,
    params: &[],
    build: build_neg,
};

pub static MIN: BlockType = BlockType {
    name: "MIN",
    aliases: &[],
    summary: "smallest of the inputs",
    inputs: &MANY,
    outputs: &RESULT,
    params: &[],
    build: build_min,
};

pub static MAX: BlockType = BlockType {
    name: "MAX",
    aliases: &[],
    summary: "largest of the inputs",
    inputs: &MANY,
    outputs: &RESULT,
    params: &[],
    build: build_max,
};

pub static LIMIT: BlockType = BlockType {
    name: "LIMIT",
    aliases: &[],
    summary: "in clamped to [mn, mx]",
    inputs: &[
        input("mn", PortType::Num, "lower limit"),
        input("in", PortType::Num, "value to limit"),
        input(
            "mx",
            PortType::Num,
            "upper limit; mn > mx gives mn and bad(arithmetic)",
        ),
    ],
    outputs: &RESULT,
    params: &[],
    build: build_limit,
};

pub static SQRT: BlockType = BlockType {
    name: "SQRT",
    aliases: &[],
    summary: "square root (float)",
    inputs: &[input(
        "in",
        PortType::Float,
        "radicand; negative gives 0.0 and bad(arithmetic)",
    )],
    outputs: &FLOAT_RESULT,
    params: &[],
    build: build_sqrt,
};

pub static EXPT: BlockType = BlockType {
    name: "EXPT",
    aliases: &[],
    summary: "in1 raised to the power in2 (float)",
    inputs: &[
        input("in1", PortType::Float, "base"),
        input("in2", PortType::Float, "exponent"),
    ],
    outputs: &FLOAT_RESULT,
    params: &[],
    build: build_expt,
};

/// Picks the int or the float instance by the output type (refusing float inputs into an int
/// output, like ADD).
fn pick(ctx: &BuildCtx<'_>, int: Box<dyn Block>, float: Box<dyn Block>) -> BuildResult {
    Ok(if int_mode(ctx)? { int } else { float })
}

fn build_div(ctx: &BuildCtx<'_>) -> BuildResult {
    pick(ctx, Box::new(DivInt), Box::new(DivFloat))
}

fn build_mod(ctx: &BuildCtx<'_>) -> BuildResult {
    pick(ctx, Box::new(ModInt), Box::new(ModFloat))
}

fn build_abs(ctx: &BuildCtx<'_>) -> BuildResult {
    pick(ctx, Box::new(AbsInt), Box::new(AbsFloat))
}

fn build_neg(ctx: &BuildCtx<'_>) -> BuildResult {
    pick(ctx, Box::new(NegInt), Box::new(NegFloat))
}

fn build_min(ctx: &BuildCtx<'_>) -> BuildResult {
    pick(ctx, Box::new(MinInt), Box::new(MinFloat))
}

fn build_max(ctx: &BuildCtx<'_>) -> BuildResult {
    pick(ctx, Box::new(MaxInt), Box::new(MaxFloat))
}

fn build_limit(ctx: &BuildCtx<'_>) -> BuildResult {
    pick(ctx, Box::new(LimitInt), Box::new(LimitFloat))
}

fn build_sqrt(_: &BuildCtx<'_>) -> BuildResult {
    Ok(Box::new(Sqrt))
}

fn build_expt(_: &BuildCtx<'_>) -> BuildResult {
    Ok(Box::new(Expt))
}

struct DivInt;
struct DivFloat;
struct ModInt;
struct ModFloat;
struct AbsInt;
struct AbsFloat;
struct NegInt;
struct NegFloat;
struct MinInt;
struct MinFloat;
struct MaxInt;
struct MaxFloat;
struct LimitInt;
struct LimitFloat;
struct Sqrt;
struct Expt;

/// Int division as IEC and Rust define it (truncating); `None` for a zero divisor. The only
/// overflow, `i64::MIN / -1`, saturates and is reported as `Err`.
pub(crate) fn div_int(a: i64, b: i64) -> Option<Result<i64, i64>> {
    match b {
        0 => None,
        -1 if a == i64::MIN => Some(Err(i64::MAX)),
        _ => Some(Ok(a / b)),
    }
}

/// Int remainder with the sign of the dividend; `None` for a zero divisor. `i64::MIN % -1` is
/// 0, which is exact (Rust's `%` would panic on it).
pub(crate) fn rem_int(a: i64, b: i64) -> Option<i64> {
    (b != 0).then(|| a.wrapping_rem(b))
}

impl Block for DivInt {
    fn execute(&mut self, io: &mut Io<'_>) {
        let v = match div_int(io.int(0), io.int(1)) {
            Some(Ok(q)) => q,
            Some(Err(saturated)) => {
                io.set_quality(ARITHMETIC);
                saturated
            }
            None => {
                io.set_quality(ARITHMETIC);
                0
            }
        };
        io.set_int(0, v);
    }
}

impl Block for DivFloat {
    fn execute(&mut self, io: &mut Io<'_>) {
        let (a, b) = (io.float(0), io.float(1));
        let q = a / b;
        let v = if b == 0.0 || !q.is_finite() {
            io.set_quality(ARITHMETIC);
            0.0
        } else {
            q
        };
        io.set_float(0, v);
    }
}

impl Block for ModInt {
    fn execute(&mut self, io: &mut Io<'_>) {
        let v = rem_int(io.int(0), io.int(1)).unwrap_or_else(|| {
            io.set_quality(ARITHMETIC);
            0
        });
        io.set_int(0, v);
    }
}

impl Block for ModFloat {
    fn execute(&mut self, io: &mut Io<'_>) {
        let (a, b) = (io.float(0), io.float(1));
        let r = a % b;
        // `x % 0` and `inf % x` are NaN; `x % inf` is x, which is exact.
        let v = if b == 0.0 || r.is_nan() {
            io.set_quality(ARITHMETIC);
            0.0
        } else {
            r
        };
        io.set_float(0, v);
    }
}

impl Block for AbsInt {
    fn execute(&mut self, io: &mut Io<'_>) {
        let x = io.int(0);
        if x == i64::MIN {
            io.set_quality(ARITHMETIC);
        }
        io.set_int(0, x.saturating_abs());
    }
}

impl Block for AbsFloat {
    fn execute(&mut self, io: &mut Io<'_>) {
        let v = io.float(0).abs();
        io.set_float(0, v);
    }
}

impl Block for NegInt {
    fn execute(&mut self, io: &mut Io<'_>) {
        let x = io.int(0);
        if x == i64::MIN {
            io.set_quality(ARITHMETIC);
        }
        io.set_int(0, x.saturating_neg());
    }
}

impl Block for NegFloat {
    fn execute(&mut self, io: &mut Io<'_>) {
        let v = -io.float(0);
        io.set_float(0, v);
    }
}

impl Block for MinInt {
    fn execute(&mut self, io: &mut Io<'_>) {
        let v = (0..io.input_count()).map(|i| io.int(i)).min().unwrap_or(0);
        io.set_int(0, v);
    }
}

impl Block for MaxInt {
    fn execute(&mut self, io: &mut Io<'_>) {
        let v = (0..io.input_count()).map(|i| io.int(i)).max().unwrap_or(0);
        io.set_int(0, v);
    }
}

/// The float extreme of the inputs in IEEE 754 total order (so `-0.0 < 0.0` and the result
/// does not depend on the order of the inputs); NaN if any input is NaN.
fn float_extreme(io: &Io<'_>, want: std::cmp::Ordering) -> f64 {
    let mut best = io.float(0);
    let mut nan = best.is_nan();
    for i in 1..io.input_count() {
        let x = io.float(i);
        nan |= x.is_nan();
        if x.total_cmp(&best) == want {
            best = x;
        }
    }
    if nan { f64::NAN } else { best }
}

impl Block for MinFloat {
    fn execute(&mut self, io: &mut Io<'_>) {
        let v = float_extreme(io, std::cmp::Ordering::Less);
        io.set_float(0, v);
    }
}

impl Block for MaxFloat {
    fn execute(&mut self, io: &mut Io<'_>) {
        let v = float_extreme(io, std::cmp::Ordering::Greater);
        io.set_float(0, v);
    }
}

const MN: usize = 0;
const IN: usize = 1;
const MX: usize = 2;

/// LIMIT over ints: `mn > mx` has no answer; IEC leaves it open, we give `mn`, flagged.
pub(crate) fn limit_int(mn: i64, x: i64, mx: i64) -> Result<i64, i64> {
    if mn > mx {
        Err(mn)
    } else {
        Ok(x.clamp(mn, mx))
    }
}

/// LIMIT over floats; `Err` carries the fallback (see the module doc).
pub(crate) fn limit_float(mn: f64, x: f64, mx: f64) -> Result<f64, f64> {
    if mn.is_nan() || mx.is_nan() {
        Err(0.0)
    } else if mn > mx || x.is_nan() {
        Err(mn)
    } else {
        Ok(x.clamp(mn, mx))
    }
}

impl Block for LimitInt {
    fn execute(&mut self, io: &mut Io<'_>) {
        let v = limit_int(io.int(MN), io.int(IN), io.int(MX)).unwrap_or_else(|mn| {
            io.set_quality(ARITHMETIC);
            mn
        });
        io.set_int(0, v);
    }
}

impl Block for LimitFloat {
    fn execute(&mut self, io: &mut Io<'_>) {
        let v = limit_float(io.float(MN), io.float(IN), io.float(MX)).unwrap_or_else(|fb| {
            io.set_quality(ARITHMETIC);
            fb
        });
        io.set_float(0, v);
    }
}

impl Block for Sqrt {
    fn execute(&mut self, io: &mut Io<'_>) {
        let r = io.float(0).sqrt();
        let v = if r.is_nan() {
            io.set_quality(ARITHMETIC);
            0.0
        } else {
            r
        };
        io.set_float(0, v);
    }
}

impl Block for Expt {
    fn execute(&mut self, io: &mut Io<'_>) {
        let r = io.float(0).powf(io.float(1));
        let v = if r.is_finite() {
            r
        } else {
            io.set_quality(ARITHMETIC);
            0.0
        };
        io.set_float(0, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Harness, Setup, f, i};
    use petra_core::Value;
    use petra_core::ValueType::{self, Float, Int};
    use proptest::prelude::*;

    /// Each value wired as a signal of its own type, under the block's input names.
    fn build(ty: &'static BlockType, out: ValueType, ins: &[Value]) -> Harness {
        let mut s = Setup::new(ty);
        for (k, v) in ins.iter().enumerate() {
            let name = match (ty.inputs.len(), ty.inputs[0].variadic) {
                (_, true) => format!("in{}", k + 1),
                (1, false) => "in".to_string(),
                _ => ty.inputs[k].name.to_string(),
            };
            s = s.input(&name, v.value_type());
        }
        s.output(out).harness()
    }

    /// Output value and whether the scan flagged bad(arithmetic).
    fn run(ty: &'static BlockType, out: ValueType, ins: &[Value]) -> (Value, bool) {
        let mut h = build(ty, out, ins);
        h.scan(0, ins);
        (h.out(0).clone(), h.flagged())
    }

    fn ok(v: Value) -> (Value, bool) {
        (v, false)
    }

    fn bad(v: Value) -> (Value, bool) {
        (v, true)
    }

    #[test]
    fn div_int_truncates_toward_zero() {
        assert_eq!(run(&DIV, Int, &[i(7), i(2)]), ok(i(3)));
        assert_eq!(run(&DIV, Int, &[i(-7), i(2)]), ok(i(-3)));
        assert_eq!(run(&DIV, Int, &[i(7), i(-2)]), ok(i(-3)));
        assert_eq!(run(&DIV, Int, &[i(i64::MIN), i(1)]), ok(i(i64::MIN)));
    }

    #[test]
    fn div_by_zero_gives_zero_and_bad_quality() {
        assert_eq!(run(&DIV, Int, &[i(7), i(0)]), bad(i(0)));
        assert_eq!(run(&DIV, Float, &[f(7.0), f(0.0)]), bad(f(0.0)));
        assert_eq!(run(&DIV, Float, &[f(7.0), f(-0.0)]), bad(f(0.0)));
        assert_eq!(run(&DIV, Float, &[f(0.0), i(0)]), bad(f(0.0)));
        assert_eq!(run(&MOD, Int, &[i(7), i(0)]), bad(i(0)));
        assert_eq!(run(&MOD, Float, &[f(7.5), f(0.0)]), bad(f(0.0)));
    }

    #[test]
    fn div_overflow_and_non_finite_results_are_flagged() {
        assert_eq!(run(&DIV, Int, &[i(i64::MIN), i(-1)]), bad(i(i64::MAX)));
        assert_eq!(run(&DIV, Float, &[f(f64::NAN), f(2.0)]), bad(f(0.0)));
        assert_eq!(run(&DIV, Float, &[f(f64::INFINITY), f(2.0)]), bad(f(0.0)));
        assert_eq!(run(&DIV, Float, &[f(1e308), f(1e-308)]), bad(f(0.0)));
        assert_eq!(run(&DIV, Float, &[f(1.0), f(f64::INFINITY)]), ok(f(0.0)));
        assert_eq!(run(&DIV, Float, &[f(7.0), i(2)]), ok(f(3.5)));
    }

    #[test]
    fn the_next_scan_starts_good_again() {
        let mut h = build(&DIV, Int, &[i(1), i(0)]);
        assert!(h.scan(0, &[i(1), i(0)]).flagged());
        assert_eq!(h.scan(10, &[i(4), i(2)]).quality(), Quality::Good);
        assert_eq!(h.int(0), 2);
    }

    #[test]
    fn mod_has_the_sign_of_the_dividend() {
        assert_eq!(run(&MOD, Int, &[i(7), i(3)]), ok(i(1)));
        assert_eq!(run(&MOD, Int, &[i(-7), i(3)]), ok(i(-1)));
        assert_eq!(run(&MOD, Int, &[i(7), i(-3)]), ok(i(1)));
        assert_eq!(run(&MOD, Int, &[i(i64::MIN), i(-1)]), ok(i(0)));
        assert_eq!(run(&MOD, Float, &[f(7.5), f(2.0)]), ok(f(1.5)));
        assert_eq!(run(&MOD, Float, &[f(-7.5), f(2.0)]), ok(f(-1.5)));
        assert_eq!(run(&MOD, Float, &[f(7.5), f(f64::INFINITY)]), ok(f(7.5)));
        assert_eq!(run(&MOD, Float, &[f(f64::INFINITY), f(2.0)]), bad(f(0.0)));
    }

    #[test]
    fn abs_and_neg() {
        assert_eq!(run(&ABS, Int, &[i(-5)]), ok(i(5)));
        assert_eq!(run(&ABS, Int, &[i(5)]), ok(i(5)));
        assert_eq!(run(&ABS, Int, &[i(i64::MIN)]), bad(i(i64::MAX)));
        assert_eq!(run(&ABS, Float, &[f(-2.5)]), ok(f(2.5)));
        assert_eq!(run(&ABS, Float, &[i(-3)]), ok(f(3.0)));
        assert_eq!(run(&NEG, Int, &[i(5)]), ok(i(-5)));
        assert_eq!(run(&NEG, Int, &[i(i64::MAX)]), ok(i(-i64::MAX)));
        assert_eq!(run(&NEG, Int, &[i(i64::MIN)]), bad(i(i64::MAX)));
        assert_eq!(run(&NEG, Float, &[f(2.5)]), ok(f(-2.5)));
        let (v, flagged) = run(&NEG, Float, &[f(f64::NAN)]);
        assert!(matches!(v, Value::Float(x) if x.is_nan()) && !flagged);
    }

    #[test]
    fn min_and_max() {
        assert_eq!(run(&MIN, Int, &[i(3), i(-2), i(7)]), ok(i(-2)));
        assert_eq!(run(&MAX, Int, &[i(3), i(-2), i(7)]), ok(i(7)));
        assert_eq!(run(&MIN, Float, &[f(3.5), i(-2), f(7.0)]), ok(f(-2.0)));
        assert_eq!(run(&MAX, Float, &[f(3.5), i(-2), f(7.0)]), ok(f(7.0)));
        assert_eq!(
            run(&MAX, Float, &[f(f64::NEG_INFINITY), f(f64::INFINITY)]),
            ok(f(f64::INFINITY))
        );
        let (v, flagged) = run(&MIN, Float, &[f(1.0), f(f64::NAN)]);
        assert!(matches!(v, Value::Float(x) if x.is_nan()) && !flagged);
        // Signed zeros in total order.
        let (v, _) = run(&MIN, Float, &[f(0.0), f(-0.0)]);
        assert!(matches!(v, Value::Float(x) if x == 0.0 && x.is_sign_negative()));
    }

    #[test]
    fn limit_clamps() {
        assert_eq!(run(&LIMIT, Int, &[i(0), i(5), i(10)]), ok(i(5)));
        assert_eq!(run(&LIMIT, Int, &[i(0), i(-5), i(10)]), ok(i(0)));
        assert_eq!(run(&LIMIT, Int, &[i(0), i(50), i(10)]), ok(i(10)));
        assert_eq!(run(&LIMIT, Float, &[f(0.0), f(0.5), i(1)]), ok(f(0.5)));
        assert_eq!(
            run(&LIMIT, Float, &[f(0.0), f(f64::INFINITY), f(1.0)]),
            ok(f(1.0))
        );
    }

    #[test]
    fn limit_with_crossed_or_nan_bounds_is_flagged() {
        assert_eq!(run(&LIMIT, Int, &[i(10), i(5), i(0)]), bad(i(10)));
        assert_eq!(run(&LIMIT, Float, &[f(10.0), f(5.0), f(0.0)]), bad(f(10.0)));
        assert_eq!(
            run(&LIMIT, Float, &[f(0.0), f(f64::NAN), f(1.0)]),
            bad(f(0.0))
        );
        assert_eq!(
            run(&LIMIT, Float, &[f(f64::NAN), f(0.5), f(1.0)]),
            bad(f(0.0))
        );
        assert_eq!(
            run(&LIMIT, Float, &[f(0.0), f(0.5), f(f64::NAN)]),
            bad(f(0.0))
        );
    }

    #[test]
    fn sqrt_and_expt() {
        assert_eq!(run(&SQRT, Float, &[f(9.0)]), ok(f(3.0)));
        assert_eq!(run(&SQRT, Float, &[i(16)]), ok(f(4.0)));
        assert_eq!(run(&SQRT, Float, &[f(-1.0)]), bad(f(0.0)));
        assert_eq!(run(&SQRT, Float, &[f(f64::NAN)]), bad(f(0.0)));
        assert_eq!(run(&SQRT, Float, &[f(f64::INFINITY)]), ok(f(f64::INFINITY)));
        assert_eq!(run(&EXPT, Float, &[f(2.0), f(10.0)]), ok(f(1024.0)));
        assert_eq!(run(&EXPT, Float, &[i(9), f(0.5)]), ok(f(3.0)));
        assert_eq!(run(&EXPT, Float, &[f(0.0), f(0.0)]), ok(f(1.0)));
        assert_eq!(run(&EXPT, Float, &[f(0.0), f(-1.0)]), bad(f(0.0)));
        assert_eq!(run(&EXPT, Float, &[f(-8.0), f(1.0 / 3.0)]), bad(f(0.0)));
        assert_eq!(run(&EXPT, Float, &[f(10.0), f(400.0)]), bad(f(0.0)));
    }

    #[test]
    fn int_output_refuses_float_inputs() {
        for ty in [&DIV, &MOD, &LIMIT] {
            let mut s = Setup::new(ty);
            for (k, p) in ty.inputs.iter().enumerate() {
                s = s.input(p.name, if k == 1 { Float } else { Int });
            }
            let e = s.output(Int).refused();
            assert!(e.starts_with("output `out` is int but input"), "{e}");
        }
        let e = Setup::new(&ABS).input("in", Float).output(Int).refused();
        assert!(e.contains("input in is float"), "{e}");
        let e = Setup::new(&MAX)
            .input("in1", Int)
            .input("in2", Float)
            .output(Int)
            .refused();
        assert!(e.contains("input in2 is float"), "{e}");
    }

    fn int() -> impl Strategy<Value = i64> {
        prop_oneof![Just(i64::MIN), Just(i64::MAX), -100i64..100, any::<i64>()]
    }

    fn float() -> impl Strategy<Value = f64> {
        prop_oneof![
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(-0.0),
            Just(0.0),
            Just(f64::NAN),
            -1e3..1e3,
            any::<f64>(),
        ]
    }

    fn same(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Float(x), Value::Float(y)) => x.to_bits() == y.to_bits(),
            _ => a == b,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn limit_output_is_within_bounds_int(a in int(), b in int(), x in int()) {
            let (mn, mx) = (a.min(b), a.max(b));
            let (v, flagged) = run(&LIMIT, Int, &[i(mn), i(x), i(mx)]);
            let v = v.as_int().unwrap();
            prop_assert!(!flagged);
            prop_assert!(mn <= v && v <= mx);
            prop_assert!(v == x || !(mn..=mx).contains(&x));
        }

        #[test]
        fn limit_output_is_within_bounds_float(a in float(), b in float(), x in float()) {
            prop_assume!(!a.is_nan() && !b.is_nan());
            let (mn, mx) = (a.min(b), a.max(b));
            let (v, flagged) = run(&LIMIT, Float, &[f(mn), f(x), f(mx)]);
            let Value::Float(v) = v else { unreachable!() };
            prop_assert!(mn <= v && v <= mx, "{mn} <= {v} <= {mx}");
            prop_assert_eq!(flagged, x.is_nan());
        }

        #[test]
        fn min_max_are_commutative_int(mut xs in prop::collection::vec(int(), 2..=16), seed in any::<u64>()) {
            for ty in [&MIN, &MAX] {
                let ins: Vec<Value> = xs.iter().map(|x| i(*x)).collect();
                let (a, _) = run(ty, Int, &ins);
                rotate_shuffle(&mut xs, seed);
                let ins: Vec<Value> = xs.iter().map(|x| i(*x)).collect();
                let (b, _) = run(ty, Int, &ins);
                prop_assert_eq!(&a, &b);
                let want = if ty.name == "MIN" { xs.iter().min() } else { xs.iter().max() };
                prop_assert_eq!(a, i(*want.unwrap()));
            }
        }

        #[test]
        fn min_max_are_commutative_float(mut xs in prop::collection::vec(float(), 2..=16), seed in any::<u64>()) {
            for ty in [&MIN, &MAX] {
                let ins: Vec<Value> = xs.iter().map(|x| f(*x)).collect();
                let (a, _) = run(ty, Float, &ins);
                rotate_shuffle(&mut xs, seed);
                let ins: Vec<Value> = xs.iter().map(|x| f(*x)).collect();
                let (b, _) = run(ty, Float, &ins);
                prop_assert!(same(&a, &b), "{:?} vs {:?}", a, b);
                let Value::Float(a) = a else { unreachable!() };
                if !a.is_nan() {
                    let is_min = ty.name == "MIN";
                    let bound = xs.iter().all(|x| if is_min { a <= *x } else { a >= *x });
                    prop_assert!(bound, "{} of {:?} gave {}", ty.name, xs, a);
                }
            }
        }
    }

    /// A deterministic permutation from `seed` (Fisher–Yates with an LCG).
    fn rotate_shuffle<T>(xs: &mut [T], mut seed: u64) {
        for k in (1..xs.len()).rev() {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            xs.swap(k, (seed >> 33) as usize % (k + 1));
        }
    }
}
