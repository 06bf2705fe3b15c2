//! Online monitoring: a [`DriftMonitor`] fed with served inputs (through the core
//! [`InferenceObserver`] hook) tests each full window against a stored reference profile,
//! exports the scores as Prometheus gauges, and evaluates the retraining rule.

use std::sync::{Arc, Mutex, PoisonError, RwLock};

use arrow_array::RecordBatch;
use mlops_core::drift::{
    DetectOptions, DriftDetector, DriftReport, InferenceObserver, ReferenceProfile,
};
use mlops_core::{Error, Result, Version};
use prometheus::{GaugeVec, IntCounterVec, Opts, Registry};
use serde::{Deserialize, Serialize};

use crate::StatDetector;

/// The seed's retraining trigger: retrain when the share of drifted columns exceeds
/// `max_drift_share` or accuracy on labelled feedback falls more than `max_accuracy_drop` below
/// the baseline, for `consecutive_windows` windows in a row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RetrainRule {
    /// Retrain when `share_drifted > max_drift_share` (default 0.3).
    pub max_drift_share: f64,
    /// Retrain when `baseline − accuracy > max_accuracy_drop` (default 0.05).
    pub max_accuracy_drop: f64,
    /// The model's accuracy when it was validated (from its model card); without it the
    /// accuracy clause never fires.
    pub baseline_accuracy: Option<f64>,
    /// How many windows in a row must break the rule (default 1).
    pub consecutive_windows: u32,
}

impl RetrainRule {
    /// `baseline − accuracy`, when both are known.
    pub fn accuracy_drop(&self, accuracy: Option<f64>) -> Option<f64> {
        self.baseline_accuracy.zip(accuracy).map(|(b, a)| b - a)
    }

    /// Why one window breaks the rule (empty when it does not): the drift share above its
    /// maximum, the accuracy on labelled feedback too far below the baseline.
    pub fn reasons(&self, report: &DriftReport, accuracy: Option<f64>) -> Vec<String> {
        let mut reasons = Vec::new();
        if report.share_drifted > self.max_drift_share {
            reasons.push(format!(
                "drift share {:.3} > {} ({} of {} columns drifted)",
                report.share_drifted,
                self.max_drift_share,
                report.drifted_columns,
                report.columns_judged()
            ));
        }
        if let Some(drop) = self.accuracy_drop(accuracy)
            && drop > self.max_accuracy_drop
        {
            reasons.push(format!(
                "accuracy drop {drop:.3} > {} (baseline {:.3})",
                self.max_accuracy_drop,
                self.baseline_accuracy.unwrap_or_default()
            ));
        }
        reasons
    }
}

impl Default for RetrainRule {
    fn default() -> Self {
        Self {
            max_drift_share: 0.3,
            max_accuracy_drop: 0.05,
            baseline_accuracy: None,
            consecutive_windows: 1,
        }
    }
}

/// A retraining trigger fired by a [`DriftMonitor`]: what a pipeline acts on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetrainEvent {
    /// The model watched.
    pub model: String,
    /// The window (0, 1, …) that fired.
    pub window: u64,
    /// Its share of drifted columns.
    pub drift_share: f64,
    /// Baseline minus window accuracy, when feedback was recorded.
    pub accuracy_drop: Option<f64>,
    /// Why, one line per clause that fired.
    pub reasons: Vec<String>,
    /// When, ms since the epoch.
    pub at_ms: i64,
}

/// What one window found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowResult {
    /// Window number, from 0.
    pub window: u64,
    /// Rows in it.
    pub rows: u64,
    /// The drift report.
    pub report: DriftReport,
    /// Accuracy on the feedback recorded during the window.
    pub accuracy: Option<f64>,
    /// The retraining event, if the rule fired.
    pub retrain: Option<RetrainEvent>,
}

/// Options of a [`DriftMonitor`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct MonitorOptions {
    /// Rows per (tumbling) window; default 1,000.
    pub window_rows: usize,
    /// Test options (drift share, per-column overrides).
    pub detect: DetectOptions,
    /// The retraining rule.
    pub retrain: RetrainRule,
}

