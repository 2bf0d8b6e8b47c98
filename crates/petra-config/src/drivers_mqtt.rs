//! The `type: mqtt` driver of `drivers:`: the broker URL and credentials, subscriptions mapped
//! to signals, the signals to publish (name patterns), and whether commands are accepted.
//! Topics and filters are checked here, so a typo is an error with a position, not a
//! subscription that never matches.

use crate::compile::Signals;
use crate::diag::{Cx, Pos};
use crate::drivers::{DriverContext, DriverPlan, DriverWrite, positive};
use crate::walk::{self, MapW, expect_seq};
use petra_core::SignalId;
use petra_mqtt::{Broker, MqttConfig, Publish, Subscription, Tls};
use std::path::{Path, PathBuf};
use std::time::Duration;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(30);
const DEFAULT_RECONNECT_MAX: Duration = Duration::from_secs(30);
/// Debian's bundle of the public CAs: the default for `mqtts://` without `ca_file`.
const SYSTEM_CAS: &str = "/etc/ssl/certs/ca-certificates.crt";

pub(crate) fn mqtt(
    cx: &mut Cx<'_>,
    m: &mut MapW<'_>,
    sigs: &Signals,
    ctx: &DriverContext<'_>,
    writes: &mut Vec<DriverWrite>,
) -> Option<DriverPlan> {
    let name = m.req_str(cx, "name").map(|(s, _)| s.to_string());
    let url = m
        .req_str(cx, "url")
        .and_then(|(u, at)| url(cx, u, at, &m.what));
    let client_id = match m.opt_str(cx, "client_id") {
        Some((c, at)) if c.is_empty() || c.len() > 64 => {
            cx.err(
                at,
                "bad-value",
                format!("`client_id` of {} must be 1 to 64 characters", m.what),
            );
            None
        }
        Some((c, _)) => Some(c.to_string()),
        None => Some(format!(
            "petra-{}-{}",
            ctx.plant,
            name.as_deref().unwrap_or("mqtt")
        )),
    };
    let username = m.opt_str(cx, "username").map(|(u, _)| u.to_string());
    let password = m.opt_str(cx, "password").map(|(p, _)| p.to_string());
    if password.is_some() && username.is_none() {
        cx.err(
            m.pos,
            "missing-key",
            format!("{} has a `password` but no `username`; add it", m.what),
        );
    }
    let ca_file = m
        .opt_str(cx, "ca_file")
        .map(|(f, _)| resolve(ctx.base_dir, f));
    let cert = m
        .opt_str(cx, "cert_file")
        .map(|(f, _)| resolve(ctx.base_dir, f));
    let key = m
        .opt_str(cx, "key_file")
        .map(|(f, _)| resolve(ctx.base_dir, f));
    let client_auth = match (cert, key) {
        (Some(c), Some(k)) => Some(Some((c, k))),
        (None, None) => Some(None),
        _ => {
            cx.err(
                m.pos,
                "missing-key",
                format!(
                    "{}: `cert_file` and `key_file` go together; give both",
                    m.what
                ),
            );
            None
        }
    };
    let timeout = positive(cx, m, "timeout").map(|p| p.unwrap_or(DEFAULT_TIMEOUT));
    let keep_alive = positive(cx, m, "keep_alive").map(|p| p.unwrap_or(DEFAULT_KEEP_ALIVE));
    let reconnect_max =
        positive(cx, m, "reconnect_max").map(|p| p.unwrap_or(DEFAULT_RECONNECT_MAX));
    let commands = m.opt_bool(cx, "commands").unwrap_or(false);
    if commands && !ctx.has_server {
        cx.err(
            m.get("commands").map_or(m.pos, |n| n.pos),
            "bad-value",
            format!(
                "{} accepts commands, which are checked and audit-logged by the HTTP API; add a \
                 `server` section (its audit log records every command) or remove `commands`",
                m.what
            ),
        );
    }

    let mut subscribe = Vec::new();
    if let Some(n) = m.get("subscribe")
        && let Some(items) = expect_seq(cx, n, &format!("`subscribe` of {}", m.what))
    {
        for (i, it) in items.iter().enumerate() {
            let what = format!("subscription {} of {}", i + 1, m.what);
            if let Some(s) = subscription(cx, it, what, sigs) {
                writes.push(DriverWrite {
                    signal: s.signal,
                    at: it.pos,
                    driver: name.clone().unwrap_or_default(),
                    readwrite: false,
                });
                subscribe.push(s);
            }
        }
    }
    let mut prefix = Some(format!("petra/{}", ctx.plant));
    let publish = match m.opt_map(cx, "publish") {
        None => Some(None),
        Some(mut p) => {
            p.what = format!("`publish` of {}", m.what);
            if let Some((pre, at)) = p.opt_str(cx, "prefix") {
                prefix = topic_prefix(cx, pre, at, &p.what);
            }
            let out = publish(cx, &mut p, sigs).map(Some);
            p.finish(cx);
            out
        }
    };
    let tls = match (&url, ca_file) {
        (Some((_, _, true)), ca) => Some(Some(Tls {
            ca_file: ca.unwrap_or_else(|| PathBuf::from(SYSTEM_CAS)),
            client_auth: client_auth.clone()?,
        })),
        (Some((_, _, false)), Some(_)) => {
            cx.err(
                m.pos,
                "bad-value",
                format!(
                    "{} has `ca_file` but connects with mqtt:// (no TLS); use mqtts://",
                    m.what
                ),
            );
            None
        }
        _ => Some(None),
    };
    let (host, port, _) = url?;
    Some(DriverPlan::Mqtt(MqttConfig {
        name: name?,
        broker: Broker {
            host,
            port,
            tls: tls?,
        },
        client_id: client_id?,
        username,
        password,
        timeout: timeout?,
        keep_alive: keep_alive?,
        reconnect_max: reconnect_max?,
        prefix: prefix?,
        subscribe,
        publish: publish?,
        commands,
    }))
}

