//! Planner: request counts for known PDU sizes, merging, splitting, reassembly. Every planned
//! request goes through the real encoder and a simulated PLC, and both frames are checked
//! against the PDU size.

use petra_s7::codec::*;
use petra_s7::planner::*;

/// What the simulated PLC holds at a byte.
pub fn mem(area: Area, db: u16, byte: u32) -> u8 {
    (byte.wrapping_mul(31) ^ u32::from(db).wrapping_mul(7) ^ u32::from(area.code())) as u8
}

/// S7 PDU size of a frame (without TPKT and COTP).
fn pdu_len(frame: &[u8]) -> usize {
    frame.len() - DT_OVERHEAD
}

/// Sends every request of `plan` to a simulated PLC in which DBs in `missing` do not exist;
/// returns the decoded responses.
pub fn serve(plan: &ReadPlan, pdu: u16, missing: &[u16]) -> Vec<Vec<ReadItem>> {
    plan.requests
        .iter()
        .enumerate()
        .map(|(i, req)| {
            let pdu_ref = i as u16;
            let frame = encode_read_request(pdu_ref, &req.specs).expect("planned request encodes");
            assert!(
                pdu_len(&frame) <= usize::from(pdu),
                "request {i}: {} > {pdu}",
                pdu_len(&frame)
            );
            let job = decode_read_request(&frame).expect("own request decodes");
            let items: Vec<ReadItem> = job
                .body
                .iter()
                .map(|s| {
                    if s.area == Area::DataBlock && missing.contains(&s.db) {
                        ReadItem::failed(ReturnCode::OBJECT_DOES_NOT_EXIST)
                    } else {
                        let data =
                            (s.byte..s.byte + u32::from(s.count)).map(|b| mem(s.area, s.db, b));
                        ReadItem::ok(data.collect())
                    }
                })
                .collect();
            let frame = encode_read_response(job.pdu_ref, &items).expect("response encodes");
            assert!(
                pdu_len(&frame) <= usize::from(pdu),
                "response {i}: {} > {pdu}",
                pdu_len(&frame)
            );
            let resp = decode_read_response(&frame).expect("response decodes");
            assert_eq!(resp.pdu_ref, pdu_ref);
            resp.body
        })
        .collect()
}

/// Plans, serves and checks every item's bytes; returns the number of requests.
pub fn check_reads(items: &[Range], cfg: &PlanConfig) -> usize {
    let plan = plan_reads(items, cfg).expect("plan");
    let results = plan
        .assemble(&serve(&plan, cfg.pdu_size, &[]))
        .expect("assemble");
    assert_eq!(results.len(), items.len());
    for (r, got) in items.iter().zip(&results) {
        let want: Vec<u8> = (r.start..r.start + r.len)
            .map(|b| mem(r.area, r.db, b))
            .collect();
        assert_eq!(got.as_deref(), Ok(&want[..]), "{r:?}");
    }
    let min = min_read_requests(items, cfg).unwrap();
    assert!(
        plan.requests.len() >= min,
        "{} requests below the bound {min}",
        plan.requests.len()
    );
    plan.requests.len()
}

fn db(db: u16, start: u32, len: u32) -> Range {
    Range {
        area: Area::DataBlock,
        db,
        start,
        len,
    }
}

fn scattered(n: u32, spacing: u32, len: u32) -> Vec<Range> {
    (0..n).map(|i| db(1, i * spacing, len)).collect()
}

#[test]
fn many_small_items_fill_the_item_slots() {
    // 100 REALs 10 bytes apart: gap 6 > 4, so nothing merges.
    let items = scattered(100, 10, 4);
    // (240 − 12) / 12 = 19 items per request; responses 14 + 19·8 = 166 ≤ 240.
    let cfg = PlanConfig::new(240);
    assert_eq!(check_reads(&items, &cfg), 6);
    assert_eq!(min_read_requests(&items, &cfg), Ok(6));
    // (480 − 12) / 12 = 39 items per request.
    assert_eq!(check_reads(&items, &PlanConfig::new(480)), 3);
    // A CPU that takes at most 10 items.
    let cfg = PlanConfig {
        max_items: 10,
        ..PlanConfig::new(480)
    };
    assert_eq!(check_reads(&items, &cfg), 10);
}

#[test]
fn response_size_limits_large_items() {
    // 20 items of 50 bytes: responses hold (240 − 14) / (4 + 50) = 4 per request.
    let items = scattered(20, 100, 50);
    assert_eq!(check_reads(&items, &PlanConfig::new(240)), 5);
    // 480: (480 − 14) / 54 = 8 per request → 3.
    assert_eq!(check_reads(&items, &PlanConfig::new(480)), 3);
}

