//! The `drivers:` section: devices that feed signals and take writes. Read and checked here —
//! every point's signal resolved, its encoding checked against the signal's type by the
//! driver's own codec — and handed over as the driver crate's configuration type; nothing is
//! connected.

use crate::blocks::lookup_signal;
use crate::compile::Signals;
use crate::diag::{Cx, Pos};
use crate::walk::{self, MapW, expect_seq};
use crate::yaml::Node;
use petra_core::SignalId;
use petra_modbus::{
    Area, DataType, Encoding, ModbusConfig, ModbusPoint, Mode, Order, Parity, SerialLine, Transport,
};
use petra_mqtt::MqttConfig;
use petra_s7::S7Config;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One configured driver.
#[derive(Clone, Debug, PartialEq)]
pub enum DriverPlan {
    Modbus(ModbusConfig),
    S7(S7Config),
    Mqtt(MqttConfig),
}

/// What a driver's configuration may need from the rest of the file.
pub(crate) struct DriverContext<'a> {
    pub plant: &'a str,
    /// For relative paths (certificates).
    pub base_dir: &'a Path,
    /// Whether there is a `server` section (commands need its audit log).
    pub has_server: bool,
}

impl DriverPlan {
    pub fn name(&self) -> &str {
        match self {
            DriverPlan::Modbus(m) => &m.name,
            DriverPlan::S7(s) => &s.name,
            DriverPlan::Mqtt(m) => &m.name,
        }
    }

    /// Points of the driver (an S7 array counts once per element).
    pub fn point_count(&self) -> usize {
        match self {
            DriverPlan::Modbus(m) => m.points.len(),
            DriverPlan::S7(s) => s.points.len(),
            DriverPlan::Mqtt(m) => m.subscribe.len() + m.output_signals().len(),
        }
    }

    /// Signals the driver writes to its device: its change feed watches them.
    pub fn output_signals(&self) -> Vec<SignalId> {
        match self {
            DriverPlan::Modbus(m) => m.output_signals(),
            DriverPlan::S7(s) => s.output_signals(),
            DriverPlan::Mqtt(m) => m.output_signals(),
        }
    }

    /// `modbus`, … — the `type` of the driver.
    pub fn kind(&self) -> &'static str {
        match self {
            DriverPlan::Modbus(_) => "modbus",
            DriverPlan::S7(_) => "s7",
            DriverPlan::Mqtt(_) => "mqtt",
        }
    }
}

const TYPES: &[&str] = &["modbus", "s7", "mqtt"];

const MODBUS_DEFAULT_POLL: Duration = Duration::from_secs(1);
const MODBUS_DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
const MODBUS_DEFAULT_MAX_GAP: u16 = 16;
const MODBUS_DEFAULT_RECONNECT_MAX: Duration = Duration::from_secs(10);
/// Modbus over serial line v1.02, section 2.5.1: 19200 baud and even parity are the default.
const RTU_DEFAULT_BAUD: u32 = 19200;
/// The longest string one read can carry: 125 registers.
const MAX_STRING_BYTES: i64 = 250;

/// Who writes a signal into the bus, for the one-writer check across blocks and drivers.
pub(crate) struct DriverWrite {
    pub signal: SignalId,
    pub at: Pos,
    pub driver: String,
    /// A `readwrite` point: outside writes go to the device, so `write` roles make sense.
    pub readwrite: bool,
}

