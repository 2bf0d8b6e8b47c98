//! The read planner: which read requests cover a set of points. Pure; the driver does the IO.
//!
//! Every request costs a round trip (and on RTU a bus turnaround), so the planner merges points
//! into as few requests as the protocol allows: one request reads at most
//! [`Area::max_read`] registers or bits, and only from one unit and one area.
//!
//! # Algorithm
//!
//! Points are grouped by (unit, area) and sorted by address; ties put the larger point first,
//! so that a register and the bits inside it meet the register first, then the less strict
//! merge level, then the input index. Every field takes part in the key, so the plan depends
//! only on the set of points, not on their order in the input. One greedy pass then either
//! adds each point to the open request or closes it and opens a new one. For points that are
//! already sorted by address this fills each request as far as the size limit and the gap
//! rule allow.
//!
//! A point joins the open request when
//! - neither the point nor any point of the request is [`Merge::Alone`];
//! - the gap between the request's end and the point's start is at most the allowed gap:
//!   `max_gap` (×16 in bit areas, where a register's worth of bits costs the same) if the
//!   point and every point already in the request are [`Merge::Gap`], otherwise 0 — adjacent
//!   or overlapping points always qualify;
//! - the merged span stays within [`Area::max_read`].
//!
//! # Why the merge levels
//!
//! Bridging a gap reads addresses that no point asked for. Many devices do not implement every
//! address and answer such a request with exception 2 (illegal data address), which would fail
//! every point in it. The driver then escalates all points of that request: first to
//! [`Merge::Contiguous`], so the next plan reads only addresses that points occupy, and if that
//! fails again to [`Merge::Alone`], so one bad point no longer takes its neighbours down. The
//! strictest point of a request decides for the whole request, because the planner cannot
//! tell which of the bridged addresses was the bad one.
//!
//! # Points the protocol cannot read
//!
//! The configuration compiler rejects points longer than [`Area::max_read`] or running past
//! address 65535, but `plan` is total: such a point's request is cut at `max_read` and at the
//! end of the address space (a count of 0 is read as 1), so no request is ever invalid. The
//! request then covers only a prefix of the point; the driver must check the response length.

use std::cmp::Reverse;

use crate::point::Area;

/// How freely a point may be merged with others. The driver escalates a point's level when a
/// request containing it is answered with exception 2: first it stops bridging gaps (the gap
/// addresses may not exist on the device), then the point is read alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Merge {
    /// May share a request with others and bridge up to `max_gap` unused addresses.
    #[default]
    Gap,
    /// May share a request only with adjacent or overlapping points.
    Contiguous,
    /// Always read in a request of its own.
    Alone,
}

impl Merge {
    /// The next stricter level (Alone stays Alone).
    pub fn escalate(self) -> Merge {
        match self {
            Merge::Gap => Merge::Contiguous,
            Merge::Contiguous | Merge::Alone => Merge::Alone,
        }
    }
}

/// One point as the planner sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanPoint {
    pub unit: u8,
    pub area: Area,
    pub address: u16,
    /// Bits (bit areas) or registers (register areas) the point occupies; ≥ 1.
    pub count: u16,
    pub merge: Merge,
}

impl PlanPoint {
    /// The addresses `[start, end)` the point needs read, cut to what one request may read
    /// (see the module doc). u32 because `end` may be 65536.
    fn span(&self) -> (u32, u32) {
        let start = u32::from(self.address);
        let len = u32::from(self.count)
            .clamp(1, u32::from(self.area.max_read()))
            .min(65536 - start);
        (start, start + len)
    }
}

/// One read request and the points it serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadRequest {
    pub unit: u8,
    pub area: Area,
    pub start: u16,
    pub count: u16,
    /// Indices into the planner's input slice, ascending by address.
    pub points: Vec<usize>,
}

/// The request being filled; `end` is exclusive and u32 so that 65536 is representable.
struct Open {
    unit: u8,
    area: Area,
    start: u32,
    end: u32,
    /// The strictest merge level among its points.
    level: Merge,
    points: Vec<usize>,
}

