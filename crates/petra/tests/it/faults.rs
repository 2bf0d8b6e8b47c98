//! Fault injection on the running example plant (issue #11, deliverable 2): every peer real,
//! faults injected one after another in one test, each followed by its check.
//!
//! After each fault: Petra still runs, `/ready` comes back to 200 with every driver up, and the
//! history in ClickHouse (queried with `FINAL`) holds a gap-free, duplicate-free sequence of a
//! counter that the test's copy of the plant adds (`fault.n`, +1 every supervision scan, recorded
//! on every change) up to a value read from the API after the fault. Recovery times (peer back →
//! `/ready` 200) are printed (`--nocapture`) and held to 2 × the driver's `reconnect_max`.
//!
//! The test's copy of the plant differs from `examples/plant/plant.yaml` only by the counter, a
//! fifth driver `probe` on petra-test-support's scripted Modbus fault server (for malformed
//! frames), and the PLC reached through a [`Proxy`] (cut, stalled and slowed traffic). The same
//! proxy in front of the Modbus TCP pump skid found a bug, since fixed in the drivers'
//! supervisor: a link that accepts and closes kept the points `good` and reconnected in a hot
//! loop (petra-modbus `a_link_that_accepts_and_closes_is_a_dead_device_not_a_tight_loop`).
//! The WAL's disk quota filled under load has a test of its own (a second plant with 300 random
//! walks on top and a 4 MiB quota), since the quota would make the outages above lose data.

use crate::plant_harness::{Peers, Plant, approx, example};
use petra_test_support::clickhouse::ClickHouse;
use petra_test_support::modbus::{Fault, FaultServer, SimArea};
use petra_test_support::mqtt::{self as peer, Sub};
use petra_test_support::proxy::{Mode, Proxy};
use petra_test_support::s7::S7Area;
use petra_test_support::{DEFAULT_TIMEOUT, free_port, wait_until};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

/// `reconnect_max` of the skid, the heater, the PLC and the probe in the plant (docs/config.md:
/// from 100 ms, doubling, with jitter, up to this).
const CAP_DEVICES: Duration = Duration::from_secs(2);
/// `reconnect_max` of the broker driver in the plant.
const CAP_BROKER: Duration = Duration::from_secs(5);
/// The WAL's group-commit interval in the plant (`history.wal.fsync`): what a SIGKILL may lose.
const WAL_FSYNC: Duration = Duration::from_millis(100);
const DRIVERS: [&str; 5] = ["skid", "heater", "plc", "broker", "probe"];

/// The test's copy of the plant: the counter, the probe driver on `probe_port`.
fn write_config(dir: &Path, probe_port: u16) -> String {
    let src = std::fs::read_to_string(example()).unwrap();
    let yaml = src
        .replacen(
            "\nsignals:\n",
            "\nsignals:\n  \
             - { name: fault.n, type: int, initial: 0, description: \"Counter: +1 every supervision scan\" }\n  \
             - { name: fault.m, type: int, initial: 0 }\n  \
             - { name: fault.probe, type: int, description: \"Holding register 7 of the fault server\" }\n",
            1,
        )
        .replacen(
            "\ndrivers:\n",
            &format!(
                "\ndrivers:\n  \
                 - name: probe\n    type: modbus\n    url: tcp://127.0.0.1:{probe_port}\n    \
                 unit: 1\n    poll: 100ms\n    timeout: 500ms\n    reconnect_max: 2s\n    \
                 points:\n      - {{ signal: fault.probe, area: holding, address: 7 }}\n"
            ),
            1,
        )
        .replacen(
            "\nblocks:\n",
            "\nblocks:\n  \
             - { name: fault_inc, type: ADD, task: control, inputs: { in1: fault.n }, params: { in2: 1 }, outputs: { out: fault.m } }\n  \
             - { name: fault_back, type: MOVE, task: supervision, inputs: { in: fault.m }, outputs: { out: fault.n } }\n",
            1,
        )
        .replacen(
            "\nhistory:\n  signals:\n",
            "\nhistory:\n  signals:\n    - { match: \"fault.n\", mode: on_change }\n",
            1,
        );
    for needle in [
        "fault.n, type",
        "name: probe",
        "fault_back",
        "match: \"fault.n\"",
    ] {
        assert!(
            yaml.contains(needle),
            "the plant changed: no place for {needle}"
        );
    }
    std::fs::write(dir.join("plant.yaml"), &yaml).unwrap();
    yaml
}

