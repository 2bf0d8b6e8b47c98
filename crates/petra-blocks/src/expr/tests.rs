use super::*;
use crate::testing::{Harness, Setup, b, f, i};
use petra_core::Value;
use petra_core::ValueType::{Bool, Float, Int, String};
use proptest::prelude::*;

/// EXPR with the named variables wired (the others open) and the output of type `out`.
fn setup(expr: &str, vars: &[(&str, ValueType)], out: Option<ValueType>) -> Setup {
    let mut s = Setup::new(&EXPR).param("expr", ParamValue::String(expr.into()));
    for name in NAMES {
        s = match vars.iter().find(|(n, _)| *n == name) {
            Some((_, t)) => s.input(name, *t),
            None => s.open(name),
        };
    }
    match out {
        Some(t) => s.output(t),
        None => s.unwired(),
    }
}

/// Evaluates `expr` once with the given variable values; the output has the type `out`.
/// Returns the output and whether the scan flagged bad(arithmetic).
fn eval(expr: &str, vars: &[(&str, Value)], out: ValueType) -> (Value, bool) {
    let types: Vec<(&str, ValueType)> = vars.iter().map(|(n, v)| (*n, v.value_type())).collect();
    let mut h = setup(expr, &types, Some(out)).harness();
    let values: Vec<Value> = NAMES
        .iter()
        .filter_map(|n| vars.iter().find(|(m, _)| m == n).map(|(_, v)| v.clone()))
        .collect();
    h.scan(0, &values);
    (h.out(0).clone(), h.flagged())
}

fn refused(expr: &str, vars: &[(&str, ValueType)], out: Option<ValueType>) -> std::string::String {
    setup(expr, vars, out).refused()
}

#[test]
fn the_issue_example() {
    let mut h = setup("a * 2 + b > 10", &[("a", Int), ("b", Float)], Some(Bool)).harness();
    assert!(!h.scan(0, &[i(4), f(2.0)]).bool(0));
    assert!(h.scan(10, &[i(4), f(2.5)]).bool(0));
    assert!(!h.flagged());
}

#[test]
fn precedence_and_associativity() {
    for (src, want) in [
        ("1 + 2 * 3", i(7)),
        ("(1 + 2) * 3", i(9)),
        ("10 - 4 - 3", i(3)),
        ("7 / 2 * 2", i(6)),
        ("2 * 7 % 4", i(2)),
        ("-2 * 3", i(-6)),
        ("- (2 + 3) * 2", i(-10)),
        ("2 - -3", i(5)),
        ("17 mod 5", i(2)),
        ("-9223372036854775808", i(i64::MIN)),
    ] {
        assert_eq!(eval(src, &[], Int), (want, false), "{src}");
    }
    for (src, want) in [
        ("1 + 2 * 3 == 7", true),
        ("1 < 2 == 3 < 4", true),
        ("1 < 2 = false", false),
        ("true or false and false", true),
        ("(true or false) and false", false),
        ("not false and false", false),
        ("not (false and false)", true),
        ("!true || true", true),
        ("1 <> 1 or 2 = 2", true),
        ("1 != 1 || 2 == 2 && 3 >= 4", false),
        ("TRUE AND NOT FALSE", true),
        ("2 + 3 > 4 and 1 <= 1", true),
        ("true = (1 > 0)", true),
    ] {
        assert_eq!(eval(src, &[], Bool), (b(want), false), "{src}");
    }
    for (src, want) in [
        ("7 / 2", 3.0f64), // int arithmetic, widened at the end
        ("7 / 2.0", 3.5),
        ("1 + 0.5 * 3", 2.5),
        (".5e1 + 1_000", 1005.0),
        ("7.5 % 2", 1.5),
        ("-0.0", -0.0),
    ] {
        let (v, flagged) = eval(src, &[], Float);
        assert!(!flagged, "{src}");
        assert_eq!(
            v.as_f64().map(f64::to_bits),
            Some(want.to_bits()),
            "{src}: {v:?}"
        );
    }
}

