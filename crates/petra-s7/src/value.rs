//! Between PLC values ([`S7Value`]) and bus values ([`Value`]), by the signal's type.
//!
//! | S7 type | signal types |
//! |---|---|
//! | BOOL | bool, int (0 / 1) |
//! | BYTE, WORD, INT, DWORD, DINT | int, float |
//! | REAL, LREAL | float |
//! | CHAR, STRING | string |
//!
//! [`check`] refuses every other pairing when the configuration is compiled, so at run time a
//! conversion fails only for values (a float that is not a whole number, a string too long).

use crate::address::{DataType, S7Value};
use petra_core::{Value, ValueType};

/// Whether a point of S7 type `ty` can feed (and take writes from) a signal of type `signal`.
pub fn check(ty: DataType, signal: ValueType) -> Result<(), String> {
    let ok = match ty {
        DataType::Bool => matches!(signal, ValueType::Bool | ValueType::Int),
        DataType::Byte | DataType::Word | DataType::Int | DataType::DWord | DataType::DInt => {
            matches!(signal, ValueType::Int | ValueType::Float)
        }
        DataType::Real | DataType::LReal => signal == ValueType::Float,
        DataType::Char | DataType::String { .. } => signal == ValueType::String,
    };
    if ok {
        return Ok(());
    }
    let fits = match ty {
        DataType::Bool => "bool or int",
        DataType::Real | DataType::LReal => "float",
        DataType::Char | DataType::String { .. } => "string",
        _ => "int or float",
    };
    Err(format!(
        "the S7 type {ty} cannot feed a {} signal; it feeds a {fits} signal",
        signal.name()
    ))
}

/// The bus value of a PLC value, for a signal of type `signal` (pairs allowed by [`check`]).
pub fn to_value(v: S7Value, signal: ValueType) -> Result<Value, String> {
    Ok(match (v, signal) {
        (S7Value::Bool(b), ValueType::Bool) => Value::Bool(b),
        (S7Value::Bool(b), ValueType::Int) => Value::Int(b.into()),
        (S7Value::Int(i), ValueType::Int) => Value::Int(i),
        (S7Value::Int(i), ValueType::Float) => Value::Float(i as f64),
        (S7Value::Real(r), ValueType::Float) if r.is_finite() => Value::Float(r),
        (S7Value::Real(r), ValueType::Float) => return Err(format!("the PLC holds {r}")),
        (S7Value::String(s), ValueType::String) => Value::String(s.into()),
        (v, t) => return Err(format!("{v:?} does not fit a {} signal", t.name())),
    })
}

/// The PLC value to write for a bus value, for a point of S7 type `ty`.
pub fn from_value(v: &Value, ty: DataType) -> Result<S7Value, String> {
    Ok(match (v, ty) {
        (Value::Bool(b), DataType::Bool) => S7Value::Bool(*b),
        (Value::Int(i @ (0 | 1)), DataType::Bool) => S7Value::Bool(*i == 1),
        (Value::Int(i), DataType::Bool) => return Err(format!("{i} is not 0 or 1")),
        (Value::Int(i), DataType::Real | DataType::LReal) => S7Value::Real(*i as f64),
        (Value::Int(i), _) => S7Value::Int(*i),
        (Value::Float(f), DataType::Real | DataType::LReal) => S7Value::Real(*f),
        (Value::Float(f), _) if f.fract() == 0.0 && f.abs() < 9.0e15 => S7Value::Int(*f as i64),
        (Value::Float(f), _) => return Err(format!("{f} is not a whole number for {ty}")),
        (Value::String(s), _) => S7Value::String(s.to_string()),
        (v, ty) => {
            return Err(format!(
                "a {} value cannot be written as {ty}",
                v.value_type().name()
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_allowed_pair_converts_both_ways() {
        let cases = [
            (
                DataType::Bool,
                S7Value::Bool(true),
                Value::Bool(true),
                ValueType::Bool,
            ),
            (
                DataType::Bool,
                S7Value::Bool(true),
                Value::Int(1),
                ValueType::Int,
            ),
            (
                DataType::Int,
                S7Value::Int(-5),
                Value::Int(-5),
                ValueType::Int,
            ),
            (
                DataType::DInt,
                S7Value::Int(7),
                Value::Float(7.0),
                ValueType::Float,
            ),
            (
                DataType::Real,
                S7Value::Real(1.5),
                Value::Float(1.5),
                ValueType::Float,
            ),
            (
                DataType::Char,
                S7Value::String("x".into()),
                Value::String("x".into()),
                ValueType::String,
            ),
        ];
        for (ty, s7, bus, sig) in cases {
            check(ty, sig).unwrap();
            assert_eq!(to_value(s7.clone(), sig).unwrap(), bus, "{ty} -> {sig:?}");
            assert_eq!(from_value(&bus, ty).unwrap(), s7, "{sig:?} -> {ty}");
        }
    }

    #[test]
    fn wrong_pairs_and_values_are_refused_with_reasons() {
        let e = check(DataType::Real, ValueType::Int).unwrap_err();
        assert!(e.contains("feeds a float signal"), "{e}");
        assert!(check(DataType::String { length: 4 }, ValueType::Float).is_err());
        assert!(from_value(&Value::Float(1.5), DataType::Int).is_err());
        assert!(from_value(&Value::Int(2), DataType::Bool).is_err());
        assert!(to_value(S7Value::Real(f64::NAN), ValueType::Float).is_err());
    }
}
