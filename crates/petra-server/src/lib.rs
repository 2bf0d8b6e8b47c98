//! Petra's server side: who may do what, and the record of what they did.
//!
//! - [`users`]: the users file — users with a [`Role`] and an argon2id password hash, and their
//!   API tokens for machines (stored as SHA-256, compared in constant time).
//! - [`sessions`]: login tokens that expire ([`Sessions`]) and the per-address limit on failed
//!   logins ([`LoginLimiter`]). Time is always passed in, so tests never wait.
//! - [`audit`]: the append-only, hash-chained audit log and its verifier.
//! - [`first_run`]: the initial `admin` user with a random password.
//! - `metrics`: Prometheus metrics.
//! - [`http`]: the HTTP API (axum) over all of the above.
//! - [`tls`]: the rustls configuration from `server.tls` (certificate chain and key files).
//!
//! How the HTTP layer puts them together: `POST /api/v1/login` asks [`LoginLimiter::check`]
//! for the source address, then [`Users::verify_password`] (slow on purpose: run it off the
//! async workers), records a failure with [`LoginLimiter::failure`] or creates a session with
//! [`Sessions::create`], and appends an [`AuditEvent`] either way. Every other request carries
//! `Authorization: Bearer TOKEN`: [`Sessions::lookup`] for a login token, else
//! [`Users::verify_token`] for an API token (`petra_…`); both give a [`Principal`], whose
//! [`Role`] is compared with `>=`.
//!
//! Secrets — passwords, tokens — only leave this crate inside a [`Secret`], whose `Debug` does
//! not show them; nothing here logs them or writes them anywhere but where documented (the
//! initial admin password file).

pub mod audit;
pub mod first_run;
pub mod http;
pub mod metrics;
pub mod sessions;
pub mod tls;
pub mod users;

mod fsx;
mod secret;

pub use audit::{AuditEvent, AuditLog, verify as verify_audit_log};
pub use first_run::{INITIAL_ADMIN, INITIAL_PASSWORD_FILE, InitialAdmin, ensure_initial_admin};
pub use secret::Secret;
pub use sessions::{LoginLimiter, Session, Sessions};
pub use users::{MIN_PASSWORD_CHARS, TokenInfo, UserInfo, Users};

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// A user's role. Each role includes the ones before it: `viewer < operator < engineer < admin`,
/// so an endpoint that needs `operator` checks `principal.role >= Role::Operator`.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads signals, alarms, history, events, metrics.
    Viewer,
    /// Also acknowledges and shelves alarms; writes signals whose `write` list has `operator`.
    Operator,
    /// Also reloads the configuration.
    Engineer,
    /// Also manages users.
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Operator, Role::Engineer, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Engineer => "engineer",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = ServerError;

    fn from_str(s: &str) -> Result<Role, ServerError> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| ServerError::UnknownRole(s.to_string()))
    }
}

/// Who a request is from: the user, the role it acts with, and the API token it used (none
/// for a login session).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub user: String,
    pub role: Role,
    /// The name of the API token, when authenticated by one.
    pub token: Option<String>,
}

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the users file {path} is not valid: {reason}; it is written by `petra user`")]
    UsersFile { path: PathBuf, reason: String },
    #[error(
        "{path} can be read or written by other users (mode {mode:03o}); it holds password \
         hashes — run `chmod 600 {path}`"
    )]
    InsecureFile { path: PathBuf, mode: u32 },
    #[error(
        "{what} name `{name}` is not valid; names start with a letter or `_`, contain only \
         letters, digits, `_`, `.` and `-`, and are at most 64 characters long"
    )]
    BadName { what: &'static str, name: String },
    #[error("unknown role `{0}`; roles are viewer, operator, engineer, admin")]
    UnknownRole(String),
    #[error("user `{0}` already exists")]
    DuplicateUser(String),
    #[error("no user `{0}`")]
    UnknownUser(String),
    #[error(
        "`{0}` is the last user with role admin; add another admin first, or nobody could manage users"
    )]
    LastAdmin(String),
    #[error("password refused: {0}")]
    WeakPassword(String),
    #[error(
        "user `{user}` already has an API token named `{token}`; revoke it or pick another name"
    )]
    DuplicateToken { user: String, token: String },
    #[error("user `{user}` has no API token named `{token}`")]
    UnknownToken { user: String, token: String },
    #[error(
        "a token of user `{user}` cannot have role {requested}, above the user's own ({owner})"
    )]
    RoleTooHigh {
        user: String,
        requested: Role,
        owner: Role,
    },
    #[error("too many failed logins from this address; try again in {}s", retry_after.as_secs().max(1))]
    TooManyAttempts { retry_after: Duration },
    #[error(
        "the audit log {path} is broken at line {line}: {problem}; nothing more is appended to \
         it — keep it as evidence (move it aside) and start a new log"
    )]
    AuditBroken {
        path: PathBuf,
        line: u64,
        problem: String,
    },
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("cannot use {path} for TLS: {problem}")]
    Tls { path: PathBuf, problem: String },
}

pub type Result<T, E = ServerError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_parse() {
        assert!(Role::Viewer < Role::Operator);
        assert!(Role::Operator < Role::Engineer);
        assert!(Role::Engineer < Role::Admin);
        assert_eq!(Role::ALL.iter().max(), Some(&Role::Admin));
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
            assert_eq!(
                serde_json::to_string(&r).unwrap(),
                format!("\"{}\"", r.as_str())
            );
        }
        let e = "mqtt".parse::<Role>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown role `mqtt`; roles are viewer, operator, engineer, admin"
        );
        assert!("Admin".parse::<Role>().is_err());
    }
}
