//! A cache prefetch hint for the scan's hot loops.
//!
//! The scan walks thousands of small objects (block states, alarms, bus slots) that have gone
//! cold in the cache during the sleep between two scans; asking for the ones a few steps ahead
//! overlaps those misses instead of paying them one after another.

/// Hints the CPU to start loading the cache line at `p`. Never faults, whatever `p` is.
#[inline(always)]
pub fn prefetch<T: ?Sized>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint; it does not dereference `p` architecturally.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
