//! One stored sample, and its encoding as a WAL record.
//!
//! # Record format (little-endian), version 1
//!
//! | size | field |
//! |---|---|
//! | 1 | version `1` |
//! | 8 | `ts_ms`: milliseconds since the Unix epoch, UTC (i64) |
//! | 1 | quality: 0 good, 1 uncertain, 2 bad |
//! | 1 | kind: 0 number (`value` follows), 1 text (`text` follows) |
//! | 8 | kind 0: `value` (f64; bools are 0/1, ints converted) |
//! | 2 + n | kind 1: text length (u16) and UTF-8 bytes |
//! | 2 + n | signal name length (u16) and UTF-8 bytes |
//!
//! The WAL adds its own framing and CRC; [`decode`] still refuses anything malformed.

use std::sync::Arc;

/// A sample as the sinks store it (spec section 6: `signal`, `ts`, `value`, `quality`; string
/// signals carry `text` and no `value`).
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub signal: Arc<str>,
    pub ts_ms: i64,
    /// The value as a number: floats, ints, bools as 0/1. `None` for string signals.
    pub value: Option<f64>,
    /// The value of a string signal.
    pub text: Option<Arc<str>>,
    /// `good`, `uncertain` or `bad`.
    pub quality: &'static str,
    /// The WAL position of the record: unique and increasing, the key that makes a retried
    /// insert idempotent.
    pub seq: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RowError {
    #[error("malformed history record: {0}")]
    Malformed(&'static str),
}

const VERSION: u8 = 1;
const QUALITIES: [&str; 3] = ["good", "uncertain", "bad"];

/// Appends the record of `row` (without `seq`, which is the record's WAL position) to `out`.
pub fn encode(row: &Row, out: &mut Vec<u8>) {
    out.push(VERSION);
    out.extend_from_slice(&row.ts_ms.to_le_bytes());
    out.push(
        QUALITIES
            .iter()
            .position(|q| *q == row.quality)
            .unwrap_or(2) as u8,
    );
    match (&row.text, row.value) {
        (Some(t), _) => {
            out.push(1);
            put_str(out, t);
        }
        (None, v) => {
            out.push(0);
            out.extend_from_slice(&v.unwrap_or(f64::NAN).to_le_bytes());
        }
    }
    put_str(out, &row.signal);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let b = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
    out.extend_from_slice(&(b.len() as u16).to_le_bytes());
    out.extend_from_slice(b);
}

/// The row of a record at WAL position `seq`.
pub fn decode(rec: &[u8], seq: u64) -> Result<Row, RowError> {
    let mut r = Reader(rec);
    if r.take(1, "version")? != [VERSION] {
        return Err(RowError::Malformed("version"));
    }
    let ts_ms = i64::from_le_bytes(r.array("time")?);
    let quality = *QUALITIES
        .get(usize::from(r.take(1, "quality")?[0]))
        .ok_or(RowError::Malformed("quality"))?;
    let (value, text) = match r.take(1, "kind")?[0] {
        0 => (Some(f64::from_le_bytes(r.array("value")?)), None),
        1 => (None, Some(r.string("text")?)),
        _ => return Err(RowError::Malformed("kind")),
    };
    let signal = r.string("signal")?;
    if !r.0.is_empty() {
        return Err(RowError::Malformed("trailing bytes"));
    }
    Ok(Row {
        signal,
        ts_ms,
        value,
        text,
        quality,
        seq,
    })
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], RowError> {
        if self.0.len() < n {
            return Err(RowError::Malformed(what));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], RowError> {
        self.take(N, what)?
            .try_into()
            .map_err(|_| RowError::Malformed(what))
    }

    fn string(&mut self, what: &'static str) -> Result<Arc<str>, RowError> {
        let n = u16::from_le_bytes(self.array(what)?);
        std::str::from_utf8(self.take(usize::from(n), what)?)
            .map(Arc::from)
            .map_err(|_| RowError::Malformed(what))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_and_garbage_is_refused() {
        let rows = [
            Row {
                signal: "tank.level".into(),
                ts_ms: 1_764_860_400_000,
                value: Some(2.5),
                text: None,
                quality: "good",
                seq: 7,
            },
            Row {
                signal: "batch".into(),
                ts_ms: -1,
                value: None,
                text: Some("Grüße".into()),
                quality: "bad",
                seq: 8,
            },
        ];
        for row in rows {
            let mut buf = Vec::new();
            encode(&row, &mut buf);
            assert_eq!(decode(&buf, row.seq), Ok(row.clone()));
            for cut in 0..buf.len() {
                assert!(decode(&buf[..cut], 0).is_err());
            }
        }
        assert!(decode(&[2, 0, 0], 0).is_err());
    }
}
