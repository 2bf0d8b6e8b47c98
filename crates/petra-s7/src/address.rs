//! S7 addresses, data types and value conversion, as a point is written in the configuration.
//!
//! # Address syntax (case-insensitive, surrounding blanks ignored)
//!
//! | form | meaning | width |
//! |---|---|---|
//! | `DBn.DBXb.x` | data block *n*, byte *b*, bit *x* | bit |
//! | `DBn.DBBb` / `DBn.DBWb` / `DBn.DBDb` | data block *n*, from byte *b* | byte / word / double word |
//! | `Mb.x`, `MBb`, `MWb`, `MDb` | flags | bit / byte / word / double word |
//! | `Ib.x`, `IBb`, `IWb`, `IDb` (German `E…`) | inputs | same |
//! | `Qb.x`, `QBb`, `QWb`, `QDb` (German `A…`) | outputs | same |
//!
//! *n* is 1 ..= 65535, *b* 0 ..= 2,097,151 (the 24-bit bit address of the protocol), *x* 0 ..= 7.
//!
//! # Types
//!
//! BOOL needs a bit address; BYTE and CHAR a byte address; WORD and INT a word address; DWORD,
//! DINT and REAL a double-word address. LREAL (8 bytes), STRING and every array (`count`) start
//! at a byte address (`DB2.DBB10`), because S7 has no mnemonic for their width.
//!
//! An S7 STRING with declared length *n* occupies *n* + 2 bytes: the declared length, the
//! actual length, then *n* characters (one byte each, read as Latin-1). `length` in the
//! configuration is the declared length *n*, 1 ..= 254. Arrays of BOOL and of STRING are refused:
//! S7 packs the former into bits and aligns the latter, so their layout is not a plain repeat.
//!
//! All numbers are big-endian; REAL is IEEE 754 single, LREAL double precision.

use std::fmt;
use std::str::FromStr;

use crate::codec::Area;
use crate::planner::{Range, Write};

/// Largest byte offset: the protocol's bit address has 24 bits.
pub const MAX_BYTE: u32 = 0x1F_FFFF;
/// Largest number of bytes one variable may span (one item of a request carries a u16 count).
pub const MAX_VARIABLE_LEN: u32 = u16::MAX as u32;

/// Errors in an address, a type, or a value conversion; each message names the offending
/// input and what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error(
        "`{input}` is not an S7 address: {problem}; write e.g. DB1.DBX0.0, DB1.DBW2, M10.1, MW10, I0.1, QB1"
    )]
    Syntax {
        input: String,
        problem: &'static str,
    },
    #[error("`{input}`: {problem}")]
    OutOfRange {
        input: String,
        problem: &'static str,
    },
    #[error(
        "unknown S7 type `{0}`; expected BOOL, BYTE, CHAR, WORD, INT, DWORD, DINT, REAL, LREAL or STRING"
    )]
    UnknownType(String),
    #[error("{0}")]
    Length(&'static str),
    #[error("`count` must be 1 to 65535, got {0}")]
    Count(u32),
    #[error("type {ty} does not fit `{address}`: {hint}")]
    TypeMismatch {
        address: String,
        ty: String,
        hint: &'static str,
    },
    #[error("{ty} at `{address}` spans {len} bytes, beyond {problem}")]
    TooLong {
        address: String,
        ty: String,
        len: u64,
        problem: &'static str,
    },
    #[error("{ty} at `{address}`: expected {expected} bytes, got {got}")]
    DataLength {
        address: String,
        ty: String,
        expected: usize,
        got: usize,
    },
    #[error(
        "STRING at `{address}` holds {actual} characters but `length` is {length}; set `length` to the declared length of the string in the PLC"
    )]
    StringActual {
        address: String,
        actual: u8,
        length: u8,
    },
    #[error("cannot write {value} to {ty} at `{address}`: {problem}")]
    Value {
        address: String,
        ty: String,
        value: String,
        problem: &'static str,
    },
}

