//! One named test per damage case: what `open` does with it, and what `inspect` says.

use std::fs::{self, OpenOptions};
use std::path::Path;

use petra_wal::{Problem, Wal, WalError, WalOptions};

use crate::{FRAME, HEADER, append_range, open, read_all, rec, segments, small};

fn skip(mut o: WalOptions) -> WalOptions {
    o.skip_corrupt = true;
    o
}

/// A log of `n` records (payload `rec(i)`, position `i + 1`), synced and closed.
fn log_with(dir: &Path, opts: WalOptions, n: u64, sinks: &[&str]) {
    let (wal, _) = open(dir, opts, sinks);
    append_range(&wal, 0, n);
    wal.sync().unwrap();
}

fn flip(path: &Path, offset: u64) {
    let mut b = fs::read(path).unwrap();
    b[offset as usize] ^= 0x5a;
    fs::write(path, b).unwrap();
}

fn truncate(path: &Path, len: u64) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

fn positions(v: &[(u64, Vec<u8>)]) -> Vec<u64> {
    v.iter().map(|r| r.0).collect()
}

#[test]
fn torn_tail_mid_record_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    log_with(dir.path(), small(1 << 20), 10, &["a"]);
    let seg = &segments(dir.path())[0];
    let cut = HEADER + 9 * FRAME + 7; // inside record 10
    truncate(seg, cut);
    let ins = petra_wal::inspect(dir.path()).unwrap();
    assert_eq!(
        ins.segments[0].problems,
        vec![Problem::TornTail {
            offset: HEADER + 9 * FRAME,
            bytes: 7
        }]
    );

    let (wal, rec0) = open(dir.path(), small(1 << 20), &["a"]);
    let t = rec0.torn_tail.clone().expect("torn tail reported");
    assert_eq!(
        (&t.segment, t.offset, t.bytes),
        (seg, HEADER + 9 * FRAME, 7)
    );
    assert_eq!(rec0.records, 9);
    assert!(!rec0.is_clean());
    assert!(rec0.to_string().contains("torn tail"), "{rec0}");
    assert_eq!(fs::metadata(seg).unwrap().len(), HEADER + 9 * FRAME);
    let got = read_all(&wal, "a");
    assert_eq!(positions(&got), (1..=9).collect::<Vec<_>>());
    assert_eq!(got[8].1, rec(8));
    // The lost position is reused: it was never synced, so never seen.
    assert_eq!(wal.append(b"again").unwrap(), 10);
}

#[test]
fn torn_tail_bad_crc_or_garbage_at_the_end_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    log_with(dir.path(), small(1 << 20), 10, &["a"]);
    let seg = &segments(dir.path())[0];
    // The last record's CRC is wrong, and zeros follow (a file system that extended the file
    // but had not written the data).
    flip(seg, HEADER + 9 * FRAME + 20);
    let mut f = OpenOptions::new().append(true).open(seg).unwrap();
    std::io::Write::write_all(&mut f, &[0u8; 4096]).unwrap();
    drop(f);
    let (wal, rec0) = open(dir.path(), small(1 << 20), &["a"]);
    assert_eq!(rec0.torn_tail.unwrap().bytes, FRAME + 4096);
    assert_eq!(read_all(&wal, "a").len(), 9);
}

#[test]
fn bad_crc_in_the_middle_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    log_with(dir.path(), small(1 << 20), 10, &["a"]);
    let seg = &segments(dir.path())[0];
    let at = HEADER + 4 * FRAME; // record 5
    flip(seg, at + 18);
    let err = Wal::open(dir.path(), small(1 << 20), &["a"]).unwrap_err();
    match &err {
        WalError::Corrupt { path, offset, .. } => {
            assert_eq!((path, *offset), (seg, at));
        }
        other => panic!("expected Corrupt, got {other}"),
    }
    let msg = err.to_string();
    assert!(msg.contains(&seg.display().to_string()) && msg.contains(&format!("byte {at}")));
    assert!(msg.contains("skip_corrupt"), "{msg}");
    // Nothing was changed by the refusal.
    assert_eq!(fs::metadata(seg).unwrap().len(), HEADER + 10 * FRAME);
    let ins = petra_wal::inspect(dir.path()).unwrap();
    assert!(matches!(
        ins.segments[0].problems[..],
        [Problem::Corrupt { offset, records: 1, .. }] if offset == at
    ));
}

