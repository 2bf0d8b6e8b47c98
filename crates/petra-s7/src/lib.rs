//! Siemens S7 communication for Petra.
//!
//! Without IO, pure and total (fuzzed):
//! - [`codec`]: TPKT (RFC 1006), COTP (ISO 8073) and S7comm frames — connect, setup
//!   communication, read var, write var — encoded and decoded. Its module docs are the wire
//!   format specification.
//! - [`address`]: the configuration's view — addresses such as `DB1.DBX0.0` or `MW10`, data
//!   types (BOOL … STRING, arrays), and conversion between PLC bytes and [`S7Value`]s.
//! - [`planner`]: packs variables into the fewest requests the negotiated PDU size allows,
//!   splits what does not fit one request, and maps the responses back.
//! - [`value`]: between PLC values and bus values, by the signal's type.
//!
//! On tokio, on top of those:
//! - [`client`]: one connection to a CPU; any protocol error ends it.
//! - [`driver`]: the `type: s7` driver — polls, writes, quality — on the supervisor every
//!   Petra driver shares ([`petra_drivers::supervise`]).
//! - [`probe`]: `petra probe` for S7.
//!
//! Errors: [`CodecError`] for frames, [`AddressError`] for configuration and values,
//! [`PlanError`] for plans and responses that do not fit them, [`S7Error`] for a session.

pub mod address;
pub mod client;
pub mod codec;
pub mod config;
pub mod driver;
pub mod planner;
pub mod probe;
pub mod value;

pub use address::{Address, AddressError, DataType, S7Value, Variable, Width};
pub use client::{Client, DEFAULT_PDU_SIZE, S7Error};
pub use codec::{Area, CodecError};
pub use config::{Mode, S7Config, S7Point};
pub use driver::Driver;
pub use planner::{
    PlanConfig, PlanError, ReadPlan, WritePlan, plan_reads, plan_reads_apart, plan_writes,
};
pub use probe::{Probe, ProbeRow, probe};
