//! The escalation planner: which notifications are due, for whom, now.
//!
//! Pure: no IO, no clock, no threads. Every call takes `now` (wall-clock, see the crate docs),
//! so a test drives hours of escalation in microseconds, and the state is a value that can be
//! saved ([`Escalations::snapshot`]) and restored after a restart.
//!
//! # Escalation
//!
//! An alarm raised at `t0` for a group with steps `s0 … sn` and `repeat: r` pages step `i`'s
//! contacts via each of its channels at `t0 + k·r + after_i` for the cycles `k = 0, 1, …`, until
//! the alarm is acknowledged (or stops being annunciated: acknowledged, back to normal, shelved,
//! suppressed, out of service). Without `repeat` there is one cycle; the alarm then stays
//! "escalating" silently until it is acknowledged, so raising it again changes nothing.
//!
//! Steps and cycles are kept per alarm as "cycle `k`, next step `i`", which is exactly what was
//! already sent. `due` never replays the past: when it is called late (the process was down for
//! an hour), it jumps to the current cycle and sends that cycle's steps that are due, once —
//! not every missed step of every missed cycle.
//!
//! # Rate limit and flood summary
//!
//! Due messages go to an outbox per contact and channel (one entry per alarm: a newer step or
//! cycle of the same alarm replaces an older entry still waiting). An outbox is emptied when the
//! contact's rate limit allows ([`Limits::max_per_contact`] messages, SMS and calls together,
//! per [`Limits::window`], sliding):
//!
//! * up to [`Limits::flood_threshold`] alarms, and no more than the limit has room for: one
//!   message per alarm;
//! * more: **one summary** ("12 alarms, highest critical: tank_high, pump_fail, door_open, …
//!   (+9 more)"), which costs one message of the limit;
//! * no room left: everything waits, and goes out (summarized if more than one alarm) when the
//!   oldest message of the window has aged out. [`Escalations::next_due`] says when.
//!
//! So an alarm flood costs each contact at most `max_per_contact` messages per window, however
//! many alarms it raises, and the contact still learns how many and which ones first. An
//! acknowledged alarm is taken out of every outbox.
//!
//! # Restart
//!
//! [`EscalationSnapshot`] holds the running escalations (alarm, group, when raised, cycle, next
//! step), the held messages and each contact's recent send times (so the rate limit survives
//! too). Times are Unix nanoseconds, as in the alarm model's snapshots. Restoring it and calling
//! `due` at the same time sends nothing; entries for groups or contacts that are no longer
//! configured are dropped (logged).

use crate::config::{Channel, Limits, NotifyConfig};
use crate::error::NotifyError;
use crate::text;
use petra_alarms::{AlarmState, Priority, Transition};
use petra_core::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

/// What the planner needs to know about an alarm to page someone about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlarmInfo {
    pub name: Arc<str>,
    pub priority: Priority,
    /// The operator message, already rendered from the alarm's template
    /// ([`petra_alarms::Alarm::message`]).
    pub message: String,
}

/// One message to send now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    /// The alarm it is about, or — for a summary — every alarm it covers, highest priority first.
    pub alarms: Vec<Arc<str>>,
    pub contact: Arc<str>,
    /// The contact's E.164 number.
    pub phone: Arc<str>,
    pub channel: Channel,
    /// The SMS body or the text the call speaks.
    pub text: String,
}

impl Notification {
    /// Whether this is a flood summary covering several alarms.
    pub fn is_summary(&self) -> bool {
        self.alarms.len() > 1
    }
}

/// Format version of [`EscalationSnapshot`].
pub const SNAPSHOT_VERSION: u32 = 1;

/// The planner's state for a restart (see the module docs). Serialize it with any serde format.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscalationSnapshot {
    pub version: u32,
    pub escalations: Vec<StateSnapshot>,
    pub held: Vec<HeldSnapshot>,
    pub sent: Vec<SentSnapshot>,
}

/// One running escalation: cycles before `cycle` and steps before `next_step` of it were sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateSnapshot {
    pub alarm: String,
    pub priority: Priority,
    pub message: String,
    pub group: String,
    pub raised_ns: i64,
    pub cycle: u32,
    pub next_step: usize,
}

/// A message held back by the rate limit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldSnapshot {
    pub contact: String,
    pub channel: Channel,
    pub alarm: String,
    pub priority: Priority,
    pub message: String,
    pub cycle: u32,
}

/// When a contact was last sent messages (those still inside the rate-limit window).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentSnapshot {
    pub contact: String,
    pub at_ns: Vec<i64>,
}

struct ContactPlan {
    name: Arc<str>,
    phone: Arc<str>,
}

