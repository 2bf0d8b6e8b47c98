//! The `history:` section: which signals are recorded how (first matching rule wins), the WAL,
//! and the sinks. Paths are resolved against `data_dir`.

use crate::compile::{Signals, resolve_path};
use crate::diag::{Cx, Pos};
use crate::drivers_mqtt::glob;
use crate::walk::{self, MapW, expect_seq};
use petra_core::SignalId;
use petra_history::{ClickHouseSettings, HistoryConfig, ParquetSettings, Rule, WalSettings};
use std::path::Path;
use std::time::Duration;

const MODES: &[&str] = &["on_change", "periodic"];
const COMPRESSIONS: &[&str] = &["zstd", "snappy", "none"];
const DEFAULT_MAX_SIZE: u64 = 1 << 30;
const DEFAULT_FSYNC: Duration = Duration::from_millis(100);

pub(crate) fn history(
    cx: &mut Cx<'_>,
    mut m: MapW<'_>,
    sigs: &Signals,
    data_dir: &Path,
) -> Option<HistoryConfig> {
    let errors_before = cx.diags.len();
    let pos = m.pos;
    let mut rules: Vec<(String, Pos, Rule)> = Vec::new();
    if let Some(n) = m.req(cx, "signals")
        && let Some(items) = expect_seq(cx, n, "`signals` of `history`")
    {
        for (i, it) in items.iter().enumerate() {
            if let Some(r) = rule(cx, it, i) {
                rules.push(r);
            }
        }
    }
    let wal = match m.opt_map(cx, "wal") {
        Some(mut w) => {
            let dir = w.opt_str(cx, "dir").map(|(d, _)| d).unwrap_or("wal");
            let max_size = size(cx, &mut w, "max_size").unwrap_or(Some(DEFAULT_MAX_SIZE));
            let fsync = w.opt_duration(cx, "fsync");
            if let Some((d, at)) = fsync
                && (d.is_zero() || d > Duration::from_secs(10))
            {
                cx.err(
                    at,
                    "out-of-range",
                    "`fsync` of `wal` must be between 1ms and 10s".to_string(),
                );
            }
            let skip_corrupt = w.opt_bool(cx, "skip_corrupt").unwrap_or(false);
            w.finish(cx);
            max_size.map(|max_size| WalSettings {
                dir: resolve_path(data_dir, dir),
                max_size,
                fsync: fsync.map_or(DEFAULT_FSYNC, |f| f.0),
                skip_corrupt,
            })
        }
        None => Some(WalSettings {
            dir: data_dir.join("wal"),
            max_size: DEFAULT_MAX_SIZE,
            fsync: DEFAULT_FSYNC,
            skip_corrupt: false,
        }),
    };
    let parquet = m.opt_map(cx, "parquet").map(|mut p| {
        let dir = p.opt_str(cx, "dir").map(|(d, _)| d).unwrap_or("history");
        let rotate = p.opt_duration(cx, "rotate");
        if let Some((r, at)) = rotate
            && !(Duration::from_secs(60)..=Duration::from_secs(86_400)).contains(&r)
        {
            cx.err(
                at,
                "out-of-range",
                "`rotate` of `parquet` must be between 1m and 1d".to_string(),
            );
        }
        let compression = match p.opt_str(cx, "compression") {
            None => "zstd".to_string(),
            Some((c, at)) if !COMPRESSIONS.contains(&c) => {
                cx.err(
                    at,
                    "bad-value",
                    format!(
                        "`compression` of `parquet` is `{c}`; use {}{}",
                        walk::list(COMPRESSIONS),
                        walk::did_you_mean(c, COMPRESSIONS)
                    ),
                );
                c.to_string()
            }
            Some((c, _)) => c.to_string(),
        };
        let retention = p.opt_duration(cx, "retention").map(|r| r.0);
        p.finish(cx);
        ParquetSettings {
            dir: resolve_path(data_dir, dir),
            rotate: rotate.map_or(Duration::from_secs(3600), |r| r.0),
            compression,
            retention,
        }
    });
    let clickhouse = m.opt_map(cx, "clickhouse").and_then(|mut c| {
        let mut urls = Vec::new();
        if let Some(n) = c.req(cx, "urls")
            && let Some(items) = expect_seq(cx, n, "`urls` of `clickhouse`")
        {
            for it in items {
                let Some(u) = walk::expect_str(cx, it, "a URL in `urls` of `clickhouse`") else {
                    continue;
                };
                if !(u.starts_with("http://") || u.starts_with("https://")) || u.len() < 9 {
                    cx.err(it.pos, "bad-value", format!("`{u}` in `urls` of `clickhouse` is not an HTTP URL; write http://HOST:8123 or https://HOST:8443"));
                }
                urls.push(u.trim_end_matches('/').to_string());
            }
            if items.is_empty() {
                cx.err(n.pos, "missing-key", "`urls` of `clickhouse` is empty; give at least one server".to_string());
            }
        }
        let ident = |cx: &mut Cx<'_>, c: &mut MapW<'_>, key: &'static str, default: &str| {
            match c.opt_str(cx, key) {
                None => Some(default.to_string()),
                Some((v, at)) if v.is_empty() || !v.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_') => {
                    cx.err(at, "bad-value", format!("`{key}` of `clickhouse` is `{v}`; use letters, digits and `_`"));
                    None
                }
                Some((v, _)) => Some(v.to_string()),
            }
        };
        let database = ident(cx, &mut c, "database", "petra");
        let table = ident(cx, &mut c, "table", "samples");
        let user = c.opt_str(cx, "user").map(|(u, _)| u.to_string());
        let password = c.opt_str(cx, "password").map(|(p, _)| p.to_string());
        let batch = match c.opt_i64(cx, "batch") {
            None => Some(10_000),
            Some((b, _)) if (1..=1_000_000).contains(&b) => Some(b as usize),
            Some((b, at)) => {
                cx.err(at, "out-of-range", format!("`batch` of `clickhouse` is {b}; use 1 to 1000000 rows"));
                None
            }
        };
        let flush = c.opt_duration(cx, "flush").map_or(Duration::from_secs(1), |f| f.0);
        c.finish(cx);
        Some(ClickHouseSettings {
            urls,
            database: database?,
            table: table?,
            user,
            password,
            batch: batch?,
            flush,
        })
    });
    m.finish(cx);
    if parquet.is_none() && clickhouse.is_none() && cx.diags.len() == errors_before {
        cx.err(
            pos,
            "missing-key",
            "`history` has no sink; add `parquet` (files under data_dir) or `clickhouse`"
                .to_string(),
        );
    }
    // Every signal gets the first rule that matches its name.
    let mut signals: Vec<(SignalId, String, Rule)> = Vec::new();
    let mut used = vec![false; rules.len()];
    for (i, s) in sigs.list.iter().enumerate() {
        let name = &s.plan.def.name;
        if let Some(k) = rules.iter().position(|(pat, _, _)| glob(pat, name)) {
            used[k] = true;
            signals.push((SignalId::from_index(i), name.clone(), rules[k].2));
        }
    }
    for (k, (pat, at, _)) in rules.iter().enumerate() {
        if !used[k] {
            cx.err(
                *at,
                "unknown-signal",
                format!("history rule `{pat}` matches no signal (or only signals an earlier rule took); `*` matches any characters"),
            );
        }
    }
    if cx.diags.len() != errors_before {
        return None;
    }
    Some(HistoryConfig {
        signals,
        wal: wal?,
        parquet,
        clickhouse,
    })
}

