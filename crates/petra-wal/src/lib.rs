//! Petra's write-ahead log: the one durable queue between the history sampler and the history
//! sinks. The sampler appends opaque records; each sink (Parquet, ClickHouse) reads them behind
//! its own cursor and commits the cursor only once its target confirmed, so a sink that is down
//! costs disk, not data. This documentation is the format specification.
//!
//! # Use
//!
//! ```no_run
//! # use petra_wal::{Batch, Wal, WalOptions};
//! # use std::time::Duration;
//! # fn main() -> Result<(), petra_wal::WalError> {
//! let (wal, recovery) = Wal::open("/var/lib/petra/wal".as_ref(), WalOptions::default(), &["parquet"])?;
//! if !recovery.is_clean() { eprintln!("WAL recovery: {recovery}"); }
//!
//! // Writer thread: append (buffered, cheap), sync every fsync interval (group commit).
//! let pos = wal.append(b"record")?;
//! wal.sync()?;
//!
//! // A sink thread: read after the cursor, store, commit.
//! let mut reader = wal.reader("parquet")?;
//! let mut batch = Batch::new();
//! if reader.read(10_000, &mut batch)? == 0 { reader.wait(Duration::from_millis(100)); }
//! for (position, payload) in batch.iter() { /* store; `position` is the idempotency key */ }
//! if let Some(last) = batch.last_position() { reader.commit(last)?; }
//! # let _ = pos; Ok(()) }
//! ```
//!
//! - [`Wal::append`] assigns the record its **position**: a `u64`, unique and increasing, stable
//!   across restarts (stored in the record), never reused — downstream uses it as an idempotency
//!   key. Positions start at 1 in a new log. Appends copy the record into a buffer; the buffer is
//!   written in chunks of about 1 MiB; nothing is fsynced until [`Wal::sync`].
//! - [`Wal::sync`] is the group commit: it writes the buffer, fdatasyncs the segments written
//!   since the last sync (and the directory if a segment was created), and only then makes the
//!   records visible to readers. Only synced records are durable, and only synced records are
//!   ever read. Appends from another thread are not blocked during the fsync itself.
//! - [`Wal::reader`] gives a sink its [`Reader`] (one per sink at a time): [`Reader::read`]
//!   fills a reusable [`Batch`], [`Reader::commit`] persists the cursor, [`Reader::wait`] blocks
//!   until more records are synced, [`Reader::rewind`] re-reads uncommitted records.
//! - [`Wal::stats`] gives bytes on disk, per-sink lag and drop counters; [`inspect`] reads a
//!   directory without opening it, for `petra wal inspect DIR`.
//! - Dropping the [`Wal`] (and its readers) without [`Wal::sync`] is a crash: unsynced records
//!   may or may not survive. Call `sync` before a clean shutdown.
//!
//! # Directory
//!
//! | file | what |
//! |---|---|
//! | `NNNNNNNNNNNNNNNNNNNN.wal` | a segment; the name is its first position, 20 decimal digits, so names sort in position order |
//! | `SINK.cursor` | the cursor of sink `SINK` (`A-Z a-z 0-9 _ -`, 1–64 characters) |
//! | `*.tmp` | an atomic replace in progress; deleted by `open` |
//! | `wal.lock` | held with an exclusive file lock while a [`Wal`] is open: one writer per directory |
//!
//! All integers are little-endian. CRCs are CRC-32 (IEEE 802.3, as in zlib and PNG).
//!
//! # Segment
//!
//! A header, then records back to back. A segment holds positions in `[first, next segment's
//! first)`; positions within it increase, with gaps only where records were skipped as corrupt.
//! A new segment is started when the next record would make the active one exceed
//! `segment_size`; the writer never goes back to an older segment.
//!
//! Header, 28 bytes:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `PETRAWAL` |
//! | 8 | 4 | format version, `1` |
//! | 12 | 4 | flags, `0` |
//! | 16 | 8 | first position (equal to the file name) |
//! | 24 | 4 | CRC of bytes 0–23 |
//!
//! Record frame, 16 bytes plus the payload:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | CRC of bytes 4 to the end of the payload (length, position, payload) |
//! | 4 | 4 | payload length `n` |
//! | 8 | 8 | position |
//! | 16 | n | payload (opaque to the WAL) |
//!
//! Storing the position in each record (8 bytes) keeps positions stable when damage is skipped,
//! and lets a scan find the next valid record after damage: a candidate must have a position in
//! the range still possible and a matching CRC.
//!
//! # Cursor file
//!
//! 24 bytes: magic `PETRACUR` (8), version `1` (4), next position (8): every position below it
//! is committed, CRC of bytes 0–19 (4). Replaced atomically: written to `SINK.cursor.tmp`,
//! fsynced, renamed over `SINK.cursor`, directory fsynced.
//!
//! # Recovery (what `open` does)
//!
//! `open` reads and checks every segment (the whole backlog: about a second per GB from a cold
//! disk), then:
//!
//! - **Torn tail.** Damage after the log's last valid record — a partial record, a bad CRC or
//!   garbage at the end, a segment shorter than its header, segment files after the last valid
//!   record — is what a crash in the middle of a write leaves. It is cut off (truncate, or delete
//!   the later files; a log with no valid record keeps its newest segment, reset to its header,
//!   so the position sequence goes on) and reported in [`Recovery::torn_tail`]. The records lost
//!   were never synced, so never visible to any sink.
//! - **Corruption.** Damage followed by a valid record (in the same segment or a later one):
//!   synced data was damaged after the fact. `open` fails with [`WalError::Corrupt`] naming the
//!   segment and byte offset. With `skip_corrupt: true` the segment is rewritten (atomically)
//!   without the damaged bytes, a segment with no valid record left is deleted, and each region is
//!   reported in [`Recovery::skipped`] with the positions lost; the records after it keep their
//!   positions.
//! - **Another format version** in a valid header: [`WalError::UnsupportedVersion`], always.
//! - **Cursors.** A declared sink without a cursor file starts at the oldest retained record
//!   (never at the end: a new or restored sink gets the backlog), reported in
//!   [`Recovery::missing_cursors`]. A corrupt cursor file fails `open` with
//!   [`WalError::CorruptCursor`], or with `skip_corrupt` is treated like a missing one. A cursor
//!   before the oldest retained record is moved to it and reported. Cursor files of undeclared
//!   sinks are left alone and hold nothing back. New or moved cursors are written before `open`
//!   returns.
//! - **Positions** continue after the last valid record, and never below a cursor (positions a
//!   sink committed are not handed out again even if their records were deleted from outside).
//! - Everything kept is fsynced before readers can see it (a killed process's last writes may
//!   have been only in the page cache).
//!
//! A kill (SIGKILL) at any moment leaves at most a torn tail: segments are only appended to, in
//! order, and a new segment is created only after the previous one's last bytes were written.
//! After a power loss, the unsynced end of the log can come back with holes if the file system
//! writes pages out of order; damage there that is followed by valid records is then reported
//! as corruption, and `skip_corrupt` opens the log at the cost of those (unsynced) records.
//!
//! # Retention and the size cap
//!
//! A sealed segment is deleted once every declared sink's cursor is past it (with no sink
//! declared, as soon as it is synced); the segment being written is never deleted. When starting
//! a new segment would bring the log over `max_size` (counting a full new segment), the oldest
//! sealed segments are deleted even if a sink has not committed them: the records lost are
//! counted ([`WalStats::dropped_records`], per sink in [`SinkStats::dropped_records`]) for Petra
//! to raise an alarm, and the lagging cursors move to the first retained record. The cap holds
//! for synced segments; segments written since the last sync are never deleted.

mod error;
mod format;
mod inspect;
mod reader;
mod scan;
mod wal;

pub use error::WalError;
pub use inspect::{CursorInfo, Inspection, Problem, SegmentInfo, inspect};
pub use reader::{Batch, Reader};
pub use wal::{Recovery, SinkStats, Skipped, TornTail, Wal, WalOptions, WalStats};
