//! Prometheus metrics: what `GET /metrics` serves.
//!
//! [`render`] turns the engine's statistics and the bus's counters into the Prometheus text
//! exposition format, version 0.0.4 ([`CONTENT_TYPE`]), at scrape time. Nothing is counted
//! twice: the numbers live where they are produced (`petra_engine::TaskStats`, `Bus`), and a
//! scrape reads them. Series (spec.md section 7, plus a few that help operate what exists):
//!
//! | name | type | labels | source |
//! |---|---|---|---|
//! | `petra_scan_duration_seconds` | histogram | `task` | scan time HDR histogram |
//! | `petra_scan_jitter_seconds` | histogram | `task` | scan start lateness HDR histogram |
//! | `petra_scan_overruns_total` | counter | `task` | deadlines skipped |
//! | `petra_watchdog_trips_total` | counter | `task` | scans that overran the task's watchdog |
//! | `petra_bus_updates_total` | counter | — | writes to the bus since it was built |
//! | `petra_bus_feed_drops_total` | counter | — | changes lost by full lossless feeds |
//! | `petra_signals` | gauge | — | signals on the bus |
//! | `petra_build_info` | gauge (= 1) | `version` | the crate version |
//! | `petra_driver_connected` | gauge | `driver` | 1 while the device is connected |
//! | `petra_driver_requests_total` | counter | `driver`, `result` | requests by result (ok, exception, timeout, error) |
//! | `petra_driver_connects_total` | counter | `driver` | successful connects |
//! | `petra_driver_write_failures_total` | counter | `driver` | failed writes (each retried) |
//! | `petra_driver_pending_writes` | gauge | `driver` | outputs waiting for the device |
//! | `petra_driver_read_requests` | gauge | `driver` | read requests per full poll, as planned |
//! | `petra_driver_points` | gauge | `driver` | points of the driver |
//! | `petra_wal_bytes` | gauge | — | bytes of the history WAL |
//! | `petra_wal_dropped_records_total` | counter | — | samples the WAL's size cap dropped before every sink had them |
//! | `petra_history_rows_total` | counter | `sink`, `result` | rows stored (`ok`) or failed and retried (`error`) |
//! | `petra_history_lag_rows` | gauge | `sink` | WAL rows the sink has not stored yet |
//! | `petra_alarms_active` | gauge | `priority` | active alarms per priority (all four, 0 without alarms) |
//! | `petra_alarms_rate_10min` | gauge | — | alarm activations in the last 10 minutes |
//! | `petra_alarms_standing` | gauge | — | alarms active longer than the standing threshold |
//! | `petra_alarms_chattering` | gauge | — | alarms that chatter |
//! | `petra_alarms_flood` | gauge | — | 1 during an alarm flood (more than 10 in 10 minutes) |
//! | `petra_notifications_total` | counter | `channel`, `result` | notifications by channel and result |
//!
//! Labels come from bounded sets only: task and driver names (declared in the configuration, a
//! handful), request results (a closed set), alarm priorities and notification channels and
//! results (closed sets), and the build version. No signal name, no alarm name, no free text.
//! Each subsystem's series are a further [`Collector`] of the same [`Registry`].
//!
//! # Why prometheus-client and not a hand-written printer
//!
//! The text format is simple, but the details that make a scrape fail are not our business:
//! label-value escaping (task names are user text), `le` formatting, `_total`/unit suffixes,
//! HELP escaping, and later OpenMetrics if wanted. prometheus-client 0.26 has all of it, has
//! no global registry (we build a [`Registry`] per scrape and serve it from our own route),
//! and its [`Collector`] trait is how the drivers, alarms and history issues will add their
//! live counters (`Family<…, Counter>`) next to the engine's derived ones. Its own
//! `Histogram` type cannot be used for the scan histograms — they are HDR histograms owned by
//! the scan thread — so [`EngineMetrics`] is a custom collector that converts them.
//!
//! # Histograms from HDR histograms
//!
//! The engine records every scan's duration and jitter, in nanoseconds, into HDR histograms
//! (3 significant digits). At scrape time each is folded into the fixed buckets [`BUCKETS`]
//! (10 µs … 1 s, a 1-2.5-5 series, suited to 1 ms–1 s scan periods): a recorded value counts
//! in the first bucket whose bound is at or above the lowest value of its HDR bucket. A value
//! exactly at a bound is therefore counted at that bound, as `le` says; a value up to 0.1 %
//! above a bound may be too (the HDR resolution). `_sum` is the sum of each HDR bucket's
//! median times its count (same resolution); `_count` and the `+Inf` bucket are the number of
//! recorded scans. That equals `TaskStats::scans()` except for the scans of the last moments
//! whose timings the scan thread has not yet folded in (it never waits for a reader, see
//! `TaskStats::with_histograms`), so `_count` may briefly trail `scans()` by a few.
//!
//! The histogram lock is held only while folding into the buckets (the scan thread records into a
//! private histogram meanwhile); formatting happens after it is released.
//!
//! # Resets
//!
//! Task counters and histograms survive a hot reload (the engine carries them over). The bus
//! counters are per bus: a reload that changes the signal set builds a new bus and they start
//! again from zero, which Prometheus reads as an ordinary counter reset.

