//! The engine on its own OS thread: start, reload between two scans, stop.
//!
//! [`Engine::spawn`] moves an engine onto the `petra-scan` thread. A `petra-watchdog` thread
//! watches for hung scans (see the scan module). [`EngineHandle::reload`] hands the thread a
//! new, already compiled engine; the thread swaps it in between two scans, where the new engine
//! takes over state, schedule and statistics from the running one ([`Engine::take_over`]). The
//! old engine is sent back and dropped on the caller's thread, so freeing thousands of blocks
//! never delays a scan.

use crate::reload::TakeOver;
use crate::scan::{IDLE, MAX_SLEEP, Watch, drive_safe};
use crate::{Engine, EngineError, ReloadReport, Stats};
use arc_swap::ArcSwap;
use petra_core::{Bus, Clock, MonoTime};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

/// Monitor tick when no task has a watchdog (it still runs, so a reload can add one).
const IDLE_TICK: Duration = Duration::from_millis(50);

struct Swap {
    engine: Box<Engine>,
    plan: TakeOver,
    reply: mpsc::SyncSender<(ReloadReport, Box<Engine>)>,
}

impl Engine {
    /// Moves the engine onto its dedicated OS thread (`petra-scan`). `on_start` runs first on
    /// that thread (the binary uses it for real-time priority and CPU pinning). Tasks start at
    /// the moment the thread starts. A `petra-watchdog` thread monitors hung scans.
    pub fn spawn(
        mut self,
        on_start: Box<dyn FnOnce() + Send>,
    ) -> Result<EngineHandle, EngineError> {
        let stop = Arc::new(AtomicBool::new(false));
        let current = Arc::new(ArcSwap::new(self.watch.clone()));
        let clock = self.clock.clone();
        let monitor = spawn_monitor(current.clone(), clock.clone(), stop.clone())?;
        let (tx, rx) = mpsc::channel::<Swap>();
        let (thread_stop, cell) = (stop.clone(), current.clone());
        let join = std::thread::Builder::new()
            .name("petra-scan".into())
            .spawn(move || {
                on_start();
                let start = self.clock.mono();
                self.restart_at(start);
                while !thread_stop.load(Ordering::Acquire) {
                    if let Ok(swap) = rx.try_recv() {
                        let mut next = swap.engine;
                        let started = self.clock.mono();
                        let mut report = next.take_over_planned(&mut self, swap.plan);
                        report.swap = self.clock.mono().saturating_sub(started);
                        cell.store(next.watch.clone());
                        let old = std::mem::replace(&mut self, *next);
                        // If the caller gave up waiting, the old engine is dropped here.
                        let _ = swap.reply.send((report, Box::new(old)));
                    }
                    let deadline = self.run_due();
                    let now = self.clock.mono();
                    if deadline > now {
                        let wake = deadline.min(now.saturating_add(MAX_SLEEP));
                        // Wake a little early to bring the next scan's state into the cache
                        // (`Engine::warm`), then wait out the rest.
                        let ahead = self.warm_ahead.as_nanos() as u64;
                        let early = wake.nanos().saturating_sub(ahead);
                        if ahead > 0 && wake == deadline && early > now.nanos() {
                            self.clock.sleep_until(MonoTime::from_nanos(early));
                            self.warm();
                        }
                        self.clock.sleep_until(wake);
                    }
                }
                self.run_final();
            })
            .map_err(|e| EngineError::Thread(e.to_string()))?;
        Ok(EngineHandle {
            stop,
            join: Some(join),
            monitor: Some(monitor),
            current,
            clock,
            swaps: tx,
        })
    }
}

