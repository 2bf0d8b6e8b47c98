//! EXPR: an expression compiled once, when the configuration is loaded.
//!
//! `expr: "a * 2 + b > 10"` is lexed, parsed (a small Pratt parser), type-checked against the
//! types of the wired inputs and the output, and compiled in `build` into a flat list of typed
//! stack-machine operations. `execute` runs that list over a stack allocated in `build` (its
//! depth is known at compile time), so a scan does no parsing, no type dispatch and no
//! allocation.
//!
//! Why not a crate: the well-kept Rust expression crates (`evalexpr`, `fasteval`, `rhai`,
//! `exmex`) either evaluate through dynamically typed values (so a type error shows up at run
//! time, or a string may appear mid-scan), allocate per evaluation (`evalexpr` builds
//! `Value`s and a context map), or are whole scripting languages (`rhai`); none reports a type
//! error at load time against our signal types, and none has IEC's int semantics (truncating
//! division, saturation flagged as bad quality). The grammar here is ~15 operators and five
//! functions; a hand-written parser is about the size of the glue a crate would need.
//!
//! Variables are the optional inputs `a` to `h`. A port cannot be named by the expression (ports
//! are declared statically), and one-letter names keep expressions short, like the standard's
//! `IN1`… names but usable with a single input (a variadic `in1..inN` port needs at least two).
//!
//! Semantics (documented in docs/blocks.md):
//! * types: bool, int, float; an int operand meets a float one → both float (IEC widening);
//!   int arithmetic is 64-bit, `/` truncates toward zero, `%` has the sign of the dividend;
//! * precedence, lowest first (IEC structured text's order): `or`, `and`, `= <>`,
//!   `< <= > >=`, `+ -`, `* / %`, unary `- not`; binary operators are left-associative;
//!   `and`/`or` short-circuit;
//! * any operation without a defined result — division or modulo by zero, int overflow
//!   (saturated), `sqrt` of a negative number or NaN, `limit` with `mn > mx` or a NaN, and a
//!   final float result that is NaN or infinite — makes the output the fallback (`false`, `0`,
//!   `0.0`) with quality `bad(arithmetic)`. An operation skipped by short-circuiting does not
//!   count, so `b <> 0 and a / b > 2` is safe.

use crate::arith::{div_int, limit_float, limit_int, rem_int};
use crate::output;
use petra_core::{BadReason, Quality, ValueType};
use petra_engine::{
    Block, BlockType, BuildCtx, BuildResult, Io, ParamSpec, ParamType, ParamValue, PortSpec,
    PortType,
};

const ARITHMETIC: Quality = Quality::Bad(BadReason::Arithmetic);

/// The variable names, in port order.
const NAMES: [&str; 8] = ["a", "b", "c", "d", "e", "f", "g", "h"];

/// Longest expression accepted (characters); keeps jump targets in `u16` and the recursion of
/// the checker and code generator (one level per operator in a chain like `1+1+…`) shallow.
const MAX_LEN: usize = 1024;
/// Deepest nesting of parentheses, operators and calls.
const MAX_DEPTH: usize = 64;

const fn var(name: &'static str, doc: &'static str) -> PortSpec {
    PortSpec {
        name,
        ty: PortType::Any,
        required: false,
        variadic: false,
        doc,
    }
}

static INPUTS: [PortSpec; 8] = [
    var("a", "variable `a` of the expression (bool, int or float)"),
    var("b", "variable `b`"),
    var("c", "variable `c`"),
    var("d", "variable `d`"),
    var("e", "variable `e`"),
    var("f", "variable `f`"),
    var("g", "variable `g`"),
    var("h", "variable `h`"),
];

pub static EXPR: BlockType = BlockType {
    name: "EXPR",
    aliases: &[],
    summary: "an expression over the inputs a..h, compiled at load: `a * 2 + b > 10`",
    inputs: &INPUTS,
    outputs: &[output(
        "out",
        PortType::Any,
        "the expression's value: bool, int or float (an int result may drive a float signal)",
    )],
    params: &[ParamSpec {
        name: "expr",
        ty: ParamType::String,
        required: true,
        min: None,
        max: None,
        doc: "the expression, e.g. `a * 2 + b > 10`; see docs/blocks.md for the syntax",
    }],
    build: build_expr,
};

