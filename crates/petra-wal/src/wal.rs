//! The log itself: opening and recovery, the writer (buffered appends, group commit, rotation,
//! the size cap), cursors, retention and statistics. Readers live in `reader.rs`.
//!
//! Three locks, always taken in this order when nested: `sync_lock` (one sync at a time),
//! `writer` (the append buffer and the active file; held by appends, and by a sync only while it
//! hands the buffer to the kernel — never across an fsync, so appends go on during one), and
//! `shared` (what readers may see: synced segments, the durable position, cursors, counters).

use std::collections::VecDeque;
use std::fmt;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use crate::error::{WalError, io};
use crate::format::{
    FRAME_HEADER_LEN, HEADER_LEN, append_frame, decode_cursor, encode_cursor, encode_header,
};
use crate::reader::Reader;
use crate::scan::{SegScan, is_tail, last_valid_segment, records_lost, scan_segment};

/// The append buffer is handed to the kernel when it would grow past this: big enough that
/// write(2) costs little per record, small enough to bound memory and the loss on a crash.
pub(crate) const WRITE_CHUNK: usize = 1 << 20;

/// How the log is laid out and what recovery may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalOptions {
    /// Bytes per segment file (header included); the unit of deletion. Default 64 MiB.
    pub segment_size: u64,
    /// Cap on the bytes of all segments; reaching it drops the oldest segments even if a sink
    /// has not read them (counted). At least twice `segment_size`. Default 1 GiB.
    pub max_size: u64,
    /// Skip (and count) corrupt records followed by valid ones instead of refusing to open;
    /// also replaces corrupt cursor files by the oldest retained position. Default false.
    pub skip_corrupt: bool,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_size: 64 << 20,
            max_size: 1 << 30,
            skip_corrupt: false,
        }
    }
}

impl WalOptions {
    fn validate(&self) -> Result<(), WalError> {
        let min_segment = (HEADER_LEN + FRAME_HEADER_LEN + 1) as u64;
        if self.segment_size < min_segment {
            return Err(WalError::InvalidOptions(format!(
                "segment_size {} is below the minimum of {min_segment} bytes",
                self.segment_size
            )));
        }
        if self.max_size / 2 < self.segment_size {
            return Err(WalError::InvalidOptions(format!(
                "max_size {} must be at least twice segment_size {}: one full segment and the \
                 one being written",
                self.max_size, self.segment_size
            )));
        }
        Ok(())
    }

    /// The largest payload that fits in one segment.
    fn max_record(&self) -> usize {
        let room = self.segment_size - (HEADER_LEN + FRAME_HEADER_LEN) as u64;
        usize::try_from(room.min(u64::from(u32::MAX))).unwrap_or(u32::MAX as usize)
    }
}

/// What `open` found and did. Nothing in it is an error (those stop `open`); everything in it
/// deserves a log line, and `dropped_records`, `skipped_records` and `advanced_cursors` mean data
/// was lost.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// The directory held no segment: a new log.
    pub fresh: bool,
    /// Segments and records retained.
    pub segments: usize,
    pub records: u64,
    /// The position the next append gets.
    pub next_position: u64,
    /// Bytes after the last valid record (a crash while writing), removed.
    pub torn_tail: Option<TornTail>,
    /// Corrupt regions skipped because `skip_corrupt` is set.
    pub skipped: Vec<Skipped>,
    /// Sum of `skipped[..].records`.
    pub skipped_records: u64,
    /// Declared sinks without a cursor file: they start at the oldest retained record.
    pub missing_cursors: Vec<String>,
    /// Declared sinks whose corrupt cursor file was replaced (`skip_corrupt`): they start at the
    /// oldest retained record.
    pub reset_cursors: Vec<String>,
    /// Sinks whose cursor pointed before the oldest retained record (records dropped by the size
    /// cap, or deleted from outside): moved to the oldest retained record; the count is the
    /// positions they missed.
    pub advanced_cursors: Vec<(String, u64)>,
    /// Cursor files of sinks not declared: left on disk, ignored (they hold no segment back).
    pub unknown_cursors: Vec<String>,
    /// Records and segments dropped by `max_size` during open (the cap was lowered).
    pub dropped_records: u64,
    pub dropped_segments: u64,
}

