//! The router called directly (no socket), with time moved by hand.

use super::*;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use petra_core::{SystemClock, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use tower::ServiceExt;

pub(super) const PASSWORD: &str = "a long enough password";

const CONFIG: &str = "plant: t
signals:
  - { name: tank.level, type: float, unit: m, initial: 2.5, min: 0.0, max: 10.0, write: [operator] }
  - { name: tank.mode, type: int, initial: 1, write: [engineer, mqtt] }
  - { name: ro, type: bool, initial: false }
  - { name: label, type: string, initial: x, write: [viewer] }
";

pub(super) struct Fixture {
    pub(super) api: Arc<Api>,
    _engine: petra_engine::EngineHandle,
    _dir: tempfile::TempDir,
    /// Seconds added to the real clocks.
    offset: Arc<AtomicU64>,
    _reload_rx: mpsc::Receiver<ReloadRequest>,
}

pub(super) fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let plan = petra_config::load_str(
        CONFIG,
        "t.yaml",
        dir.path(),
        &|_| None,
        &petra_engine::Registry::new(),
    )
    .unwrap();
    let clock: Arc<dyn petra_core::Clock> = Arc::new(SystemClock::new());
    let bus = plan.bus_builder().build(clock.wall());
    let meta = SignalMeta::from_plan(&plan);
    let engine = petra_engine::Engine::new(plan.program, bus.clone(), clock)
        .unwrap()
        .spawn(Box::new(|| {}))
        .unwrap();
    let mut users = Users::load(&dir.path().join("users.json")).unwrap();
    let now = SystemTime::now();
    for (name, role) in [
        ("vic", Role::Viewer),
        ("otto", Role::Operator),
        ("erin", Role::Engineer),
    ] {
        users.add(name, role, PASSWORD, now).unwrap();
    }
    users.save().unwrap();
    let audit = Arc::new(AuditLog::open(&dir.path().join("audit.jsonl")).unwrap());
    let offset = Arc::new(AtomicU64::new(0));
    let (o1, o2) = (offset.clone(), offset.clone());
    let clocks = Clocks {
        wall: Arc::new(move || SystemTime::now() + Duration::from_secs(o1.load(Ordering::SeqCst))),
        mono: Arc::new(move || Instant::now() + Duration::from_secs(o2.load(Ordering::SeqCst))),
    };
    let (api, rx) = Api::new(ApiParts {
        signals: Signals::new(bus, meta, None),
        users,
        token_ttl: Duration::from_secs(60),
        audit: Some(audit),
        stats: engine.stats_source(),
        config_name: "t.yaml".into(),
        clocks,
    });
    Fixture {
        api,
        _engine: engine,
        _dir: dir,
        offset,
        _reload_rx: rx,
    }
}

impl Fixture {
    pub(super) async fn call(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<String>,
    ) -> (StatusCode, serde_json::Value, axum::http::HeaderMap) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let req = req.body(body.map(Body::from).unwrap_or_default()).unwrap();
        let resp = router(self.api.clone()).oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        (status, json, headers)
    }

    pub(super) async fn login(&self, user: &str) -> String {
        let body = format!(r#"{{"user":"{user}","password":"{PASSWORD}"}}"#);
        let (s, j, _) = self
            .call(Method::POST, "/api/v1/login", None, Some(body))
            .await;
        assert_eq!(s, StatusCode::OK, "{j}");
        j["token"].as_str().unwrap().to_string()
    }

    fn value(&self, name: &str) -> Value {
        let s = self.api.current();
        s.bus.read(s.bus.id(name).unwrap()).unwrap().value
    }
}

/// One per signal: with 100,000 signals every byte is 100 kB, and name and unit are the bus's.
#[test]
fn signal_metadata_stays_small() {
    assert!(size_of::<SignalMeta>() <= 64, "{}", size_of::<SignalMeta>());
}

