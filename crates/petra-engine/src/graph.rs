//! Execution order of the blocks of one task.
//!
//! Block B depends on block A when B reads a signal that A writes. Blocks run in a topological
//! order of that graph, with ties broken by declaration order, so the order is a pure function
//! of the configuration — never of hash-map iteration order. A cycle is reported with its
//! members so the compiler can point at them.

use petra_core::SignalId;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

/// Reads and writes of one block.
pub struct Node<'a> {
    pub reads: &'a [SignalId],
    pub writes: &'a [SignalId],
}

/// Indices of `nodes` in execution order, or the indices of the blocks on one cycle (in cycle
/// order, starting from the lowest index).
pub fn execution_order(nodes: &[Node<'_>]) -> Result<Vec<usize>, Vec<usize>> {
    let mut writer: HashMap<SignalId, usize> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        for w in n.writes {
            writer.insert(*w, i);
        }
    }
    let mut succ: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    let mut indeg = vec![0usize; nodes.len()];
    for (i, n) in nodes.iter().enumerate() {
        let mut preds: Vec<usize> = n
            .reads
            .iter()
            .filter_map(|r| writer.get(r).copied())
            .collect();
        preds.sort_unstable();
        preds.dedup();
        for p in preds {
            succ[p].push(i);
            indeg[i] += 1;
        }
    }
    let mut ready: BinaryHeap<Reverse<usize>> = (0..nodes.len())
        .filter(|i| indeg[*i] == 0)
        .map(Reverse)
        .collect();
    let mut order = Vec::with_capacity(nodes.len());
    while let Some(Reverse(i)) = ready.pop() {
        order.push(i);
        for &s in &succ[i] {
            indeg[s] -= 1;
            if indeg[s] == 0 {
                ready.push(Reverse(s));
            }
        }
    }
    if order.len() == nodes.len() {
        return Ok(order);
    }
    Err(find_cycle(&succ, &indeg))
}

/// Walks backwards from a node left with unmet dependencies until a node repeats.
fn find_cycle(succ: &[Vec<usize>], indeg: &[usize]) -> Vec<usize> {
    let n = succ.len();
    let mut preds: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (p, ss) in succ.iter().enumerate() {
        for &s in ss {
            if indeg[p] > 0 && indeg[s] > 0 {
                preds[s].push(p);
            }
        }
    }
    let start = (0..n).find(|i| indeg[*i] > 0).unwrap_or(0);
    let mut seen = vec![usize::MAX; n];
    let mut path = Vec::new();
    let mut cur = start;
    while seen[cur] == usize::MAX {
        seen[cur] = path.len();
        path.push(cur);
        cur = match preds[cur].iter().min() {
            Some(&p) => p,
            None => return path,
        };
    }
    let mut cycle: Vec<usize> = path[seen[cur]..].to_vec();
    cycle.reverse(); // predecessor walk → execution direction
    let min_pos = cycle
        .iter()
        .enumerate()
        .min_by_key(|(_, v)| **v)
        .map(|(i, _)| i)
        .unwrap_or(0);
    cycle.rotate_left(min_pos);
    cycle
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[usize]) -> Vec<SignalId> {
        v.iter().map(|i| SignalId::from_index(*i)).collect()
    }

    #[test]
    fn orders_by_dependency_then_declaration() {
        // 0 reads s1 (written by 2); 1 independent; 2 reads s0.
        let (r0, w0) = (ids(&[1]), ids(&[2]));
        let (r1, w1) = (ids(&[]), ids(&[3]));
        let (r2, w2) = (ids(&[0]), ids(&[1]));
        let nodes = [
            Node {
                reads: &r0,
                writes: &w0,
            },
            Node {
                reads: &r1,
                writes: &w1,
            },
            Node {
                reads: &r2,
                writes: &w2,
            },
        ];
        assert_eq!(execution_order(&nodes), Ok(vec![1, 2, 0]));
    }

    #[test]
    fn reports_the_cycle_members() {
        // 0 → 1 → 2 → 0, and 3 depends on the cycle.
        let (r0, w0) = (ids(&[12]), ids(&[10]));
        let (r1, w1) = (ids(&[10]), ids(&[11]));
        let (r2, w2) = (ids(&[11]), ids(&[12]));
        let (r3, w3) = (ids(&[12]), ids(&[13]));
        let nodes = [
            Node {
                reads: &r0,
                writes: &w0,
            },
            Node {
                reads: &r1,
                writes: &w1,
            },
            Node {
                reads: &r2,
                writes: &w2,
            },
            Node {
                reads: &r3,
                writes: &w3,
            },
        ];
        assert_eq!(execution_order(&nodes), Err(vec![0, 1, 2]));
    }

    #[test]
    fn a_block_reading_its_own_output_is_a_cycle() {
        let (r, w) = (ids(&[5]), ids(&[5]));
        assert_eq!(
            execution_order(&[Node {
                reads: &r,
                writes: &w
            }]),
            Err(vec![0])
        );
    }
}
