//! The configuration schema: the top level, signals, tasks and the engine options (the other
//! sections have modules of their own), then the checks across sections (one writer per signal, no cycles, safe values), then the [`Plan`].

use crate::blocks::{self, BlockOut};
use crate::diag::{Cx, Pos};
use crate::drivers::DriverWrite;
use crate::walk::{self, MapW, expect_seq, expect_str};
use crate::yaml::{Kind, Node};
use crate::{DriverPlan, EngineOptions, Plan, SignalPlan};
use petra_core::{SignalDef, SignalId, Value, ValueType};
use petra_engine::{BlockInstance, Program, Registry, TaskSpec, graph};
use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Roles that may be given write access to a signal.
pub(crate) const ROLES: &[&str] = &["viewer", "operator", "engineer", "admin", "mqtt"];

pub(crate) const DEFAULT_TASK: &str = "main";
pub(crate) const DEFAULT_PERIOD: Duration = Duration::from_millis(100);
const MIN_PERIOD: Duration = Duration::from_millis(1);
const MAX_PERIOD: Duration = Duration::from_secs(3600);

pub(crate) struct SigEntry {
    pub plan: SignalPlan,
    /// Position of the `safe` key, when given.
    pub safe_key: Option<Pos>,
}

#[derive(Default)]
pub(crate) struct Signals {
    pub list: Vec<SigEntry>,
    pub by_name: HashMap<String, SignalId>,
    /// Names of signals that had an error: references to them are not reported again.
    pub broken: HashSet<String>,
}

pub(crate) struct TaskEntry {
    pub name: String,
    pub period: Duration,
    pub priority: i32,
    pub watchdog: Option<Duration>,
}

#[derive(Default)]
pub(crate) struct Tasks {
    pub list: Vec<TaskEntry>,
    pub broken: HashSet<String>,
}

/// A value of a signal's type; an int literal is accepted for a float signal. Used for
/// `initial` and `safe` here and for scenario `set`/`expect` values.
pub(crate) fn value_of_type(cx: &mut Cx<'_>, n: &Node, ty: ValueType, what: &str) -> Option<Value> {
    Some(match (ty, n.kind()) {
        (ValueType::Bool, Kind::Bool(b)) => Value::Bool(*b),
        (ValueType::Int, Kind::Int(i)) => Value::Int(*i),
        (ValueType::Float, Kind::Float(f)) => Value::Float(*f),
        (ValueType::Float, Kind::Int(i)) => Value::Float(*i as f64),
        (ValueType::String, Kind::Str(s)) => Value::String(Arc::from(&**s)),
        (_, Kind::Bad) => return None,
        _ => {
            cx.err(
                n.pos,
                "wrong-type",
                format!(
                    "{what} must be {} like the signal, found {}",
                    match ty {
                        ValueType::Bool => "a bool (true or false)",
                        ValueType::Int => "an int",
                        ValueType::Float => "a number",
                        ValueType::String => "a string",
                    },
                    n.kind_name()
                ),
            );
            return None;
        }
    })
}

