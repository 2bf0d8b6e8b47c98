//! The alarm endpoints, alarm metrics and `event: alarm`, against a fake [`AlarmSource`].

use super::tests::{Fixture, fixture};
use super::*;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use futures_util::StreamExt;
use serde_json::{Value as Json, json};
use tower::ServiceExt;

/// Alarms in a Mutex'd list and every `act` call recorded. `act` acknowledges, shelves and
/// unshelves like a manager would; `refused` answers 422 and `gone` (listed, but removed by
/// the time the action arrives) 404.
#[derive(Default)]
struct FakeAlarms {
    alarms: Mutex<Vec<AlarmView>>,
    calls: Mutex<Vec<(String, AlarmAction, String)>>,
    kpis: AlarmKpis,
    notifications: Vec<(&'static str, &'static str, u64)>,
}

impl FakeAlarms {
    fn calls(&self) -> Vec<(String, AlarmAction, String)> {
        self.calls.lock().unwrap().clone()
    }
}

fn view(name: &str, state: &'static str, priority: &'static str) -> AlarmView {
    AlarmView {
        name: name.into(),
        signal: "tank.level".into(),
        state,
        priority,
        message: format!("{name} message"),
        value: json!(9.3),
        active_since: Some("2026-12-04T15:00:05.000Z".into()),
        acked_at: None,
        acked_by: None,
        cleared_at: None,
        shelved_until: None,
        shelved_by: None,
        shelve_reason: None,
        suppressed: false,
        out_of_service: false,
        latch: false,
        condition_active: false,
        changed_at: Some("2026-12-04T15:00:05.000Z".into()),
    }
}

impl AlarmSource for FakeAlarms {
    fn list(&self) -> Vec<AlarmView> {
        self.alarms.lock().unwrap().clone()
    }

    fn act(
        &self,
        name: &str,
        action: AlarmAction,
        user: &str,
    ) -> Result<AlarmActed, AlarmActionError> {
        self.calls
            .lock()
            .unwrap()
            .push((name.into(), action.clone(), user.into()));
        match name {
            "gone" => return Err(AlarmActionError::NotFound),
            "refused" => {
                return Err(AlarmActionError::Unprocessable(
                    "alarm `refused` is out of service".into(),
                ));
            }
            _ => {}
        }
        let mut alarms = self.alarms.lock().unwrap();
        let a = alarms
            .iter_mut()
            .find(|a| a.name == name)
            .ok_or(AlarmActionError::NotFound)?;
        let (old, new) = match action {
            AlarmAction::Ack => {
                let old = a.state;
                if a.state == "active_unacked" {
                    a.state = "active_acked";
                    a.acked_by = Some(user.into());
                }
                (old.to_string(), a.state.to_string())
            }
            AlarmAction::Shelve { duration, reason } => {
                let new = format!("shelved for {}s: {reason}", duration.as_secs());
                a.shelved_by = Some(user.into());
                a.shelve_reason = Some(reason);
                ("in service".to_string(), new)
            }
            AlarmAction::Unshelve => {
                a.shelved_by = None;
                a.shelve_reason = None;
                ("shelved".to_string(), "in service".to_string())
            }
            AlarmAction::Reset => {
                let old = a.state;
                a.state = "normal";
                (old.to_string(), a.state.to_string())
            }
            AlarmAction::OutOfService(oos) => {
                let old = a.out_of_service;
                a.out_of_service = oos;
                (old.to_string(), oos.to_string())
            }
        };
        Ok(AlarmActed {
            alarm: a.clone(),
            old,
            new,
        })
    }

    fn kpis(&self) -> AlarmKpis {
        self.kpis.clone()
    }

    fn notifications(&self) -> Vec<(&'static str, &'static str, u64)> {
        self.notifications.clone()
    }
}

/// A fixture whose API has the fake alarms `tank_high` (active_unacked, high), `pump_fault`
/// (normal, low), `refused` and `gone`.
fn with_alarms() -> (Fixture, Arc<FakeAlarms>) {
    let f = fixture();
    let fake = Arc::new(FakeAlarms {
        alarms: Mutex::new(vec![
            view("tank_high", "active_unacked", "high"),
            view("pump_fault", "normal", "low"),
            view("refused", "active_acked", "medium"),
            view("gone", "normal", "critical"),
        ]),
        kpis: AlarmKpis {
            rate_10min: 12,
            flood: true,
            standing: vec!["tank_high".into()],
            chattering: vec!["tank_high".into(), "pump_fault".into()],
            active: vec![("high".into(), 1), ("medium".into(), 1)],
            dropped_transitions: 0,
        },
        notifications: vec![("sms", "ok", 3), ("voice", "error", 1)],
        ..FakeAlarms::default()
    });
    f.api.set_alarms(Some(fake.clone()));
    (f, fake)
}

