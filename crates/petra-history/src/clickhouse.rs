//! The ClickHouse sink: batches of rows inserted over ClickHouse's HTTP interface, exactly once as
//! seen by queries, with failover between servers; and the query that reads them back.
//!
//! It must work with ClickHouse 18.16 (Debian 12's `clickhouse-server`: no `DateTime64`, no
//! codecs, no TTL, `LowCardinality` experimental) as well as current servers, so it uses only
//! what both understand: plain types, `ReplacingMergeTree`, `FINAL`, `RowBinary`, HTTP basic
//! auth and the `?database=` parameter.
//!
//! # Table
//!
//! Looked for (`EXISTS TABLE`) on first use of a server and again after any failure on it, so a
//! server that came back empty gets it again; created when missing:
//!
//! ```sql
//! CREATE DATABASE IF NOT EXISTS `petra`;
//! CREATE TABLE IF NOT EXISTS `petra`.`samples` (
//!     signal  String,                 -- the signal name
//!     ts      DateTime('UTC'),        -- the time, whole seconds (UTC)
//!     ms      UInt16,                 -- the milliseconds within that second, 0..=999
//!     value   Nullable(Float64),      -- numbers, bools as 0/1; NULL for string signals
//!     text    Nullable(String),       -- the value of a string signal; NULL for numbers
//!     quality String,                 -- good, uncertain or bad
//!     seq     UInt64                  -- the row's position in Petra's WAL
//! ) ENGINE = ReplacingMergeTree
//! PARTITION BY toYYYYMM(ts)
//! ORDER BY (signal, ts, ms, seq);
//! ```
//!
//! The time is `ts` + `ms` because 18.16 has no `DateTime64`: `ts` is a `DateTime` every tool
//! understands (`WHERE ts >= now() - 3600`, Grafana), partitions by month and leads the sort key
//! after the signal, so a query for one signal and a time range reads only the granules it
//! needs; `ms` keeps the millisecond. The Unix time in milliseconds is `toInt64(ts) * 1000 +
//! ms`. `DateTime` is unsigned 32-bit seconds, so a row must lie in 1970-01-01 ..
//! 2106-02-07 (UTC): a row outside (a broken clock) is refused. `seq` is in the key so that two
//! samples of a signal in the same millisecond are both kept.
//!
//! A table that already exists is accepted when it has these columns with these types (more
//! columns are fine if they have defaults) and a `ReplacingMergeTree` engine of any kind — a
//! `ReplicatedReplacingMergeTree` made by a DBA for a cluster works the same; otherwise every
//! write is refused with what differs.
//!
//! # Exactly once, as seen by queries
//!
//! The runner repeats a write whose outcome it does not know (a timeout, a connection reset
//! after the body went out), and the repeat may be cut into other batches than the first try.
//! ClickHouse's own insert deduplication does not help: it drops only *identical* blocks, and
//! only for `Replicated*` tables (non-replicated tables learnt it, off by default, in 21.x; 18.16
//! has none). So duplicates are allowed into the table and removed by the key: every row's
//! sort key `(signal, ts, ms, seq)` is unique (seq is its WAL position), a repeated row has the
//! same key and the same content, and `ReplacingMergeTree` keeps one row per key. It does so
//! when parts merge, at some later time, so **queries read with `FINAL`** (which applies the
//! same merge while reading), as [`query_sql`] does; an aggregate over the raw table may count
//! a row twice until its parts merged (`OPTIMIZE TABLE … FINAL` forces that). The signal and
//! time in the key also keep a reused `seq` (a WAL deleted and started again) from replacing an
//! older row: both would have to fall on the same millisecond of the same signal.
//!
//! # Writes, failover, errors
//!
//! A write sends each batch of at most `batch` rows as one `INSERT INTO db.table (…) FORMAT
//! RowBinary` (the statement in `?query=`, the rows in the body: exact floats, NaN included,
//! which JSONEachRow cannot carry into a `Nullable(Float64)` on 18.16), with `?database=` and
//! HTTP basic auth; only HTTP 200 is success. The `urls` are tried starting with the one that
//! worked last, each once, in order; one that fails is left for the next until one works, which
//! becomes the one used from then on. What each failure means:
//!
//! | answer | meaning | result |
//! |---|---|---|
//! | no connection, timeout, reset; HTTP 5xx, 408, 429, and any code not below | the server is down or busy | [`SinkError::Unavailable`] (try again later) |
//! | Code 192 unknown user, 193 wrong password, 194 password required, 195 address not allowed, 516 authentication failed (HTTP 401/403) | the credentials are wrong | [`SinkError::Refused`] |
//! | Code 164 read-only, 291 database access denied, 497 access denied | the user may not write | [`SinkError::Refused`] |
//! | Code 16, 44, 47, 53, 62, 70 and HTTP 400, 404, 413, 501 | the table does not fit the rows | [`SinkError::Refused`] |
//! | Code 60 unknown table, 81 unknown database | dropped under us | the table is created again and the batch sent once more |
//!
//! When every URL failed, the result is `Refused` if any of them refused, else `Unavailable`;
//! the message names each URL and what it answered (never the password).
//!
//! The URLs are expected to be replicas of one table (a `Replicated*` table behind each) or
//! independent servers that each keep what they got: a batch whose first try on one server
//! timed out and that then went to another may be stored on both.
//!
//! # Blocking
//!
//! The sink is blocking (reqwest's blocking client, which runs its own small runtime): it lives
//! on its sink thread. Do not create or drop it inside an async task; an async caller of
//! [`ClickHouseSink::query`] uses `spawn_blocking`, or sends [`query_sql`] with its own client
//! and decodes the answer with [`parse_rows`].
//!
//! # TLS
//!
//! `https://` URLs are verified against the system's trust store, or only against the CA
//! certificates in `ca_file` (PEM) when it is set; rustls with the ring provider.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::row::{Row, RowError};
use crate::sink::{Sink, SinkError};

