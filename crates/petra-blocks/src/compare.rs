//! Comparison: GT, GE, LT, LE, EQ, NE.
//!
//! Two int inputs compare exactly as `i64`; as soon as one is float both compare as `f64` (an int
//! above 2^53 is rounded then, as IEC's implicit widening does). Which of the two happens is
//! decided in `build`, so a scan only runs the chosen function. Comparisons with NaN follow IEEE
//! 754: every ordering and EQ are false, NE is true.

use crate::{input, output};
use petra_core::ValueType;
use petra_engine::{
    Block, BlockType, BuildCtx, BuildResult, Io, ParamSpec, ParamType, PortSpec, PortType,
};

static OPERANDS: [PortSpec; 2] = [
    input("in1", PortType::Num, "left operand"),
    input("in2", PortType::Num, "right operand"),
];
static RESULT: [PortSpec; 1] = [output("out", PortType::Bool, "comparison result")];
static TOL: [ParamSpec; 1] = [ParamSpec {
    name: "tol",
    ty: ParamType::Float,
    required: false,
    min: Some(0.0),
    max: None,
    doc: "float tolerance: |in1 - in2| <= tol counts as equal; default 0 (exact). \
          Used only when an input is float; two ints always compare exactly",
}];

macro_rules! compare_type {
    ($name:ident, $op:expr, $summary:literal, $params:expr) => {
        pub static $name: BlockType = BlockType {
            name: stringify!($name),
            aliases: &[],
            summary: $summary,
            inputs: &OPERANDS,
            outputs: &RESULT,
            params: $params,
            build: |ctx| build($op, ctx),
        };
    };
}

compare_type!(GT, Op::Gt, "in1 > in2", &[]);
compare_type!(GE, Op::Ge, "in1 >= in2", &[]);
compare_type!(LT, Op::Lt, "in1 < in2", &[]);
compare_type!(LE, Op::Le, "in1 <= in2", &[]);
compare_type!(
    EQ,
    Op::Eq,
    "in1 = in2, optionally within a float tolerance",
    &TOL
);
compare_type!(
    NE,
    Op::Ne,
    "in1 <> in2, optionally beyond a float tolerance",
    &TOL
);

