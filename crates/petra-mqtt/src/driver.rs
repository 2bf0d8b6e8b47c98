//! The MQTT driver: one tokio task per broker connection, on the shared supervisor
//! ([`petra_drivers::supervise`]): connect with backoff and jitter, a session until the
//! connection fails, reconnect.
//!
//! # In
//! Each message is matched against every `subscribe` filter (`+`, `#`); a match feeds its
//! signal (`good`). A payload that does not parse for the signal's type is refused: the signal
//! keeps its value and turns `uncertain`, the message is counted (`exception`), and the problem
//! is logged — once per topic per minute, so a misbehaving publisher cannot flood the log.
//! While the broker is unreachable, the subscribed signals are `bad(not_connected)`.
//!
//! # Out
//! The selected signals are watched through the bus's coalesced feed: ten changes between two
//! publishes are one publish of the latest value, and the scan never waits for the broker.
//! A numeric change within `deadband` of the last published value is not published (a quality
//! change always is); a signal is published at most every `min_interval`, the latest value
//! going out when it is due. While disconnected nothing is queued but the set of signals that
//! changed — bounded by the number of signals — and on every (re)connect every selected signal
//! is published again with its latest value, so a QoS 1 message lost in flight across a broker
//! restart is replaced by the current value. `{prefix}/status` is `online` (retained) after
//! each connect, `offline` on a clean shutdown and, through the last will, when Petra dies.
//!
//! # Commands
//! With `commands: true`, a JSON value on `{prefix}/write/{signal}` is handed to [`Commands`]
//! (the HTTP API's write path: the signal's `write` list must include `mqtt`, the value is type-
//! and range-checked, and the write is audit-logged with the topic as its source).

use crate::board::Board;
use crate::client::{Event, Link, MqttError};
use crate::config::MqttConfig;
use crate::payload;
use petra_core::{BadReason, Bus, LatestFeed, Quality, SignalId, Timestamp, Value};
use petra_drivers::{Device, DriverStatus, RequestResult, mark_bad, supervise};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Applies a command from `{prefix}/write/{signal}`; `Err` says why it was refused.
pub trait Commands: Send + Sync {
    fn apply(
        &self,
        signal: String,
        value: serde_json::Value,
        source: String,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>>;
}

/// How often a problem with one topic is logged at most.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// One published signal.
struct Out {
    signal: SignalId,
    topic: String,
    /// What was last published.
    last: Option<(Value, Quality)>,
    last_at: Option<Instant>,
    dirty: bool,
}

/// A running MQTT driver.
pub struct Driver {
    cfg: MqttConfig,
    bus: Arc<Bus>,
    status: Arc<DriverStatus>,
    commands: Option<Arc<dyn Commands>>,
    feed: Option<(LatestFeed, Arc<Notify>)>,
    outs: Vec<Out>,
    by_signal: HashMap<SignalId, usize>,
    /// Indices of `outs` with `dirty` set, in the order they changed.
    queue: Vec<usize>,
    /// When each topic's last problem was logged.
    logged: HashMap<String, Instant>,
    scratch: Vec<SignalId>,
    command_prefix: String,
    /// Alarm topics to publish (with a `publish` section), and the board generation published.
    alarms: Option<(Arc<Board>, watch::Receiver<u64>, u64)>,
    /// Subscriptions whose filter has no wildcard, by topic (indices into `cfg.subscribe`,
    /// ascending): a message finds them with one lookup instead of matching every filter.
    exact: HashMap<String, Vec<usize>>,
    /// Subscriptions with a wildcard (`+`, `#`), ascending: matched one by one.
    wild: Vec<usize>,
    /// The subscriptions the message at hand matches.
    hits: Vec<usize>,
}

impl Driver {
    /// `feed` must watch [`MqttConfig::output_signals`] (`None` when nothing is published).
    pub fn new(
        cfg: MqttConfig,
        bus: Arc<Bus>,
        status: Arc<DriverStatus>,
        feed: Option<LatestFeed>,
        commands: Option<Arc<dyn Commands>>,
        alarms: Option<Arc<Board>>,
    ) -> Driver {
        let outs: Vec<Out> = cfg
            .publish
            .iter()
            .flat_map(|p| &p.signals)
            .map(|(id, name)| Out {
                signal: *id,
                topic: format!("{}/signals/{name}", cfg.prefix),
                last: None,
                last_at: None,
                dirty: false,
            })
            .collect();
        let by_signal = outs
            .iter()
            .enumerate()
            .map(|(i, o)| (o.signal, i))
            .collect();
        let feed = feed.map(|f| {
            let n = Arc::new(Notify::new());
            let n2 = n.clone();
            f.set_waker(Arc::new(move || n2.notify_one()));
            (f, n)
        });
        let mut exact: HashMap<String, Vec<usize>> = HashMap::new();
        let mut wild = Vec::new();
        for (k, s) in cfg.subscribe.iter().enumerate() {
            if s.filter.contains(['+', '#']) {
                wild.push(k);
            } else {
                exact.entry(s.filter.clone()).or_default().push(k);
            }
        }
        let alarms = alarms.filter(|_| cfg.publish.is_some()).map(|b| {
            let rx = b.subscribe();
            (b, rx, 0)
        });
        Driver {
            alarms,
            command_prefix: format!("{}/write/", cfg.prefix),
            exact,
            wild,
            hits: Vec::new(),
            commands: if cfg.commands { commands } else { None },
            cfg,
            bus,
            status,
            feed,
            outs,
            by_signal,
            queue: Vec::new(),
            logged: HashMap::new(),
            scratch: Vec::new(),
        }
    }

