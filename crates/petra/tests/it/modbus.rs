//! `petra probe` and `petra run` with a Modbus driver, against pymodbus (TCP and RTU).

use crate::live::Live;
use petra_test_support::modbus::{ModbusSim, SimArea, SimLayout};
use petra_test_support::{DEFAULT_TIMEOUT, free_port, wait_until};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Output};

fn layout() -> SimLayout {
    SimLayout::new().unit(
        1,
        &[
            (SimArea::Holding, 0..100),
            (SimArea::Holding, 110..200),
            (SimArea::Input, 0..20),
            (SimArea::Coil, 0..16),
            (SimArea::Discrete, 0..16),
        ],
    )
}

/// Known values in every type and order (registers computed with Python's `struct`).
fn fill(sim: &ModbusSim) {
    let h = |a, r: &[u16]| sim.set_registers(1, SimArea::Holding, a, r);
    h(0, &[0x42F6, 0xE979]); // f32 123.456 ABCD
    h(2, &[0xE979, 0x42F6]); // CDAB
    h(4, &[0xF642, 0x79E9]); // BADC
    h(6, &[0x79E9, 0xF642]); // DCBA
    h(10, &[0xC0C3, 0x4A45, 0x87E7, 0xC06E]); // f64 -9876.54321 ABCDEFGH
    h(14, &[0xC06E, 0x87E7, 0x4A45, 0xC0C3]); // GHEFCDAB
    h(18, &[0xC3C0, 0x454A, 0xE787, 0x6EC0]); // BADCFEHG
    h(22, &[0x6EC0, 0xE787, 0x454A, 0xC3C0]); // HGFEDCBA
    h(26, &[0xFFFE, 0x1DC0]); // i32 -123456 ABCD
    h(28, &[0x5E00, 0xB2D0]); // u32 3000000000 CDAB
    h(30, &[0x35FB, 0x048E, 0xE0FE, 0xFFFF]); // i64 -1234567890123 HGFEDCBA
    h(34, &[0x0201, 0x0403, 0x0605, 0x0807]); // u64 72623859790382856 BADCFEHG
    h(40, &[0xFFFE, 0xFFFE, 1234, 0b1000]); // u16, i16, scaled, bits
    h(50, &[0x5045, 0x5452, 0x412D, 0x3031]); // "PETRA-01"
    sim.set_registers(1, SimArea::Input, 3, &[42]);
    sim.set_bits(1, SimArea::Coil, 2, &[true]);
    sim.set_bits(1, SimArea::Discrete, 4, &[true]);
}

const POINTS: &str = "
      - { signal: f.abcd, area: holding, address: 0, type: f32 }
      - { signal: f.cdab, area: holding, address: 2, type: f32, order: CDAB }
      - { signal: f.badc, area: holding, address: 4, type: f32, order: BADC }
      - { signal: f.dcba, area: holding, address: 6, type: f32, order: DCBA }
      - { signal: d.abcd, area: holding, address: 10, type: f64 }
      - { signal: d.ghef, area: holding, address: 14, type: f64, order: GHEFCDAB }
      - { signal: d.badc, area: holding, address: 18, type: f64, order: BADCFEHG }
      - { signal: d.hgfe, area: holding, address: 22, type: f64, order: HGFEDCBA }
      - { signal: i32, area: holding, address: 26, type: i32 }
      - { signal: u32, area: holding, address: 28, type: u32, order: CDAB }
      - { signal: i64, area: holding, address: 30, type: i64, order: HGFEDCBA }
      - { signal: u64, area: holding, address: 34, type: u64, order: BADCFEHG }
      - { signal: u16, area: holding, address: 40 }
      - { signal: i16, area: holding, address: 41, type: i16 }
      - { signal: scaled, area: holding, address: 42, scale: 0.5, offset: 1 }
      - { signal: bit3, area: holding, address: 43, bit: 3 }
      - { signal: text, area: holding, address: 50, type: string, length: 8 }
      - { signal: input, area: input, address: 3 }
      - { signal: coil, area: coil, address: 2 }
      - { signal: di, area: discrete, address: 4 }
";

const SIGNALS: &str = "
  - { name: f.abcd, type: float }
  - { name: f.cdab, type: float }
  - { name: f.badc, type: float }
  - { name: f.dcba, type: float }
  - { name: d.abcd, type: float }
  - { name: d.ghef, type: float }
  - { name: d.badc, type: float }
  - { name: d.hgfe, type: float }
  - { name: i32, type: int }
  - { name: u32, type: int }
  - { name: i64, type: int }
  - { name: u64, type: int }
  - { name: u16, type: int }
  - { name: i16, type: int }
  - { name: scaled, type: float }
  - { name: bit3, type: bool }
  - { name: text, type: string }
  - { name: input, type: int }
  - { name: coil, type: bool }
  - { name: di, type: bool }
