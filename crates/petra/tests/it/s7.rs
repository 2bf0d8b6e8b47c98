//! `petra probe` and `petra run` with an S7 driver, against both S7 peers: python-snap7
//! 3.3.0's pure Python server and python-snap7 2.0.2's native snap7 server.

use crate::live::Live;
use petra_test_support::s7::{S7Area, S7Impl, S7Layout, S7Sim};
use petra_test_support::{DEFAULT_TIMEOUT, free_port, wait_until};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const DB: S7Area = S7Area::DataBlock;

fn layout() -> S7Layout {
    S7Layout::new().db(1, 256).db(2, 64).flags(32).outputs(8)
}

/// Known values of every type, and what the probe must show for them.
fn fill(sim: &S7Sim) -> Vec<(&'static str, Value)> {
    sim.set(DB, 1, 0, &[0b0000_1000, 0xFE, b'Z']);
    sim.set(DB, 1, 4, &0x1234u16.to_be_bytes());
    sim.set(DB, 1, 6, &(-2i16).to_be_bytes());
    sim.set(DB, 1, 8, &4_000_000_000u32.to_be_bytes());
    sim.set(DB, 1, 12, &(-7i32).to_be_bytes());
    sim.set(DB, 1, 16, &123.456f32.to_be_bytes());
    sim.set(DB, 1, 20, &(-9876.54321f64).to_be_bytes());
    sim.set(DB, 1, 30, &[10, 5, b'P', b'E', b'T', b'R', b'A']);
    let arr: Vec<u8> = [1.5f32, -2.5]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect();
    sim.set(DB, 1, 50, &arr);
    sim.set(S7Area::Flags, 0, 4, &(-300i16).to_be_bytes());
    sim.set(S7Area::Outputs, 0, 0, &[0b10]);
    vec![
        ("bit", json!(true)),
        ("byte", json!(254)),
        ("char", json!("Z")),
        ("word", json!(0x1234)),
        ("int", json!(-2)),
        ("dword", json!(4_000_000_000i64)),
        ("dint", json!(-7)),
        ("real", json!(123.456f32 as f64)),
        ("lreal", json!(-9876.54321)),
        ("text", json!("PETRA")),
        ("arr.0", json!(1.5)),
        ("arr.1", json!(-2.5)),
        ("mw", json!(-300)),
        ("q", json!(true)),
    ]
}

const SIGNALS: &str = "
  - { name: bit, type: bool }
  - { name: byte, type: int }
  - { name: char, type: string }
  - { name: word, type: int }
  - { name: int, type: int }
  - { name: dword, type: int }
  - { name: dint, type: int }
  - { name: real, type: float }
  - { name: lreal, type: float }
  - { name: text, type: string }
  - { name: arr.0, type: float }
  - { name: arr.1, type: float }
  - { name: mw, type: int }
  - { name: q, type: bool }
  - { name: gone, type: int }
";

const POINTS: &str = "
      - { signal: bit, address: DB1.DBX0.3 }
      - { signal: byte, address: DB1.DBB1 }
      - { signal: char, address: DB1.DBB2, type: char }
      - { signal: word, address: DB1.DBW4 }
      - { signal: int, address: DB1.DBW6, type: int }
      - { signal: dword, address: DB1.DBD8 }
      - { signal: dint, address: DB1.DBD12, type: dint }
      - { signal: real, address: DB1.DBD16, type: real }
      - { signal: lreal, address: DB1.DBB20, type: lreal }
      - { signal: text, address: DB1.DBB30, type: string, length: 10 }
      - { signal: arr, address: DB1.DBB50, type: real, count: 2 }
      - { signal: mw, address: MW4, type: int }
      - { signal: q, address: Q0.1 }
";

