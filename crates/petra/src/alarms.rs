//! The alarm manager: alarms evaluated on the scan, and everything that follows a transition —
//! the journal, the API and its event stream, the MQTT alarm topics, the KPIs, notifications,
//! and the state file that carries alarms and escalations across a restart.
//!
//! ```text
//!  scan thread                       petra-alarms thread                 petra-notify thread
//!  task k commits ─► Hook::after_task ─► transitions (bounded queue) ─► journal, KPIs, API events,
//!   (AlarmSet::evaluate_task under       │                               MQTT board, escalations
//!    the set's lock)                     └─► state file (≤ 1/s) ─► due notifications ─► Twilio
//!  API ack/shelve ─► AlarmSet (same lock) ─► same queue
//! ```
//!
//! * **On the scan.** [`Hook`] runs after every task (a [`petra_engine::ScanHook`]) and
//!   evaluates the alarms assigned to that task ([`assign_tasks`]: the task that writes the
//!   alarm's signal, else the fastest task), so `petra test` sees alarms exactly as `petra run`
//!   does. The scan never waits for IO: transitions go to the manager thread through a bounded
//!   queue of [`QUEUE`] batches. When it is full the batch is dropped, counted
//!   (`petra_alarms_dropped_transitions_total`) and the manager resynchronises from the alarms' current
//!   states (escalations, MQTT, API) — only journal lines of that moment are lost.
//! * **Operator actions** lock the same set for the one action, so they are ordered with the
//!   scan's evaluations; their transitions take the same queue. Acknowledging an alarm that
//!   needs none, and unshelving one that is not shelved, change nothing and are not errors;
//!   shelving a shelved alarm shelves it again with the new expiry.
//! * **Persistence.** `{data_dir}/alarms.json` holds every alarm's [`AlarmSnapshot`] and the
//!   escalation planner's snapshot, written atomically at most once a second while something
//!   changed, right before notifications are handed to the sender (so a crash never pages
//!   twice for the same step), and at shutdown. At start-up alarms are restored before the
//!   first scan and escalations of alarms that are no longer unacknowledged are stopped;
//!   alarms still unacknowledged keep the escalation timing they had, so nobody is paged again
//!   for a step already sent.
//! * **Journal.** Every transition and every delivery attempt is one JSON line in
//!   `{data_dir}/alarms/journal-YYYY-MM-DD.jsonl` (UTC day); the last [`RECENT`] entries are
//!   kept in memory for `GET /api/v1/alarms/journal`. With a `history` section, every
//!   transition is also a row of the history (signal `alarm:NAME`, the JSON entry as its
//!   text), through the WAL into Parquet and ClickHouse.

use crate::retain::write_atomic;
use petra_alarms::{
    Alarm, AlarmDef, AlarmError, AlarmSet, AlarmSnapshot, KpiConfig, Kpis, Now, Priority,
    Transition,
};
use petra_core::{Bus, Clock, MonoTime, Timestamp, Value};
use petra_engine::ScanHook;
use petra_notify::{
    Delivery, EscalationSnapshot, Escalations, Notification, NotifyConfig, NotifyCounters,
    RetryPolicy, TwilioClient,
};
use petra_server::http::{
    AlarmActed, AlarmAction, AlarmActionError, AlarmKpis, AlarmSource, AlarmView, Api,
};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Batches of transitions between the scan and the manager thread.
pub const QUEUE: usize = 4096;
/// The state file is written at most this often while alarms change.
const SAVE_EVERY: Duration = Duration::from_secs(1);
/// Journal entries kept in memory for the API.
pub const RECENT: usize = 1000;
const STATE_VERSION: u32 = 1;