fn build_expr(ctx: &BuildCtx<'_>) -> BuildResult {
    let Some(ParamValue::String(src)) = ctx.params.get("expr") else {
        return Err("parameter `expr` is missing; give the expression, e.g. \
                    `expr: \"a * 2 + b > 10\"`"
            .into());
    };
    let mut vars = [None; 8];
    for (slot, p) in ctx.inputs.iter().enumerate() {
        if let Some(v) = NAMES.iter().position(|n| *n == p.name)
            && let Some(ty) = p.ty
        {
            vars[v] = Some((slot as u8, ty));
        }
    }
    let program = compile(src, &vars, ctx.output_type(0))?;
    Ok(Box::new(program))
}

// ---------------------------------------------------------------------------------------------
// Lexer

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Int(i128),
    Float(f64),
    Ident(String),
    True,
    False,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    And,
    Or,
    Not,
    LParen,
    RParen,
    Comma,
    End,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Int(n) => format!("number `{n}`"),
            Tok::Float(x) => format!("number `{x}`"),
            Tok::Ident(s) => format!("`{s}`"),
            Tok::True => "`true`".into(),
            Tok::False => "`false`".into(),
            Tok::End => "the end of the expression".into(),
            other => format!("`{}`", other.symbol()),
        }
    }

    fn symbol(&self) -> &'static str {
        match self {
            Tok::Plus => "+",
            Tok::Minus => "-",
            Tok::Star => "*",
            Tok::Slash => "/",
            Tok::Percent => "%",
            Tok::Lt => "<",
            Tok::Le => "<=",
            Tok::Gt => ">",
            Tok::Ge => ">=",
            Tok::Eq => "==",
            Tok::Ne => "<>",
            Tok::And => "and",
            Tok::Or => "or",
            Tok::Not => "not",
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::Comma => ",",
            _ => "?",
        }
    }
}

/// An error at a 1-based character column of the expression.
#[derive(Debug, PartialEq)]
struct Error {
    col: usize,
    msg: String,
}

fn err<T>(col: usize, msg: impl Into<String>) -> Result<T, Error> {
    Err(Error {
        col,
        msg: msg.into(),
    })
}

fn lex(src: &str) -> Result<Vec<(Tok, usize)>, Error> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut k = 0;
    while k < chars.len() {
        let c = chars[k];
        let col = k + 1;
        let next = chars.get(k + 1).copied();
        if c.is_whitespace() {
            k += 1;
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && next.is_some_and(|n| n.is_ascii_digit())) {
            let start = k;
            let mut float = false;
            while k < chars.len() && (chars[k].is_ascii_digit() || chars[k] == '_') {
                k += 1;
            }
            if k < chars.len() && chars[k] == '.' {
                float = true;
                k += 1;
                while k < chars.len() && (chars[k].is_ascii_digit() || chars[k] == '_') {
                    k += 1;
                }
            }
            if k < chars.len() && (chars[k] == 'e' || chars[k] == 'E') {
                let mut j = k + 1;
                if j < chars.len() && (chars[j] == '+' || chars[j] == '-') {
                    j += 1;
                }
                if j < chars.len() && chars[j].is_ascii_digit() {
                    float = true;
                    k = j;
                    while k < chars.len() && chars[k].is_ascii_digit() {
                        k += 1;
                    }
                }
            }
            if k < chars.len() && (chars[k].is_alphanumeric() || chars[k] == '.') {
                return err(k + 1, format!("unexpected `{}` in a number", chars[k]));
            }
            let text: String = chars[start..k].iter().filter(|c| **c != '_').collect();
            let tok = if float {
                match text.parse::<f64>() {
                    Ok(x) if x.is_finite() => Tok::Float(x),
                    _ => return err(col, format!("number `{text}` is not a finite float")),
                }
            } else {
                match text.parse::<i128>() {
                    // Range is checked where the sign is known (`-9223372036854775808`).
                    Ok(n) if n <= i128::from(i64::MAX) + 1 => Tok::Int(n),
                    _ => return err(col, format!("integer `{text}` is out of the int range")),
                }
            };
            out.push((tok, col));
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            let start = k;
            while k < chars.len() && (chars[k].is_alphanumeric() || chars[k] == '_') {
                k += 1;
            }
            // Keywords and names are case-insensitive, as in IEC structured text.
            let word: String = chars[start..k].iter().collect::<String>().to_lowercase();
            let tok = match word.as_str() {
                "true" => Tok::True,
                "false" => Tok::False,
                "and" => Tok::And,
                "or" => Tok::Or,
                "not" => Tok::Not,
                "mod" => Tok::Percent,
                _ => Tok::Ident(word),
            };
            out.push((tok, col));
            continue;
        }
        let (tok, len) = match (c, next) {
            ('<', Some('=')) => (Tok::Le, 2),
            ('<', Some('>')) => (Tok::Ne, 2),
            ('>', Some('=')) => (Tok::Ge, 2),
            ('=', Some('=')) => (Tok::Eq, 2),
            ('!', Some('=')) => (Tok::Ne, 2),
            ('&', Some('&')) => (Tok::And, 2),
            ('|', Some('|')) => (Tok::Or, 2),
            ('<', _) => (Tok::Lt, 1),
            ('>', _) => (Tok::Gt, 1),
            ('=', _) => (Tok::Eq, 1),
            ('!', _) => (Tok::Not, 1),
            ('+', _) => (Tok::Plus, 1),
            ('-', _) => (Tok::Minus, 1),
            ('*', _) => (Tok::Star, 1),
            ('/', _) => (Tok::Slash, 1),
            ('%', _) => (Tok::Percent, 1),
            ('(', _) => (Tok::LParen, 1),
            (')', _) => (Tok::RParen, 1),
            (',', _) => (Tok::Comma, 1),
            ('&', _) => return err(col, "`&` is not an operator; write `&&` or `and`"),
            ('|', _) => return err(col, "`|` is not an operator; write `||` or `or`"),
            _ => return err(col, format!("unexpected character `{c}`")),
        };
        out.push((tok, col));
        k += len;
    }
    out.push((Tok::End, chars.len() + 1));
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Parser

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ty {
    Bool,
    Int,
    Float,
}

