//! What a configured Modbus point is: its area, address and how its registers encode a value.
//! Shared by the configuration compiler, the codec, the planner and the driver.

use std::fmt;

/// The four Modbus data areas.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Area {
    /// Read/write bits (function codes 1, 5, 15).
    Coil,
    /// Read-only bits (function code 2).
    Discrete,
    /// Read-only 16-bit registers (function code 4).
    Input,
    /// Read/write 16-bit registers (function codes 3, 6, 16).
    Holding,
}

impl Area {
    pub const ALL: [Area; 4] = [Area::Coil, Area::Discrete, Area::Input, Area::Holding];

    /// The name used in the configuration file.
    pub fn name(self) -> &'static str {
        match self {
            Area::Coil => "coil",
            Area::Discrete => "discrete",
            Area::Input => "input",
            Area::Holding => "holding",
        }
    }

    pub fn parse(s: &str) -> Option<Area> {
        Area::ALL.into_iter().find(|a| a.name() == s)
    }

    /// Bit areas hold single bits; register areas hold 16-bit words.
    pub fn is_bits(self) -> bool {
        matches!(self, Area::Coil | Area::Discrete)
    }

    /// Whether the area can be written at all.
    pub fn is_writable(self) -> bool {
        matches!(self, Area::Coil | Area::Holding)
    }

    /// Most bits or registers one read request may ask for (Modbus application protocol
    /// v1.1b3, sections 6.1–6.4).
    pub fn max_read(self) -> u16 {
        if self.is_bits() { 2000 } else { 125 }
    }
}

impl fmt::Display for Area {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How the registers of a point are interpreted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DataType {
    /// One bit of a bit area, or (with [`Encoding::bit`]) one bit of a register.
    Bool,
    U16,
    I16,
    U32,
    I32,
    F32,
    U64,
    I64,
    F64,
    /// `len` bytes, two per register, first byte in the high half unless swapped; trailing
    /// NUL bytes (and anything after the first NUL) are not part of the value.
    String {
        len: u16,
    },
}

impl DataType {
    /// Names used in the configuration file (`string` needs `length`).
    pub const NAMES: [&'static str; 10] = [
        "bool", "u16", "i16", "u32", "i32", "f32", "u64", "i64", "f64", "string",
    ];

    /// The type named `s`; `string` gets `len` 0 — the caller sets the length.
    pub fn parse(s: &str) -> Option<DataType> {
        Some(match s {
            "bool" => DataType::Bool,
            "u16" => DataType::U16,
            "i16" => DataType::I16,
            "u32" => DataType::U32,
            "i32" => DataType::I32,
            "f32" => DataType::F32,
            "u64" => DataType::U64,
            "i64" => DataType::I64,
            "f64" => DataType::F64,
            "string" => DataType::String { len: 0 },
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            DataType::Bool => "bool",
            DataType::U16 => "u16",
            DataType::I16 => "i16",
            DataType::U32 => "u32",
            DataType::I32 => "i32",
            DataType::F32 => "f32",
            DataType::U64 => "u64",
            DataType::I64 => "i64",
            DataType::F64 => "f64",
            DataType::String { .. } => "string",
        }
    }

    /// Width in registers: 1, 2 or 4, or the string's length rounded up to whole registers.
    /// A bool counts one (a bit, or the register holding the bit).
    pub fn registers(self) -> u16 {
        match self {
            DataType::Bool | DataType::U16 | DataType::I16 => 1,
            DataType::U32 | DataType::I32 | DataType::F32 => 2,
            DataType::U64 | DataType::I64 | DataType::F64 => 4,
            DataType::String { len } => len.div_ceil(2),
        }
    }

    pub fn is_integer(self) -> bool {
        matches!(
            self,
            DataType::U16
                | DataType::I16
                | DataType::U32
                | DataType::I32
                | DataType::U64
                | DataType::I64
        )
    }
}

/// Order of the bytes of a 32- or 64-bit value across its registers. Letters name the bytes of
/// the value from most to least significant (A first); the order lists them as they appear on
/// the wire, register by register, high byte first.
///
/// `ABCD`/`ABCDEFGH` is the Modbus "big-endian" default; `CDAB`/`GHEFCDAB` swaps words (common
/// on PLCs and energy meters); `BADC`/`BADCFEHG` swaps the bytes in each register; `DCBA`/
/// `HGFEDCBA` is fully little-endian.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Order {
    #[default]
    Abcd,
    Cdab,
    Badc,
    Dcba,
}

impl Order {
    /// The spelling of each order for 32-bit and for 64-bit values.
    pub fn names(self) -> (&'static str, &'static str) {
        match self {
            Order::Abcd => ("ABCD", "ABCDEFGH"),
            Order::Cdab => ("CDAB", "GHEFCDAB"),
            Order::Badc => ("BADC", "BADCFEHG"),
            Order::Dcba => ("DCBA", "HGFEDCBA"),
        }
    }

    /// Parses a 32-bit (`ABCD` …) or 64-bit (`ABCDEFGH` …) order name; `wide` tells which
    /// spelling the type needs.
    pub fn parse(s: &str, wide: bool) -> Option<Order> {
        [Order::Abcd, Order::Cdab, Order::Badc, Order::Dcba]
            .into_iter()
            .find(|o| {
                let (n32, n64) = o.names();
                if wide { n64 == s } else { n32 == s }
            })
    }
}

/// Everything the codec needs to turn a point's registers into a value and back.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Encoding {
    pub ty: DataType,
    /// Word/byte order of 32- and 64-bit types; ignored otherwise.
    pub order: Order,
    /// For `Bool` in a register area: which bit (0 = least significant).
    pub bit: Option<u8>,
    /// For `String`: the two bytes of each register are swapped (low byte first).
    pub swap_bytes: bool,
    /// value = raw × scale + offset (numeric types only).
    pub scale: f64,
    pub offset: f64,
}

impl Encoding {
    pub fn new(ty: DataType) -> Encoding {
        Encoding {
            ty,
            order: Order::Abcd,
            bit: None,
            swap_bytes: false,
            scale: 1.0,
            offset: 0.0,
        }
    }

    /// Whether `scale`/`offset` change the raw value.
    pub fn is_scaled(&self) -> bool {
        self.scale != 1.0 || self.offset != 0.0
    }
}
