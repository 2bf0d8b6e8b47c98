//! `petra test`: runs logic scenarios in virtual time (spec section 3, docs/testing.md).
//!
//! The configuration is compiled exactly as `petra run` compiles it, but nothing is started:
//! no drivers, no threads, no sleeping. The engine runs on a [`VirtualClock`] that jumps from
//! deadline to deadline, so an hour of 10 ms scans takes a fraction of a second.
//!
//! At each step time `t`, in this order:
//! 1. every scan due strictly before `t` runs;
//! 2. the step's `set` is written to the bus (quality good unless written otherwise, stamped
//!    with the virtual wall time), then its `ack`s are applied (user `petra-test`);
//! 3. every scan due at exactly `t` runs (it sees the values just set) — with the alarms
//!    evaluated after each task, exactly as `petra run` does;
//! 4. the step's `expect` is checked against the bus and its `alarms` against the alarm states.
//!
//! Alarms run without their manager: no journal, state file or notification.
//!
//! Virtual time 0 is the first scan of every task; retained values are not restored, signals
//! start at their `initial` values.

use anyhow::Context;
use petra_alarms::AlarmState;
use petra_config::Scenario;
use petra_config::scenario::{Expectation, Expected, Step, show_duration, show_value};
use petra_core::{Clock, MonoTime, Sample, Timestamp, VirtualClock};
use petra_engine::Engine;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Wall time of virtual time 0: fixed, so every run stamps the same timestamps.
/// 2026-01-01T00:00:00Z.
const WALL_ORIGIN_NS: i64 = 1_767_225_600_000_000_000;

/// One expectation that did not hold.
#[derive(Debug)]
pub struct Failure {
    pub step: Step,
    pub what: Failed,
    /// Virtual time of the check.
    pub at: Duration,
}

/// What did not hold.
#[derive(Debug)]
pub enum Failed {
    Signal {
        expectation: Expectation,
        actual: Sample,
    },
    Alarm {
        name: String,
        expected: AlarmState,
        actual: AlarmState,
    },
    /// An `ack` the alarm refused (nothing to acknowledge).
    Ack { name: String, error: String },
}

impl Failure {
    /// The signal or alarm the failure is about.
    #[cfg(test)]
    pub fn name(&self) -> &str {
        match &self.what {
            Failed::Signal { expectation, .. } => &expectation.name,
            Failed::Alarm { name, .. } | Failed::Ack { name, .. } => name,
        }
    }
}

