//! The example plant (`examples/plant/plant.yaml`) with every part running at once: a Modbus
//! TCP device, a Modbus RTU device on a pty pair, an S7 PLC, an MQTT broker (in and out),
//! ClickHouse and Parquet history, alarms paging through the Twilio mock, the HTTP API.
//!
//! Every peer is started here through petra-test-support (not through `examples/plant/run`),
//! the example is copied into a temp dir (its `data_dir` is relative to it) and gets the
//! peers' addresses through the environment variables it references.

use petra_test_support::clickhouse::{self, ClickHouse};
use petra_test_support::modbus::{ModbusSim, SimArea, SimLayout};
use petra_test_support::mqtt::{self as peer, Sub};
use petra_test_support::s7::{S7Area, S7Impl, S7Layout, S7Sim};
use petra_test_support::twilio::{self, Prism};
use petra_test_support::{Child, DEFAULT_TIMEOUT, Mosquitto, free_port, wait_until};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Every variable the example references.
const VARIABLES: [&str; 11] = [
    "MODBUS_TCP",
    "MODBUS_RTU_DEVICE",
    "S7_HOST",
    "S7_PORT",
    "MQTT_URL",
    "CLICKHOUSE_URL",
    "CLICKHOUSE_PASSWORD",
    "TWILIO_API",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "HTTP_LISTEN",
];

/// The pump skid: P1's VFD and flow meter FT-101, unit 1.
fn skid_layout() -> SimLayout {
    SimLayout::new().unit(
        1,
        &[
            (SimArea::Input, 0..4),
            (SimArea::Discrete, 0..2),
            (SimArea::Coil, 0..1),
            (SimArea::Holding, 0..1),
        ],
    )
}

/// The heater controller H1 with TT-102, unit 7 on the RS-485 line.
fn heater_layout() -> SimLayout {
    SimLayout::new().unit(
        7,
        &[
            (SimArea::Input, 0..2),
            (SimArea::Discrete, 0..1),
            (SimArea::Coil, 0..1),
            (SimArea::Holding, 0..1),
        ],
    )
}

/// The PLC: DB1 measurements, DB2 commands.
fn plc_layout() -> S7Layout {
    S7Layout::new().db(1, 32).db(2, 8)
}

/// The peers of the whole plant.
struct Peers {
    broker: Mosquitto,
    clickhouse: ClickHouse,
    prism: Prism,
    skid: ModbusSim,
    heater: ModbusSim,
    plc: S7Sim,
}

impl Peers {
    /// Starts every peer at once (each waits for its own readiness; a missing one fails with
    /// its install hint).
    fn start() -> Peers {
        fn join<T>(h: std::thread::ScopedJoinHandle<'_, T>) -> T {
            h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
        }
        std::thread::scope(|s| {
            let broker = s.spawn(Mosquitto::start);
            let clickhouse = s.spawn(ClickHouse::start);
            let prism = s.spawn(Prism::start);
            let skid = s.spawn(|| ModbusSim::tcp(&skid_layout()));
            let heater = s.spawn(|| ModbusSim::rtu(&heater_layout(), 19200));
            let plc = s.spawn(|| S7Sim::start(S7Impl::Native, &plc_layout()));
            Peers {
                broker: join(broker),
                clickhouse: join(clickhouse),
                prism: join(prism),
                skid: join(skid),
                heater: join(heater),
                plc: join(plc),
            }
        })
    }

    /// A plant in its steady state before Petra starts: T1 3 m, T2 filled to its setpoint at
    /// 45.2 °C, P1 stopped, both valves closed, the E-stop healthy.
    fn fill(&self) {
        // Skid: FT-101 5000 counts (10 m³/h), P1 current 12.5 A (f32, word order CDAB),
        // VFD 38.5 °C; not running, no fault.
        let current = 12.5f32.to_bits();
        self.skid.set_registers(
            1,
            SimArea::Input,
            0,
            &[5000, current as u16, (current >> 16) as u16, 385],
        );
        self.skid.set_bits(1, SimArea::Discrete, 0, &[false, false]);
        // Heater: TT-102 45.2 °C, no power, no trip.
        self.heater.set_registers(7, SimArea::Input, 0, &[452, 0]);
        // PLC: T1 3.0 m, T2 2.5 m, PT-101 13824 (5 bar); V1 closed, V2 closed, E-stop OK;
        // the batch number as STRING[16].
        let db = S7Area::DataBlock;
        self.plc.set(db, 1, 0, &3.0f32.to_be_bytes());
        self.plc.set(db, 1, 4, &2.5f32.to_be_bytes());
        self.plc.set(db, 1, 8, &13824i16.to_be_bytes());
        self.plc.set(db, 1, 10, &[0b1010]);
        let mut batch = vec![16, 6];
        batch.extend_from_slice(b"B-0042");
        self.plc.set(db, 1, 12, &batch);
    }