impl Open {
    fn new(index: usize, p: &PlanPoint) -> Open {
        let (start, end) = p.span();
        Open {
            unit: p.unit,
            area: p.area,
            start,
            end,
            level: p.merge,
            points: vec![index],
        }
    }

    fn accepts(&self, p: &PlanPoint, max_gap: u32) -> bool {
        if p.unit != self.unit || p.area != self.area {
            return false;
        }
        if self.level == Merge::Alone || p.merge == Merge::Alone {
            return false;
        }
        let allowed = if self.level == Merge::Gap && p.merge == Merge::Gap {
            max_gap
        } else {
            0
        };
        let (start, end) = p.span();
        start <= self.end + allowed
            && self.end.max(end) - self.start <= u32::from(self.area.max_read())
    }

    fn add(&mut self, index: usize, p: &PlanPoint) {
        self.end = self.end.max(p.span().1);
        self.level = self.level.max(p.merge);
        self.points.push(index);
    }

    fn finish(self) -> ReadRequest {
        // Both fit: start ≤ 65535 and the span is at most max_read.
        ReadRequest {
            unit: self.unit,
            area: self.area,
            start: self.start as u16,
            count: (self.end - self.start) as u16,
            points: self.points,
        }
    }
}

/// Plans the reads for `points`. `max_gap` is the most unused registers (register areas) a
/// request may bridge between two points; for bit areas the allowed gap is max_gap * 16 bits.
/// Result is sorted by (unit, area, start). Deterministic.
pub fn plan(points: &[PlanPoint], max_gap: u16) -> Vec<ReadRequest> {
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_by_key(|&i| {
        let p = &points[i];
        (p.unit, p.area, p.address, Reverse(p.span().1), p.merge, i)
    });

    let mut requests = Vec::new();
    let mut open: Option<Open> = None;
    for i in order {
        let p = &points[i];
        let gap = u32::from(max_gap) * if p.area.is_bits() { 16 } else { 1 };
        match &mut open {
            Some(o) if o.accepts(p, gap) => o.add(i, p),
            _ => {
                if let Some(o) = open.replace(Open::new(i, p)) {
                    requests.push(o.finish());
                }
            }
        }
    }
    requests.extend(open.map(Open::finish));
    requests
}

