//! Throughput of the whole history path, in process: a producer thread writes float changes
//! into a `petra_core` bus, the history's lossless feed (131,072 changes, drop newest, as
//! `petra run` makes it) carries them to the sampler, the sampler appends them to the WAL
//! (group commit every `--fsync`), and a sink thread stores them — Parquet files, ClickHouse,
//! or a null sink that only decodes (the WAL path alone). Also each sink alone, fed rows that
//! are already in memory. Used by `scripts/bench-history`; see docs/performance.md ("History").
//!
//! ```sh
//! cargo bench -p petra-history --bench pipeline -- e2e --sink parquet --rate 1000000,2000000
//! cargo bench -p petra-history --bench pipeline -- e2e --sink clickhouse --batch 10000,100000
//! cargo bench -p petra-history --bench pipeline -- parquet-alone
//! cargo bench -p petra-history --bench pipeline -- clickhouse-alone --batch 10000,100000
//! ```
//!
//! Options: `--samples N` (changes per run, default 5,000,000), `--signals S` (1000),
//! `--rate R,R,…` (changes/s the producer is paced at; 0 = as fast as it can, and the feed
//! drops what the sampler cannot take), `--repeat K` (runs of each setting, alternating; 1),
//! `--fsync MS` (100), `--batch B,B,…` (ClickHouse rows per insert; 10000), `--keep DIR` (leave
//! the Parquet files of the last parquet run there), `--url URL` (a ClickHouse to use instead of
//! starting the 18.16 test peer). ClickHouse runs need `/usr/sbin/clickhouse-server` (unless
//! `--url`) and curl (to count the rows stored).
//!
//! Every run prints one line `RESULT {json}`: the rate the producer achieved, the changes the
//! feed dropped, the time until the sink had every row (`done_s`, from the first write), the
//! end-to-end rate (samples / done_s), the tail (done_s minus the producer's time: how far the
//! sink was behind when the producer stopped), and the CPU each thread used over the run (as a
//! fraction of one core) with the whole machine's busy fraction (all CPUs; other load
//! included). A setting is sustained when nothing was dropped and the tail stays short (about
//! one fsync interval plus a batch).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use petra_core::{BusBuilder, OverflowPolicy, Quality, SignalDef, SignalId, Timestamp, Value};
use petra_history::clickhouse::{ClickHouseConfig, ClickHouseSink};
use petra_history::parquet::{ParquetConfig, ParquetSink};
use petra_history::{HistoryConfig, Pace, Row, Rule, Sink, SinkError, WalSettings};

/// What `petra run` gives the history feed (`HISTORY_FEED` in crates/petra/src/run.rs).
const FEED: usize = 1 << 17;

struct Opts {
    mode: String,
    sink: String,
    samples: usize,
    signals: usize,
    rates: Vec<f64>,
    repeat: usize,
    fsync: Duration,
    batches: Vec<usize>,
    keep: Option<PathBuf>,
    url: Option<String>,
}

fn parse() -> Opts {
    let mut o = Opts {
        mode: String::new(),
        sink: "parquet".into(),
        samples: 5_000_000,
        signals: 1000,
        rates: vec![1_000_000.0],
        repeat: 1,
        fsync: Duration::from_millis(100),
        batches: vec![10_000],
        keep: None,
        url: None,
    };
    let mut args = std::env::args().skip(1);
    let list = |v: String| -> Vec<f64> {
        v.split(',')
            .map(|x| x.trim().parse().expect("a number"))
            .collect()
    };
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--bench" => {}
            "--sink" => o.sink = val(),
            "--samples" => o.samples = val().parse().expect("--samples N"),
            "--signals" => o.signals = val().parse().expect("--signals S"),
            "--rate" => o.rates = list(val()),
            "--repeat" => o.repeat = val().parse().expect("--repeat K"),
            "--fsync" => o.fsync = Duration::from_millis(val().parse().expect("--fsync MS")),
            "--batch" => o.batches = list(val()).into_iter().map(|b| b as usize).collect(),
            "--keep" => o.keep = Some(val().into()),
            "--url" => o.url = Some(val()),
            m if !m.starts_with("--") && o.mode.is_empty() => o.mode = m.to_string(),
            other => panic!("unknown argument {other}"),
        }
    }
    if o.mode.is_empty() {
        o.mode = "e2e".into();
    }
    o
}

fn main() {
    let o = parse();
    match o.mode.as_str() {
        "e2e" => e2e(&o),
        "parquet-alone" => parquet_alone(&o),
        "clickhouse-alone" => clickhouse_alone(&o),
        m => panic!("unknown mode {m}: e2e, parquet-alone, clickhouse-alone"),
    }
}