#[test]
fn odd_lengths_pay_pads_exactly() {
    // Items of 221 bytes: 4 + 221 = 225 ≤ 226 alone; never two per request.
    let items = scattered(3, 300, 221);
    assert_eq!(check_reads(&items, &PlanConfig::new(240)), 3);
    // 222 bytes is the largest single item at 240: 14 + 4 + 222 = 240.
    let plan = plan_reads(&[db(1, 0, 222)], &PlanConfig::new(240)).unwrap();
    assert_eq!(plan.requests.len(), 1);
    assert_eq!(plan.requests[0].specs.len(), 1);
    // Two odd items of 109: 4+109+1 + 4+109 = 227 > 226; of 107: 223 fits. The odd one that
    // pays no pad goes last.
    assert_eq!(
        check_reads(&scattered(2, 200, 109), &PlanConfig::new(240)),
        2
    );
    assert_eq!(
        check_reads(&scattered(2, 200, 107), &PlanConfig::new(240)),
        1
    );
    let mixed = [db(1, 0, 3), db(1, 100, 4), db(1, 200, 5)];
    let plan = plan_reads(&mixed, &PlanConfig::new(240)).unwrap();
    let last = plan.requests[0].specs.last().unwrap();
    assert_eq!(last.count % 2, 1);
}

#[test]
fn neighbours_merge_within_the_gap() {
    let items = [
        db(1, 0, 4),
        db(1, 4, 4),
        db(1, 10, 2),
        db(1, 13, 1),
        db(2, 14, 2),
    ];
    let plan = plan_reads(&items, &PlanConfig::new(240)).unwrap();
    let specs = &plan.requests[0].specs;
    // DB1 0..14 in one item (gaps 2 and 1 ≤ 4); DB2 separate.
    assert_eq!(specs.len(), 2);
    assert!(specs.contains(&VarSpec::bytes(Area::DataBlock, 1, 0, 14)));
    assert!(specs.contains(&VarSpec::bytes(Area::DataBlock, 2, 14, 2)));
    check_reads(&items, &PlanConfig::new(240));

    let exact = PlanConfig {
        merge_gap: 0,
        ..PlanConfig::new(240)
    };
    let plan = plan_reads(&items, &exact).unwrap();
    // 0..8 touch and merge; 10..12 and 13..14 stay apart.
    assert_eq!(plan.requests[0].specs.len(), 4);
    check_reads(&items, &exact);

    // Other areas never merge with a DB, duplicates and overlaps share one item.
    let mixed = [
        db(1, 0, 2),
        Range {
            area: Area::Flags,
            db: 0,
            start: 2,
            len: 2,
        },
        db(1, 0, 2),
        db(1, 1, 4),
    ];
    let plan = plan_reads(&mixed, &PlanConfig::new(240)).unwrap();
    assert_eq!(plan.requests[0].specs.len(), 2);
    check_reads(&mixed, &PlanConfig::new(240));

    // Merging stops where the block would no longer fit one item (222 at 240).
    let row = scattered(60, 4, 4); // 240 contiguous bytes
    let plan = plan_reads(&row, &PlanConfig::new(240)).unwrap();
    assert!(
        plan.requests
            .iter()
            .flat_map(|r| &r.specs)
            .all(|s| s.count <= 222)
    );
    check_reads(&row, &PlanConfig::new(240));
}

#[test]
fn a_1000_byte_item_is_split_and_reassembled() {
    let big = [db(5, 100, 1000)];
    // 240: one item carries ≤ 222 bytes; pieces of 216 (a multiple of 8): 4 × 216 + 136.
    let plan = plan_reads(&big, &PlanConfig::new(240)).unwrap();
    let counts: Vec<u16> = plan
        .requests
        .iter()
        .flat_map(|r| &r.specs)
        .map(|s| s.count)
        .collect();
    assert_eq!(counts, [216, 216, 216, 216, 136]);
    assert_eq!(check_reads(&big, &PlanConfig::new(240)), 5);
    assert_eq!(min_read_requests(&big, &PlanConfig::new(240)), Ok(5));
    // 480: ≤ 462 per item, pieces of 456: 456 + 456 + 88.
    assert_eq!(check_reads(&big, &PlanConfig::new(480)), 3);

    // Small items share the request of the remainder.
    let mut items = big.to_vec();
    items.extend(scattered(10, 10, 4));
    assert_eq!(check_reads(&items, &PlanConfig::new(240)), 5);
    // An item inside the big one is read on its own, whole, not torn across pieces.
    items.push(db(5, 314, 4));
    let plan = plan_reads(&items, &PlanConfig::new(240)).unwrap();
    let parts: Vec<&Part> = plan
        .requests
        .iter()
        .flat_map(|r| &r.parts)
        .filter(|p| p.item == 11)
        .collect();
    assert_eq!(parts.len(), 1);
    check_reads(&items, &PlanConfig::new(240));
}