impl Ty {
    fn name(self) -> &'static str {
        match self {
            Ty::Bool => "bool",
            Ty::Int => "int",
            Ty::Float => "float",
        }
    }

    fn numeric(self) -> bool {
        self != Ty::Bool
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Func {
    Abs,
    Min,
    Max,
    Sqrt,
    Limit,
}

#[derive(Debug)]
enum Kind {
    Int(i64),
    Float(f64),
    Bool(bool),
    /// Variable index into `a..h`.
    Var(usize),
    Neg(Box<Node>),
    Not(Box<Node>),
    Binary(Tok, Box<Node>, Box<Node>),
    Call(Func, Vec<Node>),
}

#[derive(Debug)]
struct Node {
    kind: Kind,
    /// Column of the token that made the node (the operator for operations).
    col: usize,
    /// Filled in by `check`.
    ty: Ty,
}

fn node(kind: Kind, col: usize) -> Node {
    Node {
        kind,
        col,
        ty: Ty::Bool,
    }
}

/// Left and right binding power of a binary operator (higher binds tighter).
fn infix(t: &Tok) -> Option<(u8, u8)> {
    Some(match t {
        Tok::Or => (1, 2),
        Tok::And => (3, 4),
        Tok::Eq | Tok::Ne => (5, 6),
        Tok::Lt | Tok::Le | Tok::Gt | Tok::Ge => (7, 8),
        Tok::Plus | Tok::Minus => (9, 10),
        Tok::Star | Tok::Slash | Tok::Percent => (11, 12),
        _ => return None,
    })
}

/// Binding power of the prefix operators `-` and `not` (tighter than every binary one).
const PREFIX: u8 = 13;

struct Parser {
    toks: Vec<(Tok, usize)>,
    at: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> &(Tok, usize) {
        // `lex` always ends with `End`, and `next` never moves past it.
        &self.toks[self.at.min(self.toks.len() - 1)]
    }

    fn next(&mut self) -> (Tok, usize) {
        let t = self.peek().clone();
        if self.at < self.toks.len() - 1 {
            self.at += 1;
        }
        t
    }

    fn expect(&mut self, want: Tok, what: &str) -> Result<(), Error> {
        let (t, col) = self.next();
        if t == want {
            Ok(())
        } else {
            err(col, format!("expected {what}, found {}", t.describe()))
        }
    }

    fn expr(&mut self, min_bp: u8) -> Result<Node, Error> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return err(
                self.peek().1,
                format!("nested deeper than {MAX_DEPTH} levels"),
            );
        }
        let mut lhs = self.prefix()?;
        loop {
            let (op, col) = self.peek().clone();
            let Some((l, r)) = infix(&op) else { break };
            if l < min_bp {
                break;
            }
            self.next();
            let rhs = self.expr(r)?;
            lhs = node(Kind::Binary(op, Box::new(lhs), Box::new(rhs)), col);
        }
        self.depth -= 1;
        Ok(lhs)
    }

    fn prefix(&mut self) -> Result<Node, Error> {
        let (t, col) = self.next();
        Ok(match t {
            Tok::Int(n) => node(Kind::Int(int_literal(n, col)?), col),
            Tok::Float(x) => node(Kind::Float(x), col),
            Tok::True => node(Kind::Bool(true), col),
            Tok::False => node(Kind::Bool(false), col),
            Tok::Minus => match self.peek().0 {
                // Fold a negative literal (nothing binds tighter than unary minus), so that
                // `-9223372036854775808` is the int minimum rather than an overflow.
                Tok::Int(n) => {
                    self.next();
                    node(Kind::Int(int_literal(-n, col)?), col)
                }
                Tok::Float(x) => {
                    self.next();
                    node(Kind::Float(-x), col)
                }
                _ => node(Kind::Neg(Box::new(self.expr(PREFIX)?)), col),
            },
            Tok::Not => node(Kind::Not(Box::new(self.expr(PREFIX)?)), col),
            Tok::LParen => {
                let inner = self.expr(0)?;
                self.expect(Tok::RParen, "`)`")?;
                inner
            }
            Tok::Ident(name) if self.peek().0 == Tok::LParen => {
                let func = match name.as_str() {
                    "abs" => Func::Abs,
                    "min" => Func::Min,
                    "max" => Func::Max,
                    "sqrt" => Func::Sqrt,
                    "limit" => Func::Limit,
                    _ => {
                        return err(
                            col,
                            format!(
                                "unknown function `{name}`; the functions are abs, min, max, \
                                 sqrt and limit"
                            ),
                        );
                    }
                };
                self.next();
                let mut args = Vec::new();
                if self.peek().0 != Tok::RParen {
                    loop {
                        args.push(self.expr(0)?);
                        if self.peek().0 == Tok::Comma {
                            self.next();
                        } else {
                            break;
                        }
                    }
                }
                self.expect(Tok::RParen, "`,` or `)`")?;
                node(Kind::Call(func, args), col)
            }
            Tok::Ident(name) => match NAMES.iter().position(|n| *n == name) {
                Some(v) => node(Kind::Var(v), col),
                None => {
                    return err(
                        col,
                        format!("unknown name `{name}`; the variables are the inputs `a` to `h`"),
                    );
                }
            },
            other => {
                return err(
                    col,
                    format!(
                        "expected a value (a number, an input, a function or `(`), found {}",
                        other.describe()
                    ),
                );
            }
        })
    }
}

