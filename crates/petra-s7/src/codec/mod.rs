//! The S7 wire format: TPKT (RFC 1006) carrying COTP (ISO 8073 class 0) carrying S7comm.
//!
//! This module is the format specification; the code follows it. Every multi-byte integer is
//! big-endian. Every decoder takes one whole TPKT frame (as cut by [`frame_len`] /
//! [`next_frame`]) and returns a value or a [`CodecError`]; no input makes it panic.
//!
//! # TPKT (RFC 1006), 4 bytes
//!
//! | offset | size | field | value |
//! |---|---|---|---|
//! | 0 | 1 | version | `0x03` |
//! | 1 | 1 | reserved | `0x00` (not checked on decode) |
//! | 2 | 2 | length | whole frame including these 4 bytes; 7 ..= 65535 |
//!
//! # COTP (ISO 8073), after TPKT
//!
//! The first byte is the length indicator `LI`: the number of header bytes that follow it.
//!
//! **Connect request (CR, `0xE0`) and connect confirm (CC, `0xD0`)** — `LI` = 6 + parameters:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 1 | `LI` |
//! | 1 | 1 | TPDU code: `0xE0` CR / `0xD0` CC in the high nibble; the low nibble (credit) is ignored |
//! | 2 | 2 | destination reference (`0x0000` in a CR) |
//! | 4 | 2 | source reference |
//! | 6 | 1 | class and options: `0x00` (class 0) |
//! | 7 | … | parameters, each `code, length, value` |
//!
//! Parameters: `0xC0` TPDU size, 1 byte, size = 2^value (`0x0A` = 1024 bytes; 7 ..= 13);
//! `0xC1` calling (source) TSAP and `0xC2` called (destination) TSAP, 2 bytes each. Other
//! parameters are skipped on decode. The encoder writes them in the order C0, C1, C2.
//!
//! TSAPs: the local TSAP is `0x0100`; the remote TSAP addresses a CPU as
//! `connection type << 8 | rack * 32 + slot` (type 1 = PG, 2 = OP, 3 = S7 basic), so rack 0
//! slot 2 as PG is `0x0102`. Rack is 0 ..= 7 and slot 0 ..= 31 so that the low byte holds both.
//!
//! Golden CR, rack 0 slot 2, source reference 1, TPDU 1024:
//! `03 00 00 16 | 11 E0 00 00 00 01 00 | C0 01 0A | C1 02 01 00 | C2 02 01 02`.
//!
//! A disconnect request (DR, `0x80`: `LI, 0x80, dst-ref(2), src-ref(2), reason(1)`) received
//! instead of a CC decodes to [`CodecError::Disconnected`] with its reason byte.
//!
//! **Data (DT, `0xF0`)** — `LI` = 2: `02 F0 80`. The third byte is the TPDU number in bits 0..6
//! and EOT (last unit of the S7 PDU) in bit 7. The S7 PDU follows. We never send fragmented PDUs
//! (the S7 PDU size is negotiated below the TPDU size); a received DT without EOT is refused with
//! [`CodecError::Fragmented`] rather than reassembled.
//!
//! # S7comm PDU, after the DT header
//!
//! Header, 10 bytes for a job (ROSCTR 1), 12 bytes for an ack (2) or ack-data (3):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 1 | protocol id `0x32` |
//! | 1 | 1 | ROSCTR: `0x01` job, `0x02` ack, `0x03` ack-data |
//! | 2 | 2 | redundancy identification, `0x0000` (not checked on decode) |
//! | 4 | 2 | PDU reference: chosen by the requester, echoed in the response |
//! | 6 | 2 | parameter length `P` |
//! | 8 | 2 | data length `D` |
//! | 10 | 1 | (ack / ack-data only) error class: `0x00` none, `0x81` application relationship, `0x82` object definition, `0x83` no resources, `0x84` service processing, `0x85` supplies, `0x87` access |
//! | 11 | 1 | (ack / ack-data only) error code |
//!
//! Header + `P` + `D` must equal the bytes after the DT header exactly. An ack or ack-data with
//! a non-zero error class or code decodes to [`CodecError::Plc`] (carrying the PDU reference)
//! before anything else is checked; otherwise a response must be ack-data (3) and a request a
//! job (1), or the decoder returns [`CodecError::UnexpectedRosctr`].
//!
//! The negotiated PDU size bounds header + `P` + `D` of every PDU in both directions.
//!
//! ## Setup communication (function `0xF0`)
//!
//! Parameters (`P` = 8, `D` = 0), the same in job and ack-data:
//! `F0, 00, max AMQ calling (2), max AMQ called (2), PDU length (2)`. The ack-data carries the
//! negotiated values. Golden job, PDU reference 0, AMQ 1/1, PDU 480:
//! `03 00 00 19 | 02 F0 80 | 32 01 00 00 00 00 00 08 00 00 | F0 00 00 01 00 01 01 E0`.
//!
//! ## Read var (function `0x04`)
//!
//! Job parameters: `04, item count N (1..=255)`, then N items of 12 bytes; `D` = 0.
//!
//! | offset | size | item field |
//! |---|---|---|
//! | 0 | 1 | variable specification `0x12` |
//! | 1 | 1 | length of the rest `0x0A` |
//! | 2 | 1 | syntax id `0x10` (S7ANY) |
//! | 3 | 1 | transport size ([`TransportSize`]: `01` bit, `02` byte, `03` char, `04` word, `05` int, `06` dword, `07` dint, `08` real) |
//! | 4 | 2 | count (of transport-size units) |
//! | 6 | 2 | DB number (0 outside the DB area) |
//! | 8 | 1 | area ([`Area`]: `81` inputs, `82` outputs, `83` flags, `84` data blocks) |
//! | 9 | 3 | bit address: byte * 8 + bit, so byte <= 2,097,151 |
//!
//! Ack-data parameters: `04, N` (`P` = 2). Data: N items, each
//! `return code (1), data transport size (1), length (2), data, [pad]`:
//!
//! * return code ([`ReturnCode`]): `FF` success, `0A` object does not exist, `05` address out of
//!   range, `06` type not supported, `07` type inconsistent, `03` access denied, `01` hardware
//!   fault. A failed item is its 4-byte header alone: no data follows, whatever its transport
//!   size and length say (real CPUs send `00` and 0; the snap7 C server sends length 4), as
//!   Wireshark's dissector reads it.
//! * data transport size ([`DataTransport`]): `03` bit, `04` byte/word/dword, `05` integer
//!   (length counted in **bits**, data is ceil(length / 8) bytes); `06` dint, `07` real, `09`
//!   octet string (length in **bytes**); `00` null (length 0 expected).
//! * one zero pad byte follows an item whose data length is odd, except after the last item.
//!
//! ## Write var (function `0x05`)
//!
//! Job parameters: `05, N`, then N items exactly as in read var. Data: N items, each
//! `00 (reserved), data transport size, length, data, [pad]` with the same length units and
//! padding rule as a read response. We write bits as transport `01` / data `03` with length 1
//! and one data byte `00`/`01`, everything else as transport `02` / data `04` with length in bits.
//!
//! Ack-data parameters: `05, N` (`P` = 2). Data: N return codes, one byte each (`D` = N).