/// The columns of the table, in order, with their types as ClickHouse reports them.
pub const COLUMNS: [(&str, &str); 7] = [
    ("signal", "String"),
    ("ts", "DateTime('UTC')"),
    ("ms", "UInt16"),
    ("value", "Nullable(Float64)"),
    ("text", "Nullable(String)"),
    ("quality", "String"),
    ("seq", "UInt64"),
];

/// The latest time a row may have: the end of `DateTime`'s unsigned 32-bit seconds.
pub const MAX_TS_MS: i64 = u32::MAX as i64 * 1000 + 999;

/// How long an idle pooled connection is kept: below ClickHouse's `keep_alive_timeout` (3 s in
/// 18.16, longer in later versions), so a batch never goes out on a connection the server is
/// closing.
const POOL_IDLE: Duration = Duration::from_secs(2);

/// How much of a server's error text goes into a message.
const MAX_ERROR_TEXT: usize = 400;

/// How the ClickHouse sink connects and writes (configuration `history.clickhouse`).
#[derive(Clone, PartialEq)]
pub struct ClickHouseConfig {
    /// `http://host:8123` or `https://host:8443` (a path is kept: a proxy prefix); tried in
    /// order, see the module docs.
    pub urls: Vec<String>,
    pub database: String,
    pub table: String,
    /// Basic auth; none: ClickHouse's `default` user.
    pub user: Option<String>,
    pub password: Option<String>,
    /// Rows per INSERT at most; a larger write is sent as several.
    pub batch: usize,
    /// How long the runner gathers rows before it writes a smaller batch.
    pub flush: Duration,
    /// The limit of one HTTP request (connect, send, answer).
    pub timeout: Duration,
    /// PEM file of the CA certificates trusted for `https://` URLs instead of the system's.
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for ClickHouseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseConfig")
            .field("urls", &self.urls)
            .field("database", &self.database)
            .field("table", &self.table)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("batch", &self.batch)
            .field("flush", &self.flush)
            .field("timeout", &self.timeout)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

impl ClickHouseConfig {
    /// The defaults for these servers: database `petra`, table `samples`, user `default`,
    /// batches of 10 000 rows, flushed after 1 s, 10 s per request, system trust store.
    pub fn new(urls: Vec<String>) -> Self {
        Self {
            urls,
            database: "petra".into(),
            table: "samples".into(),
            user: None,
            password: None,
            batch: 10_000,
            flush: Duration::from_secs(1),
            timeout: Duration::from_secs(10),
            ca_file: None,
        }
    }

