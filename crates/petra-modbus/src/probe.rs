//! `petra probe`: read every point of one driver once and say what came back.
//!
//! Uses the driver's own planner, reads and decoding, so what the probe shows is what `petra run`
//! would put on the bus — including the splitting of batches the device rejects. Write-only
//! points are read too when their area can be read (coils, holding registers): the probe shows
//! what the device holds.

use crate::config::ModbusConfig;
use crate::driver::{self, Data, ModbusError, Planner};
use crate::plan::ReadRequest;
use petra_core::{BadReason, Quality, Value};

/// What the probe found for one point (same order as the configuration's points).
#[derive(Clone, Debug, PartialEq)]
pub struct ProbeRow {
    /// The raw bits or registers, when the read succeeded.
    pub raw: Option<Data>,
    pub value: Option<Value>,
    pub quality: Quality,
    /// Why the point is bad, in words.
    pub error: Option<String>,
}

/// The probe's findings.
#[derive(Clone, Debug, PartialEq)]
pub struct Probe {
    pub rows: Vec<ProbeRow>,
    /// Read requests the final plan needs for all points.
    pub requests: usize,
}

/// Connects once and reads every point. Fails only when the device cannot be reached at all.
pub async fn probe(cfg: &ModbusConfig) -> Result<Probe, ModbusError> {
    let mut ctx = driver::connect(cfg).await?;
    let mut planner = Planner::new(cfg.points.len(), cfg.max_gap);
    let mut rows: Vec<Option<ProbeRow>> = vec![None; cfg.points.len()];
    let all: Vec<usize> = (0..cfg.points.len()).collect();
    let mut todo: Vec<ReadRequest> = planner.plan(&cfg.points, &all);
    while let Some(req) = todo.pop() {
        match driver::read(&mut ctx, &req, cfg.timeout).await {
            Ok(data) => {
                for pi in &req.points {
                    let p = &cfg.points[*pi];
                    let raw = Some(driver::raw(p, req.start, &data));
                    rows[*pi] = Some(match driver::decode(p, req.start, &data) {
                        Ok(v) => ProbeRow {
                            raw,
                            value: Some(v),
                            quality: Quality::Good,
                            error: None,
                        },
                        Err(e) => ProbeRow {
                            raw,
                            value: None,
                            quality: Quality::Bad(BadReason::Conversion),
                            error: Some(e.to_string()),
                        },
                    });
                }
            }
            Err(ModbusError::Exception(tokio_modbus::ExceptionCode::IllegalDataAddress))
                if planner.rejected(&req) =>
            {
                let again: Vec<usize> = req.points.clone();
                todo.extend(planner.plan(&cfg.points, &again));
            }
            Err(e) => {
                let bad = ProbeRow {
                    raw: None,
                    value: None,
                    quality: Quality::Bad(e.reason()),
                    error: Some(e.to_string()),
                };
                for pi in &req.points {
                    rows[*pi] = Some(bad.clone());
                }
                if e.ends_session() {
                    // A late answer must not be taken for the next one: start afresh.
                    let _ = tokio_modbus::client::Client::disconnect(&mut ctx).await;
                    ctx = match driver::connect(cfg).await {
                        Ok(c) => c,
                        Err(e) => {
                            mark_rest(&mut rows, &e);
                            break;
                        }
                    };
                }
            }
        }
    }
    let _ = tokio_modbus::client::Client::disconnect(&mut ctx).await;
    let requests = planner.plan(&cfg.points, &all).len();
    Ok(Probe {
        rows: rows
            .into_iter()
            .map(|r| {
                r.unwrap_or(ProbeRow {
                    raw: None,
                    value: None,
                    quality: Quality::Bad(BadReason::NotConnected),
                    error: Some("not read".into()),
                })
            })
            .collect(),
        requests,
    })
}

fn mark_rest(rows: &mut [Option<ProbeRow>], e: &ModbusError) {
    for r in rows.iter_mut().filter(|r| r.is_none()) {
        *r = Some(ProbeRow {
            raw: None,
            value: None,
            quality: Quality::Bad(BadReason::NotConnected),
            error: Some(e.to_string()),
        });
    }
}
