//! Petra's built-in function blocks.
//!
//! Each family lives in its own module and exposes its block types as `pub static`
//! [`BlockType`]s; [`BUILTIN`] lists them all and [`builtin`] registers them in a
//! [`Registry`]. Semantics follow IEC 61131-3 (ports keep their IEC names in lower case);
//! `docs/blocks.md` is the user-facing reference and states where a choice had to be made.
//!
//! Rules every block here keeps (the tests check them):
//!
//! * `build` resolves every type decision (int or float arithmetic, which comparison), so
//!   `execute` does no type dispatch beyond what [`petra_engine::Io`] does;
//! * `execute` never allocates and is total: NaN, infinities, extreme ints, negative times and
//!   a clock that does not advance all give a defined output, never a panic;
//! * time comes only from `Io::now()` / `Io::dt()` (scheduled scan time), never a clock;
//! * quality is not a block's business: the engine skips a block with a bad input — except
//!   QUALITY, which exists to turn a signal's quality into values logic can act on.

use petra_engine::{BlockType, ParamSpec, ParamType, PortSpec, PortType, Registry};

pub mod arith;
pub mod bistable;
pub mod compare;
pub mod control;
pub mod convert;
pub mod counters;
pub mod edge;
pub mod expr;
pub mod filters;
pub mod generators;
pub mod logic;
pub mod math;
pub mod quality;
pub mod select;
pub mod sequencer;
pub mod sim;
pub mod timers;

#[cfg(test)]
mod testing;

/// Compiles and runs the Rust examples of `docs/blocks.md` (the SDK example) as doctests, so
/// the reference cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/blocks.md")]
mod reference_examples {}

/// Every built-in block type, in the order the documentation lists them.
pub static BUILTIN: &[&BlockType] = &[
    &logic::AND,
    &logic::OR,
    &logic::XOR,
    &logic::NOT,
    &compare::GT,
    &compare::GE,
    &compare::LT,
    &compare::LE,
    &compare::EQ,
    &compare::NE,
    &math::ADD,
    &math::SUB,
    &math::MUL,
    &arith::DIV,
    &arith::MOD,
    &arith::ABS,
    &arith::NEG,
    &arith::MIN,
    &arith::MAX,
    &arith::LIMIT,
    &arith::SQRT,
    &arith::EXPT,
    &expr::EXPR,
    &select::MOVE,
    &select::SEL,
    &quality::QUALITY,
    &convert::MUX,
    &convert::SCALE,
    &convert::BOOL_TO_INT,
    &convert::INT_TO_BOOL,
    &convert::INT_TO_FLOAT,
    &convert::FLOAT_TO_INT,
    &convert::BOOL_TO_FLOAT,
    &convert::FLOAT_TO_BOOL,
    &bistable::SR,
    &bistable::RS,
    &edge::R_TRIG,
    &edge::F_TRIG,
    &timers::TON,
    &timers::TOF,
    &timers::TP,
    &timers::TONR,
    &counters::CTU,
    &counters::CTD,
    &counters::CTUD,
    &control::PID,
    &control::HYSTERESIS,
    &filters::DEADBAND,
    &filters::RAMP,
    &filters::LAG,
    &filters::MOVING_AVG,
    &filters::INTEGRATOR,
    &filters::TOTALIZER,
    &sequencer::SEQUENCER,
    &sim::TANK,
    &generators::SINE,
    &generators::SQUARE,
    &generators::SAWTOOTH,
    &generators::RANDOM_WALK,
];

/// A registry holding every built-in block.
pub fn builtin() -> Registry {
    let mut r = Registry::new();
    for t in BUILTIN {
        r.register(t).expect("built-in block names are unique");
    }
    r
}

/// A required input port.
const fn input(name: &'static str, ty: PortType, doc: &'static str) -> PortSpec {
    PortSpec::required(name, ty, doc)
}

/// An optional input port.
const fn optional(name: &'static str, ty: PortType, doc: &'static str) -> PortSpec {
    PortSpec::optional(name, ty, doc)
}

/// A required variadic input port (`name1..nameN`).
const fn variadic(name: &'static str, ty: PortType, doc: &'static str) -> PortSpec {
    PortSpec::variadic(name, ty, doc)
}

/// An output port (outputs are always optional).
const fn output(name: &'static str, ty: PortType, doc: &'static str) -> PortSpec {
    PortSpec::output(name, ty, doc)
}

