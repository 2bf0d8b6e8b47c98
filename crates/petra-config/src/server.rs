//! The `server:` section: where the HTTP API listens, its TLS files, the users file, the audit
//! log and how long a login lasts. Only read and checked here; `petra-server` opens the files.

use crate::compile::resolve_path;
use crate::diag::Cx;
use crate::walk::MapW;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub(crate) const DEFAULT_USERS_FILE: &str = "users.json";
pub(crate) const DEFAULT_AUDIT_LOG: &str = "audit.jsonl";
pub(crate) const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(8 * 3600);
const MIN_TOKEN_TTL: Duration = Duration::from_secs(60);
const MAX_TOKEN_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// The `server:` section, with every path resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerPlan {
    /// Address and port of the HTTP API. Not loopback only with `tls`.
    pub listen: SocketAddr,
    pub tls: Option<TlsPlan>,
    /// The users file written by `petra user`; relative paths are relative to `data_dir`.
    pub users_file: PathBuf,
    /// The audit log (JSON lines, hash-chained); relative to `data_dir`. `None`: no audit log.
    pub audit_log: Option<PathBuf>,
    /// How long a login token lasts.
    pub token_ttl: Duration,
}

/// Certificate chain and private key (PEM), relative to the configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsPlan {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Reads the `server:` mapping. `base_dir` is the configuration file's directory, `data_dir` the
/// resolved data directory.
pub(crate) fn server(
    cx: &mut Cx<'_>,
    mut m: MapW<'_>,
    base_dir: &Path,
    data_dir: &Path,
) -> Option<ServerPlan> {
    let errors_before = cx.diags.len();
    let listen = match m.opt_str(cx, "listen") {
        Some((s, at)) => match s.parse::<SocketAddr>() {
            Ok(a) => Some((a, Some(at))),
            Err(_) => {
                cx.err(
                    at,
                    "bad-value",
                    format!(
                        "`listen` of `server` is `{}`; write an IP address and a port, such as \
                         127.0.0.1:8080, 0.0.0.0:8443 or [::1]:8080",
                        m.shown("listen")
                    ),
                );
                None
            }
        },
        None => Some((DEFAULT_LISTEN.parse().expect("a valid address"), None)),
    };
    let tls = m.opt_map(cx, "tls").and_then(|mut t| {
        let cert = t.req_str(cx, "cert");
        let key = t.req_str(cx, "key");
        t.finish(cx);
        Some(TlsPlan {
            cert: resolve_path(base_dir, cert?.0),
            key: resolve_path(base_dir, key?.0),
        })
    });
    let users_file = m
        .opt_str(cx, "users_file")
        .map(|(s, _)| s)
        .unwrap_or(DEFAULT_USERS_FILE);
    // Secure by default: every write, login and user change is audited unless told otherwise.
    let audit_log = Some(
        m.opt_str(cx, "audit_log")
            .map(|(s, _)| s)
            .unwrap_or(DEFAULT_AUDIT_LOG),
    );
    let token_ttl = match m.opt_duration(cx, "token_ttl") {
        Some((d, at)) if !(MIN_TOKEN_TTL..=MAX_TOKEN_TTL).contains(&d) => {
            cx.err(
                at,
                "out-of-range",
                "`token_ttl` of `server` must be between 1m and 30d",
            );
            None
        }
        Some((d, _)) => Some(d),
        None => Some(DEFAULT_TOKEN_TTL),
    };
    for (key, value) in [("users_file", Some(users_file)), ("audit_log", audit_log)] {
        if value == Some("") {
            cx.err(
                m.get(key).map(|n| n.pos).unwrap_or(m.pos),
                "bad-value",
                format!("`{key}` of `server` is empty; name a file"),
            );
        }
    }
    if let Some((addr, at)) = listen
        && !addr.ip().is_loopback()
        && m.get("tls").is_none()
    {
        cx.err(
            at.unwrap_or(m.pos),
            "insecure-listen",
            format!(
                "`server` listens on {addr}, which is reachable from other machines, without \
                 `tls`; passwords and tokens would cross the network in clear text — add \
                 `tls: {{ cert: FILE, key: FILE }}` (docs/security.md shows how to make a \
                 certificate) or listen on 127.0.0.1"
            ),
        );
    }
    m.finish(cx);
    if cx.diags.len() != errors_before {
        return None;
    }
    Some(ServerPlan {
        listen: listen?.0,
        tls,
        users_file: resolve_path(data_dir, users_file),
        audit_log: audit_log.map(|a| resolve_path(data_dir, a)),
        token_ttl: token_ttl?,
    })
}