fn signal(
    cx: &mut Cx<'_>,
    n: &Node,
    idx: usize,
    sigs: &mut Signals,
    seen: &mut HashMap<String, usize>,
) {
    let Some(mut m) = MapW::new(cx, n, format!("signals item {}", idx + 1)) else {
        return;
    };
    let name = m.req_str(cx, "name");
    let shown = m.shown("name");
    if name.is_some() {
        m.what = format!("signal `{shown}`");
    }
    let what = m.what.clone();
    // `usable`: the name may be registered; a duplicate is not registered but its name is
    // not "broken" either (the first declaration stands).
    let mut usable = true;
    let mut broken = false;
    if let Some((nm, at)) = name {
        if !walk::check_name(cx, nm, &shown, at, "signal") {
            usable = false;
            broken = true;
        } else if let Some(line) = seen.get(nm) {
            cx.err(
                at,
                "duplicate-name",
                format!("signal `{shown}` is already declared at line {line}; rename one"),
            );
            usable = false;
        } else {
            seen.insert(nm.to_string(), at.line);
        }
    }
    let ty = match m.req_str(cx, "type") {
        Some((t, at)) => {
            let ty = ValueType::parse(t);
            if ty.is_none() {
                cx.err(
                    at,
                    "bad-value",
                    format!(
                        "{what} has type `{}`; use bool, int, float or string{}",
                        m.shown("type"),
                        walk::did_you_mean(t, &["bool", "int", "float", "string"])
                    ),
                );
            }
            ty
        }
        None => None,
    };
    let unit = m.opt_str(cx, "unit").map(|(s, _)| s.to_string());
    let description = m.opt_str(cx, "description").map(|(s, _)| s.to_string());
    let retain = m.opt_bool(cx, "retain").unwrap_or(false);
    let mut write: Vec<String> = Vec::new();
    if let Some(w) = m.get("write")
        && let Some(items) = expect_seq(cx, w, &format!("`write` of {what}"))
    {
        for it in items {
            let Some(role) = expect_str(cx, it, &format!("a role in `write` of {what}")) else {
                continue;
            };
            if !ROLES.contains(&role) {
                cx.err(
                    it.pos,
                    "bad-value",
                    format!(
                        "unknown role `{}` in `write` of {what}; roles are {}{}",
                        it.shown(),
                        walk::list(ROLES),
                        walk::did_you_mean(role, ROLES)
                    ),
                );
            } else if !write.iter().any(|r| r == role) {
                write.push(role.to_string());
            }
        }
    }
    let initial_node = m.get("initial");
    let min = m.opt_f64(cx, "min");
    let max = m.opt_f64(cx, "max");
    let safe_entry = m.entry("safe");
    m.finish(cx);

    let Some(ty) = ty else {
        if let Some((nm, _)) = name
            && usable
        {
            sigs.broken.insert(nm.to_string());
        }
        return;
    };
    let initial =
        initial_node.and_then(|n| value_of_type(cx, n, ty, &format!("`initial` of {what}")));
    let safe = safe_entry.and_then(|(_, n)| value_of_type(cx, n, ty, &format!("`safe` of {what}")));
    for (key, v) in [("min", min), ("max", max)] {
        if let Some((x, at)) = v {
            if !ty.is_numeric() {
                cx.err(
                    at,
                    "wrong-type",
                    format!("`{key}` applies to int and float signals only, and {what} is {ty}; remove it"),
                );
            } else if !x.is_finite() {
                cx.err(
                    at,
                    "out-of-range",
                    format!("`{key}` of {what} must be a finite number"),
                );
            }
        }
    }
    if let (Some((lo, _)), Some((hi, at))) = (min, max)
        && lo > hi
    {
        cx.err(
            at,
            "out-of-range",
            format!("{what} has max {hi} below min {lo}; swap them"),
        );
    }
    let range_ok = !matches!((min, max), (Some((lo, _)), Some((hi, _))) if lo > hi);
    let in_range = |v: &Value| {
        let x = v.as_f64().unwrap_or(0.0);
        !(min.is_some_and(|(lo, _)| x < lo) || max.is_some_and(|(hi, _)| x > hi))
    };
    for (key, v, node) in [
        ("initial", &initial, initial_node),
        ("safe", &safe, safe_entry.map(|e| e.1)),
    ] {
        if let (Some(v), Some(node)) = (v, node)
            && ty.is_numeric()
            && range_ok
            && !in_range(v)
        {
            let range = match (min, max) {
                (Some((a, _)), Some((b, _))) => format!("{a}..{b}"),
                (Some((a, _)), None) => format!("at least {a}"),
                (_, Some((b, _))) => format!("at most {b}"),
                _ => String::new(),
            };
            cx.err(
                node.pos,
                "out-of-range",
                format!(
                    "`{key}` of {what} is {}, outside its range {range}",
                    node.shown()
                ),
            );
        }
    }
    let Some((nm, _)) = name else { return };
    if broken {
        sigs.broken.insert(nm.to_string());
    }
    if !usable {
        return;
    }
    let id = SignalId::from_index(sigs.list.len());
    sigs.by_name.insert(nm.to_string(), id);
    sigs.list.push(SigEntry {
        plan: SignalPlan {
            def: SignalDef {
                name: nm.to_string(),
                ty,
                unit,
                initial,
            },
            description,
            min: min.map(|m| m.0),
            max: max.map(|m| m.0),
            write,
            retain,
            safe,
        },
        safe_key: safe_entry.map(|(k, _)| k.pos),
    });
}

