//! The Parquet sink: history as Parquet files any Parquet reader opens (pyarrow, DuckDB, Spark),
//! and the reader the HTTP API uses to answer history queries from them.
//!
//! # Layout
//!
//! ```text
//! {dir}/date=YYYY-MM-DD/HHMMSS-SSSSSSSSSSSSSSSSSSSS.parquet     complete, visible files
//! {dir}/date=YYYY-MM-DD/.HHMMSS-SSSSSSSSSSSSSSSSSSSS.parquet.tmp the files being written
//! ```
//!
//! Rows are put in files by **their own timestamp**, not by the time they are written: the day
//! is cut into periods of `rotate` (aligned on UTC midnight; the last period of a day is shorter
//! when `rotate` does not divide 24 h), and a file holds rows of one period only. So the
//! `date=` directory (a Hive partition: `read_parquet(.., hive_partitioning = true)` shows it as
//! a `date` column) is exactly the UTC date of every row in it, `HHMMSS` is the start of the
//! period, and `S…` is the `seq` (WAL position) of the file's first row, zero-padded to 20
//! digits so that names sort in write order. A period has more than one file when it holds more
//! than `file_rows` rows, or when the sink was flushed (idle, shutdown) and rows of the same
//! period came later; a rare name clash (the same rows written again after a crash) gets a
//! `-N` suffix rather than replacing a file.
//!
//! Temporary files start with `.` and end in `.tmp`: `*.parquet` globs and pyarrow datasets
//! (which skip names starting with `.` or `_`) never see them.
//!
//! # Columns
//!
//! | column | Parquet type | notes |
//! |---|---|---|
//! | `signal` | `BYTE_ARRAY` `STRING`, required | dictionary-encoded |
//! | `ts` | `INT64` `TIMESTAMP(MILLIS, isAdjustedToUTC = true)`, required | pyarrow: `timestamp[ms, tz=UTC]` |
//! | `value` | `DOUBLE`, optional | bools 0/1, ints converted; null for string signals; no dictionary |
//! | `quality` | `BYTE_ARRAY` `STRING`, required | `good`, `uncertain`, `bad` |
//! | `text` | `BYTE_ARRAY` `STRING`, optional | the value of string signals, else null |
//! | `seq` | `INT64` `INTEGER(64, unsigned)`, required | the WAL position: with `signal` and `ts`, the identity of a row |
//!
//! Rows are stored in WAL order (roughly time order), in row groups of `row_group_rows` rows.
//!
//! # Durability
//!
//! A file becomes visible only complete: it is written under its temporary name, closed (footer
//! written), fsynced, renamed, and its directory fsynced. A crash therefore never leaves a
//! partial visible file; it leaves at most the temporary files of the files that were open,
//! which [`ParquetSink::open`] deletes.
//!
//! Rows are durable only once their file is renamed, and a file collects rows over many
//! [`Sink::write`] calls (otherwise a low rate would make thousands of tiny files), so `write`
//! returning `Ok` means *accepted*, not durable. [`Sink::first_pending`] is the `seq` of the
//! oldest accepted row not yet in a renamed file (`None`: everything accepted is durable); the
//! runner's WAL cursor stays before it. The rows of the temporary files a crash loses are all at
//! or after that row, so the runner delivers them again. After an
//! `Err` from `write` or `flush` the sink has dropped every row that was not durable (and deleted
//! its temporary files): the runner re-reads from its cursor, as it does after a restart.
//!
//! Duplicates: if the process dies after a rename but before the runner stored its cursor, the
//! rows of that file are delivered again and stored in a second file. [`query`] removes such
//! duplicates (same `seq`, `ts` and `signal`); other readers may `SELECT DISTINCT` or group by
//! `seq`.
//!
//! At most two files are open: the period rows are arriving for, and the previous one, which
//! takes stragglers (rows of clocks that are a little behind) until rows are `grace` past its end
//! (a tenth of `rotate`, at most a minute); then it is closed. A file is also closed when it
//! reaches `file_rows` rows, which bounds how much of the WAL the sink holds back, and by
//! [`Sink::flush`].
//!
//! # Retention
//!
//! With `retention` set, files whose period ended more than `retention` ago (by the wall clock)
//! are deleted, and date directories left empty removed: when the sink opens, and then at most
//! once per `rotate` (at most hourly) when it closes a file. The end of a period is computed with
//! the current `rotate`.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use parquet::basic::{Compression as Codec, Encoding, ZstdLevel};
use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int64Type};
use parquet::file::metadata::RowGroupMetaData;
use parquet::file::properties::{WriterProperties, WriterVersion};
use parquet::file::reader::{FileReader, RowGroupReader};
use parquet::file::serialized_reader::SerializedFileReader;
use parquet::file::statistics::Statistics;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use parquet::schema::types::{ColumnPath, Type as SchemaType};

use crate::row::Row;
use crate::sink::{Sink, SinkError};

const DAY_MS: i64 = 86_400_000;
const SCHEMA: &str = "message petra_history {
    REQUIRED BYTE_ARRAY signal (STRING);
    REQUIRED INT64 ts (TIMESTAMP(MILLIS, true));
    OPTIONAL DOUBLE value;
    REQUIRED BYTE_ARRAY quality (STRING);
    OPTIONAL BYTE_ARRAY text (STRING);
    REQUIRED INT64 seq (INTEGER(64, false));
}";
const COL_SIGNAL: usize = 0;
const COL_TS: usize = 1;
const COL_VALUE: usize = 2;
const COL_QUALITY: usize = 3;
const COL_TEXT: usize = 4;
const COL_SEQ: usize = 5;
const QUALITIES: [&str; 3] = ["good", "uncertain", "bad"];
/// Signal names are interned per sink; names come from the configuration, so this is a guard
/// against a pathological stream, not a limit anyone should meet.
const MAX_INTERNED: usize = 1 << 16;

