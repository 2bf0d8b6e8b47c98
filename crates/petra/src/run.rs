//! `petra run`: wires a compiled plan into running parts, reloads it, and shuts down cleanly.
//!
//! Start-up: load → validate → compile (the same path as `petra check`), build the bus, restore
//! retained values, start the scan thread, then the async side (status line, retained-value
//! saver; each a named span under a cancellation token).
//!
//! Reload, on SIGHUP or (with `--watch`) when the file changes: the file goes through the same
//! load → validate → compile off the scan thread; an invalid file is refused with its errors
//! and the running plan stays. A valid one is swapped in between two scans — blocks keep their
//! state, tasks their schedule (see `petra_engine::Engine::take_over`). When the set of
//! signals changed, the new plan gets a new bus carrying over the values of the signals that
//! stayed, and the async side is restarted on it.
//!
//! With a `server` section, start-up also prepares the HTTP API before the engine starts: the
//! first run creates user `admin` and prints its password once, the audit log is opened
//! (refused if its chain is broken), the listener is bound (TLS with `server.tls`). The server
//! runs as the task `http` for the whole run — it is not restarted by a reload; a reload hands
//! it the new signals and their metadata. `POST /api/v1/config/reload` reaches [`Live::serve`]
//! over a channel and gets the same reload as SIGHUP. A reload that changes the `server`
//! section is refused (the listener, TLS files, users file and audit log need a restart).
//!
//! Shutdown on SIGINT/SIGTERM: stop the HTTP API (no writes during shutdown), cancel and await
//! every other async task, stop the scan thread after one last scan, save retained values,
//! exit 0.

use crate::alarms::{AlarmManager, AlarmPlan, Outputs, assign_tasks};
use crate::{retain, rt};
use anyhow::{Context, anyhow};
use petra_config::{DriverPlan, EngineOptions, Plan, ServerPlan};
use petra_core::{
    Bus, Clock, LatestFeed, LosslessFeed, OverflowPolicy, SignalDef, SignalId, SystemClock,
};
use petra_drivers::DriverStatus;
use petra_engine::{Engine, EngineHandle, ReloadReport, Stats, StatsSource};
use petra_history::{History, HistoryConfig, HistoryMetrics, Pace};
use petra_modbus::ModbusConfig;
use petra_mqtt::MqttConfig;
use petra_s7::S7Config;
use petra_server::http::{Api, ApiParts, ReloadRefused, ReloadRequest, SignalMeta, Signals};
use petra_server::{AuditEvent, AuditLog, Users};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info_span};

/// Retained values are saved at most this often while running (and always at shutdown).
const RETAIN_SAVE_EVERY: Duration = Duration::from_secs(1);
/// How often `--watch` looks at the configuration file.
const WATCH_EVERY: Duration = Duration::from_secs(1);

pub struct Options {
    pub status_every: Duration,
    pub watch: bool,
}

