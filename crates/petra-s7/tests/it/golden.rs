//! Encoders produce the golden frames byte for byte; decoders read them, and hand-made broken
//! variants, into the right values and typed errors.

use petra_s7::codec::*;

use crate::frames::{self, hex};

#[test]
fn connect_request_for_rack_and_slot() {
    let cr = Connection::rack_slot(ConnectionType::Pg, 0, 2).unwrap();
    assert_eq!(encode_connect_request(&cr), hex(frames::CR_RACK0_SLOT2));
    assert_eq!(decode_connect_request(&hex(frames::CR_RACK0_SLOT2)), Ok(cr));
}

#[test]
fn remote_tsaps() {
    let tsap = Connection::remote_tsap;
    assert_eq!(tsap(ConnectionType::Pg, 0, 2), Ok(0x0102));
    assert_eq!(tsap(ConnectionType::Op, 0, 1), Ok(0x0201));
    assert_eq!(tsap(ConnectionType::Basic, 1, 3), Ok(0x0323));
    assert_eq!(tsap(ConnectionType::Pg, 7, 31), Ok(0x01FF));
    assert!(matches!(
        tsap(ConnectionType::Pg, 8, 0),
        Err(CodecError::Encode(_))
    ));
    assert!(matches!(
        tsap(ConnectionType::Pg, 0, 32),
        Err(CodecError::Encode(_))
    ));
    // Explicit TSAPs, e.g. for a LOGO!: 0x0200 local, 0x0300 remote.
    let c = Connection::request(0x0200, 0x0300);
    assert_eq!(
        encode_connect_request(&c),
        hex("03 00 00 16 11 E0 00 00 00 01 00 C0 01 0A C1 02 02 00 C2 02 03 00")
    );
}

#[test]
fn connect_confirm() {
    let cc = decode_connect_confirm(&hex(frames::CC)).unwrap();
    assert_eq!(
        cc,
        Connection {
            dst_ref: 1,
            src_ref: 0x4431,
            tpdu_size: Some(0x0A),
            calling_tsap: Some(0x0100),
            called_tsap: Some(0x0102),
        }
    );
    assert_eq!(cc.tpdu_bytes(), Some(1024));
    assert_eq!(encode_connect_confirm(&cc), hex(frames::CC));

    // Parameters in another order, an unknown one skipped, smaller TPDU.
    let other = hex("03 00 00 19 14 D0 00 01 00 02 00 C2 02 01 02 C6 01 FF C1 02 01 00 C0 01 09");
    let cc = decode_connect_confirm(&other).unwrap();
    assert_eq!(cc.tpdu_bytes(), Some(512));
    assert_eq!(cc.called_tsap, Some(0x0102));

    // A CPU that does not accept the TSAP answers with a disconnect request.
    assert_eq!(
        decode_connect_confirm(&hex(frames::DR)),
        Err(CodecError::Disconnected { reason: 0x80 })
    );
    // A CR where a CC belongs.
    assert_eq!(
        decode_connect_confirm(&hex(frames::CR_RACK0_SLOT2)),
        Err(CodecError::UnexpectedTpdu {
            expected: 0xD0,
            found: 0xE0
        })
    );
    // Bad parameters.
    let bad_size = hex("03 00 00 0E 09 D0 00 01 00 02 00 C0 01 0E");
    assert!(matches!(
        decode_connect_confirm(&bad_size),
        Err(CodecError::Malformed(_))
    ));
    let long_tsap = hex("03 00 00 0E 09 D0 00 01 00 02 00 C1 02 01");
    assert!(matches!(
        decode_connect_confirm(&long_tsap),
        Err(CodecError::Truncated(_))
    ));
    let wrong_li = hex("03 00 00 0C 08 D0 00 01 00 02 00 00");
    assert!(matches!(
        decode_connect_confirm(&wrong_li),
        Err(CodecError::Length { .. })
    ));
}

#[test]
fn setup_communication() {
    let proposal = Setup {
        max_amq_calling: 1,
        max_amq_called: 1,
        pdu_length: 480,
    };
    assert_eq!(encode_setup_request(0, &proposal), hex(frames::SETUP_REQ));
    let resp = decode_setup_response(&hex(frames::SETUP_RESP)).unwrap();
    assert_eq!(resp.pdu_ref, 0);
    assert_eq!(resp.body.pdu_length, 240);
    assert_eq!(
        encode_setup_response(0, &resp.body),
        hex(frames::SETUP_RESP)
    );
    // The request is not a response.
    assert_eq!(
        decode_setup_response(&hex(frames::SETUP_REQ)),
        Err(CodecError::UnexpectedRosctr {
            expected: 3,
            found: 1
        })
    );
}