mod cotp;
mod pdu;

pub use cotp::{
    Connection, ConnectionType, DEFAULT_LOCAL_TSAP, DEFAULT_TPDU_SIZE, decode_connect_confirm,
    decode_connect_request, encode_connect_confirm, encode_connect_request, frame_len, next_frame,
};
pub use pdu::{
    Area, DataTransport, Message, ReadItem, ReturnCode, Setup, TransportSize, VarSpec, WriteItem,
    decode_read_request, decode_read_response, decode_setup_request, decode_setup_response,
    decode_write_request, decode_write_response, encode_read_request, encode_read_response,
    encode_setup_request, encode_setup_response, encode_write_request, encode_write_response,
};

/// Bytes of TPKT + COTP DT header in front of every S7 PDU.
pub const DT_OVERHEAD: usize = 7;
/// S7 header of a job.
pub const JOB_HEADER_LEN: usize = 10;
/// S7 header of an ack / ack-data (adds error class and code).
pub const ACK_HEADER_LEN: usize = 12;

/// Everything that can be wrong with a frame, on decode or (for out-of-range fields) encode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("TPKT version is {0:#04x}, expected 0x03: the peer does not speak ISO-on-TCP")]
    TpktVersion(u8),
    #[error("TPKT length {0} is below the minimum of 7 bytes")]
    TpktLength(usize),
    #[error("frame holds {actual} bytes but its TPKT header says {declared}")]
    FrameLength { declared: usize, actual: usize },
    #[error("frame ends inside the {0}")]
    Truncated(&'static str),
    #[error("{what} says {declared} bytes but {actual} are there")]
    Length {
        what: &'static str,
        declared: usize,
        actual: usize,
    },
    #[error("expected COTP TPDU {expected:#04x}, received {found:#04x}")]
    UnexpectedTpdu { expected: u8, found: u8 },
    #[error("the peer disconnected (COTP DR, reason {reason:#04x}); check rack/slot or TSAPs")]
    Disconnected { reason: u8 },
    #[error(
        "COTP data unit without end-of-transmission mark; fragmented S7 PDUs are not supported"
    )]
    Fragmented,
    #[error("malformed {0}")]
    Malformed(&'static str),
    #[error("protocol id {0:#04x} is not S7comm (0x32)")]
    ProtocolId(u8),
    #[error("expected S7 ROSCTR {expected:#04x}, received {found:#04x}")]
    UnexpectedRosctr { expected: u8, found: u8 },
    #[error("expected S7 function {expected:#04x}, received {found:#04x}")]
    UnexpectedFunction { expected: u8, found: u8 },
    #[error(
        "PLC refused request {pdu_ref}: error class {class:#04x} ({}), code {code:#04x}",
        error_class_name(*class)
    )]
    Plc { pdu_ref: u16, class: u8, code: u8 },
    #[error("unknown area {0:#04x}")]
    UnknownArea(u8),
    #[error("unknown transport size {0:#04x}")]
    UnknownTransportSize(u8),
    #[error("unknown data transport size {0:#04x}")]
    UnknownDataTransport(u8),
    #[error("cannot encode: {0}")]
    Encode(&'static str),
}

