//! Which bus changes become history rows.
//!
//! The sampler sees every change of a recorded signal (the bus's lossless feed) and the passing
//! of time (`tick`), and turns them into [`Row`]s by the signal's [`Rule`]:
//!
//! - **on change**: a change is recorded when its quality differs from the last recorded one,
//!   when a bool or string value differs, or when a number moved more than `deadband` away from
//!   the last *recorded* value (so a slow drift is recorded once it adds up, not never); and
//!   with `max_interval`, the current value is recorded again when nothing was recorded for
//!   that long (a heartbeat, so a flat line is visible as data, not as a gap);
//! - **periodic**: the current value every `interval`, on a fixed grid from the sampler's
//!   start (late ticks are not repeated); a quality change is recorded when it happens.
//!
//! Pure: no clock, no IO. Times are Unix milliseconds; the caller passes them in.

use crate::config::Rule;
use crate::row::Row;
use petra_core::{Quality, Sample, SignalId, Value};
use std::sync::Arc;

struct State {
    id: SignalId,
    name: Arc<str>,
    rule: Rule,
    /// The last recorded value and quality, and when it was recorded (ms).
    last: Option<(Value, Quality)>,
    last_at: i64,
    /// The current value (periodic and heartbeat records repeat it).
    current: Option<(Value, Quality)>,
    /// Next periodic tick or heartbeat (ms); `i64::MAX` for none.
    due: i64,
}

pub struct Sampler {
    states: Vec<State>,
    /// `SignalId` index → index into `states`.
    index: Vec<u32>,
}

const NONE: u32 = u32::MAX;

fn row(s: &State, v: &Value, q: Quality, ts_ms: i64) -> Row {
    let (value, text) = match v {
        Value::Bool(b) => (Some(f64::from(u8::from(*b))), None),
        Value::Int(i) => (Some(*i as f64), None),
        Value::Float(f) => (Some(*f), None),
        Value::String(t) => (None, Some(t.clone())),
    };
    Row {
        signal: s.name.clone(),
        ts_ms,
        value,
        text,
        quality: q.name(),
        seq: 0,
    }
}

impl Sampler {
    /// `signals`: the recorded signals with their names and rules; `now_ms` starts the grids.
    pub fn new(signals: &[(SignalId, String, Rule)], now_ms: i64) -> Sampler {
        let len = signals
            .iter()
            .map(|(id, _, _)| id.index() + 1)
            .max()
            .unwrap_or(0);
        let mut index = vec![NONE; len];
        let states = signals
            .iter()
            .enumerate()
            .map(|(k, (id, name, rule))| {
                index[id.index()] = k as u32;
                State {
                    id: *id,
                    name: name.as_str().into(),
                    rule: *rule,
                    last: None,
                    last_at: now_ms,
                    current: None,
                    due: match rule {
                        Rule::Periodic { interval } => now_ms + interval.as_millis() as i64,
                        Rule::OnChange {
                            max_interval: Some(m),
                            ..
                        } => now_ms + m.as_millis() as i64,
                        Rule::OnChange { .. } => i64::MAX,
                    },
                }
            })
            .collect();
        Sampler { states, index }
    }

    /// The signals the sampler wants changes of.
    pub fn signals(&self) -> Vec<SignalId> {
        self.states.iter().map(|s| s.id).collect()
    }

    /// A change of `id`; pushes a row to `out` if it is to be recorded.
    pub fn change(&mut self, id: SignalId, sample: &Sample, out: &mut Vec<Row>) {
        let Some(&k) = self.index.get(id.index()) else {
            return;
        };
        let Some(s) = self.states.get_mut(k as usize) else {
            return;
        };
        let ts = sample.ts.unix_nanos().div_euclid(1_000_000);
        s.current = Some((sample.value.clone(), sample.quality));
        let record = match (&s.last, s.rule) {
            (None, _) => true,
            (Some((_, q)), _) if *q != sample.quality => true,
            (Some(_), Rule::Periodic { .. }) => false,
            (Some((v, _)), Rule::OnChange { deadband, .. }) => moved(v, &sample.value, deadband),
        };
        if record {
            out.push(row(s, &sample.value, sample.quality, ts));
            s.last = Some((sample.value.clone(), sample.quality));
            s.last_at = ts;
            if let Rule::OnChange {
                max_interval: Some(m),
                ..
            } = s.rule
            {
                s.due = ts + m.as_millis() as i64;
            }
        }
    }

    /// Time passed to `now_ms`: periodic records and heartbeats that are due.
    pub fn tick(&mut self, now_ms: i64, out: &mut Vec<Row>) {
        for s in &mut self.states {
            if s.due > now_ms {
                continue;
            }
            if let Some((v, q)) = &s.current {
                out.push(row(s, v, *q, now_ms));
                s.last = Some((v.clone(), *q));
                s.last_at = now_ms;
            }
            let step = match s.rule {
                Rule::Periodic { interval } => interval.as_millis() as i64,
                Rule::OnChange {
                    max_interval: Some(m),
                    ..
                } => m.as_millis() as i64,
                Rule::OnChange { .. } => i64::MAX,
            }
            .max(1);
            s.due = match s.rule {
                // On the grid; ticks missed while the sampler was busy are not repeated.
                Rule::Periodic { .. } => {
                    let behind = (now_ms - s.due) / step + 1;
                    s.due.saturating_add(behind.saturating_mul(step))
                }
                _ => now_ms.saturating_add(step),
            };
        }
    }

