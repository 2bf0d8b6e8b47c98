//! Signal generators for demos and `petra test` scenarios: SINE, SQUARE, SAWTOOTH and
//! RANDOM_WALK. Simulation only — they have no inputs and drive a signal from scan time.
//!
//! The waveforms are functions of `t`, the scheduled time since the block's first scan
//! (`Io::now()`), computed in integer nanoseconds modulo the period, so they stay exact after
//! days of running and are identical in real and virtual time. RANDOM_WALK is driven by a
//! seeded xorshift64* generator: the same seed and the same scan times give the same walk.
//!
//! A hot reload keeps the time origin (the waveform continues without a jump in phase, with
//! the new parameters) and, for RANDOM_WALK, the current value and generator state.

use crate::{output, param};
use petra_core::MonoTime;
use petra_engine::{
    Block, BlockType, BuildCtx, BuildResult, Io, ParamSpec, ParamType, PortSpec, PortType, previous,
};
use std::f64::consts::TAU;
use std::time::Duration;

const DEFAULT_PERIOD: Duration = Duration::from_secs(10);

const PERIOD: ParamSpec = param(
    "period",
    ParamType::Duration,
    Some(0.0),
    None,
    "length of one cycle, > 0; default 10s",
);

static OUT: [PortSpec; 1] = [output("out", PortType::Float, "the signal")];

fn finite(name: &str, v: f64) -> Result<f64, String> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(format!("{name} is {v}; it must be a finite number"))
    }
}

/// The period in ns (> 0), or the message for a zero one.
fn period_ns(ctx: &BuildCtx<'_>) -> Result<u128, String> {
    let p = ctx.params.duration_or("period", DEFAULT_PERIOD).as_nanos();
    if p == 0 {
        return Err("period is 0; give the cycle length, e.g. `10s`".into());
    }
    Ok(p)
}

/// Time origin and phase: where in its cycle a waveform is on this scan.
#[derive(Clone, Copy)]
struct Clock {
    /// The first scan's time; `None` until the first scan.
    origin: Option<MonoTime>,
    period_ns: u128,
}

impl Clock {
    fn new(period_ns: u128) -> Clock {
        Clock {
            origin: None,
            period_ns,
        }
    }

    /// Fraction of the cycle elapsed at `now`, in [0, 1). A clock going back before the
    /// origin reads as the origin.
    fn phase(&mut self, now: MonoTime) -> f64 {
        let origin = *self.origin.get_or_insert(now);
        let t = now.saturating_sub(origin).as_nanos();
        (t % self.period_ns) as f64 / self.period_ns as f64
    }

    fn adopt(&mut self, old: &Clock) {
        self.origin = old.origin;
    }
}

// ---------------------------------------------------------------------------------------------
// SINE

pub static SINE: BlockType = BlockType {
    name: "SINE",
    aliases: &[],
    summary: "sine wave: offset + amplitude·sin(2π·t/period + phase) (simulation)",
    inputs: &[],
    outputs: &OUT,
    params: &[
        param(
            "amplitude",
            ParamType::Float,
            None,
            None,
            "peak deviation from offset; default 1",
        ),
        PERIOD,
        param(
            "offset",
            ParamType::Float,
            None,
            None,
            "mean value; default 0",
        ),
        param(
            "phase",
            ParamType::Float,
            None,
            None,
            "phase at t = 0 in degrees; default 0",
        ),
    ],
    build: build_sine,
};

fn build_sine(ctx: &BuildCtx<'_>) -> BuildResult {
    let p = ctx.params;
    Ok(Box::new(Sine {
        clock: Clock::new(period_ns(ctx)?),
        amplitude: finite("amplitude", p.float_or("amplitude", 1.0))?,
        offset: finite("offset", p.float_or("offset", 0.0))?,
        phase: finite("phase", p.float_or("phase", 0.0))?.to_radians(),
    }))
}

struct Sine {
    clock: Clock,
    amplitude: f64,
    offset: f64,
    /// Radians.
    phase: f64,
}

impl Block for Sine {
    fn execute(&mut self, io: &mut Io<'_>) {
        let x = self.clock.phase(io.now());
        io.set_float(
            0,
            self.offset + self.amplitude * (TAU * x + self.phase).sin(),
        );
    }

