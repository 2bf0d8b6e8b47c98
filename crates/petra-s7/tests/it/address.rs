//! Address parser accept/refuse tables, type validation, value conversion.

use petra_s7::codec::Area;
use petra_s7::{Address, AddressError, DataType, S7Value, Variable, Width};

/// input, canonical spelling, area, db, byte, bit, width
type Accepted = (
    &'static str,
    &'static str,
    Area,
    u16,
    u32,
    Option<u8>,
    Width,
);
/// address, type, length, count, Ok(byte length) or Err(message fragment)
type Fit = (
    &'static str,
    Option<&'static str>,
    Option<u32>,
    Option<u32>,
    Result<u32, &'static str>,
);
/// address, type, length, count, value, message fragment
type Refused = (
    &'static str,
    Option<&'static str>,
    Option<u32>,
    Option<u32>,
    S7Value,
    &'static str,
);

#[test]
fn accepted_addresses() {
    use Area::*;
    use Width::*;
    #[rustfmt::skip]
    let table: &[Accepted] = &[
        ("DB1.DBX0.0", "DB1.DBX0.0", DataBlock, 1, 0, Some(0), Bit),
        ("db1.dbx3.7", "DB1.DBX3.7", DataBlock, 1, 3, Some(7), Bit),
        ("DB1.DBB2", "DB1.DBB2", DataBlock, 1, 2, None, Byte),
        ("DB1.DBW2", "DB1.DBW2", DataBlock, 1, 2, None, Word),
        ("DB1.DBD4", "DB1.DBD4", DataBlock, 1, 4, None, DWord),
        ("DB65535.DBB2097151", "DB65535.DBB2097151", DataBlock, 65535, 2097151, None, Byte),
        ("DB007.DBW010", "DB7.DBW10", DataBlock, 7, 10, None, Word),
        ("M10.1", "M10.1", Flags, 0, 10, Some(1), Bit),
        ("MB10", "MB10", Flags, 0, 10, None, Byte),
        ("mw10", "MW10", Flags, 0, 10, None, Word),
        ("MD10", "MD10", Flags, 0, 10, None, DWord),
        ("I0.1", "I0.1", Inputs, 0, 0, Some(1), Bit),
        ("E0.1", "I0.1", Inputs, 0, 0, Some(1), Bit),
        ("IB0", "IB0", Inputs, 0, 0, None, Byte),
        ("EB0", "IB0", Inputs, 0, 0, None, Byte),
        ("IW4", "IW4", Inputs, 0, 4, None, Word),
        ("ew4", "IW4", Inputs, 0, 4, None, Word),
        ("ID4", "ID4", Inputs, 0, 4, None, DWord),
        ("Q0.0", "Q0.0", Outputs, 0, 0, Some(0), Bit),
        ("A0.0", "Q0.0", Outputs, 0, 0, Some(0), Bit),
        ("QB1", "QB1", Outputs, 0, 1, None, Byte),
        ("QW2", "QW2", Outputs, 0, 2, None, Word),
        ("AW2", "QW2", Outputs, 0, 2, None, Word),
        ("QD4", "QD4", Outputs, 0, 4, None, DWord),
        ("  MW10 ", "MW10", Flags, 0, 10, None, Word),
    ];
    for &(input, canonical, area, db, byte, bit, width) in table {
        let a: Address = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(
            a,
            Address {
                area,
                db,
                byte,
                bit,
                width
            },
            "{input}"
        );
        assert_eq!(a.to_string(), canonical, "{input}");
        assert_eq!(
            Address::parse(canonical),
            Ok(a),
            "canonical form of {input}"
        );
    }
}

