//! What each stage of the history path costs per sample, one thread, warm caches (criterion):
//! the bus write with the lossless feed, the sampler's decision, the WAL record (encode +
//! append), its decoding in a sink thread, and the Parquet sink's write. The end-to-end rates
//! with real threads and fsyncs are `benches/pipeline.rs` (`scripts/bench-history`).
//!
//! ```sh
//! cargo bench -p petra-history --bench stages
//! ```

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use petra_core::{
    BusBuilder, OverflowPolicy, Quality, Sample, SignalDef, SignalId, Timestamp, Value, ValueType,
};
use petra_history::parquet::{ParquetConfig, ParquetSink};
use petra_history::{Row, Rule, Sampler, Sink, row};
use petra_wal::{Wal, WalOptions};
use std::hint::black_box;
use std::sync::Arc;

const SIGNALS: usize = 1000;
const N: usize = 65_536;

fn names() -> Vec<String> {
    (0..SIGNALS)
        .map(|i| format!("plant.area{}.tank{:03}.level", i / 100, i % 100))
        .collect()
}

fn rows() -> Vec<Row> {
    let names: Vec<Arc<str>> = names().into_iter().map(Arc::from).collect();
    (0..N)
        .map(|k| Row {
            signal: names[k % SIGNALS].clone(),
            ts_ms: 1_796_342_400_000 + (k / SIGNALS) as i64,
            value: Some((k % 9973) as f64 / 1000.0),
            text: None,
            quality: "good",
            seq: k as u64 + 1,
        })
        .collect()
}

fn stages(c: &mut Criterion) {
    let mut g = c.benchmark_group("history");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(20);

    // Bus write of a changed float with the history's lossless feed, and draining it.
    let defs = names()
        .into_iter()
        .map(|n| SignalDef::new(n, ValueType::Float))
        .collect();
    let mut b = BusBuilder::new(defs).unwrap();
    let ids: Vec<SignalId> = (0..SIGNALS).map(SignalId::from_index).collect();
    let feed = b.lossless_feed(1 << 17, OverflowPolicy::DropNewest, Some(&ids));
    let bus = b.build(Timestamp::default());
    let mut k = 0.0;
    let mut changes = Vec::with_capacity(N);
    g.bench_function("bus_write_and_feed_drain", |bch| {
        bch.iter(|| {
            k += 1.0;
            for i in 0..N {
                bus.write(
                    ids[i % SIGNALS],
                    Value::Float(k + i as f64),
                    Quality::Good,
                    Timestamp::from_unix_nanos(i as i64),
                )
                .unwrap();
            }
            changes.clear();
            feed.drain(&mut changes, N);
            black_box(&changes);
        })
    });

    // The sampler's decision (on change, deadband 0: every change is a row).
    let rule = Rule::OnChange {
        deadband: 0.0,
        max_interval: None,
    };
    let signals: Vec<(SignalId, String, Rule)> = ids
        .iter()
        .zip(names())
        .map(|(id, n)| (*id, n, rule))
        .collect();
    let mut sampler = Sampler::new(&signals, 0);
    let mut out = Vec::with_capacity(N);
    let mut v = 0.0;
    g.bench_function("sampler_change", |bch| {
        bch.iter(|| {
            out.clear();
            for i in 0..N {
                v += 0.5;
                let s = Sample {
                    value: Value::Float(v),
                    quality: Quality::Good,
                    ts: Timestamp::from_unix_nanos(i as i64 * 1_000_000),
                };
                sampler.change(ids[i % SIGNALS], &s, &mut out);
            }
            black_box(&out);
        })
    });

    // A row into the WAL: encode and append (buffered; the fsync is the pipeline's business).
    let rows = rows();
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path(), WalOptions::default(), &[]).unwrap();
    let wal = Arc::new(wal);
    let mut buf = Vec::with_capacity(128);
    g.bench_function("wal_encode_append", |bch| {
        bch.iter(|| {
            for r in &rows {
                buf.clear();
                row::encode(r, &mut buf);
                wal.append(&buf).unwrap();
            }
            // Keep the log small: sync now and then (no sink: synced segments go).
            wal.sync().unwrap();
        })
    });

    // A sink thread decoding records.
    let records: Vec<Vec<u8>> = rows
        .iter()
        .map(|r| {
            let mut b = Vec::new();
            row::encode(r, &mut b);
            b
        })
        .collect();
    g.bench_function("row_decode", |bch| {
        bch.iter(|| {
            for (k, rec) in records.iter().enumerate() {
                black_box(row::decode(rec, k as u64).unwrap());
            }
        })
    });

    // The Parquet sink accepting a batch (the runner's 65,536 rows); a file closes every
    // 1 Mi rows, so 1 in 16 batches also pays for a file's last row group, footer and fsync.
    let pdir = tempfile::tempdir().unwrap();
    let mut sink = ParquetSink::open(ParquetConfig::new(pdir.path().join("history"))).unwrap();
    let mut seq = 0u64;
    g.bench_function("parquet_write", |bch| {
        bch.iter_batched(
            || {
                rows.iter()
                    .map(|r| {
                        seq += 1;
                        Row { seq, ..r.clone() }
                    })
                    .collect::<Vec<_>>()
            },
            |batch| sink.write(&batch).unwrap(),
            BatchSize::LargeInput,
        )
    });
    g.finish();
    sink.flush().unwrap();
}

criterion_group!(benches, stages);
criterion_main!(benches);