/// An optional parameter with an inclusive range.
const fn param(
    name: &'static str,
    ty: ParamType,
    min: Option<f64>,
    max: Option<f64>,
    doc: &'static str,
) -> ParamSpec {
    ParamSpec::optional(name, ty, doc).range(min, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_registers_under_its_name() {
        let r = builtin();
        assert_eq!(r.types().len(), BUILTIN.len());
        for t in BUILTIN {
            assert!(std::ptr::eq(r.get(t.name).unwrap(), *t), "{}", t.name);
        }
    }

    #[test]
    fn specs_are_well_formed() {
        for t in BUILTIN {
            assert!(!t.summary.is_empty(), "{}", t.name);
            for p in t.inputs.iter().chain(t.outputs) {
                assert_eq!(p.name, p.name.to_lowercase(), "{}.{}", t.name, p.name);
                assert!(!p.doc.is_empty(), "{}.{}", t.name, p.name);
            }
            assert!(t.outputs.iter().all(|p| !p.variadic), "{}", t.name);
            let mut names: Vec<_> = t.inputs.iter().chain(t.outputs).map(|p| p.name).collect();
            names.extend(t.params.iter().map(|p| p.name));
            let n = names.len();
            names.sort();
            names.dedup();
            assert_eq!(
                names.len(),
                n,
                "{}: duplicate port or parameter name",
                t.name
            );
        }
    }

    mod totality {
        use crate::BUILTIN;
        use crate::testing::Setup;
        use petra_core::{MonoTime, Value, ValueType};
        use petra_engine::PortType;
        use proptest::prelude::*;

        fn int() -> impl Strategy<Value = i64> {
            prop_oneof![
                Just(i64::MIN),
                Just(i64::MAX),
                Just(0),
                -1000i64..1000,
                any::<i64>()
            ]
        }

        fn float() -> impl Strategy<Value = f64> {
            prop_oneof![
                Just(f64::NAN),
                Just(f64::INFINITY),
                Just(f64::NEG_INFINITY),
                Just(-0.0),
                Just(f64::MAX),
                -1e3..1e3,
                any::<f64>(),
            ]
        }

        /// Time steps: normal periods, a stalled clock, huge gaps, and steps backwards.
        fn step() -> impl Strategy<Value = i128> {
            prop_oneof![
                4 => 0i128..100_000_000,
                1 => Just(0i128),
                1 => Just(i128::from(u64::MAX)),
                1 => -1_000_000_000i128..0,
            ]
        }

        fn value(t: ValueType, (bit, n, x): (bool, i64, f64)) -> Value {
            match t {
                ValueType::Bool => Value::Bool(bit),
                ValueType::Int => Value::Int(n),
                ValueType::Float => Value::Float(x),
                ValueType::String => Value::from(if bit { "on" } else { "" }),
            }
        }

        const TYPES: [ValueType; 4] = [
            ValueType::Bool,
            ValueType::Int,
            ValueType::Float,
            ValueType::String,
        ];

        /// A concrete type for a port: `pick` chooses among what the port accepts.
        fn resolve(ty: PortType, pick: u8, any: ValueType) -> ValueType {
            match ty {
                PortType::Bool => ValueType::Bool,
                PortType::Int | PortType::Time => ValueType::Int,
                PortType::String => ValueType::String,
                PortType::Float | PortType::Num if pick.is_multiple_of(2) => ValueType::Int,
                PortType::Float | PortType::Num => ValueType::Float,
                // Mostly one shared type so `build` accepts; sometimes a stray one.
                PortType::Any if pick.is_multiple_of(8) => TYPES[pick as usize / 8 % 4],
                PortType::Any => any,
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]

            /// Every built-in block, with any types `build` accepts, survives any inputs and
            /// any time steps: no panic, no allocation, no wrongly typed output (the harness
            /// and `Io::set`'s debug assertion check the last two).
            #[test]
            fn every_block_is_total(
                variadic_n in 2usize..=16,
                picks in prop::collection::vec(any::<u8>(), 40),
                any_ty in 0usize..4,
                scans in prop::collection::vec(
                    (step(), prop::collection::vec((any::<bool>(), int(), float()), 16)),
                    1..40,
                ),
            ) {
                let any = TYPES[any_ty];
                for t in BUILTIN {
                    let mut picks = picks.iter().copied().cycle();
                    let mut s = Setup::new(t);
                    let mut types = Vec::new();
                    for p in t.inputs {
                        let n = if p.variadic { variadic_n } else { 1 };
                        for k in 1..=n {
                            let name = if p.variadic { format!("{}{k}", p.name) } else { p.name.to_string() };
                            let pick = picks.next().unwrap();
                            // Now and then an input left open (the compiler allows that only
                            // for optional ones; blocks must still not misbehave).
                            if pick % 13 == 0 {
                                s = s.open(&name);
                                continue;
                            }
                            let vt = resolve(p.ty, pick, any);
                            prop_assert!(p.ty.accepts_input(vt));
                            types.push(vt);
                            s = s.input(&name, vt);
                        }
                    }
                    for p in t.outputs {
                        let pick = picks.next().unwrap();
                        // An output of type float drives only float signals.
                        let vt = match p.ty {
                            PortType::Float => ValueType::Float,
                            ty => resolve(ty, pick / 5, any),
                        };
                        s = if pick % 5 == 0 { s.unwired() } else { s.output(vt) };
                    }
                    let Ok(mut h) = s.build() else { continue };
                    let mut now: i128 = 1_000_000_000;
                    for (dt, raw) in &scans {
                        now = (now + dt).clamp(0, i128::from(u64::MAX));
                        let ins: Vec<Value> =
                            types.iter().zip(raw.iter().cycle()).map(|(vt, r)| value(*vt, *r)).collect();
                        h.scan_at(MonoTime::from_nanos(now as u64), &ins);
                    }
                }
            }
        }
    }

    /// docs/blocks.md is the user reference: every block, port and parameter must appear in it.
    #[test]
    fn reference_documents_every_block_port_and_param() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/blocks.md");
        let doc = std::fs::read_to_string(path).expect("docs/blocks.md exists");
        // Sections start with `## NAME` or `## NAME, NAME, ...` (blocks documented together).
        let sections: Vec<(&str, &str)> = doc
            .split("\n## ")
            .skip(1)
            .map(|s| s.split_once('\n').unwrap_or((s, "")))
            .collect();
        for t in BUILTIN {
            let (_, section) = sections
                .iter()
                .find(|(heading, _)| {
                    heading
                        .split(|c: char| !(c.is_ascii_uppercase() || c == '_'))
                        .any(|w| w == t.name)
                })
                .unwrap_or_else(|| panic!("docs/blocks.md has no `## {}` section", t.name));
            let names = t.inputs.iter().chain(t.outputs).map(|p| p.name);
            for name in names.chain(t.params.iter().map(|p| p.name)) {
                assert!(
                    section.contains(&format!("`{name}`")),
                    "docs/blocks.md section {} does not mention `{name}`",
                    t.name
                );
            }
        }
    }
}