fn tasks(cx: &mut Cx<'_>, node: Option<&Node>) -> Tasks {
    let mut out = Tasks::default();
    let Some(node) = node else {
        out.list.push(TaskEntry {
            name: DEFAULT_TASK.into(),
            period: DEFAULT_PERIOD,
            priority: 0,
            watchdog: None,
        });
        return out;
    };
    let Some(items) = expect_seq(cx, node, "`tasks`") else {
        return out;
    };
    if items.is_empty() {
        cx.err(
            node.pos,
            "missing-key",
            "`tasks` is empty; declare at least one task, or remove `tasks` to get the default \
             task `main` (period 100ms)",
        );
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, n) in items.iter().enumerate() {
        let Some(mut m) = MapW::new(cx, n, format!("tasks item {}", i + 1)) else {
            continue;
        };
        let name = m.req_str(cx, "name");
        let shown = m.shown("name");
        if name.is_some() {
            m.what = format!("task `{shown}`");
        }
        let what = m.what.clone();
        let mut ok = true;
        if let Some((nm, at)) = name {
            if !walk::check_name(cx, nm, &shown, at, "task") {
                ok = false;
                out.broken.insert(nm.to_string());
            } else if let Some(line) = seen.get(nm) {
                cx.err(
                    at,
                    "duplicate-name",
                    format!("task `{shown}` is already declared at line {line}; rename one"),
                );
                ok = false;
            } else {
                seen.insert(nm.to_string(), at.line);
            }
        }
        let period = m.req_duration(cx, "period");
        if let Some((p, at)) = period
            && !(MIN_PERIOD..=MAX_PERIOD).contains(&p)
        {
            cx.err(
                at,
                "out-of-range",
                format!("`period` of {what} must be between 1ms and 1h"),
            );
        }
        let priority = match m.opt_i64(cx, "priority") {
            Some((p, at)) => match i32::try_from(p) {
                Ok(p) => Some(p),
                Err(_) => {
                    cx.err(
                        at,
                        "out-of-range",
                        format!("`priority` of {what} is too large"),
                    );
                    None
                }
            },
            None => Some(0),
        };
        let watchdog = m.opt_duration(cx, "watchdog");
        if let Some((w, at)) = watchdog
            && w.is_zero()
        {
            cx.err(
                at,
                "out-of-range",
                format!(
                    "`watchdog` of {what} must be longer than 0; remove it to have no watchdog"
                ),
            );
        }
        m.finish(cx);
        match (name, period, priority) {
            (Some((nm, _)), Some((period, _)), Some(priority)) if ok => out.list.push(TaskEntry {
                name: nm.to_string(),
                period,
                priority,
                watchdog: watchdog.map(|w| w.0),
            }),
            (Some((nm, _)), ..) if ok => {
                out.broken.insert(nm.to_string());
            }
            _ => {}
        }
    }
    out
}

fn engine(cx: &mut Cx<'_>, m: Option<MapW<'_>>) -> EngineOptions {
    let mut e = EngineOptions::default();
    let Some(mut m) = m else { return e };
    if let Some((p, at)) = m.opt_i64(cx, "rt_priority") {
        if (1..=99).contains(&p) {
            e.rt_priority = Some(p as u8);
        } else {
            cx.err(
                at,
                "out-of-range",
                format!("`rt_priority` is {p}; SCHED_FIFO priorities are 1..99"),
            );
        }
    }
    if let Some((c, at)) = m.opt_i64(cx, "cpu") {
        match usize::try_from(c) {
            Ok(c) => e.cpu = Some(c),
            Err(_) => cx.err(
                at,
                "out-of-range",
                format!("`cpu` is {c}; CPUs are numbered from 0"),
            ),
        }
    }
    m.finish(cx);
    e
}

/// `base/./data` → `base/data`; absolute paths are kept.
pub(crate) fn resolve_path(base: &Path, p: &str) -> PathBuf {
    let joined = base.join(p);
    joined
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect()
}

