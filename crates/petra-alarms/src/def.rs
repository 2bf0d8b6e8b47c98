//! What an alarm is, as configured: the compiled form of one entry under `alarms:`.
//!
//! The configuration crate parses and reports errors with positions; this type is what it hands
//! over, with the signal names already resolved to [`SignalId`]s so the scan never looks up a
//! name. [`AlarmDef::validate`] repeats the checks that keep the state machine meaningful (finite
//! limits, a non-negative deadband) so that a definition built any other way cannot produce
//! nonsense either.

use crate::error::AlarmError;
use petra_core::{Quality, SignalId, Value};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Alarm priority, lowest first (so `Ord` sorts by urgency).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Low,
    Medium,
    High,
    Critical,
}

impl Priority {
    pub const ALL: [Priority; 4] = [
        Priority::Low,
        Priority::Medium,
        Priority::High,
        Priority::Critical,
    ];

    /// The name used in the configuration, the API, MQTT and as a metric label.
    pub fn name(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Medium => "medium",
            Priority::High => "high",
            Priority::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Priority> {
        Priority::ALL.into_iter().find(|p| p.name() == s)
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The target of an `equals` condition. Only bool and int: equality on floats is a trap
/// (use high/low), and string alarms have not been asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EqValue {
    Bool(bool),
    Int(i64),
}

/// The process condition an alarm watches.
///
/// `High`/`HighHigh` (and `Low`/`LowLow`) behave identically; the distinction is for the
/// operator and the alarm list (a high-high is usually a second alarm on the same signal with a
/// higher priority).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Condition {
    /// Active when value > limit; clears when value < limit − deadband.
    High(f64),
    /// As `High`.
    HighHigh(f64),
    /// Active when value < limit; clears when value > limit + deadband.
    Low(f64),
    /// As `Low`.
    LowLow(f64),
    /// Active when the value equals the target (same type; deadband does not apply).
    Equals(EqValue),
    /// Active when the signal's quality is bad (whatever its value).
    BadQuality,
}

impl Condition {
    /// The configuration key: `high`, `high_high`, `low`, `low_low`, `equals`, `bad_quality`.
    pub fn name(&self) -> &'static str {
        match self {
            Condition::High(_) => "high",
            Condition::HighHigh(_) => "high_high",
            Condition::Low(_) => "low",
            Condition::LowLow(_) => "low_low",
            Condition::Equals(_) => "equals",
            Condition::BadQuality => "bad_quality",
        }
    }

    /// The raw (undelayed) condition for one input, given the raw condition of the previous
    /// input (`was`, for the deadband's hysteresis). `None` means the input cannot decide the
    /// condition: bad quality, NaN, or a value of the wrong type. The caller then holds
    /// everything as it was (see [`crate::Alarm::evaluate`]).
    ///
    /// Written as one match on copied scalars so the scan's hot path is a few compares.
    #[inline]
    pub(crate) fn raw(
        &self,
        value: &Value,
        quality: Quality,
        deadband: f64,
        was: bool,
    ) -> Option<bool> {
        if let Condition::BadQuality = self {
            return Some(quality.is_bad());
        }
        if quality.is_bad() {
            return None;
        }
        match *self {
            Condition::High(limit) | Condition::HighHigh(limit) => {
                let v = finite_or_inf(value)?;
                Some(if was {
                    v >= limit - deadband
                } else {
                    v > limit
                })
            }
            Condition::Low(limit) | Condition::LowLow(limit) => {
                let v = finite_or_inf(value)?;
                Some(if was {
                    v <= limit + deadband
                } else {
                    v < limit
                })
            }
            Condition::Equals(EqValue::Bool(t)) => value.as_bool().map(|b| b == t),
            Condition::Equals(EqValue::Int(t)) => value.as_int().map(|i| i == t),
            Condition::BadQuality => Some(false), // handled above; kept total
        }
    }

    fn limit(&self) -> Option<f64> {
        match *self {
            Condition::High(l)
            | Condition::HighHigh(l)
            | Condition::Low(l)
            | Condition::LowLow(l) => Some(l),
            _ => None,
        }
    }
}

/// A numeric value usable by a limit comparison: ints widened, NaN refused (it compares false
/// both ways, which would read as "cleared").
#[inline]
fn finite_or_inf(value: &Value) -> Option<f64> {
    value.as_f64().filter(|v| !v.is_nan())
}

/// One configured alarm.
#[derive(Clone, Debug, PartialEq)]
pub struct AlarmDef {
    /// Unique name; the API and MQTT address the alarm by it. Shared so that transitions carry
    /// it without allocating.
    pub name: Arc<str>,
    /// The signal whose value (and quality) the condition watches.
    pub signal: SignalId,
    pub condition: Condition,
    /// Hysteresis for high/low conditions, in the signal's unit. Ignored by equals and
    /// bad-quality conditions.
    pub deadband: f64,
    /// How long the condition must hold, continuously and on usable data, before the alarm
    /// becomes active.
    pub on_delay: Duration,
    /// How long the condition must stay clear, continuously and on usable data, before the
    /// alarm returns to normal.
    pub off_delay: Duration,
    pub priority: Priority,
    /// Template for the operator message; see [`crate::render_message`].
    pub message: String,
    /// Notification group, passed through to the notifier.
    pub notify: Option<String>,
    /// A latching alarm stays active after its condition clears until the operator
    /// acknowledges it after the return, or resets it (see the crate docs).
    pub latch: bool,
    /// A bool signal whose `true` (with good or uncertain quality) suppresses the alarm, e.g.
    /// "pump out of service". The manager reads it and passes the result to `evaluate`.
    pub suppress_by: Option<SignalId>,
}

impl AlarmDef {
    /// A definition with no deadband, no delays, medium priority, a generic message, no
    /// notification, not latching and no suppression.
    pub fn new(name: impl Into<Arc<str>>, signal: SignalId, condition: Condition) -> AlarmDef {
        AlarmDef {
            name: name.into(),
            signal,
            condition,
            deadband: 0.0,
            on_delay: Duration::ZERO,
            off_delay: Duration::ZERO,
            priority: Priority::Medium,
            message: "{name}: {value} {unit}".to_string(),
            notify: None,
            latch: false,
            suppress_by: None,
        }
    }

    /// Refuses definitions the state machine cannot give a meaning to.
    pub fn validate(&self) -> Result<(), AlarmError> {
        let bad = |reason: String| {
            Err(AlarmError::InvalidDefinition {
                alarm: self.name.to_string(),
                reason,
            })
        };
        if self.name.is_empty() {
            return bad("the name is empty; give every alarm a unique name".into());
        }
        if let Some(limit) = self.condition.limit()
            && !limit.is_finite()
        {
            return bad(format!(
                "the {} limit is {limit}; give a finite number",
                self.condition.name()
            ));
        }
        if !(self.deadband.is_finite() && self.deadband >= 0.0) {
            return bad(format!(
                "the deadband is {}; give a finite number ≥ 0",
                self.deadband
            ));
        }
        Ok(())
    }
}

/// Whether a suppress-by signal currently suppresses: `true` with usable quality. A bad
/// suppression signal does not suppress — hiding alarms because a status bit is unreadable would
/// fail unsafe.
pub fn suppression_active(value: &Value, quality: Quality) -> bool {
    !quality.is_bad() && value.as_bool() == Some(true)
}