pub fn run(path: &Path, opts: Options) -> anyhow::Result<()> {
    let plan = match petra_config::load(path, &petra_blocks::builtin()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return Err(anyhow!(
                "{} is not valid; nothing was started",
                path.display()
            ));
        }
    };
    if let Some(cpu) = plan.engine.cpu {
        // Before any thread is started: they all inherit the mask (the scan thread pins itself).
        rt::keep_off(cpu);
    }
    std::fs::create_dir_all(&plan.data_dir)
        .with_context(|| format!("cannot create data_dir {}", plan.data_dir.display()))?;
    let server = match &plan.server {
        Some(s) => Some(prepare_server(&plan, s)?),
        None => None,
    };

    let clock: Arc<dyn Clock> = Arc::new(SystemClock::new());
    let BusParts {
        bus,
        retain_feed,
        api_feed,
        retained,
        driver_feeds,
        history_feed,
    } = build_bus(&plan, &*clock);
    let meta = SignalMeta::from_plan(&plan);
    let driver_plans = plan.drivers;
    let history_cfg = plan.history;
    let history = match (&history_cfg, history_feed) {
        (Some(cfg), Some(feed)) => Some(start_history(cfg, &bus, feed)?),
        _ => None,
    };
    let server_plan = plan.server.clone();
    let retain_path = plan.data_dir.join("retained.json");
    let restored = retain::restore(&retain_path, &bus, &retained);
    let engine_opts = plan.engine;
    let (plant, data_dir) = (plan.plant.clone(), plan.data_dir.clone());
    let api_cell: Arc<std::sync::OnceLock<Arc<Api>>> = Arc::default();
    let history_cell: HistoryCell = Arc::default();
    let board = Arc::new(petra_mqtt::Board::default());
    let mut alarms = AlarmManager::start(
        alarm_plan(plan.alarms, plan.notify, &plan.program),
        bus.clone(),
        clock.clone(),
        &data_dir,
        Outputs {
            api: api_cell.clone(),
            board: Some(board.clone()),
            history: history_cell.clone(),
        },
    )
    .context("cannot start the alarms")?;
    let mut engine = Engine::new(plan.program, bus.clone(), clock)?;
    if let Some(hook) = alarms.take_hook() {
        engine.set_hook(hook);
    }
    // The bus and the API's metadata say all the run needs about the signals: not kept twice
    // (the declarations of 100,000 signals are 20 MB).
    drop(plan.signals);
    let handle = engine.spawn(rt::setup(engine_opts.rt_priority, engine_opts.cpu))?;
    let stats = handle.stats();
    tracing::info!(plant = %plant, signals = bus.len(), tasks = stats.tasks.len(),
        restored, "petra is running; stop with Ctrl-C or SIGTERM, reload with SIGHUP");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("petra-io")
        .enable_all()
        .build()?;
    let (api, reload_rx, listener) = match server {
        Some(prep) => {
            let (api, rx) = Api::new(ApiParts {
                signals: Signals::new(bus.clone(), meta, api_feed),
                users: prep.users,
                token_ttl: prep.token_ttl,
                audit: prep.audit,
                stats: handle.stats_source(),
                config_name: path.display().to_string(),
                clocks: Default::default(),
            });
            api.set_alarms(Some(alarms.source()));
            let _ = api_cell.set(api.clone());
            (Some(api), Some(rx), Some(prep.listener))
        }
        None => (None, None, None),
    };
    let mut live = Live {
        path: path.to_path_buf(),
        plant,
        data_dir,
        engine_opts,
        status_every: opts.status_every,
        retain_path,
        handle,
        bus,
        retained,
        io: None,
        server: server_plan,
        api: api.clone(),
        drivers: None,
        history: None,
        history_cfg: None,
        alarms,
        board,
        history_cell,
    };
    live.set_history(history_cfg, history);
    let result = runtime.block_on(async {
        live.start_io(retain_feed);
        live.start_drivers(driver_plans, driver_feeds);
        let failed = CancellationToken::new();
        let http = match (api, listener) {
            (Some(api), Some(listener)) => {
                let cancel = CancellationToken::new();
                let (c, f) = (cancel.clone(), failed.clone());
                let task = tokio::spawn(
                    async move {
                        let r = petra_server::http::serve(api, listener, c).await;
                        if r.is_err() {
                            f.cancel();
                        }
                        r
                    }
                    .instrument(info_span!("http")),
                );
                Some((cancel, task))
            }
            _ => None,
        };
        let stop = live.serve(opts.watch, reload_rx, &failed).await;
        if let Some((cancel, task)) = http {
            if let Some(api) = &live.api {
                api.readiness()
                    .set("engine", petra_server::http::ComponentState::Down);
            }
            cancel.cancel();
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!("the HTTP API failed: {e}"),
                Err(e) => tracing::error!("the HTTP API task failed: {e}"),
            }
        }
        let stop = stop?;
        tracing::info!(signal = stop, "stopping");
        live.stop_drivers().await?;
        live.stop_io().await
    });
    let api = live.api.clone();
    let Live {
        handle,
        bus,
        retained,
        retain_path,
        alarms,
        history,
        history_cell,
        ..
    } = live;
    let stopped = handle.stop();
    // After the last scan: its transitions are journalled (into the history too) and the
    // alarm state saved.
    alarms.stop();
    history_cell
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    if let Some(api) = &api {
        api.set_history(None);
    }
    // After the last scan and the alarms: their changes are recorded too.
    if let Some(h) = history {
        match Arc::try_unwrap(h) {
            Ok(h) => h.stop(),
            Err(_) => tracing::error!("the history is still in use; it stops with the process"),
        }
    }
    stopped?;
    if !retained.is_empty() {
        retain::save(&retain_path, &bus, &retained)
            .with_context(|| format!("cannot save retained values to {}", retain_path.display()))?;
    }
    result?;
    tracing::info!("stopped cleanly");
    Ok(())
}

/// What the HTTP API needs from start-up, prepared before the engine starts so that a
/// problem (a broken audit chain, a port in use, bad TLS files) stops `petra run` at once.
struct ServerPrep {
    users: Users,
    audit: Option<Arc<AuditLog>>,
    token_ttl: Duration,
    listener: petra_server::http::Listener,
}

