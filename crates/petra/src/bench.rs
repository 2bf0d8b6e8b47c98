//! `petra bench scan`: a synthetic engine load on the real scan thread.
//!
//! The load is an ordinary configuration, generated and compiled through the same path as a
//! user's file: `--signals` float/bool signals, `--blocks` blocks cycling through ADD (chained
//! four apart, so the dependency order matters), GT, AND and MOVE, all in one task. The engine
//! runs on its dedicated thread for `--duration`; the report has the scan time and jitter
//! percentiles from the engine's own HDR histograms, the overrun count and the process RSS.

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
}

/// The synthetic configuration (see the module doc).
pub fn synthetic_config(signals: usize, blocks: usize, period: Duration) -> anyhow::Result<String> {
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
    let yaml = synthetic_config(args.signals, args.blocks, args.period)?;
    let registry = petra_blocks::builtin();
    let env = |_: &str| None;
    let plan = petra_config::load_str(&yaml, "<bench>", Path::new("."), &env, &registry)
        .map_err(|e| anyhow!("the synthetic configuration does not compile:\n{e}"))?;
    let clock = std::sync::Arc::new(SystemClock::new());
    let bus = plan.bus_builder().build(clock.wall());
    let engine = Engine::new(plan.program, bus, clock)?;
    let handle = engine.spawn(rt::setup(args.rt_priority, args.cpu))?;
    let started = std::time::Instant::now();
    let mut swaps = Vec::new();
    match args.reload_every {
        None => std::thread::sleep(args.duration),
        Some(every) => {
            while started.elapsed() + every < args.duration {
                std::thread::sleep(every);
                // Compile off the scan thread, exactly as `petra run` does on SIGHUP.
                let plan = petra_config::load_str(&yaml, "<bench>", Path::new("."), &env, &registry)
                    .map_err(|e| anyhow!("the synthetic configuration does not compile:\n{e}"))?;
                let engine = Engine::new(plan.program, handle.bus(), handle.clock())?;
                swaps.push(handle.reload(engine)?.swap);
            }
            std::thread::sleep(args.duration.saturating_sub(started.elapsed()));
        }
    }
    let stats = handle.stats();
    handle.stop()?;
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
        });
        if args.reload_every.is_some() {
            out["reloads"] = swaps.len().into();
            out["reload_swap_us"] = serde_json::json!({"max": us(swap_max.as_nanos() as u64)});
        }
        println!("{out}");
    } else {
        println!(
            "{} signals, {} blocks, period {:?}, {:?}",
            args.signals, args.blocks, args.period, args.duration
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
