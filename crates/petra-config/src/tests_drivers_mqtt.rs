//! The `type: mqtt` driver: what compiles into which driver configuration, and every refusal.

use crate::DriverPlan;
use crate::tests::{compile, errors, one_error, show};
use std::path::PathBuf;
use std::time::Duration;

const SIGNALS: &str = "plant: demo
signals:
  - { name: room1.temp, type: float }
  - { name: room2.temp, type: float }
  - { name: tank.level, type: float }
  - { name: tank.sp, type: float, write: [operator, mqtt] }
  - { name: pump.run, type: bool }
  - { name: other, type: int }
";

fn with(drivers: &str, server: bool) -> String {
    let server = if server {
        "server:\n  listen: 127.0.0.1:8080\n"
    } else {
        ""
    };
    format!("{SIGNALS}{server}drivers:\n{drivers}")
}

fn mqtt(plan: &crate::Plan, i: usize) -> &petra_mqtt::MqttConfig {
    match &plan.drivers[i] {
        DriverPlan::Mqtt(m) => m,
        other => panic!("driver {} is not MQTT", other.name()),
    }
}

#[test]
fn an_mqtt_driver_compiles_with_its_defaults() {
    let src = with(
        "  - name: broker
    type: mqtt
    url: mqtts://broker.local
    username: petra
    password: s3cret
    ca_file: certs/ca.pem
    subscribe:
      - { topic: sensors/room1/temp, signal: room1.temp }
      - { topic: sensors/+/room2, signal: room2.temp, json: /temp }
    publish:
      prefix: petra/demo
      signals: ['tank.*', 'pump.*']
      qos: 1
      retain: true
      deadband: 0.5
      min_interval: 100ms
    commands: true
",
        true,
    );
    let plan = compile(&src).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (plan.drivers[0].name(), plan.drivers[0].kind()),
        ("broker", "mqtt")
    );
    let m = mqtt(&plan, 0);
    assert_eq!(
        (m.broker.host.as_str(), m.broker.port),
        ("broker.local", 8883)
    );
    let tls = m.broker.tls.as_ref().unwrap();
    assert_eq!(tls.ca_file, PathBuf::from("/etc/petra/certs/ca.pem"));
    assert_eq!(m.client_id, "petra-demo-broker");
    assert_eq!(
        (m.username.as_deref(), m.password.as_deref()),
        (Some("petra"), Some("s3cret"))
    );
    assert_eq!(m.prefix, "petra/demo");
    assert_eq!(m.status_topic(), "petra/demo/status");
    assert_eq!(m.subscribe.len(), 2);
    assert_eq!(m.subscribe[1].json.as_deref(), Some("/temp"));
    let p = m.publish.as_ref().unwrap();
    let names: Vec<&str> = p.signals.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(names, ["tank.level", "tank.sp", "pump.run"]);
    assert_eq!(
        (p.qos, p.retain, p.deadband, p.min_interval),
        (1, true, 0.5, Duration::from_millis(100))
    );
    assert!(m.commands);
    assert_eq!(plan.drivers[0].output_signals().len(), 3);
}

#[test]
fn plain_mqtt_defaults() {
    let src = with(
        "  - { name: b, type: mqtt, url: 'mqtt://10.0.0.9' }\n",
        false,
    );
    let plan = compile(&src).unwrap_or_else(|e| panic!("{e}"));
    let m = mqtt(&plan, 0);
    assert_eq!((m.broker.port, m.broker.tls.is_none()), (1883, true));
    assert_eq!(m.prefix, "petra/demo");
    assert!(m.publish.is_none() && m.subscribe.is_empty() && !m.commands);
}

#[test]
fn every_bad_mqtt_setting_is_reported_at_once() {
    let src = with(
        "  - name: b
    type: mqtt
    url: http://broker
    password: x
    commands: true
    subscribe:
      - { topic: 'sensors/#/x', signal: room1.temp }
      - { topic: sensors/a, signal: nope }
      - { topic: sensors/b, signal: room2.temp, json: temp }
    publish:
      prefix: 'petra/#'
      signals: ['valve.*']
      qos: 2
      deadband: -1
",
        false,
    );
    let errs = errors(&src);
    let got: Vec<(&str, usize)> = errs.iter().map(|d| (d.code, d.line)).collect();
    assert_eq!(
        got,
        [
            ("missing-key", 10),
            ("bad-value", 12),
            ("bad-value", 14),
            ("bad-value", 16),
            ("unknown-signal", 17),
            ("bad-value", 18),
            ("bad-value", 20),
            ("unknown-signal", 21),
            ("out-of-range", 22),
            ("out-of-range", 23),
        ],
        "{}",
        show(&errs)
    );
    assert!(
        errs[1].message.contains("mqtt:// or mqtts://"),
        "{}",
        errs[1]
    );
    assert!(
        errs[2].message.contains("add a `server` section"),
        "{}",
        errs[2]
    );
    assert!(
        errs[3].message.contains("not a valid topic filter"),
        "{}",
        errs[3]
    );
}

#[test]
fn a_subscribed_signal_has_one_writer() {
    let src = with(
        "  - { name: b, type: mqtt, url: 'mqtt://h', subscribe: [{ topic: a, signal: other }, { topic: b, signal: other }] }\n",
        false,
    );
    let d = one_error(&src, "multiple-writers", 10, 86);
    assert!(
        d.message.contains("driver `b` writes signal `other` twice"),
        "{d}"
    );
}