    fn adopt(&mut self, old: &mut dyn Block) {
        if let Some(old) = previous::<Sine>(old) {
            self.clock.adopt(&old.clock);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// SQUARE

pub static SQUARE: BlockType = BlockType {
    name: "SQUARE",
    aliases: &["PULSE_GEN"],
    summary: "square wave: high for duty·period, then low; as bool and float (simulation)",
    inputs: &[],
    outputs: &[
        output("q", PortType::Bool, "true in the high part of the cycle"),
        output("out", PortType::Float, "`high` or `low`"),
    ],
    params: &[
        PERIOD,
        param(
            "duty",
            ParamType::Float,
            Some(0.0),
            Some(1.0),
            "fraction of the period that is high, 0..=1; default 0.5",
        ),
        param(
            "low",
            ParamType::Float,
            None,
            None,
            "value of out when low; default 0",
        ),
        param(
            "high",
            ParamType::Float,
            None,
            None,
            "value of out when high; default 1",
        ),
    ],
    build: build_square,
};

fn build_square(ctx: &BuildCtx<'_>) -> BuildResult {
    let p = ctx.params;
    let duty = p.float_or("duty", 0.5);
    if !(0.0..=1.0).contains(&duty) {
        return Err(format!("duty is {duty}; it must be between 0 and 1"));
    }
    Ok(Box::new(Square {
        clock: Clock::new(period_ns(ctx)?),
        duty,
        low: finite("low", p.float_or("low", 0.0))?,
        high: finite("high", p.float_or("high", 1.0))?,
    }))
}

struct Square {
    clock: Clock,
    duty: f64,
    low: f64,
    high: f64,
}

impl Block for Square {
    fn execute(&mut self, io: &mut Io<'_>) {
        let q = self.clock.phase(io.now()) < self.duty;
        io.set_bool(0, q);
        io.set_float(1, if q { self.high } else { self.low });
    }

    fn adopt(&mut self, old: &mut dyn Block) {
        if let Some(old) = previous::<Square>(old) {
            self.clock.adopt(&old.clock);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// SAWTOOTH

pub static SAWTOOTH: BlockType = BlockType {
    name: "SAWTOOTH",
    aliases: &["RAMP_GEN"],
    summary: "sawtooth: rises linearly from min to max over each period, then restarts (simulation)",
    inputs: &[],
    outputs: &OUT,
    params: &[
        PERIOD,
        param(
            "min",
            ParamType::Float,
            None,
            None,
            "value at the start of a cycle; default 0",
        ),
        param(
            "max",
            ParamType::Float,
            None,
            None,
            "value approached at the end of a cycle; default 1",
        ),
    ],
    build: build_sawtooth,
};

fn build_sawtooth(ctx: &BuildCtx<'_>) -> BuildResult {
    let p = ctx.params;
    Ok(Box::new(Sawtooth {
        clock: Clock::new(period_ns(ctx)?),
        min: finite("min", p.float_or("min", 0.0))?,
        max: finite("max", p.float_or("max", 1.0))?,
    }))
}

struct Sawtooth {
    clock: Clock,
    min: f64,
    max: f64,
}

impl Block for Sawtooth {
    fn execute(&mut self, io: &mut Io<'_>) {
        let x = self.clock.phase(io.now());
        // min + (max − min)·x, written so extreme limits (±f64::MAX) do not overflow.
        io.set_float(0, self.min * (1.0 - x) + self.max * x);
    }

    fn adopt(&mut self, old: &mut dyn Block) {
        if let Some(old) = previous::<Sawtooth>(old) {
            self.clock.adopt(&old.clock);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// RANDOM_WALK

pub static RANDOM_WALK: BlockType = BlockType {
    name: "RANDOM_WALK",
    aliases: &[],
    summary: "deterministic random walk between min and max (seeded; simulation)",
    inputs: &[],
    outputs: &OUT,
    params: &[
        param(
            "seed",
            ParamType::Int,
            None,
            None,
            "generator seed: the same seed gives the same walk; default 1",
        ),
        param(
            "step",
            ParamType::Float,
            Some(0.0),
            None,
            "scale of the change: each scan adds step·u·√(dt/1s), u uniform in [-1, 1); default 1",
        ),
        param(
            "min",
            ParamType::Float,
            None,
            None,
            "lower bound; default 0",
        ),
        param(
            "max",
            ParamType::Float,
            None,
            None,
            "upper bound; default 100",
        ),
        param(
            "initial",
            ParamType::Float,
            None,
            None,
            "value on the first scan, min..=max; default (min + max) / 2",
        ),
    ],
    build: build_random_walk,
};

fn build_random_walk(ctx: &BuildCtx<'_>) -> BuildResult {
    let p = ctx.params;
    let min = finite("min", p.float_or("min", 0.0))?;
    let max = finite("max", p.float_or("max", 100.0))?;
    if min > max {
        return Err(format!("min ({min}) must not be above max ({max})"));
    }
    let initial = p.float_or("initial", min / 2.0 + max / 2.0);
    if !(min..=max).contains(&initial) {
        return Err(format!(
            "initial is {initial}; it must be between min ({min}) and max ({max})"
        ));
    }
    let step = finite("step", p.float_or("step", 1.0))?;
    if step < 0.0 {
        return Err(format!("step is {step}; it must be >= 0"));
    }
    Ok(Box::new(RandomWalk {
        rng: XorShift::new(p.int_or("seed", 1) as u64),
        step,
        min,
        max,
        value: initial,
        started: false,
    }))
}

/// xorshift64* (Vigna): tiny, fast, good enough for simulated noise; not for anything secret.
#[derive(Clone, Copy)]
struct XorShift(u64);

impl XorShift {
    /// Seeds through splitmix64, so nearby seeds give unrelated walks and 0 is a valid seed
    /// (xorshift's state must not be 0).
    fn new(seed: u64) -> XorShift {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        XorShift(if z == 0 { 0x2545_F491_4F6C_DD1D } else { z })
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [-1, 1).
    fn symmetric(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
}

struct RandomWalk {
    rng: XorShift,
    step: f64,
    min: f64,
    max: f64,
    value: f64,
    /// The first scan outputs `initial` unchanged.
    started: bool,
}

impl Block for RandomWalk {
    fn execute(&mut self, io: &mut Io<'_>) {
        let dt = io.dt().as_secs_f64();
        if !self.started {
            self.started = true;
        } else if dt > 0.0 {
            // √dt scaling: the spread after a given time does not depend on the task period.
            let mut v = self.value + self.step * self.rng.symmetric() * dt.sqrt();
            // Reflect at the bounds (no sticking to a limit), then clamp for steps larger than
            // the range.
            if v > self.max {
                v = self.max - (v - self.max);
            } else if v < self.min {
                v = self.min + (self.min - v);
            }
            if v.is_finite() {
                self.value = v.clamp(self.min, self.max);
            }
        }
        io.set_float(0, self.value);
    }

    fn adopt(&mut self, old: &mut dyn Block) {
        if let Some(old) = previous::<RandomWalk>(old) {
            self.rng = old.rng;
            self.value = old.value.clamp(self.min, self.max);
            self.started = old.started;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Harness, Setup, reload_keeps_state};
    use petra_core::ValueType::{Bool, Float};
    use petra_engine::ParamValue;

    fn gen_(ty: &'static BlockType, params: &[(&str, ParamValue)], outs: usize) -> Harness {
        let mut s = Setup::new(ty);
        if outs == 2 {
            s = s.output(Bool);
        }
        s = s.output(Float);
        for (k, v) in params {
            s = s.param(k, v.clone());
        }
        s.harness()
    }

    fn ms(v: u64) -> ParamValue {
        ParamValue::Duration(Duration::from_millis(v))
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn sine_follows_scan_time() {
        let mut h = gen_(
            &SINE,
            &[
                ("amplitude", ParamValue::Float(2.0)),
                ("period", ms(1000)),
                ("offset", ParamValue::Float(5.0)),
                ("phase", ParamValue::Float(90.0)),
            ],
            1,
        );
        // t counts from the first scan (at 300 ms here).
        for (t, expect) in [(300, 7.0), (550, 5.0), (800, 3.0), (1050, 5.0), (1300, 7.0)] {
            assert!(
                close(h.scan(t, &[]).float(0), expect),
                "t={t}: {}",
                h.float(0)
            );
        }
        // After ~11.6 days of scans the phase is still exact.
        assert!(close(h.scan(1_000_000_300, &[]).float(0), 7.0));
        // A clock going back before the origin reads as the origin.
        assert!(close(h.scan(0, &[]).float(0), 7.0));
    }

    #[test]
    fn square_duty_and_levels() {
        let mut h = gen_(
            &SQUARE,
            &[
                ("period", ms(100)),
                ("duty", ParamValue::Float(0.3)),
                ("low", ParamValue::Float(-1.0)),
                ("high", ParamValue::Float(4.0)),
            ],
            2,
        );
        let qs: Vec<bool> = (0..20).map(|k| h.scan(k * 10, &[]).bool(0)).collect();
        let expect: Vec<bool> = (0..20).map(|k| k % 10 < 3).collect();
        assert_eq!(qs, expect);
        assert_eq!(h.scan(300, &[]).float(1), 4.0);
        assert_eq!(h.scan(350, &[]).float(1), -1.0);
        for (duty, always) in [(0.0, false), (1.0, true)] {
            let mut h = gen_(&SQUARE, &[("duty", ParamValue::Float(duty))], 2);
            for k in 0..30 {
                assert_eq!(h.scan(k * 777, &[]).bool(0), always);
            }
        }
        let e = Setup::new(&SQUARE).param("period", ms(0)).refused();
        assert!(e.contains("period is 0"), "{e}");
    }

    #[test]
    fn sawtooth_rises_and_restarts() {
        let mut h = gen_(
            &SAWTOOTH,
            &[
                ("period", ms(200)),
                ("min", ParamValue::Float(10.0)),
                ("max", ParamValue::Float(20.0)),
            ],
            1,
        );
        for (t, expect) in [(0, 10.0), (50, 12.5), (190, 19.5), (200, 10.0), (300, 15.0)] {
            assert!(
                close(h.scan(t, &[]).float(0), expect),
                "t={t}: {}",
                h.float(0)
            );
        }
        let mut h = gen_(
            &SAWTOOTH,
            &[
                ("min", ParamValue::Float(-f64::MAX)),
                ("max", ParamValue::Float(f64::MAX)),
            ],
            1,
        );
        assert!(h.scan(0, &[]).scan(2500, &[]).float(0).is_finite());
    }

    #[test]
    fn random_walk_is_deterministic_bounded_and_seed_dependent() {
        let walk = |seed: i64| {
            let mut h = gen_(
                &RANDOM_WALK,
                &[
                    ("seed", ParamValue::Int(seed)),
                    ("step", ParamValue::Float(5.0)),
                    ("min", ParamValue::Float(-1.0)),
                    ("max", ParamValue::Float(1.0)),
                ],
                1,
            );
            (0..2000)
                .map(|k| h.scan(k * 10, &[]).float(0))
                .collect::<Vec<_>>()
        };
        let a = walk(7);
        assert_eq!(a, walk(7));
        assert_ne!(a, walk(8));
        assert_ne!(walk(0), walk(1));
        assert_eq!(a[0], 0.0); // initial: the middle
        assert!(a.iter().all(|v| (-1.0..=1.0).contains(v)));
        // It moves, by at most step·√dt per scan, and visits both halves of the range.
        let max_step = 5.0 * 0.01f64.sqrt() + 1e-12;
        assert!(a.windows(2).all(|w| (w[1] - w[0]).abs() <= max_step));
        assert!(a.iter().any(|v| *v > 0.5) && a.iter().any(|v| *v < -0.5));
        // A stalled clock does not move it.
        let mut h = gen_(&RANDOM_WALK, &[], 1);
        h.scan(0, &[]);
        h.scan(10, &[]);
        let v = h.float(0);
        assert_eq!(h.scan(10, &[]).float(0), v);
        // A huge step stays inside the bounds.
        let mut h = gen_(&RANDOM_WALK, &[("step", ParamValue::Float(1e300))], 1);
        for k in 0..50 {
            assert!((0.0..=100.0).contains(&h.scan(k * 1000, &[]).float(0)));
        }
        let e = Setup::new(&RANDOM_WALK)
            .param("initial", ParamValue::Float(200.0))
            .refused();
        assert!(e.contains("initial is 200"), "{e}");
    }

    #[test]
    fn reload_keeps_the_phase_and_the_walk() {
        let scans: Vec<(u64, Vec<petra_core::Value>)> =
            (0..50).map(|k| (500 + k * 37, vec![])).collect();
        let walk_scans: Vec<(u64, Vec<petra_core::Value>)> =
            (0..50).map(|k| (500 + k * 10, vec![])).collect();
        for reload in [1, 9, 30] {
            reload_keeps_state(|| gen_(&SINE, &[("period", ms(300))], 1), &scans, reload, 1);
            reload_keeps_state(
                || gen_(&SQUARE, &[("period", ms(300))], 2),
                &scans,
                reload,
                2,
            );
            reload_keeps_state(
                || gen_(&SAWTOOTH, &[("period", ms(300))], 1),
                &scans,
                reload,
                1,
            );
            // The walk depends on dt: scans one period apart, as the fresh instance's first
            // scan assumes.
            reload_keeps_state(
                || gen_(&RANDOM_WALK, &[("seed", ParamValue::Int(3))], 1),
                &walk_scans,
                reload,
                1,
            );
        }
        // A new amplitude applies at once, in the running phase.
        let mut old = gen_(&SINE, &[("period", ms(1000))], 1);
        old.scan(0, &[]);
        old.scan(200, &[]);
        let mut new = gen_(
            &SINE,
            &[("period", ms(1000)), ("amplitude", ParamValue::Float(3.0))],
            1,
        );
        new.adopt_from(&mut old);
        assert!(close(new.scan(250, &[]).float(0), 3.0));
    }
}