#[test]
fn read_request() {
    let items = [
        VarSpec::bytes(Area::DataBlock, 1, 0, 4),
        VarSpec::bit(Area::Flags, 0, 10, 1),
    ];
    assert_eq!(
        encode_read_request(0x0102, &items),
        Ok(hex(frames::READ_REQ))
    );
    let decoded = decode_read_request(&hex(frames::READ_REQ)).unwrap();
    assert_eq!(decoded.pdu_ref, 0x0102);
    assert_eq!(decoded.body, items);

    // Byte 300 of DB100 is bit address 2400 = 00 09 60.
    let one = encode_read_request(1, &[VarSpec::bytes(Area::DataBlock, 100, 300, 2)]).unwrap();
    assert_eq!(
        one.get(19..31),
        Some(&hex("12 0A 10 02 00 02 00 64 84 00 09 60")[..])
    );

    assert!(matches!(
        encode_read_request(1, &[]),
        Err(CodecError::Encode(_))
    ));
    let too_far = VarSpec::bytes(Area::Inputs, 0, 0x20_0000, 1);
    assert!(matches!(
        encode_read_request(1, &[too_far]),
        Err(CodecError::Encode(_))
    ));
    let many = vec![VarSpec::bytes(Area::Flags, 0, 0, 1); 256];
    assert!(matches!(
        encode_read_request(1, &many),
        Err(CodecError::Encode(_))
    ));
}

#[test]
fn read_response_with_mixed_items() {
    let resp = decode_read_response(&hex(frames::READ_RESP)).unwrap();
    assert_eq!(resp.pdu_ref, 7);
    let items = resp.body;
    assert_eq!(
        items,
        vec![
            ReadItem::ok(vec![1, 2, 3]),
            ReadItem::failed(ReturnCode::OBJECT_DOES_NOT_EXIST),
            ReadItem {
                code: ReturnCode::SUCCESS,
                transport: DataTransport::Bit,
                data: vec![1]
            },
            ReadItem {
                code: ReturnCode::SUCCESS,
                transport: DataTransport::Real,
                data: hex("42 28 00 00")
            },
            ReadItem::ok(vec![0xAB]),
        ]
    );
    assert_eq!(items[1].result(), Err(ReturnCode(0x0A)));
    assert_eq!(items[3].result(), Ok(&42.0f32.to_be_bytes()[..]));
    assert_eq!(encode_read_response(7, &items), Ok(hex(frames::READ_RESP)));
    assert_eq!(
        ReturnCode::OBJECT_DOES_NOT_EXIST.to_string(),
        "0x0a (object does not exist)"
    );
}

#[test]
fn read_response_errors() {
    let plc = decode_read_response(&hex(frames::ERROR_ACK));
    assert_eq!(
        plc,
        Err(CodecError::Plc {
            pdu_ref: 7,
            class: 0x81,
            code: 0x04
        })
    );
    assert!(
        plc.unwrap_err()
            .to_string()
            .contains("application relationship")
    );

    // The write response is ack-data for another function.
    assert_eq!(
        decode_read_response(&hex(frames::WRITE_RESP)),
        Err(CodecError::UnexpectedFunction {
            expected: 0x04,
            found: 0x05
        })
    );
    // A job is not a response.
    assert!(matches!(
        decode_read_response(&hex(frames::READ_REQ)),
        Err(CodecError::UnexpectedRosctr { .. })
    ));

    // Item count says 6 but only five items follow.
    let mut frame = hex(frames::READ_RESP);
    frame[20] = 6;
    assert!(matches!(
        decode_read_response(&frame),
        Err(CodecError::Truncated(_))
    ));
    // Missing pad byte after the odd first item: the data no longer lines up.
    let no_pad = hex(
        "03 00 00 1F 02 F0 80 32 03 00 00 00 01 00 02 00 0A 00 00 04 02 FF 04 00 08 01 FF 04 00 08 02",
    );
    assert!(decode_read_response(&no_pad).is_err());
    // One item, but two bytes too many in the data.
    let trailing =
        hex("03 00 00 1C 02 F0 80 32 03 00 00 00 01 00 02 00 07 00 00 04 01 FF 04 00 08 01 00 00");
    assert!(matches!(
        decode_read_response(&trailing),
        Err(CodecError::Length { .. })
    ));
    // Unknown data transport size.
    let unknown =
        hex("03 00 00 1A 02 F0 80 32 03 00 00 00 01 00 02 00 05 00 00 04 01 FF 0B 00 01 01");
    assert_eq!(
        decode_read_response(&unknown),
        Err(CodecError::UnknownDataTransport(0x0B))
    );
}

#[test]
fn frame_level_errors() {
    let good = hex(frames::READ_RESP);

    let mut wrong_version = good.clone();
    wrong_version[0] = 0x02;
    assert_eq!(
        decode_read_response(&wrong_version),
        Err(CodecError::TpktVersion(2))
    );

    assert_eq!(
        decode_read_response(&good[..good.len() - 1]),
        Err(CodecError::FrameLength {
            declared: 52,
            actual: 51
        })
    );

    let mut fragment = good.clone();
    fragment[6] = 0x00;
    assert_eq!(decode_read_response(&fragment), Err(CodecError::Fragmented));

    let mut not_s7 = good.clone();
    not_s7[7] = 0x72; // S7comm-plus
    assert_eq!(
        decode_read_response(&not_s7),
        Err(CodecError::ProtocolId(0x72))
    );

    // Data length in the S7 header one too large.
    let mut s7_len = good.clone();
    s7_len[16] = 0x20;
    assert_eq!(
        decode_read_response(&s7_len),
        Err(CodecError::Length {
            what: "S7 parameter and data length",
            declared: 34,
            actual: 33
        })
    );

    // A DR in the middle of a session.
    assert_eq!(
        decode_read_response(&hex(frames::DR)),
        Err(CodecError::Disconnected { reason: 0x80 })
    );
    // A CC where data is expected.
    assert!(matches!(
        decode_read_response(&hex(frames::CC)),
        Err(CodecError::UnexpectedTpdu { expected: 0xF0, .. })
    ));
    assert_eq!(
        decode_read_response(&[]),
        Err(CodecError::Truncated("TPKT header"))
    );
}

