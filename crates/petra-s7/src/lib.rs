//! Siemens S7 communication for Petra, without IO.
//!
//! - [`codec`]: TPKT (RFC 1006), COTP (ISO 8073) and S7comm frames — connect, setup
//!   communication, read var, write var — encoded and decoded, pure and total. Its module docs
//!   are the wire format specification.
//! - [`address`]: the configuration's view — addresses such as `DB1.DBX0.0` or `MW10`, data
//!   types (BOOL … STRING, arrays), and conversion between PLC bytes and [`S7Value`]s.
//! - [`planner`]: packs variables into the fewest requests the negotiated PDU size allows,
//!   splits what does not fit one request, and maps the responses back.
//!
//! Nothing here touches a socket, a runtime or a clock; the client that does lives on top.
//! Errors: [`CodecError`] for frames, [`AddressError`] for configuration and values,
//! [`PlanError`] for plans and responses that do not fit them.

pub mod address;
pub mod codec;
pub mod planner;

pub use address::{Address, AddressError, DataType, S7Value, Variable, Width};
pub use codec::{Area, CodecError};
pub use planner::{PlanConfig, PlanError, ReadPlan, WritePlan};
