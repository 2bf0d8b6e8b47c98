//! Control: PID and HYSTERESIS (two-point switch).
//!
//! **PID** is a positional PID computed once per scan with the scheduled time since the
//! previous scan (`Io::dt()`), so it behaves the same in real and virtual time and after
//! skipped scans. Both usual forms are offered and reduced, in `build`, to the same parallel
//! gains:
//!
//! * ideal (ISA) form, `form: ideal` (default):
//!   `out = kp·(e + 1/ti·∫e dt − td·dpv*/dt)` — `ti = 0` disables the I part;
//! * parallel form, `form: parallel`: `out = kp·e + ki·∫e dt − kd·dpv*/dt`;
//!
//! where `e = sp − pv` for reverse action (the default: the output rises when `pv` falls below
//! `sp`, a heating loop) and `e = pv − sp` for direct action, and `pv*` is `pv` with the same
//! sign as `e` (derivative on the measurement, not on the error, so a setpoint step gives no
//! derivative kick).
//!
//! Discretisation, per scan of length `dt` (seconds):
//!
//! * `P = kp·e`;
//! * `I += ki·e·dt` (backward rectangle), kept in output units so a gain change on reload does
//!   not move the output through the integral;
//! * `D = (tf·D − kd·s·(pv − pv_prev)) / (tf + dt)` with `s = ±1` the action sign: backward
//!   Euler of `kd·s·dpv/dt` through a first-order filter `1/(1 + tf·s)`; `tf = 0` is the plain
//!   difference quotient. No derivative on the first scan (no previous `pv`).
//!
//! Anti-windup is **conditional integration**: when the unclamped output `P + I + D` lies
//! beyond a limit and this scan's integration would push it further, the integral only moves
//! as far as needed to put the output exactly at the limit (never beyond, and it never moves
//! backwards because of it). So the integral does not wind up during saturation and the
//! output leaves the limit on the first scan at which `P + I + D` comes back inside — as soon
//! as the error changes sign.
//!
//! Manual mode (`man` true): `out = man_out` clamped to the limits (or, with `man_out` not
//! wired, the last output held); the integral tracks `out − P − D` every scan
//! (back-calculation), and the derivative memory keeps following `pv`, so the return to
//! automatic is bumpless: the first automatic scan starts from the manual output.
//!
//! **HYSTERESIS** is a two-point switch: `q` goes true when `in` reaches `high` and false when
//! it falls to `low`, holding in between.

use crate::{input, optional, output, param};
use petra_core::{BadReason, Quality};
use petra_engine::{
    Block, BlockType, BuildCtx, BuildResult, Io, ParamSpec, ParamType, PortSpec, PortType, previous,
};

const ARITHMETIC: Quality = Quality::Bad(BadReason::Arithmetic);

// ---------------------------------------------------------------------------------------------
// PID

const PV: usize = 0;
const SP: usize = 1;
const MAN: usize = 2;
const MAN_OUT: usize = 3;

static PID_INPUTS: [PortSpec; 4] = [
    input("pv", PortType::Float, "process value (measurement)"),
    input("sp", PortType::Float, "setpoint"),
    optional(
        "man",
        PortType::Bool,
        "manual mode while true (default false: automatic)",
    ),
    optional(
        "man_out",
        PortType::Float,
        "output in manual mode, clamped to the limits; not wired: manual holds the output",
    ),
];

static PID_OUTPUTS: [PortSpec; 1] = [output(
    "out",
    PortType::Float,
    "controller output, out_min..=out_max",
)];

