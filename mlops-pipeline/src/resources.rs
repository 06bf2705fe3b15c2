//! Resource accounting per step — wall time, CPU time, peak resident memory, GPU time — and
//! its price by a rate card: OpenCost's idea at step granularity.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use mlops_core::{Error, Result};
use serde::{Deserialize, Serialize};

/// Resident memory of this process, from `/proc/self/statm` (Linux).
pub(crate) fn rss_bytes() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
        let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
        Some(pages * rustix::param::page_size() as u64)
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// Samples the process's resident memory every 10 ms while a step runs and keeps the highest.
pub(crate) struct RssSampler {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl RssSampler {
    pub(crate) fn start() -> Self {
        let peak = Arc::new(AtomicU64::new(rss_bytes().unwrap_or(0)));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peak.clone(), stop.clone());
        tokio::spawn(async move {
            while !s.load(Ordering::Relaxed) {
                if let Some(now) = rss_bytes() {
                    p.fetch_max(now, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        Self { peak, stop }
    }

    /// The peak seen, in bytes (`None` where it cannot be read).
    pub(crate) fn finish(self) -> Option<u64> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(now) = rss_bytes() {
            self.peak.fetch_max(now, Ordering::Relaxed);
        }
        let peak = self.peak.load(Ordering::Relaxed);
        (peak > 0).then_some(peak)
    }
}

/// What a step used.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// Wall-clock seconds (all attempts).
    pub wall_seconds: f64,
    /// CPU seconds: the whole process's over the step when it ran alone (`cpu_exclusive`),
    /// else those measured on the threads that ran its blocking work.
    pub cpu_seconds: f64,
    /// Whether the step ran alone, so `cpu_seconds` is exact.
    #[serde(default)]
    pub cpu_exclusive: bool,
    /// The process's peak resident memory while the step ran (with parallel steps it includes
    /// theirs), bytes.
    pub peak_rss_bytes: Option<u64>,
    /// GPU seconds: wall time × the GPUs the step declared.
    pub gpu_seconds: f64,
}

/// Prices per resource-hour, read from YAML:
///
/// ```yaml
/// currency: USD
/// cpu_hour: 0.031611   # per CPU core-hour
/// gb_hour: 0.004237    # per GiB of memory per hour
/// gpu_hour: 0.95       # per GPU-hour
/// ```
///
/// (the defaults are OpenCost's default on-demand prices).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateCard {
    /// Currency label.
    pub currency: String,
    /// Per CPU core-hour.
    pub cpu_hour: f64,
    /// Per GiB-hour of memory.
    pub gb_hour: f64,
    /// Per GPU-hour.
    pub gpu_hour: f64,
}

impl Default for RateCard {
    fn default() -> Self {
        Self {
            currency: "USD".into(),
            cpu_hour: 0.031611,
            gb_hour: 0.004237,
            gpu_hour: 0.95,
        }
    }
}

impl RateCard {
    /// Parses the YAML form; unknown keys and negative or non-finite prices are
    /// [`Error::InvalidArgument`].
    pub fn from_yaml(yaml: &str) -> Result<Self> {
        let card: Self = serde_yaml_ng::from_str(yaml)
            .map_err(|e| Error::invalid("rate card", "").with_source(e))?;
        for (name, v) in [
            ("cpu_hour", card.cpu_hour),
            ("gb_hour", card.gb_hour),
            ("gpu_hour", card.gpu_hour),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::invalid(
                    "rate card",
                    format!("{name} = {v} is not a price"),
                ));
            }
        }
        Ok(card)
    }

    /// The price of `usage`: CPU-hours, GiB-hours of peak memory over the wall time, GPU-hours.
    pub fn cost(&self, usage: &Usage) -> f64 {
        let hours = usage.wall_seconds / 3600.0;
        let gib = usage.peak_rss_bytes.unwrap_or(0) as f64 / f64::from(1u32 << 30);
        usage.cpu_seconds / 3600.0 * self.cpu_hour
            + gib * hours * self.gb_hour
            + usage.gpu_seconds / 3600.0 * self.gpu_hour
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_cpu_memory_and_gpu() {
        let card =
            RateCard::from_yaml("currency: EUR\ncpu_hour: 1.0\ngb_hour: 0.5\ngpu_hour: 10\n")
                .unwrap();
        let usage = Usage {
            wall_seconds: 3600.0,
            cpu_seconds: 7200.0,
            peak_rss_bytes: Some(2 << 30),
            gpu_seconds: 1800.0,
            cpu_exclusive: true,
        };
        assert!((card.cost(&usage) - (2.0 + 1.0 + 5.0)).abs() < 1e-12);
        assert!(RateCard::from_yaml("cpu_hour: -1").is_err());
        assert!(
            RateCard::from_yaml("cpu_hours: 1")
                .unwrap_err()
                .to_string()
                .contains("unknown field")
        );
    }

    #[test]
    fn measures_this_process() {
        if cfg!(target_os = "linux") {
            assert!(rss_bytes().unwrap() > 0);
            let a = mlops_core::time::thread_cpu_seconds().unwrap();
            let mut x = 0u64;
            for i in 0..2_000_000u64 {
                x = x.wrapping_mul(31).wrapping_add(i);
            }
            assert!(x != 1);
            assert!(mlops_core::time::thread_cpu_seconds().unwrap() > a);
        }
    }
}
