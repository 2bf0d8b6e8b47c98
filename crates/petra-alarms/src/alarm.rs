//! The runtime state of one alarm and its transitions (see the crate docs for the state
//! diagram and the decisions behind it).
//!
//! # Why the state is stored the way it is
//!
//! Three things are tracked separately, because ISA-18.2 needs all three to answer "what does
//! the operator see after unshelving":
//!
//! * the *process condition* (`process`): the debounced condition — deadband applied, on/off
//!   delay elapsed — whatever the operator did;
//! * the *alarm state* ([`AlarmState`]): normal / active_unacked / active_acked / rtn_unacked;
//! * the *overlays* (shelved, suppressed, out of service): while any is set the alarm is not
//!   annunciated.
//!
//! The scan calls [`Alarm::evaluate`] for every alarm every scan, so its steady state (nothing
//! changes) is a handful of compares on fields copied out of the definition, with no allocation
//! and no pointer chase into the definition. Transitions are rare and may allocate.

use crate::def::{AlarmDef, Condition, Priority};
use crate::error::AlarmError;
use crate::message::{MessageArgs, render_message};
use petra_core::{Clock, MonoTime, Quality, Timestamp, Value};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// The ISA-18.2 alarm state (without the overlays, see [`Status`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmState {
    /// Condition clear, nothing to acknowledge (ISA-18.2 state A).
    Normal,
    /// Active, not yet acknowledged (B).
    ActiveUnacked,
    /// Active and acknowledged (C).
    ActiveAcked,
    /// Returned to normal before being acknowledged (D).
    RtnUnacked,
}

impl AlarmState {
    pub const ALL: [AlarmState; 4] = [
        AlarmState::Normal,
        AlarmState::ActiveUnacked,
        AlarmState::ActiveAcked,
        AlarmState::RtnUnacked,
    ];

    /// `normal`, `active_unacked`, `active_acked`, `rtn_unacked`: the names in the API and MQTT.
    pub fn name(self) -> &'static str {
        match self {
            AlarmState::Normal => "normal",
            AlarmState::ActiveUnacked => "active_unacked",
            AlarmState::ActiveAcked => "active_acked",
            AlarmState::RtnUnacked => "rtn_unacked",
        }
    }

    pub fn parse(s: &str) -> Option<AlarmState> {
        AlarmState::ALL.into_iter().find(|st| st.name() == s)
    }

    /// Active or latched in the active state.
    pub fn is_active(self) -> bool {
        matches!(self, AlarmState::ActiveUnacked | AlarmState::ActiveAcked)
    }

    /// Waiting for an acknowledgement.
    pub fn is_unacked(self) -> bool {
        matches!(self, AlarmState::ActiveUnacked | AlarmState::RtnUnacked)
    }
}

impl fmt::Display for AlarmState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The state together with the overlays. Two statuses differ when anything the operator can
/// see differs, which is what makes "every transition changes something" checkable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Status {
    pub state: AlarmState,
    /// Shelved by an operator (until a time, see [`Alarm::shelving`]).
    pub shelved: bool,
    /// Suppressed by its `suppress_by` signal.
    pub suppressed: bool,
    /// Taken out of service (maintenance).
    pub out_of_service: bool,
}

impl Status {
    /// Shelved, suppressed or out of service: the alarm is tracked but not annunciated.
    pub fn hidden(&self) -> bool {
        self.shelved || self.suppressed || self.out_of_service
    }

    /// Shown to the operator and notified: not hidden and not normal.
    pub fn annunciated(&self) -> bool {
        !self.hidden() && self.state != AlarmState::Normal
    }
}

/// What caused a transition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// The condition became active (after its on-delay).
    Condition,
    /// The condition cleared (after its off-delay).
    Clear,
    Ack,
    /// Reset of a latched alarm.
    Reset,
    Shelve,
    Unshelve,
    /// The shelve time ran out.
    ShelveExpired,
    Suppress,
    Unsuppress,
    OutOfService,
    InService,
}