struct StepPlan {
    after: Duration,
    /// (contact index, channel)
    targets: Vec<(usize, Channel)>,
}

struct GroupPlan {
    name: String,
    steps: Vec<StepPlan>,
    repeat: Option<Duration>,
}

struct Running {
    info: AlarmInfo,
    group: usize,
    raised: Timestamp,
    cycle: u32,
    next_step: usize,
}

#[derive(Clone)]
struct Held {
    info: AlarmInfo,
    cycle: u32,
}

/// The escalation planner (see the module docs).
pub struct Escalations {
    contacts: Vec<ContactPlan>,
    groups: Vec<GroupPlan>,
    limits: Limits,
    /// By alarm name, so `due` answers in a stable order.
    running: BTreeMap<Arc<str>, Running>,
    /// Per contact, per channel ([`Channel::index`]).
    outbox: Vec<[Vec<Held>; 2]>,
    /// Per contact: send times inside the rate-limit window, oldest first.
    sent: Vec<VecDeque<Timestamp>>,
}

fn after(t: Timestamp, d: Duration) -> Timestamp {
    let ns = i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
    Timestamp::from_unix_nanos(t.unix_nanos().saturating_add(ns))
}

fn since(now: Timestamp, earlier: Timestamp) -> Duration {
    Duration::from_nanos(
        u64::try_from(now.unix_nanos().saturating_sub(earlier.unix_nanos())).unwrap_or(0),
    )
}

fn times(d: Duration, k: u32) -> Duration {
    d.checked_mul(k).unwrap_or(Duration::MAX)
}

impl Escalations {
    /// A planner for a validated configuration; refuses one that
    /// [`NotifyConfig::validate`] refuses (with its first problem).
    pub fn new(config: &NotifyConfig) -> Result<Escalations, NotifyError> {
        if let Some(first) = config.validate().into_iter().next() {
            return Err(first);
        }
        let contacts: Vec<ContactPlan> = config
            .contacts
            .iter()
            .map(|c| ContactPlan {
                name: Arc::from(c.name.as_str()),
                phone: Arc::from(c.phone.as_str()),
            })
            .collect();
        let index = |name: &str| contacts.iter().position(|c| &*c.name == name);
        let groups = config
            .groups
            .iter()
            .map(|g| GroupPlan {
                name: g.name.clone(),
                steps: g
                    .escalation
                    .iter()
                    .map(|s| StepPlan {
                        after: s.after,
                        targets: s
                            .contacts
                            .iter()
                            .filter_map(|name| index(name))
                            .flat_map(|c| s.via.iter().map(move |&ch| (c, ch)))
                            .collect(),
                    })
                    .collect(),
                repeat: g.repeat,
            })
            .collect();
        Ok(Escalations {
            outbox: contacts.iter().map(|_| [Vec::new(), Vec::new()]).collect(),
            sent: contacts.iter().map(|_| VecDeque::new()).collect(),
            contacts,
            groups,
            limits: config.limits,
            running: BTreeMap::new(),
        })
    }

    fn group_index(&self, group: &str) -> Result<usize, NotifyError> {
        self.groups
            .iter()
            .position(|g| g.name == group)
            .ok_or_else(|| NotifyError::UnknownGroup {
                group: group.to_string(),
            })
    }

    /// Starts escalating `alarm` through `group`, from `now`; the first step goes out with the
    /// next [`due`](Escalations::due). Returns `false` — and keeps the running escalation's
    /// timing, taking only the new message and priority — when the alarm is already
    /// escalating: a re-activation before the acknowledgement, or the alarm manager raising
    /// its unacknowledged alarms again after a restart, pages nobody twice.
    pub fn alarm_raised(
        &mut self,
        alarm: AlarmInfo,
        group: &str,
        now: Timestamp,
    ) -> Result<bool, NotifyError> {
        let group = self.group_index(group)?;
        if let Some(r) = self.running.get_mut(&alarm.name) {
            r.info = alarm;
            return Ok(false);
        }
        self.running.insert(
            alarm.name.clone(),
            Running {
                info: alarm,
                group,
                raised: now,
                cycle: 0,
                next_step: 0,
            },
        );
        Ok(true)
    }

    /// Stops escalating `alarm` (acknowledged, or no longer annunciated) and drops its messages
    /// still held by the rate limit. Returns whether it was escalating.
    pub fn alarm_acked(&mut self, alarm: &str) -> bool {
        for boxes in &mut self.outbox {
            for q in boxes {
                q.retain(|h| &*h.info.name != alarm);
            }
        }
        self.running.remove(alarm).is_some()
    }