fn resolve(base: &Path, f: &str) -> PathBuf {
    let p = PathBuf::from(f);
    if p.is_absolute() { p } else { base.join(p) }
}

/// `mqtt://host[:port]` or `mqtts://host[:port]` → (host, port, tls).
fn url(cx: &mut Cx<'_>, url: &str, at: Pos, what: &str) -> Option<(String, u16, bool)> {
    let (rest, tls, default_port) = if let Some(r) = url.strip_prefix("mqtts://") {
        (r, true, 8883)
    } else if let Some(r) = url.strip_prefix("mqtt://") {
        (r, false, 1883)
    } else {
        cx.err(
            at,
            "bad-value",
            format!("`url` of {what} is `{url}`: the scheme must be mqtt:// or mqtts://"),
        );
        return None;
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') || h.ends_with(']') => {
            (h, p.parse::<u16>().ok().filter(|p| *p > 0))
        }
        _ => (rest, Some(default_port)),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match port {
        Some(port) if !host.is_empty() && !host.contains('/') => {
            Some((host.to_string(), port, tls))
        }
        Some(_) => {
            cx.err(
                at,
                "bad-value",
                format!("`url` of {what} is `{url}`: it names no host; write mqtt://HOST:PORT"),
            );
            None
        }
        None => {
            cx.err(
                at,
                "bad-value",
                format!("`url` of {what} is `{url}`: the port must be a number from 1 to 65535"),
            );
            None
        }
    }
}

fn topic_prefix(cx: &mut Cx<'_>, p: &str, at: Pos, what: &str) -> Option<String> {
    if p.is_empty()
        || p.ends_with('/')
        || p.contains(['+', '#'])
        || !petra_mqtt::client::valid_topic(p)
    {
        cx.err(
            at,
            "bad-value",
            format!("`prefix` of {what} is `{p}`; a prefix is a topic without wildcards (`+`, `#`) and without a trailing `/`, such as petra/plant1"),
        );
        return None;
    }
    Some(p.to_string())
}

