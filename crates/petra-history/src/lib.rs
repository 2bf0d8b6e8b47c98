//! Petra's history: the sampler decides which bus changes are recorded, the WAL (`petra-wal`)
//! keeps them durably, and sinks — Parquet files, ClickHouse — store them, each behind its own
//! WAL cursor, so an outage of one costs disk, not data.
//!
//! - [`row`]: a stored sample and its WAL record encoding.
//! - [`sink`]: the sink interface.

pub mod row;
pub mod sink;

pub use row::{Row, RowError};
pub use sink::{Sink, SinkError};
