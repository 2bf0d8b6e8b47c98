//! The on-disk encodings (segment header, record frame, cursor file) as pure, total functions:
//! any byte string decodes to a value or a typed problem, never a panic. The layout is specified
//! in the crate documentation; this module is its only implementation, shared by the writer, the
//! readers, recovery and `inspect`.

/// First bytes of every segment file.
pub(crate) const SEGMENT_MAGIC: [u8; 8] = *b"PETRAWAL";
/// First bytes of every cursor file.
pub(crate) const CURSOR_MAGIC: [u8; 8] = *b"PETRACUR";
/// The only format version this build reads and writes (segments and cursors).
pub(crate) const VERSION: u32 = 1;
/// Bytes of a segment header: magic, version, flags, first position, CRC.
pub(crate) const HEADER_LEN: usize = 28;
/// Bytes of a record frame before its payload: CRC, length, position.
pub(crate) const FRAME_HEADER_LEN: usize = 16;
/// Bytes of a cursor file: magic, version, next position, CRC.
pub(crate) const CURSOR_LEN: usize = 24;

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    let s = b.get(at..at.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Some(u64::from_le_bytes(a))
}

/// The header of a segment whose first record will have position `first`.
pub(crate) fn encode_header(first: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..8].copy_from_slice(&SEGMENT_MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    // 12..16: flags, zero in version 1.
    h[16..24].copy_from_slice(&first.to_le_bytes());
    let crc = crc32fast::hash(&h[0..24]);
    h[24..28].copy_from_slice(&crc.to_le_bytes());
    h
}

/// What is wrong with a segment header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum HeaderProblem {
    /// The file is shorter than a header (a crash while the segment was being created).
    Truncated(usize),
    /// Magic, CRC, flags or first position do not check out.
    Corrupt(&'static str),
    /// A well-formed header of another format version: never skipped, whatever the options.
    Version(u32),
}

/// Checks the header at the start of `bytes` against the position in the file's name.
pub(crate) fn decode_header(bytes: &[u8], name_first: u64) -> Result<(), HeaderProblem> {
    let Some(h) = bytes.get(..HEADER_LEN) else {
        return Err(HeaderProblem::Truncated(bytes.len()));
    };
    if h[0..8] != SEGMENT_MAGIC {
        return Err(HeaderProblem::Corrupt("bad magic bytes"));
    }
    if u32_at(h, 24) != Some(crc32fast::hash(&h[0..24])) {
        return Err(HeaderProblem::Corrupt("header CRC mismatch"));
    }
    let version = u32_at(h, 8).unwrap_or(0);
    if version != VERSION {
        return Err(HeaderProblem::Version(version));
    }
    if u32_at(h, 12) != Some(0) {
        return Err(HeaderProblem::Corrupt("unknown header flags"));
    }
    if u64_at(h, 16) != Some(name_first) {
        return Err(HeaderProblem::Corrupt(
            "first position in the header differs from the file name",
        ));
    }
    Ok(())
}

/// Appends the frame of one record to `buf`: no allocation beyond `buf`'s growth.
pub(crate) fn append_frame(buf: &mut Vec<u8>, pos: u64, payload: &[u8]) {
    let start = buf.len();
    // Callers bound the payload length (segment size, at most u32::MAX); saturate rather than
    // panic if that ever changes, the CRC would then reject the frame on read.
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    buf.extend_from_slice(&[0u8; 4]);
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&pos.to_le_bytes());
    buf.extend_from_slice(payload);
    let crc = crc32fast::hash(&buf[start + 4..]);
    buf[start..start + 4].copy_from_slice(&crc.to_le_bytes());
}

/// The outcome of decoding the frame at the start of a byte slice.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Frame<'a> {
    /// A whole, CRC-checked record of `size` bytes (frame header included).
    Record {
        pos: u64,
        payload: &'a [u8],
        size: usize,
    },
    /// The slice ends before the frame does; `need` is the frame's whole size when known (else
    /// the header size).
    Incomplete { need: usize },
    /// The bytes are not a valid frame.
    Bad(&'static str),
}

