//! The custom block goes through the same path as a built-in: registry, configuration
//! compiler, engine — here in virtual time.

use petra_core::{Timestamp, Value, VirtualClock};
use petra_engine::Engine;
use petra_example_custom_block::RUN_HOURS;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const CONFIG: &str = "plant: example
tasks: [{ name: main, period: 1s }]
signals:
  - { name: pump.running, type: bool, initial: true }
  - { name: pump.hours, type: float, initial: 0.0 }
blocks:
  - { name: meter, type: RUN_HOURS, inputs: { in: pump.running }, outputs: { hours: pump.hours }, params: { start: 10.0 } }
";

fn engine(
    registry: &petra_engine::Registry,
    clock: Arc<VirtualClock>,
) -> (Engine, Arc<petra_core::Bus>) {
    let none = |_: &str| None;
    let plan = petra_config::load_str(CONFIG, "example.yaml", Path::new("."), &none, registry)
        .expect("the example compiles");
    let bus = plan.bus_builder().build(Timestamp::default());
    (Engine::new(plan.program, bus.clone(), clock).unwrap(), bus)
}

fn hours(bus: &petra_core::Bus) -> f64 {
    bus.read(bus.id("pump.hours").unwrap())
        .unwrap()
        .value
        .as_f64()
        .unwrap()
}

#[test]
fn the_custom_block_is_checked_compiled_and_run_like_a_builtin() {
    let mut registry = petra_blocks::builtin();
    registry.register(&RUN_HOURS).unwrap();
    let clock = Arc::new(VirtualClock::new(Timestamp::default()));
    let (mut e, bus) = engine(&registry, clock.clone());
    // One virtual hour of 1 s scans; the first scan counts one period.
    e.run_until(petra_core::MonoTime::from_nanos(3_599 * 1_000_000_000));
    assert!((hours(&bus) - 11.0).abs() < 1e-9, "{}", hours(&bus));

    // Reload (here with a fresh bus, as when signals change): the new instance adopts the
    // running one's count and the signal values move over.
    let (mut next, bus) = engine(&registry, clock.clone());
    let report = next.take_over(&mut e);
    assert_eq!((report.kept, report.signals_copied), (1, 2));
    clock.advance(Duration::from_secs(1));
    next.run_due();
    assert!(
        (hours(&bus) - (11.0 + 1.0 / 3600.0)).abs() < 1e-9,
        "{}",
        hours(&bus)
    );
    assert_eq!(
        bus.read(bus.id("pump.running").unwrap()).unwrap().value,
        Value::Bool(true)
    );
}

#[test]
fn without_registration_the_configuration_is_refused() {
    let none = |_: &str| None;
    let err = petra_config::load_str(
        CONFIG,
        "example.yaml",
        Path::new("."),
        &none,
        &petra_blocks::builtin(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("error[unknown-block-type]") && err.contains("RUN_HOURS"),
        "{err}"
    );
}
