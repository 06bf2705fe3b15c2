//! `mlops explain`: a model (a registered version or a model directory) assessed on labelled
//! data — permutation importance, KernelSHAP on request, and group fairness when sensitive
//! columns are declared (on the call or in the dataset's metadata) — as text, JSON, tags or
//! the HTML model report.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use mlops::serve::ModelServer;
use mlops::steps::assess::{AssessParams, Findings, ModelReport};
use mlops::storage::{Artifacts, Datasets, StoreRegistry};
use mlops::{Error, ModelName, ModelUri, Result, Store, Version};

use crate::output::print_json;

/// `mlops explain` arguments.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The model: a registered version (models:/NAME/3, models:/NAME@ALIAS) or a model
    /// directory (what `mlops train --output` writes)
    model: String,
    /// The labelled data: a Parquet file or a stored dataset (NAME or NAME@VERSION) with the
    /// model's inputs and the target column
    data: String,
    /// The target column
    #[arg(long)]
    target: String,
    #[command(flatten)]
    groups: GroupArgs,
    /// Bootstrap resamples for intervals on the disparities (0: none)
    #[arg(long, default_value_t = 200)]
    bootstrap: usize,
    /// Permutation-importance repeats per column (0: none)
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Rows each importance repeat scores
    #[arg(long, default_value_t = 10_000)]
    max_samples: usize,
    /// Explain this many sampled rows with KernelSHAP (inputs of any type; 50 background rows)
    #[arg(long, default_value_t = 0)]
    shap: usize,
    /// Seed of the shuffles, resamples and samples
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Write the HTML model report here
    #[arg(long)]
    html: Option<PathBuf>,
    /// Print the findings as JSON
    #[arg(long)]
    json: bool,
    /// Print the explain.* and fairness.* version tags as JSON
    #[arg(long, conflicts_with = "json")]
    tags: bool,
}

/// The fairness flags `mlops explain` and `mlops train` share.
#[derive(Debug, Clone, Args)]
pub struct GroupArgs {
    /// Sensitive columns for group fairness (comma-separated; several give intersectional
    /// groups; default: the dataset's `sensitive` metadata)
    #[arg(long, value_delimiter = ',')]
    pub sensitive: Option<Vec<String>>,
    /// AIF360's privileged group COLUMN=VALUE[,COLUMN=VALUE] (default: the dataset's
    /// `privileged` metadata)
    #[arg(long)]
    pub privileged: Option<String>,
    /// The positive label of a binary target (default: true for booleans, else 1)
    #[arg(long)]
    pub pos_label: Option<String>,
}

impl GroupArgs {
    /// Assessment parameters with these groups and the defaults otherwise.
    pub fn params(&self) -> AssessParams {
        AssessParams {
            sensitive: self.sensitive.clone(),
            privileged: self.privileged.clone(),
            pos_label: self.pos_label.clone(),
            ..Default::default()
        }
    }
}

/// The model `spec` names, loaded through a (network-less) model server.
async fn load(spec: &str, store: Arc<dyn Store>) -> Result<Arc<dyn mlops::Model>> {
    let server = ModelServer::builder("mlops")
        .loader(Arc::new(mlops::train::CandleLoader::new()))
        .registry(
            Arc::new(StoreRegistry::new(store.clone())),
            Arc::new(Artifacts::new(store)),
        )
        .build();
    let name: ModelName;
    if spec.starts_with("models:/") {
        let uri: ModelUri = spec.parse()?;
        name = uri.model_name().cloned().ok_or_else(|| {
            Error::invalid("model", format!("{spec} is not a registered model URI"))
        })?;
        mlops::Server::load(&server, &name, mlops::serve::LoadOptions::from_uri(uri)).await?;
    } else {
        name = "model".parse()?;
        server.load_dir(&name, Version::FIRST, Path::new(spec))?;
    }
    Ok(server.resolve(&name, None)?.model().clone())
}

pub async fn explain(args: &ExplainArgs, store: Arc<dyn Store>) -> Result<bool> {
    let datasets = Datasets::new(store.clone());
    let (batch, metadata) = crate::datasets::read_table(&args.data, &datasets).await?;
    let model = load(&args.model, store).await?;
    let params = AssessParams {
        bootstrap: Some(args.bootstrap),
        importance_repeats: Some(args.repeats),
        importance_rows: Some(args.max_samples),
        shap_rows: Some(args.shap),
        seed: Some(args.seed),
        ..args.groups.params()
    };
    let assessor = params.assessor(&metadata)?;
    let target = args.target.clone();
    let findings = tokio::task::spawn_blocking(move || assessor.findings(&model, &batch, &target))
        .await
        .map_err(|e| Error::backend("assessment thread", e))??;
    if let Some(path) = &args.html {
        let title = format!("{} on {}", args.model, args.data);
        std::fs::write(path, ModelReport::new(&findings, title).to_html())
            .map_err(|e| Error::io("report", "write", path, e))?;
    }
    if args.json {
        print_json(&findings)?;
    } else if args.tags {
        print_json(&findings.tags())?;
    } else {
        print_text(&findings);
        if let Some(path) = &args.html {
            println!("\nreport: {}", path.display());
        }
    }
    Ok(true)
}

fn print_text(f: &Findings) {
    println!("{} of {:?} on {} rows", f.task, f.target, f.rows);
    if let Some(imp) = &f.importance {
        println!(
            "\npermutation importance (drop in {}, baseline {:.4})",
            f.scorer, imp.baseline
        );
        println!("{:<28} {:>10} {:>10}", "column", "mean", "std");
        for r in imp.ranked() {
            println!("{:<28} {:>10.4} {:>10.4}", r.feature, r.mean, r.std);
        }
    }
    if let Some(shap) = &f.shap {
        println!(
            "\nSHAP (mean |value| of {} over {} rows, {} background rows; additivity error {:.2e})",
            shap.output,
            shap.explanation.values.len(),
            shap.background,
            shap.explanation.additivity_error
        );
        for (feature, v) in &shap.mean_abs {
            println!("{feature:<28} {v:>10.4}");
        }
    }
    if let Some(report) = &f.fairness {
        println!(
            "\nfairness by {}",
            report.frame.sensitive_columns.join(", ")
        );
        for d in &report.disparities {
            let interval = d
                .interval
                .map(|i| format!("  [{:.4}, {:.4}]", i.low, i.high))
                .unwrap_or_default();
            println!("{:<48} {:>10.4}{interval}", d.tag_key(), d.value);
        }
    }
}
