//! A sink's view of the log: reads synced records after its cursor in batches, commits the
//! cursor once the sink's target confirmed, and can block until more records are synced.
//!
//! A reader keeps its segment file open and reads it in large chunks, so a batch costs a few
//! system calls whatever its size, and records land in a reusable [`Batch`] without an
//! allocation per record. It reads only up to the synced length the writer published, never a
//! record that is not durable yet.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{WalError, io};
use crate::format::{Frame, HEADER_LEN, decode_frame};
use crate::wal::{Wal, lock};

/// Bytes read from a segment file per system call (grown for a larger record).
const READ_CHUNK: usize = 256 << 10;

/// Records read in one call: positions and payloads in one reusable buffer.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    data: Vec<u8>,
    /// (position, start, end) of each record in `data`.
    items: Vec<(u64, usize, usize)>,
}

impl Batch {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn clear(&mut self) {
        self.data.clear();
        self.items.clear();
    }

    /// The `i`-th record: its position and payload.
    pub fn get(&self, i: usize) -> Option<(u64, &[u8])> {
        let &(pos, a, z) = self.items.get(i)?;
        Some((pos, self.data.get(a..z)?))
    }

    /// Records in position order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (u64, &[u8])> + '_ {
        self.items
            .iter()
            .map(|&(pos, a, z)| (pos, self.data.get(a..z).unwrap_or_default()))
    }

    pub fn first_position(&self) -> Option<u64> {
        self.items.first().map(|i| i.0)
    }

    /// What to pass to [`Reader::commit`] once the batch is stored.
    pub fn last_position(&self) -> Option<u64> {
        self.items.last().map(|i| i.0)
    }

    fn push(&mut self, pos: u64, payload: &[u8]) {
        let a = self.data.len();
        self.data.extend_from_slice(payload);
        self.items.push((pos, a, self.data.len()));
    }
}

struct OpenSegment {
    first: u64,
    path: PathBuf,
    file: File,
    /// File offset of `buf[end]`.
    file_pos: u64,
}

/// The synced extent of the segment a reader is in, as published by the last sync.
struct View {
    synced_len: u64,
    sealed: bool,
    next_first: Option<u64>,
}

enum Stop {
    Full,
    SegmentEnd,
}

/// One sink's reader. Obtained from [`Wal::reader`]; owned by the sink's thread.
pub struct Reader {
    wal: Arc<Wal>,
    sink: usize,
    /// The next position to return.
    pos: u64,
    seg: Option<OpenSegment>,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// A peek (see [`Wal::peek`]): reads like the sink's reader, never commits.
    peek: bool,
}

impl Reader {
    pub(crate) fn new(wal: Arc<Wal>, sink: usize, pos: u64, peek: bool) -> Reader {
        Reader {
            wal,
            sink,
            pos,
            seg: None,
            buf: vec![0; READ_CHUNK],
            start: 0,
            end: 0,
            peek,
        }
    }

    /// The sink this reader serves.
    pub fn sink(&self) -> String {
        lock(&self.wal.shared).sinks[self.sink].name.clone()
    }

    /// The position the next read starts at: after the records already returned.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Every position below this is committed.
    pub fn cursor(&self) -> u64 {
        lock(&self.wal.shared).sinks[self.sink].cursor
    }

    /// Replaces `batch` by up to `max` synced records following the ones this reader returned
    /// last (at first: the cursor), in position order; returns how many. Reading does not move
    /// the cursor: call [`Reader::commit`] once the records are stored, or [`Reader::rewind`]
    /// to read them again. If the size cap dropped records this reader had not reached, it
    /// continues after them (see `SinkStats::dropped_records`). Positions have gaps only where
    /// records were dropped or skipped as corrupt.
    pub fn read(&mut self, max: usize, batch: &mut Batch) -> Result<usize, WalError> {
        batch.clear();
        while batch.len() < max {
            let Some(view) = self.locate()? else { break };
            match self.parse(&view, max, batch)? {
                Stop::Full => break,
                Stop::SegmentEnd => match view.next_first {
                    Some(n) if view.sealed => {
                        self.close();
                        self.pos = self.pos.max(n);
                    }
                    _ => break,
                },
            }
        }
        Ok(batch.len())
    }

    fn close(&mut self) {
        self.seg = None;
        self.start = 0;
        self.end = 0;
    }

