//! The MQTT driver against a real broker: mosquitto with plain, password and TLS listeners
//! (petra-test-support), checked by an independent client (`mosquitto_sub` / `mosquitto_pub`).

use petra_core::{
    BadReason, Bus, BusBuilder, Quality, SignalDef, SignalId, Timestamp, Value, ValueType,
};
use petra_drivers::{DriverStatus, RequestResult};
use petra_mqtt::{Broker, Commands, Driver, MqttConfig, Publish, Subscription, Tls};
use petra_test_support::mqtt::{self as peer, Endpoint, Sub};
use petra_test_support::wait_until;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);
const PREFIX: &str = "petra/t";

fn signals() -> Vec<(&'static str, ValueType)> {
    vec![
        ("room1", ValueType::Float),
        ("room2", ValueType::Float),
        ("count", ValueType::Int),
        ("door", ValueType::Bool),
        ("label", ValueType::String),
        ("tank.level", ValueType::Float),
        ("tank.mode", ValueType::String),
        ("pump.run", ValueType::Bool),
    ]
}

fn id(name: &str) -> SignalId {
    SignalId::from_index(signals().iter().position(|(n, _)| *n == name).unwrap())
}

fn sub(filter: &str, signal: &str, json: Option<&str>) -> Subscription {
    Subscription {
        filter: filter.into(),
        signal: id(signal),
        signal_name: signal.into(),
        signal_type: signals()[id(signal).index()].1,
        json: json.map(str::to_string),
    }
}

fn config(to: &Endpoint) -> MqttConfig {
    MqttConfig {
        name: "broker".into(),
        broker: Broker {
            host: to.host.clone(),
            port: to.port,
            tls: to.ca_file.clone().map(|ca| Tls {
                ca_file: ca,
                client_auth: to.client_cert.clone(),
            }),
        },
        client_id: format!("petra-test-{}", std::process::id()),
        username: to.credentials.as_ref().map(|c| c.0.clone()),
        password: to.credentials.as_ref().map(|c| c.1.clone()),
        timeout: Duration::from_secs(2),
        keep_alive: Duration::from_secs(30),
        reconnect_max: Duration::from_millis(300),
        prefix: PREFIX.into(),
        subscribe: vec![
            sub("sensors/+/room1", "room1", None),
            sub("json/room2", "room2", Some("/data/temp")),
            sub("count/#", "count", None),
            sub("door", "door", None),
            sub("label", "label", None),
        ],
        publish: Some(Publish {
            signals: ["tank.level", "tank.mode", "pump.run"]
                .iter()
                .map(|n| (id(n), n.to_string()))
                .collect(),
            qos: 1,
            retain: true,
            deadband: 0.0,
            min_interval: Duration::ZERO,
        }),
        commands: false,
    }
}

/// Commands recorded, refused for every signal but `tank.mode`.
#[derive(Default)]
struct Recorder(Mutex<Vec<(String, serde_json::Value, String)>>);

impl Commands for Recorder {
    fn apply(
        &self,
        signal: String,
        value: serde_json::Value,
        source: String,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>> {
        Box::pin(async move {
            if signal != "tank.mode" {
                return Err(format!("`{signal}` may not be written over MQTT"));
            }
            self.0.lock().unwrap().push((signal, value, source));
            Ok(())
        })
    }
}

struct Running {
    bus: Arc<Bus>,
    status: Arc<DriverStatus>,
    cancel: CancellationToken,
    rt: Option<tokio::runtime::Runtime>,
}

impl Running {
    fn start(cfg: MqttConfig) -> Running {
        Running::start_with(cfg, None)
    }

    fn start_with(cfg: MqttConfig, commands: Option<Arc<dyn Commands>>) -> Running {
        let defs = signals()
            .into_iter()
            .map(|(n, t)| SignalDef::new(n, t))
            .collect();
        let mut b = BusBuilder::new(defs).unwrap();
        let outs = cfg.output_signals();
        let feed = (!outs.is_empty()).then(|| b.latest_feed(Some(&outs)));
        let bus = b.build(Timestamp::from_unix_nanos(0));
        let status = Arc::new(DriverStatus::new("broker", "mqtt", 8));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let cancel = CancellationToken::new();
        let driver = Driver::new(cfg, bus.clone(), status.clone(), feed, commands, None);
        rt.spawn(driver.run(cancel.clone()));
        Running {
            bus,
            status,
            cancel,
            rt: Some(rt),
        }
    }

    fn sample(&self, name: &str) -> (Value, Quality) {
        let s = self.bus.read(id(name)).unwrap();
        (s.value, s.quality)
    }

    #[track_caller]
    fn wait_value(&self, name: &str, want: Value) {
        wait_until(&format!("{name} = {want:?}, good"), WAIT, || {
            self.sample(name) == (want.clone(), Quality::Good)
        });
    }