/// Which task evaluates each alarm: the task whose block writes the alarm's signal, else the
/// fastest task (shortest period; on a tie the higher priority, then the first declared).
pub fn assign_tasks(defs: &[AlarmDef], program: &petra_engine::Program) -> Vec<usize> {
    let mut writer = HashMap::new();
    for (t, task) in program.tasks.iter().enumerate() {
        for b in &task.blocks {
            for id in b.outputs.iter().flatten() {
                writer.insert(*id, t);
            }
        }
    }
    let fastest = (0..program.tasks.len())
        .min_by_key(|t| {
            let task = &program.tasks[*t];
            (task.period, std::cmp::Reverse(task.priority), *t)
        })
        .unwrap_or(0);
    defs.iter()
        .map(|d| writer.get(&d.signal).copied().unwrap_or(fastest))
        .collect()
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

enum Msg {
    Transitions(Vec<Transition>),
    /// A reload: the alarms' groups and the `notify` section from now on.
    Reconfigure {
        groups: HashMap<Arc<str>, String>,
        notify: Option<NotifyConfig>,
    },
    /// The scan swapped in a reloaded set: publish the alarms as they are now.
    Resync,
    Stop,
}

/// What the scan thread, the API and the manager thread share.
pub struct Shared {
    set: Mutex<AlarmSet>,
    /// The bus the alarms read (for values and units in the API).
    bus: Mutex<Arc<Bus>>,
    clock: Arc<dyn Clock>,
    tx: Option<SyncSender<Msg>>,
    resync: AtomicBool,
    dropped: AtomicU64,
    kpis: Mutex<Kpis>,
    counters: Mutex<Option<Arc<NotifyCounters>>>,
    /// The last [`RECENT`] journal lines, as written: a line is about 300 bytes, its parsed
    /// tree about 2 KB (the soak's alarms grew the process by 2 MB until the tail was full).
    recent: Mutex<VecDeque<Arc<str>>>,
}

impl Shared {
    /// Hands a batch of transitions to the manager; never blocks (see the module docs).
    fn send(&self, batch: Vec<Transition>) {
        let Some(tx) = &self.tx else { return };
        let n = batch.len() as u64;
        match tx.try_send(Msg::Transitions(batch)) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => {}
            Err(TrySendError::Full(_)) => {
                self.dropped.fetch_add(n, Ordering::Relaxed);
                self.resync.store(true, Ordering::Release);
            }
        }
    }

    fn now(&self) -> Now {
        Now::from_clock(&*self.clock)
    }

    /// The alarm as the API shows it.
    fn view(&self, a: &Alarm, bus: &Bus) -> AlarmView {
        let def = a.def();
        let sdef = bus.def(def.signal);
        let unit = sdef.and_then(|d| d.unit.as_deref()).unwrap_or("");
        let ts = |t: Option<Timestamp>| t.map(Timestamp::to_rfc3339_millis);
        let shelving = a.shelving();
        AlarmView {
            name: def.name.to_string(),
            // System alarms watch Petra itself, not a signal.
            signal: sdef.map_or_else(|| "petra".to_string(), |d| d.name.clone()),
            state: a.state().name(),
            priority: def.priority.name(),
            message: a.message(unit),
            value: a.last_value().map_or(serde_json::Value::Null, json_value),
            active_since: if a.state().is_active() {
                ts(a.activated_at())
            } else {
                None
            },
            acked_at: ts(a.acked().map(|x| x.0)),
            acked_by: a.acked().map(|x| x.1.to_string()),
            cleared_at: if a.state().is_active() {
                None
            } else {
                ts(a.changed_at())
            },
            shelved_until: shelving.map(|s| s.until.to_rfc3339_millis()),
            shelved_by: shelving.map(|s| s.by.to_string()),
            shelve_reason: shelving.map(|s| s.reason.to_string()),
            suppressed: a.is_suppressed(),
            out_of_service: a.is_out_of_service(),
            latch: def.latch,
            condition_active: a.condition_active(),
            changed_at: ts(a.changed_at()),
        }
    }

    /// Views of `names` (unknown names skipped), taken under one lock.
    fn views(&self, names: &[&str]) -> Vec<AlarmView> {
        let bus = lock(&self.bus).clone();
        let set = lock(&self.set);
        names
            .iter()
            .filter_map(|n| set.get(n))
            .map(|a| self.view(a, &bus))
            .collect()
    }

    fn journal_recent(&self, entry: Arc<str>) {
        let mut r = lock(&self.recent);
        if r.len() == RECENT {
            r.pop_front();
        }
        r.push_back(entry);
    }
}

fn json_value(v: &Value) -> serde_json::Value {
    match v {
        Value::Bool(b) => (*b).into(),
        Value::Int(i) => (*i).into(),
        Value::Float(f) => {
            serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into)
        }
        Value::String(s) => s.to_string().into(),
    }
}

/// The alarm evaluation on the scan thread (see the module docs).
pub struct Hook {
    shared: Arc<Shared>,
    /// A reloaded set, swapped in (taking over the state of the running one) at the first
    /// call — on the scan thread, after the engine it belongs to has taken over.
    pending: Option<AlarmSet>,
    out: Vec<Transition>,
}

impl ScanHook for Hook {
    fn after_task(&mut self, task: usize, bus: &Bus, now: MonoTime, wall: Timestamp) {
        let mut set = lock(&self.shared.set);
        if let Some(mut next) = self.pending.take() {
            next.take_over(&set);
            *set = next;
            if let Some(tx) = &self.shared.tx
                && tx.try_send(Msg::Resync).is_err()
            {
                self.shared.resync.store(true, Ordering::Release);
            }
        }
        set.evaluate_task(task, bus, Now::new(now, wall), &mut self.out);
        drop(set);
        if !self.out.is_empty() {
            self.shared.send(std::mem::take(&mut self.out));
        }
    }