/// How many bits an address names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Width {
    Bit,
    Byte,
    Word,
    DWord,
}

/// A parsed S7 address. `bit` is `Some` exactly when `width` is [`Width::Bit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Address {
    pub area: Area,
    /// DB number; 0 outside [`Area::DataBlock`].
    pub db: u16,
    pub byte: u32,
    pub bit: Option<u8>,
    pub width: Width,
}

impl Address {
    pub fn parse(input: &str) -> Result<Self, AddressError> {
        let upper = input.trim().to_ascii_uppercase();
        let mut p = Cursor {
            rest: upper.as_bytes(),
            input,
        };
        let (area, db) = if p.eat(b"DB") {
            let db = p.number("a DB number must follow `DB`")?;
            if !(1..=u64::from(u16::MAX)).contains(&db) {
                return Err(p.range("DB numbers run from 1 to 65535"));
            }
            if !p.eat(b".DB") {
                return Err(p.syntax("`.DBX`, `.DBB`, `.DBW` or `.DBD` must follow the DB number"));
            }
            (Area::DataBlock, db as u16)
        } else {
            let area = match p.next() {
                Some(b'I' | b'E') => Area::Inputs,
                Some(b'Q' | b'A') => Area::Outputs,
                Some(b'M') => Area::Flags,
                _ => return Err(p.syntax("it must start with DB, I, E, Q, A or M")),
            };
            (area, 0)
        };
        let width = match p.rest.first() {
            Some(b'X') if area == Area::DataBlock => Width::Bit,
            Some(d) if d.is_ascii_digit() && area != Area::DataBlock => Width::Bit,
            Some(b'B') => Width::Byte,
            Some(b'W') => Width::Word,
            Some(b'D') => Width::DWord,
            _ if area == Area::DataBlock => {
                return Err(p.syntax("the access must be DBX (bit), DBB, DBW or DBD"));
            }
            _ => {
                return Err(
                    p.syntax("a bit address (M10.1) or B, W, D (MB10) must follow the area")
                );
            }
        };
        if !p.rest.first().is_some_and(u8::is_ascii_digit) {
            p.next(); // the width letter
        }
        let byte = p.number("a byte offset is missing")?;
        if byte > u64::from(MAX_BYTE) {
            return Err(p.range("byte offsets run from 0 to 2097151"));
        }
        let bit = if width == Width::Bit {
            if !p.eat(b".") {
                return Err(p.syntax("a bit address needs `.bit` after the byte, e.g. DB1.DBX0.3"));
            }
            let bit = p.number("a bit number (0 to 7) must follow the `.`")?;
            if bit > 7 {
                return Err(p.range("bits are numbered 0 to 7"));
            }
            Some(bit as u8)
        } else {
            None
        };
        if !p.rest.is_empty() {
            let problem = if p.rest.first() == Some(&b'.') && width != Width::Bit {
                "only bit addresses (DBX, M10.1) take a bit number"
            } else {
                "unexpected characters at the end"
            };
            return Err(p.syntax(problem));
        }
        Ok(Address {
            area,
            db,
            byte: byte as u32,
            bit,
            width,
        })
    }
}

impl FromStr for Address {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Address::parse(s)
    }
}

impl fmt::Display for Address {
    /// The canonical, English spelling: `DB1.DBX0.0`, `MW10`, `I0.1`, `QB1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let letter = match self.width {
            Width::Bit => "",
            Width::Byte => "B",
            Width::Word => "W",
            Width::DWord => "D",
        };
        match self.area {
            Area::DataBlock => {
                let letter = if letter.is_empty() { "X" } else { letter };
                write!(f, "DB{}.DB{letter}{}", self.db, self.byte)?;
            }
            Area::Inputs => write!(f, "I{letter}{}", self.byte)?,
            Area::Outputs => write!(f, "Q{letter}{}", self.byte)?,
            Area::Flags => write!(f, "M{letter}{}", self.byte)?,
        }
        match self.bit {
            Some(bit) => write!(f, ".{bit}"),
            None => Ok(()),
        }
    }
}

