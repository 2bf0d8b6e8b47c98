//! Resolving one block instance against its [`BlockType`]: ports wired to signals or given as
//! constants, parameters checked against their specs, then the type's `build`.

use crate::compile::{Signals, Tasks};
use crate::diag::{Cx, Pos};
use crate::walk::{self, MapW, expect_duration, expect_str};
use crate::yaml::{Kind, Node};
use petra_core::{SignalId, Value, ValueType};
use petra_engine::{
    Block, BlockType, BuildCtx, Input, MAX_VARIADIC, ParamSpec, ParamType, ParamValue, Params,
    PortSpec, PortType, Registry, ResolvedPort,
};
use std::collections::HashMap;
use std::sync::Arc;

/// One block as the compiler saw it, whether or not it had errors.
pub(crate) struct BlockOut {
    pub name: String,
    /// Position of the block's list item.
    pub pos: Pos,
    pub type_name: &'static str,
    pub task: Option<usize>,
    /// Signals read (wired inputs that resolved).
    pub reads: Vec<SignalId>,
    /// Outputs that resolved, with the position of the signal name.
    pub writes: Vec<(SignalId, Pos)>,
    pub inputs: Vec<Input>,
    pub outputs: Vec<Option<SignalId>>,
    /// Present when the block had no error and `build` accepted it.
    pub block: Option<Box<dyn Block>>,
}

/// Entries of `inputs` / `outputs` / `params`, each consumed at most once.
struct Entries<'n> {
    v: Vec<(&'n Node<'n>, String, &'n Node<'n>)>,
    used: Vec<bool>,
}

