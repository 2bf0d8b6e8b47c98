//! TPKT framing and the COTP connect / data units (see the module docs of [`crate::codec`]).

use super::{CodecError, DT_OVERHEAD, Reader, len_u16};

const TPKT_VERSION: u8 = 0x03;
const TPKT_HEADER_LEN: usize = 4;
const TPDU_CR: u8 = 0xE0;
const TPDU_CC: u8 = 0xD0;
const TPDU_DR: u8 = 0x80;
const TPDU_DT: u8 = 0xF0;
const EOT: u8 = 0x80;
const PARAM_TPDU_SIZE: u8 = 0xC0;
const PARAM_CALLING_TSAP: u8 = 0xC1;
const PARAM_CALLED_TSAP: u8 = 0xC2;

/// The TSAP a client presents as its own.
pub const DEFAULT_LOCAL_TSAP: u16 = 0x0100;
/// TPDU size code we propose: 2^10 = 1024 bytes, above any S7 PDU size a CPU negotiates.
pub const DEFAULT_TPDU_SIZE: u8 = 0x0A;

/// How many bytes the frame at the start of `buf` has, once its 4-byte TPKT header is there.
///
/// `Ok(None)`: fewer than 4 bytes, read more. `Ok(Some(n))`: the frame is `n` bytes long (the
/// caller reads until it holds `n`). A wrong version or a length below 7 is an error: the
/// stream is out of step and the connection must be dropped.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, CodecError> {
    if let Some(&v) = buf.first()
        && v != TPKT_VERSION
    {
        return Err(CodecError::TpktVersion(v));
    }
    let Some(&[_, _, hi, lo]) = buf.first_chunk::<TPKT_HEADER_LEN>() else {
        return Ok(None);
    };
    let len = usize::from(u16::from_be_bytes([hi, lo]));
    if len < DT_OVERHEAD {
        return Err(CodecError::TpktLength(len));
    }
    Ok(Some(len))
}

/// The first whole frame in `buf`, or `Ok(None)` if more bytes are needed.
pub fn next_frame(buf: &[u8]) -> Result<Option<&[u8]>, CodecError> {
    Ok(frame_len(buf)?.and_then(|n| buf.get(..n)))
}

/// The bytes after the TPKT header of one whole frame.
fn tpkt_payload(frame: &[u8]) -> Result<&[u8], CodecError> {
    let declared = frame_len(frame)?.ok_or(CodecError::Truncated("TPKT header"))?;
    if declared != frame.len() {
        return Err(CodecError::FrameLength {
            declared,
            actual: frame.len(),
        });
    }
    Ok(frame.get(TPKT_HEADER_LEN..).unwrap_or_default())
}

fn tpkt(body: &[u8]) -> Result<Vec<u8>, CodecError> {
    let len = len_u16(
        TPKT_HEADER_LEN + body.len(),
        "frame longer than 65535 bytes",
    )?;
    let mut out = Vec::with_capacity(usize::from(len));
    out.extend_from_slice(&[TPKT_VERSION, 0]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(body);
    Ok(out)
}

/// Wraps an S7 PDU in TPKT and a single COTP DT unit with EOT.
pub(crate) fn wrap_dt(pdu: &[u8]) -> Result<Vec<u8>, CodecError> {
    let mut body = Vec::with_capacity(3 + pdu.len());
    body.extend_from_slice(&[2, TPDU_DT, EOT]);
    body.extend_from_slice(pdu);
    tpkt(&body)
}

/// The S7 PDU inside one whole TPKT + COTP DT frame.
pub(crate) fn unwrap_dt(frame: &[u8]) -> Result<&[u8], CodecError> {
    let mut r = Reader::new(tpkt_payload(frame)?);
    let li = r.u8("COTP length indicator")?;
    let mut h = Reader::new(r.take(usize::from(li), "COTP header")?);
    let code = h.u8("COTP TPDU code")?;
    if code & 0xF0 == TPDU_DR {
        return Err(disconnect(&mut h));
    }
    if code != TPDU_DT {
        return Err(CodecError::UnexpectedTpdu {
            expected: TPDU_DT,
            found: code,
        });
    }
    let nr = h.u8("COTP DT header")?;
    if !h.is_empty() {
        return Err(CodecError::Malformed("COTP DT header"));
    }
    if nr & EOT == 0 {
        return Err(CodecError::Fragmented);
    }
    Ok(r.rest())
}

/// A DR's reason, read after its code; a DR cut short still reports the disconnect.
fn disconnect(h: &mut Reader<'_>) -> CodecError {
    let reason = h
        .take(4, "COTP DR")
        .and_then(|_| h.u8("COTP DR reason"))
        .unwrap_or(0);
    CodecError::Disconnected { reason }
}

/// Connection type, the high byte of the remote TSAP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionType {
    /// Programming device: what engineering tools use; every CPU offers it.
    Pg = 1,
    /// Operator panel.
    Op = 2,
    /// S7 basic communication.
    Basic = 3,
}

/// The fields of a COTP connect request or confirm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub dst_ref: u16,
    pub src_ref: u16,
    /// TPDU size code (parameter `0xC0`): the unit is 2^code bytes.
    pub tpdu_size: Option<u8>,
    /// Calling (source) TSAP, parameter `0xC1`.
    pub calling_tsap: Option<u16>,
    /// Called (destination) TSAP, parameter `0xC2`.
    pub called_tsap: Option<u16>,
}

