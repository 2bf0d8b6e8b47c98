//! The `type: s7` driver of `drivers:`: connection settings and points, every address parsed
//! and every type checked against its signal by `petra-s7` itself, so the configuration says
//! exactly what the driver will do.
//!
//! An array point (`count: n`) becomes `n` points, one per element, feeding the declared
//! signals `SIGNAL.0` … `SIGNAL.{n-1}`: the bus holds scalars, and the planner merges the
//! elements back into as few items as the PDU size allows.

use crate::compile::Signals;
use crate::diag::{Cx, Pos};
use crate::drivers::{DriverPlan, DriverWrite, point_mode, positive};
use crate::walk::{self, MapW, expect_seq};
use crate::yaml::Node;
use petra_core::{SignalId, ValueType};
use petra_s7::codec::{Connection, ConnectionType, DEFAULT_LOCAL_TSAP};
use petra_s7::{Area, DataType, Mode, S7Config, S7Point, Variable};
use std::collections::HashMap;
use std::time::Duration;

const DEFAULT_POLL: Duration = Duration::from_secs(1);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
const DEFAULT_RECONNECT_MAX: Duration = Duration::from_secs(10);
/// Bridging 4 unused bytes costs no more response bytes than a separate item's header.
const DEFAULT_MERGE_GAP: i64 = 4;
/// The item limit of S7-300/400 CPUs and of snap7 (its `MaxVars`).
const DEFAULT_MAX_ITEMS: i64 = 20;
const CONNECTIONS: &[&str] = &["pg", "op", "basic"];

pub(crate) fn s7(
    cx: &mut Cx<'_>,
    m: &mut MapW<'_>,
    sigs: &Signals,
    writes: &mut Vec<DriverWrite>,
) -> Option<DriverPlan> {
    let name = m.req_str(cx, "name").map(|(s, _)| s.to_string());
    let host = m.req_str(cx, "host").and_then(|(h, at)| {
        if h.is_empty() || h.contains('/') || h.contains(' ') {
            cx.err(
                at,
                "bad-value",
                format!(
                    "`host` of {} is `{h}`; give a host name or an IP address",
                    m.what
                ),
            );
            None
        } else {
            Some(h.to_string())
        }
    });
    let port = ranged(cx, m, "port", 1, 65535, 102, "a TCP port");
    let tsaps = tsaps(cx, m);
    let pdu_size = ranged(
        cx,
        m,
        "pdu_size",
        240,
        960,
        480,
        "a PDU size in bytes (240 to 960)",
    );
    let merge_gap = ranged(cx, m, "merge_gap", 0, 256, DEFAULT_MERGE_GAP, "bytes");
    let max_items = ranged(
        cx,
        m,
        "max_items",
        1,
        255,
        DEFAULT_MAX_ITEMS,
        "items per request",
    );
    let poll = positive(cx, m, "poll").map(|p| p.unwrap_or(DEFAULT_POLL));
    let timeout = positive(cx, m, "timeout").map(|p| p.unwrap_or(DEFAULT_TIMEOUT));
    let connect_delay = m.opt_duration(cx, "connect_delay").map(|d| d.0);
    let request_delay = m.opt_duration(cx, "request_delay").map(|d| d.0);
    let reconnect_max =
        positive(cx, m, "reconnect_max").map(|p| p.unwrap_or(DEFAULT_RECONNECT_MAX));
    let mut points = Vec::new();
    if let Some(n) = m.req(cx, "points")
        && let Some(items) = expect_seq(cx, n, &format!("`points` of {}", m.what))
    {
        for (i, it) in items.iter().enumerate() {
            let what = format!("point {} of {}", i + 1, m.what);
            let before = points.len();
            s7_point(
                cx,
                it,
                what,
                sigs,
                poll.unwrap_or(DEFAULT_POLL),
                &mut points,
            );
            for p in &points[before..] {
                if p.mode.reads() {
                    writes.push(DriverWrite {
                        signal: p.signal,
                        at: it.pos,
                        driver: name.clone().unwrap_or_default(),
                        readwrite: p.mode == Mode::ReadWrite,
                    });
                }
            }
        }
    }
    check_overlapping_writes(cx, &points, m);
    let (local_tsap, remote_tsap) = tsaps?;
    Some(DriverPlan::S7(S7Config {
        name: name?,
        host: host?,
        port: port? as u16,
        local_tsap,
        remote_tsap,
        pdu_size: pdu_size? as u16,
        timeout: timeout?,
        connect_delay: connect_delay.unwrap_or_default(),
        request_delay: request_delay.unwrap_or_default(),
        merge_gap: merge_gap? as u32,
        max_items: max_items? as usize,
        reconnect_max: reconnect_max?,
        points,
    }))
}