    /// Finds (and opens, if needed) the segment holding `self.pos`, or `None` if nothing after
    /// it is synced yet. Files are opened under the lock, so a segment cannot be deleted between
    /// being found and being opened.
    fn locate(&mut self) -> Result<Option<View>, WalError> {
        let wal = Arc::clone(&self.wal);
        let sh = lock(&wal.shared);
        let cursor = sh.sinks[self.sink].cursor;
        if self.pos < cursor {
            // The size cap dropped records this reader had not read, or the cursor was committed
            // past them.
            self.pos = cursor;
            self.close();
        }
        if self.pos >= sh.durable_next {
            return Ok(None);
        }
        let segs = &sh.segments;
        let idx = match &self.seg {
            Some(o) => match segs.binary_search_by_key(&o.first, |s| s.first) {
                Ok(i) => Some(i),
                Err(_) => {
                    self.close();
                    None
                }
            },
            None => None,
        };
        let idx = match idx {
            Some(i) => i,
            None => {
                let i = segs
                    .partition_point(|s| s.first <= self.pos)
                    .saturating_sub(1);
                let Some(s) = segs.get(i) else {
                    return Ok(None);
                };
                self.pos = self.pos.max(s.first);
                let path = wal.seg_path(s.first);
                let mut file = File::open(&path).map_err(io("open", &path))?;
                file.seek(SeekFrom::Start(HEADER_LEN as u64))
                    .map_err(io("seek", &path))?;
                self.seg = Some(OpenSegment {
                    first: s.first,
                    path,
                    file,
                    file_pos: HEADER_LEN as u64,
                });
                self.start = 0;
                self.end = 0;
                i
            }
        };
        let s = &segs[idx];
        Ok(Some(View {
            synced_len: s.len,
            sealed: s.sealed,
            next_first: segs.get(idx + 1).map(|n| n.first),
        }))
    }

    /// Decodes records from the open segment into `batch`, reading more of the file as needed,
    /// up to the synced length.
    fn parse(&mut self, view: &View, max: usize, batch: &mut Batch) -> Result<Stop, WalError> {
        let Some(seg) = self.seg.as_mut() else {
            return Ok(Stop::SegmentEnd);
        };
        loop {
            if batch.len() >= max {
                return Ok(Stop::Full);
            }
            let offset = seg.file_pos - (self.end - self.start) as u64;
            let corrupt = |reason| WalError::CorruptRead {
                path: seg.path.clone(),
                offset,
                reason,
            };
            match decode_frame(&self.buf[self.start..self.end]) {
                Frame::Record { pos, payload, size } => {
                    // Records before the position are skipped: the reader is seeking.
                    if pos >= self.pos {
                        batch.push(pos, payload);
                        self.pos = pos.saturating_add(1);
                    }
                    self.start += size;
                }
                Frame::Bad(reason) => return Err(corrupt(reason)),
                Frame::Incomplete { need } => {
                    let synced_left = view.synced_len.saturating_sub(seg.file_pos);
                    if synced_left == 0 {
                        if self.start == self.end {
                            return Ok(Stop::SegmentEnd);
                        }
                        return Err(corrupt("record cut short at the synced end of the segment"));
                    }
                    let have = self.end - self.start;
                    if (need - have) as u64 > synced_left {
                        return Err(corrupt("record runs past the synced end of the segment"));
                    }
                    self.buf.copy_within(self.start..self.end, 0);
                    self.start = 0;
                    self.end = have;
                    if self.buf.len() < need {
                        self.buf.resize(need, 0);
                    }
                    let room = self.buf.len() - self.end;
                    let want = usize::try_from(synced_left).map_or(room, |l| l.min(room));
                    let n = seg
                        .file
                        .read(&mut self.buf[self.end..self.end + want])
                        .map_err(io("read", &seg.path))?;
                    if n == 0 {
                        return Err(corrupt("segment shorter than its synced length"));
                    }
                    self.end += n;
                    seg.file_pos += n as u64;
                }
            }
        }
    }

    /// Commits the cursor: every position up to and including `upto` is stored by the sink.
    /// Written atomically (temp file, fsync, rename, fsync of the directory) before it takes
    /// effect; segments every sink has passed are deleted. Committing a position at or below
    /// the cursor does nothing.
    pub fn commit(&mut self, upto: u64) -> Result<(), WalError> {
        if self.peek {
            return Err(WalError::Peek(self.sink()));
        }
        let next = upto.saturating_add(1);
        let name = {
            let sh = lock(&self.wal.shared);
            let s = &sh.sinks[self.sink];
            if next <= s.cursor {
                return Ok(());
            }
            if next > sh.durable_next {
                return Err(WalError::CommitBeyondDurable {
                    sink: s.name.clone(),
                    upto,
                    durable: sh.durable_next,
                });
            }
            s.name.clone()
        };
        self.wal.write_cursor(&name, next)?;
        let doomed = {
            let mut sh = lock(&self.wal.shared);
            let s = &mut sh.sinks[self.sink];
            s.cursor = s.cursor.max(next);
            self.wal.collect_retention(&mut sh)
        };
        self.wal.remove_files(doomed)
    }

    /// Goes back to the cursor: the next read returns the uncommitted records again (after a
    /// sink failed to store a batch it no longer holds).
    pub fn rewind(&mut self) {
        self.pos = self.cursor();
        self.close();
    }

    /// Blocks until records after the read position are synced (true), or `timeout` passed or
    /// [`Wal::wake_readers`] was called (false). Lets a sink thread idle without polling.
    pub fn wait(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut sh = lock(&self.wal.shared);
        let wake = sh.wake;
        loop {
            if sh.durable_next > self.pos || sh.sinks[self.sink].cursor > self.pos {
                return true;
            }
            let now = Instant::now();
            if sh.wake != wake || now >= deadline {
                return false;
            }
            sh = self
                .wal
                .data
                .wait_timeout(sh, deadline - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        if !self.peek {
            lock(&self.wal.shared).sinks[self.sink].claimed = false;
        }
    }
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("sink", &self.sink)
            .field("pos", &self.pos)
            .finish_non_exhaustive()
    }
}
