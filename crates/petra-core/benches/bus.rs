//! Bus throughput: writes by handle from one writer, and reads while another thread writes.
//! Compare the ratios within one run; absolute numbers depend on the machine.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use petra_core::{BusBuilder, Quality, SignalDef, SignalId, Timestamp, Value, ValueType};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

const N: usize = 10_000;

fn bus() -> Arc<petra_core::Bus> {
    let defs = (0..N)
        .map(|i| SignalDef::new(format!("s{i}"), ValueType::Float).with_initial(0.0))
        .collect();
    BusBuilder::new(defs).unwrap().build(Timestamp::default())
}

fn writes(c: &mut Criterion) {
    let bus = bus();
    let mut g = c.benchmark_group("bus");
    g.throughput(Throughput::Elements(N as u64));
    let mut k = 0.0;
    g.bench_function("write_10k_by_handle", |b| {
        b.iter(|| {
            k += 1.0;
            for i in 0..N {
                bus.write(
                    SignalId::from_index(i),
                    Value::Float(k),
                    Quality::Good,
                    Timestamp::from_unix_nanos(i as i64),
                )
                .unwrap();
            }
        })
    });
    g.bench_function("read_10k_by_handle", |b| {
        b.iter(|| {
            for i in 0..N {
                black_box(bus.read(SignalId::from_index(i)));
            }
        })
    });
    // Reads while another thread hammers the same signals: readers never take a lock, so this
    // should stay within a small factor of the uncontended read.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (bus, stop) = (bus.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut v = 0.0;
            while !stop.load(Ordering::Relaxed) {
                v += 1.0;
                for i in 0..N {
                    let _ = bus.write(
                        SignalId::from_index(i),
                        Value::Float(v),
                        Quality::Good,
                        Timestamp::default(),
                    );
                }
            }
        })
    };
    g.bench_function("read_10k_with_concurrent_writer", |b| {
        b.iter(|| {
            for i in 0..N {
                black_box(bus.read(SignalId::from_index(i)));
            }
        })
    });
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    g.finish();
}

criterion_group!(benches, writes);
criterion_main!(benches);
