//! Logic scenarios for `petra test` (spec section 3): a configuration, and steps in virtual
//! time that set signals, acknowledge alarms, and check signals and alarm states.
//!
//! ```yaml
//! name: start delay               # optional; default: the file name
//! config: plant.yaml              # relative to the scenario file
//! steps:
//!   - at: 0ms
//!     set: { start.button: true }
//!   - at: 490ms
//!     expect: { motor.run: false }
//!   - at: 510ms
//!     expect: { motor.run: true, tank.level: { approx: 2.5, tol: 0.01 } }
//!     alarms: { tank_high: active_unacked }   # alarm states after the scans at 510ms
//!   - at: 1s
//!     ack: [tank_high]                        # an operator acknowledges, before the scans at 1s
//!     alarms: { tank_high: active_acked }
//! ```
//!
//! The file is read with the same walker as configurations, so it is just as strict: unknown
//! keys, unknown signals and alarms, values of the wrong type, unknown alarm states and steps
//! out of time order are all errors with file, line and column, all reported at once. The
//! configuration it names goes through [`crate::load`] unchanged; its errors are the ones
//! `petra check` prints.
//!
//! This module only reads and resolves the file. Running it (the engine on a virtual clock) is
//! the binary's job; what an expectation accepts is decided here ([`Expectation::check`]), so
//! it can be tested without an engine. The semantics are documented in `docs/testing.md`.

use crate::compile::value_of_type;
use crate::diag::{Cx, Pos};
use crate::walk::{self, MapW, expect_f64, expect_seq, expect_str};
use crate::yaml::{self, Kind, Node};
use crate::{ConfigError, Diagnostics, Plan};
use petra_alarms::AlarmState;
use petra_core::{BadReason, Quality, Sample, SignalId, Value, ValueType};
use petra_engine::Registry;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A scenario, resolved against its configuration.
#[derive(Debug)]
pub struct Scenario {
    /// `name:` from the file, or the file name without `.yaml` / `.test.yaml`.
    pub name: String,
    /// The scenario file as given (the name used in messages).
    pub file: String,
    /// The compiled configuration the scenario drives.
    pub plan: Plan,
    /// In file order; `at` never decreases.
    pub steps: Vec<Step>,
}

/// One step: at virtual time `at`, apply `set` and `ack`, let the scans due at `at` run, check
/// `expect` and `alarms`.
#[derive(Clone, Debug)]
pub struct Step {
    /// 1-based position in `steps`.
    pub index: usize,
    /// Virtual time since the first scan.
    pub at: Duration,
    /// Where the step starts in the scenario file (1-based).
    pub line: usize,
    pub col: usize,
    pub set: Vec<SetOp>,
    pub expect: Vec<Expectation>,
    /// Alarms an operator acknowledges at `at`, before the scans due at `at` (names of the
    /// plan's alarms, each once, in file order).
    pub ack: Vec<String>,
    /// Alarm states expected after the scans due at `at`, in file order.
    pub alarms: Vec<AlarmExpectation>,
}

/// One check of a step's `alarms`: the alarm (one of the plan's) is in this state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlarmExpectation {
    pub name: String,
    pub state: AlarmState,
}

/// One write of a step's `set`.
#[derive(Clone, Debug, PartialEq)]
pub struct SetOp {
    pub signal: SignalId,
    pub name: String,
    /// `None`: keep the signal's current value and change only its quality.
    pub value: Option<Value>,
    pub quality: Quality,
}

/// One check of a step's `expect`.
#[derive(Clone, Debug, PartialEq)]
pub struct Expectation {
    pub signal: SignalId,
    pub name: String,
    /// `None`: any value (only the quality is checked).
    pub value: Option<Expected>,
    /// The quality class the sample must have; `good` unless the file says otherwise.
    pub quality: QualityClass,
    /// Where the expectation is written (the signal name), 1-based.
    pub line: usize,
    pub col: usize,
}

/// What an expected value accepts.
#[derive(Clone, Debug, PartialEq)]
pub enum Expected {
    /// Equal to this value. Floats compare numerically (`0.0` equals `-0.0`); NaN equals NaN.
    Exact(Value),
    /// A number within `tol` of `value` (inclusive).
    Approx { value: f64, tol: f64 },
}

/// A quality without the reason, as written in scenario files and shown by the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QualityClass {
    Good,
    Uncertain,
    Bad,
}

impl QualityClass {
    const NAMES: &'static [&'static str] = &["good", "uncertain", "bad"];

    fn parse(s: &str) -> Option<QualityClass> {
        match s {
            "good" => Some(QualityClass::Good),
            "uncertain" => Some(QualityClass::Uncertain),
            "bad" => Some(QualityClass::Bad),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            QualityClass::Good => "good",
            QualityClass::Uncertain => "uncertain",
            QualityClass::Bad => "bad",
        }
    }

    pub fn matches(self, q: Quality) -> bool {
        q.name() == self.name()
    }

    /// The quality a `set` with this class writes. A bad value set by a scenario stands for a
    /// device that stopped answering, so its reason is `not_connected`.
    pub fn quality(self) -> Quality {
        match self {
            QualityClass::Good => Quality::Good,
            QualityClass::Uncertain => Quality::Uncertain,
            QualityClass::Bad => Quality::Bad(BadReason::NotConnected),
        }
    }
}

