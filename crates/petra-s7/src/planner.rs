//! Packs variables into the fewest read var / write var requests the negotiated PDU size allows.
//!
//! # Size arithmetic
//!
//! The negotiated PDU size `PDU` bounds the S7 PDU (S7 header + parameters + data; TPKT and
//! COTP come on top) in both directions. For `n` items of `len_i` bytes each, with a pad byte
//! after each odd `len_i` except the last item's:
//!
//! | PDU | header | parameters | data |
//! |---|---|---|---|
//! | read request | 10 | 2 + 12·n | 0 |
//! | read response | 12 | 2 | Σ (4 + len_i + pad_i) |
//! | write request | 10 | 2 + 12·n | Σ (4 + len_i + pad_i) |
//! | write response | 12 | 2 | n |
//!
//! So a read request holds at most `(PDU − 12) / 12` items (19 at PDU 240, 39 at 480) and its
//! items' data at most `PDU − 14` bytes of `4 + len + pad`; one read item carries at most
//! `PDU − 18` bytes (222 at 240, 462 at 480). A write request holds `16 + len + pad` per item
//! in `PDU − 12` bytes; one write item carries at most `PDU − 28` bytes (212 at 240). Data items
//! count bits in a u16, which caps any item at 8191 bytes.
//! A write response (`14 + n`) always fits once its request did.
//!
//! Padding is counted exactly: the packer puts an odd-length item last, so a request with odd
//! items pays one pad byte fewer than it has odd items.
//!
//! # Reads
//!
//! 1. Ranges of the same area and DB are sorted and merged when the gap between them is at
//!    most [`PlanConfig::merge_gap`] bytes and the merged block still fits one item. A gap
//!    costs its bytes in the response; a separate item costs a 4-byte header, maybe a pad, 12
//!    request bytes and one of the limited item slots — so small gaps pay.
//! 2. A range larger than one item is split into pieces of the largest multiple of 8 that fits
//!    (so no element of 1, 2, 4 or 8 bytes of an array is torn between requests), the remainder
//!    last. Only such ranges are ever split; a value that fits one item is read in one item.
//! 3. Pieces are packed into requests, both limits counted: by first-fit decreasing and by a
//!    balanced fit, whichever needs fewer requests (see `pack`).
//!
//! Each [`ReadRequest`] lists its wire items and how their bytes map back to the input ranges
//! ([`Part`]); [`ReadPlan::assemble`] does that mapping for a set of responses.
//!
//! # Writes
//!
//! Writes are never merged (that would overwrite the bytes between them). A write larger than
//! one item is split like a read, and the pieces are packed the same way. A split write
//! is not atomic: the PLC may run a cycle between its requests. Overlapping writes in one plan
//! are not ordered; send only the latest value per point.

use crate::address::MAX_BYTE;
use crate::codec::{Area, ReadItem, ReturnCode, VarSpec, WriteItem};

const READ_REQUEST_FIXED: usize = 12;
const READ_RESPONSE_FIXED: usize = 14;
const READ_ITEM_PARAM: usize = 12;
const DATA_ITEM_HEADER: usize = 4;
const WRITE_REQUEST_FIXED: usize = 12;
const WRITE_ITEM_OVERHEAD: usize = READ_ITEM_PARAM + DATA_ITEM_HEADER;
/// Data item lengths count bits in a u16.
const MAX_ITEM_DATA: usize = 8191;

/// Errors from planning, or from responses that do not fit the plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("PDU size {pdu} is too small to plan {what}; it must be at least {min} bytes")]
    PduTooSmall {
        pdu: u16,
        min: u16,
        what: &'static str,
    },
    #[error("item {index}: {problem}")]
    Item { index: usize, problem: &'static str },
    #[error("response to request {request} does not fit it: {problem}")]
    Response {
        request: usize,
        problem: &'static str,
    },
}

/// Bytes to read: `len` bytes from byte `start` (a BOOL reads the byte holding it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Range {
    pub area: Area,
    /// DB number; 0 outside [`Area::DataBlock`].
    pub db: u16,
    pub start: u32,
    pub len: u32,
}