#[derive(Clone, Copy)]
enum Op {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

type Eval = fn(&Io<'_>, f64) -> bool;

fn float_eq(a: f64, b: f64, tol: f64) -> bool {
    // `a == b` first so that equal infinities are equal (inf - inf is NaN).
    a == b || (a - b).abs() <= tol
}

fn build(op: Op, ctx: &BuildCtx<'_>) -> BuildResult {
    let tol = ctx.params.float_or("tol", 0.0);
    if !(tol.is_finite() && tol >= 0.0) {
        return Err(format!("tol is {tol}; it must be a finite number >= 0"));
    }
    let int =
        ctx.input_type(0) == Some(ValueType::Int) && ctx.input_type(1) == Some(ValueType::Int);
    let eval: Eval = match (op, int) {
        (Op::Gt, true) => |io, _| io.int(0) > io.int(1),
        (Op::Ge, true) => |io, _| io.int(0) >= io.int(1),
        (Op::Lt, true) => |io, _| io.int(0) < io.int(1),
        (Op::Le, true) => |io, _| io.int(0) <= io.int(1),
        (Op::Eq, true) => |io, _| io.int(0) == io.int(1),
        (Op::Ne, true) => |io, _| io.int(0) != io.int(1),
        (Op::Gt, false) => |io, _| io.float(0) > io.float(1),
        (Op::Ge, false) => |io, _| io.float(0) >= io.float(1),
        (Op::Lt, false) => |io, _| io.float(0) < io.float(1),
        (Op::Le, false) => |io, _| io.float(0) <= io.float(1),
        (Op::Eq, false) => |io, tol| float_eq(io.float(0), io.float(1), tol),
        (Op::Ne, false) => |io, tol| !float_eq(io.float(0), io.float(1), tol),
    };
    Ok(Box::new(Compare { eval, tol }))
}

struct Compare {
    eval: Eval,
    tol: f64,
}

impl Block for Compare {
    fn execute(&mut self, io: &mut Io<'_>) {
        let v = (self.eval)(io, self.tol);
        io.set_bool(0, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Setup, f, i};
    use petra_core::Value;
    use petra_core::ValueType::{Bool, Float, Int};
    use petra_engine::ParamValue;

    fn run(ty: &'static BlockType, a: Value, b: Value) -> bool {
        Setup::new(ty)
            .input("in1", a.value_type())
            .input("in2", b.value_type())
            .output(Bool)
            .harness()
            .scan(0, &[a, b])
            .bool(0)
    }

    #[test]
    fn orderings_on_ints_floats_and_mixed() {
        let cases: [(Value, Value); 4] = [
            (i(1), i(2)),
            (f(1.0), f(2.0)),
            (i(1), f(1.5)),
            (f(0.5), i(1)),
        ];
        for (a, b) in cases {
            assert!(!run(&GT, a.clone(), b.clone()));
            assert!(!run(&GE, a.clone(), b.clone()));
            assert!(run(&LT, a.clone(), b.clone()));
            assert!(run(&LE, a.clone(), b.clone()));
            assert!(!run(&EQ, a.clone(), b.clone()));
            assert!(run(&NE, a.clone(), b.clone()));
            assert!(run(&GT, b.clone(), a.clone()));
        }
        assert!(run(&GE, i(3), i(3)) && run(&LE, i(3), i(3)) && run(&EQ, i(3), i(3)));
        assert!(run(&EQ, i(3), f(3.0)) && !run(&NE, f(3.0), i(3)));
    }

    #[test]
    fn two_ints_compare_exactly_beyond_f64_precision() {
        let big = (1i64 << 53) + 1;
        // As f64 both are 2^53; as i64 they differ.
        assert!(run(&GT, i(big), i(big - 1)));
        assert!(run(&NE, i(big), i(big - 1)));
        assert!(run(&LT, i(i64::MIN), i(i64::MAX)));
        // Mixed compares as f64, as documented.
        assert!(run(&EQ, i(big), f((1u64 << 53) as f64)));
    }

    #[test]
    fn nan_follows_ieee() {
        let nan = f(f64::NAN);
        for ty in [&GT, &GE, &LT, &LE, &EQ] {
            assert!(!run(ty, nan.clone(), f(1.0)), "{}", ty.name);
            assert!(!run(ty, i(1), nan.clone()), "{}", ty.name);
        }
        assert!(run(&NE, nan.clone(), nan));
        assert!(run(&EQ, f(f64::INFINITY), f(f64::INFINITY)));
        assert!(run(&GT, f(f64::INFINITY), i(i64::MAX)));
    }

    fn with_tol(ty: &'static BlockType, tol: f64, a: f64, b: f64) -> bool {
        Setup::new(ty)
            .input("in1", Float)
            .input("in2", Float)
            .output(Bool)
            .param("tol", ParamValue::Float(tol))
            .harness()
            .scan(0, &[f(a), f(b)])
            .bool(0)
    }

    #[test]
    fn eq_and_ne_with_tolerance() {
        assert!(with_tol(&EQ, 0.01, 1.0, 1.005));
        assert!(with_tol(&EQ, 0.5, 1.0, 1.5));
        assert!(!with_tol(&EQ, 0.01, 1.0, 1.02));
        assert!(!with_tol(&NE, 0.01, 1.0, 1.005));
        assert!(with_tol(&NE, 0.01, 1.0, 1.02));
        assert!(!with_tol(&EQ, 0.0, 0.1 + 0.2, 0.3));
        assert!(with_tol(&EQ, 1e-9, 0.1 + 0.2, 0.3));
        assert!(!with_tol(&EQ, 1e9, f64::NAN, 0.0));
        // Two ints compare exactly whatever the tolerance.
        let exact = Setup::new(&EQ)
            .input("in1", Int)
            .input("in2", Int)
            .output(Bool)
            .param("tol", ParamValue::Int(5))
            .harness()
            .scan(0, &[i(1), i(2)])
            .bool(0);
        assert!(!exact);
    }

    #[test]
    fn build_refuses_a_bad_tolerance() {
        for tol in [-1.0, f64::NAN, f64::INFINITY] {
            let e = Setup::new(&EQ)
                .input("in1", Float)
                .input("in2", Float)
                .output(Bool)
                .param("tol", ParamValue::Float(tol))
                .refused();
            assert!(e.contains("tol is"), "{e}");
        }
    }

    #[test]
    fn constant_operand() {
        let mut h = Setup::new(&GT)
            .input("in1", Float)
            .constant("in2", Value::Float(80.0))
            .output(Bool)
            .harness();
        assert!(!h.scan(0, &[f(80.0)]).bool(0));
        assert!(h.scan(10, &[f(80.1)]).bool(0));
    }
}
