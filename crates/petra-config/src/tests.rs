//! Configuration tests: every error kind at its exact line and column, all errors at once, and
//! a full compile into a `Plan`.

use crate::{ConfigError, Diagnostic, Plan, load_str};
use petra_core::{SignalId, Value, ValueType};
use petra_engine::{
    Block, BlockType, BuildCtx, BuildResult, Input, Io, ParamSpec, ParamType, PortSpec, PortType,
    Registry,
};
use std::path::Path;
use std::time::Duration;

struct Nop;
impl Block for Nop {
    fn execute(&mut self, _io: &mut Io<'_>) {}
}

fn build_nop(_: &BuildCtx<'_>) -> BuildResult {
    Ok(Box::new(Nop))
}

const fn port(name: &'static str, ty: PortType, required: bool) -> PortSpec {
    PortSpec {
        name,
        ty,
        required,
        variadic: false,
        doc: "",
    }
}

static TON: BlockType = BlockType {
    name: "TON",
    aliases: &["DELAY_ON"],
    summary: "on delay",
    inputs: &[
        port("in", PortType::Bool, true),
        port("pt", PortType::Time, true),
    ],
    outputs: &[
        port("q", PortType::Bool, false),
        port("et", PortType::Time, false),
    ],
    params: &[],
    build: build_nop,
};

static AND: BlockType = BlockType {
    name: "AND",
    aliases: &[],
    summary: "and",
    inputs: &[PortSpec {
        name: "in",
        ty: PortType::Bool,
        required: true,
        variadic: true,
        doc: "",
    }],
    outputs: &[port("out", PortType::Bool, false)],
    params: &[],
    build: build_nop,
};

/// Refuses an int output fed from a float input.
fn build_add(ctx: &BuildCtx<'_>) -> BuildResult {
    let float_in = ctx.inputs.iter().any(|p| p.ty == Some(ValueType::Float));
    if float_in && ctx.output_type(0) == Some(ValueType::Int) {
        return Err(
            "an int output cannot hold the sum of float inputs; wire a float signal".into(),
        );
    }
    Ok(Box::new(Nop))
}

static ADD: BlockType = BlockType {
    name: "ADD",
    aliases: &[],
    summary: "sum",
    inputs: &[
        port("in1", PortType::Num, true),
        port("in2", PortType::Num, false),
    ],
    outputs: &[port("out", PortType::Num, false)],
    params: &[ParamSpec {
        name: "gain",
        ty: ParamType::Float,
        required: false,
        min: Some(0.0),
        max: Some(100.0),
        doc: "",
    }],
    build: build_add,
};

static PID: BlockType = BlockType {
    name: "PID",
    aliases: &[],
    summary: "pid",
    inputs: &[
        port("pv", PortType::Float, true),
        port("sp", PortType::Float, true),
    ],
    outputs: &[port("out", PortType::Float, false)],
    params: &[
        ParamSpec {
            name: "kp",
            ty: ParamType::Float,
            required: true,
            min: Some(0.0),
            max: None,
            doc: "",
        },
        ParamSpec {
            name: "ti",
            ty: ParamType::Duration,
            required: false,
            min: Some(0.0),
            max: Some(3600.0),
            doc: "",
        },
        ParamSpec {
            name: "mode",
            ty: ParamType::String,
            required: false,
            min: None,
            max: None,
            doc: "",
        },
    ],
    build: build_nop,
};

fn registry() -> Registry {
    let mut r = Registry::new();
    for t in [&TON, &AND, &ADD, &PID] {
        r.register(t).unwrap();
    }
    r
}

fn env(name: &str) -> Option<String> {
    match name {
        "PLANT" => Some("demo".into()),
        "PERIOD" => Some("20ms".into()),
        "PRIO" => Some("7".into()),
        _ => None,
    }
}

pub(crate) fn compile(src: &str) -> Result<Plan, ConfigError> {
    load_str(
        src,
        "plant.yaml",
        Path::new("/etc/petra"),
        &env,
        &registry(),
    )
}

pub(crate) fn errors(src: &str) -> Vec<Diagnostic> {
    match compile(src) {
        Ok(_) => panic!("expected errors, the configuration compiled"),
        Err(ConfigError::Invalid(d)) => d.0,
        Err(e) => panic!("unexpected error {e}"),
    }
}

/// The one error of `src`: its code, line and column.
#[track_caller]
pub(crate) fn one_error(src: &str, code: &str, line: usize, col: usize) -> Diagnostic {
    let errs = errors(src);
    assert_eq!(errs.len(), 1, "expected one error, got:\n{}", show(&errs));
    let d = errs.into_iter().next().unwrap();
    assert_eq!((d.code, d.line, d.col), (code, line, col), "got: {d}");
    d
}

pub(crate) fn show(errs: &[Diagnostic]) -> String {
    errs.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

const HAPPY: &str = r#"plant: ${PLANT}
data_dir: ./var/data
engine: { rt_priority: 50, cpu: 1 }
signals:
  - name: start.button
    type: bool
    write: [operator, admin]
  - name: motor.run
    type: bool
    safe: false
  - name: tank.level
    type: float
    unit: m
    initial: 2
    min: 0
    max: 10
    retain: true
    description: Tank level
  - { name: tank.setpoint, type: float, initial: 5.5 }
  - { name: pump.speed, type: float, safe: 0 }
  - { name: count, type: int }
  - { name: total, type: int }
  - { name: label, type: string, initial: "a $${literal} text" }
tasks:
  - { name: fast, period: "${PERIOD}", priority: 10, watchdog: 50ms }
  - name: slow
    period: 1s
    priority: ${PRIO}
blocks:
  - name: start_delay
    type: TON
    inputs: { in: start.button }
    outputs: { q: motor.run }
    params: { pt: 500ms }
  - name: level_pid
    type: PID
    task: fast
    inputs: { pv: tank.level, sp: tank.setpoint }
    outputs: { out: pump.speed }
    params: { kp: 2, ti: 10s, mode: auto }
  - name: both
    type: AND
    task: slow
    inputs: { in1: start.button, in3: motor.run }
    params: { in2: true }
  - name: sum
    type: ADD
    task: slow
    inputs: { in1: count }
    outputs: { out: total }
"#;

#[test]
fn a_full_configuration_compiles_into_a_plan() {
    let plan = compile(HAPPY).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(plan.plant, "demo");
    assert_eq!(plan.config_path, Path::new("plant.yaml"));
    assert_eq!(plan.data_dir, Path::new("/etc/petra/var/data"));
    assert_eq!(plan.engine.rt_priority, Some(50));
    assert_eq!(plan.engine.cpu, Some(1));

    let id = |n: &str| plan.signal(n).unwrap_or_else(|| panic!("no signal {n}"));
    let names: Vec<&str> = plan.signals.iter().map(|s| s.def.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "start.button",
            "motor.run",
            "tank.level",
            "tank.setpoint",
            "pump.speed",
            "count",
            "total",
            "label"
        ]
    );
    for (i, n) in names.iter().enumerate() {
        assert_eq!(id(n), SignalId::from_index(i));
    }
    assert_eq!(plan.signal("nope"), None);
    let level = &plan.signals[2];
    assert_eq!(level.def.ty, ValueType::Float);
    assert_eq!(level.def.unit.as_deref(), Some("m"));
    assert_eq!(
        level.def.initial,
        Some(Value::Float(2.0)),
        "int literal widened"
    );
    assert_eq!((level.min, level.max), (Some(0.0), Some(10.0)));
    assert!(level.retain);
    assert_eq!(level.description.as_deref(), Some("Tank level"));
    assert_eq!(plan.signals[0].write, ["operator", "admin"]);
    assert!(plan.signals[1].write.is_empty() && !plan.signals[1].retain);
    assert_eq!(
        plan.signals[7].def.initial,
        Some(Value::from("a ${literal} text"))
    );

    let tasks = &plan.program.tasks;
    assert_eq!(tasks.len(), 2);
    assert_eq!(
        (
            tasks[0].name.as_str(),
            tasks[0].period,
            tasks[0].priority,
            tasks[0].watchdog
        ),
        (
            "fast",
            Duration::from_millis(20),
            10,
            Some(Duration::from_millis(50))
        )
    );
    assert_eq!(
        (
            tasks[1].name.as_str(),
            tasks[1].period,
            tasks[1].priority,
            tasks[1].watchdog
        ),
        ("slow", Duration::from_secs(1), 7, None)
    );
    let block_names =
        |t: usize| -> Vec<&str> { tasks[t].blocks.iter().map(|b| b.name.as_str()).collect() };
    // A block without `task` goes to the first task; declaration order is kept.
    assert_eq!(block_names(0), ["start_delay", "level_pid"]);
    assert_eq!(block_names(1), ["both", "sum"]);

    let ton = &tasks[0].blocks[0];
    assert_eq!(ton.type_name, "TON");
    assert_eq!(
        ton.inputs,
        [
            Input::Signal(id("start.button")),
            Input::Const(Value::Int(500))
        ]
    );
    assert_eq!(ton.outputs, [Some(id("motor.run")), None]);
    let pid = &tasks[0].blocks[1];
    assert_eq!(
        pid.inputs,
        [
            Input::Signal(id("tank.level")),
            Input::Signal(id("tank.setpoint"))
        ]
    );
    assert_eq!(pid.outputs, [Some(id("pump.speed"))]);
    let and = &tasks[1].blocks[0];
    assert_eq!(
        and.inputs,
        [
            Input::Signal(id("start.button")),
            Input::Const(Value::Bool(true)),
            Input::Signal(id("motor.run"))
        ]
    );
    assert_eq!(and.outputs, [None]);
    let sum = &tasks[1].blocks[1];
    assert_eq!(sum.inputs, [Input::Signal(id("count")), Input::Open]);
    assert_eq!(sum.outputs, [Some(id("total"))]);

    assert_eq!(
        plan.program.safe_values,
        [
            (id("motor.run"), Value::Bool(false)),
            (id("pump.speed"), Value::Float(0.0))
        ]
    );
    let bus = plan.bus_builder();
    assert_eq!(bus.id("tank.level"), Some(id("tank.level")));
}

#[test]
fn defaults_one_task_main_and_data_dir() {
    let plan = compile("plant: p\n").unwrap();
    assert_eq!(plan.data_dir, Path::new("/etc/petra/data"));
    assert!(plan.signals.is_empty());
    let t = &plan.program.tasks;
    assert_eq!(t.len(), 1);
    assert_eq!(
        (
            t[0].name.as_str(),
            t[0].period,
            t[0].priority,
            t[0].watchdog
        ),
        ("main", Duration::from_millis(100), 0, None)
    );
    assert_eq!(plan.engine, crate::EngineOptions::default());
    let plan = compile("plant: p\ndata_dir: /var/lib/petra\nsignals:\nblocks: []\n").unwrap();
    assert_eq!(plan.data_dir, Path::new("/var/lib/petra"));
}

#[test]
fn diagnostics_print_as_file_line_col_code_message() {
    let d = one_error("plant: demo\nsignal: []\n", "unknown-key", 2, 1);
    assert_eq!(
        d.to_string(),
        "plant.yaml:2:1: error[unknown-key]: unknown key `signal` in the configuration; did you \
         mean `signals`?"
    );
}

// ---- one test per error kind, each at its exact line and column ----

#[test]
fn yaml_syntax_error() {
    let d = one_error("plant: demo\nsignals: [a, b\n", "yaml", 3, 1);
    assert!(d.message.starts_with("YAML syntax error"), "{d}");
    one_error("plant: demo\n---\nplant: other\n", "yaml", 3, 1);
}

#[test]
fn unknown_key_points_at_the_key_with_a_hint() {
    let src = "plant: demo\nsignals:\n  - name: a\n    type: float\n    unti: m\n";
    let d = one_error(src, "unknown-key", 5, 5);
    assert!(
        d.message.contains("signal `a`") && d.message.contains("did you mean `unit`?"),
        "{d}"
    );
}

#[test]
fn missing_key_points_at_the_item() {
    let src = "plant: demo\nsignals:\n  - name: a\n  - name: b\n    type: int\n";
    let d = one_error(src, "missing-key", 3, 5);
    assert_eq!(d.message, "signal `a` needs `type`; add it");
    one_error("signals: []\n", "missing-key", 1, 1);
    one_error("", "missing-key", 1, 1);
}

#[test]
fn wrong_type_points_at_the_value() {
    // YAML 1.2: `yes` is a string, not a bool.
    let src = "plant: demo\nsignals:\n  - { name: a, type: bool, retain: yes }\n";
    let d = one_error(src, "wrong-type", 3, 36);
    assert!(
        d.message
            .contains("`retain` of signal `a` must be true or false"),
        "{d}"
    );
    one_error(
        "plant: demo\nsignals:\n  - { name: a, type: int, initial: 1.5 }\n",
        "wrong-type",
        3,
        36,
    );
    one_error("plant: [demo]\n", "wrong-type", 1, 8);
}

#[test]
fn duplicate_key_points_at_the_second_key() {
    let src = "plant: demo\nsignals:\n  - name: a\n    type: int\n    type: float\n";
    let d = one_error(src, "duplicate-key", 5, 5);
    assert!(d.message.contains("first at line 4"), "{d}");
}

#[test]
fn duplicate_name_points_at_the_second_name() {
    let src = "plant: demo\nsignals:\n  - { name: a, type: int }\n  - { name: a, type: bool }\n";
    let d = one_error(src, "duplicate-name", 4, 13);
    assert!(d.message.contains("already declared at line 3"), "{d}");
    let src = "plant: demo\ntasks:\n  - { name: t, period: 1s }\n  - { name: t, period: 2s }\n";
    one_error(src, "duplicate-name", 4, 13);
}

#[test]
fn bad_name() {
    one_error(
        "plant: demo\nsignals:\n  - { name: 1st, type: int }\n",
        "bad-name",
        3,
        13,
    );
    one_error("plant: my plant\n", "bad-name", 1, 8);
}

#[test]
fn unknown_signal_points_at_the_value() {
    let src = "plant: demo
signals:
  - { name: start, type: bool }
blocks:
  - name: t
    type: TON
    inputs: { in: strat }
    params: { pt: 1s }
";
    let d = one_error(src, "unknown-signal", 7, 19);
    assert!(d.message.contains("did you mean `start`?"), "{d}");
}

#[test]
fn unknown_task() {
    let src = "plant: demo
tasks: [{ name: fast, period: 10ms }]
signals: [{ name: s, type: bool }]
blocks:
  - { name: t, type: TON, task: fats, inputs: { in: s }, params: { pt: 1s } }
";
    let d = one_error(src, "unknown-task", 5, 33);
    assert!(d.message.contains("did you mean `fast`?"), "{d}");
}

#[test]
fn unknown_block_type_lists_close_names() {
    let src = "plant: demo\nblocks:\n  - { name: t, type: TOM }\n";
    let d = one_error(src, "unknown-block-type", 3, 22);
    assert!(d.message.contains("`TON`"), "{d}");
    let d = one_error(
        "plant: demo\nblocks:\n  - { name: t, type: XYZZY_Q }\n",
        "unknown-block-type",
        3,
        22,
    );
    assert!(d.message.contains("known types: `ADD`, `AND`"), "{d}");
    // Aliases are names too.
    compile("plant: demo\nsignals: [{ name: s, type: bool }]\nblocks:\n  - { name: t, type: DELAY_ON, inputs: { in: s }, params: { pt: 1s } }\n").unwrap();
}

const ONE_BOOL: &str = "plant: demo\nsignals: [{ name: s, type: bool }, { name: f, type: float }, { name: i, type: int }]\nblocks:\n";

#[test]
fn unknown_port() {
    let src = format!(
        "{ONE_BOOL}  - {{ name: t, type: TON, inputs: {{ in: s, inn: s }}, params: {{ pt: 1s }} }}\n"
    );
    let d = one_error(&src, "unknown-port", 4, 44);
    assert!(d.message.contains("its inputs are `in`, `pt`"), "{d}");
    let src = format!(
        "{ONE_BOOL}  - {{ name: t, type: TON, inputs: {{ in: s, q: s }}, params: {{ pt: 1s }} }}\n"
    );
    let d = one_error(&src, "unknown-port", 4, 44);
    assert!(d.message.contains("is an output"), "{d}");
}

#[test]
fn unknown_param() {
    let src = format!(
        "{ONE_BOOL}  - {{ name: a, type: ADD, inputs: {{ in1: f }}, params: {{ gian: 2 }} }}\n"
    );
    let d = one_error(&src, "unknown-param", 4, 57);
    assert!(d.message.contains("did you mean `gain`?"), "{d}");
}

#[test]
fn missing_input_points_at_the_block() {
    let src = format!("{ONE_BOOL}  - name: t\n    type: TON\n    inputs: {{ in: s }}\n");
    let d = one_error(&src, "missing-input", 4, 5);
    assert!(d.message.contains("needs input `pt`"), "{d}");
}

#[test]
fn variadic_inputs_are_numbered_without_gaps() {
    let gap = format!("{ONE_BOOL}  - {{ name: g, type: AND, inputs: {{ in1: s, in3: s }} }}\n");
    let d = one_error(&gap, "missing-input", 4, 5);
    assert!(d.message.contains("`in2`"), "{d}");
    let single = format!("{ONE_BOOL}  - {{ name: g, type: AND, inputs: {{ in1: s }} }}\n");
    one_error(&single, "missing-input", 4, 5);
    let bare =
        format!("{ONE_BOOL}  - {{ name: g, type: AND, inputs: {{ in: s, in1: s, in2: s }} }}\n");
    one_error(&bare, "unknown-port", 4, 37);
    let many: String = (1..=17).map(|i| format!("in{i}: s, ")).collect();
    let too_many = format!("{ONE_BOOL}  - {{ name: g, type: AND, inputs: {{ {many} }} }}\n");
    let d = one_error(
        &too_many,
        "out-of-range",
        4,
        37 + many.find("in17").unwrap(),
    );
    assert!(d.message.contains("at most 16"), "{d}");
}

#[test]
fn wired_and_constant_at_once_is_an_error() {
    let src = format!(
        "{ONE_BOOL}  - {{ name: t, type: TON, inputs: {{ in: s, pt: i }}, params: {{ pt: 1s }} }}\n"
    );
    let d = one_error(&src, "duplicate-key", 4, 63);
    assert!(d.message.contains("both wired"), "{d}");
}

#[test]
fn type_mismatch_names_port_and_signal() {
    let src = format!(
        "{ONE_BOOL}  - {{ name: t, type: TON, inputs: {{ in: f }}, params: {{ pt: 1s }} }}\n"
    );
    let d = one_error(&src, "type-mismatch", 4, 41);
    assert_eq!(
        d.message,
        "input `in` of block `t` (TON) takes bool, but signal `f` is float; wire a signal of that type"
    );
    // Outputs: a bool port cannot drive a float signal; a constant must fit the port too.
    let src = format!(
        "{ONE_BOOL}  - {{ name: t, type: TON, inputs: {{ in: s }}, outputs: {{ q: f }}, params: {{ pt: 1s }} }}\n"
    );
    one_error(&src, "type-mismatch", 4, 60);
    let src = format!("{ONE_BOOL}  - {{ name: t, type: TON, params: {{ in: 1, pt: 1s }} }}\n");
    one_error(&src, "type-mismatch", 4, 41);
}

#[test]
fn out_of_range() {
    let src = format!(
        "{ONE_BOOL}  - {{ name: a, type: ADD, inputs: {{ in1: f }}, params: {{ gain: 200 }} }}\n"
    );
    let d = one_error(&src, "out-of-range", 4, 63);
    assert!(d.message.contains("between 0 and 100"), "{d}");
    one_error(
        "plant: demo\ntasks:\n  - { name: t, period: 2h }\n",
        "out-of-range",
        3,
        24,
    );
    one_error(
        "plant: demo\nengine:\n  rt_priority: 100\n",
        "out-of-range",
        3,
        16,
    );
    let src = "plant: demo\nsignals:\n  - { name: a, type: float, min: 0, max: 10, initial: 11 }\n";
    one_error(src, "out-of-range", 3, 55);
}

#[test]
fn bad_duration_has_a_hint() {
    let d = one_error(
        "plant: demo\ntasks:\n  - name: t\n    period: 100\n",
        "bad-duration",
        4,
        13,
    );
    assert!(d.message.contains("write 500ms or 2s"), "{d}");
    let src = format!(
        "{ONE_BOOL}  - {{ name: t, type: TON, inputs: {{ in: s }}, params: {{ pt: 5 mins }} }}\n"
    );
    one_error(&src, "bad-duration", 4, 60);
}

#[test]
fn env_unset_points_at_the_value_and_never_prints_values() {
    let d = one_error("plant: demo\ndata_dir: ${HOME_DIR}/x\n", "env-unset", 2, 11);
    assert!(d.message.contains("`HOME_DIR`"), "{d}");
    let d = one_error("plant: \"${NOPE_A}${NOPE_B}\"\n", "env-unset", 1, 8);
    assert!(d.message.contains("`NOPE_A`, `NOPE_B`"), "{d}");
    // A value that came from the environment is shown as written, never expanded.
    let secret = |n: &str| (n == "SECRET").then(|| "hunter 2".to_string());
    let err = load_str(
        "plant: ${SECRET}\n",
        "p.yaml",
        Path::new("."),
        &secret,
        &registry(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("bad-name") && err.contains("${SECRET}") && !err.contains("hunter"),
        "{err}"
    );
    one_error("plant: ${UNCLOSED\n", "bad-value", 1, 8);
}

#[test]
fn multiple_writers_points_at_the_second() {
    let src = "plant: demo
signals: [{ name: s, type: bool }, { name: q, type: bool }]
tasks: [{ name: a, period: 10ms }, { name: b, period: 1s }]
blocks:
  - { name: t1, type: TON, inputs: { in: s }, outputs: { q: q }, params: { pt: 1s } }
  - name: t2
    type: TON
    task: b
    inputs: { in: s }
    outputs: { q: q }
    params: { pt: 1s }
";
    let d = one_error(src, "multiple-writers", 10, 19);
    assert!(
        d.message.contains("already written by block `t1` (line 5)"),
        "{d}"
    );
}

#[test]
fn a_block_output_cannot_also_be_writable_from_outside() {
    let src = "plant: demo
signals:
  - { name: s, type: bool }
  - { name: q, type: bool, write: [operator, mqtt] }
blocks:
  - { name: t1, type: TON, inputs: { in: s }, outputs: { q: q }, params: { pt: 1s } }
";
    let d = one_error(src, "multiple-writers", 6, 61);
    assert!(
        d.message
            .contains("written by block `t1` and also writable from outside")
            && d.message.contains("operator, mqtt"),
        "{d}"
    );
}

#[test]
fn cycle_names_every_block_at_the_first() {
    let src = "plant: demo
signals: [{ name: a, type: bool }, { name: b, type: bool }, { name: c, type: bool }]
tasks: [{ name: t, period: 10ms }, { name: u, period: 10ms }]
blocks:
  - { name: x, type: AND, inputs: { in1: c, in2: c }, outputs: { out: a } }
  - { name: y, type: AND, inputs: { in1: a, in2: a }, outputs: { out: b } }
  - { name: z, type: AND, inputs: { in1: b, in2: b }, outputs: { out: c } }
  - { name: w, type: AND, task: u, inputs: { in1: b, in2: c }, outputs: { out: a } }
";
    let errs = errors(src);
    let cycles: Vec<&Diagnostic> = errs.iter().filter(|d| d.code == "cycle").collect();
    assert_eq!(cycles.len(), 1, "{}", show(&errs));
    let d = cycles[0];
    assert_eq!((d.line, d.col), (5, 5));
    assert!(
        d.message.contains("`x` → `y` → `z` → `x`") && d.message.contains("task `t`"),
        "{d}"
    );
    // The same three blocks split over two tasks are fine (the one writer rule aside).
    let ok = src.replace("  - { name: w, type: AND, task: u, inputs: { in1: b, in2: c }, outputs: { out: a } }\n", "")
        .replace("{ name: z, type: AND,", "{ name: z, type: AND, task: u,");
    compile(&ok).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn invalid_block_points_at_the_type() {
    let src = format!(
        "{ONE_BOOL}  - name: a\n    type: ADD\n    inputs: {{ in1: f }}\n    outputs: {{ out: i }}\n"
    );
    let d = one_error(&src, "invalid-block", 5, 11);
    assert!(
        d.message.starts_with("block `a` (ADD): an int output"),
        "{d}"
    );
}

#[test]
fn alarms_and_notify_sections_are_read_not_refused() {
    // An empty `alarms` is no alarm; an empty `notify` says what it needs (details in
    // tests_alarms.rs).
    let src = "plant: demo\nalarms: []\nnotify: {}\n";
    let errs = errors(src);
    let got: Vec<(&str, usize, usize)> = errs.iter().map(|d| (d.code, d.line, d.col)).collect();
    assert_eq!(
        got,
        [
            ("missing-key", 3, 9),
            ("missing-key", 3, 9),
            ("missing-key", 3, 9)
        ],
        "{}",
        show(&errs)
    );
    assert_eq!(errs[0].message, "`notify` needs `twilio`; add it");
    let plan = compile("plant: demo\nalarms: []\n").unwrap_or_else(|e| panic!("{e}"));
    assert!(plan.alarms.is_empty() && plan.notify.is_none());
}

#[test]
fn bad_values_roles_types_and_safe_without_watchdog() {
    let d = one_error(
        "plant: demo\nsignals:\n  - { name: a, type: bool, write: [operater] }\n",
        "bad-value",
        3,
        36,
    );
    assert!(d.message.contains("did you mean `operator`?"), "{d}");
    one_error(
        "plant: demo\nsignals:\n  - { name: a, type: double }\n",
        "bad-value",
        3,
        22,
    );
    // `safe` on a signal no block writes.
    one_error(
        "plant: demo\nsignals:\n  - { name: a, type: bool, safe: true }\n",
        "bad-value",
        3,
        28,
    );
    // `safe` on a signal written from a task without a watchdog.
    let src = "plant: demo\nsignals:\n  - { name: s, type: bool }\n  - { name: q, type: bool, safe: false }\nblocks:\n  - { name: t, type: TON, inputs: { in: s }, outputs: { q: q }, params: { pt: 1s } }\n";
    let d = one_error(src, "bad-value", 4, 28);
    assert!(
        d.message.contains("task `main`, which has no `watchdog`"),
        "{d}"
    );
}

#[test]
fn every_error_is_reported_at_once_sorted() {
    let src = "plant: demo
signals:
  - { name: a, type: bool }
  - { name: a, type: int }
  - { name: f, type: float, min: 5, max: 1 }
tasks:
  - { name: fast, period: 10 }
blocks:
  - { name: t, type: TON, task: slow, inputs: { in: nope }, params: { pt: 1s } }
  - { name: u, type: TOM }
alarms: [{ name: hi, signal: f }]
colour: red
";
    let errs = errors(src);
    let got: Vec<(&str, usize, usize)> = errs.iter().map(|d| (d.code, d.line, d.col)).collect();
    assert_eq!(
        got,
        [
            ("duplicate-name", 4, 13),
            ("out-of-range", 5, 42),
            ("bad-duration", 7, 27),
            ("unknown-task", 9, 33),
            ("unknown-signal", 9, 53),
            ("unknown-block-type", 10, 22),
            ("missing-key", 11, 10),
            ("unknown-key", 12, 1),
        ],
        "{}",
        show(&errs)
    );
    let text = match compile(src) {
        Err(e) => e.to_string(),
        Ok(_) => unreachable!(),
    };
    assert_eq!(text.lines().count(), 8);
    assert!(
        text.starts_with("plant.yaml:4:13: error[duplicate-name]: "),
        "{text}"
    );
}

#[test]
fn load_reads_the_file_and_resolves_paths_against_its_directory() {
    let dir = std::env::temp_dir().join(format!("petra-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("plant.yaml");
    std::fs::write(&path, "plant: demo\ndata_dir: state\n").unwrap();
    let plan = crate::load(&path, &registry()).unwrap();
    assert_eq!(plan.data_dir, dir.join("state"));
    assert_eq!(plan.config_path, path);
    std::fs::write(&path, "plant: demo\nplant: again\n").unwrap();
    let err = crate::load(&path, &registry()).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("{}:2:1: error[duplicate-key]", path.display())),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
    let err = crate::load(&dir.join("missing.yaml"), &registry()).unwrap_err();
    assert!(matches!(err, ConfigError::Io { .. }), "{err}");
    assert!(err.to_string().starts_with("cannot read "), "{err}");
}

#[test]
fn anchors_and_aliases_are_expanded() {
    let src = "plant: demo
signals:
  - &flt { name: a, type: float, min: 0, max: 10 }
  - { name: b, type: float }
tasks:
  - { name: t, period: &p 20ms }
  - { name: u, period: *p }
";
    let plan = compile(src).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(plan.program.tasks[1].period, Duration::from_millis(20));
    // An alias of a whole signal is a duplicate name, reported at the alias.
    let dup = src.replace("  - { name: b, type: float }", "  - *flt");
    one_error(&dup, "duplicate-name", 4, 5);
}

#[test]
fn structural_errors() {
    one_error("- plant\n", "wrong-type", 1, 1);
    let d = one_error("plant: demo\ntasks: []\n", "missing-key", 2, 8);
    assert!(d.message.contains("remove `tasks`"), "{d}");
    one_error("plant: demo\nsignals: {}\n", "wrong-type", 2, 10);
    one_error("plant: demo\nwatchdog: 0s\n", "unknown-key", 2, 1);
    one_error(
        "plant: demo\ntasks: [{ name: t, period: 1s, watchdog: 0s }]\n",
        "out-of-range",
        2,
        42,
    );
    one_error("plant: demo\nengine: { cpu: -1 }\n", "out-of-range", 2, 16);
    one_error("plant: !!int demo\n", "wrong-type", 1, 8);
}

#[test]
fn server_section_resolves_paths_and_has_defaults() {
    let src = "plant: demo
data_dir: var
server:
  listen: 0.0.0.0:8443
  tls: { cert: certs/server.pem, key: /secure/server.key }
  users_file: users.yaml
  audit_log: /var/log/petra/audit.jsonl
  token_ttl: 30m
";
    let plan = compile(src).unwrap_or_else(|e| panic!("{e}"));
    let s = plan.server.expect("a server plan");
    assert_eq!(s.listen, "0.0.0.0:8443".parse().unwrap());
    let tls = s.tls.expect("tls");
    assert_eq!(tls.cert, Path::new("/etc/petra/certs/server.pem"));
    assert_eq!(tls.key, Path::new("/secure/server.key"));
    assert_eq!(s.users_file, Path::new("/etc/petra/var/users.yaml"));
    assert_eq!(
        s.audit_log.as_deref(),
        Some(Path::new("/var/log/petra/audit.jsonl"))
    );
    assert_eq!(s.token_ttl, Duration::from_secs(30 * 60));

    let plan = compile("plant: demo\nserver: {}\n").unwrap_or_else(|e| panic!("{e}"));
    let s = plan.server.expect("a server plan");
    assert_eq!(s.listen, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(s.tls, None);
    assert_eq!(s.users_file, Path::new("/etc/petra/data/users.json"));
    assert_eq!(
        s.audit_log.as_deref(),
        Some(Path::new("/etc/petra/data/audit.jsonl"))
    );
    assert_eq!(s.token_ttl, Duration::from_secs(8 * 3600));
    // `server:` with nothing under it is the same.
    assert!(compile("plant: demo\nserver:\n").unwrap().server.is_some());
    assert!(compile("plant: demo\n").unwrap().server.is_none());
    // IPv6 loopback needs no TLS.
    compile("plant: demo\nserver: { listen: \"[::1]:9000\" }\n").unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn server_refuses_a_non_loopback_listen_without_tls() {
    let d = one_error(
        "plant: demo\nserver:\n  listen: 0.0.0.0:8080\n",
        "insecure-listen",
        3,
        11,
    );
    assert!(d.message.contains("0.0.0.0:8080"), "{d}");
    assert!(d.message.contains("add `tls:"), "{d}");
    one_error(
        "plant: demo\nserver: { listen: \"[::]:8080\" }\n",
        "insecure-listen",
        2,
        19,
    );
}

#[test]
fn server_errors_at_their_positions() {
    let d = one_error(
        "plant: demo\nserver:\n  listen: localhost:8080\n",
        "bad-value",
        3,
        11,
    );
    assert!(d.message.contains("such as 127.0.0.1:8080"), "{d}");
    one_error(
        "plant: demo\nserver:\n  token_ttl: 10s\n",
        "out-of-range",
        3,
        14,
    );
    one_error(
        "plant: demo\nserver:\n  token_ttl: 8\n",
        "bad-duration",
        3,
        14,
    );
    let d = one_error(
        "plant: demo\nserver:\n  user_file: u.json\n",
        "unknown-key",
        3,
        3,
    );
    assert!(d.message.contains("did you mean `users_file`?"), "{d}");
    one_error(
        "plant: demo\nserver:\n  tls: { cert: a.pem }\n",
        "missing-key",
        3,
        8,
    );
    one_error(
        "plant: demo\nserver:\n  audit_log: \"\"\n",
        "bad-value",
        3,
        14,
    );
}