#[test]
fn functions() {
    let vars = [("a", i(-7)), ("c", i(3))];
    assert_eq!(eval("abs(a)", &vars[..1], Int), (i(7), false));
    for (src, want) in [
        ("min(a, c)", i(-7)),
        ("max(a, c, 10, -2)", i(10)),
        ("limit(0, a, c)", i(0)),
        ("limit(-10, a, c)", i(-7)),
        ("abs(a) % c", i(1)),
    ] {
        assert_eq!(eval(src, &vars, Int), (want, false), "{src}");
    }
    for (src, want) in [
        ("sqrt(b)", 1.5),
        ("sqrt(16 + b - b)", 4.0),
        ("max(b, 2)", 2.25),
        ("min(b, 2)", 2.0),
        ("limit(0, b, 1.5)", 1.5),
        ("abs(-b)", 2.25),
    ] {
        assert_eq!(
            eval(src, &[("b", f(2.25))], Float),
            (f(want), false),
            "{src}"
        );
    }
}

#[test]
fn variables_of_every_type() {
    let (v, bad) = eval(
        "e and a > 1 or not e and c < 0.5",
        &[("a", i(2)), ("c", f(0.7)), ("e", b(true))],
        Bool,
    );
    assert_eq!((v, bad), (b(true), false));
    let (v, _) = eval("h * 2", &[("h", i(21))], Int);
    assert_eq!(v, i(42));
    // An int input in float arithmetic is widened.
    let (v, _) = eval("a / b", &[("a", i(1)), ("b", f(4.0))], Float);
    assert_eq!(v, f(0.25));
}

#[test]
fn variables_may_be_constants() {
    let mut h = Setup::new(&EXPR)
        .param("expr", ParamValue::String("a * b".into()))
        .input("a", Float)
        .constant("b", Value::Float(1.5));
    for name in &NAMES[2..] {
        h = h.open(name);
    }
    let mut h = h.output(Float).harness();
    assert_eq!(h.scan(0, &[f(4.0)]).float(0), 6.0);
}

#[test]
fn division_by_zero_and_overflow_are_flagged() {
    type Case<'a> = (&'a str, &'a [(&'a str, Value)], ValueType, Value);
    let cases: [Case; 10] = [
        ("a / b", &[("a", i(i64::MIN)), ("b", i(-1))], Int, i(0)),
        ("a / b", &[("a", i(1)), ("b", i(0))], Int, i(0)),
        ("a % b", &[("a", i(1)), ("b", i(0))], Int, i(0)),
        ("a / b", &[("a", f(1.0)), ("b", f(0.0))], Float, f(0.0)),
        ("a / b > 1", &[("a", f(1.0)), ("b", f(0.0))], Bool, b(false)),
        ("a * 2", &[("a", i(i64::MAX))], Int, i(0)),
        ("-a", &[("a", i(i64::MIN))], Int, i(0)),
        ("a * 1e308 * 10", &[("a", f(1.0))], Float, f(0.0)),
        ("sqrt(a)", &[("a", f(-1.0))], Float, f(0.0)),
        ("limit(a, 1, 0)", &[("a", i(5))], Int, i(0)),
    ];
    for (src, vars, out, fallback) in cases {
        assert_eq!(eval(src, vars, out), (fallback, true), "{src}");
    }
    // NaN inputs: comparisons are false (IEEE), a NaN float result is flagged.
    assert_eq!(
        eval("a > 1", &[("a", f(f64::NAN))], Bool),
        (b(false), false)
    );
    assert_eq!(eval("a + 1", &[("a", f(f64::NAN))], Float), (f(0.0), true));
}

#[test]
fn and_or_short_circuit_so_guards_work() {
    let mut h = setup(
        "b <> 0 and a / b > 2",
        &[("a", Int), ("b", Int)],
        Some(Bool),
    )
    .harness();
    assert!(!h.scan(0, &[i(7), i(0)]).bool(0));
    assert!(!h.flagged());
    assert!(h.scan(10, &[i(9), i(3)]).bool(0));
    let mut h = setup("b == 0 or a / b > 2", &[("a", Int), ("b", Int)], Some(Bool)).harness();
    assert!(h.scan(0, &[i(7), i(0)]).bool(0));
    assert!(!h.flagged());
    assert!(!h.scan(10, &[i(7), i(7)]).bool(0));
}

