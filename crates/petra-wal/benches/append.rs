//! Append and read throughput of the WAL, against a baseline in the same run: the same frame
//! bytes (56 per 40-byte record) copied into a buffer and written to a file in 1 MiB chunks with
//! one fsync per 100,000 records — what any log must pay at least. The ratio is the number to
//! watch; absolute numbers depend on the machine. Run: `cargo bench -p petra-wal`.

use std::fs::File;
use std::hint::black_box;
use std::io::{Seek, Write};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use petra_wal::{Batch, Wal, WalOptions};

const BATCH: u64 = 100_000;
const RECORD: [u8; 40] = [0x5a; 40];

fn append(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut g = c.benchmark_group("append_40B_x100k_then_fsync");
    g.throughput(Throughput::Elements(BATCH));
    g.sample_size(20).measurement_time(Duration::from_secs(5));

    g.bench_function("baseline_copy_write_fsync", |b| {
        let path = dir.path().join("baseline");
        let mut f = File::create(&path).expect("create");
        let mut buf = Vec::with_capacity(1 << 20);
        let mut written = 0u64;
        b.iter(|| {
            for i in 0..BATCH {
                buf.extend_from_slice(&[0u8; 8]);
                buf.extend_from_slice(&i.to_le_bytes());
                buf.extend_from_slice(black_box(&RECORD));
                if buf.len() >= 1 << 20 {
                    f.write_all(&buf).expect("write");
                    written += buf.len() as u64;
                    buf.clear();
                }
            }
            f.write_all(&buf).expect("write");
            written += buf.len() as u64;
            buf.clear();
            f.sync_data().expect("fsync");
            if written > 64 << 20 {
                f.set_len(0).expect("truncate");
                f.rewind().expect("seek");
                written = 0;
            }
        });
    });

    g.bench_function("wal_append_sync", |b| {
        // No sink: synced segments are deleted, so the directory stays small.
        let (wal, _) =
            Wal::open(&dir.path().join("wal"), WalOptions::default(), &[]).expect("open");
        b.iter(|| {
            for _ in 0..BATCH {
                black_box(wal.append(black_box(&RECORD)).expect("append"));
            }
            wal.sync().expect("sync");
        });
    });
    g.finish();
}

fn read(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (wal, _) = Wal::open(dir.path(), WalOptions::default(), &["sink"]).expect("open");
    for _ in 0..BATCH * 10 {
        wal.append(&RECORD).expect("append");
    }
    wal.sync().expect("sync");
    let mut reader = wal.reader("sink").expect("reader");
    let mut batch = Batch::new();
    let mut g = c.benchmark_group("read_40B_x1M_batches_of_10k");
    g.throughput(Throughput::Elements(BATCH * 10));
    g.sample_size(20).measurement_time(Duration::from_secs(5));
    g.bench_function("wal_read", |b| {
        b.iter(|| {
            reader.rewind();
            let mut n = 0;
            loop {
                let got = reader.read(10_000, &mut batch).expect("read");
                if got == 0 {
                    break;
                }
                n += batch.iter().map(|(_, d)| d.len()).sum::<usize>();
            }
            black_box(n)
        });
    });
    g.finish();
}

criterion_group!(benches, append, read);
criterion_main!(benches);