    fn warm(&self) {
        // Never wait for an API action here: warming is only worth it when free.
        if let Ok(set) = self.shared.set.try_lock() {
            set.warm();
        }
    }
}

/// The state file (`{data_dir}/alarms.json`).
#[derive(Serialize, Deserialize)]
struct StateFile {
    version: u32,
    alarms: Vec<AlarmSnapshot>,
    #[serde(default)]
    escalations: Option<EscalationSnapshot>,
}

fn read_state(path: &Path) -> Option<StateFile> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read the alarm state; alarms start normal");
            return None;
        }
    };
    match serde_json::from_str::<StateFile>(&text) {
        Ok(s) if s.version == STATE_VERSION => Some(s),
        Ok(_) => {
            tracing::warn!(path = %path.display(), "the alarm state has an unknown version; alarms start normal");
            None
        }
        Err(e) => {
            let bad = path.with_extension("json.corrupt");
            let _ = std::fs::rename(path, &bad);
            tracing::warn!(path = %path.display(), kept_as = %bad.display(), error = %e,
                "the alarm state is unreadable; alarms start normal");
            None
        }
    }
}

/// What the alarm manager needs from the plan.
pub struct AlarmPlan {
    pub defs: Vec<AlarmDef>,
    pub tasks: Vec<usize>,
    pub notify: Option<NotifyConfig>,
}

/// Petra's own alarms (names starting with [`petra_config::SYSTEM_PREFIX`]): a part that had
/// to drop data raises one, so a loss is never silent. Each is active while drops happen and
/// returns a minute after the last one; it goes through the same states, API, journal and
/// MQTT topics as any alarm (no notification group).
const SYSTEM: [(&str, &str); 3] = [
    (
        "petra.alarm_queue_full",
        "Alarm manager overloaded: transitions were dropped from the journal (petra_alarms_dropped_transitions_total)",
    ),
    (
        "petra.history_feed_overflow",
        "History overflow: signal changes were dropped before the WAL (petra_bus_feed_drops_total)",
    ),
    (
        "petra.history_wal_full",
        "History WAL full: the oldest samples not yet stored were dropped (history.wal.max_size)",
    ),
];

impl AlarmPlan {
    /// With Petra's system alarms added (evaluated by the manager, not the scan).
    fn with_system(mut self) -> AlarmPlan {
        for (name, message) in SYSTEM {
            let mut d = AlarmDef::new(
                name,
                petra_core::SignalId::from_index(u32::MAX as usize),
                petra_alarms::Condition::Equals(petra_alarms::EqValue::Bool(true)),
            );
            d.priority = Priority::High;
            d.off_delay = Duration::from_secs(60);
            d.message = message.to_string();
            self.defs.push(d);
            self.tasks.push(petra_alarms::OFF_SCAN);
        }
        self
    }

    fn groups(&self) -> HashMap<Arc<str>, String> {
        self.defs
            .iter()
            .filter_map(|d| d.notify.clone().map(|g| (d.name.clone(), g)))
            .collect()
    }
}

/// The running alarm manager.
pub struct AlarmManager {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
    hook: Option<Hook>,
}

/// Where transitions go besides the journal: the API's event stream and the MQTT board.
pub struct Outputs {
    /// Set once the API exists (it is made after the alarms, which must be restored before
    /// the engine starts).
    pub api: Arc<std::sync::OnceLock<Arc<Api>>>,
    pub board: Option<Arc<petra_mqtt::Board>>,
    /// The running history (a reload replaces it): the journal is also recorded there.
    pub history: Arc<Mutex<Option<Arc<petra_history::History>>>>,
}

/// The signal name of an alarm's journal rows in the history: `alarm:NAME` (a colon never
/// appears in a signal name, so these rows cannot be mistaken for a signal's).
pub fn history_signal(alarm: &str) -> String {
    format!("alarm:{alarm}")
}

