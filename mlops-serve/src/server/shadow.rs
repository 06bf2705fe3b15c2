//! Shadow traffic: a copy of each request to a version whose answer is discarded, compared
//! with the answer that was sent.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use mlops_core::serve::InferRequest;
use mlops_core::{DataType, ModelName, Tensor};

use super::loaded::LoadedModel;

/// What shadow traffic has shown for one model.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ShadowStats {
    /// Requests mirrored.
    pub requests: u64,
    /// Mirrored requests the shadow failed.
    pub failures: u64,
    /// Largest absolute difference seen between a shadow output and the answer sent.
    pub max_difference: f64,
    /// Mirrored requests whose outputs differed in shape, datatype or value.
    pub differing: u64,
    /// Total shadow latency, seconds.
    pub latency_seconds: f64,
}

/// Shadow statistics by model.
pub(super) type Shadows = Arc<Mutex<BTreeMap<ModelName, ShadowStats>>>;

/// Sends a copy of a request to the shadow in the background and records in `stats` how its
/// answer compares with the one that was sent.
pub(super) fn mirror(
    stats: &Shadows,
    shadow: Arc<LoadedModel>,
    request: InferRequest,
    sent: Vec<Tensor>,
) {
    let stats = Arc::clone(stats);
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    handle.spawn(async move {
        let started = std::time::Instant::now();
        let result = shadow
            .run(&request.inputs)
            .await
            .map(|(_, outputs)| outputs);
        let elapsed = started.elapsed().as_secs_f64();
        let mut all = stats.lock().unwrap_or_else(PoisonError::into_inner);
        let s = all.entry(shadow.name().clone()).or_default();
        s.requests += 1;
        s.latency_seconds += elapsed;
        match result {
            Err(_) => s.failures += 1,
            Ok(outputs) => {
                let diff = difference(&sent, &outputs);
                if diff != 0.0 {
                    s.differing += 1;
                }
                s.max_difference = s.max_difference.max(diff);
            }
        }
    });
}

/// Largest absolute difference between two output lists matched by position (infinite when
/// names, datatypes or shapes differ, or values cannot be compared).
fn difference(a: &[Tensor], b: &[Tensor]) -> f64 {
    if a.len() != b.len() {
        return f64::INFINITY;
    }
    let mut max = 0.0f64;
    for (x, y) in a.iter().zip(b) {
        if x.datatype() != y.datatype() || x.shape() != y.shape() {
            return f64::INFINITY;
        }
        if x.datatype() == DataType::Bytes {
            if x.data() != y.data() {
                return f64::INFINITY;
            }
            continue;
        }
        match (x.to_f64_lossy(), y.to_f64_lossy()) {
            (Ok(p), Ok(q)) => {
                for (u, v) in p.iter().zip(&q) {
                    max = max.max((u - v).abs());
                }
            }
            _ => return f64::INFINITY,
        }
    }
    max
}
