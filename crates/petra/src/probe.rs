//! `petra probe CONFIG --driver NAME [--json]`: one read of every point of one driver, printed
//! as a table (or JSON) — the first thing to run when a device is wired up.

use petra_config::DriverPlan;
use petra_core::{Quality, Value};
use petra_modbus::driver::Data;
use petra_modbus::{ModbusConfig, ModbusPoint, Probe};
use serde_json::json;
use std::path::Path;
use std::process::ExitCode;

pub fn probe(path: &Path, driver: &str, as_json: bool) -> ExitCode {
    let plan = match petra_config::load(path, &petra_blocks::builtin()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let Some(found) = plan.drivers.iter().find(|d| d.name() == driver) else {
        let names: Vec<&str> = plan.drivers.iter().map(|d| d.name()).collect();
        eprintln!(
            "error: {} has no driver `{driver}`; its drivers: {}",
            path.display(),
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        );
        return ExitCode::FAILURE;
    };
    let DriverPlan::Modbus(cfg) = found;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(petra_modbus::probe(cfg));
    let probe = match result {
        Ok(p) => p,
        Err(e) => {
            if as_json {
                println!(
                    "{}",
                    json!({"driver": driver, "error": e.to_string(), "points": []})
                );
            }
            eprintln!(
                "error: driver `{driver}`: {e}; check `url` and that the device is on and reachable"
            );
            return ExitCode::FAILURE;
        }
    };
    if as_json {
        out(&to_json(cfg, &probe).to_string());
    } else {
        out(table(cfg, &probe).trim_end());
    }
    if probe.rows.iter().all(|r| r.quality.is_good()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Prints a line; a closed pipe (`petra probe … | head`) is not an error worth a panic.
fn out(text: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

fn where_(p: &ModbusPoint) -> String {
    match p.encoding.bit {
        Some(b) => format!("{} {}.{b}", p.area, p.address),
        None => format!("{} {}", p.area, p.address),
    }
}

fn type_name(p: &ModbusPoint) -> String {
    let t = p.encoding.ty;
    match t {
        petra_modbus::DataType::String { len } => format!("string[{len}]"),
        _ if t.registers() >= 2 => {
            let (n32, n64) = p.encoding.order.names();
            format!(
                "{} {}",
                t.name(),
                if t.registers() == 4 { n64 } else { n32 }
            )
        }
        _ => t.name().to_string(),
    }
}

fn raw_text(raw: &Option<Data>) -> String {
    match raw {
        None => "-".into(),
        Some(Data::Bits(b)) => b.iter().map(|b| if *b { "1" } else { "0" }).collect(),
        Some(Data::Registers(r)) => r
            .iter()
            .map(|w| format!("{w:04X}"))
            .collect::<Vec<_>>()
            .join(" "),
    }
}

fn value_text(v: &Option<Value>) -> String {
    match v {
        None => "-".into(),
        Some(Value::String(s)) => format!("{s:?}"),
        Some(v) => v.to_string(),
    }
}

fn quality_text(q: Quality, error: &Option<String>) -> String {
    match error {
        Some(e) if !q.is_good() => format!("{q}: {e}"),
        _ => q.to_string(),
    }
}

/// A plain aligned table; the last column (quality and error) is not padded.
fn table(cfg: &ModbusConfig, probe: &Probe) -> String {
    let mut rows: Vec<[String; 7]> = vec![[
        "SIGNAL".into(),
        "UNIT".into(),
        "ADDRESS".into(),
        "TYPE".into(),
        "RAW".into(),
        "VALUE".into(),
        "QUALITY".into(),
    ]];
    for (p, r) in cfg.points.iter().zip(&probe.rows) {
        rows.push([
            p.signal_name.clone(),
            p.unit.to_string(),
            where_(p),
            type_name(p),
            raw_text(&r.raw),
            value_text(&r.value),
            quality_text(r.quality, &r.error),
        ]);
    }
    let mut widths = [0usize; 7];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i == 6 {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    let bad = probe.rows.iter().filter(|r| !r.quality.is_good()).count();
    out.push_str(&format!(
        "{} points, {bad} bad; {} read requests (point by point: {})\n",
        cfg.points.len(),
        probe.requests,
        cfg.points.len()
    ));
    out
}

fn to_json(cfg: &ModbusConfig, probe: &Probe) -> serde_json::Value {
    let points: Vec<serde_json::Value> = cfg
        .points
        .iter()
        .zip(&probe.rows)
        .map(|(p, r)| {
            json!({
                "signal": p.signal_name,
                "unit": p.unit,
                "area": p.area.name(),
                "address": p.address,
                "bit": p.encoding.bit,
                "type": type_name(p),
                "raw": match &r.raw {
                    None => serde_json::Value::Null,
                    Some(Data::Bits(b)) => json!(b),
                    Some(Data::Registers(w)) => json!(w.iter().map(|w| format!("{w:04X}")).collect::<Vec<_>>()),
                },
                "value": match &r.value {
                    None => serde_json::Value::Null,
                    Some(Value::Bool(b)) => json!(b),
                    Some(Value::Int(i)) => json!(i),
                    Some(Value::Float(f)) => json!(f),
                    Some(Value::String(s)) => json!(s.as_ref()),
                },
                "quality": r.quality.to_string(),
                "error": r.error,
            })
        })
        .collect();
    json!({
        "driver": cfg.name,
        "requests": probe.requests,
        "points": points,
    })
}
