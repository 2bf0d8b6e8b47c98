//! Real-time priority and CPU pinning for the scan thread.
//!
//! Both are optional and best effort: when the OS refuses (no CAP_SYS_NICE, no such CPU) Petra
//! keeps running at normal priority and says so clearly, once, at WARN.

use thread_priority::ThreadPriority;
use thread_priority::unix::{
    RealtimeThreadSchedulePolicy, ScheduleParams, ThreadSchedulePolicy,
    set_thread_priority_and_policy, thread_native_id,
};

/// Returns the closure the scan thread runs first.
pub fn setup(rt_priority: Option<u8>, cpu: Option<usize>) -> Box<dyn FnOnce() + Send> {
    Box::new(move || {
        if let Some(p) = rt_priority {
            let prio = ThreadPriority::from_posix(ScheduleParams {
                sched_priority: i32::from(p),
            });
            let policy = ThreadSchedulePolicy::Realtime(RealtimeThreadSchedulePolicy::Fifo);
            match set_thread_priority_and_policy(thread_native_id(), prio, policy) {
                Ok(()) => tracing::info!(priority = p, "scan thread runs with SCHED_FIFO"),
                Err(e) => tracing::warn!(priority = p, error = ?e,
                    "could not give the scan thread real-time priority (needs root or \
                     CAP_SYS_NICE); running at normal priority, expect more jitter"),
            }
        }
        if let Some(c) = cpu {
            let ok = core_affinity::get_core_ids()
                .is_some_and(|ids| ids.iter().any(|id| id.id == c))
                && core_affinity::set_for_current(core_affinity::CoreId { id: c });
            if ok {
                tracing::info!(cpu = c, "scan thread pinned");
            } else {
                tracing::warn!(
                    cpu = c,
                    "could not pin the scan thread to this CPU; running unpinned"
                );
            }
        }
    })
}
