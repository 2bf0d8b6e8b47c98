//! Property tests: encode → decode round trips, decoders total on arbitrary bytes, planner
//! invariants through the real codec.

use petra_s7::codec::*;
use petra_s7::planner::{PlanConfig, Range, Write};
use petra_s7::{Address, DataType, S7Value, Variable};
use proptest::prelude::*;

use crate::planner::{check_reads, check_writes};

fn area() -> impl Strategy<Value = Area> {
    prop_oneof![
        Just(Area::Inputs),
        Just(Area::Outputs),
        Just(Area::Flags),
        Just(Area::DataBlock)
    ]
}

fn transport() -> impl Strategy<Value = TransportSize> {
    (1u8..=8).prop_map(|c| TransportSize::from_code(c).unwrap())
}

fn data_transport() -> impl Strategy<Value = DataTransport> {
    prop::sample::select(vec![0u8, 3, 4, 5, 6, 7, 9])
        .prop_map(|c| DataTransport::from_code(c).unwrap())
}

fn var_spec() -> impl Strategy<Value = VarSpec> {
    (
        transport(),
        any::<u16>(),
        any::<u16>(),
        area(),
        0u32..=0x1F_FFFF,
        0u8..8,
    )
        .prop_map(|(transport, count, db, area, byte, bit)| VarSpec {
            transport,
            count,
            db,
            area,
            byte,
            bit,
        })
}

/// Data that a transport can carry: a bit item holds exactly one byte.
fn data_for(t: DataTransport) -> BoxedStrategy<Vec<u8>> {
    match t {
        DataTransport::Bit => prop::collection::vec(any::<u8>(), 1).boxed(),
        _ => prop::collection::vec(any::<u8>(), 0..40).boxed(),
    }
}

fn read_item() -> impl Strategy<Value = ReadItem> {
    let ok = data_transport().prop_flat_map(|transport| {
        data_for(transport).prop_map(move |data| ReadItem {
            code: ReturnCode::SUCCESS,
            transport,
            data,
        })
    });
    let failed = prop::sample::select(vec![0x00u8, 0x01, 0x03, 0x05, 0x06, 0x07, 0x0A])
        .prop_map(|c| ReadItem::failed(ReturnCode(c)));
    prop_oneof![3 => ok, 1 => failed]
}

fn write_item() -> impl Strategy<Value = WriteItem> {
    (var_spec(), data_transport()).prop_flat_map(|(spec, transport)| {
        data_for(transport).prop_map(move |data| WriteItem {
            spec,
            transport,
            data,
        })
    })
}

fn connection() -> impl Strategy<Value = Connection> {
    (
        any::<u16>(),
        any::<u16>(),
        prop::option::of(7u8..=13),
        prop::option::of(any::<u16>()),
        prop::option::of(any::<u16>()),
    )
        .prop_map(
            |(dst_ref, src_ref, tpdu_size, calling_tsap, called_tsap)| Connection {
                dst_ref,
                src_ref,
                tpdu_size,
                calling_tsap,
                called_tsap,
            },
        )
}

