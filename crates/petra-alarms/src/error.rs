//! The crate's one error type.
//!
//! Operator actions that make no sense in the alarm's current state are refused with a typed
//! error instead of being ignored: the API turns them into a 409 with a message the operator can
//! act on, and the audit log records that nothing changed. A refused action never changes the
//! alarm.

use crate::alarm::AlarmState;
use petra_core::Timestamp;

/// Why an alarm definition, an operator action or a snapshot was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AlarmError {
    #[error("alarm `{alarm}`: invalid definition: {reason}")]
    InvalidDefinition { alarm: String, reason: String },

    #[error(
        "alarm `{alarm}` is {state}: there is nothing to acknowledge (only active_unacked and rtn_unacked alarms take an acknowledgement)"
    )]
    NothingToAcknowledge { alarm: String, state: AlarmState },

    #[error(
        "alarm `{alarm}` is already shelved until {until}; unshelve it first to shelve it again"
    )]
    AlreadyShelved { alarm: String, until: Timestamp },

    #[error("alarm `{alarm}`: shelve expiry {until} is not after now ({now}); give a later time")]
    ShelveNotInFuture {
        alarm: String,
        until: Timestamp,
        now: Timestamp,
    },

    #[error("alarm `{alarm}` is not shelved, so it cannot be unshelved")]
    NotShelved { alarm: String },

    #[error("alarm `{alarm}` is not a latching alarm; reset applies only to latching alarms")]
    NotLatching { alarm: String },

    #[error(
        "alarm `{alarm}`: its condition is still active, so the latch cannot be reset yet; reset after the process returns to normal"
    )]
    ConditionStillActive { alarm: String },

    #[error("alarm `{alarm}` is {state}: there is no latched alarm to reset")]
    NothingToReset { alarm: String, state: AlarmState },

    #[error("alarm `{alarm}` is already {}", if *out_of_service { "out of service" } else { "in service" })]
    OutOfServiceUnchanged { alarm: String, out_of_service: bool },

    #[error("there is no alarm `{alarm}`; the configured alarms are listed by GET /api/v1/alarms")]
    UnknownAlarm { alarm: String },

    #[error(
        "snapshot of alarm `{snapshot}` cannot be restored into alarm `{alarm}`; restore each snapshot into the alarm of the same name"
    )]
    SnapshotMismatch { alarm: String, snapshot: String },
}
