//! The one error type of the crate. Messages name the file and what to do about it, because the
//! operator reading them is usually looking at a machine that did not start.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("WAL: cannot {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// Damage with valid records after it: not a crash artefact, so it is not repaired silently.
    #[error(
        "WAL segment {path} is corrupt at byte {offset} ({reason}) and valid records follow, so \
         this is not a torn tail: refusing to open. Look at it with `petra wal inspect`, then \
         restore the file or set `skip_corrupt: true` to skip the damaged records (they are lost \
         and counted)"
    )]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: &'static str,
    },

    /// Damage a reader met in records recovery had checked: the disk changed under the log.
    #[error(
        "WAL segment {path} is corrupt at byte {offset} ({reason}), found while reading records \
         that were valid when the log was opened: check the disk, then restart so that recovery \
         examines the log"
    )]
    CorruptRead {
        path: PathBuf,
        offset: u64,
        reason: &'static str,
    },

    #[error(
        "WAL segment {path} has format version {version}; this build reads version 1 only: run \
         the Petra version that wrote it, or move the directory away"
    )]
    UnsupportedVersion { path: PathBuf, version: u32 },

    #[error(
        "WAL cursor file {path} is corrupt ({reason}): delete it to replay that sink from the \
         oldest retained record, or set `skip_corrupt: true` to do so automatically"
    )]
    CorruptCursor { path: PathBuf, reason: &'static str },

    #[error("WAL options are invalid: {0}")]
    InvalidOptions(String),

    #[error("WAL sink name {0:?} is invalid: use 1 to 64 characters from A-Z, a-z, 0-9, _ and -")]
    InvalidSinkName(String),

    #[error("WAL sink {0:?} is declared twice")]
    DuplicateSink(String),

    #[error("WAL has no sink {0:?}: declare it when opening the WAL")]
    UnknownSink(String),

    #[error("WAL sink {0:?} already has a reader: a sink has one reader at a time")]
    SinkBusy(String),

    #[error("a peek at WAL sink {0:?} cannot commit: only the sink's own reader moves its cursor")]
    Peek(String),

    #[error(
        "WAL record of {len} bytes is larger than the maximum of {max} (segment_size minus headers)"
    )]
    RecordTooLarge { len: usize, max: usize },

    #[error(
        "WAL sink {sink:?} cannot commit position {upto}: only positions below {durable} are \
         synced"
    )]
    CommitBeyondDurable {
        sink: String,
        upto: u64,
        durable: u64,
    },

    #[error(
        "WAL directory {0} is in use by another WAL (another process, or an instance not yet dropped)"
    )]
    Locked(PathBuf),

    /// After a failed fsync the kernel may have dropped dirty pages: nothing written since the
    /// last good sync can be trusted, so the log stops until it is reopened and recovered.
    #[error("WAL is unusable after a failed fsync ({0}); reopen it to recover")]
    Failed(String),
}

pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> WalError {
    let path = path.into();
    move |source| WalError::Io { op, path, source }
}