/// Over the upper-cased input; errors quote the input as the user wrote it.
struct Cursor<'a> {
    rest: &'a [u8],
    input: &'a str,
}

impl Cursor<'_> {
    fn eat(&mut self, prefix: &[u8]) -> bool {
        match self.rest.strip_prefix(prefix) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        }
    }

    fn next(&mut self) -> Option<u8> {
        let (&b, rest) = self.rest.split_first()?;
        self.rest = rest;
        Some(b)
    }

    /// Decimal digits; saturates, so an absurdly long number is reported as out of range.
    fn number(&mut self, missing: &'static str) -> Result<u64, AddressError> {
        let digits = self.rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            return Err(self.syntax(missing));
        }
        let (num, rest) = self.rest.split_at(digits);
        self.rest = rest;
        Ok(num.iter().fold(0u64, |acc, d| {
            acc.saturating_mul(10).saturating_add(u64::from(d - b'0'))
        }))
    }

    fn syntax(&self, problem: &'static str) -> AddressError {
        AddressError::Syntax {
            input: self.input.to_string(),
            problem,
        }
    }

    fn range(&self, problem: &'static str) -> AddressError {
        AddressError::OutOfRange {
            input: self.input.to_string(),
            problem,
        }
    }
}

/// The S7 data type of a point (`type:` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataType {
    Bool,
    Byte,
    Char,
    Word,
    Int,
    DWord,
    DInt,
    Real,
    LReal,
    /// S7 STRING with its declared length (1 ..= 254 characters).
    String {
        length: u8,
    },
}

impl DataType {
    /// From the configured name and `length` (which only STRING takes, and requires).
    pub fn parse(name: &str, length: Option<u32>) -> Result<Self, AddressError> {
        let ty = match name.trim().to_ascii_uppercase().as_str() {
            "BOOL" => DataType::Bool,
            "BYTE" => DataType::Byte,
            "CHAR" => DataType::Char,
            "WORD" => DataType::Word,
            "INT" => DataType::Int,
            "DWORD" => DataType::DWord,
            "DINT" => DataType::DInt,
            "REAL" => DataType::Real,
            "LREAL" => DataType::LReal,
            "STRING" => {
                return match length.and_then(|l| u8::try_from(l).ok()) {
                    Some(l @ 1..=254) => Ok(DataType::String { length: l }),
                    _ => Err(AddressError::Length(
                        "STRING needs `length` from 1 to 254: the declared length of the string in the PLC",
                    )),
                };
            }
            _ => return Err(AddressError::UnknownType(name.to_string())),
        };
        match length {
            Some(_) => Err(AddressError::Length("`length` applies only to STRING")),
            None => Ok(ty),
        }
    }

    /// The type a point gets when the configuration names none.
    pub fn default_for(width: Width) -> DataType {
        match width {
            Width::Bit => DataType::Bool,
            Width::Byte => DataType::Byte,
            Width::Word => DataType::Word,
            Width::DWord => DataType::DWord,
        }
    }

    /// Bytes of one element; a BOOL reads the byte that holds it.
    pub fn size(self) -> u32 {
        match self {
            DataType::Bool | DataType::Byte | DataType::Char => 1,
            DataType::Word | DataType::Int => 2,
            DataType::DWord | DataType::DInt | DataType::Real => 4,
            DataType::LReal => 8,
            DataType::String { length } => u32::from(length) + 2,
        }
    }