impl Cause {
    pub fn name(self) -> &'static str {
        match self {
            Cause::Condition => "condition",
            Cause::Clear => "clear",
            Cause::Ack => "ack",
            Cause::Reset => "reset",
            Cause::Shelve => "shelve",
            Cause::Unshelve => "unshelve",
            Cause::ShelveExpired => "shelve_expired",
            Cause::Suppress => "suppress",
            Cause::Unsuppress => "unsuppress",
            Cause::OutOfService => "out_of_service",
            Cause::InService => "in_service",
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One change of an alarm's [`Status`]; `from != to` always.
#[derive(Clone, Debug, PartialEq)]
pub struct Transition {
    pub alarm: Arc<str>,
    pub priority: Priority,
    pub from: Status,
    pub to: Status,
    /// Wall-clock time of the scan (or the operator action) that caused it.
    pub at: Timestamp,
    pub cause: Cause,
    /// The last value the alarm evaluated (`None` before the first evaluation).
    pub value: Option<Value>,
    /// The operator, for operator actions.
    pub user: Option<Arc<str>>,
    /// The shelve reason, for [`Cause::Shelve`].
    pub reason: Option<Arc<str>>,
}

impl Transition {
    /// The alarm went from not active to active: what alarm-rate KPIs count.
    pub fn is_activation(&self) -> bool {
        !self.from.state.is_active() && self.to.state.is_active()
    }
}

/// The time of one scan or action: monotonic for the delays, wall for the timestamps.
///
/// Delays use monotonic time because a wall-clock step (NTP) must not fire or stretch an
/// on-delay; timestamps and shelve expiry use wall time because operators read them and they
/// must survive a restart (monotonic time restarts with the process).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    pub mono: MonoTime,
    pub wall: Timestamp,
}

impl Now {
    pub fn new(mono: MonoTime, wall: Timestamp) -> Now {
        Now { mono, wall }
    }

    pub fn from_clock<C: Clock + ?Sized>(clock: &C) -> Now {
        Now {
            mono: clock.mono(),
            wall: clock.wall(),
        }
    }
}

/// A shelve in force.
#[derive(Clone, Debug, PartialEq)]
pub struct Shelving {
    pub until: Timestamp,
    pub at: Timestamp,
    pub by: Arc<str>,
    pub reason: Arc<str>,
}

/// Runtime state of one alarm.
#[derive(Clone, Debug)]
pub struct Alarm {
    // Copied out of the definition: read every scan.
    condition: Condition,
    deadband: f64,
    on_delay_ns: u64,
    off_delay_ns: u64,
    latch: bool,

    /// Raw condition after the deadband, before the delays.
    raw: bool,
    /// Debounced process condition.
    process: bool,
    /// Since when `raw != process` has held without interruption.
    pending_since: Option<MonoTime>,
    state: AlarmState,
    suppressed: bool,
    out_of_service: bool,
    shelving: Option<Shelving>,
    last_value: Option<Value>,

    changed_at: Option<Timestamp>,
    activated_at: Option<Timestamp>,
    acked_at: Option<Timestamp>,
    acked_by: Option<Arc<str>>,

    def: Arc<AlarmDef>,
}

impl Alarm {
    /// A new alarm in the normal state, in service, not shelved or suppressed.
    pub fn new(def: impl Into<Arc<AlarmDef>>) -> Result<Alarm, AlarmError> {
        let def = def.into();
        def.validate()?;
        Ok(Alarm {
            condition: def.condition,
            deadband: def.deadband,
            on_delay_ns: duration_ns(def.on_delay),
            off_delay_ns: duration_ns(def.off_delay),
            latch: def.latch,
            raw: false,
            process: false,
            pending_since: None,
            state: AlarmState::Normal,
            suppressed: false,
            out_of_service: false,
            shelving: None,
            last_value: None,
            changed_at: None,
            activated_at: None,
            acked_at: None,
            acked_by: None,
            def,
        })
    }

    pub fn def(&self) -> &Arc<AlarmDef> {
        &self.def
    }

    pub fn name(&self) -> &str {
        &self.def.name
    }

    pub fn state(&self) -> AlarmState {
        self.state
    }

    pub fn status(&self) -> Status {
        Status {
            state: self.state,
            shelved: self.shelving.is_some(),
            suppressed: self.suppressed,
            out_of_service: self.out_of_service,
        }
    }

    /// The debounced process condition, whatever the alarm state and overlays.
    pub fn condition_active(&self) -> bool {
        self.process
    }

    pub fn shelving(&self) -> Option<&Shelving> {
        self.shelving.as_ref()
    }

    pub fn is_suppressed(&self) -> bool {
        self.suppressed
    }

    pub fn is_out_of_service(&self) -> bool {
        self.out_of_service
    }

    /// Time of the last transition of any kind.
    pub fn changed_at(&self) -> Option<Timestamp> {
        self.changed_at
    }

    /// Time of the last activation.
    pub fn activated_at(&self) -> Option<Timestamp> {
        self.activated_at
    }