fn spawn_monitor(
    current: Arc<ArcSwap<Watch>>,
    clock: Arc<dyn Clock>,
    stop: Arc<AtomicBool>,
) -> Result<JoinHandle<()>, EngineError> {
    std::thread::Builder::new()
        .name("petra-watchdog".into())
        .spawn(move || {
            while !stop.load(Ordering::Acquire) {
                let watch = current.load_full();
                let tick = match watch.limits.iter().flatten().min() {
                    Some(shortest) => (*shortest / 10).clamp(Duration::from_micros(500), IDLE_TICK),
                    None => IDLE_TICK,
                };
                std::thread::sleep(tick);
                check(&watch, &*clock);
            }
        })
        .map_err(|e| EngineError::Thread(e.to_string()))
}

/// Trips the running task if it has been running longer than its watchdog.
fn check(watch: &Watch, clock: &dyn Clock) {
    let k = watch.current.load(Ordering::Acquire);
    if k == IDLE {
        return;
    }
    let Some(limit) = watch.limits.get(k).copied().flatten() else {
        return;
    };
    let started = MonoTime::from_nanos(watch.started.load(Ordering::Relaxed));
    if clock.mono().saturating_sub(started) > limit
        && watch.current.load(Ordering::Acquire) == k
        && !watch.tripped[k].swap(true, Ordering::AcqRel)
    {
        drive_safe(&watch.bus, &watch.safe[k], clock.wall());
        let stats = &watch.stats.tasks[k];
        stats.watchdog_trips.fetch_add(1, Ordering::Relaxed);
        tracing::error!(task = %stats.name,
            "task is hung past its watchdog; outputs driven to their safe values");
    }
}

/// The running engine on its thread.
pub struct EngineHandle {
    stop: Arc<AtomicBool>,
    join: Option<JoinHandle<()>>,
    monitor: Option<JoinHandle<()>>,
    current: Arc<ArcSwap<Watch>>,
    clock: Arc<dyn Clock>,
    swaps: mpsc::Sender<Swap>,
}

/// Where to read the running engine's statistics from, across reloads. Cheap to clone.
#[derive(Clone)]
pub struct StatsSource(Arc<ArcSwap<Watch>>);

impl StatsSource {
    /// Statistics of the engine running now.
    pub fn get(&self) -> Arc<Stats> {
        self.0.load().stats.clone()
    }
}

impl EngineHandle {
    /// Statistics of the engine running now (a reload replaces them, carrying the counts).
    pub fn stats(&self) -> Arc<Stats> {
        self.current.load().stats.clone()
    }

    /// A handle on the statistics that follows reloads, for reporters that outlive one engine.
    pub fn stats_source(&self) -> StatsSource {
        StatsSource(self.current.clone())
    }

    /// The bus the running engine reads and writes.
    pub fn bus(&self) -> Arc<Bus> {
        self.current.load().bus.clone()
    }

    /// The running engine's clock; build a replacement engine with it.
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    /// Swaps in `engine` between two scans and waits until it runs (see
    /// [`Engine::take_over`]). The replaced engine is dropped on this thread.
    pub fn reload(&self, engine: Engine) -> Result<ReloadReport, EngineError> {
        let (reply, done) = mpsc::sync_channel(1);
        let running = self.current.load_full();
        let plan = engine.plan_take_over(&running.layout, &running.bus);
        self.swaps
            .send(Swap {
                engine: Box::new(engine),
                plan,
                reply,
            })
            .map_err(|_| EngineError::Thread("the scan thread is not running".into()))?;
        let (report, old) = done
            .recv()
            .map_err(|_| EngineError::Thread("the scan thread stopped during a reload".into()))?;
        drop(old);
        Ok(report)
    }

    /// Stops the scan thread after one last scan of every task, and waits for it.
    pub fn stop(mut self) -> Result<(), EngineError> {
        self.stop.store(true, Ordering::Release);
        let mut result = Ok(());
        for j in [self.join.take(), self.monitor.take()]
            .into_iter()
            .flatten()
        {
            if j.join().is_err() {
                result = Err(EngineError::Thread("the scan thread panicked".into()));
            }
        }
        result
    }
}

impl Drop for EngineHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        for j in [self.join.take(), self.monitor.take()]
            .into_iter()
            .flatten()
        {
            let _ = j.join();
        }
    }
}