    fn set(&self, name: &str, v: Value) {
        let ts = Timestamp::from_unix_nanos(1_764_860_400_000_000_000);
        self.bus.write(id(name), v, Quality::Good, ts).unwrap();
    }

    fn wait_connected(&self) {
        wait_until("connected", WAIT, || self.status.is_connected());
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.cancel.cancel();
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

fn json(msg: &peer::Msg) -> serde_json::Value {
    serde_json::from_slice(&msg.payload).unwrap()
}

#[test]
fn messages_feed_signals_through_wildcards_and_json_pointers() {
    let broker = peer::Broker::start();
    let r = Running::start(config(&broker.plain()));
    r.wait_connected();
    let publish = |t: &str, p: &str| peer::publish(broker.plain(), t, p.as_bytes(), 1, false);
    publish("sensors/a/room1", "21.5");
    publish("json/room2", r#"{"data": {"temp": 19.25}, "unit": "C"}"#);
    publish("count/x/y", "42");
    publish("door", "on");
    publish("label", "Batch 7");
    r.wait_value("room1", Value::Float(21.5));
    r.wait_value("room2", Value::Float(19.25));
    r.wait_value("count", Value::Int(42));
    r.wait_value("door", Value::Bool(true));
    r.wait_value("label", Value::String("Batch 7".into()));
    // `+` is one level: sensors/a/b/room1 does not match.
    publish("sensors/a/b/room1", "99");
    publish("sensors/b/room1", "22");
    r.wait_value("room1", Value::Float(22.0));
}

#[test]
fn a_bad_payload_keeps_the_value_turns_it_uncertain_and_is_counted() {
    let broker = peer::Broker::start();
    let r = Running::start(config(&broker.plain()));
    r.wait_connected();
    let publish = |t: &str, p: &[u8]| peer::publish(broker.plain(), t, p, 1, false);
    publish("count/a", b"5");
    r.wait_value("count", Value::Int(5));
    publish("count/a", b"five");
    wait_until("count uncertain", WAIT, || {
        r.sample("count") == (Value::Int(5), Quality::Uncertain)
    });
    publish("json/room2", b"{not json");
    publish("json/room2", br#"{"data": {}}"#);
    publish("label", &[0xFF, 0xFE]);
    wait_until("four refused", WAIT, || {
        r.status.requests(RequestResult::Exception) >= 4
    });
    let e = r.status.last_error().unwrap();
    assert!(
        e.contains("bad payload for `label`") && e.contains("UTF-8"),
        "{e}"
    );
    // The next good message makes it good again.
    publish("count/a", b"6");
    r.wait_value("count", Value::Int(6));
}

#[test]
fn changes_are_published_as_json_and_the_status_is_retained() {
    let broker = peer::Broker::start();
    let mut s = Sub::start(broker.plain(), &format!("{PREFIX}/#"));
    let r = Running::start(config(&broker.plain()));
    let status = s.wait_for_topic(&format!("{PREFIX}/status"));
    assert_eq!(
        (status.payload.as_slice(), status.retained),
        (&b"online"[..], false)
    );
    r.set("tank.level", Value::Float(2.5));
    r.set("tank.mode", Value::String("auto".into()));
    let msgs = s.wait_for("level 2.5 and mode auto", |m| {
        m.iter()
            .any(|m| m.topic == format!("{PREFIX}/signals/tank.level") && json(m)["value"] == 2.5)
            && m.iter().any(|m| {
                m.topic == format!("{PREFIX}/signals/tank.mode") && json(m)["value"] == "auto"
            })
    });
    let level = msgs
        .iter()
        .rev()
        .find(|m| m.topic == format!("{PREFIX}/signals/tank.level"))
        .unwrap();
    let j = json(level);
    assert_eq!(
        (j["quality"].as_str(), j["ts"].as_str()),
        (Some("good"), Some("2025-12-04T15:00:00.000Z"))
    );
    assert_eq!(level.qos, 1);
    // A quality change is published too.
    r.bus
        .set_quality(
            id("tank.level"),
            Quality::Bad(BadReason::Timeout),
            Timestamp::from_unix_nanos(2),
        )
        .unwrap();
    s.wait_for("level bad", |m| {
        m.iter().any(|m| {
            m.topic == format!("{PREFIX}/signals/tank.level") && json(m)["quality"] == "bad"
        })
    });
    // A late subscriber gets the retained status and values.
    let mut late = Sub::start(broker.plain(), &format!("{PREFIX}/#"));
    let st = late.wait_for_topic(&format!("{PREFIX}/status"));
    assert_eq!((st.payload.as_slice(), st.retained), (&b"online"[..], true));
    let m = late.wait_for_topic(&format!("{PREFIX}/signals/tank.mode"));
    assert!(m.retained);
    // A clean shutdown says offline.
    drop(r);
    late.wait_for("offline", |m| {
        m.iter()
            .any(|m| m.topic == format!("{PREFIX}/status") && m.payload == b"offline")
    });
}

#[test]
fn deadband_and_min_interval_limit_what_is_published() {
    let broker = peer::Broker::start();
    let mut s = Sub::start(broker.plain(), &format!("{PREFIX}/signals/tank.level"));
    let mut cfg = config(&broker.plain());
    let p = cfg.publish.as_mut().unwrap();
    p.deadband = 0.5;
    p.min_interval = Duration::from_millis(300);
    let r = Running::start(cfg);
    r.wait_connected();
    let values = |s: &Sub| -> Vec<f64> {
        s.messages()
            .iter()
            .filter_map(|m| json(m)["value"].as_f64())
            .collect()
    };
    r.set("tank.level", Value::Float(1.0));
    s.wait_for("1.0", |m| m.iter().any(|m| json(m)["value"] == 1.0));
    // Within the deadband: not published, also not later.
    r.set("tank.level", Value::Float(1.3));
    // Many changes within one interval: at most one publish per interval, the last value last.
    for k in 0..20 {
        r.set("tank.level", Value::Float(2.0 + f64::from(k)));
    }
    s.wait_for("21.0", |m| m.iter().any(|m| json(m)["value"] == 21.0));
    let got = values(&s);
    assert!(!got.contains(&1.3), "{got:?}");
    assert!(got.len() <= 4, "min_interval let through {got:?}");
}

#[test]
fn wrong_credentials_are_reported_and_retried_then_tls_with_a_password_works() {
    let broker = peer::Broker::start();
    let wrong = broker.auth().credentials(peer::USER, "wrong");
    let r = Running::start(config(&wrong));
    wait_until("refused, with the reason", WAIT, || {
        r.status.last_error().is_some_and(|e| {
            e.contains("refused the connection") && e.contains("check `username` and `password`")
        })
    });
    assert!(!r.status.is_connected());
    assert!(
        r.sample("room1").1.is_bad(),
        "subscribed signals are bad while not connected"
    );
    drop(r);
    let tls = broker.tls();
    let r = Running::start(config(&tls));
    r.wait_connected();
    peer::publish(tls.clone(), "door", b"true", 1, false);
    r.wait_value("door", Value::Bool(true));
}

#[test]
fn a_broker_restart_heals_and_the_latest_values_are_published() {
    let mut broker = peer::Broker::start();
    let r = Running::start(config(&broker.plain()));
    r.wait_connected();
    r.set("tank.level", Value::Float(1.0));
    broker.kill();
    wait_until("disconnected", WAIT, || !r.status.is_connected());
    // Changes while the broker is away: only the latest is kept, and sent on reconnect.
    for k in 0..50 {
        r.set("tank.level", Value::Float(100.0 + f64::from(k)));
    }
    broker.restart();
    let mut s = Sub::start(broker.plain(), &format!("{PREFIX}/signals/#"));
    s.wait_for("latest level", |m| {
        m.iter()
            .any(|m| m.topic.ends_with("tank.level") && json(m)["value"] == 149.0)
    });
    peer::publish(broker.plain(), "count/z", b"7", 1, false);
    r.wait_value("count", Value::Int(7));
}

#[test]
fn commands_go_through_the_commands_hook_only_when_enabled() {
    let broker = peer::Broker::start();
    let rec = Arc::new(Recorder::default());
    let mut cfg = config(&broker.plain());
    cfg.commands = true;
    let r = Running::start_with(cfg, Some(rec.clone()));
    r.wait_connected();
    peer::publish(
        broker.plain(),
        &format!("{PREFIX}/write/tank.mode"),
        b"\"manual\"",
        1,
        false,
    );
    peer::publish(
        broker.plain(),
        &format!("{PREFIX}/write/pump.run"),
        b"true",
        1,
        false,
    );
    peer::publish(
        broker.plain(),
        &format!("{PREFIX}/write/tank.mode"),
        b"not json",
        1,
        false,
    );
    wait_until("two refused", WAIT, || {
        r.status.requests(RequestResult::Exception) >= 2
    });
    let got = rec.0.lock().unwrap().clone();
    assert_eq!(
        got,
        [(
            "tank.mode".to_string(),
            serde_json::json!("manual"),
            format!("{PREFIX}/write/tank.mode")
        )]
    );
    drop(r);
    // Without `commands: true` the hook is never asked.
    let rec = Arc::new(Recorder::default());
    let r = Running::start_with(config(&broker.plain()), Some(rec.clone()));
    r.wait_connected();
    peer::publish(
        broker.plain(),
        &format!("{PREFIX}/write/tank.mode"),
        b"\"x\"",
        1,
        false,
    );
    peer::publish(broker.plain(), "count/q", b"3", 1, false);
    r.wait_value("count", Value::Int(3));
    assert!(rec.0.lock().unwrap().is_empty());
}