    /// The address width a single value of this type needs.
    pub fn width(self) -> Width {
        match self {
            DataType::Bool => Width::Bit,
            DataType::Byte | DataType::Char | DataType::LReal | DataType::String { .. } => {
                Width::Byte
            }
            DataType::Word | DataType::Int => Width::Word,
            DataType::DWord | DataType::DInt | DataType::Real => Width::DWord,
        }
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            DataType::Bool => "BOOL",
            DataType::Byte => "BYTE",
            DataType::Char => "CHAR",
            DataType::Word => "WORD",
            DataType::Int => "INT",
            DataType::DWord => "DWORD",
            DataType::DInt => "DINT",
            DataType::Real => "REAL",
            DataType::LReal => "LREAL",
            DataType::String { length } => return write!(f, "STRING[{length}]"),
        };
        f.write_str(name)
    }
}

/// A value read from or written to a PLC. Integers of every width share `Int`; CHAR is a
/// one-character `String`.
#[derive(Debug, Clone, PartialEq)]
pub enum S7Value {
    Bool(bool),
    Int(i64),
    Real(f64),
    String(String),
    Array(Vec<S7Value>),
}

impl S7Value {
    /// A short description for error messages (never the whole of a long string or array).
    fn describe(&self) -> String {
        match self {
            S7Value::Bool(b) => format!("bool {b}"),
            S7Value::Int(i) => format!("integer {i}"),
            S7Value::Real(r) => format!("real {r}"),
            S7Value::String(s) => format!("a string of {} characters", s.chars().count()),
            S7Value::Array(a) => format!("an array of {} elements", a.len()),
        }
    }
}

/// A validated point: address, type and optional array length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Variable {
    pub address: Address,
    pub ty: DataType,
    /// `Some(n)`: an array of `n` elements (even for `n` = 1); `None`: a single value.
    pub count: Option<u16>,
}

impl Variable {
    /// Checks that `ty` (and `count`) fit `address`.
    pub fn new(address: Address, ty: DataType, count: Option<u32>) -> Result<Self, AddressError> {
        let count = match count {
            None => None,
            Some(n) => Some(
                u16::try_from(n)
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or(AddressError::Count(n))?,
            ),
        };
        let mismatch = |hint| AddressError::TypeMismatch {
            address: address.to_string(),
            ty: ty.to_string(),
            hint,
        };
        let needed = match (ty, count) {
            (DataType::Bool, Some(_)) => {
                return Err(mismatch(
                    "BOOL arrays are not supported; read the bits as a BYTE or WORD array",
                ));
            }
            (DataType::String { .. }, Some(_)) => {
                return Err(mismatch(
                    "STRING arrays are not supported; configure one point per string",
                ));
            }
            (_, Some(_)) => Width::Byte,
            (ty, None) => ty.width(),
        };
        if address.width != needed {
            return Err(mismatch(match needed {
                Width::Bit => "BOOL needs a bit address such as DB1.DBX0.0, M10.1 or I0.1",
                Width::Byte if count.is_some() => {
                    "an array needs the byte address of its first element, such as DB1.DBB10 or MB10"
                }
                Width::Byte => "it needs a byte address such as DB1.DBB10 or MB10",
                Width::Word => "it needs a word address such as DB1.DBW2 or MW10",
                Width::DWord => "it needs a double-word address such as DB1.DBD4 or MD10",
            }));
        }
        let len = u64::from(ty.size()) * u64::from(count.unwrap_or(1));
        let too_long = |problem| AddressError::TooLong {
            address: address.to_string(),
            ty: ty.to_string(),
            len,
            problem,
        };
        if len > u64::from(MAX_VARIABLE_LEN) {
            return Err(too_long("the 65535 bytes one point may span"));
        }
        if u64::from(address.byte) + len - 1 > u64::from(MAX_BYTE) {
            return Err(too_long("the end of the S7 address space (byte 2097151)"));
        }
        Ok(Variable { address, ty, count })
    }

    /// From configuration strings: `type` defaults from the address width.
    pub fn parse(
        address: &str,
        ty: Option<&str>,
        length: Option<u32>,
        count: Option<u32>,
    ) -> Result<Self, AddressError> {
        let address = Address::parse(address)?;
        let ty = match ty {
            Some(name) => DataType::parse(name, length)?,
            None if length.is_some() => {
                return Err(AddressError::Length("`length` needs `type: STRING`"));
            }
            None => DataType::default_for(address.width),
        };
        Variable::new(address, ty, count)
    }

