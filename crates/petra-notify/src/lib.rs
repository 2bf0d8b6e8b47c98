//! Petra's notifications: who is told about an alarm, when, how often, and the Twilio calls that
//! tell them.
//!
//! Alarms that nobody sees are worthless, and alarms that page someone two hundred times in a
//! minute get the phone switched off. This crate sits between the two: the alarm manager tells it
//! which alarms were raised and acknowledged, it decides which messages are due, and a Twilio
//! client delivers them with retries. It is split so that every decision is testable without a
//! network and without waiting:
//!
//! * [`config`] — the compiled `notify:` section of the configuration ([`NotifyConfig`]) and its
//!   validation ([`NotifyConfig::validate`], [`is_e164`], [`is_account_sid`]) for the config
//!   compiler.
//! * [`Escalations`] — the **pure escalation planner**. It is told
//!   [`alarm_raised`](Escalations::alarm_raised) / [`alarm_acked`](Escalations::alarm_acked)
//!   (or fed the alarm manager's [`Transition`](petra_alarms::Transition)s through
//!   [`on_transition`](Escalations::on_transition)) and answers
//!   [`due(now)`](Escalations::due) with the [`Notification`]s to send now: escalation steps
//!   (`after`), repeated cycles (`repeat`), a rate limit per contact and one summary message
//!   instead of a flood. Its state survives a restart as a serde [`EscalationSnapshot`], so a
//!   restart never sends again what was sent. No IO, no clock: every call takes `now`.
//! * [`TwilioClient`] — delivers one [`Notification`] as an SMS (`Messages.json`) or a voice
//!   call (`Calls.json` with TwiML that speaks the text), retrying with capped exponential
//!   backoff on 429 (honouring `Retry-After`), 5xx, timeouts and connection failures, never on
//!   other 4xx. Every attempt is a [`Delivery`] for the journal and is counted in
//!   [`NotifyCounters`] (`petra_notifications_total{channel, result}`).
//! * [`text`] — what the messages say: the alarm's own message (rendered by the alarm model's
//!   template with `{name}`, `{value}`, `{unit}`, `{priority}`, `{state}`, `{time}`), prefixed
//!   with its priority and name; summaries; TwiML.
//!
//! # How the alarm manager uses it
//!
//! ```text
//!  transitions ──► Escalations::on_transition ─┐
//!                                              ├─ due(now) ─► snapshot() saved ─► TwilioClient::deliver
//!  timer at Escalations::next_due() ───────────┘                                  (own thread) ─► journal, metrics
//! ```
//!
//! 1. Build [`Escalations::new`] from the config, then [`Escalations::restore`] the last saved
//!    snapshot if there is one.
//! 2. For every alarm transition of an alarm with `notify: GROUP`, call
//!    [`Escalations::on_transition`]; after a restart, call it (or
//!    [`alarm_raised`](Escalations::alarm_raised)) again for the alarms that are still
//!    unacknowledged and [`alarm_acked`](Escalations::alarm_acked) for those that were restored
//!    but are no longer: both are idempotent, so nothing is sent twice.
//! 3. Call [`Escalations::due`] after each batch of transitions and whenever
//!    [`Escalations::next_due`] has passed; persist [`Escalations::snapshot`] right after `due`
//!    returned and **before** delivering, then hand the notifications to a [`TwilioClient`] on a
//!    thread of its own (delivery blocks, including backoff sleeps).
//!
//! Persisting before delivering makes delivery at-most-once across a crash: a crash between the
//! two loses the messages of that moment (the next escalation step or repeat still goes out)
//! rather than paging someone twice for the same step after every restart.
//!
//! # Time
//!
//! The planner works in wall-clock [`Timestamp`](petra_core::Timestamp)s, not monotonic time:
//! an escalation that started before a restart must continue at the right moment after it, and
//! monotonic time restarts with the process. A wall-clock step moves escalation deadlines with
//! it, which for steps minutes apart is harmless. The client sleeps between retries on a
//! [`Clock`](petra_core::Clock), so tests run its backoff in virtual time.

pub mod config;
mod error;
mod planner;
pub mod text;
mod twilio;

pub use config::{
    Channel, Contact, Group, Limits, NotifyConfig, Step, TwilioConfig, is_account_sid, is_e164,
};
pub use error::NotifyError;
pub use planner::{
    AlarmInfo, EscalationSnapshot, Escalations, HeldSnapshot, Notification, SNAPSHOT_VERSION,
    SentSnapshot, StateSnapshot,
};
pub use twilio::{
    Delivery, DeliveryResult, METRIC_NAME, NotifyCounters, RetryPolicy, TwilioClient,
};

#[cfg(test)]
mod planner_tests;