impl Expected {
    pub fn accepts(&self, v: &Value) -> bool {
        match (self, v) {
            (Expected::Exact(Value::Float(e)), Value::Float(a)) => {
                e == a || (e.is_nan() && a.is_nan())
            }
            (Expected::Exact(e), a) => e.same(a),
            (Expected::Approx { value, tol }, a) => match a.as_f64() {
                Some(a) => (a - value).abs() <= *tol,
                None => false,
            },
        }
    }
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expected::Exact(v) => f.write_str(&show_value(v)),
            Expected::Approx { value, tol } => write!(f, "{value:?} ± {tol}"),
        }
    }
}

/// A value as a failure shows it: floats always with a decimal point (`1.0`, not `1`), so a
/// float is never mistaken for an int; strings quoted.
pub fn show_value(v: &Value) -> String {
    match v {
        Value::Float(x) => format!("{x:?}"),
        v => v.to_string(),
    }
}

impl Expectation {
    /// Whether `sample` meets the expectation: the value (when one is expected) and the
    /// quality class.
    pub fn check(&self, sample: &Sample) -> bool {
        self.quality.matches(sample.quality)
            && self.value.as_ref().is_none_or(|e| e.accepts(&sample.value))
    }

    /// The expectation as shown in a failure: `true (good)`, `2.5 ± 0.01 (good)`,
    /// `any value (bad)`.
    pub fn expected_text(&self) -> String {
        match &self.value {
            Some(e) => format!("{e} ({})", self.quality.name()),
            None => format!("any value ({})", self.quality.name()),
        }
    }
}

/// Why a scenario could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Errors of the configuration the scenario names (exactly as `petra check` reports them),
    /// then errors of the scenario file itself.
    #[error("{}", show_invalid(.config, .scenario))]
    Invalid {
        config: Option<Diagnostics>,
        scenario: Diagnostics,
    },
}

fn show_invalid(config: &Option<Diagnostics>, scenario: &Diagnostics) -> String {
    let mut parts = Vec::new();
    if let Some(c) = config
        && !c.is_empty()
    {
        parts.push(c.to_string());
    }
    if !scenario.is_empty() {
        parts.push(scenario.to_string());
    }
    parts.join("\n")
}

/// Reads the scenario at `path` and loads the configuration it names with [`crate::load`].
pub fn load_scenario(path: &Path, registry: &Registry) -> Result<Scenario, ScenarioError> {
    let src = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let base_dir = path.parent().unwrap_or(Path::new(""));
    let env = |name: &str| std::env::var(name).ok();
    parse_scenario(
        &src,
        &path.display().to_string(),
        base_dir,
        &env,
        &|config: &Path| crate::load(config, registry),
    )
}

/// Like [`load_scenario`], from a string: `file` names it in messages, `base_dir` is where the
/// `config:` path is resolved (empty: as written), `load_config` loads that path.
pub fn parse_scenario(
    src: &str,
    file: &str,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    load_config: &dyn Fn(&Path) -> Result<Plan, ConfigError>,
) -> Result<Scenario, ScenarioError> {
    let mut cx = Cx::new(file);
    let mut config_diags = None;
    let parsed = yaml::parse(src, env, &mut cx)
        .and_then(|root| walk_scenario(&mut cx, &root, base_dir, load_config, &mut config_diags));
    match parsed {
        Some((name, plan, steps)) if !cx.has_errors() && config_diags.is_none() => Ok(Scenario {
            name: name.unwrap_or_else(|| default_name(file)),
            file: file.to_string(),
            plan,
            steps,
        }),
        _ => Err(ScenarioError::Invalid {
            config: config_diags,
            scenario: Diagnostics::sorted(cx.diags),
        }),
    }
}

/// `examples/quickstart.test.yaml` → `quickstart`.
fn default_name(file: &str) -> String {
    let base = Path::new(file)
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| file.to_string());
    let base = base
        .strip_suffix(".yaml")
        .or_else(|| base.strip_suffix(".yml"))
        .unwrap_or(&base);
    base.strip_suffix(".test").unwrap_or(base).to_string()
}

/// The names of [`AlarmState`], as written in scenario files.
pub(crate) const ALARM_STATES: &[&str] =
    &["normal", "active_unacked", "active_acked", "rtn_unacked"];

/// The plan's signals by name, which block writes each, and the plan's alarms.
struct SigIndex<'p> {
    plan: &'p Plan,
    by_name: HashMap<&'p str, SignalId>,
    /// Signal → (block, task) writing it.
    writer: HashMap<SignalId, (&'p str, &'p str)>,
    /// Alarm names, in declaration order.
    alarms: Vec<&'p str>,
}