    /// Runs until `cancel`.
    pub async fn run(self, cancel: CancellationToken) {
        let status = self.status.clone();
        let max = self.cfg.reconnect_max;
        supervise(self, &status, max, cancel).await
    }

    fn mark(&mut self, i: usize) {
        if !self.outs[i].dirty {
            self.outs[i].dirty = true;
            self.queue.push(i);
        }
    }

    /// Takes in the bus's changes.
    fn collect(&mut self) {
        let Some((feed, _)) = &self.feed else { return };
        self.scratch.clear();
        feed.drain(&mut self.scratch);
        for k in 0..self.scratch.len() {
            if let Some(&i) = self.by_signal.get(&self.scratch[k]) {
                self.mark(i);
            }
        }
    }

    /// Publishes what is due; returns when the next deferred publish is due.
    fn flush(&mut self, link: &Link) -> Option<Instant> {
        let Some(p) = &self.cfg.publish else {
            self.queue.clear();
            return None;
        };
        let (qos, retain, deadband, min_interval) = (p.qos, p.retain, p.deadband, p.min_interval);
        let now = Instant::now();
        let mut next: Option<Instant> = None;
        let mut keep = Vec::new();
        let mut queue = std::mem::take(&mut self.queue);
        let mut full = false;
        for (k, &i) in queue.iter().enumerate() {
            if full {
                keep.extend_from_slice(&queue[k..]);
                break;
            }
            let o = &mut self.outs[i];
            let Some(sample) = self.bus.read(o.signal) else {
                o.dirty = false;
                continue;
            };
            if let Some((v, q)) = &o.last
                && *q == sample.quality
                && within(v, &sample.value, deadband)
            {
                o.dirty = false;
                continue;
            }
            if let Some(at) = o.last_at
                && at + min_interval > now
            {
                let due = at + min_interval;
                next = Some(next.map_or(due, |n| n.min(due)));
                keep.push(i);
                continue;
            }
            let body = payload::signal_json(&sample.value, sample.quality, sample.ts);
            if link.publish(&o.topic, body, qos, retain) {
                o.last = Some((sample.value, sample.quality));
                o.last_at = Some(now);
                o.dirty = false;
                self.status.count(RequestResult::Ok);
            } else {
                // rumqttc's queue is full: the rest waits for the next round.
                full = true;
                keep.push(i);
            }
        }
        queue.clear();
        self.queue = keep;
        self.queue.append(&mut queue);
        self.status.set_pending_writes(self.queue.len());
        next
    }

    /// Publishes the alarm topics set since the last call; `false` when rumqttc's queue was
    /// full (the rest goes out on the next call: the generation is not advanced).
    fn flush_alarms(&mut self, link: &Link) -> bool {
        let Some((board, _, seen)) = &mut self.alarms else {
            return true;
        };
        let (generation, items) = board.since(*seen);
        for (alarm, body) in items {
            let topic = format!("{}/alarms/{alarm}", self.cfg.prefix);
            if !link.publish(&topic, body, 1, true) {
                return false;
            }
            self.status.count(RequestResult::Ok);
        }
        *seen = generation;
        true
    }

