#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The online monitor: windows, gauges in Prometheus text format (parsed back), the retraining
//! rule (drift share and accuracy drop, consecutive windows), the observer hook, the dashboard.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray};
use arrow_schema::{Field, Schema};
use mlops_core::drift::{DriftDetector, InferenceObserver, ProfileOptions};
use mlops_drift::monitor::{self, GRAFANA_DASHBOARD, metric_names};
use mlops_drift::{DriftMonitor, MonitorOptions, RetrainRule, StatDetector};

fn batch(shift: f64, from: usize, n: usize) -> RecordBatch {
    let x: ArrayRef = Arc::new(Float64Array::from_iter_values(
        (from..from + n).map(|i| ((i * 7919) % 1000) as f64 / 100.0 + shift),
    ));
    let y: ArrayRef = Arc::new(Float64Array::from_iter_values(
        (from..from + n).map(|i| ((i * 104_729) % 997) as f64),
    ));
    let plan: ArrayRef = Arc::new(StringArray::from_iter_values(
        (from..from + n).map(|i| ["a", "b", "c"][i % 3]),
    ));
    let schema = Arc::new(Schema::new(vec![
        Field::new("x", x.data_type().clone(), false),
        Field::new("y", y.data_type().clone(), false),
        Field::new("plan", plan.data_type().clone(), false),
    ]));
    RecordBatch::try_new(schema, vec![x, y, plan]).unwrap()
}

fn monitor(rule: RetrainRule) -> DriftMonitor {
    let profile = StatDetector::new()
        .profile(&[batch(0.0, 0, 3000)], &ProfileOptions::default())
        .unwrap();
    DriftMonitor::new(
        "churn",
        Arc::new(profile),
        MonitorOptions::default()
            .with_window_rows(500)
            .with_retrain(rule),
    )
    .unwrap()
}

#[test]
fn windows_fill_across_batches_and_export_gauges() {
    let m = monitor(RetrainRule::default());
    let registry = prometheus::Registry::new();
    m.register(&registry).unwrap();
    assert!(m.observe_batch(&batch(0.0, 0, 300)).unwrap().is_empty());
    let done = m.observe_batch(&batch(0.0, 300, 900)).unwrap();
    assert_eq!(
        done.iter().map(|w| (w.window, w.rows)).collect::<Vec<_>>(),
        vec![(0, 500), (1, 500)]
    );
    assert!(
        done.iter()
            .all(|w| !w.report.dataset_drift && w.retrain.is_none())
    );
    let text = monitor::render(&registry).unwrap();
    assert!(text.contains("# TYPE mlops_drift_score gauge"), "{text}");
    assert!(
        text.contains("mlops_drift_windows_total{model=\"churn\"} 2"),
        "{text}"
    );
    // Every sample line parses as name{labels} value.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (_, value) = line.rsplit_once(' ').unwrap();
        value.parse::<f64>().unwrap();
    }
    for name in [
        metric_names::SCORE,
        metric_names::SHARE,
        metric_names::DATASET,
        metric_names::COLUMN_DRIFTED,
        metric_names::WINDOWS,
    ] {
        assert!(text.contains(name), "{name}");
    }
}

#[test]
fn drift_fires_the_retraining_rule_and_listeners() {
    let m = monitor(RetrainRule::default());
    let fired = Arc::new(AtomicUsize::new(0));
    let f = Arc::clone(&fired);
    m.on_retrain(move |e| {
        assert_eq!(e.model, "churn");
        f.fetch_add(1, Ordering::SeqCst);
    });
    let done = m.observe_batch(&batch(3.0, 0, 500)).unwrap();
    let event = done[0]
        .retrain
        .clone()
        .expect("x drifted: 1 of 3 columns > 0.3");
    assert!(
        event.reasons[0].starts_with("drift share 0.333 > 0.3"),
        "{:?}",
        event.reasons
    );
    assert_eq!(fired.load(Ordering::SeqCst), 1);
    assert_eq!(m.take_events(), vec![event]);
    assert!(m.take_events().is_empty());
    assert_eq!(m.latest().unwrap().window, 0);
}

