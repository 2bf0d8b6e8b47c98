//! Selection among many (MUX), linear scaling (SCALE) and type conversions.
//!
//! Conversions are explicit blocks because signals are typed and no block converts silently.
//! Conversions to string are deliberately absent: formatting allocates, which `execute` must
//! not do.

use crate::{input, output, variadic};
use petra_core::{BadReason, Quality, ValueType};
use petra_engine::{Block, BlockType, BuildCtx, BuildResult, Io, ParamSpec, ParamType, PortType};

const ARITHMETIC: Quality = Quality::Bad(BadReason::Arithmetic);

// ---------------------------------------------------------------------------------------------
// MUX

pub static MUX: BlockType = BlockType {
    name: "MUX",
    aliases: &[],
    summary: "multiplexer: out = in<k> (k = 0 picks in0)",
    inputs: &[
        input(
            "k",
            PortType::Int,
            "selector: 0 picks `in0`, 1 picks `in1`, …",
        ),
        input("in0", PortType::Any, "value when k = 0, and the fallback"),
        variadic(
            "in",
            PortType::Any,
            "values `in1`..`inN` for k = 1..N; same type as `in0`",
        ),
    ],
    outputs: &[output(
        "out",
        PortType::Any,
        "selected value; same type as the inputs",
    )],
    params: &[],
    build: build_mux,
};

fn build_mux(ctx: &BuildCtx<'_>) -> BuildResult {
    let mut first: Option<(&str, ValueType)> = None;
    let values = ctx.inputs.iter().skip(1).map(|p| (p.name.as_str(), p.ty));
    for (port, ty) in values.chain(std::iter::once(("out", ctx.output_type(0)))) {
        let Some(ty) = ty else {
            if port == "out" {
                continue;
            }
            return Err(format!(
                "input `{port}` is not connected; wire it or give a constant"
            ));
        };
        match first {
            None => first = Some((port, ty)),
            Some((p0, t0)) if t0 != ty => {
                return Err(format!(
                    "`{p0}` is {t0} but `{port}` is {ty}; MUX does not convert, \
                     so wire signals of one type"
                ));
            }
            Some(_) => {}
        }
    }
    Ok(Box::new(Mux))
}

struct Mux;

impl Block for Mux {
    fn execute(&mut self, io: &mut Io<'_>) {
        // Input 0 is `k`; the values are inputs 1..=N+1 (`in0`..`inN`).
        let values = io.input_count().saturating_sub(1) as i64;
        let k = io.int(0);
        let pick = if (0..values).contains(&k) {
            k as usize + 1
        } else {
            io.set_quality(ARITHMETIC);
            1
        };
        // A string clone bumps a reference count; it does not allocate.
        let v = io.value(pick).clone();
        io.set(0, v);
    }
}

// ---------------------------------------------------------------------------------------------
// SCALE

const fn float_param(name: &'static str, doc: &'static str) -> ParamSpec {
    ParamSpec {
        name,
        ty: ParamType::Float,
        required: true,
        min: None,
        max: None,
        doc,
    }
}

pub static SCALE: BlockType = BlockType {
    name: "SCALE",
    aliases: &[],
    summary: "linear scaling from [in_min, in_max] to [out_min, out_max], clamped by default",
    inputs: &[input("in", PortType::Float, "raw value")],
    outputs: &[output("out", PortType::Float, "scaled value")],
    params: &[
        float_param("in_min", "raw value that maps to `out_min`"),
        float_param(
            "in_max",
            "raw value that maps to `out_max`; must differ from `in_min`",
        ),
        float_param("out_min", "output at `in_min`"),
        float_param("out_max", "output at `in_max`"),
        ParamSpec {
            name: "clamp",
            ty: ParamType::Bool,
            required: false,
            min: None,
            max: None,
            doc: "keep `out` within [out_min, out_max]; default true",
        },
    ],
    build: build_scale,
};

