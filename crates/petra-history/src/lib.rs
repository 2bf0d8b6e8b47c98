//! Petra's history: the sampler decides which bus changes are recorded, the WAL (`petra-wal`)
//! keeps them durably, and sinks — Parquet files, ClickHouse — store them, each behind its own
//! WAL cursor, so an outage of one costs disk, not data.
//!
//! - [`config`]: the `history` section as compiled.
//! - [`sampler`]: which changes become rows (on change with deadband and heartbeat, periodic).
//! - [`clickhouse`]: the ClickHouse sink (exactly once by `seq`, failover) and its query.
//! - [`parquet`]: the Parquet sink and the reader behind history queries.
//! - [`row`]: a stored sample and its WAL record encoding.
//! - [`sink`]: the sink interface.
//! - [`runner`]: the sampler thread into the WAL and a thread per sink out of it.

pub mod clickhouse;
pub mod config;
pub mod parquet;
pub mod row;
pub mod runner;
pub mod sampler;
pub mod sink;

pub use config::{ClickHouseSettings, HistoryConfig, ParquetSettings, Rule, WalSettings};
pub use row::{Row, RowError};
pub use runner::{History, HistoryError, HistoryMetrics, Pace};
pub use sampler::Sampler;
pub use sink::{Sink, SinkError};
