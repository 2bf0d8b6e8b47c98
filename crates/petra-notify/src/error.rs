//! The crate's one error type.
//!
//! A delivery error is kept as data in the journal ([`crate::Delivery::error`]), so it carries
//! what Twilio said (HTTP status, Twilio's error `code` and `message`) as fields, not only as
//! text: an operator reading "21211 invalid 'To' number" knows to fix the contact, while a
//! timeout says to look at the network.

/// Why a configuration, a snapshot or a delivery was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    /// A value of the `notify:` section is invalid; `path` names it (`notify.contacts[1].phone`).
    #[error("{path}: {reason}")]
    Config { path: String, reason: String },

    /// An alarm names a group that is not configured.
    #[error(
        "notification group `{group}` is not configured under notify.groups; add it or fix the alarm's `notify:`"
    )]
    UnknownGroup { group: String },

    /// A persisted escalation snapshot cannot be used.
    #[error("escalation snapshot: {reason}")]
    Snapshot { reason: String },

    /// Twilio (or whatever answers at `api_base`) refused the request with an HTTP error.
    /// `code` and `message` are Twilio's own (its JSON error body) when it sent them.
    #[error("Twilio answered HTTP {status}{}: {message}", code.map(|c| format!(" (error {c})")).unwrap_or_default())]
    Twilio {
        status: u16,
        code: Option<i64>,
        message: String,
    },

    /// No HTTP answer: connection refused or reset, TLS failure, timeout.
    #[error("Twilio at {api_base} could not be reached: {reason}")]
    Transport { api_base: String, reason: String },

    /// The HTTP client could not be built (TLS setup).
    #[error("cannot make the HTTP client for Twilio: {reason}")]
    Client { reason: String },
}

impl NotifyError {
    pub(crate) fn config(path: impl Into<String>, reason: impl Into<String>) -> NotifyError {
        NotifyError::Config {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