    async fn message(&mut self, topic: String, body: Vec<u8>) {
        if let Some(signal) = topic.strip_prefix(&self.command_prefix)
            && let Some(commands) = self.commands.clone()
        {
            let signal = signal.to_string();
            let result = match serde_json::from_slice::<serde_json::Value>(&body) {
                Ok(v) => commands.apply(signal, v, topic.clone()).await,
                Err(e) => Err(format!("the payload is not a JSON value ({e})")),
            };
            match result {
                Ok(()) => self.status.count(RequestResult::Ok),
                Err(why) => {
                    self.status.count(RequestResult::Exception);
                    self.log_once(&topic, &format!("command refused: {why}"));
                }
            }
            return;
        }
        let now = Timestamp::from_system_time(SystemTime::now());
        let mut hits = std::mem::take(&mut self.hits);
        matching(
            &self.exact,
            &self.wild,
            &self.cfg.subscribe,
            &topic,
            &mut hits,
        );
        for &k in &hits {
            let s = &self.cfg.subscribe[k];
            match payload::parse(&body, s.signal_type, s.json.as_deref()) {
                Ok(v) => {
                    self.status.count(RequestResult::Ok);
                    let _ = self.bus.write(s.signal, v, Quality::Good, now);
                }
                Err(why) => {
                    self.status.count(RequestResult::Exception);
                    let _ = self.bus.set_quality(s.signal, Quality::Uncertain, now);
                    let msg = format!("bad payload for `{}`: {why}", s.signal_name);
                    self.log_once(&topic, &msg);
                }
            }
        }
        self.hits = hits;
    }

    fn log_once(&mut self, topic: &str, msg: &str) {
        let now = Instant::now();
        let due = self
            .logged
            .get(topic)
            .is_none_or(|at| now.duration_since(*at) >= LOG_EVERY);
        if due {
            tracing::warn!(driver = %self.cfg.name, topic, "{msg} (logged once a minute per topic)");
            self.logged.insert(topic.to_string(), now);
        }
        self.status.set_error(Some(format!("{topic}: {msg}")));
    }