impl AlarmManager {
    /// Builds the alarms of `plan`, restores their state from `data_dir`, and starts the
    /// manager thread. The scan hook is taken with [`AlarmManager::take_hook`] and installed on
    /// the engine before it starts.
    pub fn start(
        plan: AlarmPlan,
        bus: Arc<Bus>,
        clock: Arc<dyn Clock>,
        data_dir: &Path,
        outputs: Outputs,
    ) -> anyhow::Result<AlarmManager> {
        let plan = plan.with_system();
        let groups = plan.groups();
        let mut set = AlarmSet::new(plan.defs, &plan.tasks)?;
        let state_path = data_dir.join("alarms.json");
        let saved = read_state(&state_path);
        if let Some(s) = &saved {
            for gone in set.restore(&s.alarms) {
                tracing::info!(alarm = %gone, "an alarm in the saved state is no longer configured; dropped");
            }
        }
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let shared = Arc::new(Shared {
            set: Mutex::new(set),
            bus: Mutex::new(bus),
            clock: clock.clone(),
            tx: Some(tx),
            resync: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
            kpis: Mutex::new(Kpis::new(KpiConfig::default())),
            counters: Mutex::new(None),
            recent: Mutex::new(VecDeque::new()),
        });
        let journal_dir = data_dir.join("alarms");
        std::fs::create_dir_all(&journal_dir)?;
        let mut manager = Manager {
            shared: shared.clone(),
            groups,
            escalations: None,
            notify: None,
            sender: None,
            journal: Arc::new(Mutex::new(Journal::new(journal_dir))),
            outputs,
            state_path,
            dirty: false,
            last_save: Instant::now(),
            drops: [0; 3],
            known: Default::default(),
        };
        manager.configure_notify(plan.notify, saved.and_then(|s| s.escalations));
        manager.resync();
        let thread = std::thread::Builder::new()
            .name("petra-alarms".into())
            .spawn(move || manager.run(rx))?;
        let hook = Hook {
            shared: shared.clone(),
            pending: None,
            out: Vec::new(),
        };
        Ok(AlarmManager {
            shared,
            thread: Some(thread),
            hook: Some(hook),
        })
    }

    /// The scan hook (once), to install on the engine; `None` when there are no alarms.
    pub fn take_hook(&mut self) -> Option<Box<dyn ScanHook>> {
        let hook = self.hook.take()?;
        (lock(&self.shared.set).len() > SYSTEM.len()).then(|| Box::new(hook) as Box<dyn ScanHook>)
    }

    /// What the API serves.
    pub fn source(&self) -> Arc<dyn AlarmSource> {
        Arc::new(Source(self.shared.clone()))
    }

    /// A reload: the hook to install on the new engine (it swaps in the new alarms at its first
    /// run, keeping the state of alarms that stayed), and the new groups and `notify` section.
    /// `None` when neither the old nor the new configuration has alarms.
    pub fn reload(
        &self,
        plan: AlarmPlan,
        bus: Arc<Bus>,
    ) -> anyhow::Result<Option<Box<dyn ScanHook>>> {
        let plan = plan.with_system();
        let groups = plan.groups();
        let set = AlarmSet::new(plan.defs, &plan.tasks)?;
        *lock(&self.shared.bus) = bus;
        if let Some(tx) = &self.shared.tx {
            // Blocking is fine here: a reload runs off the scan thread.
            let _ = tx.send(Msg::Reconfigure {
                groups,
                notify: plan.notify,
            });
        }
        if set.len() == SYSTEM.len() && lock(&self.shared.set).len() == SYSTEM.len() {
            return Ok(None);
        }
        Ok(Some(Box::new(Hook {
            shared: self.shared.clone(),
            pending: Some(set),
            out: Vec::new(),
        })))
    }

    /// Stops the manager thread after it has handled every queued transition and saved the
    /// state. Call after the engine's last scan.
    pub fn stop(mut self) {
        if let Some(tx) = &self.shared.tx {
            let _ = tx.send(Msg::Stop);
        }
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!("the alarm manager thread panicked");
        }
    }
}

/// The journal files and the in-memory tail.
struct Journal {
    dir: PathBuf,
    day: String,
    file: Option<std::fs::File>,
    failed: bool,
}

impl Journal {
    fn new(dir: PathBuf) -> Journal {
        Journal {
            dir,
            day: String::new(),
            file: None,
            failed: false,
        }
    }

    fn append(&mut self, entry: &str, at: Timestamp) {
        let day = at.to_rfc3339_millis()[..10].to_string();
        if day != self.day || self.file.is_none() {
            let path = self.dir.join(format!("journal-{day}.jsonl"));
            self.file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| {
                    tracing::warn!(path = %path.display(), error = %e, "cannot open the alarm journal");
                })
                .ok();
            self.day = day;
        }
        let ok = self.file.as_mut().is_some_and(|f| {
            let mut line = String::with_capacity(entry.len() + 1);
            line.push_str(entry);
            line.push('\n');
            f.write_all(line.as_bytes()).is_ok()
        });
        if !ok && !self.failed {
            tracing::warn!(dir = %self.dir.display(), "cannot write the alarm journal; entries are kept in memory only until it works again");
        }
        self.failed = !ok;
        if !ok {
            self.file = None;
        }
    }
}