#[test]
fn bad_crc_in_the_middle_is_skipped_and_counted_with_skip_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    log_with(dir.path(), small(1 << 20), 10, &["a"]);
    let seg = &segments(dir.path())[0];
    flip(seg, HEADER + 4 * FRAME + 18);
    flip(seg, HEADER + 5 * FRAME + 5); // record 6's length: the scan must resynchronise
    {
        let (wal, rec0) = open(dir.path(), skip(small(1 << 20)), &["a"]);
        assert_eq!(rec0.skipped_records, 2);
        assert_eq!(rec0.skipped.len(), 1);
        assert_eq!(rec0.skipped[0].offset, HEADER + 4 * FRAME);
        assert_eq!(rec0.skipped[0].bytes, 2 * FRAME);
        assert!(rec0.torn_tail.is_none());
        let got = read_all(&wal, "a");
        // Later records keep their positions: they are idempotency keys downstream.
        assert_eq!(positions(&got), vec![1, 2, 3, 4, 7, 8, 9, 10]);
        assert_eq!(got[4].1, rec(6));
        assert_eq!(wal.append(b"x").unwrap(), 11);
        wal.sync().unwrap();
    }
    // The segment was repaired: the next open is clean without skip_corrupt.
    let (wal, rec1) = open(dir.path(), small(1 << 20), &["a"]);
    assert!(rec1.is_clean(), "{rec1}");
    assert_eq!(read_all(&wal, "a").len(), 9);
}

#[test]
fn damage_at_the_end_of_a_sealed_segment_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    // 3 records per segment.
    let opts = small(HEADER + 3 * FRAME);
    log_with(dir.path(), opts.clone(), 9, &["a"]);
    let segs = segments(dir.path());
    assert_eq!(segs.len(), 3);
    truncate(&segs[0], HEADER + 2 * FRAME + 3);
    assert!(matches!(
        Wal::open(dir.path(), opts.clone(), &["a"]),
        Err(WalError::Corrupt { offset, .. }) if offset == HEADER + 2 * FRAME
    ));
    let (wal, rec0) = open(dir.path(), skip(opts), &["a"]);
    assert_eq!(rec0.skipped_records, 1);
    assert_eq!(
        positions(&read_all(&wal, "a")),
        vec![1, 2, 4, 5, 6, 7, 8, 9]
    );
}

#[test]
fn truncated_header_of_the_newest_segment_is_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    log_with(dir.path(), small(1 << 20), 5, &["a"]);
    // A crash right after creating the next segment, before its header was written.
    let next = dir.path().join(format!("{:020}.wal", 6));
    fs::write(&next, b"PETRAW").unwrap();
    let ins = petra_wal::inspect(dir.path()).unwrap();
    assert!(matches!(
        ins.segments[1].problems[..],
        [Problem::TornTail {
            offset: 0,
            bytes: 6
        }]
    ));
    let (wal, rec0) = open(dir.path(), small(1 << 20), &["a"]);
    let t = rec0.torn_tail.expect("reported");
    assert_eq!((t.segments_removed, t.bytes), (1, 6));
    assert!(!next.exists());
    assert_eq!(read_all(&wal, "a").len(), 5);
    assert_eq!(wal.append(b"x").unwrap(), 6);
}

#[test]
fn truncated_header_of_the_only_segment_keeps_the_position_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join(format!("{:020}.wal", 1000));
    fs::write(&first, b"PETRAWAL\x01").unwrap();
    let (wal, rec0) = open(dir.path(), small(1 << 20), &[]);
    assert!(rec0.torn_tail.is_some());
    assert_eq!(fs::metadata(&first).unwrap().len(), HEADER);
    assert_eq!(wal.append(b"x").unwrap(), 1000);
}