fn int_literal(n: i128, col: usize) -> Result<i64, Error> {
    i64::try_from(n).or_else(|_| err(col, format!("integer `{n}` is out of the int range")))
}

fn parse(src: &str) -> Result<Node, Error> {
    if src.chars().count() > MAX_LEN {
        return err(MAX_LEN + 1, format!("longer than {MAX_LEN} characters"));
    }
    let mut p = Parser {
        toks: lex(src)?,
        at: 0,
        depth: 0,
    };
    if p.peek().0 == Tok::End {
        return err(1, "the expression is empty");
    }
    let root = p.expr(0)?;
    let (t, col) = p.next();
    if t != Tok::End {
        let hint = if t == Tok::RParen {
            "this `)` has no matching `(`".to_string()
        } else {
            format!("expected an operator, found {}", t.describe())
        };
        return err(col, hint);
    }
    Ok(root)
}

// ---------------------------------------------------------------------------------------------
// Type check

/// The variables: for `a..h`, the input slot and type when wired.
type Vars = [Option<(u8, ValueType)>; 8];

fn check(n: &mut Node, vars: &Vars, used: &mut [bool; 8]) -> Result<Ty, Error> {
    let col = n.col;
    let ty = match &mut n.kind {
        Kind::Int(_) => Ty::Int,
        Kind::Float(_) => Ty::Float,
        Kind::Bool(_) => Ty::Bool,
        Kind::Var(v) => {
            used[*v] = true;
            let name = NAMES[*v];
            match vars[*v] {
                None => {
                    return err(
                        col,
                        format!(
                            "`{name}` is not connected; wire input `{name}` or give it as a \
                             constant"
                        ),
                    );
                }
                Some((_, ValueType::Bool)) => Ty::Bool,
                Some((_, ValueType::Int)) => Ty::Int,
                Some((_, ValueType::Float)) => Ty::Float,
                Some((_, ValueType::String)) => {
                    return err(
                        col,
                        format!(
                            "`{name}` is a string input; expressions work on bool, int and \
                             float"
                        ),
                    );
                }
            }
        }
        Kind::Neg(x) => {
            let t = check(x, vars, used)?;
            if !t.numeric() {
                return err(col, "`-` needs a number, but its operand is bool");
            }
            t
        }
        Kind::Not(x) => {
            let t = check(x, vars, used)?;
            if t != Ty::Bool {
                return err(
                    col,
                    format!("`not` needs a bool, but its operand is {}", t.name()),
                );
            }
            Ty::Bool
        }
        Kind::Binary(op, l, r) => {
            let (lt, rt) = (check(l, vars, used)?, check(r, vars, used)?);
            let sym = op.symbol();
            let both = |want: &str| {
                err(
                    col,
                    format!(
                        "`{sym}` needs {want}, but its operands are {} and {}",
                        lt.name(),
                        rt.name()
                    ),
                )
            };
            match op {
                Tok::And | Tok::Or => {
                    if lt != Ty::Bool || rt != Ty::Bool {
                        return both("two bools");
                    }
                    Ty::Bool
                }
                Tok::Eq | Tok::Ne if lt == Ty::Bool && rt == Ty::Bool => Ty::Bool,
                Tok::Eq | Tok::Ne | Tok::Lt | Tok::Le | Tok::Gt | Tok::Ge => {
                    if !lt.numeric() || !rt.numeric() {
                        return both(if matches!(op, Tok::Eq | Tok::Ne) {
                            "two numbers or two bools"
                        } else {
                            "two numbers"
                        });
                    }
                    Ty::Bool
                }
                _ => {
                    if !lt.numeric() || !rt.numeric() {
                        return both("two numbers");
                    }
                    promote(lt, rt)
                }
            }
        }
        Kind::Call(func, args) => {
            let (name, ok) = match func {
                Func::Abs => ("abs(x)", args.len() == 1),
                Func::Sqrt => ("sqrt(x)", args.len() == 1),
                Func::Limit => ("limit(mn, x, mx)", args.len() == 3),
                Func::Min => ("min(x, y, …)", args.len() >= 2),
                Func::Max => ("max(x, y, …)", args.len() >= 2),
            };
            if !ok {
                return err(
                    col,
                    format!("{name} does not take {} argument(s)", args.len()),
                );
            }
            let mut t = Ty::Int;
            for a in args.iter_mut() {
                let at = check(a, vars, used)?;
                if !at.numeric() {
                    return err(
                        a.col,
                        format!("{name} needs numbers, but this argument is bool"),
                    );
                }
                t = promote(t, at);
            }
            if *func == Func::Sqrt { Ty::Float } else { t }
        }
    };
    n.ty = ty;
    Ok(ty)
}