impl<'n> Entries<'n> {
    fn new(m: Option<MapW<'n>>) -> Entries<'n> {
        let v = m.map(|mut m| m.rest()).unwrap_or_default();
        let used = vec![false; v.len()];
        Entries { v, used }
    }

    fn take(&mut self, key: &str) -> Option<(&'n Node<'n>, &'n Node<'n>)> {
        let i = self.v.iter().position(|(_, k, _)| k == key)?;
        self.used[i] = true;
        Some((self.v[i].0, self.v[i].2))
    }

    fn unused(&self) -> impl Iterator<Item = &(&'n Node<'n>, String, &'n Node<'n>)> {
        self.v
            .iter()
            .zip(&self.used)
            .filter(|(_, u)| !**u)
            .map(|(e, _)| e)
    }
}

/// `in3` → 3 for the variadic prefix `in` (numbers from 1, no leading zero).
fn variadic_index(key: &str, prefix: &str) -> Option<usize> {
    let digits = key.strip_prefix(prefix)?;
    if digits.is_empty() || digits.starts_with('0') || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn port_names(ports: &[PortSpec]) -> Vec<String> {
    ports
        .iter()
        .map(|p| {
            if p.variadic {
                format!("{0}1..{0}N", p.name)
            } else {
                p.name.to_string()
            }
        })
        .collect()
}

fn joined(names: &[String]) -> String {
    if names.is_empty() {
        return "none".into();
    }
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn value_type_of_const(n: &Node<'_>) -> Option<Value> {
    Some(match n.kind() {
        Kind::Bool(b) => Value::Bool(*b),
        Kind::Int(i) => Value::Int(*i),
        Kind::Float(f) => Value::Float(*f),
        Kind::Str(s) => Value::String(Arc::from(&**s)),
        _ => return None,
    })
}

struct Resolver<'a, 'c, 'e> {
    cx: &'c mut Cx<'e>,
    sigs: &'a Signals,
    block: &'a str,
    bt: &'static BlockType,
}

impl Resolver<'_, '_, '_> {
    fn who(&self) -> String {
        format!("block `{}` ({})", self.block, self.bt.name)
    }

    /// A signal named by `n`, or `None` (reported unless the signal itself was in error).
    fn signal(&mut self, n: &Node, what: &str) -> Option<(SignalId, ValueType)> {
        lookup_signal(self.cx, self.sigs, n, what)
    }

    fn wire_input(&mut self, port: &str, spec: &PortSpec, n: &Node) -> Option<(Input, ValueType)> {
        let what = format!("input `{port}` of {}", self.who());
        let (id, ty) = self.signal(n, &what)?;
        if !spec.ty.accepts_input(ty) {
            self.cx.err(
                n.pos,
                "type-mismatch",
                format!(
                    "{what} takes {}, but signal `{}` is {ty}; wire a signal of that type",
                    spec.ty.name(),
                    n.shown()
                ),
            );
            return None;
        }
        Some((Input::Signal(id), ty))
    }

    fn const_input(&mut self, port: &str, spec: &PortSpec, n: &Node) -> Option<(Input, ValueType)> {
        let what = format!("constant for input `{port}` of {}", self.who());
        if spec.ty == PortType::Time {
            let d = expect_duration(self.cx, n, &what)?;
            if d.subsec_nanos() % 1_000_000 != 0 {
                self.cx.err(
                    n.pos,
                    "bad-duration",
                    format!("{what}: time inputs count whole milliseconds; write e.g. 1ms"),
                );
                return None;
            }
            let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
            return Some((Input::Const(Value::Int(ms)), ValueType::Int));
        }
        let Some(v) = value_type_of_const(n) else {
            if !n.is_bad() {
                self.cx.err(
                    n.pos,
                    "wrong-type",
                    format!(
                        "{what} must be a bool, int, float or string, found {}",
                        n.kind_name()
                    ),
                );
            }
            return None;
        };
        let ty = v.value_type();
        if !spec.ty.accepts_input(ty) {
            self.cx.err(
                n.pos,
                "type-mismatch",
                format!(
                    "{what}: the port takes {}, but `{}` is {ty}",
                    spec.ty.name(),
                    n.shown()
                ),
            );
            return None;
        }
        Some((Input::Const(v), ty))
    }

    /// One input port: wired, constant, or (reported) both.
    fn input(
        &mut self,
        port: &str,
        spec: &PortSpec,
        wired: Option<(&Node, &Node)>,
        konst: Option<(&Node, &Node)>,
    ) -> Option<(Input, ValueType)> {
        match (wired, konst) {
            (Some(_), Some((k, _))) => {
                self.cx.err(
                    k.pos,
                    "duplicate-key",
                    format!(
                        "input `{port}` of {} is both wired under `inputs` and given as a \
                         constant under `params`; keep one",
                        self.who()
                    ),
                );
                None
            }
            (Some((_, v)), None) => self.wire_input(port, spec, v),
            (None, Some((_, v))) => self.const_input(port, spec, v),
            (None, None) => None,
        }
    }

    fn param(&mut self, spec: &ParamSpec, n: &Node) -> Option<ParamValue> {
        let what = format!("parameter `{}` of {}", spec.name, self.who());
        let wrong = |cx: &mut Cx<'_>, expected: &str| {
            if !n.is_bad() {
                cx.err(
                    n.pos,
                    "wrong-type",
                    format!("{what} must be {expected}, found {}", n.kind_name()),
                );
            }
        };
        let (v, num) = match (spec.ty, n.kind()) {
            (ParamType::Bool, Kind::Bool(b)) => (ParamValue::Bool(*b), None),
            (ParamType::Int, Kind::Int(i)) => (ParamValue::Int(*i), Some(*i as f64)),
            (ParamType::Float, Kind::Float(f)) => (ParamValue::Float(*f), Some(*f)),
            (ParamType::Float, Kind::Int(i)) => (ParamValue::Float(*i as f64), Some(*i as f64)),
            (ParamType::String, Kind::Str(s)) => (ParamValue::String(s.to_string()), None),
            (ParamType::Duration, _) => {
                let d = expect_duration(self.cx, n, &what)?;
                (ParamValue::Duration(d), Some(d.as_secs_f64()))
            }
            (ParamType::Bool, _) => {
                wrong(self.cx, "true or false");
                return None;
            }
            (ParamType::Int, _) => {
                wrong(self.cx, "an int");
                return None;
            }
            (ParamType::Float, _) => {
                wrong(self.cx, "a number");
                return None;
            }
            (ParamType::String, _) => {
                wrong(self.cx, "a string");
                return None;
            }
        };
        if let Some(x) = num {
            let unit = if spec.ty == ParamType::Duration {
                "s"
            } else {
                ""
            };
            let low = spec.min.is_some_and(|m| x < m) || x.is_nan();
            let high = spec.max.is_some_and(|m| x > m);
            if low || high {
                let range = match (spec.min, spec.max) {
                    (Some(a), Some(b)) => format!("between {a}{unit} and {b}{unit}"),
                    (Some(a), None) => format!("at least {a}{unit}"),
                    (None, Some(b)) => format!("at most {b}{unit}"),
                    (None, None) => "a number".into(),
                };
                self.cx.err(
                    n.pos,
                    "out-of-range",
                    format!("{what} is {}, but must be {range}", n.shown()),
                );
                return None;
            }
        }
        Some(v)
    }
}