    /// The environment the example needs to reach these peers.
    fn env(&self, http_port: u16) -> Vec<(&'static str, String)> {
        vec![
            ("MODBUS_TCP", format!("127.0.0.1:{}", self.skid.port())),
            (
                "MODBUS_RTU_DEVICE",
                self.heater.serial_path().display().to_string(),
            ),
            ("S7_HOST", self.plc.host().to_string()),
            ("S7_PORT", self.plc.port().to_string()),
            ("MQTT_URL", format!("mqtt://127.0.0.1:{}", self.broker.port)),
            ("CLICKHOUSE_URL", self.clickhouse.url()),
            ("CLICKHOUSE_PASSWORD", clickhouse::PASSWORD.to_string()),
            ("TWILIO_API", self.prism.url()),
            ("TWILIO_ACCOUNT_SID", twilio::ACCOUNT_SID.to_string()),
            ("TWILIO_AUTH_TOKEN", twilio::AUTH_TOKEN.to_string()),
            ("HTTP_LISTEN", format!("127.0.0.1:{http_port}")),
        ]
    }
}

/// `petra run plant.yaml` in `dir` with `env`, logged in as the first-run admin. A variant of
/// `live::Live` that passes the environment and names the configuration.
struct Plant {
    petra: Child,
    http: reqwest::blocking::Client,
    token: String,
    port: u16,
}

