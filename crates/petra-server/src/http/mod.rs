//! The HTTP API (spec.md section 4, docs/api.md, docs/openapi.yaml): an axum [`router`] over
//! one shared [`Api`] state, and [`serve`] that runs it on a bound listener (plain or TLS)
//! until a cancellation token fires.
//!
//! The state is built once by the runtime and outlives reloads:
//!
//! - the signals ([`Signals`]: the bus, per-signal metadata from the plan, and the bus's
//!   coalesced change feed) sit behind a `watch` channel, so a reload that rebuilds the bus
//!   or changes a signal's `min`/`max`/`write` swaps them in one step ([`Api::set_signals`]);
//! - users (reloaded when the users file changes, so `petra user add` while running works),
//!   login sessions, the failed-login limiter, the audit log, the engine's statistics;
//! - a channel to the runtime for `POST /api/v1/config/reload` ([`ReloadRequest`]): the runtime
//!   owns the engine and performs the reload; the handler waits for its answer;
//! - readiness per component ([`Readiness`]);
//! - the alarms ([`AlarmSource`], set by the runtime's alarm manager with [`Api::set_alarms`];
//!   the manager reports each transition with [`Api::publish_alarm`] for the event streams).
//!
//! Request handling rules (docs/security.md): every route but login, `/health` and `/ready`
//! authenticates first (401), then checks the role (403), then validates (400/404/422).
//! Bodies are limited to 64 KiB; JSON nesting is limited by serde_json's recursion limit
//! (128). Every change is in the audit log — fsynced — before the answer; if the audit log
//! cannot be written, the change is not made (503). Time comes from [`Clocks`], so tests move
//! it by hand.

mod alarms;
mod events;
mod handlers;
mod hmi;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_alarms;
#[cfg(test)]
mod tests_hmi;

pub use alarms::{
    AlarmActed, AlarmAction, AlarmActionError, AlarmKpis, AlarmSource, AlarmView, MAX_SHELVE,
    PRIORITIES,
};

use crate::{AuditLog, LoginLimiter, Role, ServerError, Sessions, Users};
use arc_swap::ArcSwap;
use axum::Router;
use axum::routing::{get, post};
use petra_core::{Bus, LatestFeed, SignalId, ValueType};
use petra_drivers::DriverStatus;
use petra_engine::{ReloadReport, StatsSource};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

/// Request bodies larger than this are refused with 413.
pub const BODY_LIMIT: usize = 64 * 1024;
/// How long shutdown waits for open requests (event streams end at once).
const GRACE: Duration = Duration::from_secs(5);

/// What the API knows about one signal besides its value and its declaration on the bus (name
/// and unit are read there, not copied: one of these per signal, 100,000 in a large plant).
#[derive(Clone, Debug, PartialEq)]
pub struct SignalMeta {
    pub ty: ValueType,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// Roles named in the signal's `write` list (other entries, such as `mqtt`, are not API
    /// roles). Empty: read-only from outside.
    pub write: Vec<Role>,
    /// The `write` list names `mqtt`: commands on `{prefix}/write/{signal}` may write it.
    pub mqtt: bool,
}

impl SignalMeta {
    /// The metadata of every signal of a plan, in id order.
    pub fn from_plan(plan: &petra_config::Plan) -> Vec<SignalMeta> {
        plan.signals
            .iter()
            .map(|s| SignalMeta {
                ty: s.def.ty,
                min: s.min,
                max: s.max,
                write: s.write.iter().filter_map(|w| w.parse().ok()).collect(),
                mqtt: s.write.iter().any(|w| w == "mqtt"),
            })
            .collect()
    }

    /// Whether `role` may write this signal: a listed role or any role above one.
    pub fn may_write(&self, role: Role) -> bool {
        self.write.iter().any(|w| role >= *w)
    }
}

/// The signals as the API serves them: one bus and its metadata, swapped whole on reload.
pub struct Signals {
    pub(crate) bus: Arc<Bus>,
    pub(crate) meta: Vec<SignalMeta>,
    /// The bus's latest-value feed for the event stream; taken by the event hub.
    feed: Mutex<Option<LatestFeed>>,
}