fn build_scale(ctx: &BuildCtx<'_>) -> BuildResult {
    let p = ctx.params;
    // The four ranges are required (the compiler checks that); the defaults only matter to
    // code that calls `build` directly, such as the robustness test.
    let in_min = p.float_or("in_min", 0.0);
    let in_max = p.float_or("in_max", 1.0);
    let out_min = p.float_or("out_min", 0.0);
    let out_max = p.float_or("out_max", 1.0);
    for (name, v) in [
        ("in_min", in_min),
        ("in_max", in_max),
        ("out_min", out_min),
        ("out_max", out_max),
    ] {
        if !v.is_finite() {
            return Err(format!("`{name}` is {v}; give a finite number"));
        }
    }
    if in_min == in_max {
        return Err(format!(
            "`in_min` and `in_max` are both {in_min}, so the input range is empty; \
             give two different raw values"
        ));
    }
    let slope = (out_max - out_min) / (in_max - in_min);
    if !slope.is_finite() {
        return Err(format!(
            "the range [{in_min}, {in_max}] → [{out_min}, {out_max}] gives an infinite \
             slope; narrow the output range or widen the input range"
        ));
    }
    Ok(Box::new(Scale {
        in_min,
        out_min,
        slope,
        clamp: p
            .bool_or("clamp", true)
            .then(|| (out_min.min(out_max), out_min.max(out_max))),
    }))
}

struct Scale {
    in_min: f64,
    out_min: f64,
    slope: f64,
    /// `(low, high)` of the output range when clamping.
    clamp: Option<(f64, f64)>,
}

impl Scale {
    /// The scaled value, or `None` when there is none (NaN input, or an infinite one that is
    /// not clamped).
    fn scale(&self, x: f64) -> Option<f64> {
        if x.is_nan() {
            return None;
        }
        // A flat output range maps everything, infinities included, to `out_min` (the
        // formula would give `inf * 0 = NaN`).
        let mut y = if self.slope == 0.0 {
            self.out_min
        } else {
            self.out_min + (x - self.in_min) * self.slope
        };
        if let Some((lo, hi)) = self.clamp {
            y = y.clamp(lo, hi);
        }
        y.is_finite().then_some(y)
    }
}

impl Block for Scale {
    fn execute(&mut self, io: &mut Io<'_>) {
        let v = self.scale(io.float(0)).unwrap_or_else(|| {
            io.set_quality(ARITHMETIC);
            self.out_min
        });
        io.set_float(0, v);
    }
}

// ---------------------------------------------------------------------------------------------
// Type conversions

macro_rules! conversion {
    ($stat:ident, $name:literal, $aliases:expr, $summary:literal,
     $in_ty:expr, $in_doc:literal, $out_ty:expr, $out_doc:literal, $block:ident) => {
        pub static $stat: BlockType = BlockType {
            name: $name,
            aliases: $aliases,
            summary: $summary,
            inputs: &[input("in", $in_ty, $in_doc)],
            outputs: &[output("out", $out_ty, $out_doc)],
            params: &[],
            build: |_| Ok(Box::new($block)),
        };
    };
}

conversion!(
    BOOL_TO_INT,
    "BOOL_TO_INT",
    &[],
    "true → 1, false → 0",
    PortType::Bool,
    "value to convert",
    PortType::Int,
    "1 or 0",
    BoolToInt
);
conversion!(
    INT_TO_BOOL,
    "INT_TO_BOOL",
    &[],
    "in ≠ 0",
    PortType::Int,
    "value to convert",
    PortType::Bool,
    "true when `in` is not 0",
    IntToBool
);
conversion!(
    INT_TO_FLOAT,
    "INT_TO_FLOAT",
    &["INT_TO_REAL", "INT_TO_LREAL"],
    "int → float (nearest float above 2^53)",
    PortType::Int,
    "value to convert",
    PortType::Float,
    "the same value as a float",
    IntToFloat
);
conversion!(
    FLOAT_TO_INT,
    "FLOAT_TO_INT",
    &["REAL_TO_INT", "LREAL_TO_INT"],
    "float → int, rounding half away from zero; saturates",
    PortType::Float,
    "value to convert",
    PortType::Int,
    "rounded value; NaN gives 0, out of range saturates (both bad(arithmetic))",
    FloatToInt
);
conversion!(
    BOOL_TO_FLOAT,
    "BOOL_TO_FLOAT",
    &["BOOL_TO_REAL", "BOOL_TO_LREAL"],
    "true → 1.0, false → 0.0",
    PortType::Bool,
    "value to convert",
    PortType::Float,
    "1.0 or 0.0",
    BoolToFloat
);
conversion!(
    FLOAT_TO_BOOL,
    "FLOAT_TO_BOOL",
    &["REAL_TO_BOOL", "LREAL_TO_BOOL"],
    "in ≠ 0.0",
    PortType::Float,
    "value to convert",
    PortType::Bool,
    "true when `in` is not 0; NaN gives false and bad(arithmetic)",
    FloatToBool
);

