//! Simulation blocks, for examples and `petra test` scenarios — not for controlling a plant.
//!
//! TANK integrates a tank level from in- and outflow, so the bundled example can run a level
//! loop without hardware. A hot reload keeps the level ([`Block::adopt`]), clamped to the new
//! `max_level`; `level0` only applies to a fresh start.

use crate::{input, output};
use petra_engine::{
    Block, BlockType, BuildCtx, BuildResult, Io, ParamSpec, ParamType, PortSpec, PortType, previous,
};

static PARAMS: [ParamSpec; 3] = [
    ParamSpec {
        name: "area",
        ty: ParamType::Float,
        required: false,
        min: Some(0.0),
        max: None,
        doc: "cross-section in m²; must be > 0; default 1.0",
    },
    ParamSpec {
        name: "level0",
        ty: ParamType::Float,
        required: false,
        min: Some(0.0),
        max: None,
        doc: "initial level in m, 0..=max_level; default 0",
    },
    ParamSpec {
        name: "max_level",
        ty: ParamType::Float,
        required: false,
        min: Some(0.0),
        max: None,
        doc: "level at which the tank overflows, in m; default 10",
    },
];

static INPUTS: [PortSpec; 2] = [
    input("inflow", PortType::Float, "flow into the tank, m³/s"),
    input("outflow", PortType::Float, "flow out of the tank, m³/s"),
];

static OUTPUTS: [PortSpec; 2] = [
    output("level", PortType::Float, "level in m, 0..=max_level"),
    output(
        "overflow",
        PortType::Bool,
        "true while the level is at max_level",
    ),
];

pub static TANK: BlockType = BlockType {
    name: "TANK",
    aliases: &[],
    summary: "simulated tank: integrates (inflow - outflow) / area into a level (simulation only)",
    inputs: &INPUTS,
    outputs: &OUTPUTS,
    params: &PARAMS,
    build: build_tank,
};

fn build_tank(ctx: &BuildCtx<'_>) -> BuildResult {
    let area = ctx.params.float_or("area", 1.0);
    let level0 = ctx.params.float_or("level0", 0.0);
    let max_level = ctx.params.float_or("max_level", 10.0);
    if !(area.is_finite() && area > 0.0) {
        return Err(format!(
            "area is {area}; it must be a finite number > 0 (m²)"
        ));
    }
    if !(max_level.is_finite() && max_level >= 0.0) {
        return Err(format!(
            "max_level is {max_level}; it must be a finite number >= 0 (m)"
        ));
    }
    if !(0.0..=max_level).contains(&level0) {
        return Err(format!(
            "level0 is {level0}; it must be between 0 and max_level ({max_level})"
        ));
    }
    Ok(Box::new(Tank {
        level: level0,
        area,
        max_level,
    }))
}

struct Tank {
    level: f64,
    area: f64,
    max_level: f64,
}

impl Block for Tank {
    fn execute(&mut self, io: &mut Io<'_>) {
        // Rectangle rule over the time since the previous scan (the period on the first scan),
        // with this scan's flows.
        let net = io.float(0) - io.float(1);
        let next = self.level + net * io.dt().as_secs_f64() / self.area;
        // A NaN flow (or inf - inf) leaves the level where it was instead of poisoning it for
        // good; an infinite flow just fills or empties the tank.
        if !next.is_nan() {
            self.level = next.max(0.0).min(self.max_level);
        }
        io.set_float(0, self.level);
        io.set_bool(1, self.level >= self.max_level);
    }