/// Reads the `drivers:` sequence. Returns the drivers without errors and every signal a driver
/// writes into the bus (points that read).
pub(crate) fn drivers(
    cx: &mut Cx<'_>,
    n: &Node,
    sigs: &Signals,
    ctx: &DriverContext<'_>,
) -> (Vec<DriverPlan>, Vec<DriverWrite>) {
    let mut out = Vec::new();
    let mut writes = Vec::new();
    let Some(items) = expect_seq(cx, n, "`drivers`") else {
        return (out, writes);
    };
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        let errors_before = cx.diags.len();
        let Some(mut m) = MapW::new(cx, item, format!("drivers item {}", i + 1)) else {
            continue;
        };
        let name = m.req_str(cx, "name");
        if let Some((nm, at)) = name {
            let shown = m.shown("name");
            m.what = format!("driver `{shown}`");
            if walk::check_name(cx, nm, &shown, at, "driver") {
                if let Some(line) = seen.get(nm) {
                    cx.err(
                        at,
                        "duplicate-name",
                        format!("driver `{shown}` is already declared at line {line}; rename one"),
                    );
                } else {
                    seen.insert(nm.to_string(), at.line);
                }
            }
        }
        let Some((ty, ty_at)) = m.req_str(cx, "type") else {
            m.finish(cx);
            continue;
        };
        let plan = match ty {
            "modbus" => modbus(cx, &mut m, sigs, &mut writes),
            "s7" => crate::drivers_s7::s7(cx, &mut m, sigs, &mut writes),
            "mqtt" => crate::drivers_mqtt::mqtt(cx, &mut m, sigs, ctx, &mut writes),
            _ => {
                cx.err(
                    ty_at,
                    "bad-value",
                    format!(
                        "{} has type `{}`; use {}{}",
                        m.what,
                        m.shown("type"),
                        walk::list(TYPES),
                        walk::did_you_mean(ty, TYPES)
                    ),
                );
                m.rest();
                None
            }
        };
        m.finish(cx);
        if let (Some(p), Some(_)) = (plan, name)
            && cx.diags.len() == errors_before
        {
            out.push(p);
        }
    }
    (out, writes)
}

pub(crate) fn positive(
    cx: &mut Cx<'_>,
    m: &mut MapW<'_>,
    key: &'static str,
) -> Option<Option<Duration>> {
    match m.opt_duration(cx, key) {
        Some((d, at)) if d.is_zero() => {
            cx.err(
                at,
                "out-of-range",
                format!("`{key}` of {} must be above 0", m.what),
            );
            None
        }
        Some((d, _)) => Some(Some(d)),
        None => Some(None),
    }
}

fn modbus(
    cx: &mut Cx<'_>,
    m: &mut MapW<'_>,
    sigs: &Signals,
    writes: &mut Vec<DriverWrite>,
) -> Option<DriverPlan> {
    let name = m.req_str(cx, "name").map(|(s, _)| s.to_string());
    let transport = m
        .req_str(cx, "url")
        .and_then(|(url, at)| modbus_url(cx, url, at, &m.what));
    let unit = m
        .opt_i64(cx, "unit")
        .map(|(u, at)| unit_id(cx, u, at, &m.what))
        .unwrap_or(Some(1));
    let poll = positive(cx, m, "poll").map(|p| p.unwrap_or(MODBUS_DEFAULT_POLL));
    let timeout = positive(cx, m, "timeout").map(|p| p.unwrap_or(MODBUS_DEFAULT_TIMEOUT));
    let connect_delay = m.opt_duration(cx, "connect_delay").map(|d| d.0);
    let request_delay = m.opt_duration(cx, "request_delay").map(|d| d.0);
    let reconnect_max =
        positive(cx, m, "reconnect_max").map(|p| p.unwrap_or(MODBUS_DEFAULT_RECONNECT_MAX));
    let max_gap = match m.opt_i64(cx, "max_gap") {
        Some((g, at)) if !(0..=124).contains(&g) => {
            cx.err(
                at,
                "out-of-range",
                format!(
                    "`max_gap` of {} must be between 0 and 124 registers",
                    m.what
                ),
            );
            None
        }
        Some((g, _)) => Some(g as u16),
        None => Some(MODBUS_DEFAULT_MAX_GAP),
    };
    let mut points = Vec::new();
    if let Some(n) = m.req(cx, "points")
        && let Some(items) = expect_seq(cx, n, &format!("`points` of {}", m.what))
    {
        let defaults = (unit.unwrap_or(1), poll.unwrap_or(MODBUS_DEFAULT_POLL));
        for (i, it) in items.iter().enumerate() {
            let what = format!("point {} of {}", i + 1, m.what);
            let Some(p) = modbus_point(cx, it, what, sigs, defaults) else {
                continue;
            };
            if p.mode.reads() {
                writes.push(DriverWrite {
                    signal: p.signal,
                    at: it.pos,
                    driver: name.clone().unwrap_or_default(),
                    readwrite: p.mode == Mode::ReadWrite,
                });
            }
            points.push(p);
        }
    }
    check_overlapping_writes(cx, &points, m);
    Some(DriverPlan::Modbus(ModbusConfig {
        name: name?,
        transport: transport?,
        timeout: timeout?,
        connect_delay: connect_delay.unwrap_or_default(),
        request_delay: request_delay.unwrap_or_default(),
        max_gap: max_gap?,
        reconnect_max: reconnect_max?,
        points,
    }))
}

