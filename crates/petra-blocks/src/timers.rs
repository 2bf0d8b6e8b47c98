//! IEC timers: TON (on delay), TOF (off delay), TP (pulse), and TONR (retentive on delay,
//! not in IEC 61131-3 itself but in every major PLC library under that name).
//!
//! All three measure time with `Io::now()`, the *scheduled* time of the scan, never a clock:
//! a timer therefore behaves identically in real and virtual time and is exact at period
//! boundaries whatever the scheduling jitter. A timer started on the scan at time `t0` expires
//! on the first scan whose `now - t0 >= pt`; with a 10 ms task and `pt = 500ms` that is the scan
//! exactly 500 ms after the start scan. `et` counts from 0 and stops at `pt`.
//!
//! `pt` is read every scan (a signal may change it while the timer runs: the new value applies
//! at once); a negative `pt` signal counts as 0. If scans are skipped (overrun), the next scan
//! sees the whole elapsed time, so a timer never expires late by more than one scan and never
//! early. A clock that does not advance (or goes back) reads as no time elapsed.
//!
//! Hot reload ([`Block::adopt`]) keeps a running timer running: the new instance takes over
//! the start time (TON, TOF, TP) or the accumulated time (TONR), and applies its own `pt`.

use crate::{input, output};
use petra_core::MonoTime;
use petra_engine::{Block, BlockType, BuildCtx, BuildResult, Io, PortSpec, PortType, previous};
use std::time::Duration;

const IN: usize = 0;
const PT: usize = 1;
const Q: usize = 0;
const ET: usize = 1;
/// TONR's inputs: `in`, `r`, `pt`.
const R: usize = 1;
const PT_R: usize = 2;

static TON_INPUTS: [PortSpec; 2] = [
    input("in", PortType::Bool, "start: timing runs while true"),
    input(
        "pt",
        PortType::Time,
        "preset time (`500ms` or an int signal in ms)",
    ),
];
static TOF_INPUTS: [PortSpec; 2] = [
    input(
        "in",
        PortType::Bool,
        "q follows it on; a falling edge starts timing",
    ),
    input(
        "pt",
        PortType::Time,
        "preset time (`500ms` or an int signal in ms)",
    ),
];
static TP_INPUTS: [PortSpec; 2] = [
    input("in", PortType::Bool, "a rising edge starts a pulse"),
    input(
        "pt",
        PortType::Time,
        "pulse length (`500ms` or an int signal in ms)",
    ),
];
static TON_OUTPUTS: [PortSpec; 2] = [
    output("q", PortType::Bool, "true once `in` has been true for `pt`"),
    output("et", PortType::Time, "elapsed time in ms, 0..=pt"),
];
static TOF_OUTPUTS: [PortSpec; 2] = [
    output(
        "q",
        PortType::Bool,
        "true while `in` is true and for `pt` after it falls",
    ),
    output(
        "et",
        PortType::Time,
        "elapsed time since the falling edge in ms, 0..=pt",
    ),
];
static TP_OUTPUTS: [PortSpec; 2] = [
    output("q", PortType::Bool, "the pulse"),
    output("et", PortType::Time, "elapsed pulse time in ms, 0..=pt"),
];

pub static TON: BlockType = BlockType {
    name: "TON",
    aliases: &[],
    summary: "on-delay timer: q goes true when in has been true for pt",
    inputs: &TON_INPUTS,
    outputs: &TON_OUTPUTS,
    params: &[],
    build: build_ton,
};

pub static TOF: BlockType = BlockType {
    name: "TOF",
    aliases: &[],
    summary: "off-delay timer: q stays true for pt after in goes false",
    inputs: &TOF_INPUTS,
    outputs: &TOF_OUTPUTS,
    params: &[],
    build: build_tof,
};

pub static TP: BlockType = BlockType {
    name: "TP",
    aliases: &[],
    summary: "pulse timer: a rising edge of in gives a pulse of length pt, not retriggerable",
    inputs: &TP_INPUTS,
    outputs: &TP_OUTPUTS,
    params: &[],
    build: build_tp,
};