#[test]
fn output_type_must_match() {
    assert_eq!(
        refused("a * 1.5", &[("a", Int)], Some(Int)),
        "`expr` \"a * 1.5\" is float but output `out` is int; wire a float signal, or \
         convert with FLOAT_TO_INT after this block"
    );
    assert_eq!(
        refused("a > 1", &[("a", Int)], Some(Float)),
        "`expr` \"a > 1\" is bool but output `out` is float; wire a signal of the \
         expression's type"
    );
    refused("a + 1", &[("a", Int)], Some(Bool));
    refused("a + 1", &[("a", Int)], Some(String));
    // Int into float is the one widening; an unwired output takes any type.
    assert_eq!(eval("a + 1", &[("a", i(2))], Float), (f(3.0), false));
    setup("a > 1", &[("a", Int)], None).harness();
}

#[test]
fn inputs_must_be_wired_used_and_not_strings() {
    assert_eq!(
        refused("a + c", &[("a", Int)], Some(Int)),
        "`c` is not connected; wire input `c` or give it as a constant at column 5 of \
         `expr` \"a + c\""
    );
    assert_eq!(
        refused("a + 1", &[("a", Int), ("d", Int)], Some(Int)),
        "input `d` is connected but `expr` \"a + 1\" does not use it; use `d` or remove the \
         connection"
    );
    assert_eq!(
        refused("a == a", &[("a", String)], Some(Bool)),
        "`a` is a string input; expressions work on bool, int and float at column 1 of \
         `expr` \"a == a\""
    );
    let e = Setup::new(&EXPR).refused();
    assert!(e.starts_with("parameter `expr` is missing"), "{e}");
}

/// The compiler's message for `src` with a: int, b: float, e: bool wired (as far as used).
fn error(src: &str) -> std::string::String {
    let mut vars: Vars = [None; 8];
    vars[0] = Some((0, Int));
    vars[1] = Some((1, Float));
    vars[4] = Some((4, Bool));
    match compile(src, &vars, None) {
        Ok(_) => panic!("`{src}` compiled"),
        Err(e) => e,
    }
}

#[test]
fn parse_errors_name_the_column() {
    for (src, msg, col) in [
        (
            "a * (2 + )",
            "expected a value (a number, an input, a function or `(`), found `)`",
            10,
        ),
        (
            "a + ",
            "expected a value (a number, an input, a function or `(`), found the end of the \
             expression",
            5,
        ),
        ("(a + 1", "expected `)`, found the end of the expression", 7),
        ("a + 1)", "this `)` has no matching `(`", 6),
        ("a $ 1", "unexpected character `$`", 3),
        ("a & e", "`&` is not an operator; write `&&` or `and`", 3),
        ("a | e", "`|` is not an operator; write `||` or `or`", 3),
        (
            "a + foo",
            "unknown name `foo`; the variables are the inputs `a` to `h`",
            5,
        ),
        ("1.2.3", "unexpected `.` in a number", 4),
        ("12ab", "unexpected `a` in a number", 3),
        ("a b", "expected an operator, found `b`", 3),
        (
            "bar(1)",
            "unknown function `bar`; the functions are abs, min, max, sqrt and limit",
            1,
        ),
        ("min(a 1)", "expected `,` or `)`, found number `1`", 7),
        ("", "the expression is empty", 1),
        ("  ", "the expression is empty", 1),
        (
            "99999999999999999999",
            "integer `99999999999999999999` is out of the int range",
            1,
        ),
        (
            "9223372036854775808",
            "integer `9223372036854775808` is out of the int range",
            1,
        ),
        ("1e999", "number `1e999` is not a finite float", 1),
        (
            "ä + 1",
            "unknown name `ä`; the variables are the inputs `a` to `h`",
            1,
        ),
        ("a + ° ", "unexpected character `°`", 5),
    ] {
        assert_eq!(
            error(src),
            format!("{msg} at column {col} of `expr` \"{src}\""),
            "{src}"
        );
    }
}

