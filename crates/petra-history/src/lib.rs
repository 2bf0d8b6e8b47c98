//! Petra's history: the sampler decides which bus changes are recorded, the WAL (`petra-wal`)
//! keeps them durably, and sinks — Parquet files, ClickHouse — store them, each behind its own
//! WAL cursor, so an outage of one costs disk, not data.
//!
//! - [`config`]: the `history` section as compiled.
//! - [`sampler`]: which changes become rows (on change with deadband and heartbeat, periodic).
//! - [`row`]: a stored sample and its WAL record encoding.
//! - [`sink`]: the sink interface.

pub mod config;
pub mod row;
pub mod sampler;
pub mod sink;

pub use config::{ClickHouseSettings, HistoryConfig, ParquetSettings, Rule, WalSettings};
pub use row::{Row, RowError};
pub use sampler::Sampler;
pub use sink::{Sink, SinkError};