    /// The sink configuration of the compiled `history.clickhouse` section.
    pub fn from_settings(settings: &crate::config::ClickHouseSettings) -> Self {
        Self {
            urls: settings.urls.clone(),
            database: settings.database.clone(),
            table: settings.table.clone(),
            user: settings.user.clone(),
            password: settings.password.clone(),
            batch: settings.batch,
            flush: settings.flush,
            ..Self::new(Vec::new())
        }
    }
}

/// `CREATE TABLE IF NOT EXISTS` of the table (see the module docs).
pub fn create_table_sql(database: &str, table: &str) -> String {
    let columns = COLUMNS
        .iter()
        .map(|(name, ty)| format!("{name} {ty}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "CREATE TABLE IF NOT EXISTS {} ({columns}) ENGINE = ReplacingMergeTree \
         PARTITION BY toYYYYMM(ts) ORDER BY (signal, ts, ms, seq)",
        qualified(database, table)
    )
}

/// The query for the rows of `signal` with `from_ms <= ts < to_ms` (Unix milliseconds), oldest
/// first (ties in WAL order), at most `limit`, each once (`FINAL`), as `RowBinary` for
/// [`parse_rows`]. Ask for `limit + 1` to learn whether there are more.
pub fn query_sql(
    database: &str,
    table: &str,
    signal: &str,
    from_ms: i64,
    to_ms: i64,
    limit: usize,
) -> String {
    // Clamped to what the table can hold, so the seconds are valid `DateTime`s; the whole
    // seconds select partitions and granules through the key, the milliseconds are exact.
    let from = from_ms.clamp(0, MAX_TS_MS + 1);
    let to = to_ms.clamp(0, MAX_TS_MS + 1);
    let from_s = from.div_euclid(1000).min(u32::MAX as i64);
    let to_s = (to - 1).max(0).div_euclid(1000).min(u32::MAX as i64);
    format!(
        "SELECT signal, ts, ms, value, text, quality, seq FROM {} FINAL \
         WHERE signal = {} AND ts >= toDateTime({from_s}) AND ts <= toDateTime({to_s}) \
         AND toInt64(ts) * 1000 + ms >= {from} AND toInt64(ts) * 1000 + ms < {to} \
         ORDER BY ts, ms, seq LIMIT {limit} FORMAT RowBinary",
        qualified(database, table),
        string_literal(signal)
    )
}

/// Decodes the `RowBinary` answer of [`query_sql`].
pub fn parse_rows(mut bytes: &[u8]) -> Result<Vec<Row>, RowError> {
    let mut rows = Vec::new();
    while !bytes.is_empty() {
        let r = &mut bytes;
        let signal: Arc<str> = Arc::from(take_string(r, "signal")?);
        let ts = u32::from_le_bytes(take_array(r, "ts")?);
        let ms = u16::from_le_bytes(take_array(r, "ms")?);
        let value = match take_array::<1>(r, "value")? {
            [0] => Some(f64::from_le_bytes(take_array(r, "value")?)),
            _ => None,
        };
        let text = match take_array::<1>(r, "text")? {
            [0] => Some(Arc::from(take_string(r, "text")?)),
            _ => None,
        };
        let quality = match take_string(r, "quality")? {
            "good" => "good",
            "uncertain" => "uncertain",
            "bad" => "bad",
            _ => return Err(RowError::Malformed("quality")),
        };
        let seq = u64::from_le_bytes(take_array(r, "seq")?);
        rows.push(Row {
            signal,
            ts_ms: i64::from(ts) * 1000 + i64::from(ms),
            value,
            text,
            quality,
            seq,
        });
    }
    Ok(rows)
}

/// Appends `rows` as `RowBinary` in the order of [`COLUMNS`]. Refuses a row whose time the
/// table cannot hold.
pub fn encode_rows(rows: &[Row], out: &mut Vec<u8>) -> Result<(), SinkError> {
    for row in rows {
        if !(0..=MAX_TS_MS).contains(&row.ts_ms) {
            return Err(SinkError::Refused(format!(
                "ClickHouse: the row of `{}` at {} ms (WAL position {}) lies outside \
                 1970-01-01..2106-02-07, which a DateTime column cannot hold; the clock that \
                 stamped it is wrong",
                row.signal, row.ts_ms, row.seq
            )));
        }
        put_string(out, &row.signal);
        out.extend_from_slice(&((row.ts_ms / 1000) as u32).to_le_bytes());
        out.extend_from_slice(&((row.ts_ms % 1000) as u16).to_le_bytes());
        match row.value {
            Some(v) => {
                out.push(0);
                out.extend_from_slice(&v.to_le_bytes());
            }
            None => out.push(1),
        }
        match &row.text {
            Some(t) => {
                out.push(0);
                put_string(out, t);
            }
            None => out.push(1),
        }
        put_string(out, row.quality);
        out.extend_from_slice(&row.seq.to_le_bytes());
    }
    Ok(())
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    // RowBinary strings: the length as unsigned LEB128, then the bytes.
    let mut n = s.len() as u64;
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(s.as_bytes());
}

fn take<'a>(r: &mut &'a [u8], n: usize, what: &'static str) -> Result<&'a [u8], RowError> {
    if r.len() < n {
        return Err(RowError::Malformed(what));
    }
    let (a, b) = r.split_at(n);
    *r = b;
    Ok(a)
}

fn take_array<const N: usize>(r: &mut &[u8], what: &'static str) -> Result<[u8; N], RowError> {
    take(r, N, what)?
        .try_into()
        .map_err(|_| RowError::Malformed(what))
}

fn take_string<'a>(r: &mut &'a [u8], what: &'static str) -> Result<&'a str, RowError> {
    let mut len: u64 = 0;
    for shift in (0..64).step_by(7) {
        let [b] = take_array::<1>(r, what)?;
        len |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            let len = usize::try_from(len).map_err(|_| RowError::Malformed(what))?;
            return std::str::from_utf8(take(r, len, what)?).map_err(|_| RowError::Malformed(what));
        }
    }
    Err(RowError::Malformed(what))
}

/// `db`.`table`, each quoted.
fn qualified(database: &str, table: &str) -> String {
    format!("{}.{}", identifier(database), identifier(table))
}

/// A back-quoted identifier.
fn identifier(name: &str) -> String {
    format!("`{}`", name.replace('\\', "\\\\").replace('`', "\\`"))
}

/// A single-quoted string literal.
fn string_literal(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// What one request to one server came to, when not success.
#[derive(Debug)]
enum Failure {
    /// Try later or elsewhere.
    Unavailable(String),
    /// Will fail again the same way.
    Refused(String),
    /// Code 60/81: the table or the database is missing.
    Missing(String),
}

impl Failure {
    fn message(&self) -> &str {
        match self {
            Failure::Unavailable(m) | Failure::Refused(m) | Failure::Missing(m) => m,
        }
    }
}

/// Codes of wrong credentials.
const AUTH_CODES: [u32; 5] = [192, 193, 194, 195, 516];
/// Codes of a user that may not do what the sink does.
const DENIED_CODES: [u32; 3] = [164, 291, 497];
/// Codes of a table that does not fit the rows or the statement.
const SCHEMA_CODES: [u32; 6] = [16, 44, 47, 53, 62, 70];
/// Codes of a missing table or database.
const MISSING_CODES: [u32; 2] = [60, 81];

/// What an HTTP error answer means (see the table in the module docs).
fn classify(status: u16, code: Option<u32>, what: String, cfg: &ClickHouseConfig) -> Failure {
    let user = cfg.user.as_deref().unwrap_or("default");
    match code {
        Some(c) if AUTH_CODES.contains(&c) => Failure::Refused(format!(
            "{what}; ClickHouse refused the credentials of user `{user}`: check `user` and \
             `password` of history.clickhouse"
        )),
        Some(c) if DENIED_CODES.contains(&c) => Failure::Refused(format!(
            "{what}; user `{user}` may not write: it needs INSERT and SELECT on {}.{} (and \
             CREATE for the first start, or create the table as documented)",
            cfg.database, cfg.table
        )),
        Some(c) if MISSING_CODES.contains(&c) => Failure::Missing(what),
        Some(c) if SCHEMA_CODES.contains(&c) => Failure::Refused(format!(
            "{what}; the table {}.{} does not fit Petra's rows (see the schema in the docs)",
            cfg.database, cfg.table
        )),
        _ => match status {
            401 | 403 => Failure::Refused(format!(
                "{what}; ClickHouse refused user `{user}`: check `user` and `password` of \
                 history.clickhouse"
            )),
            400 | 404 | 413 | 501 => Failure::Refused(what),
            _ => Failure::Unavailable(what),
        },
    }
}

/// The code of a ClickHouse error: the `X-ClickHouse-Exception-Code` header (newer servers),
/// else `Code: N` in the text (all).
fn error_code(header: Option<&str>, text: &str) -> Option<u32> {
    if let Some(code) = header.and_then(|h| h.trim().parse().ok()) {
        return Some(code);
    }
    let rest = &text[text.find("Code: ")? + 6..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// An error text cut to a readable size, on one line, without 18.16's C++ noise
/// (`Code: 193, e.displayText() = DB::Exception: Wrong password …, e.what() = DB::Exception`).
fn short(text: &str) -> String {
    let text = text
        .replace("e.displayText() = ", "")
        .replace(", e.what() = DB::Exception", "");
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(MAX_ERROR_TEXT) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line,
    }
}

/// A reqwest error by its causes: the top one says only "error sending request for url (…)",
/// and the messages name the URL already.
fn describe(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!("no answer within {timeout:?} (history.clickhouse timeout)");
    }
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        causes.push(s.to_string());
        source = s.source();
    }
    if causes.is_empty() {
        e.to_string()
    } else {
        causes.join(": ")
    }
}

/// The ClickHouse sink (see the module docs).
pub struct ClickHouseSink {
    cfg: ClickHouseConfig,
    /// Made on first use, so a bad `ca_file` is a refused write, not a panic.
    client: Option<reqwest::blocking::Client>,
    /// The index of the URL that worked last: where the next request starts.
    current: usize,
    /// Per URL: the table was found or made there since the last failure on it.
    ready: Vec<bool>,
}

impl ClickHouseSink {
    /// A sink for `cfg`; it connects on first use.
    pub fn new(cfg: ClickHouseConfig) -> Self {
        let ready = vec![false; cfg.urls.len()];
        Self {
            cfg,
            client: None,
            current: 0,
            ready,
        }
    }