fn promote(a: Ty, b: Ty) -> Ty {
    if a == Ty::Int && b == Ty::Int {
        Ty::Int
    } else {
        Ty::Float
    }
}

// ---------------------------------------------------------------------------------------------
// Code generation

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cmp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

/// One operation on the value stack. Values are 64-bit patterns whose type the compiler
/// knows: an int as its two's complement, a float as its IEEE bits, a bool as 0 or 1.
#[derive(Clone, Copy, Debug)]
enum Op {
    Const(u64),
    LoadB(u8),
    LoadI(u8),
    /// A float input, or an int input widened.
    LoadF(u8),
    /// Widens the int on top of the stack.
    IToF,
    NegI,
    NegF,
    Not,
    AddI,
    SubI,
    MulI,
    DivI,
    ModI,
    AddF,
    SubF,
    MulF,
    DivF,
    ModF,
    CmpI(Cmp),
    CmpF(Cmp),
    EqB,
    NeB,
    /// If the top is false, jump (keeping it); else pop it and go on. (`and`)
    JumpIfFalse(u16),
    /// If the top is true, jump (keeping it); else pop it and go on. (`or`)
    JumpIfTrue(u16),
    AbsI,
    AbsF,
    MinI,
    MaxI,
    MinF,
    MaxF,
    Sqrt,
    LimitI,
    LimitF,
}