/// Two write points on one register would fight over it on every change.
fn check_overlapping_writes(cx: &mut Cx<'_>, points: &[ModbusPoint], m: &MapW<'_>) {
    let mut claimed: HashMap<(u8, Area, u16), &str> = HashMap::new();
    for p in points
        .iter()
        .filter(|p| p.mode.writes() && p.encoding.bit.is_none())
    {
        for a in p.address..p.address.saturating_add(p.count()) {
            if let Some(other) = claimed.insert((p.unit, p.area, a), &p.signal_name)
                && other != p.signal_name
            {
                cx.err(
                    m.pos,
                    "multiple-writers",
                    format!(
                        "{}: signals `{other}` and `{}` both write {} {a} of unit {}; a \
                         register has one writer",
                        m.what, p.signal_name, p.area, p.unit
                    ),
                );
                return;
            }
        }
    }
}

fn unit_id(cx: &mut Cx<'_>, u: i64, at: Pos, what: &str) -> Option<u8> {
    if (0..=247).contains(&u) {
        Some(u as u8)
    } else {
        cx.err(
            at,
            "out-of-range",
            format!("`unit` of {what} is {u}; Modbus unit ids are 0 to 247"),
        );
        None
    }
}

/// `tcp://host[:port]` or `rtu:///dev/tty…?baud=&parity=&stop=&data=`.
fn modbus_url(cx: &mut Cx<'_>, url: &str, at: Pos, what: &str) -> Option<Transport> {
    let bad = |cx: &mut Cx<'_>, why: String| {
        cx.err(
            at,
            "bad-value",
            format!(
                "`url` of {what} is `{url}`: {why}; write tcp://HOST:PORT or \
                 rtu:///dev/ttyUSB0?baud=19200&parity=E&stop=1"
            ),
        );
        None
    };
    if let Some(rest) = url.strip_prefix("tcp://") {
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        // `[v6]:port`, `host:port` or a bare host (port 502).
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') || h.ends_with(']') => (h, Some(p)),
            _ => (rest, None),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = match port.map(str::parse::<u16>) {
            None => Some(502),
            Some(Ok(p)) if p > 0 => Some(p),
            Some(_) => None,
        };
        return match port {
            Some(port) if !host.is_empty() && !host.contains('/') => Some(Transport::Tcp {
                host: host.to_string(),
                port,
            }),
            Some(_) => bad(cx, "it names no host".into()),
            None => bad(cx, "the port must be a number from 1 to 65535".into()),
        };
    }
    if let Some(rest) = url.strip_prefix("rtu://") {
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        if path.is_empty() {
            return bad(cx, "it names no serial device".into());
        }
        let mut line = SerialLine {
            path: PathBuf::from(path),
            baud: RTU_DEFAULT_BAUD,
            parity: Parity::Even,
            stop_bits: 1,
            data_bits: 8,
        };
        for kv in query.split('&').filter(|s| !s.is_empty()) {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let ok = match k {
                "baud" => v.parse().ok().filter(|b| *b >= 300).map(|b| line.baud = b),
                "parity" => match v {
                    "N" | "n" | "none" => Some(Parity::None),
                    "E" | "e" | "even" => Some(Parity::Even),
                    "O" | "o" | "odd" => Some(Parity::Odd),
                    _ => None,
                }
                .map(|p| line.parity = p),
                "stop" => matches!(v, "1" | "2").then(|| line.stop_bits = v.parse().unwrap_or(1)),
                "data" => matches!(v, "7" | "8").then(|| line.data_bits = v.parse().unwrap_or(8)),
                _ => {
                    return bad(
                        cx,
                        format!("`{k}` is not a serial setting (use baud, parity, stop, data)"),
                    );
                }
            };
            if ok.is_none() {
                return bad(
                    cx,
                    format!(
                        "`{k}={v}` is not valid (baud ≥ 300; parity N, E or O; stop 1 or 2; data 7 or 8)"
                    ),
                );
            }
        }
        return Some(Transport::Rtu(line));
    }
    bad(cx, "the scheme must be tcp:// or rtu://".into())
}

