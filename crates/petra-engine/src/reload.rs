//! Hot reload: a freshly compiled engine takes over from the running one.
//!
//! What carries over, by name:
//!
//! * **blocks** with the same name and type: the new instance [`adopt`](crate::Block::adopt)s
//!   the old one's state (a running TON keeps its elapsed time, a counter its count, a PID its
//!   integral); its parameters are the new ones. Other blocks start fresh; removed ones go.
//! * **tasks** with the same name keep their schedule (next deadline and last scan time, so no
//!   scan is skipped or repeated and `dt` stays continuous) and their statistics. New tasks
//!   start now.
//! * **signal values**, when the new engine comes with a new bus (the set of signals changed):
//!   signals with the same name and type keep value, quality and timestamp.
//!
//! The pairing is computed off the scan thread ([`Engine::plan_take_over`]); between two scans
//! the thread only moves state, copies values and refreshes the output image.

use crate::Engine;
use petra_core::{Bus, SignalId};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// What a reload kept.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReloadReport {
    /// Blocks paired with their running instance (same name and type) and offered its state.
    pub kept: usize,
    /// Blocks that started fresh (new, or type changed).
    pub fresh: usize,
    /// Blocks of the old program that are gone.
    pub dropped: usize,
    /// Signals whose values were copied onto a new bus (0 when the bus stayed).
    pub signals_copied: usize,
    /// How long the swap held the scan thread (set by `EngineHandle::reload`).
    pub swap: std::time::Duration,
}

/// Names of an engine's tasks and blocks — what a reload pairs by. Immutable and shared, so a
/// reload can be planned off the scan thread.
pub(crate) struct Layout {
    /// Per task: its name and its blocks' names and types, in execution order.
    pub(crate) tasks: Vec<(String, Vec<(String, &'static str)>)>,
}

/// Which task and block of the running engine each new one takes over from, and which signal
/// values move to the new bus. Computed off the scan thread by [`Engine::plan_take_over`].
pub(crate) struct TakeOver {
    /// The layout it was computed against (checked before it is applied).
    against: Arc<Layout>,
    /// New task index → running task index.
    tasks: Vec<Option<usize>>,
    /// (new task, new block, old task, old block).
    blocks: Vec<(usize, usize, usize, usize)>,
    /// Running bus id → new bus id, when the bus changes.
    signals: Vec<(SignalId, SignalId)>,
    old_blocks: usize,
}

impl Engine {
    /// Pairs this (new) engine with the running one described by `old_layout` and `old_bus`.
    /// Pure bookkeeping with names; no effect until [`Engine::take_over_planned`].
    pub(crate) fn plan_take_over(&self, old_layout: &Arc<Layout>, old_bus: &Arc<Bus>) -> TakeOver {
        let mut old_blocks: HashMap<&str, (usize, usize, &'static str)> = HashMap::new();
        let mut old_tasks: HashMap<&str, usize> = HashMap::new();
        for (ti, (task, blocks)) in old_layout.tasks.iter().enumerate() {
            old_tasks.insert(task, ti);
            for (bi, (name, ty)) in blocks.iter().enumerate() {
                old_blocks.insert(name, (ti, bi, ty));
            }
        }
        let mut plan = TakeOver {
            against: old_layout.clone(),
            tasks: Vec::new(),
            blocks: Vec::new(),
            signals: Vec::new(),
            old_blocks: old_blocks.len(),
        };
        for (ti, (task, blocks)) in self.layout.tasks.iter().enumerate() {
            plan.tasks.push(old_tasks.get(task.as_str()).copied());
            for (bi, (name, ty)) in blocks.iter().enumerate() {
                if let Some(&(oti, obi, oty)) = old_blocks.get(name.as_str())
                    && oty == *ty
                {
                    plan.blocks.push((ti, bi, oti, obi));
                }
            }
        }
        if !Arc::ptr_eq(&self.bus, old_bus) {
            for (i, def) in self.bus.defs().iter().enumerate() {
                if let Some(oid) = old_bus.id(&def.name)
                    && old_bus.def(oid).map(|d| d.ty) == Some(def.ty)
                {
                    plan.signals.push((oid, SignalId::from_index(i)));
                }
            }
        }
        plan
    }

    /// Takes over from `old`, the engine running until now (see the module documentation).
    /// Call between two scans; afterwards run `self` instead of `old`.
    pub fn take_over(&mut self, old: &mut Engine) -> ReloadReport {
        let plan = self.plan_take_over(&old.layout, &old.bus);
        self.take_over_planned(old, plan)
    }

    /// [`Engine::take_over`] with the pairing computed beforehand (off the scan thread). A plan
    /// made against another engine than `old` is recomputed.
    pub(crate) fn take_over_planned(&mut self, old: &mut Engine, plan: TakeOver) -> ReloadReport {
        if !Arc::ptr_eq(&plan.against, &old.layout) {
            return self.take_over(old);
        }
        let mut report = ReloadReport::default();
        self.clock = old.clock.clone();
        // A new engine without a hook of its own keeps running the old one.
        if self.hook.is_none() {
            self.hook = old.hook.take();
        }
        self.warm_ahead = old.warm_ahead;
        let now = self.clock.mono();
        old.publish();

        for (oid, nid) in &plan.signals {
            if let Some(sample) = old.bus.read(*oid)
                && self.bus.write_sample(*nid, &sample).is_ok()
            {
                report.signals_copied += 1;
            }
        }
        for (ti, task) in self.tasks.iter_mut().enumerate() {
            let stats = &self.stats.tasks[ti];
            match plan.tasks[ti] {
                Some(oi) => {
                    let (ot, os) = (&old.tasks[oi], &old.stats.tasks[oi]);
                    task.next = ot.next;
                    task.last = ot.last;
                    for (a, b) in [
                        (&stats.scans, &os.scans),
                        (&stats.overruns, &os.overruns),
                        (&stats.watchdog_trips, &os.watchdog_trips),
                        (&stats.last_scan_ns, &os.last_scan_ns),
                    ] {
                        a.store(b.load(Ordering::Relaxed), Ordering::Relaxed);
                    }
                    let theirs = os.hist.lock().unwrap_or_else(|e| e.into_inner());
                    let mut ours = stats.hist.lock().unwrap_or_else(|e| e.into_inner());
                    let _ = ours.scan.add(&theirs.scan);
                    let _ = ours.jitter.add(&theirs.jitter);
                }
                None => {
                    task.next = now;
                    task.last = None;
                }
            }
            // Outputs were laid out when the engine was compiled; a block that stays frozen
            // (bad input) must commit the current value, not that older one. Inputs are
            // latched at the next scan anyway.
            for (s, id) in &task.commit {
                if let Some(q) = self.bus.read_into(*id, &mut task.image[*s as usize]) {
                    task.quality[*s as usize] = q;
                }
            }
            task.all_good = false;
        }
        for &(ti, bi, oti, obi) in &plan.blocks {
            let previous = &mut *old.tasks[oti].blocks[obi].block;
            self.tasks[ti].blocks[bi].block.adopt(previous);
        }
        report.kept = plan.blocks.len();
        report.fresh = self.layout.tasks.iter().map(|t| t.1.len()).sum::<usize>() - report.kept;
        report.dropped = plan.old_blocks - report.kept;
        report
    }
}

#[cfg(test)]
mod tests;