fn prepare_server(plan: &Plan, server: &ServerPlan) -> anyhow::Result<ServerPrep> {
    let now = SystemTime::now();
    let created = petra_server::ensure_initial_admin(&server.users_file, &plan.data_dir, now)?;
    let audit = match &server.audit_log {
        Some(p) => Some(Arc::new(AuditLog::open(p).with_context(|| {
            "the HTTP API needs its audit log; nothing was started".to_string()
        })?)),
        None => None,
    };
    if let Some(admin) = &created {
        // Printed once, on stdout (not the log): this is the only time it is shown.
        println!(
            "petra: created user `{}` with password {}",
            admin.user,
            admin.password.expose()
        );
        println!(
            "petra: the password is also in {} (mode 0600); delete that file once the password \
             is stored elsewhere",
            admin.password_file.display()
        );
        if let Some(log) = &audit {
            let event = AuditEvent::new("petra", "startup", "user.add", admin.user.clone()).change(
                serde_json::Value::Null,
                serde_json::json!({"role": "admin"}),
            );
            log.append(&event, now)
                .context("cannot record the initial admin in the audit log")?;
        }
    }
    let users = Users::load(&server.users_file)?;
    let tls = match &server.tls {
        Some(t) => {
            petra_server::tls::install_crypto_provider();
            Some(petra_server::tls::server_config(&t.cert, &t.key)?)
        }
        None => None,
    };
    let listener = std::net::TcpListener::bind(server.listen).with_context(|| {
        format!(
            "cannot listen on {} for the HTTP API (`server.listen`); is another program using it?",
            server.listen
        )
    })?;
    Ok(ServerPrep {
        users,
        audit,
        token_ttl: server.token_ttl,
        listener: petra_server::http::Listener { listener, tls },
    })
}

/// The bus of a plan with the change feeds its consumers need.
struct BusParts {
    bus: Arc<Bus>,
    /// Retained signals, for the saver.
    retain_feed: Option<LatestFeed>,
    /// Every signal, for the HTTP API (with a `server` section).
    api_feed: Option<LatestFeed>,
    retained: Vec<SignalId>,
    /// For each driver of the plan: a feed of its output signals, if it has any.
    driver_feeds: Vec<Option<LatestFeed>>,
    /// Every change of the recorded signals, for the history sampler.
    history_feed: Option<LosslessFeed>,
}

fn build_bus(plan: &Plan, clock: &dyn Clock) -> BusParts {
    let retained = retained_ids(plan);
    let mut builder = plan.bus_builder();
    let retain_feed = (!retained.is_empty()).then(|| builder.latest_feed(Some(&retained)));
    let api_feed = plan.server.is_some().then(|| builder.latest_feed(None));
    let driver_feeds = plan
        .drivers
        .iter()
        .map(|d| {
            let outs = d.output_signals();
            (!outs.is_empty()).then(|| builder.latest_feed(Some(&outs)))
        })
        .collect();
    let history_feed = plan.history.as_ref().map(|h| {
        let ids: Vec<SignalId> = h.signals.iter().map(|(id, _, _)| *id).collect();
        // Kept changes until the sampler drains them (it runs continuously): a second of a
        // very busy plant. Beyond it the newest are dropped and counted.
        builder.lossless_feed(HISTORY_FEED, OverflowPolicy::DropNewest, Some(&ids))
    });
    BusParts {
        bus: builder.build(clock.wall()),
        retain_feed,
        api_feed,
        retained,
        driver_feeds,
        history_feed,
    }
}

const HISTORY_FEED: usize = 1 << 17;

/// Starts the history of `cfg` on `feed`: the WAL, the sampler and a thread per sink. On a
/// thread of its own, since a reload calls it from an async task and the ClickHouse sink's
/// blocking HTTP client must not be made there.
fn start_history(cfg: &HistoryConfig, bus: &Bus, feed: LosslessFeed) -> anyhow::Result<History> {
    std::thread::scope(|s| {
        s.spawn(|| start_history_here(cfg, bus, feed))
            .join()
            .map_err(|_| anyhow!("the history failed to start (a panic)"))?
    })
}

