//! A two-step pipeline with caching, as `dvc repro` does it: a step re-runs only when its
//! parameters, code version or inputs changed; a re-run whose output is unchanged leaves its
//! dependants cached.
//!
//! ```text
//! cargo run --example cached-pipeline
//! ```

use std::sync::Arc;

use mlops::pipeline::{BlockingStep, Output, Outputs, Pipeline, PipelineReport, Runner, StepDef};
use mlops::storage::MemoryStore;

/// `clean`: the rows that pass a threshold (a parameter); `stats`: their mean.
fn pipeline(threshold: f64, stats_version: &str) -> Pipeline {
    let clean = BlockingStep::new(|ctx| {
        let threshold: f64 = ctx.require("threshold")?;
        let rows: Vec<f64> = (0..1_000)
            .map(f64::from)
            .filter(|x| *x >= threshold)
            .collect();
        Ok(Outputs::from([(
            "rows".into(),
            Output::value(serde_json::json!(rows)),
        )]))
    });
    let stats = BlockingStep::new(|ctx| {
        let rows: Vec<f64> = ctx.input("rows")?.get()?;
        let mean = rows.iter().sum::<f64>() / rows.len().max(1) as f64;
        Ok(Outputs::from([(
            "mean".into(),
            Output::value(serde_json::json!(mean)),
        )]))
    });
    Pipeline::new("example")
        .step(StepDef::new("clean", clean).params(serde_json::json!({ "threshold": threshold })))
        .step(
            StepDef::new("stats", stats)
                .input("rows", "clean", "rows")
                .code_version(stats_version),
        )
}

fn show(label: &str, report: &PipelineReport) {
    let steps: Vec<String> = report
        .steps
        .iter()
        .map(|s| format!("{} {}", s.name, s.status.as_str()))
        .collect();
    println!("{label:<32} {}", steps.join(", "));
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let runner = Runner::new(Arc::new(MemoryStore::new()));
    show(
        "first run:",
        &runner.run(&pipeline(10.0, "1")).await?.into_result()?,
    );
    show(
        "nothing changed:",
        &runner.run(&pipeline(10.0, "1")).await?.into_result()?,
    );
    show(
        "new threshold:",
        &runner.run(&pipeline(500.0, "1")).await?.into_result()?,
    );
    show(
        "new code for stats:",
        &runner.run(&pipeline(500.0, "2")).await?.into_result()?,
    );
    let last = runner.run(&pipeline(500.0, "2")).await?.into_result()?;
    show("again:", &last);
    println!(
        "mean: {}",
        last.step("stats")
            .map_or(serde_json::Value::Null, |s| s.outputs["mean"].value.clone())
    );
    Ok(())
}