impl Connection {
    /// A connect request with explicit TSAPs.
    pub fn request(local_tsap: u16, remote_tsap: u16) -> Self {
        Connection {
            dst_ref: 0,
            src_ref: 1,
            tpdu_size: Some(DEFAULT_TPDU_SIZE),
            calling_tsap: Some(local_tsap),
            called_tsap: Some(remote_tsap),
        }
    }

    /// A connect request to the CPU in `rack`/`slot`, from [`DEFAULT_LOCAL_TSAP`].
    pub fn rack_slot(kind: ConnectionType, rack: u8, slot: u8) -> Result<Self, CodecError> {
        Ok(Self::request(
            DEFAULT_LOCAL_TSAP,
            Self::remote_tsap(kind, rack, slot)?,
        ))
    }

    /// `kind << 8 | rack * 32 + slot`; rack 0..=7 and slot 0..=31 so both fit the low byte.
    pub fn remote_tsap(kind: ConnectionType, rack: u8, slot: u8) -> Result<u16, CodecError> {
        if rack > 7 || slot > 31 {
            return Err(CodecError::Encode("rack must be 0..=7 and slot 0..=31"));
        }
        Ok(((kind as u16) << 8) | (u16::from(rack) * 32 + u16::from(slot)))
    }

    /// The TPDU size in bytes, if it was given and is a valid code.
    pub fn tpdu_bytes(&self) -> Option<usize> {
        self.tpdu_size
            .filter(|c| (7..=13).contains(c))
            .map(|c| 1 << c)
    }
}

pub fn encode_connect_request(c: &Connection) -> Vec<u8> {
    encode_connect(TPDU_CR, c)
}

pub fn encode_connect_confirm(c: &Connection) -> Vec<u8> {
    encode_connect(TPDU_CC, c)
}

pub fn decode_connect_request(frame: &[u8]) -> Result<Connection, CodecError> {
    decode_connect(TPDU_CR, frame)
}

/// Decodes the CPU's answer to a connect request; a DR becomes [`CodecError::Disconnected`].
pub fn decode_connect_confirm(frame: &[u8]) -> Result<Connection, CodecError> {
    decode_connect(TPDU_CC, frame)
}

fn encode_connect(code: u8, c: &Connection) -> Vec<u8> {
    let mut params = Vec::with_capacity(11);
    if let Some(size) = c.tpdu_size {
        params.extend_from_slice(&[PARAM_TPDU_SIZE, 1, size]);
    }
    for (p, tsap) in [
        (PARAM_CALLING_TSAP, c.calling_tsap),
        (PARAM_CALLED_TSAP, c.called_tsap),
    ] {
        if let Some(t) = tsap {
            params.extend_from_slice(&[p, 2]);
            params.extend_from_slice(&t.to_be_bytes());
        }
    }
    // At most 6 + 11 bytes follow the length indicator, so neither length can overflow.
    let mut body = vec![6 + params.len() as u8, code];
    body.extend_from_slice(&c.dst_ref.to_be_bytes());
    body.extend_from_slice(&c.src_ref.to_be_bytes());
    body.push(0);
    body.extend_from_slice(&params);
    // 4 + 18 bytes at most: the length always fits, the fallback is unreachable.
    tpkt(&body).unwrap_or_default()
}

fn decode_connect(expected: u8, frame: &[u8]) -> Result<Connection, CodecError> {
    let payload = tpkt_payload(frame)?;
    let mut r = Reader::new(payload);
    let li = usize::from(r.u8("COTP length indicator")?);
    if li + 1 != payload.len() {
        return Err(CodecError::Length {
            what: "COTP length indicator",
            declared: li,
            actual: payload.len().saturating_sub(1),
        });
    }
    let code = r.u8("COTP TPDU code")?;
    if code & 0xF0 == TPDU_DR {
        return Err(disconnect(&mut r));
    }
    if code & 0xF0 != expected {
        return Err(CodecError::UnexpectedTpdu {
            expected,
            found: code,
        });
    }
    let dst_ref = r.u16("COTP destination reference")?;
    let src_ref = r.u16("COTP source reference")?;
    r.u8("COTP class")?;
    let mut c = Connection {
        dst_ref,
        src_ref,
        tpdu_size: None,
        calling_tsap: None,
        called_tsap: None,
    };
    while !r.is_empty() {
        let p = r.u8("COTP parameter code")?;
        let len = r.u8("COTP parameter length")?;
        let value = r.take(usize::from(len), "COTP parameter value")?;
        match (p, value) {
            (PARAM_TPDU_SIZE, &[size]) if (7..=13).contains(&size) => c.tpdu_size = Some(size),
            (PARAM_TPDU_SIZE, _) => return Err(CodecError::Malformed("COTP TPDU size parameter")),
            (PARAM_CALLING_TSAP, &[a, b]) => c.calling_tsap = Some(u16::from_be_bytes([a, b])),
            (PARAM_CALLED_TSAP, &[a, b]) => c.called_tsap = Some(u16::from_be_bytes([a, b])),
            (PARAM_CALLING_TSAP | PARAM_CALLED_TSAP, _) => {
                return Err(CodecError::Malformed("COTP TSAP parameter (not 2 bytes)"));
            }
            _ => {} // other parameters (checksum, options) carry nothing we use
        }
    }
    Ok(c)
}