struct BoolToInt;
struct IntToBool;
struct IntToFloat;
struct FloatToInt;
struct BoolToFloat;
struct FloatToBool;

impl Block for BoolToInt {
    fn execute(&mut self, io: &mut Io<'_>) {
        let v = i64::from(io.bool(0));
        io.set_int(0, v);
    }
}

impl Block for IntToBool {
    fn execute(&mut self, io: &mut Io<'_>) {
        let v = io.int(0) != 0;
        io.set_bool(0, v);
    }
}

impl Block for IntToFloat {
    fn execute(&mut self, io: &mut Io<'_>) {
        let v = io.int(0) as f64;
        io.set_float(0, v);
    }
}

/// IEC REAL_TO_INT for a 64-bit int: round half away from zero; `Err` with the saturated (or,
/// for NaN, zero) value when there is no such int.
pub(crate) fn float_to_int(x: f64) -> Result<i64, i64> {
    // 2^63: the first float above the int range (i64::MIN = -2^63 itself is representable).
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    let r = x.round();
    if r.is_nan() {
        Err(0)
    } else if r >= LIMIT {
        Err(i64::MAX)
    } else if r < -LIMIT {
        Err(i64::MIN)
    } else {
        Ok(r as i64)
    }
}

impl Block for FloatToInt {
    fn execute(&mut self, io: &mut Io<'_>) {
        let v = float_to_int(io.float(0)).unwrap_or_else(|fallback| {
            io.set_quality(ARITHMETIC);
            fallback
        });
        io.set_int(0, v);
    }
}

impl Block for BoolToFloat {
    fn execute(&mut self, io: &mut Io<'_>) {
        let v = if io.bool(0) { 1.0 } else { 0.0 };
        io.set_float(0, v);
    }
}