/// Codec of the column chunks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// zstd level 1: about as fast as snappy, much smaller. The default.
    Zstd,
    Snappy,
    None,
}

impl Compression {
    /// `zstd`, `snappy` or `none`, as the configuration spells them.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "zstd" => Some(Self::Zstd),
            "snappy" => Some(Self::Snappy),
            "none" => Some(Self::None),
            _ => None,
        }
    }

    fn codec(self) -> Codec {
        match self {
            Self::Zstd => Codec::ZSTD(ZstdLevel::default()),
            Self::Snappy => Codec::SNAPPY,
            Self::None => Codec::UNCOMPRESSED,
        }
    }
}

/// How the Parquet sink writes (configuration `history.parquet`).
#[derive(Clone, Debug, PartialEq)]
pub struct ParquetConfig {
    /// Absolute: `{data_dir}/{parquet.dir}`.
    pub dir: PathBuf,
    /// The period of a file; at least 1 s, whole seconds, at most a day (longer is a day).
    pub rotate: Duration,
    pub compression: Compression,
    /// Files older than this are deleted; `None` keeps everything.
    pub retention: Option<Duration>,
    /// Rows per row group: the unit a reader skips or reads. 128 Ki rows make row groups of a
    /// few MiB uncompressed, which readers handle efficiently.
    pub row_group_rows: usize,
    /// A file is closed when it has this many rows, even before its period ends: the rows of
    /// open files are held in the WAL, so this bounds what the sink holds back (see
    /// [`ParquetConfig::from_settings`]).
    pub file_rows: usize,
}

impl ParquetConfig {
    /// The defaults of `history.parquet` for files under `dir`: hourly, zstd, kept forever,
    /// row groups of 128 Ki rows, files of at most 1 Mi rows.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            rotate: Duration::from_secs(3600),
            compression: Compression::Zstd,
            retention: None,
            row_group_rows: 128 * 1024,
            file_rows: 1024 * 1024,
        }
    }

    /// The sink configuration of the compiled `history.parquet` section (whose `dir` is
    /// already absolute), beside a WAL capped at `wal_max_size` bytes.
    ///
    /// The rows of an open file stay in the WAL until the file is complete, so `file_rows` is
    /// also bounded by the cap: at most `wal_max_size / 512` rows (a record takes 40–70 bytes),
    /// which keeps what Parquet holds back, even with two files open, under a third of the cap.
    /// With 1 Mi rows per file regardless, a small cap under a high rate made the WAL drop
    /// rows while every sink was healthy — and raise `petra.history_wal_full` forever.
    pub fn from_settings(
        settings: &crate::config::ParquetSettings,
        wal_max_size: u64,
    ) -> Result<Self, Error> {
        let compression = Compression::from_name(&settings.compression).ok_or_else(|| {
            Error::Config(format!(
                "history.parquet.compression: unknown codec `{}` (use zstd, snappy or none)",
                settings.compression
            ))
        })?;
        Ok(Self {
            rotate: settings.rotate,
            compression,
            retention: settings.retention,
            file_rows: (wal_max_size / 512).clamp(1, 1024 * 1024) as usize,
            ..Self::new(settings.dir.clone())
        })
    }

    fn validate(&self) -> Result<(), Error> {
        let bad = |what: String| Err(Error::Config(format!("history.parquet: {what}")));
        if !self.dir.is_absolute() {
            return bad(format!("dir {} must be absolute", self.dir.display()));
        }
        if self.rotate < Duration::from_secs(1) || self.rotate.subsec_nanos() != 0 {
            return bad(format!(
                "rotate {:?} must be whole seconds, at least 1s",
                self.rotate
            ));
        }
        if self.row_group_rows == 0 || self.file_rows == 0 {
            return bad("row_group_rows and file_rows must be at least 1".into());
        }
        Ok(())
    }

    fn rotate_ms(&self) -> i64 {
        (self.rotate.as_secs().min(86_400) * 1000) as i64
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Config(String),
    #[error("history file {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("history file {}: {source}", path.display())]
    Parquet {
        path: PathBuf,
        source: parquet::errors::ParquetError,
    },
}

impl Error {
    fn io(path: &Path) -> impl FnOnce(io::Error) -> Self + '_ {
        move |source| Self::Io {
            path: path.to_owned(),
            source,
        }
    }

    fn parquet(path: &Path) -> impl FnOnce(parquet::errors::ParquetError) -> Self + '_ {
        move |source| Self::Parquet {
            path: path.to_owned(),
            source,
        }
    }
}

impl From<Error> for SinkError {
    fn from(e: Error) -> Self {
        match e {
            Error::Config(_) => SinkError::Refused(e.to_string()),
            // A full or failing disk: the WAL keeps the rows, and retrying later may succeed.
            _ => SinkError::Unavailable(e.to_string()),
        }
    }
}

/// The period of the day `ts_ms` falls in: `[start, end)`, in ms since the epoch.
fn period_of(ts_ms: i64, rotate_ms: i64) -> (i64, i64) {
    let day = ts_ms.div_euclid(DAY_MS) * DAY_MS;
    let start = day + (ts_ms - day) / rotate_ms * rotate_ms;
    (start, (start + rotate_ms).min(day + DAY_MS))
}