/// The audit lines of `action`, parsed.
fn audit_lines(f: &Fixture, action: &str) -> Vec<Json> {
    let log = std::fs::read_to_string(f.api.audit.as_ref().unwrap().path()).unwrap();
    log.lines()
        .map(|l| serde_json::from_str::<Json>(l).unwrap())
        .filter(|l| l["action"] == action)
        .collect()
}

fn shelve_body(duration: &str, reason: &str) -> Option<String> {
    Some(json!({"duration": duration, "reason": reason}).to_string())
}

#[tokio::test]
async fn alarms_without_a_source_list_nothing_and_count_zero() {
    let f = fixture();
    let (vic, otto) = (f.login("vic").await, f.login("otto").await);
    let (s, j, _) = f
        .call(Method::GET, "/api/v1/alarms", Some(&vic), None)
        .await;
    assert_eq!((s, j), (StatusCode::OK, json!([])));
    let (s, j, _) = f
        .call(Method::GET, "/api/v1/alarms/kpis", Some(&vic), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        j,
        json!({"rate_10min": 0, "flood": false, "standing": [], "chattering": [],
               "active": {"low": 0, "medium": 0, "high": 0, "critical": 0},
               "dropped_transitions": 0})
    );
    for action in ["ack", "unshelve", "shelve"] {
        let uri = format!("/api/v1/alarms/tank_high/{action}");
        let (s, j, _) = f
            .call(Method::POST, &uri, Some(&otto), shelve_body("1h", "x"))
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{action}");
        assert!(
            j["message"]
                .as_str()
                .unwrap()
                .contains("no `alarms` section"),
            "{j}"
        );
    }
    let text = metrics_text(&f, &vic).await;
    for p in PRIORITIES {
        let line = format!("petra_alarms_active{{priority=\"{p}\"}} 0\n");
        assert!(text.contains(&line), "{line} in\n{text}");
    }
    for line in [
        "petra_alarms_rate_10min 0\n",
        "petra_alarms_flood 0\n",
        "petra_alarms_standing 0\n",
        "petra_alarms_chattering 0\n",
        "# TYPE petra_notifications_total counter\n",
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }
    // `/alarms/kpis` takes only GET; an alarm named `kpis` still has its actions.
    let (s, _, _) = f
        .call(Method::POST, "/api/v1/alarms/kpis", Some(&otto), None)
        .await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    let (s, j, _) = f
        .call(Method::POST, "/api/v1/alarms/kpis/ack", Some(&otto), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(
        j["message"]
            .as_str()
            .unwrap()
            .starts_with("no alarm `kpis`"),
        "{j}"
    );
}

#[tokio::test]
async fn alarms_list_and_kpis_come_from_the_source() {
    let (f, fake) = with_alarms();
    let vic = f.login("vic").await;
    let (s, j, _) = f
        .call(Method::GET, "/api/v1/alarms", Some(&vic), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let names: Vec<&str> = j
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["tank_high", "pump_fault", "refused", "gone"]);
    assert_eq!(
        j[0],
        json!({
            "name": "tank_high", "signal": "tank.level", "state": "active_unacked",
            "priority": "high", "message": "tank_high message", "value": 9.3,
            "active_since": "2026-12-04T15:00:05.000Z", "acked_at": null, "acked_by": null,
            "cleared_at": null, "shelved_until": null, "shelved_by": null,
            "shelve_reason": null, "suppressed": false, "out_of_service": false, "latch": false, "condition_active": false,
            "changed_at": "2026-12-04T15:00:05.000Z",
        })
    );
    let (s, j, _) = f
        .call(Method::GET, "/api/v1/alarms/kpis", Some(&vic), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        j,
        json!({"rate_10min": 12, "flood": true, "standing": ["tank_high"],
               "chattering": ["tank_high", "pump_fault"],
               "active": {"low": 0, "medium": 1, "high": 1, "critical": 0},
               "dropped_transitions": 0})
    );
    assert!(fake.calls().is_empty());
}

#[tokio::test]
async fn alarm_ack_needs_operator_and_is_audited_with_old_and_new() {
    let (f, fake) = with_alarms();
    let (vic, otto) = (f.login("vic").await, f.login("otto").await);
    let uri = "/api/v1/alarms/tank_high/ack";
    let (s, j, _) = f.call(Method::POST, uri, Some(&vic), None).await;
    assert_eq!(
        (s, j["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    assert!(fake.calls().is_empty(), "a viewer reached the source");
    let (s, j, _) = f
        .call(Method::POST, "/api/v1/alarms/nope/ack", Some(&otto), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(j["message"], "no alarm `nope`");
    let (s, _, _) = f
        .call(Method::POST, "/api/v1/alarms/%00/ack", Some(&otto), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(fake.calls().is_empty());

    let (s, j, _) = f.call(Method::POST, uri, Some(&otto), None).await;
    assert_eq!(s, StatusCode::OK, "{j}");
    assert_eq!(
        (j["state"].as_str(), j["acked_by"].as_str()),
        (Some("active_acked"), Some("otto"))
    );
    assert_eq!(
        fake.calls(),
        [("tank_high".into(), AlarmAction::Ack, "otto".into())]
    );
    // Refused by the source: 422 or 404 with its reason, and no audit line.
    let (s, j, _) = f
        .call(
            Method::POST,
            "/api/v1/alarms/refused/ack",
            Some(&otto),
            None,
        )
        .await;
    assert_eq!(
        (s, j["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_state"))
    );
    assert_eq!(j["message"], "alarm `refused` is out of service");
    let (s, j, _) = f
        .call(Method::POST, "/api/v1/alarms/gone/ack", Some(&otto), None)
        .await;
    assert_eq!(
        (s, j["message"].as_str()),
        (StatusCode::NOT_FOUND, Some("no alarm `gone`"))
    );
    assert_eq!(fake.calls().len(), 3);

    let acks = audit_lines(&f, "alarm.ack");
    assert_eq!(acks.len(), 1, "{acks:?}");
    let a = &acks[0];
    assert_eq!(
        (
            a["user"].as_str(),
            a["source"].as_str(),
            a["target"].as_str()
        ),
        (Some("otto"), Some("0.0.0.0:0"), Some("tank_high"))
    );
    assert_eq!(
        (a["old"].as_str(), a["new"].as_str()),
        (Some("active_unacked"), Some("active_acked"))
    );
}

#[tokio::test]
async fn alarm_shelve_checks_its_body_before_the_source_sees_it() {
    let (f, fake) = with_alarms();
    let (vic, otto) = (f.login("vic").await, f.login("otto").await);
    let uri = "/api/v1/alarms/tank_high/shelve";
    let (s, _, _) = f
        .call(
            Method::POST,
            uri,
            Some(&vic),
            shelve_body("1h", "maintenance"),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Well-formed but invalid: 422, with what is wrong.
    for (body, says) in [
        (shelve_body("0s", "x"), "more than 0"),
        (shelve_body("31d", "x"), "at most 30d"),
        (shelve_body("forever", "x"), "not a duration"),
        (shelve_body("60", "x"), "no unit"),
        (shelve_body("1h", ""), "reason is required"),
        (shelve_body("1h", "   "), "reason is required"),
        (Some(r#"{"duration":"1h"}"#.into()), "reason is required"),
        (
            Some(r#"{"duration":"1h","reason":null}"#.into()),
            "reason is required",
        ),
        (shelve_body("1h", &"x".repeat(501)), "500 characters"),
    ] {
        let (s, j, _) = f.call(Method::POST, uri, Some(&otto), body.clone()).await;
        assert_eq!(
            (s, j["error"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_value")),
            "{body:?}: {j}"
        );
        let message = j["message"].as_str().unwrap();
        assert!(message.contains(says), "{body:?}: {message}");
    }
    // Malformed: 400, as for signal writes.
    for body in [
        "",
        "{",
        "[1]",
        r#"{"reason":"x"}"#,
        r#"{"duration":3600,"reason":"x"}"#,
        r#"{"duration":"1h","reason":"x","by":"me"}"#,
    ] {
        let (s, j, _) = f
            .call(Method::POST, uri, Some(&otto), Some(body.into()))
            .await;
        assert_eq!(
            (s, j["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("bad_request")),
            "{body}"
        );
    }
    // An unknown alarm is a 404 before the body is looked at.
    let (s, _, _) = f
        .call(
            Method::POST,
            "/api/v1/alarms/nope/shelve",
            Some(&otto),
            Some("{".into()),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(fake.calls().is_empty(), "{:?}", fake.calls());
    assert!(audit_lines(&f, "alarm.shelve").is_empty());

    let (s, j, _) = f
        .call(
            Method::POST,
            uri,
            Some(&otto),
            shelve_body("1h", "sensor swap"),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{j}");
    assert_eq!(
        (j["shelved_by"].as_str(), j["shelve_reason"].as_str()),
        (Some("otto"), Some("sensor swap"))
    );
    let shelve = AlarmAction::Shelve {
        duration: Duration::from_secs(3600),
        reason: "sensor swap".into(),
    };
    assert_eq!(fake.calls(), [("tank_high".into(), shelve, "otto".into())]);
    let lines = audit_lines(&f, "alarm.shelve");
    assert_eq!(lines.len(), 1);
    assert_eq!(
        (
            lines[0]["target"].as_str(),
            lines[0]["old"].as_str(),
            lines[0]["new"].as_str()
        ),
        (
            Some("tank_high"),
            Some("in service"),
            Some("shelved for 3600s: sensor swap")
        )
    );

    let (s, j, _) = f
        .call(
            Method::POST,
            "/api/v1/alarms/tank_high/unshelve",
            Some(&otto),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{j}");
    assert_eq!(j["shelved_by"], Json::Null);
    assert_eq!(fake.calls()[1].1, AlarmAction::Unshelve);
    let lines = audit_lines(&f, "alarm.unshelve");
    assert_eq!(lines.len(), 1);
    assert_eq!(
        (lines[0]["user"].as_str(), lines[0]["new"].as_str()),
        (Some("otto"), Some("in service"))
    );
}

async fn metrics_text(f: &Fixture, token: &str) -> String {
    let req = Request::builder()
        .uri("/metrics")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let resp = router(f.api.clone()).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test]
async fn alarm_metrics_come_from_the_source_without_alarm_names() {
    let (f, _fake) = with_alarms();
    let vic = f.login("vic").await;
    let text = metrics_text(&f, &vic).await;
    for line in [
        "petra_alarms_active{priority=\"low\"} 0\n",
        "petra_alarms_active{priority=\"medium\"} 1\n",
        "petra_alarms_active{priority=\"high\"} 1\n",
        "petra_alarms_active{priority=\"critical\"} 0\n",
        "petra_alarms_rate_10min 12\n",
        "petra_alarms_flood 1\n",
        "petra_alarms_standing 1\n",
        "petra_alarms_chattering 2\n",
        "petra_notifications_total{channel=\"sms\",result=\"ok\"} 3\n",
        "petra_notifications_total{channel=\"voice\",result=\"error\"} 1\n",
        "# TYPE petra_alarms_active gauge\n",
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }
    assert!(!text.contains("tank_high") && !text.contains("pump_fault"));
}

/// Reads Server-Sent Events from a response body.
struct SseReader {
    body: axum::body::BodyDataStream,
    buf: String,
}

impl SseReader {
    /// The next event as (event, data), failing after 10 s (the events are all sent already or
    /// at once: the deadline only turns a bug into a failure instead of a hang).
    async fn next(&mut self) -> (String, Json) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let (mut event, mut data) = (String::new(), String::new());
                for line in block.lines() {
                    if let Some(e) = line.strip_prefix("event: ") {
                        event = e.into();
                    } else if let Some(d) = line.strip_prefix("data: ") {
                        data.push_str(d);
                    }
                }
                if !event.is_empty() {
                    return (event, serde_json::from_str(&data).unwrap());
                }
                continue;
            }
            let chunk = tokio::time::timeout_at(deadline, self.body.next())
                .await
                .expect("no event in time")
                .expect("the stream ended")
                .unwrap();
            self.buf.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// The next `event: alarm`, skipping signal events.
    async fn next_alarm(&mut self) -> Json {
        loop {
            let (event, data) = self.next().await;
            if event == "alarm" {
                return data;
            }
        }
    }
}

async fn open_stream(f: &Fixture, token: &str) -> SseReader {
    let req = Request::builder()
        .method(Method::GET)
        .uri("/api/v1/events")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let resp = router(f.api.clone()).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    SseReader {
        body: resp.into_body().into_data_stream(),
        buf: String::new(),
    }
}

#[tokio::test]
async fn alarm_events_reach_open_streams_and_a_lagging_stream_gets_the_list() {
    let (f, fake) = with_alarms();
    let vic = f.login("vic").await;
    let mut stream = open_stream(&f, &vic).await;
    // On connect: every signal, then every alarm.
    let mut kinds = Vec::new();
    for _ in 0..8 {
        let (event, data) = stream.next().await;
        kinds.push(format!("{event} {}", data["name"].as_str().unwrap()));
    }
    assert_eq!(
        kinds,
        [
            "signal tank.level",
            "signal tank.mode",
            "signal ro",
            "signal label",
            "alarm tank_high",
            "alarm pump_fault",
            "alarm refused",
            "alarm gone",
        ]
    );
    // A transition reaches the stream as it was published.
    let mut acked = view("tank_high", "active_acked", "high");
    acked.acked_by = Some("otto".into());
    f.api.publish_alarm(acked.clone());
    let ev = stream.next_alarm().await;
    assert_eq!(ev, serde_json::to_value(&acked).unwrap());

    // More transitions than the channel keeps, while the stream is not read: it skips them
    // and gets the whole list instead, then goes on with what comes next.
    fake.alarms.lock().unwrap()[1].message = "latest".into();
    for i in 0..events::ALARM_EVENTS + 10 {
        let mut v = view("pump_fault", "active_unacked", "low");
        v.message = format!("missed {i}");
        f.api.publish_alarm(v);
    }
    let mut burst = Vec::new();
    for _ in 0..4 {
        let ev = stream.next_alarm().await;
        burst.push((
            ev["name"].as_str().unwrap().to_string(),
            ev["message"].as_str().unwrap().to_string(),
        ));
    }
    assert_eq!(
        burst[1],
        ("pump_fault".into(), "latest".into()),
        "{burst:?}"
    );
    assert_eq!(burst.len(), 4);
    f.api
        .publish_alarm(view("gone", "active_unacked", "critical"));
    let ev = stream.next_alarm().await;
    assert_eq!(
        (ev["name"].as_str(), ev["state"].as_str()),
        (Some("gone"), Some("active_unacked"))
    );
}

#[tokio::test]
async fn reset_needs_operator_and_service_needs_engineer_with_a_body() {
    let (f, fake) = with_alarms();
    let (vic, otto, erin) = (
        f.login("vic").await,
        f.login("otto").await,
        f.login("erin").await,
    );
    let reset = "/api/v1/alarms/tank_high/reset";
    let (s, _, _) = f.call(Method::POST, reset, Some(&vic), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, j, _) = f.call(Method::POST, reset, Some(&otto), None).await;
    assert_eq!((s, j["state"].as_str()), (StatusCode::OK, Some("normal")));
    let service = "/api/v1/alarms/tank_high/service";
    let body = Some(r#"{"out_of_service": true}"#.to_string());
    let (s, _, _) = f
        .call(Method::POST, service, Some(&otto), body.clone())
        .await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "maintenance is an engineer's call"
    );
    let (s, _, _) = f
        .call(Method::POST, service, Some(&erin), Some("{}".into()))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, j, _) = f.call(Method::POST, service, Some(&erin), body).await;
    assert_eq!(
        (s, j["out_of_service"].as_bool()),
        (StatusCode::OK, Some(true))
    );
    assert_eq!(
        fake.calls(),
        [
            ("tank_high".into(), AlarmAction::Reset, "otto".into()),
            (
                "tank_high".into(),
                AlarmAction::OutOfService(true),
                "erin".into()
            ),
        ]
    );
    assert_eq!(audit_lines(&f, "alarm.reset").len(), 1);
    let svc = audit_lines(&f, "alarm.service");
    assert_eq!(
        (svc[0]["old"].as_str(), svc[0]["new"].as_str()),
        (Some("false"), Some("true"))
    );
}
