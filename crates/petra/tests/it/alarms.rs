//! `petra run` with alarms: the bundled example raising an alarm that reaches the API, the
//! Twilio mock (Prism, validating against Twilio's own description) and the audit log; an
//! acknowledgement that stops the escalation; a restart that keeps alarm states and pages
//! nobody twice (a scripted Twilio stub counting requests); the MQTT alarm topic.

use crate::live::Live;
use petra_test_support::mqtt::{Broker, Sub};
use petra_test_support::twilio::{Prism, Reply, TwilioStub};
use petra_test_support::{free_port, wait_until};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

impl Live {
    fn get(&self, path: &str) -> Value {
        let r = self
            .http
            .get(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .unwrap();
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.json().unwrap()
    }

    fn post(&self, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.http.post(self.url(path)).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().unwrap();
        (r.status().as_u16(), r.json().unwrap_or(Value::Null))
    }

    fn put_signal(&self, name: &str, value: Value) {
        let r = self
            .http
            .put(self.url(&format!("/api/v1/signals/{name}")))
            .bearer_auth(&self.token)
            .json(&json!({ "value": value }))
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "write {name}: {:?}", r.text());
    }

    fn alarm(&self, name: &str) -> Value {
        self.get("/api/v1/alarms")
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no alarm {name} in the list"))
    }

    fn journal(&self) -> Vec<Value> {
        self.get("/api/v1/alarms/journal?limit=1000")
            .as_array()
            .unwrap()
            .clone()
    }
}