struct Emitter {
    ops: Vec<Op>,
    depth: usize,
    max: usize,
}

impl Emitter {
    fn push(&mut self, op: Op, effect: isize) {
        self.ops.push(op);
        self.depth = self.depth.saturating_add_signed(effect);
        self.max = self.max.max(self.depth);
    }

    /// Code that leaves `n`'s value on the stack, widened to float if `want` is float.
    fn emit(&mut self, n: &Node, want: Ty, vars: &Vars) {
        let widen = n.ty == Ty::Int && want == Ty::Float;
        match &n.kind {
            Kind::Int(v) if widen => self.push(Op::Const((*v as f64).to_bits()), 1),
            Kind::Int(v) => self.push(Op::Const(*v as u64), 1),
            Kind::Float(x) => self.push(Op::Const(x.to_bits()), 1),
            Kind::Bool(b) => self.push(Op::Const(u64::from(*b)), 1),
            Kind::Var(v) => {
                let slot = vars[*v].map_or(0, |(s, _)| s);
                let op = match (n.ty, widen) {
                    (Ty::Bool, _) => Op::LoadB(slot),
                    (Ty::Int, false) => Op::LoadI(slot),
                    _ => Op::LoadF(slot),
                };
                self.push(op, 1);
            }
            Kind::Neg(x) => {
                self.emit(x, n.ty, vars);
                self.push(if n.ty == Ty::Int { Op::NegI } else { Op::NegF }, 0);
                self.widen(widen);
            }
            Kind::Not(x) => {
                self.emit(x, Ty::Bool, vars);
                self.push(Op::Not, 0);
            }
            Kind::Binary(op @ (Tok::And | Tok::Or), l, r) => {
                self.emit(l, Ty::Bool, vars);
                let jump = self.ops.len();
                self.push(Op::JumpIfFalse(0), -1);
                self.emit(r, Ty::Bool, vars);
                let target = self.ops.len() as u16;
                self.ops[jump] = if *op == Tok::And {
                    Op::JumpIfFalse(target)
                } else {
                    Op::JumpIfTrue(target)
                };
            }
            Kind::Binary(op, l, r) => {
                let operand = if l.ty == Ty::Bool {
                    Ty::Bool
                } else {
                    promote(l.ty, r.ty)
                };
                self.emit(l, operand, vars);
                self.emit(r, operand, vars);
                let cmp = |c| match operand {
                    Ty::Int => Op::CmpI(c),
                    _ => Op::CmpF(c),
                };
                let int = operand == Ty::Int;
                let code = match op {
                    Tok::Eq if operand == Ty::Bool => Op::EqB,
                    Tok::Ne if operand == Ty::Bool => Op::NeB,
                    Tok::Lt => cmp(Cmp::Lt),
                    Tok::Le => cmp(Cmp::Le),
                    Tok::Gt => cmp(Cmp::Gt),
                    Tok::Ge => cmp(Cmp::Ge),
                    Tok::Eq => cmp(Cmp::Eq),
                    Tok::Ne => cmp(Cmp::Ne),
                    Tok::Plus if int => Op::AddI,
                    Tok::Minus if int => Op::SubI,
                    Tok::Star if int => Op::MulI,
                    Tok::Slash if int => Op::DivI,
                    Tok::Percent if int => Op::ModI,
                    Tok::Plus => Op::AddF,
                    Tok::Minus => Op::SubF,
                    Tok::Star => Op::MulF,
                    Tok::Slash => Op::DivF,
                    _ => Op::ModF,
                };
                self.push(code, -1);
                self.widen(widen);
            }
            Kind::Call(func, args) => {
                // The arguments' common type; sqrt works in float.
                let t = if *func == Func::Sqrt { Ty::Float } else { n.ty };
                let int = t == Ty::Int;
                let Some((first, rest)) = args.split_first() else {
                    return; // `check` refused calls without arguments
                };
                self.emit(first, t, vars);
                for a in rest {
                    self.emit(a, t, vars);
                    match func {
                        Func::Min => self.push(if int { Op::MinI } else { Op::MinF }, -1),
                        Func::Max => self.push(if int { Op::MaxI } else { Op::MaxF }, -1),
                        _ => {}
                    }
                }
                match func {
                    Func::Abs => self.push(if int { Op::AbsI } else { Op::AbsF }, 0),
                    Func::Sqrt => self.push(Op::Sqrt, 0),
                    Func::Limit => self.push(if int { Op::LimitI } else { Op::LimitF }, -2),
                    Func::Min | Func::Max => {}
                }
                self.widen(widen);
            }
        }
    }