fn transition_entry(t: &Transition) -> serde_json::Value {
    serde_json::json!({
        "ts": t.at.to_rfc3339_millis(),
        "kind": "transition",
        "alarm": &*t.alarm,
        "priority": t.priority.name(),
        "from": t.from.state.name(),
        "to": t.to.state.name(),
        "shelved": t.to.shelved,
        "suppressed": t.to.suppressed,
        "out_of_service": t.to.out_of_service,
        "cause": t.cause.name(),
        "value": t.value.as_ref().map_or(serde_json::Value::Null, json_value),
        "user": t.user.as_deref(),
        "reason": t.reason.as_deref(),
    })
}

fn delivery_entry(d: &Delivery) -> serde_json::Value {
    serde_json::json!({
        "ts": d.at.to_rfc3339_millis(),
        "kind": "notification",
        "alarms": d.alarms.iter().map(|a| &**a).collect::<Vec<_>>(),
        "contact": &*d.contact,
        "channel": d.channel.name(),
        "attempt": d.attempt,
        "result": d.result.name(),
        "sid": d.sid,
        "error": d.error.as_ref().map(|e| e.to_string()),
    })
}

/// The manager thread's state.
struct Manager {
    shared: Arc<Shared>,
    groups: HashMap<Arc<str>, String>,
    escalations: Option<Escalations>,
    notify: Option<NotifyConfig>,
    /// To the delivery thread (with a `notify` section).
    sender: Option<mpsc::Sender<Notification>>,
    journal: Arc<Mutex<Journal>>,
    outputs: Outputs,
    state_path: PathBuf,
    dirty: bool,
    last_save: Instant,
    /// The drop counters behind the system alarms, as last seen (order of [`SYSTEM`]).
    drops: [u64; 3],
    /// The alarms published by the last resync (to clear those a reload removed).
    known: std::collections::HashSet<String>,
}