    pub fn config(&self) -> &ClickHouseConfig {
        &self.cfg
    }

    /// The URL requests go to first: the one that worked last.
    pub fn current_url(&self) -> Option<&str> {
        self.cfg.urls.get(self.current).map(String::as_str)
    }

    /// The rows of `signal` with `from_ms <= ts < to_ms`, oldest first (ties in WAL order), at
    /// most `limit`, each once (see [`query_sql`]); with failover like writes. A missing table
    /// is no rows. Blocking.
    pub fn query(
        &mut self,
        signal: &str,
        from_ms: i64,
        to_ms: i64,
        limit: usize,
    ) -> Result<Vec<Row>, SinkError> {
        if from_ms >= to_ms || limit == 0 {
            return Ok(Vec::new());
        }
        let sql = query_sql(
            &self.cfg.database,
            &self.cfg.table,
            signal,
            from_ms,
            to_ms,
            limit,
        );
        let answer =
            self.on_any_url(
                |sink, i| match sink.post(i, true, None, sql.clone().into_bytes()) {
                    Err(Failure::Missing(_)) => Ok(Vec::new()),
                    other => other,
                },
            )?;
        parse_rows(&answer).map_err(|e| {
            SinkError::Unavailable(format!("ClickHouse: the answer to a history query: {e}"))
        })
    }

