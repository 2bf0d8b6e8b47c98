//! End-to-end latency, device → bus → MQTT and device → bus → ClickHouse (issue #11's
//! BENCHMARKS.md figure), measured against the real peers: a pymodbus device whose register
//! the test changes, `petra run` polling it every 10 ms, publishing it to mosquitto and
//! recording it into ClickHouse. Each change is timed from the moment the register holds the
//! new value to the moment a subscriber sees it / a query finds it. The percentiles are
//! printed (`--nocapture`); the assertions are loose bounds that catch a broken path, not the
//! figures themselves (a shared CI machine is noisy).

use petra_test_support::clickhouse::ClickHouse;
use petra_test_support::modbus::{ModbusSim, SimArea, SimLayout};
use petra_test_support::mqtt::{Broker, Sub};
use petra_test_support::{Child, DEFAULT_TIMEOUT, wait_until};
use std::process::Command;
use std::time::{Duration, Instant};

const CHANGES: u16 = 60;

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

#[test]
fn device_to_mqtt_and_to_clickhouse_latency() {
    let sim = ModbusSim::tcp(&SimLayout::new().unit(1, &[(SimArea::Holding, 0..4)]));
    sim.set_registers(1, SimArea::Holding, 0, &[0]);
    let broker = Broker::start();
    let ch = ClickHouse::start();
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "plant: latency
signals:
  - {{ name: v, type: int, initial: 0 }}
drivers:
  - name: dev
    type: modbus
    url: '{}'
    poll: 10ms
    timeout: 300ms
    points:
      - {{ signal: v, area: holding, address: 0 }}
  - name: broker
    type: mqtt
    url: {}
    publish: {{ prefix: lat, signals: [v], qos: 0 }}
history:
  signals: [{{ match: v, mode: on_change }}]
  wal: {{ fsync: 50ms }}
  clickhouse: {{ urls: ['{}'], batch: 1000, flush: 50ms }}
",
        sim.url(),
        broker.url_plain(),
        ch.url()
    );
    std::fs::write(dir.path().join("plant.yaml"), yaml).unwrap();
    let mut sub = Sub::start(broker.plain(), "lat/signals/v");
    let mut petra = Child::spawn(
        "petra run",
        Command::new(env!("CARGO_BIN_EXE_petra"))
            .current_dir(dir.path())
            .args(["run", "plant.yaml", "--status-every", "0s"]),
    );
    petra.wait_for_line("petra is running", DEFAULT_TIMEOUT);
    sub.wait_for("the first value", |ms| !ms.is_empty());

    let value_of = |payload: &[u8]| -> Option<i64> {
        serde_json::from_slice::<serde_json::Value>(payload).ok()?["value"].as_i64()
    };
    let (mut to_mqtt, mut to_ch) = (Vec::new(), Vec::new());
    for i in 1..=CHANGES {
        sim.set_registers(1, SimArea::Holding, 0, &[i]);
        let t0 = Instant::now();
        let want = i64::from(i);
        wait_until("the value on MQTT", DEFAULT_TIMEOUT, || {
            sub.messages()
                .iter()
                .any(|m| value_of(&m.payload) == Some(want))
        });
        to_mqtt.push(t0.elapsed());
        // ClickHouse every sixth change (each probe is an HTTP query).
        if i % 6 == 0 {
            wait_until("the value in ClickHouse", DEFAULT_TIMEOUT, || {
                // The sink creates the table with its first insert: an error is "not yet".
                ch.try_query(&format!(
                    "SELECT count() FROM petra.samples WHERE signal = 'v' AND value = {want}"
                ))
                .is_ok_and(|n| n.trim() == "1")
            });
            to_ch.push(t0.elapsed());
        }
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let (m50, m99) = (
        percentile(&mut to_mqtt, 0.5),
        percentile(&mut to_mqtt, 0.99),
    );
    let (c50, c99) = (percentile(&mut to_ch, 0.5), percentile(&mut to_ch, 0.99));
    eprintln!(
        "device → MQTT subscriber, {} changes: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (poll 10 ms)",
        to_mqtt.len(),
        ms(m50),
        ms(m99),
        ms(*to_mqtt.last().unwrap())
    );
    eprintln!(
        "device → ClickHouse query, {} changes: p50 {:.1} ms, p99 {:.1} ms (WAL fsync 50 ms, flush 50 ms)",
        to_ch.len(),
        ms(c50),
        ms(c99)
    );
    assert!(m99 < Duration::from_secs(1), "MQTT p99 {m99:?}");
    assert!(c99 < Duration::from_secs(5), "ClickHouse p99 {c99:?}");
    petra.terminate();
    assert!(petra.wait_exit(DEFAULT_TIMEOUT).success());
}
