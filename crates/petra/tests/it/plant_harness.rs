//! The harness of the example plant (`examples/plant/plant.yaml`), shared by the plant test
//! (`plant.rs`) and the fault-injection suite (`faults.rs`): every peer started through
//! petra-test-support, the environment the example reads, and `petra run` on a copy of it,
//! logged in through the API.

use crate::live::{first_login, login};
use petra_test_support::clickhouse::{self, ClickHouse};
use petra_test_support::modbus::{ModbusSim, SimArea, SimLayout};
use petra_test_support::mqtt::Broker;
use petra_test_support::s7::{S7Area, S7Impl, S7Layout, S7Sim};
use petra_test_support::twilio::{self, Prism};
use petra_test_support::{Child, DEFAULT_TIMEOUT};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Every variable the example references.
pub(crate) const VARIABLES: [&str; 11] = [
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
pub(crate) fn skid_layout() -> SimLayout {
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
pub(crate) fn heater_layout() -> SimLayout {
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
pub(crate) fn plc_layout() -> S7Layout {
    S7Layout::new().db(1, 32).db(2, 8)
}

/// The peers of the whole plant.
pub(crate) struct Peers {
    /// A broker that can be killed and restarted on the same port (plain listener).
    pub broker: Broker,
    pub clickhouse: ClickHouse,
    pub prism: Prism,
    pub skid: ModbusSim,
    pub heater: ModbusSim,
    pub plc: S7Sim,
}

impl Peers {
    /// Starts every peer at once (each waits for its own readiness; a missing one fails with
    /// its install hint).
    pub fn start() -> Peers {
        fn join<T>(h: std::thread::ScopedJoinHandle<'_, T>) -> T {
            h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
        }
        std::thread::scope(|s| {
            let broker = s.spawn(Broker::start);
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
    pub fn fill(&self) {
        self.fill_skid();
        self.fill_heater();
        self.fill_plc();
    }

    /// Skid: FT-101 5000 counts (10 m³/h), P1 current 12.5 A (f32, word order CDAB),
    /// VFD 38.5 °C; not running, no fault.
    pub fn fill_skid(&self) {
        let current = 12.5f32.to_bits();
        self.skid.set_registers(
            1,
            SimArea::Input,
            0,
            &[5000, current as u16, (current >> 16) as u16, 385],
        );
        self.skid.set_bits(1, SimArea::Discrete, 0, &[false, false]);
    }

    /// Heater: TT-102 45.2 °C, no power, no trip.
    pub fn fill_heater(&self) {
        self.heater.set_registers(7, SimArea::Input, 0, &[452, 0]);
    }

    /// PLC: T1 3.0 m, T2 2.5 m, PT-101 13824 (5 bar); V1 closed, V2 closed, E-stop OK;
    /// the batch number as STRING[16].
    pub fn fill_plc(&self) {
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
    pub fn env(&self, http_port: u16) -> Vec<(&'static str, String)> {
        vec![
            ("MODBUS_TCP", format!("127.0.0.1:{}", self.skid.port())),
            (
                "MODBUS_RTU_DEVICE",
                self.heater.serial_path().display().to_string(),
            ),
            ("S7_HOST", self.plc.host().to_string()),
            ("S7_PORT", self.plc.port().to_string()),
            (
                "MQTT_URL",
                format!("mqtt://127.0.0.1:{}", self.broker.plain_port()),
            ),
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
/// `live::Live` that passes the environment and names the configuration, and that starts
/// Petra again on the same directory after it exited (or was killed).
pub(crate) struct Plant {
    pub petra: Child,
    pub http: reqwest::blocking::Client,
    pub token: String,
    pub port: u16,
    password: String,
    dir: PathBuf,
    env: Vec<(&'static str, String)>,
}

fn spawn_petra(dir: &Path, env: &[(&'static str, String)]) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_petra"));
    cmd.current_dir(dir)
        .args(["run", "plant.yaml", "--status-every", "0s"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    Child::spawn("petra run", &mut cmd)
}

impl Plant {
    pub fn start(dir: &Path, env: &[(&'static str, String)], port: u16) -> Plant {
        let mut petra = spawn_petra(dir, env);
        let (http, password, token) = first_login(&mut petra, port);
        Plant {
            petra,
            http,
            token,
            port,
            password,
            dir: dir.to_path_buf(),
            env: env.to_vec(),
        }
    }

    /// Starts Petra again on the same directory (its users file exists now: no new password)
    /// once the previous process has exited, and logs in again.
    pub fn restart(&mut self) {
        self.petra.wait_exit(DEFAULT_TIMEOUT);
        self.petra = spawn_petra(&self.dir, &self.env);
        self.petra
            .wait_for_line("HTTP API listening", DEFAULT_TIMEOUT);
        self.token = login(&self.http, self.port, &self.password);
    }

    /// Whether the Petra process still runs: it exists and is not a zombie (an exited child not
    /// yet reaped still has its pid; /proc says `Z`).
    pub fn is_running(&self) -> bool {
        std::fs::read_to_string(format!("/proc/{}/stat", self.petra.pid())).is_ok_and(|s| {
            s.rsplit_once(") ")
                .is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X'))
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn get(&self, path: &str) -> Value {
        let r = self
            .http
            .get(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .unwrap();
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.json().unwrap()
    }

    pub fn signal(&self, name: &str) -> Value {
        self.get(&format!("/api/v1/signals/{name}"))
    }

    /// The signal's value if its quality is good.
    pub fn good(&self, name: &str) -> Option<Value> {
        let s = self.signal(name);
        (s["quality"] == "good").then(|| s["value"].clone())
    }

    /// `/ready`: the status code and the body.
    pub fn ready(&self) -> (u16, Value) {
        let r = self.http.get(self.url("/ready")).send().unwrap();
        (r.status().as_u16(), r.json().unwrap())
    }

    pub fn alarm(&self, name: &str) -> Value {
        self.get("/api/v1/alarms")
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no alarm {name} in the list"))
    }

    pub fn journal(&self) -> Vec<Value> {
        self.get("/api/v1/alarms/journal?limit=1000")
            .as_array()
            .unwrap()
            .clone()
    }
}

pub(crate) fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/plant/plant.yaml")
}

pub(crate) fn check(config: &Path, env: &[(&'static str, String)]) -> std::process::Output {
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

pub(crate) fn approx(v: &Value, want: f64) -> bool {
    v.as_f64().is_some_and(|x| (x - want).abs() < 1e-6)
}
