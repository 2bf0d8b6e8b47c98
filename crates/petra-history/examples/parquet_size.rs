//! How fast the Parquet sink writes and how big its files are, against pyarrow writing the
//! same rows (zstd) — a ratio measured in the same run (design.md, house rule 10).
//!
//! ```sh
//! cargo run --release -p petra-history --example parquet_size [ROWS]
//! ```
//!
//! Needs `python3 -m pip install pyarrow`. The data: 1000 signals sampled once a second (800
//! floats moving in a random walk with 3 decimals, 150 bools that rarely change, 50 counters),
//! a few ms of poll jitter, rare bad quality.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use petra_history::parquet::{ParquetConfig, ParquetSink};
use petra_history::{Row, Sink};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map_or(1_000_000, |a| a.parse().expect("ROWS is a number"));
    let rows = samples(n);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("history");

    let mut best = f64::MAX;
    for run in 0..3 {
        let _ = std::fs::remove_dir_all(&dir);
        let mut sink = ParquetSink::open(ParquetConfig::new(&dir)).unwrap();
        let t = Instant::now();
        for batch in rows.chunks(10_000) {
            sink.write(batch).unwrap();
        }
        sink.flush().unwrap();
        let secs = t.elapsed().as_secs_f64();
        println!(
            "run {run}: petra wrote {n} rows in {:.3} s: {:.0} rows/s ({} files)",
            secs,
            n as f64 / secs,
            sink.files_written()
        );
        best = best.min(secs);
    }

    let t = Instant::now();
    let hits = petra_history::parquet::query(&dir, &rows[7].signal, 0, i64::MAX, 100_000).unwrap();
    println!(
        "query: {} rows of one signal out of {n} in {:.1} ms",
        hits.len(),
        t.elapsed().as_secs_f64() * 1000.0
    );
    assert_eq!(hits.len(), n.div_ceil(1000));
    let (ours, theirs, py_secs) =
        compare_with_pyarrow(&dir, &tmp.path().join("pyarrow.parquet"), n);
    println!(
        "size: petra {ours} B, pyarrow (zstd) {theirs} B: ratio {:.3} (target <= 1.1); {:.1} B/row",
        ours / theirs,
        ours / n as f64
    );
    println!(
        "time: petra {best:.3} s ({:.0} rows/s), pyarrow from an in-memory table {py_secs:.3} s \
         ({:.0} rows/s): ratio {:.2}",
        n as f64 / best,
        n as f64 / py_secs,
        best / py_secs
    );
}

/// Sizes of the files under `dir` and of pyarrow's file (zstd, its defaults otherwise) with the
/// same rows, and pyarrow's best write time of three.
pub fn compare_with_pyarrow(dir: &Path, out: &Path, rows: usize) -> (f64, f64, f64) {
    let run = Command::new("python3")
        .arg("-c")
        .arg(
            r#"
import sys, os, glob, time, pyarrow as pa, pyarrow.parquet as pq
files = sorted(glob.glob(os.path.join(sys.argv[1], "**", "*.parquet"), recursive=True))
ours = sum(os.path.getsize(f) for f in files)
t = pa.concat_tables([pq.read_table(f) for f in files])
best = 1e9
for _ in range(3):
    start = time.perf_counter()
    pq.write_table(t, sys.argv[2], compression="zstd")
    best = min(best, time.perf_counter() - start)
theirs = os.path.getsize(sys.argv[2])
print(ours, theirs, best, t.num_rows)
"#,
        )
        .arg(dir)
        .arg(out)
        .output()
        .expect("python3 runs: install Python 3");
    assert!(
        run.status.success(),
        "pyarrow failed (install it: python3 -m pip install pyarrow):\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let text = String::from_utf8(run.stdout).unwrap();
    let f: Vec<f64> = text
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    assert_eq!(f[3] as usize, rows, "pyarrow read every row");
    (f[0], f[1], f[2])
}

/// `n` rows of 1000 signals sampled once a second.
pub fn samples(n: usize) -> Vec<Row> {
    const SIGNALS: usize = 1000;
    let names: Vec<Arc<str>> = (0..SIGNALS)
        .map(|i| match i {
            0..800 => format!("plant.area{}.tank{}.level", i / 100, i % 100),
            800..950 => format!("plant.area{}.pump{}.running", i / 100, i % 100),
            _ => format!("plant.line{}.counter", i),
        })
        .map(Arc::from)
        .collect();
    let mut state: Vec<f64> = (0..SIGNALS)
        .map(|i| {
            if (800..950).contains(&i) {
                (i % 2) as f64
            } else {
                (i % 97) as f64
            }
        })
        .collect();
    let mut rng = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let t0 = 1_796_342_400_000_i64 + 10 * 3_600_000;
    (0..n)
        .map(|k| {
            let (second, i) = (k / SIGNALS, k % SIGNALS);
            let r = next();
            let v = &mut state[i];
            match i {
                0..800 => *v = ((*v + (r % 2001) as f64 / 1000.0 - 1.0) * 1000.0).round() / 1000.0,
                800..950 => {
                    if r % 300 == 0 {
                        *v = 1.0 - *v
                    }
                }
                _ => *v += (r % 3) as f64,
            }
            Row {
                signal: names[i].clone(),
                ts_ms: t0 + second as i64 * 1000 + (i / 50) as i64 + (r >> 60) as i64,
                value: Some(*v),
                text: None,
                quality: if r % 10_000 == 0 { "bad" } else { "good" },
                seq: k as u64,
            }
        })
        .collect()
}
