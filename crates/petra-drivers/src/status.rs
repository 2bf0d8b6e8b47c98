//! A driver's live status: what `/ready`, `/metrics` and `petra probe` show. Written by the
//! driver's task, read by anyone; counters are atomics so the request path takes no lock.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// How one request ended: the `result` label of `petra_driver_requests_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RequestResult {
    /// Answered as asked.
    Ok,
    /// The device answered with an exception / negative return code.
    Exception,
    /// No answer in time.
    Timeout,
    /// Transport failure or a malformed / mismatched answer (the connection is dropped).
    Error,
}

impl RequestResult {
    pub const ALL: [RequestResult; 4] = [
        RequestResult::Ok,
        RequestResult::Exception,
        RequestResult::Timeout,
        RequestResult::Error,
    ];

    pub fn name(self) -> &'static str {
        match self {
            RequestResult::Ok => "ok",
            RequestResult::Exception => "exception",
            RequestResult::Timeout => "timeout",
            RequestResult::Error => "error",
        }
    }
}

#[derive(Debug)]
pub struct DriverStatus {
    name: String,
    kind: &'static str,
    connected: AtomicBool,
    requests: [AtomicU64; 4],
    connects: AtomicU64,
    write_failures: AtomicU64,
    pending_writes: AtomicU64,
    planned_requests: AtomicU64,
    points: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl DriverStatus {
    pub fn new(name: impl Into<String>, kind: &'static str, points: usize) -> DriverStatus {
        DriverStatus {
            name: name.into(),
            kind,
            connected: AtomicBool::new(false),
            requests: Default::default(),
            connects: AtomicU64::new(0),
            write_failures: AtomicU64::new(0),
            pending_writes: AtomicU64::new(0),
            planned_requests: AtomicU64::new(0),
            points: AtomicU64::new(points as u64),
            last_error: Mutex::new(None),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The driver type (`modbus`, `s7`, `mqtt`).
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    /// Marks the device connected (counting the connect) or lost.
    pub fn set_connected(&self, up: bool) {
        let was = self.connected.swap(up, Ordering::AcqRel);
        if up && !was {
            self.connects.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn count(&self, result: RequestResult) {
        self.requests[result as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn requests(&self, result: RequestResult) -> u64 {
        self.requests[result as usize].load(Ordering::Relaxed)
    }

    /// Successful connects since start.
    pub fn connects(&self) -> u64 {
        self.connects.load(Ordering::Relaxed)
    }

    pub fn count_write_failure(&self) {
        self.write_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub fn write_failures(&self) -> u64 {
        self.write_failures.load(Ordering::Relaxed)
    }

    /// Writes waiting for the device (changed values not yet written, or failed and retried).
    pub fn set_pending_writes(&self, n: usize) {
        self.pending_writes.store(n as u64, Ordering::Relaxed);
    }

    pub fn pending_writes(&self) -> u64 {
        self.pending_writes.load(Ordering::Relaxed)
    }

    /// Read requests one full poll of every point takes, as planned.
    pub fn set_planned_requests(&self, n: usize) {
        self.planned_requests.store(n as u64, Ordering::Relaxed);
    }

    pub fn planned_requests(&self) -> u64 {
        self.planned_requests.load(Ordering::Relaxed)
    }

    pub fn points(&self) -> u64 {
        self.points.load(Ordering::Relaxed)
    }

    /// Remembers the latest problem (shown by `/ready`); `None` clears it.
    pub fn set_error(&self, e: Option<String>) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = e;
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_connects_only_on_the_rising_edge() {
        let s = DriverStatus::new("plc", "modbus", 3);
        s.set_connected(true);
        s.set_connected(true);
        s.set_connected(false);
        s.set_connected(true);
        assert_eq!(s.connects(), 2);
        assert!(s.is_connected());
    }

    #[test]
    fn counts_by_result() {
        let s = DriverStatus::new("plc", "modbus", 0);
        s.count(RequestResult::Ok);
        s.count(RequestResult::Ok);
        s.count(RequestResult::Timeout);
        let counts: Vec<u64> = RequestResult::ALL.iter().map(|r| s.requests(*r)).collect();
        assert_eq!(counts, [2, 0, 1, 0]);
        s.set_error(Some("timeout".into()));
        assert_eq!(s.last_error().as_deref(), Some("timeout"));
    }
}