    /// Applies one transition of an alarm whose `notify:` names `group`: an annunciated
    /// `active_unacked` raises it ([`alarm_raised`](Escalations::alarm_raised), at the
    /// transition's time, with `message`), anything that is neither annunciated nor waiting
    /// for an acknowledgement (`active_acked`, `normal`, shelved, suppressed, out of service)
    /// stops it ([`alarm_acked`](Escalations::alarm_acked)); `rtn_unacked` keeps escalating —
    /// someone still has to acknowledge it.
    pub fn on_transition(
        &mut self,
        t: &Transition,
        message: impl Into<String>,
        group: &str,
    ) -> Result<(), NotifyError> {
        if t.to.annunciated() && t.to.state == AlarmState::ActiveUnacked {
            let info = AlarmInfo {
                name: t.alarm.clone(),
                priority: t.priority,
                message: message.into(),
            };
            self.alarm_raised(info, group, t.at)?;
        } else if !(t.to.annunciated() && t.to.state.is_unacked()) {
            self.alarm_acked(&t.alarm);
        }
        Ok(())
    }

    /// Whether `alarm` is escalating (raised and not acknowledged).
    pub fn is_escalating(&self, alarm: &str) -> bool {
        self.running.contains_key(alarm)
    }

    /// The alarms escalating, by name: after a restart, the alarm manager acknowledges here
    /// those that are no longer unacknowledged.
    pub fn escalating(&self) -> impl Iterator<Item = &str> {
        self.running.keys().map(|k| &**k)
    }

    /// The messages to send at `now`: escalation steps that have come due, within each
    /// contact's rate limit, summarized where too many alarms are due at once (module docs).
    /// What it returns counts as sent.
    pub fn due(&mut self, now: Timestamp) -> Vec<Notification> {
        for r in self.running.values_mut() {
            let group = &self.groups[r.group];
            if let Some(repeat) = group.repeat {
                let current = since(now, r.raised).as_nanos() / repeat.as_nanos().max(1);
                let current = u32::try_from(current).unwrap_or(u32::MAX);
                if current > r.cycle {
                    r.cycle = current;
                    r.next_step = 0;
                }
            }
            let cycle_start = after(r.raised, times(group.repeat.unwrap_or_default(), r.cycle));
            while let Some(step) = group.steps.get(r.next_step)
                && after(cycle_start, step.after) <= now
            {
                for &(c, ch) in &step.targets {
                    let q = &mut self.outbox[c][ch.index()];
                    let held = Held {
                        info: r.info.clone(),
                        cycle: r.cycle,
                    };
                    match q.iter_mut().find(|h| h.info.name == r.info.name) {
                        Some(h) => *h = held,
                        None => q.push(held),
                    }
                }
                r.next_step += 1;
            }
        }

        let mut out = Vec::new();
        let limits = self.limits;
        for (c, contact) in self.contacts.iter().enumerate() {
            let sent = &mut self.sent[c];
            while sent
                .front()
                .is_some_and(|&t| after(t, limits.window) <= now)
            {
                sent.pop_front();
            }
            for ch in Channel::ALL {
                let q = &mut self.outbox[c][ch.index()];
                let room = (limits.max_per_contact as usize).saturating_sub(sent.len());
                if q.is_empty() || room == 0 {
                    continue;
                }
                let notification = |alarms: Vec<Arc<str>>, text: String| Notification {
                    alarms,
                    contact: contact.name.clone(),
                    phone: contact.phone.clone(),
                    channel: ch,
                    text,
                };
                if q.len() <= limits.flood_threshold && q.len() <= room {
                    for h in q.drain(..) {
                        let text = match ch {
                            Channel::Sms => text::sms_text(&h.info, h.cycle),
                            Channel::Voice => text::voice_text(&h.info, h.cycle),
                        };
                        out.push(notification(vec![h.info.name], text));
                        sent.push_back(now);
                    }
                } else {
                    let mut held = std::mem::take(q);
                    held.sort_by_key(|h| std::cmp::Reverse(h.info.priority));
                    let listed: Vec<(&str, Priority)> = held
                        .iter()
                        .map(|h| (&*h.info.name, h.info.priority))
                        .collect();
                    let text = text::summary_text(&listed, ch);
                    out.push(notification(
                        held.into_iter().map(|h| h.info.name).collect(),
                        text,
                    ));
                    sent.push_back(now);
                }
            }
        }
        out
    }

