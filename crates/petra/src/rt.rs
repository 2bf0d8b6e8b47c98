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
            // Set directly: a helper offering only the CPUs of the current mask would refuse, as the main
            // thread has already kept itself (and so this thread) off this CPU (`keep_off`).
            if set_affinity(|x| x == c) {
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

/// Keeps the calling thread — and every thread it starts from now on, which inherit its CPU
/// mask — off `cpu`, the scan thread's CPU: the history's WAL writes and fsyncs, the sinks, the
/// drivers, the HTTP server and the alarm manager then run on the other CPUs and never delay a
/// scan by taking its CPU. Called at start-up before anything else is spawned. Needs at least
/// two CPUs; best effort, like the pinning itself.
pub fn keep_off(cpu: usize) {
    let n = cpus();
    if n < 2 || cpu >= n {
        return;
    }
    if set_affinity(|c| c != cpu) {
        tracing::info!(
            scan_cpu = cpu,
            "the other threads keep off the scan thread's CPU"
        );
    } else {
        tracing::warn!(
            scan_cpu = cpu,
            "could not keep the other threads off the scan thread's CPU"
        );
    }
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Sets the calling thread's CPU mask to the CPUs `keep` accepts (among those of the machine,
/// not only of the current mask); false when the OS refuses or the set is empty.
fn set_affinity(keep: impl Fn(usize) -> bool) -> bool {
    #[cfg(target_os = "linux")]
    {
        // The machine's CPUs, even those the current mask excludes.
        let n = std::fs::read_to_string("/sys/devices/system/cpu/possible")
            .ok()
            .and_then(|s| s.trim().rsplit(['-', ',']).next()?.parse::<usize>().ok())
            .map_or_else(cpus, |last| last + 1);
        let chosen: Vec<usize> = (0..n.min(libc::CPU_SETSIZE as usize))
            .filter(|c| keep(*c))
            .collect();
        if chosen.is_empty() {
            return false;
        }
        // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET and sched_setaffinity only touch
        // the set we own, for the calling thread (pid 0).
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            for c in chosen {
                libc::CPU_SET(c, &mut set);
            }
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = keep;
        false
    }
}