    /// Time and operator of the acknowledgement of the current (or last) activation.
    pub fn acked(&self) -> Option<(Timestamp, &str)> {
        match (self.acked_at, &self.acked_by) {
            (Some(at), Some(by)) => Some((at, by)),
            _ => None,
        }
    }

    pub fn last_value(&self) -> Option<&Value> {
        self.last_value.as_ref()
    }

    /// The operator message for the current state; `{time}` is the last transition's time.
    pub fn message(&self, unit: &str) -> String {
        render_message(
            &self.def.message,
            &MessageArgs {
                name: &self.def.name,
                value: self.last_value.as_ref(),
                unit,
                priority: self.def.priority,
                state: self.state,
                time: self.changed_at,
            },
        )
    }

    /// Evaluates the alarm for one scan.
    ///
    /// * `value`, `quality`: the watched signal as the scan sees it.
    /// * `suppressed`: whether the `suppress_by` signal currently suppresses (see
    ///   [`crate::suppression_active`]); `false` when the alarm has none.
    ///
    /// In order: an expired shelve is lifted, a change of suppression is applied, then the
    /// condition is updated. A value condition on an unusable input (bad quality, NaN, wrong
    /// type) holds the condition as it was and restarts any pending delay: the condition must
    /// hold on usable data for the whole delay. The separate [`Condition::BadQuality`] alarms
    /// on bad quality.
    ///
    /// Transitions are appended to `out` — at most three, in this order — and their number is
    /// returned. The scan passes one buffer for all its alarms and reuses it, so a scan in which
    /// nothing changes allocates nothing (and the caller gets the scan's transitions as one
    /// batch for MQTT, the event stream and the notifier).
    #[inline]
    pub fn evaluate(
        &mut self,
        value: &Value,
        quality: Quality,
        suppressed: bool,
        now: Now,
        out: &mut Vec<Transition>,
    ) -> usize {
        let before = out.len();
        match &self.last_value {
            Some(v) if v.same(value) => {}
            _ => self.last_value = Some(value.clone()),
        }
        if let Some(s) = &self.shelving
            && now.wall >= s.until
        {
            out.push(self.overlay(now, Cause::ShelveExpired, None, None, |a| a.shelving = None));
        }
        if suppressed != self.suppressed {
            let cause = if suppressed {
                Cause::Suppress
            } else {
                Cause::Unsuppress
            };
            out.push(self.overlay(now, cause, None, None, |a| a.suppressed = suppressed));
        }
        match self.condition.raw(value, quality, self.deadband, self.raw) {
            None => self.pending_since = None,
            Some(raw) => {
                self.raw = raw;
                if raw == self.process {
                    self.pending_since = None;
                } else {
                    let since = *self.pending_since.get_or_insert(now.mono);
                    let delay = if raw {
                        self.on_delay_ns
                    } else {
                        self.off_delay_ns
                    };
                    if now.mono.nanos().saturating_sub(since.nanos()) >= delay {
                        self.pending_since = None;
                        self.process = raw;
                        let t = if raw {
                            self.activate(now)
                        } else {
                            self.clear(now)
                        };
                        if let Some(t) = t {
                            out.push(t);
                        }
                    }
                }
            }
        }
        out.len() - before
    }

    /// Acknowledges an unacknowledged alarm: active_unacked → active_acked, rtn_unacked →
    /// normal, and a latched alarm whose condition has cleared → normal.
    pub fn ack(&mut self, now: Now, user: &str) -> Result<Transition, AlarmError> {
        let to = match self.state {
            AlarmState::ActiveUnacked if self.latch && !self.process => AlarmState::Normal,
            AlarmState::ActiveUnacked => AlarmState::ActiveAcked,
            AlarmState::RtnUnacked => AlarmState::Normal,
            state => {
                return Err(AlarmError::NothingToAcknowledge {
                    alarm: self.def.name.to_string(),
                    state,
                });
            }
        };
        let user: Arc<str> = Arc::from(user);
        let from = self.status();
        self.state = to;
        self.acked_at = Some(now.wall);
        self.acked_by = Some(user.clone());
        Ok(self.transition(from, now, Cause::Ack, Some(user), None))
    }