fn start_history_here(
    cfg: &HistoryConfig,
    bus: &Bus,
    feed: LosslessFeed,
) -> anyhow::Result<History> {
    // Paths relative to the working directory, as Petra was started, made absolute: the sinks
    // keep them for the whole run.
    let mut cfg = cfg.clone();
    cfg.wal.dir = std::path::absolute(&cfg.wal.dir)?;
    if let Some(p) = &mut cfg.parquet {
        p.dir = std::path::absolute(&p.dir)?;
    }
    let cfg = &cfg;
    let mut sinks: Vec<(Box<dyn petra_history::Sink>, Pace)> = Vec::new();
    if let Some(p) = &cfg.parquet {
        let pc = petra_history::parquet::ParquetConfig::from_settings(p, cfg.wal.max_size)
            .map_err(|e| anyhow!("history parquet: {e}"))?;
        let sink = petra_history::parquet::ParquetSink::open(pc)
            .map_err(|e| anyhow!("history parquet: {e}"))?;
        let pace = Pace {
            batch: 65_536,
            max_wait: Duration::ZERO,
            idle_flush: Duration::from_secs(30),
        };
        sinks.push((Box::new(sink), pace));
    }
    if let Some(c) = &cfg.clickhouse {
        let cc = petra_history::clickhouse::ClickHouseConfig::from_settings(c);
        let pace = Pace {
            batch: c.batch,
            max_wait: c.flush,
            idle_flush: Duration::from_secs(1),
        };
        sinks.push((
            Box::new(petra_history::clickhouse::ClickHouseSink::new(cc)),
            pace,
        ));
    }
    History::start(cfg, bus, feed, sinks).context("cannot start the history")
}

/// The running drivers: one task each, on one cancellation token.
struct DriverSet {
    plans: Vec<Running>,
    statuses: Vec<Arc<DriverStatus>>,
    cancel: CancellationToken,
    tasks: JoinSet<()>,
}

impl DriverSet {
    fn start(
        plans: Vec<DriverPlan>,
        bus: &Arc<Bus>,
        feeds: Vec<Option<LatestFeed>>,
        commands: Option<Arc<dyn petra_mqtt::Commands>>,
        board: &Arc<petra_mqtt::Board>,
    ) -> DriverSet {
        let cancel = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let mut statuses = Vec::new();
        let mut running = Vec::with_capacity(plans.len());
        for (plan, feed) in plans.into_iter().zip(feeds) {
            let status = Arc::new(DriverStatus::new(
                plan.name(),
                plan.kind(),
                plan.point_count(),
            ));
            statuses.push(status.clone());
            let span = info_span!("driver", name = %plan.name());
            match plan {
                DriverPlan::Modbus(cfg) => {
                    let cfg = Arc::new(cfg);
                    let driver = petra_modbus::Driver::new(cfg.clone(), bus.clone(), status, feed);
                    tasks.spawn(driver.run(cancel.clone()).instrument(span));
                    running.push(Running::Modbus(cfg));
                }
                DriverPlan::S7(cfg) => {
                    let driver = petra_s7::Driver::new(cfg.clone(), bus.clone(), status, feed);
                    tasks.spawn(driver.run(cancel.clone()).instrument(span));
                    running.push(Running::S7(cfg));
                }
                DriverPlan::Mqtt(cfg) => {
                    let driver = petra_mqtt::Driver::new(
                        cfg.clone(),
                        bus.clone(),
                        status,
                        feed,
                        commands.clone(),
                        Some(board.clone()),
                    );
                    tasks.spawn(driver.run(cancel.clone()).instrument(span));
                    running.push(Running::Mqtt(cfg));
                }
            }
        }
        DriverSet {
            plans: running,
            statuses,
            cancel,
            tasks,
        }
    }

    async fn stop(mut self) -> anyhow::Result<()> {
        self.cancel.cancel();
        while let Some(r) = self.tasks.join_next().await {
            r.context("a driver task failed")?;
        }
        Ok(())
    }
}

/// The configuration of a running driver, kept to compare with a reloaded one and to restart
/// the driver after a refused reload. A Modbus driver shares it rather than holding a copy:
/// 100,000 points are about 10 MB.
enum Running {
    Modbus(Arc<ModbusConfig>),
    S7(S7Config),
    Mqtt(MqttConfig),
}

impl Running {
    /// Whether the driver runs exactly `plan`.
    fn runs(&self, plan: &DriverPlan) -> bool {
        match (self, plan) {
            (Running::Modbus(a), DriverPlan::Modbus(b)) => **a == *b,
            (Running::S7(a), DriverPlan::S7(b)) => a == b,
            (Running::Mqtt(a), DriverPlan::Mqtt(b)) => a == b,
            _ => false,
        }
    }

    /// The plan back, once the driver has stopped (then nothing else shares it).
    fn into_plan(self) -> DriverPlan {
        match self {
            Running::Modbus(c) => DriverPlan::Modbus(Arc::unwrap_or_clone(c)),
            Running::S7(c) => DriverPlan::S7(c),
            Running::Mqtt(c) => DriverPlan::Mqtt(c),
        }
    }
}

/// MQTT commands take the HTTP API's write path: the signal's `write` list must name `mqtt`,
/// the value is type- and range-checked, and the write lands in the audit log.
struct ApiCommands(Arc<Api>);

