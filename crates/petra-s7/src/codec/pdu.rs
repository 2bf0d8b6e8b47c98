//! S7comm PDUs: header, setup communication, read var, write var (see [`crate::codec`]).

use std::fmt;

use super::cotp::{unwrap_dt, wrap_dt};
use super::{CodecError, Reader, len_u16};

const PROTOCOL_ID: u8 = 0x32;
const ROSCTR_JOB: u8 = 0x01;
const ROSCTR_ACK: u8 = 0x02;
const ROSCTR_ACK_DATA: u8 = 0x03;
const FN_SETUP: u8 = 0xF0;
const FN_READ: u8 = 0x04;
const FN_WRITE: u8 = 0x05;
const ITEM_SPEC: [u8; 3] = [0x12, 0x0A, 0x10];
const ITEM_LEN: usize = 12;
/// Largest bit address: 3 bytes on the wire.
const MAX_BIT_ADDRESS: u32 = 0xFF_FFFF;

/// Memory area of a variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Area {
    /// Process inputs (I, German E).
    Inputs,
    /// Process outputs (Q, German A).
    Outputs,
    /// Flags / bit memory (M).
    Flags,
    /// Data blocks (DB).
    DataBlock,
}

impl Area {
    pub fn code(self) -> u8 {
        match self {
            Area::Inputs => 0x81,
            Area::Outputs => 0x82,
            Area::Flags => 0x83,
            Area::DataBlock => 0x84,
        }
    }

    pub fn from_code(code: u8) -> Result<Self, CodecError> {
        Ok(match code {
            0x81 => Area::Inputs,
            0x82 => Area::Outputs,
            0x83 => Area::Flags,
            0x84 => Area::DataBlock,
            _ => return Err(CodecError::UnknownArea(code)),
        })
    }
}

/// Transport size of a request item: the unit of its `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportSize {
    Bit,
    Byte,
    Char,
    Word,
    Int,
    DWord,
    DInt,
    Real,
}

impl TransportSize {
    const ALL: [TransportSize; 8] = [
        Self::Bit,
        Self::Byte,
        Self::Char,
        Self::Word,
        Self::Int,
        Self::DWord,
        Self::DInt,
        Self::Real,
    ];

    /// Declaration order is wire order: `Bit` is 1 … `Real` is 8.
    pub fn code(self) -> u8 {
        self as u8 + 1
    }

    pub fn from_code(code: u8) -> Result<Self, CodecError> {
        Self::ALL
            .into_iter()
            .find(|t| t.code() == code)
            .ok_or(CodecError::UnknownTransportSize(code))
    }
}

/// Transport size of a data item; it says whether the length counts bits or bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataTransport {
    /// No data (failed items).
    Null,
    Bit,
    /// Byte, word and double word access.
    Byte,
    Int,
    DInt,
    Real,
    OctetString,
}

impl DataTransport {
    pub fn code(self) -> u8 {
        match self {
            DataTransport::Null => 0x00,
            DataTransport::Bit => 0x03,
            DataTransport::Byte => 0x04,
            DataTransport::Int => 0x05,
            DataTransport::DInt => 0x06,
            DataTransport::Real => 0x07,
            DataTransport::OctetString => 0x09,
        }
    }

    pub fn from_code(code: u8) -> Result<Self, CodecError> {
        Ok(match code {
            0x00 => DataTransport::Null,
            0x03 => DataTransport::Bit,
            0x04 => DataTransport::Byte,
            0x05 => DataTransport::Int,
            0x06 => DataTransport::DInt,
            0x07 => DataTransport::Real,
            0x09 => DataTransport::OctetString,
            _ => return Err(CodecError::UnknownDataTransport(code)),
        })
    }

    /// Whether the length field counts bits (else bytes).
    pub fn length_in_bits(self) -> bool {
        matches!(
            self,
            DataTransport::Bit | DataTransport::Byte | DataTransport::Int
        )
    }
}

/// Per-item return code of a read or write. Kept as the raw byte: PLCs send codes beyond the
/// documented ones, and the driver only needs "success or which failure".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReturnCode(pub u8);

impl ReturnCode {
    pub const RESERVED: ReturnCode = ReturnCode(0x00);
    pub const HARDWARE_FAULT: ReturnCode = ReturnCode(0x01);
    pub const ACCESS_DENIED: ReturnCode = ReturnCode(0x03);
    pub const ADDRESS_OUT_OF_RANGE: ReturnCode = ReturnCode(0x05);
    pub const TYPE_NOT_SUPPORTED: ReturnCode = ReturnCode(0x06);
    pub const TYPE_INCONSISTENT: ReturnCode = ReturnCode(0x07);
    pub const OBJECT_DOES_NOT_EXIST: ReturnCode = ReturnCode(0x0A);
    pub const SUCCESS: ReturnCode = ReturnCode(0xFF);