#[test]
fn accuracy_drop_and_consecutive_windows() {
    let rule = RetrainRule {
        baseline_accuracy: Some(0.9),
        consecutive_windows: 2,
        max_drift_share: 1.0,
        ..RetrainRule::default()
    };
    let m = monitor(rule);
    m.record_feedback(80, 100); // 0.80: a drop of 0.10 > 0.05
    let w0 = m.observe_batch(&batch(0.0, 0, 500)).unwrap().remove(0);
    assert_eq!(w0.accuracy, Some(0.8));
    assert!(w0.retrain.is_none(), "needs two windows in a row");
    m.record_feedback(84, 100);
    let w1 = m.observe_batch(&batch(0.0, 500, 500)).unwrap().remove(0);
    let e = w1.retrain.unwrap();
    assert!((e.accuracy_drop.unwrap() - 0.06).abs() < 1e-12);
    assert!(
        e.reasons[0].starts_with("accuracy drop 0.060 > 0.05"),
        "{:?}",
        e.reasons
    );
    m.record_feedback(89, 100);
    assert!(
        m.observe_batch(&batch(0.0, 1000, 500)).unwrap()[0]
            .retrain
            .is_none()
    );
}

#[test]
fn the_observer_hook_feeds_only_its_model() {
    let m = Arc::new(monitor(RetrainRule::default()));
    let hook: Arc<dyn InferenceObserver> = m.clone();
    hook.observe("other", None, &batch(0.0, 0, 600));
    assert!(m.latest().is_none());
    hook.observe("churn", None, &batch(0.0, 0, 600));
    assert_eq!(m.latest().unwrap().window, 0);
    // A window the test cannot read is logged, never a panic.
    let bad = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new(
            "z",
            arrow_schema::DataType::Float64,
            false,
        )])),
        vec![Arc::new(Float64Array::from(vec![1.0; 600]))],
    )
    .unwrap();
    hook.observe("churn", None, &bad);
    assert!(
        DriftMonitor::new(
            "m",
            Arc::new(
                StatDetector::new()
                    .profile(&[batch(0.0, 0, 10)], &ProfileOptions::default())
                    .unwrap()
            ),
            MonitorOptions::default().with_window_rows(0)
        )
        .is_err()
    );
}

#[test]
fn the_dashboard_queries_only_metrics_that_exist() {
    let dash: serde_json::Value = serde_json::from_str(GRAFANA_DASHBOARD).unwrap();
    let served = [
        "mlops_inference_requests_total",
        "mlops_inference_request_duration_seconds_bucket",
        "mlops_inference_batch_size_bucket",
        "mlops_inference_queue_depth",
    ];
    let ours = [
        metric_names::SCORE,
        metric_names::COLUMN_DRIFTED,
        metric_names::SHARE,
        metric_names::DATASET,
        metric_names::ACCURACY,
        metric_names::WINDOWS,
        metric_names::RETRAINS,
    ];
    let mut used = 0;
    for p in dash["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().unwrap();
            let names: Vec<&str> = expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| w.starts_with("mlops_"))
                .collect();
            assert!(!names.is_empty(), "{expr}");
            for n in names {
                assert!(
                    ours.contains(&n) || served.contains(&n),
                    "unknown metric {n} in {expr}"
                );
                used += 1;
            }
        }
    }
    assert!(used >= 12);
    assert_eq!(dash["uid"], "mlops-drift-serving");
}

/// The official Prometheus Python client parses what the monitor exports.
#[test]
fn the_prometheus_python_client_parses_the_gauges() {
    let python = mlops_testkit::python::interpreter("prometheus-client");
    let m = monitor(RetrainRule::default());
    let registry = prometheus::Registry::new();
    m.register(&registry).unwrap();
    m.observe_batch(&batch(3.0, 0, 1000)).unwrap();
    let text = monitor::render(&registry).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics.txt");
    std::fs::write(&path, &text).unwrap();
    let code = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for fam in text_string_to_metric_families(open(sys.argv[1]).read()):
    for s in fam.samples:
        out.setdefault(fam.name + ":" + fam.type, []).append([s.name, s.labels, s.value])
print(json.dumps(out))
"#;
    let out = std::process::Command::new(python)
        .args(["-c", code, path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let scores = parsed["mlops_drift_score:gauge"].as_array().unwrap();
    assert_eq!(scores.len(), 3, "{parsed}");
    let x = scores.iter().find(|s| s[1]["column"] == "x").unwrap();
    assert_eq!(x[1]["model"], "churn");
    assert_eq!(
        x[1]["test"], "wasserstein",
        "3000 reference rows: Evidently picks wasserstein"
    );
    assert_eq!(parsed["mlops_drift_windows:counter"][0][2], 2.0, "{parsed}");
    assert_eq!(parsed["mlops_retrain_triggers:counter"][0][2], 2.0);
    assert_eq!(
        parsed["mlops_drift_share:gauge"][0][2].as_f64().unwrap(),
        1.0 / 3.0
    );
}