const MODES: &[&str] = &["read", "write", "readwrite"];

/// A point's `mode` (default `read`).
pub(crate) fn point_mode(cx: &mut Cx<'_>, m: &mut MapW<'_>) -> Option<petra_modbus::Mode> {
    use petra_modbus::Mode;
    match m.opt_str(cx, "mode") {
        Some(("read", _)) | None => Some(Mode::Read),
        Some(("write", _)) => Some(Mode::Write),
        Some(("readwrite", _)) => Some(Mode::ReadWrite),
        Some((o, at)) => {
            cx.err(
                at,
                "bad-value",
                format!(
                    "`mode` of {} is `{o}`; use {}{}",
                    m.what,
                    walk::list(MODES),
                    walk::did_you_mean(o, MODES)
                ),
            );
            None
        }
    }
}

/// One item of a Modbus driver's `points`. `defaults` are the driver's unit and poll.
fn modbus_point(
    cx: &mut Cx<'_>,
    n: &Node,
    what: String,
    sigs: &Signals,
    defaults: (u8, Duration),
) -> Option<ModbusPoint> {
    let errors_before = cx.diags.len();
    let mut m = MapW::new(cx, n, what)?;
    let signal = m
        .req(cx, "signal")
        .and_then(|s| lookup_signal(cx, sigs, s, &format!("`signal` of {}", m.what)));
    if let Some(s) = m.get("signal") {
        m.what = format!("{} (`{}`)", m.what, s.shown());
    }
    let area = m.req_str(cx, "area").and_then(|(a, at)| {
        let area = Area::parse(a);
        if area.is_none() {
            let names: Vec<&str> = Area::ALL.iter().map(|a| a.name()).collect();
            cx.err(
                at,
                "bad-value",
                format!(
                    "`area` of {} is `{a}`; use {}{}",
                    m.what,
                    walk::list(&names),
                    walk::did_you_mean(a, &names)
                ),
            );
        }
        area
    });
    let address = m
        .req(cx, "address")
        .and_then(|_| match m.opt_i64(cx, "address") {
            Some((a, _)) if (0..=65535).contains(&a) => Some(a as u16),
            Some((a, at)) => {
                cx.err(
                    at,
                    "out-of-range",
                    format!(
                        "`address` of {} is {a}; Modbus addresses are 0 to 65535 (0-based: holding \
                     register 40001 is address 0)",
                        m.what
                    ),
                );
                None
            }
            None => None,
        });
    let bit = match m.opt_i64(cx, "bit") {
        Some((b, _)) if (0..=15).contains(&b) => Some(Some(b as u8)),
        Some((b, at)) => {
            cx.err(
                at,
                "out-of-range",
                format!("`bit` of {} is {b}; use 0 to 15", m.what),
            );
            None
        }
        None => Some(None),
    };
    let ty = match m.opt_str(cx, "type") {
        Some((t, at)) => {
            let ty = DataType::parse(t);
            if ty.is_none() {
                cx.err(
                    at,
                    "bad-value",
                    format!(
                        "`type` of {} is `{t}`; use {}{}",
                        m.what,
                        walk::list(&DataType::NAMES),
                        walk::did_you_mean(t, &DataType::NAMES)
                    ),
                );
            }
            ty
        }
        // A bit area, or a bit of a register, holds a bool; otherwise one register.
        None => match (area, bit) {
            (Some(a), _) if a.is_bits() => Some(DataType::Bool),
            (_, Some(Some(_))) => Some(DataType::Bool),
            _ => Some(DataType::U16),
        },
    };
    let ty = match (ty, m.opt_i64(cx, "length")) {
        (Some(DataType::String { .. }), Some((l, _))) if (1..=MAX_STRING_BYTES).contains(&l) => {
            Some(DataType::String { len: l as u16 })
        }
        (Some(DataType::String { .. }), Some((l, at))) => {
            cx.err(
                at,
                "out-of-range",
                format!(
                    "`length` of {} is {l}; a string is 1 to {MAX_STRING_BYTES} bytes (one read)",
                    m.what
                ),
            );
            None
        }
        (Some(DataType::String { .. }), None) => {
            cx.err(
                m.pos,
                "missing-key",
                format!("{} is a string; give its `length` in bytes", m.what),
            );
            None
        }
        (Some(_), Some((_, at))) => {
            cx.err(
                at,
                "bad-value",
                format!("`length` of {} only applies to `type: string`", m.what),
            );
            None
        }
        (t, None) => t,
        (None, Some(_)) => None,
    };
    let order = match (ty, m.opt_str(cx, "order")) {
        (Some(t), Some((o, at))) => {
            let wide = t.registers() == 4 && !matches!(t, DataType::String { .. });
            let order = Order::parse(o, wide);
            if t.registers() < 2 || matches!(t, DataType::String { .. }) {
                cx.err(
                    at,
                    "bad-value",
                    format!(
                        "`order` of {} applies to 32- and 64-bit types only, not `{}`",
                        m.what,
                        t.name()
                    ),
                );
                None
            } else if order.is_none() {
                let names: Vec<&str> = [Order::Abcd, Order::Cdab, Order::Badc, Order::Dcba]
                    .iter()
                    .map(|o| if wide { o.names().1 } else { o.names().0 })
                    .collect();
                cx.err(
                    at,
                    "bad-value",
                    format!(
                        "`order` of {} is `{o}`; a {} uses {}",
                        m.what,
                        t.name(),
                        walk::list(&names)
                    ),
                );
                None
            } else {
                order
            }
        }
        (_, Some(_)) => None,
        (_, None) => Some(Order::Abcd),
    };
    let swap_bytes = m.opt_bool(cx, "byte_swap").unwrap_or(false);
    let scale = m.opt_f64(cx, "scale");
    if let Some((s, at)) = scale
        && (s == 0.0 || !s.is_finite())
    {
        cx.err(
            at,
            "out-of-range",
            format!("`scale` of {} must be a number other than 0", m.what),
        );
    }
    let offset = m.opt_f64(cx, "offset");
    let mode = point_mode(cx, &mut m);
    let unit = match m.opt_i64(cx, "unit") {
        Some((u, at)) => unit_id(cx, u, at, &m.what),
        None => Some(defaults.0),
    };
    let poll = positive(cx, &mut m, "poll").map(|p| p.unwrap_or(defaults.1));
    let (what, pos) = (m.what.clone(), m.pos);
    m.finish(cx);
    let (signal, area, address, ty, bit, order, mode, unit, poll) = (
        signal?, area?, address?, ty?, bit?, order?, mode?, unit?, poll?,
    );
    let encoding = Encoding {
        ty,
        order,
        bit,
        swap_bytes,
        scale: scale.map_or(1.0, |s| s.0),
        offset: offset.map_or(0.0, |o| o.0),
    };
    let (id, signal_type) = signal;
    if cx.diags.len() == errors_before
        && let Err(why) = petra_modbus::codec::check(&encoding, area, signal_type)
    {
        cx.err(pos, "wrong-type", format!("{}: {why}", what));
    }
    if mode.writes() && !area.is_writable() {
        cx.err(
            pos,
            "bad-value",
            format!(
                "{} writes, but the {area} area is read-only; use coil or holding",
                what
            ),
        );
    }
    let count = if area.is_bits() { 1 } else { ty.registers() };
    if u32::from(address) + u32::from(count) > 65536 {
        cx.err(
            pos,
            "out-of-range",
            format!("{} runs past the last address 65535", what),
        );
    }
    if cx.diags.len() != errors_before {
        return None;
    }
    Some(ModbusPoint {
        signal: id,
        signal_name: sigs.list[id.index()].plan.def.name.clone(),
        signal_type,
        unit,
        area,
        address,
        encoding,
        mode,
        poll,
    })
}