    /// Resets a latched alarm whose condition has cleared (acknowledged or not) to normal.
    pub fn reset(&mut self, now: Now, user: &str) -> Result<Transition, AlarmError> {
        let alarm = || self.def.name.to_string();
        if !self.latch {
            return Err(AlarmError::NotLatching { alarm: alarm() });
        }
        if !self.state.is_active() {
            return Err(AlarmError::NothingToReset {
                alarm: alarm(),
                state: self.state,
            });
        }
        if self.process {
            return Err(AlarmError::ConditionStillActive { alarm: alarm() });
        }
        let user: Arc<str> = Arc::from(user);
        let from = self.status();
        if self.state == AlarmState::ActiveUnacked {
            self.acked_at = Some(now.wall);
            self.acked_by = Some(user.clone());
        }
        self.state = AlarmState::Normal;
        Ok(self.transition(from, now, Cause::Reset, Some(user), None))
    }

    /// Shelves the alarm until `until` (wall time). Refused when already shelved (unshelve
    /// first: a re-shelve would be a transition that changes nothing the status shows) or when
    /// `until` is not in the future.
    pub fn shelve(
        &mut self,
        now: Now,
        until: Timestamp,
        user: &str,
        reason: &str,
    ) -> Result<Transition, AlarmError> {
        if let Some(s) = &self.shelving {
            return Err(AlarmError::AlreadyShelved {
                alarm: self.def.name.to_string(),
                until: s.until,
            });
        }
        if until <= now.wall {
            return Err(AlarmError::ShelveNotInFuture {
                alarm: self.def.name.to_string(),
                until,
                now: now.wall,
            });
        }
        let user: Arc<str> = Arc::from(user);
        let reason: Arc<str> = Arc::from(reason);
        let shelving = Shelving {
            until,
            at: now.wall,
            by: user.clone(),
            reason: reason.clone(),
        };
        Ok(
            self.overlay(now, Cause::Shelve, Some(user), Some(reason), |a| {
                a.shelving = Some(shelving)
            }),
        )
    }

    pub fn unshelve(&mut self, now: Now, user: &str) -> Result<Transition, AlarmError> {
        if self.shelving.is_none() {
            return Err(AlarmError::NotShelved {
                alarm: self.def.name.to_string(),
            });
        }
        Ok(
            self.overlay(now, Cause::Unshelve, Some(Arc::from(user)), None, |a| {
                a.shelving = None
            }),
        )
    }

    /// Takes the alarm out of service (`true`) or returns it to service (`false`).
    pub fn set_out_of_service(
        &mut self,
        now: Now,
        out_of_service: bool,
        user: &str,
    ) -> Result<Transition, AlarmError> {
        if out_of_service == self.out_of_service {
            return Err(AlarmError::OutOfServiceUnchanged {
                alarm: self.def.name.to_string(),
                out_of_service,
            });
        }
        let cause = if out_of_service {
            Cause::OutOfService
        } else {
            Cause::InService
        };
        Ok(self.overlay(now, cause, Some(Arc::from(user)), None, |a| {
            a.out_of_service = out_of_service
        }))
    }

    /// The persistent part of the state, for the manager to save and [`Alarm::restore`] after
    /// a restart.
    pub fn snapshot(&self) -> AlarmSnapshot {
        AlarmSnapshot {
            name: self.def.name.to_string(),
            state: self.state,
            changed_at_ns: self.changed_at.map(Timestamp::unix_nanos),
            activated_at_ns: self.activated_at.map(Timestamp::unix_nanos),
            acked_at_ns: self.acked_at.map(Timestamp::unix_nanos),
            acked_by: self.acked_by.as_deref().map(str::to_string),
            shelved: self.shelving.as_ref().map(|s| ShelveSnapshot {
                until_ns: s.until.unix_nanos(),
                at_ns: s.at.unix_nanos(),
                by: s.by.to_string(),
                reason: s.reason.to_string(),
            }),
            suppressed: self.suppressed,
            out_of_service: self.out_of_service,
        }
    }