use crate::http::{AlarmKpis, PRIORITIES};
use hdrhistogram::Histogram;
use petra_core::Bus;
use petra_drivers::{DriverStatus, RequestResult};
use petra_engine::Stats;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::exemplar::Exemplar;
use prometheus_client::registry::{Registry, Unit};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// `Content-Type` of what [`render`] returns (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Upper bounds of the finite buckets of `petra_scan_duration_seconds` and
/// `petra_scan_jitter_seconds`; a `+Inf` bucket follows.
pub const BUCKETS: [Duration; 16] = [
    Duration::from_micros(10),
    Duration::from_micros(25),
    Duration::from_micros(50),
    Duration::from_micros(100),
    Duration::from_micros(250),
    Duration::from_micros(500),
    Duration::from_millis(1),
    Duration::from_micros(2_500),
    Duration::from_millis(5),
    Duration::from_millis(10),
    Duration::from_millis(25),
    Duration::from_millis(50),
    Duration::from_millis(100),
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
];

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Renders the engine's and the bus's metrics in the Prometheus text format 0.0.4
/// (serve with [`CONTENT_TYPE`]). `stats` is what `petra_engine::StatsSource::get` returns
/// now; `bus` the bus the running engine uses.
pub fn render(stats: &Stats, bus: &Bus) -> String {
    render_with_drivers(stats, bus, &[])
}

/// [`render`] plus the drivers' series.
pub fn render_with_drivers(stats: &Stats, bus: &Bus, drivers: &[Arc<DriverStatus>]) -> String {
    render_all(stats, bus, drivers, None, &AlarmMetrics::default())
}

/// [`render`] plus the drivers', the history's and the alarms' series. The alarm series are
/// always there (zeros when the configuration has no alarms).
pub fn render_all(
    stats: &Stats,
    bus: &Bus,
    drivers: &[Arc<DriverStatus>],
    history: Option<HistoryMetrics>,
    alarms: &AlarmMetrics,
) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(EngineMetrics::collect(stats, bus)));
    if !drivers.is_empty() {
        registry.register_collector(Box::new(DriverMetrics::collect(drivers)));
    }
    if let Some(h) = history {
        registry.register_collector(Box::new(h));
    }
    registry.register_collector(Box::new(alarms.clone()));
    encode(&registry)
}

/// The alarms' figures at one instant, from the alarm manager (`AlarmSource::kpis` and
/// `::notifications`). Labels: the four priorities and the notifier's channels and results
/// (closed sets); alarm names (in `kpis.standing`/`chattering`) are only counted.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AlarmMetrics {
    pub kpis: AlarmKpis,
    /// `(channel, result, count)` rows of `petra_notifications_total`.
    pub notifications: Vec<(&'static str, &'static str, u64)>,
}

impl Collector for AlarmMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let e = &mut encoder;
        let mut metric = e.encode_descriptor(
            "petra_alarms_active",
            "Alarms active (active_unacked, active_acked) and shown to operators (not shelved, suppressed or out of service), per priority.",
            None,
            MetricType::Gauge,
        )?;
        for p in PRIORITIES {
            let labels = [("priority", p)];
            metric
                .encode_family(&labels)?
                .encode_gauge(&(self.kpis.active_of(p) as i64))?;
        }
        let gauges = [
            (
                "petra_alarms_rate_10min",
                "Alarm activations shown to operators in the last 10 minutes (ISA-18.2 rate).",
                self.kpis.rate_10min,
            ),
            (
                "petra_alarms_standing",
                "Alarms active for longer than the standing threshold (24 h by default).",
                self.kpis.standing.len() as u64,
            ),
            (
                "petra_alarms_chattering",
                "Alarms that chatter (activated repeatedly within a short window).",
                self.kpis.chattering.len() as u64,
            ),
            (
                "petra_alarms_flood",
                "1 during an alarm flood (more than 10 activations in 10 minutes), else 0.",
                u64::from(self.kpis.flood),
            ),
        ];
        for (name, help, value) in gauges {
            e.encode_descriptor(name, help, None, MetricType::Gauge)?
                .encode_gauge(&(value as i64))?;
        }
        e.encode_descriptor(
            "petra_alarms_dropped_transitions",
            "Alarm transitions the manager's queue could not take (missing from the journal; states were resynchronised).",
            None,
            MetricType::Counter,
        )?
        .encode_counter::<NoLabelSet, _, u64>(&self.kpis.dropped_transitions, None)?;
        let mut metric = e.encode_descriptor(
            "petra_notifications",
            "Alarm notifications by channel (e.g. sms, voice) and result.",
            None,
            MetricType::Counter,
        )?;
        // Rows of the same series are added up: a series twice would fail the whole scrape.
        let mut rows = std::collections::BTreeMap::<(&str, &str), u64>::new();
        for (channel, result, n) in &self.notifications {
            *rows.entry((channel, result)).or_default() += n;
        }
        for ((channel, result), n) in &rows {
            let labels = [("channel", *channel), ("result", *result)];
            metric
                .encode_family(&labels)?
                .encode_counter::<NoLabelSet, _, u64>(n, None)?;
        }
        Ok(())
    }
}

/// The history's counters at one instant (labels: sink names from a closed set).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HistoryMetrics {
    /// Bytes of the WAL's segment files.
    pub wal_bytes: u64,
    /// Records `history.wal.max_size` dropped before every sink had stored them.
    pub wal_dropped: u64,
    pub sinks: Vec<HistorySink>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct HistorySink {
    /// `parquet` or `clickhouse`.
    pub name: String,
    /// Rows stored.
    pub ok: u64,
    /// Rows a write failed for (they stay in the WAL and are retried).
    pub failed: u64,
    /// Rows in the WAL the sink has not stored yet.
    pub lag: u64,
}