#[test]
fn type_errors_name_the_column() {
    for (src, msg, col) in [
        (
            "a + e",
            "`+` needs two numbers, but its operands are int and bool",
            3,
        ),
        (
            "e < 1",
            "`<` needs two numbers, but its operands are bool and int",
            3,
        ),
        (
            "e == 1",
            "`==` needs two numbers or two bools, but its operands are bool and int",
            3,
        ),
        (
            "e and a",
            "`and` needs two bools, but its operands are bool and int",
            3,
        ),
        (
            "a || e",
            "`or` needs two bools, but its operands are int and bool",
            3,
        ),
        ("not a", "`not` needs a bool, but its operand is int", 1),
        ("1 + -e", "`-` needs a number, but its operand is bool", 5),
        (
            "min(a, e)",
            "min(x, y, …) needs numbers, but this argument is bool",
            8,
        ),
        (
            "limit(1, 2)",
            "limit(mn, x, mx) does not take 2 argument(s)",
            1,
        ),
        ("abs()", "abs(x) does not take 0 argument(s)", 1),
        ("max(b)", "max(x, y, …) does not take 1 argument(s)", 1),
        (
            "1 < 2 < 3",
            "`<` needs two numbers, but its operands are bool and int",
            7,
        ),
    ] {
        assert_eq!(
            error(src),
            format!("{msg} at column {col} of `expr` \"{src}\""),
            "{src}"
        );
    }
}

#[test]
fn nesting_and_length_are_bounded() {
    let deep = format!("{}1{}", "(".repeat(100), ")".repeat(100));
    assert!(
        error(&deep).starts_with("nested deeper than 64 levels"),
        "{}",
        error(&deep)
    );
    let ok = format!("{}1{}", "(".repeat(60), ")".repeat(60));
    assert!(compile(&ok, &[None; 8], None).is_ok());
    let long = vec!["1"; 600].join("+");
    assert!(error(&long).starts_with("longer than 1024 characters"));
    let chain = vec!["1"; 500].join("+");
    let mut h = setup(&chain, &[], Some(Int)).harness();
    assert_eq!(h.scan(0, &[]).int(0), 500);
}

#[test]
fn the_stack_is_as_deep_as_needed() {
    // Right-nested: every operand waits on the stack.
    let src = "1 + (2 + (3 + (4 + (5 + 6))))";
    let p = compile(src, &[None; 8], Some(Int)).unwrap();
    assert_eq!(p.stack.len(), 6);
    let p = compile("1 + 2 + 3 + 4 + 5 + 6", &[None; 8], Some(Int)).unwrap();
    assert_eq!(p.stack.len(), 2);
}

// ---------------------------------------------------------------------------------------------
// Random expressions against a reference evaluator.

