//! `mlops drift` and `mlops quality`: Evidently-style drift tests and Great-Expectations-style
//! suites on Parquet files or stored dataset versions.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use clap::Args;
use mlops::drift::quality::Suite;
use mlops::drift::{
    ColumnOverride, DetectOptions, DriftDetector, ProfileOptions, ReferenceProfile,
};
use mlops::drift::{Report, StatDetector};
use mlops::storage::Datasets;
use mlops::{Error, Result};

use crate::output::print_json;

/// `mlops drift` arguments.
#[derive(Debug, Args)]
pub struct DriftArgs {
    /// Reference data: a Parquet file, a stored dataset (NAME or NAME@VERSION), or a reference
    /// profile saved with --save-profile (a .json file)
    #[arg(long)]
    reference: String,
    /// Current data: a Parquet file or a stored dataset (NAME or NAME@VERSION)
    #[arg(long)]
    current: String,
    /// Write the JSON report here (- for stdout)
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write the standalone HTML report here
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Use this test for a column: COLUMN=ks|chisquare|z|wasserstein|jensenshannon|psi. Repeatable
    #[arg(long = "test", value_name = "COLUMN=TEST", value_parser = crate::key_value)]
    tests: Vec<(String, String)>,
    /// Use this threshold for a column: COLUMN=0.01. Repeatable
    #[arg(long = "threshold", value_name = "COLUMN=VALUE", value_parser = crate::key_value)]
    thresholds: Vec<(String, String)>,
    /// Dataset drift when at least this share of columns drift
    #[arg(long, default_value_t = 0.5)]
    drift_share: f64,
    /// Only these columns (comma-separated); all testable columns by default
    #[arg(long, value_delimiter = ',')]
    columns: Vec<String>,
    /// Treat these numeric columns as categorical (comma-separated)
    #[arg(long, value_delimiter = ',')]
    categorical: Vec<String>,
    /// Keep at most this many reference values per numerical column in the profile (tests
    /// become approximate)
    #[arg(long)]
    max_values: Option<usize>,
    /// Save the reference profile to this file, to test later data without the reference
    #[arg(long, value_name = "FILE")]
    save_profile: Option<PathBuf>,
    /// Keep the report in the store's tracker (experiment `drift-reports`, shown over time by
    /// `mlops ui`); with a model URI (models:/churn@champion), as a report about that version
    #[arg(long, value_name = "MODEL_URI", num_args = 0..=1, default_missing_value = "")]
    track: Option<String>,
}

/// `mlops quality` arguments.
#[derive(Debug, Args)]
pub struct QualityArgs {
    /// The suite (YAML or JSON)
    #[arg(long)]
    suite: PathBuf,
    /// The data: a Parquet file or a stored dataset (NAME or NAME@VERSION)
    data: String,
    /// Print the full result as JSON
    #[arg(long)]
    json: bool,
}

/// Batches from a Parquet file or a stored dataset version: at least one, so a source without
/// rows is still checked (its columns, its zero rows).
async fn load(spec: &str, datasets: &Datasets) -> Result<Vec<RecordBatch>> {
    if crate::datasets::is_local_file(spec) {
        return crate::datasets::read_parquet(Path::new(spec));
    }
    let (name, at) = crate::datasets::parse_ref(spec)?;
    Ok(datasets.read_all(&name, at).await?.1)
}

fn overrides(args: &DriftArgs) -> Result<BTreeMap<String, ColumnOverride>> {
    let mut out: BTreeMap<String, ColumnOverride> = BTreeMap::new();
    for (col, test) in &args.tests {
        out.entry(col.clone()).or_default().test = Some(test.clone());
    }
    for (col, value) in &args.thresholds {
        let v: f64 = value.parse().map_err(|_| {
            Error::invalid(
                "threshold",
                format!("{col}={value}: {value:?} is not a number"),
            )
        })?;
        out.entry(col.clone()).or_default().threshold = Some(v);
    }
    Ok(out)
}

