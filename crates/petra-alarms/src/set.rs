//! A plant's alarms as the scan evaluates them: which alarms run after which task, reading the
//! bus.
//!
//! An alarm is evaluated right after the task that writes its signal has committed its outputs,
//! so it sees exactly the values that task produced, in the same scan, with that scan's time —
//! deterministic, and checkable by `petra test` in virtual time. An alarm on a signal that no
//! task writes (a driver input) runs after the task its owner assigns (the runtime picks the
//! fastest task). Which task that is, is decided once when the set is built
//! ([`AlarmSet::new`]'s `tasks`), so the scan walks a prepared index list and never looks up a
//! name.
//!
//! Operator actions ([`AlarmSet::ack`] and friends) address alarms by name; the set is shared
//! between the scan thread and the API behind one lock, held for one evaluation pass or one
//! action. Every accepted action and every evaluation returns its [`Transition`]s for the
//! manager (journal, MQTT, notifications); the set itself does no IO.

use crate::alarm::{Alarm, AlarmSnapshot, Now, Transition};
use crate::def::{AlarmDef, suppression_active};
use crate::error::AlarmError;
use petra_core::{Bus, SignalId, Timestamp, Value};
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Clone, Copy, Debug)]
struct Entry {
    alarm: u32,
    signal: SignalId,
    suppress_by: Option<SignalId>,
}

/// How many alarms ahead the evaluation prefetches the alarm and its bus slot: enough to hide
/// a cache miss behind the work on the alarms in between (measured with `petra bench scan
/// --alarms`).
const AHEAD: usize = 8;

/// The task of an alarm the scan does not evaluate (see [`AlarmSet::new`]).
pub const OFF_SCAN: usize = usize::MAX;

/// The alarms of one configuration. See the module documentation.
#[derive(Debug)]
pub struct AlarmSet {
    alarms: Vec<Alarm>,
    by_name: HashMap<Arc<str>, usize>,
    /// Per task: the alarms evaluated after it, in declaration order, each with the signals
    /// it reads — copied out of the definitions so the scan's loop reads one dense array and
    /// never follows a pointer to a definition.
    per_task: Vec<Vec<Entry>>,
    /// Scratch values, reused so that an evaluation pass does not allocate.
    value: Value,
    flag: Value,
}

impl AlarmSet {
    /// The set of `defs`, each evaluated after task `tasks[i]` (`tasks.len() == defs.len()`),
    /// or — for [`OFF_SCAN`] — never by the scan but by [`AlarmSet::evaluate_one`] (the
    /// runtime's own system alarms, whose conditions are not signals). Refuses an invalid
    /// definition and a duplicate name.
    pub fn new(defs: Vec<AlarmDef>, tasks: &[usize]) -> Result<AlarmSet, AlarmError> {
        assert_eq!(defs.len(), tasks.len(), "one task per alarm");
        let mut alarms = Vec::with_capacity(defs.len());
        let mut by_name = HashMap::with_capacity(defs.len());
        let n_tasks = tasks
            .iter()
            .copied()
            .filter(|t| *t != OFF_SCAN)
            .max()
            .map_or(0, |m| m + 1);
        let mut per_task = vec![Vec::new(); n_tasks];
        for (i, (def, task)) in defs.into_iter().zip(tasks).enumerate() {
            let alarm = Alarm::new(def)?;
            if by_name.insert(alarm.def().name.clone(), i).is_some() {
                return Err(AlarmError::InvalidDefinition {
                    alarm: alarm.name().to_string(),
                    reason: "the name is used by another alarm; give every alarm a unique name"
                        .into(),
                });
            }
            if *task == OFF_SCAN {
                alarms.push(alarm);
                continue;
            }
            per_task[*task].push(Entry {
                alarm: i as u32,
                signal: alarm.def().signal,
                suppress_by: alarm.def().suppress_by,
            });
            alarms.push(alarm);
        }
        Ok(AlarmSet {
            alarms,
            by_name,
            per_task,
            value: Value::Bool(false),
            flag: Value::Bool(false),
        })
    }

    pub fn len(&self) -> usize {
        self.alarms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.alarms.is_empty()
    }

    /// Every alarm, in declaration order.
    pub fn alarms(&self) -> &[Alarm] {
        &self.alarms
    }

    pub fn get(&self, name: &str) -> Option<&Alarm> {
        self.by_name.get(name).map(|i| &self.alarms[*i])
    }

    /// Evaluates the alarms assigned to `task`, reading their signals (and suppression signals)
    /// from `bus`; appends the transitions to `out` and returns how many. A signal the bus does
    /// not know (a set built for another bus) is skipped.
    pub fn evaluate_task(
        &mut self,
        task: usize,
        bus: &Bus,
        now: Now,
        out: &mut Vec<Transition>,
    ) -> usize {
        let before = out.len();
        let Some(list) = self.per_task.get(task) else {
            return 0;
        };
        for (k, e) in list.iter().enumerate() {
            if let Some(ahead) = list.get(k + AHEAD) {
                petra_core::prefetch(&self.alarms[ahead.alarm as usize] as *const Alarm);
                bus.prefetch(ahead.signal);
            }
            let alarm = &mut self.alarms[e.alarm as usize];
            let Some(quality) = bus.read_into(e.signal, &mut self.value) else {
                continue;
            };
            let suppressed = match e.suppress_by {
                Some(id) => bus
                    .read_into(id, &mut self.flag)
                    .is_some_and(|q| suppression_active(&self.flag, q)),
                None => false,
            };
            alarm.evaluate(&self.value, quality, suppressed, now, out);
        }
        out.len() - before
    }