#[test]
fn refused_addresses() {
    // input, a fragment of the message
    let table: &[(&str, &str)] = &[
        ("", "must start with DB, I, E, Q, A or M"),
        ("X10", "must start with DB"),
        ("DB", "a DB number must follow"),
        ("DB.DBB0", "a DB number must follow"),
        ("DB0.DBX0.0", "DB numbers run from 1 to 65535"),
        ("DB65536.DBB0", "DB numbers run from 1 to 65535"),
        (
            "DB99999999999999999999999.DBB0",
            "DB numbers run from 1 to 65535",
        ),
        ("DB1DBB0", "`.DBX`, `.DBB`, `.DBW` or `.DBD` must follow"),
        ("DB1.DBY0", "the access must be DBX"),
        ("DB1.DB0", "the access must be DBX"),
        ("DB1.DBX0", "a bit address needs `.bit`"),
        ("DB1.DBX0.8", "bits are numbered 0 to 7"),
        ("DB1.DBX0.", "a bit number (0 to 7) must follow"),
        ("DB1.DBB0.1", "only bit addresses"),
        ("DB1.DBB", "a byte offset is missing"),
        ("DB1.DBB2097152", "byte offsets run from 0 to 2097151"),
        ("M10", "a bit address needs `.bit`"),
        ("MX10.1", "a bit address (M10.1) or B, W, D"),
        ("MB", "a byte offset is missing"),
        ("MW10x", "unexpected characters"),
        ("M10.1.2", "unexpected characters"),
        ("M-1", "a bit address (M10.1) or B, W, D"),
        ("Q 1", "a bit address (M10.1) or B, W, D"),
        ("IB2097152", "byte offsets run from 0 to 2097151"),
        ("PIW256", "must start with DB"),
    ];
    for &(input, fragment) in table {
        match Address::parse(input) {
            Ok(a) => panic!("{input:?} parsed as {a}"),
            Err(e) => {
                let msg = e.to_string();
                assert!(msg.contains(fragment), "{input:?}: {msg}");
                assert!(
                    msg.contains(&format!("`{input}`")),
                    "{input:?} not quoted: {msg}"
                );
            }
        }
    }
}

fn var(
    address: &str,
    ty: Option<&str>,
    length: Option<u32>,
    count: Option<u32>,
) -> Result<Variable, AddressError> {
    Variable::parse(address, ty, length, count)
}

#[test]
fn type_fits_address() {
    #[rustfmt::skip]
    let table: &[Fit] = &[
        ("DB1.DBD4", Some("real"), None, None, Ok(4)),
        ("DB1.DBD4", Some("DINT"), None, None, Ok(4)),
        ("DB1.DBD4", Some("DWORD"), None, None, Ok(4)),
        ("MD10", Some("REAL"), None, None, Ok(4)),
        ("DB1.DBW4", Some("REAL"), None, None, Err("double-word address such as DB1.DBD4")),
        ("DB1.DBB4", Some("DINT"), None, None, Err("double-word address")),
        ("DB1.DBW2", Some("INT"), None, None, Ok(2)),
        ("IW4", Some("WORD"), None, None, Ok(2)),
        ("DB1.DBD2", Some("INT"), None, None, Err("word address such as DB1.DBW2")),
        ("DB1.DBX0.0", Some("BOOL"), None, None, Ok(1)),
        ("Q0.1", None, None, None, Ok(1)),
        ("DB1.DBB0", Some("BOOL"), None, None, Err("bit address such as DB1.DBX0.0")),
        ("DB1.DBX0.0", Some("INT"), None, None, Err("word address")),
        ("DB1.DBB0", Some("BYTE"), None, None, Ok(1)),
        ("MB0", Some("CHAR"), None, None, Ok(1)),
        ("DB1.DBW0", Some("BYTE"), None, None, Err("byte address")),
        ("DB2.DBB10", Some("STRING"), Some(20), None, Ok(22)),
        ("DB2.DBB10", Some("STRING"), Some(254), None, Ok(256)),
        ("DB2.DBW10", Some("STRING"), Some(20), None, Err("byte address such as DB1.DBB10")),
        ("DB2.DBB10", Some("STRING"), None, None, Err("STRING needs `length` from 1 to 254")),
        ("DB2.DBB10", Some("STRING"), Some(0), None, Err("STRING needs `length`")),
        ("DB2.DBB10", Some("STRING"), Some(255), None, Err("STRING needs `length`")),
        ("DB2.DBB10", Some("STRING"), Some(10), Some(3), Err("STRING arrays are not supported")),
        ("DB1.DBB0", Some("LREAL"), None, None, Ok(8)),
        ("DB1.DBD0", Some("LREAL"), None, None, Err("byte address")),
        ("DB1.DBB0", Some("INT"), None, Some(10), Ok(20)),
        ("DB1.DBB0", Some("REAL"), None, Some(250), Ok(1000)),
        ("DB1.DBB0", Some("BYTE"), None, Some(1000), Ok(1000)),
        ("DB1.DBB0", Some("CHAR"), None, Some(1), Ok(1)),
        ("DB1.DBW0", Some("INT"), None, Some(10), Err("an array needs the byte address of its first element")),
        ("DB1.DBX0.0", Some("BOOL"), None, Some(8), Err("BOOL arrays are not supported")),
        ("DB1.DBB0", Some("INT"), None, Some(0), Err("`count` must be 1 to 65535, got 0")),
        ("DB1.DBB0", Some("BYTE"), None, Some(70000), Err("`count` must be 1 to 65535")),
        ("DB1.DBB0", Some("REAL"), None, Some(20000), Err("the 65535 bytes one point may span")),
        ("DB1.DBD2097148", Some("REAL"), None, None, Ok(4)),
        ("DB1.DBD2097150", Some("REAL"), None, None, Err("the end of the S7 address space")),
        ("DB1.DBB0", Some("BYTE"), Some(4), None, Err("`length` applies only to STRING")),
        ("DB1.DBB0", None, Some(4), None, Err("`length` needs `type: STRING`")),
        ("DB1.DBB0", Some("FLOAT"), None, None, Err("unknown S7 type `FLOAT`")),
    ];
    for (address, ty, length, count, expected) in table {
        let got = var(address, *ty, *length, *count);
        let ctx = format!("{address} {ty:?} length {length:?} count {count:?}");
        match (got, expected) {
            (Ok(v), Ok(len)) => assert_eq!(v.byte_len(), *len, "{ctx}"),
            (Err(e), Err(fragment)) => {
                assert!(e.to_string().contains(fragment), "{ctx}: {e}")
            }
            (got, _) => panic!("{ctx}: unexpected {got:?}"),
        }
    }
}

