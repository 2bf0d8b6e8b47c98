//! The history at run time: one thread runs the sampler into the WAL, one thread per sink moves
//! rows from the WAL into its target.
//!
//! - **Sampler thread**: drains the bus's lossless change feed (woken by the feed, never
//!   polling faster than it must), turns changes into rows by each signal's rule, appends them to
//!   the WAL, runs periodic records and heartbeats, and makes the WAL durable every `fsync`
//!   interval (group commit). The scan never waits for it: the feed is a bounded queue whose
//!   overflow is counted.
//! - **Sink threads**: read a batch after their WAL cursor, hand it to the sink, and move the
//!   cursor only over rows the sink says are durable. A failing sink is retried with capped
//!   backoff; it re-reads from its cursor, so a ClickHouse outage costs disk, not data. An idle
//!   sink is flushed after a while, so the newest rows become visible in files.
//! - **Stop**: the sampler drains the feed and syncs; each sink catches up with what is durable
//!   (within a deadline) and flushes.

use crate::config::HistoryConfig;
use crate::row::{self, Row};
use crate::sampler::Sampler;
use crate::sink::Sink;
use petra_core::{Bus, LosslessFeed, Timestamp};
use petra_wal::{Batch, Wal, WalOptions};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

/// Why the history could not start.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error(transparent)]
    Wal(#[from] petra_wal::WalError),
    #[error("history sink `{sink}`: {message}")]
    Sink { sink: String, message: String },
    #[error("cannot start a history thread: {0}")]
    Thread(std::io::Error),
}

/// Counters of one sink, for `petra_history_rows_total{sink,result}`.
#[derive(Debug, Default)]
pub struct SinkCounters {
    pub ok: AtomicU64,
    pub failed: AtomicU64,
}

/// What the metrics show.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HistoryMetrics {
    pub wal_bytes: u64,
    /// Per sink: name, rows stored, rows that failed (retried), lag in rows.
    pub sinks: Vec<(String, u64, u64, u64)>,
    /// Changes the sampler never saw because its feed was full.
    pub feed_dropped: u64,
    /// Records the WAL size cap dropped before every sink had them.
    pub wal_dropped: u64,
}

/// How a sink is driven: rows per write, and how long to wait for a fuller batch.
#[derive(Clone, Copy, Debug)]
pub struct Pace {
    pub batch: usize,
    pub max_wait: Duration,
    /// Flush the sink after this long without rows.
    pub idle_flush: Duration,
}

/// The running history.
pub struct History {
    wal: Arc<Wal>,
    /// Stops the sampler; `stop` stops the sinks, once the sampler's last sync is done.
    sampler_stop: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    counters: Vec<(String, Arc<SinkCounters>)>,
    feed_dropped: Arc<AtomicU64>,
}

const FEED_CHUNK: usize = 8192;
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(30);
/// How long a clean stop waits for sinks to store what is durable.
const STOP_DEADLINE: Duration = Duration::from_secs(5);

fn now_ms() -> i64 {
    Timestamp::from_system_time(SystemTime::now())
        .unix_nanos()
        .div_euclid(1_000_000)
}

impl History {
    /// Opens the WAL (recovering it), starts the sampler on `feed` and a thread per sink.
    pub fn start(
        cfg: &HistoryConfig,
        bus: &Bus,
        feed: LosslessFeed,
        sinks: Vec<(Box<dyn Sink>, Pace)>,
    ) -> Result<History, HistoryError> {
        let names: Vec<String> = sinks.iter().map(|(s, _)| s.name().to_string()).collect();
        let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let opts = WalOptions {
            max_size: cfg.wal.max_size,
            segment_size: (cfg.wal.max_size / 16).clamp(1 << 20, 64 << 20),
            skip_corrupt: cfg.wal.skip_corrupt,
        };
        std::fs::create_dir_all(&cfg.wal.dir).map_err(|e| {
            HistoryError::Wal(petra_wal::WalError::Io {
                op: "create",
                path: cfg.wal.dir.clone(),
                source: e,
            })
        })?;
        let (wal, recovery) = Wal::open(&cfg.wal.dir, opts, &name_refs)?;
        if recovery.is_clean() {
            tracing::info!(dir = %cfg.wal.dir.display(), "history WAL opened: {recovery}");
        } else {
            tracing::warn!(dir = %cfg.wal.dir.display(), "history WAL recovered: {recovery}");
        }
        let stop = Arc::new(AtomicBool::new(false));
        let sampler_stop = Arc::new(AtomicBool::new(false));
        let feed_dropped = Arc::new(AtomicU64::new(0));
        let mut threads = Vec::new();
        let mut counters = Vec::new();
        for (sink, pace) in sinks {
            let name = sink.name().to_string();
            let c = Arc::new(SinkCounters::default());
            counters.push((name.clone(), c.clone()));
            let reader = wal.reader(&name)?;
            let stop = stop.clone();
            let t = std::thread::Builder::new()
                .name(format!("history-{name}"))
                .spawn(move || sink_loop(sink, reader, pace, c, stop))
                .map_err(HistoryError::Thread)?;
            threads.push(t);
        }
        let mut sampler = Sampler::new(&cfg.signals, now_ms());
        // Every recorded signal starts with its current value; changes come from the feed.
        let mut first = Vec::new();
        for (id, _, _) in &cfg.signals {
            if let Some(sample) = bus.read(*id)
                && sample.quality != petra_core::Quality::Bad(petra_core::BadReason::NoValue)
            {
                sampler.change(*id, &sample, &mut first);
            }
        }
        let mut buf = Vec::new();
        let mut failing = false;
        append(&wal, &mut first, &mut buf, &mut failing);
        let (w, s, fsync, d) = (
            wal.clone(),
            sampler_stop.clone(),
            cfg.wal.fsync,
            feed_dropped.clone(),
        );
        let t = std::thread::Builder::new()
            .name("history-sampler".into())
            .spawn(move || sampler_loop(sampler, feed, w, fsync, s, d))
            .map_err(HistoryError::Thread)?;
        // The sampler is stopped first (it is the last thread).
        threads.push(t);
        Ok(History {
            wal,
            sampler_stop,
            stop,
            threads,
            counters,
            feed_dropped,
        })
    }

