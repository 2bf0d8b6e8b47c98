//! Data quality. Every value on the bus says whether it can be trusted.
//!
//! Reasons for bad quality come from a closed set so they fit in an atomic next to the value
//! and can be used as metric labels without unbounded cardinality.

use std::fmt;

/// Why a value is bad.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum BadReason {
    /// Nothing has written the signal yet and it has no initial value.
    NoValue = 1,
    /// The device or broker that feeds the signal is not connected.
    NotConnected = 2,
    /// The device did not answer in time.
    Timeout = 3,
    /// The device answered with an error (exception, negative return code).
    DeviceError = 4,
    /// The configuration for this point cannot work (e.g. an address the device rejects).
    ConfigError = 5,
    /// A block computed this output from a bad input.
    InputBad = 6,
    /// The task that writes this signal exceeded its watchdog; the value is the declared safe value.
    Watchdog = 7,
    /// The raw value could not be converted (out of range, malformed payload).
    Conversion = 8,
    /// The value was not refreshed within its expected interval.
    Stale = 9,
    /// A block's computation has no defined result this scan (division by zero, NaN,
    /// overflow); the output holds the block's documented fallback value.
    Arithmetic = 10,
}

impl BadReason {
    pub const ALL: [BadReason; 10] = [
        BadReason::NoValue,
        BadReason::NotConnected,
        BadReason::Timeout,
        BadReason::DeviceError,
        BadReason::ConfigError,
        BadReason::InputBad,
        BadReason::Watchdog,
        BadReason::Conversion,
        BadReason::Stale,
        BadReason::Arithmetic,
    ];

    pub fn name(self) -> &'static str {
        match self {
            BadReason::NoValue => "no_value",
            BadReason::NotConnected => "not_connected",
            BadReason::Timeout => "timeout",
            BadReason::DeviceError => "device_error",
            BadReason::ConfigError => "config_error",
            BadReason::InputBad => "input_bad",
            BadReason::Watchdog => "watchdog",
            BadReason::Conversion => "conversion",
            BadReason::Stale => "stale",
            BadReason::Arithmetic => "arithmetic",
        }
    }
}

/// Quality of a sample: good, uncertain, or bad with a reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Quality {
    Good,
    Uncertain,
    Bad(BadReason),
}

impl Quality {
    /// `good`, `uncertain` or `bad`, as in the API and MQTT payloads.
    pub fn name(self) -> &'static str {
        match self {
            Quality::Good => "good",
            Quality::Uncertain => "uncertain",
            Quality::Bad(_) => "bad",
        }
    }

    pub fn is_good(self) -> bool {
        self == Quality::Good
    }

    pub fn is_bad(self) -> bool {
        matches!(self, Quality::Bad(_))
    }

    /// The worse of two qualities: bad beats uncertain beats good (the first bad reason wins).
    pub fn worst(self, other: Quality) -> Quality {
        match (self, other) {
            (Quality::Bad(_), _) => self,
            (_, Quality::Bad(_)) => other,
            (Quality::Uncertain, _) | (_, Quality::Uncertain) => Quality::Uncertain,
            _ => Quality::Good,
        }
    }

    /// Compact encoding for atomic storage: 0 good, 1 uncertain, 0x100 | reason for bad.
    pub(crate) fn encode(self) -> u32 {
        match self {
            Quality::Good => 0,
            Quality::Uncertain => 1,
            Quality::Bad(r) => 0x100 | r as u32,
        }
    }

    pub(crate) fn decode(code: u32) -> Quality {
        match code {
            0 => Quality::Good,
            1 => Quality::Uncertain,
            c => {
                let r = (c & 0xff) as u8;
                Quality::Bad(
                    BadReason::ALL
                        .into_iter()
                        .find(|b| *b as u8 == r)
                        .unwrap_or(BadReason::NoValue),
                )
            }
        }
    }
}

impl fmt::Display for Quality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Quality::Bad(r) => write!(f, "bad({})", r.name()),
            q => f.write_str(q.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips_every_quality() {
        let mut all = vec![Quality::Good, Quality::Uncertain];
        all.extend(BadReason::ALL.map(Quality::Bad));
        for q in all {
            assert_eq!(Quality::decode(q.encode()), q);
        }
    }

    #[test]
    fn worst_orders_bad_over_uncertain_over_good() {
        let bad = Quality::Bad(BadReason::Timeout);
        assert_eq!(Quality::Good.worst(Quality::Uncertain), Quality::Uncertain);
        assert_eq!(Quality::Uncertain.worst(bad), bad);
        assert_eq!(bad.worst(Quality::Bad(BadReason::NoValue)), bad);
        assert_eq!(Quality::Good.worst(Quality::Good), Quality::Good);
        assert_eq!(bad.to_string(), "bad(timeout)");
    }
}
