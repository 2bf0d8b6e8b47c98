//! `petra run` with history: a counter that moves every cycle recorded into Parquet (read back
//! by duckdb) and ClickHouse, through SIGKILLs of Petra and an outage of ClickHouse — nothing
//! lost beyond what was not yet synced at a kill, nothing duplicated in queries.

use crate::live::Live;
use petra_test_support::clickhouse::ClickHouse;
use petra_test_support::{Child, DEFAULT_TIMEOUT, duckdb_rows, free_port, wait_until};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

/// A counter: task `a` computes n + 1 into m, task `b` copies m back into n, so n grows by one
/// every 10 ms cycle. Recorded on every change.
fn write_config(dir: &Path, clickhouse: Option<&str>) {
    write_config_with(dir, clickhouse, "");
}

fn write_config_with(dir: &Path, clickhouse: Option<&str>, extra: &str) {
    let ch = clickhouse
        .map(|url| format!("  clickhouse: {{ urls: ['{url}'], batch: 500, flush: 200ms }}\n"))
        .unwrap_or_default();
    let yaml = format!(
        "plant: hist
{extra}tasks:
  - {{ name: a, period: 10ms, priority: 2 }}
  - {{ name: b, period: 10ms, priority: 1 }}
signals:
  - {{ name: n, type: int, initial: 0 }}
  - {{ name: m, type: int, initial: 0 }}
blocks:
  - {{ name: inc, type: ADD, task: a, inputs: {{ in1: n }}, params: {{ in2: 1 }}, outputs: {{ out: m }} }}
  - {{ name: back, type: MOVE, task: b, inputs: {{ in: m }}, outputs: {{ out: n }} }}
history:
  signals:
    - {{ match: n, mode: on_change }}
  wal: {{ fsync: 50ms }}
  parquet: {{ dir: history, rotate: 1h }}
{ch}"
    );
    std::fs::write(dir.join("plant.yaml"), yaml).unwrap();
}

fn start(dir: &Path) -> Child {
    Child::spawn(
        "petra run",
        Command::new(env!("CARGO_BIN_EXE_petra"))
            .current_dir(dir)
            .args(["run", "plant.yaml", "--status-every", "0s"]),
    )
}