impl Recovery {
    /// Whether the log was exactly as a clean shutdown leaves it (a new log counts as clean, and
    /// so do new sinks on a new log).
    pub fn is_clean(&self) -> bool {
        self.torn_tail.is_none()
            && self.skipped.is_empty()
            && (self.missing_cursors.is_empty() || self.fresh)
            && self.reset_cursors.is_empty()
            && self.advanced_cursors.is_empty()
            && self.dropped_records == 0
    }
}

impl fmt::Display for Recovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} segments, {} records, next position {}",
            self.segments, self.records, self.next_position
        )?;
        if let Some(t) = &self.torn_tail {
            write!(
                f,
                "; torn tail: {} bytes removed from {} at byte {}",
                t.bytes,
                t.segment.display(),
                t.offset
            )?;
            if t.segments_removed > 0 {
                write!(
                    f,
                    " and {} later segment file(s) removed",
                    t.segments_removed
                )?;
            }
        }
        for s in &self.skipped {
            write!(
                f,
                "; skipped {} corrupt bytes ({} records, {}) in {} at byte {}",
                s.bytes,
                s.records,
                s.reason,
                s.segment.display(),
                s.offset
            )?;
        }
        if !self.missing_cursors.is_empty() && !self.fresh {
            write!(
                f,
                "; no cursor for {} (starting at the oldest record)",
                self.missing_cursors.join(", ")
            )?;
        }
        if !self.reset_cursors.is_empty() {
            write!(
                f,
                "; corrupt cursor replaced for {}",
                self.reset_cursors.join(", ")
            )?;
        }
        for (sink, n) in &self.advanced_cursors {
            write!(
                f,
                "; cursor of {sink} was behind the oldest record, {n} records missed"
            )?;
        }
        if !self.unknown_cursors.is_empty() {
            write!(
                f,
                "; ignoring cursors of undeclared sinks {}",
                self.unknown_cursors.join(", ")
            )?;
        }
        if self.dropped_records > 0 {
            write!(
                f,
                "; max_size dropped {} records in {} segments",
                self.dropped_records, self.dropped_segments
            )?;
        }
        Ok(())
    }
}

/// Bytes removed after the last valid record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// The segment that now ends the log, and where it was cut.
    pub segment: PathBuf,
    pub offset: u64,
    /// All bytes removed, including whole segment files after it.
    pub bytes: u64,
    pub segments_removed: usize,
}

/// A corrupt region skipped under `skip_corrupt`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    pub segment: PathBuf,
    pub offset: u64,
    pub bytes: u64,
    /// Positions lost (the gap between the records around the region).
    pub records: u64,
    pub reason: &'static str,
}

/// Counters for metrics and alarms.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WalStats {
    /// Bytes of all segment files, including bytes written but not yet synced (`petra_wal_bytes`).
    pub bytes: u64,
    pub segments: usize,
    /// The position the next append gets.
    pub next_position: u64,
    /// Every position below this is synced, durable and readable.
    pub durable_position: u64,
    /// Records deleted by the size cap before every sink had committed them, since open.
    pub dropped_records: u64,
    /// Segments deleted by the size cap, since open.
    pub dropped_segments: u64,
    pub sinks: Vec<SinkStats>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SinkStats {
    pub name: String,
    /// Every position below this is committed.
    pub cursor: u64,
    /// Synced records not yet committed (`petra_history_lag_rows`); counted in positions, so a
    /// skipped corrupt region inside the backlog counts as if it were there.
    pub lag: u64,
    /// Records this sink lost to the size cap, since open.
    pub dropped_records: u64,
}

#[derive(Clone, Debug)]
pub(crate) struct SegMeta {
    pub first: u64,
    /// Synced length: readers never read past it.
    pub len: u64,
    /// No more records will come (a later segment is published).
    pub sealed: bool,
}

pub(crate) struct SinkState {
    pub name: String,
    pub cursor: u64,
    pub dropped: u64,
    pub claimed: bool,
}

/// What readers may see. Guarded by `Wal::shared`.
pub(crate) struct Shared {
    pub segments: VecDeque<SegMeta>,
    pub durable_next: u64,
    pub sinks: Vec<SinkState>,
    pub dropped_records: u64,
    pub dropped_segments: u64,
    /// Bumped by `wake_readers` so that waiting readers return.
    pub wake: u64,
}

/// A segment sealed by rotation, waiting for the next sync to be fsynced and published.
struct Pending {
    first: u64,
    file: Arc<File>,
    len: u64,
}

