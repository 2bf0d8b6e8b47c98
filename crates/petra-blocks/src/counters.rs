//! IEC counters: CTU (up), CTD (down), CTUD (up/down).
//!
//! `cu` and `cd` count on their *rising edge* (IEC declares them `R_EDGE`): each counter keeps
//! the previous value of its count inputs, starting FALSE, so — as with R_TRIG — a count input
//! already TRUE on the first scan counts once. The edge memory is updated on every scan,
//! including scans where a reset or load has priority: an edge that arrives while `r`/`ld` is
//! true is consumed, not counted later.
//!
//! The standard counts within `PVmin..PVmax` of the counter's integer type; here the type is a
//! 64-bit int, so `cv` stops at `i64::MAX` / `i64::MIN` instead of overflowing. `pv` is read
//! every scan (a constant or a signal) and only affects the outputs `q`/`qu`; `ld` loads it.
//!
//! Hot reload keeps `cv` and the edge memories ([`Block::adopt`]), so neither the count nor a
//! held count input is disturbed by a reload.

use crate::{input, output};
use petra_engine::{Block, BlockType, BuildCtx, BuildResult, Io, PortType, previous};

pub static CTU: BlockType = BlockType {
    name: "CTU",
    aliases: &[],
    summary: "up counter: cv counts rising edges of cu, q = cv >= pv, r resets",
    inputs: &[
        input("cu", PortType::Bool, "count up on each rising edge"),
        input("r", PortType::Bool, "reset: cv := 0 (has priority)"),
        input("pv", PortType::Int, "preset value: q is true when cv >= pv"),
    ],
    outputs: &[
        output("q", PortType::Bool, "cv >= pv"),
        output("cv", PortType::Int, "current count"),
    ],
    params: &[],
    build: build_ctu,
};

pub static CTD: BlockType = BlockType {
    name: "CTD",
    aliases: &[],
    summary: "down counter: cv counts down on rising edges of cd, q = cv <= 0, ld loads pv",
    inputs: &[
        input("cd", PortType::Bool, "count down on each rising edge"),
        input("ld", PortType::Bool, "load: cv := pv (has priority)"),
        input("pv", PortType::Int, "preset value loaded by `ld`"),
    ],
    outputs: &[
        output("q", PortType::Bool, "cv <= 0"),
        output("cv", PortType::Int, "current count"),
    ],
    params: &[],
    build: build_ctd,
};

pub static CTUD: BlockType = BlockType {
    name: "CTUD",
    aliases: &[],
    summary: "up/down counter: cu counts up, cd counts down, r resets, ld loads pv",
    inputs: &[
        input("cu", PortType::Bool, "count up on each rising edge"),
        input("cd", PortType::Bool, "count down on each rising edge"),
        input("r", PortType::Bool, "reset: cv := 0 (highest priority)"),
        input(
            "ld",
            PortType::Bool,
            "load: cv := pv (priority over counting)",
        ),
        input(
            "pv",
            PortType::Int,
            "preset value: qu = cv >= pv; loaded by `ld`",
        ),
    ],
    outputs: &[
        output("qu", PortType::Bool, "cv >= pv"),
        output("qd", PortType::Bool, "cv <= 0"),
        output("cv", PortType::Int, "current count"),
    ],
    params: &[],
    build: build_ctud,
};

fn build_ctu(_: &BuildCtx<'_>) -> BuildResult {
    Ok(Box::new(Ctu::default()))
}

fn build_ctd(_: &BuildCtx<'_>) -> BuildResult {
    Ok(Box::new(Ctd::default()))
}

fn build_ctud(_: &BuildCtx<'_>) -> BuildResult {
    Ok(Box::new(Ctud::default()))
}

/// Count and edge memories; the same shape for all three counters (CTU never uses `cd`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Count {
    cv: i64,
    /// `cu` at the previous scan.
    cu: bool,
    /// `cd` at the previous scan.
    cd: bool,
}

impl Count {
    /// Rising edges of `cu` and `cd` this scan; updates the memories.
    fn edges(&mut self, cu: bool, cd: bool) -> (bool, bool) {
        let up = cu && !self.cu;
        let down = cd && !self.cd;
        self.cu = cu;
        self.cd = cd;
        (up, down)
    }
}

#[derive(Default)]
struct Ctu(Count);

#[derive(Default)]
struct Ctd(Count);