fn subscription(
    cx: &mut Cx<'_>,
    n: &crate::yaml::Node,
    what: String,
    sigs: &Signals,
) -> Option<Subscription> {
    let errors_before = cx.diags.len();
    let mut m = MapW::new(cx, n, what)?;
    let topic = m.req_str(cx, "topic").and_then(|(t, at)| {
        if t.is_empty() || !petra_mqtt::client::valid_filter(t) {
            cx.err(
                at,
                "bad-value",
                format!("`topic` of {} is `{t}`, which is not a valid topic filter: `+` matches one whole level, `#` only the whole last level (sensors/+/temp, sensors/#)", m.what),
            );
            None
        } else {
            Some(t.to_string())
        }
    });
    let signal = m.req(cx, "signal").and_then(|s| {
        crate::blocks::lookup_signal(cx, sigs, s, &format!("`signal` of {}", m.what))
    });
    let json = match m.opt_str(cx, "json") {
        Some((j, at)) if !(j.is_empty() || j.starts_with('/')) => {
            cx.err(at, "bad-value", format!("`json` of {} is `{j}`; a JSON pointer starts with `/`, such as /temp or /data/0/value", m.what));
            None
        }
        Some((j, _)) => Some(Some(j.to_string())),
        None => Some(None),
    };
    m.finish(cx);
    let (topic, (id, ty), json) = (topic?, signal?, json?);
    if cx.diags.len() != errors_before {
        return None;
    }
    Some(Subscription {
        filter: topic,
        signal: id,
        signal_name: sigs.list[id.index()].plan.def.name.clone(),
        signal_type: ty,
        json,
    })
}

fn publish(cx: &mut Cx<'_>, p: &mut MapW<'_>, sigs: &Signals) -> Option<Publish> {
    let mut selected: Vec<(SignalId, String)> = Vec::new();
    if let Some(n) = p.req(cx, "signals")
        && let Some(items) = expect_seq(cx, n, &format!("`signals` of {}", p.what))
    {
        let mut chosen = vec![false; sigs.list.len()];
        for it in items {
            let Some(pattern) =
                walk::expect_str(cx, it, &format!("a pattern in `signals` of {}", p.what))
            else {
                continue;
            };
            let mut any = false;
            for (i, s) in sigs.list.iter().enumerate() {
                if glob(pattern, &s.plan.def.name) {
                    any = true;
                    chosen[i] = true;
                }
            }
            if !any {
                cx.err(
                    it.pos,
                    "unknown-signal",
                    format!("`{pattern}` in `signals` of {} matches no declared signal (`*` matches any characters: tank.*, *)", p.what),
                );
            }
        }
        selected = chosen
            .iter()
            .enumerate()
            .filter(|(_, c)| **c)
            .map(|(i, _)| (SignalId::from_index(i), sigs.list[i].plan.def.name.clone()))
            .collect();
    }
    let qos = match p.opt_i64(cx, "qos") {
        None => Some(0),
        Some((q @ (0 | 1), _)) => Some(q as u8),
        Some((q, at)) => {
            cx.err(
                at,
                "out-of-range",
                format!(
                    "`qos` of {} is {q}; use 0 (at most once) or 1 (at least once)",
                    p.what
                ),
            );
            None
        }
    };
    let retain = p.opt_bool(cx, "retain").unwrap_or(false);
    let deadband = match p.opt_f64(cx, "deadband") {
        None => Some(0.0),
        Some((d, _)) if d >= 0.0 && d.is_finite() => Some(d),
        Some((d, at)) => {
            cx.err(
                at,
                "out-of-range",
                format!("`deadband` of {} is {d}; it must be 0 or more", p.what),
            );
            None
        }
    };
    let min_interval = p
        .opt_duration(cx, "min_interval")
        .map(|d| d.0)
        .unwrap_or_default();
    Some(Publish {
        signals: selected,
        qos: qos?,
        retain,
        deadband: deadband?,
        min_interval,
    })
}

/// `*` matches any run of characters (also none); everything else matches itself.
pub(crate) fn glob(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => {
            let Some(rest) = name.strip_prefix(head) else {
                return false;
            };
            if !tail.contains('*') {
                return rest.len() >= tail.len() && rest.ends_with(tail);
            }
            (0..=rest.len())
                .filter(|i| rest.is_char_boundary(*i))
                .any(|i| glob(tail, &rest[i..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn glob_patterns() {
        assert!(glob("tank.*", "tank.level"));
        assert!(glob("*", "x"));
        assert!(glob("*.level", "tank.level"));
        assert!(glob("t*k.*l", "tank.level"));
        assert!(!glob("tank.*", "pump.run"));
        assert!(glob("pump.run", "pump.run"));
        assert!(!glob("pump", "pump.run"));
        assert!(!glob("a*b", "ba"));
    }
}
