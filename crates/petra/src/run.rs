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
//! Shutdown on SIGINT/SIGTERM: cancel and await every async task, stop the scan thread after
//! one last scan, save retained values, exit 0.

use crate::{retain, rt};
use anyhow::{Context, anyhow};
use petra_config::{EngineOptions, Plan};
use petra_core::{Bus, Clock, LatestFeed, SignalDef, SignalId, SystemClock};
use petra_engine::{Engine, EngineHandle, ReloadReport, Stats, StatsSource};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::Notify;
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
    refuse_server(&plan)?;
    std::fs::create_dir_all(&plan.data_dir)
        .with_context(|| format!("cannot create data_dir {}", plan.data_dir.display()))?;

    let clock: Arc<dyn Clock> = Arc::new(SystemClock::new());
    let (bus, retain_feed, retained) = build_bus(&plan, &*clock);
    let retain_path = plan.data_dir.join("retained.json");
    let restored = retain::restore(&retain_path, &bus, &retained);
    let engine_opts = plan.engine;
    let (plant, data_dir) = (plan.plant.clone(), plan.data_dir.clone());
    let engine = Engine::new(plan.program, bus.clone(), clock)?;
    let handle = engine.spawn(rt::setup(engine_opts.rt_priority, engine_opts.cpu))?;
    let stats = handle.stats();
    tracing::info!(plant = %plant, signals = bus.len(), tasks = stats.tasks.len(),
        restored, "petra is running; stop with Ctrl-C or SIGTERM, reload with SIGHUP");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("petra-io")
        .enable_all()
        .build()?;
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
    };
    let result = runtime.block_on(async {
        live.start_io(retain_feed);
        let stop = live.serve(opts.watch).await?;
        tracing::info!(signal = stop, "stopping");
        live.stop_io().await
    });
    let Live {
        handle,
        bus,
        retained,
        retain_path,
        ..
    } = live;
    handle.stop()?;
    if !retained.is_empty() {
        retain::save(&retain_path, &bus, &retained)
            .with_context(|| format!("cannot save retained values to {}", retain_path.display()))?;
    }
    result?;
    tracing::info!("stopped cleanly");
    Ok(())
}

/// The `server` section is accepted by `petra check` and `petra user`, but `petra run` does not
/// serve HTTP yet: refusing is better than running without the API the file asks for.
fn refuse_server(plan: &Plan) -> anyhow::Result<()> {
    if plan.server.is_some() {
        return Err(anyhow!(
            "the `server` section needs the HTTP API, which is not in this version of petra yet; \
             remove it to run (`petra user` and `petra audit verify` already work with it)"
        ));
    }
    Ok(())
}

/// The bus of a plan, with the retained-value feed and the retained ids.
fn build_bus(plan: &Plan, clock: &dyn Clock) -> (Arc<Bus>, Option<LatestFeed>, Vec<SignalId>) {
    let retained = retained_ids(plan);
    let mut builder = plan.bus_builder();
    let feed = (!retained.is_empty()).then(|| builder.latest_feed(Some(&retained)));
    (builder.build(clock.wall()), feed, retained)
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
}

impl Live {
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
    async fn serve(&mut self, watch: bool) -> anyhow::Result<&'static str> {
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
                _ = hup.recv() => {
                    seen = file_stamp(&self.path);
                    self.reload("SIGHUP").await;
                }
                _ = tick.tick(), if watch => {
                    let now = file_stamp(&self.path);
                    if now != seen {
                        seen = now;
                        self.reload("file changed").await;
                    }
                }
            }
        }
    }

    /// Validates, compiles and swaps in the configuration file; logs the outcome. A refused
    /// reload leaves everything as it was.
    async fn reload(&mut self, why: &str) {
        match self.try_reload().await {
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
    }

    async fn try_reload(&mut self) -> anyhow::Result<ReloadReport> {
        let plan = match petra_config::load(&self.path, &petra_blocks::builtin()) {
            Ok(p) => p,
            Err(e) => {
                for line in e.to_string().lines() {
                    tracing::error!("{line}");
                }
                return Err(anyhow!("{} is not valid", self.path.display()));
            }
        };
        refuse_server(&plan)?;
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
        let same_bus = defs == self.bus.defs() && retained == self.retained;
        if same_bus {
            let engine = Engine::new(plan.program, self.bus.clone(), clock)?;
            return Ok(self.handle.reload(engine)?);
        }
        let (bus, feed, retained) = build_bus(&plan, &*clock);
        // Retained signals that are new to this plan come from the file; the others keep
        // their live values, copied over during the swap.
        let newcomers: Vec<SignalId> = retained
            .iter()
            .copied()
            .filter(|id| {
                let name = &plan.signals[id.index()].def.name;
                self.bus.id(name).is_none()
            })
            .collect();
        retain::restore(&self.retain_path, &bus, &newcomers);
        let engine = Engine::new(plan.program, bus.clone(), clock)?;
        self.stop_io().await?;
        let report = self.handle.reload(engine);
        // Whatever happened, the async side runs again on the bus the engine now uses.
        if report.is_ok() {
            self.bus = bus;
            self.retained = retained;
            if let Err(e) = retain::save(&self.retain_path, &self.bus, &self.retained) {
                tracing::warn!(error = %e, "cannot save retained values after the reload");
            }
            self.start_io(feed);
        } else {
            self.start_io(None);
        }
        Ok(report?)
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
