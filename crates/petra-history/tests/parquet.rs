//! The Parquet sink against real Parquet readers (pyarrow and DuckDB, design.md "Real peers"):
//! a file only Petra can read is not a Parquet file.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use petra_history::parquet::{ParquetConfig, ParquetSink, query, remove_expired};
use petra_history::{Row, Sink};
use serde_json::Value;

/// The data and the pyarrow comparison of the size benchmark.
#[allow(dead_code)]
#[path = "../examples/parquet_size.rs"]
mod parquet_size;

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
/// 2026-12-04T00:00:00Z
const D: i64 = 1_796_342_400_000;

fn row(signal: &str, ts_ms: i64, value: f64, seq: u64) -> Row {
    Row {
        signal: signal.into(),
        ts_ms,
        value: Some(value),
        text: None,
        quality: "good",
        seq,
    }
}

fn text_row(signal: &str, ts_ms: i64, text: &str, seq: u64) -> Row {
    Row {
        value: None,
        text: Some(text.into()),
        ..row(signal, ts_ms, 0.0, seq)
    }
}

fn config(dir: &Path) -> ParquetConfig {
    ParquetConfig::new(dir.join("history"))
}

/// Runs a Python script with `args`; its standard output. A missing module fails with the
/// install hint (a missing peer is a failure, never a skip).
fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs: install Python 3 (Debian: apt-get install python3)");
    let err = String::from_utf8_lossy(&out.stderr);
    if err.contains("ModuleNotFoundError") {
        panic!(
            "a Parquet reader peer is missing:\n{err}\ninstall them with \
             `python3 -m pip install pyarrow duckdb` (scripts/test does)"
        );
    }
    assert!(out.status.success(), "python failed:\n{err}");
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn json(script: &str, args: &[&str]) -> Value {
    let out = python(script, args);
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// Visible files under `dir`, relative, sorted.
fn visible(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    walk(dir, dir, &mut out, &|n| n.ends_with(".parquet"));
    out
}

fn temps(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    walk(dir, dir, &mut out, &|n| n.ends_with(".tmp"));
    out
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>, keep: &dyn Fn(&str) -> bool) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            walk(root, &p, out, keep);
        } else if keep(&e.file_name().to_string_lossy()) {
            out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
        }
    }
    out.sort();
}

/// Strips the zero-padded seq: `date=…/HHMMSS`.
fn periods(files: &[String]) -> Vec<String> {
    files
        .iter()
        .map(|f| f[..f.rfind('-').unwrap()].to_owned())
        .collect()
}

/// Three signals (a float, a bool, a string) once a minute from 10:00 to 12:59 of day D.
fn three_hours() -> Vec<Row> {
    let mut rows = Vec::new();
    let mut seq = 100;
    for minute in 0..180 {
        let ts = D + 10 * HOUR + minute * 60_000;
        rows.push(row("tank.level", ts, 0.5 * minute as f64, seq));
        rows.push(row("pump.on", ts + 1, (minute % 2) as f64, seq + 1));
        rows.push(Row {
            quality: if minute % 10 == 0 { "bad" } else { "good" },
            ..text_row("batch.id", ts + 2, &format!("B-{minute}"), seq + 2)
        });
        seq += 3;
    }
    rows
}

