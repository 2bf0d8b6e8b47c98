//! Model-based test: random appends, syncs, reads, commits, rewinds, clean reopens and crashes
//! (drop without sync, then the unsynced end of the byte stream cut at a random point, as a kill
//! in the middle of a write leaves it) against a plain in-memory model.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use petra_wal::{Batch, Reader, Wal, WalOptions};
use proptest::prelude::*;

use crate::segments;

const SINKS: [&str; 2] = ["a", "b"];

#[derive(Clone, Debug)]
enum Op {
    Append {
        n: usize,
        size: usize,
    },
    Sync,
    Read {
        sink: usize,
        max: usize,
    },
    /// Commit somewhere between the cursor and the read position (`frac` of the way).
    Commit {
        sink: usize,
        frac: u8,
    },
    Rewind {
        sink: usize,
    },
    Reopen,
    Crash {
        cut: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1usize..20, 0usize..60).prop_map(|(n, size)| Op::Append { n, size }),
        2 => Just(Op::Sync),
        3 => (0usize..2, 1usize..25).prop_map(|(sink, max)| Op::Read { sink, max }),
        2 => (0usize..2, any::<u8>()).prop_map(|(sink, frac)| Op::Commit { sink, frac }),
        1 => (0usize..2).prop_map(|sink| Op::Rewind { sink }),
        1 => Just(Op::Reopen),
        1 => any::<u64>().prop_map(|cut| Op::Crash { cut }),
    ]
}

fn payload(pos: u64, size: usize) -> Vec<u8> {
    (0..size).map(|i| (pos as usize * 31 + i) as u8).collect()
}

#[derive(Default)]
struct SinkModel {
    /// Every position below is committed (persisted: commits write the file at once).
    cursor: u64,
    /// The reader's next position.
    read_pos: u64,
}

struct Model {
    /// Payload of position `i + 1`, synced or not.
    records: Vec<Vec<u8>>,
    durable: usize,
    sinks: [SinkModel; 2],
}

struct Live {
    wal: Arc<Wal>,
    readers: Vec<Reader>,
    /// Segment file sizes right after the last sync: what a crash cannot take away.
    synced: BTreeMap<PathBuf, u64>,
}

fn sizes(dir: &Path) -> BTreeMap<PathBuf, u64> {
    segments(dir)
        .into_iter()
        .map(|p| {
            let l = fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
            (p, l)
        })
        .collect()
}

fn start(dir: &Path, opts: &WalOptions) -> (Live, petra_wal::Recovery) {
    let (wal, rec) = Wal::open(dir, opts.clone(), &SINKS).expect("open");
    let readers = SINKS
        .iter()
        .map(|s| wal.reader(s).expect("reader"))
        .collect();
    let synced = sizes(dir);
    (
        Live {
            wal,
            readers,
            synced,
        },
        rec,
    )
}

/// A kill: everything unsynced after `cut` bytes of the unsynced stream is gone.
fn crash(dir: &Path, live: Live, mut cut: u64) {
    let Live {
        wal,
        readers,
        synced,
    } = live;
    drop(readers);
    drop(wal);
    let files = sizes(dir);
    let total: u64 = files
        .iter()
        .map(|(p, l)| l.saturating_sub(*synced.get(p).unwrap_or(&0)))
        .sum();
    cut %= total + 1;
    let mut cutting = false;
    for (p, len) in files {
        let base = *synced.get(&p).unwrap_or(&0);
        let unsynced = len.saturating_sub(base);
        if cutting {
            assert_eq!(base, 0, "a file synced before the crash follows the cut");
            fs::remove_file(&p).unwrap();
        } else if cut >= unsynced {
            cut -= unsynced;
        } else {
            let f = fs::OpenOptions::new().write(true).open(&p).unwrap();
            f.set_len(base + cut).unwrap();
            cutting = true;
        }
    }
}

