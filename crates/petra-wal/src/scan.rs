//! Checking segments: which bytes are valid records and which are not, and whether damage is a
//! torn tail or corruption. Pure functions over bytes, shared by recovery (which acts on the
//! verdict) and `inspect` (which only reports it), so the two can never disagree.

use crate::format::{FRAME_HEADER_LEN, HEADER_LEN, HeaderProblem, decode_header};

/// A run of bytes in a segment that holds no valid record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BadRegion {
    pub offset: u64,
    pub len: u64,
    /// Why the first bytes of the region were rejected.
    pub reason: &'static str,
    /// The smallest position a record lost in the region could have had.
    pub expected: u64,
    /// The position of the valid record right after the region, if one follows in this segment.
    pub resume: Option<u64>,
}

/// What one segment holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct SegScan {
    /// A well-formed header of another format version: nothing else was looked at.
    pub unsupported_version: Option<u32>,
    pub records: u64,
    pub first_pos: Option<u64>,
    pub last_pos: Option<u64>,
    /// The offset just after the last valid record (the header's end if there is none).
    pub valid_end: u64,
    pub len: u64,
    /// In file order; a damaged header is a region at offset 0.
    pub bad: Vec<BadRegion>,
}

impl SegScan {
    /// The byte ranges of valid records (after the header), in order: what a repair keeps.
    pub fn valid_ranges(&self) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut at = HEADER_LEN as u64;
        for b in &self.bad {
            let start = b.offset.max(HEADER_LEN as u64);
            if start > at {
                out.push((at, start));
            }
            at = at.max(b.offset.saturating_add(b.len));
        }
        if self.valid_end > at {
            out.push((at, self.valid_end));
        }
        out
    }
}

/// Tries the frame at `off`: its position must lie in `[lower, upper)`, and while resynchronising
/// after `gap` damaged bytes, it cannot be further from `lower` than the records that fit in the
/// gap — cheap checks first so that a scan over garbage costs little more than reading it.
fn frame_at(
    b: &[u8],
    off: usize,
    lower: u64,
    upper: Option<u64>,
    gap: Option<usize>,
) -> Result<(u64, usize), &'static str> {
    let rest = b.get(off..).unwrap_or_default();
    if rest.len() < FRAME_HEADER_LEN {
        return Err("incomplete record header");
    }
    let crc = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
    let len = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
    let mut p = [0u8; 8];
    p.copy_from_slice(&rest[8..16]);
    let pos = u64::from_le_bytes(p);
    if pos < lower {
        return Err("record position out of order");
    }
    if upper.is_some_and(|u| pos >= u) {
        return Err("record position beyond the next segment's first");
    }
    if let Some(gap) = gap
        && pos - lower > (gap / FRAME_HEADER_LEN) as u64
    {
        return Err("implausible position");
    }
    let size = usize::try_from(len)
        .ok()
        .and_then(|l| l.checked_add(FRAME_HEADER_LEN))
        .filter(|s| *s <= rest.len())
        .ok_or("record runs past the end of the file")?;
    if crc32fast::hash(&rest[4..size]) != crc {
        return Err("record CRC mismatch");
    }
    Ok((pos, size))
}