fn write_config(dir: &Path, port: u16, extra_points: &str, extra: &str) -> PathBuf {
    let yaml = format!(
        "plant: s7\nsignals:{SIGNALS}{extra}drivers:\n  - name: plc\n    type: s7\n    host: 127.0.0.1\n    port: {port}\n    rack: 0\n    slot: 1\n    poll: 50ms\n    timeout: 500ms\n    reconnect_max: 300ms\n    points:{POINTS}{extra_points}"
    );
    let path = dir.join("plant.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

fn probe(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_petra"))
        .arg("probe")
        .arg(config)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn probe_reads_every_point_from_both_servers() {
    for imp in S7Impl::ALL {
        let sim = S7Sim::start(imp, &layout());
        let expected = fill(&sim);
        let dir = tempfile::tempdir().unwrap();
        let config = write_config(dir.path(), sim.port(), "", "");
        let out = probe(&config, &["--driver", "plc", "--json"]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}: {text}\n{}",
            imp.name(),
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_str(&text).unwrap();
        let points = report["points"].as_array().unwrap();
        assert_eq!(points.len(), expected.len());
        for (name, want) in &expected {
            let p = points.iter().find(|p| p["signal"] == *name).unwrap();
            assert_eq!(&p["value"], want, "{}: {name}: {p}", imp.name());
            assert_eq!(p["quality"], "good", "{}: {name}: {p}", imp.name());
        }
        let real = points.iter().find(|p| p["signal"] == "real").unwrap();
        assert_eq!(real["raw"], "42 F6 E9 79");
        // DB1 in one item, MW4 and Q0.1 one each: one request at PDU 480.
        assert_eq!(
            (&report["requests"], &report["pdu_size"]),
            (&json!(1), &json!(480))
        );

        let out = probe(&config, &["--driver", "plc"]);
        let table = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{table}");
        let line = table.lines().find(|l| l.starts_with("text ")).unwrap();
        for cell in [
            "DB1.DBB30",
            "STRING[10]",
            "0A 05 50 45",
            "\"PETRA\"",
            "good",
        ] {
            assert!(line.contains(cell), "`{cell}` missing in: {line}");
        }
        assert!(
            table.contains("14 points, 0 bad; 1 read requests at PDU size 480"),
            "{table}"
        );
    }
}

#[test]
fn probe_names_a_missing_db_and_an_unreachable_plc() {
    let sim = S7Sim::start(S7Impl::Native, &layout());
    fill(&sim);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        sim.port(),
        "      - { signal: gone, address: DB7.DBW0 }\n",
        "",
    );
    let out = probe(&config, &["--driver", "plc"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{table}");
    let line = table.lines().find(|l| l.starts_with("gone ")).unwrap();
    assert!(line.contains("bad(config_error)"), "{line}");
    assert!(line.contains("object does not exist"), "{line}");
    assert!(table.contains("15 points, 1 bad"), "{table}");

    let config = write_config(dir.path(), free_port(), "", "");
    let out = probe(&config, &["--driver", "plc"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot connect to 127.0.0.1:"), "{err}");
    assert!(err.contains("check `host`, `port`"), "{err}");
}

/// `petra run` with the API: values arrive, `/ready` and `/metrics` show the driver, an API
/// write reaches the PLC, a killed PLC turns the points bad and `/ready` down, and its restart
/// heals everything without restarting Petra.
#[test]
fn run_reads_writes_and_heals_after_the_plc_comes_back() {
    let mut sim = S7Sim::start(S7Impl::Native, &layout());
    fill(&sim);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    write_config(
        dir.path(),
        sim.port(),
        "      - { signal: sp, address: DB2.DBD0, type: real, mode: readwrite }\n",
        &format!(
            "  - {{ name: sp, type: float, write: [operator] }}\nserver:\n  listen: 127.0.0.1:{port}\n"
        ),
    );
    let live = Live::start(dir.path(), port);
    let ready = || {
        let r = live.http.get(live.url("/ready")).send().unwrap();
        let status = r.status();
        (status, r.json::<Value>().unwrap())
    };
    wait_until("points good", DEFAULT_TIMEOUT, || {
        live.signal("lreal")["quality"] == "good" && live.signal("text")["value"] == "PETRA"
    });
    let (st, body) = ready();
    assert_eq!(
        (st, &body["components"]["driver.plc"]),
        (StatusCode::OK, &json!("up"))
    );

    let r = live
        .http
        .put(live.url("/api/v1/signals/sp"))
        .bearer_auth(&live.token)
        .json(&json!({"value": 42.5}))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    wait_until("write in the PLC", DEFAULT_TIMEOUT, || {
        sim.get(DB, 2, 0, 4) == 42.5f32.to_be_bytes()
    });

    sim.kill();
    wait_until("points bad", DEFAULT_TIMEOUT, || {
        live.signal("real")["quality"] == "bad"
    });
    wait_until("/ready says the driver is down", DEFAULT_TIMEOUT, || {
        let (st, body) = ready();
        st == StatusCode::SERVICE_UNAVAILABLE && body["components"]["driver.plc"] == "down"
    });

    sim.restart();
    sim.set(DB, 1, 16, &2.5f32.to_be_bytes());
    wait_until("points good again", DEFAULT_TIMEOUT, || {
        live.signal("real")["quality"] == "good" && live.signal("real")["value"] == 2.5
    });
    assert_eq!(ready().0, StatusCode::OK);
    let metrics = live.metrics();
    for series in [
        "petra_driver_connected{driver=\"plc\"} 1",
        "petra_driver_requests_total{driver=\"plc\",result=\"ok\"}",
        "petra_driver_read_requests{driver=\"plc\"} 1",
        "petra_driver_points{driver=\"plc\"} 15",
    ] {
        assert!(metrics.contains(series), "{series} missing:\n{metrics}");
    }
    live.stop();
}
