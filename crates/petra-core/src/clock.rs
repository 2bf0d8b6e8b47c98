//! Where time comes from.
//!
//! The engine never asks the operating system for the time: it asks a [`Clock`]. In production
//! that is [`SystemClock`]; in `petra test` and in unit tests it is [`VirtualClock`], which
//! jumps straight to the next deadline, so an hour of logic runs in milliseconds and every run
//! is identical.

use crate::time::{MonoTime, Timestamp};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// A source of monotonic and wall-clock time that can wait for a deadline.
pub trait Clock: Send + Sync + 'static {
    /// Monotonic time, for scheduling and timers.
    fn mono(&self) -> MonoTime;
    /// Wall-clock time, for sample timestamps.
    fn wall(&self) -> Timestamp;
    /// Returns once `mono() >= deadline` (a virtual clock moves itself there).
    fn sleep_until(&self, deadline: MonoTime);
}

/// The operating system's clocks. Sleeps with `spin_sleep`: the kernel sleeps the bulk of the
/// wait and the last stretch is spun, which is what keeps 1 ms scans within tens of µs of
/// their deadline on a loaded machine.
pub struct SystemClock {
    origin: Instant,
    sleeper: spin_sleep::SpinSleeper,
}

impl SystemClock {
    pub fn new() -> SystemClock {
        SystemClock {
            origin: Instant::now(),
            sleeper: spin_sleep::SpinSleeper::default(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock::new()
    }
}

impl Clock for SystemClock {
    fn mono(&self) -> MonoTime {
        MonoTime::from_nanos(self.origin.elapsed().as_nanos() as u64)
    }

    fn wall(&self) -> Timestamp {
        Timestamp::from_system_time(SystemTime::now())
    }

    fn sleep_until(&self, deadline: MonoTime) {
        let now = self.mono();
        if deadline > now {
            self.sleeper
                .sleep(Duration::from_nanos(deadline.nanos() - now.nanos()));
        }
    }
}

/// A clock that only moves when told to (or when someone sleeps on it).
///
/// Wall time is `wall_origin + mono`, so timestamps in tests are reproducible.
pub struct VirtualClock {
    now: AtomicU64,
    wall_origin: Timestamp,
}

impl VirtualClock {
    /// A virtual clock at mono 0 whose wall time starts at `wall_origin`.
    pub fn new(wall_origin: Timestamp) -> VirtualClock {
        VirtualClock {
            now: AtomicU64::new(0),
            wall_origin,
        }
    }

    /// Moves time forward by `d`.
    pub fn advance(&self, d: Duration) {
        self.now
            .fetch_add(d.as_nanos().min(u64::MAX as u128) as u64, Ordering::SeqCst);
    }

    /// Moves time to `t` if that is later than now.
    pub fn set(&self, t: MonoTime) {
        self.now.fetch_max(t.nanos(), Ordering::SeqCst);
    }
}

impl Clock for VirtualClock {
    fn mono(&self) -> MonoTime {
        MonoTime::from_nanos(self.now.load(Ordering::SeqCst))
    }

    fn wall(&self) -> Timestamp {
        Timestamp::from_unix_nanos(
            self.wall_origin
                .unix_nanos()
                .saturating_add(self.now.load(Ordering::SeqCst) as i64),
        )
    }

    fn sleep_until(&self, deadline: MonoTime) {
        self.set(deadline);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_clock_jumps_to_deadlines_and_never_goes_back() {
        let c = VirtualClock::new(Timestamp::from_unix_nanos(1_000));
        c.sleep_until(MonoTime::from_nanos(500));
        assert_eq!(c.mono().nanos(), 500);
        c.sleep_until(MonoTime::from_nanos(100));
        assert_eq!(c.mono().nanos(), 500);
        c.advance(Duration::from_nanos(10));
        assert_eq!(c.wall().unix_nanos(), 1_510);
    }

    #[test]
    fn system_clock_sleeps_until_the_deadline() {
        let c = SystemClock::new();
        let deadline = c.mono().saturating_add(Duration::from_millis(2));
        c.sleep_until(deadline);
        assert!(c.mono() >= deadline);
    }
}
