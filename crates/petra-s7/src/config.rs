//! An S7 driver as the configuration compiler hands it over: resolved signals, checked
//! variables, defaults filled in. `petra-config` builds it; the driver and `petra probe` run it.

use crate::address::Variable;
use petra_core::{SignalId, ValueType};
pub use petra_drivers::Mode;
use std::time::Duration;

/// One `type: s7` entry of `drivers:`.
#[derive(Clone, Debug, PartialEq)]
pub struct S7Config {
    pub name: String,
    pub host: String,
    /// ISO-on-TCP port, 102 on every S7 CPU.
    pub port: u16,
    /// Our TSAP in the COTP connect request (`0x0100` unless configured).
    pub local_tsap: u16,
    /// The CPU's TSAP: from `rack`/`slot` and the connection type, or configured.
    pub remote_tsap: u16,
    /// PDU size we ask for; the CPU answers with what it accepts (often 240 or 480).
    pub pdu_size: u16,
    /// How long one request (or the connect) may take before the connection is dropped.
    pub timeout: Duration,
    /// Pacing: a pause after connecting before the first request.
    pub connect_delay: Duration,
    /// Pacing: a pause between two requests, so that a poll split into many requests does not
    /// reach the CPU as one burst.
    pub request_delay: Duration,
    /// Most unused bytes one read item may bridge between two points.
    pub merge_gap: u32,
    /// Most items in one request (S7-300/400 CPUs and snap7 take at most 20); lowered at run
    /// time when the PLC answers fewer items than asked.
    pub max_items: usize,
    /// Longest wait between reconnect attempts.
    pub reconnect_max: Duration,
    pub points: Vec<S7Point>,
}

/// One point: a signal and the PLC variable it maps to. An array point of the configuration
/// (`count: n`) arrives here as `n` points, one per element.
#[derive(Clone, Debug, PartialEq)]
pub struct S7Point {
    pub signal: SignalId,
    /// The signal's name, for messages and `petra probe`.
    pub signal_name: String,
    pub signal_type: ValueType,
    pub var: Variable,
    pub mode: Mode,
    /// How often the point is read; the driver's `poll` unless the point sets its own.
    pub poll: Duration,
}

impl S7Config {
    /// `host:port` as the logs show it.
    pub fn target(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Signals of the points that write to the PLC: the driver's change feed watches them.
    pub fn output_signals(&self) -> Vec<SignalId> {
        let mut v: Vec<SignalId> = self
            .points
            .iter()
            .filter(|p| p.mode.writes())
            .map(|p| p.signal)
            .collect();
        v.sort();
        v.dedup();
        v
    }
}