static TONR_INPUTS: [PortSpec; 3] = [
    input(
        "in",
        PortType::Bool,
        "timing accumulates while true and holds while false",
    ),
    input(
        "r",
        PortType::Bool,
        "reset (dominant): et back to 0, q false",
    ),
    input(
        "pt",
        PortType::Time,
        "preset time (`500ms` or an int signal in ms)",
    ),
];
static TONR_OUTPUTS: [PortSpec; 2] = [
    output(
        "q",
        PortType::Bool,
        "true once `in` has been true for `pt` in total since the last reset; held until `r`",
    ),
    output("et", PortType::Time, "accumulated time in ms, 0..=pt"),
];

pub static TONR: BlockType = BlockType {
    name: "TONR",
    aliases: &[],
    summary: "retentive on-delay timer: accumulates the time in is true, q at pt, r resets",
    inputs: &TONR_INPUTS,
    outputs: &TONR_OUTPUTS,
    params: &[],
    build: build_tonr,
};

fn build_ton(_: &BuildCtx<'_>) -> BuildResult {
    Ok(Box::new(Ton { start: None }))
}

fn build_tof(_: &BuildCtx<'_>) -> BuildResult {
    Ok(Box::new(Tof {
        state: TofState::Idle,
    }))
}

fn build_tp(_: &BuildCtx<'_>) -> BuildResult {
    Ok(Box::new(Tp {
        state: TpState::Idle,
    }))
}

fn build_tonr(_: &BuildCtx<'_>) -> BuildResult {
    Ok(Box::new(Tonr {
        acc: Duration::ZERO,
        since: None,
        timing: false,
    }))
}

fn emit(io: &mut Io<'_>, q: bool, et: Duration) {
    io.set_bool(Q, q);
    io.set_time(ET, et);
}

struct Ton {
    /// When `in` rose; `None` while `in` is false. Memory starts false, so `in` true on the
    /// first scan starts the timer (IEC).
    start: Option<MonoTime>,
}

impl Block for Ton {
    fn execute(&mut self, io: &mut Io<'_>) {
        let pt = io.time(PT);
        if io.bool(IN) {
            let now = io.now();
            let elapsed = now.saturating_sub(*self.start.get_or_insert(now));
            emit(io, elapsed >= pt, elapsed.min(pt));
        } else {
            self.start = None;
            emit(io, false, Duration::ZERO);
        }
    }

    fn adopt(&mut self, old: &mut dyn Block) {
        if let Some(old) = previous::<Ton>(old) {
            self.start = old.start;
        }
    }
}

#[derive(Clone, Copy)]
enum TofState {
    /// `in` false and no delay running (initially, and after expiry: `et` = 0 / `pt`).
    Idle,
    /// `in` true.
    On,
    /// `in` fell at this time; `q` still true.
    Running(MonoTime),
    /// The delay ran out; `et` holds `pt` until `in` rises.
    Expired,
}

struct Tof {
    state: TofState,
}

impl Block for Tof {
    fn execute(&mut self, io: &mut Io<'_>) {
        let pt = io.time(PT);
        if io.bool(IN) {
            self.state = TofState::On;
            emit(io, true, Duration::ZERO);
            return;
        }
        if let TofState::On = self.state {
            self.state = TofState::Running(io.now());
        }
        match self.state {
            TofState::Running(start) => {
                let elapsed = io.now().saturating_sub(start);
                if elapsed >= pt {
                    self.state = TofState::Expired;
                    emit(io, false, pt);
                } else {
                    emit(io, true, elapsed);
                }
            }
            TofState::Expired => emit(io, false, pt),
            TofState::Idle | TofState::On => emit(io, false, Duration::ZERO),
        }
    }

    fn adopt(&mut self, old: &mut dyn Block) {
        if let Some(old) = previous::<Tof>(old) {
            self.state = old.state;
        }
    }
}

