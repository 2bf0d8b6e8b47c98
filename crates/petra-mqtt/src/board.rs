//! Retained messages other parts of Petra publish through the MQTT drivers: the alarm topics
//! `{prefix}/alarms/{alarm}` (spec section 5).
//!
//! The alarm manager [`Board::set`]s the latest payload per alarm; every MQTT driver with a
//! `publish` section publishes it, retained, QoS 1, under its own prefix. Like signals, alarm
//! messages are coalesced — only the latest payload per alarm is kept, so a flapping alarm
//! never queues — and on every (re)connect each driver publishes every alarm again, so a broker
//! that restarted without persistence gets the current states back. Memory is bounded by the
//! number of alarms.

use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::watch;

/// The latest payload per key, each with the generation it was set at.
#[derive(Debug)]
pub struct Board {
    inner: Mutex<Inner>,
    changed: watch::Sender<u64>,
}

#[derive(Debug, Default)]
struct Inner {
    generation: u64,
    latest: HashMap<String, (u64, Vec<u8>)>,
}

impl Default for Board {
    fn default() -> Board {
        Board {
            inner: Mutex::default(),
            changed: watch::Sender::new(0),
        }
    }
}

impl Board {
    /// Replaces the payload of `key` and wakes the drivers.
    pub fn set(&self, key: &str, payload: Vec<u8>) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.generation += 1;
        let g = inner.generation;
        inner.latest.insert(key.to_string(), (g, payload));
        drop(inner);
        self.changed.send_replace(g);
    }

    /// Everything set after generation `seen` (everything for 0), and the generation to pass
    /// next time.
    pub fn since(&self, seen: u64) -> (u64, Vec<(String, Vec<u8>)>) {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let items = inner
            .latest
            .iter()
            .filter(|(_, (g, _))| *g > seen)
            .map(|(k, (_, p))| (k.clone(), p.clone()))
            .collect();
        (inner.generation, items)
    }

    /// Changes whenever something is set.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_latest_payload_per_key_and_only_what_is_new() {
        let b = Board::default();
        b.set("a", b"1".to_vec());
        b.set("a", b"2".to_vec());
        b.set("b", b"x".to_vec());
        let (g, mut all) = b.since(0);
        all.sort();
        assert_eq!(
            all,
            [("a".into(), b"2".to_vec()), ("b".into(), b"x".to_vec())]
        );
        assert_eq!(b.since(g).1, []);
        b.set("b", b"y".to_vec());
        assert_eq!(b.since(g).1, [("b".into(), b"y".to_vec())]);
    }
}