static PID_PARAMS: [ParamSpec; 10] = [
    ParamSpec {
        name: "form",
        ty: ParamType::String,
        required: false,
        min: None,
        max: None,
        doc: "`ideal` (kp, ti, td) or `parallel` (kp, ki, kd); default ideal",
    },
    param(
        "kp",
        ParamType::Float,
        Some(0.0),
        None,
        "proportional gain, >= 0; default 1",
    ),
    param(
        "ti",
        ParamType::Duration,
        Some(0.0),
        None,
        "ideal form: integral (reset) time; 0 disables the I part; default 0",
    ),
    param(
        "td",
        ParamType::Duration,
        Some(0.0),
        None,
        "ideal form: derivative time; default 0",
    ),
    param(
        "ki",
        ParamType::Float,
        Some(0.0),
        None,
        "parallel form: integral gain in 1/s, >= 0; default 0",
    ),
    param(
        "kd",
        ParamType::Float,
        Some(0.0),
        None,
        "parallel form: derivative gain in s, >= 0; default 0",
    ),
    param(
        "tf",
        ParamType::Duration,
        Some(0.0),
        None,
        "time constant of the first-order filter on the derivative; default 0 (none)",
    ),
    param(
        "out_min",
        ParamType::Float,
        None,
        None,
        "lower output limit; default 0",
    ),
    param(
        "out_max",
        ParamType::Float,
        None,
        None,
        "upper output limit, > out_min; default 100",
    ),
    ParamSpec {
        name: "action",
        ty: ParamType::String,
        required: false,
        min: None,
        max: None,
        doc: "`reverse` (e = sp - pv, default) or `direct` (e = pv - sp)",
    },
];

pub static PID: BlockType = BlockType {
    name: "PID",
    aliases: &[],
    summary: "PID controller (ideal or parallel form) with anti-windup, output limits, \
              derivative on measurement and bumpless manual/auto transfer",
    inputs: &PID_INPUTS,
    outputs: &PID_OUTPUTS,
    params: &PID_PARAMS,
    build: build_pid,
};

fn finite(name: &str, v: f64) -> Result<f64, String> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(format!("{name} is {v}; it must be a finite number"))
    }
}

fn build_pid(ctx: &BuildCtx<'_>) -> BuildResult {
    let p = ctx.params;
    let kp = finite("kp", p.float_or("kp", 1.0))?;
    let (ki, kd) = match p.str_or("form", "ideal") {
        "ideal" => {
            if let Some(name) = ["ki", "kd"].into_iter().find(|n| p.get(n).is_some()) {
                return Err(format!(
                    "{name} belongs to the parallel form; with form ideal give ti and td, \
                     or set form: parallel"
                ));
            }
            let ti = p.duration_or("ti", std::time::Duration::ZERO).as_secs_f64();
            let td = p.duration_or("td", std::time::Duration::ZERO).as_secs_f64();
            (if ti > 0.0 { kp / ti } else { 0.0 }, kp * td)
        }
        "parallel" => {
            if let Some(name) = ["ti", "td"].into_iter().find(|n| p.get(n).is_some()) {
                return Err(format!(
                    "{name} belongs to the ideal form; with form parallel give ki and kd, \
                     or set form: ideal"
                ));
            }
            (
                finite("ki", p.float_or("ki", 0.0))?,
                finite("kd", p.float_or("kd", 0.0))?,
            )
        }
        other => return Err(format!("form is `{other}`; use `ideal` or `parallel`")),
    };
    if kp < 0.0 || ki < 0.0 || kd < 0.0 {
        return Err("gains must be >= 0; use action: direct to reverse the sign".into());
    }
    let sign = match p.str_or("action", "reverse") {
        "reverse" => 1.0,
        "direct" => -1.0,
        other => return Err(format!("action is `{other}`; use `reverse` or `direct`")),
    };
    let out_min = finite("out_min", p.float_or("out_min", 0.0))?;
    let out_max = finite("out_max", p.float_or("out_max", 100.0))?;
    if out_min >= out_max {
        return Err(format!(
            "out_min ({out_min}) must be below out_max ({out_max})"
        ));
    }
    let tf = p.duration_or("tf", std::time::Duration::ZERO).as_secs_f64();
    Ok(Box::new(Pid {
        kp,
        ki,
        kd,
        tf,
        sign,
        out_min,
        out_max,
        man_wired: ctx.input_type(MAN_OUT).is_some(),
        i: 0.0,
        d: 0.0,
        last_pv: None,
        out: out_min,
    }))
}

struct Pid {
    kp: f64,
    /// Parallel-form gains (the ideal form is converted in `build`).
    ki: f64,
    kd: f64,
    /// Derivative filter time constant, s.
    tf: f64,
    /// +1 reverse action (e = sp − pv), −1 direct.
    sign: f64,
    out_min: f64,
    out_max: f64,
    /// `man_out` is wired; if not, manual mode holds the output.
    man_wired: bool,
    /// Integral part, in output units.
    i: f64,
    /// Derivative part (filtered), in output units.
    d: f64,
    /// `pv` of the previous scan; `None` on the first scan and after an undefined one.
    last_pv: Option<f64>,
    /// Last output (held when this scan has no defined result).
    out: f64,
}