/// Data to write from byte `start`; with `bit`, one byte 0 or 1 written as that single bit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Write {
    pub area: Area,
    pub db: u16,
    pub start: u32,
    pub bit: Option<u8>,
    pub data: Vec<u8>,
}

/// Planner settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanConfig {
    /// The PDU size negotiated by setup communication.
    pub pdu_size: u16,
    /// Largest number of unused bytes read to merge two ranges into one item.
    pub merge_gap: u32,
    /// Cap on items per request, for CPUs that accept fewer than the PDU size allows.
    pub max_items: usize,
}

impl PlanConfig {
    /// Merge gap 4 (never more response bytes than a separate item), items limited by the PDU.
    pub fn new(pdu_size: u16) -> Self {
        PlanConfig {
            pdu_size,
            merge_gap: 4,
            max_items: 255,
        }
    }

    fn read_limits(&self) -> Result<Limits, PlanError> {
        let pdu = usize::from(self.pdu_size);
        // One item of one byte: 12 + 12 request bytes, 14 + 4 + 1 response bytes.
        if pdu < READ_REQUEST_FIXED + READ_ITEM_PARAM {
            return Err(PlanError::PduTooSmall {
                pdu: self.pdu_size,
                min: 24,
                what: "reads",
            });
        }
        Ok(Limits {
            overhead: DATA_ITEM_HEADER,
            capacity: pdu - READ_RESPONSE_FIXED,
            max_items: self.item_cap((pdu - READ_REQUEST_FIXED) / READ_ITEM_PARAM),
            max_len: (pdu - READ_RESPONSE_FIXED - DATA_ITEM_HEADER).min(MAX_ITEM_DATA),
        })
    }

    fn write_limits(&self) -> Result<Limits, PlanError> {
        let pdu = usize::from(self.pdu_size);
        if pdu < WRITE_REQUEST_FIXED + WRITE_ITEM_OVERHEAD + 1 {
            return Err(PlanError::PduTooSmall {
                pdu: self.pdu_size,
                min: 29,
                what: "writes",
            });
        }
        Ok(Limits {
            overhead: WRITE_ITEM_OVERHEAD,
            capacity: pdu - WRITE_REQUEST_FIXED,
            max_items: self.item_cap(255),
            max_len: (pdu - WRITE_REQUEST_FIXED - WRITE_ITEM_OVERHEAD).min(MAX_ITEM_DATA),
        })
    }

    fn item_cap(&self, by_size: usize) -> usize {
        by_size.min(self.max_items).clamp(1, 255)
    }
}

/// What one request may hold: `max_items` items costing `overhead + len + pad` each, in
/// `capacity` bytes; no item longer than `max_len`.
#[derive(Debug, Clone, Copy)]
struct Limits {
    overhead: usize,
    capacity: usize,
    max_items: usize,
    max_len: usize,
}

impl Limits {
    /// Piece length for splitting: a multiple of 8 so array elements stay whole.
    fn split_len(&self) -> usize {
        if self.max_len >= 8 {
            self.max_len / 8 * 8
        } else {
            self.max_len
        }
    }
}

/// How bytes of one wire item map into one input range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    /// Index of the input range.
    pub item: usize,
    /// Where in the input range these bytes go.
    pub item_offset: u32,
    /// Index of the wire item within its request.
    pub spec: usize,
    /// Where in the wire item's data they come from.
    pub spec_offset: u32,
    pub len: u32,
}

/// One read var request and how its results map back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRequest {
    pub specs: Vec<VarSpec>,
    pub parts: Vec<Part>,
}

/// All read requests for a set of ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadPlan {
    pub requests: Vec<ReadRequest>,
    item_lens: Vec<u32>,
}

/// A contiguous byte block to read as one or more wire items, with the ranges it serves.
struct Block {
    area: Area,
    db: u16,
    start: u32,
    end: u32,
    items: Vec<usize>,
}

