//! `petra probe` for S7: read every point of one driver once and say what came back.
//!
//! Uses the driver's own client, planner and decoding, so what the probe shows is what
//! `petra run` would put on the bus — including the splitting of merged items the PLC rejects.
//! Write-only points are read too: the probe shows what the PLC holds.

use crate::client::{Client, S7Error};
use crate::codec::ReturnCode;
use crate::config::S7Config;
use crate::driver::{self, item_reason, plan_points};
use crate::planner::PlanConfig;
use petra_core::{BadReason, Quality, Value};

/// What the probe found for one point (same order as the configuration's points).
#[derive(Clone, Debug, PartialEq)]
pub struct ProbeRow {
    /// The raw bytes, when the read succeeded.
    pub raw: Option<Vec<u8>>,
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
    /// The PDU size the PLC negotiated.
    pub pdu_size: u16,
}

/// Connects once and reads every point. Fails only when the PLC cannot be reached at all or
/// the session breaks.
pub async fn probe(cfg: &S7Config) -> Result<Probe, S7Error> {
    let mut client = Client::connect(cfg).await?;
    let pdu_size = client.pdu_size();
    let mut pc = PlanConfig {
        merge_gap: cfg.merge_gap,
        max_items: cfg.max_items,
        ..PlanConfig::new(pdu_size)
    };
    let all: Vec<usize> = (0..cfg.points.len()).collect();
    let mut apart = vec![false; cfg.points.len()];
    let mut rows: Vec<Option<ProbeRow>> = vec![None; cfg.points.len()];
    let mut todo = all.clone();
    // A point is moved apart at most once, and the item cap only shrinks: this ends.
    while !todo.is_empty() {
        let mut again = Vec::new();
        for reads in plan_points(&cfg.points, &todo, &apart, &pc)? {
            let items =
                match driver::read_points(&mut client, &reads, cfg.request_delay, None).await {
                    Ok(items) => items,
                    Err(S7Error::ItemCount { got, .. }) => {
                        // The PLC takes fewer items per request: plan these points again.
                        pc.max_items = got;
                        again.extend(&reads.points);
                        continue;
                    }
                    Err(e) if !e.ends_session() => {
                        for &pi in &reads.points {
                            rows[pi] = Some(ProbeRow {
                                raw: None,
                                value: None,
                                quality: Quality::Bad(e.reason()),
                                error: Some(e.to_string()),
                            });
                        }
                        continue;
                    }
                    Err(e) => return Err(e),
                };
            for (pi, item) in reads.points.iter().copied().zip(items) {
                let p = &cfg.points[pi];
                rows[pi] = Some(match item {
                    Err(ReturnCode::ADDRESS_OUT_OF_RANGE) if !apart[pi] => {
                        apart[pi] = true;
                        again.push(pi);
                        continue;
                    }
                    Err(code) => ProbeRow {
                        raw: None,
                        value: None,
                        quality: Quality::Bad(item_reason(code)),
                        error: Some(format!("the PLC answered {code}")),
                    },
                    Ok(bytes) => match driver::decode(p, &bytes) {
                        Ok(v) => ProbeRow {
                            raw: Some(bytes),
                            value: Some(v),
                            quality: Quality::Good,
                            error: None,
                        },
                        Err(e) => ProbeRow {
                            raw: Some(bytes),
                            value: None,
                            quality: Quality::Bad(BadReason::Conversion),
                            error: Some(e),
                        },
                    },
                });
            }
        }
        todo = again;
    }
    client.close().await;
    let requests = plan_points(&cfg.points, &all, &apart, &pc)?
        .iter()
        .map(|r| r.plan.requests.len())
        .sum();
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
        pdu_size,
    })
}