    /// One of the documented failure codes (every code but success and these is malformed).
    pub fn is_failure(self) -> bool {
        matches!(self.0, 0x00 | 0x01 | 0x03 | 0x05 | 0x06 | 0x07 | 0x0A)
    }

    pub fn is_success(self) -> bool {
        self == Self::SUCCESS
    }

    pub fn description(self) -> &'static str {
        match self.0 {
            0x00 => "reserved",
            0x01 => "hardware fault",
            0x03 => "access to the object not allowed",
            0x05 => "address out of range",
            0x06 => "data type not supported",
            0x07 => "data type inconsistent",
            0x0A => "object does not exist",
            0xFF => "success",
            _ => "unknown return code",
        }
    }
}

impl fmt::Display for ReturnCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#04x} ({})", self.0, self.description())
    }
}

/// One item of a read or write request: where and how much.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VarSpec {
    pub transport: TransportSize,
    /// Number of `transport` units.
    pub count: u16,
    /// DB number; 0 outside [`Area::DataBlock`].
    pub db: u16,
    pub area: Area,
    /// Byte offset; byte * 8 + bit must fit 24 bits.
    pub byte: u32,
    pub bit: u8,
}

impl VarSpec {
    /// `len` bytes from byte `start`.
    pub fn bytes(area: Area, db: u16, start: u32, len: u16) -> Self {
        VarSpec {
            transport: TransportSize::Byte,
            count: len,
            db,
            area,
            byte: start,
            bit: 0,
        }
    }

    /// One bit.
    pub fn bit(area: Area, db: u16, byte: u32, bit: u8) -> Self {
        VarSpec {
            transport: TransportSize::Bit,
            count: 1,
            db,
            area,
            byte,
            bit,
        }
    }

    fn put(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let address = self
            .byte
            .checked_mul(8)
            .and_then(|b| b.checked_add(u32::from(self.bit)))
            .filter(|&a| a <= MAX_BIT_ADDRESS && self.bit < 8)
            .ok_or(CodecError::Encode(
                "item address beyond byte 2097151 or bit above 7",
            ))?;
        out.extend_from_slice(&ITEM_SPEC);
        out.push(self.transport.code());
        out.extend_from_slice(&self.count.to_be_bytes());
        out.extend_from_slice(&self.db.to_be_bytes());
        out.push(self.area.code());
        out.extend_from_slice(&address.to_be_bytes()[1..]);
        Ok(())
    }

    fn take(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        if r.take(3, "item specification")? != ITEM_SPEC {
            return Err(CodecError::Malformed(
                "item specification (only S7ANY items are supported)",
            ));
        }
        let transport = TransportSize::from_code(r.u8("item transport size")?)?;
        let count = r.u16("item count")?;
        let db = r.u16("item DB number")?;
        let area = Area::from_code(r.u8("item area")?)?;
        let address = match *r.take(3, "item address")? {
            [a, b, c] => u32::from_be_bytes([0, a, b, c]),
            _ => return Err(CodecError::Truncated("item address")),
        };
        Ok(VarSpec {
            transport,
            count,
            db,
            area,
            byte: address >> 3,
            bit: (address & 7) as u8,
        })
    }
}

/// One item of a read response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadItem {
    pub code: ReturnCode,
    pub transport: DataTransport,
    pub data: Vec<u8>,
}

impl ReadItem {
    /// A successful byte read, as a CPU answers a [`TransportSize::Byte`] item.
    pub fn ok(data: Vec<u8>) -> Self {
        ReadItem {
            code: ReturnCode::SUCCESS,
            transport: DataTransport::Byte,
            data,
        }
    }

    /// A failed item, as a CPU sends it: no data.
    pub fn failed(code: ReturnCode) -> Self {
        ReadItem {
            code,
            transport: DataTransport::Null,
            data: Vec::new(),
        }
    }

    /// The data, or the return code of a failed item.
    pub fn result(&self) -> Result<&[u8], ReturnCode> {
        if self.code.is_success() {
            Ok(&self.data)
        } else {
            Err(self.code)
        }
    }
}

/// One item of a write request: where, and the data to put there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteItem {
    pub spec: VarSpec,
    pub transport: DataTransport,
    pub data: Vec<u8>,
}

