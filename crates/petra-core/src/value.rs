//! Typed signal values.
//!
//! A signal has exactly one [`ValueType`] for its whole life; the bus refuses a value of another
//! type instead of coercing it (a float written into a bool signal is a bug, not a `true`).

use std::fmt;
use std::sync::Arc;

/// The type of a signal, fixed in the configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValueType {
    Bool,
    Int,
    Float,
    String,
}

impl ValueType {
    /// The name used in the configuration file and the API.
    pub fn name(self) -> &'static str {
        match self {
            ValueType::Bool => "bool",
            ValueType::Int => "int",
            ValueType::Float => "float",
            ValueType::String => "string",
        }
    }

    /// Parses a configuration type name.
    pub fn parse(s: &str) -> Option<ValueType> {
        Some(match s {
            "bool" => ValueType::Bool,
            "int" => ValueType::Int,
            "float" => ValueType::Float,
            "string" => ValueType::String,
            _ => return None,
        })
    }

    /// The value a signal holds before anything wrote it (its quality says so).
    pub fn zero(self) -> Value {
        match self {
            ValueType::Bool => Value::Bool(false),
            ValueType::Int => Value::Int(0),
            ValueType::Float => Value::Float(0.0),
            ValueType::String => Value::String(Arc::from("")),
        }
    }

    /// True for int and float.
    pub fn is_numeric(self) -> bool {
        matches!(self, ValueType::Int | ValueType::Float)
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A signal value. Strings are shared (`Arc<str>`) so copying a sample never copies text.
#[derive(Clone, Debug)]
pub enum Value {
    Bool(bool),
    Int(i64),
    Float(f64),
    String(Arc<str>),
}

impl Value {
    pub fn value_type(&self) -> ValueType {
        match self {
            Value::Bool(_) => ValueType::Bool,
            Value::Int(_) => ValueType::Int,
            Value::Float(_) => ValueType::Float,
            Value::String(_) => ValueType::String,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// Floats as they are; ints widened (exact up to 2^53), so numeric ports accept both.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The value as history stores it: float64, bools as 0/1, strings as NaN.
    pub fn to_history_f64(&self) -> f64 {
        match self {
            Value::Bool(b) => f64::from(u8::from(*b)),
            Value::Int(i) => *i as f64,
            Value::Float(f) => *f,
            Value::String(_) => f64::NAN,
        }
    }

    /// Identity, not arithmetic equality: floats compare by bits so NaN equals NaN and a
    /// repeated NaN is not reported as a change.
    pub fn same(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Float(a), Value::Float(b)) => a.to_bits() == b.to_bits(),
            (Value::String(a), Value::String(b)) => a == b,
            _ => false,
        }
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        self.same(other)
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::String(s) => write!(f, "{s:?}"),
        }
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Bool(v)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Int(v)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::Float(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::String(Arc::from(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_round_trip_through_names() {
        for t in [
            ValueType::Bool,
            ValueType::Int,
            ValueType::Float,
            ValueType::String,
        ] {
            assert_eq!(ValueType::parse(t.name()), Some(t));
            assert_eq!(t.zero().value_type(), t);
        }
        assert_eq!(ValueType::parse("double"), None);
    }

    #[test]
    fn nan_is_the_same_as_nan_but_int_is_not_float() {
        assert_eq!(Value::Float(f64::NAN), Value::Float(f64::NAN));
        assert_ne!(Value::Int(1), Value::Float(1.0));
        assert_ne!(Value::Float(0.0), Value::Float(-0.0));
    }

    #[test]
    fn history_encoding() {
        assert_eq!(Value::Bool(true).to_history_f64(), 1.0);
        assert_eq!(Value::Int(-3).to_history_f64(), -3.0);
        assert!(Value::from("x").to_history_f64().is_nan());
        assert_eq!(Value::Int(7).as_f64(), Some(7.0));
        assert_eq!(Value::Bool(true).as_f64(), None);
    }
}