fn run(ops: Vec<Op>, segment_size: u64, capped: bool) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let opts = WalOptions {
        segment_size,
        max_size: if capped { 4 * segment_size } else { 1 << 40 },
        skip_corrupt: false,
    };
    let (mut live, _) = start(dir.path(), &opts);
    let mut m = Model {
        records: Vec::new(),
        durable: 0,
        sinks: [
            SinkModel {
                cursor: 1,
                read_pos: 1,
            },
            SinkModel {
                cursor: 1,
                read_pos: 1,
            },
        ],
    };
    let mut batch = Batch::new();
    for op in ops {
        match op {
            Op::Append { n, size } => {
                for _ in 0..n {
                    let pos = m.records.len() as u64 + 1;
                    let p = payload(pos, size);
                    prop_assert_eq!(live.wal.append(&p).unwrap(), pos);
                    m.records.push(p);
                }
            }
            Op::Sync => {
                live.wal.sync().unwrap();
                m.durable = m.records.len();
                live.synced = sizes(dir.path());
                prop_assert_eq!(live.wal.stats().durable_position, m.durable as u64 + 1);
            }
            Op::Read { sink, max } => {
                let cursor = live.wal.stats().sinks[sink].cursor;
                let s = &mut m.sinks[sink];
                if !capped {
                    prop_assert_eq!(cursor, s.cursor);
                }
                let from = s.read_pos.max(cursor);
                let want = (m.durable as u64 + 1).saturating_sub(from).min(max as u64);
                let n = live.readers[sink].read(max, &mut batch).unwrap();
                prop_assert_eq!(n as u64, want);
                for (i, (pos, data)) in batch.iter().enumerate() {
                    prop_assert_eq!(pos, from + i as u64);
                    prop_assert_eq!(data, &m.records[pos as usize - 1][..]);
                }
                s.read_pos = from + n as u64;
            }
            Op::Commit { sink, frac } => {
                let cursor = live.wal.stats().sinks[sink].cursor;
                let s = &mut m.sinks[sink];
                let lo = cursor - 1;
                let hi = (s.read_pos - 1).max(lo);
                let upto = lo + (hi - lo) * u64::from(frac) / 255;
                live.readers[sink].commit(upto).unwrap();
                s.cursor = s.cursor.max(upto + 1);
                prop_assert_eq!(live.wal.stats().sinks[sink].cursor, cursor.max(upto + 1));
            }
            Op::Rewind { sink } => {
                live.readers[sink].rewind();
                m.sinks[sink].read_pos = live.wal.stats().sinks[sink].cursor;
            }
            Op::Reopen => {
                live.wal.sync().unwrap();
                m.durable = m.records.len();
                drop(live);
                let (l, rec) = start(dir.path(), &opts);
                live = l;
                if !capped {
                    prop_assert!(rec.is_clean(), "{}", rec);
                }
                prop_assert_eq!(rec.next_position, m.records.len() as u64 + 1);
                after_restart(&mut m, &live, capped)?;
            }
            Op::Crash { cut } => {
                crash(dir.path(), live, cut);
                let (l, rec) = start(dir.path(), &opts);
                live = l;
                prop_assert!(rec.skipped.is_empty(), "{}", rec);
                let kept = rec.next_position - 1;
                prop_assert!(
                    kept >= m.durable as u64 && kept <= m.records.len() as u64,
                    "kept {} of {} appended, {} synced",
                    kept,
                    m.records.len(),
                    m.durable
                );
                m.records.truncate(kept as usize);
                m.durable = m.records.len();
                after_restart(&mut m, &live, capped)?;
            }
        }
    }
    Ok(())
}

fn after_restart(m: &mut Model, live: &Live, capped: bool) -> Result<(), TestCaseError> {
    let st = live.wal.stats();
    prop_assert_eq!(st.durable_position, m.durable as u64 + 1);
    for (s, got) in m.sinks.iter_mut().zip(&st.sinks) {
        if capped {
            prop_assert!(got.cursor >= s.cursor);
        } else {
            prop_assert_eq!(got.cursor, s.cursor);
        }
        s.cursor = got.cursor;
        s.read_pos = got.cursor;
    }
    Ok(())
}

proptest! {
    // 48 cases keep the suite quick (each case fsyncs for real); PROPTEST_CASES runs more.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(48),
        ..ProptestConfig::default()
    })]

    #[test]
    fn wal_matches_model(
        ops in proptest::collection::vec(op(), 1..60),
        segment_size in prop_oneof![Just(120u64), Just(300), Just(4096)],
    ) {
        run(ops, segment_size, false)?;
    }

    #[test]
    fn wal_matches_model_under_the_size_cap(
        ops in proptest::collection::vec(op(), 1..60),
        segment_size in prop_oneof![Just(120u64), Just(300)],
    ) {
        run(ops, segment_size, true)?;
    }
}