#[test]
fn truncated_header_in_the_middle_is_refused_or_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let opts = small(HEADER + 3 * FRAME);
    log_with(dir.path(), opts.clone(), 9, &["a"]);
    let segs = segments(dir.path());
    truncate(&segs[1], 10);
    match Wal::open(dir.path(), opts.clone(), &["a"]) {
        Err(WalError::Corrupt {
            path,
            offset: 0,
            reason,
        }) => {
            assert_eq!(path, segs[1]);
            assert!(reason.contains("header"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    let (wal, rec0) = open(dir.path(), skip(opts), &["a"]);
    assert_eq!(rec0.skipped_records, 3);
    assert!(!segs[1].exists());
    assert_eq!(positions(&read_all(&wal, "a")), vec![1, 2, 3, 7, 8, 9]);
}

#[test]
fn unsupported_version_is_refused_even_with_skip_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    log_with(dir.path(), small(1 << 20), 3, &[]);
    let seg = &segments(dir.path())[0];
    let mut b = fs::read(seg).unwrap();
    b[8] = 2;
    let crc = crc32(&b[0..24]);
    b[24..28].copy_from_slice(&crc.to_le_bytes());
    fs::write(seg, b).unwrap();
    assert!(matches!(
        Wal::open(dir.path(), skip(small(1 << 20)), &[]),
        Err(WalError::UnsupportedVersion { version: 2, .. })
    ));
}

fn crc32(b: &[u8]) -> u32 {
    // Bitwise CRC-32 (IEEE), independent of the crate's implementation.
    let mut c = 0xffff_ffffu32;
    for &x in b {
        c ^= u32::from(x);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xedb8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

#[test]
fn missing_cursor_starts_at_the_oldest_retained_record() {
    let dir = tempfile::tempdir().unwrap();
    let opts = small(HEADER + 3 * FRAME);
    {
        let (wal, _) = open(dir.path(), opts.clone(), &["a", "b"]);
        append_range(&wal, 0, 12);
        wal.sync().unwrap();
        wal.reader("a").unwrap().commit(12).unwrap();
        wal.reader("b").unwrap().commit(7).unwrap();
        // Segments [1..3] and [4..6] are passed by both cursors and gone.
        assert_eq!(segments(dir.path()).len(), 2);
    }
    fs::remove_file(dir.path().join("b.cursor")).unwrap();
    let (wal, rec0) = open(dir.path(), opts, &["a", "b", "new"]);
    assert_eq!(
        rec0.missing_cursors,
        vec!["b".to_string(), "new".to_string()]
    );
    assert!(!rec0.is_clean());
    assert!(rec0.to_string().contains("no cursor for b, new"), "{rec0}");
    // Never from the end: both get everything retained.
    assert_eq!(
        positions(&read_all(&wal, "b")),
        (7..=12).collect::<Vec<_>>()
    );
    assert_eq!(
        positions(&read_all(&wal, "new")),
        (7..=12).collect::<Vec<_>>()
    );
    assert!(read_all(&wal, "a").is_empty());
    // The cursor files were written at open.
    assert!(dir.path().join("b.cursor").exists() && dir.path().join("new.cursor").exists());
}

#[test]
fn corrupt_cursor_is_refused_or_reset() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (wal, _) = open(dir.path(), small(1 << 20), &["a"]);
        append_range(&wal, 0, 5);
        wal.sync().unwrap();
        wal.reader("a").unwrap().commit(3).unwrap();
    }
    flip(&dir.path().join("a.cursor"), 13);
    assert!(matches!(
        Wal::open(dir.path(), small(1 << 20), &["a"]),
        Err(WalError::CorruptCursor { .. })
    ));
    let (wal, rec0) = open(dir.path(), skip(small(1 << 20)), &["a"]);
    assert_eq!(rec0.reset_cursors, vec!["a".to_string()]);
    assert_eq!(read_all(&wal, "a").len(), 5);
}

#[test]
fn cursors_of_undeclared_sinks_are_reported_and_hold_nothing_back() {
    let dir = tempfile::tempdir().unwrap();
    let opts = small(HEADER + 3 * FRAME);
    log_with(dir.path(), opts.clone(), 9, &["old"]);
    let (wal, rec0) = open(dir.path(), opts, &["a"]);
    assert_eq!(rec0.unknown_cursors, vec!["old".to_string()]);
    let mut r = wal.reader("a").unwrap();
    r.commit(9).unwrap();
    assert_eq!(segments(dir.path()).len(), 1);
}

#[test]
fn positions_never_go_below_a_committed_cursor() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (wal, _) = open(dir.path(), small(1 << 20), &["a"]);
        append_range(&wal, 0, 5);
        wal.sync().unwrap();
        wal.reader("a").unwrap().commit(5).unwrap();
    }
    // Someone deleted the segments by hand.
    for s in segments(dir.path()) {
        fs::remove_file(s).unwrap();
    }
    let (wal, _) = open(dir.path(), small(1 << 20), &["a"]);
    assert_eq!(wal.append(b"x").unwrap(), 6);
}
