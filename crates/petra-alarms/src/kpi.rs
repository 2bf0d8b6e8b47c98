//! Alarm-system health figures (ISA-18.2 §16 / EEMUA 191), computed from the transitions.
//!
//! [`Kpis`] is fed every [`Transition`] the alarms produce and queried with the current time;
//! it keeps only what the windows need, so its memory is bounded by the activations inside the
//! longest window.
//!
//! * **Rate** — annunciated activations in the last 10 minutes (the ISA-18.2 measure; the
//!   target is about 1, more than 2 is "likely over-demanding").
//! * **Flood** — more than `flood_activations` annunciated activations in `flood_window`
//!   (ISA-18.2: more than 10 in 10 minutes).
//! * **Chattering** — one alarm activated `chatter_activations` times or more within
//!   `chatter_window` (EEMUA: 3 in a minute). Counted for hidden activations too: chattering is
//!   a property of the alarm's design, and a shelved chattering alarm is still chattering.
//! * **Standing** — alarms active for longer than `standing_after` (24 h by default).
//!
//! Rate and flood count only activations the operator was shown: a suppressed alarm is, by
//! design, not part of the operator's load.

use crate::alarm::Transition;
use petra_core::Timestamp;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

/// The ISA-18.2 rate interval.
pub const RATE_WINDOW: Duration = Duration::from_secs(600);

/// Thresholds; [`KpiConfig::default`] holds the ISA-18.2 / EEMUA 191 figures.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KpiConfig {
    pub chatter_activations: usize,
    pub chatter_window: Duration,
    /// A flood is *more than* this many activations in `flood_window`.
    pub flood_activations: usize,
    pub flood_window: Duration,
    pub standing_after: Duration,
}

impl Default for KpiConfig {
    fn default() -> Self {
        KpiConfig {
            chatter_activations: 3,
            chatter_window: Duration::from_secs(60),
            flood_activations: 10,
            flood_window: Duration::from_secs(600),
            standing_after: Duration::from_secs(24 * 3600),
        }
    }
}

#[derive(Debug, Default)]
struct PerAlarm {
    /// The last `chatter_activations` activations, oldest first.
    activations: VecDeque<Timestamp>,
    active_since: Option<Timestamp>,
}

/// Alarm KPIs over all alarms; see the module docs.
#[derive(Debug)]
pub struct Kpis {
    cfg: KpiConfig,
    alarms: HashMap<Arc<str>, PerAlarm>,
    /// Annunciated activations of every alarm within the longer of the rate and flood windows.
    recent: VecDeque<Timestamp>,
}

impl Kpis {
    pub fn new(cfg: KpiConfig) -> Kpis {
        Kpis {
            cfg,
            alarms: HashMap::new(),
            recent: VecDeque::new(),
        }
    }

    pub fn config(&self) -> &KpiConfig {
        &self.cfg
    }

    /// Feeds one transition (in the order they happened).
    pub fn record(&mut self, t: &Transition) {
        let per = self.alarms.entry(t.alarm.clone()).or_default();
        if t.is_activation() {
            per.active_since = Some(t.at);
            per.activations.push_back(t.at);
            while per.activations.len() > self.cfg.chatter_activations {
                per.activations.pop_front();
            }
            if !t.to.hidden() {
                self.recent.push_back(t.at);
            }
        } else if !t.to.state.is_active() {
            per.active_since = None;
        }
        let keep = minus(t.at, self.cfg.flood_window.max(RATE_WINDOW));
        while self.recent.front().is_some_and(|&f| f <= keep) {
            self.recent.pop_front();
        }
    }

    /// Forgets an alarm (removed by a configuration reload).
    pub fn forget(&mut self, alarm: &str) {
        self.alarms.remove(alarm);
    }

    /// Annunciated activations in the last `window` (at most the longer of 10 minutes and the
    /// flood window; older ones are not kept).
    pub fn activations_within(&self, now: Timestamp, window: Duration) -> usize {
        let from = minus(now, window);
        self.recent
            .iter()
            .filter(|&&t| t > from && t <= now)
            .count()
    }

    /// Annunciated activations in the last 10 minutes.
    pub fn rate_per_10min(&self, now: Timestamp) -> usize {
        self.activations_within(now, RATE_WINDOW)
    }

    pub fn is_flood(&self, now: Timestamp) -> bool {
        self.activations_within(now, self.cfg.flood_window) > self.cfg.flood_activations
    }

    pub fn is_chattering(&self, alarm: &str, now: Timestamp) -> bool {
        self.alarms
            .get(alarm)
            .is_some_and(|p| self.chatters(p, now))
    }

    /// Names of the chattering alarms, sorted.
    pub fn chattering(&self, now: Timestamp) -> Vec<Arc<str>> {
        let mut v: Vec<Arc<str>> = self
            .alarms
            .iter()
            .filter(|(_, p)| self.chatters(p, now))
            .map(|(n, _)| n.clone())
            .collect();
        v.sort();
        v
    }

    /// Alarms active for `standing_after` or longer, with the time they became active, oldest
    /// first.
    pub fn standing(&self, now: Timestamp) -> Vec<(Arc<str>, Timestamp)> {
        let limit = minus(now, self.cfg.standing_after);
        let mut v: Vec<(Arc<str>, Timestamp)> = self
            .alarms
            .iter()
            .filter_map(|(n, p)| p.active_since.map(|s| (n.clone(), s)))
            .filter(|(_, s)| *s <= limit)
            .collect();
        v.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        v
    }

    fn chatters(&self, p: &PerAlarm, now: Timestamp) -> bool {
        let from = minus(now, self.cfg.chatter_window);
        self.cfg.chatter_activations > 0
            && p.activations
                .iter()
                .filter(|&&t| t > from && t <= now)
                .count()
                >= self.cfg.chatter_activations
    }
}

impl Default for Kpis {
    fn default() -> Self {
        Kpis::new(KpiConfig::default())
    }
}

fn minus(t: Timestamp, d: Duration) -> Timestamp {
    let d = i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
    Timestamp::from_unix_nanos(t.unix_nanos().saturating_sub(d))
}
