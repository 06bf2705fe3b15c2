//! `mlops fairness`: group-fairness metrics (fairlearn's and AIF360's) of predictions in a
//! Parquet file or a stored dataset version.

use clap::Args;
use mlops::Result;
use mlops::fairness::{
    AssessOptions, BinaryOutcomes, Bootstrap, FairnessReport, Groups, Privileged, assess,
};
use mlops::storage::Datasets;

use crate::output::print_json;

/// `mlops fairness` arguments.
#[derive(Debug, Args)]
pub struct FairnessArgs {
    /// The data: a Parquet file or a stored dataset (NAME or NAME@VERSION) with a label column,
    /// a prediction column and the sensitive columns
    data: String,
    /// The true label column (integers or booleans)
    #[arg(long)]
    target: String,
    /// The predicted label column (integers or booleans)
    #[arg(long)]
    prediction: String,
    /// Sensitive columns (comma-separated; several give intersectional groups)
    #[arg(long, value_delimiter = ',', required = true)]
    sensitive: Vec<String>,
    /// The privileged group for AIF360's signed metrics: COLUMN=VALUE[,COLUMN=VALUE]
    #[arg(long)]
    privileged: Option<String>,
    /// The positive label
    #[arg(long, default_value_t = 1)]
    pos_label: i64,
    /// A column of instance weights
    #[arg(long)]
    weights: Option<String>,
    /// Bootstrap resamples for intervals on every disparity (0: none)
    #[arg(long, default_value_t = 0)]
    bootstrap: usize,
    /// Coverage of the bootstrap intervals
    #[arg(long, default_value_t = 0.95)]
    confidence: f64,
    /// Seed of the bootstrap resamples
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print the full report as JSON
    #[arg(long)]
    json: bool,
    /// Print the fairness.* version tags as JSON (what the fairness policy rule reads)
    #[arg(long, conflicts_with = "json")]
    tags: bool,
}

pub async fn fairness(args: &FairnessArgs, datasets: &Datasets) -> Result<bool> {
    let (batch, _) = crate::datasets::read_table(&args.data, datasets).await?;
    let mut outcomes =
        BinaryOutcomes::from_batch(&batch, &args.target, &args.prediction, args.pos_label)?;
    if let Some(column) = &args.weights {
        outcomes = outcomes.with_weights(mlops::fairness::weight_column(&batch, column)?)?;
    }
    let sensitive: Vec<&str> = args.sensitive.iter().map(String::as_str).collect();
    let groups = Groups::from_batch(&batch, &sensitive)?;
    let options = AssessOptions {
        privileged: args
            .privileged
            .as_deref()
            .map(Privileged::parse)
            .transpose()?,
        bootstrap: (args.bootstrap > 0).then_some(Bootstrap {
            resamples: args.bootstrap,
            confidence: args.confidence,
            seed: args.seed,
        }),
    };
    let report = assess(&outcomes, &groups, &options)?;
    if args.json {
        print_json(&report)?;
    } else if args.tags {
        print_json(&report.tags())?;
    } else {
        print_text(&report);
    }
    Ok(true)
}

fn print_text(report: &FairnessReport) {
    let frame = &report.frame;
    println!(
        "{:<28} {:>8} {:>10} {:>10} {:>10} {:>10}",
        frame.sensitive_columns.join(", "),
        "rows",
        "selection",
        "TPR",
        "FPR",
        "accuracy"
    );
    let rows = frame
        .by_group
        .iter()
        .map(|g| (g.group.to_string(), &g.rates))
        .chain(std::iter::once(("(all)".to_owned(), &frame.overall)));
    for (name, r) in rows {
        println!(
            "{name:<28} {:>8} {:>10.4} {:>10.4} {:>10.4} {:>10.4}",
            r.count, r.selection_rate, r.true_positive_rate, r.false_positive_rate, r.accuracy
        );
    }
    for empty in &frame.empty_cells {
        println!("{:<28} {:>8}", empty.to_string(), "no rows");
    }
    println!();
    if let Some(two) = &report.two_group {
        println!(
            "AIF360: privileged {} ({} rows) against the other {} rows",
            two.privileged_group, two.privileged.count, two.unprivileged.count
        );
    }
    for d in &report.disparities {
        let interval = d
            .interval
            .map(|i| {
                format!(
                    "  [{:.4}, {:.4}] at {:.0}%",
                    i.low,
                    i.high,
                    i.confidence * 100.0
                )
            })
            .unwrap_or_default();
        println!("{:<48} {:>10.4}{interval}", d.tag_key(), d.value);
    }
}