#[test]
fn failed_pieces_fail_only_their_items() {
    let items = [db(1, 0, 4), db(7, 0, 4), db(7, 0, 600), db(1, 8, 2)];
    let cfg = PlanConfig::new(240);
    let plan = plan_reads(&items, &cfg).unwrap();
    let results = plan.assemble(&serve(&plan, 240, &[7])).unwrap();
    assert!(results[0].is_ok());
    assert_eq!(results[1], Err(ReturnCode::OBJECT_DOES_NOT_EXIST));
    assert_eq!(results[2], Err(ReturnCode::OBJECT_DOES_NOT_EXIST));
    assert!(results[3].is_ok());
}

#[test]
fn responses_that_do_not_fit_the_plan_are_refused() {
    let plan = plan_reads(&[db(1, 0, 4), db(1, 100, 4)], &PlanConfig::new(240)).unwrap();
    let good = serve(&plan, 240, &[]);
    assert!(matches!(
        plan.assemble(&[]),
        Err(PlanError::Response { .. })
    ));
    let mut short = good.clone();
    short[0].pop();
    assert!(matches!(
        plan.assemble(&short),
        Err(PlanError::Response { request: 0, .. })
    ));
    let mut wrong_len = good;
    wrong_len[0][1].data.push(0);
    assert!(matches!(
        plan.assemble(&wrong_len),
        Err(PlanError::Response { .. })
    ));
}

#[test]
fn bad_input_is_refused() {
    let cfg = PlanConfig::new(240);
    assert_eq!(
        plan_reads(&[db(1, 0, 0)], &cfg).unwrap_err(),
        PlanError::Item {
            index: 0,
            problem: "empty range"
        }
    );
    assert!(matches!(
        plan_reads(&[db(1, 0x1F_FFFF, 2)], &cfg),
        Err(PlanError::Item { .. })
    ));
    assert!(matches!(
        plan_reads(&[db(1, 0, 1)], &PlanConfig::new(23)),
        Err(PlanError::PduTooSmall { .. })
    ));
    assert!(plan_reads(&[db(1, 0, 100)], &PlanConfig::new(24)).is_ok());
    assert!(plan_reads(&[], &cfg).unwrap().requests.is_empty());
}

#[test]
fn thousand_scattered_points_stay_near_the_minimum() {
    // Mixed sizes (BOOL, INT, REAL, LREAL, STRING[20]) in four DBs and the flags.
    let sizes = [1, 2, 4, 8, 22];
    let items: Vec<Range> = (0..1000u32)
        .map(|i| Range {
            area: if i % 5 == 4 {
                Area::Flags
            } else {
                Area::DataBlock
            },
            db: if i % 5 == 4 { 0 } else { (i % 4) as u16 + 1 },
            start: i * 37 % 5000,
            len: sizes[(i * 7 % 5) as usize],
        })
        .collect();
    for pdu in [240, 480, 960] {
        let cfg = PlanConfig::new(pdu);
        let n = check_reads(&items, &cfg);
        let min = min_read_requests(&items, &cfg).unwrap();
        println!("1000 points, PDU {pdu}: {n} requests, lower bound {min}");
        assert!(n * 10 <= min * 11, "PDU {pdu}: {n} requests, minimum {min}");
    }
}

fn bytes_write(db: u16, start: u32, data: Vec<u8>) -> Write {
    Write {
        area: Area::DataBlock,
        db,
        start,
        bit: None,
        data,
    }
}