impl Signals {
    /// `meta` in the bus's id order; `feed` a latest-value feed of every signal of `bus`
    /// (`None`: the event stream sends only the snapshot on connect).
    pub fn new(bus: Arc<Bus>, meta: Vec<SignalMeta>, feed: Option<LatestFeed>) -> Signals {
        Signals {
            bus,
            meta,
            feed: Mutex::new(feed),
        }
    }

    pub(crate) fn find(&self, name: &str) -> Option<(SignalId, &SignalMeta)> {
        let id = self.bus.id(name)?;
        Some((id, self.meta.get(id.index())?))
    }
}

/// A request from the API to reload the configuration; the runtime answers on `reply`.
pub struct ReloadRequest {
    pub reply: oneshot::Sender<Result<ReloadReport, ReloadRefused>>,
}

/// Why a reload was refused; the running configuration stays.
#[derive(Clone, Debug, PartialEq)]
pub struct ReloadRefused {
    /// For people: what failed and what to do.
    pub message: String,
    /// Every error as `petra check` prints it (`FILE:LINE:COL: error[CODE]: message`); empty
    /// when the refusal is not about the file's content.
    pub diagnostics: Vec<String>,
}

/// State of one component for `/ready`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ComponentState {
    Up,
    Starting,
    Down,
}

impl ComponentState {
    pub fn as_str(self) -> &'static str {
        match self {
            ComponentState::Up => "up",
            ComponentState::Starting => "starting",
            ComponentState::Down => "down",
        }
    }
}

/// Readiness per component (`engine`, `audit_log`, later drivers and sinks).
#[derive(Default)]
pub struct Readiness(Mutex<BTreeMap<String, ComponentState>>);

impl Readiness {
    pub fn set(&self, component: &str, state: ComponentState) {
        self.0
            .lock()
            .expect("readiness lock")
            .insert(component.to_string(), state);
    }

    /// Every component with its state, by name.
    pub fn snapshot(&self) -> BTreeMap<String, ComponentState> {
        self.0.lock().expect("readiness lock").clone()
    }
}

/// Where the API gets the time: wall time for expiry and records, monotonic time for the
/// login limiter. Replaceable so tests move time without waiting.
#[derive(Clone)]
pub struct Clocks {
    pub wall: Arc<dyn Fn() -> SystemTime + Send + Sync>,
    pub mono: Arc<dyn Fn() -> Instant + Send + Sync>,
}

impl Default for Clocks {
    fn default() -> Clocks {
        Clocks {
            wall: Arc::new(SystemTime::now),
            mono: Arc::new(Instant::now),
        }
    }
}

/// The users file, reloaded when it changes on disk (`petra user` while petra runs).
///
/// Every authenticated request asks for the current users, so the file is looked at (one
/// `stat`) at most every `USERS_CHECK_EVERY`; in between a request takes only a read lock.
pub(crate) struct UsersCache {
    path: PathBuf,
    users: RwLock<Arc<Users>>,
    stamp: Mutex<Option<(SystemTime, u64)>>,
    origin: Instant,
    /// When the file was last looked at, in ms since `origin` (`u64::MAX`: never).
    checked_ms: AtomicU64,
}

/// How stale the users may be: a `petra user` change applies within this time.
pub(crate) const USERS_CHECK_EVERY: Duration = Duration::from_millis(100);

impl UsersCache {
    fn new(users: Users) -> UsersCache {
        let path = users.path().to_path_buf();
        UsersCache {
            stamp: Mutex::new(stamp(&path)),
            path,
            users: RwLock::new(Arc::new(users)),
            origin: Instant::now(),
            checked_ms: AtomicU64::new(u64::MAX),
        }
    }