impl petra_mqtt::Commands for ApiCommands {
    fn apply(
        &self,
        signal: String,
        value: serde_json::Value,
        source: String,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send + '_>> {
        Box::pin(async move { self.0.mqtt_write(&signal, &value, &source).await })
    }
}

/// A configuration file that does not load: its diagnostics, one per line.
#[derive(Debug)]
struct InvalidConfig {
    path: PathBuf,
    diagnostics: Vec<String>,
}

impl std::fmt::Display for InvalidConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} is not valid", self.path.display())
    }
}

impl std::error::Error for InvalidConfig {}

/// Receives the next reload request from the API; never, without an API.
async fn next_request(rx: &mut Option<mpsc::Receiver<ReloadRequest>>) -> Option<ReloadRequest> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

fn retained_ids(plan: &Plan) -> Vec<SignalId> {
    plan.signals
        .iter()
        .enumerate()
        .filter(|(_, s)| s.retain)
        .map(|(i, _)| SignalId::from_index(i))
        .collect()
}

/// The async side that depends on one bus.
struct Io {
    cancel: CancellationToken,
    tasks: JoinSet<()>,
}

/// What runs, and what a reload may change.
struct Live {
    path: PathBuf,
    plant: String,
    data_dir: PathBuf,
    engine_opts: EngineOptions,
    status_every: Duration,
    retain_path: PathBuf,
    handle: EngineHandle,
    bus: Arc<Bus>,
    retained: Vec<SignalId>,
    io: Option<Io>,
    /// The running `server` section; a reload may not change it.
    server: Option<ServerPlan>,
    /// The HTTP API, told about new signals after a reload.
    api: Option<Arc<Api>>,
    drivers: Option<DriverSet>,
    /// The running history and its configuration (a reload compares it).
    history: Option<Arc<History>>,
    history_cfg: Option<HistoryConfig>,
    alarms: AlarmManager,
    /// The alarm topics every MQTT driver publishes.
    board: Arc<petra_mqtt::Board>,
    /// The running history, for the alarm journal.
    history_cell: HistoryCell,
}

/// The running history as the alarm manager sees it (replaced by a reload).
type HistoryCell = Arc<std::sync::Mutex<Option<Arc<History>>>>;

impl Live {
    fn set_history(&mut self, cfg: Option<HistoryConfig>, history: Option<History>) {
        let history = history.map(Arc::new);
        if let Some(api) = &self.api {
            api.set_history(history.clone().map(|h| {
                Arc::new(move || history_metrics(&h.metrics())) as petra_server::http::HistorySource
            }));
            let cell = self.history_cell.clone();
            api.set_history_query(cfg.as_ref().and_then(|c| history_query(c, cell)));
        }
        *self.history_cell.lock().unwrap_or_else(|e| e.into_inner()) = history.clone();
        self.history = history;
        self.history_cfg = cfg;
    }

    /// The running history, no longer shown by the API.
    fn take_history(&mut self) -> Option<History> {
        if let Some(api) = &self.api {
            api.set_history(None);
        }
        self.history_cell
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let h = self.history.take()?;
        match Arc::try_unwrap(h) {
            Ok(h) => Some(h),
            Err(_) => {
                tracing::error!("the history is still in use; it stops with the process");
                None
            }
        }
    }

    /// Stops the history: everything sampled is synced to the WAL; sinks store what they can.
    fn stop_history(&mut self) {
        if let Some(h) = self.take_history() {
            h.stop();
        }
    }

    fn start_io(&mut self, retain_feed: Option<LatestFeed>) {
        let cancel = CancellationToken::new();
        let mut tasks = JoinSet::new();
        if !self.status_every.is_zero() {
            let (bus, stats) = (self.bus.clone(), self.handle.stats_source());
            tasks.spawn(
                status_line(bus, stats, self.status_every, cancel.clone())
                    .instrument(info_span!("status-line")),
            );
        }
        if let Some(feed) = retain_feed {
            let notify = Arc::new(Notify::new());
            let n = notify.clone();
            feed.set_waker(Arc::new(move || n.notify_one()));
            let saver = RetainSaver {
                bus: self.bus.clone(),
                ids: self.retained.clone(),
                path: self.retain_path.clone(),
            };
            tasks.spawn(
                saver
                    .run(feed, notify, cancel.clone())
                    .instrument(info_span!("retain-saver")),
            );
        }
        self.io = Some(Io { cancel, tasks });
    }