#[derive(Default)]
struct Ctud(Count);

impl Block for Ctu {
    fn execute(&mut self, io: &mut Io<'_>) {
        let (up, _) = self.0.edges(io.bool(0), false);
        let pv = io.int(2);
        if io.bool(1) {
            self.0.cv = 0;
        } else if up {
            self.0.cv = self.0.cv.saturating_add(1);
        }
        io.set_bool(0, self.0.cv >= pv);
        io.set_int(1, self.0.cv);
    }

    fn adopt(&mut self, running: &mut dyn Block) {
        if let Some(old) = previous::<Ctu>(running) {
            self.0 = old.0;
        }
    }
}

impl Block for Ctd {
    fn execute(&mut self, io: &mut Io<'_>) {
        let (_, down) = self.0.edges(false, io.bool(0));
        if io.bool(1) {
            self.0.cv = io.int(2);
        } else if down {
            self.0.cv = self.0.cv.saturating_sub(1);
        }
        io.set_bool(0, self.0.cv <= 0);
        io.set_int(1, self.0.cv);
    }

    fn adopt(&mut self, running: &mut dyn Block) {
        if let Some(old) = previous::<Ctd>(running) {
            self.0 = old.0;
        }
    }
}

impl Block for Ctud {
    fn execute(&mut self, io: &mut Io<'_>) {
        let (up, down) = self.0.edges(io.bool(0), io.bool(1));
        let pv = io.int(4);
        if io.bool(2) {
            self.0.cv = 0;
        } else if io.bool(3) {
            self.0.cv = pv;
        } else if up && !down {
            self.0.cv = self.0.cv.saturating_add(1);
        } else if down && !up {
            self.0.cv = self.0.cv.saturating_sub(1);
        }
        io.set_bool(0, self.0.cv >= pv);
        io.set_bool(1, self.0.cv <= 0);
        io.set_int(2, self.0.cv);
    }

