//! Modbus TCP and RTU for Petra.
//!
//! - [`point`]: what a configured point is (area, address, data type, order, scale).
//! - [`codec`]: registers ↔ values, pure and total.
//! - [`config`]: a driver as the configuration compiler hands it over.
//! - [`plan`]: the read planner — the fewest requests that cover the points.
//! - [`driver`]: the tokio task that polls and writes one device, on tokio-modbus.
//! - [`probe`]: read every point once (`petra probe`).

pub mod codec;
pub mod config;
pub mod driver;
pub mod plan;
pub mod point;
pub mod probe;

pub use config::{ModbusConfig, ModbusPoint, Mode, Parity, SerialLine, Transport};
pub use driver::{Driver, ModbusError};
pub use point::{Area, DataType, Encoding, Order};
pub use probe::{Probe, ProbeRow, probe};