impl Manager {
    fn run(mut self, rx: Receiver<Msg>) {
        loop {
            let wait = self.wait();
            match rx.recv_timeout(wait) {
                Ok(Msg::Transitions(batch)) => self.handle(&batch),
                Ok(Msg::Reconfigure { groups, notify }) => {
                    self.groups = groups;
                    if notify != self.notify {
                        let snap = self.escalations.as_ref().map(Escalations::snapshot);
                        self.configure_notify(notify, snap);
                    }
                }
                Ok(Msg::Resync) => self.resync(),
                Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => {
                    // What the last scan produced is already queued before Stop.
                    self.notify_due();
                    self.save();
                    return;
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            if self.shared.resync.swap(false, Ordering::AcqRel) {
                tracing::warn!(
                    dropped = self.shared.dropped.load(Ordering::Relaxed),
                    "the alarm queue was full; transitions were dropped from the journal and the state is resynchronised"
                );
                self.resync();
            }
            self.check_system();
            self.notify_due();
            if self.dirty && self.last_save.elapsed() >= SAVE_EVERY {
                self.save();
            }
        }
    }

    /// How long to wait for the next transition: until the next escalation step, the next
    /// save, or a second (shelve expiry and KPIs need no wake-up: the scan and the API do it).
    fn wait(&self) -> Duration {
        let mut wait = Duration::from_secs(1);
        if self.dirty {
            wait = wait.min(SAVE_EVERY.saturating_sub(self.last_save.elapsed()));
        }
        if let Some(next) = self.escalations.as_ref().and_then(Escalations::next_due) {
            let now = self.shared.clock.wall();
            let ns = next.unix_nanos().saturating_sub(now.unix_nanos()).max(0) as u64;
            wait = wait.min(Duration::from_nanos(ns));
        }
        wait
    }

    /// (Re)builds the escalation planner and the delivery thread for `notify`, restoring
    /// `snap` (saved state, or the running planner's across a reload).
    fn configure_notify(&mut self, notify: Option<NotifyConfig>, snap: Option<EscalationSnapshot>) {
        self.escalations = None;
        self.sender = None; // the old delivery thread ends when it has sent what it has
        *lock(&self.shared.counters) = None;
        if let Some(cfg) = &notify {
            match Escalations::new(cfg) {
                Ok(mut e) => {
                    if let Some(s) = &snap
                        && let Err(err) = e.restore(s)
                    {
                        tracing::warn!(error = %err, "the saved escalations cannot be restored; escalations start afresh");
                    }
                    self.escalations = Some(e);
                }
                Err(e) => tracing::error!(error = %e, "notifications are off"),
            }
            match TwilioClient::new(
                &cfg.twilio,
                RetryPolicy::default(),
                self.shared.clock.clone(),
            ) {
                Ok(client) => {
                    *lock(&self.shared.counters) = Some(client.counters().clone());
                    let (tx, rx) = mpsc::channel::<Notification>();
                    let journal = self.journal.clone();
                    let shared = self.shared.clone();
                    let spawned = std::thread::Builder::new()
                        .name("petra-notify".into())
                        .spawn(move || {
                            for n in rx {
                                for d in client.deliver(&n) {
                                    let entry: Arc<str> = delivery_entry(&d).to_string().into();
                                    lock(&journal).append(&entry, d.at);
                                    shared.journal_recent(entry);
                                }
                            }
                        });
                    match spawned {
                        Ok(_) => self.sender = Some(tx),
                        Err(e) => {
                            tracing::error!(error = %e, "cannot start the notification thread; notifications are off")
                        }
                    }
                }
                Err(e) => tracing::error!(error = %e, "notifications are off"),
            }
        }
        self.notify = notify;
    }

    fn handle(&mut self, batch: &[Transition]) {
        let mut touched: Vec<&str> = Vec::new();
        {
            let mut kpis = lock(&self.shared.kpis);
            for t in batch {
                kpis.record(t);
            }
        }
        let history = lock(&self.outputs.history).clone();
        let mut rows = Vec::new();
        for t in batch {
            let entry: Arc<str> = transition_entry(t).to_string().into();
            lock(&self.journal).append(&entry, t.at);
            if history.is_some() {
                rows.push(petra_history::Row {
                    signal: Arc::from(history_signal(&t.alarm)),
                    ts_ms: t.at.unix_nanos().div_euclid(1_000_000),
                    value: None,
                    text: Some(entry.clone()),
                    quality: "good",
                    seq: 0,
                });
            }
            self.shared.journal_recent(entry);
            if !touched.contains(&&*t.alarm) {
                touched.push(&t.alarm);
            }
        }
        if let Some(h) = history {
            h.record(&mut rows);
        }
        let views = self.shared.views(&touched);
        for t in batch {
            if let (Some(esc), Some(group)) = (&mut self.escalations, self.groups.get(&t.alarm)) {
                let message = views
                    .iter()
                    .find(|v| v.name == *t.alarm)
                    .map_or_else(String::new, |v| v.message.clone());
                if let Err(e) = esc.on_transition(t, message, group) {
                    tracing::warn!(alarm = %t.alarm, error = %e, "cannot escalate");
                }
            }
        }
        for v in views {
            self.publish(v);
        }
        self.dirty = true;
    }

    fn publish(&self, v: AlarmView) {
        if let Some(board) = &self.outputs.board {
            let payload = serde_json::json!({
                "state": v.state,
                "priority": v.priority,
                "value": v.value,
                "message": v.message,
                "ts": v.changed_at,
                "shelved": v.shelved_until.is_some(),
                "suppressed": v.suppressed,
                "out_of_service": v.out_of_service,
            });
            board.set(&v.name, payload.to_string().into_bytes());
        }
        if let Some(api) = self.outputs.api.get() {
            api.publish_alarm(v);
        }
    }

    /// Brings escalations, MQTT and the API in line with the alarms' current states: at
    /// start-up, after a reload, and after transitions were dropped.
    fn resync(&mut self) {
        let views = {
            let bus = lock(&self.shared.bus).clone();
            let set = lock(&self.shared.set);
            set.alarms()
                .iter()
                .map(|a| (a.status(), a.def().priority, self.shared.view(a, &bus)))
                .collect::<Vec<_>>()
        };
        if let Some(esc) = &mut self.escalations {
            let now = self.shared.clock.wall();
            let mut waiting = std::collections::HashSet::new();
            for (status, priority, v) in &views {
                let Some(group) = self.groups.get(v.name.as_str()) else {
                    continue;
                };
                if status.annunciated() && status.state.is_unacked() {
                    waiting.insert(v.name.clone());
                    let info = petra_notify::AlarmInfo {
                        name: Arc::from(v.name.as_str()),
                        priority: *priority,
                        message: v.message.clone(),
                    };
                    // Idempotent: an escalation restored from the state file keeps its timing.
                    if let Err(e) = esc.alarm_raised(info, group, now) {
                        tracing::warn!(alarm = %v.name, error = %e, "cannot escalate");
                    }
                }
            }
            let stale: Vec<String> = esc
                .escalating()
                .filter(|a| !waiting.contains(*a))
                .map(str::to_string)
                .collect();
            for a in stale {
                esc.alarm_acked(&a);
            }
        }
        // Alarms a reload removed: their retained MQTT topics are cleared (an empty retained
        // message deletes it) and the KPIs forget them.
        let now: std::collections::HashSet<String> =
            views.iter().map(|(_, _, v)| v.name.clone()).collect();
        for gone in self.known.difference(&now) {
            if let Some(board) = &self.outputs.board {
                board.set(gone, Vec::new());
            }
            lock(&self.shared.kpis).forget(gone);
        }
        self.known = now;
        for (_, _, v) in views {
            self.publish(v);
        }
        self.dirty = true;
    }

    /// Evaluates the system alarms: each is active while its counter grew since the last look.
    fn check_system(&mut self) {
        let history = lock(&self.outputs.history).as_ref().map(|h| h.metrics());
        let counts = [
            self.shared.dropped(),
            history.as_ref().map_or(self.drops[1], |m| m.feed_dropped),
            history.as_ref().map_or(self.drops[2], |m| m.wal_dropped),
        ];
        let now = self.shared.now();
        let mut out = Vec::new();
        {
            let mut set = lock(&self.shared.set);
            for (k, (name, _)) in SYSTEM.iter().enumerate() {
                // A new history starts its counters at 0: a smaller count is no drop.
                let active = counts[k] > self.drops[k];
                let _ = set.evaluate_one(
                    name,
                    &Value::Bool(active),
                    petra_core::Quality::Good,
                    now,
                    &mut out,
                );
            }
        }
        self.drops = counts;
        if !out.is_empty() {
            self.handle(&out);
        }
    }

    fn notify_due(&mut self) {
        let Some(esc) = &mut self.escalations else {
            return;
        };
        let due = esc.due(self.shared.clock.wall());
        if due.is_empty() {
            return;
        }
        // Saved before sending: a crash between the two loses these messages rather than
        // sending them twice after the restart.
        self.save();
        match &self.sender {
            Some(tx) => {
                for n in due {
                    let _ = tx.send(n);
                }
            }
            None => tracing::warn!(
                count = due.len(),
                "notifications are due but cannot be sent (see the earlier error)"
            ),
        }
    }

    fn save(&mut self) {
        let state = StateFile {
            version: STATE_VERSION,
            alarms: lock(&self.shared.set).snapshots(),
            escalations: self.escalations.as_ref().map(Escalations::snapshot),
        };
        let bytes = match serde_json::to_vec(&state) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode the alarm state");
                return;
            }
        };
        match write_atomic(&self.state_path, &bytes) {
            Ok(()) => self.dirty = false,
            Err(e) => tracing::warn!(path = %self.state_path.display(), error = %e,
                "cannot save the alarm state; will retry"),
        }
        self.last_save = Instant::now();
    }
}