/// What running one scenario gave.
#[derive(Debug)]
pub struct Outcome {
    pub name: String,
    pub file: String,
    pub steps: usize,
    pub expectations: usize,
    /// Virtual time covered (the last step's `at`).
    pub virtual_time: Duration,
    /// Real time the run took.
    pub elapsed: Duration,
    pub failures: Vec<Failure>,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Runs a loaded scenario to its last step, checking every expectation (a failed one does not
/// stop the run).
pub fn run_scenario(sc: Scenario) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let clock = Arc::new(VirtualClock::new(Timestamp::from_unix_nanos(
        WALL_ORIGIN_NS,
    )));
    let bus = sc.plan.bus_builder().build(clock.wall());
    let tasks = crate::alarms::assign_tasks(&sc.plan.alarms, &sc.plan.program);
    let plan = crate::alarms::AlarmPlan {
        defs: sc.plan.alarms,
        tasks,
        notify: None,
    };
    let (alarms, hook) = crate::alarms::for_scenario(plan, bus.clone(), clock.clone())?;
    let mut engine = Engine::new(sc.plan.program, bus.clone(), clock.clone())
        .with_context(|| format!("cannot run {}", sc.plan.config_path.display()))?;
    if let Some(hook) = hook {
        engine.set_hook(hook);
    }
    let mut failures = Vec::new();
    let mut expectations = 0;
    let mut now = Duration::ZERO;
    for step in &sc.steps {
        let t = mono(step.at);
        // 1. Scans due strictly before t.
        if t.nanos() > 0 {
            engine.run_until(MonoTime::from_nanos(t.nanos() - 1));
        }
        clock.set(t);
        // 2. The step's writes, at t.
        let wall = clock.wall();
        for op in &step.set {
            let value = match &op.value {
                Some(v) => v.clone(),
                None => bus.read(op.signal).expect("resolved signal").value,
            };
            bus.write(op.signal, value, op.quality, wall)
                .with_context(|| format!("cannot set `{}`", op.name))?;
        }
        for name in &step.ack {
            expectations += 1;
            if let Err(e) = alarms.ack(name, "petra-test") {
                failures.push(Failure {
                    step: step.clone(),
                    what: Failed::Ack {
                        name: name.clone(),
                        error: e.to_string(),
                    },
                    at: step.at,
                });
            }
        }
        // 3. Scans due at t.
        engine.run_due();
        // 4. Checks.
        for e in &step.expect {
            expectations += 1;
            let actual = bus.read(e.signal).expect("resolved signal");
            if !e.check(&actual) {
                failures.push(Failure {
                    step: step.clone(),
                    what: Failed::Signal {
                        expectation: e.clone(),
                        actual,
                    },
                    at: step.at,
                });
            }
        }
        for a in &step.alarms {
            expectations += 1;
            let actual = alarms.state(&a.name).expect("resolved alarm");
            if actual != a.state {
                failures.push(Failure {
                    step: step.clone(),
                    what: Failed::Alarm {
                        name: a.name.clone(),
                        expected: a.state,
                        actual,
                    },
                    at: step.at,
                });
            }
        }
        now = step.at;
    }
    Ok(Outcome {
        name: sc.name,
        file: sc.file,
        steps: sc.steps.len(),
        expectations,
        virtual_time: now,
        elapsed: started.elapsed(),
        failures,
    })
}

fn mono(d: Duration) -> MonoTime {
    MonoTime::ZERO.saturating_add(d)
}

/// The report of one scenario: one `PASS` line, or a `FAIL` line and every failed
/// expectation grouped by step.
pub fn report(o: &Outcome) -> String {
    let timing = format!(
        "{} steps, virtual {} in {}",
        o.steps,
        show_duration(o.virtual_time),
        show_elapsed(o.elapsed)
    );
    if o.passed() {
        return format!("PASS {} ({timing})", o.name);
    }
    let mut s = format!(
        "FAIL {} ({timing}): {} of {} expectations failed",
        o.name,
        o.failures.len(),
        o.expectations
    );
    let mut last_step = None;
    for f in &o.failures {
        if last_step != Some(f.step.index) {
            last_step = Some(f.step.index);
            s.push_str(&format!(
                "\n  step {} (at: {}) at {}:{}, virtual time {}:",
                f.step.index,
                show_duration(f.step.at),
                o.file,
                f.step.line,
                show_duration(f.at),
            ));
        }
        let line = match &f.what {
            Failed::Signal {
                expectation: e,
                actual,
            } => {
                let mut line = format!(
                    "\n    {}: expected {}, actual {} ({})",
                    e.name,
                    e.expected_text(),
                    show_value(&actual.value),
                    actual.quality
                );
                if let (Some(Expected::Approx { value, .. }), Some(a)) =
                    (&e.value, actual.value.as_f64())
                {
                    line.push_str(&format!(", off by {}", show_diff(a - value)));
                }
                line.push_str(&format!("  [{}:{}:{}]", o.file, e.line, e.col));
                line
            }
            Failed::Alarm {
                name,
                expected,
                actual,
            } => format!(
                "\n    alarm {name}: expected {expected}, actual {actual}  [{}:{}]",
                o.file, f.step.line
            ),
            Failed::Ack { name, error } => format!(
                "\n    ack {name} refused: {error}  [{}:{}]",
                o.file, f.step.line
            ),
        };
        s.push_str(&line);
    }
    s
}

/// A difference short enough to read: `-0.76`, `+0.0125`, `+3.2e-9`.
fn show_diff(d: f64) -> String {
    if d != 0.0 && d.abs() < 1e-3 {
        return format!("{d:+.2e}");
    }
    let s = format!("{d:+.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn show_elapsed(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms < 10.0 {
        format!("{ms:.1}ms")
    } else {
        format!("{ms:.0}ms")
    }
}

/// `petra test SCENARIO...`: runs each file, prints its report; exit 0 when all pass, 1 when
/// any fails or cannot be loaded.
pub fn test(paths: &[std::path::PathBuf]) -> ExitCode {
    let registry = petra_blocks::builtin();
    let (mut passed, mut failed, mut invalid) = (0, 0, 0);
    for path in paths {
        match run_file(path, &registry) {
            Ok(o) => {
                println!("{}", report(&o));
                if o.passed() {
                    passed += 1;
                } else {
                    failed += 1;
                }
            }
            Err(e) => {
                eprintln!("{e:#}");
                println!("ERROR {}: not run, the scenario is invalid", path.display());
                invalid += 1;
            }
        }
    }
    if paths.len() > 1 {
        println!("{passed} passed, {failed} failed, {invalid} invalid");
    }
    if failed + invalid == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn run_file(path: &Path, registry: &petra_engine::Registry) -> anyhow::Result<Outcome> {
    let sc = petra_config::load_scenario(path, registry)?;
    run_scenario(sc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use petra_config::ConfigError;
    use petra_config::scenario::parse_scenario;

    const CONFIG: &str = "plant: t
tasks:
  - { name: fast, period: 10ms }
signals:
  - { name: start, type: bool, initial: false }
  - { name: run, type: bool, initial: false }
  - { name: level, type: float, initial: 1.0 }
  - { name: copy, type: float, initial: 0.0 }
blocks:
  - { name: delay, type: TON, inputs: { in: start }, outputs: { q: run }, params: { pt: 50ms } }
  - { name: mv, type: MOVE, inputs: { in: level }, outputs: { out: copy } }
alarms:
  - { name: copy_high, signal: copy, high: 5.0, deadband: 0.5, on_delay: 30ms, off_delay: 20ms }
  - { name: running, signal: run, equals: true, latch: true }
";

    fn scenario(src: &str) -> Scenario {
        let load = |p: &Path| -> Result<petra_config::Plan, ConfigError> {
            assert_eq!(p, Path::new("/s/plant.yaml"));
            petra_config::load_str(
                CONFIG,
                "plant.yaml",
                Path::new("/s"),
                &|_| None,
                &petra_blocks::builtin(),
            )
        };
        parse_scenario(src, "t.test.yaml", Path::new("/s"), &|_| None, &load)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn outcome(src: &str) -> Outcome {
        run_scenario(scenario(src)).unwrap()
    }

    fn failed(o: &Outcome) -> Vec<(usize, &str)> {
        o.failures
            .iter()
            .map(|f| (f.step.index, f.name()))
            .collect()
    }

    #[test]
    fn a_value_set_at_t_is_seen_by_the_scan_at_t_and_checked_after_it() {
        // `copy` follows `level` through a block: set at 30ms (a scan time), the scan at 30ms
        // copies it, and the check at 30ms sees the copy.
        let o = outcome(
            "config: plant.yaml
steps:
  - { at: 30ms, set: { level: 2.5 }, expect: { copy: 2.5, level: 2.5 } }
",
        );
        assert!(o.passed(), "{}", report(&o));
    }

    #[test]
    fn a_value_set_between_scans_waits_for_the_next_scan() {
        let o = outcome(
            "config: plant.yaml
steps:
  - { at: 25ms, set: { level: 2 }, expect: { copy: 1.0, level: 2.0 } }
  - { at: 29ms, expect: { copy: 1.0 } }
  - { at: 30ms, expect: { copy: 2.0 } }
",
        );
        assert!(o.passed(), "{}", report(&o));
    }

    #[test]
    fn timers_are_exact_at_scan_boundaries_in_virtual_time() {
        // Rising edge seen by the scan at 0ms: q at the scan 50ms later, not one before.
        let o = outcome(
            "config: plant.yaml
steps:
  - { at: 0ms, set: { start: true }, expect: { run: false } }
  - { at: 49ms, expect: { run: false } }
  - { at: 50ms, expect: { run: true } }
  - { at: 60ms, set: { start: false }, expect: { run: false } }
",
        );
        assert!(o.passed(), "{}", report(&o));
        assert_eq!(o.virtual_time, Duration::from_millis(60));
    }

    #[test]
    fn every_failed_expectation_is_reported_and_the_run_goes_on() {
        let o = outcome(
            "name: wrong on purpose
config: plant.yaml
steps:
  - at: 0ms
    set: { start: true }
  - at: 40ms
    expect: { run: true, copy: 1.0 }
  - at: 100ms
    expect:
      run: false
      copy: { approx: 1.5, tol: 0.1 }
      level: { quality: bad }
",
        );
        assert_eq!(
            failed(&o),
            [(2, "run"), (3, "run"), (3, "copy"), (3, "level")]
        );
        let text = report(&o);
        assert!(
            text.starts_with("FAIL wrong on purpose (3 steps, virtual 100ms in "),
            "{text}"
        );
        assert!(text.contains("4 of 5 expectations failed"), "{text}");
        assert!(
            text.contains("\n  step 2 (at: 40ms) at t.test.yaml:6, virtual time 40ms:\n    run: expected true (good), actual false (good)  [t.test.yaml:7:15]"),
            "{text}"
        );
        assert!(
            text.contains("copy: expected 1.5 ± 0.1 (good), actual 1.0 (good), off by -0.5"),
            "{text}"
        );
        assert!(
            text.contains("level: expected any value (bad), actual 1.0 (good)"),
            "{text}"
        );
    }

    #[test]
    fn approx_accepts_within_the_tolerance_inclusive() {
        let o = outcome(
            "config: plant.yaml
steps:
  - at: 0ms
    set: { level: 2.5 }
    expect:
      copy: { approx: 2, tol: 0.5 }
      level: { approx: 2.75, tol: 0.25, quality: good }
  - at: 10ms
    expect: { copy: { approx: 2.25, tol: 0.125 } }
",
        );
        assert_eq!(failed(&o), [(2, "copy")]);
    }

    #[test]
    fn quality_can_be_set_and_expected() {
        // A bad input: the block is not executed and its output goes bad.
        let o = outcome(
            "config: plant.yaml
steps:
  - at: 20ms
    set: { level: { quality: bad } }
    expect:
      level: { value: 1.0, quality: bad }
      copy: { quality: bad }
  - at: 30ms
    set: { level: { value: 3, quality: good } }
    expect: { copy: 3.0 }
",
        );
        assert!(o.passed(), "{}", report(&o));
    }

    #[test]
    fn an_hour_of_10ms_scans_runs_in_well_under_real_time() {
        let o = outcome(
            "config: plant.yaml
steps:
  - { at: 0ms, set: { start: true } }
  - { at: 1h, expect: { run: true, copy: 1.0 } }
",
        );
        assert!(o.passed(), "{}", report(&o));
        assert_eq!(
            report(&o).split(" in ").next(),
            Some("PASS t (2 steps, virtual 1h")
        );
        // 360,000 scans: about 0.6 s in a debug build, 40 ms in a release build. The bound is
        // for a loaded machine; a run that depends on virtual time rather than on the number
        // of scans (as when the engine folded its statistics every 250 ms of clock time) fails.
        assert!(o.elapsed < Duration::from_secs(15), "{:?}", o.elapsed);
    }

    #[test]
    fn alarm_delays_and_deadband_run_in_virtual_time_on_the_scan() {
        // `copy` follows `level` in the scan; the alarm on it is evaluated right after that
        // task, so its on-delay counts from the scan that wrote 6.0.
        let o = outcome(
            "config: plant.yaml
steps:
  - { at: 10ms, set: { level: 6.0 }, alarms: { copy_high: normal } }
  - { at: 39ms, alarms: { copy_high: normal } }
  - { at: 40ms, alarms: { copy_high: active_unacked } }
  - { at: 50ms, set: { level: 4.8 }, alarms: { copy_high: active_unacked } }
  - { at: 200ms, alarms: { copy_high: active_unacked } }
  - { at: 210ms, set: { level: 4.4 } }
  - { at: 229ms, alarms: { copy_high: active_unacked } }
  - { at: 230ms, alarms: { copy_high: rtn_unacked } }
  - { at: 240ms, ack: [copy_high], alarms: { copy_high: normal } }
",
        );
        assert!(o.passed(), "{}", report(&o));
    }

    #[test]
    fn ack_before_the_return_and_a_latch_that_needs_the_ack_after_it() {
        let o = outcome(
            "config: plant.yaml
steps:
  - { at: 0ms, set: { level: 9.0, start: true } }
  - { at: 35ms, ack: [copy_high], alarms: { copy_high: active_acked } }
  - { at: 50ms, alarms: { running: active_unacked } }
  - { at: 60ms, set: { level: 1.0, start: false } }
  - { at: 80ms, alarms: { copy_high: normal, running: active_unacked } }
  - { at: 90ms, ack: [running], alarms: { running: normal } }
",
        );
        assert!(o.passed(), "{}", report(&o));
    }

    #[test]
    fn alarm_mismatches_and_refused_acks_are_failures_with_their_step() {
        let o = outcome(
            "config: plant.yaml
steps:
  - { at: 0ms, ack: [copy_high] }
  - { at: 10ms, alarms: { copy_high: active_unacked } }
",
        );
        assert_eq!(failed(&o), [(1, "copy_high"), (2, "copy_high")]);
        let text = report(&o);
        assert!(text.contains("2 of 2 expectations failed"), "{text}");
        assert!(
            text.contains("ack copy_high refused: alarm `copy_high` is normal: there is nothing to acknowledge"),
            "{text}"
        );
        assert!(
            text.contains(
                "alarm copy_high: expected active_unacked, actual normal  [t.test.yaml:4]"
            ),
            "{text}"
        );
    }
}