/// Date of a day number (days since 1970-01-01), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn date_dir_name(day_start_ms: i64) -> String {
    let (y, m, d) = civil_from_days(day_start_ms.div_euclid(DAY_MS));
    format!("date={y:04}-{m:02}-{d:02}")
}

/// The first ms of the day a `date=YYYY-MM-DD` directory holds.
fn parse_date_dir(name: &str) -> Option<i64> {
    let s = name.strip_prefix("date=")?;
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<u32>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    Some(days_from_civil(i64::from(y), m, d) * DAY_MS)
}

/// The period start (ms into the day) of a visible file `HHMMSS-….parquet`.
fn parse_file_name(name: &str) -> Option<i64> {
    let stem = name.strip_suffix(".parquet")?;
    let hms = stem.get(0..6)?;
    if stem.as_bytes().get(6) != Some(&b'-') || !hms.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| hms[r].parse::<i64>().unwrap_or(99);
    let (h, m, s) = (n(0..2), n(2..4), n(4..6));
    (h < 24 && m < 60 && s < 60).then_some((h * 3600 + m * 60 + s) * 1000)
}

fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(".parquet.tmp")
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn sync_dir(path: &Path) -> Result<(), Error> {
    File::open(path)
        .and_then(|d| d.sync_all())
        .map_err(Error::io(path))
}