impl Collector for HistoryMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let e = &mut encoder;
        e.encode_descriptor(
            "petra_wal_bytes",
            "Bytes of the history WAL on disk.",
            None,
            MetricType::Gauge,
        )?
        .encode_gauge(&(self.wal_bytes as i64))?;
        e.encode_descriptor(
            "petra_wal_dropped_records",
            "Samples the history WAL's size cap dropped before every sink had stored them.",
            None,
            MetricType::Counter,
        )?
        .encode_counter::<NoLabelSet, _, u64>(&self.wal_dropped, None)?;
        let mut metric = e.encode_descriptor(
            "petra_history_rows",
            "History rows handed to a sink, by result: ok (stored), error (failed, retried).",
            None,
            MetricType::Counter,
        )?;
        for s in &self.sinks {
            for (result, n) in [("ok", s.ok), ("error", s.failed)] {
                let labels = [("sink", s.name.as_str()), ("result", result)];
                metric
                    .encode_family(&labels)?
                    .encode_counter::<NoLabelSet, _, u64>(&n, None)?;
            }
        }
        let mut metric = e.encode_descriptor(
            "petra_history_lag_rows",
            "Rows in the WAL a sink has not stored yet.",
            None,
            MetricType::Gauge,
        )?;
        for s in &self.sinks {
            let labels = [("sink", s.name.as_str())];
            metric
                .encode_family(&labels)?
                .encode_gauge(&(s.lag as i64))?;
        }
        Ok(())
    }
}

/// The drivers' counters at one instant (labels: the driver's name from the configuration, and
/// the request result from a closed set).
#[derive(Clone, Debug)]
pub struct DriverMetrics(Vec<DriverRow>);

#[derive(Clone, Debug)]
struct DriverRow {
    name: String,
    connected: bool,
    requests: [(RequestResult, u64); 4],
    connects: u64,
    write_failures: u64,
    pending_writes: u64,
    read_requests: u64,
    points: u64,
}

impl DriverMetrics {
    pub fn collect(drivers: &[Arc<DriverStatus>]) -> DriverMetrics {
        DriverMetrics(
            drivers
                .iter()
                .map(|d| DriverRow {
                    name: d.name().to_string(),
                    connected: d.is_connected(),
                    requests: RequestResult::ALL.map(|r| (r, d.requests(r))),
                    connects: d.connects(),
                    write_failures: d.write_failures(),
                    pending_writes: d.pending_writes(),
                    read_requests: d.planned_requests(),
                    points: d.points(),
                })
                .collect(),
        )
    }

    fn encode_per_driver(
        &self,
        e: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        ty: MetricType,
        pick: impl Fn(&DriverRow) -> u64,
    ) -> Result<(), std::fmt::Error> {
        let mut metric = e.encode_descriptor(name, help, None, ty)?;
        for d in &self.0 {
            let labels = [("driver", d.name.as_str())];
            let mut family = metric.encode_family(&labels)?;
            match ty {
                MetricType::Counter => {
                    family.encode_counter::<NoLabelSet, _, u64>(&pick(d), None)?
                }
                _ => family.encode_gauge(&(pick(d) as i64))?,
            }
        }
        Ok(())
    }
}

impl Collector for DriverMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let e = &mut encoder;
        self.encode_per_driver(
            e,
            "petra_driver_connected",
            "1 while the driver's device is connected.",
            MetricType::Gauge,
            |d| u64::from(d.connected),
        )?;
        let mut metric = e.encode_descriptor(
            "petra_driver_requests",
            "Requests to the device by result: ok, exception (the device refused), timeout, \
             error (transport or malformed answer).",
            None,
            MetricType::Counter,
        )?;
        for d in &self.0 {
            for (result, n) in d.requests {
                let labels = [("driver", d.name.as_str()), ("result", result.name())];
                metric
                    .encode_family(&labels)?
                    .encode_counter::<NoLabelSet, _, u64>(&n, None)?;
            }
        }
        self.encode_per_driver(
            e,
            "petra_driver_connects",
            "Successful connects (a reconnect counts again).",
            MetricType::Counter,
            |d| d.connects,
        )?;
        self.encode_per_driver(
            e,
            "petra_driver_write_failures",
            "Writes to the device that failed (each is retried).",
            MetricType::Counter,
            |d| d.write_failures,
        )?;
        self.encode_per_driver(
            e,
            "petra_driver_pending_writes",
            "Output values waiting to be written to the device.",
            MetricType::Gauge,
            |d| d.pending_writes,
        )?;
        self.encode_per_driver(
            e,
            "petra_driver_read_requests",
            "Read requests one poll of every point takes, as planned.",
            MetricType::Gauge,
            |d| d.read_requests,
        )?;
        self.encode_per_driver(
            e,
            "petra_driver_points",
            "Points the driver serves.",
            MetricType::Gauge,
            |d| d.points,
        )
    }
}

/// Encodes a registry in the Prometheus text format 0.0.4 — for a server that adds collectors
/// of its own next to [`EngineMetrics`].
pub fn encode(registry: &Registry) -> String {
    let mut out = String::with_capacity(4096);
    // Writing into a String cannot fail, and our collectors only fail when the writer does.
    prometheus_client::encoding::prometheus_text::encode(&mut out, registry)
        .expect("encoding metrics into a String cannot fail");
    out
}

