//! `petra bench scan`: a synthetic engine load on the real scan thread.
//!
//! The load is an ordinary configuration, generated and compiled through the same path as a
//! user's file: `--signals` float/bool signals, `--blocks` blocks cycling through ADD (chained
//! four apart, so the dependency order matters), GT, AND and MOVE, all in one task. The engine
//! runs on its dedicated thread for `--duration`; the report has the scan time and jitter
//! percentiles from the engine's own HDR histograms, the overrun count and the process RSS.
//!
//! With `--alarms N`, N alarms watch the inputs and outputs (high, low, equals and bad-quality
//! conditions in turn, with deadbands and delays, none of them active) and run exactly as in
//! `petra run`: evaluated on the scan thread after the task, with the alarm manager's thread
//! and state file (in a temporary directory) behind them. Their cost is in the scan time.

use crate::alarms::{AlarmManager, AlarmPlan, Outputs, assign_tasks};
use crate::rt;
use anyhow::{anyhow, bail};
use petra_core::{Clock, SystemClock};
use petra_engine::Engine;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

#[derive(clap::Args)]
pub struct ScanArgs {
    /// Number of signals (at least blocks + 2).
    #[arg(long, default_value_t = 10_000)]
    signals: usize,
    /// Number of blocks.
    #[arg(long, default_value_t = 1_000)]
    blocks: usize,
    /// Task period (1ms..1h).
    #[arg(long, default_value = "10ms", value_parser = crate::duration)]
    period: Duration,
    /// How long to run.
    #[arg(long, default_value = "10s", value_parser = crate::duration)]
    duration: Duration,
    /// SCHED_FIFO priority for the scan thread (1-99; needs root or CAP_SYS_NICE).
    #[arg(long)]
    rt_priority: Option<u8>,
    /// CPU to pin the scan thread to.
    #[arg(long)]
    cpu: Option<usize>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Also recompile the configuration and hot-reload it this often while the load runs,
    /// reporting how long each swap held the scan thread.
    #[arg(long, value_parser = crate::duration)]
    reload_every: Option<Duration>,
    /// Alarm conditions evaluated after the task every scan (see the module doc).
    #[arg(long, default_value_t = 0)]
    alarms: usize,
    /// How long before each deadline the scan thread wakes to bring the scan's state into the
    /// cache; 0s turns it off (to measure what it buys).
    #[arg(long, value_parser = crate::duration)]
    warm_ahead: Option<Duration>,
}

/// The synthetic configuration (see the module doc).
pub fn synthetic_config(
    signals: usize,
    blocks: usize,
    period: Duration,
    alarms: usize,
) -> anyhow::Result<String> {
    if signals < blocks + 2 {
        bail!("--signals must be at least --blocks + 2 (each block writes its own signal)");
    }
    let inputs = signals - blocks;
    let mut y = String::new();
    writeln!(y, "plant: bench")?;
    writeln!(
        y,
        "tasks:\n  - {{ name: bench, period: {}ms }}",
        period.as_millis().max(1)
    )?;
    writeln!(y, "signals:")?;
    for j in 0..inputs {
        writeln!(y, "  - {{ name: x{j}, type: float, initial: {j}.0 }}")?;
    }
    let kind = |i: usize| i % 4;
    for i in 0..blocks {
        let ty = if matches!(kind(i), 1 | 2) {
            "bool"
        } else {
            "float"
        };
        let initial = if ty == "bool" { "false" } else { "0.0" };
        writeln!(y, "  - {{ name: o{i}, type: {ty}, initial: {initial} }}")?;
    }
    writeln!(y, "blocks:")?;
    for i in 0..blocks {
        let x = |k: usize| format!("x{}", (i + k) % inputs);
        let line = match kind(i) {
            0 => {
                let second = if i >= 4 { format!("o{}", i - 4) } else { x(1) };
                format!(
                    "type: ADD, inputs: {{ in1: {}, in2: {second} }}, outputs: {{ out: o{i} }}",
                    x(0)
                )
            }
            1 => format!(
                "type: GT, inputs: {{ in1: o{}, in2: {} }}, outputs: {{ out: o{i} }}",
                i - 1,
                x(0)
            ),
            2 => format!(
                "type: AND, inputs: {{ in1: o{} }}, params: {{ in2: true }}, outputs: {{ out: o{i} }}",
                i - 1
            ),
            _ => format!(
                "type: MOVE, inputs: {{ in: {} }}, outputs: {{ out: o{i} }}",
                x(0)
            ),
        };
        writeln!(y, "  - {{ name: b{i}, {line} }}")?;
    }
    if alarms > 0 {
        writeln!(y, "alarms:")?;
    }
    for a in 0..alarms {
        // Inputs hold j.0 for ever; ADD outputs grow with their chain, GT/AND outputs are bool.
        let cond = match a % 4 {
            0 => format!(
                "signal: x{}, high: 1.0e9, deadband: 0.5, on_delay: 1s",
                a % inputs
            ),
            1 => format!(
                "signal: x{}, low: -1.0, deadband: 0.5, off_delay: 1s",
                a % inputs
            ),
            2 => format!("signal: o{}, bad_quality: true", (a / 4) % blocks.max(1)),
            _ => match (a / 4) % blocks.max(1) {
                b if matches!(kind(b), 1 | 2) => format!("signal: o{b}, equals: true, latch: true"),
                b => format!("signal: o{b}, high: 1.0e12, priority: high"),
            },
        };
        writeln!(y, "  - {{ name: al{a}, {cond} }}")?;
    }
    Ok(y)
}