impl Default for MonitorOptions {
    fn default() -> Self {
        Self {
            window_rows: 1000,
            detect: DetectOptions::default(),
            retrain: RetrainRule::default(),
        }
    }
}

impl MonitorOptions {
    /// Sets the window size.
    pub fn with_window_rows(mut self, rows: usize) -> Self {
        self.window_rows = rows;
        self
    }

    /// Sets the retraining rule.
    pub fn with_retrain(mut self, rule: RetrainRule) -> Self {
        self.retrain = rule;
        self
    }
}

/// The metric families a monitor exports (Prometheus text format via any [`Registry`]).
#[derive(Debug, Clone)]
struct Metrics {
    score: GaugeVec,
    drifted: GaugeVec,
    share: GaugeVec,
    dataset: GaugeVec,
    accuracy: GaugeVec,
    windows: IntCounterVec,
    retrains: IntCounterVec,
}

/// Names of the exported metrics, for dashboards and alerts.
pub mod metric_names {
    /// Gauge `{model, column, test}`: the column's latest score (p-value or distance).
    pub const SCORE: &str = "mlops_drift_score";
    /// Gauge `{model, column}`: 1 when the column drifted in the latest window.
    pub const COLUMN_DRIFTED: &str = "mlops_drift_column_drifted";
    /// Gauge `{model}`: share of drifted columns in the latest window.
    pub const SHARE: &str = "mlops_drift_share";
    /// Gauge `{model}`: 1 when the latest window drifted as a dataset.
    pub const DATASET: &str = "mlops_dataset_drift";
    /// Gauge `{model}`: accuracy on the latest window's labelled feedback.
    pub const ACCURACY: &str = "mlops_feedback_accuracy";
    /// Counter `{model}`: windows tested.
    pub const WINDOWS: &str = "mlops_drift_windows_total";
    /// Counter `{model}`: retraining events fired.
    pub const RETRAINS: &str = "mlops_retrain_triggers_total";
}

impl Metrics {
    fn new() -> Result<Self> {
        let err = |e: prometheus::Error| Error::backend("prometheus", e);
        use metric_names as n;
        Ok(Self {
            score: GaugeVec::new(
                Opts::new(
                    n::SCORE,
                    "Latest drift score per column: a p-value (ks, chisquare, z) or a distance",
                ),
                &["model", "column", "test"],
            )
            .map_err(err)?,
            drifted: GaugeVec::new(
                Opts::new(
                    n::COLUMN_DRIFTED,
                    "1 when the column drifted in the latest window",
                ),
                &["model", "column"],
            )
            .map_err(err)?,
            share: GaugeVec::new(
                Opts::new(n::SHARE, "Share of drifted columns in the latest window"),
                &["model"],
            )
            .map_err(err)?,
            dataset: GaugeVec::new(
                Opts::new(n::DATASET, "1 when the latest window drifted as a dataset"),
                &["model"],
            )
            .map_err(err)?,
            accuracy: GaugeVec::new(
                Opts::new(
                    n::ACCURACY,
                    "Accuracy on the latest window's labelled feedback",
                ),
                &["model"],
            )
            .map_err(err)?,
            windows: IntCounterVec::new(
                Opts::new(n::WINDOWS, "Windows tested for drift"),
                &["model"],
            )
            .map_err(err)?,
            retrains: IntCounterVec::new(
                Opts::new(
                    n::RETRAINS,
                    "Retraining events fired by the retraining rule",
                ),
                &["model"],
            )
            .map_err(err)?,
        })
    }
}

#[derive(Debug, Default)]
struct Window {
    batches: Vec<RecordBatch>,
    rows: usize,
    correct: u64,
    labelled: u64,
    index: u64,
    breaking: u32,
}

type Listener = Box<dyn Fn(&RetrainEvent) + Send + Sync>;