fn names(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("plant.area{}.tank{:03}.level", i / 100, i % 100))
        .collect()
}

/// A ClickHouse to write to: the one given, or the 18.16 test peer (kept alive by the guard).
fn clickhouse(o: &Opts) -> (String, Option<petra_test_support::clickhouse::ClickHouse>) {
    match &o.url {
        Some(u) => (u.clone(), None),
        None => {
            let ch = petra_test_support::clickhouse::ClickHouse::start();
            (ch.url(), Some(ch))
        }
    }
}

/// Rows in `petra.TABLE` (`FINAL`: each key once), asked with curl: a client independent of the
/// sink's.
fn ch_count(url: &str, table: &str) -> u64 {
    let sql = format!("SELECT count() FROM petra.{table} FINAL");
    let out = std::process::Command::new("curl")
        .args(["-sS", "--data-binary", &sql, url])
        .output()
        .expect("curl runs");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

fn ch_drop(url: &str, table: &str) {
    let _ = std::process::Command::new("curl")
        .args([
            "-sS",
            "--data-binary",
            &format!("DROP TABLE IF EXISTS petra.{table}"),
            url,
        ])
        .output();
}

/// A sink that decodes and drops: what the WAL path costs without a store behind it.
struct NullSink;

impl Sink for NullSink {
    fn name(&self) -> &str {
        "null"
    }
    fn write(&mut self, rows: &[Row]) -> Result<(), SinkError> {
        std::hint::black_box(rows);
        Ok(())
    }
}

/// CPU seconds per thread name of this process, and of other processes by pid.
fn thread_cpu() -> Vec<(String, f64)> {
    let tick = 100.0; // USER_HZ on Linux
    let mut out: Vec<(String, f64)> = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for e in dir.flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = stat[open + 1..close].to_string();
        let f: Vec<&str> = stat[close + 2..].split(' ').collect();
        let secs =
            (f[11].parse::<f64>().unwrap_or(0.0) + f[12].parse::<f64>().unwrap_or(0.0)) / tick;
        match out.iter_mut().find(|(n, _)| *n == comm) {
            Some((_, s)) => *s += secs,
            None => out.push((comm, secs)),
        }
    }
    out
}

/// CPU seconds of the calling thread.
fn self_cpu() -> f64 {
    pid_cpu_at("/proc/thread-self/stat")
}

fn pid_cpu(pid: u32) -> f64 {
    pid_cpu_at(&format!("/proc/{pid}/stat"))
}

fn pid_cpu_at(path: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(path) else {
        return 0.0;
    };
    let Some(close) = stat.rfind(')') else {
        return 0.0;
    };
    let f: Vec<&str> = stat[close + 2..].split(' ').collect();
    (f[11].parse::<f64>().unwrap_or(0.0) + f[12].parse::<f64>().unwrap_or(0.0)) / 100.0
}

/// The pid of the process whose command line mentions `needle` (the ClickHouse peer's dir).
fn find_pid(needle: &str) -> Option<u32> {
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline"))
            && String::from_utf8_lossy(&cmd).contains(needle)
        {
            return Some(pid);
        }
    }
    None
}

/// (busy, total) jiffies of all CPUs.
fn machine() -> (f64, f64) {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<f64> = s
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    if f.len() < 5 {
        return (0.0, 1.0);
    }
    let total: f64 = f.iter().sum();
    let idle = f[3] + f.get(4).copied().unwrap_or(0.0);
    (total - idle, total)
}

struct Cpu {
    threads: Vec<(String, f64)>,
    other: Option<(u32, f64)>,
    machine: (f64, f64),
    at: Instant,
}

impl Cpu {
    fn now(other: Option<u32>) -> Cpu {
        Cpu {
            threads: thread_cpu(),
            other: other.map(|p| (p, pid_cpu(p))),
            machine: machine(),
            at: Instant::now(),
        }
    }