    fn start_drivers(&mut self, plans: Vec<DriverPlan>, feeds: Vec<Option<LatestFeed>>) {
        let commands = self
            .api
            .clone()
            .map(|api| Arc::new(ApiCommands(api)) as Arc<dyn petra_mqtt::Commands>);
        let set = DriverSet::start(plans, &self.bus, feeds, commands, &self.board);
        if let Some(api) = &self.api {
            api.set_drivers(set.statuses.clone());
        }
        self.drivers = Some(set);
    }

    async fn stop_drivers(&mut self) -> anyhow::Result<()> {
        match self.drivers.take() {
            Some(d) => d.stop().await,
            None => Ok(()),
        }
    }

    async fn stop_io(&mut self) -> anyhow::Result<()> {
        if let Some(mut io) = self.io.take() {
            io.cancel.cancel();
            while let Some(r) = io.tasks.join_next().await {
                r.context("a background task failed")?;
            }
        }
        Ok(())
    }

    /// Runs until SIGINT/SIGTERM, reloading on SIGHUP and (with `watch`) on file changes.
    async fn serve(
        &mut self,
        watch: bool,
        mut reload_rx: Option<mpsc::Receiver<ReloadRequest>>,
        http_failed: &CancellationToken,
    ) -> anyhow::Result<&'static str> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
        let mut hup = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
        let mut tick = tokio::time::interval(WATCH_EVERY);
        let mut seen = file_stamp(&self.path);
        loop {
            tokio::select! {
                _ = term.recv() => return Ok("SIGTERM"),
                r = tokio::signal::ctrl_c() => {
                    r.context("cannot listen for Ctrl-C")?;
                    return Ok("SIGINT");
                }
                _ = http_failed.cancelled() => {
                    return Err(anyhow!("the HTTP API stopped; petra stops too"));
                }
                _ = hup.recv() => {
                    seen = file_stamp(&self.path);
                    let _ = self.reload("SIGHUP").await;
                }
                Some(req) = next_request(&mut reload_rx) => {
                    seen = file_stamp(&self.path);
                    let outcome = self.reload("API").await.map_err(|e| match e.downcast_ref::<InvalidConfig>() {
                        Some(inv) => ReloadRefused {
                            message: format!(
                                "{} has {} error(s); the running configuration stays",
                                inv.path.display(),
                                inv.diagnostics.len()
                            ),
                            diagnostics: inv.diagnostics.clone(),
                        },
                        None => ReloadRefused {
                            message: format!("{e:#}; the running configuration stays"),
                            diagnostics: Vec::new(),
                        },
                    });
                    // The requester may have gone (client disconnected): nothing to tell.
                    let _ = req.reply.send(outcome);
                }
                _ = tick.tick(), if watch => {
                    let now = file_stamp(&self.path);
                    if now != seen {
                        seen = now;
                        let _ = self.reload("file changed").await;
                    }
                }
            }
        }
    }

    /// Validates, compiles and swaps in the configuration file; logs the outcome. A refused
    /// reload leaves everything as it was.
    async fn reload(&mut self, why: &str) -> anyhow::Result<ReloadReport> {
        let result = self.try_reload().await;
        match &result {
            Ok(r) => tracing::info!(
                trigger = why,
                kept = r.kept,
                fresh = r.fresh,
                dropped = r.dropped,
                signals_copied = r.signals_copied,
                "configuration reloaded; blocks kept their state"
            ),
            Err(e) => tracing::error!(
                trigger = why,
                "reload refused, the running configuration stays: {e:#}"
            ),
        }
        result
    }

    async fn try_reload(&mut self) -> anyhow::Result<ReloadReport> {
        let mut plan = match petra_config::load(&self.path, &petra_blocks::builtin()) {
            Ok(p) => p,
            Err(e) => {
                let diagnostics: Vec<String> = e.to_string().lines().map(String::from).collect();
                for line in &diagnostics {
                    tracing::error!("{line}");
                }
                return Err(InvalidConfig {
                    path: self.path.clone(),
                    diagnostics,
                }
                .into());
            }
        };
        if plan.server != self.server {
            return Err(anyhow!(
                "the `server` section changed (or was added or removed); that needs a restart of petra"
            ));
        }
        if plan.plant != self.plant || plan.data_dir != self.data_dir {
            return Err(anyhow!(
                "`plant` or `data_dir` changed; that needs a restart of petra"
            ));
        }
        if plan.engine != self.engine_opts {
            tracing::warn!("`engine` options changed; they apply at the next start");
        }
        let clock = self.handle.clock();
        let retained = retained_ids(&plan);
        let defs: Vec<SignalDef> = plan.signals.iter().map(|s| s.def.clone()).collect();
        // Drivers' output feeds belong to the bus: changed drivers need a new bus (and restart).
        let running_drivers = self
            .drivers
            .as_ref()
            .map(|d| d.plans.as_slice())
            .unwrap_or(&[]);
        let same_drivers = plan.drivers.len() == running_drivers.len()
            && plan
                .drivers
                .iter()
                .zip(running_drivers)
                .all(|(p, r)| r.runs(p));
        // The history's feed belongs to the bus too.
        let same_bus = defs == self.bus.defs()
            && retained == self.retained
            && same_drivers
            && plan.history == self.history_cfg;
        let meta = SignalMeta::from_plan(&plan);
        let alarms = alarm_plan(
            std::mem::take(&mut plan.alarms),
            plan.notify.take(),
            &plan.program,
        );
        if same_bus {
            let mut engine = Engine::new(plan.program, self.bus.clone(), clock)?;
            if let Some(hook) = self.alarms.reload(alarms, self.bus.clone())? {
                engine.set_hook(hook);
            }
            let report = self.handle.reload(engine)?;
            if let Some(api) = &self.api {
                // Same bus: the API keeps its change feed; `min`/`max`/`write` may be new.
                api.set_signals(Signals::new(self.bus.clone(), meta, None));
            }
            return Ok(report);
        }
        let BusParts {
            bus,
            retain_feed: feed,
            api_feed,
            retained,
            driver_feeds,
            history_feed,
        } = build_bus(&plan, &*clock);
        let driver_plans = plan.drivers;
        let history_cfg = plan.history;
        // Signals that stayed keep their live values (copied during the swap); new ones start
        // from their initial value, retained or not — the retained file only holds signals
        // of the running plan (it is rewritten on every change).
        let mut engine = Engine::new(plan.program, bus.clone(), clock)?;
        if let Some(hook) = self.alarms.reload(alarms, bus.clone())? {
            engine.set_hook(hook);
        }
        self.stop_io().await?;
        let old_drivers = self
            .drivers
            .as_mut()
            .map(|d| std::mem::take(&mut d.plans))
            .unwrap_or_default();
        self.stop_drivers().await?;
        let old_history = self.history_cfg.take();
        self.stop_history();
        let report = self.handle.reload(engine);
        // Whatever happened, the async side runs again on the bus the engine now uses.
        if report.is_ok() {
            self.bus = bus;
            self.retained = retained;
            if let Err(e) = retain::save(&self.retain_path, &self.bus, &self.retained) {
                tracing::warn!(error = %e, "cannot save retained values after the reload");
            }
            self.start_io(feed);
            self.start_drivers(driver_plans, driver_feeds);
            let history = match (&history_cfg, history_feed) {
                (Some(cfg), Some(f)) => match start_history(cfg, &self.bus, f) {
                    Ok(h) => Some(h),
                    Err(e) => {
                        tracing::error!("{e:#}; history is not recorded until the next reload");
                        None
                    }
                },
                _ => None,
            };
            self.set_history(history_cfg, history);
            if let Some(api) = &self.api {
                api.set_signals(Signals::new(self.bus.clone(), meta, api_feed));
            }
        } else {
            // The engine still runs on the old bus: so do the drivers, without output feeds
            // (those were taken by the stopped set; outputs resume with the next good reload).
            self.start_io(None);
            if old_history.is_some() {
                tracing::warn!(
                    "the history stays stopped until a good reload (its feed belonged to the refused bus)"
                );
            }
            let feeds = old_drivers.iter().map(|_| None).collect();
            let old_drivers = old_drivers.into_iter().map(Running::into_plan).collect();
            self.start_drivers(old_drivers, feeds);
        }
        Ok(report?)
    }
}

