//! The ClickHouse sink against a real ClickHouse 18.16 (petra-test-support's peer): the table,
//! exact rows, a repeated batch seen once, failover, outages, credentials, TLS.

use std::sync::Arc;

use petra_history::clickhouse::{COLUMNS, ClickHouseConfig, ClickHouseSink, create_table_sql};
use petra_history::{Row, Sink, SinkError};
use petra_test_support::clickhouse::{ClickHouse, PASSWORD, USER};
use petra_test_support::free_port;

/// 2025-12-04T15:00:00Z.
const T0: i64 = 1_764_860_400_000;

fn config(urls: &[String]) -> ClickHouseConfig {
    ClickHouseConfig {
        user: Some(USER.into()),
        password: Some(PASSWORD.into()),
        ..ClickHouseConfig::new(urls.to_vec())
    }
}

fn sink(ch: &ClickHouse) -> ClickHouseSink {
    ClickHouseSink::new(config(&[ch.url()]))
}

fn num(signal: &str, ts_ms: i64, value: f64, quality: &'static str, seq: u64) -> Row {
    Row {
        signal: signal.into(),
        ts_ms,
        value: Some(value),
        text: None,
        quality,
        seq,
    }
}

fn text(signal: &str, ts_ms: i64, text: &str, seq: u64) -> Row {
    Row {
        signal: signal.into(),
        ts_ms,
        value: None,
        text: Some(Arc::from(text)),
        quality: "good",
        seq,
    }
}

/// Rows 1..=n of signal `s`, 250 ms apart.
fn series(s: &str, seqs: std::ops::RangeInclusive<u64>) -> Vec<Row> {
    seqs.map(|q| num(s, T0 + q as i64 * 250, q as f64 / 10.0, "good", q))
        .collect()
}

/// Makes the table as the sink would and stops background merges on it, so that parts and
/// copies stay countable until the test merges them.
fn table_without_merges(ch: &ClickHouse) {
    ch.query("CREATE DATABASE petra");
    ch.query(&create_table_sql("petra", "samples"));
    ch.query("SYSTEM STOP MERGES petra.samples");
}

fn all(sink: &mut ClickHouseSink, signal: &str) -> Vec<Row> {
    sink.query(signal, 0, i64::MAX, 100_000).unwrap()
}

#[test]
fn the_table_is_created_and_rows_come_back_exact() {
    let ch = ClickHouse::start();
    let mut sink = sink(&ch);
    assert_eq!(sink.name(), "clickhouse");
    assert_eq!(ch.query("EXISTS TABLE petra.samples"), "0\n");
    let rows = vec![
        num("tank.level", T0 + 123, 2.5, "good", 1),
        num("tank.level", T0 + 999, -0.1, "uncertain", 2),
        // Same millisecond, another WAL position: both kept.
        num("tank.level", T0 + 999, 1e300, "bad", 3),
        num("pump.on", T0 + 1_000, 1.0, "good", 4),
        num("pump.on", T0 + 1_001, 0.0, "bad", 5),
        text("batch.id", T0 + 7, "Grüße 'x' \\ \t\n", 6),
        text("batch.id", T0 + 8, "", 7),
        num("tank.level", 0, f64::MIN_POSITIVE, "good", 8),
    ];
    sink.write(&rows).unwrap();

    assert_eq!(
        ch.query(
            "SELECT engine, partition_key, sorting_key FROM system.tables \
             WHERE database = 'petra' AND name = 'samples'"
        ),
        "ReplacingMergeTree\ttoYYYYMM(ts)\tsignal, ts, ms, seq\n"
    );
    let columns = ch.query(
        "SELECT name, type FROM system.columns WHERE database = 'petra' AND table = 'samples'",
    );
    let expected: String = COLUMNS
        .iter()
        .map(|(n, t)| format!("{n}\t{}\n", t.replace('\'', "\\'")))
        .collect();
    assert_eq!(columns, expected);

    // Through the sink's query: every field exact, oldest first, ties in WAL order.
    let mut level = all(&mut sink, "tank.level");
    assert_eq!(
        level,
        [&rows[7], &rows[0], &rows[1], &rows[2]].map(Clone::clone)
    );
    assert_eq!(all(&mut sink, "pump.on"), rows[3..5]);
    assert_eq!(
        all(&mut sink, "batch.id"),
        [&rows[5], &rows[6]].map(Clone::clone)
    );
    assert_eq!(all(&mut sink, "nothing"), []);
    level.clear();

    // Through an independent client: the documented columns hold what they say.
    assert_eq!(
        ch.query(
            "SELECT signal, ts, ms, toInt64(ts) * 1000 + ms, value, text, quality, seq \
             FROM petra.samples FINAL WHERE signal != 'tank.level' ORDER BY seq"
        ),
        format!(
            "pump.on\t2025-12-04 15:00:01\t0\t{}\t1\t\\N\tgood\t4\n\
             pump.on\t2025-12-04 15:00:01\t1\t{}\t0\t\\N\tbad\t5\n\
             batch.id\t2025-12-04 15:00:00\t7\t{}\t\\N\tGrüße \\'x\\' \\\\ \\t\\n\tgood\t6\n\
             batch.id\t2025-12-04 15:00:00\t8\t{}\t\\N\t\tgood\t7\n",
            T0 + 1000,
            T0 + 1001,
            T0 + 7,
            T0 + 8
        )
    );

    // Time ranges are half-open, in milliseconds; the limit keeps the oldest.
    let q = |sink: &mut ClickHouseSink, from, to, limit| {
        sink.query("tank.level", from, to, limit)
            .unwrap()
            .iter()
            .map(|r| r.seq)
            .collect::<Vec<_>>()
    };
    assert_eq!(q(&mut sink, T0 + 123, T0 + 999, 10), [1]);
    assert_eq!(q(&mut sink, T0 + 124, T0 + 1000, 10), [2, 3]);
    assert_eq!(q(&mut sink, 0, T0 + 1000, 2), [8, 1]);
    assert_eq!(q(&mut sink, 1, T0, 10), Vec::<u64>::new());
    assert_eq!(q(&mut sink, T0 + 1000, T0, 10), Vec::<u64>::new());

    // NaN and infinities go through RowBinary unchanged.
    sink.write(&[
        num("odd", T0, f64::NAN, "bad", 9),
        num("odd", T0 + 1, f64::NEG_INFINITY, "bad", 10),
    ])
    .unwrap();
    let odd = all(&mut sink, "odd");
    assert!(odd[0].value.unwrap().is_nan(), "{odd:?}");
    assert_eq!(odd[1].value, Some(f64::NEG_INFINITY));
}

