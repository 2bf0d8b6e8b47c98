//! Retained signals: values that survive a restart (`retain: true`).
//!
//! Stored in `{data_dir}/retained.json`, written to a temporary file, synced and renamed over
//! the old one, so a crash or power cut leaves either the old or the new file — never half of
//! one. A file that cannot be read is kept as `retained.json.corrupt` and Petra starts from the
//! configured initial values, with a warning, instead of refusing to run.
//!
//! Format: `{"version":1,"signals":{"NAME":{"type":"float","value":2.5,"ts":UNIX_NS}}}`.
//! Non-finite floats are written as the strings `"NaN"`, `"inf"`, `"-inf"`.

use petra_core::{Bus, Quality, SignalId, Timestamp, Value, ValueType};
use serde_json::{Map, Value as Json, json};
use std::fs;
use std::io::Write;
use std::path::Path;

const VERSION: u64 = 1;

fn to_json(v: &Value) -> Json {
    match v {
        Value::Bool(b) => json!(b),
        Value::Int(i) => json!(i),
        Value::Float(f) if f.is_finite() => json!(f),
        Value::Float(f) if f.is_nan() => json!("NaN"),
        Value::Float(f) if *f > 0.0 => json!("inf"),
        Value::Float(_) => json!("-inf"),
        Value::String(s) => json!(s.as_ref()),
    }
}

fn from_json(ty: ValueType, j: &Json) -> Option<Value> {
    Some(match ty {
        ValueType::Bool => Value::Bool(j.as_bool()?),
        ValueType::Int => Value::Int(j.as_i64()?),
        ValueType::Float => Value::Float(match j.as_str() {
            Some("NaN") => f64::NAN,
            Some("inf") => f64::INFINITY,
            Some("-inf") => f64::NEG_INFINITY,
            Some(_) => return None,
            None => j.as_f64()?,
        }),
        ValueType::String => Value::from(j.as_str()?),
    })
}

/// Writes the current values of `ids` atomically.
pub fn save(path: &Path, bus: &Bus, ids: &[SignalId]) -> std::io::Result<()> {
    let mut signals = Map::new();
    for id in ids {
        if let (Some(def), Some(s)) = (bus.def(*id), bus.read(*id)) {
            if s.quality.is_bad() {
                continue; // never retain a value nobody vouches for
            }
            signals.insert(
                def.name.clone(),
                json!({"type": def.ty.name(), "value": to_json(&s.value), "ts": s.ts.unix_nanos()}),
            );
        }
    }
    let doc = json!({"version": VERSION, "signals": signals});
    write_atomic(path, serde_json::to_string_pretty(&doc)?.as_bytes())
}

/// Writes `bytes` to `path` so that a crash leaves either the old or the new file: a
/// temporary file beside it, synced, renamed over it, and the directory synced.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        // Make the rename itself durable.
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Restores retained values onto the bus. Returns how many were restored. Entries for signals
/// that are no longer declared, no longer retained, or changed type are skipped with a warning.
pub fn restore(path: &Path, bus: &Bus, ids: &[SignalId]) -> usize {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return 0,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read retained values; starting from initial values");
            return 0;
        }
    };
    let doc: Json = match serde_json::from_str(&text) {
        Ok(d) => d,
        Err(e) => {
            let bad = path.with_extension("json.corrupt");
            let _ = fs::rename(path, &bad);
            tracing::warn!(path = %path.display(), kept_as = %bad.display(), error = %e,
                "retained values are unreadable; starting from initial values");
            return 0;
        }
    };
    if doc["version"].as_u64() != Some(VERSION) {
        tracing::warn!(path = %path.display(), "retained values have an unknown version; ignored");
        return 0;
    }
    let Some(signals) = doc["signals"].as_object() else {
        return 0;
    };
    let mut restored = 0;
    for (name, entry) in signals {
        let Some(id) = bus.id(name).filter(|id| ids.contains(id)) else {
            tracing::info!(signal = %name, "retained value of a signal that is no longer retained; dropped");
            continue;
        };
        let ty = bus.def(id).map(|d| d.ty).unwrap_or(ValueType::Bool);
        let value = (entry["type"].as_str() == Some(ty.name()))
            .then(|| from_json(ty, &entry["value"]))
            .flatten();
        match value {
            Some(v) => {
                let ts = Timestamp::from_unix_nanos(entry["ts"].as_i64().unwrap_or(0));
                if bus.write(id, v, Quality::Good, ts).is_ok() {
                    restored += 1;
                }
            }
            None => tracing::warn!(signal = %name, expected = %ty,
                "retained value does not match the signal's type; using the initial value"),
        }
    }
    restored
}

#[cfg(test)]
mod tests {
    use super::*;
    use petra_core::{BadReason, BusBuilder, SignalDef};

    fn bus() -> std::sync::Arc<Bus> {
        BusBuilder::new(vec![
            SignalDef::new("f", ValueType::Float).with_initial(1.0),
            SignalDef::new("i", ValueType::Int).with_initial(1),
            SignalDef::new("b", ValueType::Bool).with_initial(false),
            SignalDef::new("s", ValueType::String).with_initial("a"),
            SignalDef::new("bad", ValueType::Float),
        ])
        .unwrap()
        .build(Timestamp::from_unix_nanos(5))
    }

    fn all(bus: &Bus) -> Vec<SignalId> {
        (0..bus.len()).map(SignalId::from_index).collect()
    }

    #[test]
    fn values_of_every_type_survive_a_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("retained.json");
        let a = bus();
        let t = Timestamp::from_unix_nanos(42);
        for (n, v) in [
            ("f", Value::Float(f64::NAN)),
            ("i", Value::Int(-7)),
            ("b", Value::Bool(true)),
            ("s", Value::from("batch 12")),
        ] {
            a.write(a.id(n).unwrap(), v, Quality::Good, t).unwrap();
        }
        save(&path, &a, &all(&a)).unwrap();
        let b = bus();
        assert_eq!(
            restore(&path, &b, &all(&b)),
            4,
            "the bad-quality signal is not retained"
        );
        for n in ["f", "i", "b", "s"] {
            let (x, y) = (
                a.read(a.id(n).unwrap()).unwrap(),
                b.read(b.id(n).unwrap()).unwrap(),
            );
            assert_eq!(x, y, "{n}");
        }
        assert_eq!(
            b.read(b.id("bad").unwrap()).unwrap().quality,
            Quality::Bad(BadReason::NoValue)
        );
    }

    #[test]
    fn a_corrupt_file_is_set_aside_and_initial_values_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("retained.json");
        fs::write(&path, "{\"version\":1,\"signals\":{\"f\":").unwrap();
        let b = bus();
        assert_eq!(restore(&path, &b, &all(&b)), 0);
        assert!(path.with_extension("json.corrupt").exists());
        assert_eq!(b.read(b.id("f").unwrap()).unwrap().value, Value::Float(1.0));
    }

    #[test]
    fn a_value_whose_signal_changed_type_or_retain_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("retained.json");
        fs::write(
            &path,
            r#"{"version":1,"signals":{"f":{"type":"int","value":3,"ts":1},
                "i":{"type":"int","value":9,"ts":1},"gone":{"type":"int","value":1,"ts":1}}}"#,
        )
        .unwrap();
        let b = bus();
        let only_i = vec![b.id("i").unwrap()];
        assert_eq!(restore(&path, &b, &only_i), 1);
        assert_eq!(b.read(b.id("i").unwrap()).unwrap().value, Value::Int(9));
        assert_eq!(b.read(b.id("f").unwrap()).unwrap().value, Value::Float(1.0));
    }
}