/// A generated expression: ints `a`, `b`, floats `c`, `d`, bool `e`.
#[derive(Clone, Debug)]
enum G {
    I(i64),
    F(f64),
    B(bool),
    Var(usize),
    Neg(Box<G>),
    Not(Box<G>),
    Bin(&'static str, Box<G>, Box<G>),
    Call(&'static str, Vec<G>),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum R {
    I(i64),
    F(f64),
    B(bool),
}

impl R {
    fn f(self) -> f64 {
        match self {
            R::I(v) => v as f64,
            R::F(x) => x,
            R::B(_) => unreachable!("typed"),
        }
    }
}

const VAR_TYPES: [ValueType; 5] = [Int, Int, Float, Float, Bool];

fn prec(g: &G) -> u8 {
    match g {
        G::Bin(op, ..) => match *op {
            "or" => 1,
            "and" => 2,
            "==" | "<>" => 3,
            "<" | "<=" | ">" | ">=" => 4,
            "+" | "-" => 5,
            _ => 6,
        },
        _ => 10,
    }
}

/// Prints with the fewest parentheses the precedence rules allow, so the parser's precedence
/// and associativity are what is tested.
fn print(g: &G) -> std::string::String {
    let atom = |x: &G| match x {
        G::Bin(..) => format!("({})", print(x)),
        _ => print(x),
    };
    match g {
        G::I(v) => v.to_string(),
        G::F(x) => format!("{x:?}"),
        G::B(v) => v.to_string(),
        G::Var(k) => NAMES[*k].to_string(),
        G::Neg(x) => format!("-{}", atom(x)),
        G::Not(x) => format!("not {}", atom(x)),
        G::Bin(op, l, r) => {
            let p = prec(g);
            let l = if prec(l) < p {
                format!("({})", print(l))
            } else {
                print(l)
            };
            let r = if prec(r) <= p {
                format!("({})", print(r))
            } else {
                print(r)
            };
            format!("{l} {op} {r}")
        }
        G::Call(name, args) => {
            let args: Vec<_> = args.iter().map(print).collect();
            format!("{name}({})", args.join(", "))
        }
    }
}

fn uses(g: &G, used: &mut [bool; 5]) {
    match g {
        G::Var(k) => used[*k] = true,
        G::Neg(x) | G::Not(x) => uses(x, used),
        G::Bin(_, l, r) => {
            uses(l, used);
            uses(r, used);
        }
        G::Call(_, args) => args.iter().for_each(|a| uses(a, used)),
        _ => {}
    }
}

/// The reference: a direct recursive evaluation. `Err(())` is "no defined result".
fn reference(g: &G, env: &[R; 5]) -> Result<R, ()> {
    let fault = |r: Option<i64>| r.map(R::I).ok_or(());
    Ok(match g {
        G::I(v) => R::I(*v),
        G::F(x) => R::F(*x),
        G::B(v) => R::B(*v),
        G::Var(k) => env[*k],
        G::Neg(x) => match reference(x, env)? {
            R::I(v) => fault(v.checked_neg())?,
            r => R::F(-r.f()),
        },
        G::Not(x) => R::B(reference(x, env)? == R::B(false)),
        G::Bin(op @ ("and" | "or"), l, r) => {
            let l = reference(l, env)? == R::B(true);
            match (*op, l) {
                ("and", false) => R::B(false),
                ("or", true) => R::B(true),
                _ => R::B(reference(r, env)? == R::B(true)),
            }
        }
        G::Bin(op, l, r) => {
            let (l, r) = (reference(l, env)?, reference(r, env)?);
            match (l, r) {
                (R::B(x), R::B(y)) => R::B(if *op == "==" { x == y } else { x != y }),
                (R::I(x), R::I(y)) => match *op {
                    "+" => fault(x.checked_add(y))?,
                    "-" => fault(x.checked_sub(y))?,
                    "*" => fault(x.checked_mul(y))?,
                    "/" => fault(x.checked_div(y))?,
                    "%" if y == 0 => return Err(()),
                    "%" => R::I(x.wrapping_rem(y)),
                    cmp => R::B(ordered(cmp, x.partial_cmp(&y))),
                },
                _ => {
                    let (x, y) = (l.f(), r.f());
                    match *op {
                        "+" => R::F(x + y),
                        "-" => R::F(x - y),
                        "*" => R::F(x * y),
                        "/" | "%" if y == 0.0 => return Err(()),
                        "/" => R::F(x / y),
                        "%" => R::F(x % y),
                        cmp => R::B(ordered(cmp, x.partial_cmp(&y))),
                    }
                }
            }
        }
        G::Call(name, args) => {
            let vals = args
                .iter()
                .map(|a| reference(a, env))
                .collect::<Result<Vec<R>, ()>>()?;
            let ints: Option<Vec<i64>> = vals
                .iter()
                .map(|v| if let R::I(x) = v { Some(*x) } else { None })
                .collect();
            let floats: Vec<f64> = vals.iter().map(|v| v.f()).collect();
            let any_nan = floats.iter().any(|x| x.is_nan());
            match (*name, ints) {
                ("abs", Some(v)) => fault(v[0].checked_abs())?,
                ("abs", None) => R::F(floats[0].abs()),
                ("sqrt", _) if floats[0] >= 0.0 => R::F(floats[0].sqrt()),
                ("sqrt", _) => return Err(()),
                ("min", Some(v)) => R::I(*v.iter().min().unwrap()),
                ("max", Some(v)) => R::I(*v.iter().max().unwrap()),
                ("min" | "max", None) if any_nan => R::F(f64::NAN),
                ("min", None) => R::F(*floats.iter().min_by(|x, y| x.total_cmp(y)).unwrap()),
                ("max", None) => R::F(*floats.iter().max_by(|x, y| x.total_cmp(y)).unwrap()),
                (_, Some(v)) if v[0] > v[2] => return Err(()),
                (_, Some(v)) => R::I(v[1].clamp(v[0], v[2])),
                (_, None) if any_nan || floats[0] > floats[2] => return Err(()),
                (_, None) => R::F(floats[1].clamp(floats[0], floats[2])),
            }
        }
    })
}

fn ordered(op: &str, o: Option<std::cmp::Ordering>) -> bool {
    use std::cmp::Ordering::*;
    match (op, o) {
        (_, None) => op == "<>",
        ("<", Some(o)) => o == Less,
        ("<=", Some(o)) => o != Greater,
        (">", Some(o)) => o == Greater,
        (">=", Some(o)) => o != Less,
        ("==", Some(o)) => o == Equal,
        (_, Some(o)) => o != Equal,
    }
}

fn int_lit() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => -20i64..20,
        1 => Just(-1),
        1 => Just(i64::MAX),
        1 => Just(i64::MIN),
        1 => any::<i64>(),
    ]
}