/// Watches one model's served inputs in tumbling windows of rows.
///
/// Each full window is tested against the reference profile (the one stored beside the model
/// version, see [`crate::profiles`]); the result updates the gauges, is kept as
/// [`latest`](Self::latest), and is checked against the [`RetrainRule`]; a firing rule calls
/// every listener and queues a [`RetrainEvent`] for [`take_events`](Self::take_events).
/// The test runs on the thread whose `observe` filled the window: servers call the hook off
/// their request path.
pub struct DriftMonitor {
    model: String,
    profile: Arc<ReferenceProfile>,
    detector: StatDetector,
    options: MonitorOptions,
    window: Mutex<Window>,
    latest: RwLock<Option<WindowResult>>,
    events: Mutex<Vec<RetrainEvent>>,
    listeners: RwLock<Vec<Listener>>,
    metrics: Metrics,
}

impl std::fmt::Debug for DriftMonitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DriftMonitor")
            .field("model", &self.model)
            .field("columns", &self.profile.columns.len())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl DriftMonitor {
    /// A monitor of `model` against `profile`.
    pub fn new(
        model: impl Into<String>,
        profile: Arc<ReferenceProfile>,
        options: MonitorOptions,
    ) -> Result<Self> {
        if options.window_rows == 0 {
            return Err(Error::invalid("window_rows", "must be at least 1"));
        }
        if options.retrain.consecutive_windows == 0 {
            return Err(Error::invalid("consecutive_windows", "must be at least 1"));
        }
        Ok(Self {
            model: model.into(),
            profile,
            detector: StatDetector::new(),
            options,
            window: Mutex::new(Window::default()),
            latest: RwLock::new(None),
            events: Mutex::new(Vec::new()),
            listeners: RwLock::new(Vec::new()),
            metrics: Metrics::new()?,
        })
    }

    /// Registers the monitor's metrics (see [`metric_names`]) in `registry`, beside the
    /// server's, so one `/metrics` endpoint exports both.
    pub fn register(&self, registry: &Registry) -> Result<()> {
        let m = &self.metrics;
        let collectors: [Box<dyn prometheus::core::Collector>; 7] = [
            Box::new(m.score.clone()),
            Box::new(m.drifted.clone()),
            Box::new(m.share.clone()),
            Box::new(m.dataset.clone()),
            Box::new(m.accuracy.clone()),
            Box::new(m.windows.clone()),
            Box::new(m.retrains.clone()),
        ];
        for c in collectors {
            registry.register(c).map_err(|e| {
                Error::invalid("metrics registry", "cannot register the drift metrics")
                    .with_source(e)
            })?;
        }
        Ok(())
    }

    /// Calls `f` with every retraining event from now on.
    pub fn on_retrain(&self, f: impl Fn(&RetrainEvent) + Send + Sync + 'static) {
        self.listeners
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Box::new(f));
    }

    /// Retraining events fired since the last call.
    pub fn take_events(&self) -> Vec<RetrainEvent> {
        std::mem::take(&mut *self.events.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The latest full window's result.
    pub fn latest(&self) -> Option<WindowResult> {
        self.latest
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Records labelled feedback for the current window: `correct` of `total` predictions were
    /// right.
    pub fn record_feedback(&self, correct: u64, total: u64) {
        let mut w = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        w.correct += correct.min(total);
        w.labelled += total;
    }

    /// Adds served inputs; returns the results of every window they completed.
    pub fn observe_batch(&self, batch: &RecordBatch) -> Result<Vec<WindowResult>> {
        let mut done = Vec::new();
        let mut offset = 0;
        while offset < batch.num_rows() {
            let full = {
                let mut w = self.window.lock().unwrap_or_else(PoisonError::into_inner);
                let take = (self.options.window_rows - w.rows).min(batch.num_rows() - offset);
                w.batches.push(batch.slice(offset, take));
                w.rows += take;
                offset += take;
                if w.rows >= self.options.window_rows {
                    let index = w.index;
                    w.index += 1;
                    let full = Window {
                        batches: std::mem::take(&mut w.batches),
                        rows: std::mem::take(&mut w.rows),
                        correct: std::mem::take(&mut w.correct),
                        labelled: std::mem::take(&mut w.labelled),
                        index,
                        breaking: w.breaking,
                    };
                    Some(full)
                } else {
                    None
                }
            };
            if let Some(full) = full {
                done.push(self.close(full)?);
            }
        }
        Ok(done)
    }

    fn close(&self, w: Window) -> Result<WindowResult> {
        let report = self
            .detector
            .detect(&self.profile, &w.batches, &self.options.detect)?;
        let accuracy = (w.labelled > 0).then(|| w.correct as f64 / w.labelled as f64);
        let m = &self.metrics;
        for c in &report.columns {
            m.score
                .with_label_values(&[self.model.as_str(), c.column.as_str(), c.test.as_str()])
                .set(c.score);
            m.drifted
                .with_label_values(&[self.model.as_str(), c.column.as_str()])
                .set(if c.drifted { 1.0 } else { 0.0 });
        }
        m.share
            .with_label_values(&[self.model.as_str()])
            .set(report.share_drifted);
        m.dataset
            .with_label_values(&[self.model.as_str()])
            .set(if report.dataset_drift { 1.0 } else { 0.0 });
        if let Some(a) = accuracy {
            m.accuracy.with_label_values(&[self.model.as_str()]).set(a);
        }
        m.windows.with_label_values(&[self.model.as_str()]).inc();

        let rule = &self.options.retrain;
        let reasons = rule.reasons(&report, accuracy);
        let accuracy_drop = rule.accuracy_drop(accuracy);
        // Count consecutive breaking windows under the lock the next window reads.
        let breaking = {
            let mut cur = self.window.lock().unwrap_or_else(PoisonError::into_inner);
            cur.breaking = if reasons.is_empty() {
                0
            } else {
                w.breaking + 1
            };
            cur.breaking
        };
        let retrain =
            (!reasons.is_empty() && breaking >= rule.consecutive_windows).then(|| RetrainEvent {
                model: self.model.clone(),
                window: w.index,
                drift_share: report.share_drifted,
                accuracy_drop,
                reasons,
                at_ms: mlops_core::time::now_ms(),
            });
        if let Some(event) = &retrain {
            m.retrains.with_label_values(&[self.model.as_str()]).inc();
            tracing::info!(model = %self.model, window = w.index, reasons = ?event.reasons, "retraining triggered");
            self.events
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(event.clone());
            for l in self
                .listeners
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
            {
                l(event);
            }
        }
        let result = WindowResult {
            window: w.index,
            rows: w.rows as u64,
            report,
            accuracy,
            retrain,
        };
        *self.latest.write().unwrap_or_else(PoisonError::into_inner) = Some(result.clone());
        Ok(result)
    }
}

impl InferenceObserver for DriftMonitor {
    fn observe(&self, model: &str, _version: Option<Version>, inputs: &RecordBatch) {
        if model != self.model {
            return;
        }
        if let Err(e) = self.observe_batch(inputs) {
            tracing::warn!(model, error = %e, "drift monitor could not test a window");
        }
    }
}

/// Renders `registry` in the Prometheus text format 0.0.4.
pub fn render(registry: &Registry) -> Result<String> {
    use prometheus::Encoder;
    let mut buf = Vec::new();
    prometheus::TextEncoder::new()
        .encode(&registry.gather(), &mut buf)
        .map_err(|e| Error::backend("prometheus", e))?;
    String::from_utf8(buf).map_err(|e| Error::backend("prometheus", e))
}

/// A Grafana dashboard (JSON model) for the monitor's gauges and the server's request metrics;
/// import it in Grafana with a Prometheus data source.
pub const GRAFANA_DASHBOARD: &str = include_str!("../grafana/mlops-dashboard.json");