    /// Per thread name (and `clickhouse-server`): the fraction of one core used since `self`;
    /// and the machine's busy fraction.
    fn since(&self) -> (serde_json::Value, f64) {
        let wall = self.at.elapsed().as_secs_f64();
        let now = thread_cpu();
        let mut m = serde_json::Map::new();
        for (name, secs) in &now {
            let before = self
                .threads
                .iter()
                .find(|(n, _)| n == name)
                .map_or(0.0, |t| t.1);
            let used = (secs - before) / wall;
            if used >= 0.005 {
                m.insert(name.clone(), round3(used).into());
            }
        }
        if let Some((pid, before)) = self.other {
            m.insert(
                "clickhouse-server".into(),
                round3((pid_cpu(pid) - before) / wall).into(),
            );
        }
        let (b, t) = machine();
        let busy = (b - self.machine.0) / (t - self.machine.1).max(1.0);
        (serde_json::Value::Object(m), round3(busy))
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// Rows in the Parquet files under `dir`, from their footers.
fn parquet_rows(dir: &Path) -> (u64, u64, usize) {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let (mut rows, mut bytes, mut files) = (0u64, 0u64, 0usize);
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                let f = std::fs::File::open(&p).unwrap();
                bytes += f.metadata().unwrap().len();
                let r = SerializedFileReader::new(f).unwrap();
                rows += r.metadata().file_metadata().num_rows() as u64;
                files += 1;
            }
        }
    }
    (rows, bytes, files)
}

fn e2e(o: &Opts) {
    let ch = (o.sink == "clickhouse").then(|| clickhouse(o));
    let ch_pid = ch
        .as_ref()
        .and_then(|(_, g)| g.as_ref())
        .and_then(|g| find_pid(&g.dir().display().to_string()));
    let batches: Vec<usize> = if o.sink == "clickhouse" {
        o.batches.clone()
    } else {
        vec![0]
    };
    let mut run = 0;
    for _ in 0..o.repeat {
        for &rate in &o.rates {
            for &batch in &batches {
                run += 1;
                let url = ch.as_ref().map(|(u, _)| u.as_str());
                let r = e2e_run(o, rate, batch, url, run, ch_pid);
                println!("RESULT {r}");
            }
        }
    }
}