#[test]
fn pyarrow_and_duckdb_read_the_files() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path());
    let dir = cfg.dir.clone();
    let rows = three_hours();
    let mut sink = ParquetSink::open(cfg).unwrap();
    for batch in rows.chunks(50) {
        sink.write(batch).unwrap();
    }
    sink.flush().unwrap();
    assert_eq!(sink.first_pending(), None);
    let files = visible(&dir);
    assert_eq!(
        periods(&files),
        [
            "date=2026-12-04/100000",
            "date=2026-12-04/110000",
            "date=2026-12-04/120000"
        ]
    );
    assert_eq!(
        files[0],
        "date=2026-12-04/100000-00000000000000000100.parquet"
    );

    let got = json(
        r#"
import json, sys, glob, os
import pyarrow.parquet as pq
out = []
for f in sorted(glob.glob(os.path.join(sys.argv[1], "**", "*.parquet"), recursive=True)):
    t = pq.read_table(f)
    md = pq.ParquetFile(f).metadata
    col = lambda name: md.row_group(0).column(t.schema.get_field_index(name))
    out.append({
        "schema": [[fl.name, str(fl.type)] for fl in t.schema],
        "rows": t.num_rows,
        "sum": sum(v for v in t.column("value").to_pylist() if v is not None),
        "null_values": t.column("value").null_count,
        "texts": [x for x in t.column("text").to_pylist() if x is not None][:2],
        "bad": t.column("quality").to_pylist().count("bad"),
        "ts": [t.column("ts")[0].value, t.column("ts")[t.num_rows - 1].value],
        "seq": t.column("seq").to_pylist()[:2],
        "signal_encodings": list(col("signal").encodings),
        "ts_logical": str(md.schema.column(1).logical_type),
        "codec": col("value").compression,
    })
print(json.dumps(out))
"#,
        &[dir.to_str().unwrap()],
    );
    let files = got.as_array().unwrap();
    assert_eq!(files.len(), 3);
    for (h, f) in files.iter().enumerate() {
        let schema: Vec<(String, String)> = f["schema"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c[0].as_str().unwrap().into(), c[1].as_str().unwrap().into()))
            .collect();
        let want = [
            ("signal", "string"),
            ("ts", "timestamp[ms, tz=UTC]"),
            ("value", "double"),
            ("quality", "string"),
            ("text", "string"),
            ("seq", "uint64"),
        ];
        assert_eq!(
            schema,
            want.map(|(a, b)| (a.to_owned(), b.to_owned())),
            "pyarrow schema of file {h}"
        );
        let expect: Vec<&Row> = rows
            .iter()
            .filter(|r| {
                r.ts_ms >= D + (10 + h as i64) * HOUR && r.ts_ms < D + (11 + h as i64) * HOUR
            })
            .collect();
        assert_eq!(f["rows"], expect.len());
        let sum: f64 = expect.iter().filter_map(|r| r.value).sum();
        assert_eq!(f["sum"].as_f64().unwrap(), sum);
        assert_eq!(f["null_values"], 60);
        assert_eq!(f["bad"], 6);
        assert_eq!(f["texts"][0], format!("B-{}", h * 60));
        assert_eq!(f["ts"][0], expect[0].ts_ms);
        assert_eq!(f["ts"][1], expect.last().unwrap().ts_ms);
        assert_eq!(f["seq"][0], expect[0].seq);
        assert!(
            f["signal_encodings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e.as_str().unwrap().contains("DICTIONARY")),
            "signal is dictionary-encoded: {}",
            f["signal_encodings"]
        );
        let ts = f["ts_logical"].as_str().unwrap();
        assert!(
            ts.contains("isAdjustedToUTC=true") && ts.contains("milliseconds"),
            "{ts}"
        );
        assert_eq!(f["codec"], "ZSTD");
    }

    // DuckDB, over the Hive-partitioned tree: the `date` partition is the date of every row.
    let got = json(
        r#"
import json, sys, duckdb
glob = sys.argv[1] + "/**/*.parquet"
r = duckdb.connect().execute(f"""
  SELECT count(*), epoch_ms(min(ts)), epoch_ms(max(ts)), sum(value), count(DISTINCT date),
         count(*) FILTER (WHERE epoch_ms(ts) // 86400000 <> date_diff('day', DATE '1970-01-01', CAST(date AS DATE))),
         count(DISTINCT signal), count(text)
  FROM read_parquet('{glob}', hive_partitioning = true)""").fetchone()
print(json.dumps([int(r[0]), int(r[1]), int(r[2]), float(r[3]), int(r[4]), int(r[5]), int(r[6]), int(r[7])]))
"#,
        &[dir.to_str().unwrap()],
    );
    let sum: f64 = rows.iter().filter_map(|r| r.value).sum();
    assert_eq!(
        got,
        serde_json::json!([
            rows.len(),
            rows[0].ts_ms,
            rows.last().unwrap().ts_ms,
            sum,
            1,
            0,
            3,
            180
        ])
    );
}