/// An optional integer key in `min..=max`, `default` when absent.
fn ranged(
    cx: &mut Cx<'_>,
    m: &mut MapW<'_>,
    key: &'static str,
    min: i64,
    max: i64,
    default: i64,
    unit: &str,
) -> Option<i64> {
    match m.opt_i64(cx, key) {
        None => Some(default),
        Some((v, _)) if (min..=max).contains(&v) => Some(v),
        Some((v, at)) => {
            cx.err(
                at,
                "out-of-range",
                format!("`{key}` of {} is {v}; use {min} to {max} ({unit})", m.what),
            );
            None
        }
    }
}

/// `(local, remote)` TSAPs: `rack`/`slot`/`connection`, or `remote_tsap` given outright (for
/// CPUs behind a CP, or LOGO! and S7-200 with their own TSAP schemes).
fn tsaps(cx: &mut Cx<'_>, m: &mut MapW<'_>) -> Option<(u16, u16)> {
    let given: Vec<&str> = ["rack", "slot", "connection"]
        .into_iter()
        .filter(|k| m.get(k).is_some())
        .collect();
    let rack = ranged(cx, m, "rack", 0, 7, 0, "the rack number");
    let slot = ranged(cx, m, "slot", 0, 31, 1, "the slot number");
    let kind = match m.opt_str(cx, "connection") {
        None | Some(("pg", _)) => Some(ConnectionType::Pg),
        Some(("op", _)) => Some(ConnectionType::Op),
        Some(("basic", _)) => Some(ConnectionType::Basic),
        Some((o, at)) => {
            cx.err(
                at,
                "bad-value",
                format!(
                    "`connection` of {} is `{o}`; use {}{}",
                    m.what,
                    walk::list(CONNECTIONS),
                    walk::did_you_mean(o, CONNECTIONS)
                ),
            );
            None
        }
    };
    let local = ranged(
        cx,
        m,
        "local_tsap",
        0,
        0xFFFF,
        DEFAULT_LOCAL_TSAP.into(),
        "a TSAP",
    );
    let remote = match m.opt_i64(cx, "remote_tsap") {
        None => None,
        Some((t, at)) if !(0..=0xFFFF).contains(&t) => {
            cx.err(
                at,
                "out-of-range",
                format!("`remote_tsap` of {} is {t}; use 0 to 0xFFFF", m.what),
            );
            return None;
        }
        Some((t, at)) => {
            if let Some(key) = given.first() {
                cx.err(
                    at,
                    "bad-value",
                    format!(
                        "{} gives both `remote_tsap` and `{key}`; give one: `remote_tsap` \
                         replaces rack, slot and connection",
                        m.what
                    ),
                );
                return None;
            }
            Some(t as u16)
        }
    };
    let remote = match remote {
        Some(t) => t,
        None => Connection::remote_tsap(kind?, rack? as u8, slot? as u8).ok()?,
    };
    Some((local? as u16, remote))
}