";

fn expected() -> Vec<(&'static str, Value)> {
    let f = 123.456f32 as f64;
    let d = -9876.54321;
    vec![
        ("f.abcd", json!(f)),
        ("f.cdab", json!(f)),
        ("f.badc", json!(f)),
        ("f.dcba", json!(f)),
        ("d.abcd", json!(d)),
        ("d.ghef", json!(d)),
        ("d.badc", json!(d)),
        ("d.hgfe", json!(d)),
        ("i32", json!(-123456)),
        ("u32", json!(3_000_000_000i64)),
        ("i64", json!(-1234567890123i64)),
        ("u64", json!(72623859790382856i64)),
        ("u16", json!(65534)),
        ("i16", json!(-2)),
        ("scaled", json!(1234.0 * 0.5 + 1.0)),
        ("bit3", json!(true)),
        ("text", json!("PETRA-01")),
        ("input", json!(42)),
        ("coil", json!(true)),
        ("di", json!(true)),
    ]
}

fn write_config(dir: &Path, url: &str, extra_points: &str, extra: &str) -> std::path::PathBuf {
    let yaml = format!(
        "plant: mb\nsignals:{SIGNALS}  - {{ name: gone, type: int }}\n{extra}drivers:\n  - name: plc\n    type: modbus\n    url: '{url}'\n    poll: 50ms\n    timeout: 300ms\n    reconnect_max: 300ms\n    points:{POINTS}{extra_points}"
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

fn probe_reads_every_type_and_order(sim: &ModbusSim) {
    fill(sim);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim.url(), "", "");
    let out = probe(&config, &["--driver", "plc", "--json"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(&text).unwrap();
    let points = report["points"].as_array().unwrap();
    for (name, want) in expected() {
        let p = points.iter().find(|p| p["signal"] == name).unwrap();
        assert_eq!(p["value"], want, "{name}: {p}");
        assert_eq!(p["quality"], "good", "{name}: {p}");
    }
    let f = points.iter().find(|p| p["signal"] == "f.cdab").unwrap();
    assert_eq!(f["raw"], json!(["E979", "42F6"]));
    // 20 points in the holding, input, coil and discrete areas: 4 requests.
    assert_eq!(report["requests"], 4, "{report}");

    // The table: a header, one line per point, a summary.
    let out = probe(&config, &["--driver", "plc"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{table}");
    let line = table.lines().find(|l| l.starts_with("f.cdab ")).unwrap();
    for cell in ["holding 2", "f32 CDAB", "E979 42F6", "123.456", "good"] {
        assert!(line.contains(cell), "`{cell}` missing in: {line}");
    }
    assert!(
        table.contains("20 points, 0 bad; 4 read requests (point by point: 20)"),
        "{table}"
    );
}

#[test]
fn probe_reads_every_type_and_order_over_tcp() {
    probe_reads_every_type_and_order(&ModbusSim::tcp(&layout()));
}

#[test]
fn probe_reads_every_type_and_order_over_rtu() {
    probe_reads_every_type_and_order(&ModbusSim::rtu(&layout(), 19200));
}

#[test]
fn probe_exits_1_on_a_bad_point_and_names_the_problem() {
    let sim = ModbusSim::tcp(&layout());
    fill(&sim);
    let dir = tempfile::tempdir().unwrap();
    // Holding 100..110 does not exist on the device.
    let config = write_config(
        dir.path(),
        &sim.url(),
        "      - { signal: gone, area: holding, address: 105 }\n",
        "",
    );
    let out = probe(&config, &["--driver", "plc"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{table}");
    let line = table.lines().find(|l| l.starts_with("gone ")).unwrap();
    assert!(line.contains("bad(config_error)"), "{line}");
    assert!(
        line.contains("exception 2 (Illegal data address)"),
        "{line}"
    );
    // The other points are still read.
    assert!(table.contains("21 points, 1 bad"), "{table}");

    let out = probe(&config, &["--driver", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("has no driver `nope`; its drivers: plc"),
        "{err}"
    );
}

#[test]
fn probe_of_an_unreachable_device_fails_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!("tcp://127.0.0.1:{}", free_port()),
        "",
        "",
    );
    let out = probe(&config, &["--driver", "plc"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot connect to tcp://127.0.0.1:"), "{err}");
    assert!(err.contains("check `url`"), "{err}");
}

/// `petra run` with the API: a cable pull (server killed) turns the points bad and `/ready`
/// down; the restarted server is picked up without restarting Petra; API writes reach the
/// device.
#[test]
fn run_heals_after_the_device_comes_back_and_writes_reach_it() {
    let mut sim = ModbusSim::tcp(&layout());
    fill(&sim);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    write_config(
        dir.path(),
        &sim.url(),
        "      - { signal: sp, area: holding, address: 60, mode: readwrite }\n",
        &format!(
            "  - {{ name: sp, type: int, write: [operator] }}\nserver:\n  listen: 127.0.0.1:{port}\n"
        ),
    );
    let live = Live::start(dir.path(), port);
    let signal = |name: &str| live.signal(name);
    let http = &live.http;
    let url = |p: &str| live.url(p);
    let ready = || {
        let r = http.get(url("/ready")).send().unwrap();
        let status = r.status();
        (status, r.json::<Value>().unwrap())
    };
    wait_until("points good", DEFAULT_TIMEOUT, || {
        signal("f.cdab")["quality"] == "good" && signal("text")["value"] == "PETRA-01"
    });
    let (st, body) = ready();
    assert_eq!(
        (st, &body["components"]["driver.plc"]),
        (StatusCode::OK, &json!("up"))
    );

    // An operator's write goes to the device.
    let r = http
        .put(url("/api/v1/signals/sp"))
        .bearer_auth(&live.token)
        .json(&json!({"value": 321}))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    wait_until("write in the device", DEFAULT_TIMEOUT, || {
        sim.registers(1, SimArea::Holding, 60, 1) == [321]
    });

    // Cable pull.
    sim.kill();
    wait_until("points bad", DEFAULT_TIMEOUT, || {
        signal("f.cdab")["quality"]
            .as_str()
            .is_some_and(|q| q.starts_with("bad"))
    });
    wait_until("/ready says the driver is down", DEFAULT_TIMEOUT, || {
        let (st, body) = ready();
        st == StatusCode::SERVICE_UNAVAILABLE && body["components"]["driver.plc"] == "down"
    });
    let metrics = live.metrics();
    assert!(
        metrics.contains("petra_driver_connected{driver=\"plc\"} 0"),
        "{metrics}"
    );

    // The device comes back (with new values) and Petra picks it up by itself.
    sim.restart();
    sim.set_registers(1, SimArea::Holding, 0, &[0x4020, 0x0000]); // f32 2.5
    wait_until("points good again", DEFAULT_TIMEOUT, || {
        signal("f.abcd")["quality"] == "good" && signal("f.abcd")["value"] == 2.5
    });
    let (st, _) = ready();
    assert_eq!(st, StatusCode::OK);
    let metrics = live.metrics();
    for series in [
        "petra_driver_connected{driver=\"plc\"} 1",
        "petra_driver_requests_total{driver=\"plc\",result=\"ok\"}",
        "petra_driver_read_requests{driver=\"plc\"} 4",
        "petra_driver_points{driver=\"plc\"} 21",
    ] {
        assert!(metrics.contains(series), "{series} missing:\n{metrics}");
    }
    live.stop();
}

/// A reload that changes the driver restarts it on the new points; the device is not
/// disturbed for anything else.
#[test]
fn reload_restarts_the_driver_with_its_new_points() {
    let sim = ModbusSim::tcp(&layout());
    fill(&sim);
    sim.set_registers(1, SimArea::Holding, 70, &[77]);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = format!("server:\n  listen: 127.0.0.1:{port}\n");
    write_config(dir.path(), &sim.url(), "", &server);
    let mut live = Live::start(dir.path(), port);
    wait_until("first read", DEFAULT_TIMEOUT, || {
        live.signal("u16")["quality"] == "good"
    });
    // `gone` is declared but no point feeds it yet.
    assert_ne!(live.signal("gone")["quality"], "good");
    write_config(
        dir.path(),
        &sim.url(),
        "      - { signal: gone, area: holding, address: 70 }\n",
        &server,
    );
    live.petra.signal(1); // SIGHUP
    live.petra
        .wait_for_line("configuration reloaded", DEFAULT_TIMEOUT);
    wait_until("the new point is read", DEFAULT_TIMEOUT, || {
        live.signal("gone")["value"] == 77 && live.signal("gone")["quality"] == "good"
    });
    assert_eq!(live.signal("f.cdab")["quality"], "good");
    live.stop();
}
