//! Signal conditioning: DEADBAND, RAMP (rate limiter), LAG (first-order filter), MOVING_AVG,
//! INTEGRATOR and TOTALIZER.
//!
//! All of them run on the scheduled time since the previous scan (`Io::dt()`: the period on
//! the first scan, the whole gap after skipped scans, zero for a stalled clock), so they behave
//! the same in real and virtual time.
//!
//! Common rule: an input that is not a finite number (NaN, ±inf) has no defined result. The
//! block leaves its state untouched, holds its output (0 before the first valid scan) and flags
//! it `bad(arithmetic)` for that scan. A hot reload keeps the state of every one of them
//! ([`Block::adopt`]): output, window, running total.

use crate::{input, optional, output, param};
use petra_core::{BadReason, Quality};
use petra_engine::{
    Block, BlockType, BuildCtx, BuildResult, Io, ParamType, PortSpec, PortType, previous,
};

const ARITHMETIC: Quality = Quality::Bad(BadReason::Arithmetic);

fn finite(name: &str, v: f64) -> Result<f64, String> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(format!("{name} is {v}; it must be a finite number"))
    }
}

/// Flags the scan and holds `out`.
fn hold(io: &mut Io<'_>, out: f64) {
    io.set_float(0, out);
    io.set_quality(ARITHMETIC);
}

static IN_FLOAT: [PortSpec; 1] = [input("in", PortType::Float, "input value")];
static OUT_FLOAT: [PortSpec; 1] = [output("out", PortType::Float, "output value")];

// ---------------------------------------------------------------------------------------------
// DEADBAND

pub static DEADBAND: BlockType = BlockType {
    name: "DEADBAND",
    aliases: &[],
    summary: "out follows in only when |in - out| > band; holds otherwise",
    inputs: &IN_FLOAT,
    outputs: &OUT_FLOAT,
    params: &[param(
        "band",
        ParamType::Float,
        Some(0.0),
        None,
        "change of in needed to move out, >= 0; default 0 (out follows in)",
    )],
    build: build_deadband,
};

fn build_deadband(ctx: &BuildCtx<'_>) -> BuildResult {
    let band = finite("band", ctx.params.float_or("band", 0.0))?;
    if band < 0.0 {
        return Err(format!("band is {band}; it must be >= 0"));
    }
    Ok(Box::new(Deadband {
        band,
        out: 0.0,
        started: false,
    }))
}

struct Deadband {
    band: f64,
    out: f64,
    /// A valid value has been seen (the first one is taken as is).
    started: bool,
}

impl Block for Deadband {
    fn execute(&mut self, io: &mut Io<'_>) {
        let x = io.float(0);
        if !x.is_finite() {
            return hold(io, self.out);
        }
        if !self.started || (x - self.out).abs() > self.band {
            self.out = x;
            self.started = true;
        }
        io.set_float(0, self.out);
    }

