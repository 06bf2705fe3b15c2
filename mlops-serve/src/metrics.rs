//! Serving metrics in the Prometheus text format 0.0.4.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

use mlops_core::{Error, ErrorKind, Result};

/// Metric names (the Grafana dashboard in mlops-drift charts them).
pub mod names {
    /// Counter `{model, version, outcome}`; outcome is `ok`, `invalid`, `not_found`,
    /// `denied`, `unavailable` or `error`.
    pub const REQUESTS: &str = "mlops_inference_requests_total";
    /// Histogram `{model, version}` of server-side request latency, seconds.
    pub const DURATION: &str = "mlops_inference_request_duration_seconds";
    /// Histogram `{model}` of rows per prediction (batch size).
    pub const BATCH_SIZE: &str = "mlops_inference_batch_size";
    /// Gauge `{model}`: requests queued or being predicted, at scrape time.
    pub const QUEUE_DEPTH: &str = "mlops_inference_queue_depth";
}

/// The server's metric families, in their own registry (other components, such as a drift
/// monitor, can register into it too).
#[derive(Debug, Clone)]
pub struct ServeMetrics {
    registry: Registry,
    pub(crate) requests: IntCounterVec,
    pub(crate) duration: HistogramVec,
    pub(crate) batch: HistogramVec,
    pub(crate) queue: IntGaugeVec,
}

impl ServeMetrics {
    /// Fresh metrics in a new registry.
    pub fn new() -> Result<Self> {
        let err = |e: prometheus::Error| Error::backend("prometheus", e);
        let requests = IntCounterVec::new(
            Opts::new(
                names::REQUESTS,
                "Inference requests by model, version and outcome",
            ),
            &["model", "version", "outcome"],
        )
        .map_err(err)?;
        let duration = HistogramVec::new(
            HistogramOpts::new(names::DURATION, "Server-side inference latency in seconds")
                .buckets(vec![
                    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05,
                    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ]),
            &["model", "version"],
        )
        .map_err(err)?;
        let batch = HistogramVec::new(
            HistogramOpts::new(names::BATCH_SIZE, "Rows per model prediction").buckets(vec![
                1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
            ]),
            &["model"],
        )
        .map_err(err)?;
        let queue = IntGaugeVec::new(
            Opts::new(names::QUEUE_DEPTH, "Requests queued or being predicted"),
            &["model"],
        )
        .map_err(err)?;
        let registry = Registry::new();
        for c in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(duration.clone()),
            Box::new(batch.clone()),
            Box::new(queue.clone()),
        ] {
            registry.register(c).map_err(err)?;
        }
        Ok(Self {
            registry,
            requests,
            duration,
            batch,
            queue,
        })
    }

    /// The registry, to add other collectors or gather.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Everything in the registry as Prometheus text (format 0.0.4).
    pub fn render(&self) -> Result<String> {
        use prometheus::Encoder;
        let mut buf = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .map_err(|e| Error::backend("prometheus", e))?;
        String::from_utf8(buf).map_err(|e| Error::backend("prometheus", e))
    }
}

/// The outcome label of an error.
pub(crate) fn error_outcome(e: &Error) -> &'static str {
    match e.kind() {
        ErrorKind::InvalidArgument => "invalid",
        ErrorKind::NotFound => "not_found",
        ErrorKind::PolicyDenied | ErrorKind::PermissionDenied => "denied",
        ErrorKind::Unavailable => "unavailable",
        _ => "error",
    }
}