/// The API's view of the alarms.
struct Source(Arc<Shared>);

impl Source {
    fn state_text(a: &Alarm) -> String {
        let s = a.status();
        let mut text = s.state.name().to_string();
        if s.out_of_service {
            text.push_str(", out of service");
        }
        if let Some(sh) = a.shelving() {
            text.push_str(&format!(
                ", shelved until {} by {}: {}",
                sh.until.to_rfc3339_millis(),
                sh.by,
                sh.reason
            ));
        }
        text
    }
}

impl AlarmSource for Source {
    fn exists(&self, name: &str) -> bool {
        lock(&self.0.set).get(name).is_some()
    }

    fn list(&self) -> Vec<AlarmView> {
        let shared = &self.0;
        let bus = lock(&shared.bus).clone();
        // Copies under the lock, formats outside it: the scan waits for as little as possible.
        let alarms: Vec<Alarm> = lock(&shared.set).alarms().to_vec();
        let mut views: Vec<(Priority, AlarmView)> = alarms
            .iter()
            .map(|a| (a.def().priority, shared.view(a, &bus)))
            .collect();
        // Active first, then by priority (most urgent first), then most recent change first.
        views.sort_by(|(pa, a), (pb, b)| {
            let active = |v: &AlarmView| v.state == "normal";
            active(a)
                .cmp(&active(b))
                .then(pb.cmp(pa))
                .then(b.changed_at.cmp(&a.changed_at))
                .then(a.name.cmp(&b.name))
        });
        views.into_iter().map(|(_, v)| v).collect()
    }

