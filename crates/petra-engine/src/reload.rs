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
//! `take_over` runs on the scan thread between two scans; it does no allocation proportional
//! to the old program beyond one name index.

use crate::Engine;
use petra_core::SignalId;
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
}

impl Engine {
    /// Takes over from `old`, the engine running until now (see the module documentation).
    /// Call between two scans; afterwards run `self` instead of `old`.
    pub fn take_over(&mut self, old: &mut Engine) -> ReloadReport {
        let mut report = ReloadReport::default();
        self.clock = old.clock.clone();
        let now = self.clock.mono();
        old.publish();

        if !Arc::ptr_eq(&self.bus, &old.bus) {
            for (i, def) in self.bus.defs().iter().enumerate() {
                let Some(oid) = old.bus.id(&def.name) else {
                    continue;
                };
                if old.bus.def(oid).map(|d| d.ty) != Some(def.ty) {
                    continue;
                }
                if let Some(sample) = old.bus.read(oid)
                    && self
                        .bus
                        .write_sample(SignalId::from_index(i), &sample)
                        .is_ok()
                {
                    report.signals_copied += 1;
                }
            }
        }

        // Owned keys: the old blocks are borrowed mutably below to hand them to `adopt`.
        let mut old_blocks: HashMap<String, (usize, usize, &'static str)> = HashMap::new();
        for (ti, t) in old.tasks.iter().enumerate() {
            for (bi, name) in t.names.iter().enumerate() {
                old_blocks.insert(name.clone(), (ti, bi, t.types[bi]));
            }
        }
        let old_task: HashMap<String, usize> = old
            .stats
            .tasks
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.clone(), i))
            .collect();

        for (ti, task) in self.tasks.iter_mut().enumerate() {
            let stats = &self.stats.tasks[ti];
            match old_task.get(stats.name.as_str()) {
                Some(&oi) => {
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
            for bi in 0..task.blocks.len() {
                let found = old_blocks
                    .get(task.names[bi].as_str())
                    .copied()
                    .filter(|(_, _, ty)| *ty == task.types[bi]);
                match found {
                    Some((oti, obi, _)) => {
                        let previous = &mut *old.tasks[oti].blocks[obi].block;
                        task.blocks[bi].block.adopt(previous);
                        report.kept += 1;
                    }
                    None => report.fresh += 1,
                }
            }
            // The image was laid out when the engine was compiled; bring it up to date.
            for (s, id) in task.latch.iter().chain(&task.commit) {
                if let Some(q) = self.bus.read_into(*id, &mut task.image[*s as usize]) {
                    task.quality[*s as usize] = q;
                }
            }
            task.all_good = false;
        }
        let old_total: usize = old.tasks.iter().map(|t| t.blocks.len()).sum();
        report.dropped = old_total - report.kept;
        self.last_publish = now;
        report
    }
}

#[cfg(test)]
mod tests;
