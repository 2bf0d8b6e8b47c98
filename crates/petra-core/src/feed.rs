//! Change feeds: how consumers learn that signals changed without ever slowing a writer.
//!
//! Two delivery modes, chosen per consumer when the bus is built:
//!
//! * [`LatestFeed`] — coalesced latest value. A writer sets one bit per changed signal
//!   (`fetch_or`, no allocation, no queue); the consumer drains the set of changed ids and reads
//!   their current values from the bus. Ten changes of one signal between two drains are one
//!   entry. Cannot overflow. For the MQTT publisher, the HMI, retained-value storage.
//! * [`LosslessFeed`] — every change, in order per signal, through a bounded lock-free queue
//!   (`crossbeam_queue::ArrayQueue`). When it is full the declared [`OverflowPolicy`] applies and
//!   every lost change is counted in [`LosslessFeed::dropped`]; the writer never waits. For the
//!   history sampler.
//!
//! A consumer may register a [`Waker`]; it is called (from the writer's thread, so it must be
//! cheap and must not block — e.g. `tokio::sync::Notify::notify_one`) when the feed goes from
//! empty to non-empty.

use crate::bus::{Sample, SignalId};
use crossbeam_queue::ArrayQueue;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// Called when a feed goes from empty to non-empty. Must not block.
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// Which signals a feed wants: `None` means all.
fn interest_bits(n: usize, filter: Option<&[SignalId]>) -> Option<Box<[u64]>> {
    filter.map(|ids| {
        let mut bits = vec![0u64; n.div_ceil(64)].into_boxed_slice();
        for id in ids {
            bits[id.index() / 64] |= 1 << (id.index() % 64);
        }
        bits
    })
}

fn wants(interest: &Option<Box<[u64]>>, idx: usize) -> bool {
    match interest {
        None => true,
        Some(bits) => bits[idx / 64] & (1 << (idx % 64)) != 0,
    }
}

pub(crate) struct LatestInner {
    dirty: Box<[AtomicU64]>,
    interest: Option<Box<[u64]>>,
    pending: AtomicBool,
    waker: OnceLock<Waker>,
}

impl LatestInner {
    pub(crate) fn new(n: usize, filter: Option<&[SignalId]>) -> LatestInner {
        LatestInner {
            dirty: (0..n.div_ceil(64)).map(|_| AtomicU64::new(0)).collect(),
            interest: interest_bits(n, filter),
            pending: AtomicBool::new(false),
            waker: OnceLock::new(),
        }
    }

    #[inline]
    pub(crate) fn mark(&self, idx: usize) {
        if !wants(&self.interest, idx) {
            return;
        }
        let mask = 1u64 << (idx % 64);
        let prev = self.dirty[idx / 64].fetch_or(mask, Ordering::AcqRel);
        if prev & mask == 0
            && !self.pending.swap(true, Ordering::AcqRel)
            && let Some(w) = self.waker.get()
        {
            w();
        }
    }
}

/// Coalesced change feed: which signals changed since the last drain.
pub struct LatestFeed {
    pub(crate) inner: Arc<LatestInner>,
}

impl LatestFeed {
    /// Registers the waker (once; later calls are ignored and return false).
    pub fn set_waker(&self, waker: Waker) -> bool {
        self.inner.waker.set(waker).is_ok()
    }

    /// True if a change arrived since the last drain.
    pub fn has_pending(&self) -> bool {
        self.inner.pending.load(Ordering::Acquire)
    }

    /// Appends the ids of signals that changed since the last drain (ascending) and clears them.
    /// Returns how many were appended. Read the current values from the bus.
    pub fn drain(&self, out: &mut Vec<SignalId>) -> usize {
        self.inner.pending.store(false, Ordering::SeqCst);
        let before = out.len();
        for (w, word) in self.inner.dirty.iter().enumerate() {
            let mut bits = word.swap(0, Ordering::AcqRel);
            while bits != 0 {
                let b = bits.trailing_zeros() as usize;
                out.push(SignalId::from_index(w * 64 + b));
                bits &= bits - 1;
            }
        }
        out.len() - before
    }
}

/// What a full [`LosslessFeed`] does with one more change. Either way the writer never waits
/// and the loss is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverflowPolicy {
    /// Keep what is queued and drop the new change (history keeps the older, contiguous part).
    DropNewest,
    /// Drop the oldest queued change to make room (consumers see the most recent changes).
    DropOldest,
}

/// One change of one signal.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub id: SignalId,
    pub sample: Sample,
}

pub(crate) struct LosslessInner {
    queue: ArrayQueue<Change>,
    policy: OverflowPolicy,
    dropped: AtomicU64,
    interest: Option<Box<[u64]>>,
    pending: AtomicBool,
    waker: OnceLock<Waker>,
}

impl LosslessInner {
    pub(crate) fn new(
        n: usize,
        capacity: usize,
        policy: OverflowPolicy,
        filter: Option<&[SignalId]>,
    ) -> LosslessInner {
        LosslessInner {
            queue: ArrayQueue::new(capacity.max(1)),
            policy,
            dropped: AtomicU64::new(0),
            interest: interest_bits(n, filter),
            pending: AtomicBool::new(false),
            waker: OnceLock::new(),
        }
    }

    #[inline]
    pub(crate) fn wants(&self, idx: usize) -> bool {
        wants(&self.interest, idx)
    }

    pub(crate) fn push(&self, change: Change) {
        let lost = match self.policy {
            OverflowPolicy::DropNewest => self.queue.push(change).is_err(),
            OverflowPolicy::DropOldest => self.queue.force_push(change).is_some(),
        };
        if lost {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn wake(&self) {
        if !self.pending.swap(true, Ordering::AcqRel)
            && let Some(w) = self.waker.get()
        {
            w();
        }
    }
}

/// Lossless change feed: every change through a bounded queue with a counted overflow policy.
pub struct LosslessFeed {
    pub(crate) inner: Arc<LosslessInner>,
}

impl LosslessFeed {
    /// Registers the waker (once; later calls are ignored and return false).
    pub fn set_waker(&self, waker: Waker) -> bool {
        self.inner.waker.set(waker).is_ok()
    }

    /// Takes the oldest queued change.
    pub fn pop(&self) -> Option<Change> {
        self.inner.pending.store(false, Ordering::SeqCst);
        self.inner.queue.pop()
    }

    /// Moves up to `max` queued changes into `out`, oldest first; returns how many.
    pub fn drain(&self, out: &mut Vec<Change>, max: usize) -> usize {
        self.inner.pending.store(false, Ordering::SeqCst);
        let mut n = 0;
        while n < max {
            match self.inner.queue.pop() {
                Some(c) => {
                    out.push(c);
                    n += 1;
                }
                None => break,
            }
        }
        n
    }

    /// Changes lost to overflow since the bus was built.
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }

    pub fn len(&self) -> usize {
        self.inner.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inner.queue.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.inner.queue.capacity()
    }

    pub fn policy(&self) -> OverflowPolicy {
        self.inner.policy
    }
}