    /// Restores a snapshot taken by [`Alarm::snapshot`] of the alarm of the same name.
    ///
    /// The process condition is assumed to be what the state says (active states: condition
    /// active) and re-evaluated from the first scan on, with fresh delays: monotonic time does
    /// not survive a restart, so a delay that was running is started again. An expired shelve
    /// is lifted by the first `evaluate`. Restoring is not a transition; the manager publishes
    /// the restored status itself.
    pub fn restore(&mut self, snap: &AlarmSnapshot) -> Result<(), AlarmError> {
        if *snap.name != *self.def.name {
            return Err(AlarmError::SnapshotMismatch {
                alarm: self.def.name.to_string(),
                snapshot: snap.name.clone(),
            });
        }
        let ts = |ns: Option<i64>| ns.map(Timestamp::from_unix_nanos);
        self.state = snap.state;
        self.process = snap.state.is_active();
        self.raw = self.process;
        self.pending_since = None;
        self.changed_at = ts(snap.changed_at_ns);
        self.activated_at = ts(snap.activated_at_ns);
        self.acked_at = ts(snap.acked_at_ns);
        self.acked_by = snap.acked_by.as_deref().map(Arc::from);
        self.shelving = snap.shelved.as_ref().map(|s| Shelving {
            until: Timestamp::from_unix_nanos(s.until_ns),
            at: Timestamp::from_unix_nanos(s.at_ns),
            by: Arc::from(s.by.as_str()),
            reason: Arc::from(s.reason.as_str()),
        });
        self.suppressed = snap.suppressed;
        self.out_of_service = snap.out_of_service;
        // A snapshot written by hand (or by an older version) may combine a hidden alarm with
        // rtn_unacked; bring it to what this state machine would have.
        if self.status().hidden() {
            self.settle_hidden();
        }
        Ok(())
    }

    /// The debounced condition became active.
    fn activate(&mut self, now: Now) -> Option<Transition> {
        match self.state {
            AlarmState::Normal | AlarmState::RtnUnacked => {
                let from = self.status();
                self.state = AlarmState::ActiveUnacked;
                self.activated_at = Some(now.wall);
                self.acked_at = None;
                self.acked_by = None;
                Some(self.transition(from, now, Cause::Condition, None, None))
            }
            // Still active because of the latch: the alarm never left, nothing to announce.
            AlarmState::ActiveUnacked | AlarmState::ActiveAcked => None,
        }
    }

    /// The debounced condition cleared.
    fn clear(&mut self, now: Now) -> Option<Transition> {
        let to = match self.state {
            // Nobody can acknowledge what was not shown, and nobody is watching a latch.
            s if s.is_active() && self.status().hidden() => AlarmState::Normal,
            _ if self.latch => return None,
            AlarmState::ActiveUnacked => AlarmState::RtnUnacked,
            AlarmState::ActiveAcked => AlarmState::Normal,
            AlarmState::Normal | AlarmState::RtnUnacked => return None,
        };
        let from = self.status();
        self.state = to;
        Some(self.transition(from, now, Cause::Clear, None, None))
    }

    /// Applies a change of an overlay and builds its transition. While hidden, a returned
    /// alarm that waits for an acknowledgement or a reset goes to normal (ISA-18.2: when the
    /// alarm comes back it is normal or unacknowledged-active according to the process).
    fn overlay(
        &mut self,
        now: Now,
        cause: Cause,
        user: Option<Arc<str>>,
        reason: Option<Arc<str>>,
        change: impl FnOnce(&mut Alarm),
    ) -> Transition {
        let from = self.status();
        change(self);
        if self.status().hidden() {
            self.settle_hidden();
        }
        self.transition(from, now, cause, user, reason)
    }

    fn settle_hidden(&mut self) {
        match self.state {
            AlarmState::RtnUnacked => self.state = AlarmState::Normal,
            s if s.is_active() && !self.process => self.state = AlarmState::Normal,
            _ => {}
        }
    }

    #[cold]
    fn transition(
        &mut self,
        from: Status,
        now: Now,
        cause: Cause,
        user: Option<Arc<str>>,
        reason: Option<Arc<str>>,
    ) -> Transition {
        self.changed_at = Some(now.wall);
        Transition {
            alarm: self.def.name.clone(),
            priority: self.def.priority,
            from,
            to: self.status(),
            at: now.wall,
            cause,
            value: self.last_value.clone(),
            user,
            reason,
        }
    }
}

fn duration_ns(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The persistent state of one alarm (serde), as saved by the manager across restarts.
/// Times are Unix nanoseconds (UTC). Fields added later default when absent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlarmSnapshot {
    pub name: String,
    pub state: AlarmState,
    #[serde(default)]
    pub changed_at_ns: Option<i64>,
    #[serde(default)]
    pub activated_at_ns: Option<i64>,
    #[serde(default)]
    pub acked_at_ns: Option<i64>,
    #[serde(default)]
    pub acked_by: Option<String>,
    #[serde(default)]
    pub shelved: Option<ShelveSnapshot>,
    #[serde(default)]
    pub suppressed: bool,
    #[serde(default)]
    pub out_of_service: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShelveSnapshot {
    pub until_ns: i64,
    pub at_ns: i64,
    pub by: String,
    pub reason: String,
}