    /// Runs `op` on the URLs in turn, starting with the current one, until one succeeds; that
    /// one becomes current.
    fn on_any_url<T>(
        &mut self,
        mut op: impl FnMut(&mut Self, usize) -> Result<T, Failure>,
    ) -> Result<T, SinkError> {
        let n = self.cfg.urls.len();
        if n == 0 {
            return Err(SinkError::Refused(
                "ClickHouse: no URL configured (history.clickhouse.urls)".into(),
            ));
        }
        if self.client.is_none() {
            self.client = Some(self.build_client().map_err(SinkError::Refused)?);
        }
        let mut failures = Vec::new();
        for k in 0..n {
            let i = (self.current + k) % n;
            match op(self, i) {
                Ok(v) => {
                    if i != self.current {
                        tracing::warn!(
                            from = %self.cfg.urls[self.current],
                            to = %self.cfg.urls[i],
                            "ClickHouse failover: writing to another server"
                        );
                        self.current = i;
                    }
                    return Ok(v);
                }
                Err(f) => {
                    // Whatever failed, the server may have lost the table too (reinstalled,
                    // restored): look again before the next write there.
                    self.ready[i] = false;
                    failures.push(f);
                }
            }
        }
        let refused = failures.iter().any(|f| matches!(f, Failure::Refused(_)));
        let text = failures
            .iter()
            .map(Failure::message)
            .collect::<Vec<_>>()
            .join("; ");
        Err(if refused {
            SinkError::Refused(text)
        } else {
            SinkError::Unavailable(text)
        })
    }