fn int(plant: &Plant, name: &str) -> Option<i64> {
    plant.good(name).and_then(|v| v.as_i64())
}

fn quality(plant: &Plant, name: &str) -> String {
    plant.signal(name)["quality"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// `/ready` 200 with every driver up.
fn all_ready(plant: &Plant) -> bool {
    let (code, body) = plant.ready();
    code == 200
        && DRIVERS
            .iter()
            .all(|d| body["components"][format!("driver.{d}")] == "up")
}

fn driver_state(plant: &Plant, driver: &str) -> Value {
    plant.ready().1["components"][format!("driver.{driver}")].clone()
}

/// Petra runs and `/ready` is 200 with every driver up (waiting for it).
fn assert_alive_and_ready(plant: &Plant, after: &str) {
    assert!(
        plant.is_running(),
        "Petra exited after {after}:\n{}",
        plant.petra.output().join("\n")
    );
    wait_until(
        &format!("/ready 200 with every driver up after {after}"),
        DEFAULT_TIMEOUT,
        || all_ready(plant),
    );
}

/// Waits until the counter moved `steps` beyond its value now (the scan goes on).
fn advance(plant: &Plant, steps: i64) {
    let start = int(plant, "fault.n").expect("fault.n good");
    wait_until(
        &format!("fault.n to advance {steps} steps from {start}"),
        DEFAULT_TIMEOUT,
        || int(plant, "fault.n").is_some_and(|n| n >= start + steps),
    );
}

/// Waits until the peer's driver is up and `/ready` 200; returns the time it took and holds it
/// to 2 × `cap` (the issue's target).
fn recovery(plant: &Plant, what: &str, since: Instant, cap: Duration) -> Duration {
    wait_until(
        &format!("/ready 200 with every driver up after {what}"),
        DEFAULT_TIMEOUT,
        || all_ready(plant),
    );
    let took = since.elapsed();
    eprintln!(
        "faults: recovery after {what}: {:.0} ms (reconnect_max {} ms, target ≤ {} ms)",
        took.as_secs_f64() * 1000.0,
        cap.as_millis(),
        (2 * cap).as_millis()
    );
    assert!(
        took <= 2 * cap,
        "recovery after {what} took {took:?}, more than 2 × reconnect_max ({cap:?})"
    );
    took
}

/// One stored sample of the counter: WAL position, value, time (epoch ms).
#[derive(Clone, Copy, Debug)]
struct Row {
    seq: u64,
    value: i64,
    ms: i64,
}

fn counter_rows(ch: &ClickHouse) -> Vec<Row> {
    let answer = ch
        .try_query(
            "SELECT seq, value, toUInt64(ts) * 1000 + ms FROM petra.samples FINAL \
             WHERE signal = 'fault.n' ORDER BY seq FORMAT TabSeparated",
        )
        .unwrap_or_default();
    answer
        .lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            Some(Row {
                seq: f.next()?.parse().ok()?,
                value: f.next()?.parse::<f64>().ok()? as i64,
                ms: f.next()?.parse().ok()?,
            })
        })
        .collect()
}