#[test]
fn default_types() {
    let ty = |a| var(a, None, None, None).unwrap().ty;
    assert_eq!(ty("DB1.DBX0.0"), DataType::Bool);
    assert_eq!(ty("MB1"), DataType::Byte);
    assert_eq!(ty("MW10"), DataType::Word);
    assert_eq!(ty("DB1.DBD4"), DataType::DWord);
}

#[test]
fn decode_values() {
    let dec = |a, t: Option<&str>, l, c, bytes: &[u8]| var(a, t, l, c).unwrap().decode(bytes);
    assert_eq!(
        dec("DB1.DBD4", Some("REAL"), None, None, &[0x42, 0x28, 0, 0]),
        Ok(S7Value::Real(42.0))
    );
    assert_eq!(
        dec("DB1.DBB4", Some("LREAL"), None, None, &1.5f64.to_be_bytes()),
        Ok(S7Value::Real(1.5))
    );
    assert_eq!(
        dec("MW0", Some("INT"), None, None, &[0xFF, 0xFE]),
        Ok(S7Value::Int(-2))
    );
    assert_eq!(
        dec("MW0", Some("WORD"), None, None, &[0xFF, 0xFE]),
        Ok(S7Value::Int(65534))
    );
    assert_eq!(
        dec("MD0", Some("DINT"), None, None, &[0xFF; 4]),
        Ok(S7Value::Int(-1))
    );
    assert_eq!(
        dec("MD0", Some("DWORD"), None, None, &[0xFF; 4]),
        Ok(S7Value::Int(4294967295))
    );
    assert_eq!(
        dec("MB0", Some("BYTE"), None, None, &[0xC8]),
        Ok(S7Value::Int(200))
    );
    assert_eq!(
        dec("MB0", Some("CHAR"), None, None, b"A"),
        Ok(S7Value::String("A".into()))
    );
    assert_eq!(
        dec("M0.3", None, None, None, &[0x08]),
        Ok(S7Value::Bool(true))
    );
    assert_eq!(
        dec("M0.3", None, None, None, &[0xF7]),
        Ok(S7Value::Bool(false))
    );
    assert_eq!(
        dec("M0.0", None, None, None, &[0x01]),
        Ok(S7Value::Bool(true))
    );
    let s = [10, 5, b'h', b'e', b'l', b'l', b'o', b'?', 0, 0, 0, 0];
    assert_eq!(
        dec("DB2.DBB10", Some("STRING"), Some(10), None, &s),
        Ok(S7Value::String("hello".into()))
    );
    // Latin-1: 0xE9 is é.
    assert_eq!(
        dec(
            "DB2.DBB0",
            Some("STRING"),
            Some(2),
            None,
            &[2, 2, 0x63, 0xE9]
        ),
        Ok(S7Value::String("cé".into()))
    );
    assert_eq!(
        dec(
            "DB1.DBB0",
            Some("INT"),
            None,
            Some(3),
            &[0, 1, 0xFF, 0xFF, 0x7F, 0xFF]
        ),
        Ok(S7Value::Array(vec![
            S7Value::Int(1),
            S7Value::Int(-1),
            S7Value::Int(32767)
        ]))
    );

    let err = dec(
        "DB2.DBB10",
        Some("STRING"),
        Some(4),
        None,
        &[10, 5, 1, 2, 3, 4],
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("holds 5 characters but `length` is 4"),
        "{err}"
    );
    let err = dec("DB1.DBD4", Some("REAL"), None, None, &[1, 2, 3]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "REAL at `DB1.DBD4`: expected 4 bytes, got 3"
    );
}