    /// When [`due`](Escalations::due) will next have something to send (the next escalation
    /// step, or the moment a held message fits the rate limit); `None` when nothing is
    /// pending. A time at or before now means "call `due` now".
    pub fn next_due(&self) -> Option<Timestamp> {
        let steps = self.running.values().filter_map(|r| {
            let group = &self.groups[r.group];
            let cycle_start = after(r.raised, times(group.repeat.unwrap_or_default(), r.cycle));
            match group.steps.get(r.next_step) {
                Some(step) => Some(after(cycle_start, step.after)),
                None => group.repeat.map(|repeat| {
                    let next = after(cycle_start, repeat);
                    after(
                        next,
                        group.steps.first().map_or(Duration::ZERO, |s| s.after),
                    )
                }),
            }
        });
        let held = self.outbox.iter().enumerate().filter_map(|(c, boxes)| {
            if boxes.iter().all(Vec::is_empty) {
                return None;
            }
            let sent = &self.sent[c];
            Some(if sent.len() >= self.limits.max_per_contact as usize {
                sent.front()
                    .map_or(Timestamp::default(), |&t| after(t, self.limits.window))
            } else {
                // Room already (e.g. right after a restore): due now.
                Timestamp::default()
            })
        });
        steps.chain(held).min()
    }

    /// The state to persist (see the module docs).
    pub fn snapshot(&self) -> EscalationSnapshot {
        EscalationSnapshot {
            version: SNAPSHOT_VERSION,
            escalations: self
                .running
                .values()
                .map(|r| StateSnapshot {
                    alarm: r.info.name.to_string(),
                    priority: r.info.priority,
                    message: r.info.message.clone(),
                    group: self.groups[r.group].name.clone(),
                    raised_ns: r.raised.unix_nanos(),
                    cycle: r.cycle,
                    next_step: r.next_step,
                })
                .collect(),
            held: self
                .outbox
                .iter()
                .enumerate()
                .flat_map(|(c, boxes)| {
                    Channel::ALL.into_iter().flat_map(move |ch| {
                        boxes[ch.index()].iter().map(move |h| HeldSnapshot {
                            contact: self.contacts[c].name.to_string(),
                            channel: ch,
                            alarm: h.info.name.to_string(),
                            priority: h.info.priority,
                            message: h.info.message.clone(),
                            cycle: h.cycle,
                        })
                    })
                })
                .collect(),
            sent: self
                .sent
                .iter()
                .enumerate()
                .filter(|(_, s)| !s.is_empty())
                .map(|(c, s)| SentSnapshot {
                    contact: self.contacts[c].name.to_string(),
                    at_ns: s.iter().map(|t| t.unix_nanos()).collect(),
                })
                .collect(),
        }
    }

    /// Replaces the state with a saved one. Escalations of groups, and messages and send times
    /// of contacts, that are no longer configured are dropped (logged); a step index beyond a
    /// group that lost steps means "all steps of this cycle sent".
    pub fn restore(&mut self, snap: &EscalationSnapshot) -> Result<(), NotifyError> {
        if snap.version != SNAPSHOT_VERSION {
            return Err(NotifyError::Snapshot {
                reason: format!(
                    "format version {} is not the supported {SNAPSHOT_VERSION}; delete the \
                     snapshot to start without escalation history",
                    snap.version
                ),
            });
        }
        self.running.clear();
        self.outbox.iter_mut().flatten().for_each(Vec::clear);
        self.sent.iter_mut().for_each(VecDeque::clear);
        for s in &snap.escalations {
            let Ok(group) = self.group_index(&s.group) else {
                tracing::info!(alarm = %s.alarm, group = %s.group,
                    "notify: escalation not restored: its group is no longer configured");
                continue;
            };
            let name: Arc<str> = Arc::from(s.alarm.as_str());
            self.running.insert(
                name.clone(),
                Running {
                    info: AlarmInfo {
                        name,
                        priority: s.priority,
                        message: s.message.clone(),
                    },
                    group,
                    raised: Timestamp::from_unix_nanos(s.raised_ns),
                    cycle: s.cycle,
                    next_step: s.next_step.min(self.groups[group].steps.len()),
                },
            );
        }
        let contact = |name: &str| self.contacts.iter().position(|c| &*c.name == name);
        for h in &snap.held {
            let Some(c) = contact(&h.contact) else {
                tracing::info!(alarm = %h.alarm, contact = %h.contact,
                    "notify: held message not restored: its contact is no longer configured");
                continue;
            };
            self.outbox[c][h.channel.index()].push(Held {
                info: AlarmInfo {
                    name: Arc::from(h.alarm.as_str()),
                    priority: h.priority,
                    message: h.message.clone(),
                },
                cycle: h.cycle,
            });
        }
        for s in &snap.sent {
            if let Some(c) = contact(&s.contact) {
                let mut at: Vec<i64> = s.at_ns.clone();
                at.sort_unstable();
                self.sent[c] = at.into_iter().map(Timestamp::from_unix_nanos).collect();
            }
        }
        Ok(())
    }
}