impl Pid {
    /// The derivative part for this scan and whether `pv` may become the new memory.
    fn derivative(&self, pv: f64, dt: f64) -> (f64, bool) {
        match self.last_pv {
            None => (0.0, true),
            // No time has passed (a stalled clock): keep the part and the old memory, so the
            // change is seen once time moves on.
            Some(_) if dt <= 0.0 => (self.d, false),
            Some(prev) => (
                (self.tf * self.d - self.kd * self.sign * (pv - prev)) / (self.tf + dt),
                true,
            ),
        }
    }

    /// No defined result this scan: hold the output, flag it, and restart the derivative.
    fn undefined(&mut self, io: &mut Io<'_>) {
        self.last_pv = None;
        self.d = 0.0;
        io.set_float(0, self.out);
        io.set_quality(ARITHMETIC);
    }
}

impl Block for Pid {
    fn execute(&mut self, io: &mut Io<'_>) {
        let pv = io.float(PV);
        let sp = io.float(SP);
        let dt = io.dt().as_secs_f64();
        let e = self.sign * (sp - pv);
        let p = self.kp * e;
        let (d, remember) = self.derivative(pv, dt);
        let defined = pv.is_finite() && sp.is_finite() && p.is_finite() && d.is_finite();

        if io.bool(MAN) {
            let target = if self.man_wired {
                io.float(MAN_OUT)
            } else {
                self.out
            };
            if target.is_nan() {
                io.set_float(0, self.out);
                io.set_quality(ARITHMETIC);
                return;
            }
            self.out = target.clamp(self.out_min, self.out_max);
            // Track, so the return to automatic starts from this output.
            let i = self.out - p - d;
            if defined && i.is_finite() {
                self.i = i;
                self.d = d;
                if remember {
                    self.last_pv = Some(pv);
                }
            } else {
                self.last_pv = None;
                self.d = 0.0;
            }
            io.set_float(0, self.out);
            return;
        }

        if !defined {
            self.undefined(io);
            return;
        }
        let di = self.ki * e * dt;
        let mut i = self.i + di;
        let u = p + i + d;
        // Conditional integration: integrate at most up to the limit, never past it.
        if u > self.out_max && di > 0.0 {
            i = self.i.max(self.out_max - p - d);
        } else if u < self.out_min && di < 0.0 {
            i = self.i.min(self.out_min - p - d);
        }
        if !i.is_finite() {
            i = self.i;
        }
        let out = (p + i + d).clamp(self.out_min, self.out_max);
        if out.is_nan() {
            self.undefined(io);
            return;
        }
        self.i = i;
        self.d = d;
        if remember {
            self.last_pv = Some(pv);
        }
        self.out = out;
        io.set_float(0, out);
    }