/// Checks the counter's history in ClickHouse once it holds `upto` (a value the API showed
/// after the fault): split into runs (the counter starts at 0 with every start of Petra), each
/// run gap-free and without a repeat — by the rows, and by ClickHouse itself
/// (`max - min + 1 == count() == uniqExact(value)` with `FINAL`). Returns the runs' rows.
fn check_history(ch: &ClickHouse, plant: &Plant, after: &str, runs: &[usize]) -> Vec<Vec<Row>> {
    let upto = int(plant, "fault.n").expect("fault.n good");
    let asked_ms = epoch_ms();
    let start = Instant::now();
    let mut rows = Vec::new();
    wait_until(
        &format!("ClickHouse to hold fault.n up to {upto} after {after}"),
        Duration::from_secs(60),
        || {
            rows = counter_rows(ch);
            // The newest stored sample holds `upto` and was taken after the API showed it (an
            // older, bigger value of a run before a restart does not count).
            rows.last()
                .is_some_and(|r| r.value >= upto && r.ms >= asked_ms - 1000)
        },
    );
    let lag = start.elapsed();
    let mut split: Vec<Vec<Row>> = Vec::new();
    for r in &rows {
        match split.last_mut() {
            Some(run) if r.value > run.last().unwrap().value => run.push(*r),
            _ => split.push(vec![*r]),
        }
    }
    assert!(
        runs.contains(&split.len()),
        "after {after}: expected {runs:?} run(s) of the counter, got starts at {:?}",
        split
            .iter()
            .map(|r| (r[0].seq, r[0].value))
            .collect::<Vec<_>>()
    );
    for run in &split {
        assert_eq!(
            run[0].value, 0,
            "after {after}: a run starts at {}",
            run[0].value
        );
        for w in run.windows(2) {
            assert_eq!(
                w[1].value,
                w[0].value + 1,
                "after {after}: the counter jumps from {} (seq {}) to {} (seq {}): lost or repeated samples",
                w[0].value,
                w[0].seq,
                w[1].value,
                w[1].seq
            );
        }
        let (a, b) = (run[0].seq, run.last().unwrap().seq);
        let sql = format!(
            "SELECT count(), uniqExact(value), min(value), max(value), uniqExact(seq) \
             FROM petra.samples FINAL WHERE signal = 'fault.n' AND seq BETWEEN {a} AND {b}"
        );
        let f: Vec<i64> = ch
            .query(&sql)
            .split_whitespace()
            .map(|x| x.parse::<f64>().unwrap() as i64)
            .collect();
        assert!(
            f[3] - f[2] + 1 == f[0] && f[0] == f[1] && f[0] == f[4],
            "after {after}: count, uniqExact(value), min, max, uniqExact(seq) = {f:?}"
        );
    }
    eprintln!(
        "faults: history after {after}: runs of {:?} samples, gap-free, no repeat (ClickHouse caught up to {upto} in {:.1?})",
        split.iter().map(Vec::len).collect::<Vec<_>>(),
        lag
    );
    split
}

