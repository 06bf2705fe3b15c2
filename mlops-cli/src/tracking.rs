//! `mlops experiments …`, `mlops runs …` and `mlops models …` over the tracker and registry kept in
//! the store.

use std::collections::BTreeSet;

use std::sync::Arc;

use clap::Subcommand;
use mlops::registry::SearchRegistryOptions;
use mlops::storage::{Artifacts, StoreRegistry, StoreTracker};

use crate::output::{print_json, when};
use mlops::tracker::{SearchExperimentsOptions, SearchRunsOptions};
use mlops::{
    ExperimentId, Registry, RegistryExt, Result, Run, RunId, Tracker, TrackerExt, ViewType,
};

#[derive(Debug, Subcommand)]
pub enum ExperimentsCommand {
    /// List experiments
    ///
    /// Example: mlops experiments list --all
    List {
        /// Include deleted experiments
        #[arg(long)]
        all: bool,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// Search runs with MLflow's filter grammar
    ///
    /// Example: mlops runs list --experiment churn --filter "metrics.f1 > 0.8" --order-by "metrics.f1 DESC"
    List {
        /// Experiment name or id (repeatable); all experiments when absent
        #[arg(long)]
        experiment: Vec<String>,
        /// Filter, e.g. "metrics.acc > 0.9 AND params.model = 'mlp'"
        #[arg(long)]
        filter: Option<String>,
        /// Order-by item, e.g. "metrics.acc DESC" (repeatable)
        #[arg(long = "order-by")]
        order_by: Vec<String>,
        /// At most this many runs
        #[arg(long, default_value_t = 100)]
        max: usize,
        /// Include deleted runs
        #[arg(long)]
        all: bool,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Show one run: status, params, latest metrics, tags, inputs, artifacts
    ///
    /// Example: mlops runs show 0123456789abcdef0123456789abcdef
    Show {
        /// Run id
        run_id: String,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Compare runs side by side: params and latest metrics
    ///
    /// Example: mlops runs compare <run id> <run id>
    Compare {
        /// Two or more run ids
        #[arg(num_args = 2.., required = true)]
        run_ids: Vec<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// End a run left RUNNING by a process that was killed (SIGKILL, the OOM killer, a lost
    /// node): it keeps what it logged and gets a final status
    ///
    /// Example: mlops runs end 0123456789abcdef0123456789abcdef --status killed
    End {
        /// Run id
        run_id: String,
        /// The final status: killed, failed or finished
        #[arg(long, default_value = "killed")]
        status: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// List registered models with their aliases and latest versions
    ///
    /// Example: mlops models list
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Show a model's versions: stage, aliases, source, lineage
    ///
    /// Example: mlops models show churn
    Show {
        /// Model name
        name: String,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Point an alias at a version (moving it if it pointed elsewhere)
    ///
    /// Example: mlops models alias churn champion 3
    Alias {
        /// Model name
        name: String,
        /// Alias, e.g. champion
        alias: String,
        /// Version number
        version: u64,
    },
    /// Register a model trained elsewhere as a new version: an ONNX file (signature read from
    /// the graph) or an MLflow model directory with an onnx flavor. The files are stored in the
    /// store; where they came from becomes version tags
    ///
    /// Example: mlops models register iris --onnx iris.onnx --tag team=risk
    Register {
        /// Model name (created when new)
        name: String,
        /// An ONNX file (scikit-learn through skl2onnx, torch.onnx.export, …)
        #[arg(
            long,
            value_name = "FILE",
            required_unless_present = "mlflow_model",
            conflicts_with = "mlflow_model"
        )]
        onnx: Option<std::path::PathBuf>,
        /// An MLflow model directory (an MLmodel file) with an onnx flavor
        #[arg(long, value_name = "DIR")]
        mlflow_model: Option<std::path::PathBuf>,
        /// The version's description
        #[arg(long, default_value = "")]
        description: String,
        /// A version tag, KEY=VALUE. Repeatable
        #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = crate::key_value)]
        tags: Vec<(String, String)>,
        /// Print the version as JSON
        #[arg(long)]
        json: bool,
    },
    /// Write a model version in another tool's format: an MLflow model directory (MLmodel and
    /// model.onnx) that MLflow's mlflow.pyfunc.load_model serves, or a bare ONNX file. Candle
    /// models are converted to ONNX (preprocessing included)
    ///
    /// Example: mlops models export models:/churn@champion --out churn-mlflow
    Export {
        /// The model, models:/NAME@ALIAS or models:/NAME/VERSION
        model: String,
        /// Where to write: a new directory (mlflow) or file (onnx)
        #[arg(long)]
        out: std::path::PathBuf,
        /// mlflow or onnx
        #[arg(long, default_value = "mlflow")]
        format: String,
    },
    /// Write a KServe InferenceService (serving.kserve.io/v1beta1, modelFormat onnx for ONNX
    /// models, protocol v2, HTTP and gRPC ports) and the ServingRuntime it names, serving a
    /// model with `mlops serve` in your image
    ///
    /// Example: mlops models kserve models:/churn@champion --image ghcr.io/acme/mlops:1.0 --store-url s3://models/prod --canary 10
    Kserve {
        /// The model, models:/NAME@ALIAS or models:/NAME/VERSION (checked against the registry)
        model: String,
        /// Image whose entrypoint is the mlops binary
        #[arg(long)]
        image: String,
        /// The store the pods read (default: --store)
        #[arg(long)]
        store_url: Option<String>,
        /// InferenceService name (default: the model name)
        #[arg(long)]
        name: Option<String>,
        /// Namespace
        #[arg(long)]
        namespace: Option<String>,
        /// Roll out as a canary taking this percent of traffic (sets Knative mode, HTTP only)
        #[arg(long)]
        canary: Option<u8>,
        /// Serve HTTP only (no gRPC port)
        #[arg(long)]
        http_only: bool,
        /// Write to this file instead of stdout
        #[arg(long, short)]
        output: Option<std::path::PathBuf>,
    },
}

async fn experiment_id(tracker: &StoreTracker, s: &str) -> Result<ExperimentId> {
    if let Ok(name) = s.parse() {
        match tracker.get_experiment_by_name(&name).await {
            Ok(e) => return Ok(e.experiment_id),
            Err(e) if !e.is_not_found() => return Err(e),
            Err(_) => {}
        }
    }
    let id: ExperimentId = s.parse()?;
    Ok(tracker.get_experiment(&id).await?.experiment_id)
}

fn metric_text(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.6}")
    }
}

pub async fn experiments(tracker: &StoreTracker, cmd: &ExperimentsCommand) -> Result<()> {
    let ExperimentsCommand::List { all, json } = cmd;
    let view = if *all {
        ViewType::All
    } else {
        ViewType::ActiveOnly
    };
    let page = tracker
        .search_experiments(SearchExperimentsOptions::default().with_view_type(view))
        .await?;
    if *json {
        return print_json(&page.items);
    }
    println!("{:<20} {:<32} {:<8} CREATED", "ID", "NAME", "STATE");
    for e in page.items {
        println!(
            "{:<20} {:<32} {:<8} {}",
            e.experiment_id.as_str(),
            e.name.as_str(),
            e.lifecycle_stage.as_str(),
            when(e.creation_time)
        );
    }
    Ok(())
}

pub async fn runs(tracker: &StoreTracker, cmd: &RunsCommand) -> Result<()> {
    match cmd {
        RunsCommand::List {
            experiment,
            filter,
            order_by,
            max,
            all,
            json,
        } => {
            let mut options = SearchRunsOptions::default().with_max_results(*max);
            for e in experiment {
                options = options.in_experiment(experiment_id(tracker, e).await?);
            }
            if let Some(f) = filter {
                options = options.with_filter(f.clone());
            }
            for o in order_by {
                options = options.order_by(o.clone());
            }
            if *all {
                options = options.with_view_type(ViewType::All);
            }
            let page = tracker.search_runs(options).await?;
            if *json {
                return print_json(&page.items);
            }
            let metric_keys: BTreeSet<String> = page
                .items
                .iter()
                .flat_map(|r| r.data.metrics.keys().map(|k| k.to_string()))
                .take(4)
                .collect();
            print!(
                "{:<32}  {:<24} {:<9} {:<20}",
                "RUN ID", "NAME", "STATUS", "STARTED"
            );
            for k in &metric_keys {
                print!(" {k:>12}");
            }
            println!();
            for r in &page.items {
                print!(
                    "{:<32}  {:<24} {:<9} {:<20}",
                    r.info.run_id.as_str(),
                    r.info.run_name,
                    r.info.status.as_str(),
                    when(r.info.start_time)
                );
                for k in &metric_keys {
                    print!(" {:>12}", r.metric(k).map_or("-".to_owned(), metric_text));
                }
                println!();
            }
            if page.next_page_token.is_some() {
                println!("(more: raise --max)");
            }
        }
        RunsCommand::Show { run_id, json } => {
            let id: RunId = run_id.parse()?;
            let run = tracker.get_run(&id).await?;
            let artifacts = tracker.list_artifacts(&id, None).await?;
            if *json {
                return print_json(&serde_json::json!({"run": run, "artifacts": artifacts}));
            }
            let i = &run.info;
            println!("run {} ({})", i.run_name, i.run_id);
            println!("  experiment  {}", i.experiment_id);
            println!(
                "  status      {} ({})",
                i.status,
                i.lifecycle_stage.as_str()
            );
            println!("  started     {}", when(i.start_time));
            if let Some(end) = i.end_time {
                println!("  ended       {}", when(end));
            }
            println!("  user        {}", i.user_id);
            if let Some(p) = run.parent_run_id() {
                println!("  parent      {p}");
            }
            for (title, items) in [
                (
                    "params",
                    run.data
                        .params
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.clone()))
                        .collect::<Vec<_>>(),
                ),
                (
                    "metrics (latest)",
                    run.data
                        .metrics
                        .iter()
                        .map(|(k, m)| {
                            (
                                k.to_string(),
                                format!("{} (step {})", metric_text(m.value), m.step),
                            )
                        })
                        .collect(),
                ),
                (
                    "tags",
                    run.data
                        .tags
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.clone()))
                        .collect(),
                ),
            ] {
                if !items.is_empty() {
                    println!("{title}:");
                    for (k, v) in items {
                        println!("  {k} = {v}");
                    }
                }
            }
            if !run.inputs.dataset_inputs.is_empty() {
                println!("inputs:");
                for d in &run.inputs.dataset_inputs {
                    println!(
                        "  {} ({}) digest {} [{}]",
                        d.dataset.name,
                        d.dataset.source,
                        d.dataset.digest,
                        d.context().unwrap_or("-")
                    );
                }
            }
            if !artifacts.is_empty() {
                println!("artifacts:");
                for a in &artifacts {
                    println!("  {} ({} bytes)", a.path, a.size);
                }
            }
        }
        RunsCommand::End { run_id, status } => {
            let status = match status.to_ascii_lowercase().as_str() {
                "killed" => mlops::RunStatus::Killed,
                "failed" => mlops::RunStatus::Failed,
                "finished" => mlops::RunStatus::Finished,
                other => {
                    return Err(mlops::Error::invalid(
                        "--status",
                        format!("{other:?}: use killed, failed or finished"),
                    ));
                }
            };
            let id: RunId = run_id.parse()?;
            let run = tracker.get_run(&id).await?;
            if run.info.status != mlops::RunStatus::Running {
                return Err(mlops::Error::invalid(
                    "run",
                    format!(
                        "{id} already ended ({}); only a RUNNING run can be ended",
                        run.info.status
                    ),
                ));
            }
            tracker.end_run(&id, status).await?;
            println!("run {id} ended {status}");
        }
        RunsCommand::Compare { run_ids, json } => {
            let mut runs: Vec<Run> = Vec::new();
            for id in run_ids {
                runs.push(tracker.get_run(&id.parse()?).await?);
            }
            if *json {
                return print_json(&runs);
            }
            let params: BTreeSet<String> = runs
                .iter()
                .flat_map(|r| r.data.params.keys().map(|k| k.to_string()))
                .collect();
            let metrics: BTreeSet<String> = runs
                .iter()
                .flat_map(|r| r.data.metrics.keys().map(|k| k.to_string()))
                .collect();
            print!("{:<28}", "");
            for r in &runs {
                print!(" {:>20}", r.info.run_name);
            }
            println!();
            for p in &params {
                print!("{:<28}", format!("params.{p}"));
                for r in &runs {
                    print!(
                        " {:>20}",
                        r.data.params.get(p.as_str()).map_or("-", String::as_str)
                    );
                }
                println!();
            }
            for m in &metrics {
                print!("{:<28}", format!("metrics.{m}"));
                for r in &runs {
                    print!(" {:>20}", r.metric(m).map_or("-".to_owned(), metric_text));
                }
                println!();
            }
        }
    }
    Ok(())
}