#[test]
fn a_repeated_batch_shows_up_once_in_queries() {
    let ch = ClickHouse::start();
    table_without_merges(&ch);
    let mut sink = sink(&ch);
    sink.write(&series("s", 1..=5)).unwrap();
    // The runner repeats a write whose answer was lost: the same rows, and a repeat cut
    // differently (overlapping the first and going further).
    sink.write(&series("s", 1..=5)).unwrap();
    sink.write(&series("s", 3..=8)).unwrap();
    assert_eq!(ch.query("SELECT count() FROM petra.samples"), "16\n");
    assert_eq!(all(&mut sink, "s"), series("s", 1..=8));
    assert_eq!(ch.query("SELECT count() FROM petra.samples FINAL"), "8\n");
    // Merging removes the copies for good.
    ch.query("SYSTEM START MERGES petra.samples");
    ch.query("OPTIMIZE TABLE petra.samples FINAL");
    assert_eq!(ch.query("SELECT count() FROM petra.samples"), "8\n");
    assert_eq!(all(&mut sink, "s"), series("s", 1..=8));
}

#[test]
fn a_write_larger_than_a_batch_is_sent_in_several_inserts() {
    let ch = ClickHouse::start();
    table_without_merges(&ch);
    let mut sink = ClickHouseSink::new(ClickHouseConfig {
        batch: 3,
        ..config(&[ch.url()])
    });
    sink.write(&series("s", 1..=10)).unwrap();
    assert_eq!(all(&mut sink, "s"), series("s", 1..=10));
    // One part per INSERT (ceil(10 / 3)).
    assert_eq!(
        ch.query("SELECT count() FROM system.parts WHERE database = 'petra' AND active"),
        "4\n"
    );
}

#[test]
fn writes_fail_over_from_a_dead_url_and_stay_with_the_live_one() {
    let ch = ClickHouse::start();
    let dead = format!("http://127.0.0.1:{}", free_port());
    let mut sink = ClickHouseSink::new(config(&[dead.clone(), ch.url()]));
    assert_eq!(sink.current_url(), Some(dead.as_str()));
    sink.write(&series("s", 1..=3)).unwrap();
    assert_eq!(sink.current_url(), Some(ch.url().as_str()));
    sink.write(&series("s", 4..=5)).unwrap();
    assert_eq!(all(&mut sink, "s"), series("s", 1..=5));
}

#[test]
fn a_killed_server_is_unavailable_and_writes_resume_after_its_restart() {
    let mut ch = ClickHouse::start();
    let mut sink = sink(&ch);
    sink.write(&series("s", 1..=3)).unwrap();
    ch.kill();
    match sink.write(&series("s", 4..=6)) {
        Err(SinkError::Unavailable(m)) => assert!(m.contains(&ch.url()), "{m}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(matches!(
        sink.query("s", 0, i64::MAX, 10),
        Err(SinkError::Unavailable(_))
    ));
    ch.restart();
    // The runner retries the same rows.
    sink.write(&series("s", 4..=6)).unwrap();
    assert_eq!(all(&mut sink, "s"), series("s", 1..=6));
}