/// Requests a naive client reading one point per request would make; for reporting how much
/// the plan saves.
pub fn point_by_point(points: &[PlanPoint]) -> usize {
    points.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pt(unit: u8, area: Area, address: u16, count: u16, merge: Merge) -> PlanPoint {
        PlanPoint {
            unit,
            area,
            address,
            count,
            merge,
        }
    }

    /// A Gap point in holding registers of unit 1.
    fn h(address: u16, count: u16) -> PlanPoint {
        pt(1, Area::Holding, address, count, Merge::Gap)
    }

    /// (start, count, points) of each request.
    fn shape(reqs: &[ReadRequest]) -> Vec<(u16, u16, Vec<usize>)> {
        reqs.iter()
            .map(|r| (r.start, r.count, r.points.clone()))
            .collect()
    }

    #[test]
    fn escalation_goes_gap_contiguous_alone() {
        assert_eq!(Merge::default(), Merge::Gap);
        assert_eq!(Merge::Gap.escalate(), Merge::Contiguous);
        assert_eq!(Merge::Contiguous.escalate(), Merge::Alone);
        assert_eq!(Merge::Alone.escalate(), Merge::Alone);
    }

    #[test]
    fn empty_input_plans_nothing() {
        assert!(plan(&[], 10).is_empty());
        assert_eq!(point_by_point(&[h(0, 1), h(1, 1)]), 2);
    }

    #[test]
    fn adjacent_points_merge() {
        let r = plan(&[h(0, 1), h(1, 2), h(3, 4)], 0);
        assert_eq!(shape(&r), vec![(0, 7, vec![0, 1, 2])]);
    }

    #[test]
    fn gap_up_to_max_gap_merges_and_beyond_splits() {
        let pts = [h(0, 1), h(6, 1), h(13, 1)];
        // 0→6 leaves 5 unused registers, 6→13 leaves 6.
        assert_eq!(
            shape(&plan(&pts, 5)),
            vec![(0, 7, vec![0, 1]), (13, 1, vec![2])]
        );
        assert_eq!(shape(&plan(&pts, 6)), vec![(0, 14, vec![0, 1, 2])]);
        assert_eq!(plan(&pts, 4).len(), 3);
        assert_eq!(plan(&pts, 0).len(), 3);
        assert_eq!(plan(&[h(0, 1), h(2, 1)], 0).len(), 2);
    }

    #[test]
    fn register_limit_is_125() {
        assert_eq!(
            shape(&plan(&[h(0, 1), h(124, 1)], 200)),
            vec![(0, 125, vec![0, 1])]
        );
        assert_eq!(plan(&[h(0, 1), h(125, 1)], 200).len(), 2);
        assert_eq!(plan(&[h(0, 100), h(100, 25)], 0).len(), 1);
        assert_eq!(
            shape(&plan(&[h(0, 100), h(100, 26)], 0)),
            vec![(0, 100, vec![0]), (100, 26, vec![1])]
        );
    }

    #[test]
    fn bit_limit_is_2000_and_gap_is_16_per_register() {
        let c = |a, n| pt(1, Area::Coil, a, n, Merge::Gap);
        assert_eq!(
            shape(&plan(&[c(0, 1), c(1999, 1)], 200)),
            vec![(0, 2000, vec![0, 1])]
        );
        assert_eq!(plan(&[c(0, 1), c(2000, 1)], 200).len(), 2);
        // max_gap 2 allows 32 unused bits.
        assert_eq!(plan(&[c(0, 1), c(33, 1)], 2).len(), 1);
        assert_eq!(plan(&[c(0, 1), c(34, 1)], 2).len(), 2);
    }

    #[test]
    fn units_and_areas_never_share() {
        let pts = [
            pt(2, Area::Holding, 0, 1, Merge::Gap),
            pt(1, Area::Holding, 1, 1, Merge::Gap),
            pt(1, Area::Input, 0, 1, Merge::Gap),
            pt(1, Area::Coil, 0, 1, Merge::Gap),
            pt(1, Area::Holding, 0, 1, Merge::Gap),
        ];
        let r = plan(&pts, 100);
        let keys: Vec<_> = r
            .iter()
            .map(|r| (r.unit, r.area, r.points.clone()))
            .collect();
        // Sorted by (unit, area, start).
        assert_eq!(
            keys,
            vec![
                (1, Area::Coil, vec![3]),
                (1, Area::Input, vec![2]),
                (1, Area::Holding, vec![4, 1]),
                (2, Area::Holding, vec![0]),
            ]
        );
    }

    #[test]
    fn overlapping_points_share_even_without_gap() {
        // A u32, a u16 inside it and a bool of the same register.
        let bit = pt(1, Area::Holding, 11, 1, Merge::Contiguous);
        let r = plan(&[h(11, 1), bit, h(10, 2), h(10, 2)], 0);
        assert_eq!(shape(&r), vec![(10, 2, vec![2, 3, 0, 1])]);
    }

    #[test]
    fn contiguous_points_merge_adjacent_but_bridge_nothing() {
        let c = |a, n| pt(1, Area::Holding, a, n, Merge::Contiguous);
        let r = plan(&[c(0, 2), c(2, 1), c(4, 1), h(5, 1), h(7, 1)], 10);
        assert_eq!(
            shape(&r),
            vec![(0, 3, vec![0, 1]), (4, 2, vec![2, 3]), (7, 1, vec![4])]
        );
    }

    #[test]
    fn alone_points_are_alone_even_when_adjacent_or_overlapping() {
        let a = |addr, n| pt(1, Area::Holding, addr, n, Merge::Alone);
        // An Alone point ends the run: nothing bridges across it either.
        let r = plan(&[h(0, 1), a(1, 1), h(2, 1), h(3, 1)], 10);
        assert_eq!(
            shape(&r),
            vec![(0, 1, vec![0]), (1, 1, vec![1]), (2, 2, vec![2, 3])]
        );
        let r = plan(&[a(10, 1), h(10, 2), a(10, 1)], 10);
        assert_eq!(
            shape(&r),
            vec![(10, 2, vec![1]), (10, 1, vec![0]), (10, 1, vec![2])]
        );
    }

    #[test]
    fn the_strictest_point_decides_for_the_request() {
        let c = |a| pt(1, Area::Holding, a, 1, Merge::Contiguous);
        // Gap, Gap bridged; a Contiguous point joins adjacent, after which nothing is bridged.
        let r = plan(&[h(0, 1), h(3, 1), c(4), h(5, 1), h(7, 1)], 10);
        assert_eq!(shape(&r), vec![(0, 6, vec![0, 1, 2, 3]), (7, 1, vec![4])]);
        // A Gap point does not bridge into a request holding a Contiguous point, nor back.
        assert_eq!(plan(&[c(0), h(2, 1)], 10).len(), 2);
        assert_eq!(plan(&[h(0, 1), c(2)], 10).len(), 2);
    }

    #[test]
    fn input_order_does_not_matter() {
        let pts = [
            h(7, 1),
            h(0, 2),
            h(2, 1),
            h(40, 4),
            pt(1, Area::Coil, 5, 1, Merge::Alone),
        ];
        let reversed: Vec<_> = pts.iter().rev().copied().collect();
        let map = |reqs: Vec<ReadRequest>, pts: &[PlanPoint]| -> Vec<_> {
            reqs.into_iter()
                .map(|r| {
                    (
                        r.start,
                        r.count,
                        r.points.iter().map(|&i| pts[i]).collect::<Vec<_>>(),
                    )
                })
                .collect()
        };
        assert_eq!(map(plan(&pts, 5), &pts), map(plan(&reversed, 5), &reversed));
    }

    #[test]
    fn last_addresses_of_the_space_work() {
        // An f64 at 65532 ends exactly at 65536.
        assert_eq!(
            shape(&plan(&[h(65532, 4), h(65530, 1)], 1)),
            vec![(65530, 6, vec![1, 0])]
        );
    }

    #[test]
    fn impossible_points_are_cut_not_panicked_on() {
        assert_eq!(shape(&plan(&[h(65534, 4)], 0)), vec![(65534, 2, vec![0])]);
        assert_eq!(shape(&plan(&[h(10, 300)], 0)), vec![(10, 125, vec![0])]);
        assert_eq!(shape(&plan(&[h(10, 0)], 0)), vec![(10, 1, vec![0])]);
        let c = pt(0, Area::Discrete, 65535, u16::MAX, Merge::Gap);
        assert_eq!(
            shape(&plan(&[c, c], u16::MAX)),
            vec![(65535, 1, vec![0, 1])]
        );
    }

    /// Valid points (count ≤ max_read, within the address space), crowded so that they collide.
    fn point() -> impl Strategy<Value = PlanPoint> {
        let area = prop::sample::select(Area::ALL.to_vec());
        let address = prop_oneof![4 => 0u16..400, 1 => 65300u16..=65535];
        let count = prop_oneof![8 => 1u16..=4, 1 => 1u16..=2000];
        let merge = prop::sample::select(vec![
            Merge::Gap,
            Merge::Gap,
            Merge::Contiguous,
            Merge::Alone,
        ]);
        (0u8..2, area, address, count, merge).prop_map(|(unit, area, address, count, merge)| {
            let room = 65536 - u32::from(address);
            let count = u32::from(count.min(area.max_read())).min(room) as u16;
            PlanPoint {
                unit,
                area,
                address,
                count,
                merge,
            }
        })
    }

    fn max_gap() -> impl Strategy<Value = u16> {
        prop_oneof![0u16..20, Just(u16::MAX)]
    }

    proptest! {
        #[test]
        fn plans_are_valid(pts in prop::collection::vec(point(), 0..60), gap in max_gap()) {
            let reqs = plan(&pts, gap);
            prop_assert!(reqs.len() <= point_by_point(&pts));
            let mut seen = vec![0; pts.len()];
            for (k, r) in reqs.iter().enumerate() {
                let (start, end) = (u32::from(r.start), u32::from(r.start) + u32::from(r.count));
                prop_assert!(r.count >= 1 && r.count <= r.area.max_read() && end <= 65536);
                prop_assert!(!r.points.is_empty());
                if k > 0 {
                    let prev = &reqs[k - 1];
                    prop_assert!((prev.unit, prev.area, prev.start) <= (r.unit, r.area, r.start));
                }
                let unit_gap = u32::from(gap) * if r.area.is_bits() { 16 } else { 1 };
                let (mut reach, mut all_gap) = (start, true);
                for (n, &i) in r.points.iter().enumerate() {
                    let p = &pts[i];
                    seen[i] += 1;
                    prop_assert_eq!((p.unit, p.area), (r.unit, r.area));
                    let (ps, pe) = (u32::from(p.address), u32::from(p.address) + u32::from(p.count));
                    prop_assert!(start <= ps && pe <= end);
                    if p.merge == Merge::Alone {
                        prop_assert_eq!(r.points.len(), 1);
                    }
                    // The gap before a point may be bridged only if it and all before are Gap.
                    all_gap &= p.merge == Merge::Gap;
                    if n > 0 {
                        prop_assert!(p.address >= pts[r.points[n - 1]].address);
                        let allowed = if all_gap { unit_gap } else { 0 };
                        prop_assert!(ps <= reach + allowed, "gap too large in {:?}", r);
                    }
                    reach = reach.max(pe);
                }
                prop_assert_eq!(reach, end);
            }
            prop_assert!(seen.iter().all(|&n| n == 1));
        }

        #[test]
        fn input_order_never_matters(
            (pts, shuffled) in prop::collection::vec(point(), 0..40)
                .prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle())),
            gap in max_gap(),
        ) {
            let by_value = |pts: &[PlanPoint]| -> Vec<_> {
                plan(pts, gap).into_iter()
                    .map(|r| (r.unit, r.area, r.start, r.count,
                              r.points.iter().map(|&i| pts[i]).collect::<Vec<_>>()))
                    .collect()
            };
            prop_assert_eq!(by_value(&pts), by_value(&shuffled));
        }

        #[test]
        fn unlimited_gap_fills_every_request(
            pts in prop::collection::vec(point(), 1..60),
        ) {
            let pts: Vec<_> = pts.into_iter()
                .map(|p| PlanPoint { unit: 0, area: Area::Input, merge: Merge::Gap,
                                     count: p.count.min(125), ..p })
                .collect();
            let reqs = plan(&pts, u16::MAX);
            for w in reqs.windows(2) {
                // The next request's first point would have pushed this one past the limit.
                let next = &pts[w[1].points[0]];
                let end = u32::from(next.address) + u32::from(next.count);
                let merged = (u32::from(w[0].start) + u32::from(w[0].count)).max(end);
                prop_assert!(merged - u32::from(w[0].start) > 125);
            }
            // No cover needs fewer requests than the addresses in use split into full ones.
            let mut used = vec![false; 65536];
            for p in &pts {
                used[usize::from(p.address)..usize::from(p.address) + usize::from(p.count)].fill(true);
            }
            let union = used.iter().filter(|&&u| u).count();
            prop_assert!(reqs.len() >= union.div_ceil(125));
        }
    }
}
