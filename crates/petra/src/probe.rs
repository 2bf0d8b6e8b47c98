//! `petra probe CONFIG --driver NAME [--json]`: one read of every point of one driver, printed
//! as a table (or JSON) — the first thing to run when a device is wired up.

use petra_config::DriverPlan;
use petra_core::{Quality, Value};
use petra_modbus::driver::Data;
use petra_modbus::{ModbusConfig, ModbusPoint, Probe};
use petra_s7::S7Config;
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
    let (report, hint) = match found {
        DriverPlan::Modbus(cfg) => (
            runtime
                .block_on(petra_modbus::probe(cfg))
                .map(|p| modbus_report(cfg, &p))
                .map_err(|e| e.to_string()),
            "check `url` and that the device is on and reachable",
        ),
        DriverPlan::Mqtt(_) => {
            eprintln!(
                "error: driver `{driver}` is MQTT; `petra probe` reads devices (Modbus, S7) — \
                 watch the broker with mosquitto_sub instead"
            );
            return ExitCode::FAILURE;
        }
        DriverPlan::S7(cfg) => (
            runtime
                .block_on(petra_s7::probe(cfg))
                .map(|p| s7_report(cfg, &p))
                .map_err(|e| e.to_string()),
            "check `host`, `port`, `rack`/`slot` and that the PLC is on and reachable",
        ),
    };
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            if as_json {
                println!("{}", json!({"driver": driver, "error": e, "points": []}));
            }
            eprintln!("error: driver `{driver}`: {e}; {hint}");
            return ExitCode::FAILURE;
        }
    };
    if as_json {
        out(&report.json.to_string());
    } else {
        out(report.table().trim_end());
    }
    if report.bad == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// What the probe of any driver prints: table rows (the last column, quality, unpadded) and
/// the JSON document.
struct Report {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
    bad: usize,
    /// The summary line under the table.
    summary: String,
    json: serde_json::Value,
}

impl Report {
    /// A plain aligned table; the last column (quality and error) is not padded.
    fn table(&self) -> String {
        let n = self.header.len();
        let mut widths = vec![0usize; n];
        let header: Vec<String> = self.header.iter().map(|h| h.to_string()).collect();
        let all = std::iter::once(&header).chain(&self.rows);
        for row in all.clone() {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in all {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 == n {
                    line.push_str(cell);
                } else {
                    line.push_str(&format!("{cell:<w$}  ", w = widths[i]));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out.push_str(&self.summary);
        out.push('\n');
        out
    }
}

fn value_json(v: &Option<Value>) -> serde_json::Value {
    match v {
        None => serde_json::Value::Null,
        Some(Value::Bool(b)) => json!(b),
        Some(Value::Int(i)) => json!(i),
        Some(Value::Float(f)) => json!(f),
        Some(Value::String(s)) => json!(s.as_ref()),
    }
}

fn s7_report(cfg: &S7Config, probe: &petra_s7::Probe) -> Report {
    let hex = |raw: &Option<Vec<u8>>| {
        raw.as_ref().map(|b| {
            b.iter()
                .map(|x| format!("{x:02X}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
    };
    let rows = cfg
        .points
        .iter()
        .zip(&probe.rows)
        .map(|(p, r)| {
            vec![
                p.signal_name.clone(),
                p.var.address.to_string(),
                p.var.ty.to_string(),
                hex(&r.raw).unwrap_or_else(|| "-".into()),
                value_text(&r.value),
                quality_text(r.quality, &r.error),
            ]
        })
        .collect();
    let points: Vec<serde_json::Value> = cfg
        .points
        .iter()
        .zip(&probe.rows)
        .map(|(p, r)| {
            json!({
                "signal": p.signal_name,
                "address": p.var.address.to_string(),
                "type": p.var.ty.to_string(),
                "raw": hex(&r.raw),
                "value": value_json(&r.value),
                "quality": r.quality.to_string(),
                "error": r.error,
            })
        })
        .collect();
    let bad = probe.rows.iter().filter(|r| !r.quality.is_good()).count();
    Report {
        header: vec!["SIGNAL", "ADDRESS", "TYPE", "RAW", "VALUE", "QUALITY"],
        rows,
        bad,
        summary: format!(
            "{} points, {bad} bad; {} read requests at PDU size {}",
            cfg.points.len(),
            probe.requests,
            probe.pdu_size
        ),
        json: json!({
            "driver": cfg.name,
            "requests": probe.requests,
            "pdu_size": probe.pdu_size,
            "points": points,
        }),
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

fn modbus_report(cfg: &ModbusConfig, probe: &Probe) -> Report {
    let rows = cfg
        .points
        .iter()
        .zip(&probe.rows)
        .map(|(p, r)| {
            vec![
                p.signal_name.clone(),
                p.unit.to_string(),
                where_(p),
                type_name(p),
                raw_text(&r.raw),
                value_text(&r.value),
                quality_text(r.quality, &r.error),
            ]
        })
        .collect();
    let bad = probe.rows.iter().filter(|r| !r.quality.is_good()).count();
    Report {
        header: vec![
            "SIGNAL", "UNIT", "ADDRESS", "TYPE", "RAW", "VALUE", "QUALITY",
        ],
        rows,
        bad,
        summary: format!(
            "{} points, {bad} bad; {} read requests (point by point: {})",
            cfg.points.len(),
            probe.requests,
            cfg.points.len()
        ),
        json: to_json(cfg, probe),
    }
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
                "value": value_json(&r.value),
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
