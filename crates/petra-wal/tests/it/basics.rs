//! Round trips, group commit, cursors and the API's refusals.

use std::time::Duration;

use petra_wal::{Batch, Wal, WalError, WalOptions};

use crate::{append_range, open, read_all, rec, small};

#[test]
fn round_trip_in_order_with_positions_from_one() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, rec0) = open(dir.path(), small(1000), &["a"]);
    assert!(rec0.fresh && rec0.is_clean(), "{rec0:?}");
    assert_eq!(append_range(&wal, 0, 100), (1..=100).collect::<Vec<_>>());
    wal.sync().unwrap();
    let got = read_all(&wal, "a");
    assert_eq!(got.len(), 100);
    for (i, (pos, data)) in got.iter().enumerate() {
        assert_eq!(*pos, i as u64 + 1);
        assert_eq!(data, &rec(i as u64));
    }
    // Records of every size up to the maximum, including empty ones.
    let sizes = [0usize, 1, 15, 16, 17, 500, 1000 - 28 - 16];
    for s in sizes {
        wal.append(&vec![s as u8; s]).unwrap();
    }
    wal.sync().unwrap();
    let mut r = wal.reader("a").unwrap();
    r.commit(100).unwrap();
    r.rewind();
    let mut b = Batch::new();
    assert_eq!(r.read(100, &mut b).unwrap(), sizes.len());
    for ((_, d), s) in b.iter().zip(sizes) {
        assert_eq!(d, vec![s as u8; s]);
    }
}

#[test]
fn unsynced_records_are_invisible_until_sync() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), small(4096), &["a"]);
    let mut r = wal.reader("a").unwrap();
    let mut b = Batch::new();
    append_range(&wal, 0, 50);
    assert_eq!(r.read(1000, &mut b).unwrap(), 0);
    assert!(!r.wait(Duration::ZERO));
    assert_eq!(wal.stats().durable_position, 1);
    wal.sync().unwrap();
    assert!(r.wait(Duration::ZERO));
    assert_eq!(r.read(1000, &mut b).unwrap(), 50);
    assert_eq!((b.first_position(), b.last_position()), (Some(1), Some(50)));
    // More appends (crossing segments) stay invisible until the next sync.
    append_range(&wal, 50, 300);
    assert_eq!(r.read(1000, &mut b).unwrap(), 0);
    wal.sync().unwrap();
    assert_eq!(r.read(1000, &mut b).unwrap(), 250);
    assert_eq!(b.get(0).unwrap(), (51, &rec(50)[..]));
}

#[test]
fn wait_returns_when_another_thread_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), WalOptions::default(), &["a"]);
    let r = wal.reader("a").unwrap();
    let writer = {
        let wal = wal.clone();
        std::thread::spawn(move || {
            wal.append(b"x").unwrap();
            wal.sync().unwrap();
        })
    };
    // Generous: the writer signals as soon as it synced, the timeout only bounds a failure.
    assert!(r.wait(Duration::from_secs(30)));
    writer.join().unwrap();
    // wake_readers releases a waiting reader without data.
    let mut b = Batch::new();
    let mut r = r;
    assert_eq!(r.read(10, &mut b).unwrap(), 1);
    let waker = {
        let wal = wal.clone();
        std::thread::spawn(move || {
            // Keep waking until the reader has returned: it may not be waiting yet.
            while std::sync::Arc::strong_count(&wal) > 2 {
                wal.wake_readers();
                std::thread::yield_now();
            }
        })
    };
    assert!(!r.wait(Duration::from_secs(30)));
    drop(r);
    drop(wal);
    waker.join().unwrap();
}

#[test]
fn reopen_continues_positions_and_keeps_cursors() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (wal, _) = open(dir.path(), small(500), &["a", "b"]);
        append_range(&wal, 0, 40);
        wal.sync().unwrap();
        let mut r = wal.reader("a").unwrap();
        let mut b = Batch::new();
        r.read(25, &mut b).unwrap();
        r.commit(b.last_position().unwrap()).unwrap();
    }
    let (wal, rec0) = open(dir.path(), small(500), &["a", "b"]);
    assert!(rec0.is_clean(), "{rec0}");
    assert_eq!(rec0.next_position, 41);
    assert_eq!(wal.append(b"next").unwrap(), 41);
    wal.sync().unwrap();
    let a = read_all(&wal, "a");
    assert_eq!(a.first().unwrap().0, 26);
    assert_eq!(a.last().unwrap(), &(41, b"next".to_vec()));
    assert_eq!(read_all(&wal, "b").len(), 41);
    let st = wal.stats();
    assert_eq!(st.sinks[0].lag, 16);
    assert_eq!(st.sinks[1].lag, 41);
}

#[test]
fn rewind_reads_uncommitted_records_again() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), small(300), &["a"]);
    append_range(&wal, 0, 30);
    wal.sync().unwrap();
    let mut r = wal.reader("a").unwrap();
    let mut b = Batch::new();
    r.read(10, &mut b).unwrap();
    r.commit(10).unwrap();
    r.read(10, &mut b).unwrap();
    assert_eq!(b.first_position(), Some(11));
    r.rewind();
    r.read(15, &mut b).unwrap();
    assert_eq!(
        (b.first_position(), b.last_position()),
        (Some(11), Some(25))
    );
    // Committing at or below the cursor is a no-op; beyond the synced end is refused.
    r.commit(3).unwrap();
    assert_eq!(r.cursor(), 11);
    assert!(matches!(
        r.commit(31),
        Err(WalError::CommitBeyondDurable {
            upto: 31,
            durable: 31,
            ..
        })
    ));
}

