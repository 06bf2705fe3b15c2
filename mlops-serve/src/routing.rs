//! Traffic between versions of one model: a weighted canary and a shadow.

use mlops_core::Version;
use serde::{Deserialize, Serialize};

/// How requests that name no version are spread over a model's versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Routing {
    /// The version that answers by default.
    pub primary: Version,
    /// A candidate that answers `percent`% of requests.
    pub canary: Option<Canary>,
    /// A version that receives a copy of every primary/canary request; its answer is discarded,
    /// its latency and its difference from the answer that was sent are recorded.
    pub shadow: Option<Version>,
}

/// A canary version and its share of traffic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Canary {
    /// The version.
    pub version: Version,
    /// Percent of requests, 0–100.
    pub percent: u8,
}

impl Routing {
    /// Everything to `primary`.
    pub fn to(primary: Version) -> Self {
        Self {
            primary,
            canary: None,
            shadow: None,
        }
    }

    /// Sends `percent`% of requests to `version`.
    pub fn with_canary(mut self, version: Version, percent: u8) -> Self {
        self.canary = Some(Canary {
            version,
            percent: percent.min(100),
        });
        self
    }

    /// Mirrors traffic to `version`.
    pub fn with_shadow(mut self, version: Version) -> Self {
        self.shadow = Some(version);
        self
    }

    /// The version for a request: with a routing key the choice is a pure function of the key
    /// (the same user always sees the same version); without one, `ticket` (a per-model counter)
    /// spreads requests so that exactly `percent` of every 100 go to the canary.
    pub(crate) fn pick(&self, key: Option<&str>, ticket: u64) -> Version {
        let Some(canary) = &self.canary else {
            return self.primary;
        };
        let slot = match key {
            Some(k) => fnv1a(k.as_bytes()) % 100,
            // A fixed permutation of 0..100 so consecutive requests interleave.
            None => (ticket % 100).wrapping_mul(37) % 100,
        };
        if slot < u64::from(canary.percent) {
            canary.version
        } else {
            self.primary
        }
    }
}

/// FNV-1a, 64-bit: stable across processes and releases, unlike `std`'s hasher.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(n: u64) -> Version {
        Version::new(n).unwrap()
    }

    #[test]
    fn tickets_split_exactly_and_keys_are_sticky() {
        let r = Routing::to(v(1)).with_canary(v(2), 10);
        let to_canary = (0..1000).filter(|t| r.pick(None, *t) == v(2)).count();
        assert_eq!(to_canary, 100);
        for k in ["alice", "bob", "carol"] {
            let first = r.pick(Some(k), 0);
            assert!((0..50).all(|t| r.pick(Some(k), t) == first));
        }
        let keyed = (0..10_000)
            .filter(|i| r.pick(Some(&format!("user-{i}")), 0) == v(2))
            .count();
        assert!((800..1200).contains(&keyed), "{keyed}");
        assert_eq!(Routing::to(v(1)).pick(Some("x"), 3), v(1));
        assert!((0..100).all(|t| Routing::to(v(1)).with_canary(v(2), 100).pick(None, t) == v(2)));
    }
}