/// Resident set size of this process, from /proc (Linux).
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

pub fn scan(args: &ScanArgs) -> anyhow::Result<()> {
    let yaml = synthetic_config(args.signals, args.blocks, args.period, args.alarms)?;
    let registry = petra_blocks::builtin();
    let env = |_: &str| None;
    let plan = petra_config::load_str(&yaml, "<bench>", Path::new("."), &env, &registry)
        .map_err(|e| anyhow!("the synthetic configuration does not compile:\n{e}"))?;
    let clock = std::sync::Arc::new(SystemClock::new());
    let bus = plan.bus_builder().build(clock.wall());
    // The alarm state file goes to a directory of this run, removed at the end.
    let alarm_dir = std::env::temp_dir().join(format!("petra-bench-{}", std::process::id()));
    std::fs::create_dir_all(&alarm_dir)?;
    let mut alarms = AlarmManager::start(
        AlarmPlan {
            tasks: assign_tasks(&plan.alarms, &plan.program),
            defs: plan.alarms,
            notify: None,
        },
        bus.clone(),
        clock.clone(),
        &alarm_dir,
        Outputs {
            api: Default::default(),
            board: None,
            history: Default::default(),
        },
    )?;
    let mut engine = Engine::new(plan.program, bus, clock)?;
    if let Some(hook) = alarms.take_hook() {
        engine.set_hook(hook);
    }
    if let Some(ahead) = args.warm_ahead {
        engine.set_warm_ahead(ahead);
    }
    let handle = engine.spawn(rt::setup(args.rt_priority, args.cpu))?;
    let started = std::time::Instant::now();
    let mut swaps = Vec::new();
    match args.reload_every {
        None => std::thread::sleep(args.duration),
        Some(every) => {
            let mut compile = Duration::ZERO;
            while started.elapsed() + every + compile < args.duration {
                std::thread::sleep(every);
                let compiling = std::time::Instant::now();
                // Compile off the scan thread, exactly as `petra run` does on SIGHUP.
                let plan =
                    petra_config::load_str(&yaml, "<bench>", Path::new("."), &env, &registry)
                        .map_err(|e| {
                            anyhow!("the synthetic configuration does not compile:\n{e}")
                        })?;
                let engine = Engine::new(plan.program, handle.bus(), handle.clock())?;
                compile = compiling.elapsed();
                swaps.push(handle.reload(engine)?.swap);
            }
            std::thread::sleep(args.duration.saturating_sub(started.elapsed()));
        }
    }
    let stats = handle.stats();
    handle.stop()?;
    alarms.stop();
    let _ = std::fs::remove_dir_all(&alarm_dir);
    let swap_max = swaps.iter().max().copied().unwrap_or_default();
    let s = stats.tasks[0].snapshot();
    let rss = rss_bytes();
    let us = |ns: u64| ns as f64 / 1000.0;
    if args.json {
        let mut out = serde_json::json!({
            "scans": s.scans,
            "overruns": s.overruns,
            "period_us": args.period.as_micros() as u64,
            "scan_us": {"p50": us(s.scan.p50), "p99": us(s.scan.p99), "max": us(s.scan.max)},
            "jitter_us": {"p50": us(s.jitter.p50), "p99": us(s.jitter.p99), "max": us(s.jitter.max)},
            "rss_bytes": rss,
            "alarms": args.alarms,
        });
        if args.reload_every.is_some() {
            out["reloads"] = swaps.len().into();
            out["reload_swap_us"] = serde_json::json!({"max": us(swap_max.as_nanos() as u64)});
        }
        println!("{out}");
    } else {
        println!(
            "{} signals, {} blocks, {} alarms, period {:?}, {:?}",
            args.signals, args.blocks, args.alarms, args.period, args.duration
        );
        println!("scans     {}", s.scans);
        println!("overruns  {}", s.overruns);
        println!(
            "scan      p50 {:.1}µs  p99 {:.1}µs  max {:.1}µs  ({:.1} ns/block at p50)",
            us(s.scan.p50),
            us(s.scan.p99),
            us(s.scan.max),
            s.scan.p50 as f64 / args.blocks.max(1) as f64
        );
        println!(
            "jitter    p50 {:.1}µs  p99 {:.1}µs  max {:.1}µs",
            us(s.jitter.p50),
            us(s.jitter.p99),
            us(s.jitter.max)
        );
        println!("rss       {:.1} MiB", rss as f64 / (1024.0 * 1024.0));
        if args.reload_every.is_some() {
            println!(
                "reloads   {} (longest swap {:.1}µs)",
                swaps.len(),
                us(swap_max.as_nanos() as u64)
            );
        }
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct BlocksArgs {
    /// Instances of each block type in the scan.
    #[arg(long, default_value_t = 10_000)]
    count: usize,
    /// Scans measured per type (after 20 warm-up scans).
    #[arg(long, default_value_t = 200)]
    scans: usize,
    /// Only these block types (default: every built-in).
    #[arg(long = "type")]
    types: Vec<String>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

/// Parameters a block type needs beyond what its spec's types can default.
fn param_overrides(ty: &str) -> &'static str {
    match ty {
        "SCALE" => "in_min: 0.0, in_max: 100.0, out_min: 0.0, out_max: 1.0",
        "EXPR" => "expr: \"a * 2.0 + b / 4.0\"",
        _ => "",
    }
}

/// Input signals shared by all instances (the bench changes them every scan), by type.
const POOL: usize = 8;

/// A configuration of `count` instances of `t`: required inputs wired to a small pool of
/// signals of the port's type, time inputs given as a constant, outputs to signals of their
/// own, required parameters given typical values.
fn one_type_config(t: &petra_engine::BlockType, count: usize) -> String {
    use petra_engine::{ParamType, PortType};
    let signal_type = |p: PortType| match p {
        PortType::Bool => "bool",
        PortType::Int | PortType::Time => "int",
        PortType::String => "string",
        PortType::Float | PortType::Num | PortType::Any => "float",
    };
    let mut y = String::from("plant: bench\ntasks: [{ name: bench, period: 10ms }]\nsignals:\n");
    for ty in ["bool", "int", "float", "string"] {
        for k in 0..POOL {
            let init = match ty {
                "bool" => "false".to_string(),
                "int" => k.to_string(),
                "float" => format!("{k}.5"),
                _ => "\"\"".to_string(),
            };
            y.push_str(&format!(
                "  - {{ name: {ty}{k}, type: {ty}, initial: {init} }}\n"
            ));
        }
    }
    for i in 0..count {
        for o in t.outputs {
            let ty = signal_type(o.ty);
            y.push_str(&format!("  - {{ name: o{i}.{}, type: {ty} }}\n", o.name));
        }
    }
    y.push_str("blocks:\n");
    let expr_vars = t.name == "EXPR";
    for i in 0..count {
        let (mut inputs, mut params) = (Vec::new(), Vec::new());
        for p in t.inputs {
            let wire = |name: String| format!("{name}: {}{}", signal_type(p.ty), i % POOL);
            if p.ty == PortType::Time {
                params.push(format!("{}: 500ms", p.name));
            } else if p.variadic {
                inputs.push(wire(format!("{}1", p.name)));
                inputs.push(wire(format!("{}2", p.name)));
            } else if p.required || (expr_vars && matches!(p.name, "a" | "b")) {
                inputs.push(wire(p.name.to_string()));
            }
        }
        for p in t.params.iter().filter(|p| p.required) {
            if param_overrides(t.name).contains(p.name) {
                continue;
            }
            params.push(format!(
                "{}: {}",
                p.name,
                match p.ty {
                    ParamType::Bool => "false",
                    ParamType::Int => "1",
                    ParamType::Float => "1.0",
                    ParamType::Duration => "1s",
                    ParamType::String => "\"\"",
                }
            ));
        }
        if !param_overrides(t.name).is_empty() {
            params.push(param_overrides(t.name).to_string());
        }
        let outputs: Vec<String> = t
            .outputs
            .iter()
            .map(|o| format!("{}: o{i}.{}", o.name, o.name))
            .collect();
        y.push_str(&format!(
            "  - {{ name: b{i}, type: {}, inputs: {{ {} }}, outputs: {{ {} }}, params: {{ {} }} }}\n",
            t.name,
            inputs.join(", "),
            outputs.join(", "),
            params.join(", ")
        ));
    }
    y
}

/// Per-block cost of each block type: `count` instances in one task, run in virtual time (no
/// sleeping between scans, so caches stay warm: this is the CPU cost of the block itself plus
/// its share of latching and committing).
pub fn blocks(args: &BlocksArgs) -> anyhow::Result<()> {
    use petra_core::{MonoTime, Quality, SignalId, Timestamp, Value, VirtualClock};
    let registry = petra_blocks::builtin();
    let env = |_: &str| None;
    let mut rows = Vec::new();
    let chosen: Vec<_> = registry
        .types()
        .iter()
        .filter(|t| args.types.is_empty() || args.types.iter().any(|n| n == t.name))
        .collect();
    // The first type measured runs twice and its first figures are dropped: the process's
    // first large allocations and a CPU that was idle made the first type ~2x slower.
    for (k, t) in chosen.first().into_iter().chain(&chosen).enumerate() {
        let warm_up = k == 0;
        let yaml = one_type_config(t, args.count);
        let plan = match petra_config::load_str(&yaml, "<bench>", Path::new("."), &env, &registry) {
            Ok(p) => p,
            Err(_) if warm_up => continue,
            Err(e) => {
                let first = e.to_string().lines().next().unwrap_or("").to_string();
                rows.push(serde_json::json!({"type": t.name, "error": first}));
                continue;
            }
        };
        let clock = std::sync::Arc::new(VirtualClock::new(Timestamp::default()));
        let bus = plan.bus_builder().build(clock.wall());
        let pool: Vec<SignalId> = ["bool", "int", "float"]
            .iter()
            .flat_map(|ty| (0..POOL).map(move |k| format!("{ty}{k}")))
            .filter_map(|n| bus.id(&n))
            .collect();
        let mut engine = Engine::new(plan.program, bus.clone(), clock.clone())?;
        let mut times = Vec::with_capacity(args.scans);
        for scan in 0..args.scans + 20 {
            // Inputs change every scan, as a driver would make them.
            for id in &pool {
                let v = match bus.read(*id).map(|s| s.value) {
                    Some(Value::Bool(b)) => Value::Bool(!b),
                    Some(Value::Int(i)) => Value::Int(i.wrapping_add(1) % 1000),
                    Some(Value::Float(f)) => Value::Float((f + 0.37) % 50.0),
                    _ => continue,
                };
                bus.write(*id, v, Quality::Good, clock.wall())?;
            }
            clock.set(MonoTime::from_nanos(scan as u64 * 10_000_000));
            let started = std::time::Instant::now();
            engine.run_due();
            if scan >= 20 {
                times.push(started.elapsed().as_nanos() as u64);
            }
        }
        if warm_up {
            continue;
        }
        times.sort_unstable();
        let per_block = |q: f64| {
            times[((times.len() - 1) as f64 * q) as usize] as f64 / args.count.max(1) as f64
        };
        rows.push(serde_json::json!({
            "type": t.name,
            "ns_per_block": {"p50": per_block(0.5), "p99": per_block(0.99)},
        }));
    }
    if args.json {
        println!(
            "{}",
            serde_json::json!({"count": args.count, "scans": args.scans, "blocks": rows})
        );
    } else {
        println!(
            "{} instances per type, {} scans each, ns per block:",
            args.count, args.scans
        );
        println!("{:<16} {:>8} {:>8}", "type", "p50", "p99");
        for r in &rows {
            match r.get("error") {
                Some(e) => println!(
                    "{:<16} not measured: {}",
                    r["type"].as_str().unwrap_or(""),
                    e
                ),
                None => println!(
                    "{:<16} {:>8.1} {:>8.1}",
                    r["type"].as_str().unwrap_or(""),
                    r["ns_per_block"]["p50"].as_f64().unwrap_or(0.0),
                    r["ns_per_block"]["p99"].as_f64().unwrap_or(0.0)
                ),
            }
        }
    }
    Ok(())
}