struct Writer {
    buf: Vec<u8>,
    active: Arc<File>,
    active_first: u64,
    /// Bytes of the active segment handed to the kernel (the buffer comes on top).
    active_len: u64,
    next_pos: u64,
    /// `next_pos` at the last sync: a sync with nothing new is a no-op.
    synced_next: u64,
    pending: Vec<Pending>,
    /// A segment file was created since the last sync: the directory needs an fsync.
    new_files: bool,
    failed: Option<String>,
}

/// The write-ahead log. Shared as `Arc<Wal>` by the writer thread and the sinks' readers.
pub struct Wal {
    pub(crate) dir: PathBuf,
    opts: WalOptions,
    max_record: usize,
    dir_file: File,
    /// Held (flock) for the life of the `Wal`: one writer per directory.
    _lock: File,
    sync_lock: Mutex<()>,
    writer: Mutex<Writer>,
    pub(crate) shared: Mutex<Shared>,
    /// Signalled when records become durable, a cursor jumps, or `wake_readers` is called.
    pub(crate) data: Condvar,
    bytes: AtomicU64,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing in this crate panics while holding a lock; if a caller's panic poisoned one, the
    // state it guards is still consistent (every update completes before unlock).
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn segment_name(first: u64) -> String {
    format!("{first:020}.wal")
}

pub(crate) fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".wal")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

pub(crate) fn cursor_name(sink: &str) -> String {
    format!("{sink}.cursor")
}

pub(crate) fn parse_cursor_name(name: &str) -> Option<&str> {
    name.strip_suffix(".cursor").filter(|s| valid_sink_name(s))
}

pub(crate) fn valid_sink_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Segment first positions (sorted) and sink names with a cursor file in `dir`.
pub(crate) struct Listing {
    pub segments: Vec<u64>,
    pub cursors: Vec<String>,
    pub temps: Vec<PathBuf>,
}

pub(crate) fn list_dir(dir: &Path) -> Result<Listing, WalError> {
    let mut l = Listing {
        segments: Vec::new(),
        cursors: Vec::new(),
        temps: Vec::new(),
    };
    for entry in fs::read_dir(dir).map_err(io("list directory", dir))? {
        let entry = entry.map_err(io("list directory", dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(first) = parse_segment_name(name) {
            l.segments.push(first);
        } else if let Some(sink) = parse_cursor_name(name) {
            l.cursors.push(sink.to_string());
        } else if name.ends_with(".tmp") {
            l.temps.push(entry.path());
        }
    }
    l.segments.sort_unstable();
    l.cursors.sort();
    Ok(l)
}

pub(crate) fn read_file(path: &Path, buf: &mut Vec<u8>) -> Result<(), WalError> {
    buf.clear();
    File::open(path)
        .and_then(|mut f| f.read_to_end(buf))
        .map_err(io("read", path))?;
    Ok(())
}

fn sync_dir(dir_file: &File, dir: &Path) -> Result<(), WalError> {
    dir_file.sync_all().map_err(io("fsync directory", dir))
}

/// Replaces a file atomically: temp file, fsync, rename, fsync of the directory.
fn write_atomic(dir: &Path, dir_file: &File, name: &str, bytes: &[u8]) -> Result<(), WalError> {
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.tmp"));
    let mut f = File::create(&tmp).map_err(io("create", &tmp))?;
    f.write_all(bytes).map_err(io("write", &tmp))?;
    f.sync_all().map_err(io("fsync", &tmp))?;
    drop(f);
    fs::rename(&tmp, &path).map_err(io("rename into place", &path))?;
    sync_dir(dir_file, dir)
}

fn remove(path: &Path) -> Result<(), WalError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("delete", path)(e)),
        _ => Ok(()),
    }
}