#[derive(Clone, Copy)]
enum TpState {
    /// No pulse, `in` false (or the first scan): a true `in` is a rising edge.
    Idle,
    /// Pulse started at this time; edges of `in` are ignored until it ends.
    Pulse(MonoTime),
    /// Pulse over but `in` still true: `et` holds `pt` until `in` falls.
    Hold,
}

struct Tp {
    state: TpState,
}

impl Block for Tp {
    fn execute(&mut self, io: &mut Io<'_>) {
        let pt = io.time(PT);
        let input = io.bool(IN);
        if input && matches!(self.state, TpState::Idle) {
            self.state = TpState::Pulse(io.now());
        }
        match self.state {
            TpState::Pulse(start) => {
                let elapsed = io.now().saturating_sub(start);
                if elapsed < pt {
                    emit(io, true, elapsed);
                } else if input {
                    self.state = TpState::Hold;
                    emit(io, false, pt);
                } else {
                    self.state = TpState::Idle;
                    emit(io, false, Duration::ZERO);
                }
            }
            TpState::Hold if input => emit(io, false, pt),
            TpState::Hold | TpState::Idle => {
                self.state = TpState::Idle;
                emit(io, false, Duration::ZERO);
            }
        }
    }

    fn adopt(&mut self, old: &mut dyn Block) {
        if let Some(old) = previous::<Tp>(old) {
            self.state = old.state;
        }
    }
}

struct Tonr {
    /// Time accumulated while `in` was true since the last reset, capped at the `pt` of the
    /// scan that added it (so a later, longer `pt` continues from there).
    acc: Duration,
    /// The previous scan's time if `in` was true on it: the next scan with `in` true adds the
    /// time in between. `None` while `in` is false, so time with `in` false never counts.
    since: Option<MonoTime>,
    /// `in` has been true at least once since the last reset (so `pt = 0` does not assert `q`
    /// before anything happened).
    timing: bool,
}

impl Block for Tonr {
    fn execute(&mut self, io: &mut Io<'_>) {
        let pt = io.time(PT_R);
        if io.bool(R) {
            self.acc = Duration::ZERO;
            self.since = None;
            self.timing = false;
            emit(io, false, Duration::ZERO);
            return;
        }
        if io.bool(IN) {
            let now = io.now();
            if let Some(prev) = self.since {
                self.acc = self
                    .acc
                    .saturating_add(now.saturating_sub(prev))
                    .min(pt.max(self.acc));
            }
            self.since = Some(now);
            self.timing = true;
        } else {
            self.since = None;
        }
        let q = self.timing && self.acc >= pt;
        emit(io, q, self.acc.min(pt));
    }