#[test]
fn refusals() {
    let dir = tempfile::tempdir().unwrap();
    let opts = small(200);
    assert!(matches!(
        Wal::open(dir.path(), opts.clone(), &["bad name"]),
        Err(WalError::InvalidSinkName(_))
    ));
    assert!(matches!(
        Wal::open(dir.path(), opts.clone(), &["a", "a"]),
        Err(WalError::DuplicateSink(_))
    ));
    let bad_opts = WalOptions {
        segment_size: 200,
        max_size: 300,
        skip_corrupt: false,
    };
    assert!(matches!(
        Wal::open(dir.path(), bad_opts, &[]),
        Err(WalError::InvalidOptions(_))
    ));
    let (wal, _) = open(dir.path(), opts.clone(), &["a"]);
    assert!(matches!(
        Wal::open(dir.path(), opts.clone(), &["a"]),
        Err(WalError::Locked(_))
    ));
    assert!(matches!(
        wal.append(&[0; 200 - 28 - 16 + 1]),
        Err(WalError::RecordTooLarge { max: 156, .. })
    ));
    wal.append(&[0; 156]).unwrap();
    assert!(matches!(wal.reader("zz"), Err(WalError::UnknownSink(_))));
    let r = wal.reader("a").unwrap();
    assert!(matches!(wal.reader("a"), Err(WalError::SinkBusy(_))));
    drop(r);
    wal.reader("a").unwrap();
}

#[test]
fn inspect_prints_segments_and_cursors() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (wal, _) = open(dir.path(), small(400), &["parquet", "clickhouse"]);
        append_range(&wal, 0, 25);
        wal.sync().unwrap();
        wal.reader("parquet").unwrap().commit(12).unwrap();
        let ins = petra_wal::inspect(dir.path()).unwrap();
        assert_eq!(ins.records, 25);
        assert_eq!(ins.end_position, Some(26));
        assert_eq!(ins.segments.len(), 3);
        assert!(ins.segments.iter().all(|s| s.problems.is_empty()));
        let p = ins.cursors.iter().find(|c| c.sink == "parquet").unwrap();
        assert_eq!((p.next_position, p.lag), (Some(13), Some(13)));
        let text = ins.to_string();
        assert!(text.contains("00000000000000000001.wal"), "{text}");
        assert!(text.contains("clickhouse"), "{text}");
    }
}

#[test]
fn concurrent_writer_syncer_and_sinks_see_every_record_in_order() {
    let dir = tempfile::tempdir().unwrap();
    // Small segments: readers cross many rotations and deletions while the writer runs.
    let (wal, _) = open(dir.path(), small(4096), &["a", "b"]);
    let n = 20_000u64;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let wal = wal.clone();
        std::thread::spawn(move || {
            for i in 0..n {
                assert_eq!(wal.append(&rec(i)).unwrap(), i + 1);
            }
        })
    };
    let syncer = {
        let (wal, done) = (wal.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(std::sync::atomic::Ordering::Acquire) {
                wal.sync().unwrap();
            }
            wal.sync().unwrap();
        })
    };
    let sinks: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|sink| {
            let mut r = wal.reader(sink).unwrap();
            std::thread::spawn(move || {
                let mut b = Batch::new();
                let mut next = 1u64;
                while next <= n {
                    if r.read(500, &mut b).unwrap() == 0 {
                        assert!(r.wait(Duration::from_secs(60)), "no data for 60 s");
                        continue;
                    }
                    for (pos, data) in b.iter() {
                        assert_eq!((pos, data), (next, &rec(next - 1)[..]));
                        next += 1;
                    }
                    r.commit(b.last_position().unwrap()).unwrap();
                }
            })
        })
        .collect();
    writer.join().unwrap();
    done.store(true, std::sync::atomic::Ordering::Release);
    syncer.join().unwrap();
    for s in sinks {
        s.join().unwrap();
    }
    let st = wal.stats();
    assert_eq!(st.durable_position, n + 1);
    assert!(
        st.sinks
            .iter()
            .all(|s| s.lag == 0 && s.dropped_records == 0)
    );
    assert_eq!(st.segments, 1);
}

/// A peek reads what a sink has not committed, beside the sink's own reader, and never
/// commits.
#[test]
fn a_peek_sees_the_uncommitted_tail_beside_the_sinks_reader() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), small(4096), &["parquet"]);
    append_range(&wal, 0, 10);
    wal.sync().unwrap();
    let mut r = wal.reader("parquet").unwrap();
    let mut batch = petra_wal::Batch::new();
    assert_eq!(r.read(4, &mut batch).unwrap(), 4);
    // Positions start at 1: the sink stored the first four records.
    r.commit(4).unwrap();
    // The sink's reader is claimed; a peek still works and starts at the cursor.
    let mut p = wal.peek("parquet").unwrap();
    let mut seen = Vec::new();
    while p.read(3, &mut batch).unwrap() > 0 {
        seen.extend(batch.iter().map(|(pos, d)| (pos, d.to_vec())));
    }
    let want: Vec<(u64, Vec<u8>)> = (5..=10).map(|p| (p, rec(p - 1))).collect();
    assert_eq!(seen, want);
    assert!(matches!(p.commit(9), Err(petra_wal::WalError::Peek(_))));
    drop(p);
    // Dropping the peek leaves the sink's reader claimed, and its cursor where it was.
    assert!(matches!(
        wal.reader("parquet"),
        Err(petra_wal::WalError::SinkBusy(_))
    ));
    assert_eq!(r.cursor(), 5);
    assert!(matches!(
        wal.peek("nope"),
        Err(petra_wal::WalError::UnknownSink(_))
    ));
}