impl Wal {
    /// Opens (creating if needed) the log in `dir` for the declared `sinks`, recovering from
    /// whatever a crash left (see the crate documentation for what recovery does).
    pub fn open(
        dir: &Path,
        opts: WalOptions,
        sinks: &[&str],
    ) -> Result<(Arc<Wal>, Recovery), WalError> {
        opts.validate()?;
        let mut names: Vec<String> = Vec::with_capacity(sinks.len());
        for s in sinks {
            if !valid_sink_name(s) {
                return Err(WalError::InvalidSinkName((*s).to_string()));
            }
            if names.iter().any(|n| n == s) {
                return Err(WalError::DuplicateSink((*s).to_string()));
            }
            names.push((*s).to_string());
        }
        fs::create_dir_all(dir).map_err(io("create directory", dir))?;
        let lock_path = dir.join("wal.lock");
        let lock_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io("open", &lock_path))?;
        match lock_file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(WalError::Locked(dir.to_path_buf())),
            Err(TryLockError::Error(e)) => return Err(io("lock", &lock_path)(e)),
        }
        let dir_file = File::open(dir).map_err(io("open directory", dir))?;
        let listing = list_dir(dir)?;
        for t in &listing.temps {
            // A crash during an atomic replace: the original is intact, the temp is garbage.
            remove(t)?;
        }

        let mut rec = Recovery {
            fresh: listing.segments.is_empty(),
            ..Recovery::default()
        };
        let seg_path = |first: u64| dir.join(segment_name(first));

        // 1. Check every segment.
        let firsts = listing.segments;
        let mut scans: Vec<SegScan> = Vec::with_capacity(firsts.len());
        let mut buf = Vec::new();
        for (i, &first) in firsts.iter().enumerate() {
            let path = seg_path(first);
            read_file(&path, &mut buf)?;
            let s = scan_segment(&buf, first, firsts.get(i + 1).copied());
            if let Some(version) = s.unsupported_version {
                return Err(WalError::UnsupportedVersion { path, version });
            }
            scans.push(s);
        }
        let last_valid = last_valid_segment(&scans);

        // 2. Corruption (damage with valid records after it): refuse, or skip and repair.
        let mut keep = vec![true; firsts.len()];
        for i in 0..scans.len() {
            let corrupt: Vec<_> = scans[i]
                .bad
                .iter()
                .filter(|r| !is_tail(i, r, last_valid))
                .cloned()
                .collect();
            let Some(r0) = corrupt.first() else { continue };
            let path = seg_path(firsts[i]);
            if !opts.skip_corrupt {
                return Err(WalError::Corrupt {
                    path,
                    offset: r0.offset,
                    reason: r0.reason,
                });
            }
            for r in &corrupt {
                let lost = records_lost(r, firsts.get(i + 1).copied());
                rec.skipped_records += lost;
                rec.skipped.push(Skipped {
                    segment: path.clone(),
                    offset: r.offset,
                    bytes: r.len,
                    records: lost,
                    reason: r.reason,
                });
            }
            if scans[i].records == 0 {
                remove(&path)?;
                keep[i] = false;
                continue;
            }
            // Rewrite the segment with its valid records only, so that readers never meet the
            // damage and the next open is clean. A torn tail of this segment goes too (it is
            // reported below from the old scan).
            read_file(&path, &mut buf)?;
            let mut repaired = encode_header(firsts[i]).to_vec();
            for (a, z) in scans[i].valid_ranges() {
                let (a, z) = (a as usize, z as usize);
                repaired.extend_from_slice(buf.get(a..z).unwrap_or_default());
            }
            write_atomic(dir, &dir_file, &segment_name(firsts[i]), &repaired)?;
            let tail_from = scans[i].valid_end;
            let old_len = scans[i].len;
            let s = &mut scans[i];
            s.bad.retain(|r| is_tail(i, r, last_valid));
            s.len = repaired.len() as u64;
            s.valid_end = s.len;
            if old_len > tail_from && last_valid == Some(i) {
                rec.torn_tail = Some(TornTail {
                    segment: path,
                    offset: tail_from,
                    bytes: old_len - tail_from,
                    segments_removed: 0,
                });
            }
        }

        // 3. The torn tail: everything after the last valid record goes. Without any valid
        //    record, the newest segment file is kept, emptied, so that its name carries the
        //    position sequence on.
        let keep_to = last_valid.unwrap_or(firsts.len().saturating_sub(1));
        let mut tail = rec.torn_tail.take();
        for j in (keep_to + 1)..firsts.len() {
            if !keep[j] {
                continue;
            }
            remove(&seg_path(firsts[j]))?;
            keep[j] = false;
            let t = tail.get_or_insert_with(|| TornTail {
                segment: seg_path(firsts[keep_to]),
                offset: scans[keep_to].valid_end,
                bytes: 0,
                segments_removed: 0,
            });
            t.bytes += scans[j].len;
            t.segments_removed += 1;
        }
        if let Some(s) = scans.get_mut(keep_to)
            && keep[keep_to]
        {
            let path = seg_path(firsts[keep_to]);
            if s.records == 0 && (s.len != HEADER_LEN as u64 || !s.bad.is_empty()) {
                let f = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(io("open", &path))?;
                f.set_len(0).map_err(io("truncate", &path))?;
                (&f).write_all(&encode_header(firsts[keep_to]))
                    .map_err(io("write", &path))?;
                f.sync_all().map_err(io("fsync", &path))?;
                let t = tail.get_or_insert_with(|| TornTail {
                    segment: path.clone(),
                    offset: 0,
                    bytes: 0,
                    segments_removed: 0,
                });
                t.bytes += s.bad.iter().map(|r| r.len).sum::<u64>();
                s.len = HEADER_LEN as u64;
                s.valid_end = s.len;
            } else if s.len > s.valid_end {
                let f = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(io("open", &path))?;
                f.set_len(s.valid_end).map_err(io("truncate", &path))?;
                f.sync_all().map_err(io("fsync", &path))?;
                let t = tail.get_or_insert_with(|| TornTail {
                    segment: path.clone(),
                    offset: s.valid_end,
                    bytes: 0,
                    segments_removed: 0,
                });
                t.bytes += s.len - s.valid_end;
                s.len = s.valid_end;
            }
        }
        rec.torn_tail = tail;

        // 4. What is left: (first, len, records, last position).
        let mut segs: Vec<(u64, u64, u64)> = Vec::new();
        let mut last_pos = None;
        for (i, s) in scans.iter().enumerate() {
            if keep[i] {
                segs.push((firsts[i], s.len, s.records));
                last_pos = s.last_pos.or(last_pos);
            }
        }

        // 5. Cursors. Positions already committed by a sink are never handed out again, even
        //    if their records are gone (deleted from outside): they are idempotency keys.
        let mut on_disk: Vec<(String, Result<u64, &'static str>)> = Vec::new();
        for sink in &listing.cursors {
            let path = dir.join(cursor_name(sink));
            read_file(&path, &mut buf)?;
            on_disk.push((sink.clone(), decode_cursor(&buf)));
        }
        let max_cursor = on_disk
            .iter()
            .filter_map(|(_, c)| c.ok())
            .max()
            .unwrap_or(0);
        let mut next_pos = last_pos.map_or(1, |p: u64| p.saturating_add(1));
        if let Some(&(first, _, _)) = segs.last() {
            next_pos = next_pos.max(first);
        }
        next_pos = next_pos.max(max_cursor).max(1);
        if segs.is_empty() {
            let path = seg_path(next_pos);
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .map_err(io("create", &path))?;
            f.write_all(&encode_header(next_pos))
                .map_err(io("write", &path))?;
            segs.push((next_pos, HEADER_LEN as u64, 0));
        }
        let oldest = segs[0].0;
        let mut states = Vec::with_capacity(names.len());
        let mut persisted = Vec::with_capacity(names.len());
        for name in &names {
            let found = on_disk.iter().find(|(s, _)| s == name).map(|(_, c)| *c);
            let cursor = match found {
                Some(Ok(c)) if c < oldest => {
                    rec.advanced_cursors.push((name.clone(), oldest - c));
                    oldest
                }
                Some(Ok(c)) => c,
                Some(Err(reason)) => {
                    if !opts.skip_corrupt {
                        return Err(WalError::CorruptCursor {
                            path: dir.join(cursor_name(name)),
                            reason,
                        });
                    }
                    rec.reset_cursors.push(name.clone());
                    oldest
                }
                None => {
                    rec.missing_cursors.push(name.clone());
                    oldest
                }
            };
            persisted.push(found.and_then(|c| c.ok()));
            states.push(SinkState {
                name: name.clone(),
                cursor,
                dropped: 0,
                claimed: false,
            });
        }
        rec.unknown_cursors = on_disk
            .iter()
            .filter(|(s, _)| !names.contains(s))
            .map(|(s, _)| s.clone())
            .collect();

        // 6. Make what recovery kept durable: records a killed process had written may still
        //    be only in the page cache, and readers are about to see them.
        for &(first, _, _) in &segs {
            let path = seg_path(first);
            File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(io("fsync", &path))?;
        }
        sync_dir(&dir_file, dir)?;

        let Some(&(active_first, active_len, _)) = segs.last() else {
            return Err(WalError::InvalidOptions("no segment after recovery".into()));
        };
        let active_path = seg_path(active_first);
        let active = OpenOptions::new()
            .append(true)
            .open(&active_path)
            .map_err(io("open", &active_path))?;
        let n = segs.len();
        let shared = Shared {
            segments: segs
                .iter()
                .enumerate()
                .map(|(i, &(first, len, _))| SegMeta {
                    first,
                    len,
                    sealed: i + 1 < n,
                })
                .collect(),
            durable_next: next_pos,
            sinks: states,
            dropped_records: 0,
            dropped_segments: 0,
            wake: 0,
        };
        let wal = Arc::new(Wal {
            dir: dir.to_path_buf(),
            max_record: opts.max_record(),
            opts,
            dir_file,
            _lock: lock_file,
            sync_lock: Mutex::new(()),
            writer: Mutex::new(Writer {
                buf: Vec::with_capacity(WRITE_CHUNK + 4096),
                active: Arc::new(active),
                active_first,
                active_len,
                next_pos,
                synced_next: next_pos,
                pending: Vec::new(),
                new_files: false,
                failed: None,
            }),
            shared: Mutex::new(shared),
            data: Condvar::new(),
            bytes: AtomicU64::new(segs.iter().map(|s| s.1).sum()),
        });

        // 7. Retention and the size cap, then persist every cursor open changed.
        let (doomed, cursors) = {
            let mut sh = lock(&wal.shared);
            let mut doomed = wal.enforce_max_size(&mut sh, 0);
            doomed.extend(wal.collect_retention(&mut sh));
            rec.dropped_records = sh.dropped_records;
            rec.dropped_segments = sh.dropped_segments;
            let cursors: Vec<(String, u64)> = sh
                .sinks
                .iter()
                .zip(&persisted)
                .filter(|(s, p)| **p != Some(s.cursor))
                .map(|(s, _)| (s.name.clone(), s.cursor))
                .collect();
            rec.segments = sh.segments.len();
            let retained: std::collections::HashSet<u64> =
                sh.segments.iter().map(|s| s.first).collect();
            rec.records = segs
                .iter()
                .filter(|s| retained.contains(&s.0))
                .map(|s| s.2)
                .sum();
            (doomed, cursors)
        };
        wal.remove_files(doomed)?;
        for (sink, c) in cursors {
            wal.write_cursor(&sink, c)?;
        }
        rec.next_position = next_pos;
        Ok((wal, rec))
    }

    /// The directory of the log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn seg_path(&self, first: u64) -> PathBuf {
        self.dir.join(segment_name(first))
    }

    /// Appends one record and returns its position. Buffered: nothing is durable or visible to
    /// readers before the next [`Wal::sync`]. Costs a CRC and a copy; a system call only once
    /// per MiB of records or per segment. An error means the record was not appended.
    pub fn append(&self, record: &[u8]) -> Result<u64, WalError> {
        if record.len() > self.max_record {
            return Err(WalError::RecordTooLarge {
                len: record.len(),
                max: self.max_record,
            });
        }
        let frame = FRAME_HEADER_LEN + record.len();
        let mut guard = lock(&self.writer);
        let w = &mut *guard;
        if let Some(e) = &w.failed {
            return Err(WalError::Failed(e.clone()));
        }
        let size = w.active_len + w.buf.len() as u64;
        if size + frame as u64 > self.opts.segment_size && size > HEADER_LEN as u64 {
            self.rotate(w)?;
        }
        if w.buf.len() + frame > WRITE_CHUNK && !w.buf.is_empty() {
            self.flush(w)?;
        }
        let pos = w.next_pos;
        let Some(next) = pos.checked_add(1) else {
            return Err(WalError::InvalidOptions(
                "the position sequence is exhausted".into(),
            ));
        };
        append_frame(&mut w.buf, pos, record);
        w.next_pos = next;
        Ok(pos)
    }

    /// Hands the append buffer to the kernel. On failure the file is cut back to where it was,
    /// and the buffer kept, so a later call can retry.
    fn flush(&self, w: &mut Writer) -> Result<(), WalError> {
        if w.buf.is_empty() {
            return Ok(());
        }
        match (&*w.active).write_all(&w.buf) {
            Ok(()) => {
                w.active_len += w.buf.len() as u64;
                self.bytes.fetch_add(w.buf.len() as u64, Ordering::Relaxed);
                w.buf.clear();
                Ok(())
            }
            Err(e) => {
                let _ = w.active.set_len(w.active_len);
                Err(io("write", self.seg_path(w.active_first))(e))
            }
        }
    }

    /// Seals the active segment and starts the next one; then applies the size cap.
    fn rotate(&self, w: &mut Writer) -> Result<(), WalError> {
        self.flush(w)?;
        let first = w.next_pos;
        let path = self.seg_path(first);
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(&path)
            .map_err(io("create", &path))?;
        if let Err(e) = (&file).write_all(&encode_header(first)) {
            let _ = fs::remove_file(&path);
            return Err(io("write", &path)(e));
        }
        self.bytes.fetch_add(HEADER_LEN as u64, Ordering::Relaxed);
        let old = std::mem::replace(&mut w.active, Arc::new(file));
        w.pending.push(Pending {
            first: w.active_first,
            file: old,
            len: w.active_len,
        });
        w.active_first = first;
        w.active_len = HEADER_LEN as u64;
        w.new_files = true;
        let doomed = {
            let mut sh = lock(&self.shared);
            let d = self.enforce_max_size(&mut sh, self.opts.segment_size - HEADER_LEN as u64);
            if !d.is_empty() {
                self.data.notify_all();
            }
            d
        };
        self.remove_files(doomed)
    }

    /// Makes every record appended so far durable (write, fdatasync of the segments written,
    /// fsync of the directory if a segment was created) and then visible to readers. Appends
    /// from other threads wait only while the buffer is handed to the kernel, not during the
    /// fsync. A failed fsync makes the log unusable until reopened ([`WalError::Failed`]).
    pub fn sync(&self) -> Result<(), WalError> {
        let _serial = lock(&self.sync_lock);
        let (files, metas, next, dir_dirty) = {
            let mut guard = lock(&self.writer);
            let w = &mut *guard;
            if let Some(e) = &w.failed {
                return Err(WalError::Failed(e.clone()));
            }
            if w.buf.is_empty() && w.pending.is_empty() && w.next_pos == w.synced_next {
                return Ok(());
            }
            self.flush(w)?;
            let mut files = Vec::with_capacity(w.pending.len() + 1);
            let mut metas = Vec::with_capacity(w.pending.len() + 1);
            for p in w.pending.drain(..) {
                files.push((p.file, p.first));
                metas.push(SegMeta {
                    first: p.first,
                    len: p.len,
                    sealed: true,
                });
            }
            files.push((Arc::clone(&w.active), w.active_first));
            metas.push(SegMeta {
                first: w.active_first,
                len: w.active_len,
                sealed: false,
            });
            w.synced_next = w.next_pos;
            (files, metas, w.next_pos, std::mem::take(&mut w.new_files))
        };
        for (f, first) in &files {
            if let Err(e) = f.sync_data() {
                return Err(self.fail(format!("fsync {}: {e}", self.seg_path(*first).display())));
            }
        }
        if dir_dirty && let Err(e) = self.dir_file.sync_all() {
            return Err(self.fail(format!("fsync directory {}: {e}", self.dir.display())));
        }
        let doomed = {
            let mut sh = lock(&self.shared);
            for m in metas {
                match sh.segments.iter().rposition(|s| s.first == m.first) {
                    Some(i) => sh.segments[i] = m,
                    None => sh.segments.push_back(m),
                }
            }
            sh.durable_next = next;
            self.data.notify_all();
            self.collect_retention(&mut sh)
        };
        self.remove_files(doomed)
    }

    fn fail(&self, msg: String) -> WalError {
        lock(&self.writer).failed = Some(msg.clone());
        WalError::Failed(msg)
    }

    /// Removes from the list the sealed segments every sink has committed past (all of them
    /// when no sink is declared); the caller deletes the files outside the lock.
    pub(crate) fn collect_retention(&self, sh: &mut Shared) -> Vec<PathBuf> {
        let min = sh
            .sinks
            .iter()
            .map(|s| s.cursor)
            .min()
            .unwrap_or(sh.durable_next);
        let mut out = Vec::new();
        while sh.segments.len() >= 2 && sh.segments[0].sealed && sh.segments[1].first <= min {
            if let Some(s) = sh.segments.pop_front() {
                self.bytes.fetch_sub(s.len, Ordering::Relaxed);
                out.push(self.seg_path(s.first));
            }
        }
        out
    }

    /// Drops the oldest sealed segments while the log plus `incoming` bytes exceeds `max_size`:
    /// counts the records sinks had not committed and moves their cursors past them.
    fn enforce_max_size(&self, sh: &mut Shared, incoming: u64) -> Vec<PathBuf> {
        let mut out = Vec::new();
        while self.bytes.load(Ordering::Relaxed) + incoming > self.opts.max_size
            && sh.segments.len() >= 2
            && sh.segments[0].sealed
        {
            let Some(s) = sh.segments.pop_front() else {
                break;
            };
            let next_first = sh.segments[0].first;
            self.bytes.fetch_sub(s.len, Ordering::Relaxed);
            let min = sh
                .sinks
                .iter()
                .map(|s| s.cursor)
                .min()
                .unwrap_or(sh.durable_next);
            if min < next_first {
                sh.dropped_records += next_first - min.max(s.first);
                sh.dropped_segments += 1;
            }
            for sink in &mut sh.sinks {
                if sink.cursor < next_first {
                    sink.dropped += next_first - sink.cursor.max(s.first);
                    sink.cursor = next_first;
                }
            }
            out.push(self.seg_path(s.first));
        }
        out
    }

    pub(crate) fn remove_files(&self, paths: Vec<PathBuf>) -> Result<(), WalError> {
        let mut first_err = None;
        for p in paths {
            if let Err(e) = remove(&p) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    pub(crate) fn write_cursor(&self, sink: &str, next: u64) -> Result<(), WalError> {
        write_atomic(
            &self.dir,
            &self.dir_file,
            &cursor_name(sink),
            &encode_cursor(next),
        )
    }

    /// The reader of `sink`: one at a time per sink (dropping it frees the sink).
    pub fn reader(self: &Arc<Self>, sink: &str) -> Result<Reader, WalError> {
        let mut sh = lock(&self.shared);
        let Some(idx) = sh.sinks.iter().position(|s| s.name == sink) else {
            return Err(WalError::UnknownSink(sink.to_string()));
        };
        let s = &mut sh.sinks[idx];
        if s.claimed {
            return Err(WalError::SinkBusy(sink.to_string()));
        }
        s.claimed = true;
        let pos = s.cursor;
        drop(sh);
        Ok(Reader::new(Arc::clone(self), idx, pos, false))
    }

    /// A reader of what `sink` has not stored yet — from its cursor to the last synced record —
    /// beside the sink's own reader, for queries that must also see what is not stored yet
    /// (the history API before a Parquet file completes). It never commits
    /// ([`Reader::commit`] refuses) and does not hold segments: one deleted under it ends the
    /// read with an error.
    pub fn peek(self: &Arc<Self>, sink: &str) -> Result<Reader, WalError> {
        let sh = lock(&self.shared);
        let Some(idx) = sh.sinks.iter().position(|s| s.name == sink) else {
            return Err(WalError::UnknownSink(sink.to_string()));
        };
        let pos = sh.sinks[idx].cursor;
        drop(sh);
        Ok(Reader::new(Arc::clone(self), idx, pos, true))
    }

    /// Wakes every reader blocked in [`Reader::wait`] (for shutdown).
    pub fn wake_readers(&self) {
        lock(&self.shared).wake += 1;
        self.data.notify_all();
    }

    pub fn stats(&self) -> WalStats {
        let next_position = lock(&self.writer).next_pos;
        let sh = lock(&self.shared);
        WalStats {
            bytes: self.bytes.load(Ordering::Relaxed),
            segments: sh.segments.len(),
            next_position,
            durable_position: sh.durable_next,
            dropped_records: sh.dropped_records,
            dropped_segments: sh.dropped_segments,
            sinks: sh
                .sinks
                .iter()
                .map(|s| SinkStats {
                    name: s.name.clone(),
                    cursor: s.cursor,
                    lag: sh.durable_next.saturating_sub(s.cursor),
                    dropped_records: s.dropped,
                })
                .collect(),
        }
    }
}

impl fmt::Debug for Wal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.dir)
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}