/// The alarm manager's part of a plan, with each alarm's task decided.
fn alarm_plan(
    defs: Vec<petra_alarms::AlarmDef>,
    notify: Option<petra_notify::NotifyConfig>,
    program: &petra_engine::Program,
) -> AlarmPlan {
    AlarmPlan {
        tasks: assign_tasks(&defs, program),
        defs,
        notify,
    }
}

/// Where `GET /api/v1/history` reads: the Parquet files, or ClickHouse when there are none.
fn history_query(
    cfg: &HistoryConfig,
    running: HistoryCell,
) -> Option<petra_server::http::HistoryQuery> {
    use petra_server::http::StoredSample;
    let convert = |rows: Vec<petra_history::Row>| -> Vec<StoredSample> {
        rows.into_iter()
            .map(|r| StoredSample {
                ts_ms: r.ts_ms,
                value: r.value,
                text: r.text.map(|t| t.to_string()),
                quality: r.quality,
            })
            .collect()
    };
    if let Some(p) = &cfg.parquet {
        let dir = std::path::absolute(&p.dir).unwrap_or_else(|_| p.dir.clone());
        return Some(Arc::new(move |signal, from, to, limit| {
            // What the Parquet sink has not stored yet (its open file), read from the WAL
            // first: a file completing meanwhile then has its rows in both reads (deduplicated
            // by WAL position), never in neither.
            let history = running.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let tail = match history {
                Some(h) => h
                    .unstored("parquet", signal, from, to, limit)
                    .map_err(|e| e.to_string())?,
                None => Vec::new(),
            };
            let mut rows = petra_history::parquet::query(&dir, signal, from, to, limit)
                .map_err(|e| e.to_string())?;
            rows.extend(tail);
            rows.sort_by_key(|r| (r.ts_ms, r.seq));
            rows.dedup_by_key(|r| r.seq);
            rows.truncate(limit);
            Ok(convert(rows))
        }));
    }
    let c = petra_history::clickhouse::ClickHouseConfig::from_settings(cfg.clickhouse.as_ref()?);
    // A client per query, made and dropped on the blocking thread the API runs queries on
    // (reqwest's blocking client must not live in an async context).
    Some(Arc::new(move |signal, from, to, limit| {
        petra_history::clickhouse::ClickHouseSink::new(c.clone())
            .query(signal, from, to, limit)
            .map(convert)
            .map_err(|e| e.to_string())
    }))
}