    /// The current users, reloading the file first if it changed. A file that became invalid
    /// keeps the users loaded before (and says so in the log).
    pub(crate) fn current(&self) -> Arc<Users> {
        let now_ms = self.origin.elapsed().as_millis() as u64;
        let last = self.checked_ms.load(Ordering::Relaxed);
        let due =
            last == u64::MAX || now_ms.saturating_sub(last) >= USERS_CHECK_EVERY.as_millis() as u64;
        if due && let Ok(mut seen) = self.stamp.try_lock() {
            self.checked_ms.store(now_ms, Ordering::Relaxed);
            let now = stamp(&self.path);
            if now != *seen {
                *seen = now;
                match Users::load(&self.path) {
                    Ok(u) => *self.users.write().expect("users lock") = Arc::new(u),
                    Err(e) => tracing::warn!(error = %e,
                        "the users file changed but cannot be read; the users loaded before stay"),
                }
            }
        }
        self.users.read().expect("users lock").clone()
    }
}

fn stamp(path: &std::path::Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// Everything the handlers share.
pub struct Api {
    pub(crate) signals: watch::Sender<Arc<Signals>>,
    pub(crate) users: UsersCache,
    pub(crate) sessions: Sessions,
    pub(crate) limiter: LoginLimiter,
    pub(crate) audit: Option<Arc<AuditLog>>,
    pub(crate) stats: ArcSwap<StatsSource>,
    pub(crate) reload: mpsc::Sender<ReloadRequest>,
    pub(crate) readiness: Readiness,
    pub(crate) clocks: Clocks,
    /// The configuration file's name, the target of reload audit lines.
    pub(crate) config_name: String,
    /// Serialises API writes, so the old value in an audit line is the one replaced.
    pub(crate) write_lock: tokio::sync::Mutex<()>,
    /// Ends event streams at shutdown (they would hold graceful shutdown open).
    pub(crate) shutdown: CancellationToken,
    /// Changes for the event streams (see `events`).
    pub(crate) events: tokio::sync::broadcast::Sender<events::Batch>,
    /// The running drivers, for `/ready` and `/metrics`.
    pub(crate) drivers: ArcSwap<Vec<Arc<DriverStatus>>>,
    /// The running history's counters, for `/metrics`.
    pub(crate) history: std::sync::Mutex<Option<HistorySource>>,
    /// Where `GET /api/v1/history` reads from (`None`: no history is kept).
    pub(crate) history_query: std::sync::Mutex<Option<HistoryQuery>>,
    /// The alarm manager (`None`: the configuration has no alarms).
    pub(crate) alarms: std::sync::Mutex<Option<Arc<dyn AlarmSource>>>,
    /// Alarm transitions for the event streams, as the JSON of their `AlarmView` (see `events`).
    pub(crate) alarm_events: tokio::sync::broadcast::Sender<events::AlarmEvent>,
}

/// Reads the history's counters at scrape time.
pub type HistorySource = Arc<dyn Fn() -> crate::metrics::HistoryMetrics + Send + Sync>;

/// One stored sample as `GET /api/v1/history` serves it.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredSample {
    pub ts_ms: i64,
    /// Numbers, and bools as 0/1; `None` for string signals.
    pub value: Option<f64>,
    pub text: Option<String>,
    pub quality: &'static str,
}

/// Reads stored samples: `(signal, from_ms, to_ms, limit)`, `from` inclusive, `to` exclusive,
/// oldest first. Blocking (file or database IO): called on a blocking thread.
pub type HistoryQuery =
    Arc<dyn Fn(&str, i64, i64, usize) -> Result<Vec<StoredSample>, String> + Send + Sync>;

/// What [`Api::new`] needs.
pub struct ApiParts {
    pub signals: Signals,
    pub users: Users,
    pub token_ttl: Duration,
    pub audit: Option<Arc<AuditLog>>,
    pub stats: StatsSource,
    pub config_name: String,
    pub clocks: Clocks,
}