impl Block for FloatToBool {
    fn execute(&mut self, io: &mut Io<'_>) {
        let x = io.float(0);
        let v = if x.is_nan() {
            io.set_quality(ARITHMETIC);
            false
        } else {
            x != 0.0
        };
        io.set_bool(0, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Harness, Setup, b, f, i};
    use petra_core::Value;
    use petra_core::ValueType::{Bool, Float, Int, String};
    use petra_engine::ParamValue;
    use proptest::prelude::*;

    fn mux(n: usize, t: ValueType) -> Harness {
        Setup::new(&MUX)
            .input("k", Int)
            .input("in0", t)
            .inputs("in", n, t)
            .output(t)
            .harness()
    }

    #[test]
    fn mux_selects_by_k_from_zero() {
        let mut h = mux(3, Float);
        let ins = |k| [i(k), f(10.0), f(11.0), f(12.0), f(13.0)];
        for k in 0..4 {
            assert_eq!(h.scan(k as u64, &ins(k)).float(0), 10.0 + k as f64);
            assert!(!h.flagged());
        }
    }

    #[test]
    fn mux_out_of_range_gives_in0_and_bad_quality() {
        let mut h = mux(2, Int);
        for k in [-1, 3, i64::MIN, i64::MAX] {
            h.scan(0, &[i(k), i(7), i(8), i(9)]);
            assert_eq!(h.int(0), 7, "k = {k}");
            assert!(h.flagged(), "k = {k}");
        }
        assert_eq!(h.scan(10, &[i(2), i(7), i(8), i(9)]).int(0), 9);
        assert!(!h.flagged());
    }

    #[test]
    fn mux_passes_strings_and_bools() {
        let mut h = Setup::new(&MUX)
            .input("k", Int)
            .constant("in0", Value::from("off"))
            .constant("in1", Value::from("auto"))
            .constant("in2", Value::from("manual"))
            .output(String)
            .harness();
        assert_eq!(h.scan(0, &[i(2)]).out(0), &Value::from("manual"));
        let mut h = mux(2, Bool);
        assert!(h.scan(0, &[i(1), b(false), b(true), b(false)]).bool(0));
    }

    #[test]
    fn mux_refuses_mixed_types() {
        let e = Setup::new(&MUX)
            .input("k", Int)
            .input("in0", Int)
            .input("in1", Int)
            .input("in2", Float)
            .output(Int)
            .refused();
        assert_eq!(
            e,
            "`in0` is int but `in2` is float; MUX does not convert, so wire signals of one type"
        );
        let e = Setup::new(&MUX)
            .input("k", Int)
            .input("in0", Int)
            .input("in1", Int)
            .input("in2", Int)
            .output(Float)
            .refused();
        assert!(e.starts_with("`in0` is int but `out` is float"), "{e}");
    }

    fn scale(in_min: f64, in_max: f64, out_min: f64, out_max: f64) -> Setup {
        Setup::new(&SCALE)
            .input("in", Float)
            .output(Float)
            .param("in_min", ParamValue::Float(in_min))
            .param("in_max", ParamValue::Float(in_max))
            .param("out_min", ParamValue::Float(out_min))
            .param("out_max", ParamValue::Float(out_max))
    }

    #[test]
    fn scale_maps_linearly_and_clamps_by_default() {
        // A 4..20 mA transmitter for 0..250 °C.
        let mut h = scale(4.0, 20.0, 0.0, 250.0).harness();
        for (x, y) in [
            (4.0, 0.0),
            (20.0, 250.0),
            (12.0, 125.0),
            (2.0, 0.0),
            (25.0, 250.0),
            (f64::INFINITY, 250.0),
            (f64::NEG_INFINITY, 0.0),
        ] {
            assert_eq!(h.scan(0, &[f(x)]).float(0), y, "in = {x}");
            assert!(!h.flagged());
        }
    }

    #[test]
    fn scale_without_clamp_extrapolates() {
        let mut h = scale(0.0, 10.0, 0.0, 100.0)
            .param("clamp", ParamValue::Bool(false))
            .harness();
        assert_eq!(h.scan(0, &[f(12.0)]).float(0), 120.0);
        assert_eq!(h.scan(0, &[f(-1.0)]).float(0), -10.0);
        assert_eq!(h.scan(0, &[f(f64::INFINITY)]).float(0), 0.0);
        assert!(h.flagged());
    }

    #[test]
    fn scale_reversed_ranges() {
        let mut h = scale(0.0, 100.0, 10.0, 0.0).harness();
        assert_eq!(h.scan(0, &[f(25.0)]).float(0), 7.5);
        assert_eq!(h.scan(0, &[f(-5.0)]).float(0), 10.0);
        assert_eq!(h.scan(0, &[f(500.0)]).float(0), 0.0);
        let mut h = scale(100.0, 0.0, 0.0, 1.0).harness();
        assert_eq!(h.scan(0, &[i(25)]).float(0), 0.75);
    }

    #[test]
    fn scale_nan_gives_out_min_and_bad_quality() {
        let mut h = scale(0.0, 10.0, 5.0, 100.0).harness();
        assert_eq!(h.scan(0, &[f(f64::NAN)]).float(0), 5.0);
        assert!(h.flagged());
        // A flat output range: everything maps to out_min, even infinities.
        let mut h = scale(0.0, 10.0, 3.0, 3.0).harness();
        assert_eq!(h.scan(0, &[f(f64::INFINITY)]).float(0), 3.0);
        assert!(!h.flagged());
    }

    #[test]
    fn scale_refuses_an_empty_input_range_or_non_finite_params() {
        let e = scale(5.0, 5.0, 0.0, 1.0).refused();
        assert!(e.starts_with("`in_min` and `in_max` are both 5"), "{e}");
        let e = scale(0.0, 1.0, 0.0, f64::INFINITY).refused();
        assert_eq!(e, "`out_max` is inf; give a finite number");
        let e = scale(0.0, 1e-300, -1e300, 1e300).refused();
        assert!(e.contains("infinite slope"), "{e}");
    }

    proptest! {
        #[test]
        fn scale_clamped_output_stays_in_range(
            a in -1e6f64..1e6, b in -1e6f64..1e6, c in -1e6f64..1e6, d in -1e6f64..1e6,
            x in prop_oneof![Just(f64::NAN), Just(f64::INFINITY), Just(f64::NEG_INFINITY), any::<f64>(), -1e7f64..1e7],
        ) {
            prop_assume!(a != b);
            let mut h = scale(a, b, c, d).harness();
            let y = h.scan(0, &[f(x)]).float(0);
            prop_assert!(c.min(d) <= y && y <= c.max(d), "{y} not in [{c}, {d}]");
            prop_assert_eq!(h.flagged(), x.is_nan());
        }

        #[test]
        fn float_to_int_matches_round_half_away(x in any::<f64>()) {
            match float_to_int(x) {
                Ok(n) => prop_assert_eq!(n as f64, x.round()),
                Err(n) => prop_assert!((x.is_nan() && n == 0) || (x.round() as i64) == n),
            }
        }
    }

    fn convert(ty: &'static BlockType, from: ValueType, to: ValueType, v: Value) -> (Value, bool) {
        let mut h = Setup::new(ty).input("in", from).output(to).harness();
        h.scan(0, &[v]);
        (h.out(0).clone(), h.flagged())
    }

    #[test]
    fn conversions() {
        assert_eq!(convert(&BOOL_TO_INT, Bool, Int, b(true)), (i(1), false));
        assert_eq!(convert(&BOOL_TO_INT, Bool, Int, b(false)), (i(0), false));
        assert_eq!(convert(&INT_TO_BOOL, Int, Bool, i(-3)), (b(true), false));
        assert_eq!(convert(&INT_TO_BOOL, Int, Bool, i(0)), (b(false), false));
        assert_eq!(convert(&INT_TO_FLOAT, Int, Float, i(-3)), (f(-3.0), false));
        assert_eq!(
            convert(&INT_TO_FLOAT, Int, Float, i(i64::MAX)),
            (f(i64::MAX as f64), false)
        );
        assert_eq!(
            convert(&BOOL_TO_FLOAT, Bool, Float, b(true)),
            (f(1.0), false)
        );
        assert_eq!(
            convert(&BOOL_TO_FLOAT, Bool, Float, b(false)),
            (f(0.0), false)
        );
        assert_eq!(
            convert(&FLOAT_TO_BOOL, Float, Bool, f(0.1)),
            (b(true), false)
        );
        assert_eq!(
            convert(&FLOAT_TO_BOOL, Float, Bool, f(-0.0)),
            (b(false), false)
        );
        assert_eq!(
            convert(&FLOAT_TO_BOOL, Float, Bool, f(f64::NEG_INFINITY)),
            (b(true), false)
        );
        assert_eq!(
            convert(&FLOAT_TO_BOOL, Float, Bool, f(f64::NAN)),
            (b(false), true)
        );
        assert_eq!(convert(&FLOAT_TO_BOOL, Int, Bool, i(2)), (b(true), false));
    }

    #[test]
    fn float_to_int_rounds_half_away_from_zero() {
        for (x, n) in [
            (0.5, 1),
            (1.5, 2),
            (2.5, 3),
            (-0.5, -1),
            (-2.5, -3),
            (2.4999, 2),
            (-2.4999, -2),
            (-0.0, 0),
        ] {
            assert_eq!(
                convert(&FLOAT_TO_INT, Float, Int, f(x)),
                (i(n), false),
                "{x}"
            );
        }
        assert_eq!(convert(&FLOAT_TO_INT, Int, Int, i(42)), (i(42), false));
    }

    #[test]
    fn float_to_int_saturates_and_flags() {
        assert_eq!(
            convert(&FLOAT_TO_INT, Float, Int, f(f64::NAN)),
            (i(0), true)
        );
        assert_eq!(
            convert(&FLOAT_TO_INT, Float, Int, f(1e19)),
            (i(i64::MAX), true)
        );
        assert_eq!(
            convert(&FLOAT_TO_INT, Float, Int, f(f64::INFINITY)),
            (i(i64::MAX), true)
        );
        assert_eq!(
            convert(&FLOAT_TO_INT, Float, Int, f(f64::NEG_INFINITY)),
            (i(i64::MIN), true)
        );
        // -2^63 is an int; 2^63 is not.
        assert_eq!(
            convert(&FLOAT_TO_INT, Float, Int, f(-(2f64.powi(63)))),
            (i(i64::MIN), false)
        );
        assert_eq!(
            convert(&FLOAT_TO_INT, Float, Int, f(2f64.powi(63))),
            (i(i64::MAX), true)
        );
    }

    #[test]
    fn iec_real_aliases_register() {
        let r = crate::builtin();
        assert!(std::ptr::eq(r.get("REAL_TO_INT").unwrap(), &FLOAT_TO_INT));
        assert!(std::ptr::eq(r.get("INT_TO_REAL").unwrap(), &INT_TO_FLOAT));
    }
}