    fn adopt(&mut self, running: &mut dyn Block) {
        if let Some(old) = previous::<Ctud>(running) {
            self.0 = old.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Harness, Setup, b, i};
    use petra_core::Value;
    use petra_core::ValueType::{Bool, Int};

    fn ctu() -> Harness {
        Setup::new(&CTU)
            .input("cu", Bool)
            .input("r", Bool)
            .input("pv", Int)
            .output(Bool)
            .output(Int)
            .harness()
    }

    fn ctd() -> Harness {
        Setup::new(&CTD)
            .input("cd", Bool)
            .input("ld", Bool)
            .input("pv", Int)
            .output(Bool)
            .output(Int)
            .harness()
    }

    fn ctud() -> Harness {
        Setup::new(&CTUD)
            .input("cu", Bool)
            .input("cd", Bool)
            .input("r", Bool)
            .input("ld", Bool)
            .input("pv", Int)
            .output(Bool)
            .output(Bool)
            .output(Int)
            .harness()
    }

    /// `'‾'` is true, `'_'` false; one character per scan.
    fn wave(s: &str) -> Vec<bool> {
        s.chars().map(|c| c == '‾').collect()
    }

    #[test]
    fn ctu_timing_diagram() {
        // pv = 3: q goes true on the third rising edge, a held cu counts once, r resets with
        // priority and swallows an edge that arrives with it.
        let cu = wave("_‾‾_‾_‾‾‾_‾_‾__‾__");
        let r = wave("___________‾‾_____");
        let cv = [0, 1, 1, 1, 2, 2, 3, 3, 3, 3, 4, 0, 0, 0, 0, 1, 1, 1];
        let q = wave("______‾‾‾‾‾_______");
        let mut h = ctu();
        for k in 0..cu.len() {
            h.scan(k as u64 * 10, &[b(cu[k]), b(r[k]), i(3)]);
            assert_eq!(h.int(1), cv[k], "cv at scan {k}");
            assert_eq!(h.bool(0), q[k], "q at scan {k}");
        }
    }

    /// The diagrams of docs/blocks.md, pv = 2.
    #[test]
    fn reference_diagrams() {
        let digits = |s: &str| -> Vec<i64> { s.bytes().map(|c| i64::from(c - b'0')).collect() };
        let cu = wave("_‾_‾‾_‾__‾__‾__");
        let r = wave("_______‾_______");
        let cv = digits("011222300111222");
        let q = wave("___‾‾‾‾_____‾‾‾");
        let mut h = ctu();
        for k in 0..cu.len() {
            h.scan(k as u64 * 10, &[b(cu[k]), b(r[k]), i(2)]);
            assert_eq!((h.int(1), h.bool(0)), (cv[k], q[k]), "CTU scan {k}");
        }
        let cu = wave("‾_‾___‾___");
        let cd = wave("____‾_‾_‾_");
        let ld = wave("_______‾__");
        let cv = digits("1122111211");
        let qu = wave("__‾‾___‾__");
        let mut h = ctud();
        for k in 0..cu.len() {
            h.scan(
                k as u64 * 10,
                &[b(cu[k]), b(cd[k]), b(false), b(ld[k]), i(2)],
            );
            assert_eq!(
                (h.int(2), h.bool(0), h.bool(1)),
                (cv[k], qu[k], false),
                "CTUD scan {k}"
            );
        }
    }

    #[test]
    fn ctu_counts_a_cu_already_true_on_the_first_scan() {
        let mut h = ctu();
        assert_eq!(h.scan(0, &[b(true), b(false), i(1)]).int(1), 1);
        assert!(h.bool(0));
        assert_eq!(h.scan(10, &[b(true), b(false), i(1)]).int(1), 1);
    }

    #[test]
    fn ctu_pv_is_read_every_scan() {
        let mut h = ctu();
        h.scan(0, &[b(true), b(false), i(5)]);
        assert!(!h.bool(0));
        // pv lowered to the count: q at once, without an edge.
        assert!(h.scan(10, &[b(true), b(false), i(1)]).bool(0));
        // pv <= 0: q even at cv = 0.
        assert!(h.scan(20, &[b(false), b(true), i(0)]).bool(0));
        assert!(h.scan(30, &[b(false), b(false), i(i64::MIN)]).bool(0));
    }

    #[test]
    fn ctu_saturates_at_the_int_maximum() {
        let mut h = ctu();
        let mut running = Ctu(Count {
            cv: i64::MAX - 1,
            ..Count::default()
        });
        h.adopt_block(&mut running);
        h.scan(0, &[b(true), b(false), i(i64::MAX)]);
        assert_eq!(h.int(1), i64::MAX);
        assert!(h.bool(0));
        h.scan(10, &[b(false), b(false), i(i64::MAX)]);
        h.scan(20, &[b(true), b(false), i(i64::MAX)]);
        assert_eq!(h.int(1), i64::MAX);
    }

    #[test]
    fn ctd_timing_diagram() {
        // ld loads pv = 2 (priority over cd), two edges reach 0 (q), further edges go negative.
        let cd = wave("__‾_‾‾_‾__‾‾__");
        let ld = wave("_‾‾________‾__");
        let cv = [0, 2, 2, 2, 1, 1, 1, 0, 0, 0, -1, 2, 2, 2];
        let q = wave("‾______‾‾‾‾___");
        let mut h = ctd();
        for k in 0..cd.len() {
            h.scan(k as u64 * 10, &[b(cd[k]), b(ld[k]), i(2)]);
            assert_eq!(h.int(1), cv[k], "cv at scan {k}");
            assert_eq!(h.bool(0), q[k], "q at scan {k}");
        }
    }

    #[test]
    fn ctd_saturates_at_the_int_minimum() {
        let mut h = ctd();
        h.scan(0, &[b(false), b(true), i(i64::MIN)]);
        assert_eq!(h.int(1), i64::MIN);
        h.scan(10, &[b(true), b(false), i(i64::MIN)]);
        assert_eq!(h.int(1), i64::MIN);
        assert!(h.bool(0));
    }

    #[test]
    fn ctud_timing_diagram() {
        // pv = 2. Simultaneous edges of cu and cd cancel; r beats ld beats counting.
        let cu = wave("‾_‾_‾‾__‾___‾___");
        let cd = wave("______‾_‾_‾‾__‾_");
        let r = wave("___________‾____");
        let ld = wave("_____‾_____‾_‾__");
        let cv = [1, 1, 2, 2, 3, 2, 1, 1, 1, 1, 0, 0, 1, 2, 1, 1];
        let qu = wave("__‾‾‾‾_______‾__");
        let qd = wave("__________‾‾____");
        let mut h = ctud();
        for k in 0..cu.len() {
            h.scan(
                k as u64 * 10,
                &[b(cu[k]), b(cd[k]), b(r[k]), b(ld[k]), i(2)],
            );
            assert_eq!(h.int(2), cv[k], "cv at scan {k}");
            assert_eq!(h.bool(0), qu[k], "qu at scan {k}");
            assert_eq!(h.bool(1), qd[k], "qd at scan {k}");
        }
    }

    #[test]
    fn ctud_reset_has_priority_over_load() {
        let mut h = ctud();
        h.scan(0, &[b(true), b(false), b(true), b(true), i(7)]);
        assert_eq!(h.int(2), 0);
        h.scan(10, &[b(false), b(false), b(false), b(true), i(7)]);
        assert_eq!(h.int(2), 7);
        assert!(h.bool(0) && !h.bool(1));
    }

    #[test]
    fn ctud_saturates_both_ways() {
        let mut h = ctud();
        h.scan(0, &[b(false), b(false), b(false), b(true), i(i64::MAX)]);
        h.scan(10, &[b(true), b(false), b(false), b(false), i(i64::MAX)]);
        assert_eq!(h.int(2), i64::MAX);
        h.scan(20, &[b(false), b(false), b(false), b(true), i(i64::MIN)]);
        h.scan(30, &[b(false), b(true), b(false), b(false), i(i64::MIN)]);
        assert_eq!(h.int(2), i64::MIN);
        assert!(h.bool(0) && h.bool(1));
    }

    #[test]
    fn pv_may_be_a_constant() {
        let mut h = Setup::new(&CTU)
            .input("cu", Bool)
            .input("r", Bool)
            .constant("pv", Value::Int(2))
            .output(Bool)
            .unwired()
            .harness();
        h.scan(0, &[b(true), b(false)]);
        h.scan(10, &[b(false), b(false)]);
        assert!(!h.bool(0));
        assert!(h.scan(20, &[b(true), b(false)]).bool(0));
    }

    #[test]
    fn a_reload_anywhere_in_a_sequence_changes_nothing() {
        let scans: Vec<(u64, Vec<Value>)> = [
            (true, false, false, false),
            (false, false, false, false),
            (true, true, false, false),
            (true, false, false, false),
            (false, true, false, true),
            (true, true, false, false),
            (false, false, true, false),
            (true, false, false, false),
        ]
        .iter()
        .enumerate()
        .map(|(k, &(cu, cd, r, ld))| (k as u64 * 10, vec![b(cu), b(cd), b(r), b(ld), i(2)]))
        .collect();
        for reload in 1..scans.len() {
            crate::testing::reload_keeps_state(ctud, &scans, reload, 3);
        }
    }

    #[test]
    fn adopt_keeps_the_count_and_the_edge_memory() {
        let mut old = ctu();
        for k in 0..3 {
            old.scan(k * 20, &[b(true), b(false), i(10)]);
            old.scan(k * 20 + 10, &[b(false), b(false), i(10)]);
        }
        old.scan(60, &[b(true), b(false), i(10)]);
        assert_eq!(old.int(1), 4);
        let mut new = ctu();
        new.adopt_from(&mut old);
        // cu is still held: no new edge after the reload, and the count is kept.
        assert_eq!(new.scan(70, &[b(true), b(false), i(4)]).int(1), 4);
        assert!(new.bool(0));
        // A fresh instance, by contrast, starts at zero and sees cu as a rising edge.
        assert_eq!(ctu().scan(70, &[b(true), b(false), i(4)]).int(1), 1);

        let mut old = ctd();
        old.scan(0, &[b(false), b(true), i(5)]);
        old.scan(10, &[b(true), b(false), i(5)]);
        let mut new = ctd();
        new.adopt_from(&mut old);
        assert_eq!(new.scan(20, &[b(true), b(false), i(5)]).int(1), 4);

        let mut old = ctud();
        old.scan(0, &[b(false), b(false), b(false), b(true), i(5)]);
        old.scan(10, &[b(true), b(true), b(false), b(false), i(5)]);
        let mut new = ctud();
        new.adopt_from(&mut old);
        assert_eq!(
            new.scan(20, &[b(true), b(true), b(false), b(false), i(5)])
                .int(2),
            5
        );
        new.scan(30, &[b(false), b(true), b(false), b(false), i(5)]);
        assert_eq!(
            new.scan(40, &[b(true), b(true), b(false), b(false), i(5)])
                .int(2),
            6
        );
    }
}