/// The escalations running in the saved state file.
fn escalating(dir: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(dir.join("data/alarms.json")) else {
        return vec!["<no state file yet>".into()];
    };
    let state: Value = serde_json::from_str(&text).unwrap();
    state["escalations"]["escalations"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["alarm"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// The bundled example: an engineer raises the setpoints and the operator stops the draw, the
/// tank fills past 8.5 m, `tank_high` appears in the API, Prism accepts its SMS to alice,
/// and the operator's acknowledgement (audit-logged) stops the escalation.
#[test]
fn the_quickstart_alarm_reaches_the_api_and_the_twilio_mock_and_an_ack_stops_it() {
    let prism = Prism::start();
    let dir = tempfile::tempdir().unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let src = std::fs::read_to_string(repo.join("examples/quickstart.yaml")).unwrap();
    let port = free_port();
    for needle in ["127.0.0.1:8080", "http://127.0.0.1:4010", "notify: oncall"] {
        assert!(src.contains(needle), "the quickstart changed: {needle}");
    }
    let config = src
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"))
        .replace("http://127.0.0.1:4010", &prism.url());
    std::fs::write(dir.path().join("plant.yaml"), config).unwrap();
    let live = Live::start(dir.path(), port);

    assert_eq!(live.alarm("tank_high")["state"], "normal");
    // Fill to the top: stop the draw, and keep the pump asked for until 9.9 m.
    live.put_signal("level.high_sp", json!(10.0));
    live.put_signal("level.low_sp", json!(9.9));
    live.put_signal("demand.flow", json!(0.0));
    wait_until("tank_high active in the API", WAIT, || {
        live.alarm("tank_high")["state"] == "active_unacked"
    });
    let a = live.alarm("tank_high");
    assert_eq!(a["priority"], "high");
    assert!(
        a["message"]
            .as_str()
            .unwrap()
            .starts_with("Tank level high: ")
            && a["message"].as_str().unwrap().ends_with(" m"),
        "{a}"
    );
    assert!(a["value"].as_f64().unwrap() > 8.5, "{a}");

    // Prism validated the request against Twilio's description (auth, AccountSid, To, From,
    // Body) and answered with a message SID.
    wait_until("the SMS to alice accepted by the mock", WAIT, || {
        live.journal().iter().any(|e| {
            e["kind"] == "notification"
                && e["contact"] == "alice"
                && e["channel"] == "sms"
                && e["result"] == "ok"
        })
    });
    let sent: Vec<Value> = live
        .journal()
        .into_iter()
        .filter(|e| e["kind"] == "notification")
        .collect();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(
        sent[0]["sid"].as_str().unwrap().starts_with("SM"),
        "{sent:?}"
    );
    assert_eq!(sent[0]["alarms"], json!(["tank_high"]));
    assert!(
        live.metrics()
            .contains(r#"petra_notifications_total{channel="sms",result="ok"} 1"#),
        "{}",
        live.metrics()
    );
    assert!(
        live.metrics()
            .contains(r#"petra_alarms_active{priority="high"} 1"#)
    );
    wait_until("the escalation saved", WAIT, || {
        escalating(dir.path()) == ["tank_high"]
    });

    let (status, after) = live.post("/api/v1/alarms/tank_high/ack", None);
    assert_eq!(status, 200, "{after}");
    assert_eq!(after["state"], "active_acked");
    assert_eq!(after["acked_by"], "admin");
    wait_until("the escalation stopped in the saved state", WAIT, || {
        escalating(dir.path()).is_empty()
    });
    let audit = std::fs::read_to_string(dir.path().join("data/audit.jsonl")).unwrap();
    let line = audit
        .lines()
        .find(|l| l.contains("alarm.ack"))
        .unwrap_or_else(|| panic!("no alarm.ack line in the audit log:\n{audit}"));
    assert!(
        line.contains("tank_high")
            && line.contains("active_unacked")
            && line.contains("active_acked"),
        "{line}"
    );
    // A second acknowledgement changes nothing and is not an error.
    let (status, again) = live.post("/api/v1/alarms/tank_high/ack", None);
    assert_eq!((status, &again["state"]), (200, &json!("active_acked")));
    let journal = live.journal();
    let transitions: Vec<(&str, &str, &str)> = journal
        .iter()
        .filter(|e| e["kind"] == "transition" && e["alarm"] == "tank_high")
        .map(|e| {
            (
                e["from"].as_str().unwrap(),
                e["to"].as_str().unwrap(),
                e["cause"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        transitions,
        [
            ("normal", "active_unacked", "condition"),
            ("active_unacked", "active_acked", "ack")
        ]
    );
    live.stop();
}

/// Two alarms on API-written signals, one notification group; the state survives restarts.
fn write_config(dir: &Path, port: u16, twilio: &str, extra: &str) {
    write_config_with(dir, port, twilio, extra, "1h");
}

/// As [`write_config`], with the second escalation step (to bob) `step2` after the first.
fn write_config_with(dir: &Path, port: u16, twilio: &str, extra: &str, step2: &str) {
    let yaml = format!(
        "plant: alarms
server: {{ listen: 127.0.0.1:{port} }}
tasks: [{{ name: main, period: 10ms }}]
signals:
  - {{ name: a, type: float, initial: 0.0, write: [operator], retain: true }}
  - {{ name: b, type: float, initial: 0.0, write: [operator], retain: true }}
alarms:
  - {{ name: a_high, signal: a, high: 5.0, priority: critical, notify: oncall }}
  - {{ name: b_high, signal: b, high: 5.0, notify: oncall }}
notify:
  twilio: {{ account_sid: AC0123456789abcdef0123456789abcdef, auth_token: t, from: '+15005550006', api_base: '{twilio}' }}
  contacts: [{{ name: alice, phone: '+15551230001' }}, {{ name: bob, phone: '+15551230002' }}]
  groups:
    - name: oncall
      escalation:
        - {{ after: 0s, contacts: [alice], via: [sms] }}
        - {{ after: {step2}, contacts: [bob], via: [sms] }}
{extra}"
    );
    std::fs::write(dir.join("plant.yaml"), yaml).unwrap();
}

/// The text of every SMS the stub received, in order.
fn bodies(stub: &TwilioStub) -> Vec<String> {
    stub.requests()
        .iter()
        .map(|r| r.form_value("Body").unwrap_or("").to_string())
        .collect()
}

/// An unacknowledged alarm survives a restart with its state and escalation: nobody is paged
/// again for the step already sent. Proof without waiting for nothing: after the restart a
/// second alarm is raised; had the first been paged again, that page would have gone out at
/// start-up, before the second alarm existed.
#[test]
fn a_restart_keeps_alarm_states_and_sends_nothing_twice() {
    let stub = TwilioStub::start([Reply::created(), Reply::created(), Reply::created()]);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    write_config(dir.path(), port, &stub.url(), "");
    let mut live = Live::start(dir.path(), port);
    live.put_signal("a", json!(9.0));
    wait_until("one SMS for a_high", WAIT, || stub.requests().len() == 1);
    let before = live.alarm("a_high");
    assert_eq!(before["state"], "active_unacked");

    live.restart();
    let after = live.alarm("a_high");
    assert_eq!(after["state"], "active_unacked");
    assert_eq!(
        after["active_since"], before["active_since"],
        "restored, not raised again"
    );
    live.put_signal("b", json!(9.0));
    wait_until("the SMS for b_high", WAIT, || stub.requests().len() >= 2);
    let sent = bodies(&stub);
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent[0].contains("a_high"), "{sent:?}");
    assert!(sent[1].contains("b_high"), "{sent:?}");
    assert_eq!(
        stub.requests()[0].form_value("To"),
        Some("+15551230001"),
        "step 1 goes to alice"
    );

    // Acknowledged before a restart: after it, still acknowledged, still not escalating.
    let (status, _) = live.post("/api/v1/alarms/a_high/ack", None);
    assert_eq!(status, 200);
    wait_until("a_high no longer escalating", WAIT, || {
        escalating(dir.path()) == ["b_high"]
    });
    live.restart();
    assert_eq!(live.alarm("a_high")["state"], "active_acked");
    assert_eq!(live.alarm("a_high")["acked_by"], "admin");
    assert_eq!(escalating(dir.path()), ["b_high"]);
    live.stop();
    assert_eq!(stub.requests().len(), 2);
}

/// Shelving through the API: validated, audit-logged, shown in the list; an operator-only
/// action; an unknown alarm is a 404.
#[test]
fn shelving_through_the_api_hides_an_alarm_until_unshelved() {
    let stub = TwilioStub::start([Reply::created()]);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    write_config(dir.path(), port, &stub.url(), "");
    let live = Live::start(dir.path(), port);
    let (status, shelved) = live.post(
        "/api/v1/alarms/a_high/shelve",
        Some(json!({"duration": "1h", "reason": "sensor being replaced"})),
    );
    assert_eq!(status, 200, "{shelved}");
    assert_eq!(shelved["shelve_reason"], "sensor being replaced");
    assert!(shelved["shelved_until"].is_string());
    // Shelved: an activation is tracked but nobody is paged.
    live.put_signal("a", json!(9.0));
    wait_until("a_high active while shelved", WAIT, || {
        live.alarm("a_high")["state"] == "active_unacked"
    });
    let (status, _) = live.post(
        "/api/v1/alarms/a_high/shelve",
        Some(json!({"duration": "0s", "reason": "x"})),
    );
    assert_eq!(status, 422);
    let (status, _) = live.post("/api/v1/alarms/nope/ack", None);
    assert_eq!(status, 404);
    assert!(
        live.metrics()
            .contains(r#"petra_alarms_active{priority="critical"} 0"#),
        "a shelved alarm is not counted as shown"
    );
    // Unshelved: now it is annunciated and escalates.
    let (status, back) = live.post("/api/v1/alarms/a_high/unshelve", None);
    assert_eq!(status, 200, "{back}");
    assert!(back["shelved_until"].is_null());
    wait_until("the SMS after unshelving", WAIT, || {
        stub.requests().len() == 1
    });
    let audit = std::fs::read_to_string(dir.path().join("data/audit.jsonl")).unwrap();
    assert!(audit.contains("alarm.shelve") && audit.contains("alarm.unshelve"));
    live.stop();
}

/// Every alarm is published, retained, on `{prefix}/alarms/{alarm}` by the MQTT driver.
#[test]
fn alarms_are_published_retained_on_their_mqtt_topic() {
    let broker = Broker::start();
    let stub = TwilioStub::start([Reply::created()]);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mqtt = format!(
        "drivers:
  - name: broker
    type: mqtt
    url: {}
    publish: {{ prefix: petra/alarms-test, signals: [a] }}
",
        broker.url_plain()
    );
    write_config(dir.path(), port, &stub.url(), &mqtt);
    let live = Live::start(dir.path(), port);
    let mut sub = Sub::start(broker.plain(), "petra/alarms-test/alarms/#");
    let state = |m: &petra_test_support::mqtt::Msg| {
        (m.topic == "petra/alarms-test/alarms/a_high")
            .then(|| serde_json::from_slice::<Value>(&m.payload).unwrap())
    };
    sub.wait_for("a_high normal", |ms| {
        ms.iter()
            .any(|m| state(m).is_some_and(|p| p["state"] == "normal"))
    });
    live.put_signal("a", json!(9.0));
    sub.wait_for("a_high active", |ms| {
        ms.iter().any(|m| {
            state(m).is_some_and(|p| {
                p["state"] == "active_unacked"
                    && p["priority"] == "critical"
                    && p["value"] == 9.0
                    && p["ts"].is_string()
                    && p["message"].is_string()
            })
        })
    });
    // Retained: a subscriber arriving later gets the current state at once.
    let mut late = Sub::start(broker.plain(), "petra/alarms-test/alarms/a_high");
    late.wait_for("the retained active state", |ms| {
        ms.iter()
            .any(|m| m.retained && state(m).is_some_and(|p| p["state"] == "active_unacked"))
    });
    // A reload that removes the alarm clears its retained topic (an empty retained message).
    let path = dir.path().join("plant.yaml");
    let yaml = std::fs::read_to_string(&path).unwrap().replace(
        "  - { name: a_high, signal: a, high: 5.0, priority: critical, notify: oncall }\n",
        "",
    );
    assert!(!yaml.contains("a_high"));
    std::fs::write(&path, yaml).unwrap();
    let (status, report) = live.post("/api/v1/config/reload", None);
    assert_eq!(status, 200, "{report}");
    sub.wait_for("a_high cleared", |ms| {
        ms.iter()
            .any(|m| m.topic == "petra/alarms-test/alarms/a_high" && m.payload.is_empty())
    });
    live.stop();
}

/// With a `history` section the alarm journal goes into the history too: rows of signal
/// `alarm:NAME` with the journal entry as text, in the Parquet files duckdb reads.
#[test]
fn the_alarm_journal_is_recorded_in_the_history() {
    let stub = TwilioStub::start([Reply::created()]);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let history = "history:
  signals: [{ match: a, mode: on_change }]
  wal: { fsync: 50ms }
  parquet: { dir: history, rotate: 1h }
";
    write_config(dir.path(), port, &stub.url(), history);
    let live = Live::start(dir.path(), port);
    live.put_signal("a", json!(9.0));
    wait_until("a_high active", WAIT, || {
        live.alarm("a_high")["state"] == "active_unacked"
    });
    let (status, _) = live.post("/api/v1/alarms/a_high/ack", None);
    assert_eq!(status, 200);
    live.stop();
    let rows = petra_test_support::duckdb_rows(
        "SELECT text FROM read_parquet({glob}, hive_partitioning=true) \
         WHERE signal = 'alarm:a_high' ORDER BY seq",
        &dir.path().join("data/history/**/*.parquet"),
    );
    let seen: Vec<(String, String, String, Value)> = rows
        .iter()
        .map(|r| {
            let e: Value = serde_json::from_str(&r[0]).unwrap();
            let s = |k: &str| e[k].as_str().unwrap().to_string();
            (s("from"), s("to"), s("cause"), e["user"].clone())
        })
        .collect();
    let t = |a: &str, b: &str, c: &str, u: Value| (a.into(), b.into(), c.into(), u);
    assert_eq!(
        seen,
        [
            t("normal", "active_unacked", "condition", Value::Null),
            t("active_unacked", "active_acked", "ack", json!("admin"))
        ]
    );
}

/// A loss is never silent: a WAL that reaches its size cap while its only sink is down drops
/// the oldest samples and raises the system alarm `petra.history_wal_full`.
#[test]
fn a_full_wal_raises_a_system_alarm() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let walks: String = (0..300)
        .map(|w| {
            format!(
                "  - {{ name: rw{w}, type: RANDOM_WALK, params: {{ seed: {w}, step: 10.0 }}, outputs: {{ out: w{w} }} }}\n"
            )
        })
        .collect();
    let signals: String = (0..300)
        .map(|w| format!("  - {{ name: w{w}, type: float }}\n"))
        .collect();
    let yaml = format!(
        "plant: walfull
server: {{ listen: 127.0.0.1:{port} }}
tasks: [{{ name: main, period: 10ms }}]
signals:
{signals}blocks:
{walks}history:
  signals: [{{ match: '*', mode: on_change }}]
  wal: {{ max_size: 2MiB, fsync: 50ms }}
  clickhouse: {{ urls: ['http://127.0.0.1:{}'] }}
",
        free_port()
    );
    std::fs::write(dir.path().join("plant.yaml"), yaml).unwrap();
    let live = Live::start(dir.path(), port);
    assert_eq!(live.alarm("petra.history_wal_full")["state"], "normal");
    wait_until("petra.history_wal_full active", WAIT, || {
        live.alarm("petra.history_wal_full")["state"] == "active_unacked"
    });
    let a = live.alarm("petra.history_wal_full");
    assert_eq!(a["priority"], "high");
    assert_eq!(a["signal"], "petra");
    assert!(
        a["message"]
            .as_str()
            .unwrap()
            .starts_with("History WAL full"),
        "{a}"
    );
    let (status, _) = live.post("/api/v1/alarms/petra.history_wal_full/ack", None);
    assert_eq!(status, 200);
    live.stop();
}

/// Escalation: unacknowledged, the alarm goes to the second contact after the step's delay;
/// acknowledged, it does not. Proof of the absence without waiting for nothing: the second
/// alarm is raised after the first one's second step would have been due, so its own second
/// step arrives later than the first one's would have.
#[test]
fn escalation_reaches_the_second_step_unless_acknowledged() {
    let stub = TwilioStub::start((0..4).map(|_| Reply::created()));
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    write_config_with(dir.path(), port, &stub.url(), "", "2s");
    let live = Live::start(dir.path(), port);
    let to = |stub: &TwilioStub| -> Vec<(String, String)> {
        stub.requests()
            .iter()
            .map(|r| {
                let body = r.form_value("Body").unwrap_or("");
                let alarm = if body.contains("a_high") { "a" } else { "b" };
                (
                    alarm.to_string(),
                    r.form_value("To").unwrap_or("").to_string(),
                )
            })
            .collect()
    };
    // a_high is acknowledged right after its first message.
    live.put_signal("a", json!(9.0));
    wait_until("a_high to alice", WAIT, || stub.requests().len() == 1);
    let (status, _) = live.post("/api/v1/alarms/a_high/ack", None);
    assert_eq!(status, 200);
    // b_high is not acknowledged: alice, then bob two seconds later.
    live.put_signal("b", json!(9.0));
    wait_until("b_high to alice and then bob", WAIT, || {
        stub.requests().len() >= 3
    });
    let alice = "+15551230001".to_string();
    let bob = "+15551230002".to_string();
    assert_eq!(
        to(&stub),
        [
            ("a".to_string(), alice.clone()),
            ("b".to_string(), alice),
            ("b".to_string(), bob)
        ]
    );
    live.stop();
}

/// A reload keeps the state of alarms that stayed (by name), evaluates new ones from the next
/// scan, and drops removed ones; a changed `notify` section applies without a restart.
#[test]
fn a_reload_keeps_alarm_states_and_adds_new_alarms() {
    let stub = TwilioStub::start((0..3).map(|_| Reply::created()));
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    write_config(dir.path(), port, &stub.url(), "");
    let live = Live::start(dir.path(), port);
    live.put_signal("a", json!(9.0));
    wait_until("a_high to alice", WAIT, || stub.requests().len() == 1);
    let before = live.alarm("a_high");

    // b_high goes, a_low comes, and alice's number changes.
    let path = dir.path().join("plant.yaml");
    let yaml = std::fs::read_to_string(&path).unwrap();
    let yaml = yaml
        .replace(
            "  - { name: b_high, signal: b, high: 5.0, notify: oncall }\n",
            "  - { name: a_low, signal: a, low: 1.0, notify: oncall }\n",
        )
        .replace("+15551230001", "+15551230009");
    assert!(yaml.contains("a_low") && yaml.contains("+15551230009"));
    std::fs::write(&path, yaml).unwrap();
    let (status, report) = live.post("/api/v1/config/reload", None);
    assert_eq!(status, 200, "{report}");

    let after = live.alarm("a_high");
    assert_eq!(after["state"], "active_unacked");
    assert_eq!(after["active_since"], before["active_since"]);
    let names: Vec<String> = live
        .get("/api/v1/alarms")
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_string())
        .filter(|n| !n.starts_with("petra."))
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&"a_low".to_string()) && !names.contains(&"b_high".to_string()));
    live.put_signal("a", json!(0.0));
    wait_until("a_low active after the reload", WAIT, || {
        live.alarm("a_low")["state"] == "active_unacked"
    });
    wait_until("a_low paged to alice's new number", WAIT, || {
        stub.requests().len() == 2
    });
    assert_eq!(stub.requests()[1].form_value("To"), Some("+15551230009"));
    assert!(
        stub.requests()[1]
            .form_value("Body")
            .unwrap()
            .contains("a_low")
    );
    live.stop();
}

/// A latching alarm acknowledged before its return stays active until an operator resets it
/// (refused while the condition holds); out of service (an engineer's call) hides an alarm.
#[test]
fn latched_alarms_are_reset_and_alarms_taken_out_of_service_through_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let yaml = format!(
        "plant: latch
server: {{ listen: 127.0.0.1:{port} }}
tasks: [{{ name: main, period: 10ms }}]
signals:
  - {{ name: trip, type: bool, initial: false, write: [operator] }}
alarms:
  - {{ name: tripped, signal: trip, equals: true, latch: true, priority: critical }}
"
    );
    std::fs::write(dir.path().join("plant.yaml"), yaml).unwrap();
    let live = Live::start(dir.path(), port);
    live.put_signal("trip", json!(true));
    wait_until("tripped active", WAIT, || {
        live.alarm("tripped")["state"] == "active_unacked"
    });
    let (status, a) = live.post("/api/v1/alarms/tripped/ack", None);
    assert_eq!((status, &a["state"]), (200, &json!("active_acked")));
    assert_eq!(
        a["latch"], true,
        "the API says it latches (the HMI shows Reset)"
    );
    let (status, refused) = live.post("/api/v1/alarms/tripped/reset", None);
    assert_eq!(status, 422, "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("still active"),
        "{refused}"
    );
    live.put_signal("trip", json!(false));
    // Cleared, but latched: it stays active_acked until the reset.
    wait_until("the alarm evaluated the clear", WAIT, || {
        live.alarm("tripped")["value"] == false
    });
    assert_eq!(live.alarm("tripped")["state"], "active_acked");
    let (status, a) = live.post("/api/v1/alarms/tripped/reset", None);
    assert_eq!((status, &a["state"]), (200, &json!("normal")), "{a}");

    let (status, a) = live.post(
        "/api/v1/alarms/tripped/service",
        Some(json!({"out_of_service": true})),
    );
    assert_eq!((status, &a["out_of_service"]), (200, &json!(true)));
    live.put_signal("trip", json!(true));
    wait_until("tripped active while out of service", WAIT, || {
        live.alarm("tripped")["state"] == "active_unacked"
    });
    assert!(
        live.metrics()
            .contains(r#"petra_alarms_active{priority="critical"} 0"#),
        "an alarm out of service is not shown as active"
    );
    let audit = std::fs::read_to_string(dir.path().join("data/audit.jsonl")).unwrap();
    assert!(audit.contains("alarm.reset") && audit.contains("alarm.service"));
    live.stop();
}