proptest! {
    #[test]
    fn connect_round_trips(c in connection()) {
        prop_assert_eq!(decode_connect_request(&encode_connect_request(&c)), Ok(c.clone()));
        prop_assert_eq!(decode_connect_confirm(&encode_connect_confirm(&c)), Ok(c));
    }

    #[test]
    fn setup_round_trips(r in any::<u16>(), a in any::<u16>(), b in any::<u16>(), p in any::<u16>()) {
        let s = Setup { max_amq_calling: a, max_amq_called: b, pdu_length: p };
        let req = decode_setup_request(&encode_setup_request(r, &s)).unwrap();
        prop_assert_eq!((req.pdu_ref, req.body), (r, s));
        let resp = decode_setup_response(&encode_setup_response(r, &s)).unwrap();
        prop_assert_eq!((resp.pdu_ref, resp.body), (r, s));
    }

    #[test]
    fn read_request_round_trips(r in any::<u16>(), items in prop::collection::vec(var_spec(), 1..40)) {
        let frame = encode_read_request(r, &items).unwrap();
        prop_assert_eq!(next_frame(&frame), Ok(Some(&frame[..])));
        let m = decode_read_request(&frame).unwrap();
        prop_assert_eq!((m.pdu_ref, m.body), (r, items));
    }

    #[test]
    fn read_response_round_trips(r in any::<u16>(), items in prop::collection::vec(read_item(), 1..30)) {
        let m = decode_read_response(&encode_read_response(r, &items).unwrap()).unwrap();
        prop_assert_eq!((m.pdu_ref, m.body), (r, items));
    }

    #[test]
    fn write_request_round_trips(r in any::<u16>(), items in prop::collection::vec(write_item(), 1..30)) {
        let m = decode_write_request(&encode_write_request(r, &items).unwrap()).unwrap();
        prop_assert_eq!((m.pdu_ref, m.body), (r, items));
    }

    #[test]
    fn write_response_round_trips(r in any::<u16>(), codes in prop::collection::vec(any::<u8>(), 1..=255)) {
        let codes: Vec<ReturnCode> = codes.into_iter().map(ReturnCode).collect();
        let m = decode_write_response(&encode_write_response(r, &codes).unwrap()).unwrap();
        prop_assert_eq!((m.pdu_ref, m.body), (r, codes));
    }

    /// Arbitrary bytes, and arbitrary bytes behind a well-formed TPKT + DT + S7 prefix, give a
    /// value or an error — never a panic.
    #[test]
    fn decoders_are_total(body in prop::collection::vec(any::<u8>(), 0..300), rosctr in 1u8..=3, raw in any::<bool>()) {
        let frame = if raw {
            body
        } else {
            let mut f = vec![3, 0, 0, 0, 2, 0xF0, 0x80, 0x32, rosctr];
            f.extend(body);
            let len = (f.len() as u16).to_be_bytes();
            f[2] = len[0];
            f[3] = len[1];
            f
        };
        crate::fuzz::feed(&frame);
    }

    #[test]
    fn values_round_trip(var_and_value in variable_and_value()) {
        let (var, value) = var_and_value;
        let mut bytes = var.encode(&value).unwrap();
        prop_assert_eq!(bytes.len(), var.byte_len() as usize);
        // A BOOL encodes as write data (0 or 1, written as a single bit) but decodes from the
        // byte that holds it.
        if let (Some(bit), Some(b)) = (var.address.bit, bytes.first_mut()) {
            *b <<= bit;
        }
        prop_assert_eq!(var.decode(&bytes), Ok(value));
    }

    #[test]
    fn address_display_round_trips(addr in address()) {
        prop_assert_eq!(Address::parse(&addr.to_string()), Ok(addr));
        prop_assert_eq!(Address::parse(&addr.to_string().to_lowercase()), Ok(addr));
    }

    #[test]
    fn address_parser_is_total(s in "[DdBbXxWwMmIiEeQqAa0-9. ]{0,16}") {
        let _ = Address::parse(&s);
    }

    #[test]
    fn read_plans_fit_and_reassemble(
        items in prop::collection::vec(range(), 0..80),
        pdu in prop_oneof![24u16..100, 100u16..1000],
        gap in 0u32..32,
        max_items in 1usize..300,
    ) {
        check_reads(&items, &PlanConfig { pdu_size: pdu, merge_gap: gap, max_items });
    }

    #[test]
    fn write_plans_fit_and_rebuild(
        writes in prop::collection::vec(write(), 0..40),
        pdu in prop_oneof![29u16..100, 100u16..1000],
        max_items in 1usize..300,
    ) {
        check_writes(&writes, &PlanConfig { pdu_size: pdu, merge_gap: 0, max_items });
    }
}

fn range() -> impl Strategy<Value = Range> {
    (
        area(),
        0u16..3,
        0u32..3000,
        prop_oneof![4 => 1u32..10, 1 => 10u32..1500],
    )
        .prop_map(|(area, db, start, len)| Range {
            area,
            db,
            start,
            len,
        })
}