impl WriteItem {
    /// Bytes from byte `start`. The length must fit the item count (u16).
    pub fn bytes(area: Area, db: u16, start: u32, data: Vec<u8>) -> Result<Self, CodecError> {
        let len = len_u16(data.len(), "write item longer than 65535 bytes")?;
        Ok(WriteItem {
            spec: VarSpec::bytes(area, db, start, len),
            transport: DataTransport::Byte,
            data,
        })
    }

    /// One bit; the other bits of its byte are left alone by the CPU.
    pub fn bit(area: Area, db: u16, byte: u32, bit: u8, value: bool) -> Self {
        WriteItem {
            spec: VarSpec::bit(area, db, byte, bit),
            transport: DataTransport::Bit,
            data: vec![u8::from(value)],
        }
    }
}

/// Setup communication parameters: proposed in the job, negotiated in the ack-data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Setup {
    pub max_amq_calling: u16,
    pub max_amq_called: u16,
    pub pdu_length: u16,
}

/// A decoded PDU with its reference, which the client compares with the one it sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<T> {
    pub pdu_ref: u16,
    pub body: T,
}

pub fn encode_setup_request(pdu_ref: u16, s: &Setup) -> Vec<u8> {
    // Eight parameter bytes: the frame length cannot overflow.
    encode_pdu(ROSCTR_JOB, pdu_ref, &setup_params(s), &[]).unwrap_or_default()
}

pub fn encode_setup_response(pdu_ref: u16, s: &Setup) -> Vec<u8> {
    encode_pdu(ROSCTR_ACK_DATA, pdu_ref, &setup_params(s), &[]).unwrap_or_default()
}

pub fn decode_setup_request(frame: &[u8]) -> Result<Message<Setup>, CodecError> {
    decode_setup(frame, ROSCTR_JOB)
}

/// The negotiated parameters; `body.pdu_length` bounds every later PDU.
pub fn decode_setup_response(frame: &[u8]) -> Result<Message<Setup>, CodecError> {
    decode_setup(frame, ROSCTR_ACK_DATA)
}

fn setup_params(s: &Setup) -> [u8; 8] {
    let [a, b] = s.max_amq_calling.to_be_bytes();
    let [c, d] = s.max_amq_called.to_be_bytes();
    let [e, f] = s.pdu_length.to_be_bytes();
    [FN_SETUP, 0, a, b, c, d, e, f]
}

fn decode_setup(frame: &[u8], rosctr: u8) -> Result<Message<Setup>, CodecError> {
    let pdu = decode_pdu(frame, rosctr)?;
    let mut r = function(pdu.params, FN_SETUP)?;
    expect_len("setup communication parameters", 8, pdu.params.len())?;
    expect_len("setup communication data", 0, pdu.data.len())?;
    r.u8("setup reserved byte")?;
    let body = Setup {
        max_amq_calling: r.u16("max AMQ calling")?,
        max_amq_called: r.u16("max AMQ called")?,
        pdu_length: r.u16("PDU length")?,
    };
    Ok(Message {
        pdu_ref: pdu.pdu_ref,
        body,
    })
}

/// A read var job; 1 to 255 items.
pub fn encode_read_request(pdu_ref: u16, items: &[VarSpec]) -> Result<Vec<u8>, CodecError> {
    let mut params = item_params(FN_READ, items.len())?;
    for item in items {
        item.put(&mut params)?;
    }
    encode_pdu(ROSCTR_JOB, pdu_ref, &params, &[])
}

pub fn decode_read_request(frame: &[u8]) -> Result<Message<Vec<VarSpec>>, CodecError> {
    let pdu = decode_pdu(frame, ROSCTR_JOB)?;
    let specs = take_specs(pdu.params, FN_READ)?;
    expect_len("read var request data", 0, pdu.data.len())?;
    Ok(Message {
        pdu_ref: pdu.pdu_ref,
        body: specs,
    })
}

pub fn encode_read_response(pdu_ref: u16, items: &[ReadItem]) -> Result<Vec<u8>, CodecError> {
    let params = item_params(FN_READ, items.len())?;
    let mut data = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let last = i + 1 == items.len();
        if item.code.is_success() {
            put_data_item(&mut data, item.code.0, item.transport, &item.data, last)?;
        } else {
            // A failed item is its header alone.
            data.extend_from_slice(&[item.code.0, 0, 0, 0]);
        }
    }
    encode_pdu(ROSCTR_ACK_DATA, pdu_ref, &params, &data)
}