fn history_metrics(m: &HistoryMetrics) -> petra_server::metrics::HistoryMetrics {
    petra_server::metrics::HistoryMetrics {
        wal_bytes: m.wal_bytes,
        wal_dropped: m.wal_dropped,
        sinks: m
            .sinks
            .iter()
            .map(
                |(name, ok, failed, lag)| petra_server::metrics::HistorySink {
                    name: name.clone(),
                    ok: *ok,
                    failed: *failed,
                    lag: *lag,
                },
            )
            .collect(),
    }
}

/// Modification time and length: what `--watch` compares.
fn file_stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// The console status line, until the HTTP API exists to ask.
async fn status_line(
    bus: Arc<Bus>,
    stats: StatsSource,
    every: Duration,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => println!("{}", status(&bus, &stats.get())),
        }
    }
}

/// `scans 1234 overruns 0 · main scan p99 12µs jitter p99 40µs · tank.level=4.52 m …`
pub fn status(bus: &Bus, stats: &Stats) -> String {
    let mut line = String::new();
    let scans: u64 = stats.tasks.iter().map(|t| t.scans()).sum();
    let overruns: u64 = stats.tasks.iter().map(|t| t.overruns()).sum();
    line.push_str(&format!("scans {scans} overruns {overruns}"));
    for t in &stats.tasks {
        let s = t.snapshot();
        line.push_str(&format!(
            " · {} scan p99 {}µs jitter p99 {}µs",
            s.name,
            s.scan.p99 / 1000,
            s.jitter.p99 / 1000
        ));
    }
    line.push_str(" ·");
    for (i, def) in bus.defs().iter().enumerate().take(6) {
        if let Some(s) = bus.read(SignalId::from_index(i)) {
            let value = match s.value {
                petra_core::Value::Float(f) => format!("{f:.2}"),
                v => v.to_string(),
            };
            let unit = def
                .unit
                .as_deref()
                .map(|u| format!(" {u}"))
                .unwrap_or_default();
            let q = if s.quality.is_good() {
                String::new()
            } else {
                format!(" [{}]", s.quality)
            };
            line.push_str(&format!(" {}={value}{unit}{q}", def.name));
        }
    }
    line
}

struct RetainSaver {
    bus: Arc<Bus>,
    ids: Vec<SignalId>,
    path: PathBuf,
}

impl RetainSaver {
    /// Saves retained values after they change, at most once per `RETAIN_SAVE_EVERY`.
    async fn run(self, feed: LatestFeed, notify: Arc<Notify>, cancel: CancellationToken) {
        let mut changed = Vec::new();
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = notify.notified() => {}
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(RETAIN_SAVE_EVERY) => {}
            }
            changed.clear();
            if feed.drain(&mut changed) == 0 {
                continue;
            }
            let (bus, ids, path) = (self.bus.clone(), self.ids.clone(), self.path.clone());
            let saved = tokio::task::spawn_blocking(move || retain::save(&path, &bus, &ids)).await;
            match saved {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(path = %self.path.display(), error = %e,
                    "cannot save retained values; will retry on the next change"),
                Err(e) => tracing::warn!(error = %e, "retained-value saver failed"),
            }
        }
    }
}