#[test]
fn one_file_per_period_in_the_date_of_its_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path());
    let dir = cfg.dir.clone();
    let mut sink = ParquetSink::open(cfg).unwrap();
    // Two sources across midnight, one clock 150 ms behind the other: their rows interleave
    // across the period boundary for a while; that makes two files, not a file per switch.
    let mut rows = Vec::new();
    let mut seq = 0;
    let mut t = D + DAY - 120_000;
    while t < D + DAY + 180_000 {
        rows.push(row("a", t, 1.0, seq));
        rows.push(row("b", t - 150, 2.0, seq + 1));
        seq += 2;
        t += 50;
    }
    for batch in rows.chunks(333) {
        sink.write(batch).unwrap();
        // Never past the oldest row of the open files.
        let pending = sink.first_pending().unwrap();
        assert!(pending <= batch.last().unwrap().seq);
    }
    // The evening file closed once the rows were a minute (the grace) into the new day.
    assert_eq!(
        periods(&visible(&dir)),
        ["date=2026-12-04/230000"],
        "the previous period is complete once rows are past its grace"
    );
    let first_of_day = rows.iter().find(|r| r.ts_ms >= D + DAY).unwrap().seq;
    assert_eq!(sink.first_pending(), Some(first_of_day));
    // A late row of an old period (a clock stepped back) gets a file of its own period.
    sink.write(&[row("a", D + 5 * HOUR + 1, 3.0, seq)]).unwrap();
    sink.flush().unwrap();
    assert_eq!(
        periods(&visible(&dir)),
        [
            "date=2026-12-04/050000",
            "date=2026-12-04/230000",
            "date=2026-12-05/000000"
        ]
    );
    let all = query(&dir, "b", D, D + 2 * DAY, usize::MAX).unwrap();
    let want: Vec<&Row> = rows.iter().filter(|r| &*r.signal == "b").collect();
    assert_eq!(all.len(), want.len());
    assert!(all.iter().zip(&want).all(|(a, b)| a == *b));
}

#[test]
fn big_periods_are_cut_into_files_of_file_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path());
    cfg.row_group_rows = 300;
    cfg.file_rows = 1000;
    let dir = cfg.dir.clone();
    let mut sink = ParquetSink::open(cfg).unwrap();
    let rows: Vec<Row> = (0..2500)
        .map(|i| row("x", D + i as i64, i as f64, 7 + i))
        .collect();
    sink.write(&rows).unwrap();
    assert_eq!(
        visible(&dir),
        [
            "date=2026-12-04/000000-00000000000000000007.parquet",
            "date=2026-12-04/000000-00000000000000001007.parquet"
        ]
    );
    assert_eq!(sink.first_pending(), Some(2007));
    sink.flush().unwrap();
    assert_eq!(visible(&dir).len(), 3);
    let got = json(
        r#"
import json, sys
import pyarrow.parquet as pq
f = pq.ParquetFile(sys.argv[1])
print(json.dumps([f.metadata.num_row_groups, [f.metadata.row_group(i).num_rows for i in range(f.metadata.num_row_groups)]]))
"#,
        &[dir.join(&visible(&dir)[0]).to_str().unwrap()],
    );
    assert_eq!(got, serde_json::json!([4, [300, 300, 300, 100]]));
    assert_eq!(query(&dir, "x", D, D + DAY, usize::MAX).unwrap(), rows);
}

