//! `petra run`: wires a compiled plan into running parts and shuts them down cleanly.
//!
//! Start-up: load → validate → compile (the same path as `petra check`), build the bus, restore
//! retained values, start the scan thread, then the async side (status line, retained-value
//! saver; each a named span with the shared cancellation token). Shutdown on SIGINT/SIGTERM: cancel and await every async task, stop the scan thread
//! after one last scan, save retained values, exit 0.

use crate::{retain, rt};
use anyhow::{Context, anyhow};
use petra_core::{Bus, Clock, SignalId, SystemClock};
use petra_engine::{Engine, Stats};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info_span};

/// Retained values are saved at most this often while running (and always at shutdown).
const RETAIN_SAVE_EVERY: Duration = Duration::from_secs(1);

pub fn run(path: &Path, status_every: Duration) -> anyhow::Result<()> {
    let registry = petra_blocks::builtin();
    let plan = match petra_config::load(path, &registry) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return Err(anyhow!(
                "{} is not valid; nothing was started",
                path.display()
            ));
        }
    };
    std::fs::create_dir_all(&plan.data_dir)
        .with_context(|| format!("cannot create data_dir {}", plan.data_dir.display()))?;

    let retained: Vec<SignalId> = plan
        .signals
        .iter()
        .enumerate()
        .filter(|(_, s)| s.retain)
        .map(|(i, _)| SignalId::from_index(i))
        .collect();
    let mut builder = plan.bus_builder();
    let retain_feed = (!retained.is_empty()).then(|| builder.latest_feed(Some(&retained)));
    let clock = Arc::new(SystemClock::new());
    let bus = builder.build(clock.wall());
    let retain_path = plan.data_dir.join("retained.json");
    let restored = retain::restore(&retain_path, &bus, &retained);

    let engine = Engine::new(plan.program, bus.clone(), clock.clone())?;
    let stats = engine.stats();
    let handle = engine.spawn(rt::setup(plan.engine.rt_priority, plan.engine.cpu))?;
    tracing::info!(plant = %plan.plant, signals = bus.len(), tasks = stats.tasks.len(),
        restored, "petra is running; stop with Ctrl-C or SIGTERM");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("petra-io")
        .enable_all()
        .build()?;
    let cancel = CancellationToken::new();
    let result = runtime.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        if !status_every.is_zero() {
            let (bus, stats, cancel) = (bus.clone(), stats.clone(), cancel.clone());
            tasks.spawn(
                status_line(bus, stats, status_every, cancel).instrument(info_span!("status-line")),
            );
        }
        if let Some(feed) = retain_feed {
            let notify = Arc::new(Notify::new());
            let n = notify.clone();
            feed.set_waker(Arc::new(move || n.notify_one()));
            let ctx = RetainSaver {
                bus: bus.clone(),
                ids: retained.clone(),
                path: retain_path.clone(),
            };
            tasks.spawn(
                ctx.run(feed, notify, cancel.clone())
                    .instrument(info_span!("retain-saver")),
            );
        }
        let stop = wait_for_stop().await;
        tracing::info!(signal = stop, "stopping");
        cancel.cancel();
        while let Some(r) = tasks.join_next().await {
            r.context("a background task failed")?;
        }
        anyhow::Ok(())
    });
    handle.stop()?;
    if !retained.is_empty() {
        retain::save(&retain_path, &bus, &retained)
            .with_context(|| format!("cannot save retained values to {}", retain_path.display()))?;
    }
    result?;
    tracing::info!("stopped cleanly");
    Ok(())
}

async fn wait_for_stop() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops petra");
            let _ = tokio::signal::ctrl_c().await;
            return "SIGINT";
        }
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = tokio::signal::ctrl_c() => "SIGINT",
    }
}

/// The console status line, until the HTTP API exists to ask.
async fn status_line(bus: Arc<Bus>, stats: Arc<Stats>, every: Duration, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => println!("{}", status(&bus, &stats)),
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
    async fn run(
        self,
        feed: petra_core::LatestFeed,
        notify: Arc<Notify>,
        cancel: CancellationToken,
    ) {
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