/// The per-item results of a read, in request order. The caller checks that the reference
/// and the item count match its request.
pub fn decode_read_response(frame: &[u8]) -> Result<Message<Vec<ReadItem>>, CodecError> {
    let pdu = decode_pdu(frame, ROSCTR_ACK_DATA)?;
    let n = response_count(pdu.params, FN_READ)?;
    let mut r = Reader::new(pdu.data);
    let mut items = Vec::with_capacity(n.min(pdu.data.len() / 4));
    for i in 0..n {
        match r.rest().first().map(|&c| ReturnCode(c)) {
            Some(ReturnCode::SUCCESS) | None => {}
            Some(code) if code.is_failure() => {
                // A failed item is its 4-byte header alone, whatever its length field says.
                r.take(4, "data item header")?;
                items.push(ReadItem::failed(code));
                continue;
            }
            Some(_) => return Err(CodecError::Malformed("read item return code")),
        }
        let (code, transport, data) = take_data_item(&mut r, i + 1 == n)?;
        items.push(ReadItem {
            code: ReturnCode(code),
            transport,
            data: data.to_vec(),
        });
    }
    no_trailing("read var response data", &r, pdu.data.len())?;
    Ok(Message {
        pdu_ref: pdu.pdu_ref,
        body: items,
    })
}

/// A write var job; 1 to 255 items.
pub fn encode_write_request(pdu_ref: u16, items: &[WriteItem]) -> Result<Vec<u8>, CodecError> {
    let mut params = item_params(FN_WRITE, items.len())?;
    let mut data = Vec::new();
    for (i, item) in items.iter().enumerate() {
        item.spec.put(&mut params)?;
        put_data_item(
            &mut data,
            0,
            item.transport,
            &item.data,
            i + 1 == items.len(),
        )?;
    }
    encode_pdu(ROSCTR_JOB, pdu_ref, &params, &data)
}

pub fn decode_write_request(frame: &[u8]) -> Result<Message<Vec<WriteItem>>, CodecError> {
    let pdu = decode_pdu(frame, ROSCTR_JOB)?;
    let specs = take_specs(pdu.params, FN_WRITE)?;
    let mut r = Reader::new(pdu.data);
    let mut items = Vec::with_capacity(specs.len());
    for (i, spec) in specs.iter().enumerate() {
        let (_reserved, transport, data) = take_data_item(&mut r, i + 1 == specs.len())?;
        items.push(WriteItem {
            spec: *spec,
            transport,
            data: data.to_vec(),
        });
    }
    no_trailing("write var request data", &r, pdu.data.len())?;
    Ok(Message {
        pdu_ref: pdu.pdu_ref,
        body: items,
    })
}

pub fn encode_write_response(pdu_ref: u16, codes: &[ReturnCode]) -> Result<Vec<u8>, CodecError> {
    let params = item_params(FN_WRITE, codes.len())?;
    let data: Vec<u8> = codes.iter().map(|c| c.0).collect();
    encode_pdu(ROSCTR_ACK_DATA, pdu_ref, &params, &data)
}

/// One return code per item, in request order.
pub fn decode_write_response(frame: &[u8]) -> Result<Message<Vec<ReturnCode>>, CodecError> {
    let pdu = decode_pdu(frame, ROSCTR_ACK_DATA)?;
    let n = response_count(pdu.params, FN_WRITE)?;
    expect_len("write var response data", n, pdu.data.len())?;
    Ok(Message {
        pdu_ref: pdu.pdu_ref,
        body: pdu.data.iter().map(|&c| ReturnCode(c)).collect(),
    })
}

struct Pdu<'a> {
    pdu_ref: u16,
    params: &'a [u8],
    data: &'a [u8],
}

fn encode_pdu(rosctr: u8, pdu_ref: u16, params: &[u8], data: &[u8]) -> Result<Vec<u8>, CodecError> {
    let mut pdu = Vec::with_capacity(12 + params.len() + data.len());
    pdu.extend_from_slice(&[PROTOCOL_ID, rosctr, 0, 0]);
    pdu.extend_from_slice(&pdu_ref.to_be_bytes());
    pdu.extend_from_slice(
        &len_u16(params.len(), "parameters longer than 65535 bytes")?.to_be_bytes(),
    );
    pdu.extend_from_slice(&len_u16(data.len(), "data longer than 65535 bytes")?.to_be_bytes());
    if rosctr != ROSCTR_JOB {
        pdu.extend_from_slice(&[0, 0]); // error class and code: none
    }
    pdu.extend_from_slice(params);
    pdu.extend_from_slice(data);
    wrap_dt(&pdu)
}