    fn adopt(&mut self, old: &mut dyn Block) {
        if let Some(old) = previous::<Tonr>(old) {
            self.acc = old.acc;
            self.since = old.since;
            self.timing = old.timing;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Harness, Setup, b, i, reload_keeps_state};
    use petra_core::Value;
    use petra_core::ValueType::{Bool, Int};
    use proptest::prelude::*;

    /// A timer with `in` wired and `pt` a constant, as `params: { pt: 500ms }` compiles to.
    fn timer(ty: &'static BlockType, pt_ms: i64) -> Harness {
        Setup::new(ty)
            .input("in", Bool)
            .constant("pt", Value::Int(pt_ms))
            .output(Bool)
            .output(Int)
            .harness()
    }

    /// Scans at `t` with `in` and checks (q, et).
    fn expect(h: &mut Harness, t: u64, input: bool, q: bool, et: i64) {
        h.scan(t, &[b(input)]);
        assert_eq!((h.bool(0), h.int(1)), (q, et), "t={t}ms in={input}");
    }

    /// Runs 10 ms scans from `from` to `to` inclusive with `in` fixed, checking (q, et) from
    /// `f(t)`.
    fn span(h: &mut Harness, from: u64, to: u64, input: bool, f: impl Fn(u64) -> (bool, i64)) {
        for t in (from..=to).step_by(10) {
            let (q, et) = f(t);
            expect(h, t, input, q, et);
        }
    }

    #[test]
    fn ton_timing_diagram_at_10ms() {
        let mut h = timer(&TON, 500);
        span(&mut h, 0, 90, false, |_| (false, 0));
        // Rising edge at 100: q exactly at 600, et ramps and clamps at pt.
        span(&mut h, 100, 590, true, |t| (false, t as i64 - 100));
        expect(&mut h, 600, true, true, 500);
        span(&mut h, 610, 800, true, |_| (true, 500));
        // Falling edge resets at once.
        expect(&mut h, 810, false, false, 0);
        // A pulse shorter than pt never gets through, and restarts from zero afterwards.
        span(&mut h, 820, 1000, true, |t| (false, t as i64 - 820));
        expect(&mut h, 1010, false, false, 0);
        span(&mut h, 1020, 1510, true, |t| (false, t as i64 - 1020));
        expect(&mut h, 1520, true, true, 500);
    }

    /// A 30 ms task does not divide a 100 ms preset: each timer's output changes on the first
    /// scan at or after the preset has elapsed (120 ms after the edge), never before.
    #[test]
    fn presets_that_the_scan_period_does_not_divide() {
        let mut h = timer(&TON, 100);
        expect(&mut h, 0, true, false, 0);
        expect(&mut h, 30, true, false, 30);
        expect(&mut h, 90, true, false, 90);
        expect(&mut h, 120, true, true, 100);

        let mut h = timer(&TOF, 100);
        expect(&mut h, 0, true, true, 0);
        expect(&mut h, 30, false, true, 0);
        expect(&mut h, 120, false, true, 90);
        expect(&mut h, 150, false, false, 100);

        let mut h = timer(&TP, 100);
        expect(&mut h, 0, true, true, 0);
        expect(&mut h, 90, true, true, 90);
        expect(&mut h, 120, true, false, 100);
        expect(&mut h, 150, false, false, 0);
    }

    #[test]
    fn ton_exactly_at_the_boundary_with_1ms_scans() {
        let mut h = timer(&TON, 500);
        expect(&mut h, 0, true, false, 0);
        for t in 1..500 {
            expect(&mut h, t, true, false, t as i64);
        }
        expect(&mut h, 500, true, true, 500);
        expect(&mut h, 501, true, true, 500);
    }

    #[test]
    fn ton_pt_off_the_scan_grid_expires_on_the_next_scan() {
        let mut h = timer(&TON, 499);
        expect(&mut h, 0, true, false, 0);
        expect(&mut h, 490, true, false, 490);
        expect(&mut h, 500, true, true, 499);
    }

    #[test]
    fn ton_true_on_the_first_scan_starts_timing_there() {
        let mut h = timer(&TON, 20);
        expect(&mut h, 0, true, false, 0);
        expect(&mut h, 10, true, false, 10);
        expect(&mut h, 20, true, true, 20);
    }

    #[test]
    fn ton_zero_and_negative_pt_pass_in_through() {
        for pt in [0, -5, i64::MIN] {
            let mut h = timer(&TON, pt);
            expect(&mut h, 0, false, false, 0);
            expect(&mut h, 10, true, true, 0);
            expect(&mut h, 20, false, false, 0);
        }
    }

    #[test]
    fn ton_after_skipped_scans_sees_the_whole_gap() {
        let mut h = timer(&TON, 500);
        expect(&mut h, 0, true, false, 0);
        expect(&mut h, 2000, true, true, 500);
    }

    #[test]
    fn ton_pt_from_a_signal_applies_at_once() {
        let mut h = Setup::new(&TON)
            .input("in", Bool)
            .input("pt", Int)
            .output(Bool)
            .output(Int)
            .harness();
        h.scan(0, &[b(true), i(1000)]);
        assert_eq!((h.bool(0), h.int(1)), (false, 0));
        h.scan(300, &[b(true), i(1000)]);
        assert_eq!((h.bool(0), h.int(1)), (false, 300));
        // Preset lowered below the elapsed time: expires now, et clamps to the new pt.
        h.scan(310, &[b(true), i(200)]);
        assert_eq!((h.bool(0), h.int(1)), (true, 200));
        h.scan(320, &[b(true), i(i64::MAX)]);
        assert_eq!((h.bool(0), h.int(1)), (false, 320));
    }

    #[test]
    fn tof_timing_diagram_at_10ms() {
        let mut h = timer(&TOF, 500);
        // Starting with in false is not a falling edge.
        span(&mut h, 0, 90, false, |_| (false, 0));
        span(&mut h, 100, 190, true, |_| (true, 0));
        // Falling edge at 200: q stays true until exactly 700.
        span(&mut h, 200, 690, false, |t| (true, t as i64 - 200));
        expect(&mut h, 700, false, false, 500);
        span(&mut h, 710, 800, false, |_| (false, 500));
        // Rising edge: q at once, et back to 0.
        expect(&mut h, 810, true, true, 0);
        // A gap shorter than pt is bridged, and the delay restarts at the next falling edge.
        span(&mut h, 820, 1000, false, |t| (true, t as i64 - 820));
        span(&mut h, 1010, 1050, true, |_| (true, 0));
        span(&mut h, 1060, 1550, false, |t| (true, t as i64 - 1060));
        expect(&mut h, 1560, false, false, 500);
    }

    #[test]
    fn tof_zero_pt_follows_in() {
        let mut h = timer(&TOF, 0);
        expect(&mut h, 0, true, true, 0);
        expect(&mut h, 10, false, false, 0);
        expect(&mut h, 20, true, true, 0);
    }

    #[test]
    fn tp_timing_diagram_at_10ms() {
        let mut h = timer(&TP, 500);
        span(&mut h, 0, 90, false, |_| (false, 0));
        // Rising edge at 100: pulse of exactly 500 ms (q true 100..=590).
        span(&mut h, 100, 190, true, |t| (true, t as i64 - 100));
        // Releasing in does not shorten it...
        span(&mut h, 200, 290, false, |t| (true, t as i64 - 100));
        // ...and a new rising edge while it runs does not retrigger it.
        span(&mut h, 300, 590, true, |t| (true, t as i64 - 100));
        // Ends at 600 with in still true: et holds pt until in falls.
        span(&mut h, 600, 700, true, |_| (false, 500));
        expect(&mut h, 710, false, false, 0);
        // Next rising edge: a new full pulse; ending with in false resets et at once.
        span(&mut h, 720, 730, true, |t| (true, t as i64 - 720));
        span(&mut h, 740, 1210, false, |t| (true, t as i64 - 720));
        expect(&mut h, 1220, false, false, 0);
        expect(&mut h, 1230, true, true, 0);
    }

    #[test]
    fn tp_edge_on_the_scan_the_pulse_ends_is_ignored() {
        let mut h = timer(&TP, 50);
        expect(&mut h, 0, true, true, 0);
        expect(&mut h, 10, false, true, 10);
        expect(&mut h, 40, false, true, 40);
        // in rises on the very scan where the pulse expires: it arrived while the pulse ran,
        // so it is swallowed (not retriggerable); in must fall again for a new pulse.
        expect(&mut h, 50, true, false, 50);
        expect(&mut h, 60, true, false, 50);
        expect(&mut h, 70, false, false, 0);
        expect(&mut h, 80, true, true, 0);
    }

    #[test]
    fn tp_true_on_the_first_scan_is_a_rising_edge() {
        let mut h = timer(&TP, 20);
        expect(&mut h, 0, true, true, 0);
        expect(&mut h, 10, true, true, 10);
        expect(&mut h, 20, true, false, 20);
    }

    #[test]
    fn tp_zero_pt_gives_no_pulse() {
        let mut h = timer(&TP, 0);
        expect(&mut h, 0, true, false, 0);
        expect(&mut h, 10, false, false, 0);
        expect(&mut h, 20, true, false, 0);
    }

    #[test]
    fn timers_survive_a_clock_that_stands_still_or_goes_back() {
        for ty in [&TON, &TOF, &TP] {
            let mut h = timer(ty, 100);
            h.scan(1000, &[b(true)]);
            h.scan(1000, &[b(false)]);
            h.scan(500, &[b(true)]);
            h.scan(0, &[b(false)]);
            h.scan_at(MonoTime::from_nanos(u64::MAX), &[b(true)]);
            h.scan(0, &[b(true)]);
        }
    }

    /// The timing diagrams of docs/blocks.md (one column per 10 ms scan, pt = 5 scans).
    #[test]
    fn reference_diagrams() {
        let diagrams: [(&'static BlockType, &str, &str); 3] = [
            (&TON, "__‾‾‾‾‾‾‾‾‾__‾‾‾___", "_______‾‾‾‾________"),
            (&TOF, "__‾‾‾______‾__‾_______", "__‾‾‾‾‾‾‾‾_‾‾‾‾‾‾‾‾‾__"),
            (&TP, "__‾‾_‾____‾‾‾‾‾‾‾‾‾___", "__‾‾‾‾‾___‾‾‾‾‾_______"),
        ];
        for (ty, input, q) in diagrams {
            let mut h = timer(ty, 50);
            for (k, (i, q)) in input.chars().zip(q.chars()).enumerate() {
                h.scan(k as u64 * 10, &[b(i == '‾')]);
                assert_eq!(h.bool(0), q == '‾', "{} scan {k}", ty.name);
            }
        }
    }

    fn tonr(pt_ms: i64) -> Harness {
        Setup::new(&TONR)
            .input("in", Bool)
            .input("r", Bool)
            .constant("pt", Value::Int(pt_ms))
            .output(Bool)
            .output(Int)
            .harness()
    }

    fn expect_r(h: &mut Harness, t: u64, input: bool, r: bool, q: bool, et: i64) {
        h.scan(t, &[b(input), b(r)]);
        assert_eq!((h.bool(0), h.int(1)), (q, et), "t={t}ms in={input} r={r}");
    }

    #[test]
    fn tonr_accumulates_holds_and_resets() {
        let mut h = tonr(100);
        for t in (0..=50).step_by(10) {
            expect_r(&mut h, t, true, false, false, t as i64);
        }
        // in falls: et holds; the time while in is false does not count.
        for t in (60..=100).step_by(10) {
            expect_r(&mut h, t, false, false, false, 50);
        }
        // in back: counting resumes from the scan it is seen true.
        expect_r(&mut h, 110, true, false, false, 50);
        for t in (120..=150).step_by(10) {
            expect_r(&mut h, t, true, false, false, t as i64 - 60);
        }
        expect_r(&mut h, 160, true, false, true, 100);
        expect_r(&mut h, 170, true, false, true, 100);
        // q is retentive: held while in is false, until r.
        expect_r(&mut h, 180, false, false, true, 100);
        expect_r(&mut h, 190, true, true, false, 0);
        expect_r(&mut h, 200, true, false, false, 0);
        expect_r(&mut h, 210, true, false, false, 10);
    }

    #[test]
    fn tonr_reset_dominates_and_zero_pt_waits_for_in() {
        let mut h = tonr(0);
        expect_r(&mut h, 0, false, false, false, 0);
        expect_r(&mut h, 10, true, true, false, 0);
        expect_r(&mut h, 20, true, false, true, 0);
        expect_r(&mut h, 30, false, false, true, 0);
        expect_r(&mut h, 40, false, true, false, 0);
        expect_r(&mut h, 50, false, false, false, 0);
    }

    #[test]
    fn tonr_after_skipped_scans_and_with_a_clock_going_back() {
        let mut h = tonr(500);
        expect_r(&mut h, 1000, true, false, false, 0);
        expect_r(&mut h, 1300, true, false, false, 300);
        expect_r(&mut h, 1200, true, false, false, 300); // backwards: nothing added
        expect_r(&mut h, 1200, true, false, false, 300); // stalled: nothing added
        expect_r(&mut h, 1500, true, false, true, 500); // 300 + 300, capped at pt
    }

    /// The TONR diagram of docs/blocks.md (10 ms scans, pt = 5 scans).
    #[test]
    fn tonr_reference_diagram() {
        let (input, r, q) = (
            "_‾‾‾__‾‾‾‾_______‾‾",
            "____________‾______",
            "_________‾‾‾_______",
        );
        let mut h = tonr(50);
        for (k, ((i, r), q)) in input.chars().zip(r.chars()).zip(q.chars()).enumerate() {
            h.scan(k as u64 * 10, &[b(i == '‾'), b(r == '‾')]);
            assert_eq!(h.bool(0), q == '‾', "scan {k}");
        }
    }

    #[test]
    fn reload_keeps_running_timers() {
        // in: true from 0 to 300, false to 600, true again; reload in the middle of each phase.
        let scans: Vec<(u64, Vec<Value>)> = (0..90)
            .map(|k| (k * 10, vec![b(!(30..60).contains(&k))]))
            .collect();
        for ty in [&TON, &TOF, &TP] {
            for reload in [1, 3, 20, 31, 45, 61, 75] {
                reload_keeps_state(|| timer(ty, 200), &scans, reload, 2);
            }
        }
        let scans: Vec<(u64, Vec<Value>)> = (0..90)
            .map(|k| (k * 10, vec![b(k % 7 < 4), b(k == 50)]))
            .collect();
        for reload in [1, 5, 22, 37, 51, 70] {
            reload_keeps_state(|| tonr(300), &scans, reload, 2);
        }
    }

    #[test]
    fn reload_applies_the_new_preset_to_the_running_timer() {
        let mut old = timer(&TON, 1000);
        expect(&mut old, 0, true, false, 0);
        expect(&mut old, 300, true, false, 300);
        let mut new = timer(&TON, 400);
        new.adopt_from(&mut old);
        expect(&mut new, 390, true, false, 390);
        expect(&mut new, 400, true, true, 400);

        let mut old = tonr(1000);
        expect_r(&mut old, 0, true, false, false, 0);
        expect_r(&mut old, 300, true, false, false, 300);
        expect_r(&mut old, 310, false, false, false, 300);
        let mut new = tonr(350);
        new.adopt_from(&mut old);
        expect_r(&mut new, 320, false, false, false, 300);
        expect_r(&mut new, 330, true, false, false, 300);
        expect_r(&mut new, 380, true, false, true, 350);
    }

    proptest! {
        /// TON never asserts q before pt has elapsed since the last rising edge, and always
        /// asserts it once pt has elapsed with in still true.
        #[test]
        fn ton_q_iff_pt_elapsed_since_the_last_rising_edge(
            pt in 0i64..1000,
            steps in prop::collection::vec((1u64..60, any::<bool>()), 1..300),
        ) {
            let mut h = timer(&TON, pt);
            let mut t = 0;
            let mut rose_at: Option<u64> = None;
            for (gap, input) in steps {
                t += gap;
                if input && rose_at.is_none() {
                    rose_at = Some(t);
                } else if !input {
                    rose_at = None;
                }
                h.scan(t, &[b(input)]);
                let elapsed = rose_at.map(|r| (t - r) as i64);
                match elapsed {
                    Some(e) => {
                        prop_assert_eq!(h.bool(0), e >= pt, "t={} since edge {}", t, e);
                        prop_assert_eq!(h.int(1), e.min(pt));
                    }
                    None => {
                        prop_assert!(!h.bool(0));
                        prop_assert_eq!(h.int(1), 0);
                    }
                }
            }
        }
    }
}