/// The engine's and the bus's metrics at one instant: a [`Collector`] for a [`Registry`].
///
/// Taking it reads every counter and copies the histogram buckets; encoding it later touches
/// neither the engine nor the bus again.
#[derive(Clone, Debug)]
pub struct EngineMetrics {
    tasks: Vec<TaskMetrics>,
    bus_updates: u64,
    bus_feed_drops: u64,
    signals: u64,
}

#[derive(Clone, Debug)]
struct TaskMetrics {
    task: String,
    scan: Buckets,
    jitter: Buckets,
    overruns: u64,
    watchdog_trips: u64,
}

/// A histogram folded into [`BUCKETS`].
#[derive(Clone, Debug, PartialEq)]
struct Buckets {
    /// Values in each finite bucket alone (not cumulative); the encoder accumulates.
    per_bucket: [u64; BUCKETS.len()],
    count: u64,
    sum_seconds: f64,
}

impl Buckets {
    fn from_hdr(h: &Histogram<u64>) -> Buckets {
        let mut per_bucket = [0u64; BUCKETS.len()];
        let mut sum_ns: u128 = 0;
        let mut count = 0u64;
        for v in h.iter_recorded() {
            let n = v.count_at_value();
            let top = v.value_iterated_to();
            let low = h.lowest_equivalent(top);
            count += n;
            sum_ns += u128::from(h.median_equivalent(top)) * u128::from(n);
            let i = BUCKETS.partition_point(|b| (b.as_nanos() as u64) < low);
            if let Some(slot) = per_bucket.get_mut(i) {
                *slot += n;
            }
        }
        Buckets {
            per_bucket,
            count,
            sum_seconds: sum_ns as f64 / 1e9,
        }
    }

    /// Cumulative counts per finite bound, as the exposition shows them.
    #[cfg(test)]
    fn cumulative(&self) -> Vec<u64> {
        self.per_bucket
            .iter()
            .scan(0, |acc, n| {
                *acc += n;
                Some(*acc)
            })
            .collect()
    }
}

impl EngineMetrics {
    /// Reads the metrics now.
    pub fn collect(stats: &Stats, bus: &Bus) -> EngineMetrics {
        let tasks = stats
            .tasks
            .iter()
            .map(|t| {
                let (scan, jitter) = t.with_histograms(|h| {
                    (Buckets::from_hdr(&h.scan), Buckets::from_hdr(&h.jitter))
                });
                TaskMetrics {
                    task: t.name.clone(),
                    scan,
                    jitter,
                    overruns: t.overruns(),
                    watchdog_trips: t.watchdog_trips(),
                }
            })
            .collect();
        EngineMetrics {
            tasks,
            bus_updates: bus.updates_total(),
            bus_feed_drops: bus.feed_drops_total(),
            signals: bus.len() as u64,
        }
    }
}

/// No exemplars anywhere: the encoder's exemplar type still has to be named.
const NO_EXEMPLARS: Option<&HashMap<usize, Exemplar<NoLabelSet, f64>>> = None;

fn encode_histogram(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    tasks: &[TaskMetrics],
    pick: impl Fn(&TaskMetrics) -> &Buckets,
) -> Result<(), std::fmt::Error> {
    let mut metric =
        encoder.encode_descriptor(name, help, Some(&Unit::Seconds), MetricType::Histogram)?;
    let bounds: Vec<f64> = BUCKETS.iter().map(Duration::as_secs_f64).collect();
    for t in tasks {
        let b = pick(t);
        let buckets: Vec<(f64, u64)> = bounds.iter().copied().zip(b.per_bucket).collect();
        let labels = [("task", t.task.as_str())];
        metric.encode_family(&labels)?.encode_histogram(
            b.sum_seconds,
            b.count,
            &buckets,
            NO_EXEMPLARS,
        )?;
    }
    Ok(())
}

fn encode_task_counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    tasks: &[TaskMetrics],
    pick: impl Fn(&TaskMetrics) -> u64,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for t in tasks {
        let labels = [("task", t.task.as_str())];
        metric
            .encode_family(&labels)?
            .encode_counter::<NoLabelSet, _, u64>(&pick(t), None)?;
    }
    Ok(())
}

fn encode_counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    encoder
        .encode_descriptor(name, help, None, MetricType::Counter)?
        .encode_counter::<NoLabelSet, _, u64>(&value, None)
}

fn encode_info(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    labels: &impl EncodeLabelSet,
) -> Result<(), std::fmt::Error> {
    encoder
        .encode_descriptor(name, help, None, MetricType::Info)?
        .encode_info(labels)
}