impl Api {
    /// The state, and the receiving end of reload requests for the runtime.
    pub fn new(parts: ApiParts) -> (Arc<Api>, mpsc::Receiver<ReloadRequest>) {
        // One reload at a time is all that makes sense; a second waits for room.
        let (tx, rx) = mpsc::channel(1);
        let readiness = Readiness::default();
        readiness.set("engine", ComponentState::Up);
        if parts.audit.is_some() {
            readiness.set("audit_log", ComponentState::Up);
        }
        let api = Api {
            signals: watch::Sender::new(Arc::new(parts.signals)),
            users: UsersCache::new(parts.users),
            sessions: Sessions::new(parts.token_ttl),
            limiter: LoginLimiter::default(),
            audit: parts.audit,
            stats: ArcSwap::from_pointee(parts.stats),
            reload: tx,
            readiness,
            clocks: parts.clocks,
            config_name: parts.config_name,
            write_lock: tokio::sync::Mutex::new(()),
            shutdown: CancellationToken::new(),
            events: events::channel(),
            drivers: ArcSwap::from_pointee(Vec::new()),
            history: std::sync::Mutex::new(None),
            history_query: std::sync::Mutex::new(None),
            alarms: std::sync::Mutex::new(None),
            alarm_events: events::alarm_channel(),
        };
        (Arc::new(api), rx)
    }

    /// Swaps in the signals of a reloaded plan (new bus or new metadata).
    pub fn set_signals(&self, signals: Signals) {
        self.signals.send_replace(Arc::new(signals));
    }

    /// The engine's statistics source (after a reload replaced the engine handle's).
    pub fn set_stats(&self, stats: StatsSource) {
        self.stats.store(Arc::new(stats));
    }

    /// The running drivers (after start-up or a reload restarted them).
    pub fn set_drivers(&self, drivers: Vec<Arc<DriverStatus>>) {
        self.drivers.store(Arc::new(drivers));
    }

    pub fn readiness(&self) -> &Readiness {
        &self.readiness
    }

    pub(crate) fn current(&self) -> Arc<Signals> {
        self.signals.borrow().clone()
    }

    /// Tells `/metrics` where the history's counters are (`None`: no history runs).
    pub fn set_history(&self, source: Option<HistorySource>) {
        *self.history.lock().unwrap_or_else(|e| e.into_inner()) = source;
    }

    /// Tells `GET /api/v1/history` where stored samples are (`None`: it answers 501).
    pub fn set_history_query(&self, query: Option<HistoryQuery>) {
        *self.history_query.lock().unwrap_or_else(|e| e.into_inner()) = query;
    }

