//! Writes from the bus to a device.
//!
//! A driver's output points watch their signals through a coalesced change feed
//! ([`petra_core::LatestFeed`]): ten changes between two writes are one write of the latest
//! value, and the scan thread never waits for a device. For every output the driver remembers
//! the last value it knows the device holds — written by us, or read back for `readwrite`
//! points — and writes only when the bus wants something else. That is what keeps a
//! `readwrite` point from echoing the value it just read back to the device, and what makes a
//! failed write stay pending (retried on the next pass) until the device takes it.
//!
//! Only good values are written: a value computed from bad inputs is not sent to a machine; the
//! device keeps the last good one.
//!
//! After a reconnect, write-only outputs are sent again (the device may have restarted and lost
//! them); `readwrite` outputs are not — the device's value is read and becomes the truth.

use petra_core::{Bus, LatestFeed, SignalId, Value};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::Notify;

struct Out {
    signal: SignalId,
    /// Sent again after a reconnect.
    write_only: bool,
    /// What the device is known to hold.
    device: Option<Value>,
    /// What the bus wants the device to hold, when that differs from `device`.
    desired: Option<Value>,
}

pub struct Outputs {
    feed: LatestFeed,
    notify: Arc<Notify>,
    outs: Vec<Out>,
    by_signal: HashMap<SignalId, Vec<usize>>,
    scratch: Vec<SignalId>,
}

/// A driver's output points, from each point's signal and mode: the tracker with, per output,
/// its point index (`None` without a feed), and, per point, its output index.
pub type OutputPoints = (Option<(Outputs, Vec<usize>)>, Vec<Option<usize>>);

/// [`OutputPoints`] of `points` (`(signal, mode)` in point order); `feed` watches the signals
/// of the points that write (`None` when there are none).
pub fn output_points(
    feed: Option<LatestFeed>,
    points: impl ExactSizeIterator<Item = (SignalId, crate::Mode)>,
) -> OutputPoints {
    let mut index = vec![None; points.len()];
    let mut outs = Vec::new();
    let mut out_points = Vec::new();
    for (pi, (signal, mode)) in points.enumerate() {
        if mode.writes() {
            index[pi] = Some(outs.len());
            outs.push((signal, !mode.reads()));
            out_points.push(pi);
        }
    }
    (feed.map(|f| (Outputs::new(f, &outs), out_points)), index)
}