fn write() -> impl Strategy<Value = Write> {
    (
        area(),
        0u16..3,
        0u32..3000,
        prop::option::of(0u8..8),
        prop_oneof![4 => 1usize..10, 1 => 10usize..1500],
    )
        .prop_flat_map(|(area, db, start, bit, len)| {
            let data = match bit {
                Some(_) => prop::collection::vec(0u8..=1, 1).boxed(),
                None => prop::collection::vec(any::<u8>(), len).boxed(),
            };
            data.prop_map(move |data| Write {
                area,
                db,
                start,
                bit,
                data,
            })
        })
}

fn address() -> impl Strategy<Value = Address> {
    (
        area(),
        1u16..=u16::MAX,
        0u32..=0x1F_FFFF,
        prop::option::of(0u8..8),
        0..3,
    )
        .prop_map(|(area, db, byte, bit, w)| {
            use petra_s7::Width;
            let width = match (bit, w) {
                (Some(_), _) => Width::Bit,
                (None, 0) => Width::Byte,
                (None, 1) => Width::Word,
                (None, _) => Width::DWord,
            };
            Address {
                area,
                db: if area == Area::DataBlock { db } else { 0 },
                byte,
                bit,
                width,
            }
        })
}

fn scalar(ty: DataType) -> BoxedStrategy<S7Value> {
    match ty {
        DataType::Bool => any::<bool>().prop_map(S7Value::Bool).boxed(),
        DataType::Byte => (0i64..=255).prop_map(S7Value::Int).boxed(),
        DataType::Char => any::<u8>()
            .prop_map(|b| S7Value::String(char::from(b).to_string()))
            .boxed(),
        DataType::Word => (0i64..=0xFFFF).prop_map(S7Value::Int).boxed(),
        DataType::Int => any::<i16>().prop_map(|i| S7Value::Int(i.into())).boxed(),
        DataType::DWord => any::<u32>().prop_map(|i| S7Value::Int(i.into())).boxed(),
        DataType::DInt => any::<i32>().prop_map(|i| S7Value::Int(i.into())).boxed(),
        // Finite values only: NaN is never equal to itself.
        DataType::Real => prop::num::f32::NORMAL
            .prop_map(|f| S7Value::Real(f.into()))
            .boxed(),
        DataType::LReal => prop::num::f64::NORMAL.prop_map(S7Value::Real).boxed(),
        DataType::String { length } => prop::collection::vec(any::<u8>(), 0..=usize::from(length))
            .prop_map(|b| S7Value::String(b.into_iter().map(char::from).collect()))
            .boxed(),
    }
}

fn variable_and_value() -> impl Strategy<Value = (Variable, S7Value)> {
    let ty = prop_oneof![
        Just(DataType::Bool),
        Just(DataType::Byte),
        Just(DataType::Char),
        Just(DataType::Word),
        Just(DataType::Int),
        Just(DataType::DWord),
        Just(DataType::DInt),
        Just(DataType::Real),
        Just(DataType::LReal),
        (1u8..=254).prop_map(|length| DataType::String { length }),
    ];
    (ty, prop::option::of(1u32..20), 0u8..8).prop_flat_map(|(ty, count, bit)| {
        let count = match ty {
            DataType::Bool | DataType::String { .. } => None,
            _ => count,
        };
        let (width, bit) = match (ty, count) {
            (DataType::Bool, _) => (petra_s7::Width::Bit, Some(bit)),
            (DataType::Word | DataType::Int, None) => (petra_s7::Width::Word, None),
            (DataType::DWord | DataType::DInt | DataType::Real, None) => {
                (petra_s7::Width::DWord, None)
            }
            _ => (petra_s7::Width::Byte, None),
        };
        let address = Address {
            area: Area::DataBlock,
            db: 1,
            byte: 10,
            bit,
            width,
        };
        let var = Variable::new(address, ty, count).unwrap();
        let value = match count {
            None => scalar(ty),
            Some(n) => prop::collection::vec(scalar(ty), n as usize)
                .prop_map(S7Value::Array)
                .boxed(),
        };
        value.prop_map(move |v| (var, v))
    })
}