pub async fn models(
    store: Arc<dyn mlops::Store>,
    cmd: &ModelsCommand,
    store_url: &str,
) -> Result<()> {
    let registry = &StoreRegistry::new(Arc::clone(&store));
    let artifacts = Artifacts::new(Arc::clone(&store));
    match cmd {
        ModelsCommand::Register {
            name,
            onnx,
            mlflow_model,
            description,
            tags,
            json,
        } => {
            let source = match (onnx, mlflow_model) {
                (Some(file), _) => file,
                (None, Some(dir)) => dir,
                (None, None) => {
                    return Err(mlops::Error::invalid(
                        "models register",
                        "give --onnx FILE or --mlflow-model DIR",
                    ));
                }
            };
            let version = crate::models::register(
                registry,
                &artifacts,
                &name.parse()?,
                source,
                description,
                tags,
            )
            .await?;
            if *json {
                return print_json(&version);
            }
        }
        ModelsCommand::Export { model, out, format } => {
            crate::models::export(registry, &artifacts, &model.parse()?, out, format).await?;
        }
        ModelsCommand::List { json } => {
            let page = registry
                .search_registered_models(SearchRegistryOptions::default().with_max_results(1000))
                .await?;
            if *json {
                return print_json(&page.items);
            }
            println!("{:<32} {:>8} {:<32} UPDATED", "NAME", "LATEST", "ALIASES");
            for m in page.items {
                let latest = m.latest_versions.iter().map(|v| v.version.get()).max();
                let aliases: Vec<String> =
                    m.aliases.iter().map(|(a, v)| format!("{a}={v}")).collect();
                println!(
                    "{:<32} {:>8} {:<32} {}",
                    m.name.as_str(),
                    latest.map_or("-".to_owned(), |v| v.to_string()),
                    aliases.join(","),
                    when(m.last_updated_timestamp)
                );
            }
        }
        ModelsCommand::Show { name, json } => {
            let name = name.parse()?;
            let model = registry.get_registered_model(&name).await?;
            let versions = registry.list_versions(&name).await?;
            if *json {
                return print_json(&serde_json::json!({"model": model, "versions": versions}));
            }
            println!("{}  {}", model.name, model.description);
            for v in versions.iter().rev() {
                let aliases: Vec<&str> = v.aliases.iter().map(|a| a.as_str()).collect();
                let data: Vec<String> = v
                    .lineage
                    .datasets
                    .iter()
                    .map(|d| format!("{}@{}", d.name, d.version))
                    .collect();
                println!(
                    "  version {:<4} {:<10} {:<20} {}  {}{}",
                    v.version,
                    v.current_stage.as_str(),
                    aliases.join(","),
                    when(v.creation_timestamp),
                    v.source,
                    if data.is_empty() {
                        String::new()
                    } else {
                        format!("  data: {}", data.join(", "))
                    }
                );
            }
        }
        ModelsCommand::Alias {
            name,
            alias,
            version,
        } => {
            let name = name.parse()?;
            let alias = alias.parse()?;
            let version = mlops::Version::new(*version)?;
            registry.set_alias(&name, &alias, version).await?;
            let resolved = registry
                .resolve(&mlops::ModelUri::Alias {
                    name: name.clone(),
                    alias: alias.clone(),
                })
                .await?;
            println!("models:/{name}@{alias} -> version {}", resolved.version);
        }
        ModelsCommand::Kserve {
            model,
            image,
            store_url: pods_store,
            name,
            namespace,
            canary,
            http_only,
            output,
        } => {
            let uri: mlops::ModelUri = model.parse()?;
            let version = registry.resolve(&uri).await?;
            let format = crate::models::kserve_format(&artifacts, &version).await?;
            let isvc_name = name
                .clone()
                .unwrap_or_else(|| mlops::k8s::dns_label(version.name.as_str()));
            let mut export = mlops::serve::kserve::KServeExport::new(
                isvc_name,
                image.clone(),
                uri,
                pods_store.clone().unwrap_or_else(|| store_url.to_string()),
            );
            export.namespace = namespace.clone();
            export = export.with_model_format(format);
            if *http_only {
                export = export.without_grpc();
            }
            if let Some(p) = canary {
                export = export.with_canary(*p);
            }
            let yaml = export.to_yaml()?;
            match output {
                Some(path) => {
                    std::fs::write(path, &yaml)
                        .map_err(|e| mlops::Error::io("manifest", "write", path, e))?;
                    println!(
                        "wrote {} (serves {} version {} as modelFormat {format}, protocol v2)",
                        path.display(),
                        version.name,
                        version.version
                    );
                }
                None => print!("{yaml}"),
            }
        }
    }
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// Write the store's experiments, runs (params, full metric histories, tags, artifacts) and
    /// registered models in MLflow's file-store layout, which MLflow's client and UI read
    /// (with MLFLOW_ALLOW_FILE_STORE=true on MLflow 3.13+)
    ///
    /// Example: mlops export mlflow --out mlruns
    Mlflow {
        /// A new (or empty) directory
        #[arg(long)]
        out: std::path::PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Read an MLflow file store (an `mlruns` directory) into the store: experiments by name,
    /// runs (new ids, tagged mlops.import.run_id), registered models
    ///
    /// Example: mlops import mlflow ./mlruns
    Mlflow {
        /// The MLflow store directory
        dir: std::path::PathBuf,
    },
}

/// `12 experiments, 40 runs (…), 2 models (5 versions)`.
fn counts(r: &mlops::mlflow::MlflowTransfer) -> String {
    format!(
        "{} experiments, {} runs ({} metric values, {} artifacts, {} dataset inputs), {} models ({} versions)",
        r.experiments,
        r.runs,
        r.metric_values,
        r.artifacts,
        r.dataset_inputs,
        r.models,
        r.model_versions
    )
}

pub async fn export(
    tracker: &StoreTracker,
    registry: &StoreRegistry,
    cmd: &ExportCommand,
) -> Result<()> {
    let ExportCommand::Mlflow { out } = cmd;
    let r = mlops::mlflow::export_mlflow(tracker, registry, out).await?;
    println!("wrote {} to {}", counts(&r), out.display());
    Ok(())
}

pub async fn import(
    tracker: &StoreTracker,
    registry: &StoreRegistry,
    cmd: &ImportCommand,
) -> Result<()> {
    let ImportCommand::Mlflow { dir } = cmd;
    let r = mlops::mlflow::import_mlflow(dir, tracker, registry).await?;
    println!("imported {} from {}", counts(&r), dir.display());
    Ok(())
}
