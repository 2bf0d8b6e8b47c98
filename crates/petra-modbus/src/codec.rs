//! Registers ↔ values: the format of a Modbus point, as the driver reads and writes it.
//!
//! The codec is pure and total: no IO, and any input gives a value or a [`CodecError`], never
//! a panic, because register contents come from devices we do not control.
//!
//! # Registers
//!
//! A register is 16 bits, sent high byte first. A point occupies [`DataType::registers`]
//! consecutive registers, which the codec takes and returns in wire (address) order.
//!
//! # Data types
//!
//! | type           | registers   | raw value                                                 |
//! |----------------|-------------|-----------------------------------------------------------|
//! | `bool`         | a bit, or 1 | a coil or discrete input, or bit `bit` of one register    |
//! | `u16`, `i16`   | 1           | unsigned, or two's complement                             |
//! | `u32`, `i32`   | 2           | unsigned, or two's complement, bytes in `order`           |
//! | `f32`          | 2           | IEEE 754 binary32, bytes in `order`                       |
//! | `u64`, `i64`   | 4           | unsigned, or two's complement, bytes in `order`           |
//! | `f64`          | 4           | IEEE 754 binary64, bytes in `order`                       |
//! | `string`       | ⌈len / 2⌉   | `len` bytes of text, see *Strings*                        |
//!
//! # Byte orders
//!
//! Letters name the bytes of the raw value from most (A) to least significant; an order lists
//! them as they appear on the wire, register by register, high byte of each register first.
//! Examples: f32 123.456 (0x42F6E979, so A = 42, B = F6, C = E9, D = 79) and u64
//! 0x0102030405060708:
//!
//! | order (32 / 64-bit)                 | 32-bit registers | 64-bit registers    |
//! |-------------------------------------|------------------|---------------------|
//! | `ABCD` / `ABCDEFGH` (big-endian)    | 42F6 E979        | 0102 0304 0506 0708 |
//! | `CDAB` / `GHEFCDAB` (word swap)     | E979 42F6        | 0708 0506 0304 0102 |
//! | `BADC` / `BADCFEHG` (byte swap)     | F642 79E9        | 0201 0403 0605 0807 |
//! | `DCBA` / `HGFEDCBA` (little-endian) | 79E9 F642        | 0807 0605 0403 0201 |
//!
//! Word swap reverses the registers, byte swap swaps the two bytes inside each register, and
//! little-endian does both. Each is its own inverse, so reading and writing share one
//! transformation. 16-bit types, bools and strings ignore `order`.
//!
//! # Bits in registers
//!
//! A `bool` point in an input or holding register names one bit with `bit` (0 = least
//! significant, up to 15) and reads as that bit of its one register. Writing it must not
//! clobber the other 15 bits, so [`encode_registers`] refuses it: the driver reads the
//! register, sets the bit with [`with_bit`] and writes the register back.
//!
//! # Strings
//!
//! `len` bytes, two per register, high byte first (low byte first with `swap_bytes`); with an
//! odd `len` the last register's second byte is ignored. The value ends at the first NUL byte.
//! If the bytes are valid UTF-8 they are read as UTF-8; otherwise the whole string is read as
//! Latin-1 (each byte one character), since legacy devices send 8-bit code pages and a
//! readable approximation beats a bad quality, so the bytes alone never make a read fail.
//! Writing sends the value's UTF-8 bytes padded with NUL to whole registers; a value longer
//! than `len` bytes is refused (a NUL inside a written value ends it when read back).
//!
//! # Scale and offset
//!
//! Numeric points read as `value = raw × scale + offset` and write
//! `raw = (value − offset) / scale`; the scale must be finite and non-zero and the offset
//! finite. An unscaled point (scale 1, offset 0) skips the arithmetic so values pass through
//! bit for bit. Integers beyond 2^53 read into a float signal round to the nearest f64.
//! Writing to an integer type rounds to the nearest integer (ties away from zero); a value
//! outside the type's range, or not finite, is refused. Writing to `f32` or `f64` refuses a
//! finite value whose raw form overflows (it would silently become infinity); NaN and
//! infinities are written as they are.
//!
//! # Signal types
//!
//! [`check`] decides which signal a point may feed: `bool` from bit areas or `bool` points
//! with `bit`; `int` from unscaled integer types (a `u64` above `i64::MAX` reads as an error);
//! `float` from any numeric type, scaled or not (a NaN or infinite result is an error, as
//! devices report sensor faults that way and the signal's quality must go bad); `string` from
//! `string` points only. Writing accepts int or float values for any numeric type.

use petra_core::{Value, ValueType};

use crate::point::{Area, DataType, Encoding, Order};

