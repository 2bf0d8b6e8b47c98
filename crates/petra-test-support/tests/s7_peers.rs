//! The S7 peers themselves, each test once per implementation (`pure::…`, `native::…`): the
//! control channel, and raw S7 conversations over a `TcpStream` framed and parsed by Petra's own
//! sans-IO codec (`petra_s7::codec`). Where the two servers answer differently (see
//! `peers/s7_sim.py`), the test pins each one's answer.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::panic::AssertUnwindSafe;

use petra_s7::CodecError;
use petra_s7::codec::{
    self, Area, Connection, ConnectionType, DataTransport, ReadItem, ReturnCode, Setup, VarSpec,
    WriteItem,
};
use petra_test_support::s7::{S7Area, S7Impl, S7Layout, S7Sim};
use petra_test_support::{DEFAULT_TIMEOUT, port_open, wait_until};

fn layout() -> S7Layout {
    S7Layout::new()
        .db(1, 1024)
        .db(2, 64)
        .flags(256)
        .inputs(64)
        .outputs(64)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Panics with the frame in hex and the decoder's name if the codec refuses a server's frame.
fn decoded<T>(decoder: &str, frame: &[u8], result: Result<T, CodecError>) -> T {
    result.unwrap_or_else(|e| {
        panic!(
            "codec::{decoder} refused the server's frame {}: {e}",
            hex(frame)
        )
    })
}

/// One ISO-on-TCP connection to the simulator, driven by the codec.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    pdu_ref: u16,
    imp: S7Impl,
}