    fn adopt(&mut self, old: &mut dyn Block) {
        if let Some(old) = previous::<Tank>(old) {
            self.level = old.level.min(self.max_level);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Harness, Setup, f, i, reload_keeps_state};
    use petra_core::Value;
    use petra_core::ValueType::{Bool, Float, Int};
    use petra_engine::ParamValue;

    fn tank(params: &[(&str, f64)]) -> Harness {
        let mut s = Setup::new(&TANK)
            .input("inflow", Float)
            .input("outflow", Float)
            .output(Float)
            .output(Bool)
            .period_ms(100);
        for (k, v) in params {
            s = s.param(k, ParamValue::Float(*v));
        }
        s.harness()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn integrates_net_flow_over_dt_and_area() {
        let mut h = tank(&[("area", 2.0), ("level0", 1.0)]);
        // First scan integrates one period (100 ms): 1 + 0.4 * 0.1 / 2.
        h.scan(0, &[f(0.5), f(0.1)]);
        assert!(close(h.float(0), 1.02), "{}", h.float(0));
        for k in 1..=10 {
            h.scan(k * 100, &[f(0.5), f(0.1)]);
        }
        // Ten more periods: one more second of 0.4 m³/s over 2 m².
        assert!(close(h.float(0), 1.22), "{}", h.float(0));
        assert!(!h.bool(1));
        // dt comes from the scan times: a 1 s gap integrates 1 s.
        h.scan(2000, &[f(0.0), f(0.22)]);
        assert!(close(h.float(0), 1.11), "{}", h.float(0));
    }

    #[test]
    fn clamps_at_empty_and_full_and_flags_overflow() {
        let mut h = tank(&[("max_level", 1.0), ("level0", 0.5)]);
        h.scan(0, &[f(0.0), f(100.0)]);
        assert_eq!((h.float(0), h.bool(1)), (0.0, false));
        h.scan(100, &[f(100.0), f(0.0)]);
        assert_eq!((h.float(0), h.bool(1)), (1.0, true));
        h.scan(200, &[f(100.0), f(0.0)]);
        assert_eq!((h.float(0), h.bool(1)), (1.0, true));
        // Draining leaves the overflow at once.
        h.scan(300, &[f(0.0), f(1.0)]);
        assert!(close(h.float(0), 0.9) && !h.bool(1));
    }

    #[test]
    fn defaults_and_int_flow_signals() {
        let mut h = Setup::new(&TANK)
            .input("inflow", Int)
            .input("outflow", Int)
            .output(Float)
            .unwired()
            .harness();
        h.scan(0, &[i(1), i(0)]);
        assert!(close(h.float(0), 0.01)); // area 1, period 10 ms
        for k in 1..2000 {
            h.scan(k * 10, &[i(1), i(0)]);
        }
        assert_eq!(h.float(0), 10.0); // default max_level
    }

    #[test]
    fn nan_and_infinite_flows_do_not_poison_the_level() {
        let mut h = tank(&[("level0", 5.0)]);
        h.scan(0, &[f(f64::NAN), f(0.0)]);
        assert_eq!(h.float(0), 5.0);
        h.scan(100, &[f(f64::INFINITY), f(f64::INFINITY)]);
        assert_eq!(h.float(0), 5.0);
        h.scan(200, &[f(f64::INFINITY), f(0.0)]);
        assert_eq!((h.float(0), h.bool(1)), (10.0, true));
        h.scan(300, &[f(0.0), f(f64::INFINITY)]);
        assert_eq!(h.float(0), 0.0);
        h.scan(300, &[f(1.0), f(0.0)]); // no time elapsed: no change
        assert_eq!(h.float(0), 0.0);
    }

    #[test]
    fn reload_keeps_the_level() {
        let scans: Vec<(u64, Vec<Value>)> = (0..40)
            .map(|k| (k * 100, vec![f(0.5), f(if k > 20 { 1.0 } else { 0.1 })]))
            .collect();
        for reload in [1, 10, 25] {
            reload_keeps_state(|| tank(&[("level0", 2.0)]), &scans, reload, 2);
        }
        // New geometry applies from the reload on; the level is clamped to a lower max_level.
        let mut old = tank(&[("level0", 5.0)]);
        old.scan(0, &[f(0.0), f(0.0)]);
        let mut new = tank(&[("area", 2.0), ("level0", 1.0)]);
        new.adopt_from(&mut old);
        new.scan(100, &[f(2.0), f(0.0)]);
        assert!(close(new.float(0), 5.1), "{}", new.float(0));
        let mut smaller = tank(&[("max_level", 3.0)]);
        smaller.adopt_from(&mut new);
        smaller.scan(200, &[f(0.0), f(0.0)]);
        assert_eq!((smaller.float(0), smaller.bool(1)), (3.0, true));
    }

    #[test]
    fn build_refuses_bad_geometry() {
        let base = || {
            Setup::new(&TANK)
                .input("inflow", Float)
                .input("outflow", Float)
                .output(Float)
        };
        let e = base().param("area", ParamValue::Float(0.0)).refused();
        assert!(e.starts_with("area is 0"), "{e}");
        let e = base()
            .param("max_level", ParamValue::Float(f64::INFINITY))
            .refused();
        assert!(e.contains("max_level is inf"), "{e}");
        let e = base()
            .param("max_level", ParamValue::Float(2.0))
            .param("level0", ParamValue::Float(3.0))
            .refused();
        assert!(
            e.contains("level0 is 3; it must be between 0 and max_level (2)"),
            "{e}"
        );
        let e = base()
            .param("level0", ParamValue::Float(f64::NAN))
            .refused();
        assert!(e.contains("level0 is NaN"), "{e}");
    }
}