    fn widen(&mut self, widen: bool) {
        if widen {
            self.push(Op::IToF, 0);
        }
    }
}

/// A compiled expression, ready to run.
struct Program {
    ops: Box<[Op]>,
    stack: Box<[u64]>,
    /// Type of the value left on the stack (the output's type, or the expression's when the
    /// output is not wired).
    out: Ty,
}

/// Parses, checks and compiles `src`; the error names the column.
fn compile(src: &str, vars: &Vars, out: Option<ValueType>) -> Result<Program, String> {
    let at = |e: Error| format!("{} at column {} of `expr` \"{src}\"", e.msg, e.col);
    let mut root = parse(src).map_err(at)?;
    let mut used = [false; 8];
    let ty = check(&mut root, vars, &mut used).map_err(at)?;
    let out = match (ty, out) {
        (t, None) => t,
        (Ty::Bool, Some(ValueType::Bool)) => Ty::Bool,
        (Ty::Int, Some(ValueType::Int)) => Ty::Int,
        (Ty::Int | Ty::Float, Some(ValueType::Float)) => Ty::Float,
        (t, Some(o)) => {
            let hint = match (t, o) {
                (Ty::Float, ValueType::Int) => {
                    "; wire a float signal, or convert with FLOAT_TO_INT after this block"
                }
                _ => "; wire a signal of the expression's type",
            };
            return Err(format!(
                "`expr` \"{src}\" is {} but output `out` is {o}{hint}",
                ty.name()
            ));
        }
    };
    if let Some(v) = (0..8).find(|v| vars[*v].is_some() && !used[*v]) {
        return Err(format!(
            "input `{0}` is connected but `expr` \"{src}\" does not use it; use `{0}` or \
             remove the connection",
            NAMES[v]
        ));
    }
    let mut e = Emitter {
        ops: Vec::new(),
        depth: 0,
        max: 0,
    };
    e.emit(&root, out, vars);
    Ok(Program {
        ops: e.ops.into_boxed_slice(),
        stack: vec![0; e.max.max(1)].into_boxed_slice(),
        out,
    })
}

// ---------------------------------------------------------------------------------------------
// Evaluation

fn int(v: u64) -> i64 {
    v as i64
}

fn float(v: u64) -> f64 {
    f64::from_bits(v)
}

/// `Some(v)` or, on overflow, the saturated value with `fault` set.
fn checked(r: Option<i64>, saturated: i64, fault: &mut bool) -> u64 {
    match r {
        Some(v) => v as u64,
        None => {
            *fault = true;
            saturated as u64
        }
    }
}

fn compare<T: PartialOrd>(c: Cmp, a: T, b: T) -> bool {
    match c {
        Cmp::Lt => a < b,
        Cmp::Le => a <= b,
        Cmp::Gt => a > b,
        Cmp::Ge => a >= b,
        Cmp::Eq => a == b,
        Cmp::Ne => a != b,
    }
}

/// Float min/max as the MIN/MAX blocks do it: NaN if either is NaN, else IEEE total order
/// (so `-0.0 < 0.0`), which makes the result independent of the argument order.
fn min_f(a: f64, b: f64, max: bool) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if (b.total_cmp(&a) == std::cmp::Ordering::Greater) == max {
        b
    } else {
        a
    }
}