    async fn session_loop(
        &mut self,
        link: &mut Link,
        cancel: &CancellationToken,
    ) -> Option<MqttError> {
        // The link is connected (see `connect`): subscribe, say online, publish everything.
        let filters: Vec<String> = self
            .cfg
            .subscribe
            .iter()
            .map(|s| s.filter.clone())
            .collect();
        let mut filters = dedup(filters);
        if self.commands.is_some() {
            filters.push(format!("{}+", self.command_prefix));
        }
        if let Err(e) = link.subscribe(&filters) {
            return Some(e);
        }
        link.publish(&self.cfg.status_topic(), b"online".to_vec(), 1, true);
        for i in 0..self.outs.len() {
            self.outs[i].last = None;
            self.outs[i].last_at = None;
            self.mark(i);
        }
        if let Some((_, _, seen)) = &mut self.alarms {
            *seen = 0;
        }
        loop {
            self.collect();
            let next = self.flush(link);
            let alarms_done = self.flush_alarms(link);
            let changed = async {
                match &self.feed {
                    Some((f, n)) if !f.has_pending() => n.notified().await,
                    Some(_) => {}
                    None => std::future::pending().await,
                }
            };
            // With a full queue, come back soon for the rest.
            let retry = ((!self.queue.is_empty() && next.is_none()) || !alarms_done)
                .then(|| Instant::now() + Duration::from_millis(5));
            let alarm_set = async {
                match &mut self.alarms {
                    Some((_, rx, _)) => {
                        if rx.changed().await.is_err() {
                            std::future::pending::<()>().await
                        }
                    }
                    None => std::future::pending().await,
                }
            };
            let wake = match (next, retry) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            tokio::select! {
                _ = cancel.cancelled() => return None,
                ev = link.next() => match ev {
                    Ok(Event::Message { topic, payload }) => self.message(topic, payload).await,
                    Ok(Event::Connected) => {}
                    Err(e) => return Some(e),
                },
                _ = changed => {}
                _ = alarm_set => {}
                _ = async {
                    match wake {
                        Some(t) => tokio::time::sleep_until(t).await,
                        None => std::future::pending().await,
                    }
                } => {}
            }
        }
    }
}

/// The subscriptions (indices, ascending) whose filter `topic` matches, as
/// `rumqttc::matches` says, into `out`: a filter without wildcards matches only its own topic
/// (and, like every filter there, no topic starting with `$`).
fn matching(
    exact: &HashMap<String, Vec<usize>>,
    wild: &[usize],
    subs: &[crate::config::Subscription],
    topic: &str,
    out: &mut Vec<usize>,
) {
    out.clear();
    if !topic.starts_with('$')
        && let Some(ks) = exact.get(topic)
    {
        out.extend_from_slice(ks);
    }
    let n = out.len();
    out.extend(
        wild.iter()
            .copied()
            .filter(|&k| rumqttc::matches(topic, &subs[k].filter)),
    );
    if n > 0 && out.len() > n {
        out.sort_unstable();
    }
}

fn dedup(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

/// Whether `new` is within `deadband` of `old` (numbers only; other values must be equal).
fn within(old: &Value, new: &Value, deadband: f64) -> bool {
    match (old, new) {
        (Value::Float(a), Value::Float(b)) => (a - b).abs() <= deadband,
        (Value::Int(a), Value::Int(b)) => (*a as f64 - *b as f64).abs() <= deadband,
        (a, b) => a == b,
    }
}

impl Device for Driver {
    type Link = Link;
    type Error = MqttError;

    fn target(&self) -> String {
        self.cfg.target()
    }

    async fn connect(&mut self) -> Result<Link, MqttError> {
        let mut link = Link::open(&self.cfg)?;
        let timeout = self.cfg.timeout;
        match tokio::time::timeout(timeout + Duration::from_secs(1), link.next()).await {
            Ok(Ok(Event::Connected)) => Ok(link),
            Ok(Ok(Event::Message { .. })) => {
                Err(MqttError::Connection("a message before the CONNACK".into()))
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(MqttError::Timeout(timeout)),
        }
    }

    async fn session(&mut self, link: &mut Link, cancel: &CancellationToken) -> Option<MqttError> {
        self.session_loop(link, cancel).await
    }

    async fn close(&mut self, link: Link) {
        // A clean shutdown says offline itself; a lost connection leaves it to the last will.
        let status = self.cfg.status_topic();
        link.close(Some((&status, "offline"))).await
    }

    fn unreachable(&mut self) {
        let ids: Vec<SignalId> = self.cfg.subscribe.iter().map(|s| s.signal).collect();
        mark_bad(&self.bus, ids, BadReason::NotConnected);
    }

    fn linked(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_filters_are_looked_up_and_wildcards_matched_in_order() {
        let sub = |filter: &str| crate::config::Subscription {
            filter: filter.into(),
            signal: SignalId::from_index(0),
            signal_name: "x".into(),
            signal_type: petra_core::ValueType::Int,
            json: None,
        };
        let subs = [
            sub("a/+"),
            sub("a/b"),
            sub("#"),
            sub("a/b"),
            sub("a/c"),
            sub("$SYS/x"),
        ];
        let (mut exact, mut wild) = (HashMap::<String, Vec<usize>>::new(), Vec::new());
        for (k, s) in subs.iter().enumerate() {
            if s.filter.contains(['+', '#']) {
                wild.push(k);
            } else {
                exact.entry(s.filter.clone()).or_default().push(k);
            }
        }
        let mut out = Vec::new();
        for topic in ["a/b", "a/c", "a/d", "b", "a/b/c", "$SYS/x", "", "a/b/"] {
            matching(&exact, &wild, &subs, topic, &mut out);
            let linear: Vec<usize> = (0..subs.len())
                .filter(|&k| rumqttc::matches(topic, &subs[k].filter))
                .collect();
            assert_eq!(out, linear, "topic `{topic}`");
        }
        matching(&exact, &wild, &subs, "a/b", &mut out);
        assert_eq!(out, [0, 1, 2, 3]);
    }

    #[test]
    fn deadband_applies_to_numbers_only() {
        assert!(within(&Value::Float(1.0), &Value::Float(1.4), 0.5));
        assert!(!within(&Value::Float(1.0), &Value::Float(1.6), 0.5));
        assert!(!within(&Value::Float(1.0), &Value::Float(1.1), 0.0));
        assert!(within(&Value::Int(10), &Value::Int(12), 2.0));
        assert!(!within(&Value::Bool(true), &Value::Bool(false), 5.0));
        assert!(within(
            &Value::String("a".into()),
            &Value::String("a".into()),
            0.0
        ));
    }
}
