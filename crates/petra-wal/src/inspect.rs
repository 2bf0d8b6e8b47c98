//! `petra wal inspect DIR`: what is in a log directory, read-only, without taking the lock (so it
//! works beside a running Petra, whose unsynced tail then shows as a torn tail). It classifies
//! damage exactly as recovery would, using the same scan.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::WalError;
use crate::format::decode_cursor;
use crate::scan::{is_tail, last_valid_segment, records_lost, scan_segment};
use crate::wal::{cursor_name, list_dir, read_file, segment_name};

/// A log directory as found on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inspection {
    pub dir: PathBuf,
    pub segments: Vec<SegmentInfo>,
    pub cursors: Vec<CursorInfo>,
    pub bytes: u64,
    pub records: u64,
    /// The position after the last valid record (where appends would continue, cursors aside).
    pub end_position: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    pub name: String,
    /// From the file name.
    pub first_position: u64,
    pub last_position: Option<u64>,
    pub records: u64,
    pub bytes: u64,
    pub problems: Vec<Problem>,
}

/// Damage in a segment, and what recovery would do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// Bytes after the log's last valid record: recovery removes them.
    TornTail { offset: u64, bytes: u64 },
    /// Damage with valid records after it: recovery refuses unless `skip_corrupt` is set.
    Corrupt {
        offset: u64,
        bytes: u64,
        records: u64,
        reason: &'static str,
    },
    /// Another format version: recovery refuses.
    UnsupportedVersion(u32),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::TornTail { offset, bytes } => {
                write!(f, "torn tail: {bytes} bytes at {offset}")
            }
            Problem::Corrupt {
                offset,
                bytes,
                records,
                reason,
            } => write!(
                f,
                "CORRUPT at {offset}: {bytes} bytes, {records} records lost ({reason})"
            ),
            Problem::UnsupportedVersion(v) => write!(f, "format version {v} (unsupported)"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CursorInfo {
    pub sink: String,
    /// Every position below this is committed; `None` if the file is unreadable.
    pub next_position: Option<u64>,
    /// Records after the cursor up to the log's end.
    pub lag: Option<u64>,
    pub problem: Option<String>,
}

/// Reads the log in `dir` without changing anything.
pub fn inspect(dir: &Path) -> Result<Inspection, WalError> {
    let listing = list_dir(dir)?;
    let firsts = listing.segments;
    let mut buf = Vec::new();
    let mut scans = Vec::with_capacity(firsts.len());
    for (i, &first) in firsts.iter().enumerate() {
        read_file(&dir.join(segment_name(first)), &mut buf)?;
        scans.push(scan_segment(&buf, first, firsts.get(i + 1).copied()));
    }
    let last_valid = last_valid_segment(&scans);
    let mut segments = Vec::with_capacity(scans.len());
    for (i, s) in scans.iter().enumerate() {
        let mut problems: Vec<Problem> = s
            .bad
            .iter()
            .map(|r| {
                if is_tail(i, r, last_valid) {
                    Problem::TornTail {
                        offset: r.offset,
                        bytes: r.len,
                    }
                } else {
                    Problem::Corrupt {
                        offset: r.offset,
                        bytes: r.len,
                        records: records_lost(r, firsts.get(i + 1).copied()),
                        reason: r.reason,
                    }
                }
            })
            .collect();
        if let Some(v) = s.unsupported_version {
            problems.push(Problem::UnsupportedVersion(v));
        }
        segments.push(SegmentInfo {
            name: segment_name(firsts[i]),
            first_position: firsts[i],
            last_position: s.last_pos,
            records: s.records,
            bytes: s.len,
            problems,
        });
    }
    let end_position = last_valid
        .and_then(|l| scans[l].last_pos)
        .map(|p| p.saturating_add(1))
        .or(firsts.last().copied());
    let mut cursors = Vec::new();
    for sink in listing.cursors {
        read_file(&dir.join(cursor_name(&sink)), &mut buf)?;
        let (next_position, problem) = match decode_cursor(&buf) {
            Ok(c) => (Some(c), None),
            Err(e) => (None, Some(format!("corrupt cursor file: {e}"))),
        };
        cursors.push(CursorInfo {
            sink,
            next_position,
            lag: next_position.map(|c| end_position.unwrap_or(c).saturating_sub(c)),
            problem,
        });
    }
    Ok(Inspection {
        dir: dir.to_path_buf(),
        bytes: segments.iter().map(|s| s.bytes).sum(),
        records: segments.iter().map(|s| s.records).sum(),
        segments,
        cursors,
        end_position,
    })
}

impl fmt::Display for Inspection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "WAL {}: {} segments, {} records, {} bytes",
            self.dir.display(),
            self.segments.len(),
            self.records,
            self.bytes
        )?;
        writeln!(
            f,
            "{:<24} {:>20} {:>20} {:>10} {:>12}  problems",
            "segment", "first", "last", "records", "bytes"
        )?;
        for s in &self.segments {
            let last = s.last_position.map_or("-".to_string(), |p| p.to_string());
            let problems = if s.problems.is_empty() {
                "-".to_string()
            } else {
                s.problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            writeln!(
                f,
                "{:<24} {:>20} {:>20} {:>10} {:>12}  {}",
                s.name, s.first_position, last, s.records, s.bytes, problems
            )?;
        }
        if self.cursors.is_empty() {
            writeln!(f, "no cursors")?;
        } else {
            writeln!(f, "{:<24} {:>20} {:>12}  problems", "sink", "cursor", "lag")?;
            for c in &self.cursors {
                let next = c.next_position.map_or("-".to_string(), |p| p.to_string());
                let lag = c.lag.map_or("-".to_string(), |p| p.to_string());
                writeln!(
                    f,
                    "{:<24} {:>20} {:>12}  {}",
                    c.sink,
                    next,
                    lag,
                    c.problem.as_deref().unwrap_or("-")
                )?;
            }
        }
        Ok(())
    }
}