    /// Appends rows that do not come from the bus — the alarm journal — to the WAL, so every
    /// sink stores them like samples. They are durable at the sampler's next sync (within the
    /// `fsync` interval), like the samples appended with them.
    pub fn record(&self, rows: &mut Vec<Row>) {
        let mut buf = Vec::new();
        let mut failing = false;
        append(&self.wal, rows, &mut buf, &mut failing);
    }

    /// Rows of `signal` with `from_ms <= ts < to_ms` that `sink` has not stored yet — still
    /// only in the WAL, e.g. in the Parquet file that is not complete — in WAL order, at most
    /// `limit`. Read with a [`Wal::peek`] beside the sink. Queries add these to what the sink
    /// stored, so a sample is queryable as soon as it is in the WAL (dedupe by `seq`: a file
    /// that completes meanwhile holds some of them too).
    pub fn unstored(
        &self,
        sink: &str,
        signal: &str,
        from_ms: i64,
        to_ms: i64,
        limit: usize,
    ) -> Result<Vec<Row>, HistoryError> {
        let mut reader = self.wal.peek(sink)?;
        let mut batch = Batch::new();
        let mut out = Vec::new();
        while out.len() < limit && reader.read(FEED_CHUNK, &mut batch)? > 0 {
            for (pos, rec) in batch.iter() {
                // The signal name sits at the end of the record: cheap to test before decoding.
                if !rec.ends_with(signal.as_bytes()) {
                    continue;
                }
                if let Ok(r) = row::decode(rec, pos)
                    && &*r.signal == signal
                    && (from_ms..to_ms).contains(&r.ts_ms)
                {
                    out.push(r);
                    if out.len() == limit {
                        break;
                    }
                }
            }
        }
        Ok(out)
    }

    pub fn metrics(&self) -> HistoryMetrics {
        let stats = self.wal.stats();
        HistoryMetrics {
            wal_bytes: stats.bytes,
            sinks: self
                .counters
                .iter()
                .map(|(name, c)| {
                    let lag = stats
                        .sinks
                        .iter()
                        .find(|s| &s.name == name)
                        .map_or(0, |s| s.lag);
                    (
                        name.clone(),
                        c.ok.load(Ordering::Relaxed),
                        c.failed.load(Ordering::Relaxed),
                        lag,
                    )
                })
                .collect(),
            feed_dropped: self.feed_dropped.load(Ordering::Relaxed),
            wal_dropped: stats.dropped_records,
        }
    }