fn size(cx: &mut Cx<'_>, m: &mut MapW<'_>, key: &'static str) -> Option<Option<u64>> {
    let n = m.get(key)?;
    let what = format!("`{key}` of `wal`");
    // As written, so a bare number is reported as a size without a unit.
    match crate::units::parse_size(&n.shown()) {
        Ok(v) if v >= 1 << 20 => Some(Some(v)),
        Ok(_) => {
            cx.err(
                n.pos,
                "out-of-range",
                format!("{what} must be at least 1MiB"),
            );
            Some(None)
        }
        Err(e) => {
            cx.err(n.pos, "bad-size", format!("{what}: {e}"));
            Some(None)
        }
    }
}

fn rule(cx: &mut Cx<'_>, n: &crate::yaml::Node, i: usize) -> Option<(String, Pos, Rule)> {
    let mut m = MapW::new(cx, n, format!("history rule {}", i + 1))?;
    let pattern = m.req_str(cx, "match");
    let mode = m.opt_str(cx, "mode");
    let deadband = m.opt_f64(cx, "deadband");
    let max_interval = m.opt_duration(cx, "max_interval");
    let interval = m.opt_duration(cx, "interval");
    let what = m.what.clone();
    let positive = |cx: &mut Cx<'_>, d: Option<(Duration, Pos)>, key: &str| match d {
        Some((d, at)) if d < Duration::from_millis(1) => {
            cx.err(
                at,
                "out-of-range",
                format!("`{key}` of {what} must be at least 1ms"),
            );
            None
        }
        d => Some(d.map(|d| d.0)),
    };
    let rule = match mode {
        None | Some(("on_change", _)) => {
            if let Some((_, at)) = interval {
                cx.err(at, "bad-value", format!("`interval` of {what} belongs to `mode: periodic`; use `max_interval` for a heartbeat"));
            }
            let deadband = match deadband {
                Some((d, at)) if !(d >= 0.0 && d.is_finite()) => {
                    cx.err(
                        at,
                        "out-of-range",
                        format!("`deadband` of {what} must be 0 or more"),
                    );
                    None
                }
                d => Some(d.map_or(0.0, |d| d.0)),
            };
            let max_interval = positive(cx, max_interval, "max_interval");
            match (deadband, max_interval) {
                (Some(deadband), Some(max_interval)) => Some(Rule::OnChange {
                    deadband,
                    max_interval,
                }),
                _ => None,
            }
        }
        Some(("periodic", _)) => {
            for (k, v) in [
                ("deadband", deadband.map(|d| d.1)),
                ("max_interval", max_interval.map(|d| d.1)),
            ] {
                if let Some(at) = v {
                    cx.err(
                        at,
                        "bad-value",
                        format!("`{k}` of {what} belongs to `mode: on_change`"),
                    );
                }
            }
            match interval {
                None => {
                    cx.err(
                        m.pos,
                        "missing-key",
                        format!("{what} is periodic; give its `interval`"),
                    );
                    None
                }
                i => positive(cx, i, "interval")
                    .flatten()
                    .map(|interval| Rule::Periodic { interval }),
            }
        }
        Some((o, at)) => {
            cx.err(
                at,
                "bad-value",
                format!(
                    "`mode` of {what} is `{o}`; use {}{}",
                    walk::list(MODES),
                    walk::did_you_mean(o, MODES)
                ),
            );
            None
        }
    };
    m.finish(cx);
    Some((pattern?.0.to_string(), pattern?.1, rule?))
}
