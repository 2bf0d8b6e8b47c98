//! The example plant (`examples/plant/plant.yaml`) with every part running at once: a Modbus
//! TCP device, a Modbus RTU device on a pty pair, an S7 PLC, an MQTT broker (in and out),
//! ClickHouse and Parquet history, alarms paging through the Twilio mock, the HTTP API.
//!
//! Every peer is started here through petra-test-support (not through `examples/plant/run`),
//! the example is copied into a temp dir (its `data_dir` is relative to it) and gets the
//! peers' addresses through the environment variables it references.

use crate::plant_harness::{Peers, Plant, VARIABLES, approx, check, example};
use petra_test_support::modbus::SimArea;
use petra_test_support::mqtt::{self as peer, Sub};
use petra_test_support::s7::S7Area;
use petra_test_support::{DEFAULT_TIMEOUT, free_port, wait_until};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

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
    let mut sub = Sub::builder(peers.broker.plain_port(), "petra/plant/status")
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
        peers.broker.plain_port(),
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
        peers.broker.plain_port(),
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
