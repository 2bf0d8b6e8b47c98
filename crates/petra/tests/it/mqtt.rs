//! `petra run` with an MQTT driver against mosquitto: signals out, sensors in, commands through
//! the API's write path into the audit log, and the last will when Petra is killed.

use crate::live::Live;
use petra_test_support::mqtt::{self as peer, Sub};
use petra_test_support::{DEFAULT_TIMEOUT, free_port, wait_until};
use serde_json::{Value, json};
use std::path::Path;

fn write_config(dir: &Path, broker: &peer::Broker, api_port: u16) {
    let yaml = format!(
        "plant: m
signals:
  - {{ name: room.temp, type: float }}
  - {{ name: tank.level, type: float, initial: 1.5 }}
  - {{ name: tank.sp, type: float, initial: 2.0, min: 0, max: 10, write: [operator, mqtt] }}
  - {{ name: pump.run, type: bool, initial: false, write: [operator] }}
server:
  listen: 127.0.0.1:{api_port}
drivers:
  - name: broker
    type: mqtt
    url: mqtts://localhost:{tls}
    username: {user}
    password: {password}
    ca_file: {ca}
    reconnect_max: 300ms
    subscribe:
      - {{ topic: sensors/+/temp, signal: room.temp }}
    publish:
      prefix: petra/m
      signals: ['tank.*', 'pump.*']
      qos: 1
      retain: true
    commands: true
",
        tls = broker.tls_port(),
        user = peer::USER,
        password = peer::PASSWORD,
        ca = broker.ca_file().display(),
    );
    std::fs::write(dir.join("plant.yaml"), yaml).unwrap();
}

fn payload(m: &peer::Msg) -> Value {
    serde_json::from_slice(&m.payload).unwrap_or(Value::Null)
}

#[test]
fn run_publishes_takes_sensors_and_commands_and_leaves_a_last_will() {
    let broker = peer::Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    write_config(dir.path(), &broker, port);
    let mut s = Sub::start(broker.plain(), "petra/m/#");
    let mut live = Live::start(dir.path(), port);

    // Every selected signal is published (with its initial value), and the status is online.
    s.wait_for("every signal and online", |m| {
        ["tank.level", "tank.sp", "pump.run"]
            .iter()
            .all(|n| m.iter().any(|m| m.topic == format!("petra/m/signals/{n}")))
            && m.iter()
                .any(|m| m.topic == "petra/m/status" && m.payload == b"online")
    });
    let sp = s.messages_on("petra/m/signals/tank.sp");
    assert_eq!(payload(&sp[0])["value"], 2.0);
    assert_eq!(payload(&sp[0])["quality"], "good");

    // A sensor message feeds its signal.
    peer::publish(broker.plain(), "sensors/hall/temp", b"23.5", 1, false);
    wait_until("room.temp from MQTT", DEFAULT_TIMEOUT, || {
        live.signal("room.temp")["value"] == 23.5
    });

    // Commands: allowed for tank.sp (write list names mqtt), refused for pump.run (it does
    // not) and out of range; the allowed one is in the audit log with the topic as source.
    peer::publish(broker.plain(), "petra/m/write/pump.run", b"true", 1, false);
    peer::publish(broker.plain(), "petra/m/write/tank.sp", b"99", 1, false);
    peer::publish(broker.plain(), "petra/m/write/tank.sp", b"7.5", 1, false);
    wait_until("tank.sp written by MQTT", DEFAULT_TIMEOUT, || {
        live.signal("tank.sp")["value"] == 7.5
    });
    s.wait_for("tank.sp 7.5 published", |m| {
        m.iter()
            .any(|m| m.topic == "petra/m/signals/tank.sp" && payload(m)["value"] == 7.5)
    });
    assert_eq!(live.signal("pump.run")["value"], false);
    let audit = std::fs::read_to_string(dir.path().join("data/audit.jsonl")).unwrap();
    let lines: Vec<Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|l: &Value| l["action"] == "signal.write")
        .collect();
    assert_eq!(lines.len(), 1, "{audit}");
    assert_eq!(
        (
            &lines[0]["user"],
            &lines[0]["source"],
            &lines[0]["target"],
            &lines[0]["new"]
        ),
        (
            &json!("mqtt"),
            &json!("petra/m/write/tank.sp"),
            &json!("tank.sp"),
            &json!(7.5)
        )
    );

    // Killed: the broker publishes the last will, retained.
    live.petra.signal(9);
    live.petra.wait_exit(DEFAULT_TIMEOUT);
    s.wait_for("last will", |m| {
        m.iter()
            .any(|m| m.topic == "petra/m/status" && m.payload == b"offline")
    });
    let mut late = Sub::start(broker.plain(), "petra/m/status");
    let st = late.wait_for_topic("petra/m/status");
    assert_eq!(
        (st.payload.as_slice(), st.retained),
        (&b"offline"[..], true)
    );
}

/// The quickstart with its commented MQTT driver switched on: a subscriber sees every signal.
#[test]
fn a_subscriber_sees_every_signal_of_the_quickstart() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let src = std::fs::read_to_string(repo.join("examples/quickstart.yaml")).unwrap();
    let signals = src.split_once("\nsignals:").unwrap().1;
    let signals = signals.split_once("\nhistory:").unwrap().0;
    let names: Vec<String> = signals
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- { name: "))
        .filter_map(|l| l.split(',').next())
        .map(str::to_string)
        .collect();
    assert!(names.len() >= 9, "{names:?}");
    let broker = peer::Broker::start();
    // Uncomment the example's driver, pointed at the test broker.
    let (head, tail) = src
        .split_once("# drivers:")
        .expect("the example shows an MQTT driver");
    let driver: String = format!("# drivers:{tail}")
        .lines()
        .map(|l| l.strip_prefix("# ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
        .replace(
            "127.0.0.1:1883",
            &format!("127.0.0.1:{}", broker.plain_port()),
        );
    let config = format!("{head}{driver}\n")
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{}", free_port()));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("quickstart.yaml"), config).unwrap();
    let mut s = Sub::start(broker.plain(), "petra/quickstart/signals/#");
    let mut petra = petra_test_support::Child::spawn(
        "petra run",
        std::process::Command::new(env!("CARGO_BIN_EXE_petra"))
            .current_dir(dir.path())
            .args(["run", "quickstart.yaml", "--status-every", "0s"]),
    );
    s.wait_for("every quickstart signal", |m| {
        names.iter().all(|n| {
            m.iter()
                .any(|m| m.topic == format!("petra/quickstart/signals/{n}"))
        })
    });
    petra.terminate();
    assert!(petra.wait_exit(DEFAULT_TIMEOUT).success());
}