    /// When the next periodic record or heartbeat is due (ms), if any.
    pub fn next_due(&self) -> Option<i64> {
        self.states
            .iter()
            .map(|s| s.due)
            .filter(|d| *d != i64::MAX)
            .min()
    }
}

fn moved(old: &Value, new: &Value, deadband: f64) -> bool {
    match (old, new) {
        (Value::Float(a), Value::Float(b)) => {
            (a - b).abs() > deadband || (a.is_nan() != b.is_nan())
        }
        (Value::Int(a), Value::Int(b)) => {
            (*a as f64 - *b as f64).abs() > deadband || (deadband == 0.0 && a != b)
        }
        (a, b) => a != b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use petra_core::{BadReason, Timestamp};
    use std::time::Duration;

    fn sample(v: Value, q: Quality, ms: i64) -> Sample {
        Sample {
            value: v,
            quality: q,
            ts: Timestamp::from_unix_nanos(ms * 1_000_000),
        }
    }

    fn values(rows: &[Row]) -> Vec<(i64, Option<f64>, &'static str)> {
        rows.iter().map(|r| (r.ts_ms, r.value, r.quality)).collect()
    }

    #[test]
    fn on_change_with_deadband_measures_from_the_last_recorded_value() {
        let id = SignalId::from_index(0);
        let rule = Rule::OnChange {
            deadband: 0.5,
            max_interval: None,
        };
        let mut s = Sampler::new(&[(id, "t".into(), rule)], 0);
        let mut out = Vec::new();
        for (ms, v) in [(1, 10.0), (2, 10.3), (3, 10.6), (4, 10.2), (5, 11.2)] {
            s.change(id, &sample(Value::Float(v), Quality::Good, ms), &mut out);
        }
        // 10.3 and 10.2 are within 0.5 of 10.0; 10.6 is not; 11.2 is 0.6 from 10.6.
        assert_eq!(
            values(&out),
            [
                (1, Some(10.0), "good"),
                (3, Some(10.6), "good"),
                (5, Some(11.2), "good")
            ]
        );
        // A quality change is recorded even with the same value.
        s.change(
            id,
            &sample(Value::Float(11.2), Quality::Bad(BadReason::Timeout), 6),
            &mut out,
        );
        assert_eq!(out.last().map(|r| (r.ts_ms, r.quality)), Some((6, "bad")));
        assert_eq!(s.next_due(), None);
    }

    #[test]
    fn max_interval_records_a_heartbeat_of_a_flat_signal() {
        let id = SignalId::from_index(2);
        let rule = Rule::OnChange {
            deadband: 0.0,
            max_interval: Some(Duration::from_millis(100)),
        };
        let mut s = Sampler::new(&[(id, "flat".into(), rule)], 0);
        let mut out = Vec::new();
        s.change(id, &sample(Value::Int(5), Quality::Good, 10), &mut out);
        s.tick(50, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(s.next_due(), Some(110));
        s.tick(110, &mut out);
        s.tick(250, &mut out);
        assert_eq!(
            values(&out),
            [
                (10, Some(5.0), "good"),
                (110, Some(5.0), "good"),
                (250, Some(5.0), "good")
            ]
        );
        // A change restarts the heartbeat from itself.
        s.change(id, &sample(Value::Int(6), Quality::Good, 300), &mut out);
        assert_eq!(s.next_due(), Some(400));
    }

    #[test]
    fn periodic_records_on_a_grid_and_quality_changes_in_between() {
        let id = SignalId::from_index(1);
        let rule = Rule::Periodic {
            interval: Duration::from_millis(1000),
        };
        let mut s = Sampler::new(&[(id, "p".into(), rule)], 0);
        let mut out = Vec::new();
        s.change(id, &sample(Value::Bool(true), Quality::Good, 5), &mut out); // the first value
        s.change(id, &sample(Value::Bool(false), Quality::Good, 6), &mut out); // not a tick
        s.tick(1000, &mut out);
        s.tick(3500, &mut out); // late: one record, next on the grid at 4000
        assert_eq!(s.next_due(), Some(4000));
        s.change(
            id,
            &sample(Value::Bool(false), Quality::Uncertain, 3600),
            &mut out,
        );
        assert_eq!(
            values(&out),
            [
                (5, Some(1.0), "good"),
                (1000, Some(0.0), "good"),
                (3500, Some(0.0), "good"),
                (3600, Some(0.0), "uncertain")
            ]
        );
        // Unrecorded signals are ignored.
        s.change(
            SignalId::from_index(7),
            &sample(Value::Int(1), Quality::Good, 1),
            &mut out,
        );
        assert_eq!(out.len(), 4);
    }

    #[test]
    fn strings_are_recorded_as_text() {
        let id = SignalId::from_index(0);
        let rule = Rule::OnChange {
            deadband: 5.0,
            max_interval: None,
        };
        let mut s = Sampler::new(&[(id, "batch".into(), rule)], 0);
        let mut out = Vec::new();
        s.change(
            id,
            &sample(Value::String("A".into()), Quality::Good, 1),
            &mut out,
        );
        s.change(
            id,
            &sample(Value::String("A".into()), Quality::Good, 2),
            &mut out,
        );
        s.change(
            id,
            &sample(Value::String("B".into()), Quality::Good, 3),
            &mut out,
        );
        let texts: Vec<_> = out
            .iter()
            .map(|r| (r.value, r.text.as_deref().map(str::to_string)))
            .collect();
        assert_eq!(texts, [(None, Some("A".into())), (None, Some("B".into()))]);
    }
}