/// The `date=` directories under `dir`, with the first ms of their day, oldest first.
fn date_dirs(dir: &Path) -> Result<Vec<(i64, PathBuf)>, Error> {
    let mut out = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io(dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(Error::io(dir))?;
        if let Some(day) = entry.file_name().to_str().and_then(parse_date_dir) {
            out.push((day, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Names in a directory (not recursive), sorted.
fn file_names(dir: &Path) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(Error::io(dir))? {
        let entry = entry.map_err(Error::io(dir))?;
        if let Ok(name) = entry.file_name().into_string() {
            out.push(name);
        }
    }
    out.sort();
    Ok(out)
}

/// Deletes files whose period ended at or before `now_ms - retention` (the period end is
/// computed with `rotate`), and date directories left empty. Returns how many files went.
pub fn remove_expired(
    dir: &Path,
    retention: Duration,
    rotate: Duration,
    now_ms: i64,
) -> Result<usize, Error> {
    let cutoff = now_ms.saturating_sub(retention.as_millis().min(i64::MAX as u128) as i64);
    let rotate_ms = (rotate.as_secs().clamp(1, 86_400) * 1000) as i64;
    let mut removed = 0;
    for (day, path) in date_dirs(dir)? {
        if day >= cutoff {
            break;
        }
        for name in file_names(&path)? {
            let Some(start) = parse_file_name(&name) else {
                continue;
            };
            let end = (day + start + rotate_ms).min(day + DAY_MS);
            if end <= cutoff {
                let file = path.join(&name);
                fs::remove_file(&file).map_err(Error::io(&file))?;
                removed += 1;
            }
        }
        // Fails when something is left (files still kept, an open temporary file, files that
        // are not ours): then the directory stays.
        let _ = fs::remove_dir(&path);
    }
    Ok(removed)
}

/// The columns of the rows not yet written as a row group, reused from one group to the next.
#[derive(Default)]
struct Columns {
    signal: Vec<ByteArray>,
    ts: Vec<i64>,
    value: Vec<f64>,
    value_def: Vec<i16>,
    quality: Vec<ByteArray>,
    text: Vec<ByteArray>,
    text_def: Vec<i16>,
    seq: Vec<i64>,
}

impl Columns {
    fn len(&self) -> usize {
        self.ts.len()
    }

    /// Rows the buffers hold without growing.
    fn capacity(&self) -> usize {
        self.ts.capacity()
    }

    fn clear(&mut self) {
        self.signal.clear();
        self.ts.clear();
        self.value.clear();
        self.value_def.clear();
        self.quality.clear();
        self.text.clear();
        self.text_def.clear();
        self.seq.clear();
    }
}

/// A file being written.
struct OpenFile {
    /// Period `[start, end)` of its rows.
    start: i64,
    end: i64,
    first_seq: u64,
    rows: usize,
    date_dir: PathBuf,
    temp: PathBuf,
    writer: SerializedFileWriter<File>,
    cols: Columns,
}

/// The Parquet [`Sink`]: see the module documentation for the layout, durability and
/// retention.
pub struct ParquetSink {
    cfg: ParquetConfig,
    rotate_ms: i64,
    grace_ms: i64,
    schema: Arc<SchemaType>,
    props: Arc<WriterProperties>,
    /// At most two; the last is the one rows went to last.
    files: Vec<OpenFile>,
    /// The newest row timestamp seen: closes the previous period's file after `grace`.
    newest_ts: i64,
    /// Interned signal names: a row costs a hash lookup and a reference count, no allocation.
    names: HashMap<Arc<str>, ByteArray>,
    qualities: [ByteArray; 3],
    /// The column buffers of the last closed file while no file is open, so the next file does
    /// not allocate them again.
    spare: Option<Columns>,
    last_retention: Option<Instant>,
    files_written: u64,
}

impl ParquetSink {
    /// Opens the sink on `cfg.dir` (created if missing): deletes the temporary files a crash
    /// left (their rows are still in the WAL after the cursor), and applies the retention.
    pub fn open(cfg: ParquetConfig) -> Result<Self, Error> {
        cfg.validate()?;
        if !cfg.dir.is_dir() {
            fs::create_dir_all(&cfg.dir).map_err(Error::io(&cfg.dir))?;
            // Files are durable only if the directory's own entry is.
            if let Some(parent) = cfg.dir.parent() {
                sync_dir(parent)?;
            }
        }
        for (_, date_dir) in date_dirs(&cfg.dir)? {
            for name in file_names(&date_dir)? {
                if is_temp_name(&name) {
                    let temp = date_dir.join(&name);
                    fs::remove_file(&temp).map_err(Error::io(&temp))?;
                    tracing::debug!(file = %temp.display(), "parquet: removed an unfinished file");
                }
            }
            let _ = fs::remove_dir(&date_dir);
        }
        let schema = Arc::new(parse_message_type(SCHEMA).expect("the schema parses"));
        let props = Arc::new(writer_properties(cfg.compression));
        let rotate_ms = cfg.rotate_ms();
        let mut sink = Self {
            grace_ms: (rotate_ms / 10).min(60_000),
            rotate_ms,
            schema,
            props,
            files: Vec::with_capacity(3),
            newest_ts: i64::MIN,
            names: HashMap::new(),
            qualities: QUALITIES.map(|q| ByteArray::from(Bytes::from_static(q.as_bytes()))),
            spare: None,
            last_retention: None,
            files_written: 0,
            cfg,
        };
        sink.retention();
        Ok(sink)
    }

    pub fn config(&self) -> &ParquetConfig {
        &self.cfg
    }

    /// Files completed (renamed into place) since the sink opened.
    pub fn files_written(&self) -> u64 {
        self.files_written
    }

    fn write_rows(&mut self, rows: &[Row]) -> Result<(), Error> {
        for row in rows {
            self.newest_ts = self.newest_ts.max(row.ts_ms);
            let f = match self.files.last() {
                Some(f) if f.start <= row.ts_ms && row.ts_ms < f.end => self.files.len() - 1,
                _ => self.file_for(row)?,
            };
            let name = match self.names.get(&*row.signal) {
                Some(n) => n.clone(),
                None => self.intern(&row.signal),
            };
            let quality = match row.quality {
                "good" => self.qualities[0].clone(),
                "uncertain" => self.qualities[1].clone(),
                "bad" => self.qualities[2].clone(),
                other => ByteArray::from(other.as_bytes().to_vec()),
            };
            let file = &mut self.files[f];
            let c = &mut file.cols;
            c.signal.push(name);
            c.ts.push(row.ts_ms);
            match row.value {
                Some(v) => {
                    c.value.push(v);
                    c.value_def.push(1);
                }
                None => c.value_def.push(0),
            }
            c.quality.push(quality);
            match &row.text {
                Some(t) => {
                    c.text.push(ByteArray::from(t.as_bytes().to_vec()));
                    c.text_def.push(1);
                }
                None => c.text_def.push(0),
            }
            c.seq.push(row.seq as i64);
            file.rows += 1;
            if c.len() >= self.cfg.row_group_rows {
                write_row_group(file)?;
            }
            if file.rows >= self.cfg.file_rows {
                self.close(f)?;
            }
        }
        // A period takes no more stragglers once rows are well past its end.
        while let Some(i) = self
            .files
            .iter()
            .position(|f| f.end.saturating_add(self.grace_ms) <= self.newest_ts)
        {
            self.close(i)?;
        }
        Ok(())
    }

    fn intern(&mut self, name: &Arc<str>) -> ByteArray {
        if self.names.len() >= MAX_INTERNED {
            self.names.clear();
        }
        let b = ByteArray::from(Bytes::copy_from_slice(name.as_bytes()));
        self.names.insert(name.clone(), b.clone());
        b
    }

    /// The index of the open file of `row`'s period, after making it the last; opens it if
    /// needed (closing the least recently used one when two are open).
    fn file_for(&mut self, row: &Row) -> Result<usize, Error> {
        if let Some(i) = self
            .files
            .iter()
            .position(|f| f.start <= row.ts_ms && row.ts_ms < f.end)
        {
            let last = self.files.len() - 1;
            self.files.swap(i, last);
            return Ok(last);
        }
        if self.files.len() == 2 {
            self.close(0)?;
        }
        let file = self.create(row)?;
        self.files.push(file);
        Ok(self.files.len() - 1)
    }

    fn create(&mut self, row: &Row) -> Result<OpenFile, Error> {
        let (start, end) = period_of(row.ts_ms, self.rotate_ms);
        let day = start.div_euclid(DAY_MS) * DAY_MS;
        let date_dir = self.cfg.dir.join(date_dir_name(day));
        if !date_dir.is_dir() {
            fs::create_dir_all(&date_dir).map_err(Error::io(&date_dir))?;
            // The new directory's entry must be durable before a file in it is.
            sync_dir(&self.cfg.dir)?;
        }
        let cols = self.columns_for(start)?;
        let temp = date_dir.join(format!(".{}.parquet.tmp", file_stem(start - day, row.seq)));
        let file = File::create(&temp).map_err(Error::io(&temp))?;
        let writer = SerializedFileWriter::new(file, self.schema.clone(), self.props.clone())
            .map_err(Error::parquet(&temp))?;
        Ok(OpenFile {
            start,
            end,
            first_seq: row.seq,
            rows: 0,
            date_dir,
            temp,
            writer,
            cols,
        })
    }

    /// The column buffers for a new file of the period starting at `start`, so that the sink
    /// holds one set grown to a row group's size, not one per open file: the spare if there is
    /// one; else, when a new period begins while the previous period's file stays open for
    /// stragglers, that file's buffers — its pending rows become a row group now, and the few
    /// stragglers still to come get small buffers of their own. Without this, every period end
    /// allocated a second full set (about 12 MiB at 50,000 rows/s) for the grace time, and the
    /// soak's RSS crept with each one.
    fn columns_for(&mut self, start: i64) -> Result<Columns, Error> {
        if let Some(cols) = self.spare.take() {
            return Ok(cols);
        }
        let Some(prev) = self
            .files
            .iter_mut()
            .filter(|f| f.start < start)
            .max_by_key(|f| f.start)
        else {
            return Ok(Columns::default());
        };
        if prev.cols.len() > 0 {
            write_row_group(prev)?;
        }
        Ok(std::mem::take(&mut prev.cols))
    }

    /// Completes file `i`: last row group, footer, fsync, rename, fsync of the directory.
    fn close(&mut self, i: usize) -> Result<(), Error> {
        let mut f = self.files.remove(i);
        if let Err(e) = Self::complete(&mut f) {
            let _ = fs::remove_file(&f.temp);
            return Err(e);
        }
        self.files_written += 1;
        // Kept for the next file only when no open file has buffers as large: a file that
        // filled up is followed at once by the next one, which takes them. A period's file
        // closing beside the next period's (which took the large set, see `columns_for`) would
        // otherwise keep a second set for good — about 12 MiB at 50,000 rows/s, the step the
        // soak saw at every first period end.
        let capacity = f.cols.capacity();
        if self.spare.is_none() && self.files.iter().all(|o| o.cols.capacity() < capacity) {
            f.cols.clear();
            self.spare = Some(f.cols);
        }
        self.retention();
        Ok(())
    }

    fn complete(f: &mut OpenFile) -> Result<(), Error> {
        if f.cols.len() > 0 {
            write_row_group(f)?;
        }
        f.writer.finish().map_err(Error::parquet(&f.temp))?;
        f.writer.inner().sync_all().map_err(Error::io(&f.temp))?;
        let day = f.start.div_euclid(DAY_MS) * DAY_MS;
        let stem = file_stem(f.start - day, f.first_seq);
        let mut target = f.date_dir.join(format!("{stem}.parquet"));
        // The same first row again: rows delivered again after a crash that followed a rename.
        // Keep both (queries drop the duplicates) rather than replace a file that may hold
        // rows the new one lacks.
        let mut n = 0;
        while target.exists() {
            n += 1;
            target = f.date_dir.join(format!("{stem}-{n}.parquet"));
        }
        fs::rename(&f.temp, &target).map_err(Error::io(&target))?;
        sync_dir(&f.date_dir)
    }

    /// Applies the retention if it is set and was not applied in the last `rotate` (at most an
    /// hour). A failure is logged, not returned: old files that cannot be deleted must not stop
    /// new ones from being written.
    fn retention(&mut self) {
        let Some(retention) = self.cfg.retention else {
            return;
        };
        let every = self.cfg.rotate.min(Duration::from_secs(3600));
        if self.last_retention.is_some_and(|t| t.elapsed() < every) {
            return;
        }
        self.last_retention = Some(Instant::now());
        match remove_expired(&self.cfg.dir, retention, self.cfg.rotate, now_ms()) {
            Ok(0) => {}
            Ok(n) => tracing::debug!(files = n, "parquet: removed files past the retention"),
            Err(e) => tracing::warn!(
                error = %e,
                "parquet: could not apply the retention; old history files stay until it works"
            ),
        }
    }

    /// Drops every open file and its temporary file: after a failure nothing that is not
    /// durable is kept, and the runner delivers those rows again from its cursor.
    fn abort(&mut self) {
        for f in self.files.drain(..) {
            drop(f.writer);
            let _ = fs::remove_file(&f.temp);
        }
    }

    fn close_all(&mut self) -> Result<(), Error> {
        while !self.files.is_empty() {
            self.close(0)?;
        }
        Ok(())
    }
}

fn file_stem(start_in_day_ms: i64, first_seq: u64) -> String {
    let s = start_in_day_ms / 1000;
    format!(
        "{:02}{:02}{:02}-{first_seq:020}",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

fn writer_properties(compression: Compression) -> WriterProperties {
    let delta = |b: parquet::file::properties::WriterPropertiesBuilder, col: &str| {
        let path = ColumnPath::from(col);
        // Timestamps and WAL positions grow steadily: delta encoding stores them in a few bits
        // each, where a dictionary would overflow and fall back to plain.
        b.set_column_dictionary_enabled(path.clone(), false)
            .set_column_encoding(path, Encoding::DELTA_BINARY_PACKED)
    };
    let b = WriterProperties::builder()
        .set_writer_version(WriterVersion::PARQUET_1_0)
        .set_compression(compression.codec())
        .set_created_by(format!("petra {}", env!("CARGO_PKG_VERSION")));
    let b = delta(b, "ts");
    let b = delta(b, "seq");
    // Measured values are mostly distinct: a dictionary per row group (128 Ki rows) costs more
    // than it saves, and zstd finds what repeats (scripts/bench-history, "size").
    let b = b.set_column_dictionary_enabled(ColumnPath::from("value"), false);
    b.build()
}

/// Writes the buffered rows of `f` as one row group.
fn write_row_group(f: &mut OpenFile) -> Result<(), Error> {
    let err = Error::parquet(&f.temp);
    let c = &f.cols;
    let r: parquet::errors::Result<()> = (|| {
        let mut rg = f.writer.next_row_group()?;
        for col in 0..6 {
            let mut w = rg.next_column()?.expect("six columns");
            match col {
                COL_SIGNAL => {
                    w.typed::<ByteArrayType>()
                        .write_batch(&c.signal, None, None)?;
                }
                COL_TS => {
                    w.typed::<Int64Type>().write_batch(&c.ts, None, None)?;
                }
                COL_VALUE => {
                    w.typed::<DoubleType>()
                        .write_batch(&c.value, Some(&c.value_def), None)?;
                }
                COL_QUALITY => {
                    w.typed::<ByteArrayType>()
                        .write_batch(&c.quality, None, None)?;
                }
                COL_TEXT => {
                    w.typed::<ByteArrayType>()
                        .write_batch(&c.text, Some(&c.text_def), None)?;
                }
                _ => {
                    w.typed::<Int64Type>().write_batch(&c.seq, None, None)?;
                }
            }
            w.close()?;
        }
        rg.close()?;
        Ok(())
    })();
    r.map_err(err)?;
    f.cols.clear();
    Ok(())
}

impl Sink for ParquetSink {
    fn name(&self) -> &str {
        "parquet"
    }

    /// Accepts `rows` into the open files. `Ok` does **not** mean durable: see
    /// [`Sink::first_pending`].
    fn write(&mut self, rows: &[Row]) -> Result<(), SinkError> {
        self.write_rows(rows).map_err(|e| {
            self.abort();
            e.into()
        })
    }

    /// The first row of the oldest open file: every row before it is in a renamed file.
    fn first_pending(&self) -> Option<u64> {
        self.files.iter().map(|f| f.first_seq).min()
    }

    /// Completes every open file: afterwards all accepted rows are durable.
    fn flush(&mut self) -> Result<(), SinkError> {
        self.close_all().map_err(|e| {
            self.abort();
            e.into()
        })
    }
}

/// The rows of `signal` with `from_ms <= ts < to_ms` in the files under `dir`, oldest first (ties
/// in WAL order), at most `limit`, without duplicates. Reads only the files of the date
/// directories and periods that overlap, and of those only the row groups whose statistics
/// (time range, signal range) may hold matches. Ask for `limit + 1` to learn whether there are
/// more.
pub fn query(
    dir: &Path,
    signal: &str,
    from_ms: i64,
    to_ms: i64,
    limit: usize,
) -> Result<Vec<Row>, Error> {
    let mut out: Vec<Row> = Vec::new();
    if from_ms >= to_ms || limit == 0 {
        return Ok(out);
    }
    let signal_arc: Arc<str> = Arc::from(signal);
    let from_day = from_ms.div_euclid(DAY_MS) * DAY_MS;
    // Candidate files with the start of their period; a file's rows are all at or after it.
    let mut files: Vec<(i64, PathBuf)> = Vec::new();
    for (day, path) in date_dirs(dir)? {
        if day < from_day || day >= to_ms {
            continue;
        }
        for name in file_names(&path)? {
            if let Some(start) = parse_file_name(&name)
                && day + start < to_ms
            {
                files.push((day + start, path.join(name)));
            }
        }
    }
    files.sort();
    let mut i = 0;
    while i < files.len() {
        let start = files[i].0;
        while i < files.len() && files[i].0 == start {
            read_file(
                &files[i].1,
                signal.as_bytes(),
                &signal_arc,
                from_ms,
                to_ms,
                &mut out,
            )?;
            i += 1;
        }
        // Later files hold only rows at or after the next period's start: stop as soon as
        // `limit` rows before it are known.
        let next = files.get(i).map_or(i64::MAX, |f| f.0);
        if out.iter().filter(|r| r.ts_ms < next).count() >= limit {
            break;
        }
    }
    out.sort_by_key(|r| (r.ts_ms, r.seq));
    out.dedup_by(|a, b| a.seq == b.seq && a.ts_ms == b.ts_ms);
    out.truncate(limit);
    Ok(out)
}

fn stats_i64(rg: &RowGroupMetaData, col: usize) -> Option<(i64, i64)> {
    match rg.column(col).statistics()? {
        Statistics::Int64(s) => Some((*s.min_opt()?, *s.max_opt()?)),
        _ => None,
    }
}

fn may_hold_signal(rg: &RowGroupMetaData, signal: &[u8]) -> bool {
    match rg.column(COL_SIGNAL).statistics() {
        // Truncated statistics are still bounds: the minimum is a prefix, the maximum rounded up.
        Some(s) => match (s.min_bytes_opt(), s.max_bytes_opt()) {
            (Some(min), Some(max)) => min <= signal && signal <= max,
            _ => true,
        },
        None => true,
    }
}

fn read_file(
    path: &Path,
    signal: &[u8],
    signal_arc: &Arc<str>,
    from_ms: i64,
    to_ms: i64,
    out: &mut Vec<Row>,
) -> Result<(), Error> {
    let file = match File::open(path) {
        Ok(f) => f,
        // Deleted by the retention meanwhile.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(path)(e)),
    };
    let reader = SerializedFileReader::new(file).map_err(Error::parquet(path))?;
    let check = |d: &parquet::schema::types::SchemaDescriptor| {
        let names: Vec<&str> = d.columns().iter().map(|c| c.name()).collect();
        names == ["signal", "ts", "value", "quality", "text", "seq"]
    };
    if !check(reader.metadata().file_metadata().schema_descr()) {
        return Err(Error::Parquet {
            path: path.to_owned(),
            source: parquet::errors::ParquetError::General(
                "not a Petra history file (unexpected columns)".into(),
            ),
        });
    }
    let mut buf = ReadBuffers::default();
    for g in 0..reader.num_row_groups() {
        let meta = reader.metadata().row_group(g);
        if let Some((min, max)) = stats_i64(meta, COL_TS)
            && (max < from_ms || min >= to_ms)
        {
            continue;
        }
        if !may_hold_signal(meta, signal) {
            continue;
        }
        let rg = reader.get_row_group(g).map_err(Error::parquet(path))?;
        buf.read_group(
            &*rg,
            meta.num_rows() as usize,
            signal,
            signal_arc,
            from_ms,
            to_ms,
            out,
        )
        .map_err(Error::parquet(path))?;
    }
    Ok(())
}

#[derive(Default)]
struct ReadBuffers {
    bytes: Vec<ByteArray>,
    ints: Vec<i64>,
    doubles: Vec<f64>,
    defs: Vec<i16>,
    /// Rows of the group that match: index in the group.
    hits: Vec<usize>,
    ts: Vec<i64>,
}

impl ReadBuffers {
    fn column<T: parquet::data_type::DataType>(
        rg: &dyn RowGroupReader,
        col: usize,
        n: usize,
        mut defs: Option<&mut Vec<i16>>,
        values: &mut Vec<T::T>,
    ) -> parquet::errors::Result<()> {
        let mut r =
            parquet::column::reader::get_typed_column_reader::<T>(rg.get_column_reader(col)?);
        values.clear();
        if let Some(d) = defs.as_mut() {
            d.clear();
        }
        let (records, _, _) = r.read_records(n, defs, None, values)?;
        if records != n {
            return Err(parquet::errors::ParquetError::General(format!(
                "column {col}: {records} rows, the row group has {n}"
            )));
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn read_group(
        &mut self,
        rg: &dyn RowGroupReader,
        n: usize,
        signal: &[u8],
        signal_arc: &Arc<str>,
        from_ms: i64,
        to_ms: i64,
        out: &mut Vec<Row>,
    ) -> parquet::errors::Result<()> {
        Self::column::<ByteArrayType>(rg, COL_SIGNAL, n, None, &mut self.bytes)?;
        self.hits.clear();
        self.hits
            .extend((0..n).filter(|&i| self.bytes[i].data() == signal));
        if self.hits.is_empty() {
            return Ok(());
        }
        Self::column::<Int64Type>(rg, COL_TS, n, None, &mut self.ints)?;
        let ints = &self.ints;
        self.hits.retain(|&i| from_ms <= ints[i] && ints[i] < to_ms);
        if self.hits.is_empty() {
            return Ok(());
        }
        std::mem::swap(&mut self.ts, &mut self.ints);
        let first = out.len();
        for &i in &self.hits {
            out.push(Row {
                signal: signal_arc.clone(),
                ts_ms: self.ts[i],
                value: None,
                text: None,
                quality: "bad",
                seq: 0,
            });
        }
        let rows = &mut out[first..];

        Self::column::<DoubleType>(rg, COL_VALUE, n, Some(&mut self.defs), &mut self.doubles)?;
        let values = nullable(&self.defs, &self.doubles);
        for (row, &i) in rows.iter_mut().zip(&self.hits) {
            row.value = values.get(i).copied().flatten().copied();
        }

        Self::column::<ByteArrayType>(rg, COL_QUALITY, n, None, &mut self.bytes)?;
        for (row, &i) in rows.iter_mut().zip(&self.hits) {
            let q = self.bytes[i].data();
            row.quality = QUALITIES
                .iter()
                .find(|name| name.as_bytes() == q)
                .copied()
                .unwrap_or("bad");
        }

        let mut texts = Vec::new();
        Self::column::<ByteArrayType>(rg, COL_TEXT, n, Some(&mut self.defs), &mut texts)?;
        let texts = nullable(&self.defs, &texts);
        for (row, &i) in rows.iter_mut().zip(&self.hits) {
            row.text = texts
                .get(i)
                .copied()
                .flatten()
                .map(|t| Arc::from(String::from_utf8_lossy(t.data())));
        }

        Self::column::<Int64Type>(rg, COL_SEQ, n, None, &mut self.ints)?;
        for (row, &i) in rows.iter_mut().zip(&self.hits) {
            row.seq = self.ints[i] as u64;
        }
        Ok(())
    }
}

/// The values of an optional column, one per row (`None` for nulls).
fn nullable<'a, T>(defs: &[i16], values: &'a [T]) -> Vec<Option<&'a T>> {
    let mut it = values.iter();
    defs.iter()
        .map(|&d| if d > 0 { it.next() } else { None })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;
    const D: i64 = 1_796_342_400_000; // 2026-12-04T00:00:00Z

    /// A row of signal `a` whose value is its `seq`.
    fn row(ts_ms: i64, seq: u64) -> crate::Row {
        crate::Row {
            signal: "a".into(),
            ts_ms,
            value: Some(seq as f64),
            text: None,
            quality: "good",
            seq,
        }
    }

    #[test]
    fn a_period_end_leaves_one_set_of_column_buffers() {
        use crate::Sink;
        let dir = tempfile::tempdir().unwrap();
        let mut sink = ParquetSink::open(ParquetConfig {
            file_rows: 4,
            ..ParquetConfig::new(dir.path().join("history"))
        })
        .unwrap();
        // A file that fills up hands its buffers to the next one.
        let rows: Vec<_> = (1..=5).map(|k| row(D + k, k as u64)).collect();
        sink.write(&rows).unwrap();
        assert_eq!((sink.files.len(), sink.spare.is_some()), (1, false));
        // The next hour's rows, past the grace: the old period's file closes beside the new one,
        // which has buffers of its own; the old ones are freed, not kept.
        sink.write(&[row(D + HOUR + 1, 6), row(D + HOUR + 120_000, 7)])
            .unwrap();
        assert_eq!(
            (sink.files.len(), sink.spare.is_some()),
            (1, false),
            "a second set of column buffers is kept after a period end"
        );
    }

    #[test]
    fn a_new_period_takes_the_column_buffers_of_the_previous_one() {
        use crate::Sink;
        let dir = tempfile::tempdir().unwrap();
        let history = dir.path().join("history");
        let mut sink = ParquetSink::open(ParquetConfig::new(history.clone())).unwrap();
        let rows: Vec<_> = (1..=100)
            .map(|k| row(D + HOUR - 200 + k, k as u64))
            .collect();
        sink.write(&rows).unwrap();
        let buffers = sink.files[0].cols.ts.as_ptr();
        let capacity = sink.files[0].cols.capacity();
        assert!(capacity >= 100);
        // The next hour begins while the previous hour's file stays open for stragglers (the
        // grace is a minute): the new file goes on in the same buffers, the old one's pending
        // rows are a row group already.
        sink.write(&[row(D + HOUR + 1, 101)]).unwrap();
        assert_eq!(sink.files.len(), 2);
        let (old, new) = (&sink.files[0], &sink.files[1]);
        assert_eq!((old.start, new.start), (D, D + HOUR));
        assert_eq!(
            new.cols.ts.as_ptr(),
            buffers,
            "the new period allocated new buffers"
        );
        assert_eq!((new.cols.len(), new.cols.capacity()), (1, capacity));
        assert_eq!((old.cols.len(), old.cols.capacity()), (0, 0));
        // A straggler goes to the old file in small buffers of its own, which are freed when it
        // closes past the grace; the large set is not kept twice.
        sink.write(&[row(D + HOUR - 1, 102), row(D + HOUR + 120_000, 103)])
            .unwrap();
        assert_eq!((sink.files.len(), sink.spare.is_some()), (1, false));
        assert_eq!(sink.files[0].cols.ts.as_ptr(), buffers);
        sink.flush().unwrap();
        assert!(sink.spare.is_some());
        // Every row is in the files, in its own period's file.
        let seqs = |from, to| -> Vec<u64> {
            query(&history, "a", from, to, 1000)
                .unwrap()
                .iter()
                .map(|r| r.seq)
                .collect()
        };
        let mut first_hour: Vec<u64> = (1..=100).collect();
        first_hour.push(102);
        assert_eq!(seqs(D, D + HOUR), first_hour);
        assert_eq!(seqs(D + HOUR, D + 2 * HOUR), [101, 103]);
    }

    #[test]
    fn a_file_holds_back_a_small_part_of_the_wal_cap() {
        let settings = crate::config::ParquetSettings {
            dir: PathBuf::from("/var/lib/petra/history"),
            rotate: Duration::from_secs(3600),
            compression: "zstd".into(),
            retention: None,
        };
        let rows = |cap: u64| {
            ParquetConfig::from_settings(&settings, cap)
                .unwrap()
                .file_rows
        };
        assert_eq!(rows(1 << 30), 1024 * 1024, "the default 1 GiB: 1 Mi rows");
        assert_eq!(rows(256 << 20), 512 * 1024);
        // 8192 records of at most 70 bytes: 560 KiB, two open files under a third of 4 MiB.
        assert_eq!(rows(4 << 20), 8192);
    }

    #[test]
    fn dates_and_periods() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        for d in [-800_000, -1, 0, 59, 11_016, 20_000, 2_932_896] {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
        // 2026-12-04T14:30:00Z
        let t = 1_796_394_600_000;
        assert_eq!(date_dir_name(t), "date=2026-12-04");
        assert_eq!(
            parse_date_dir("date=2026-12-04"),
            Some(t - 14 * 3_600_000 - 1_800_000)
        );
        assert_eq!(parse_date_dir("date=2026-13-04"), None);
        assert_eq!(parse_date_dir("x"), None);
        let (s, e) = period_of(t, 3_600_000);
        assert_eq!((t - s, e - s), (1_800_000, 3_600_000));
        // 7 h does not divide a day: the last period ends at midnight.
        let day = t - (t - s) - 14 * 3_600_000;
        assert_eq!(
            period_of(day + 23 * 3_600_000, 7 * 3_600_000),
            (day + 21 * 3_600_000, day + DAY_MS)
        );
        assert_eq!(period_of(-1, 1000), (-1000, 0));
        assert_eq!(
            file_stem(14 * 3_600_000 + 61_000, 42),
            "140101-00000000000000000042"
        );
        assert_eq!(
            parse_file_name("140101-00000000000000000042.parquet"),
            Some(50_461_000)
        );
        assert_eq!(
            parse_file_name("140101-00000000000000000042-1.parquet"),
            Some(50_461_000)
        );
        assert_eq!(
            parse_file_name(".140101-00000000000000000042.parquet.tmp"),
            None
        );
        assert_eq!(parse_file_name("250000-1.parquet"), None);
        assert!(is_temp_name(".140101-00000000000000000042.parquet.tmp"));
    }
}