/// Why a value could not be converted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CodecError {
    /// The registers handed over do not match the point's width — a driver or planner bug.
    #[error(
        "expected {expected} registers for this point but got {got}; \
         the read does not match the point's data type"
    )]
    WrongLength { expected: usize, got: usize },
    #[error("{value} does not fit in {target}; {fix}")]
    OutOfRange {
        value: String,
        target: String,
        fix: &'static str,
    },
    #[error(
        "the device sent NaN or infinity (often how it reports a sensor fault); \
         check the device, or the point's data type and byte order"
    )]
    NotFinite,
    #[error("cannot convert: {reason}")]
    Unsupported { reason: String },
}

/// Checks that an encoding in `area` can feed a signal of type `target` (used by the config
/// compiler to reject bad points up front). Err = a sentence explaining the fix.
pub fn check(enc: &Encoding, area: Area, target: ValueType) -> Result<(), String> {
    if !area.is_bits() {
        return check_register(enc, target);
    }
    if enc.ty != DataType::Bool {
        return Err(format!(
            "a {area} is a single bit, not {}; declare the point's type as bool",
            enc.ty.name()
        ));
    }
    if enc.bit.is_some() {
        return Err(format!(
            "`bit` picks a bit inside a register, but a {area} is already one bit; remove `bit`"
        ));
    }
    if enc.is_scaled() {
        return Err("scale and offset apply to numbers, not to bool points; remove them".into());
    }
    if target != ValueType::Bool {
        return Err(format!(
            "a {area} point cannot feed a signal of type {target}; declare the signal as bool"
        ));
    }
    Ok(())
}

/// The rules for input and holding registers; decode and encode apply them too.
fn check_register(enc: &Encoding, target: ValueType) -> Result<(), String> {
    let ty = enc.ty.name();
    match (enc.ty, enc.bit) {
        (DataType::Bool, None) => {
            return Err("a bool point in a register must say which bit it reads; \
                        add `bit: N` (0 = least significant, up to 15)"
                .into());
        }
        (DataType::Bool, Some(b)) if b > 15 => {
            return Err(format!(
                "a register has bits 0 to 15, not {b}; use `bit: 0` to `bit: 15`"
            ));
        }
        (DataType::Bool, Some(_)) | (_, None) => {}
        (_, Some(_)) => {
            return Err(format!(
                "`bit` only applies to bool points, not to {ty}; remove `bit` or declare the \
                 point's type as bool"
            ));
        }
    }
    let numeric = !matches!(enc.ty, DataType::Bool | DataType::String { .. });
    if !numeric && enc.is_scaled() {
        return Err(format!(
            "scale and offset apply to numbers, not to {ty} points; remove them"
        ));
    }
    // A zero or non-finite scale would make writing divide by zero or produce garbage.
    if numeric && !(enc.scale.is_finite() && enc.scale != 0.0 && enc.offset.is_finite()) {
        return Err(format!(
            "scale must be a finite non-zero number and offset a finite number \
             (got scale {}, offset {})",
            enc.scale, enc.offset
        ));
    }
    if enc.ty == (DataType::String { len: 0 }) {
        return Err("a string point needs a length of at least 1 byte".into());
    }
    let integer = enc.ty.is_integer() && !enc.is_scaled();
    let natural = match enc.ty {
        DataType::Bool => ValueType::Bool,
        DataType::String { .. } => ValueType::String,
        _ if integer => ValueType::Int,
        _ => ValueType::Float,
    };
    match (target, natural) {
        (t, n) if t == n => Ok(()),
        (ValueType::Float, ValueType::Int) => Ok(()),
        (ValueType::Int, ValueType::Float) if enc.ty.is_integer() => {
            Err("a scaled point produces fractions; use a float signal for a scaled point".into())
        }
        (ValueType::Bool, ValueType::Int | ValueType::Float) => Err(format!(
            "a point of type {ty} cannot feed a bool signal; declare the signal as {natural}, \
             or read one bit with type bool and `bit: N`"
        )),
        _ => Err(format!(
            "a point of type {ty} cannot feed a signal of type {target}; declare the signal \
             as {natural}"
        )),
    }
}

fn unsupported(reason: String) -> CodecError {
    CodecError::Unsupported { reason }
}

/// Decodes the registers of one point (exactly `enc.ty.registers()` words, in wire order) into
/// a value of type `target`.
pub fn decode_registers(
    enc: &Encoding,
    regs: &[u16],
    target: ValueType,
) -> Result<Value, CodecError> {
    check_register(enc, target).map_err(unsupported)?;
    decode_checked(enc, regs, target)
}