/// Looks up the signal named by the string node `n`; reports `wrong-type` / `unknown-signal`.
pub(crate) fn lookup_signal(
    cx: &mut Cx<'_>,
    sigs: &Signals,
    n: &Node,
    what: &str,
) -> Option<(SignalId, ValueType)> {
    let name = expect_str(cx, n, what)?;
    if let Some(id) = sigs.by_name.get(name) {
        return Some((*id, sigs.list[id.index()].plan.def.ty));
    }
    if !sigs.broken.contains(name) {
        let names: Vec<&str> = sigs.list.iter().map(|s| s.plan.def.name.as_str()).collect();
        cx.err(
            n.pos,
            "unknown-signal",
            format!(
                "{what}: no signal `{}` is declared{}",
                n.shown(),
                match walk::close_names(name, &names).first() {
                    Some(c) => format!("; did you mean `{c}`?"),
                    None => "; declare it under `signals`".into(),
                }
            ),
        );
    }
    None
}

/// Reads and resolves block `n` (item `idx` of `blocks`).
pub(crate) fn block(
    cx: &mut Cx<'_>,
    n: &Node,
    idx: usize,
    sigs: &Signals,
    tasks: &Tasks,
    registry: &Registry,
    seen: &mut HashMap<String, usize>,
) -> Option<BlockOut> {
    let errors_before = cx.diags.len();
    let mut m = MapW::new(cx, n, format!("blocks item {}", idx + 1))?;
    let name = m.req_str(cx, "name");
    let mut name_ok = false;
    if let Some((nm, at)) = name {
        let shown = m.shown("name");
        m.what = format!("block `{shown}`");
        if walk::check_name(cx, nm, &shown, at, "block") {
            if let Some(line) = seen.get(nm) {
                cx.err(
                    at,
                    "duplicate-name",
                    format!("block `{shown}` is already declared at line {line}; rename one"),
                );
            } else {
                seen.insert(nm.to_string(), at.line);
                name_ok = true;
            }
        }
    }
    let block_name = name.map(|(n, _)| n.to_string()).unwrap_or_default();

    let mut bt: Option<&'static BlockType> = None;
    let mut type_pos = m.pos;
    if let Some((t, at)) = m.req_str(cx, "type") {
        type_pos = at;
        bt = registry.get(t);
        if bt.is_none() {
            let mut names: Vec<&str> = Vec::new();
            for ty in registry.types() {
                names.push(ty.name);
                names.extend_from_slice(ty.aliases);
            }
            let close = walk::close_names(t, &names);
            let hint = if !close.is_empty() {
                format!("did you mean {}?", walk::list(&close[..close.len().min(3)]))
            } else if names.is_empty() {
                "no block types are registered".into()
            } else {
                names.sort_unstable();
                format!("known types: {}", walk::list(&names))
            };
            cx.err(
                at,
                "unknown-block-type",
                format!("{} has unknown type `{}`; {hint}", m.what, m.shown("type")),
            );
        }
    }

    let mut task = if tasks.list.is_empty() { None } else { Some(0) };
    if let Some((t, at)) = m.opt_str(cx, "task") {
        task = tasks.list.iter().position(|x| x.name == t);
        if task.is_none() && !tasks.broken.contains(t) {
            let names: Vec<&str> = tasks.list.iter().map(|x| x.name.as_str()).collect();
            let hint = match walk::close_names(t, &names).first() {
                Some(c) => format!("did you mean `{c}`?"),
                None if names.is_empty() => "declare it under `tasks`".into(),
                None => format!("declared tasks: {}", walk::list(&names)),
            };
            cx.err(
                at,
                "unknown-task",
                format!(
                    "{} runs in task `{}`, which is not declared; {hint}",
                    m.what,
                    m.shown("task")
                ),
            );
        }
    }
    let what = m.what.clone();
    let inputs_map = m.opt_map(cx, "inputs");
    let outputs_map = m.opt_map(cx, "outputs");
    let params_map = m.opt_map(cx, "params");
    m.finish(cx);
    let mut ins = Entries::new(inputs_map);
    let mut outs = Entries::new(outputs_map);
    let mut pars = Entries::new(params_map);

    let mut out = BlockOut {
        name: block_name.clone(),
        pos: n.pos,
        type_name: bt.map(|b| b.name).unwrap_or(""),
        task,
        reads: Vec::new(),
        writes: Vec::new(),
        inputs: Vec::new(),
        outputs: Vec::new(),
        block: None,
    };

    let Some(bt) = bt else {
        // Without a type the ports cannot be checked, but the signal names can.
        for (_, port, v) in ins.v.iter() {
            let w = format!("input `{port}` of {what}");
            if let Some((id, _)) = lookup_signal(cx, sigs, v, &w) {
                out.reads.push(id);
            }
        }
        for (_, port, v) in outs.v.iter() {
            let w = format!("output `{port}` of {what}");
            if let Some((id, _)) = lookup_signal(cx, sigs, v, &w) {
                out.writes.push((id, v.pos));
            }
        }
        return Some(out);
    };

    let mut r = Resolver {
        cx,
        sigs,
        block: &block_name,
        bt,
    };
    let mut resolved: Vec<ResolvedPort> = Vec::new();
    for spec in bt.inputs {
        if spec.variadic {
            // Collect `in1`..`inN` from both maps.
            let mut found: Vec<(usize, String, Pos)> = Vec::new();
            for (k, key, _) in ins.v.iter().chain(pars.v.iter()) {
                if let Some(i) = variadic_index(key, spec.name) {
                    found.push((i, key.clone(), k.pos));
                }
            }
            found.sort_by_key(|f| f.0);
            found.dedup_by_key(|f| f.0);
            let max = found.last().map(|f| f.0).unwrap_or(0);
            let mut shape_ok = true;
            if let Some((_, key, at)) = found.iter().find(|f| f.0 > MAX_VARIADIC) {
                r.cx.err(
                    *at,
                    "out-of-range",
                    format!(
                        "{} has input `{key}`, but at most {MAX_VARIADIC} `{}` inputs are allowed",
                        r.who(),
                        spec.name
                    ),
                );
                shape_ok = false;
            }
            if max > 0 || spec.required {
                let missing: Vec<String> = (1..=max.clamp(2, MAX_VARIADIC))
                    .filter(|i| !found.iter().any(|f| f.0 == *i))
                    .map(|i| format!("{}{i}", spec.name))
                    .collect();
                if !missing.is_empty() {
                    r.cx.err(
                        n.pos,
                        "missing-input",
                        format!(
                            "{} needs input {}: `{p}` inputs are numbered {p}1, {p}2, … \
                             without gaps, at least 2",
                            r.who(),
                            joined(&missing),
                            p = spec.name
                        ),
                    );
                    shape_ok = false;
                }
            }
            for i in 1..=max.min(MAX_VARIADIC) {
                let port = format!("{}{i}", spec.name);
                let res = r.input(&port, spec, ins.take(&port), pars.take(&port));
                if shape_ok && let Some((input, ty)) = res {
                    if let Input::Signal(id) = input {
                        out.reads.push(id);
                    }
                    out.inputs.push(input);
                    resolved.push(ResolvedPort {
                        name: port,
                        ty: Some(ty),
                    });
                }
            }
            // Entries above the limit are consumed (already reported).
            for (i, _, _) in &found {
                if *i > MAX_VARIADIC {
                    let port = format!("{}{i}", spec.name);
                    ins.take(&port);
                    pars.take(&port);
                }
            }
        } else {
            let wired = ins.take(spec.name);
            let konst = pars.take(spec.name);
            if wired.is_none() && konst.is_none() {
                if spec.required {
                    r.cx.err(
                        n.pos,
                        "missing-input",
                        format!(
                            "{} needs input `{}` ({}): wire a signal under `inputs` or give a \
                             constant under `params`",
                            r.who(),
                            spec.name,
                            spec.ty.name()
                        ),
                    );
                } else {
                    out.inputs.push(Input::Open);
                    resolved.push(ResolvedPort {
                        name: spec.name.to_string(),
                        ty: None,
                    });
                }
                continue;
            }
            if let Some((input, ty)) = r.input(spec.name, spec, wired, konst) {
                if let Input::Signal(id) = input {
                    out.reads.push(id);
                }
                out.inputs.push(input);
                resolved.push(ResolvedPort {
                    name: spec.name.to_string(),
                    ty: Some(ty),
                });
            }
        }
    }

    let in_names = port_names(bt.inputs);
    let out_names = port_names(bt.outputs);
    let param_names: Vec<String> = bt.params.iter().map(|p| p.name.to_string()).collect();
    let is_input = |k: &str| {
        bt.inputs
            .iter()
            .any(|p| p.name == k || (p.variadic && variadic_index(k, p.name).is_some()))
    };
    let hint = |k: &str, pool: &[String]| {
        let pool: Vec<&str> = pool.iter().map(|s| s.as_str()).collect();
        walk::did_you_mean(k, &pool)
    };
    for (k, key, _) in ins.unused() {
        let msg = if bt.outputs.iter().any(|p| p.name == key) {
            format!(
                "`{key}` is an output of {}; wire it under `outputs`",
                r.who()
            )
        } else if bt.params.iter().any(|p| p.name == key) {
            format!(
                "`{key}` is a parameter of {}; give it under `params`",
                r.who()
            )
        } else {
            format!(
                "{} has no input `{key}`; its inputs are {}{}",
                r.who(),
                joined(&in_names),
                hint(key, &in_names)
            )
        };
        r.cx.err(k.pos, "unknown-port", msg);
    }

    let mut out_types: Vec<Option<ValueType>> = Vec::new();
    for spec in bt.outputs {
        let mut id_ty = None;
        if let Some((_, v)) = outs.take(spec.name) {
            let what = format!("output `{}` of {}", spec.name, r.who());
            if let Some((id, ty)) = r.signal(v, &what) {
                out.writes.push((id, v.pos));
                if spec.ty.accepts_output(ty) {
                    id_ty = Some((id, ty));
                } else {
                    r.cx.err(
                        v.pos,
                        "type-mismatch",
                        format!(
                            "{what} is {}, but signal `{}` is {ty}; wire a signal of that type",
                            spec.ty.name(),
                            v.shown()
                        ),
                    );
                }
            }
        }
        out.outputs.push(id_ty.map(|(id, _)| id));
        out_types.push(id_ty.map(|(_, ty)| ty));
    }
    for (k, key, _) in outs.unused() {
        let msg = if is_input(key) {
            format!("`{key}` is an input of {}; wire it under `inputs`", r.who())
        } else {
            format!(
                "{} has no output `{key}`; its outputs are {}{}",
                r.who(),
                joined(&out_names),
                hint(key, &out_names)
            )
        };
        r.cx.err(k.pos, "unknown-port", msg);
    }

    let mut params = Params::default();
    for spec in bt.params {
        match pars.take(spec.name) {
            Some((_, v)) => {
                if let Some(pv) = r.param(spec, v) {
                    params.0.insert(spec.name.to_string(), pv);
                }
            }
            None if spec.required => {
                r.cx.err(
                    n.pos,
                    "missing-key",
                    format!("{} needs parameter `{}` under `params`", r.who(), spec.name),
                );
            }
            None => {}
        }
    }
    for (k, key, _) in pars.unused() {
        let msg = if bt.outputs.iter().any(|p| p.name == key) {
            format!(
                "`{key}` is an output of {}; wire it under `outputs`",
                r.who()
            )
        } else {
            let mut pool = param_names.clone();
            pool.extend(in_names.iter().cloned());
            format!(
                "{} has no parameter `{key}`; its parameters are {}, and its inputs (which take \
                 constants here) are {}{}",
                r.who(),
                joined(&param_names),
                joined(&in_names),
                hint(key, &pool)
            )
        };
        r.cx.err(k.pos, "unknown-param", msg);
    }

    if r.cx.diags.len() == errors_before && name_ok {
        let ctx = BuildCtx {
            block: &block_name,
            inputs: &resolved,
            outputs: &out_types,
            params: &params,
        };
        match (bt.build)(&ctx) {
            Ok(b) => out.block = Some(b),
            Err(msg) => {
                r.cx.err(type_pos, "invalid-block", format!("{}: {msg}", r.who()))
            }
        }
    }
    Some(out)
}
