//! A Modbus driver as the configuration compiler hands it over: resolved signals, checked
//! encodings, defaults filled in. `petra-config` builds it; the driver and `petra probe` run it.

use crate::point::{Area, Encoding};
use petra_core::{SignalId, ValueType};
use std::path::PathBuf;
use std::time::Duration;

/// One `type: modbus` entry of `drivers:`.
#[derive(Clone, Debug, PartialEq)]
pub struct ModbusConfig {
    pub name: String,
    pub transport: Transport,
    /// How long one request may take before the connection is dropped.
    pub timeout: Duration,
    /// Pacing: a pause after connecting before the first request (slow gateways).
    pub connect_delay: Duration,
    /// Pacing: a pause between two requests (devices that need a quiet line).
    pub request_delay: Duration,
    /// Most unused registers one read may bridge between two points.
    pub max_gap: u16,
    /// Longest wait between reconnect attempts (the backoff starts at 100 ms and doubles).
    pub reconnect_max: Duration,
    pub points: Vec<ModbusPoint>,
}

/// Where the device is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transport {
    /// Modbus TCP (MBAP framing).
    Tcp { host: String, port: u16 },
    /// Modbus RTU on a serial line.
    Rtu(SerialLine),
}

/// A serial line's settings (`rtu:///dev/ttyUSB0?baud=19200&parity=E&stop=1`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SerialLine {
    pub path: PathBuf,
    pub baud: u32,
    pub parity: Parity,
    pub stop_bits: u8,
    pub data_bits: u8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parity {
    None,
    Even,
    Odd,
}

pub use petra_drivers::Mode;

/// One point: a signal and where its value lives on the device.
#[derive(Clone, Debug, PartialEq)]
pub struct ModbusPoint {
    pub signal: SignalId,
    /// The signal's name, for messages and `petra probe`.
    pub signal_name: String,
    /// The signal's type: what the codec decodes into.
    pub signal_type: ValueType,
    /// Unit (slave) id; the driver's `unit` unless the point sets its own.
    pub unit: u8,
    pub area: Area,
    /// Protocol address, 0-based (holding register 40001 is address 0).
    pub address: u16,
    pub encoding: Encoding,
    pub mode: Mode,
    /// How often the point is read; the driver's `poll` unless the point sets its own.
    pub poll: Duration,
}

impl ModbusPoint {
    /// Bits (bit areas) or registers (register areas) the point spans.
    pub fn count(&self) -> u16 {
        if self.area.is_bits() {
            1
        } else {
            self.encoding.ty.registers()
        }
    }
}

impl ModbusConfig {
    /// Signals of the points that write to the device: the driver's change feed watches them.
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