#[tokio::test]
async fn http_tokens_expire_with_the_clock() {
    let f = fixture();
    let t = f.login("vic").await;
    let (s, j, _) = f
        .call(Method::GET, "/api/v1/signals/tank.level", Some(&t), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(j["value"], 2.5);
    f.offset.store(61, Ordering::SeqCst);
    let (s, j, h) = f
        .call(Method::GET, "/api/v1/signals/tank.level", Some(&t), None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(j["error"], "unauthorized");
    assert_eq!(h["www-authenticate"], "Bearer");
}

#[tokio::test]
async fn http_failed_logins_are_limited_per_address_and_recover() {
    let f = fixture();
    let bad = r#"{"user":"vic","password":"wrong password!"}"#.to_string();
    for _ in 0..5 {
        let (s, _, _) = f
            .call(Method::POST, "/api/v1/login", None, Some(bad.clone()))
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let (s, j, h) = f
        .call(Method::POST, "/api/v1/login", None, Some(bad.clone()))
        .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{j}");
    assert_eq!(j["error"], "too_many_requests");
    let secs: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&secs), "{secs}");
    f.offset.store(61, Ordering::SeqCst);
    f.login("vic").await;
}

#[tokio::test]
async fn http_writes_check_role_type_and_range() {
    let f = fixture();
    let (vic, otto, erin) = (
        f.login("vic").await,
        f.login("otto").await,
        f.login("erin").await,
    );
    let put = |v: &str| Some(format!(r#"{{"value":{v}}}"#));
    let uri = "/api/v1/signals/tank.level";
    // Role below the write list.
    let (s, j, _) = f.call(Method::PUT, uri, Some(&vic), put("3.0")).await;
    assert_eq!(
        (s, j["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    // Above the range, wrong type: 422 and unchanged.
    for (v, code) in [
        ("12.5", "out_of_range"),
        ("-1", "out_of_range"),
        ("true", "wrong_type"),
        ("\"3\"", "wrong_type"),
        ("null", "wrong_type"),
        ("[1]", "wrong_type"),
    ] {
        let (s, j, _) = f.call(Method::PUT, uri, Some(&otto), put(v)).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}: {j}");
        assert_eq!(j["error"], code, "{v}");
        assert!(f.value("tank.level").same(&Value::Float(2.5)));
    }
    // Higher role than listed may write; an int is fine for a float.
    let (s, j, _) = f.call(Method::PUT, uri, Some(&erin), put("4")).await;
    assert_eq!(s, StatusCode::OK, "{j}");
    assert_eq!(j["value"], 4.0);
    assert!(f.value("tank.level").same(&Value::Float(4.0)));
    // An int signal refuses a float; `mqtt` in the list is not an API role.
    let (s, j, _) = f
        .call(
            Method::PUT,
            "/api/v1/signals/tank.mode",
            Some(&erin),
            put("2.5"),
        )
        .await;
    assert_eq!(
        (s, j["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("wrong_type"))
    );
    let (s, _, _) = f
        .call(
            Method::PUT,
            "/api/v1/signals/tank.mode",
            Some(&otto),
            put("2"),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Read-only, unknown, badly named.
    let (s, j, _) = f
        .call(Method::PUT, "/api/v1/signals/ro", Some(&erin), put("true"))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(j["message"].as_str().unwrap().contains("nobody"), "{j}");
    let (s, _, _) = f
        .call(Method::PUT, "/api/v1/signals/nope", Some(&erin), put("1"))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = f
        .call(Method::GET, "/api/v1/signals/%00%ff", Some(&erin), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Malformed bodies.
    for body in ["", "{", "{\"value\":1,\"x\":2}", "[1]"] {
        let (s, j, _) = f
            .call(Method::PUT, uri, Some(&erin), Some(body.into()))
            .await;
        assert_eq!(
            (s, j["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("bad_request")),
            "{body}"
        );
    }
    let deep = format!(
        "{{\"value\":{}1{}}}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let (s, _, _) = f.call(Method::PUT, uri, Some(&erin), Some(deep)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let big = format!("{{\"value\":\"{}\"}}", "x".repeat(70_000));
    let (s, j, _) = f
        .call(Method::PUT, "/api/v1/signals/label", Some(&erin), Some(big))
        .await;
    assert_eq!(
        (s, j["error"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large"))
    );
    // The audit log has exactly the one successful write, with user and old/new values.
    let log = std::fs::read_to_string(f.api.audit.as_ref().unwrap().path()).unwrap();
    let writes: Vec<&str> = log.lines().filter(|l| l.contains("signal.write")).collect();
    assert_eq!(writes.len(), 1, "{log}");
    let w: serde_json::Value = serde_json::from_str(writes[0]).unwrap();
    assert_eq!(
        (w["user"].as_str(), w["target"].as_str()),
        (Some("erin"), Some("tank.level"))
    );
    assert_eq!(
        (w["old"].as_f64(), w["new"].as_f64()),
        (Some(2.5), Some(4.0))
    );
}

#[tokio::test]
async fn http_roles_and_unauthenticated_calls() {
    let f = fixture();
    let vic = f.login("vic").await;
    for (m, uri) in [
        (Method::GET, "/api/v1/signals"),
        (Method::GET, "/api/v1/signals/tank.level"),
        (Method::PUT, "/api/v1/signals/tank.level"),
        (Method::GET, "/api/v1/alarms"),
        (Method::GET, "/api/v1/alarms/kpis"),
        (Method::POST, "/api/v1/alarms/a/ack"),
        (Method::POST, "/api/v1/alarms/a/shelve"),
        (Method::POST, "/api/v1/alarms/a/unshelve"),
        (Method::GET, "/api/v1/history?signal=tank.level"),
        (Method::POST, "/api/v1/config/reload"),
        (Method::GET, "/api/v1/events"),
        (Method::GET, "/metrics"),
    ] {
        let (s, j, _) = f.call(m.clone(), uri, None, None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{m} {uri}");
        assert_eq!(j["error"], "unauthorized");
        let (s, _, _) = f.call(m.clone(), uri, Some("garbage"), None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{m} {uri}");
        let (s, _, _) = f.call(m.clone(), uri, Some("petra_nope"), None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{m} {uri}");
    }
    for uri in [
        "/api/v1/alarms/a/ack",
        "/api/v1/alarms/a/unshelve",
        "/api/v1/config/reload",
    ] {
        let (s, j, _) = f.call(Method::POST, uri, Some(&vic), None).await;
        assert_eq!(
            (s, j["error"].as_str()),
            (StatusCode::FORBIDDEN, Some("forbidden")),
            "{uri}"
        );
    }
    let (s, j, _) = f
        .call(
            Method::GET,
            "/api/v1/signals?match=tank.*",
            Some(&vic),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let names: Vec<&str> = j
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["tank.level", "tank.mode"]);
    assert_eq!(j[0]["unit"], "m");
    assert_eq!(j[1]["unit"], serde_json::Value::Null);
    let (s, j, _) = f
        .call(
            Method::GET,
            "/api/v1/history?signal=tank.level",
            Some(&vic),
            None,
        )
        .await;
    assert_eq!(
        (s, j["error"].as_str()),
        (StatusCode::NOT_IMPLEMENTED, Some("not_implemented"))
    );
    let (s, j, _) = f
        .call(Method::GET, "/api/v1/alarms", Some(&vic), None)
        .await;
    assert_eq!((s, j), (StatusCode::OK, serde_json::json!([])));
    let otto = f.login("otto").await;
    let (s, _, _) = f
        .call(Method::POST, "/api/v1/alarms/a/ack", Some(&otto), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, j, _) = f.call(Method::GET, "/ready", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        j,
        serde_json::json!({"status":"ready","components":{"engine":"up","audit_log":"up"}})
    );
    f.api.readiness().set("engine", ComponentState::Down);
    let (s, j, _) = f.call(Method::GET, "/ready", None, None).await;
    assert_eq!(
        (s, j["status"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("not_ready"))
    );
    let (s, j, _) = f.call(Method::GET, "/health", None, None).await;
    assert_eq!((s, j), (StatusCode::OK, serde_json::json!({"status":"ok"})));
    let (s, j, _) = f.call(Method::GET, "/nope", None, None).await;
    assert_eq!(
        (s, j["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
}

#[test]
fn http_glob_matches_like_the_docs_say() {
    use super::handlers::glob;
    assert!(glob("tank.*", "tank.level"));
    assert!(glob("*", "x"));
    assert!(glob("*.level", "tank.level"));
    assert!(glob("t?nk.*l", "tank.level"));
    assert!(!glob("tank.?", "tank.level"));
    assert!(!glob("pump*", "tank.level"));
    assert!(glob("a*b*c", "axxbyyc"));
    assert!(!glob("a*b*c", "axxbyy"));
    assert!(glob("", "") && !glob("", "a"));
}