#[test]
fn hand_built_variables_do_not_panic() {
    // The fields are public: a bit beyond 7 must not overflow a shift.
    let address = Address {
        area: Area::Flags,
        db: 0,
        byte: 0,
        bit: Some(9),
        width: Width::Bit,
    };
    let v = Variable {
        address,
        ty: DataType::Bool,
        count: None,
    };
    assert_eq!(v.decode(&[0xFF]), Ok(S7Value::Bool(false)));
}

#[test]
fn encode_values() {
    let enc = |a, t: Option<&str>, l, c, v: S7Value| var(a, t, l, c).unwrap().encode(&v);
    assert_eq!(
        enc("DB1.DBD4", Some("REAL"), None, None, S7Value::Real(42.0)),
        Ok(vec![0x42, 0x28, 0, 0])
    );
    assert_eq!(
        enc("MW0", Some("INT"), None, None, S7Value::Int(-2)),
        Ok(vec![0xFF, 0xFE])
    );
    assert_eq!(
        enc("MW0", Some("WORD"), None, None, S7Value::Int(65534)),
        Ok(vec![0xFF, 0xFE])
    );
    assert_eq!(
        enc("MD0", Some("DWORD"), None, None, S7Value::Int(0x01020304)),
        Ok(vec![1, 2, 3, 4])
    );
    assert_eq!(
        enc("M0.3", None, None, None, S7Value::Bool(true)),
        Ok(vec![1])
    );
    assert_eq!(
        enc("MB0", Some("CHAR"), None, None, S7Value::String("é".into())),
        Ok(vec![0xE9])
    );
    assert_eq!(
        enc(
            "DB2.DBB0",
            Some("STRING"),
            Some(6),
            None,
            S7Value::String("hi".into())
        ),
        Ok(vec![6, 2, b'h', b'i', 0, 0, 0, 0])
    );
    assert_eq!(
        enc(
            "DB1.DBB0",
            Some("BYTE"),
            None,
            Some(2),
            S7Value::Array(vec![S7Value::Int(1), S7Value::Int(255)])
        ),
        Ok(vec![1, 255])
    );

    #[rustfmt::skip]
    let refused: &[Refused] = &[
        ("MW0", Some("INT"), None, None, S7Value::Int(40000), "out of range for the type"),
        ("MB0", Some("BYTE"), None, None, S7Value::Int(-1), "out of range"),
        ("MD0", Some("DINT"), None, None, S7Value::Int(1 << 40), "out of range"),
        ("MD0", Some("REAL"), None, None, S7Value::Int(1), "the type needs a real"),
        ("MD0", Some("REAL"), None, None, S7Value::Real(1e40), "out of range for REAL"),
        ("M0.0", None, None, None, S7Value::Int(1), "the type needs a bool"),
        ("MB0", Some("CHAR"), None, None, S7Value::String("ab".into()), "one Latin-1 character"),
        ("DB2.DBB0", Some("STRING"), Some(3), None, S7Value::String("long".into()), "longer than the declared"),
        ("DB2.DBB0", Some("STRING"), Some(3), None, S7Value::String("€".into()), "Latin-1"),
        ("DB1.DBB0", Some("BYTE"), None, Some(2), S7Value::Int(1), "the point is an array"),
        ("DB1.DBB0", Some("BYTE"), None, Some(2), S7Value::Array(vec![S7Value::Int(1)]), "differs from `count`"),
    ];
    for (a, t, l, c, v, fragment) in refused {
        let err = enc(a, *t, *l, *c, v.clone()).unwrap_err();
        assert!(err.to_string().contains(fragment), "{a} {v:?}: {err}");
    }
    let err = enc("MW0", Some("INT"), None, None, S7Value::Int(40000)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot write integer 40000 to INT at `MW0`: out of range for the type"
    );
}

#[test]
fn write_for_planner() {
    let bit = var("Q0.1", None, None, None)
        .unwrap()
        .write(&S7Value::Bool(true))
        .unwrap();
    assert_eq!(
        (bit.area, bit.start, bit.bit, bit.data),
        (Area::Outputs, 0, Some(1), vec![1])
    );
    let w = var("DB3.DBW8", Some("INT"), None, None)
        .unwrap()
        .write(&S7Value::Int(258))
        .unwrap();
    assert_eq!(
        (w.area, w.db, w.start, w.bit, w.data),
        (Area::DataBlock, 3, 8, None, vec![1, 2])
    );
    let r = var("DB3.DBX8.5", None, None, None).unwrap().read_range();
    assert_eq!((r.area, r.db, r.start, r.len), (Area::DataBlock, 3, 8, 1));
}