    /// Bytes this variable occupies (a BOOL: the byte holding it).
    pub fn byte_len(&self) -> u32 {
        self.ty.size() * u32::from(self.count.unwrap_or(1))
    }

    /// The bytes to read for it.
    pub fn read_range(&self) -> Range {
        Range {
            area: self.address.area,
            db: self.address.db,
            start: self.address.byte,
            len: self.byte_len(),
        }
    }

    /// The value in `bytes`, which must be exactly [`Self::read_range`].
    pub fn decode(&self, bytes: &[u8]) -> Result<S7Value, AddressError> {
        if bytes.len() != self.byte_len() as usize {
            return Err(AddressError::DataLength {
                address: self.address.to_string(),
                ty: self.ty.to_string(),
                expected: self.byte_len() as usize,
                got: bytes.len(),
            });
        }
        match self.count {
            None => self.decode_one(bytes),
            Some(_) => bytes
                .chunks_exact(self.ty.size() as usize)
                .map(|b| self.decode_one(b))
                .collect::<Result<_, _>>()
                .map(S7Value::Array),
        }
    }

    fn decode_one(&self, b: &[u8]) -> Result<S7Value, AddressError> {
        let short = || AddressError::DataLength {
            address: self.address.to_string(),
            ty: self.ty.to_string(),
            expected: self.ty.size() as usize,
            got: b.len(),
        };
        let bytes2 = || b.first_chunk::<2>().copied().ok_or_else(short);
        let bytes4 = || b.first_chunk::<4>().copied().ok_or_else(short);
        let first = || b.first().copied().ok_or_else(short);
        Ok(match self.ty {
            DataType::Bool => {
                // Checked: the fields are public, so a hand-built address may say bit 9.
                let bit = u32::from(self.address.bit.unwrap_or(0));
                S7Value::Bool(first()?.checked_shr(bit).unwrap_or(0) & 1 == 1)
            }
            DataType::Byte => S7Value::Int(first()?.into()),
            DataType::Char => S7Value::String(char::from(first()?).to_string()),
            DataType::Word => S7Value::Int(u16::from_be_bytes(bytes2()?).into()),
            DataType::Int => S7Value::Int(i16::from_be_bytes(bytes2()?).into()),
            DataType::DWord => S7Value::Int(u32::from_be_bytes(bytes4()?).into()),
            DataType::DInt => S7Value::Int(i32::from_be_bytes(bytes4()?).into()),
            DataType::Real => S7Value::Real(f32::from_be_bytes(bytes4()?).into()),
            DataType::LReal => {
                let b8 = b.first_chunk::<8>().copied().ok_or_else(short)?;
                S7Value::Real(f64::from_be_bytes(b8))
            }
            DataType::String { length } => {
                let &[_max, actual, ref chars @ ..] = b else {
                    return Err(short());
                };
                if actual > length {
                    return Err(AddressError::StringActual {
                        address: self.address.to_string(),
                        actual,
                        length,
                    });
                }
                let chars = chars.get(..usize::from(actual)).ok_or_else(short)?;
                // S7 characters are single bytes; Latin-1 maps every byte to one char.
                S7Value::String(chars.iter().copied().map(char::from).collect())
            }
        })
    }

    /// The bytes that represent `value` ([`Self::byte_len`] of them; a BOOL: one byte 0 or 1).
    pub fn encode(&self, value: &S7Value) -> Result<Vec<u8>, AddressError> {
        let mut out = Vec::with_capacity(self.byte_len() as usize);
        match (self.count, value) {
            (None, v) => self.encode_one(v, &mut out)?,
            (Some(n), S7Value::Array(items)) if items.len() == usize::from(n) => {
                for v in items {
                    self.encode_one(v, &mut out)?;
                }
            }
            (Some(_), S7Value::Array(_)) => {
                return Err(self.bad_value(value, "the array length differs from `count`"));
            }
            (Some(_), _) => return Err(self.bad_value(value, "the point is an array")),
        }
        Ok(out)
    }