#[test]
fn write_request_and_response() {
    let items = [
        WriteItem::bytes(Area::DataBlock, 1, 2, vec![0x12, 0x34]).unwrap(),
        WriteItem::bit(Area::Outputs, 0, 0, 1, true),
    ];
    assert_eq!(
        encode_write_request(0x0A00, &items),
        Ok(hex(frames::WRITE_REQ))
    );
    let decoded = decode_write_request(&hex(frames::WRITE_REQ)).unwrap();
    assert_eq!(decoded.pdu_ref, 0x0A00);
    assert_eq!(decoded.body, items);

    // An odd first item is padded; the last is not.
    let odd = [
        WriteItem::bytes(Area::DataBlock, 1, 5, vec![0x7F]).unwrap(),
        WriteItem::bit(Area::Outputs, 0, 0, 1, true),
    ];
    let frame = encode_write_request(1, &odd).unwrap();
    assert_eq!(
        frame[frame.len() - 11..],
        hex("00 04 00 08 7F 00 00 03 00 01 01")[..]
    );

    let resp = decode_write_response(&hex(frames::WRITE_RESP)).unwrap();
    assert_eq!(resp.pdu_ref, 0x0A00);
    assert_eq!(
        resp.body,
        vec![ReturnCode::SUCCESS, ReturnCode::OBJECT_DOES_NOT_EXIST]
    );
    assert_eq!(
        encode_write_response(0x0A00, &resp.body),
        Ok(hex(frames::WRITE_RESP))
    );

    // Two return codes announced, one present.
    let short = hex("03 00 00 16 02 F0 80 32 03 00 00 0A 00 00 02 00 01 00 00 05 02 FF");
    assert!(matches!(
        decode_write_response(&short),
        Err(CodecError::Length { .. })
    ));
    // A bit item must carry exactly one byte.
    let bad_bit = WriteItem {
        data: vec![1, 0],
        ..WriteItem::bit(Area::Flags, 0, 0, 0, true)
    };
    assert!(matches!(
        encode_write_request(1, &[bad_bit]),
        Err(CodecError::Encode(_))
    ));
}

#[test]
fn frame_splitter() {
    assert_eq!(frame_len(&[]), Ok(None));
    assert_eq!(frame_len(&[3, 0, 0]), Ok(None));
    assert_eq!(frame_len(&[3, 0, 0, 0x16]), Ok(Some(22)));
    assert_eq!(frame_len(&[0x16]), Err(CodecError::TpktVersion(0x16)));
    assert_eq!(frame_len(&[3, 0, 0, 6]), Err(CodecError::TpktLength(6)));

    let mut stream = hex(frames::SETUP_RESP);
    stream.extend(hex(frames::READ_RESP));
    let first = next_frame(&stream).unwrap().unwrap();
    assert_eq!(first, hex(frames::SETUP_RESP));
    let rest = &stream[first.len()..];
    assert_eq!(next_frame(rest).unwrap().unwrap(), hex(frames::READ_RESP));
    assert_eq!(next_frame(&rest[..20]), Ok(None));
}

/// Captured from python-snap7 2.0.2's server (the snap7 C library): a read of DB1 (32 bytes),
/// DB1 (2 bytes) and DB7, which does not exist. The failed item's header says length 4 with
/// no data after it; the item is its header alone.
const SNAP7_NATIVE_MISSING_DB: &str = "03 00 00 43 02 f0 80 32 03 00 00 00 02 00 02 00 2e 00 00 04 03 \
     ff 04 01 00 05 00 00 00 41 48 00 00 ff d6 14 05 68 65 6c 6c 6f 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 \
     ff 04 00 10 00 00 \
     0a 00 00 04";

#[test]
fn a_failed_item_carries_no_data_whatever_its_length_says() {
    let resp = decode_read_response(&hex(SNAP7_NATIVE_MISSING_DB)).unwrap();
    assert_eq!(resp.pdu_ref, 2);
    let items = resp.body;
    assert_eq!(items.len(), 3);
    assert_eq!(items[0].result().map(<[u8]>::len), Ok(32));
    assert_eq!(items[1].result(), Ok(&[0u8, 0][..]));
    assert_eq!(
        items[2],
        ReadItem::failed(ReturnCode::OBJECT_DOES_NOT_EXIST)
    );
}