impl Program {
    /// Runs the program; returns the value and whether an operation had no defined result.
    fn run(&mut self, io: &Io<'_>) -> (u64, bool) {
        let st = &mut self.stack;
        let mut sp = 0usize;
        let mut pc = 0usize;
        let mut fault = false;
        // Stack indices are within bounds by construction: the compiler tracked the depth of
        // every operation and sized the stack to the maximum.
        while let Some(&op) = self.ops.get(pc) {
            pc += 1;
            match op {
                Op::Const(v) => {
                    st[sp] = v;
                    sp += 1;
                }
                Op::LoadB(i) => {
                    st[sp] = u64::from(io.bool(i as usize));
                    sp += 1;
                }
                Op::LoadI(i) => {
                    st[sp] = io.int(i as usize) as u64;
                    sp += 1;
                }
                Op::LoadF(i) => {
                    st[sp] = io.float(i as usize).to_bits();
                    sp += 1;
                }
                Op::JumpIfFalse(t) => {
                    if st[sp - 1] == 0 {
                        pc = t as usize;
                    } else {
                        sp -= 1;
                    }
                }
                Op::JumpIfTrue(t) => {
                    if st[sp - 1] != 0 {
                        pc = t as usize;
                    } else {
                        sp -= 1;
                    }
                }
                Op::IToF | Op::NegI | Op::NegF | Op::Not | Op::AbsI | Op::AbsF | Op::Sqrt => {
                    let x = st[sp - 1];
                    st[sp - 1] = match op {
                        Op::IToF => (int(x) as f64).to_bits(),
                        Op::NegI => checked(int(x).checked_neg(), i64::MAX, &mut fault),
                        Op::NegF => (-float(x)).to_bits(),
                        Op::Not => u64::from(x == 0),
                        Op::AbsI => checked(int(x).checked_abs(), i64::MAX, &mut fault),
                        Op::AbsF => float(x).abs().to_bits(),
                        _ => {
                            let r = float(x).sqrt();
                            if r.is_nan() {
                                fault = true;
                                0
                            } else {
                                r.to_bits()
                            }
                        }
                    };
                }
                Op::LimitI | Op::LimitF => {
                    sp -= 2;
                    let (mn, x, mx) = (st[sp - 1], st[sp], st[sp + 1]);
                    st[sp - 1] = if matches!(op, Op::LimitI) {
                        limit_int(int(mn), int(x), int(mx)).unwrap_or_else(|v| {
                            fault = true;
                            v
                        }) as u64
                    } else {
                        limit_float(float(mn), float(x), float(mx))
                            .unwrap_or_else(|v| {
                                fault = true;
                                v
                            })
                            .to_bits()
                    };
                }
                binary => {
                    sp -= 1;
                    let (a, b) = (st[sp - 1], st[sp]);
                    let (ia, ib) = (int(a), int(b));
                    let (fa, fb) = (float(a), float(b));
                    st[sp - 1] = match binary {
                        Op::AddI => checked(ia.checked_add(ib), ia.saturating_add(ib), &mut fault),
                        Op::SubI => checked(ia.checked_sub(ib), ia.saturating_sub(ib), &mut fault),
                        Op::MulI => checked(ia.checked_mul(ib), ia.saturating_mul(ib), &mut fault),
                        Op::DivI => match div_int(ia, ib) {
                            Some(Ok(q)) => q as u64,
                            Some(Err(q)) => {
                                fault = true;
                                q as u64
                            }
                            None => {
                                fault = true;
                                0
                            }
                        },
                        Op::ModI => rem_int(ia, ib).map_or_else(
                            || {
                                fault = true;
                                0
                            },
                            |r| r as u64,
                        ),
                        Op::AddF => (fa + fb).to_bits(),
                        Op::SubF => (fa - fb).to_bits(),
                        Op::MulF => (fa * fb).to_bits(),
                        Op::DivF | Op::ModF if fb == 0.0 => {
                            fault = true;
                            0
                        }
                        Op::DivF => (fa / fb).to_bits(),
                        Op::ModF => (fa % fb).to_bits(),
                        Op::CmpI(c) => u64::from(compare(c, ia, ib)),
                        Op::CmpF(c) => u64::from(compare(c, fa, fb)),
                        Op::EqB => u64::from(a == b),
                        Op::NeB => u64::from(a != b),
                        Op::MinI => ia.min(ib) as u64,
                        Op::MaxI => ia.max(ib) as u64,
                        Op::MinF => min_f(fa, fb, false).to_bits(),
                        _ => min_f(fa, fb, true).to_bits(), // MaxF
                    };
                }
            }
        }
        (st[0], fault)
    }
}

impl Block for Program {
    fn execute(&mut self, io: &mut Io<'_>) {
        let (v, mut fault) = self.run(io);
        if self.out == Ty::Float && !float(v).is_finite() {
            fault = true;
        }
        if fault {
            io.set_quality(ARITHMETIC);
        }
        match self.out {
            Ty::Bool => io.set_bool(0, !fault && v != 0),
            Ty::Int => io.set_int(0, if fault { 0 } else { int(v) }),
            Ty::Float => io.set_float(0, if fault { 0.0 } else { float(v) }),
        }
    }
}

#[cfg(test)]
mod tests;