fn float_lit() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => -20.0f64..20.0,
        1 => Just(0.0),
        1 => Just(-0.0),
        1 => Just(1e300),
        1 => any::<f64>().prop_filter("finite", |x| x.is_finite()),
    ]
}

fn num(depth: u32) -> BoxedStrategy<G> {
    let leaf = prop_oneof![
        int_lit().prop_map(G::I),
        float_lit().prop_map(G::F),
        (0usize..4).prop_map(G::Var),
        (0usize..4).prop_map(G::Var),
    ];
    if depth == 0 {
        return leaf.boxed();
    }
    let n = || num(depth - 1);
    prop_oneof![
        3 => leaf,
        1 => n().prop_map(|x| G::Neg(Box::new(x))),
        4 => (prop::sample::select(vec!["+", "-", "*", "/", "%"]), n(), n())
            .prop_map(|(op, l, r)| G::Bin(op, Box::new(l), Box::new(r))),
        1 => n().prop_map(|x| G::Call("abs", vec![x])),
        1 => n().prop_map(|x| G::Call("sqrt", vec![x])),
        1 => (prop::sample::select(vec!["min", "max"]), prop::collection::vec(n(), 2..4))
            .prop_map(|(name, args)| G::Call(name, args)),
        1 => (n(), n(), n()).prop_map(|(a, b, c)| G::Call("limit", vec![a, b, c])),
    ]
    .boxed()
}

fn boolean(depth: u32) -> BoxedStrategy<G> {
    let leaf = prop_oneof![any::<bool>().prop_map(G::B), Just(G::Var(4))];
    if depth == 0 {
        return leaf.boxed();
    }
    let bl = || boolean(depth - 1);
    prop_oneof![
        1 => leaf,
        1 => bl().prop_map(|x| G::Not(Box::new(x))),
        3 => (
            prop::sample::select(vec!["<", "<=", ">", ">=", "==", "<>"]),
            num(depth - 1),
            num(depth - 1)
        )
            .prop_map(|(op, l, r)| G::Bin(op, Box::new(l), Box::new(r))),
        1 => (prop::sample::select(vec!["==", "<>"]), bl(), bl())
            .prop_map(|(op, l, r)| G::Bin(op, Box::new(l), Box::new(r))),
        2 => (prop::sample::select(vec!["and", "or"]), bl(), bl())
            .prop_map(|(op, l, r)| G::Bin(op, Box::new(l), Box::new(r))),
    ]
    .boxed()
}

fn ref_type(g: &G) -> ValueType {
    match g {
        G::I(_) => Int,
        G::F(_) => Float,
        G::B(_) | G::Not(_) => Bool,
        G::Var(k) => VAR_TYPES[*k],
        G::Neg(x) => ref_type(x),
        G::Bin(op, l, r) => match *op {
            "+" | "-" | "*" | "/" | "%" if ref_type(l) == Int && ref_type(r) == Int => Int,
            "+" | "-" | "*" | "/" | "%" => Float,
            _ => Bool,
        },
        G::Call("sqrt", _) => Float,
        G::Call(_, args) if args.iter().all(|a| ref_type(a) == Int) => Int,
        G::Call(..) => Float,
    }
}