/// Scans one segment file's bytes. `first` is the position in its name (and header); records in
/// it must have positions in `[first, upper)`, `upper` being the next segment's first position.
pub(crate) fn scan_segment(bytes: &[u8], first: u64, upper: Option<u64>) -> SegScan {
    let mut s = SegScan {
        len: bytes.len() as u64,
        valid_end: HEADER_LEN as u64,
        ..SegScan::default()
    };
    let mut open: Option<(usize, &'static str)> = None;
    match decode_header(bytes, first) {
        Ok(()) => {}
        Err(HeaderProblem::Version(v)) => {
            s.unsupported_version = Some(v);
            return s;
        }
        Err(HeaderProblem::Truncated(n)) => {
            s.valid_end = 0;
            s.bad.push(BadRegion {
                offset: 0,
                len: n as u64,
                reason: "truncated segment header",
                expected: first,
                resume: None,
            });
            return s;
        }
        Err(HeaderProblem::Corrupt(reason)) => open = Some((0, reason)),
    }
    let mut lower = first;
    let mut off = HEADER_LEN;
    while off < bytes.len() {
        let gap = open.map(|(start, _)| off - start);
        match frame_at(bytes, off, lower, upper, gap) {
            Ok((pos, size)) => {
                if let Some((start, reason)) = open.take() {
                    s.bad.push(BadRegion {
                        offset: start as u64,
                        len: (off - start) as u64,
                        reason,
                        expected: lower,
                        resume: Some(pos),
                    });
                }
                s.records += 1;
                s.first_pos.get_or_insert(pos);
                s.last_pos = Some(pos);
                lower = pos.saturating_add(1);
                off += size;
                s.valid_end = off as u64;
            }
            Err(reason) => {
                if open.is_none() {
                    open = Some((off, reason));
                }
                // Resynchronise byte by byte: the frame's length field may be the damaged part.
                off += 1;
            }
        }
    }
    if let Some((start, reason)) = open {
        s.bad.push(BadRegion {
            offset: start as u64,
            len: (bytes.len() - start) as u64,
            reason,
            expected: lower,
            resume: None,
        });
    }
    s
}

/// Where the log's last valid record is: recovery keeps everything up to it, and damage after it
/// is a torn tail (a crash while writing); damage before it is corruption.
pub(crate) fn last_valid_segment(scans: &[SegScan]) -> Option<usize> {
    scans.iter().rposition(|s| s.records > 0)
}

/// Whether the bad region `r` of segment `i` lies after the log's last valid record.
pub(crate) fn is_tail(i: usize, r: &BadRegion, last_valid: Option<usize>) -> bool {
    match last_valid {
        None => true,
        Some(l) => i > l || (i == l && r.resume.is_none()),
    }
}

/// How many positions a corrupt region loses: up to the next valid record, or to the next
/// segment's first position when the region runs to the end of its segment.
pub(crate) fn records_lost(r: &BadRegion, next_first: Option<u64>) -> u64 {
    r.resume
        .or(next_first)
        .map_or(0, |n| n.saturating_sub(r.expected))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{append_frame, encode_header};
    use proptest::prelude::*;

    fn segment(first: u64, n: u64) -> Vec<u8> {
        let mut b = encode_header(first).to_vec();
        for p in first..first + n {
            append_frame(&mut b, p, format!("record {p}").as_bytes());
        }
        b
    }

    #[test]
    fn clean_segment() {
        let b = segment(10, 5);
        let s = scan_segment(&b, 10, Some(15));
        assert_eq!(
            (s.records, s.first_pos, s.last_pos),
            (5, Some(10), Some(14))
        );
        assert_eq!(s.valid_end, b.len() as u64);
        assert!(s.bad.is_empty());
        assert_eq!(s.valid_ranges(), vec![(HEADER_LEN as u64, b.len() as u64)]);
    }

    #[test]
    fn damaged_middle_record_resyncs() {
        let mut b = segment(1, 5);
        let second = HEADER_LEN + FRAME_HEADER_LEN + 8;
        b[second + 5] ^= 0xff; // the length field of record 2
        let s = scan_segment(&b, 1, None);
        assert_eq!(s.records, 4);
        assert_eq!(s.bad.len(), 1);
        assert_eq!(s.bad[0].offset, second as u64);
        assert_eq!((s.bad[0].expected, s.bad[0].resume), (2, Some(3)));
        assert_eq!(records_lost(&s.bad[0], None), 1);
        assert_eq!(
            s.valid_ranges(),
            vec![
                (HEADER_LEN as u64, second as u64),
                (second as u64 + 24, b.len() as u64)
            ]
        );
    }

    #[test]
    fn torn_end() {
        let b = segment(1, 3);
        let s = scan_segment(&b[..b.len() - 3], 1, None);
        assert_eq!(s.records, 2);
        assert_eq!(s.bad.len(), 1);
        assert_eq!(s.bad[0].resume, None);
        assert!(is_tail(
            0,
            &s.bad[0],
            last_valid_segment(std::slice::from_ref(&s))
        ));
    }

    #[test]
    fn damaged_header_followed_by_records() {
        let mut b = segment(1, 2);
        b[2] = b'X';
        let s = scan_segment(&b, 1, None);
        assert_eq!(s.records, 2);
        assert_eq!(s.bad[0].offset, 0);
        assert_eq!(s.bad[0].resume, Some(1));
    }

    proptest! {
        #[test]
        fn scan_is_total_and_consistent(
            mut b in proptest::collection::vec(any::<u8>(), 0..400),
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
            n in 0u64..8,
        ) {
            // Random garbage, and valid segments with random damage.
            let _ = scan_segment(&b, 1, None);
            b = segment(1, n);
            for (at, x) in flips {
                if !b.is_empty() {
                    let i = at % b.len();
                    b[i] ^= x;
                }
            }
            let s = scan_segment(&b, 1, Some(1 + n));
            prop_assert!(s.records <= n);
            let kept: u64 = s.valid_ranges().iter().map(|(a, z)| z - a).sum();
            let bad: u64 = s.bad.iter().map(|r| r.len).sum();
            prop_assert!(kept + bad <= s.len);
        }
    }
}
