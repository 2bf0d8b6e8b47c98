//! What a history sink is: something that stores batches of rows and says when they are safe.
//!
//! A sink runs on its own thread, fed from the WAL through its own cursor: the runner reads a
//! batch after the cursor, calls [`Sink::write`], and advances the cursor only over rows the
//! sink says are durable (a Parquet file renamed into place, an insert ClickHouse confirmed). A sink that fails is retried with backoff; the WAL keeps the
//! rows meanwhile. A write may be retried after a failure whose effect is unknown (an insert
//! whose answer was lost): sinks make writes idempotent by `Row::seq`.

use crate::row::Row;

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Worth retrying later: the target is down, busy, unreachable.
    #[error("{0}")]
    Unavailable(String),
    /// Retrying the same rows will fail the same way (a refused schema, bad credentials, a full
    /// disk is Unavailable); the runner logs it loudly and retries slowly.
    #[error("{0}")]
    Refused(String),
}

pub trait Sink: Send {
    /// `parquet`, `clickhouse`: the `sink` label of the history metrics.
    fn name(&self) -> &str;

    /// Stores `rows` (in WAL order, `seq` increasing). `Ok` means accepted: durable, except
    /// the rows from [`Sink::first_pending`] on. After `Err` the sink holds nothing that was
    /// not durable; the runner reads again from its cursor.
    fn write(&mut self, rows: &[Row]) -> Result<(), SinkError>;

    /// The `seq` of the oldest row accepted by `write` that is not durable yet (a sink that
    /// collects rows across writes, such as Parquet files); `None` when all accepted rows are
    /// durable. The runner never moves the WAL cursor past it.
    fn first_pending(&self) -> Option<u64> {
        None
    }

    /// Makes rows written so far visible/durable before a clean shutdown or when idle (a Parquet
    /// sink closes its open file). Called by the runner when no rows came for a while.
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}