fn env_value() -> impl Strategy<Value = (i64, i64, f64, f64, bool)> {
    let float = prop_oneof![
        4 => -100.0f64..100.0,
        1 => Just(0.0),
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => any::<f64>(),
    ];
    (int_lit(), int_lit(), float.clone(), float, any::<bool>())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn evaluation_matches_the_reference(
        g in prop_oneof![num(4), boolean(4)],
        envs in prop::collection::vec(env_value(), 1..4),
        widen in any::<bool>(),
    ) {
        let src = print(&g);
        let ty = ref_type(&g);
        // An int expression may also drive a float output.
        let out = if ty == Int && widen { Float } else { ty };
        let mut used = [false; 5];
        uses(&g, &mut used);
        let vars: Vec<(&str, ValueType)> =
            (0..5).filter(|k| used[*k]).map(|k| (NAMES[k], VAR_TYPES[k])).collect();
        let mut h = setup(&src, &vars, Some(out))
            .build()
            .unwrap_or_else(|e| panic!("`{src}` refused: {e}"));
        for (a, b_, c, d, e) in envs {
            let env = [R::I(a), R::I(b_), R::F(c), R::F(d), R::B(e)];
            let values: Vec<Value> = (0..5)
                .filter(|k| used[*k])
                .map(|k| match env[k] {
                    R::I(v) => i(v),
                    R::F(x) => f(x),
                    R::B(v) => b(v),
                })
                .collect();
            h.scan(0, &values);
            let want = match reference(&g, &env) {
                Ok(R::I(v)) if out == Float => Ok(f(v as f64)),
                Ok(R::I(v)) => Ok(i(v)),
                Ok(R::F(x)) if x.is_finite() => Ok(f(x)),
                Ok(R::F(_)) => Err(()),
                Ok(R::B(v)) => Ok(b(v)),
                Err(()) => Err(()),
            };
            let (want, flagged) = match want {
                Ok(v) => (v, false),
                Err(()) => (out.zero(), true),
            };
            let got = h.out(0).clone();
            let same = match (&got, &want) {
                (Value::Float(x), Value::Float(y)) => x.to_bits() == y.to_bits(),
                _ => got == want,
            };
            prop_assert!(same, "`{}` with {:?}: got {:?}, want {:?}", src, env, got, want);
            prop_assert_eq!(h.flagged(), flagged, "`{}` with {:?}", src, env);
        }
    }

    /// Any string of expression-ish pieces compiles or is refused with a message; what
    /// compiles runs on any inputs without panicking or allocating.
    #[test]
    fn the_compiler_is_total(
        pieces in prop::collection::vec(prop::sample::select(vec![
            "a", "b", "e", "h", "1", "2.5", "0", "-", "+", "*", "/", "%", "(", ")", ",", "<",
            "<=", "==", "=", "<>", "!", "!=", "&&", "||", "and", "or", "not", "abs", "min",
            "limit", "sqrt", "true", " ", "&", "|", "9223372036854775808", "1e400", ".", "é",
            "mod", "1_0", "e5",
        ]), 0..24),
        a in int_lit(),
        b_ in prop_oneof![Just(f64::NAN), any::<f64>()],
        e in any::<bool>(),
    ) {
        let src: std::string::String = pieces.concat();
        let all = [("a", Int, i(a)), ("b", Float, f(b_)), ("e", Bool, b(e))];
        // A program compiles only with exactly the inputs it uses wired: try every subset.
        for mask in 0..8 {
            let wired: Vec<_> = all.iter().enumerate().filter(|(k, _)| mask & (1 << k) != 0).collect();
            let types: Vec<(&str, ValueType)> = wired.iter().map(|(_, (n, t, _))| (*n, *t)).collect();
            if let Ok(mut h) = setup(&src, &types, None).build() {
                let values: Vec<Value> = wired.iter().map(|(_, (_, _, v))| v.clone()).collect();
                h.scan(0, &values);
            }
        }
    }
}

#[test]
fn a_failed_scan_does_not_poison_the_next() {
    let mut h: Harness = setup("a / b", &[("a", Int), ("b", Int)], Some(Int)).harness();
    h.scan(0, &[i(1), i(0)]);
    assert!(h.flagged());
    assert_eq!(h.scan(10, &[i(9), i(3)]).int(0), 3);
    assert!(!h.flagged());
}