    pub(crate) fn history_query(&self) -> Option<HistoryQuery> {
        self.history_query
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn history_metrics(&self) -> Option<crate::metrics::HistoryMetrics> {
        let source = self
            .history
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        source.map(|f| f())
    }

    /// Tells the alarm endpoints, the event stream and `/metrics` where the alarms are
    /// (`None`: the configuration has no `alarms` section — the list is empty, actions 404).
    pub fn set_alarms(&self, source: Option<Arc<dyn AlarmSource>>) {
        *self.alarms.lock().unwrap_or_else(|e| e.into_inner()) = source;
    }

    /// Sends `view` as `event: alarm` to every open event stream. The alarm manager calls it on
    /// every transition, including those an API action caused. Never blocks: the view is
    /// serialised once and broadcast (a stream that falls behind gets the whole list instead).
    pub fn publish_alarm(&self, view: AlarmView) {
        match serde_json::to_string(&view) {
            // No receiver is fine: nobody is listening.
            Ok(json) => drop(self.alarm_events.send(Arc::from(json))),
            Err(e) => tracing::error!(error = %e, alarm = %view.name, "cannot serialise an alarm"),
        }
    }

    pub(crate) fn alarm_source(&self) -> Option<Arc<dyn AlarmSource>> {
        self.alarms
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The KPIs with all four priorities (zeros when there are no alarms).
    pub(crate) fn alarm_kpis(&self) -> AlarmKpis {
        self.alarm_source()
            .map(|s| s.kpis())
            .unwrap_or_default()
            .normalized()
    }

    pub(crate) fn alarm_metrics(&self) -> crate::metrics::AlarmMetrics {
        let source = self.alarm_source();
        crate::metrics::AlarmMetrics {
            kpis: source.as_ref().map(|s| s.kpis()).unwrap_or_default(),
            notifications: source.map(|s| s.notifications()).unwrap_or_default(),
        }
    }

    /// A command from MQTT on topic `source`: applied when the signal's `write` list names
    /// `mqtt`, type- and range-checked and audit-logged like an API write; `Err` says why not.
    pub async fn mqtt_write(
        self: &Arc<Self>,
        signal: &str,
        value: &serde_json::Value,
        source: &str,
    ) -> Result<(), String> {
        handlers::mqtt_write(self, signal, value, source).await
    }
}

/// The routes of the API over `api`.
pub fn router(api: Arc<Api>) -> Router {
    use handlers::*;
    Router::new()
        .route("/api/v1/login", post(login))
        .route("/api/v1/signals", get(list_signals))
        .route("/api/v1/signals/{name}", get(get_signal).put(write_signal))
        .route("/api/v1/alarms", get(alarms::list_alarms))
        // No clash with `{name}/…` below (one segment more): an alarm named `kpis` keeps its
        // actions.
        .route("/api/v1/alarms/kpis", get(alarms::alarm_kpis))
        .route("/api/v1/alarms/journal", get(alarms::alarm_journal))
        .route("/api/v1/alarms/{name}/ack", post(alarms::ack_alarm))
        .route("/api/v1/alarms/{name}/shelve", post(alarms::shelve_alarm))
        .route(
            "/api/v1/alarms/{name}/unshelve",
            post(alarms::unshelve_alarm),
        )
        .route("/api/v1/alarms/{name}/reset", post(alarms::reset_alarm))
        .route("/api/v1/alarms/{name}/service", post(alarms::service_alarm))
        .route("/api/v1/history", get(history))
        .route("/api/v1/config/reload", post(reload))
        .route("/api/v1/events", get(events::events))
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/ready", get(ready))
        // The web HMI (docs/hmi.md): public assets; every data call they make needs a token.
        .route("/", get(hmi::index))
        .route("/assets/{file}", get(hmi::asset))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .with_state(api)
}

/// A bound listener, plain or TLS.
pub struct Listener {
    pub listener: std::net::TcpListener,
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// Serves the API on `listener` until `cancel` fires, then stops taking connections, ends the
/// event streams and waits (at most a few seconds) for open requests. Also runs the event hub
/// that fans the bus's change feed out to the event streams.
pub async fn serve(
    api: Arc<Api>,
    listener: Listener,
    cancel: CancellationToken,
) -> Result<(), ServerError> {
    let addr = listener
        .listener
        .local_addr()
        .map_err(|e| io_err("read the address of", e))?;
    let hub = tokio::spawn(events::hub(api.clone(), cancel.clone()));
    let handle = axum_server::Handle::new();
    let app = router(api.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let server = async {
        match listener.tls {
            Some(cfg) => {
                let cfg = axum_server::tls_rustls::RustlsConfig::from_config(cfg);
                axum_server::from_tcp_rustls(listener.listener, cfg)
                    .map_err(|e| io_err("listen on", e))?
                    .handle(handle.clone())
                    .serve(app)
                    .await
            }
            None => {
                axum_server::from_tcp(listener.listener)
                    .map_err(|e| io_err("listen on", e))?
                    .handle(handle.clone())
                    .serve(app)
                    .await
            }
        }
        .map_err(|e| io_err("serve on", e))
    };
    tracing::info!(%addr, "HTTP API listening");
    let stopper = {
        let (api, handle, cancel) = (api.clone(), handle.clone(), cancel.clone());
        tokio::spawn(async move {
            cancel.cancelled().await;
            api.shutdown.cancel();
            handle.graceful_shutdown(Some(GRACE));
        })
    };
    let result = server.await;
    if result.is_err() {
        // The server failed on its own: stop the helpers instead of waiting for `cancel`.
        stopper.abort();
        hub.abort();
    }
    let _ = stopper.await;
    let _ = hub.await;
    result
}

fn io_err(op: &'static str, source: std::io::Error) -> ServerError {
    ServerError::Io {
        op,
        path: PathBuf::from("the HTTP listener"),
        source,
    }
}

fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    tracing::error!("an API request handler panicked; please report this as a bug");
    use axum::response::IntoResponse;
    handlers::ApiError::new(
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "internal error; please report it",
    )
    .into_response()
}
