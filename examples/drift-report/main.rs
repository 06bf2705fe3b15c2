//! A drift check with an HTML report: a reference profile of training data (stored as JSON, so
//! the raw data is not needed again), today's data tested against it with Evidently's rules,
//! and a standalone report page.
//!
//! ```text
//! cargo run --example drift-report                 # writes drift-out/drift.html
//! cargo run --example drift-report -- other-dir
//! ```

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray};
use mlops::drift::{
    DetectOptions, DriftDetector, ProfileOptions, ReferenceProfile, Report, StatDetector,
};

/// Customers: tenure in months and a plan; `shift` moves tenure, `pro` is the share of pro plans.
fn customers(n: usize, shift: f64, pro: f64, seed: u64) -> anyhow::Result<RecordBatch> {
    let mut s = seed;
    let mut next = move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let tenure: Vec<f64> = (0..n).map(|_| 24.0 * next() + shift).collect();
    let plan: Vec<&str> = (0..n)
        .map(|_| if next() < pro { "pro" } else { "basic" })
        .collect();
    Ok(RecordBatch::try_from_iter([
        ("tenure", Arc::new(Float64Array::from(tenure)) as ArrayRef),
        ("plan", Arc::new(StringArray::from(plan))),
    ])?)
}

fn main() -> anyhow::Result<()> {
    let out = std::path::PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "drift-out".into()),
    );
    std::fs::create_dir_all(&out)?;
    let detector = StatDetector::new();

    // Training time: keep a profile, not the data.
    let training = customers(5_000, 0.0, 0.3, 1)?;
    let profile = detector.profile(&[training], &ProfileOptions::default())?;
    std::fs::write(out.join("profile.json"), serde_json::to_vec(&profile)?)?;

    // Later: today's data against the stored profile.
    let profile: ReferenceProfile =
        serde_json::from_slice(&std::fs::read(out.join("profile.json"))?)?;
    let today = customers(2_000, 6.0, 0.5, 2)?;
    let drift = detector.detect(
        &profile,
        std::slice::from_ref(&today),
        &DetectOptions::default(),
    )?;
    for c in &drift.columns {
        println!(
            "{:<8} {:<12} score {:.4}  threshold {:<5} drifted: {}",
            c.column, c.test, c.score, c.threshold, c.drifted
        );
    }
    println!(
        "dataset drift: {} ({} of {} columns)",
        drift.dataset_drift,
        drift.drifted_columns,
        drift.columns_judged()
    );
    let report = Report::new(&drift, &profile, &[today], "training", "today")?;
    std::fs::write(out.join("drift.html"), report.to_html())?;
    std::fs::write(out.join("drift.json"), report.to_json()?)?;
    println!("wrote {}", out.join("drift.html").display());
    Ok(())
}
