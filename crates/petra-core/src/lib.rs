//! Petra's core vocabulary, shared by every other crate.
//!
//! * [`Value`] / [`ValueType`]: the four signal types (bool, int, float, string).
//! * [`Quality`]: good, uncertain, or bad with a [`BadReason`] from a bounded set, so a reason
//!   can be stored in an atomic and used as a metric label.
//! * [`Timestamp`] (wall time of a sample) and [`MonoTime`] (monotonic scheduling time).
//! * [`SignalId`]: a dense handle resolved when the configuration is compiled; the hot path
//!   indexes arrays with it and never hashes a name.
//! * [`Bus`]: the signal bus, with lock-free reads by handle and the two kinds of change feed.
//! * [`Clock`]: where time comes from, so the same engine runs in real or virtual time.
//!
//! This crate does no IO and does not depend on an async runtime. The only place it touches the
//! operating system's clocks is [`SystemClock`], which the binary injects at the edge.

mod bus;
mod clock;
mod feed;
mod hint;
mod quality;
mod time;
mod value;

pub use bus::{Bus, BusBuilder, BusError, Sample, SignalDef, SignalId};
pub use clock::{Clock, SystemClock, VirtualClock};
pub use feed::{Change, LatestFeed, LosslessFeed, OverflowPolicy, Waker};
pub use hint::prefetch;
pub use quality::{BadReason, Quality};
pub use time::{MonoTime, Timestamp};
pub use value::{Value, ValueType};
