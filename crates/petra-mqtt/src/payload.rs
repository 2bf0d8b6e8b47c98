//! Payloads in and out.
//!
//! **In** (`subscribe`): the payload is UTF-8 text. Without `json`, it is the value itself:
//! `21.5`, `-3`, `true`/`false` (also `1`/`0`, `on`/`off` for a bool), or any text for a
//! string signal. With `json: /pointer`, the payload is a JSON document and the pointer
//! (RFC 6901) selects the value, which must be a JSON number, bool or string of the signal's
//! type (a number that is a whole number feeds an int signal; any number a float). Anything
//! else is refused with a reason — the driver counts it and marks the signal `uncertain`.
//!
//! **Out** (`{prefix}/signals/{signal}`):
//! `{"value":21.5,"quality":"good","ts":"2026-12-04T15:00:00.000Z"}`; quality is `good`,
//! `uncertain` or `bad`; a float that is not finite is `null`.

use petra_core::{Quality, Timestamp, Value, ValueType};

/// The value of a payload for a signal of type `ty`.
pub fn parse(payload: &[u8], ty: ValueType, json: Option<&str>) -> Result<Value, String> {
    let text =
        std::str::from_utf8(payload).map_err(|_| "the payload is not UTF-8 text".to_string())?;
    match json {
        None => parse_text(text.trim(), ty),
        Some(pointer) => {
            let doc: serde_json::Value =
                serde_json::from_str(text).map_err(|e| format!("the payload is not JSON ({e})"))?;
            let v = doc
                .pointer(pointer)
                .ok_or_else(|| format!("the JSON has nothing at `{pointer}`"))?;
            from_json(v, ty)
        }
    }
}

fn parse_text(text: &str, ty: ValueType) -> Result<Value, String> {
    let bad = || format!("`{}` is not a {}", shorten(text), ty.name());
    match ty {
        ValueType::Bool => match text.to_ascii_lowercase().as_str() {
            "true" | "1" | "on" => Ok(Value::Bool(true)),
            "false" | "0" | "off" => Ok(Value::Bool(false)),
            _ => Err(bad()),
        },
        ValueType::Int => text.parse::<i64>().map(Value::Int).map_err(|_| bad()),
        ValueType::Float => match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Value::Float(f)),
            _ => Err(bad()),
        },
        ValueType::String => Ok(Value::String(text.into())),
    }
}

/// A JSON value as a value of type `ty` (also used for commands).
pub fn from_json(v: &serde_json::Value, ty: ValueType) -> Result<Value, String> {
    use serde_json::Value as J;
    let bad = || format!("{} is not a {}", shorten(&v.to_string()), ty.name());
    match (ty, v) {
        (ValueType::Bool, J::Bool(b)) => Ok(Value::Bool(*b)),
        (ValueType::Int, J::Number(n)) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                    .map(|f| f as i64)
            })
            .map(Value::Int)
            .ok_or_else(bad),
        (ValueType::Float, J::Number(n)) => n.as_f64().map(Value::Float).ok_or_else(bad),
        (ValueType::String, J::String(s)) => Ok(Value::String(s.as_str().into())),
        _ => Err(bad()),
    }
}

/// The JSON of a published signal.
pub fn signal_json(value: &Value, quality: Quality, ts: Timestamp) -> Vec<u8> {
    let v = match value {
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Int(i) => serde_json::Value::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null),
        Value::String(s) => serde_json::Value::String(s.to_string()),
    };
    // In the order of the specification's example (serde_json would sort the keys).
    format!(
        r#"{{"value":{v},"quality":"{}","ts":"{}"}}"#,
        quality.name(),
        ts.to_rfc3339_millis()
    )
    .into_bytes()
}

fn shorten(s: &str) -> String {
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use petra_core::BadReason;

    #[test]
    fn plain_text_payloads() {
        assert_eq!(
            parse(b" 21.5\n", ValueType::Float, None),
            Ok(Value::Float(21.5))
        );
        assert_eq!(parse(b"-3", ValueType::Int, None), Ok(Value::Int(-3)));
        assert_eq!(parse(b"ON", ValueType::Bool, None), Ok(Value::Bool(true)));
        assert_eq!(parse(b"0", ValueType::Bool, None), Ok(Value::Bool(false)));
        assert_eq!(
            parse(b"hello", ValueType::String, None),
            Ok(Value::String("hello".into()))
        );
        assert!(
            parse(b"warm", ValueType::Float, None)
                .unwrap_err()
                .contains("`warm` is not a float")
        );
        assert!(parse(b"1.5", ValueType::Int, None).is_err());
        assert!(parse(b"NaN", ValueType::Float, None).is_err());
        assert!(
            parse(&[0xFF, 0xFE], ValueType::String, None)
                .unwrap_err()
                .contains("UTF-8")
        );
    }

    #[test]
    fn json_pointer_payloads() {
        let doc =
            br#"{"temp": 21.5, "n": 4, "m": 4.0, "on": true, "id": "A", "deep": {"x": [1, 2]}}"#;
        assert_eq!(
            parse(doc, ValueType::Float, Some("/temp")),
            Ok(Value::Float(21.5))
        );
        assert_eq!(
            parse(doc, ValueType::Float, Some("/n")),
            Ok(Value::Float(4.0))
        );
        assert_eq!(parse(doc, ValueType::Int, Some("/m")), Ok(Value::Int(4)));
        assert_eq!(
            parse(doc, ValueType::Bool, Some("/on")),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            parse(doc, ValueType::String, Some("/id")),
            Ok(Value::String("A".into()))
        );
        assert_eq!(
            parse(doc, ValueType::Int, Some("/deep/x/1")),
            Ok(Value::Int(2))
        );
        assert!(parse(doc, ValueType::Int, Some("/temp")).is_err());
        assert!(
            parse(doc, ValueType::Int, Some("/none"))
                .unwrap_err()
                .contains("nothing at `/none`")
        );
        assert!(
            parse(b"{broken", ValueType::Int, Some("/x"))
                .unwrap_err()
                .contains("not JSON")
        );
    }

    #[test]
    fn published_json() {
        let ts = Timestamp::from_unix_nanos(1_764_860_400_123_000_000);
        let j = String::from_utf8(signal_json(&Value::Float(21.5), Quality::Good, ts)).unwrap();
        assert_eq!(
            j,
            r#"{"value":21.5,"quality":"good","ts":"2025-12-04T15:00:00.123Z"}"#
        );
        let j = signal_json(
            &Value::Float(f64::NAN),
            Quality::Bad(BadReason::Timeout),
            ts,
        );
        let v: serde_json::Value = serde_json::from_slice(&j).unwrap();
        assert_eq!(
            (v["value"].clone(), v["quality"].clone()),
            (serde_json::Value::Null, "bad".into())
        );
    }
}