    /// Stops cleanly: everything sampled is synced to the WAL, and sinks store what they can
    /// within a few seconds (the rest stays in the WAL for the next start).
    pub fn stop(mut self) {
        // The sampler first (the last thread; woken, it may be parked until its next sync), and
        // the sinks only after its final sync: stopped earlier, a sink that found nothing new
        // would quit before the rows of the last fsync interval became durable.
        self.sampler_stop.store(true, Ordering::Release);
        if let Some(t) = self.threads.pop() {
            t.thread().unpark();
            let _ = t.join();
        }
        self.stop.store(true, Ordering::Release);
        self.wal.wake_readers();
        for t in self.threads.drain(..) {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

fn sampler_loop(
    mut sampler: Sampler,
    feed: LosslessFeed,
    wal: Arc<Wal>,
    fsync: Duration,
    stop: Arc<AtomicBool>,
    dropped: Arc<AtomicU64>,
) {
    let me = std::thread::current();
    feed.set_waker(Arc::new(move || me.unpark()));
    let mut changes = Vec::with_capacity(FEED_CHUNK);
    let mut rows: Vec<Row> = Vec::with_capacity(FEED_CHUNK);
    let mut buf = Vec::with_capacity(128);
    let mut next_sync = Instant::now() + fsync;
    let mut failing = false;
    loop {
        let stopping = stop.load(Ordering::Acquire);
        while feed.drain(&mut changes, FEED_CHUNK) > 0 {
            for c in changes.drain(..) {
                sampler.change(c.id, &c.sample, &mut rows);
            }
            append(&wal, &mut rows, &mut buf, &mut failing);
        }
        sampler.tick(now_ms(), &mut rows);
        append(&wal, &mut rows, &mut buf, &mut failing);
        let lost = feed.dropped();
        if lost > dropped.swap(lost, Ordering::Relaxed) {
            tracing::warn!(
                total = lost,
                "history feed overflowed: changes were not recorded"
            );
        }
        let now = Instant::now();
        if stopping || now >= next_sync {
            if let Err(e) = wal.sync() {
                tracing::error!(error = %e, "cannot sync the history WAL");
            }
            next_sync = now + fsync;
        }
        if stopping {
            return;
        }
        let due = sampler
            .next_due()
            .map(|d| Duration::from_millis(d.saturating_sub(now_ms()).max(0) as u64));
        let wait = next_sync.saturating_duration_since(Instant::now());
        std::thread::park_timeout(due.map_or(wait, |d| d.min(wait)));
    }
}

fn append(wal: &Wal, rows: &mut Vec<Row>, buf: &mut Vec<u8>, failing: &mut bool) {
    for r in rows.drain(..) {
        buf.clear();
        row::encode(&r, buf);
        match wal.append(buf) {
            Ok(_) => *failing = false,
            Err(e) => {
                if !*failing {
                    tracing::error!(error = %e, "cannot append to the history WAL; samples are lost");
                }
                *failing = true;
            }
        }
    }
}

fn sink_loop(
    mut sink: Box<dyn Sink>,
    mut reader: petra_wal::Reader,
    pace: Pace,
    counters: Arc<SinkCounters>,
    stop: Arc<AtomicBool>,
) {
    let name = sink.name().to_string();
    let mut batch = Batch::new();
    // Rows read and not yet handed to the sink, the position of the last, and since when.
    let mut rows: Vec<Row> = Vec::with_capacity(pace.batch);
    let mut last = 0u64;
    let mut pending_since: Option<Instant> = None;
    let mut retry = RETRY_MIN;
    let mut failing = false;
    let mut last_rows = Instant::now();
    let mut flushed = true;
    let mut stop_deadline: Option<Instant> = None;
    loop {
        if stop.load(Ordering::Acquire) && stop_deadline.is_none() {
            stop_deadline = Some(Instant::now() + STOP_DEADLINE);
        }
        let stopping = stop_deadline.is_some();
        if stop_deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let room = pace.batch.saturating_sub(rows.len()).max(1);
        let n = match reader.read(room, &mut batch) {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(sink = %name, error = %e, "cannot read the history WAL");
                pause(&stop, retry);
                retry = (retry * 2).min(RETRY_MAX);
                continue;
            }
        };
        for (pos, payload) in batch.iter() {
            last = pos;
            match row::decode(payload, pos) {
                Ok(r) => rows.push(r),
                Err(e) => tracing::error!(sink = %name, position = pos, error = %e,
                    "skipping an unreadable history record"),
            }
        }
        if n > 0 && pending_since.is_none() {
            pending_since = Some(Instant::now());
        }
        if rows.is_empty() {
            if n > 0 {
                // Only unreadable records: nothing to store, but they are done.
                let _ = reader.commit(last);
                pending_since = None;
                continue;
            }
            if stopping {
                break;
            }
            if !flushed && last_rows.elapsed() >= pace.idle_flush {
                flushed = finish(&mut *sink, &mut reader, &name);
            }
            reader.wait(Duration::from_millis(200));
            continue;
        }
        // A fuller batch is worth a short wait (ClickHouse prefers few large inserts).
        let waited = pending_since.map_or(Duration::ZERO, |t| t.elapsed());
        if rows.len() < pace.batch && waited < pace.max_wait && !stopping {
            if n == 0 {
                reader.wait((pace.max_wait - waited).min(Duration::from_millis(200)));
            }
            continue;
        }
        match sink.write(&rows) {
            Ok(()) => {
                counters.ok.fetch_add(rows.len() as u64, Ordering::Relaxed);
                if failing {
                    tracing::info!(sink = %name, "history sink is storing again");
                }
                failing = false;
                retry = RETRY_MIN;
                last_rows = Instant::now();
                flushed = false;
                let upto = match sink.first_pending() {
                    Some(p) => p.saturating_sub(1).min(last),
                    None => last,
                };
                if let Err(e) = reader.commit(upto) {
                    tracing::error!(sink = %name, error = %e, "cannot store the history cursor");
                }
            }
            Err(e) => {
                counters
                    .failed
                    .fetch_add(rows.len() as u64, Ordering::Relaxed);
                if !failing {
                    tracing::warn!(sink = %name, error = %e,
                        "history sink failed; rows stay in the WAL and are retried");
                }
                failing = true;
                // The sink dropped whatever was not durable: read again from the cursor.
                reader.rewind();
                if !stopping {
                    pause(&stop, retry);
                    retry = (retry * 2).min(RETRY_MAX);
                }
            }
        }
        rows.clear();
        pending_since = None;
    }
    if !rows.is_empty() {
        // Read but never handed over: they stay in the WAL for the next start.
        reader.rewind();
    }
    finish(&mut *sink, &mut reader, &name);
}

/// Flushes the sink and commits what became durable. Returns whether it worked.
fn finish(sink: &mut dyn Sink, reader: &mut petra_wal::Reader, name: &str) -> bool {
    match sink.flush() {
        Ok(()) => {
            // Everything accepted is durable: the cursor may pass the read position.
            let upto = reader.position().saturating_sub(1);
            if upto > 0
                && let Err(e) = reader.commit(upto)
            {
                tracing::error!(sink = %name, error = %e, "cannot store the history cursor");
            }
            true
        }
        Err(e) => {
            tracing::warn!(sink = %name, error = %e, "history sink flush failed; rows stay in the WAL");
            reader.rewind();
            false
        }
    }
}

/// Waits `d`, or less when stopping.
fn pause(stop: &AtomicBool, d: Duration) {
    let end = Instant::now() + d;
    while !stop.load(Ordering::Acquire) {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::park_timeout(left.min(Duration::from_millis(100)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Rule, WalSettings};
    use crate::sink::SinkError;
    use petra_core::{BusBuilder, OverflowPolicy, Quality, SignalDef, SignalId, Value, ValueType};
    use std::sync::Mutex;

    struct Collect(Arc<Mutex<Vec<Row>>>);

    impl Sink for Collect {
        fn name(&self) -> &str {
            "collect"
        }
        fn write(&mut self, rows: &[Row]) -> Result<(), SinkError> {
            self.0.lock().unwrap().extend_from_slice(rows);
            Ok(())
        }
    }

    #[test]
    fn a_clean_stop_stores_the_last_interval_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let defs = (0..10)
            .map(|i| SignalDef::new(format!("s{i}"), ValueType::Float))
            .collect();
        let mut builder = BusBuilder::new(defs).unwrap();
        let ids: Vec<SignalId> = (0..10).map(SignalId::from_index).collect();
        let feed = builder.lossless_feed(1024, OverflowPolicy::DropNewest, Some(&ids));
        let bus = builder.build(Timestamp::from_unix_nanos(0));
        let rule = Rule::OnChange {
            deadband: 0.0,
            max_interval: None,
        };
        let cfg = HistoryConfig {
            signals: ids
                .iter()
                .map(|id| (*id, format!("s{}", id.index()), rule))
                .collect(),
            wal: WalSettings {
                dir: dir.path().join("wal"),
                max_size: 64 << 20,
                // Far longer than the test: only the stop makes the rows durable.
                fsync: Duration::from_secs(60),
                skip_corrupt: false,
            },
            parquet: None,
            clickhouse: None,
        };
        let rows = Arc::new(Mutex::new(Vec::new()));
        let pace = Pace {
            batch: 1000,
            max_wait: Duration::ZERO,
            idle_flush: Duration::from_secs(30),
        };
        let h = History::start(
            &cfg,
            &bus,
            feed,
            vec![(Box::new(Collect(rows.clone())), pace)],
        )
        .unwrap();
        for k in 1..=10 {
            for id in &ids {
                let ts = Timestamp::from_unix_nanos(k * 1_000_000);
                bus.write(*id, Value::Float(k as f64), Quality::Good, ts)
                    .unwrap();
            }
        }
        // The sampler has taken all 100 changes into the WAL (positions start at 1) and waits
        // for its next sync, a minute away: the stop must wake it.
        petra_test_support::wait_until(
            "the sampler appended every change",
            petra_test_support::DEFAULT_TIMEOUT,
            || h.wal.stats().next_position > 100,
        );
        let t = Instant::now();
        h.stop();
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        assert_eq!(rows.lock().unwrap().len(), 100);
    }
}