/// [`decode_registers`] for an encoding that [`check`] accepted for `target`, as every point of
/// a compiled configuration is: a poll decodes up to 125 values per request, and repeating the
/// check for each cost more than the decoding. With an encoding the check would refuse, the
/// value may be of another type than `target` (the bus then refuses it); it never panics.
#[inline]
pub fn decode_checked(
    enc: &Encoding,
    regs: &[u16],
    target: ValueType,
) -> Result<Value, CodecError> {
    let expected = usize::from(enc.ty.registers());
    if regs.len() != expected {
        return Err(CodecError::WrongLength {
            expected,
            got: regs.len(),
        });
    }
    let bits = || wire_to_bits(enc.order, regs);
    let raw = match enc.ty {
        DataType::Bool => {
            let mask = with_bit(0, enc.bit.unwrap_or(0), true);
            return Ok(Value::Bool(regs.iter().any(|r| r & mask != 0)));
        }
        DataType::String { len } => {
            return Ok(Value::String(
                decode_string(regs, len, enc.swap_bytes).into(),
            ));
        }
        DataType::U16 => Raw::Int(i128::from(bits() as u16)),
        DataType::I16 => Raw::Int(i128::from(bits() as u16 as i16)),
        DataType::U32 => Raw::Int(i128::from(bits() as u32)),
        DataType::I32 => Raw::Int(i128::from(bits() as u32 as i32)),
        DataType::U64 => Raw::Int(i128::from(bits())),
        DataType::I64 => Raw::Int(i128::from(bits() as i64)),
        DataType::F32 => Raw::Float(f64::from(f32::from_bits(bits() as u32))),
        DataType::F64 => Raw::Float(f64::from_bits(bits())),
    };
    match (target, raw) {
        (ValueType::Int, Raw::Int(n)) => {
            i64::try_from(n).map(Value::Int).map_err(|_| beyond_int(n))
        }
        // check_register allows nothing else but float here.
        (_, raw) => {
            // Unscaled values skip the arithmetic, which would turn -0.0 into 0.0.
            let v = if enc.is_scaled() {
                raw.as_f64() * enc.scale + enc.offset
            } else {
                raw.as_f64()
            };
            if v.is_finite() {
                Ok(Value::Float(v))
            } else {
                Err(CodecError::NotFinite)
            }
        }
    }
}

/// Out of line, so that decoding a value stays a small function without the formatting.
#[cold]
fn beyond_int(n: i128) -> CodecError {
    CodecError::OutOfRange {
        value: n.to_string(),
        target: "an int signal (at most 9223372036854775807)".into(),
        fix: "declare the signal as float",
    }
}

/// A raw number: i128 holds every u64 and i64 exactly.
#[derive(Clone, Copy)]
enum Raw {
    Int(i128),
    Float(f64),
}

impl Raw {
    fn as_f64(self) -> f64 {
        match self {
            Raw::Int(n) => n as f64,
            Raw::Float(x) => x,
        }
    }
}

/// Byte order ↔ word swap and byte swap; an involution, so it serves both directions.
fn reorder(order: Order, words: &mut [u16]) {
    if matches!(order, Order::Cdab | Order::Dcba) {
        words.reverse();
    }
    if matches!(order, Order::Badc | Order::Dcba) {
        words.iter_mut().for_each(|w| *w = w.swap_bytes());
    }
}

/// The raw bits of a 1-, 2- or 4-register number given in wire order. Reads the words in
/// place: a copy into a buffer to reorder it (a `memcpy` call and a stalled reload) cost more
/// than the rest of decoding a value.
#[inline]
fn wire_to_bits(order: Order, regs: &[u16]) -> u64 {
    let n = regs.len().min(4);
    // `reorder` for more than one word, without moving them.
    let reverse = n > 1 && matches!(order, Order::Cdab | Order::Dcba);
    let swap = n > 1 && matches!(order, Order::Badc | Order::Dcba);
    (0..n).fold(0u64, |acc, i| {
        let w = regs[if reverse { n - 1 - i } else { i }];
        (acc << 16) | u64::from(if swap { w.swap_bytes() } else { w })
    })
}

fn decode_string(regs: &[u16], len: u16, swap: bool) -> String {
    let bytes: Vec<u8> = regs
        .iter()
        .flat_map(|&r| swapped(r, swap).to_be_bytes())
        .take(usize::from(len))
        .take_while(|&b| b != 0)
        .collect();
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => e.into_bytes().into_iter().map(char::from).collect(),
    }
}

/// Decodes one bit of a bit area (coil/discrete) for a signal of type `target` (Bool only).
pub fn decode_bit(bit: bool, target: ValueType) -> Result<Value, CodecError> {
    match target {
        ValueType::Bool => Ok(Value::Bool(bit)),
        _ => Err(unsupported(format!(
            "a coil or discrete input is one bit and cannot feed a signal of type {target}; \
             declare the signal as bool"
        ))),
    }
}