/// Records in the WAL now, from `petra wal inspect` (which works beside a running Petra).
fn wal_records(dir: &Path) -> u64 {
    let out = Command::new(env!("CARGO_BIN_EXE_petra"))
        .args(["wal", "inspect"])
        .arg(dir.join("data/wal"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    // "WAL DIR: N segments, R records, B bytes"
    text.lines()
        .next()
        .and_then(|l| l.split(", ").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// Waits until the WAL holds `more` records beyond what it held.
fn advance(dir: &Path, more: u64) {
    let start = wal_records(dir);
    wait_until("the WAL to grow", WAIT, || wal_records(dir) >= start + more);
}

/// `(seq, value)` of every Parquet row, by seq, through duckdb.
fn parquet_rows(dir: &Path) -> Vec<(u64, i64)> {
    duckdb_rows(
        "SELECT seq, CAST(value AS BIGINT) FROM read_parquet({glob}, hive_partitioning=true) ORDER BY seq",
        &dir.join("data/history/**/*.parquet"),
    )
    .iter()
    .map(|r| (r[0].parse().unwrap(), r[1].parse().unwrap()))
    .collect()
}

fn epoch_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The time (epoch ms) of the last sample of each run (a run ends before the counter restarts).
fn last_sample_times(dir: &Path) -> Vec<i64> {
    let rows = duckdb_rows(
        "SELECT CAST(value AS BIGINT), epoch_ms(ts) FROM read_parquet({glob}) ORDER BY seq",
        &dir.join("data/history/**/*.parquet"),
    );
    let mut ends = Vec::new();
    let mut prev: Option<(i64, i64)> = None;
    for r in &rows {
        let (v, t): (i64, i64) = (r[0].parse().unwrap(), r[1].parse().unwrap());
        if let Some((pv, pt)) = prev
            && v == 0
            && pv != 0
        {
            ends.push(pt);
        }
        prev = Some((v, t));
    }
    ends
}

/// Splits the counter into runs (it restarts at 0 with every start of Petra) and returns the
/// runs' lengths; panics on a gap or a repeat inside a run.
fn check_runs(rows: &[(u64, i64)]) -> Vec<usize> {
    let mut runs = Vec::new();
    let mut len = 0usize;
    let mut prev: Option<i64> = None;
    for &(seq, v) in rows {
        match prev {
            Some(p) if v == p + 1 => len += 1,
            Some(p) if v == 0 => {
                runs.push(len);
                len = 1;
                let _ = p;
            }
            None if v == 0 => len = 1,
            _ => panic!("gap or repeat at seq {seq}: {prev:?} then {v}"),
        }
        prev = Some(v);
    }
    runs.push(len);
    runs
}

#[test]
fn history_survives_sigkill_without_gaps_and_duckdb_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), None);
    let mut kills = Vec::new();
    for _ in 0..3 {
        let mut p = start(dir.path());
        advance(dir.path(), 50);
        p.signal(9);
        kills.push(epoch_ms());
        p.wait_exit(DEFAULT_TIMEOUT);
    }
    let mut p = start(dir.path());
    advance(dir.path(), 50);
    p.terminate();
    assert!(
        p.wait_exit(DEFAULT_TIMEOUT).success(),
        "{}",
        p.output().join("\n")
    );
    let mut rows = parquet_rows(dir.path());
    // A file renamed just before a kill, whose cursor was not stored, is written again: the
    // same seq twice. Readers drop such repeats by seq (documented).
    let all = rows.len();
    rows.dedup_by_key(|r| r.0);
    let runs = check_runs(&rows);
    assert_eq!(runs.len(), 4, "four starts: {runs:?}");
    assert!(runs.iter().all(|r| *r >= 50), "{runs:?}");
    // What a kill lost: the time from a killed run's last stored sample to the kill (the
    // samples of at most one fsync interval, 50 ms, plus the scheduling around the kill).
    let last_ts = last_sample_times(dir.path());
    let worst = kills
        .iter()
        .zip(&last_ts)
        .map(|(k, t)| k - t)
        .max()
        .unwrap();
    eprintln!(
        "history across 3 SIGKILLs: runs of {runs:?} samples, {} repeated by seq, worst gap {worst} ms",
        all - rows.len()
    );
    assert!(worst < 1000, "a kill lost {worst} ms of samples");
    // Nothing is left unreadable: the WAL inspects clean.
    let out = Command::new(env!("CARGO_BIN_EXE_petra"))
        .args(["wal", "inspect"])
        .arg(dir.path().join("data/wal"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn clickhouse_gets_every_sample_exactly_once_across_its_outage() {
    let mut ch = ClickHouse::start();
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), Some(&ch.url()));
    let mut p = start(dir.path());
    advance(dir.path(), 50);
    let count = |ch: &ClickHouse| -> u64 {
        ch.try_query("SELECT count() FROM petra.samples FINAL")
            .map(|s| s.trim().parse().unwrap_or(0))
            .unwrap_or(0)
    };
    wait_until("rows in ClickHouse", WAIT, || count(&ch) > 0);
    ch.kill();
    // Recording goes on while ClickHouse is down.
    advance(dir.path(), 100);
    ch.restart();
    advance(dir.path(), 50);
    p.terminate();
    assert!(
        p.wait_exit(DEFAULT_TIMEOUT).success(),
        "{}",
        p.output().join("\n")
    );
    let mut parquet = parquet_rows(dir.path());
    parquet.dedup_by_key(|r| r.0);
    check_runs(&parquet);
    // Every row the WAL had reached ClickHouse by the clean stop (or waits in the WAL): start
    // again briefly to let it catch up if the stop deadline cut it short.
    let want = parquet.len() as u64;
    if count(&ch) < want {
        let mut p = start(dir.path());
        wait_until("ClickHouse caught up", WAIT, || count(&ch) >= want);
        p.terminate();
        p.wait_exit(DEFAULT_TIMEOUT);
    }
    let rows = ch.query("SELECT count(), uniqExact(seq), min(value), max(value) FROM petra.samples FINAL WHERE seq <= (SELECT max(seq) FROM petra.samples FINAL)");
    let f: Vec<u64> = rows
        .split_whitespace()
        .map(|x| x.parse::<f64>().unwrap() as u64)
        .collect();
    assert_eq!(f[0], f[1], "no seq twice in queries: {rows}");
    assert!(
        f[0] >= want,
        "every Parquet row is in ClickHouse: {rows} vs {want}"
    );
}

/// Completed (visible) Parquet files under the history directory.
fn completed_parquet_files(dir: &Path) -> usize {
    let mut n = 0;
    let mut stack = vec![dir.join("data/history")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().to_string();
            if p.is_dir() {
                stack.push(p);
            } else if name.ends_with(".parquet") && !name.starts_with('.') {
                n += 1;
            }
        }
    }
    n
}

#[test]
fn the_api_serves_recorded_samples_and_metrics_count_them() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    write_config_with(
        dir.path(),
        None,
        &format!("server:\n  listen: 127.0.0.1:{port}\n"),
    );
    let mut live = Live::start(dir.path(), port);
    advance(dir.path(), 30);
    let metrics = live.metrics();
    assert!(metrics.contains("petra_wal_bytes "), "{metrics}");
    assert!(
        metrics.contains("petra_history_lag_rows{sink=\"parquet\"}"),
        "{metrics}"
    );
    let get = |live: &Live, q: &str| -> serde_json::Value {
        live.http
            .get(live.url(&format!("/api/v1/history?{q}")))
            .bearer_auth(&live.token)
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    // Before any Parquet file is complete, the samples are served from the WAL.
    let early = get(&live, "signal=n&limit=5");
    let vals = |h: &serde_json::Value| -> Vec<i64> {
        h["samples"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["value"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(vals(&early), [0, 1, 2, 3, 4], "{early}");
    assert_eq!(
        completed_parquet_files(dir.path()),
        0,
        "served before any file completed"
    );
    // A clean stop completes the file: the same samples, now from Parquet (and the newer ones
    // from the WAL, without a sample twice).
    live.restart();
    let get = |q: &str| get(&live, q);
    let h = get("signal=n&limit=5");
    assert_eq!(h["signal"], "n");
    let values: Vec<i64> = h["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["value"].as_i64().unwrap())
        .collect();
    assert_eq!(values, [0, 1, 2, 3, 4], "{h}");
    assert_eq!(h["truncated"], true);
    assert_eq!(h["samples"][0]["quality"], "good");
    let all = get("signal=n&limit=100000");
    assert!(all["samples"].as_array().unwrap().len() >= 30, "{all}");
    let seen = vals(&all);
    let mut distinct = seen.clone();
    distinct.dedup();
    assert_eq!(seen, distinct, "no sample twice");
    assert_eq!(all["truncated"], false);
    let bad = get("signal=n&from=yesterday");
    assert_eq!(bad["error"], "bad_request", "{bad}");
    let unknown = get("signal=nope");
    assert_eq!(unknown["error"], "not_found", "{unknown}");
    let metrics = live.metrics();
    assert!(
        metrics.contains("petra_history_rows_total{sink=\"parquet\",result=\"ok\"}"),
        "{metrics}"
    );
    live.stop();
}

/// The quickstart records its signals into Parquet files duckdb can query.
#[test]
fn the_quickstart_records_history_that_duckdb_queries() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let src = std::fs::read_to_string(repo.join("examples/quickstart.yaml")).unwrap();
    assert!(
        src.contains("\nhistory:\n"),
        "the quickstart records history"
    );
    let dir = tempfile::tempdir().unwrap();
    let src = src.replace("127.0.0.1:8080", &format!("127.0.0.1:{}", free_port()));
    std::fs::write(dir.path().join("plant.yaml"), src).unwrap();
    let mut p = start(dir.path());
    advance(dir.path(), 20);
    p.terminate();
    assert!(
        p.wait_exit(DEFAULT_TIMEOUT).success(),
        "{}",
        p.output().join("\n")
    );
    let rows = duckdb_rows(
        "SELECT count(DISTINCT signal) FROM read_parquet({glob}, hive_partitioning=true)",
        &dir.path().join("data/history/**/*.parquet"),
    );
    // All nine signals have their first value recorded at least.
    assert_eq!(rows, [["9"]]);
}

/// A reload that changes the history rules restarts the history on the new rules, on the same
/// WAL, without losing what was recorded.
#[test]
fn a_reload_with_new_history_rules_keeps_recording() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), None);
    let mut p = start(dir.path());
    advance(dir.path(), 30);
    let path = dir.path().join("plant.yaml");
    let yaml = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, yaml.replace("match: n,", "match: '*',")).unwrap();
    p.signal(1); // SIGHUP
    p.wait_for_line("configuration reloaded", DEFAULT_TIMEOUT);
    advance(dir.path(), 60);
    p.terminate();
    assert!(
        p.wait_exit(DEFAULT_TIMEOUT).success(),
        "{}",
        p.output().join("\n")
    );
    let rows = duckdb_rows(
        "SELECT signal, count(*) FROM read_parquet({glob}) GROUP BY signal ORDER BY signal",
        &dir.path().join("data/history/**/*.parquet"),
    );
    let counts: Vec<(&str, usize)> = rows
        .iter()
        .map(|r| (r[0].as_str(), r[1].parse().unwrap()))
        .collect();
    // `m` is recorded only under the new rules; `n` before and after.
    assert_eq!(
        counts.iter().map(|c| c.0).collect::<Vec<_>>(),
        ["m", "n"],
        "{counts:?}"
    );
    assert!(counts.iter().all(|c| c.1 >= 25), "{counts:?}");
}