/// Names of the header error classes, for messages.
pub fn error_class_name(class: u8) -> &'static str {
    match class {
        0x00 => "no error",
        0x81 => "application relationship",
        0x82 => "object definition",
        0x83 => "no resources available",
        0x84 => "error on service processing",
        0x85 => "error on supplies",
        0x87 => "access error",
        _ => "unknown class",
    }
}

/// A bounds-checked reader over a byte slice; every read names what it was reading so a short
/// frame yields [`CodecError::Truncated`] saying where it ended.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], CodecError> {
        if n > self.buf.len() {
            return Err(CodecError::Truncated(what));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, CodecError> {
        let (&b, rest) = self.buf.split_first().ok_or(CodecError::Truncated(what))?;
        self.buf = rest;
        Ok(b)
    }

    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, CodecError> {
        match *self.take(2, what)? {
            [a, b] => Ok(u16::from_be_bytes([a, b])),
            _ => Err(CodecError::Truncated(what)),
        }
    }

    pub(crate) fn rest(&self) -> &'a [u8] {
        self.buf
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

/// `u16` from a length, or an encode error naming the field.
pub(crate) fn len_u16(n: usize, what: &'static str) -> Result<u16, CodecError> {
    u16::try_from(n).map_err(|_| CodecError::Encode(what))
}