#[test]
fn a_second_server_takes_over_when_the_first_dies() {
    let mut first = ClickHouse::start();
    let second = ClickHouse::start();
    let mut sink = ClickHouseSink::new(config(&[first.url(), second.url()]));
    sink.write(&series("s", 1..=2)).unwrap();
    first.kill();
    // The table is made on the second server before the rows go there.
    sink.write(&series("s", 3..=4)).unwrap();
    assert_eq!(sink.current_url(), Some(second.url().as_str()));
    assert_eq!(all(&mut sink, "s"), series("s", 3..=4));
    // The first coming back does not move the sink: it stays where it works.
    first.restart();
    sink.write(&series("s", 5..=5)).unwrap();
    assert_eq!(all(&mut sink, "s"), series("s", 3..=5));
    assert_eq!(first.query("SELECT max(seq) FROM petra.samples"), "2\n");
}

#[test]
fn a_dropped_table_is_made_again() {
    let ch = ClickHouse::start();
    let mut sink = sink(&ch);
    sink.write(&series("s", 1..=2)).unwrap();
    ch.query("DROP DATABASE petra");
    assert_eq!(all(&mut sink, "s"), []);
    sink.write(&series("s", 3..=4)).unwrap();
    assert_eq!(all(&mut sink, "s"), series("s", 3..=4));
}

#[test]
fn wrong_credentials_are_refused_with_a_clear_message() {
    let ch = ClickHouse::start();
    for (user, password) in [(USER, "wrong"), ("nobody", PASSWORD)] {
        let mut sink = ClickHouseSink::new(ClickHouseConfig {
            user: Some(user.into()),
            password: Some(password.into()),
            ..ClickHouseConfig::new(vec![ch.url()])
        });
        match sink.write(&series("s", 1..=1)) {
            Err(SinkError::Refused(m)) => {
                assert!(
                    m.contains(&ch.url())
                        && m.contains(&format!("user `{user}`"))
                        && m.contains("check `user` and `password`")
                        && !m.contains(password),
                    "{m}"
                );
            }
            other => panic!("expected Refused, got {other:?}"),
        }
    }
    // A refusal on one server and an outage of another is still a refusal.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let mut sink = ClickHouseSink::new(ClickHouseConfig {
        password: Some("wrong".into()),
        ..config(&[dead, ch.url()])
    });
    assert!(matches!(
        sink.write(&series("s", 1..=1)),
        Err(SinkError::Refused(_))
    ));
    // The user `default` (no password) works.
    let mut sink = ClickHouseSink::new(ClickHouseConfig::new(vec![ch.url()]));
    sink.write(&series("s", 1..=1)).unwrap();
}

#[test]
fn a_table_that_does_not_fit_is_refused() {
    let ch = ClickHouse::start();
    ch.query("CREATE DATABASE petra");
    ch.query(
        "CREATE TABLE petra.samples (signal String, ts DateTime, value Float64) \
         ENGINE = MergeTree ORDER BY (signal, ts)",
    );
    match sink(&ch).write(&series("s", 1..=1)) {
        Err(SinkError::Refused(m)) => assert!(
            m.contains("does not fit")
                && m.contains("engine MergeTree")
                && m.contains("column ms missing")
                && m.contains("column value is Float64, not Nullable(Float64)"),
            "{m}"
        ),
        other => panic!("expected Refused, got {other:?}"),
    }
}

#[test]
fn https_is_verified_against_the_configured_ca() {
    let ch = ClickHouse::start();
    let mut sink = ClickHouseSink::new(ClickHouseConfig {
        ca_file: Some(ch.ca_file()),
        ..config(&[ch.https_url()])
    });
    sink.write(&series("s", 1..=2)).unwrap();
    assert_eq!(all(&mut sink, "s"), series("s", 1..=2));
    // The system trust store does not know the test CA.
    let mut untrusted = ClickHouseSink::new(config(&[ch.https_url()]));
    match untrusted.write(&series("s", 3..=3)) {
        Err(SinkError::Unavailable(m)) => assert!(m.contains("certificate"), "{m}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    // A CA file that is not there is refused, naming it.
    let mut missing = ClickHouseSink::new(ClickHouseConfig {
        ca_file: Some(ch.dir().join("nope.pem")),
        ..config(&[ch.https_url()])
    });
    match missing.write(&series("s", 3..=3)) {
        Err(SinkError::Refused(m)) => assert!(m.contains("nope.pem"), "{m}"),
        other => panic!("expected Refused, got {other:?}"),
    }
}

#[test]
fn a_server_that_does_not_answer_is_unavailable_after_the_timeout() {
    // Accepts connections (the kernel's backlog) and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let mut sink = ClickHouseSink::new(ClickHouseConfig {
        timeout: std::time::Duration::from_millis(300),
        ..config(std::slice::from_ref(&url))
    });
    let started = std::time::Instant::now();
    match sink.write(&series("s", 1..=1)) {
        Err(SinkError::Unavailable(m)) => {
            assert!(
                m.contains(&url) && m.contains("no answer within 300ms"),
                "{m}"
            )
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}