/// Encodes a bus value into the registers to write for a register point (not for `bit`
/// points).
pub fn encode_registers(enc: &Encoding, value: &Value) -> Result<Vec<u16>, CodecError> {
    let ty = enc.ty.name();
    let wrong_value = || {
        unsupported(format!(
            "a point of type {ty} cannot take a {} value",
            value.value_type()
        ))
    };
    match enc.ty {
        DataType::Bool => {
            return Err(unsupported(
                "a bool point is one bit of a shared register; read the register, set the bit \
                 with with_bit and write the register back"
                    .into(),
            ));
        }
        DataType::String { len } => {
            check_register(enc, ValueType::String).map_err(unsupported)?;
            let s = value.as_str().ok_or_else(wrong_value)?;
            return encode_string(s, len, enc.swap_bytes);
        }
        _ => check_register(enc, ValueType::Float).map_err(unsupported)?,
    }
    let scaled = enc.is_scaled();
    let unscale = |v: f64| (v - enc.offset) / enc.scale;
    let num = match *value {
        Value::Int(n) if !scaled => Raw::Int(i128::from(n)),
        Value::Int(n) => Raw::Float(unscale(n as f64)),
        Value::Float(v) if scaled => Raw::Float(unscale(v)),
        Value::Float(v) => Raw::Float(v),
        _ => return Err(wrong_value()),
    };
    let finite_in = value.as_f64().is_some_and(f64::is_finite);
    let out_of_range = |range: &str| CodecError::OutOfRange {
        value: value.to_string(),
        target: format!("a point of type {ty} (raw {range})"),
        fix: "write a value in range, or change the point's type, scale or offset",
    };
    let as_f64 = num.as_f64();
    let bits = match enc.ty {
        DataType::F32 => {
            let r = as_f64 as f32;
            if finite_in && !r.is_finite() {
                return Err(out_of_range("±3.4028235e38"));
            }
            u64::from(r.to_bits())
        }
        DataType::F64 => {
            if finite_in && !as_f64.is_finite() {
                return Err(out_of_range("±1.7976931348623157e308"));
            }
            as_f64.to_bits()
        }
        _ => {
            let (lo, hi) = int_range(enc.ty);
            let n = match num {
                Raw::Int(n) => n,
                Raw::Float(x) if x.is_finite() => x.round() as i128,
                Raw::Float(_) => i128::MAX,
            };
            if n < lo || n > hi {
                return Err(out_of_range(&format!("{lo} to {hi}")));
            }
            // Two's complement: the low bits of a negative number are its raw form.
            n as u64
        }
    };
    let width = u32::from(enc.ty.registers());
    let mut words: Vec<u16> = (1..=width)
        .map(|i| bits.checked_shr(16 * (width - i)).unwrap_or(0) as u16)
        .collect();
    if words.len() > 1 {
        reorder(enc.order, &mut words);
    }
    Ok(words)
}

/// The range of an integer type; only called for integer types.
fn int_range(ty: DataType) -> (i128, i128) {
    match ty {
        DataType::U16 => (0, u16::MAX.into()),
        DataType::I16 => (i16::MIN.into(), i16::MAX.into()),
        DataType::U32 => (0, u32::MAX.into()),
        DataType::I32 => (i32::MIN.into(), i32::MAX.into()),
        DataType::U64 => (0, u64::MAX.into()),
        _ => (i64::MIN.into(), i64::MAX.into()),
    }
}

fn encode_string(s: &str, len: u16, swap: bool) -> Result<Vec<u16>, CodecError> {
    if s.len() > usize::from(len) {
        return Err(CodecError::OutOfRange {
            value: format!("a string of {} bytes", s.len()),
            target: format!("a string point of {len} bytes"),
            fix: "shorten the text or lengthen the point",
        });
    }
    let mut bytes = s.as_bytes().to_vec();
    bytes.resize(2 * usize::from(len.div_ceil(2)), 0);
    let (pairs, _) = bytes.as_chunks::<2>();
    Ok(pairs
        .iter()
        .map(|&p| swapped(u16::from_be_bytes(p), swap))
        .collect())
}

fn swapped(reg: u16, swap: bool) -> u16 {
    if swap { reg.swap_bytes() } else { reg }
}

/// Encodes a bus value for a coil.
pub fn encode_bit(value: &Value) -> Result<bool, CodecError> {
    value.as_bool().ok_or_else(|| {
        unsupported(format!(
            "a coil takes a bool value, not a {} value",
            value.value_type()
        ))
    })
}