/// Walks the whole document; `Some` only when there was no error at all.
pub(crate) fn compile(
    cx: &mut Cx<'_>,
    root: &Node,
    registry: &Registry,
    base_dir: &Path,
    config_path: PathBuf,
) -> Option<Plan> {
    if matches!(root.kind(), Kind::Null) {
        cx.err(
            root.pos,
            "missing-key",
            "the configuration is empty; it needs at least `plant`",
        );
        return None;
    }
    let mut top = MapW::new(cx, root, "the configuration")?;
    let plant = top.req_str(cx, "plant");
    if let Some((p, at)) = plant {
        walk::check_name(cx, p, &top.shown("plant"), at, "plant");
    }
    let data_dir = top
        .opt_str(cx, "data_dir")
        .map(|(s, _)| s)
        .unwrap_or("./data");
    let engine_map = top.opt_map(cx, "engine");
    let engine = engine(cx, engine_map);
    let data_dir = resolve_path(base_dir, data_dir);
    let server = top
        .opt_map(cx, "server")
        .and_then(|m| crate::server::server(cx, m, base_dir, &data_dir));
    let mut sigs = Signals::default();
    if let Some(n) = top.get("signals")
        && let Some(items) = expect_seq(cx, n, "`signals`")
    {
        // Exact: the list becomes the plan's, and 100,000 signals are 20 MB without slack.
        sigs.list.reserve_exact(items.len());
        let mut seen = HashMap::new();
        for (i, it) in items.iter().enumerate() {
            signal(cx, it, i, &mut sigs, &mut seen);
        }
    }
    let notify = crate::alarms::notify(cx, &mut top);
    let alarms = crate::alarms::alarms(cx, &mut top, &sigs, notify.as_ref());
    let history = top
        .opt_map(cx, "history")
        .and_then(|m| crate::history::history(cx, m, &sigs, &data_dir));
    let (mut drivers, driver_writes) = match top.get("drivers") {
        Some(n) => {
            let ctx = crate::drivers::DriverContext {
                plant: plant.map_or("petra", |p| p.0),
                base_dir,
                has_server: server.is_some(),
            };
            crate::drivers::drivers(cx, n, &sigs, &ctx)
        }
        None => (Vec::new(), Vec::new()),
    };
    let tasks_node = top.get("tasks");
    let tasks = tasks(cx, tasks_node);

    let mut blocks: Vec<BlockOut> = Vec::new();
    if let Some(n) = top.get("blocks")
        && let Some(items) = expect_seq(cx, n, "`blocks`")
    {
        let mut seen = HashMap::new();
        for (i, it) in items.iter().enumerate() {
            if let Some(b) = blocks::block(cx, it, i, &sigs, &tasks, registry, &mut seen) {
                blocks.push(b);
            }
        }
    }
    top.finish(cx);

    check_writers(cx, &sigs, &blocks, &driver_writes);
    check_cycles(cx, &tasks, &blocks);
    check_safe(cx, &sigs, &tasks, &blocks);

    if cx.has_errors() {
        return None;
    }
    let mut specs: Vec<TaskSpec> = tasks
        .list
        .iter()
        .map(|t| TaskSpec {
            name: t.name.clone(),
            period: t.period,
            priority: t.priority,
            watchdog: t.watchdog,
            blocks: Vec::new(),
        })
        .collect();
    for b in blocks {
        let (Some(task), Some(block)) = (b.task, b.block) else {
            continue; // unreachable without errors
        };
        specs[task].blocks.push(BlockInstance {
            name: b.name,
            type_name: b.type_name,
            block,
            inputs: b.inputs,
            outputs: b.outputs,
        });
    }
    let safe_values = sigs
        .list
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.plan.safe.clone().map(|v| (SignalId::from_index(i), v)))
        .collect();
    // A running driver keeps its points for the whole run: no growth slack (100,000 Modbus
    // points are 8 MB).
    for d in &mut drivers {
        match d {
            DriverPlan::Modbus(m) => m.points.shrink_to_fit(),
            DriverPlan::S7(s) => s.points.shrink_to_fit(),
            DriverPlan::Mqtt(m) => m.subscribe.shrink_to_fit(),
        }
    }
    Some(Plan {
        plant: plant.map(|p| p.0.to_string()).unwrap_or_default(),
        config_path,
        data_dir,
        signals: sigs.list.into_iter().map(|s| s.plan).collect(),
        program: Program {
            tasks: specs,
            safe_values,
        },
        engine,
        server,
        drivers,
        history,
        alarms,
        notify: notify.and_then(|n| n.config),
    })
}

fn signal_name(sigs: &Signals, id: SignalId) -> &str {
    &sigs.list[id.index()].plan.def.name
}

/// Who writes a signal, for messages: "block `x`" / "driver `y`".
#[derive(Clone, Copy, PartialEq)]
enum Writer<'a> {
    Block(&'a str),
    Driver(&'a str),
}

impl std::fmt::Display for Writer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Writer::Block(b) => write!(f, "block `{b}`"),
            Writer::Driver(d) => write!(f, "driver `{d}`"),
        }
    }
}