/// Decodes the frame at the start of `b`.
pub(crate) fn decode_frame(b: &[u8]) -> Frame<'_> {
    let (Some(crc), Some(len), Some(pos)) = (u32_at(b, 0), u32_at(b, 4), u64_at(b, 8)) else {
        return Frame::Incomplete {
            need: FRAME_HEADER_LEN,
        };
    };
    let Some(size) = usize::try_from(len)
        .ok()
        .and_then(|l| l.checked_add(FRAME_HEADER_LEN))
    else {
        return Frame::Bad("length does not fit in memory");
    };
    let Some(frame) = b.get(..size) else {
        return Frame::Incomplete { need: size };
    };
    if crc32fast::hash(&frame[4..]) != crc {
        return Frame::Bad("record CRC mismatch");
    }
    Frame::Record {
        pos,
        payload: &frame[FRAME_HEADER_LEN..],
        size,
    }
}

/// The content of the cursor file saying that every position below `next` is committed.
pub(crate) fn encode_cursor(next: u64) -> [u8; CURSOR_LEN] {
    let mut c = [0u8; CURSOR_LEN];
    c[0..8].copy_from_slice(&CURSOR_MAGIC);
    c[8..12].copy_from_slice(&VERSION.to_le_bytes());
    c[12..20].copy_from_slice(&next.to_le_bytes());
    let crc = crc32fast::hash(&c[0..20]);
    c[20..24].copy_from_slice(&crc.to_le_bytes());
    c
}

/// The `next` position of a cursor file, or what is wrong with it.
pub(crate) fn decode_cursor(b: &[u8]) -> Result<u64, &'static str> {
    if b.len() != CURSOR_LEN {
        return Err("wrong length");
    }
    if b[0..8] != CURSOR_MAGIC {
        return Err("bad magic bytes");
    }
    if u32_at(b, 20) != Some(crc32fast::hash(&b[0..20])) {
        return Err("CRC mismatch");
    }
    if u32_at(b, 8) != Some(VERSION) {
        return Err("unsupported version");
    }
    u64_at(b, 12).ok_or("wrong length")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn header_round_trip_and_checks() {
        let h = encode_header(42);
        assert_eq!(decode_header(&h, 42), Ok(()));
        assert!(matches!(
            decode_header(&h, 43),
            Err(HeaderProblem::Corrupt(_))
        ));
        assert_eq!(
            decode_header(&h[..10], 42),
            Err(HeaderProblem::Truncated(10))
        );
        let mut v2 = h;
        v2[8] = 2;
        let crc = crc32fast::hash(&v2[0..24]);
        v2[24..28].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(decode_header(&v2, 42), Err(HeaderProblem::Version(2)));
    }

    #[test]
    fn frame_round_trip() {
        let mut buf = Vec::new();
        append_frame(&mut buf, 7, b"hello");
        append_frame(&mut buf, 8, b"");
        match decode_frame(&buf) {
            Frame::Record { pos, payload, size } => {
                assert_eq!((pos, payload, size), (7, &b"hello"[..], 21));
                assert_eq!(
                    decode_frame(&buf[size..]),
                    Frame::Record {
                        pos: 8,
                        payload: b"",
                        size: 16
                    }
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(decode_frame(&buf[..20]), Frame::Incomplete { need: 21 });
        assert_eq!(decode_frame(&buf[..3]), Frame::Incomplete { need: 16 });
        buf[17] ^= 1;
        assert!(matches!(decode_frame(&buf), Frame::Bad(_)));
    }

    #[test]
    fn cursor_round_trip() {
        assert_eq!(decode_cursor(&encode_cursor(99)), Ok(99));
        let mut c = encode_cursor(99);
        c[13] ^= 4;
        assert!(decode_cursor(&c).is_err());
        assert!(decode_cursor(&c[..5]).is_err());
    }

    proptest! {
        #[test]
        fn decoders_are_total(bytes in proptest::collection::vec(any::<u8>(), 0..200), first in any::<u64>()) {
            let _ = decode_header(&bytes, first);
            let _ = decode_frame(&bytes);
            let _ = decode_cursor(&bytes);
        }

        #[test]
        fn frames_round_trip(payload in proptest::collection::vec(any::<u8>(), 0..300), pos in any::<u64>()) {
            let mut buf = Vec::new();
            append_frame(&mut buf, pos, &payload);
            prop_assert_eq!(decode_frame(&buf), Frame::Record { pos, payload: &payload, size: buf.len() });
        }
    }
}