    /// Inserts one encoded batch at URL `i`, making the table first when needed (and once more
    /// if it vanished).
    fn insert_at(&mut self, i: usize, body: &[u8]) -> Result<(), Failure> {
        if !self.ready[i] {
            self.ensure_table(i)?;
        }
        let insert = format!(
            "INSERT INTO {} ({}) FORMAT RowBinary",
            qualified(&self.cfg.database, &self.cfg.table),
            COLUMNS.map(|(name, _)| name).join(", ")
        );
        match self.post(i, true, Some(&insert), body.to_vec()) {
            Err(Failure::Missing(_)) => {
                self.ensure_table(i)?;
                self.post(i, true, Some(&insert), body.to_vec()).map(drop)
            }
            other => other.map(drop),
        }
    }

    /// Makes the database and the table at URL `i` if the table is missing, and checks that
    /// the table is one the sink can use.
    fn ensure_table(&mut self, i: usize) -> Result<(), Failure> {
        self.ready[i] = false;
        let (db, table) = (self.cfg.database.clone(), self.cfg.table.clone());
        let (db, table) = (db.as_str(), table.as_str());
        let exists = self.text(i, &format!("EXISTS TABLE {}", qualified(db, table)))?;
        if exists.trim() != "1" {
            self.text(
                i,
                &format!("CREATE DATABASE IF NOT EXISTS {}", identifier(db)),
            )?;
            self.text(i, &create_table_sql(db, table))?;
            tracing::info!(url = %self.cfg.urls[i], database = %db, table = %table, "ClickHouse table ready");
        }
        let engine = self.text(
            i,
            &format!(
                "SELECT engine FROM system.tables WHERE database = {} AND name = {}",
                string_literal(db),
                string_literal(table)
            ),
        )?;
        let engine = engine.trim();
        let columns = self.text(
            i,
            &format!(
                "SELECT name, type FROM system.columns WHERE database = {} AND table = {}",
                string_literal(db),
                string_literal(table)
            ),
        )?;
        let have: Vec<(String, String)> = columns
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(n, t)| (unescape_tsv(n), unescape_tsv(t)))
            .collect();
        let mut wrong = Vec::new();
        if !engine.ends_with("ReplacingMergeTree") {
            wrong.push(format!(
                "engine {engine} (a ReplacingMergeTree is needed to drop repeated rows)"
            ));
        }
        for (name, ty) in COLUMNS {
            match have.iter().find(|(n, _)| n == name) {
                None => wrong.push(format!("column {name} missing")),
                Some((_, t)) if t != ty => wrong.push(format!("column {name} is {t}, not {ty}")),
                Some(_) => {}
            }
        }
        if !wrong.is_empty() {
            return Err(Failure::Refused(format!(
                "ClickHouse {}: the table {db}.{table} exists but does not fit Petra's rows: {}; \
                 drop or rename it, or configure another table",
                self.cfg.urls[i],
                wrong.join(", ")
            )));
        }
        self.ready[i] = true;
        Ok(())
    }

    /// Runs a statement at URL `i` (in the body, outside any database: the names in it are
    /// qualified) and returns its text answer.
    fn text(&self, i: usize, sql: &str) -> Result<String, Failure> {
        let answer = self.post(i, false, None, sql.as_bytes().to_vec())?;
        Ok(String::from_utf8_lossy(&answer).into_owned())
    }