    /// Prefetches every alarm the scan evaluates, before a deadline (see
    /// `petra_engine::ScanHook::warm`). Only hints.
    pub fn warm(&self) {
        for e in self.per_task.iter().flatten() {
            petra_core::prefetch(&self.alarms[e.alarm as usize] as *const Alarm);
        }
    }

    /// Evaluates one alarm on a value given by the caller (an [`OFF_SCAN`] alarm).
    pub fn evaluate_one(
        &mut self,
        name: &str,
        value: &Value,
        quality: petra_core::Quality,
        now: Now,
        out: &mut Vec<Transition>,
    ) -> Result<usize, AlarmError> {
        Ok(self
            .alarm_mut(name)?
            .evaluate(value, quality, false, now, out))
    }

    /// Evaluates every alarm (all tasks), for the scan-less paths: start-up and tests.
    pub fn evaluate_all(&mut self, bus: &Bus, now: Now, out: &mut Vec<Transition>) -> usize {
        (0..self.per_task.len())
            .map(|t| self.evaluate_task(t, bus, now, out))
            .sum()
    }

    fn alarm_mut(&mut self, name: &str) -> Result<&mut Alarm, AlarmError> {
        match self.by_name.get(name) {
            Some(i) => Ok(&mut self.alarms[*i]),
            None => Err(AlarmError::UnknownAlarm {
                alarm: name.to_string(),
            }),
        }
    }

    pub fn ack(&mut self, name: &str, now: Now, user: &str) -> Result<Transition, AlarmError> {
        self.alarm_mut(name)?.ack(now, user)
    }

    pub fn reset(&mut self, name: &str, now: Now, user: &str) -> Result<Transition, AlarmError> {
        self.alarm_mut(name)?.reset(now, user)
    }

    /// Shelves until `until`. An alarm already shelved is shelved again with the new expiry
    /// and reason (two transitions: unshelve, shelve), which is what an operator extending a
    /// shelve means.
    pub fn shelve(
        &mut self,
        name: &str,
        now: Now,
        until: Timestamp,
        user: &str,
        reason: &str,
    ) -> Result<Vec<Transition>, AlarmError> {
        let alarm = self.alarm_mut(name)?;
        if until <= now.wall {
            return Err(AlarmError::ShelveNotInFuture {
                alarm: name.to_string(),
                until,
                now: now.wall,
            });
        }
        let mut out = Vec::with_capacity(2);
        if alarm.shelving().is_some() {
            out.push(alarm.unshelve(now, user)?);
        }
        out.push(alarm.shelve(now, until, user, reason)?);
        Ok(out)
    }

    pub fn unshelve(&mut self, name: &str, now: Now, user: &str) -> Result<Transition, AlarmError> {
        self.alarm_mut(name)?.unshelve(now, user)
    }

    pub fn set_out_of_service(
        &mut self,
        name: &str,
        now: Now,
        out_of_service: bool,
        user: &str,
    ) -> Result<Transition, AlarmError> {
        self.alarm_mut(name)?
            .set_out_of_service(now, out_of_service, user)
    }

    /// The persistent state of every alarm that is not at rest (normal, in service, not shelved,
    /// not suppressed). An alarm missing from the snapshots starts at rest when restored, so
    /// those need no saving — and skipping them keeps the copy short: it is taken under the lock
    /// the scan shares, and a plant with 10,000 alarms has a handful that are not at rest.
    pub fn snapshots(&self) -> Vec<AlarmSnapshot> {
        self.alarms
            .iter()
            .filter(|a| {
                let s = a.status();
                s.state != crate::AlarmState::Normal
                    || s.shelved
                    || s.suppressed
                    || s.out_of_service
            })
            .map(Alarm::snapshot)
            .collect()
    }

    /// Restores the snapshots of alarms that exist in this set; returns the names of those
    /// that do not (alarms removed from the configuration), for the caller to report.
    pub fn restore(&mut self, snaps: &[AlarmSnapshot]) -> Vec<String> {
        let mut unknown = Vec::new();
        for s in snaps {
            match self.by_name.get(s.name.as_str()) {
                // Cannot fail: the snapshot is looked up by its own name.
                Some(i) => {
                    let _ = self.alarms[*i].restore(s);
                }
                None => unknown.push(s.name.clone()),
            }
        }
        unknown
    }

    /// Takes over the state of the alarms of the same name from `old` (a configuration reload):
    /// states, acknowledgements and shelves carry over; new alarms start normal.
    pub fn take_over(&mut self, old: &AlarmSet) {
        for a in &old.alarms {
            if let Some(i) = self.by_name.get(a.name()) {
                let _ = self.alarms[*i].restore(&a.snapshot());
            }
        }
    }
}
