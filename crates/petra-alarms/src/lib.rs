//! Petra's alarm model: ISA-18.2 alarm states, condition evaluation, operator actions and KPIs.
//!
//! This crate is pure — no IO, no clock, no threads — so that alarms can be evaluated inside the
//! deterministic scan (right after the task that writes their signal) and `petra test` can check
//! them in virtual time. The manager around it reads signals from the bus, calls
//! [`Alarm::evaluate`] every scan, persists [`AlarmSnapshot`]s, and sends the [`Transition`]s to
//! MQTT, the API, the event stream and the notifier.
//!
//! # States
//!
//! [`AlarmState`] is the ISA-18.2 state; the names are those of the API and MQTT payloads:
//!
//! ```text
//!  state \ event    condition held       condition clear        ack            reset
//!                   for on_delay         for off_delay
//!  normal           active_unacked       –                      refused        refused
//!  active_unacked   –                    rtn_unacked            active_acked   refused
//!  active_acked     –                    normal                 refused        refused
//!  rtn_unacked      active_unacked       –                      normal         refused
//! ```
//!
//! (For an alarm that does not latch and is not hidden; latching and hiding are below.)
//! In words:
//!
//! * `normal` → `active_unacked` when the condition has held for `on_delay`.
//! * `active_unacked` → `active_acked` on [`Alarm::ack`].
//! * `active_unacked` → `rtn_unacked` when the condition has been clear for `off_delay`.
//! * `active_acked` → `normal` when the condition has been clear for `off_delay`.
//! * `rtn_unacked` → `normal` on ack; → `active_unacked` if the condition returns first.
//! * An acknowledged alarm becomes unacknowledged again only through a new activation.
//!
//! # Latching
//!
//! A latching alarm ([`AlarmDef::latch`]) does not leave the active state when its condition
//! clears. Following ISA-18.2 ("remains in the alarm state until acknowledged after the return to
//! normal", the ISA-18.1 manual-reset sequence):
//!
//! * cleared while `active_unacked`: stays `active_unacked`; an ack after the return takes it to
//!   `normal` directly (there is no `rtn_unacked` for a latching alarm);
//! * cleared while `active_acked` (acknowledged *before* the return): stays `active_acked` until
//!   [`Alarm::reset`];
//! * [`Alarm::reset`] takes a latched alarm whose condition has cleared to `normal` from either
//!   active state (it implies the acknowledgement); it is refused while the condition is active;
//! * if the condition returns while latched, nothing changes (the alarm never left).
//!
//! # Shelved, suppressed, out of service
//!
//! These are overlays on the state, reported as flags in [`Status`] beside it. ISA-18.2 treats
//! them as states in which the alarm is not annunciated; here they combine freely (an alarm can
//! be shelved *and* out of service) and the alarm is hidden while any of them is set:
//!
//! * **shelved** — by an operator until a wall-clock time ([`Alarm::shelve`]); lifted by
//!   [`Alarm::unshelve`] or by the first `evaluate` at or after the expiry;
//! * **suppressed** — by a signal ([`AlarmDef::suppress_by`], e.g. "equipment stopped"), passed
//!   to every `evaluate`;
//! * **out of service** — by an engineer for maintenance ([`Alarm::set_out_of_service`]).
//!
//! While hidden the condition is still tracked (deadband, delays, activation), so the alarm
//! shows the right state the moment it is revealed. What ISA-18.2 prescribes on return from
//! these states — `normal` if the process is normal, an unacknowledged alarm if it is not — is
//! kept by one rule: **a hidden alarm never waits for an operator after its condition clears.**
//! Becoming hidden turns `rtn_unacked` and a latched-but-cleared alarm into `normal`; a clear
//! while hidden goes straight to `normal`. An activation while hidden does go to
//! `active_unacked` (the operator has not seen it), and an alarm acknowledged before it was
//! hidden stays `active_acked` if its condition stays active. Acknowledging a hidden alarm is
//! allowed. Every overlay change is itself a [`Transition`].
//!
//! # Deadband and delays
//!
//! A high condition becomes true when the value is above the limit and false again only when it
//! is below `limit − deadband` (a low condition mirrors this), so a value hovering around the
//! limit does not toggle it. The alarm then follows the condition only after it has held,
//! without interruption, for `on_delay` (to activate) or `off_delay` (to return); an
//! interruption starts the delay again. Equality and bad-quality conditions have no deadband.
//! Delays are checked when the scan evaluates, so a transition happens on the first scan at or
//! after the delay has elapsed and carries that scan's time.
//!
//! # Conditions on bad data
//!
//! A value condition (high, low, equals) on an unusable input — bad quality, NaN, or a value of
//! the wrong type — neither activates nor clears: the alarm keeps its state and any running
//! on/off delay starts again once the input is usable, because the condition must hold on data
//! that can be trusted. Uncertain quality is usable. A separate [`Condition::BadQuality`] alarm
//! on the same signal reports the bad input itself.
//!
//! # Refused actions
//!
//! An operator action that would change nothing is refused with an [`AlarmError`] and leaves the
//! alarm untouched: ack of an alarm that is not unacknowledged, shelve of a shelved alarm (to
//! extend, unshelve first — a re-shelve would be a transition that changes nothing visible) or
//! with an expiry not in the future, unshelve of an unshelved alarm, reset of a non-latching
//! alarm / of an alarm that is not latched / while the condition is still active, and setting
//! out-of-service to what it already is. Every accepted action returns its [`Transition`].
//!
//! # Persistence
//!
//! [`Alarm::snapshot`] gives the state worth keeping across a restart (state, times, who
//! acknowledged, shelve, overlays) as a serde [`AlarmSnapshot`]; [`Alarm::restore`] puts it back.
//! Running on/off delays are not kept — monotonic time restarts with the process — so the first
//! scans after a restart re-evaluate the condition with fresh delays.
//!
//! # Time
//!
//! Every call takes a [`Now`]: monotonic time for the delays, wall time for the timestamps of
//! transitions and for shelve expiry (an operator deadline that must survive a restart). Every
//! transition carries the wall time of the scan or action that caused it.

mod alarm;
mod def;
mod error;
mod kpi;
mod message;
mod set;

pub use alarm::{
    Alarm, AlarmSnapshot, AlarmState, Cause, Now, ShelveSnapshot, Shelving, Status, Transition,
};
pub use def::{AlarmDef, Condition, EqValue, Priority, suppression_active};
pub use error::AlarmError;
pub use kpi::{KpiConfig, Kpis, RATE_WINDOW};
pub use message::{MessageArgs, render_message};
pub use set::{AlarmSet, OFF_SCAN};

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_set;
