//! Segment deletion: after every cursor passed, and by the size cap (counted, never silent).

use petra_wal::{Batch, WalOptions};

use crate::{FRAME, HEADER, append_range, open, read_all, rec, segments, small};

#[test]
fn segments_are_deleted_once_every_cursor_passed_them() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), small(HEADER + 3 * FRAME), &["a", "b"]);
    append_range(&wal, 0, 30);
    wal.sync().unwrap();
    assert_eq!(segments(dir.path()).len(), 10);
    let bytes = wal.stats().bytes;
    assert_eq!(bytes, 10 * (HEADER + 3 * FRAME));

    let mut a = wal.reader("a").unwrap();
    let mut b = wal.reader("b").unwrap();
    a.commit(30).unwrap();
    assert_eq!(segments(dir.path()).len(), 10, "b has not read anything");
    b.commit(14).unwrap();
    // Segments up to position 12 are passed by both; 13..15 is not (b's cursor is 15).
    assert_eq!(segments(dir.path()).len(), 6);
    assert_eq!(wal.stats().bytes, 6 * (HEADER + 3 * FRAME));
    b.commit(30).unwrap();
    // The segment being written is never deleted.
    assert_eq!(segments(dir.path()).len(), 1);
    let st = wal.stats();
    assert_eq!((st.segments, st.dropped_records), (1, 0));
    assert!(st.sinks.iter().all(|s| s.lag == 0));
    // Appends go on after retention.
    append_range(&wal, 30, 40);
    wal.sync().unwrap();
    let mut batch = Batch::new();
    a.read(100, &mut batch).unwrap();
    assert_eq!(batch.first_position(), Some(31));
    assert_eq!(batch.len(), 10);
}

#[test]
fn without_sinks_synced_segments_are_not_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), small(HEADER + 3 * FRAME), &[]);
    append_range(&wal, 0, 30);
    wal.sync().unwrap();
    assert_eq!(segments(dir.path()).len(), 1);
}

#[test]
fn max_size_drops_the_oldest_segments_and_counts_the_records() {
    let dir = tempfile::tempdir().unwrap();
    let seg = HEADER + 3 * FRAME;
    let opts = WalOptions {
        segment_size: seg,
        max_size: 4 * seg,
        skip_corrupt: false,
    };
    let (wal, _) = open(dir.path(), opts.clone(), &["slow", "fast"]);
    let mut fast = wal.reader("fast").unwrap();
    let mut batch = Batch::new();
    let mut fast_seen = Vec::new();
    for chunk in 0..10 {
        append_range(&wal, chunk * 6, chunk * 6 + 6);
        wal.sync().unwrap();
        // "fast" keeps up: it never loses anything.
        fast.read(1000, &mut batch).unwrap();
        fast_seen.extend(batch.iter().map(|(p, _)| p));
        if let Some(last) = batch.last_position() {
            fast.commit(last).unwrap();
        }
        let on_disk: u64 = segments(dir.path())
            .iter()
            .map(|p| std::fs::metadata(p).unwrap().len())
            .sum();
        assert!(on_disk <= opts.max_size, "{on_disk} bytes on disk");
    }
    assert_eq!(fast_seen, (1..=60).collect::<Vec<_>>());

    let st = wal.stats();
    assert!(st.dropped_records > 0 && st.dropped_segments > 0, "{st:?}");
    let slow = st.sinks.iter().find(|s| s.name == "slow").unwrap();
    assert_eq!(slow.dropped_records, st.dropped_records);
    assert_eq!(
        st.sinks
            .iter()
            .find(|s| s.name == "fast")
            .unwrap()
            .dropped_records,
        0
    );
    // "slow" continues at the first retained record; what it gets plus what it lost is all.
    let got = read_all(&wal, "slow");
    assert_eq!(got.len() as u64 + slow.dropped_records, 60);
    assert_eq!(got[0].0, slow.dropped_records + 1);
    assert_eq!(got[0].1, rec(slow.dropped_records));
    assert_eq!(slow.lag, 60 - slow.dropped_records);
}

#[test]
fn a_reader_behind_a_dropped_segment_jumps_to_the_first_retained_record() {
    let dir = tempfile::tempdir().unwrap();
    let seg = HEADER + 3 * FRAME;
    let opts = WalOptions {
        segment_size: seg,
        max_size: 2 * seg,
        skip_corrupt: false,
    };
    let (wal, _) = open(dir.path(), opts, &["a"]);
    append_range(&wal, 0, 6);
    wal.sync().unwrap();
    let mut r = wal.reader("a").unwrap();
    let mut batch = Batch::new();
    assert_eq!(r.read(2, &mut batch).unwrap(), 2); // holds segment 1 open
    append_range(&wal, 6, 12);
    wal.sync().unwrap();
    r.read(100, &mut batch).unwrap();
    let dropped = wal.stats().dropped_records;
    assert!(dropped > 0);
    let first = batch.first_position().unwrap();
    assert_eq!(first, dropped + 1);
    assert_eq!(batch.last_position(), Some(12));
    // A late commit of records the cap already dropped is harmless.
    r.commit(2).unwrap();
}
