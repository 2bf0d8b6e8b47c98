//! Golden frames, written byte by byte from the format description in `petra_s7::codec`.

/// Space-separated hex bytes (`|` allowed as a visual separator).
pub fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .filter(|t| *t != "|")
        .map(|t| u8::from_str_radix(t, 16).expect("test hex"))
        .collect()
}

/// COTP CR, PG to rack 0 slot 2, source reference 1, TPDU 1024.
pub const CR_RACK0_SLOT2: &str =
    "03 00 00 16 | 11 E0 00 00 00 01 00 | C0 01 0A | C1 02 01 00 | C2 02 01 02";

/// COTP CC answering it: destination reference 1 (ours), source reference 0x4431 (the CPU's).
pub const CC: &str = "03 00 00 16 | 11 D0 00 01 44 31 00 | C0 01 0A | C1 02 01 00 | C2 02 01 02";

/// COTP DR, reason 0x80 (normal disconnect).
pub const DR: &str = "03 00 00 0B | 06 80 00 01 00 00 80";

/// Setup communication job: reference 0, AMQ 1/1, PDU 480.
pub const SETUP_REQ: &str =
    "03 00 00 19 | 02 F0 80 | 32 01 00 00 00 00 00 08 00 00 | F0 00 00 01 00 01 01 E0";

/// Setup communication ack-data: reference 0, AMQ 1/1, PDU 240.
pub const SETUP_RESP: &str =
    "03 00 00 1B | 02 F0 80 | 32 03 00 00 00 00 00 08 00 00 00 00 | F0 00 00 01 00 01 00 F0";

/// Read var job, reference 0x0102: DB1 bytes 0..4 (byte transport), M10.1 (bit transport).
/// Parameters 2 + 2·12 = 26 (0x1A); S7 PDU 36; frame 43 (0x2B).
pub const READ_REQ: &str = "03 00 00 2B | 02 F0 80 | 32 01 00 00 01 02 00 1A 00 00 | 04 02 \
     | 12 0A 10 02 00 04 00 01 84 00 00 00 \
     | 12 0A 10 01 00 01 00 00 83 00 00 51";

/// Read var ack-data, reference 7, five items: 3 bytes (24 bits, padded), object does not
/// exist, a bit (1 bit = 1 byte, padded), a REAL 42.0 (length in bytes), 1 byte last (no pad).
/// Data 8 + 4 + 6 + 8 + 5 = 31 (0x1F); S7 PDU 45; frame 52 (0x34).
pub const READ_RESP: &str = "03 00 00 34 | 02 F0 80 | 32 03 00 00 00 07 00 02 00 1F 00 00 | 04 05 \
     | FF 04 00 18 01 02 03 00 \
     | 0A 00 00 00 \
     | FF 03 00 01 01 00 \
     | FF 07 00 04 42 28 00 00 \
     | FF 04 00 08 AB";

/// Ack with error class 0x81, code 0x04, reference 7, no parameters.
pub const ERROR_ACK: &str = "03 00 00 13 | 02 F0 80 | 32 02 00 00 00 07 00 00 00 00 81 04";

/// Write var job, reference 0x0A00: DB1.DBW2 = 0x1234, Q0.1 = true.
/// Parameters 26 (0x1A), data 6 + 5 = 11 (0x0B); S7 PDU 47; frame 54 (0x36).
pub const WRITE_REQ: &str = "03 00 00 36 | 02 F0 80 | 32 01 00 00 0A 00 00 1A 00 0B | 05 02 \
     | 12 0A 10 02 00 02 00 01 84 00 00 10 \
     | 12 0A 10 01 00 01 00 00 82 00 00 01 \
     | 00 04 00 10 12 34 \
     | 00 03 00 01 01";

/// Write var ack-data, reference 0x0A00: success, object does not exist.
pub const WRITE_RESP: &str =
    "03 00 00 17 | 02 F0 80 | 32 03 00 00 0A 00 00 02 00 02 00 00 | 05 02 | FF 0A";

pub const ALL: [&str; 10] = [
    CR_RACK0_SLOT2,
    CC,
    DR,
    SETUP_REQ,
    SETUP_RESP,
    READ_REQ,
    READ_RESP,
    ERROR_ACK,
    WRITE_REQ,
    WRITE_RESP,
];