impl Plant {
    fn start(dir: &Path, env: &[(&'static str, String)], port: u16) -> Plant {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_petra"));
        cmd.current_dir(dir)
            .args(["run", "plant.yaml", "--status-every", "0s"]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut petra = Child::spawn("petra run", &mut cmd);
        let line = petra.wait_for_line("created user `admin` with password ", DEFAULT_TIMEOUT);
        let password = line.rsplit(' ').next().unwrap().to_string();
        petra.wait_for_line("HTTP API listening", DEFAULT_TIMEOUT);
        petra_server::tls::install_crypto_provider();
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        let login: Value = http
            .post(format!("http://127.0.0.1:{port}/api/v1/login"))
            .json(&json!({"user": "admin", "password": password}))
            .send()
            .unwrap()
            .json()
            .unwrap();
        let token = login["token"]
            .as_str()
            .unwrap_or_else(|| panic!("login failed: {login}"))
            .to_string();
        Plant {
            petra,
            http,
            token,
            port,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

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

    fn signal(&self, name: &str) -> Value {
        self.get(&format!("/api/v1/signals/{name}"))
    }

    /// The signal's value if its quality is good.
    fn good(&self, name: &str) -> Option<Value> {
        let s = self.signal(name);
        (s["quality"] == "good").then(|| s["value"].clone())
    }

    /// `/ready`: the status code and the body.
    fn ready(&self) -> (u16, Value) {
        let r = self.http.get(self.url("/ready")).send().unwrap();
        (r.status().as_u16(), r.json().unwrap())
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

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/plant/plant.yaml")
}

fn check(config: &Path, env: &[(&'static str, String)]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_petra"));
    cmd.arg("check").arg(config);
    for var in VARIABLES {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn approx(v: &Value, want: f64) -> bool {
    v.as_f64().is_some_and(|x| (x - want).abs() < 1e-6)
}

/// Runs duckdb (Python) over the Parquet files under `dir` and returns its printed line.
fn duckdb(dir: &Path, select: &str) -> String {
    let glob = dir.join("data/history/**/*.parquet");
    let sql = select.replace("FILES", &format!("read_parquet('{}')", glob.display()));
    let out = Command::new("python3")
        .args([
            "-c",
            &format!("import duckdb\nprint(duckdb.connect().execute(\"{sql}\").fetchone())"),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "duckdb failed (install: python3 -m pip install duckdb): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn the_example_plant_runs_with_every_part_at_once() {
    let t0 = Instant::now();
    let lap = |what: &str| eprintln!("plant: {what} after {:.1?}", t0.elapsed());
    let peers = Peers::start();
    peers.fill();
    lap("peers started");

    // The example is valid with the variables set, and names every one that is missing.
    let port = free_port();
    let env = peers.env(port);
    let out = check(&example(), &env);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let out = check(&example(), &[]);
    let errors = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{errors}");
    for var in VARIABLES {
        assert!(
            errors.contains(&format!("environment variable `{var}` not set")),
            "{var}: {errors}"
        );
    }

    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(example(), dir.path().join("plant.yaml")).unwrap();
    let mut sub = Sub::builder(peers.broker.port, "petra/plant/status")
        .filter("petra/plant/signals/ft101.flow")
        .filter("petra/plant/signals/plant.step")
        .filter("petra/plant/alarms/t2_temp_high")
        .start();
    let plant = Plant::start(dir.path(), &env, port);
    lap("petra logged in");

    // Every driver connected, so the plant is ready.
    wait_until("/ready 200 with every driver up", DEFAULT_TIMEOUT, || {
        plant.ready().0 == 200
    });
    let (_, ready) = plant.ready();
    for driver in ["skid", "heater", "plc", "broker"] {
        assert_eq!(
            ready["components"][format!("driver.{driver}")],
            "up",
            "{ready}"
        );
    }
    lap("ready");

    // Values from every device, good: Modbus TCP, Modbus RTU, S7.
    wait_until("good values from every device", DEFAULT_TIMEOUT, || {
        plant.good("ft101.raw") == Some(json!(5000))
            && plant.good("p1.current").is_some_and(|v| approx(&v, 12.5))
            && plant.good("t2.temp").is_some_and(|v| approx(&v, 45.2))
            && plant.good("t1.level").is_some_and(|v| approx(&v, 3.0))
            && plant.good("plc.batch_id") == Some(json!("B-0042"))
            && plant.good("estop.ok") == Some(json!(true))
    });
    // MQTT in: the weather station.
    peer::publish(
        peers.broker.port,
        "weather/station1",
        br#"{"temp": 1.0, "humidity": 80}"#,
        1,
        false,
    );
    wait_until("the weather from MQTT", DEFAULT_TIMEOUT, || {
        plant.good("outdoor.temp").is_some_and(|v| approx(&v, 1.0))
            && plant
                .good("outdoor.humidity")
                .is_some_and(|v| approx(&v, 80.0))
    });
    lap("values from every device");

    // Blocks computed from them: scaling, inventory over two tanks, the batch sequence in its
    // heat step (T2 filled, 45.2 °C is below 60 °C), the heater interlock and full power to
    // the RTU controller, frost protection switching the trace heating in the PLC.
    wait_until("block outputs", DEFAULT_TIMEOUT, || {
        plant.good("ft101.flow").is_some_and(|v| approx(&v, 10.0))
            && plant
                .good("pt101.pressure")
                .is_some_and(|v| approx(&v, 5.0))
            && plant
                .good("plant.inventory")
                .is_some_and(|v| approx(&v, 3.0 * 12.5 + 2.5 * 4.0))
            && plant.good("plant.step") == Some(json!(2))
            && plant.good("h1.enable_cmd") == Some(json!(true))
            && plant.good("h1.power_ref") == Some(json!(1000))
            && plant.good("p1.run_cmd") == Some(json!(false))
            && plant.good("trace.heat_cmd") == Some(json!(true))
    });
    wait_until(
        "the outputs written to the devices",
        DEFAULT_TIMEOUT,
        || {
            peers.heater.bits(7, SimArea::Coil, 0, 1) == [true]
                && peers.heater.registers(7, SimArea::Holding, 0, 1) == [1000]
                && peers.plc.get(S7Area::DataBlock, 2, 4, 1) == [1]
        },
    );
    lap("block outputs");

    // MQTT out: the broker has the signals under the prefix, and the status.
    sub.wait_for("ft101.flow and the batch step published", |m| {
        let last = |topic: &str| {
            m.iter()
                .rev()
                .find(|m| m.topic == topic)
                .and_then(|m| serde_json::from_slice::<Value>(&m.payload).ok())
        };
        last("petra/plant/signals/ft101.flow")
            .is_some_and(|p| approx(&p["value"], 10.0) && p["quality"] == "good")
            && last("petra/plant/signals/plant.step").is_some_and(|p| p["value"] == 2)
            && m.iter()
                .any(|m| m.topic == "petra/plant/status" && m.payload == b"online")
    });
    lap("published to MQTT");

    // History: rows in ClickHouse.
    let ch_rows = |signal: &str| -> (u64, f64) {
        let sql = format!(
            "SELECT count(), max(value) FROM petra.samples FINAL WHERE signal = '{signal}'"
        );
        let answer = peers.clickhouse.try_query(&sql).unwrap_or_default();
        let mut f = answer.split_whitespace();
        let count = f.next().and_then(|c| c.parse().ok()).unwrap_or(0);
        let max = f.next().and_then(|c| c.parse().ok()).unwrap_or(f64::NAN);
        (count, max)
    };
    wait_until("rows in ClickHouse", DEFAULT_TIMEOUT, || {
        let (count, max) = ch_rows("ft101.flow");
        count > 0 && max == 10.0 && ch_rows("t1.level").0 > 0
    });
    lap("rows in ClickHouse");

    // An alarm: TT-102 reads 80 °C → `t2_temp_high` active, alice texted through the Twilio
    // mock (Prism validated the request against Twilio's own description).
    assert_eq!(plant.alarm("t2_temp_high")["state"], "normal");
    peers.heater.set_registers(7, SimArea::Input, 0, &[800]);
    wait_until("t2_temp_high active", DEFAULT_TIMEOUT, || {
        plant.alarm("t2_temp_high")["state"] == "active_unacked"
    });
    let a = plant.alarm("t2_temp_high");
    assert_eq!(a["priority"], "high", "{a}");
    assert_eq!(a["message"], "T2 temperature high: 80 °C", "{a}");
    wait_until(
        "the SMS to alice accepted by the mock",
        DEFAULT_TIMEOUT,
        || {
            plant.journal().iter().any(|e| {
                e["kind"] == "notification"
                    && e["contact"] == "alice"
                    && e["channel"] == "sms"
                    && e["result"] == "ok"
                    && e["alarms"]
                        .as_array()
                        .is_some_and(|a| a.contains(&json!("t2_temp_high")))
            })
        },
    );
    sub.wait_for("the alarm published", |m| {
        m.iter().any(|m| {
            m.topic == "petra/plant/alarms/t2_temp_high"
                && serde_json::from_slice::<Value>(&m.payload)
                    .is_ok_and(|p| p["state"] == "active_unacked")
        })
    });
    // T2 is hot now: the sequence delivers (V2 open in the PLC) and the heater backs off.
    wait_until("the deliver step", DEFAULT_TIMEOUT, || {
        plant.good("plant.step") == Some(json!(3))
            && peers.plc.get(S7Area::DataBlock, 2, 1, 1) == [1]
            && peers.heater.registers(7, SimArea::Holding, 0, 1) == [0]
    });
    lap("alarm paged");

    // A command over MQTT: the temperature setpoint (its `write` list names mqtt).
    peer::publish(
        peers.broker.port,
        "petra/plant/write/t2.temp_sp",
        b"70",
        1,
        false,
    );
    wait_until("t2.temp_sp written over MQTT", DEFAULT_TIMEOUT, || {
        plant.good("t2.temp_sp").is_some_and(|v| approx(&v, 70.0))
    });

    // A clean stop completes the Parquet files.
    let Plant { mut petra, .. } = plant;
    petra.terminate();
    let status = petra.wait_exit(DEFAULT_TIMEOUT);
    assert!(status.success(), "{}", petra.output().join("\n"));
    let files: Vec<PathBuf> = std::fs::read_dir(dir.path().join("data/history"))
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|f| f.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    assert!(!files.is_empty(), "no Parquet file after a clean stop");
    let row = duckdb(
        dir.path(),
        "SELECT count(DISTINCT signal), max(value) FILTER (WHERE signal = 't2.temp') FROM FILES",
    );
    assert!(
        row.ends_with(", 80.0)") && !row.starts_with("(0,"),
        "Parquet rows: {row}"
    );
    lap("Parquet files after the stop");
    assert!(
        t0.elapsed() < Duration::from_secs(90),
        "the plant test took {:?}",
        t0.elapsed()
    );
}
