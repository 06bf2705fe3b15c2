//! Where tensors live: chosen at run time as `cpu`, `cuda:N` or `auto`.

use std::fmt;
use std::str::FromStr;

use candle_core::Device;
use mlops_core::{Error, Result};
use serde::{Deserialize, Serialize};

/// A device request, resolved to a candle [`Device`] by [`DeviceSpec::resolve`].
///
/// Written as `cpu`, `cuda` (= `cuda:0`), `cuda:N` or `auto` (CUDA device 0 when this build has
/// the `cuda` feature and a GPU is present, else the CPU).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DeviceSpec {
    /// CUDA when compiled in and present, else the CPU.
    #[default]
    Auto,
    /// The CPU.
    Cpu,
    /// The CUDA device with this ordinal.
    Cuda(usize),
}

impl DeviceSpec {
    /// The candle device.
    ///
    /// Asking for CUDA in a build without the `cuda` feature is [`Error::NotSupported`]; a CUDA
    /// device that cannot be opened (no driver, no such ordinal) is [`Error::Unavailable`].
    pub fn resolve(self) -> Result<Device> {
        match self {
            Self::Cpu => Ok(Device::Cpu),
            Self::Cuda(ordinal) => cuda(ordinal),
            Self::Auto if cfg!(feature = "cuda") && candle_core::utils::cuda_is_available() => {
                cuda(0).or(Ok(Device::Cpu))
            }
            Self::Auto => Ok(Device::Cpu),
        }
    }

    /// Whether this build can use CUDA at all (the `cuda` feature).
    pub fn cuda_compiled() -> bool {
        cfg!(feature = "cuda")
    }
}

fn cuda(ordinal: usize) -> Result<Device> {
    if !cfg!(feature = "cuda") {
        return Err(Error::not_supported(
            "device",
            format!("cuda:{ordinal}"),
            "mlops-train was built without its `cuda` feature \
             (rebuild with `--features cuda`, or use --device cpu / auto)",
        ));
    }
    Device::new_cuda(ordinal).map_err(|e| {
        Error::unavailable(format!("device cuda:{ordinal} cannot be opened")).with_source(e)
    })
}

/// The name of a resolved device (`cpu`, `cuda:0`).
pub fn device_name(device: &Device) -> String {
    match device.location() {
        candle_core::DeviceLocation::Cpu => "cpu".to_owned(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl FromStr for DeviceSpec {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::invalid(
                "device",
                format!("{s:?} (expected cpu, cuda, cuda:N or auto)"),
            )
        };
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" | "gpu" => Ok(Self::Cuda(0)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Self::Cuda)
                .ok_or_else(bad),
        }
    }
}

impl Serialize for DeviceSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DeviceSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        for (s, d) in [
            ("auto", DeviceSpec::Auto),
            ("cpu", DeviceSpec::Cpu),
            ("cuda:3", DeviceSpec::Cuda(3)),
        ] {
            assert_eq!(s.parse::<DeviceSpec>().unwrap(), d);
            assert_eq!(d.to_string(), s);
        }
        assert_eq!("CUDA".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(0));
        for bad in ["tpu", "cuda:", "cuda:x", ""] {
            let e = bad.parse::<DeviceSpec>().unwrap_err();
            assert!(e.to_string().contains("expected cpu"), "{e}");
        }
    }

    #[test]
    fn cpu_and_auto_resolve_without_cuda() {
        assert!(DeviceSpec::Cpu.resolve().unwrap().is_cpu());
        if !DeviceSpec::cuda_compiled() {
            assert!(DeviceSpec::Auto.resolve().unwrap().is_cpu());
            let e = DeviceSpec::Cuda(0).resolve().unwrap_err();
            assert!(e.is_not_supported(), "{e:?}");
            assert!(e.to_string().contains("`cuda` feature"), "{e}");
        }
    }
}