#[test]
fn a_crash_leaves_only_complete_files_and_the_wal_fills_the_gap() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path());
    cfg.row_group_rows = 100;
    let dir = cfg.dir.clone();
    // 10:00 to 11:30, a row every 5 s.
    let rows: Vec<Row> = (0..1080)
        .map(|i| row("tank.level", D + 10 * HOUR + i * 5000, i as f64, i as u64))
        .collect();
    let mut sink = ParquetSink::open(cfg.clone()).unwrap();
    let mut cursor = 0; // the runner's WAL cursor: the first seq not known durable
    for batch in rows.chunks(64) {
        sink.write(batch).unwrap();
        cursor = sink
            .first_pending()
            .unwrap_or(batch.last().unwrap().seq + 1);
    }
    // 10:00 is complete (rows went past 11:01), 11:00 has row groups in its temporary file.
    let first_11 = rows.iter().find(|r| r.ts_ms >= D + 11 * HOUR).unwrap().seq;
    assert_eq!(cursor, first_11);
    assert_eq!(periods(&visible(&dir)), ["date=2026-12-04/100000"]);
    let temp = temps(&dir);
    assert_eq!(
        temp,
        ["date=2026-12-04/.110000-00000000000000000720.parquet.tmp"]
    );
    assert!(std::fs::metadata(dir.join(&temp[0])).unwrap().len() > 1000);
    drop(sink); // the crash: nothing is closed or renamed

    // Every visible file is complete; the unfinished one is not part of the dataset.
    let got = json(
        r#"
import json, sys
import pyarrow.dataset as ds
print(json.dumps(ds.dataset(sys.argv[1], format="parquet", partitioning="hive").count_rows()))
"#,
        &[dir.to_str().unwrap()],
    );
    assert_eq!(got, 720);

    // The restart removes the temporary file; the runner delivers again from its cursor.
    let mut sink = ParquetSink::open(cfg.clone()).unwrap();
    assert!(temps(&dir).is_empty());
    for batch in rows[cursor as usize..].chunks(64) {
        sink.write(batch).unwrap();
    }
    sink.flush().unwrap();
    assert_eq!(
        query(&dir, "tank.level", D, D + DAY, usize::MAX).unwrap(),
        rows
    );

    // A crash after a rename but before the cursor was stored: the same rows come again and
    // land in a second file beside the first; queries see them once.
    let mut sink = ParquetSink::open(cfg).unwrap();
    sink.write(&rows[..300]).unwrap();
    sink.flush().unwrap();
    assert_eq!(
        visible(&dir),
        [
            "date=2026-12-04/100000-00000000000000000000-1.parquet",
            "date=2026-12-04/100000-00000000000000000000.parquet",
            "date=2026-12-04/110000-00000000000000000720.parquet"
        ]
    );
    assert_eq!(
        query(&dir, "tank.level", D, D + DAY, usize::MAX).unwrap(),
        rows
    );
}

#[test]
fn a_failed_write_drops_what_was_not_durable() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path());
    let dir = cfg.dir.clone();
    let mut sink = ParquetSink::open(cfg).unwrap();
    sink.write(&[row("a", D, 1.0, 1)]).unwrap();
    // The date directory becomes unwritable: a new period's file cannot be created.
    std::fs::write(dir.join("date=2026-12-05"), b"not a directory").unwrap();
    let err = sink.write(&[row("a", D + DAY, 2.0, 2)]).unwrap_err();
    assert!(err.to_string().contains("date=2026-12-05"), "{err}");
    assert_eq!(sink.first_pending(), None);
    assert!(temps(&dir).is_empty());
    std::fs::remove_file(dir.join("date=2026-12-05")).unwrap();
    // The runner re-reads from its cursor (seq 1).
    sink.write(&[row("a", D, 1.0, 1), row("a", D + DAY, 2.0, 2)])
        .unwrap();
    sink.flush().unwrap();
    assert_eq!(query(&dir, "a", D, D + 2 * DAY, 10).unwrap().len(), 2);
}

#[test]
fn retention_deletes_old_files_and_empty_days() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path());
    let dir = cfg.dir.clone();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut sink = ParquetSink::open(cfg.clone()).unwrap();
    sink.write(&[
        row("a", now - 100 * DAY, 1.0, 1),
        row("a", now - 91 * DAY, 1.0, 2),
        row("a", now - DAY, 1.0, 3),
    ])
    .unwrap();
    sink.flush().unwrap();
    assert_eq!(visible(&dir).len(), 3);
    cfg.retention = Some(Duration::from_secs(90 * 86_400));
    let _sink = ParquetSink::open(cfg).unwrap();
    let left = visible(&dir);
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].ends_with("-00000000000000000003.parquet"));
    let days = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(days, 1, "empty date directories are removed");

    // File by file within a day: a file goes when its whole period is past the retention.
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path());
    let dir = cfg.dir.clone();
    let mut sink = ParquetSink::open(cfg).unwrap();
    sink.write(&[
        row("a", D + 10 * HOUR, 1.0, 1),
        row("a", D + 11 * HOUR, 1.0, 2),
    ])
    .unwrap();
    sink.flush().unwrap();
    let keep = Duration::from_secs(86_400);
    let hour = Duration::from_secs(3600);
    let at = |t: i64| remove_expired(&dir, keep, hour, t + DAY).unwrap();
    assert_eq!(at(D + 11 * HOUR - 1), 0);
    assert_eq!(at(D + 11 * HOUR + 1_800_000), 1);
    assert_eq!(periods(&visible(&dir)), ["date=2026-12-04/110000"]);
    assert_eq!(at(D + 12 * HOUR), 1);
    assert!(!dir.join("date=2026-12-04").exists());
}

