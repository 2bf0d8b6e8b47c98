//! The `history` section as the configuration compiler hands it over: every signal's recording
//! rule resolved (first matching rule wins), paths absolute, defaults filled in.

use petra_core::SignalId;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq)]
pub struct HistoryConfig {
    /// The recorded signals with their rule, in id order; signals no rule matches are absent.
    pub signals: Vec<(SignalId, String, Rule)>,
    pub wal: WalSettings,
    pub parquet: Option<ParquetSettings>,
    pub clickhouse: Option<ClickHouseSettings>,
}

/// When a signal is recorded. Quality changes are always recorded.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rule {
    /// On change: a numeric value that moved more than `deadband` from the last recorded one
    /// (any change with deadband 0), any change of a bool or string; and at least every
    /// `max_interval` (a heartbeat of the current value) when given.
    OnChange {
        deadband: f64,
        max_interval: Option<Duration>,
    },
    /// The current value every `interval`.
    Periodic { interval: Duration },
}

#[derive(Clone, Debug, PartialEq)]
pub struct WalSettings {
    pub dir: PathBuf,
    pub max_size: u64,
    /// Group commit: how often appended samples are made durable.
    pub fsync: Duration,
    /// Skip corrupt regions in the middle of a segment (counted) instead of refusing to start.
    pub skip_corrupt: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ParquetSettings {
    pub dir: PathBuf,
    pub rotate: Duration,
    /// `zstd`, `snappy` or `none`.
    pub compression: String,
    pub retention: Option<Duration>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ClickHouseSettings {
    pub urls: Vec<String>,
    pub database: String,
    pub table: String,
    pub user: Option<String>,
    pub password: Option<String>,
    pub batch: usize,
    pub flush: Duration,
}