    /// Keeps the integral (in output units), the derivative part and memory, and the last
    /// output; gains, limits and action are the new ones.
    fn adopt(&mut self, old: &mut dyn Block) {
        if let Some(old) = previous::<Pid>(old) {
            self.i = old.i;
            self.d = old.d;
            self.last_pv = old.last_pv;
            self.out = old.out.clamp(self.out_min, self.out_max);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// HYSTERESIS

static HYST_INPUTS: [PortSpec; 3] = [
    input("in", PortType::Float, "value to watch"),
    input(
        "low",
        PortType::Float,
        "q goes false when in <= low (a constant under params, or a signal)",
    ),
    input(
        "high",
        PortType::Float,
        "q goes true when in >= high (a constant under params, or a signal)",
    ),
];

pub static HYSTERESIS: BlockType = BlockType {
    name: "HYSTERESIS",
    aliases: &[],
    summary: "two-point switch: q true when in >= high, false when in <= low, held between",
    inputs: &HYST_INPUTS,
    outputs: &[output("q", PortType::Bool, "switch state (false at start)")],
    params: &[],
    build: build_hysteresis,
};

fn build_hysteresis(_: &BuildCtx<'_>) -> BuildResult {
    Ok(Box::new(Hysteresis { q: false }))
}

struct Hysteresis {
    q: bool,
}

impl Block for Hysteresis {
    fn execute(&mut self, io: &mut Io<'_>) {
        let (x, low, high) = (io.float(0), io.float(1), io.float(2));
        if x.is_nan() || low.is_nan() || high.is_nan() {
            io.set_quality(ARITHMETIC);
        } else if x >= high {
            // Checked first: with low > high (thresholds from signals), `in` between them
            // switches on rather than flickering.
            self.q = true;
        } else if x <= low {
            self.q = false;
        }
        io.set_bool(0, self.q);
    }

    fn adopt(&mut self, old: &mut dyn Block) {
        if let Some(old) = previous::<Hysteresis>(old) {
            self.q = old.q;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Harness, Setup, b, f, reload_keeps_state};
    use petra_core::Value;
    use petra_core::ValueType::{Bool, Float};
    use petra_engine::ParamValue;
    use std::time::Duration;

    fn ms(v: u64) -> ParamValue {
        ParamValue::Duration(Duration::from_millis(v))
    }

    /// A PID with pv, sp wired, man/man_out open, and `params`.
    fn pid(params: &[(&str, ParamValue)]) -> Harness {
        pid_setup(params, false).harness()
    }

    fn pid_setup(params: &[(&str, ParamValue)], manual: bool) -> Setup {
        let mut s = Setup::new(&PID).input("pv", Float).input("sp", Float);
        s = if manual {
            s.input("man", Bool).input("man_out", Float)
        } else {
            s.open("man").open("man_out")
        };
        s = s.output(Float);
        for (k, v) in params {
            s = s.param(k, v.clone());
        }
        s
    }

    /// Closed loop against the first-order plant `τ·dx/dt = K·u − x`, simulated exactly (zero
    /// order hold over each 10 ms scan); returns x at every scan after the first.
    fn closed_loop(h: &mut Harness, sp: f64, k: f64, tau: f64, scans: u64) -> Vec<f64> {
        let dt = 0.01;
        let mut x = 0.0;
        let mut xs = Vec::new();
        for n in 0..scans {
            h.scan(n * 10, &[f(x), f(sp)]);
            let u = h.float(0);
            let ku = k * u;
            x = ku + (x - ku) * (-dt / tau).exp();
            xs.push(x);
        }
        xs
    }

    #[test]
    fn p_only_step_response_matches_the_closed_form() {
        // u = kp·(sp − x): τ·dx/dt = K·kp·(sp − x) − x, so x goes to x∞ = K·kp·sp/(1 + K·kp)
        // with time constant τ/(1 + K·kp).
        let (kp, k, tau, sp) = (2.0, 1.5, 2.0, 10.0);
        let mut h = pid(&[
            ("kp", ParamValue::Float(kp)),
            ("out_min", ParamValue::Float(-1000.0)),
            ("out_max", ParamValue::Float(1000.0)),
        ]);
        let xs = closed_loop(&mut h, sp, k, tau, 500);
        let x_inf = k * kp * sp / (1.0 + k * kp);
        let tc = tau / (1.0 + k * kp);
        for (n, x) in xs.iter().enumerate() {
            let t = (n + 1) as f64 * 0.01;
            let exact = x_inf * (1.0 - (-t / tc).exp());
            assert!(
                (x - exact).abs() < 0.01 * x_inf,
                "t={t}: {x} vs closed form {exact}"
            );
        }
        assert!((xs[499] - x_inf).abs() < 1e-3 * x_inf);
    }

    #[test]
    fn pi_step_response_matches_the_closed_form() {
        // Ideal PI with ti = τ cancels the plant pole: the loop is K·kp/(τ·s), so
        // x(t) = sp·(1 − exp(−t·K·kp/τ)) with no steady-state error.
        let (kp, k, tau, sp) = (1.5, 2.0, 3.0, 50.0);
        let mut h = pid(&[
            ("kp", ParamValue::Float(kp)),
            ("ti", ms(3000)),
            ("out_max", ParamValue::Float(1000.0)),
        ]);
        let xs = closed_loop(&mut h, sp, k, tau, 1000);
        for (n, x) in xs.iter().enumerate() {
            let t = (n + 1) as f64 * 0.01;
            let exact = sp * (1.0 - (-t * k * kp / tau).exp());
            assert!(
                (x - exact).abs() < 0.01 * sp,
                "t={t}: {x} vs closed form {exact}"
            );
        }
        assert!((xs[999] - sp).abs() < 0.01, "{}", xs[999]);
        // The same controller in the parallel form (ki = kp/ti) gives the same trajectory.
        let mut par = pid(&[
            ("form", ParamValue::String("parallel".into())),
            ("kp", ParamValue::Float(kp)),
            ("ki", ParamValue::Float(kp / tau)),
            ("out_max", ParamValue::Float(1000.0)),
        ]);
        let ys = closed_loop(&mut par, sp, k, tau, 1000);
        for (x, y) in xs.iter().zip(&ys) {
            assert!((x - y).abs() < 1e-9);
        }
    }

    #[test]
    fn anti_windup_leaves_the_limit_as_soon_as_the_error_changes_sign() {
        let mut h = pid(&[("kp", ParamValue::Float(2.0)), ("ti", ms(1000))]);
        // 100 s of a setpoint the plant cannot reach (e = 10, P = 20): the integral climbs
        // until the output hits out_max, then stops there (80) instead of winding up to 2000.
        for n in 0..10_000 {
            h.scan(n * 10, &[f(70.0), f(80.0)]);
            assert!(h.float(0) <= 100.0);
        }
        assert_eq!(h.float(0), 100.0);
        // pv overshoots the setpoint: the error is negative and the output drops on this very
        // scan (a wound-up integral would hold it at the limit for minutes).
        h.scan(100_000, &[f(81.0), f(80.0)]);
        let first = h.float(0);
        assert!((first - (80.0 - 2.0 - 0.02)).abs() < 1e-9, "{first}");
        // And it keeps integrating down.
        h.scan(100_010, &[f(81.0), f(80.0)]);
        assert!(h.float(0) < first);
        // The same at the lower limit: the integral stops at 20 (P = −20).
        for n in 0..10_000 {
            h.scan(200_000 + n * 10, &[f(20.0), f(10.0)]);
        }
        assert_eq!(h.float(0), 0.0);
        h.scan(300_000, &[f(9.0), f(10.0)]);
        assert!(
            (h.float(0) - (20.0 + 2.0 + 0.02)).abs() < 1e-9,
            "{}",
            h.float(0)
        );
        // When P alone saturates, the integral does not move at all.
        let mut h = pid(&[("kp", ParamValue::Float(2.0)), ("ti", ms(1000))]);
        for n in 0..1000 {
            h.scan(n * 10, &[f(0.0), f(80.0)]);
        }
        h.scan(10_000, &[f(80.5), f(80.0)]);
        assert_eq!(h.float(0), 0.0); // P = −1: at out_min, and the integral stays 0
    }

    #[test]
    fn no_derivative_kick_on_a_setpoint_step() {
        let mut h = pid(&[
            ("kp", ParamValue::Float(1.0)),
            ("td", ms(5000)),
            ("out_min", ParamValue::Float(-100.0)),
        ]);
        h.scan(0, &[f(10.0), f(10.0)]);
        h.scan(10, &[f(10.0), f(10.0)]);
        assert_eq!(h.float(0), 0.0);
        // Setpoint step of 5: only P answers (derivative on measurement).
        h.scan(20, &[f(10.0), f(15.0)]);
        assert_eq!(h.float(0), 5.0);
        // A step of pv does kick: D = −kp·td·Δpv/dt = −1·5·1/0.01 = −500, clamped.
        h.scan(30, &[f(11.0), f(15.0)]);
        assert_eq!(h.float(0), -100.0);
        // Direct action flips the sign of both P and D.
        let mut h = pid(&[
            ("action", ParamValue::String("direct".into())),
            ("kp", ParamValue::Float(1.0)),
            ("td", ms(10)),
            ("out_min", ParamValue::Float(-100.0)),
        ]);
        h.scan(0, &[f(10.0), f(10.0)]);
        h.scan(10, &[f(12.0), f(10.0)]);
        assert_eq!(h.float(0), 2.0 + 2.0); // P = pv − sp, D = kp·td·Δpv/dt
    }

    #[test]
    fn derivative_filter_smooths_towards_the_unfiltered_value() {
        // pv ramps 1 per second; kd = 2 s: the unfiltered D is −2. With tf = 100 ms the filtered
        // D approaches −2 with that time constant.
        let mut h = pid(&[
            ("form", ParamValue::String("parallel".into())),
            ("kp", ParamValue::Float(0.0)),
            ("kd", ParamValue::Float(2.0)),
            ("tf", ms(100)),
            ("out_min", ParamValue::Float(-10.0)),
        ]);
        h.scan(0, &[f(0.0), f(0.0)]);
        h.scan(10, &[f(0.01), f(0.0)]);
        let first = h.float(0);
        assert!(first > -0.2 && first < -0.1, "{first}"); // −2·0.01/0.11
        for n in 2..100 {
            h.scan(n * 10, &[f(n as f64 * 0.01), f(0.0)]);
        }
        assert!((h.float(0) + 2.0).abs() < 1e-3, "{}", h.float(0));
    }

    #[test]
    fn bumpless_manual_auto_transfer() {
        let mk = || pid_setup(&[("kp", ParamValue::Float(2.0)), ("ti", ms(2000))], true).harness();
        let mut h = mk();
        // Manual at 42 with a large error: the output is exactly man_out.
        for n in 0..100 {
            h.scan(n * 10, &[f(30.0), f(50.0), b(true), f(42.0)]);
            assert_eq!(h.float(0), 42.0);
        }
        // Back to automatic: no jump — only one scan's worth of integration.
        h.scan(1000, &[f(30.0), f(50.0), b(false), f(0.0)]);
        let step = (h.float(0) - 42.0).abs();
        assert!(step <= 2.0 / 2.0 * 20.0 * 0.01 + 1e-9, "bump of {step}");
        // Auto → manual with man_out equal to the current output: no jump either.
        let out = h.float(0);
        h.scan(1010, &[f(30.0), f(50.0), b(true), f(out)]);
        assert_eq!(h.float(0), out);
        // man_out outside the limits is clamped.
        h.scan(1020, &[f(30.0), f(50.0), b(true), f(500.0)]);
        assert_eq!(h.float(0), 100.0);

        // man_out not wired: manual holds the output.
        let mut h = Setup::new(&PID)
            .input("pv", Float)
            .input("sp", Float)
            .input("man", Bool)
            .open("man_out")
            .output(Float)
            .param("kp", ParamValue::Float(1.0))
            .harness();
        h.scan(0, &[f(0.0), f(30.0), b(false)]);
        assert_eq!(h.float(0), 30.0);
        h.scan(10, &[f(0.0), f(70.0), b(true)]);
        assert_eq!(h.float(0), 30.0);
        h.scan(20, &[f(0.0), f(70.0), b(false)]);
        assert_eq!(h.float(0), 30.0); // bumpless: P jumped by 40, the integral absorbed it
    }

    #[test]
    fn undefined_inputs_hold_the_output_and_flag_it() {
        let mut h = pid(&[("kp", ParamValue::Float(1.0)), ("ti", ms(1000))]);
        h.scan(0, &[f(0.0), f(10.0)]);
        let out = h.float(0);
        assert!(!h.flagged());
        for (t, pv, sp) in [
            (10, f64::NAN, 10.0),
            (20, 0.0, f64::INFINITY),
            (30, f64::NEG_INFINITY, 1.0),
            (40, f64::MAX, -f64::MAX),
        ] {
            h.scan(t, &[f(pv), f(sp)]);
            assert_eq!(h.float(0), out, "pv={pv} sp={sp}");
            assert!(h.flagged(), "pv={pv} sp={sp}");
        }
        h.scan(50, &[f(0.0), f(10.0)]);
        assert!(!h.flagged());
        assert!(h.float(0) > out);
        // Stalled clock and huge gaps stay finite and within the limits.
        h.scan(50, &[f(0.0), f(10.0)]);
        h.scan_at(
            petra_core::MonoTime::from_nanos(u64::MAX),
            &[f(0.0), f(10.0)],
        );
        assert_eq!(h.float(0), 100.0);
    }

    #[test]
    fn build_checks_the_form_and_limits() {
        let e = pid_setup(&[("ki", ParamValue::Float(1.0))], false).refused();
        assert!(e.contains("ki belongs to the parallel form"), "{e}");
        let e = pid_setup(
            &[
                ("form", ParamValue::String("parallel".into())),
                ("ti", ms(10)),
            ],
            false,
        )
        .refused();
        assert!(e.contains("ti belongs to the ideal form"), "{e}");
        let e = pid_setup(&[("form", ParamValue::String("series".into()))], false).refused();
        assert!(e.contains("form is `series`"), "{e}");
        let e = pid_setup(&[("action", ParamValue::String("up".into()))], false).refused();
        assert!(e.contains("action is `up`"), "{e}");
        let e = pid_setup(&[("out_min", ParamValue::Float(100.0))], false).refused();
        assert!(
            e.contains("out_min (100) must be below out_max (100)"),
            "{e}"
        );
        let e = pid_setup(&[("kp", ParamValue::Float(f64::NAN))], false).refused();
        assert!(e.contains("kp is NaN"), "{e}");
    }

    #[test]
    fn reload_keeps_the_integral_and_the_pv_memory() {
        let params = [
            ("kp", ParamValue::Float(1.0)),
            ("ti", ms(500)),
            ("td", ms(100)),
            ("tf", ms(20)),
        ];
        let scans: Vec<(u64, Vec<Value>)> = (0..200)
            .map(|n| {
                (
                    n * 10,
                    vec![f((n as f64 * 0.1).sin() * 5.0 + 20.0), f(22.0)],
                )
            })
            .collect();
        for reload in [1, 7, 50, 150] {
            reload_keeps_state(|| pid(&params), &scans, reload, 1);
        }
        // New gains: the output continues from the integral (only P and D change).
        let mut old = pid(&[("kp", ParamValue::Float(1.0)), ("ti", ms(1000))]);
        for n in 0..300 {
            old.scan(n * 10, &[f(10.0), f(10.0 + (n.min(100) as f64) * 0.1)]);
        }
        let before = old.float(0);
        let mut new = pid(&[("kp", ParamValue::Float(3.0)), ("ti", ms(1000))]);
        new.adopt_from(&mut old);
        // e = 0: P = 0 and no integration; the output is the integral the old instance built.
        new.scan(3000, &[f(20.0), f(20.0)]);
        assert!(
            (new.float(0) - (before - 10.0)).abs() < 1e-9,
            "{}",
            new.float(0)
        );
        assert!(new.float(0) > 20.0, "{}", new.float(0));
    }

    #[test]
    fn hysteresis_switches_at_the_thresholds_and_holds_between() {
        let mut h = Setup::new(&HYSTERESIS)
            .input("in", Float)
            .constant("low", Value::Float(40.0))
            .constant("high", Value::Float(60.0))
            .output(Bool)
            .harness();
        let steps = [
            (50.0, false),
            (59.9, false),
            (60.0, true),
            (45.0, true),
            (40.1, true),
            (40.0, false),
            (55.0, false),
            (f64::INFINITY, true),
            (f64::NEG_INFINITY, false),
        ];
        for (k, (x, q)) in steps.into_iter().enumerate() {
            assert_eq!(h.scan(k as u64 * 10, &[f(x)]).bool(0), q, "in={x}");
            assert!(!h.flagged());
        }
        h.scan(100, &[f(70.0)]);
        h.scan(110, &[f(f64::NAN)]);
        assert!(h.bool(0) && h.flagged());
    }

    #[test]
    fn hysteresis_thresholds_from_signals_and_reload() {
        let make = || {
            Setup::new(&HYSTERESIS)
                .input("in", Float)
                .input("low", Float)
                .input("high", Float)
                .output(Bool)
                .harness()
        };
        let mut h = make();
        // low above high: in between counts as >= high.
        assert!(h.scan(0, &[f(5.0), f(7.0), f(3.0)]).bool(0));
        assert!(!h.scan(10, &[f(2.0), f(7.0), f(3.0)]).bool(0));
        h.scan(20, &[f(1.0), f(f64::NAN), f(3.0)]);
        assert!(h.flagged());
        let scans: Vec<(u64, Vec<Value>)> = [1.0, 5.0, 3.0, 2.0, 0.5, 3.0, 4.5]
            .iter()
            .enumerate()
            .map(|(k, &x)| (k as u64 * 10, vec![f(x), f(1.0), f(4.0)]))
            .collect();
        for reload in 1..scans.len() {
            reload_keeps_state(make, &scans, reload, 1);
        }
    }
}