/// Runs `mlops drift`; Ok(false) when the dataset drifted.
pub async fn drift(args: &DriftArgs, datasets: &Datasets) -> Result<bool> {
    let detector = StatDetector::new();
    let profile: ReferenceProfile = if args.reference.ends_with(".json") {
        let text = std::fs::read_to_string(&args.reference)
            .map_err(|e| Error::io("reference profile", "read", &args.reference, e))?;
        serde_json::from_str(&text).map_err(|e| {
            Error::invalid(
                "reference",
                format!("{} is not a reference profile", args.reference),
            )
            .with_source(e)
        })?
    } else {
        let reference = load(&args.reference, datasets).await?;
        let mut options = ProfileOptions::default();
        options.columns = args.columns.clone();
        options.categorical = args.categorical.clone();
        options.max_values = args.max_values;
        detector.profile(&reference, &options)?
    };
    if let Some(path) = &args.save_profile {
        let text = serde_json::to_vec(&profile).map_err(|e| Error::backend("serde_json", e))?;
        std::fs::write(path, text).map_err(|e| Error::io("profile file", "write", path, e))?;
    }
    let current = load(&args.current, datasets).await?;
    let mut options = DetectOptions::default();
    options.drift_share = args.drift_share;
    options.overrides = overrides(args)?;
    let drift = detector.detect(&profile, &current, &options)?;
    let report = Report::new(&drift, &profile, &current, &args.reference, &args.current)?;
    if let Some(path) = &args.html {
        std::fs::write(path, report.to_html())
            .map_err(|e| Error::io("html report", "write", path, e))?;
    }
    if let Some(uri) = &args.track {
        let run = track(uri, &report, datasets.store().clone()).await?;
        eprintln!(
            "report kept as run {run} in experiment {}",
            mlops::drift::history::EXPERIMENT
        );
    }
    match &args.json {
        Some(p) if p == Path::new("-") => println!("{}", report.to_json()?),
        Some(p) => std::fs::write(p, report.to_json()?)
            .map_err(|e| Error::io("json report", "write", p, e))?,
        None => {}
    }
    if args.json.as_deref() != Some(Path::new("-")) {
        println!(
            "{:<24} {:<12} {:<14} {:>12} {:>10}  drift",
            "column", "type", "test", "score", "threshold"
        );
        for c in &drift.columns {
            println!(
                "{:<24} {:<12} {:<14} {:>12.6} {:>10}  {}{}",
                c.column,
                format!("{:?}", c.kind).to_lowercase(),
                c.test,
                c.score,
                c.threshold,
                if c.drifted { "DRIFT" } else { "-" },
                if c.approximate { " (approximate)" } else { "" }
            );
        }
        for u in &drift.untested {
            println!("{:<24} not tested: {}", u.column, u.reason);
        }
        println!(
            "{}: {} of {} judged columns drifted ({:.1}%, dataset drift at >= {:.1}%)",
            if drift.dataset_drift {
                "DATASET DRIFT"
            } else {
                "no dataset drift"
            },
            drift.drifted_columns,
            drift.columns_judged(),
            drift.share_drifted * 100.0,
            drift.drift_share * 100.0
        );
    }
    Ok(!drift.dataset_drift)
}

/// Runs `mlops quality`; Ok(false) when an expectation failed.
pub async fn quality(args: &QualityArgs, datasets: &Datasets) -> Result<bool> {
    let text = std::fs::read_to_string(&args.suite)
        .map_err(|e| Error::io("quality suite", "read", &args.suite, e))?;
    let suite = Suite::from_yaml(&text)?;
    let data = load(&args.data, datasets).await?;
    let report = suite.validate(&data)?;
    if args.json {
        print_json(&report)?;
    } else {
        for r in &report.results {
            let doc = serde_json::to_value(&r.expectation).unwrap_or_default();
            let field = |k: &str| doc.get(k).and_then(|v| v.as_str()).unwrap_or_default();
            let kind = field("expectation_type");
            let column = match field("column") {
                "" => String::new(),
                c => format!(" [{c}]"),
            };
            println!(
                "{} {kind}{column}: {}",
                if r.success { "PASS" } else { "FAIL" },
                r.result
            );
        }
        println!(
            "{}: {} of {} expectations met",
            if report.success { "ok" } else { "FAILED" },
            report.successful_expectations,
            report.evaluated_expectations
        );
    }
    Ok(report.success)
}

/// Logs `report` into the store's tracker, about the version `uri` resolves to (when given).
async fn track(uri: &str, report: &Report, store: Arc<dyn mlops::Store>) -> Result<mlops::RunId> {
    use mlops::RegistryExt;
    let tracker = mlops::storage::StoreTracker::open(store.clone(), crate::quiet()).await?;
    let version = if uri.is_empty() {
        None
    } else {
        let uri: mlops::ModelUri = uri.parse()?;
        Some(
            mlops::storage::StoreRegistry::new(store)
                .resolve(&uri)
                .await?,
        )
    };
    let run = mlops::drift::history::log_report(
        &tracker,
        report,
        version.as_ref().map(|v| (&v.name, v.version)),
    )
    .await?;
    mlops::Tracker::flush(&tracker).await?;
    Ok(run)
}