    /// One POST to URL `i`: the statement in `?query=` (with data in the body) or in the body;
    /// `?database=` when `in_database` (a server refuses any statement, also `CREATE
    /// DATABASE`, with Code 81 while that database does not exist).
    fn post(
        &self,
        i: usize,
        in_database: bool,
        query: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, Failure> {
        let url = &self.cfg.urls[i];
        let client = self.client.as_ref().expect("made before the first request");
        let mut params = Vec::new();
        if in_database {
            params.push(("database", self.cfg.database.as_str()));
        }
        if let Some(q) = query {
            params.push(("query", q));
        }
        let mut req = client.post(url).query(&params).body(body);
        if let Some(user) = &self.cfg.user {
            req = req.basic_auth(user, self.cfg.password.as_ref());
        }
        let resp = req.send().map_err(|e| {
            Failure::Unavailable(format!(
                "ClickHouse {url}: {}",
                describe(&e, self.cfg.timeout)
            ))
        })?;
        let status = resp.status().as_u16();
        let code_header = resp
            .headers()
            .get("x-clickhouse-exception-code")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = resp.bytes().map_err(|e| {
            Failure::Unavailable(format!(
                "ClickHouse {url}: reading the answer: {}",
                describe(&e, self.cfg.timeout)
            ))
        })?;
        if status == 200 {
            return Ok(bytes.to_vec());
        }
        let text = String::from_utf8_lossy(&bytes);
        let code = error_code(code_header.as_deref(), &text);
        let what = format!("ClickHouse {url} answered HTTP {status}: {}", short(&text));
        Err(classify(status, code, what, &self.cfg))
    }

    fn build_client(&self) -> Result<reqwest::blocking::Client, String> {
        let tls = tls_config(self.cfg.ca_file.as_deref())?;
        reqwest::blocking::Client::builder()
            .tls_backend_preconfigured(tls)
            // ClickHouse is reached directly; an HTTP(S)_PROXY meant for the internet must not
            // carry plant data.
            .no_proxy()
            .timeout(self.cfg.timeout)
            .connect_timeout(self.cfg.timeout)
            .pool_idle_timeout(POOL_IDLE)
            .build()
            .map_err(|e| {
                format!(
                    "ClickHouse: cannot make the HTTP client: {}",
                    describe(&e, self.cfg.timeout)
                )
            })
    }
}

/// rustls (ring) trusting the CA certificates in `ca_file`, or the system's trust store.
fn tls_config(ca_file: Option<&std::path::Path>) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("ClickHouse TLS: {e}"))?;
    let mut config = match ca_file {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| {
                    format!(
                        "ClickHouse TLS: cannot read certificates from ca_file {}: {e}",
                        path.display()
                    )
                })?;
            if certs.is_empty() {
                return Err(format!(
                    "ClickHouse TLS: ca_file {} holds no certificate",
                    path.display()
                ));
            }
            let mut roots = rustls::RootCertStore::empty();
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| format!("ClickHouse TLS: ca_file {}: {e}", path.display()))?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        None => builder
            .with_platform_verifier()
            .map_err(|e| format!("ClickHouse TLS: the system trust store: {e}"))?
            .with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Undoes TabSeparated escaping (`\'`, `\\`, `\t`, `\n`).