#[test]
fn queries_return_the_rows_of_one_signal_in_a_range() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path());
    cfg.row_group_rows = 50;
    let dir: PathBuf = cfg.dir.clone();
    let rows = three_hours();
    let mut sink = ParquetSink::open(cfg).unwrap();
    sink.write(&rows).unwrap();
    sink.flush().unwrap();

    let want = |signal: &str, from: i64, to: i64, limit: usize| -> Vec<Row> {
        rows.iter()
            .filter(|r| &*r.signal == signal && from <= r.ts_ms && r.ts_ms < to)
            .take(limit)
            .cloned()
            .collect()
    };
    for (signal, from, to, limit) in [
        ("tank.level", D, D + DAY, 1000),
        (
            "tank.level",
            D + 10 * HOUR + 30 * 60_000,
            D + 11 * HOUR + 30 * 60_000,
            1000,
        ),
        // `to` is exclusive, `from` inclusive.
        ("tank.level", D + 11 * HOUR, D + 12 * HOUR, 1000),
        ("pump.on", D + 10 * HOUR + 1, D + 10 * HOUR + 60_001, 1000),
        // The oldest first, at most `limit`, across files.
        ("batch.id", D + 10 * HOUR + 59 * 60_000, D + DAY, 3),
        ("batch.id", D, D + DAY, 200),
        ("nope", D, D + DAY, 10),
        ("tank.level", D - DAY, D, 10),
        ("tank.level", D + 12 * HOUR, D + 11 * HOUR, 10),
    ] {
        let got = query(&dir, signal, from, to, limit).unwrap();
        assert_eq!(
            got,
            want(signal, from, to, limit),
            "{signal} {from} {to} {limit}"
        );
    }
    let got = query(&dir, "tank.level", D + 11 * HOUR, D + 12 * HOUR, 1000).unwrap();
    assert_eq!(got.len(), 60);
    assert_eq!(got[0].ts_ms, D + 11 * HOUR);
    let texts = query(&dir, "batch.id", D, D + DAY, 2).unwrap();
    assert_eq!(texts[0].text.as_deref(), Some("B-0"));
    assert_eq!(texts[0].value, None);
    assert_eq!(texts[0].quality, "bad");
    assert_eq!(texts[1].quality, "good");
    assert_eq!(texts[0].signal, Arc::from("batch.id"));
    // A tree that does not exist yet has no rows.
    assert!(
        query(&tmp.path().join("none"), "a", D, D + DAY, 10)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn misconfigurations_are_refused() {
    let mut cfg = ParquetConfig::new("relative/history");
    assert!(ParquetSink::open(cfg.clone()).is_err());
    cfg.dir = tempfile::tempdir().unwrap().path().join("h");
    cfg.rotate = Duration::from_millis(1500);
    let err = ParquetSink::open(cfg).err().unwrap().to_string();
    assert!(err.contains("rotate"), "{err}");
}

/// The size benchmark (`examples/parquet_size.rs`, 1M rows in release) at a size a debug build
/// writes in about a second: the files are no bigger than pyarrow's for the same rows.
#[test]
fn files_are_as_small_as_pyarrows() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path());
    let dir = cfg.dir.clone();
    let n = 200_000;
    let rows = parquet_size::samples(n);
    let mut sink = ParquetSink::open(cfg).unwrap();
    for batch in rows.chunks(10_000) {
        sink.write(batch).unwrap();
    }
    sink.flush().unwrap();
    let (ours, theirs, _) =
        parquet_size::compare_with_pyarrow(&dir, &tmp.path().join("pyarrow.parquet"), n);
    println!(
        "petra {ours} B, pyarrow {theirs} B: ratio {:.3}",
        ours / theirs
    );
    assert!(
        ours <= 1.1 * theirs,
        "petra's files ({ours} B) are more than 10% bigger than pyarrow's ({theirs} B)"
    );
}
