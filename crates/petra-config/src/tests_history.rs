//! The `history:` section: rules resolved per signal, defaults, and refusals.

use crate::tests::{compile, errors, show};
use petra_history::Rule;
use std::path::PathBuf;
use std::time::Duration;

const SIGNALS: &str = "plant: demo
data_dir: /var/petra
signals:
  - { name: tank.level, type: float }
  - { name: tank.temp, type: float }
  - { name: pump.run, type: bool }
  - { name: batch, type: string }
";

#[test]
fn the_first_matching_rule_wins_and_defaults_are_filled_in() {
    let src = format!(
        "{SIGNALS}history:
  signals:
    - {{ match: 'tank.*', mode: on_change, deadband: 0.01, max_interval: 1m }}
    - {{ match: '*', mode: periodic, interval: 10s }}
  wal: {{ max_size: 64MiB, fsync: 50ms }}
  parquet: {{ dir: hist, rotate: 1h, retention: 90d }}
  clickhouse:
    urls: [http://ch1:8123, 'http://ch2:8123/']
    password: pw
"
    );
    let plan = compile(&src).unwrap_or_else(|e| panic!("{e}"));
    let h = plan.history.unwrap();
    let rules: Vec<(&str, Rule)> = h.signals.iter().map(|(_, n, r)| (n.as_str(), *r)).collect();
    let on_change = Rule::OnChange {
        deadband: 0.01,
        max_interval: Some(Duration::from_secs(60)),
    };
    let periodic = Rule::Periodic {
        interval: Duration::from_secs(10),
    };
    assert_eq!(
        rules,
        [
            ("tank.level", on_change),
            ("tank.temp", on_change),
            ("pump.run", periodic),
            ("batch", periodic)
        ]
    );
    assert_eq!(h.wal.dir, PathBuf::from("/var/petra/wal"));
    assert_eq!(
        (h.wal.max_size, h.wal.fsync),
        (64 << 20, Duration::from_millis(50))
    );
    let p = h.parquet.unwrap();
    assert_eq!(
        (p.dir, p.compression.as_str()),
        (PathBuf::from("/var/petra/hist"), "zstd")
    );
    assert_eq!(p.retention, Some(Duration::from_secs(90 * 86_400)));
    let c = h.clickhouse.unwrap();
    assert_eq!(c.urls, ["http://ch1:8123", "http://ch2:8123"]);
    assert_eq!(
        (c.database.as_str(), c.table.as_str(), c.batch),
        ("petra", "samples", 10_000)
    );
    assert_eq!((c.user, c.password.as_deref()), (None, Some("pw")));
}

#[test]
fn every_bad_history_setting_is_reported() {
    let src = format!(
        "{SIGNALS}history:
  signals:
    - {{ match: 'valve.*' }}
    - {{ match: 'tank.*', mode: sometimes }}
    - {{ match: '*', mode: periodic }}
    - {{ match: 'pump.*', mode: periodic, interval: 1s, deadband: 1 }}
  wal: {{ max_size: 1024, fsync: 0s }}
  parquet: {{ compression: lz4, rotate: 1s }}
  clickhouse: {{ urls: [ftp://x], table: 'my-table', batch: 0 }}
"
    );
    let errs = errors(&src);
    let got: Vec<(&str, usize)> = errs.iter().map(|d| (d.code, d.line)).collect();
    assert_eq!(
        got,
        [
            ("unknown-signal", 10),
            ("bad-value", 11),
            ("missing-key", 12),
            ("bad-value", 13),
            ("bad-size", 14),
            ("out-of-range", 14),
            ("bad-value", 15),
            ("out-of-range", 15),
            ("bad-value", 16),
            ("bad-value", 16),
            ("out-of-range", 16),
        ],
        "{}",
        show(&errs)
    );
}

#[test]
fn history_needs_a_sink() {
    let src = format!("{SIGNALS}history:\n  signals: [{{ match: '*' }}]\n");
    let errs = errors(&src);
    assert_eq!(errs.len(), 1, "{}", show(&errs));
    assert!(errs[0].message.contains("has no sink"), "{}", errs[0]);
}