impl<'p> SigIndex<'p> {
    fn new(plan: &'p Plan) -> SigIndex<'p> {
        let by_name = plan
            .signals
            .iter()
            .enumerate()
            .map(|(i, s)| (s.def.name.as_str(), SignalId::from_index(i)))
            .collect();
        let mut writer = HashMap::new();
        for t in &plan.program.tasks {
            for b in &t.blocks {
                for id in b.outputs.iter().flatten() {
                    writer.insert(*id, (b.name.as_str(), t.name.as_str()));
                }
            }
        }
        SigIndex {
            plan,
            by_name,
            writer,
            alarms: plan.alarms.iter().map(|a| &*a.name).collect(),
        }
    }

    /// Whether the plan has alarm `name`; reports `unknown-alarm` at `at` when it has not.
    fn alarm(&self, cx: &mut Cx<'_>, at: Pos, name: &str, what: &str) -> bool {
        if self.alarms.contains(&name) {
            return true;
        }
        let config = self.plan.config_path.display();
        cx.err(
            at,
            "unknown-alarm",
            format!(
                "{what}: no alarm `{name}` is declared in {config}{}",
                match walk::close_names(name, &self.alarms).first() {
                    Some(c) => format!("; did you mean `{c}`?"),
                    None if self.alarms.is_empty() => " (it has no `alarms` section)".into(),
                    None => String::new(),
                }
            ),
        );
        false
    }

    /// The signal named by key `k`; reports `unknown-signal` at the key.
    fn lookup(
        &self,
        cx: &mut Cx<'_>,
        k: &Node,
        name: &str,
        what: &str,
    ) -> Option<(SignalId, ValueType)> {
        if let Some(id) = self.by_name.get(name) {
            return Some((*id, self.plan.signals[id.index()].def.ty));
        }
        let names: Vec<&str> = self.by_name.keys().copied().collect();
        let config = self.plan.config_path.display();
        cx.err(
            k.pos,
            "unknown-signal",
            format!(
                "{what}: no signal `{name}` is declared in {config}{}",
                match walk::close_names(name, &names).first() {
                    Some(c) => format!("; did you mean `{c}`?"),
                    None => String::new(),
                }
            ),
        );
        None
    }
}

type Walked = (Option<String>, Plan, Vec<Step>);

fn walk_scenario(
    cx: &mut Cx<'_>,
    root: &Node,
    base_dir: &Path,
    load_config: &dyn Fn(&Path) -> Result<Plan, ConfigError>,
    config_diags: &mut Option<Diagnostics>,
) -> Option<Walked> {
    if matches!(root.kind(), Kind::Null) {
        cx.err(
            root.pos,
            "missing-key",
            "the scenario is empty; it needs `config` and `steps`",
        );
        return None;
    }
    let mut top = MapW::new(cx, root, "the scenario")?;
    let name = top.opt_str(cx, "name").map(|(s, _)| s.to_string());
    let config = top.req_str(cx, "config");
    let steps = top.req(cx, "steps");
    top.finish(cx);

    let mut plan = None;
    if let Some((c, at)) = config {
        let path = if base_dir.as_os_str().is_empty() {
            PathBuf::from(c)
        } else {
            base_dir.join(c)
        };
        match load_config(&path) {
            Ok(p) => plan = Some(p),
            Err(ConfigError::Io { path, source }) => cx.err(
                at,
                "bad-value",
                format!(
                    "cannot read the configuration {}: {source}; `config` is relative to the \
                     scenario file",
                    path.display()
                ),
            ),
            Err(ConfigError::Invalid(d)) => *config_diags = Some(d),
        }
    }
    let index = plan.as_ref().map(SigIndex::new);

    let mut out = Vec::new();
    if let Some(n) = steps
        && let Some(items) = expect_seq(cx, n, "`steps`")
    {
        if items.is_empty() {
            cx.err(
                n.pos,
                "missing-key",
                "`steps` is empty; add at least one step with `at` and `expect`",
            );
        }
        let mut prev: Option<(Duration, usize)> = None;
        for (i, item) in items.iter().enumerate() {
            if let Some(s) = step(cx, item, i, index.as_ref(), &mut prev) {
                out.push(s);
            }
        }
    }
    plan.map(|p| (name, p, out))
}

fn step(
    cx: &mut Cx<'_>,
    n: &Node,
    i: usize,
    sigs: Option<&SigIndex<'_>>,
    prev: &mut Option<(Duration, usize)>,
) -> Option<Step> {
    let mut m = MapW::new(cx, n, format!("step {}", i + 1))?;
    let what = m.what.clone();
    let at = m.req_duration(cx, "at");
    let set = m.opt_map(cx, "set");
    let expect = m.opt_map(cx, "expect");
    let ack = m.get("ack");
    let alarms = m.opt_map(cx, "alarms");
    m.finish(cx);

    if let Some((d, at_pos)) = at {
        if let Some((p, line)) = *prev
            && d < p
        {
            cx.err(
                at_pos,
                "out-of-range",
                format!(
                    "`at` of {what} is {}, earlier than the step before it ({}, line {line}); \
                     steps run in time order — reorder them",
                    show_duration(d),
                    show_duration(p)
                ),
            );
        }
        *prev = Some((d, n.pos.line));
    }

    let mut sets = Vec::new();
    if let Some(mut set) = set {
        for (k, name, v) in set.rest() {
            let Some(sigs) = sigs else { continue };
            let w = format!("`set` of {what}");
            let Some((id, ty)) = sigs.lookup(cx, k, &name, &w) else {
                continue;
            };
            if let Some((block, task)) = sigs.writer.get(&id) {
                cx.err(
                    k.pos,
                    "multiple-writers",
                    format!(
                        "{w}: signal `{name}` is written by block `{block}` (task `{task}`), \
                         which overwrites any value set here at its next scan; set the block's \
                         inputs instead"
                    ),
                );
                continue;
            }
            let w = format!("`{name}` in {w}");
            if let Some((value, quality)) = set_value(cx, v, ty, &w) {
                sets.push(SetOp {
                    signal: id,
                    name,
                    value,
                    quality,
                });
            }
        }
        set.finish(cx);
    }

    let mut expects = Vec::new();
    if let Some(mut ex) = expect {
        for (k, name, v) in ex.rest() {
            let Some(sigs) = sigs else { continue };
            let w = format!("`expect` of {what}");
            let Some((id, ty)) = sigs.lookup(cx, k, &name, &w) else {
                continue;
            };
            let w = format!("`{name}` in {w}");
            if let Some((value, quality)) = expected(cx, v, ty, &w) {
                expects.push(Expectation {
                    signal: id,
                    name,
                    value,
                    quality,
                    line: k.pos.line,
                    col: k.pos.col,
                });
            }
        }
        ex.finish(cx);
    }

    let mut acks: Vec<String> = Vec::new();
    if let Some(a) = ack
        && let Some(items) = expect_seq(cx, a, &format!("`ack` of {what}"))
    {
        let w = format!("`ack` of {what}");
        for it in items {
            let Some(name) = expect_str(cx, it, &format!("an alarm in {w}")) else {
                continue;
            };
            if sigs.is_some_and(|s| !s.alarm(cx, it.pos, name, &w)) {
                continue;
            }
            if acks.iter().any(|a| a == name) {
                cx.err(
                    it.pos,
                    "bad-value",
                    format!("{w} acknowledges alarm `{name}` twice; remove one"),
                );
                continue;
            }
            acks.push(name.to_string());
        }
    }

    let mut alarm_expects = Vec::new();
    if let Some(mut al) = alarms {
        let w = format!("`alarms` of {what}");
        for (k, name, v) in al.rest() {
            let known = sigs.is_none_or(|s| s.alarm(cx, k.pos, &name, &w));
            let state = alarm_state(cx, v, &format!("`{name}` in {w}"));
            if let (true, Some(state)) = (known, state) {
                alarm_expects.push(AlarmExpectation { name, state });
            }
        }
        al.finish(cx);
    }

    Some(Step {
        index: i + 1,
        at: at?.0,
        line: n.pos.line,
        col: n.pos.col,
        set: sets,
        expect: expects,
        ack: acks,
        alarms: alarm_expects,
    })
}

/// An expected alarm state: `normal`, `active_unacked`, `active_acked` or `rtn_unacked`.
fn alarm_state(cx: &mut Cx<'_>, n: &Node, what: &str) -> Option<AlarmState> {
    let s = expect_str(cx, n, what)?;
    let state = AlarmState::parse(s);
    if state.is_none() {
        cx.err(
            n.pos,
            "bad-value",
            format!(
                "{what} is `{}`; alarm states are {}{}",
                n.shown(),
                walk::list(ALARM_STATES),
                walk::did_you_mean(s, ALARM_STATES)
            ),
        );
    }
    state
}

fn quality_class(cx: &mut Cx<'_>, n: &Node, what: &str) -> Option<QualityClass> {
    let s = expect_str(cx, n, what)?;
    let q = QualityClass::parse(s);
    if q.is_none() {
        cx.err(
            n.pos,
            "bad-value",
            format!(
                "{what} is `{}`; use {}{}",
                n.shown(),
                walk::list(QualityClass::NAMES),
                walk::did_you_mean(s, QualityClass::NAMES)
            ),
        );
    }
    q
}

/// A `set` value: a plain value (quality good) or `{ value: .., quality: .. }`.
fn set_value(
    cx: &mut Cx<'_>,
    n: &Node,
    ty: ValueType,
    what: &str,
) -> Option<(Option<Value>, Quality)> {
    if !matches!(n.kind(), Kind::Map(_)) {
        return value_of_type(cx, n, ty, what).map(|v| (Some(v), Quality::Good));
    }
    let mut m = MapW::new(cx, n, what)?;
    let value = m.get("value");
    let quality = m.get("quality");
    m.finish(cx);
    if value.is_none() && quality.is_none() {
        cx.err(
            n.pos,
            "missing-key",
            format!("{what} needs `value`, `quality` or both"),
        );
        return None;
    }
    let v = match value {
        Some(v) => Some(value_of_type(cx, v, ty, &format!("`value` of {what}"))?),
        None => None,
    };
    let q = match quality {
        Some(q) => quality_class(cx, q, &format!("`quality` of {what}"))?,
        None => QualityClass::Good,
    };
    Some((v, q.quality()))
}

/// An `expect` value: a plain value, or a mapping of `value` | `approx` + `tol`, and
/// `quality`.
fn expected(
    cx: &mut Cx<'_>,
    n: &Node,
    ty: ValueType,
    what: &str,
) -> Option<(Option<Expected>, QualityClass)> {
    if !matches!(n.kind(), Kind::Map(_)) {
        return value_of_type(cx, n, ty, what)
            .map(|v| (Some(Expected::Exact(v)), QualityClass::Good));
    }
    let mut m = MapW::new(cx, n, what)?;
    let value = m.entry("value");
    let approx = m.entry("approx");
    let tol = m.entry("tol");
    let quality = m.get("quality");
    m.finish(cx);
    let mut ok = true;
    let q = match quality {
        Some(q) => quality_class(cx, q, &format!("`quality` of {what}")),
        None => Some(QualityClass::Good),
    };
    let v = match (value, approx) {
        (Some(_), Some((k, _))) => {
            cx.err(
                k.pos,
                "bad-value",
                format!("{what} has both `value` and `approx`; keep one"),
            );
            None
        }
        (Some((_, v)), None) => {
            if let Some((k, _)) = tol {
                cx.err(
                    k.pos,
                    "bad-value",
                    format!("`tol` in {what} goes with `approx`, not `value`; write `approx:`"),
                );
                ok = false;
            }
            let v = value_of_type(cx, v, ty, &format!("`value` of {what}"));
            ok &= v.is_some();
            v.map(Expected::Exact)
        }
        (None, Some((_, a))) => approx_value(cx, a, tol, ty, n.pos, what, &mut ok),
        (None, None) => {
            if let Some((k, _)) = tol {
                cx.err(
                    k.pos,
                    "missing-key",
                    format!("`tol` in {what} needs `approx`"),
                );
                ok = false;
            } else if quality.is_none() {
                cx.err(
                    n.pos,
                    "missing-key",
                    format!("{what} needs `value`, `approx` + `tol`, or `quality`"),
                );
                ok = false;
            }
            None
        }
    };
    match q {
        Some(q) if ok => Some((v, q)),
        _ => None,
    }
}

fn approx_value(
    cx: &mut Cx<'_>,
    a: &Node,
    tol: Option<(&Node, &Node)>,
    ty: ValueType,
    at: Pos,
    what: &str,
    ok: &mut bool,
) -> Option<Expected> {
    if !ty.is_numeric() {
        cx.err(
            a.pos,
            "wrong-type",
            format!("`approx` in {what} applies to int and float signals only, and this one is {ty}; expect a plain value"),
        );
        *ok = false;
        return None;
    }
    let value = expect_f64(cx, a, &format!("`approx` of {what}"));
    let Some((_, t)) = tol else {
        cx.err(
            at,
            "missing-key",
            format!("{what} has `approx` but no `tol`; add one, e.g. `tol: 0.01`"),
        );
        *ok = false;
        return None;
    };
    let tol = expect_f64(cx, t, &format!("`tol` of {what}"));
    if let Some(x) = tol
        && !(x.is_finite() && x >= 0.0)
    {
        cx.err(
            t.pos,
            "out-of-range",
            format!("`tol` of {what} is {x}; it must be a finite number ≥ 0"),
        );
        *ok = false;
        return None;
    }
    if let Some(x) = value
        && !x.is_finite()
    {
        cx.err(
            a.pos,
            "out-of-range",
            format!("`approx` of {what} must be a finite number; use `value: .nan` for NaN"),
        );
        *ok = false;
        return None;
    }
    match (value, tol) {
        (Some(value), Some(tol)) => Some(Expected::Approx { value, tol }),
        _ => {
            *ok = false;
            None
        }
    }
}

/// `1.5s`, `500ms`, `0s`: a duration as a scenario reader thinks of it.
pub fn show_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        "0s".into()
    } else if ns.is_multiple_of(3_600_000_000_000) {
        format!("{}h", ns / 3_600_000_000_000)
    } else if ns.is_multiple_of(1_000_000_000) {
        format!("{}s", ns / 1_000_000_000)
    } else if ns >= 1_000_000_000 && ns.is_multiple_of(1_000_000) {
        let s = format!("{:.3}", d.as_secs_f64());
        format!("{}s", s.trim_end_matches('0'))
    } else if ns.is_multiple_of(1_000_000) {
        format!("{}ms", ns / 1_000_000)
    } else {
        format!("{}µs", ns as f64 / 1e3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Diagnostic;
    use petra_core::Timestamp;
    use petra_engine::{Block, BlockType, BuildCtx, BuildResult, Io, PortSpec, PortType};

    struct Nop;
    impl Block for Nop {
        fn execute(&mut self, _io: &mut Io<'_>) {}
    }

    fn build_nop(_: &BuildCtx<'_>) -> BuildResult {
        Ok(Box::new(Nop))
    }

    static COPY: BlockType = BlockType {
        name: "COPY",
        aliases: &[],
        summary: "copy",
        inputs: &[PortSpec {
            name: "in",
            ty: PortType::Bool,
            required: true,
            variadic: false,
            doc: "",
        }],
        outputs: &[PortSpec {
            name: "out",
            ty: PortType::Bool,
            required: false,
            variadic: false,
            doc: "",
        }],
        params: &[],
        build: build_nop,
    };

    const CONFIG: &str = "plant: t
signals:
  - { name: start, type: bool, initial: false }
  - { name: level, type: float, initial: 0 }
  - { name: count, type: int, initial: 0 }
  - { name: batch, type: string, initial: none }
  - { name: run, type: bool }
blocks:
  - { name: latch, type: COPY, inputs: { in: start }, outputs: { out: run } }
";

    fn load_config(p: &Path) -> Result<Plan, ConfigError> {
        let src = match p.to_str() {
            Some("/s/plant.yaml") => CONFIG,
            Some("/s/broken.yaml") => "plant: t\nsignals:\n  - { name: a, type: flaot }\n",
            _ => {
                return Err(ConfigError::Io {
                    path: p.to_path_buf(),
                    source: std::io::Error::from(std::io::ErrorKind::NotFound),
                });
            }
        };
        let mut r = Registry::new();
        r.register(&COPY).unwrap();
        crate::load_str(src, p.to_str().unwrap(), Path::new("/s"), &|_| None, &r)
    }

    fn parse(src: &str) -> Result<Scenario, ScenarioError> {
        parse_scenario(src, "t.test.yaml", Path::new("/s"), &|_| None, &load_config)
    }

    fn ok(src: &str) -> Scenario {
        parse(src).unwrap_or_else(|e| panic!("{e}"))
    }

    fn errors(src: &str) -> Vec<Diagnostic> {
        match parse(src) {
            Ok(_) => panic!("expected errors, the scenario loaded"),
            Err(ScenarioError::Invalid {
                config: None,
                scenario,
            }) => scenario.0,
            Err(e) => panic!("unexpected error {e}"),
        }
    }

    #[track_caller]
    fn one_error(src: &str, code: &str, line: usize, col: usize) -> Diagnostic {
        let errs = errors(src);
        assert_eq!(errs.len(), 1, "expected one error, got {errs:#?}");
        let d = errs.into_iter().next().unwrap();
        assert_eq!((d.code, d.line, d.col), (code, line, col), "got: {d}");
        d
    }

    fn sample(v: impl Into<Value>, q: Quality) -> Sample {
        Sample {
            value: v.into(),
            quality: q,
            ts: Timestamp::from_unix_nanos(0),
        }
    }

    #[test]
    fn a_scenario_resolves_signals_types_and_times() {
        let sc = ok("config: plant.yaml
steps:
  - at: 0ms
    set: { start: true, level: 2, count: 7, batch: b1 }
  - at: 1.5s
    set: { level: { quality: bad }, count: { value: 3, quality: uncertain } }
    expect:
      run: true
      level: { approx: 2.5, tol: 0.1 }
      count: { quality: uncertain }
      batch: { value: b1, quality: good }
  - at: 1.5s
");
        assert_eq!(sc.name, "t");
        assert_eq!(sc.file, "t.test.yaml");
        assert_eq!(sc.plan.plant, "t");
        assert_eq!(sc.steps.len(), 3);
        let s0 = &sc.steps[0];
        assert_eq!(
            (s0.index, s0.at, s0.line, s0.col),
            (1, Duration::ZERO, 3, 5)
        );
        let values: Vec<_> = s0.set.iter().map(|o| o.value.clone().unwrap()).collect();
        assert_eq!(
            values,
            [
                Value::Bool(true),
                Value::Float(2.0),
                Value::Int(7),
                Value::from("b1")
            ]
        );
        let s1 = &sc.steps[1];
        assert_eq!(s1.at, Duration::from_millis(1500));
        assert_eq!(
            s1.set[0],
            SetOp {
                signal: sc.plan.signal("level").unwrap(),
                name: "level".into(),
                value: None,
                quality: Quality::Bad(BadReason::NotConnected),
            }
        );
        assert_eq!(s1.set[1].quality, Quality::Uncertain);
        let e: Vec<_> = s1
            .expect
            .iter()
            .map(|e| (e.name.as_str(), e.value.clone(), e.quality, e.line, e.col))
            .collect();
        assert_eq!(
            e,
            [
                (
                    "run",
                    Some(Expected::Exact(Value::Bool(true))),
                    QualityClass::Good,
                    8,
                    7
                ),
                (
                    "level",
                    Some(Expected::Approx {
                        value: 2.5,
                        tol: 0.1
                    }),
                    QualityClass::Good,
                    9,
                    7
                ),
                ("count", None, QualityClass::Uncertain, 10, 7),
                (
                    "batch",
                    Some(Expected::Exact(Value::from("b1"))),
                    QualityClass::Good,
                    11,
                    7
                ),
            ]
        );
        assert!(sc.steps[2].set.is_empty() && sc.steps[2].expect.is_empty());
        let named = ok("name: my test\nconfig: plant.yaml\nsteps: [{ at: 0s }]\n");
        assert_eq!(named.name, "my test");
    }

    #[test]
    fn structure_errors_have_positions() {
        let d = one_error(
            "config: plant.yaml\nsteps: [{ at: 0s }]\nstep: []\n",
            "unknown-key",
            3,
            1,
        );
        assert!(d.message.contains("did you mean `steps`?"), "{d}");
        one_error("config: plant.yaml\n", "missing-key", 1, 1);
        one_error("steps: [{ at: 0s }]\n", "missing-key", 1, 1);
        one_error("config: plant.yaml\nsteps: []\n", "missing-key", 2, 8);
        one_error(
            "config: plant.yaml\nsteps: { at: 0s }\n",
            "wrong-type",
            2,
            8,
        );
        one_error("", "missing-key", 1, 1);
        one_error("config: plant.yaml\nsteps: [\n", "yaml", 3, 1);
        let d = one_error(
            "config: plant.yaml\nsteps:\n  - { at: 0s, expct: { run: true } }\n",
            "unknown-key",
            3,
            15,
        );
        assert!(d.message.contains("did you mean `expect`?"), "{d}");
        one_error(
            "config: plant.yaml\nsteps:\n  - { set: { start: true } }\n",
            "missing-key",
            3,
            5,
        );
        let d = one_error(
            "config: plant.yaml\nsteps:\n  - { at: 100 }\n",
            "bad-duration",
            3,
            11,
        );
        assert!(d.message.contains("has no unit"), "{d}");
    }

    #[test]
    fn steps_must_not_go_back_in_time() {
        let d = one_error(
            "config: plant.yaml
steps:
  - { at: 1s }
  - { at: 1s }
  - { at: 2s }
  - { at: 1500ms }
",
            "out-of-range",
            6,
            11,
        );
        assert!(
            d.message
                .contains("`at` of step 4 is 1.5s, earlier than the step before it (2s, line 5)"),
            "{d}"
        );
    }

    #[test]
    fn signals_are_checked_against_the_configuration() {
        let d = one_error(
            "config: plant.yaml\nsteps:\n  - { at: 0s, set: { strat: true } }\n",
            "unknown-signal",
            3,
            22,
        );
        assert!(
            d.message.contains(
                "`set` of step 1: no signal `strat` is declared in /s/plant.yaml; did you mean `start`?"
            ),
            "{d}"
        );
        one_error(
            "config: plant.yaml\nsteps:\n  - { at: 0s, expect: { levle: 1 } }\n",
            "unknown-signal",
            3,
            25,
        );
        let d = one_error(
            "config: plant.yaml\nsteps:\n  - { at: 0s, set: { run: true } }\n",
            "multiple-writers",
            3,
            22,
        );
        assert!(d.message.contains("written by block `latch`"), "{d}");
        // Expecting a block output is the point of a scenario.
        ok("config: plant.yaml\nsteps:\n  - { at: 0s, expect: { run: false } }\n");
    }

    #[test]
    fn values_are_typed_like_their_signal() {
        let src = "config: plant.yaml
steps:
  - at: 0s
    set: { start: 1, level: yes, count: 1.5, batch: 3 }
    expect: { start: \"true\", count: 2.0 }
";
        let got: Vec<(usize, usize, &str)> = errors(src)
            .iter()
            .map(|d| (d.line, d.col, d.code))
            .collect();
        assert_eq!(
            got,
            [
                (4, 19, "wrong-type"),
                (4, 29, "wrong-type"),
                (4, 41, "wrong-type"),
                (4, 53, "wrong-type"),
                (5, 22, "wrong-type"),
                (5, 37, "wrong-type"),
            ]
        );
        let d = &errors(src)[0];
        assert_eq!(
            d.to_string(),
            "t.test.yaml:4:19: error[wrong-type]: `start` in `set` of step 1 must be a bool \
             (true or false) like the signal, found an int"
        );
    }

    #[test]
    fn expectation_forms_are_strict() {
        let step = |e: &str| format!("config: plant.yaml\nsteps:\n  - {{ at: 0s, expect: {e} }}\n");
        let d = one_error(
            &step("{ start: { approx: 1, tol: 0 } }"),
            "wrong-type",
            3,
            42,
        );
        assert!(d.message.contains("int and float signals only"), "{d}");
        one_error(&step("{ level: { approx: 1 } }"), "missing-key", 3, 32);
        one_error(
            &step("{ level: { value: 1, tol: 0.1 } }"),
            "bad-value",
            3,
            44,
        );
        one_error(&step("{ level: { tol: 0.1 } }"), "missing-key", 3, 34);
        one_error(
            &step("{ level: { value: 1, approx: 1, tol: 0 } }"),
            "bad-value",
            3,
            44,
        );
        one_error(
            &step("{ level: { approx: 1, tol: -1 } }"),
            "out-of-range",
            3,
            50,
        );
        one_error(
            &step("{ level: { approx: .inf, tol: 1 } }"),
            "out-of-range",
            3,
            42,
        );
        one_error(&step("{ level: {} }"), "missing-key", 3, 32);
        let d = one_error(&step("{ level: { quality: fine } }"), "bad-value", 3, 43);
        assert!(d.message.contains("use `good`, `uncertain`, `bad`"), "{d}");
        // A misspelt `approx`: the key, and the `tol` left without it.
        let errs = errors(&step("{ level: { aprox: 1, tol: 1 } }"));
        let got: Vec<_> = errs.iter().map(|d| (d.code, d.line, d.col)).collect();
        assert_eq!(got, [("unknown-key", 3, 34), ("missing-key", 3, 44)]);
        assert!(
            errs[0].message.contains("did you mean `approx`?"),
            "{}",
            errs[0]
        );
        one_error(
            "config: plant.yaml\nsteps:\n  - { at: 0s, set: { level: { value: 1, tol: 1 } } }\n",
            "unknown-key",
            3,
            41,
        );
    }

    #[test]
    fn every_error_is_reported_at_once() {
        let errs = errors(
            "config: plant.yaml
extra: 1
steps:
  - { at: 2s, set: { nope: 1 } }
  - { at: 1s, expect: { level: true } }
",
        );
        let got: Vec<_> = errs.iter().map(|d| (d.line, d.code)).collect();
        assert_eq!(
            got,
            [
                (2, "unknown-key"),
                (4, "unknown-signal"),
                (5, "out-of-range"),
                (5, "wrong-type")
            ]
        );
    }

    #[test]
    fn configuration_errors_are_the_ones_check_prints() {
        let err =
            parse("config: broken.yaml\nsteps: [{ at: 0s, set: { x: 1 } }]\nbad: 1\n").unwrap_err();
        let ScenarioError::Invalid { config, scenario } = &err else {
            panic!("{err}");
        };
        let config = config.as_ref().expect("the configuration's errors");
        let check = load_config(Path::new("/s/broken.yaml")).unwrap_err();
        assert_eq!(config.to_string(), check.to_string());
        assert!(
            config
                .to_string()
                .starts_with("/s/broken.yaml:3:22: error[bad-value]"),
            "{config}"
        );
        // The scenario's own structure is still checked; its signals cannot be.
        assert_eq!(scenario.len(), 1);
        assert_eq!(
            err.to_string(),
            format!(
                "{check}\nt.test.yaml:3:1: error[unknown-key]: unknown key `bad` in the scenario; known keys: `name`, `config`, `steps`"
            )
        );
        let d = one_error(
            "config: missing.yaml\nsteps: [{ at: 0s }]\n",
            "bad-value",
            1,
            9,
        );
        assert!(
            d.message
                .starts_with("cannot read the configuration /s/missing.yaml: "),
            "{d}"
        );
    }

    #[test]
    fn the_config_path_is_relative_to_the_scenario_file() {
        let dir = std::env::temp_dir().join(format!("petra-scenario-test-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("tests")).unwrap();
        std::fs::write(
            dir.join("plant.yaml"),
            "plant: p\nsignals: [{ name: a, type: int }]\n",
        )
        .unwrap();
        let path = dir.join("tests/a.test.yaml");
        std::fs::write(
            &path,
            "config: ../plant.yaml\nsteps: [{ at: 0s, set: { a: 1 } }]\n",
        )
        .unwrap();
        let sc = load_scenario(&path, &Registry::new()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(sc.plan.config_path, dir.join("tests/../plant.yaml"));
        assert_eq!(sc.name, "a");
        let err = load_scenario(&dir.join("nope.yaml"), &Registry::new()).unwrap_err();
        assert!(err.to_string().starts_with("cannot read "), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn what_an_expectation_accepts() {
        let exact = |v: Value, q| Expectation {
            signal: SignalId::from_index(0),
            name: "x".into(),
            value: Some(Expected::Exact(v)),
            quality: q,
            line: 1,
            col: 1,
        };
        let good = Quality::Good;
        let bad = Quality::Bad(BadReason::InputBad);
        assert!(exact(Value::Float(0.0), QualityClass::Good).check(&sample(-0.0, good)));
        assert!(exact(Value::Float(f64::NAN), QualityClass::Good).check(&sample(f64::NAN, good)));
        assert!(!exact(Value::Float(0.1 + 0.2), QualityClass::Good).check(&sample(0.3, good)));
        assert!(!exact(Value::Bool(true), QualityClass::Good).check(&sample(true, bad)));
        assert!(exact(Value::Bool(true), QualityClass::Bad).check(&sample(true, bad)));
        assert!(exact(Value::from("a"), QualityClass::Good).check(&sample("a", good)));
        let approx = |value, tol| Expected::Approx { value, tol };
        assert!(approx(1.0, 0.5).accepts(&Value::Float(1.5)));
        assert!(!approx(1.0, 0.5).accepts(&Value::Int(0)));
        assert!(approx(1.0, 0.5).accepts(&Value::Int(1)));
        assert!(!approx(1.0, 0.5).accepts(&Value::Float(f64::NAN)));
        let any_bad = Expectation {
            value: None,
            ..exact(Value::Bool(false), QualityClass::Bad)
        };
        assert!(any_bad.check(&sample(3.0, bad)));
        assert_eq!(any_bad.expected_text(), "any value (bad)");
        assert_eq!(
            exact(Value::Float(1.0), QualityClass::Good).expected_text(),
            "1.0 (good)"
        );
        assert_eq!(approx(2.5, 0.01).to_string(), "2.5 ± 0.01");
    }

    #[test]
    fn durations_read_like_a_scenario() {
        let ms = Duration::from_millis;
        assert_eq!(show_duration(Duration::ZERO), "0s");
        assert_eq!(show_duration(ms(490)), "490ms");
        assert_eq!(show_duration(ms(2850)), "2.85s");
        assert_eq!(show_duration(ms(60_000)), "60s");
        assert_eq!(show_duration(ms(7_200_000)), "2h");
        assert_eq!(show_duration(Duration::from_micros(1500)), "1500µs");
    }
}