    fn adopt(&mut self, old: &mut dyn Block) {
        if let Some(old) = previous::<Deadband>(old) {
            self.out = old.out;
            self.started = old.started;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// RAMP

pub static RAMP: BlockType = BlockType {
    name: "RAMP",
    aliases: &["RATE_LIMIT"],
    summary: "rate limiter: out follows in, changing by at most rise (up) or fall (down) per second",
    inputs: &IN_FLOAT,
    outputs: &OUT_FLOAT,
    params: &[
        param(
            "rise",
            ParamType::Float,
            Some(0.0),
            None,
            "largest increase of out per second, >= 0; default 1",
        ),
        param(
            "fall",
            ParamType::Float,
            Some(0.0),
            None,
            "largest decrease of out per second, >= 0; default: rise",
        ),
    ],
    build: build_ramp,
};

fn build_ramp(ctx: &BuildCtx<'_>) -> BuildResult {
    let rise = finite("rise", ctx.params.float_or("rise", 1.0))?;
    let fall = finite("fall", ctx.params.float_or("fall", rise))?;
    if rise < 0.0 || fall < 0.0 {
        return Err(format!(
            "rise ({rise}) and fall ({fall}) are rates per second and must be >= 0"
        ));
    }
    Ok(Box::new(Ramp {
        rise,
        fall,
        out: 0.0,
        started: false,
    }))
}

struct Ramp {
    rise: f64,
    fall: f64,
    out: f64,
    started: bool,
}

impl Block for Ramp {
    fn execute(&mut self, io: &mut Io<'_>) {
        let x = io.float(0);
        if !x.is_finite() {
            return hold(io, self.out);
        }
        if !self.started {
            // The first value is taken as is: no ramp from an arbitrary 0 at start-up.
            self.out = x;
            self.started = true;
        } else {
            let dt = io.dt().as_secs_f64();
            let up = self.rise * dt;
            let down = self.fall * dt;
            let delta = x - self.out;
            self.out = if delta > up {
                self.out + up
            } else if delta < -down {
                self.out - down
            } else {
                x
            };
        }
        io.set_float(0, self.out);
    }

    fn adopt(&mut self, old: &mut dyn Block) {
        if let Some(old) = previous::<Ramp>(old) {
            self.out = old.out;
            self.started = old.started;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// LAG

pub static LAG: BlockType = BlockType {
    name: "LAG",
    aliases: &["PT1"],
    summary: "first-order lag filter: tau·dout/dt = in - out, exact for a step per scan",
    inputs: &IN_FLOAT,
    outputs: &OUT_FLOAT,
    params: &[param(
        "tau",
        ParamType::Duration,
        Some(0.0),
        None,
        "time constant; 0 passes in through; default 1s",
    )],
    build: build_lag,
};

fn build_lag(ctx: &BuildCtx<'_>) -> BuildResult {
    let tau = ctx
        .params
        .duration_or("tau", std::time::Duration::from_secs(1))
        .as_secs_f64();
    Ok(Box::new(Lag {
        tau,
        out: 0.0,
        started: false,
    }))
}

struct Lag {
    /// Seconds.
    tau: f64,
    out: f64,
    started: bool,
}

impl Block for Lag {
    fn execute(&mut self, io: &mut Io<'_>) {
        let x = io.float(0);
        if !x.is_finite() {
            return hold(io, self.out);
        }
        if !self.started || self.tau <= 0.0 {
            self.out = x;
            self.started = true;
        } else {
            // Exact solution for `in` held over the scan: out += (in − out)(1 − e^(−dt/τ)),
            // written as a convex combination so `in − out` cannot overflow; `-expm1` keeps
            // precision when dt ≪ τ, and a huge dt gives exactly `in`.
            let r = -io.dt().as_secs_f64() / self.tau;
            self.out = self.out * r.exp() + x * -r.exp_m1();
        }
        io.set_float(0, self.out);
    }

    fn adopt(&mut self, old: &mut dyn Block) {
        if let Some(old) = previous::<Lag>(old) {
            self.out = old.out;
            self.started = old.started;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// MOVING_AVG

/// Largest MOVING_AVG window.
pub const MAX_WINDOW: i64 = 100_000;

pub static MOVING_AVG: BlockType = BlockType {
    name: "MOVING_AVG",
    aliases: &[],
    summary: "mean of the last n valid samples (one per scan)",
    inputs: &IN_FLOAT,
    outputs: &OUT_FLOAT,
    params: &[param(
        "n",
        ParamType::Int,
        Some(1.0),
        Some(MAX_WINDOW as f64),
        "window length in samples (scans), 1..=100000; default 10",
    )],
    build: build_moving_avg,
};

fn build_moving_avg(ctx: &BuildCtx<'_>) -> BuildResult {
    let n = ctx.params.int_or("n", 10);
    if !(1..=MAX_WINDOW).contains(&n) {
        return Err(format!("n is {n}; it must be between 1 and {MAX_WINDOW}"));
    }
    Ok(Box::new(MovingAvg {
        window: vec![0.0; n as usize].into_boxed_slice(),
        next: 0,
        len: 0,
        sum: 0.0,
        out: 0.0,
    }))
}

struct MovingAvg {
    /// Ring buffer, allocated once in `build`.
    window: Box<[f64]>,
    /// Where the next sample goes.
    next: usize,
    /// Samples held (< window length until the window has filled once).
    len: usize,
    /// Running sum of the held samples; recomputed exactly every time the ring wraps, so
    /// rounding errors of the add/subtract updates cannot pile up.
    sum: f64,
    out: f64,
}

impl MovingAvg {
    fn recompute(&mut self) {
        self.sum = self.window[..self.len].iter().sum();
    }

    /// The held samples, oldest first.
    fn samples(&self) -> impl Iterator<Item = f64> + '_ {
        let n = self.window.len();
        let start = (self.next + n - self.len) % n;
        (0..self.len).map(move |k| self.window[(start + k) % n])
    }
}

impl Block for MovingAvg {
    fn execute(&mut self, io: &mut Io<'_>) {
        let x = io.float(0);
        if !x.is_finite() {
            return hold(io, self.out);
        }
        let n = self.window.len();
        if self.len == n {
            self.sum -= self.window[self.next];
        } else {
            self.len += 1;
        }
        self.window[self.next] = x;
        self.sum += x;
        self.next = (self.next + 1) % n;
        // The ring is in order from 0 when it wraps; and a sum that overflowed (or became inf −
        // inf) is rebuilt from the samples.
        if self.next == 0 || !self.sum.is_finite() {
            self.recompute();
        }
        let mean = self.sum / self.len as f64;
        if !mean.is_finite() {
            // Finite samples whose sum exceeds the float range.
            return hold(io, self.out);
        }
        self.out = mean;
        io.set_float(0, mean);
    }

    /// Keeps the newest samples that fit the (possibly resized) window.
    fn adopt(&mut self, old: &mut dyn Block) {
        if let Some(old) = previous::<MovingAvg>(old) {
            let n = self.window.len();
            let keep = old.len.min(n);
            for (k, x) in old.samples().skip(old.len - keep).enumerate() {
                self.window[k] = x;
            }
            self.len = keep;
            self.next = keep % n;
            self.recompute();
            self.out = old.out;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// INTEGRATOR, TOTALIZER

/// A compensated (Kahan) sum: a long-running total keeps the small increments a plain f64
/// addition would round away.
#[derive(Clone, Copy, Default)]
struct Total {
    sum: f64,
    carry: f64,
}

impl Total {
    /// Adds `x`; returns false (and changes nothing) if the result would not be finite.
    fn add(&mut self, x: f64) -> bool {
        let y = x - self.carry;
        let t = self.sum + y;
        if !t.is_finite() {
            return false;
        }
        self.carry = (t - self.sum) - y;
        self.sum = t;
        true
    }
}

pub static INTEGRATOR: BlockType = BlockType {
    name: "INTEGRATOR",
    aliases: &[],
    summary: "out = k · ∫ in dt (seconds), r resets to 0",
    inputs: &[
        input("in", PortType::Float, "value to integrate (per second)"),
        optional("r", PortType::Bool, "reset: out = 0 while true"),
    ],
    outputs: &[output("out", PortType::Float, "the integral")],
    params: &[param(
        "k",
        ParamType::Float,
        None,
        None,
        "gain applied to in; default 1",
    )],
    build: build_integrator,
};

fn build_integrator(ctx: &BuildCtx<'_>) -> BuildResult {
    Ok(Box::new(Integrator {
        k: finite("k", ctx.params.float_or("k", 1.0))?,
        total: Total::default(),
    }))
}

struct Integrator {
    k: f64,
    total: Total,
}

impl Block for Integrator {
    fn execute(&mut self, io: &mut Io<'_>) {
        if io.bool(1) {
            self.total = Total::default();
            io.set_float(0, 0.0);
            return;
        }
        let x = io.float(0);
        // Rectangle rule with this scan's value over the time since the previous scan.
        if !(x.is_finite() && self.total.add(self.k * x * io.dt().as_secs_f64())) {
            return hold(io, self.total.sum);
        }
        io.set_float(0, self.total.sum);
    }

    fn adopt(&mut self, old: &mut dyn Block) {
        if let Some(old) = previous::<Integrator>(old) {
            self.total = old.total;
        }
    }
}

pub static TOTALIZER: BlockType = BlockType {
    name: "TOTALIZER",
    aliases: &[],
    summary: "totalizes a flow rate into a quantity (flow in units per time_base), r resets",
    inputs: &[
        input(
            "flow",
            PortType::Float,
            "flow rate, in quantity units per time_base",
        ),
        optional("r", PortType::Bool, "reset: total = 0 while true"),
    ],
    outputs: &[output(
        "total",
        PortType::Float,
        "quantity since the last reset",
    )],
    params: &[
        param(
            "time_base",
            ParamType::Duration,
            None,
            None,
            "time unit of flow (`1h` for m³/h); > 0; default 1s",
        ),
        param(
            "low_cut",
            ParamType::Float,
            None,
            None,
            "flows at or below this are not counted (noise, reverse flow); default 0",
        ),
    ],
    build: build_totalizer,
};

fn build_totalizer(ctx: &BuildCtx<'_>) -> BuildResult {
    let base = ctx
        .params
        .duration_or("time_base", std::time::Duration::from_secs(1));
    if base.is_zero() {
        return Err("time_base is 0; give the flow's time unit, e.g. `1s` or `1h`".into());
    }
    Ok(Box::new(Totalizer {
        base: base.as_secs_f64(),
        low_cut: finite("low_cut", ctx.params.float_or("low_cut", 0.0))?,
        total: Total::default(),
    }))
}

struct Totalizer {
    /// Seconds.
    base: f64,
    low_cut: f64,
    total: Total,
}

impl Block for Totalizer {
    fn execute(&mut self, io: &mut Io<'_>) {
        if io.bool(1) {
            self.total = Total::default();
            io.set_float(0, 0.0);
            return;
        }
        let flow = io.float(0);
        if !flow.is_finite() {
            return hold(io, self.total.sum);
        }
        if flow > self.low_cut && !self.total.add(flow * (io.dt().as_secs_f64() / self.base)) {
            return hold(io, self.total.sum);
        }
        io.set_float(0, self.total.sum);
    }

    fn adopt(&mut self, old: &mut dyn Block) {
        if let Some(old) = previous::<Totalizer>(old) {
            self.total = old.total;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Harness, Setup, b, f, reload_keeps_state};
    use petra_core::Value;
    use petra_core::ValueType::{Bool, Float, Int};
    use petra_engine::ParamValue;
    use std::time::Duration;

    fn one_in(ty: &'static BlockType, params: &[(&str, ParamValue)]) -> Harness {
        let mut s = Setup::new(ty).input("in", Float).output(Float);
        for (k, v) in params {
            s = s.param(k, v.clone());
        }
        s.harness()
    }

    fn ms(v: u64) -> ParamValue {
        ParamValue::Duration(Duration::from_millis(v))
    }

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    /// Non-finite inputs hold the output and flag; the next finite one is processed normally.
    fn holds_on_non_finite(h: &mut Harness, t0: u64, ins: impl Fn(f64) -> Vec<Value>) {
        h.scan(t0, &ins(3.0));
        let out = h.float(0);
        for (k, x) in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY]
            .into_iter()
            .enumerate()
        {
            h.scan(t0 + 10 * (k as u64 + 1), &ins(x));
            assert_eq!(h.float(0), out, "in={x}");
            assert!(h.flagged(), "in={x}");
        }
        h.scan(t0 + 40, &ins(3.0));
        assert!(!h.flagged());
    }

    #[test]
    fn deadband_moves_only_beyond_the_band() {
        let mut h = one_in(&DEADBAND, &[("band", ParamValue::Float(0.5))]);
        let steps = [
            (10.0, 10.0),
            (10.4, 10.0),
            (9.5, 10.0),
            (10.51, 10.51),
            (10.2, 10.51),
            (9.9, 9.9),
            (-100.0, -100.0),
        ];
        for (k, (x, out)) in steps.into_iter().enumerate() {
            assert_eq!(h.scan(k as u64 * 10, &[f(x)]).float(0), out, "in={x}");
        }
        holds_on_non_finite(&mut h, 1000, |x| vec![f(x)]);
        // Before any valid value the output is 0.
        let mut h = one_in(&DEADBAND, &[]);
        h.scan(0, &[f(f64::NAN)]);
        assert_eq!(h.float(0), 0.0);
        assert!(h.flagged());
        assert_eq!(h.scan(10, &[f(1e-9)]).float(0), 1e-9); // band 0: follows
    }

    #[test]
    fn ramp_limits_rise_and_fall_rates() {
        let mut h = one_in(
            &RAMP,
            &[
                ("rise", ParamValue::Float(10.0)),
                ("fall", ParamValue::Float(50.0)),
            ],
        );
        assert_eq!(h.scan(0, &[f(5.0)]).float(0), 5.0); // first value taken as is
        // Step up to 6: 0.1 per 10 ms scan.
        for k in 1..=10 {
            h.scan(k * 10, &[f(6.0)]);
            assert!(
                close(h.float(0), 5.0 + 0.1 * k as f64, 1e-9),
                "{}",
                h.float(0)
            );
        }
        assert_eq!(h.scan(110, &[f(6.0)]).float(0), 6.0);
        // Step down to 0: 0.5 per scan.
        h.scan(120, &[f(0.0)]);
        assert!(close(h.float(0), 5.5, 1e-9));
        // A 1 s gap moves up to 50.
        h.scan(1120, &[f(-100.0)]);
        assert!(close(h.float(0), -44.5, 1e-9), "{}", h.float(0));
        // A stalled clock does not move it.
        h.scan(1120, &[f(100.0)]);
        assert!(close(h.float(0), -44.5, 1e-9));
        holds_on_non_finite(&mut h, 2000, |x| vec![f(x)]);
    }

    #[test]
    fn lag_is_the_exact_first_order_response() {
        let mut h = one_in(&LAG, &[("tau", ms(500))]);
        assert_eq!(h.scan(0, &[f(0.0)]).float(0), 0.0);
        // Step to 10 at t = 10 ms: out(t) = 10·(1 − e^(−(t − 0)/τ)) sampled exactly, whatever
        // the scan lengths (held input, exact discretisation).
        let mut t = 0;
        for gap in [10, 30, 7, 100, 3, 250, 1, 600] {
            t += gap;
            h.scan(t, &[f(10.0)]);
            let exact = 10.0 * (1.0 - (-(t as f64) / 500.0).exp());
            assert!(
                close(h.float(0), exact, 1e-12),
                "t={t}: {} vs {exact}",
                h.float(0)
            );
        }
        // tau 0 passes through; a huge gap settles exactly.
        let mut h = one_in(&LAG, &[("tau", ms(0))]);
        assert_eq!(h.scan(0, &[f(3.0)]).float(0), 3.0);
        assert_eq!(h.scan(10, &[f(-7.0)]).float(0), -7.0);
        let mut h = one_in(&LAG, &[]);
        h.scan(0, &[f(0.0)]);
        h.scan_at(petra_core::MonoTime::from_nanos(u64::MAX), &[f(4.0)]);
        assert_eq!(h.float(0), 4.0);
        holds_on_non_finite(&mut h, 0, |x| vec![f(x)]);
        // Extreme values do not overflow into inf (and then NaN).
        h.scan(100, &[f(-f64::MAX)]);
        h.scan(1100, &[f(f64::MAX)]);
        h.scan(2100, &[f(-f64::MAX)]);
        assert!(h.float(0).is_finite() && !h.flagged(), "{}", h.float(0));
    }

    #[test]
    fn moving_avg_over_a_partial_then_full_window() {
        let mut h = one_in(&MOVING_AVG, &[("n", ParamValue::Int(4))]);
        let xs = [4.0, 8.0, 0.0, 4.0, 12.0, -4.0, 0.0, 100.0, 1.0];
        let expect = [4.0, 6.0, 4.0, 4.0, 6.0, 3.0, 3.0, 27.0, 24.25];
        for (k, (x, e)) in xs.into_iter().zip(expect).enumerate() {
            assert_eq!(h.scan(k as u64 * 10, &[f(x)]).float(0), e, "sample {k}");
        }
        // Non-finite samples are left out of the window.
        holds_on_non_finite(&mut h, 1000, |x| vec![f(x)]);
        // n = 1 follows; sums beyond the float range are flagged, not inf.
        let mut h = one_in(&MOVING_AVG, &[("n", ParamValue::Int(2))]);
        h.scan(0, &[f(f64::MAX)]);
        h.scan(10, &[f(f64::MAX)]);
        assert!(h.flagged());
        assert_eq!(h.float(0), f64::MAX);
        h.scan(20, &[f(-f64::MAX)]);
        assert_eq!((h.float(0), h.flagged()), (0.0, false));
        let e = Setup::new(&MOVING_AVG)
            .input("in", Float)
            .param("n", ParamValue::Int(0))
            .refused();
        assert!(e.contains("n is 0"), "{e}");
    }

    #[test]
    fn moving_avg_has_no_drift_over_many_wraps() {
        let mut h = one_in(&MOVING_AVG, &[("n", ParamValue::Int(3))]);
        for k in 0..100_000u64 {
            h.scan(k, &[f(if k % 2 == 0 { 1e12 } else { 0.1 })]);
        }
        for k in 100_000..100_003u64 {
            h.scan(k, &[f(1.0)]);
        }
        // A running sum alone would be off by ~1e-4 here (1e12 + 0.1 − 1e12 loses the 0.1).
        assert!(close(h.float(0), 1.0, 1e-12), "{}", h.float(0));
    }

    #[test]
    fn integrator_integrates_and_resets() {
        let make = || {
            Setup::new(&INTEGRATOR)
                .input("in", Float)
                .input("r", Bool)
                .output(Float)
                .param("k", ParamValue::Float(2.0))
                .period_ms(100)
                .harness()
        };
        let mut h = make();
        h.scan(0, &[f(1.5), b(false)]); // first scan: one period
        assert!(close(h.float(0), 0.3, 1e-12));
        for k in 1..=10 {
            h.scan(k * 100, &[f(1.5), b(false)]);
        }
        assert!(close(h.float(0), 3.3, 1e-12), "{}", h.float(0));
        h.scan(1500, &[f(-1.0), b(false)]);
        assert!(close(h.float(0), 2.3, 1e-12), "{}", h.float(0));
        assert_eq!(h.scan(1600, &[f(5.0), b(true)]).float(0), 0.0);
        assert_eq!(h.scan(1700, &[f(f64::NAN), b(true)]).float(0), 0.0);
        assert!(!h.flagged());
        h.scan(1800, &[f(5.0), b(false)]);
        assert!(close(h.float(0), 1.0, 1e-12));
        holds_on_non_finite(&mut h, 2000, |x| vec![f(x), b(false)]);
        // Overflow of the total holds and flags instead of going to inf.
        h.scan_at(
            petra_core::MonoTime::from_nanos(u64::MAX),
            &[f(f64::MAX), b(false)],
        );
        assert!(h.flagged() && h.float(0).is_finite());
        // r left open: never resets.
        let mut h = Setup::new(&INTEGRATOR)
            .input("in", Int)
            .open("r")
            .output(Float)
            .harness();
        h.scan(0, &[Value::Int(100)]);
        assert!(close(h.float(0), 1.0, 1e-12));
    }

    #[test]
    fn totalizer_counts_flow_per_time_base_above_the_cut() {
        let mut h = Setup::new(&TOTALIZER)
            .input("flow", Float)
            .input("r", Bool)
            .output(Float)
            .param("time_base", ms(3_600_000))
            .param("low_cut", ParamValue::Float(0.5))
            .period_ms(1000)
            .harness();
        // 36 m³/h for one hour of 1 s scans: 36 m³ (no drift from 3600 small increments).
        for k in 0..3600 {
            h.scan(k * 1000, &[f(36.0), b(false)]);
        }
        assert!(close(h.float(0), 36.0, 1e-12), "{}", h.float(0));
        // Below the cut, and reverse flow, are not counted.
        h.scan(3_600_000, &[f(0.4), b(false)]);
        h.scan(3_601_000, &[f(-20.0), b(false)]);
        assert!(close(h.float(0), 36.0, 1e-12));
        assert_eq!(h.scan(3_602_000, &[f(36.0), b(true)]).float(0), 0.0);
        h.scan(3_603_000, &[f(36.0), b(false)]);
        assert!(close(h.float(0), 0.01, 1e-12));
        holds_on_non_finite(&mut h, 4_000_000, |x| vec![f(x), b(false)]);
        let e = Setup::new(&TOTALIZER)
            .input("flow", Float)
            .param("time_base", ms(0))
            .refused();
        assert!(e.contains("time_base is 0"), "{e}");
    }

    #[test]
    fn reload_keeps_filter_state() {
        let scans: Vec<(u64, Vec<Value>)> = (0..60)
            .map(|k| (k * 10, vec![f(((k * 37) % 11) as f64 - 5.0)]))
            .collect();
        let one: [(&'static BlockType, Vec<(&str, ParamValue)>); 5] = [
            (&DEADBAND, vec![("band", ParamValue::Float(2.0))]),
            (&RAMP, vec![("rise", ParamValue::Float(100.0))]),
            (&LAG, vec![("tau", ms(70))]),
            (&MOVING_AVG, vec![("n", ParamValue::Int(7))]),
            (&MOVING_AVG, vec![("n", ParamValue::Int(1))]),
        ];
        for (ty, params) in &one {
            for reload in [1, 3, 8, 30] {
                reload_keeps_state(|| one_in(ty, params), &scans, reload, 1);
            }
        }
        let scans: Vec<(u64, Vec<Value>)> = (0..60)
            .map(|k| (k * 10, vec![f(k as f64 - 20.0), b(k == 25)]))
            .collect();
        for ty in [&INTEGRATOR, &TOTALIZER] {
            let make = || {
                Setup::new(ty)
                    .input(ty.inputs[0].name, Float)
                    .input("r", Bool)
                    .output(Float)
                    .harness()
            };
            for reload in [1, 10, 26, 40] {
                reload_keeps_state(make, &scans, reload, 1);
            }
        }
    }

    #[test]
    fn moving_avg_reload_into_another_window_keeps_the_newest_samples() {
        let mut old = one_in(&MOVING_AVG, &[("n", ParamValue::Int(5))]);
        for (k, x) in [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0].into_iter().enumerate() {
            old.scan(k as u64 * 10, &[f(x)]);
        }
        // Window 5 holds 3..=7. Shrunk to 2: 6, 7 kept.
        let mut small = one_in(&MOVING_AVG, &[("n", ParamValue::Int(2))]);
        small.adopt_from(&mut old);
        assert_eq!(small.scan(70, &[f(9.0)]).float(0), 8.0); // (7 + 9) / 2
        // Grown to 8: 3..=7 kept, then filling up.
        let mut big = one_in(&MOVING_AVG, &[("n", ParamValue::Int(8))]);
        big.adopt_from(&mut old);
        assert_eq!(big.scan(70, &[f(15.0)]).float(0), 40.0 / 6.0);
        for (k, x) in [0.0, 0.0].into_iter().enumerate() {
            big.scan(80 + k as u64 * 10, &[f(x)]);
        }
        assert_eq!(big.float(0), 40.0 / 8.0);
        assert_eq!(big.scan(100, &[f(3.0)]).float(0), 40.0 / 8.0); // 3 out, 3 in
    }
}
