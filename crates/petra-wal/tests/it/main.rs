//! The WAL's integration tests, in one binary (each test binary relinks everything).

mod basics;
mod model;
mod recovery;
mod retention;
mod throughput;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use petra_wal::{Batch, Recovery, Wal, WalOptions};

/// Options with small segments, so that tests cross segment boundaries.
pub fn small(segment_size: u64) -> WalOptions {
    WalOptions {
        segment_size,
        max_size: 1 << 40,
        skip_corrupt: false,
    }
}

pub fn open(dir: &Path, opts: WalOptions, sinks: &[&str]) -> (Arc<Wal>, Recovery) {
    Wal::open(dir, opts, sinks).unwrap_or_else(|e| panic!("open {}: {e}", dir.display()))
}

/// A payload of exactly 20 bytes naming its index, so tests can compute offsets.
pub fn rec(i: u64) -> Vec<u8> {
    format!("record-{i:013}").into_bytes()
}

/// Bytes of one 20-byte record in a segment: 16 bytes of frame header plus the payload.
pub const FRAME: u64 = 36;
pub const HEADER: u64 = 28;

/// Appends records `from..to` (payload `rec(i)`) and returns their positions.
pub fn append_range(wal: &Wal, from: u64, to: u64) -> Vec<u64> {
    (from..to)
        .map(|i| wal.append(&rec(i)).expect("append"))
        .collect()
}

/// Everything a sink can read now, as (position, payload).
pub fn read_all(wal: &Arc<Wal>, sink: &str) -> Vec<(u64, Vec<u8>)> {
    let mut r = wal.reader(sink).expect("reader");
    let mut out = Vec::new();
    let mut batch = Batch::new();
    while r.read(7, &mut batch).expect("read") > 0 {
        out.extend(batch.iter().map(|(p, d)| (p, d.to_vec())));
    }
    out
}

/// Segment files in `dir`, oldest first.
pub fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    v.sort();
    v
}
