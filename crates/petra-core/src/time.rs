//! Time as Petra uses it.
//!
//! [`Timestamp`] is wall-clock time attached to samples (nanoseconds since the Unix epoch, UTC).
//! [`MonoTime`] is monotonic time used for scheduling and timers (nanoseconds since the clock's
//! origin); it never jumps when the wall clock is adjusted, which is why timers use it.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Wall-clock time of a sample, in nanoseconds since 1970-01-01T00:00:00Z.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const fn from_unix_nanos(ns: i64) -> Timestamp {
        Timestamp(ns)
    }

    pub const fn unix_nanos(self) -> i64 {
        self.0
    }

    pub const fn unix_millis(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }

    pub fn from_system_time(t: SystemTime) -> Timestamp {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Timestamp(d.as_nanos().min(i64::MAX as u128) as i64),
            Err(e) => Timestamp(-(e.duration().as_nanos().min(i64::MAX as u128) as i64)),
        }
    }

    pub fn to_system_time(self) -> SystemTime {
        if self.0 >= 0 {
            UNIX_EPOCH + Duration::from_nanos(self.0 as u64)
        } else {
            UNIX_EPOCH - Duration::from_nanos(self.0.unsigned_abs())
        }
    }

    /// `2026-12-04T15:00:00.000Z`, the form used by the API and MQTT payloads.
    pub fn to_rfc3339_millis(self) -> String {
        humantime::format_rfc3339_millis(self.to_system_time()).to_string()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339_millis())
    }
}

/// Monotonic time in nanoseconds since a clock's origin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MonoTime(u64);

impl MonoTime {
    pub const ZERO: MonoTime = MonoTime(0);

    pub const fn from_nanos(ns: u64) -> MonoTime {
        MonoTime(ns)
    }

    pub const fn nanos(self) -> u64 {
        self.0
    }

    pub fn saturating_sub(self, earlier: MonoTime) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    pub fn saturating_add(self, d: Duration) -> MonoTime {
        MonoTime(
            self.0
                .saturating_add(d.as_nanos().min(u64::MAX as u128) as u64),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_with_milliseconds() {
        let t = Timestamp::from_unix_nanos(1_796_396_400_123_456_789);
        assert_eq!(t.to_rfc3339_millis(), "2026-12-04T15:00:00.123Z");
        assert_eq!(t.unix_millis(), 1_796_396_400_123);
        assert_eq!(Timestamp::from_system_time(t.to_system_time()), t);
    }

    #[test]
    fn mono_arithmetic_saturates() {
        let a = MonoTime::from_nanos(10);
        assert_eq!(a.saturating_sub(MonoTime::from_nanos(20)), Duration::ZERO);
        assert_eq!(a.saturating_add(Duration::from_nanos(5)).nanos(), 15);
        assert_eq!(
            MonoTime::from_nanos(u64::MAX)
                .saturating_add(Duration::from_secs(1))
                .nanos(),
            u64::MAX
        );
    }
}