/// One item of `points`; pushes one point, or one per element of an array.
fn s7_point(
    cx: &mut Cx<'_>,
    n: &Node,
    what: String,
    sigs: &Signals,
    default_poll: Duration,
    out: &mut Vec<S7Point>,
) {
    let errors_before = cx.diags.len();
    let Some(mut m) = MapW::new(cx, n, what) else {
        return;
    };
    let signal = m.req_str(cx, "signal");
    if let Some((s, _)) = signal {
        m.what = format!("{} (`{s}`)", m.what);
    }
    let address = m.req_str(cx, "address");
    let ty = m.opt_str(cx, "type");
    let length = m.opt_i64(cx, "length");
    let count = m.opt_i64(cx, "count");
    let mode = point_mode(cx, &mut m);
    let poll = positive(cx, &mut m, "poll").map(|p| p.unwrap_or(default_poll));
    let (what, pos) = (m.what.clone(), m.pos);
    m.finish(cx);
    let (Some((signal, sig_at)), Some(address), Some(mode), Some(poll)) =
        (signal, address, mode, poll)
    else {
        return;
    };
    if cx.diags.len() != errors_before {
        return;
    }
    let to_u32 = |v: Option<(i64, Pos)>| v.map(|(v, _)| u32::try_from(v).unwrap_or(u32::MAX));
    let var = match Variable::parse(address.0, ty.map(|t| t.0), to_u32(length), to_u32(count)) {
        Ok(v) => v,
        Err(e) => {
            cx.err(address.1, "bad-value", format!("{what}: {e}"));
            return;
        }
    };
    if mode.writes() && var.address.area == Area::Inputs {
        cx.err(
            pos,
            "bad-value",
            format!("{what} writes, but inputs (I/E) are read-only; write outputs (Q/A), flags (M) or a DB"),
        );
        return;
    }
    // The signals: one, or `SIGNAL.i` per array element.
    let names: Vec<String> = match var.count {
        None => vec![signal.to_string()],
        Some(n) => (0..n).map(|i| format!("{signal}.{i}")).collect(),
    };
    let mut resolved: Vec<(SignalId, ValueType, String)> = Vec::with_capacity(names.len());
    let mut missing: Vec<&str> = Vec::new();
    for name in &names {
        match sigs.by_name.get(name) {
            Some(id) => resolved.push((*id, sigs.list[id.index()].plan.def.ty, name.clone())),
            None if sigs.broken.contains(name) => return,
            None => missing.push(name),
        }
    }
    if !missing.is_empty() {
        let shown = if missing.len() > 3 {
            format!(
                "`{}` … `{}` ({} signals)",
                missing[0],
                missing[missing.len() - 1],
                missing.len()
            )
        } else {
            missing
                .iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let hint = if var.count.is_some() {
            format!(
                "; an array point feeds one signal per element, `{signal}.0` to `{signal}.{}`: declare them under `signals`",
                names.len() - 1
            )
        } else {
            let all: Vec<&str> = sigs.list.iter().map(|s| s.plan.def.name.as_str()).collect();
            match walk::close_names(signal, &all).first() {
                Some(c) => format!("; did you mean `{c}`?"),
                None => "; declare it under `signals`".into(),
            }
        };
        cx.err(
            sig_at,
            "unknown-signal",
            format!("`signal` of {what}: no signal {shown} is declared{hint}"),
        );
        return;
    }
    let elements = element_vars(&var);
    for ((id, sig_ty, name), v) in resolved.into_iter().zip(elements) {
        if let Err(why) = petra_s7::value::check(v.ty, sig_ty) {
            cx.err(pos, "wrong-type", format!("{what}: signal `{name}`: {why}"));
            return;
        }
        out.push(S7Point {
            signal: id,
            signal_name: name,
            signal_type: sig_ty,
            var: v,
            mode,
            poll,
        });
    }
}

/// The scalar variable of each element of `var` (just `var` when it is no array).
fn element_vars(var: &Variable) -> Vec<Variable> {
    let Some(n) = var.count else {
        return vec![*var];
    };
    let size = var.ty.size();
    (0..u32::from(n))
        .map(|i| {
            let mut address = var.address;
            address.byte += i * size;
            address.width = var.ty.width();
            Variable {
                address,
                ty: var.ty,
                count: None,
            }
        })
        .collect()
}

/// Two write points on the same bytes (or bit) would fight over them on every change.
fn check_overlapping_writes(cx: &mut Cx<'_>, points: &[S7Point], m: &MapW<'_>) {
    let mut claimed: HashMap<(Area, u16, u32, Option<u8>), &str> = HashMap::new();
    for p in points.iter().filter(|p| p.mode.writes()) {
        let a = &p.var.address;
        let keys: Vec<(Area, u16, u32, Option<u8>)> = match (p.var.ty, a.bit) {
            (DataType::Bool, bit) => {
                vec![(a.area, a.db, a.byte, bit), (a.area, a.db, a.byte, None)]
            }
            _ => (a.byte..a.byte + p.var.byte_len())
                .map(|b| (a.area, a.db, b, None))
                .collect(),
        };
        for (k, key) in keys.into_iter().enumerate() {
            // A BOOL claims its bit, and checks (without claiming) its byte.
            let other = if p.var.ty == DataType::Bool && k == 1 {
                claimed.get(&key).copied()
            } else {
                claimed.insert(key, &p.signal_name)
            };
            if let Some(other) = other
                && other != p.signal_name
            {
                cx.err(
                    m.pos,
                    "multiple-writers",
                    format!(
                        "{}: signals `{other}` and `{}` both write {}; a PLC variable has one writer",
                        m.what, p.signal_name, p.var.address
                    ),
                );
                return;
            }
        }
    }
}