/// Returns `reg` with bit `bit` (0 = LSB) set to `on` — for writing a bit inside a holding
/// register. A bit above 15 does not exist and leaves `reg` unchanged.
pub fn with_bit(reg: u16, bit: u8, on: bool) -> u16 {
    let mask = 1u16.checked_shl(u32::from(bit)).unwrap_or(0);
    if on { reg | mask } else { reg & !mask }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DataType as D;
    use ValueType as T;
    use proptest::prelude::*;
    use proptest::sample::select;

    const ORDERS: [Order; 4] = [Order::Abcd, Order::Cdab, Order::Badc, Order::Dcba];
    const INTS: [D; 6] = [D::U16, D::I16, D::U32, D::I32, D::U64, D::I64];

    fn enc(ty: D, order: Order) -> Encoding {
        Encoding {
            order,
            ..Encoding::new(ty)
        }
    }

    fn scaled(ty: D, scale: f64, offset: f64) -> Encoding {
        Encoding {
            scale,
            offset,
            ..Encoding::new(ty)
        }
    }

    fn bit(b: u8) -> Encoding {
        Encoding {
            bit: Some(b),
            ..Encoding::new(D::Bool)
        }
    }

    fn string(len: u16, swap_bytes: bool) -> Encoding {
        Encoding {
            swap_bytes,
            ..Encoding::new(D::String { len })
        }
    }

    /// Registers written as hex words: "0102 0304".
    fn w(hex: &str) -> Vec<u16> {
        let word = |h| u16::from_str_radix(h, 16).expect("test vectors are hex");
        hex.split_whitespace().map(word).collect()
    }

    fn kind<V>(r: &Result<V, CodecError>) -> &'static str {
        match r {
            Ok(_) => "ok",
            Err(CodecError::WrongLength { .. }) => "length",
            Err(CodecError::OutOfRange { .. }) => "range",
            Err(CodecError::NotFinite) => "not finite",
            Err(CodecError::Unsupported { .. }) => "unsupported",
        }
    }

    /// What writing `v` gives: the registers in hex, or the kind of error.
    fn out(e: &Encoding, v: &Value) -> String {
        match encode_registers(e, v) {
            Ok(regs) => regs
                .iter()
                .map(|r| format!("{r:04X}"))
                .collect::<Vec<_>>()
                .join(" "),
            err => kind(&err).into(),
        }
    }

    /// Asserts that `hex` reads as `value` and `value` writes as `hex`.
    fn both_ways(e: Encoding, hex: &str, value: Value) {
        let got = decode_registers(&e, &w(hex), value.value_type());
        assert_eq!(got, Ok(value.clone()), "{e:?}");
        assert_eq!(out(&e, &value), hex, "{e:?}");
    }

    #[test]
    fn vectors_in_every_order() {
        use Order::*;
        // u32 0x01020304, i32 -123456 = 0xFFFE1DC0, f32 123.456 = 0x42F6E979.
        let v32 = [
            (Abcd, "0102 0304", "FFFE 1DC0", "42F6 E979"),
            (Cdab, "0304 0102", "1DC0 FFFE", "E979 42F6"),
            (Badc, "0201 0403", "FEFF C01D", "F642 79E9"),
            (Dcba, "0403 0201", "C01D FEFF", "79E9 F642"),
        ];
        for (o, u, i, f) in v32 {
            both_ways(enc(D::U32, o), u, Value::Int(0x0102_0304));
            both_ways(enc(D::I32, o), i, Value::Int(-123_456));
            both_ways(enc(D::F32, o), f, Value::Float(f64::from(123.456f32)));
        }
        // u64 and i64 0x0102030405060708, f64 123.456 = 0x405EDD2F1A9FBE77.
        let v64 = [
            (Abcd, "0102 0304 0506 0708", "405E DD2F 1A9F BE77"),
            (Cdab, "0708 0506 0304 0102", "BE77 1A9F DD2F 405E"),
            (Badc, "0201 0403 0605 0807", "5E40 2FDD 9F1A 77BE"),
            (Dcba, "0807 0605 0403 0201", "77BE 9F1A 2FDD 5E40"),
        ];
        for (o, n, f) in v64 {
            both_ways(enc(D::U64, o), n, Value::Int(0x0102_0304_0506_0708));
            both_ways(enc(D::I64, o), n, Value::Int(0x0102_0304_0506_0708));
            both_ways(enc(D::F64, o), f, Value::Float(123.456));
        }
        // i64 -1234567890123 = 0xFFFFFEE08E04FB35.
        let minus = Value::Int(-1_234_567_890_123);
        both_ways(enc(D::I64, Abcd), "FFFF FEE0 8E04 FB35", minus.clone());
        both_ways(enc(D::I64, Cdab), "FB35 8E04 FEE0 FFFF", minus.clone());
        both_ways(enc(D::I64, Badc), "FFFF E0FE 048E 35FB", minus.clone());
        both_ways(enc(D::I64, Dcba), "35FB 048E E0FE FFFF", minus);
        for o in ORDERS {
            both_ways(enc(D::U16, o), "FFFE", Value::Int(65534));
            both_ways(enc(D::I16, o), "FFFE", Value::Int(-2));
            both_ways(enc(D::I16, o), "8000", Value::Int(-32768));
        }
    }

    #[test]
    fn extremes_and_faults() {
        let dec = |ty, hex, t| decode_registers(&Encoding::new(ty), &w(hex), t);
        assert_eq!(kind(&dec(D::U64, "8000 0 0 0", T::Int)), "range");
        let above_i64 = Value::Float(9_223_372_036_854_775_808.0);
        assert_eq!(dec(D::U64, "8000 0 0 0", T::Float), Ok(above_i64));
        both_ways(
            Encoding::new(D::I64),
            "8000 0000 0000 0000",
            Value::Int(i64::MIN),
        );
        for nan_or_inf in ["7FC0 0000", "7F80 0000", "FF80 0000"] {
            assert_eq!(kind(&dec(D::F32, nan_or_inf, T::Float)), "not finite");
        }
        assert_eq!(kind(&dec(D::F64, "7FF8 0 0 0", T::Float)), "not finite");
        assert_eq!(kind(&dec(D::F32, "0 0", T::Int)), "unsupported");
        assert_eq!(kind(&dec(D::U32, "1", T::Int)), "length");
        let long = decode_registers(&string(3, false), &[1, 2, 3], T::String);
        let (expected, got) = (2, 3);
        assert_eq!(long, Err(CodecError::WrongLength { expected, got }));
    }

    #[test]
    fn encoding_rounds_and_refuses_what_does_not_fit() {
        let cases = [
            (D::U16, Value::Float(2.5), "0003"),
            (D::U16, Value::Float(2.4), "0002"),
            (D::I16, Value::Float(-2.5), "FFFD"),
            (D::F32, Value::Int(-2), "C000 0000"),
            (D::F32, Value::Float(f64::INFINITY), "7F80 0000"),
            (D::F32, Value::Float(1e39), "range"),
            (D::U16, Value::Int(65536), "range"),
            (D::U16, Value::Int(-1), "range"),
            (D::U16, Value::Float(-0.5), "range"),
            (D::U16, Value::Float(f64::NAN), "range"),
            (D::I16, Value::Int(32768), "range"),
            (D::I16, Value::Float(f64::NEG_INFINITY), "range"),
            (D::U32, Value::Int(1 << 32), "range"),
            (D::U64, Value::Int(-1), "range"),
            (D::U64, Value::Float(18_446_744_073_709_551_616.0), "range"),
            (D::I64, Value::Float(9_223_372_036_854_775_808.0), "range"),
            (D::U16, Value::from("1"), "unsupported"),
            (D::F32, Value::Bool(true), "unsupported"),
            (D::String { len: 4 }, Value::Int(1), "unsupported"),
            (D::String { len: 0 }, Value::from(""), "unsupported"),
        ];
        for (ty, v, want) in cases {
            assert_eq!(out(&Encoding::new(ty), &v), want, "{ty:?} {v}");
        }
        let msg = encode_registers(&Encoding::new(D::U16), &Value::Int(70000));
        let msg = msg.map_err(|e| e.to_string()).unwrap_err();
        assert!(msg.contains("70000") && msg.contains("0 to 65535"), "{msg}");
    }

    #[test]
    fn scale_and_offset() {
        let e = scaled(D::U16, 0.1, -10.0);
        let v = decode_registers(&e, &[1234], T::Float).map(|v| v.as_f64());
        assert!(matches!(v, Ok(Some(v)) if (v - 113.4).abs() < 1e-9));
        assert_eq!(out(&e, &Value::Float(113.4)), "04D2");
        assert_eq!(out(&e, &Value::Int(0)), "0064");
        both_ways(scaled(D::I16, 0.5, 0.0), "FFFE", Value::Float(-1.0));
        both_ways(scaled(D::F32, 2.0, 1.0), "4000 0000", Value::Float(5.0));
        // 1.25 / 0.5 = 2.5, a tie, rounds away from zero.
        assert_eq!(out(&scaled(D::I16, 0.5, 0.0), &Value::Float(1.25)), "0003");
        assert_eq!(out(&scaled(D::I16, 0.5, 0.0), &Value::Float(-1.25)), "FFFD");
        let tiny_scale = scaled(D::F32, 1e-30, 0.0);
        assert_eq!(out(&tiny_scale, &Value::Float(1e10)), "range");
    }

    #[test]
    fn bits() {
        for (reg, b, on) in [(0x8001, 0, true), (0x8001, 15, true), (0x8001, 1, false)] {
            let got = decode_registers(&bit(b), &[reg], T::Bool);
            assert_eq!(got, Ok(Value::Bool(on)));
        }
        assert_eq!(with_bit(0x00F0, 0, true), 0x00F1);
        assert_eq!(with_bit(0x00F0, 4, false), 0x00E0);
        assert_eq!(with_bit(0x00F0, 15, true), 0x80F0);
        assert_eq!(with_bit(0x00F0, 16, true), 0x00F0);
        assert_eq!(with_bit(0x00F0, 255, false), 0x00F0);
        assert_eq!(out(&bit(3), &Value::Bool(true)), "unsupported");
        assert_eq!(decode_bit(true, T::Bool), Ok(Value::Bool(true)));
        assert_eq!(kind(&decode_bit(true, T::Int)), "unsupported");
        assert_eq!(encode_bit(&Value::Bool(false)), Ok(false));
        assert_eq!(kind(&encode_bit(&Value::Int(1))), "unsupported");
    }

    #[test]
    fn strings() {
        both_ways(string(2, false), "4142", Value::from("AB"));
        both_ways(string(3, false), "4142 4300", Value::from("ABC"));
        both_ways(string(3, true), "4241 0043", Value::from("ABC"));
        both_ways(string(4, false), "4100 0000", Value::from("A"));
        both_ways(string(4, false), "0000 0000", Value::from(""));
        both_ways(string(2, false), "C3A9", Value::from("é"));
        let dec = |e: Encoding, hex| decode_registers(&e, &w(hex), T::String);
        // The value ends at the first NUL; the odd last byte is not part of it.
        assert_eq!(dec(string(4, false), "4142 0044"), Ok(Value::from("AB")));
        assert_eq!(dec(string(3, false), "4142 4344"), Ok(Value::from("ABC")));
        // E9 74 is not UTF-8, so it reads as Latin-1 "ét".
        assert_eq!(dec(string(2, false), "E974"), Ok(Value::from("ét")));
        assert_eq!(dec(string(2, true), "74E9"), Ok(Value::from("ét")));
        assert_eq!(out(&string(3, false), &Value::from("ABCD")), "range");
        assert_eq!(out(&string(3, false), &Value::from("éé")), "range");
    }

    #[test]
    fn check_accepts_and_refuses() {
        use Area::*;
        let p = Encoding::new;
        let ok = [
            (p(D::Bool), Coil, T::Bool),
            (p(D::Bool), Discrete, T::Bool),
            (bit(0), Holding, T::Bool),
            (bit(15), Input, T::Bool),
            (p(D::U16), Input, T::Int),
            (p(D::I64), Holding, T::Int),
            (p(D::U32), Holding, T::Float),
            (p(D::F64), Input, T::Float),
            (scaled(D::I16, 0.1, 5.0), Holding, T::Float),
            (string(1, false), Holding, T::String),
        ];
        for (e, area, t) in ok {
            assert_eq!(check(&e, area, t), Ok(()), "{e:?} {area} {t}");
        }
        let (mut u16_bit, mut bit_offset) = (p(D::U16), bit(0));
        u16_bit.bit = Some(1);
        bit_offset.offset = 1.0;
        let refused = [
            (p(D::U16), Coil, T::Int, "point's type as bool"),
            (bit(0), Coil, T::Bool, "remove `bit`"),
            (p(D::Bool), Discrete, T::Int, "signal as bool"),
            (p(D::Bool), Holding, T::Bool, "add `bit: N`"),
            (bit(16), Holding, T::Bool, "`bit: 15`"),
            (bit(3), Holding, T::Int, "signal as bool"),
            (u16_bit, Holding, T::Int, "only applies to bool"),
            (p(D::F32), Input, T::Int, "signal as float"),
            (scaled(D::U16, 0.1, 0.0), Input, T::Int, "a float signal"),
            (scaled(D::U16, 0.0, 0.0), Input, T::Float, "non-zero"),
            (scaled(D::U16, 1.0, f64::NAN), Input, T::Float, "finite"),
            (p(D::U16), Input, T::Bool, "`bit: N`"),
            (p(D::U16), Input, T::String, "signal as int"),
            (string(4, false), Input, T::Int, "signal as string"),
            (string(0, false), Input, T::String, "at least 1 byte"),
            (
                scaled(D::String { len: 2 }, 2.0, 0.0),
                Input,
                T::String,
                "remove",
            ),
            (bit_offset, Input, T::Bool, "remove them"),
        ];
        for (e, area, t, hint) in refused {
            let msg = check(&e, area, t).err().unwrap_or_default();
            assert!(msg.contains(hint), "{e:?} {area} {t}: {msg:?}");
        }
    }

    /// The bits of `raw` read as integer type `ty`, derived without the codec.
    fn int_of(ty: D, raw: u64) -> i128 {
        match ty {
            D::U16 => i128::from(raw as u16),
            D::I16 => i128::from(raw as u16 as i16),
            D::U32 => i128::from(raw as u32),
            D::I32 => i128::from(raw as u32 as i32),
            D::U64 => i128::from(raw),
            _ => i128::from(raw as i64),
        }
    }

    fn any_encoding() -> impl Strategy<Value = Encoding> {
        let ty = prop_oneof![
            select([&INTS[..], &[D::Bool, D::F32, D::F64]].concat()),
            (0u16..12).prop_map(|len| D::String { len }),
        ];
        let num = select(&[1.0, 0.0, -0.5, 1e300, 1e-300, f64::NAN, f64::INFINITY][..]);
        let parts = (ty, select(&ORDERS[..]), prop::option::of(0u8..20));
        (parts, any::<bool>(), num.clone(), num).prop_map(
            |((ty, order, bit), swap, scale, offset)| {
                let mut e = Encoding::new(ty);
                (e.order, e.bit, e.swap_bytes) = (order, bit, swap);
                (e.scale, e.offset) = (scale, offset);
                e
            },
        )
    }

    fn any_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::Int),
            any::<f64>().prop_map(Value::Float),
            ".{0,10}".prop_map(|s| Value::from(s.as_str())),
        ]
    }

    /// Turns a failed conversion into a failed test case instead of a panic.
    fn ok<V>(r: Result<V, CodecError>) -> Result<V, TestCaseError> {
        r.map_err(|e| TestCaseError::fail(e.to_string()))
    }

    proptest! {
        #[test]
        fn never_panics(
            e in any_encoding(),
            regs in prop::collection::vec(any::<u16>(), 0..10),
            target in select(vec![T::Bool, T::Int, T::Float, T::String]),
            value in any_value(),
            area in select(&Area::ALL[..]),
        ) {
            if let Ok(v) = decode_registers(&e, &regs, target) {
                prop_assert_eq!(v.value_type(), target);
                prop_assert!(area.is_bits() || check(&e, area, target).is_ok());
            }
            if let Ok(written) = encode_registers(&e, &value) {
                prop_assert_eq!(written.len(), usize::from(e.ty.registers()));
            }
        }

        #[test]
        fn integers_round_trip(
            ty in select(&INTS[..]),
            order in select(&ORDERS[..]),
            raw in any::<u64>(),
            words in prop::collection::vec(any::<u16>(), 4),
        ) {
            let e = enc(ty, order);
            if let Ok(n) = i64::try_from(int_of(ty, raw)) {
                let regs = ok(encode_registers(&e, &Value::Int(n)))?;
                prop_assert_eq!(decode_registers(&e, &regs, T::Int), Ok(Value::Int(n)));
            }
            let regs = &words[..usize::from(ty.registers())];
            match decode_registers(&e, regs, T::Int) {
                Ok(v) => prop_assert_eq!(encode_registers(&e, &v), Ok(regs.to_vec())),
                Err(err) => {
                    // Only a u64 whose most significant byte (A) has its top bit set fails.
                    let a = match order {
                        Order::Abcd => words[0] >> 8,
                        Order::Cdab => words[3] >> 8,
                        Order::Badc => words[0] & 0xFF,
                        Order::Dcba => words[3] & 0xFF,
                    };
                    prop_assert!(ty == D::U64 && a >= 0x80, "{:?}", err);
                    prop_assert_eq!(kind(&Err::<(), _>(err)), "range");
                }
            }
        }

        #[test]
        fn floats_round_trip(
            order in select(&ORDERS[..]),
            x in any::<f64>(),
            words in prop::collection::vec(any::<u16>(), 4),
        ) {
            for (ty, v) in [(D::F32, f64::from(x as f32)), (D::F64, x)] {
                let e = enc(ty, order);
                if v.is_finite() {
                    let regs = ok(encode_registers(&e, &Value::Float(v)))?;
                    prop_assert_eq!(decode_registers(&e, &regs, T::Float), Ok(Value::Float(v)));
                }
                let regs = &words[..usize::from(ty.registers())];
                match decode_registers(&e, regs, T::Float) {
                    Ok(v) => prop_assert_eq!(encode_registers(&e, &v), Ok(regs.to_vec())),
                    Err(err) => prop_assert_eq!(err, CodecError::NotFinite),
                }
            }
        }

        #[test]
        fn scaled_points_round_trip(
            ty in select(vec![D::I32, D::U16, D::I16]),
            scale in select(vec![0.1, 0.5, 2.0, -0.01, 1e-3]),
            offset in select(vec![0.0, -40.0, 273.15]),
            words in prop::collection::vec(any::<u16>(), 2),
        ) {
            let e = scaled(ty, scale, offset);
            let regs = &words[..usize::from(ty.registers())];
            let v = ok(decode_registers(&e, regs, T::Float))?;
            prop_assert_eq!(encode_registers(&e, &v), Ok(regs.to_vec()));
        }

        #[test]
        fn strings_round_trip(
            s in "[^\u{0}]{0,6}",
            len in 1u16..20,
            swap in any::<bool>(),
            text in prop::collection::vec(1u8..0x80, 0..20),
        ) {
            let e = string(len, swap);
            match encode_registers(&e, &Value::from(s.as_str())) {
                Ok(regs) => {
                    let back = decode_registers(&e, &regs, T::String);
                    prop_assert_eq!(back, Ok(Value::from(s.as_str())));
                }
                Err(_) => prop_assert!(s.len() > usize::from(len)),
            }
            // Registers holding NUL-padded ASCII survive a read and a write.
            let mut bytes: Vec<u8> = text.into_iter().take(usize::from(len)).collect();
            bytes.resize(2 * usize::from(len.div_ceil(2)), 0);
            let pair = |p: &[u8]| u16::from_be_bytes([p[0], p[1]]);
            let maybe_swap = |r: u16| if swap { r.swap_bytes() } else { r };
            let regs: Vec<u16> = bytes.chunks(2).map(pair).map(maybe_swap).collect();
            let v = ok(decode_registers(&e, &regs, T::String))?;
            prop_assert_eq!(encode_registers(&e, &v), Ok(regs));
        }

        #[test]
        fn bits_round_trip(reg in any::<u16>(), b in 0u8..16, on in any::<bool>()) {
            let written = with_bit(reg, b, on);
            prop_assert_eq!(decode_registers(&bit(b), &[written], T::Bool), Ok(Value::Bool(on)));
            prop_assert_eq!(written & !(1 << b), reg & !(1 << b));
        }
    }
}