    fn act(
        &self,
        name: &str,
        action: AlarmAction,
        user: &str,
    ) -> Result<AlarmActed, AlarmActionError> {
        let shared = &self.0;
        let now = shared.now();
        let bus = lock(&shared.bus).clone();
        let mut set = lock(&shared.set);
        let old = set
            .get(name)
            .map(Source::state_text)
            .ok_or(AlarmActionError::NotFound)?;
        let result = match action {
            AlarmAction::Ack => set.ack(name, now, user).map(|t| vec![t]),
            AlarmAction::Unshelve => set.unshelve(name, now, user).map(|t| vec![t]),
            AlarmAction::Reset => set.reset(name, now, user).map(|t| vec![t]),
            AlarmAction::OutOfService(oos) => set
                .set_out_of_service(name, now, oos, user)
                .map(|t| vec![t]),
            AlarmAction::Shelve { duration, reason } => {
                let ns = i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX);
                let until = Timestamp::from_unix_nanos(now.wall.unix_nanos().saturating_add(ns));
                set.shelve(name, now, until, user, &reason)
            }
        };
        let transitions = match result {
            Ok(t) => t,
            // Idempotent: nothing to acknowledge / not shelved leaves the alarm as it is.
            Err(
                AlarmError::NothingToAcknowledge { .. }
                | AlarmError::NotShelved { .. }
                | AlarmError::OutOfServiceUnchanged { .. },
            ) => Vec::new(),
            Err(AlarmError::UnknownAlarm { .. }) => return Err(AlarmActionError::NotFound),
            Err(e) => return Err(AlarmActionError::Unprocessable(e.to_string())),
        };
        let alarm = set.get(name).expect("looked up above");
        let (new, view) = (Source::state_text(alarm), shared.view(alarm, &bus));
        drop(set);
        if !transitions.is_empty() {
            shared.send(transitions);
        }
        Ok(AlarmActed {
            alarm: view,
            old,
            new,
        })
    }

    fn kpis(&self) -> AlarmKpis {
        let shared = &self.0;
        let now = shared.clock.wall();
        let mut active = [0u64; 4];
        for a in lock(&shared.set).alarms() {
            if a.status().annunciated() && a.state().is_active() {
                active[a.def().priority as usize] += 1;
            }
        }
        let kpis = lock(&shared.kpis);
        AlarmKpis {
            rate_10min: kpis.rate_per_10min(now) as u64,
            flood: kpis.is_flood(now),
            standing: kpis
                .standing(now)
                .into_iter()
                .map(|(a, _)| a.to_string())
                .collect(),
            chattering: kpis
                .chattering(now)
                .into_iter()
                .map(|a| a.to_string())
                .collect(),
            active: Priority::ALL
                .iter()
                .map(|p| (p.name().to_string(), active[*p as usize]))
                .collect(),
            dropped_transitions: shared.dropped(),
        }
    }

    fn journal(&self, limit: usize) -> Vec<serde_json::Value> {
        self.0.recent(limit)
    }

    fn notifications(&self) -> Vec<(&'static str, &'static str, u64)> {
        match &*lock(&self.0.counters) {
            Some(c) => c
                .all()
                .into_iter()
                .map(|(ch, r, n)| (ch.name(), r.name(), n))
                .collect(),
            None => Vec::new(),
        }
    }
}

/// The alarms of a scenario, and the hook to install (none without alarms).
pub type ScenarioAlarms = (Arc<Shared>, Option<Box<dyn ScanHook>>);

/// Alarms for `petra test`: evaluated by the same hook, in virtual time, without a manager
/// thread; steps acknowledge and check them through the returned handle.
pub fn for_scenario(
    plan: AlarmPlan,
    bus: Arc<Bus>,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<ScenarioAlarms> {
    let set = AlarmSet::new(plan.defs, &plan.tasks)?;
    let empty = set.is_empty();
    let shared = Arc::new(Shared {
        set: Mutex::new(set),
        bus: Mutex::new(bus),
        clock,
        tx: None,
        resync: AtomicBool::new(false),
        dropped: AtomicU64::new(0),
        kpis: Mutex::new(Kpis::new(KpiConfig::default())),
        counters: Mutex::new(None),
        recent: Mutex::new(VecDeque::new()),
    });
    let hook = (!empty).then(|| {
        Box::new(Hook {
            shared: shared.clone(),
            pending: None,
            out: Vec::new(),
        }) as Box<dyn ScanHook>
    });
    Ok((shared, hook))
}

impl Shared {
    /// A scenario's acknowledgement.
    pub fn ack(&self, name: &str, user: &str) -> Result<(), AlarmError> {
        let now = self.now();
        lock(&self.set).ack(name, now, user).map(|_| ())
    }

    /// An alarm's state, for a scenario's expectation.
    pub fn state(&self, name: &str) -> Option<petra_alarms::AlarmState> {
        lock(&self.set).get(name).map(Alarm::state)
    }

    /// Transitions dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The last journal entries, oldest first.
    pub fn recent(&self, limit: usize) -> Vec<serde_json::Value> {
        let r = lock(&self.recent);
        r.iter()
            .skip(r.len().saturating_sub(limit))
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }
}