impl Conn {
    /// TCP connect and COTP connect (PG, rack 0, slot 1); no setup communication yet.
    fn open(sim: &S7Sim) -> Conn {
        let stream = TcpStream::connect(sim.addr()).expect("connect to the S7 port");
        stream.set_read_timeout(Some(DEFAULT_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        let mut conn = Conn {
            stream,
            buf: Vec::new(),
            pdu_ref: 0,
            imp: sim.implementation(),
        };
        let request = Connection::rack_slot(ConnectionType::Pg, 0, 1).unwrap();
        let frame = conn.exchange(&codec::encode_connect_request(&request));
        let confirm = decoded(
            "decode_connect_confirm",
            &frame,
            codec::decode_connect_confirm(&frame),
        );
        assert_eq!(
            confirm.dst_ref,
            request.src_ref,
            "{:?}: CC {}",
            conn.imp,
            hex(&frame)
        );
        assert_eq!(
            confirm.tpdu_size,
            request.tpdu_size,
            "{:?}: CC {}",
            conn.imp,
            hex(&frame)
        );
        conn
    }

    /// [`Conn::open`] and a setup communication proposing `pdu`; returns the granted setup.
    fn negotiate(sim: &S7Sim, pdu: u16) -> (Conn, Setup) {
        let mut conn = Conn::open(sim);
        let setup = conn.setup(pdu);
        (conn, setup)
    }

    fn setup(&mut self, pdu: u16) -> Setup {
        let pdu_ref = self.next_ref();
        let proposal = Setup {
            max_amq_calling: 1,
            max_amq_called: 1,
            pdu_length: pdu,
        };
        let frame = self.exchange(&codec::encode_setup_request(pdu_ref, &proposal));
        let answer = decoded(
            "decode_setup_response",
            &frame,
            codec::decode_setup_response(&frame),
        );
        assert_eq!(answer.pdu_ref, pdu_ref);
        answer.body
    }

    fn next_ref(&mut self) -> u16 {
        self.pdu_ref = self.pdu_ref.wrapping_add(1);
        self.pdu_ref
    }

    fn read(&mut self, items: &[VarSpec]) -> Vec<ReadItem> {
        let pdu_ref = self.next_ref();
        let frame = self.exchange(&codec::encode_read_request(pdu_ref, items).unwrap());
        let answer = decoded(
            "decode_read_response",
            &frame,
            codec::decode_read_response(&frame),
        );
        assert_eq!(answer.pdu_ref, pdu_ref, "{}", hex(&frame));
        answer.body
    }

    /// The item codes, or the codec's error (the pure server refuses failed writes in the
    /// header); the frame comes along for messages.
    fn write(&mut self, items: &[WriteItem]) -> (Result<Vec<ReturnCode>, CodecError>, Vec<u8>) {
        let pdu_ref = self.next_ref();
        let frame = self.exchange(&codec::encode_write_request(pdu_ref, items).unwrap());
        let answer = codec::decode_write_response(&frame).map(|m| {
            assert_eq!(m.pdu_ref, pdu_ref, "{}", hex(&frame));
            m.body
        });
        (answer, frame)
    }

    /// Sends `request` and returns the next whole frame; panics on any IO error.
    fn exchange(&mut self, request: &[u8]) -> Vec<u8> {
        let imp = self.imp;
        self.try_exchange(request)
            .unwrap_or_else(|e| panic!("{imp:?}: no answer to {}: {e}", hex(request)))
    }

    fn try_exchange(&mut self, request: &[u8]) -> std::io::Result<Vec<u8>> {
        self.stream.write_all(request)?;
        loop {
            let len = codec::frame_len(&self.buf)
                .unwrap_or_else(|e| panic!("codec::frame_len refused {}: {e}", hex(&self.buf)));
            if let Some(n) = len.filter(|&n| self.buf.len() >= n) {
                return Ok(self.buf.drain(..n).collect());
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk)? {
                0 => return Err(ErrorKind::UnexpectedEof.into()),
                n => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

fn db(db: u16, start: u32, len: u16) -> VarSpec {
    VarSpec::bytes(Area::DataBlock, db, start, len)
}

fn ok_data(imp: S7Impl, item: &ReadItem) -> Vec<u8> {
    match item.result() {
        Ok(data) => data.to_vec(),
        Err(code) => panic!("{imp:?}: item failed with {code}"),
    }
}

fn control_round_trip(imp: S7Impl) {
    let sim = S7Sim::start(imp, &layout());
    assert_eq!(sim.host(), "127.0.0.1");
    assert!(port_open(sim.port()));
    for (area, db, size) in [
        (S7Area::DataBlock, 1, 1024),
        (S7Area::DataBlock, 2, 64),
        (S7Area::Flags, 0, 256),
        (S7Area::Inputs, 0, 64),
        (S7Area::Outputs, 0, 64),
    ] {
        assert_eq!(sim.get(area, db, 0, size), vec![0; size], "{area:?} {db}");
        sim.set(area, db, size as u32 - 3, &[0xde, 0xad, 0xbe]);
        assert_eq!(sim.get(area, db, size as u32 - 4, 4), [0, 0xde, 0xad, 0xbe]);
    }
    // Undeclared memory is refused by the control channel too.
    for (area, db, offset) in [(S7Area::DataBlock, 3, 0), (S7Area::DataBlock, 2, 63)] {
        let r = std::panic::catch_unwind(AssertUnwindSafe(|| sim.get(area, db, offset, 2)));
        let msg = *r.unwrap_err().downcast::<String>().unwrap();
        assert!(
            msg.contains("not declared") || msg.contains("outside"),
            "{msg}"
        );
    }
}

fn connect_and_negotiate(imp: S7Impl) {
    let sim = S7Sim::start(imp, &layout());
    let (max, granted_960) = match imp {
        S7Impl::Pure => (480, 480),
        S7Impl::Native => (4096, 960),
    };
    assert_eq!(sim.pdu(), max);
    for (proposal, granted) in [(480, 480), (960, granted_960), (65535, max)] {
        let (_conn, setup) = Conn::negotiate(&sim, proposal);
        assert_eq!(setup.pdu_length, granted, "{imp:?} granted to {proposal}");
        assert_eq!((setup.max_amq_calling, setup.max_amq_called), (1, 1));
    }
    // Several clients at once.
    let (mut a, _) = Conn::negotiate(&sim, 480);
    let (mut b, _) = Conn::negotiate(&sim, 480);
    sim.set(S7Area::DataBlock, 1, 0, &[7]);
    assert_eq!(ok_data(imp, &a.read(&[db(1, 0, 1)])[0]), [7]);
    assert_eq!(ok_data(imp, &b.read(&[db(1, 0, 1)])[0]), [7]);
}

fn reads_what_the_test_set(imp: S7Impl) {
    let sim = S7Sim::start(imp, &layout());
    let (mut conn, _) = Conn::negotiate(&sim, 480);
    sim.set(S7Area::DataBlock, 1, 100, &[0x12, 0x34, 0x56, 0x78, 0x9a]);
    sim.set(S7Area::Flags, 0, 10, &[0xf0]);
    sim.set(S7Area::Inputs, 0, 1, &[0x01, 0x02]);
    sim.set(S7Area::Outputs, 0, 63, &[0xff]);
    let cases = [
        (db(1, 100, 5), vec![0x12, 0x34, 0x56, 0x78, 0x9a]),
        (VarSpec::bytes(Area::Flags, 0, 10, 1), vec![0xf0]),
        (VarSpec::bytes(Area::Inputs, 0, 0, 3), vec![0, 1, 2]),
        (VarSpec::bytes(Area::Outputs, 0, 62, 2), vec![0, 0xff]),
    ];
    for (spec, expected) in cases {
        let items = conn.read(&[spec]);
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].transport, DataTransport::Byte, "{imp:?} {spec:?}");
        assert_eq!(ok_data(imp, &items[0]), expected, "{imp:?} {spec:?}");
    }
    // A client's view follows the control channel at once.
    sim.set(S7Area::DataBlock, 1, 100, &[0xaa]);
    assert_eq!(ok_data(imp, &conn.read(&[db(1, 100, 2)])[0]), [0xaa, 0x34]);
    // A whole PDU's worth: 480 - 12 header - 2 parameters - 4 item header.
    let big: Vec<u8> = (0..462u32).map(|i| (i % 251) as u8).collect();
    sim.set(S7Area::DataBlock, 1, 500, &big);
    assert_eq!(ok_data(imp, &conn.read(&[db(1, 500, 462)])[0]), big);
}

fn writes_reach_the_server(imp: S7Impl) {
    let sim = S7Sim::start(imp, &layout());
    let (mut conn, _) = Conn::negotiate(&sim, 480);
    let items = [WriteItem::bytes(Area::DataBlock, 2, 10, vec![1, 2, 3]).unwrap()];
    let (codes, frame) = conn.write(&items);
    assert_eq!(codes.unwrap(), [ReturnCode::SUCCESS], "{}", hex(&frame));
    assert_eq!(sim.get(S7Area::DataBlock, 2, 9, 5), [0, 1, 2, 3, 0]);
    for (area, sim_area) in [
        (Area::Flags, S7Area::Flags),
        (Area::Outputs, S7Area::Outputs),
        (Area::Inputs, S7Area::Inputs),
    ] {
        let items = [WriteItem::bytes(area, 0, 4, vec![0xc3, 0x3c]).unwrap()];
        let (codes, frame) = conn.write(&items);
        assert_eq!(codes.unwrap(), [ReturnCode::SUCCESS], "{}", hex(&frame));
        assert_eq!(sim.get(sim_area, 0, 4, 2), [0xc3, 0x3c], "{imp:?} {area:?}");
    }
    // And a client reads back what it wrote.
    assert_eq!(ok_data(imp, &conn.read(&[db(2, 10, 3)])[0]), [1, 2, 3]);
}

fn multi_item_read(imp: S7Impl) {
    let sim = S7Sim::start(imp, &layout());
    let (mut conn, _) = Conn::negotiate(&sim, 480);
    sim.set(S7Area::DataBlock, 1, 0, &[1, 2, 3]);
    sim.set(S7Area::DataBlock, 2, 60, &[4, 5, 6, 7]);
    sim.set(S7Area::Flags, 0, 0, &[8]);
    // Odd lengths between items: the servers insert a pad byte (native: not zeroed).
    let items = conn.read(&[
        db(1, 0, 3),
        db(2, 60, 4),
        VarSpec::bytes(Area::Flags, 0, 0, 1),
        db(1, 1, 1),
    ]);
    let data: Vec<Vec<u8>> = items.iter().map(|i| ok_data(imp, i)).collect();
    assert_eq!(data, [vec![1, 2, 3], vec![4, 5, 6, 7], vec![8], vec![2]]);

    // 22 one-byte items: the native server answers only the first 20.
    let specs: Vec<VarSpec> = (0..22).map(|i| db(1, i, 1)).collect();
    let items = conn.read(&specs);
    let answered = match imp {
        S7Impl::Pure => 22,
        S7Impl::Native => 20,
    };
    assert_eq!(items.len(), answered, "{imp:?}");
    let data: Vec<u8> = items.iter().flat_map(|i| ok_data(imp, i)).collect();
    let mut expected = vec![1, 2, 3];
    expected.resize(answered, 0);
    assert_eq!(data, expected);
}

fn missing_db_and_out_of_range(imp: S7Impl) {
    let sim = S7Sim::start(imp, &layout());
    let (mut conn, _) = Conn::negotiate(&sim, 480);
    sim.set(S7Area::DataBlock, 2, 0, &[9, 9]);
    // Alone, then among good items: a failed item is its header alone (the native server sends
    // it with length 4 and no data).
    assert_eq!(
        conn.read(&[db(3, 0, 2)]),
        [ReadItem::failed(ReturnCode::OBJECT_DOES_NOT_EXIST)]
    );
    assert_eq!(
        conn.read(&[db(2, 63, 2)]),
        [ReadItem::failed(ReturnCode::ADDRESS_OUT_OF_RANGE)]
    );
    let items = conn.read(&[
        db(3, 0, 2),
        db(2, 0, 1),
        db(2, 60, 8),
        VarSpec::bytes(Area::Flags, 0, 255, 1),
        db(65535, 0, 1),
    ]);
    let codes: Vec<ReturnCode> = items.iter().map(|i| i.code).collect();
    assert_eq!(
        codes,
        [
            ReturnCode::OBJECT_DOES_NOT_EXIST,
            ReturnCode::SUCCESS,
            ReturnCode::ADDRESS_OUT_OF_RANGE,
            ReturnCode::SUCCESS,
            ReturnCode::OBJECT_DOES_NOT_EXIST,
        ],
        "{imp:?}"
    );
    assert_eq!(ok_data(imp, &items[1]), [9]);
    assert_eq!(ok_data(imp, &items[3]), [0]);

    // Writes: native answers item codes; pure refuses the whole request in the S7 header
    // (ack, error class 0x84, code 0x04).
    for (item, code) in [
        (
            WriteItem::bytes(Area::DataBlock, 3, 0, vec![1]).unwrap(),
            ReturnCode::OBJECT_DOES_NOT_EXIST,
        ),
        (
            WriteItem::bytes(Area::DataBlock, 2, 64, vec![1]).unwrap(),
            ReturnCode::ADDRESS_OUT_OF_RANGE,
        ),
    ] {
        let (answer, frame) = conn.write(&[item]);
        match imp {
            S7Impl::Native => assert_eq!(answer, Ok(vec![code]), "{}", hex(&frame)),
            S7Impl::Pure => assert!(
                matches!(
                    answer,
                    Err(CodecError::Plc {
                        class: 0x84,
                        code: 0x04,
                        ..
                    })
                ),
                "{answer:?} {}",
                hex(&frame)
            ),
        }
    }
    // The connection still serves.
    assert_eq!(ok_data(imp, &conn.read(&[db(2, 0, 2)])[0]), [9, 9]);
}

fn multi_item_write(imp: S7Impl) {
    let sim = S7Sim::start(imp, &layout());
    let (mut conn, _) = Conn::negotiate(&sim, 480);
    let items = [
        WriteItem::bytes(Area::DataBlock, 1, 20, vec![0x11]).unwrap(),
        WriteItem::bytes(Area::DataBlock, 2, 0, vec![0x22, 0x33]).unwrap(),
        WriteItem::bytes(Area::Flags, 0, 7, vec![0x44]).unwrap(),
    ];
    let (codes, frame) = conn.write(&items);
    let codes = codes.unwrap_or_else(|e| panic!("{imp:?}: {e} {}", hex(&frame)));
    assert_eq!(sim.get(S7Area::DataBlock, 1, 20, 1), [0x11]);
    match imp {
        S7Impl::Native => {
            assert_eq!(codes, [ReturnCode::SUCCESS; 3]);
            assert_eq!(sim.get(S7Area::DataBlock, 2, 0, 2), [0x22, 0x33]);
            assert_eq!(sim.get(S7Area::Flags, 0, 7, 1), [0x44]);
        }
        S7Impl::Pure => {
            // Only the first item is written, and only one code comes back.
            assert_eq!(codes, [ReturnCode::SUCCESS]);
            assert_eq!(sim.get(S7Area::DataBlock, 2, 0, 2), [0, 0]);
            assert_eq!(sim.get(S7Area::Flags, 0, 7, 1), [0]);
        }
    }
}

fn bit_access(imp: S7Impl) {
    let sim = S7Sim::start(imp, &layout());
    let (mut conn, _) = Conn::negotiate(&sim, 480);
    sim.set(S7Area::Flags, 0, 3, &[0b1010_0101]);
    let set = conn.read(&[VarSpec::bit(Area::Flags, 0, 3, 2)]);
    let clear = conn.read(&[VarSpec::bit(Area::Flags, 0, 3, 1)]);
    match imp {
        S7Impl::Native => {
            assert_eq!(
                (set[0].transport, ok_data(imp, &set[0])),
                (DataTransport::Bit, vec![1])
            );
            assert_eq!(
                (clear[0].transport, ok_data(imp, &clear[0])),
                (DataTransport::Bit, vec![0])
            );
        }
        S7Impl::Pure => {
            // The whole byte holding the bit, as a byte item.
            for item in [&set[0], &clear[0]] {
                assert_eq!(
                    (item.transport, ok_data(imp, item)),
                    (DataTransport::Byte, vec![0b1010_0101])
                );
            }
        }
    }
    let (codes, frame) = conn.write(&[WriteItem::bit(Area::Flags, 0, 3, 1, true)]);
    assert_eq!(codes.unwrap(), [ReturnCode::SUCCESS], "{}", hex(&frame));
    let after = sim.get(S7Area::Flags, 0, 3, 1)[0];
    match imp {
        S7Impl::Native => assert_eq!(after, 0b1010_0111),
        // The data byte replaces the whole byte.
        S7Impl::Pure => assert_eq!(after, 0b0000_0001),
    }
    let (codes, _) = conn.write(&[WriteItem::bit(Area::DataBlock, 1, 0, 7, true)]);
    assert_eq!(codes.unwrap(), [ReturnCode::SUCCESS]);
    let expected = match imp {
        S7Impl::Native => 0x80,
        S7Impl::Pure => 0x01,
    };
    assert_eq!(sim.get(S7Area::DataBlock, 1, 0, 1), [expected]);
}

fn kill_and_restart_on_the_same_port(imp: S7Impl) {
    let mut sim = S7Sim::start(imp, &layout());
    let port = sim.port();
    let (mut conn, _) = Conn::negotiate(&sim, 480);
    sim.set(S7Area::DataBlock, 1, 0, &[0x5a]);
    assert_eq!(ok_data(imp, &conn.read(&[db(1, 0, 1)])[0]), [0x5a]);

    sim.kill();
    assert!(!sim.is_running());
    assert!(
        !port_open(port),
        "{imp:?}: port {port} still open after kill"
    );
    let request = codec::encode_read_request(99, &[db(1, 0, 1)]).unwrap();
    assert!(
        conn.try_exchange(&request).is_err(),
        "{imp:?}: a killed server answered"
    );

    sim.restart();
    assert!(sim.is_running());
    assert_eq!(sim.port(), port);
    wait_until("the restarted server to accept", DEFAULT_TIMEOUT, || {
        port_open(port)
    });
    let (mut conn, _) = Conn::negotiate(&sim, 480);
    assert_eq!(
        ok_data(imp, &conn.read(&[db(1, 0, 1)])[0]),
        [0],
        "{imp:?}: contents survived"
    );
    assert_eq!(sim.get(S7Area::DataBlock, 1, 0, 1), [0]);

    // Twice in a row, with the old connection left open across the restart.
    sim.restart();
    assert_eq!(sim.port(), port);
    assert!(conn.try_exchange(&request).is_err());
    let (mut conn, _) = Conn::negotiate(&sim, 480);
    assert_eq!(ok_data(imp, &conn.read(&[db(2, 0, 1)])[0]), [0]);
}

macro_rules! for_both {
    ($($test:ident),* $(,)?) => {
        mod pure {
            $( #[test] fn $test() { super::$test(super::S7Impl::Pure) } )*
        }
        mod native {
            $( #[test] fn $test() { super::$test(super::S7Impl::Native) } )*
        }
    };
}

for_both!(
    control_round_trip,
    connect_and_negotiate,
    reads_what_the_test_set,
    writes_reach_the_server,
    multi_item_read,
    missing_db_and_out_of_range,
    multi_item_write,
    bit_access,
    kill_and_restart_on_the_same_port,
);