/// One wire item to be: a piece of a block (reads) or of a write.
#[derive(Debug, Clone, Copy)]
struct Piece {
    owner: usize,
    start: u32,
    len: usize,
}

/// Plans reads of `items`; every range must be non-empty and inside the address space.
pub fn plan_reads(items: &[Range], cfg: &PlanConfig) -> Result<ReadPlan, PlanError> {
    plan(items, cfg, Some(cfg.merge_gap))
}

/// Plans reads of `items` without merging any two of them, not even overlapping ones: each
/// range is read in wire items of its own (still packed several to a request). For ranges the
/// PLC rejected inside a merged item, so that one bad range cannot fail its neighbours.
pub fn plan_reads_apart(items: &[Range], cfg: &PlanConfig) -> Result<ReadPlan, PlanError> {
    plan(items, cfg, None)
}

fn plan(items: &[Range], cfg: &PlanConfig, gap: Option<u32>) -> Result<ReadPlan, PlanError> {
    let limits = cfg.read_limits()?;
    let blocks = merge(items, gap, limits.max_len)?;
    let pieces = split_blocks(&blocks, &limits);
    let requests = pack(&pieces, &limits)
        .into_iter()
        .map(|bin| {
            let mut req = ReadRequest {
                specs: Vec::with_capacity(bin.len()),
                parts: Vec::new(),
            };
            for (spec, p) in bin.iter().filter_map(|&i| pieces.get(i)).enumerate() {
                let Some(b) = blocks.get(p.owner) else {
                    continue;
                };
                let end = p.start + p.len as u32;
                req.specs
                    .push(VarSpec::bytes(b.area, b.db, p.start, p.len as u16));
                for &item in &b.items {
                    let Some(r) = items.get(item) else { continue };
                    let (from, to) = (r.start.max(p.start), (r.start + r.len).min(end));
                    if from < to {
                        req.parts.push(Part {
                            item,
                            item_offset: from - r.start,
                            spec,
                            spec_offset: from - p.start,
                            len: to - from,
                        });
                    }
                }
            }
            req
        })
        .collect();
    Ok(ReadPlan {
        requests,
        item_lens: items.iter().map(|r| r.len).collect(),
    })
}

/// A lower bound on the read requests for `items`, for reporting: no packing of the
/// planner's wire items fits fewer, since a request holds at most its item limit and at most
/// `PDU − 14` bytes of `4 + len + pad` (pads counted as in the module docs). Merging and
/// splitting are the planner's own (with `cfg.merge_gap`), so the ratio of the plan's length
/// to this number measures the packing alone. The bound counts slots and bytes separately,
/// so it is loose when large blocks (short of bytes) mix with many tiny items (short of
/// slots); the true minimum of that two-limit packing is not computable cheaply.
pub fn min_read_requests(items: &[Range], cfg: &PlanConfig) -> Result<usize, PlanError> {
    let limits = cfg.read_limits()?;
    let blocks = merge(items, Some(cfg.merge_gap), limits.max_len)?;
    Ok(lower_bound(&split_blocks(&blocks, &limits), &limits))
}

