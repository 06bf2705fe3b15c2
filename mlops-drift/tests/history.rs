#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Drift reports logged into a tracker and read back over time.

use std::sync::Arc;

use arrow_array::{Float64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use mlops_core::drift::{DetectOptions, DriftDetector, ProfileOptions};
use mlops_core::{ModelName, Tracker, Version};
use mlops_drift::{Report, StatDetector, history};
use mlops_storage::MemoryTracker;

fn batch(shift: f64) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("x", DataType::Float64, false),
        Field::new("odd name/%", DataType::Float64, false),
    ]));
    let x = Float64Array::from_iter_values((0..400).map(|i| f64::from(i % 50) + shift));
    let y = Float64Array::from_iter_values((0..400).map(|i| f64::from(i % 7)));
    RecordBatch::try_new(schema, vec![Arc::new(x), Arc::new(y)]).unwrap()
}

fn report(shift: f64) -> Report {
    let d = StatDetector::new();
    let profile = d
        .profile(&[batch(0.0)], &ProfileOptions::default())
        .unwrap();
    let current = [batch(shift)];
    let drift = d
        .detect(&profile, &current, &DetectOptions::default())
        .unwrap();
    Report::new(
        &drift,
        &profile,
        &current,
        "train@1",
        format!("prod+{shift}"),
    )
    .unwrap()
}

#[tokio::test]
async fn reports_are_listed_oldest_first_and_read_back_whole() {
    let tracker = MemoryTracker::new();
    assert!(
        history::logged_reports(&tracker, None)
            .await
            .unwrap()
            .is_empty()
    );
    let churn = ModelName::new("churn").unwrap();
    let other = ModelName::new("other").unwrap();
    let v1 = Version::new(1).unwrap();
    let calm = history::log_report(&tracker, &report(0.0), Some((&churn, v1)))
        .await
        .unwrap();
    let shifted = report(30.0);
    let drifted = history::log_report(&tracker, &shifted, Some((&churn, Version::new(2).unwrap())))
        .await
        .unwrap();
    history::log_report(&tracker, &report(0.0), Some((&other, v1)))
        .await
        .unwrap();
    history::log_report(&tracker, &report(0.0), None)
        .await
        .unwrap();

    let all = history::logged_reports(&tracker, None).await.unwrap();
    assert_eq!(all.len(), 4);
    let about_churn = history::logged_reports(&tracker, Some(&churn))
        .await
        .unwrap();
    let runs: Vec<_> = about_churn.iter().map(|r| r.run_id.clone()).collect();
    assert_eq!(runs.len(), 2);
    assert!(runs.contains(&calm) && runs.contains(&drifted));
    let hot = about_churn.iter().find(|r| r.run_id == drifted).unwrap();
    assert!(hot.dataset_drift);
    assert_eq!(hot.version, Some(2));
    assert_eq!(hot.current, "prod+30");
    assert!(hot.share_drifted > 0.0);
    assert!(hot.scores.contains_key("x"));
    assert!(
        hot.scores.contains_key("odd name__"),
        "{:?}",
        hot.scores.keys()
    );

    assert_eq!(
        history::load_report(&tracker, &drifted).await.unwrap(),
        shifted
    );
    let html = tracker
        .get_artifact(&drifted, &history::REPORT_HTML.parse().unwrap())
        .await
        .unwrap();
    assert!(std::str::from_utf8(&html).unwrap().contains("<html"));
    let run = tracker.get_run(&drifted).await.unwrap();
    assert_eq!(run.info.status.as_str(), "FINISHED");
}