impl Outputs {
    /// `outs[i]` is output `i`: its signal and whether it is write-only. `feed` must watch
    /// those signals.
    pub fn new(feed: LatestFeed, outs: &[(SignalId, bool)]) -> Outputs {
        let notify = Arc::new(Notify::new());
        let n = notify.clone();
        feed.set_waker(Arc::new(move || n.notify_one()));
        let mut by_signal: HashMap<SignalId, Vec<usize>> = HashMap::new();
        for (i, (id, _)) in outs.iter().enumerate() {
            by_signal.entry(*id).or_default().push(i);
        }
        Outputs {
            feed,
            notify,
            outs: outs
                .iter()
                .map(|(signal, write_only)| Out {
                    signal: *signal,
                    write_only: *write_only,
                    device: None,
                    desired: None,
                })
                .collect(),
            by_signal,
            scratch: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.outs.is_empty()
    }

    /// Resolves when a watched signal changed since the last [`Outputs::collect`] (at once if
    /// one already did).
    pub async fn changed(&self) {
        if self.feed.has_pending() {
            return;
        }
        self.notify.notified().await
    }

    /// Takes in the bus changes; returns how many outputs wait to be written.
    pub fn collect(&mut self, bus: &Bus) -> usize {
        self.scratch.clear();
        self.feed.drain(&mut self.scratch);
        for id in std::mem::take(&mut self.scratch) {
            for i in self.by_signal.get(&id).cloned().unwrap_or_default() {
                self.want(bus, i);
            }
        }
        self.pending_count()
    }

    /// After a (re)connect: every write-only output with a good value on the bus is written
    /// again; then the normal change tracking continues.
    pub fn reconnected(&mut self, bus: &Bus) {
        for i in 0..self.outs.len() {
            if self.outs[i].write_only {
                self.outs[i].device = None;
                self.want(bus, i);
            }
        }
    }

    fn want(&mut self, bus: &Bus, i: usize) {
        let out = &mut self.outs[i];
        let Some(sample) = bus.read(out.signal) else {
            return;
        };
        if !sample.quality.is_good() {
            return;
        }
        out.desired = (out.device.as_ref() != Some(&sample.value)).then_some(sample.value);
    }

    /// The device was read and holds `value` (a `readwrite` point).
    pub fn observed(&mut self, i: usize, value: &Value) {
        let out = &mut self.outs[i];
        out.device = Some(value.clone());
        if out.desired.as_ref() == Some(value) {
            out.desired = None;
        }
    }

    /// `value` was written to the device.
    pub fn written(&mut self, i: usize, value: &Value) {
        self.observed(i, value);
    }

    /// Whether output `i` waits to be written (its bus value must not be overwritten by a read
    /// of the old device value meanwhile).
    pub fn is_pending(&self, i: usize) -> bool {
        self.outs[i].desired.is_some()
    }

    /// Outputs waiting to be written, with the value to write.
    pub fn pending(&self) -> Vec<(usize, Value)> {
        self.outs
            .iter()
            .enumerate()
            .filter_map(|(i, o)| o.desired.clone().map(|v| (i, v)))
            .collect()
    }

    pub fn pending_count(&self) -> usize {
        self.outs.iter().filter(|o| o.desired.is_some()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use petra_core::{BadReason, BusBuilder, Quality, SignalDef, Timestamp, ValueType};

    fn setup() -> (Arc<Bus>, Outputs) {
        let mut b = BusBuilder::new(vec![
            SignalDef::new("out", ValueType::Int),
            SignalDef::new("rw", ValueType::Int),
        ])
        .unwrap();
        let ids = [SignalId::from_index(0), SignalId::from_index(1)];
        let feed = b.latest_feed(Some(&ids));
        let bus = b.build(Timestamp::from_unix_nanos(0));
        let outs = Outputs::new(feed, &[(ids[0], true), (ids[1], false)]);
        (bus, outs)
    }

    fn set(bus: &Bus, i: usize, v: i64, q: Quality) {
        bus.write(
            SignalId::from_index(i),
            Value::Int(v),
            q,
            Timestamp::from_unix_nanos(1),
        )
        .unwrap();
    }

    #[test]
    fn output_points_index_only_the_points_that_write() {
        use crate::Mode;
        let feed: Option<LatestFeed> = None;
        let ids = [0, 1, 2].map(SignalId::from_index);
        let points = [
            (ids[0], Mode::Read),
            (ids[1], Mode::Write),
            (ids[2], Mode::ReadWrite),
        ];
        let (outputs, index) = output_points(feed, points.into_iter());
        assert!(outputs.is_none(), "no feed: nothing to track");
        assert_eq!(index, [None, Some(0), Some(1)]);
        let mut b = petra_core::BusBuilder::new(vec![
            SignalDef::new("a", ValueType::Int),
            SignalDef::new("b", ValueType::Int),
            SignalDef::new("c", ValueType::Int),
        ])
        .unwrap();
        let feed = b.latest_feed(Some(&ids[1..]));
        let (outputs, _) = output_points(Some(feed), points.into_iter());
        let (outs, out_points) = outputs.unwrap();
        assert_eq!(out_points, [1, 2]);
        // Write-only outputs are sent again after a reconnect; readwrite ones are not.
        let bus = b.build(Timestamp::from_unix_nanos(0));
        let mut outs = outs;
        for i in [1, 2] {
            set(&bus, i, 9, Quality::Good);
        }
        outs.collect(&bus);
        outs.written(0, &Value::Int(9));
        outs.written(1, &Value::Int(9));
        outs.reconnected(&bus);
        assert_eq!(outs.pending(), vec![(0, Value::Int(9))]);
    }

    #[test]
    fn coalesces_changes_into_the_latest_value() {
        let (bus, mut o) = setup();
        for v in 1..=10 {
            set(&bus, 0, v, Quality::Good);
        }
        assert_eq!(o.collect(&bus), 1);
        assert_eq!(o.pending(), vec![(0, Value::Int(10))]);
        o.written(0, &Value::Int(10));
        assert_eq!(o.pending_count(), 0);
    }

    #[test]
    fn a_value_read_from_the_device_is_not_echoed_back() {
        let (bus, mut o) = setup();
        o.observed(1, &Value::Int(5));
        set(&bus, 1, 5, Quality::Good); // the driver's own read, landing on the bus
        assert_eq!(o.collect(&bus), 0);
        set(&bus, 1, 6, Quality::Good); // an operator's write
        assert_eq!(o.collect(&bus), 1);
        assert!(o.is_pending(1));
    }

    #[test]
    fn a_failed_write_stays_pending_and_bad_values_are_not_written() {
        let (bus, mut o) = setup();
        set(&bus, 0, 3, Quality::Good);
        o.collect(&bus);
        assert_eq!(o.pending().len(), 1); // not written: still pending on the next pass
        assert_eq!(o.pending().len(), 1);
        o.written(0, &Value::Int(3));
        set(&bus, 0, 4, Quality::Bad(BadReason::InputBad));
        assert_eq!(o.collect(&bus), 0);
    }

    #[test]
    fn write_only_outputs_are_sent_again_after_a_reconnect() {
        let (bus, mut o) = setup();
        set(&bus, 0, 7, Quality::Good);
        set(&bus, 1, 8, Quality::Good);
        o.collect(&bus);
        o.written(0, &Value::Int(7));
        o.written(1, &Value::Int(8));
        o.reconnected(&bus);
        assert_eq!(o.pending(), vec![(0, Value::Int(7))]);
    }

    #[tokio::test]
    async fn changed_wakes_on_a_bus_write() {
        let (bus, o) = setup();
        let b = bus.clone();
        let writer = tokio::spawn(async move { set(&b, 0, 1, Quality::Good) });
        tokio::time::timeout(std::time::Duration::from_secs(5), o.changed())
            .await
            .expect("woken by the write");
        writer.await.unwrap();
    }
}