impl ReadPlan {
    /// Puts the responses (one per request, in order) back together per input range: its
    /// bytes, or the return code of the first failed piece. A response with the wrong number
    /// of items or a successful item of the wrong length is a protocol error.
    pub fn assemble(
        &self,
        responses: &[Vec<ReadItem>],
    ) -> Result<Vec<Result<Vec<u8>, ReturnCode>>, PlanError> {
        if responses.len() != self.requests.len() {
            return Err(PlanError::Response {
                request: responses.len().min(self.requests.len()),
                problem: "one response per request is needed",
            });
        }
        let mut out: Vec<Result<Vec<u8>, ReturnCode>> = self
            .item_lens
            .iter()
            .map(|&len| Ok(vec![0; len as usize]))
            .collect();
        for (request, (req, resp)) in self.requests.iter().zip(responses).enumerate() {
            let bad = |problem| PlanError::Response { request, problem };
            if resp.len() != req.specs.len() {
                return Err(bad("item count differs from the request"));
            }
            for (spec, item) in req.specs.iter().zip(resp) {
                if let Ok(data) = item.result()
                    && data.len() != usize::from(spec.count)
                {
                    return Err(bad("an item's data length differs from the request"));
                }
            }
            for part in &req.parts {
                let (Some(item), Some(slot)) = (resp.get(part.spec), out.get_mut(part.item)) else {
                    continue;
                };
                let Ok(buf) = slot else { continue };
                match item.result() {
                    Err(code) => *slot = Err(code),
                    Ok(data) => {
                        let src = data.get(span(part.spec_offset, part.len));
                        let dst = buf.get_mut(span(part.item_offset, part.len));
                        if let (Some(src), Some(dst)) = (src, dst) {
                            dst.copy_from_slice(src);
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

fn span(offset: u32, len: u32) -> std::ops::Range<usize> {
    offset as usize..offset as usize + len as usize
}

/// One write var request; `sources[i]` is the input write that `items[i]` (a piece of it)
/// belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteRequest {
    pub items: Vec<WriteItem>,
    pub sources: Vec<usize>,
}

/// All write requests for a set of writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WritePlan {
    pub requests: Vec<WriteRequest>,
    writes: usize,
}

/// Plans `writes`; a bit write carries exactly one byte, 0 or 1.
pub fn plan_writes(writes: &[Write], cfg: &PlanConfig) -> Result<WritePlan, PlanError> {
    let limits = cfg.write_limits()?;
    let mut pieces = Vec::new();
    for (index, w) in writes.iter().enumerate() {
        check_write(index, w)?;
        let len = w.data.len().max(1); // a bit write is one byte of data
        pieces.extend(split(index, w.start, len, &limits));
    }
    let requests = pack(&pieces, &limits)
        .into_iter()
        .map(|bin| {
            let mut req = WriteRequest {
                items: Vec::with_capacity(bin.len()),
                sources: Vec::with_capacity(bin.len()),
            };
            for p in bin.iter().filter_map(|&i| pieces.get(i)) {
                let Some(w) = writes.get(p.owner) else {
                    continue;
                };
                let item = match w.bit {
                    Some(bit) => WriteItem::bit(w.area, w.db, w.start, bit, w.data != [0]),
                    None => {
                        let from = (p.start - w.start) as usize;
                        let data = w.data.get(from..from + p.len).unwrap_or_default();
                        WriteItem {
                            spec: VarSpec::bytes(w.area, w.db, p.start, p.len as u16),
                            transport: crate::codec::DataTransport::Byte,
                            data: data.to_vec(),
                        }
                    }
                };
                req.items.push(item);
                req.sources.push(p.owner);
            }
            req
        })
        .collect();
    Ok(WritePlan {
        requests,
        writes: writes.len(),
    })
}

/// A lower bound on the write requests for `writes`, as [`min_read_requests`] with the write
/// sizes.
pub fn min_write_requests(writes: &[Write], cfg: &PlanConfig) -> Result<usize, PlanError> {
    let limits = cfg.write_limits()?;
    let mut pieces = Vec::new();
    for (index, w) in writes.iter().enumerate() {
        check_write(index, w)?;
        pieces.extend(split(index, w.start, w.data.len().max(1), &limits));
    }
    Ok(lower_bound(&pieces, &limits))
}

impl WritePlan {
    /// Per input write: success, or the return code of the first failed piece.
    pub fn assemble(
        &self,
        responses: &[Vec<ReturnCode>],
    ) -> Result<Vec<Result<(), ReturnCode>>, PlanError> {
        if responses.len() != self.requests.len() {
            return Err(PlanError::Response {
                request: responses.len().min(self.requests.len()),
                problem: "one response per request is needed",
            });
        }
        let mut out = vec![Ok(()); self.writes];
        for (request, (req, codes)) in self.requests.iter().zip(responses).enumerate() {
            if codes.len() != req.items.len() {
                return Err(PlanError::Response {
                    request,
                    problem: "item count differs from the request",
                });
            }
            for (&source, &code) in req.sources.iter().zip(codes) {
                if let Some(slot @ Ok(())) = out.get_mut(source)
                    && !code.is_success()
                {
                    *slot = Err(code);
                }
            }
        }
        Ok(out)
    }
}

fn check_write(index: usize, w: &Write) -> Result<(), PlanError> {
    let bad = |problem| Err(PlanError::Item { index, problem });
    match w.bit {
        Some(bit) if bit > 7 => return bad("bit number above 7"),
        Some(_) if !matches!(w.data.as_slice(), [0 | 1]) => {
            return bad("a bit write carries one byte, 0 or 1");
        }
        None if w.data.is_empty() => return bad("nothing to write"),
        _ => {}
    }
    let len = w.data.len().max(1) as u64;
    if u64::from(w.start) + len - 1 > u64::from(MAX_BYTE) {
        return bad("runs past the end of the S7 address space (byte 2097151)");
    }
    Ok(())
}

/// Sorted, merged blocks; each input range lands in exactly one block.
/// Sorts the ranges into blocks; with `gap`, neighbours at most `gap` bytes apart share one.
fn merge(items: &[Range], gap: Option<u32>, max_len: usize) -> Result<Vec<Block>, PlanError> {
    for (index, r) in items.iter().enumerate() {
        if r.len == 0 {
            return Err(PlanError::Item {
                index,
                problem: "empty range",
            });
        }
        if u64::from(r.start) + u64::from(r.len) - 1 > u64::from(MAX_BYTE) {
            return Err(PlanError::Item {
                index,
                problem: "runs past the end of the S7 address space (byte 2097151)",
            });
        }
    }
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| items.get(i).map(|r| (r.area, r.db, r.start, r.len)));
    let mut blocks: Vec<Block> = Vec::new();
    for i in order {
        let Some(r) = items.get(i) else { continue };
        let end = r.start + r.len;
        if let Some(gap) = gap
            && let Some(b) = blocks.last_mut()
            && b.area == r.area
            && b.db == r.db
            && r.start <= b.end.saturating_add(gap)
            && (b.end.max(end) - b.start) as usize <= max_len
        {
            b.end = b.end.max(end);
            b.items.push(i);
            continue;
        }
        blocks.push(Block {
            area: r.area,
            db: r.db,
            start: r.start,
            end,
            items: vec![i],
        });
    }
    Ok(blocks)
}

fn split_blocks(blocks: &[Block], limits: &Limits) -> Vec<Piece> {
    let mut pieces = Vec::new();
    for (owner, b) in blocks.iter().enumerate() {
        pieces.extend(split(owner, b.start, (b.end - b.start) as usize, limits));
    }
    pieces
}

/// `len` bytes from `start` as pieces no longer than one item.
fn split(owner: usize, start: u32, len: usize, limits: &Limits) -> impl Iterator<Item = Piece> {
    let step = if len <= limits.max_len {
        len.max(1)
    } else {
        limits.split_len().max(1)
    };
    (0..len).step_by(step).map(move |off| Piece {
        owner,
        start: start + off as u32,
        len: step.min(len - off),
    })
}

/// Packs pieces into as few bins as two heuristics find: first-fit decreasing, and a balanced
/// fit into exactly `k` bins (`k` searched between the lower bound and first-fit's count),
/// which puts each piece (largest first) where the fuller of its two resources (item slots,
/// bytes) stays lowest. The balanced
/// fit wins when both limits bind: first-fit fills some requests with large pieces (out of
/// bytes, slots unused) and others with small ones (out of slots, bytes unused).
///
/// Each bin lists piece indices by address, with one odd-length piece (if any) last so only
/// the others pay a pad byte.
fn pack(pieces: &[Piece], limits: &Limits) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..pieces.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(pieces.get(i).map_or(0, |p| p.len)));
    let first_fit = fill(pieces, &order, limits, 0, |_, _| 0).unwrap_or_default();
    let balanced = |k| {
        fill(pieces, &order, limits, k, |b: &Bin, cost| {
            // Dominant share after adding the piece, scaled by max_items · capacity.
            let slots = (b.items.len() + 1) * limits.capacity;
            let bytes = (b.cost + cost) * limits.max_items;
            slots.max(bytes)
        })
    };
    // Binary search for the fewest bins the balanced fit manages; the heuristic is not
    // strictly monotone in k, but every success is a valid packing, and a log of tries keeps
    // planning 10,000 points cheap.
    let (mut lo, mut hi) = (lower_bound(pieces, limits), first_fit.len());
    let mut best = None;
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match balanced(mid) {
            Some(bins) => {
                best = Some(bins);
                hi = mid;
            }
            None => lo = mid + 1,
        }
    }
    best.unwrap_or(first_fit)
        .into_iter()
        .map(|mut b| {
            b.items
                .sort_by_key(|&i| pieces.get(i).map(|p| (p.owner, p.start)));
            if let Some(pos) = b
                .items
                .iter()
                .rposition(|&i| pieces.get(i).is_some_and(|p| p.len % 2 == 1))
            {
                let odd = b.items.remove(pos);
                b.items.push(odd);
            }
            b.items
        })
        .collect()
}

#[derive(Default)]
struct Bin {
    items: Vec<usize>,
    /// Σ (overhead + len rounded up to even).
    cost: usize,
    odd: bool,
}

/// Puts each piece (in `order`) into the fitting bin with the lowest `score` (the first of
/// equals). With `bins` = 0 a piece that fits nowhere opens a new bin; otherwise there are
/// exactly `bins` bins and `None` if a piece fits none of them.
fn fill(
    pieces: &[Piece],
    order: &[usize],
    limits: &Limits,
    bins: usize,
    score: impl Fn(&Bin, usize) -> usize,
) -> Option<Vec<Bin>> {
    let fixed = bins > 0;
    let mut bins: Vec<Bin> = (0..bins).map(|_| Bin::default()).collect();
    for &i in order {
        let Some(p) = pieces.get(i) else { continue };
        let cost = limits.overhead + p.len.next_multiple_of(2);
        let odd = p.len % 2 == 1;
        // An odd piece saves its pad if it goes last; one pad is saved per bin with any.
        let fits = |b: &Bin| {
            let saved = usize::from(b.odd || odd);
            b.items.len() < limits.max_items && b.cost + cost - saved <= limits.capacity
        };
        let chosen = bins
            .iter_mut()
            .filter(|b| fits(b))
            .min_by_key(|b| score(b, cost));
        match chosen {
            Some(b) => {
                b.items.push(i);
                b.cost += cost;
                b.odd |= odd;
            }
            None if fixed => return None,
            None => bins.push(Bin {
                items: vec![i],
                cost,
                odd,
            }),
        }
    }
    bins.retain(|b| !b.items.is_empty());
    Some(bins)
}

/// No packing of `pieces` needs fewer bins. A piece too large to share a bin even with the
/// cheapest other piece has a bin of its own; the rest need at least their share of item
/// slots (`max_items` per bin) and of bytes (`capacity` per bin of `overhead + len + pad`,
/// where every odd piece but one per bin pays a pad, so Σ (overhead + len rounded up to even)
/// ≤ capacity + 1 per bin).
fn lower_bound(pieces: &[Piece], limits: &Limits) -> usize {
    let cost = |p: &Piece| limits.overhead + p.len.next_multiple_of(2);
    let mut costs: Vec<usize> = pieces.iter().map(cost).collect();
    costs.sort_unstable();
    let (cheapest, second) = match costs.as_slice() {
        [a, b, ..] => (*a, *b),
        _ => return pieces.len(),
    };
    // A pair saves at most one pad byte.
    let alone = |c: usize| {
        let other = if c == cheapest { second } else { cheapest };
        c + other - 1 > limits.capacity
    };
    let (own, shared): (Vec<usize>, Vec<usize>) = costs.into_iter().partition(|&c| alone(c));
    let padded: usize = shared.iter().sum();
    own.len()
        + shared
            .len()
            .div_ceil(limits.max_items)
            .max(padded.div_ceil(limits.capacity + 1))
}
