//! What every driver shares, so that Modbus, S7 and MQTT behave the same way when a device
//! misbehaves:
//!
//! - [`DriverStatus`]: connected or not, requests by result, the last error — read by `/ready`,
//!   `/metrics` and `petra probe`, written only by the driver's own task (atomics, no locks on
//!   the request path except for the last-error text).
//! - [`Backoff`]: capped exponential reconnect delays with jitter, so that a plant full of
//!   drivers does not reconnect in lockstep after a switch reboots.
//! - [`Outputs`]: which output points must be written to the device, from the bus's coalesced
//!   change feed, without echoing back values the driver itself read.
//! - [`supervise`] and [`Schedule`]: the connection loop (connect, back off, session, drop the
//!   link on any error, reconnect) and poll groups that never burst after a stall.
//! - [`Mode`]: what a point does — read, write or both.
//! - [`mark_bad`]: turn a set of points' quality bad with one reason, keeping their values.
//!
//! A driver is one tokio task per device, with a cancellation token; it never blocks the scan
//! thread (the bus is lock-free for readers and writers).

mod backoff;
mod outputs;
mod status;
mod supervise;

pub use backoff::Backoff;
pub use outputs::{OutputPoints, Outputs, output_points};
pub use status::{DriverStatus, RequestResult};
pub use supervise::{Device, RECONNECT_MIN, Schedule, idle, poll_groups, supervise};

use petra_core::{BadReason, Bus, Quality, SignalId, Timestamp};

/// Sets the quality of `signals` to bad with `reason`, keeping their last values. Returns how
/// many changed.
pub fn mark_bad(
    bus: &Bus,
    signals: impl IntoIterator<Item = SignalId>,
    reason: BadReason,
) -> usize {
    let now = Timestamp::from_system_time(std::time::SystemTime::now());
    signals
        .into_iter()
        .filter(|id| {
            bus.set_quality(*id, Quality::Bad(reason), now)
                .unwrap_or(false)
        })
        .count()
}

/// What a driver does with a point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Polled from the device into the bus.
    Read,
    /// Written to the device when the signal changes; never read.
    Write,
    /// Both: polled, and written when something else changes the signal.
    ReadWrite,
}

impl Mode {
    pub fn reads(self) -> bool {
        matches!(self, Mode::Read | Mode::ReadWrite)
    }

    pub fn writes(self) -> bool {
        matches!(self, Mode::Write | Mode::ReadWrite)
    }
}