fn e2e_run(
    o: &Opts,
    rate: f64,
    batch: usize,
    url: Option<&str>,
    run: usize,
    ch_pid: Option<u32>,
) -> serde_json::Value {
    let tmp = tempfile::tempdir_in(std::env::var_os("TMPDIR").unwrap_or("/var/tmp".into()))
        .expect("temp dir");
    let names = names(o.signals);
    // No initial value: a signal's first write is its first record, so rows == writes.
    let defs = names
        .iter()
        .map(|n| SignalDef::new(n.clone(), petra_core::ValueType::Float))
        .collect();
    let mut builder = BusBuilder::new(defs).unwrap();
    let ids: Vec<SignalId> = (0..o.signals).map(SignalId::from_index).collect();
    let feed = builder.lossless_feed(FEED, OverflowPolicy::DropNewest, Some(&ids));
    let bus = builder.build(Timestamp::from_unix_nanos(now_ns()));
    let cfg = HistoryConfig {
        signals: ids
            .iter()
            .zip(&names)
            .map(|(id, n)| {
                (
                    *id,
                    n.clone(),
                    Rule::OnChange {
                        deadband: 0.0,
                        max_interval: None,
                    },
                )
            })
            .collect(),
        wal: WalSettings {
            dir: tmp.path().join("wal"),
            max_size: 1 << 30,
            fsync: o.fsync,
            skip_corrupt: false,
        },
        parquet: None,
        clickhouse: None,
    };
    let parquet_dir = tmp.path().join("history");
    let table = format!("samples_{run}");
    let (sink, pace): (Box<dyn Sink>, Pace) = match o.sink.as_str() {
        "parquet" => (
            Box::new(ParquetSink::open(ParquetConfig::new(&parquet_dir)).unwrap()),
            // As `petra run` drives it.
            Pace {
                batch: 65_536,
                max_wait: Duration::ZERO,
                idle_flush: Duration::from_secs(30),
            },
        ),
        "null" => (
            Box::new(NullSink),
            Pace {
                batch: 65_536,
                max_wait: Duration::ZERO,
                idle_flush: Duration::from_secs(30),
            },
        ),
        "clickhouse" => {
            let mut c = ClickHouseConfig::new(vec![url.unwrap().to_string()]);
            c.table = table.clone();
            c.batch = batch;
            c.timeout = Duration::from_secs(60);
            // As `petra run` drives it: `batch` rows or `flush` (1 s), whichever first.
            let pace = Pace {
                batch,
                max_wait: c.flush,
                idle_flush: Duration::from_secs(1),
            };
            (Box::new(ClickHouseSink::new(c)), pace)
        }
        s => panic!("unknown sink {s}: parquet, null, clickhouse"),
    };
    let history = petra_history::History::start(&cfg, &bus, feed, vec![(sink, pace)]).unwrap();

    let n = o.samples;
    let signals = o.signals;
    let producing = Arc::new(AtomicBool::new(true));
    let cpu = Cpu::now(ch_pid);
    let start = Instant::now();
    let producer = {
        let (bus, producing) = (bus.clone(), producing.clone());
        std::thread::Builder::new()
            .name("producer".into())
            .spawn(move || {
                let cpu0 = self_cpu();
                let wall0 = now_ns();
                let mut v: Vec<f64> = (0..signals).map(|i| (i % 97) as f64).collect();
                let mut rng = 0x9E37_79B9_7F4A_7C15_u64;
                let mut written = 0usize;
                while written < n {
                    if rate > 0.0 {
                        let due = start + Duration::from_secs_f64(written as f64 / rate);
                        loop {
                            let now = Instant::now();
                            if now >= due {
                                break;
                            }
                            let left = due - now;
                            if left > Duration::from_micros(200) {
                                std::thread::sleep(left - Duration::from_micros(100));
                            } else {
                                std::thread::yield_now();
                            }
                        }
                    }
                    let ts = Timestamp::from_unix_nanos(wall0 + start.elapsed().as_nanos() as i64);
                    // One round: every signal once (a random walk in steps of 0.001..1, never 0,
                    // so every write is a change).
                    let m = signals.min(n - written);
                    for (i, id) in ids[..m].iter().enumerate() {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        let step = ((rng % 1000) + 1) as f64 / 1000.0;
                        v[i] = if rng & (1 << 40) == 0 || v[i] < 1.0 {
                            v[i] + step
                        } else {
                            v[i] - step
                        };
                        v[i] = (v[i] * 1000.0).round() / 1000.0;
                        bus.write(*id, Value::Float(v[i]), Quality::Good, ts)
                            .unwrap();
                    }
                    written += m;
                }
                producing.store(false, Ordering::Release);
                (start.elapsed(), self_cpu() - cpu0)
            })
            .unwrap()
    };
    // Wait until the sink has every row the feed did not drop. After drops a few rows fewer
    // may come (a signal whose later value equals its last recorded one is no change), so the
    // run also ends when nothing moved for 2 s after the producer stopped; it then counts
    // until the last row stored.
    let mut last = (0u64, Instant::now());
    let mut ok;
    let mut failed;
    let done = loop {
        std::thread::sleep(Duration::from_millis(5));
        let m = history.metrics();
        ok = m.sinks[0].1;
        failed = m.sinks[0].2;
        let dropped = bus.feed_drops_total();
        let producing = producing.load(Ordering::Acquire);
        if !producing && ok >= n as u64 - dropped {
            break start.elapsed();
        }
        if ok != last.0 {
            last = (ok, Instant::now());
        } else if !producing && last.1.elapsed() > Duration::from_secs(2) {
            if dropped == 0 {
                eprintln!("pipeline: no progress for 2 s ({ok} of {n} rows stored)");
            }
            break last.1 - start;
        }
    };
    let (mut threads, busy) = cpu.since();
    let (produce_time, producer_cpu) = producer.join().unwrap();
    threads["producer"] = round3(producer_cpu / done.as_secs_f64()).into();
    let dropped = bus.feed_drops_total();
    let stopping = Instant::now();
    let m = history.metrics();
    history.stop();
    let stop_s = stopping.elapsed().as_secs_f64();
    let mut r = serde_json::json!({
        "mode": "e2e",
        "sink": o.sink,
        "samples": n,
        "signals": o.signals,
        "fsync_ms": o.fsync.as_millis() as u64,
        "target_rate": rate,
        "produced_rate": round3(n as f64 / produce_time.as_secs_f64()).round(),
        "dropped": dropped,
        "metrics_feed_dropped": m.feed_dropped,
        "stored": ok,
        "failed": failed,
        "done_s": round3(done.as_secs_f64()),
        "tail_s": round3(done.as_secs_f64() - produce_time.as_secs_f64()),
        "rate": (ok as f64 / done.as_secs_f64()).round(),
        "stop_s": round3(stop_s),
        "cpu": threads,
        "machine_busy": busy,
    });
    match o.sink.as_str() {
        "parquet" => {
            let (rows, bytes, files) = parquet_rows(&parquet_dir);
            r["parquet_rows"] = rows.into();
            r["parquet_files"] = files.into();
            r["parquet_bytes_per_million"] =
                ((bytes as f64 / rows.max(1) as f64) * 1e6).round().into();
            if let Some(keep) = &o.keep {
                let _ = std::fs::remove_dir_all(keep);
                copy_dir(&parquet_dir, keep);
            }
        }
        "clickhouse" => {
            let url = url.unwrap();
            r["batch"] = batch.into();
            r["clickhouse_rows"] = ch_count(url, &table).into();
            ch_drop(url, &table);
        }
        _ => {}
    }
    r
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        let t = to.join(e.file_name());
        if p.is_dir() {
            copy_dir(&p, &t);
        } else {
            std::fs::copy(&p, &t).unwrap();
        }
    }
}