fn unescape_tsv(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('0') => out.push('\0'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

impl Sink for ClickHouseSink {
    fn name(&self) -> &str {
        "clickhouse"
    }

    fn write(&mut self, rows: &[Row]) -> Result<(), SinkError> {
        for chunk in rows.chunks(self.cfg.batch.max(1)) {
            let mut body = Vec::with_capacity(chunk.len() * 48);
            encode_rows(chunk, &mut body)?;
            self.on_any_url(|sink, i| sink.insert_at(i, &body))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(signal: &str, ts_ms: i64, value: Option<f64>, text: Option<&str>, seq: u64) -> Row {
        Row {
            signal: signal.into(),
            ts_ms,
            value,
            text: text.map(Arc::from),
            quality: "uncertain",
            seq,
        }
    }

    #[test]
    fn row_binary_round_trips_and_truncation_is_refused() {
        let long = "x".repeat(300);
        let rows = [
            row("tank.level", 1_764_860_400_123, Some(-2.5), None, 7),
            row(&long, 0, None, Some("Grüße"), u64::MAX),
            row("b", MAX_TS_MS, Some(f64::INFINITY), None, 0),
        ];
        let mut buf = Vec::new();
        let mut ends = Vec::new();
        for r in &rows {
            encode_rows(std::slice::from_ref(r), &mut buf).unwrap();
            ends.push(buf.len());
        }
        assert_eq!(parse_rows(&buf).unwrap(), rows);
        // (The 300-byte name has a two-byte length.) A cut between rows is fewer rows, any
        // other cut an error.
        for cut in 1..buf.len() {
            let parsed = parse_rows(&buf[..cut]);
            match ends.iter().position(|&e| e == cut) {
                Some(n) => assert_eq!(parsed.unwrap(), rows[..=n]),
                None => assert!(parsed.is_err(), "cut at {cut}: {parsed:?}"),
            }
        }
    }

    #[test]
    fn rows_a_datetime_cannot_hold_are_refused() {
        for ts in [-1, MAX_TS_MS + 1] {
            let e = encode_rows(&[row("a", ts, Some(1.0), None, 3)], &mut Vec::new());
            assert!(
                matches!(&e, Err(SinkError::Refused(m)) if m.contains("`a`") && m.contains("clock")),
                "{e:?}"
            );
        }
    }

    #[test]
    fn sql_quotes_names_and_clamps_the_range() {
        assert_eq!(qualified("p`b", "t\\x"), "`p\\`b`.`t\\\\x`");
        assert_eq!(string_literal("a'b\\"), "'a\\'b\\\\'");
        let sql = query_sql("petra", "samples", "o'k", 1_500, 3_001, 10);
        assert!(sql.contains("FROM `petra`.`samples` FINAL"), "{sql}");
        assert!(sql.contains("signal = 'o\\'k'"), "{sql}");
        assert!(
            sql.contains("ts >= toDateTime(1) AND ts <= toDateTime(3)"),
            "{sql}"
        );
        assert!(
            sql.contains(">= 1500 AND") && sql.contains("< 3001"),
            "{sql}"
        );
        assert!(sql.ends_with("LIMIT 10 FORMAT RowBinary"), "{sql}");
        let sql = query_sql("p", "s", "a", -5, i64::MAX, 1);
        assert!(
            sql.contains("toDateTime(0) AND ts <= toDateTime(4294967295)"),
            "{sql}"
        );
        let ddl = create_table_sql("petra", "samples");
        assert!(
            ddl.contains("ts DateTime('UTC'), ms UInt16")
                && ddl.ends_with("ORDER BY (signal, ts, ms, seq)"),
            "{ddl}"
        );
    }

    #[test]
    fn errors_are_classified_by_code_then_status() {
        let cfg = ClickHouseConfig {
            user: Some("petra".into()),
            password: Some("hunter2".into()),
            ..ClickHouseConfig::new(vec!["http://x".into()])
        };
        let c =
            |status, text: &str| classify(status, error_code(None, text), text.to_string(), &cfg);
        let wrong = c(
            401,
            "Code: 193, e.displayText() = DB::Exception: Wrong password",
        );
        assert!(
            matches!(&wrong, Failure::Refused(m) if m.contains("`petra`") && !m.contains("hunter2")),
            "{wrong:?}"
        );
        assert!(matches!(
            c(500, "Code: 516. DB::Exception: Authentication failed"),
            Failure::Refused(_)
        ));
        assert!(matches!(
            c(404, "Code: 60, Table x doesn't exist"),
            Failure::Missing(_)
        ));
        assert!(matches!(
            c(500, "Code: 16, No such column"),
            Failure::Refused(_)
        ));
        assert!(matches!(
            c(500, "Code: 241, Memory limit"),
            Failure::Unavailable(_)
        ));
        assert!(matches!(c(503, "overloaded"), Failure::Unavailable(_)));
        assert!(matches!(c(403, "forbidden"), Failure::Refused(_)));
        assert_eq!(error_code(Some("252"), "Code: 1"), Some(252));
        assert_eq!(
            short(&"é ".repeat(1000)).chars().count(),
            MAX_ERROR_TEXT + 1
        );
        assert_eq!(unescape_tsv("DateTime(\\'UTC\\')"), "DateTime('UTC')");
        let debug = format!("{cfg:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
    }
}
