//! Bit logic: AND, OR, XOR (variadic) and NOT.

use crate::{input, output, variadic};
use petra_engine::{Block, BlockType, BuildCtx, BuildResult, Io, PortSpec, PortType};

static OPERANDS: [PortSpec; 1] = [variadic("in", PortType::Bool, "operands `in1`..`inN`")];
static RESULT: [PortSpec; 1] = [output("out", PortType::Bool, "result")];

pub static AND: BlockType = BlockType {
    name: "AND",
    aliases: &[],
    summary: "true when every input is true",
    inputs: &OPERANDS,
    outputs: &RESULT,
    params: &[],
    build: build_and,
};

pub static OR: BlockType = BlockType {
    name: "OR",
    aliases: &[],
    summary: "true when at least one input is true",
    inputs: &OPERANDS,
    outputs: &RESULT,
    params: &[],
    build: build_or,
};

pub static XOR: BlockType = BlockType {
    name: "XOR",
    aliases: &[],
    summary: "true when an odd number of inputs is true (IEC parity for N inputs)",
    inputs: &OPERANDS,
    outputs: &RESULT,
    params: &[],
    build: build_xor,
};

pub static NOT: BlockType = BlockType {
    name: "NOT",
    aliases: &[],
    summary: "negation",
    inputs: &[input("in", PortType::Bool, "operand")],
    outputs: &RESULT,
    params: &[],
    build: build_not,
};

fn build_and(_: &BuildCtx<'_>) -> BuildResult {
    Ok(Box::new(And))
}

fn build_or(_: &BuildCtx<'_>) -> BuildResult {
    Ok(Box::new(Or))
}

fn build_xor(_: &BuildCtx<'_>) -> BuildResult {
    Ok(Box::new(Xor))
}

fn build_not(_: &BuildCtx<'_>) -> BuildResult {
    Ok(Box::new(Not))
}

struct And;
struct Or;
struct Xor;
struct Not;

impl Block for And {
    fn execute(&mut self, io: &mut Io<'_>) {
        let v = (0..io.input_count()).all(|i| io.bool(i));
        io.set_bool(0, v);
    }
}

impl Block for Or {
    fn execute(&mut self, io: &mut Io<'_>) {
        let v = (0..io.input_count()).any(|i| io.bool(i));
        io.set_bool(0, v);
    }
}

impl Block for Xor {
    fn execute(&mut self, io: &mut Io<'_>) {
        let ones = (0..io.input_count()).filter(|&i| io.bool(i)).count();
        io.set_bool(0, ones % 2 == 1);
    }
}

impl Block for Not {
    fn execute(&mut self, io: &mut Io<'_>) {
        let v = !io.bool(0);
        io.set_bool(0, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Setup, b};
    use petra_core::{Value, ValueType::Bool};

    /// Runs every combination of `n` inputs through `ty` and compares with `expect`.
    fn truth_table(ty: &'static BlockType, n: usize, expect: fn(&[bool]) -> bool) {
        let mut h = Setup::new(ty).inputs("in", n, Bool).output(Bool).harness();
        for (t, bits) in (0u32..1 << n).enumerate() {
            let ins: Vec<bool> = (0..n).map(|k| bits & (1 << k) != 0).collect();
            let vals: Vec<Value> = ins.iter().map(|&v| b(v)).collect();
            h.scan(t as u64 * 10, &vals);
            assert_eq!(h.bool(0), expect(&ins), "{} {ins:?}", ty.name);
        }
    }

    #[test]
    fn and_truth_tables() {
        for n in [2, 3, 5] {
            truth_table(&AND, n, |v| v.iter().all(|&x| x));
        }
    }

    #[test]
    fn or_truth_tables() {
        for n in [2, 3, 5] {
            truth_table(&OR, n, |v| v.iter().any(|&x| x));
        }
    }

    #[test]
    fn xor_is_odd_parity() {
        truth_table(&XOR, 2, |v| v[0] != v[1]);
        // Three inputs all true: odd parity says true (a chained "exactly one" would say false).
        truth_table(&XOR, 3, |v| v.iter().filter(|&&x| x).count() % 2 == 1);
        let mut h = Setup::new(&XOR)
            .inputs("in", 3, Bool)
            .output(Bool)
            .harness();
        assert!(h.scan(0, &[b(true), b(true), b(true)]).bool(0));
        truth_table(&XOR, 16, |v| v.iter().filter(|&&x| x).count() % 2 == 1);
    }

    #[test]
    fn not_negates() {
        let mut h = Setup::new(&NOT).input("in", Bool).output(Bool).harness();
        assert!(h.scan(0, &[b(false)]).bool(0));
        assert!(!h.scan(10, &[b(true)]).bool(0));
    }

    #[test]
    fn constant_operands_and_unwired_output() {
        let mut h = Setup::new(&AND)
            .input("in1", Bool)
            .constant("in2", Value::Bool(true))
            .output(Bool)
            .harness();
        assert!(h.scan(0, &[b(true)]).bool(0));
        assert!(!h.scan(10, &[b(false)]).bool(0));
        // Nothing wired to `out`: executes without writing anywhere.
        Setup::new(&OR)
            .inputs("in", 2, Bool)
            .unwired()
            .harness()
            .scan(0, &[b(true), b(false)]);
    }
}
