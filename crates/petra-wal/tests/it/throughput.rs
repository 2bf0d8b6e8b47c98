//! Appends must be cheap: the history path needs 1,000,000 samples/s on a 2-core machine.
//! The bound here is loose (debug build, shared machine); `benches/append.rs` measures properly.

use std::time::Instant;

use petra_wal::{Batch, WalOptions};

use crate::open;

#[test]
fn one_million_appends_with_periodic_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), WalOptions::default(), &["a"]);
    let record = [7u8; 40];
    let n = 1_000_000u64;
    let t = Instant::now();
    for i in 0..n {
        wal.append(&record).unwrap();
        if i % 100_000 == 99_999 {
            wal.sync().unwrap();
        }
    }
    wal.sync().unwrap();
    let secs = t.elapsed().as_secs_f64();
    let rate = n as f64 / secs;
    eprintln!("appended {n} records of 40 bytes in {secs:.3} s: {rate:.0} records/s");
    assert!(rate > 100_000.0, "{rate:.0} records/s");
    // And they are all there.
    let mut r = wal.reader("a").unwrap();
    let mut b = Batch::new();
    let mut total = 0;
    loop {
        let got = r.read(65_536, &mut b).unwrap();
        if got == 0 {
            break;
        }
        total += got;
    }
    assert_eq!(total as u64, n);
}
