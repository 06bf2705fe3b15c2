//! Clock helpers. Timestamps are milliseconds since the Unix epoch, as in MLflow; CPU clocks
//! measure what training and pipeline steps cost.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, now. A clock before 1970 reads as 0.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// CPU seconds the calling thread has used; `None` where the platform has no such clock.
pub fn thread_cpu_seconds() -> Option<f64> {
    cpu_clock(CpuClock::Thread)
}

/// CPU seconds the whole process has used (all its threads); `None` where unavailable.
pub fn process_cpu_seconds() -> Option<f64> {
    cpu_clock(CpuClock::Process)
}

enum CpuClock {
    Thread,
    Process,
}

#[cfg(unix)]
fn cpu_clock(which: CpuClock) -> Option<f64> {
    use rustix::time::{ClockId, clock_gettime};
    let t = clock_gettime(match which {
        CpuClock::Thread => ClockId::ThreadCPUTime,
        CpuClock::Process => ClockId::ProcessCPUTime,
    });
    Some(t.tv_sec as f64 + t.tv_nsec as f64 / 1e9)
}

#[cfg(not(unix))]
fn cpu_clock(_which: CpuClock) -> Option<f64> {
    None
}