impl Collector for EngineMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let e = &mut encoder;
        // Names are given without the suffix the encoder appends: `_seconds` from the unit,
        // `_total` for counters, `_info` for info metrics.
        encode_histogram(
            e,
            "petra_scan_duration",
            "Time from the start to the end of a task's scan (inputs, blocks, outputs).",
            &self.tasks,
            |t| &t.scan,
        )?;
        encode_histogram(
            e,
            "petra_scan_jitter",
            "Lateness of a scan's start against its scheduled start.",
            &self.tasks,
            |t| &t.jitter,
        )?;
        encode_task_counter(
            e,
            "petra_scan_overruns",
            "Scan deadlines skipped because the task was still running or started late.",
            &self.tasks,
            |t| t.overruns,
        )?;
        encode_task_counter(
            e,
            "petra_watchdog_trips",
            "Scans that ran past the task's watchdog time; outputs went to their safe values.",
            &self.tasks,
            |t| t.watchdog_trips,
        )?;
        encode_counter(
            e,
            "petra_bus_updates",
            "Writes to the signal bus since it was built (a reload that changes the signals restarts it).",
            self.bus_updates,
        )?;
        encode_counter(
            e,
            "petra_bus_feed_drops",
            "Signal changes lost because a lossless feed (e.g. history) was full.",
            self.bus_feed_drops,
        )?;
        e.encode_descriptor(
            "petra_signals",
            "Signals on the bus.",
            None,
            MetricType::Gauge,
        )?
        .encode_gauge(&self.signals)?;
        encode_info(
            e,
            "petra_build",
            "Petra's version; the value is always 1.",
            &[("version", VERSION)],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use petra_core::{
        BusBuilder, Clock, MonoTime, OverflowPolicy, SignalDef, Timestamp, Value, ValueType,
        VirtualClock,
    };
    use petra_engine::{Block, BlockInstance, Engine, Io, Program, TaskSpec};
    use serde_json::Value as Json;
    use std::io::Write;
    use std::process::{Command, Stdio};
    use std::sync::Arc;

    /// A block that takes a scripted time per scan by moving the virtual clock, and counts.
    struct Busy {
        clock: Arc<VirtualClock>,
        script: Vec<Duration>,
        n: usize,
    }

    impl Block for Busy {
        fn execute(&mut self, io: &mut Io<'_>) {
            self.clock.advance(self.script[self.n % self.script.len()]);
            self.n += 1;
            io.set_float(0, self.n as f64);
        }
    }

    fn busy(
        clock: &Arc<VirtualClock>,
        out: petra_core::SignalId,
        script: &[Duration],
    ) -> BlockInstance {
        BlockInstance {
            name: "busy".into(),
            type_name: "BUSY",
            block: Box::new(Busy {
                clock: clock.clone(),
                script: script.to_vec(),
                n: 0,
            }),
            inputs: vec![],
            outputs: vec![Some(out)],
        }
    }

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Scan times of the task `fast`, one per scan, repeating. 1 ms sits exactly on a bound;
    /// 15 ms makes the next start late (jitter); 40 ms overruns three deadlines and its 25 ms
    /// watchdog.
    fn fast_script() -> Vec<Duration> {
        vec![us(20), us(300), ms(1), ms(15), ms(40)]
    }

    struct Run {
        engine: Engine,
        bus: Arc<Bus>,
        _feed: petra_core::LosslessFeed,
    }

    /// Two tasks on a virtual clock, run for one second of virtual time.
    fn run(task_names: [&str; 2]) -> Run {
        let clock = Arc::new(VirtualClock::new(Timestamp::from_unix_nanos(1_000_000_000)));
        let mut builder = BusBuilder::new(vec![
            SignalDef::new("fast.count", ValueType::Float).with_initial(0.0),
            SignalDef::new("slow.count", ValueType::Float).with_initial(0.0),
            SignalDef::new("spare", ValueType::Bool),
        ])
        .unwrap();
        // Never drained, so it overflows and the drops show up.
        let feed = builder.lossless_feed(4, OverflowPolicy::DropNewest, None);
        let bus = builder.build(clock.wall());
        let fast_out = bus.id("fast.count").unwrap();
        let slow_out = bus.id("slow.count").unwrap();
        let program = Program {
            tasks: vec![
                TaskSpec {
                    name: task_names[0].into(),
                    period: ms(10),
                    priority: 10,
                    watchdog: Some(ms(25)),
                    blocks: vec![busy(&clock, fast_out, &fast_script())],
                },
                TaskSpec {
                    name: task_names[1].into(),
                    period: ms(100),
                    priority: 1,
                    watchdog: None,
                    blocks: vec![busy(&clock, slow_out, &[ms(2)])],
                },
            ],
            safe_values: vec![(fast_out, Value::Float(-1.0))],
        };
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        let mut engine = Engine::new(program, bus.clone(), dyn_clock).unwrap();
        engine.run_until(MonoTime::from_nanos(1_000_000_000));
        Run {
            engine,
            bus,
            _feed: feed,
        }
    }

    /// Expected cumulative counts per bound for `n` scans of a repeating script.
    fn expected_cumulative(script: &[Duration], n: u64) -> Vec<u64> {
        BUCKETS
            .iter()
            .map(|b| {
                (0..n as usize)
                    .filter(|i| script[i % script.len()] <= *b)
                    .count() as u64
            })
            .collect()
    }

    fn expected_sum(script: &[Duration], n: u64) -> f64 {
        (0..n as usize)
            .map(|i| script[i % script.len()].as_secs_f64())
            .sum()
    }

    #[test]
    fn metrics_histograms_are_the_engine_histograms_in_fixed_buckets() {
        let r = run(["fast", "slow"]);
        let stats = r.engine.stats();
        let m = EngineMetrics::collect(&stats, &r.bus);
        let fast = &m.tasks[0];
        let n = stats.tasks[0].scans();
        assert!(n > 20, "{n} scans");
        assert_eq!(fast.scan.count, n);
        assert_eq!(fast.jitter.count, n);
        assert_eq!(
            fast.scan.cumulative(),
            expected_cumulative(&fast_script(), n)
        );
        let sum = expected_sum(&fast_script(), n);
        assert!(
            (fast.scan.sum_seconds - sum).abs() <= sum * 1e-3,
            "{} vs {sum}",
            fast.scan.sum_seconds
        );
        // Exactly 1 ms counts at le=0.001, not above.
        let at_1ms = BUCKETS.iter().position(|b| *b == ms(1)).unwrap();
        let c = fast.scan.cumulative();
        assert!(c[at_1ms] > c[at_1ms - 1]);
        // The 15 ms scans make later starts late: some jitter above the first bound.
        assert!(fast.jitter.cumulative()[0] < n, "{:?}", fast.jitter);
        let slow = &m.tasks[1];
        let ns = stats.tasks[1].scans();
        assert_eq!(slow.scan.count, ns);
        assert_eq!(slow.scan.cumulative(), expected_cumulative(&[ms(2)], ns));
        assert!(fast.overruns > 0 && fast.watchdog_trips > 0);
        assert_eq!(fast.overruns, stats.tasks[0].overruns());
        assert_eq!(fast.watchdog_trips, stats.tasks[0].watchdog_trips());
        assert_eq!(slow.overruns, stats.tasks[1].overruns());
    }

    #[test]
    fn metrics_hdr_folding_respects_bounds() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3).unwrap();
        for v in [
            1,
            9_999,
            10_000,
            10_001,
            10_050,
            999_999,
            1_000_000,
            2_000_000_000,
        ] {
            h.record(v).unwrap();
        }
        let b = Buckets::from_hdr(&h);
        assert_eq!(b.count, 8);
        let c = b.cumulative();
        // 10 001 ns shares its HDR bucket (8 ns wide there) with 10 000 ns: the documented
        // resolution. 10 050 ns does not.
        assert_eq!(c[0], 4, "1, 9999, 10000 and 10001 ns count at le=10µs");
        let at_1ms = BUCKETS.iter().position(|b| *b == ms(1)).unwrap();
        assert_eq!(c[at_1ms - 1], 5);
        assert_eq!(c[at_1ms], 7, "exactly 1 ms counts at le=1ms");
        assert_eq!(*c.last().unwrap(), 7, "2 s is only in +Inf");
        let sum = 1 + 9_999 + 10_000 + 10_001 + 10_050 + 999_999 + 1_000_000 + 2_000_000_000u64;
        assert!((b.sum_seconds - sum as f64 / 1e9).abs() < 1e-3 * b.sum_seconds);
        assert_eq!(
            Buckets::from_hdr(&Histogram::<u64>::new(3).unwrap()).count,
            0
        );
    }

    /// Validates `text` with the reference parser (Python `prometheus_client`) and returns
    /// what it parsed: `{family: {"type", "help", "samples": [[name, labels, value]]}}`.
    /// The script also checks what the parser does not: known types, HELP present, no family
    /// twice, and per histogram series: `le` ascending and ending in `+Inf`, counts
    /// non-decreasing, `+Inf` = `_count`, `_sum` present.
    fn parse_with_prometheus_client(text: &str) -> serde_json::Map<String, Json> {
        const SCRIPT: &str = r#"
import json, math, sys
try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError as e:
    sys.stderr.write("missing Python module prometheus_client: %s\n" % e)
    sys.exit(3)

def fail(msg):
    sys.stderr.write(msg + "\n")
    sys.exit(1)

out = {}
for fam in text_string_to_metric_families(sys.stdin.read()):
    if fam.name in out:
        fail("family %s appears twice" % fam.name)
    if fam.type not in ("counter", "gauge", "histogram"):
        fail("family %s has type %s" % (fam.name, fam.type))
    if not fam.documentation:
        fail("family %s has no HELP" % fam.name)
    if fam.type == "histogram":
        series = {}
        for s in fam.samples:
            key = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
            g = series.setdefault(key, {"le": [], "counts": [], "sum": None, "count": None})
            if s.name == fam.name + "_bucket":
                g["le"].append(float(s.labels["le"]))
                g["counts"].append(s.value)
            elif s.name == fam.name + "_sum":
                g["sum"] = s.value
            elif s.name == fam.name + "_count":
                g["count"] = s.value
            else:
                fail("unexpected sample %s in histogram %s" % (s.name, fam.name))
        for key, g in series.items():
            if g["le"] != sorted(g["le"]) or not g["le"] or g["le"][-1] != math.inf:
                fail("%s %s: le not ascending to +Inf: %s" % (fam.name, key, g["le"]))
            if any(b < a for a, b in zip(g["counts"], g["counts"][1:])):
                fail("%s %s: buckets not cumulative: %s" % (fam.name, key, g["counts"]))
            if g["count"] is None or g["counts"][-1] != g["count"]:
                fail("%s %s: +Inf bucket %s != _count %s" % (fam.name, key, g["counts"][-1], g["count"]))
            if g["sum"] is None or g["sum"] < 0:
                fail("%s %s: bad _sum %s" % (fam.name, key, g["sum"]))
    out[fam.name] = {
        "type": fam.type,
        "help": fam.documentation,
        "samples": [[s.name, s.labels, s.value] for s in fam.samples],
    }
json.dump(out, sys.stdout)
"#;
        const HINT: &str = "this test validates the exposition with the reference parser: \
                            install Python 3 and run `pip install prometheus-client`";
        let mut child = match Command::new("python3")
            .args(["-c", SCRIPT])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => panic!("cannot run python3 ({e}); {HINT}"),
        };
        // The script reads all of stdin before it writes anything, so this cannot deadlock.
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        match out.status.code() {
            Some(0) => {}
            Some(3) => panic!("{stderr}{HINT}"),
            _ => panic!("the exposition does not parse:\n{stderr}\n--- exposition ---\n{text}"),
        }
        match serde_json::from_slice(&out.stdout).unwrap() {
            Json::Object(m) => m,
            other => panic!("unexpected parser output {other}"),
        }
    }

    /// The value of the sample `name` whose labels include `labels`.
    fn sample(
        families: &serde_json::Map<String, Json>,
        family: &str,
        name: &str,
        labels: &[(&str, &str)],
    ) -> f64 {
        let samples = families[family]["samples"].as_array().unwrap();
        let found: Vec<f64> = samples
            .iter()
            .filter(|s| s[0] == name && labels.iter().all(|(k, v)| s[1][*k] == *v))
            .map(|s| s[2].as_f64().unwrap())
            .collect();
        assert_eq!(found.len(), 1, "{name} {labels:?} in {samples:?}");
        found[0]
    }

    #[test]
    fn driver_metrics_parse_and_carry_the_status() {
        use petra_drivers::{DriverStatus, RequestResult};
        let r = run(["fast", "slow"]);
        let plc = Arc::new(DriverStatus::new("plc \"1\"", "modbus", 12));
        plc.set_connected(true);
        plc.count(RequestResult::Ok);
        plc.count(RequestResult::Ok);
        plc.count(RequestResult::Timeout);
        plc.count_write_failure();
        plc.set_pending_writes(3);
        plc.set_planned_requests(4);
        let idle = Arc::new(DriverStatus::new("idle", "modbus", 0));
        let text = render_with_drivers(&r.engine.stats(), &r.bus, &[plc, idle]);
        let f = parse_with_prometheus_client(&text);
        assert_eq!(f["petra_driver_requests"]["type"], "counter");
        assert_eq!(f["petra_driver_connected"]["type"], "gauge");
        let name = "plc \"1\"";
        let v = |fam: &str, series: &str, labels: &[(&str, &str)]| sample(&f, fam, series, labels);
        assert_eq!(
            v(
                "petra_driver_connected",
                "petra_driver_connected",
                &[("driver", name)]
            ),
            1.0
        );
        assert_eq!(
            v(
                "petra_driver_connected",
                "petra_driver_connected",
                &[("driver", "idle")]
            ),
            0.0
        );
        let req = |result| {
            v(
                "petra_driver_requests",
                "petra_driver_requests_total",
                &[("driver", name), ("result", result)],
            )
        };
        assert_eq!(
            (req("ok"), req("timeout"), req("exception"), req("error")),
            (2.0, 1.0, 0.0, 0.0)
        );
        assert_eq!(
            v(
                "petra_driver_connects",
                "petra_driver_connects_total",
                &[("driver", name)]
            ),
            1.0
        );
        assert_eq!(
            v(
                "petra_driver_write_failures",
                "petra_driver_write_failures_total",
                &[("driver", name)]
            ),
            1.0
        );
        assert_eq!(
            v(
                "petra_driver_pending_writes",
                "petra_driver_pending_writes",
                &[("driver", name)]
            ),
            3.0
        );
        assert_eq!(
            v(
                "petra_driver_read_requests",
                "petra_driver_read_requests",
                &[("driver", name)]
            ),
            4.0
        );
        assert_eq!(
            v(
                "petra_driver_points",
                "petra_driver_points",
                &[("driver", name)]
            ),
            12.0
        );
    }

    #[test]
    fn metrics_render_parses_with_the_reference_parser_and_carries_the_values() {
        let r = run(["fast", "slow"]);
        let stats = r.engine.stats();
        let text = render(&stats, &r.bus);
        let f = parse_with_prometheus_client(&text);

        let mut names: Vec<&str> = f.keys().map(String::as_str).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "petra_alarms_active",
                "petra_alarms_chattering",
                "petra_alarms_dropped_transitions",
                "petra_alarms_flood",
                "petra_alarms_rate_10min",
                "petra_alarms_standing",
                "petra_build_info",
                "petra_bus_feed_drops",
                "petra_bus_updates",
                "petra_notifications",
                "petra_scan_duration_seconds",
                "petra_scan_jitter_seconds",
                "petra_scan_overruns",
                "petra_signals",
                "petra_watchdog_trips",
            ]
        );
        // Without alarms: the four priorities at 0, no notification rows.
        for p in PRIORITIES {
            let n = sample(
                &f,
                "petra_alarms_active",
                "petra_alarms_active",
                &[("priority", p)],
            );
            assert_eq!(n, 0.0, "{p}");
        }
        assert_eq!(f["petra_notifications"]["samples"], serde_json::json!([]));
        assert_eq!(f["petra_scan_duration_seconds"]["type"], "histogram");
        assert_eq!(f["petra_scan_jitter_seconds"]["type"], "histogram");
        assert_eq!(f["petra_scan_overruns"]["type"], "counter");
        assert_eq!(f["petra_signals"]["type"], "gauge");

        for (k, task) in ["fast", "slow"].iter().enumerate() {
            let t = &stats.tasks[k];
            let l = [("task", *task)];
            for fam in ["petra_scan_duration_seconds", "petra_scan_jitter_seconds"] {
                let count = sample(&f, fam, &format!("{fam}_count"), &l);
                assert_eq!(count, t.scans() as f64, "{fam} {task}");
                let inf = sample(
                    &f,
                    fam,
                    &format!("{fam}_bucket"),
                    &[("task", task), ("le", "+Inf")],
                );
                assert_eq!(inf, count);
            }
            let o = sample(&f, "petra_scan_overruns", "petra_scan_overruns_total", &l);
            assert_eq!(o, t.overruns() as f64);
            let w = sample(&f, "petra_watchdog_trips", "petra_watchdog_trips_total", &l);
            assert_eq!(w, t.watchdog_trips() as f64);
        }
        // Buckets as the text shows them, against the script (`le` as the parser gives it).
        let n = stats.tasks[0].scans();
        let want = expected_cumulative(&fast_script(), n);
        let buckets: Vec<(f64, f64)> = f["petra_scan_duration_seconds"]["samples"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s[0] == "petra_scan_duration_seconds_bucket" && s[1]["task"] == "fast")
            .map(|s| {
                (
                    s[1]["le"].as_str().unwrap().parse().unwrap(),
                    s[2].as_f64().unwrap(),
                )
            })
            .collect();
        assert_eq!(buckets.len(), BUCKETS.len() + 1);
        for ((le, got), (bound, want)) in buckets.iter().zip(BUCKETS.iter().zip(&want)) {
            assert_eq!(*le, bound.as_secs_f64());
            assert_eq!(*got, *want as f64, "le={le}");
        }
        let sum = sample(
            &f,
            "petra_scan_duration_seconds",
            "petra_scan_duration_seconds_sum",
            &[("task", "fast")],
        );
        assert!((sum - expected_sum(&fast_script(), n)).abs() < 1e-3 * sum);

        let updates = sample(&f, "petra_bus_updates", "petra_bus_updates_total", &[]);
        assert_eq!(updates, r.bus.updates_total() as f64);
        assert!(updates > 0.0);
        let drops = sample(
            &f,
            "petra_bus_feed_drops",
            "petra_bus_feed_drops_total",
            &[],
        );
        assert_eq!(drops, r.bus.feed_drops_total() as f64);
        assert!(drops > 0.0);
        assert_eq!(sample(&f, "petra_signals", "petra_signals", &[]), 3.0);
        let version = env!("CARGO_PKG_VERSION");
        assert_eq!(
            sample(
                &f,
                "petra_build_info",
                "petra_build_info",
                &[("version", version)]
            ),
            1.0
        );

        // Labels from bounded sets only: `task`, `le`, `version`, `priority` — never a signal
        // name.
        for fam in f.values() {
            for s in fam["samples"].as_array().unwrap() {
                for (k, v) in s[1].as_object().unwrap() {
                    let known = ["task", "le", "version", "priority"];
                    assert!(known.contains(&k.as_str()), "label {k}");
                    let v = v.as_str().unwrap();
                    assert!(r.bus.id(v).is_none(), "signal name {v} as a label in {s}");
                }
            }
        }
    }

    #[test]
    fn alarm_metrics_parse_and_carry_the_kpis_without_alarm_names() {
        let r = run(["fast", "slow"]);
        let alarms = AlarmMetrics {
            kpis: AlarmKpis {
                rate_10min: 12,
                flood: true,
                standing: vec!["tank_high".into(), "pump_fault".into()],
                chattering: vec!["door_open".into()],
                // `medium` missing: shown as 0; a name outside the closed set is not shown.
                active: vec![
                    ("critical".into(), 1),
                    ("high".into(), 3),
                    ("low".into(), 2),
                    ("tank_high".into(), 7),
                ],
                dropped_transitions: 4,
            },
            notifications: vec![
                ("sms", "ok", 4),
                ("sms", "error", 1),
                ("voice", "ok", 2),
                ("sms", "ok", 1),
            ],
        };
        let text = render_all(&r.engine.stats(), &r.bus, &[], None, &alarms);
        assert!(
            !text.contains("tank_high") && !text.contains("door_open"),
            "{text}"
        );
        let f = parse_with_prometheus_client(&text);
        let active = |p| {
            sample(
                &f,
                "petra_alarms_active",
                "petra_alarms_active",
                &[("priority", p)],
            )
        };
        assert_eq!(
            PRIORITIES.map(active),
            [2.0, 0.0, 3.0, 1.0],
            "low, medium, high, critical"
        );
        assert_eq!(
            f["petra_alarms_active"]["samples"]
                .as_array()
                .unwrap()
                .len(),
            4
        );
        for (fam, want) in [
            ("petra_alarms_rate_10min", 12.0),
            ("petra_alarms_standing", 2.0),
            ("petra_alarms_chattering", 1.0),
            ("petra_alarms_flood", 1.0),
        ] {
            assert_eq!(f[fam]["type"], "gauge", "{fam}");
            assert_eq!(sample(&f, fam, fam, &[]), want, "{fam}");
        }
        assert_eq!(
            sample(
                &f,
                "petra_alarms_dropped_transitions",
                "petra_alarms_dropped_transitions_total",
                &[]
            ),
            4.0
        );
        assert_eq!(f["petra_notifications"]["type"], "counter");
        let sent = |channel, result| {
            sample(
                &f,
                "petra_notifications",
                "petra_notifications_total",
                &[("channel", channel), ("result", result)],
            )
        };
        assert_eq!(
            (sent("sms", "ok"), sent("sms", "error"), sent("voice", "ok")),
            (5.0, 1.0, 2.0)
        );
    }

    #[test]
    fn metrics_task_names_are_escaped() {
        let odd = "odd \"task\"\\ name";
        let r = run([odd, "slow"]);
        let text = render(&r.engine.stats(), &r.bus);
        let f = parse_with_prometheus_client(&text);
        let n = r.engine.stats().tasks[0].scans() as f64;
        let count = sample(
            &f,
            "petra_scan_duration_seconds",
            "petra_scan_duration_seconds_count",
            &[("task", odd)],
        );
        assert_eq!(count, n);
    }

    #[test]
    fn metrics_content_type_is_the_text_format() {
        assert_eq!(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8");
    }
}