/// Encodes every request (checking the PDU size), decodes it as the PLC would, and rebuilds
/// each input write from its pieces.
pub fn check_writes(writes: &[Write], cfg: &PlanConfig) -> usize {
    let plan = plan_writes(writes, cfg).expect("plan");
    let mut rebuilt: Vec<Vec<u8>> = vec![Vec::new(); writes.len()];
    let mut responses = Vec::new();
    for (req_i, req) in plan.requests.iter().enumerate() {
        let frame = encode_write_request(req_i as u16, &req.items).expect("encodes");
        assert!(
            pdu_len(&frame) <= usize::from(cfg.pdu_size),
            "{} > {}",
            pdu_len(&frame),
            cfg.pdu_size
        );
        let job = decode_write_request(&frame).expect("decodes");
        for (item, &src) in job.body.iter().zip(&req.sources) {
            let w = &writes[src];
            match w.bit {
                Some(bit) => {
                    assert_eq!(item.spec, VarSpec::bit(w.area, w.db, w.start, bit));
                    assert_eq!(item.transport, DataTransport::Bit);
                }
                None => assert_eq!(item.spec.byte, w.start + rebuilt[src].len() as u32),
            }
            rebuilt[src].extend(&item.data);
        }
        let codes = vec![ReturnCode::SUCCESS; job.body.len()];
        let frame = encode_write_response(job.pdu_ref, &codes).unwrap();
        assert!(pdu_len(&frame) <= usize::from(cfg.pdu_size));
        responses.push(decode_write_response(&frame).unwrap().body);
    }
    for (w, got) in writes.iter().zip(&rebuilt) {
        assert_eq!(&w.data, got);
    }
    assert!(plan.assemble(&responses).unwrap().iter().all(Result::is_ok));
    let min = min_write_requests(writes, cfg).unwrap();
    assert!(plan.requests.len() >= min);
    plan.requests.len()
}

#[test]
fn writes_are_split_and_packed() {
    // 500 bytes at 240: one item carries ≤ 240 − 28 = 212; pieces of 208: 208 + 208 + 84.
    let big = [bytes_write(1, 0, (0..500).map(|i| i as u8).collect())];
    let plan = plan_writes(&big, &PlanConfig::new(240)).unwrap();
    let lens: Vec<usize> = plan
        .requests
        .iter()
        .flat_map(|r| &r.items)
        .map(|i| i.data.len())
        .collect();
    assert_eq!(lens, [208, 208, 84]);
    assert_eq!(check_writes(&big, &PlanConfig::new(240)), 3);

    // Bits: 16 + 1 + pad each in 240 − 12 = 228 bytes → 12 per request (12·18 − 1 = 215).
    let bits: Vec<Write> = (0..30)
        .map(|i| Write {
            area: Area::Outputs,
            db: 0,
            start: i / 8,
            bit: Some((i % 8) as u8),
            data: vec![(i % 2) as u8],
        })
        .collect();
    let plan = plan_writes(&bits, &PlanConfig::new(240)).unwrap();
    assert_eq!(
        plan.requests
            .iter()
            .map(|r| r.items.len())
            .collect::<Vec<_>>(),
        [12, 12, 6]
    );
    check_writes(&bits, &PlanConfig::new(240));

    // REALs: 16 + 4 = 20 each → 11 per request (220 ≤ 228).
    let reals: Vec<Write> = (0..22)
        .map(|i| bytes_write(2, i * 8, vec![1, 2, 3, 4]))
        .collect();
    assert_eq!(check_writes(&reals, &PlanConfig::new(240)), 2);
}

#[test]
fn write_results_per_input() {
    let writes = [
        bytes_write(1, 0, vec![0; 300]),
        bytes_write(9, 0, vec![1, 2]),
        bytes_write(1, 400, vec![3]),
    ];
    let plan = plan_writes(&writes, &PlanConfig::new(240)).unwrap();
    let responses: Vec<Vec<ReturnCode>> = plan
        .requests
        .iter()
        .map(|r| {
            r.items
                .iter()
                .map(|i| match (i.spec.db, i.spec.byte) {
                    (9, _) => ReturnCode::OBJECT_DOES_NOT_EXIST,
                    (1, b) if b > 0 && b < 300 => ReturnCode::ADDRESS_OUT_OF_RANGE,
                    _ => ReturnCode::SUCCESS,
                })
                .collect()
        })
        .collect();
    assert_eq!(
        plan.assemble(&responses).unwrap(),
        [
            Err(ReturnCode::ADDRESS_OUT_OF_RANGE),
            Err(ReturnCode::OBJECT_DOES_NOT_EXIST),
            Ok(())
        ]
    );
}

#[test]
fn bad_writes_are_refused() {
    let cfg = PlanConfig::new(240);
    let bad_bit = Write {
        area: Area::Flags,
        db: 0,
        start: 0,
        bit: Some(1),
        data: vec![2],
    };
    assert!(matches!(
        plan_writes(&[bad_bit], &cfg),
        Err(PlanError::Item { index: 0, .. })
    ));
    assert!(matches!(
        plan_writes(&[bytes_write(1, 0, vec![])], &cfg),
        Err(PlanError::Item { .. })
    ));
    assert!(matches!(
        plan_writes(&[bytes_write(1, 0, vec![1])], &PlanConfig::new(28)),
        Err(PlanError::PduTooSmall { .. })
    ));
}