    /// What to hand the write planner for `value`.
    pub fn write(&self, value: &S7Value) -> Result<Write, AddressError> {
        Ok(Write {
            area: self.address.area,
            db: self.address.db,
            start: self.address.byte,
            bit: self.address.bit,
            data: self.encode(value)?,
        })
    }

    fn encode_one(&self, v: &S7Value, out: &mut Vec<u8>) -> Result<(), AddressError> {
        let int = |min: i64, max: i64| match v {
            S7Value::Int(i) if (min..=max).contains(i) => Ok(*i),
            S7Value::Int(_) => Err(self.bad_value(v, "out of range for the type")),
            _ => Err(self.bad_value(v, "the type needs an integer")),
        };
        match self.ty {
            DataType::Bool => match v {
                S7Value::Bool(b) => out.push(u8::from(*b)),
                _ => return Err(self.bad_value(v, "the type needs a bool")),
            },
            DataType::Byte => out.push(int(0, 0xFF)? as u8),
            DataType::Word => out.extend_from_slice(&(int(0, 0xFFFF)? as u16).to_be_bytes()),
            DataType::Int => out.extend_from_slice(&(int(-0x8000, 0x7FFF)? as i16).to_be_bytes()),
            DataType::DWord => {
                out.extend_from_slice(&(int(0, 0xFFFF_FFFF)? as u32).to_be_bytes());
            }
            DataType::DInt => {
                let i = int(i32::MIN.into(), i32::MAX.into())?;
                out.extend_from_slice(&(i as i32).to_be_bytes());
            }
            DataType::Real => match v {
                S7Value::Real(r) if r.is_finite() && r.abs() > f64::from(f32::MAX) => {
                    return Err(self.bad_value(v, "out of range for REAL"));
                }
                S7Value::Real(r) => out.extend_from_slice(&(*r as f32).to_be_bytes()),
                _ => return Err(self.bad_value(v, "the type needs a real")),
            },
            DataType::LReal => match v {
                S7Value::Real(r) => out.extend_from_slice(&r.to_be_bytes()),
                _ => return Err(self.bad_value(v, "the type needs a real")),
            },
            DataType::Char => match v {
                S7Value::String(s) => match latin1(s).as_deref() {
                    Some(&[c]) => out.push(c),
                    _ => {
                        return Err(self.bad_value(v, "CHAR takes one Latin-1 character"));
                    }
                },
                _ => return Err(self.bad_value(v, "the type needs a string")),
            },
            DataType::String { length } => match v {
                S7Value::String(s) => {
                    let bytes = latin1(s)
                        .ok_or_else(|| self.bad_value(v, "S7 strings hold Latin-1 characters"))?;
                    let actual = u8::try_from(bytes.len())
                        .ok()
                        .filter(|&n| n <= length)
                        .ok_or_else(|| self.bad_value(v, "longer than the declared `length`"))?;
                    // Rewrites the whole declared length so no stale characters remain after
                    // the new end; this assumes `length` equals the PLC's declaration.
                    out.extend_from_slice(&[length, actual]);
                    out.extend_from_slice(&bytes);
                    out.resize(out.len() + usize::from(length - actual), 0);
                }
                _ => return Err(self.bad_value(v, "the type needs a string")),
            },
        }
        Ok(())
    }

    fn bad_value(&self, v: &S7Value, problem: &'static str) -> AddressError {
        AddressError::Value {
            address: self.address.to_string(),
            ty: self.ty.to_string(),
            value: v.describe(),
            problem,
        }
    }
}

/// The string as Latin-1 bytes, or `None` if a character is beyond U+00FF.
fn latin1(s: &str) -> Option<Vec<u8>> {
    s.chars().map(|c| u8::try_from(c).ok()).collect()
}
