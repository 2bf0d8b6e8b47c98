//! A stable-toolchain fuzz test: over a million inputs — random bytes and mutations of the
//! golden frames — through every decoder, none of which may panic.

use std::hint::black_box;
use std::time::Instant;

use petra_s7::codec::*;
use petra_s7::{Address, Variable};

use crate::frames::{ALL, hex};

const INPUTS: usize = 1_000_000;

/// Feeds one input to every frame decoder; returns how many accepted it.
pub fn feed(frame: &[u8]) -> usize {
    let mut ok = 0;
    ok += usize::from(black_box(frame_len(frame)).is_ok());
    ok += usize::from(black_box(next_frame(frame)).is_ok_and(|f| f.is_some()));
    ok += usize::from(black_box(decode_connect_request(frame)).is_ok());
    ok += usize::from(black_box(decode_connect_confirm(frame)).is_ok());
    ok += usize::from(black_box(decode_setup_request(frame)).is_ok());
    ok += usize::from(black_box(decode_setup_response(frame)).is_ok());
    ok += usize::from(black_box(decode_read_request(frame)).is_ok());
    ok += usize::from(black_box(decode_read_response(frame)).is_ok());
    ok += usize::from(black_box(decode_write_request(frame)).is_ok());
    ok += usize::from(black_box(decode_write_response(frame)).is_ok());
    ok
}

/// xorshift64*: small, fast, seeded, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        const INTERESTING: [u8; 8] = [0x00, 0x01, 0x02, 0x03, 0x7F, 0x80, 0xFE, 0xFF];
        match self.below(4) {
            0 => INTERESTING[self.below(INTERESTING.len())],
            _ => self.next() as u8,
        }
    }
}

fn mutate(rng: &mut Rng, buf: &mut Vec<u8>) {
    for _ in 0..=rng.below(4) {
        let at = rng.below(buf.len());
        match rng.below(7) {
            0 if !buf.is_empty() => buf[at] ^= 1 << rng.below(8),
            1 if !buf.is_empty() => buf[at] = rng.byte(),
            2 => buf.truncate(at),
            3 => buf.insert(at.min(buf.len()), rng.byte()),
            4 if !buf.is_empty() => {
                buf.remove(at);
            }
            5 => {
                let end = (at + rng.below(16)).min(buf.len());
                let chunk = buf[at.min(end)..end].to_vec();
                buf.extend(chunk);
            }
            _ => {
                for _ in 0..rng.below(8) {
                    buf.push(rng.byte());
                }
            }
        }
    }
    // Half the time, repair the TPKT length so the input gets past the framing checks.
    if rng.below(2) == 0 && buf.len() >= 4 && buf.len() <= 0xFFFF {
        let [hi, lo] = (buf.len() as u16).to_be_bytes();
        buf[2] = hi;
        buf[3] = lo;
    }
}

#[test]
fn fuzz_decoders_never_panic() {
    let started = Instant::now();
    let golden: Vec<Vec<u8>> = ALL.iter().map(|f| hex(f)).collect();
    let vars: Vec<Variable> = [
        ("DB1.DBX0.3", None, None, None),
        ("DB1.DBD0", Some("REAL"), None, None),
        ("DB1.DBB0", Some("STRING"), Some(6), None),
        ("DB1.DBB0", Some("LREAL"), None, None),
        ("DB1.DBB0", Some("INT"), None, Some(4)),
    ]
    .into_iter()
    .map(|(a, t, l, c)| Variable::parse(a, t, l, c).unwrap())
    .collect();
    let alphabet = b"DBXWMIEQA0123456789. x";

    let mut rng = Rng(0x5EED_0000_0000_0007);
    let mut accepted = 0usize;
    let mut buf = Vec::with_capacity(512);
    for _ in 0..INPUTS {
        buf.clear();
        if rng.below(8) == 0 {
            for _ in 0..rng.below(64) {
                buf.push(rng.byte());
            }
        } else {
            buf.extend_from_slice(&golden[rng.below(golden.len())]);
            mutate(&mut rng, &mut buf);
        }
        accepted += feed(&buf);

        // The value and address decoders get the same input in their own shapes.
        let var = &vars[rng.below(vars.len())];
        let len = (var.byte_len() as usize).min(buf.len());
        black_box(var.decode(&buf[..len]).ok());
        let text: String = buf
            .iter()
            .take(12)
            .map(|&b| char::from(alphabet[usize::from(b) % alphabet.len()]))
            .collect();
        black_box(Address::parse(&text).ok());
    }
    // Mutations must reach the decoders' depths, not only bounce off the framing.
    assert!(
        accepted > INPUTS / 10,
        "only {accepted} inputs were accepted by some decoder"
    );
    println!(
        "{INPUTS} inputs, {accepted} decodes accepted, {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