fn decode_pdu(frame: &[u8], rosctr: u8) -> Result<Pdu<'_>, CodecError> {
    let mut r = Reader::new(unwrap_dt(frame)?);
    let id = r.u8("S7 header")?;
    if id != PROTOCOL_ID {
        return Err(CodecError::ProtocolId(id));
    }
    let found = r.u8("S7 header")?;
    r.take(2, "S7 header")?;
    let pdu_ref = r.u16("S7 header")?;
    let plen = usize::from(r.u16("S7 header")?);
    let dlen = usize::from(r.u16("S7 header")?);
    if found == ROSCTR_ACK || found == ROSCTR_ACK_DATA {
        let class = r.u8("S7 header error class")?;
        let code = r.u8("S7 header error code")?;
        // Checked before anything else: an error response may carry no parameters at all.
        if class != 0 || code != 0 {
            return Err(CodecError::Plc {
                pdu_ref,
                class,
                code,
            });
        }
    }
    if found != rosctr {
        return Err(CodecError::UnexpectedRosctr {
            expected: rosctr,
            found,
        });
    }
    let rest = r.rest();
    expect_len("S7 parameter and data length", plen + dlen, rest.len())?;
    let (params, data) = rest.split_at(plen.min(rest.len()));
    Ok(Pdu {
        pdu_ref,
        params,
        data,
    })
}

/// A reader positioned after the function byte, which must be `expected`.
fn function(params: &[u8], expected: u8) -> Result<Reader<'_>, CodecError> {
    let mut r = Reader::new(params);
    let found = r.u8("S7 function")?;
    if found != expected {
        return Err(CodecError::UnexpectedFunction { expected, found });
    }
    Ok(r)
}

fn item_params(function: u8, n: usize) -> Result<Vec<u8>, CodecError> {
    let count = u8::try_from(n)
        .ok()
        .filter(|&c| c > 0)
        .ok_or(CodecError::Encode("a request carries 1 to 255 items"))?;
    let mut params = Vec::with_capacity(2 + ITEM_LEN * n);
    params.extend_from_slice(&[function, count]);
    Ok(params)
}

fn take_specs(params: &[u8], fun: u8) -> Result<Vec<VarSpec>, CodecError> {
    let mut r = function(params, fun)?;
    let n = usize::from(r.u8("item count")?);
    expect_len("item parameters", n * ITEM_LEN, r.rest().len())?;
    (0..n).map(|_| VarSpec::take(&mut r)).collect()
}

fn response_count(params: &[u8], fun: u8) -> Result<usize, CodecError> {
    let mut r = function(params, fun)?;
    let n = usize::from(r.u8("item count")?);
    expect_len("response parameters", 2, params.len())?;
    Ok(n)
}

fn put_data_item(
    out: &mut Vec<u8>,
    first: u8,
    transport: DataTransport,
    data: &[u8],
    last: bool,
) -> Result<(), CodecError> {
    let len = match transport {
        DataTransport::Bit if data.len() == 1 => 1,
        DataTransport::Bit => return Err(CodecError::Encode("a bit item holds exactly one byte")),
        t if t.length_in_bits() => data
            .len()
            .checked_mul(8)
            .and_then(|bits| u16::try_from(bits).ok())
            .ok_or(CodecError::Encode("data item longer than 8191 bytes"))?,
        _ => len_u16(data.len(), "data item longer than 65535 bytes")?,
    };
    out.extend_from_slice(&[first, transport.code()]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(data);
    if data.len() % 2 == 1 && !last {
        out.push(0);
    }
    Ok(())
}

/// `(first byte, transport, data)` of one data item, skipping its pad byte.
fn take_data_item<'a>(
    r: &mut Reader<'a>,
    last: bool,
) -> Result<(u8, DataTransport, &'a [u8]), CodecError> {
    let first = r.u8("data item header")?;
    let transport = DataTransport::from_code(r.u8("data item header")?)?;
    let len = usize::from(r.u16("data item header")?);
    let bytes = if transport.length_in_bits() {
        len.div_ceil(8)
    } else {
        len
    };
    let data = r.take(bytes, "data item")?;
    if bytes % 2 == 1 && !last {
        r.u8("data item pad byte")?;
    }
    Ok((first, transport, data))
}

fn expect_len(what: &'static str, declared: usize, actual: usize) -> Result<(), CodecError> {
    if declared == actual {
        Ok(())
    } else {
        Err(CodecError::Length {
            what,
            declared,
            actual,
        })
    }
}

fn no_trailing(what: &'static str, r: &Reader<'_>, total: usize) -> Result<(), CodecError> {
    let left = r.rest().len();
    expect_len(what, total.saturating_sub(left), total)
}