/// Rows as the sampler makes them: 1000 signals changing every millisecond, random walk with
/// three decimals, `seq` in order.
fn rows(n: usize, signals: usize) -> Vec<Row> {
    let names: Vec<Arc<str>> = names(signals).into_iter().map(Arc::from).collect();
    let mut v: Vec<f64> = (0..signals).map(|i| (i % 97) as f64).collect();
    let mut rng = 0x9E37_79B9_7F4A_7C15_u64;
    let t0 = now_ns() / 1_000_000;
    (0..n)
        .map(|k| {
            let i = k % signals;
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let step = ((rng % 1000) + 1) as f64 / 1000.0;
            v[i] = ((if rng & (1 << 40) == 0 || v[i] < 1.0 {
                v[i] + step
            } else {
                v[i] - step
            }) * 1000.0)
                .round()
                / 1000.0;
            Row {
                signal: names[i].clone(),
                ts_ms: t0 + (k / signals) as i64,
                value: Some(v[i]),
                text: None,
                quality: "good",
                seq: k as u64 + 1,
            }
        })
        .collect()
}

/// The Parquet sink alone: in-memory rows written in batches of 65,536 (as the runner does),
/// then flushed.
fn parquet_alone(o: &Opts) {
    let rows = rows(o.samples, o.signals);
    for _ in 0..o.repeat {
        let tmp =
            tempfile::tempdir_in(std::env::var_os("TMPDIR").unwrap_or("/var/tmp".into())).unwrap();
        let dir = tmp.path().join("history");
        let cpu = Cpu::now(None);
        let t = Instant::now();
        let mut sink = ParquetSink::open(ParquetConfig::new(&dir)).unwrap();
        for b in rows.chunks(65_536) {
            sink.write(b).unwrap();
        }
        sink.flush().unwrap();
        let secs = t.elapsed().as_secs_f64();
        let (_, busy) = cpu.since();
        let (stored, bytes, files) = parquet_rows(&dir);
        assert_eq!(stored as usize, rows.len());
        let r = serde_json::json!({
            "mode": "parquet-alone",
            "samples": rows.len(),
            "secs": round3(secs),
            "rate": (rows.len() as f64 / secs).round(),
            "files": files,
            "parquet_bytes_per_million": ((bytes as f64 / rows.len() as f64) * 1e6).round(),
            "machine_busy": busy,
        });
        println!("RESULT {r}");
    }
}

/// The ClickHouse sink alone: in-memory rows written in batches of `--batch`.
fn clickhouse_alone(o: &Opts) {
    let (url, guard) = clickhouse(o);
    let pid = guard
        .as_ref()
        .and_then(|g| find_pid(&g.dir().display().to_string()));
    let rows = rows(o.samples, o.signals);
    let mut run = 0;
    for _ in 0..o.repeat {
        for &batch in &o.batches {
            run += 1;
            let table = format!("alone_{run}");
            let mut c = ClickHouseConfig::new(vec![url.clone()]);
            c.table = table.clone();
            c.batch = batch;
            c.timeout = Duration::from_secs(60);
            let mut sink = ClickHouseSink::new(c);
            // The table is made on the first write: not timed.
            sink.write(&rows[..1]).unwrap();
            let cpu = Cpu::now(pid);
            let t = Instant::now();
            for b in rows[1..].chunks(batch) {
                sink.write(b).unwrap();
            }
            let secs = t.elapsed().as_secs_f64();
            let (threads, busy) = cpu.since();
            let n = rows.len() - 1;
            let r = serde_json::json!({
                "mode": "clickhouse-alone",
                "samples": n,
                "batch": batch,
                "secs": round3(secs),
                "rate": (n as f64 / secs).round(),
                "clickhouse_rows": ch_count(&url, &table),
                "cpu": threads,
                "machine_busy": busy,
            });
            ch_drop(&url, &table);
            println!("RESULT {r}");
        }
    }
    drop(guard);
}