fn epoch_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn the_plant_survives_faults_one_after_another() {
    let t0 = Instant::now();
    let lap = |what: &str| eprintln!("faults: {what} after {:.1?}", t0.elapsed());
    let mut peers = Peers::start();
    peers.fill();
    let probe = FaultServer::start();
    // The PLC behind a proxy that can pause, slow and drop its traffic.
    let proxy = Proxy::start(peers.plc.addr());
    let port = free_port();
    let mut env = peers.env(port);
    for (k, v) in &mut env {
        if *k == "S7_PORT" {
            *v = proxy.port().to_string();
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let good_yaml = write_config(dir.path(), probe.port());
    let mut plant = Plant::start(dir.path(), &env, port);
    assert_alive_and_ready(&plant, "the start");
    peer::publish(
        peers.broker.plain_port(),
        "weather/station1",
        br#"{"temp": 1.0, "humidity": 80}"#,
        1,
        false,
    );
    wait_until("good values from every device", DEFAULT_TIMEOUT, || {
        int(&plant, "ft101.raw") == Some(5000)
            && plant.good("t2.temp").is_some_and(|v| approx(&v, 45.2))
            && plant.good("t1.level").is_some_and(|v| approx(&v, 3.0))
            && plant.good("outdoor.temp").is_some_and(|v| approx(&v, 1.0))
            && int(&plant, "fault.probe") == Some(7)
    });
    check_history(&peers.clickhouse, &plant, "the start", &[1]);
    lap("plant running");

    // 1. The PLC killed and restarted on the same port. T2 is heating: the heater's enable,
    // computed from the PLC's signals, is on in the RTU controller; with the PLC gone its
    // interlock is unknown, and the plant's fail-safe (QUALITY, `subst: false`) turns it off.
    let heater_enabled = || peers.heater.bits(7, SimArea::Coil, 0, 1) == [true];
    wait_until(
        "H1 enabled in its controller",
        DEFAULT_TIMEOUT,
        heater_enabled,
    );
    peers.plc.kill();
    wait_until(
        "the PLC's signals bad, driver.plc down",
        DEFAULT_TIMEOUT,
        || quality(&plant, "t1.level") == "bad" && driver_state(&plant, "plc") != "up",
    );
    assert!(
        int(&plant, "ft101.raw").is_some(),
        "the skid goes on meanwhile"
    );
    wait_until(
        "H1 switched off: its interlock is unknown",
        DEFAULT_TIMEOUT,
        || {
            quality(&plant, "h1.enable_logic") == "bad"
                && plant.good("h1.enable_cmd") == Some(json!(false))
                && !heater_enabled()
        },
    );
    peers.plc.restart();
    let back = Instant::now();
    peers.fill_plc();
    recovery(&plant, "the PLC's restart", back, CAP_DEVICES);
    wait_until("the PLC's signals good again", DEFAULT_TIMEOUT, || {
        plant.good("t1.level").is_some_and(|v| approx(&v, 3.0))
            && plant.good("plc.batch_id") == Some(json!("B-0042"))
    });
    wait_until("H1 enabled again", DEFAULT_TIMEOUT, heater_enabled);
    assert_alive_and_ready(&plant, "the PLC's restart");
    check_history(&peers.clickhouse, &plant, "the PLC's restart", &[1]);
    lap("1. PLC killed and restarted");

    // 2. The Modbus TCP device (the pump skid) killed and restarted.
    peers.skid.kill();
    wait_until(
        "the skid's signals bad, driver.skid down",
        DEFAULT_TIMEOUT,
        || quality(&plant, "ft101.raw") == "bad" && driver_state(&plant, "skid") != "up",
    );
    peers.skid.restart();
    let back = Instant::now();
    peers.fill_skid();
    recovery(&plant, "the skid's restart", back, CAP_DEVICES);
    wait_until("the skid's signals good again", DEFAULT_TIMEOUT, || {
        int(&plant, "ft101.raw") == Some(5000)
    });
    assert_alive_and_ready(&plant, "the skid's restart");
    check_history(&peers.clickhouse, &plant, "the skid's restart", &[1]);
    lap("2. Modbus device killed and restarted");

    // 3. The broker killed and restarted, without the database it kept (so a retained
    //    `online` afterwards is Petra's own, published again on its reconnect).
    peers.broker.kill();
    wait_until("driver.broker down", DEFAULT_TIMEOUT, || {
        driver_state(&plant, "broker") != "up"
    });
    let _ = std::fs::remove_file(peers.broker.dir().join("mosquitto.db"));
    peers.broker.restart();
    let back = Instant::now();
    recovery(&plant, "the broker's restart", back, CAP_BROKER);
    let mut status = Sub::start(peers.broker.plain(), "petra/plant/status");
    status.wait_for("the retained status `online` again", |m| {
        m.iter().any(|m| m.payload == b"online")
    });
    let mut flow = Sub::start(peers.broker.plain(), "petra/plant/signals/ft101.flow");
    peers.skid.set_registers(1, SimArea::Input, 0, &[6000]);
    flow.wait_for(
        "a new ft101.flow published after the broker's restart",
        |m| {
            m.iter().any(|m| {
                serde_json::from_slice::<Value>(&m.payload).is_ok_and(|p| approx(&p["value"], 12.0))
            })
        },
    );
    assert_alive_and_ready(&plant, "the broker's restart");
    check_history(&peers.clickhouse, &plant, "the broker's restart", &[1]);
    lap("3. broker killed and restarted");

    // 4. ClickHouse killed while the plant records, restarted a few seconds later.
    peers.clickhouse.kill();
    advance(&plant, 30);
    assert_alive_and_ready(&plant, "ClickHouse's kill");
    peers.clickhouse.restart();
    assert_alive_and_ready(&plant, "ClickHouse's restart");
    check_history(&peers.clickhouse, &plant, "ClickHouse's outage", &[1]);
    lap("4. ClickHouse killed and restarted");

    // 5. The proxy in front of the PLC.
    // Pause: requests time out, the PLC's signals go bad, the other drivers keep updating.
    proxy.set(Mode::Pause);
    wait_until(
        "the PLC's signals bad while paused",
        DEFAULT_TIMEOUT,
        || quality(&plant, "t1.level") == "bad",
    );
    peers.skid.set_registers(1, SimArea::Input, 0, &[6500]);
    wait_until(
        "the skid still updating while the PLC hangs",
        DEFAULT_TIMEOUT,
        || int(&plant, "ft101.raw") == Some(6500),
    );
    advance(&plant, 5);
    proxy.set(Mode::Pass);
    let back = Instant::now();
    recovery(&plant, "the proxy's pause", back, CAP_DEVICES);
    wait_until(
        "the PLC's signals good after the pause",
        DEFAULT_TIMEOUT,
        || plant.good("t1.level").is_some_and(|v| approx(&v, 3.0)),
    );
    // Slow: 150 ms per chunk each way, within the 1 s timeout: values still arrive.
    proxy.set(Mode::Slow(Duration::from_millis(150)));
    peers
        .plc
        .set(S7Area::DataBlock, 1, 0, &3.1f32.to_be_bytes());
    wait_until(
        "a new PLC value through the slow link",
        DEFAULT_TIMEOUT,
        || plant.good("t1.level").is_some_and(|v| approx(&v, 3.1)),
    );
    assert!(
        all_ready(&plant),
        "ready over a slow link: {}",
        plant.ready().1
    );
    // Drop: every connection cut, and cut again on each reconnect, until Pass.
    proxy.set(Mode::Drop);
    wait_until(
        "the PLC's signals bad while dropped",
        DEFAULT_TIMEOUT,
        || quality(&plant, "t1.level") == "bad",
    );
    let accepted = proxy.accepted();
    wait_until(
        "the PLC driver reconnecting meanwhile",
        DEFAULT_TIMEOUT,
        || proxy.accepted() > accepted,
    );
    proxy.set(Mode::Pass);
    let back = Instant::now();
    recovery(&plant, "the proxy's drop", back, CAP_DEVICES);
    wait_until(
        "the PLC's signals good after the drop",
        DEFAULT_TIMEOUT,
        || plant.good("t1.level").is_some_and(|v| approx(&v, 3.1)),
    );
    assert_alive_and_ready(&plant, "the proxy's faults");
    check_history(&peers.clickhouse, &plant, "the proxy's faults", &[1]);
    lap("5. proxy paused, slowed, dropped");

    // 6. Malformed input. MQTT: not JSON on the weather topic → uncertain; a good one → good.
    peer::publish(
        peers.broker.plain_port(),
        "weather/station1",
        b"temp=5 not json",
        1,
        false,
    );
    wait_until("outdoor.temp uncertain", DEFAULT_TIMEOUT, || {
        quality(&plant, "outdoor.temp") == "uncertain"
    });
    assert!(plant.is_running(), "Petra exited on a malformed payload");
    peer::publish(
        peers.broker.plain_port(),
        "weather/station1",
        br#"{"temp": 5.0, "humidity": 60}"#,
        1,
        false,
    );
    wait_until("outdoor.temp good again", DEFAULT_TIMEOUT, || {
        plant.good("outdoor.temp").is_some_and(|v| approx(&v, 5.0))
    });
    // Modbus: frames that are not Modbus from the probe's server → bad, reconnect, good.
    let connections = probe.connections();
    for _ in 0..4 {
        probe.push(Fault::Garbage);
    }
    // Whether the points are seen `bad` in between depends on how fast the reconnect is (a
    // poll of the API may miss it): reported, not asserted.
    let mut qualities = vec![quality(&plant, "fault.probe")];
    wait_until(
        "the garbage consumed and the probe reconnected",
        DEFAULT_TIMEOUT,
        || {
            let q = quality(&plant, "fault.probe");
            if qualities.last() != Some(&q) {
                qualities.push(q);
            }
            probe.pending() == 0 && probe.connections() > connections
        },
    );
    eprintln!(
        "faults: probe qualities seen around 4 garbage frames: {qualities:?}, connections {} → {}",
        connections,
        probe.connections()
    );
    wait_until("fault.probe good again", DEFAULT_TIMEOUT, || {
        probe.pending() == 0 && int(&plant, "fault.probe") == Some(7)
    });
    assert!(
        probe.connections() > connections,
        "the probe driver reconnected after the garbage"
    );
    assert_alive_and_ready(&plant, "malformed input");
    check_history(&peers.clickhouse, &plant, "malformed input", &[1]);
    lap("6. malformed MQTT payload and Modbus frames");

    // 7. Reload: a typo → 422 and the plant goes on; a changed alarm limit → 200 and applied.
    // TT-102 at 72 °C: under t2_temp_high's 75 °C, over the 70 °C of the changed config.
    peers.heater.set_registers(7, SimArea::Input, 0, &[720]);
    wait_until("t2.temp 72 °C", DEFAULT_TIMEOUT, || {
        plant.good("t2.temp").is_some_and(|v| approx(&v, 72.0))
    });
    let reload = |plant: &Plant| -> (u16, Value) {
        let r = plant
            .http
            .post(plant.url("/api/v1/config/reload"))
            .bearer_auth(&plant.token)
            .send()
            .unwrap();
        (r.status().as_u16(), r.json().unwrap_or(Value::Null))
    };
    let config = dir.path().join("plant.yaml");
    let broken = good_yaml.replacen("type: PID\n", "type: PIDD\n", 1);
    assert_ne!(broken, good_yaml);
    std::fs::write(&config, &broken).unwrap();
    let (code, report) = reload(&plant);
    assert_eq!(code, 422, "a broken config is refused: {report}");
    assert!(report.to_string().contains("PIDD"), "{report}");
    advance(&plant, 15);
    assert_alive_and_ready(&plant, "a refused reload");
    // More than the alarm's 1 s on-delay has passed at 72 °C: the old limit still rules.
    assert_eq!(plant.alarm("t2_temp_high")["state"], "normal");
    let changed = good_yaml.replacen(
        "signal: t2.temp, high: 75.0,",
        "signal: t2.temp, high: 70.0,",
        1,
    );
    assert_ne!(changed, good_yaml);
    std::fs::write(&config, &changed).unwrap();
    let (code, report) = reload(&plant);
    assert_eq!(code, 200, "a good config is applied: {report}");
    wait_until(
        "t2_temp_high active at 72 °C under the new limit",
        DEFAULT_TIMEOUT,
        || plant.alarm("t2_temp_high")["state"] == "active_unacked",
    );
    assert_alive_and_ready(&plant, "a good reload");
    check_history(&peers.clickhouse, &plant, "the reloads", &[1]);
    lap("7. reload refused, then applied");

    // 8. SIGKILL Petra, start it again on the same data dir.
    advance(&plant, 10);
    plant.petra.signal(9);
    let killed = Instant::now();
    let kill_ms = epoch_ms();
    plant.restart();
    wait_until("/ready 200 after Petra's restart", DEFAULT_TIMEOUT, || {
        all_ready(&plant)
    });
    eprintln!(
        "faults: Petra SIGKILLed and started again: /ready 200 with every driver up {:.0} ms after the kill",
        killed.elapsed().as_secs_f64() * 1000.0
    );
    advance(&plant, 10);
    let runs = check_history(&peers.clickhouse, &plant, "Petra's SIGKILL", &[1, 2]);
    // The counter's value may come back after the start (no run break) or start again at 0
    // (a new run): either way no gap or repeat inside a run. What the kill lost: the time from
    // the last sample stored before the kill to the kill.
    let rows: Vec<Row> = runs.concat();
    let last = rows
        .iter()
        .filter(|r| r.ms <= kill_ms)
        .max_by_key(|r| r.seq)
        .unwrap();
    let next = rows.iter().find(|r| r.seq > last.seq).unwrap();
    let gap = kill_ms - last.ms;
    eprintln!(
        "faults: SIGKILL: {} run(s); last stored sample before the kill {gap} ms before it \
         (value {}), next sample value {} {} ms after the kill (WAL fsync {} ms, counter +1 per 100 ms)",
        runs.len(),
        last.value,
        next.value,
        next.ms - kill_ms,
        WAL_FSYNC.as_millis()
    );
    assert!(
        gap < 1000,
        "the kill lost {gap} ms of samples (documented: at most the last WAL fsync interval)"
    );
    assert!(plant.is_running());
    lap("8. Petra SIGKILLed and restarted");

    let took = t0.elapsed();
    plant.petra.terminate();
    let status = plant.petra.wait_exit(DEFAULT_TIMEOUT);
    assert!(status.success(), "{}", plant.petra.output().join("\n"));
    assert!(
        took < Duration::from_secs(180),
        "the fault suite took {took:?}"
    );
}

/// A counter of Petra's `/metrics` (the un-labelled series `name`).
fn metric(plant: &Plant, name: &str) -> f64 {
    let text = plant
        .http
        .get(plant.url("/metrics"))
        .bearer_auth(&plant.token)
        .send()
        .unwrap()
        .text()
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics:\n{text}"))
}

/// The WAL's disk quota filled under load (deliverable 2): with 30,000 more changes/s recorded
/// (300 random walks) and ClickHouse down, a 4 MiB `history.wal.max_size` fills in seconds. The
/// oldest rows are dropped for the sink that was down — counted
/// (`petra_wal_dropped_records_total`) and alarmed (`petra.history_wal_full`) — while Petra stays
/// ready. ClickHouse back: the alarm clears, rows flow again, nothing is stored twice, and the
/// loss is a visible gap in ClickHouse only: the Parquet files, whose sink kept up, hold every
/// sample of the counter.
#[test]
fn a_full_wal_under_load_is_counted_alarmed_and_costs_only_the_sink_that_was_down() {
    const WALKS: usize = 300;
    let mut peers = Peers::start();
    peers.fill();
    let probe = FaultServer::start();
    let port = free_port();
    let env = peers.env(port);
    let dir = tempfile::tempdir().unwrap();
    let yaml = write_config(dir.path(), probe.port());
    let signals: String = (0..WALKS)
        .map(|w| format!("  - {{ name: load.w{w}, type: float, initial: 50.0 }}\n"))
        .collect();
    let blocks: String = (0..WALKS)
        .map(|w| {
            format!(
                "  - {{ name: load_w{w}, type: RANDOM_WALK, task: control, params: {{ seed: {w}, step: 10.0 }}, outputs: {{ out: load.w{w} }} }}\n"
            )
        })
        .collect();
    let loaded = yaml
        .replacen("\nsignals:\n", &format!("\nsignals:\n{signals}"), 1)
        .replacen("\nblocks:\n", &format!("\nblocks:\n{blocks}"), 1)
        .replacen(
            "\nhistory:\n  signals:\n",
            "\nhistory:\n  signals:\n    - { match: \"load.*\", mode: on_change }\n",
            1,
        )
        .replacen("wal: { max_size: 256MiB,", "wal: { max_size: 4MiB,", 1);
    assert!(
        loaded.contains("max_size: 4MiB") && loaded.contains("match: \"load.*\""),
        "the plant changed: no place for the load or the WAL quota"
    );
    std::fs::write(dir.path().join("plant.yaml"), &loaded).unwrap();
    let plant = Plant::start(dir.path(), &env, port);
    assert_alive_and_ready(&plant, "the start");
    wait_until("fault.n in ClickHouse", Duration::from_secs(60), || {
        !counter_rows(&peers.clickhouse).is_empty()
    });
    assert_eq!(plant.alarm("petra.history_wal_full")["state"], "normal");
    assert_eq!(metric(&plant, "petra_wal_dropped_records_total"), 0.0);

    peers.clickhouse.kill();
    let killed = Instant::now();
    wait_until(
        "petra.history_wal_full active",
        Duration::from_secs(60),
        || plant.alarm("petra.history_wal_full")["state"] == "active_unacked",
    );
    let dropped = metric(&plant, "petra_wal_dropped_records_total");
    eprintln!(
        "faults: WAL full {:.1?} after ClickHouse's kill; {dropped} records dropped so far",
        killed.elapsed()
    );
    assert!(dropped > 0.0);
    assert_alive_and_ready(&plant, "the full WAL");

    peers.clickhouse.restart();
    // ClickHouse drains the WAL, and nothing more is dropped: the alarm's condition has cleared
    // (the alarm itself follows after the system alarms' 60 s off-delay, docs/alarms.md).
    wait_until(
        "ClickHouse caught up with the WAL",
        Duration::from_secs(60),
        || metric(&plant, "petra_history_lag_rows{sink=\"clickhouse\"}") < 50_000.0,
    );
    let dropped = metric(&plant, "petra_wal_dropped_records_total");
    advance(&plant, 20);
    assert_eq!(
        metric(&plant, "petra_wal_dropped_records_total"),
        dropped,
        "the WAL still drops records with every sink back"
    );
    assert_alive_and_ready(&plant, "ClickHouse's return");
    advance(&plant, 10);
    let upto = int(&plant, "fault.n").expect("fault.n good");
    let mut rows = Vec::new();
    wait_until(
        &format!("ClickHouse to hold fault.n up to {upto} again"),
        Duration::from_secs(60),
        || {
            rows = counter_rows(&peers.clickhouse);
            rows.last().is_some_and(|r| r.value >= upto)
        },
    );
    // By seq: the counter never repeats (nothing stored twice), and jumps where the quota
    // dropped rows ClickHouse had not taken yet.
    for w in rows.windows(2) {
        assert!(
            w[1].value > w[0].value,
            "fault.n repeats in ClickHouse: {} (seq {}) then {} (seq {})",
            w[0].value,
            w[0].seq,
            w[1].value,
            w[1].seq
        );
    }
    let lost: i64 = rows.windows(2).map(|w| w[1].value - w[0].value - 1).sum();
    assert!(lost > 0, "the dropped rows left no gap in ClickHouse");

    // A clean stop completes the Parquet files: every value of the counter is there once.
    let Plant { mut petra, .. } = plant;
    petra.terminate();
    assert!(petra.wait_exit(DEFAULT_TIMEOUT).success());
    let parquet = petra_test_support::duckdb_rows(
        "SELECT count(*), count(DISTINCT value), min(value), max(value) \
         FROM read_parquet({glob}) WHERE signal = 'fault.n'",
        &dir.path().join("data/history/**/*.parquet"),
    );
    let f: Vec<i64> = parquet[0]
        .iter()
        .map(|x| x.parse::<f64>().unwrap() as i64)
        .collect();
    eprintln!(
        "faults: full WAL: ClickHouse lost {lost} of the counter's samples (a gap), Parquet holds \
         all {} (count, distinct, min, max = {f:?})",
        f[0]
    );
    assert!(
        f[0] == f[1] && f[3] - f[2] + 1 == f[0] && f[3] >= upto,
        "the Parquet files miss or repeat samples of fault.n: count, distinct, min, max = {f:?}"
    );
}