/// One writer per signal, across all tasks and drivers.
fn check_writers(cx: &mut Cx<'_>, sigs: &Signals, blocks: &[BlockOut], drivers: &[DriverWrite]) {
    // The first writer of each signal and its line, by signal id.
    let mut writer: Vec<Option<(Writer<'_>, usize)>> = vec![None; sigs.list.len()];
    let block_writes = blocks.iter().flat_map(|b| {
        b.writes
            .iter()
            .map(move |(id, at)| (*id, *at, Writer::Block(&b.name), false))
    });
    let driver_writes = drivers
        .iter()
        .map(|d| (d.signal, d.at, Writer::Driver(&d.driver), d.readwrite));
    // `readwrite` points take outside writes to the device: `write` roles are their purpose.
    for (id, at, who, outside_ok) in block_writes.chain(driver_writes) {
        match writer[id.index()] {
            Some((first, _)) if first == who => cx.err(
                at,
                "multiple-writers",
                format!(
                    "{first} writes signal `{}` twice (from two outputs or points); keep one",
                    signal_name(sigs, id)
                ),
            ),
            Some((first, line)) => cx.err(
                at,
                "multiple-writers",
                format!(
                    "signal `{}` is already written by {first} (line {line}); a signal has one \
                     writer — use another signal and combine them with a block",
                    signal_name(sigs, id)
                ),
            ),
            None => {
                let plan = &sigs.list[id.index()].plan;
                if !plan.write.is_empty() && !outside_ok {
                    // The writer would overwrite any outside write on its next scan or poll.
                    cx.err(
                        at,
                        "multiple-writers",
                        format!(
                            "signal `{}` is written by {who} and also writable from outside \
                             (`write: [{}]`); {who} would overwrite every outside write — remove \
                             `write`, feed it from another signal, or (for a driver point) use \
                             `mode: readwrite` so outside writes go to the device",
                            plan.def.name,
                            plan.write.join(", ")
                        ),
                    );
                }
                writer[id.index()] = Some((who, at.line));
            }
        }
    }
}

/// No dependency cycle inside a task. Every cycle is reported, not only the first.
fn check_cycles(cx: &mut Cx<'_>, tasks: &Tasks, blocks: &[BlockOut]) {
    for (ti, task) in tasks.list.iter().enumerate() {
        let mut members: Vec<usize> = (0..blocks.len())
            .filter(|i| blocks[*i].task == Some(ti))
            .collect();
        let writes: Vec<Vec<SignalId>> = blocks
            .iter()
            .map(|b| b.writes.iter().map(|w| w.0).collect())
            .collect();
        while !members.is_empty() {
            let nodes: Vec<graph::Node<'_>> = members
                .iter()
                .map(|i| graph::Node {
                    reads: &blocks[*i].reads,
                    writes: &writes[*i],
                })
                .collect();
            let Err(cycle) = graph::execution_order(&nodes) else {
                break;
            };
            let cycle: Vec<usize> = cycle.iter().map(|c| members[*c]).collect();
            let first = &blocks[cycle[0]];
            let msg = if cycle.len() == 1 {
                format!(
                    "block `{}` in task `{}` reads a signal it writes itself; break the loop by \
                     moving the feedback through another task",
                    first.name, task.name
                )
            } else {
                let chain: Vec<String> = cycle
                    .iter()
                    .chain(std::iter::once(&cycle[0]))
                    .map(|i| format!("`{}`", blocks[*i].name))
                    .collect();
                format!(
                    "blocks {} form a cycle in task `{}` (each feeds the next); break it by \
                     moving one of them to another task",
                    chain.join(" → "),
                    task.name
                )
            };
            cx.err(first.pos, "cycle", msg);
            members.retain(|m| !cycle.contains(m));
        }
    }
}

/// `safe` only where the watchdog can drive it.
fn check_safe(cx: &mut Cx<'_>, sigs: &Signals, tasks: &Tasks, blocks: &[BlockOut]) {
    for s in &sigs.list {
        let Some(at) = s.safe_key else { continue };
        let Some(id) = sigs.by_name.get(&s.plan.def.name) else {
            continue;
        };
        let name = &s.plan.def.name;
        let writer = blocks.iter().find(|b| b.writes.iter().any(|w| w.0 == *id));
        let msg = match writer {
            None => format!(
                "signal `{name}` has a `safe` value, but no block writes it; the watchdog only \
                 drives outputs of blocks in a task with a `watchdog`; remove `safe`"
            ),
            Some(b) => match b.task {
                Some(t) if tasks.list[t].watchdog.is_none() => format!(
                    "signal `{name}` has a `safe` value, but block `{}` writes it in task `{}`, \
                     which has no `watchdog`; add one (e.g. `watchdog: 50ms`) or remove `safe`",
                    b.name, tasks.list[t].name
                ),
                _ => continue,
            },
        };
        cx.err(at, "bad-value", msg);
    }
}
