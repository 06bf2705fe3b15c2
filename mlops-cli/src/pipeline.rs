//! `mlops pipeline` (run, export, steps) and `mlops cost`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, Subcommand, ValueEnum};

use crate::output::{human_bytes, print_json, when};
use mlops::pipeline::export::PipelineExport;
use mlops::pipeline::{
    Pipeline, PipelineReport, PipelineSpec, RateCard, Runner, StepEvent, StepStatus,
};
use mlops::policy::{DecisionLog, Governed};
use mlops::steps::{StepEnv, builtin, describe};
use mlops::storage::{StoreRegistry, StoreTracker};
use mlops::tracker::SearchRunsOptions;
use mlops::{CancelToken, Error, Registry, Result, Store, Tracker, TrackerExt};

/// `mlops pipeline` subcommands.
#[derive(Debug, Subcommand)]
pub enum PipelineCommand {
    /// Run a pipeline file; unchanged steps are served from the cache.
    /// Example: mlops pipeline run pipeline.yaml --rate-card rates.yaml
    Run(RunArgs),
    /// Write the pipeline for Argo Workflows or Kubernetes (and a model's KServe
    /// InferenceService) into a GitOps folder with a kustomization.
    /// Example: mlops pipeline export pipeline.yaml --format argo --format kserve --model
    /// models:/churn@champion --image ghcr.io/acme/mlops:1 --store-url s3://ml/prod --out deploy/
    Export(ExportArgs),
    /// List the built-in steps a pipeline file can use
    ///
    /// Example: mlops pipeline steps
    Steps,
}

/// `mlops pipeline run` arguments.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The pipeline file (YAML)
    file: PathBuf,
    /// Re-run every step, cached or not
    #[arg(long)]
    force: bool,
    /// Re-run this step even when cached. Repeatable
    #[arg(long = "force-step", value_name = "STEP")]
    force_steps: Vec<String>,
    /// Run only this step, reading upstream outputs from the store (how an exported
    /// workflow's pod runs)
    #[arg(long)]
    step: Option<String>,
    /// The pipeline run this step belongs to (set by exported workflows)
    #[arg(long, requires = "step")]
    run_token: Option<String>,
    /// Price resources with this rate card (YAML: currency, cpu_hour, gb_hour, gpu_hour)
    #[arg(long, value_name = "FILE")]
    rate_card: Option<PathBuf>,
    /// The experiment pipeline runs are tracked in
    #[arg(long, default_value = "pipelines")]
    experiment: String,
    /// Gate registry writes with this Rego policy (file or folder, plus the shipped library);
    /// decisions are logged
    #[arg(long, value_name = "PATH")]
    policy: Option<PathBuf>,
    /// At most this many steps at once (default: the core count)
    #[arg(long)]
    max_parallel: Option<usize>,
    /// Print the report as JSON
    #[arg(long)]
    json: bool,
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// An Argo Workflow (workflow.yaml)
    Argo,
    /// One Kubernetes Job per step (jobs.yaml)
    Jobs,
    /// A KServe InferenceService for --model (inferenceservice.yaml)
    Kserve,
    /// A GitHub Actions workflow running the policy tests and the pipeline
    /// (github-actions.yaml, for .github/workflows/)
    GithubActions,
}

/// `mlops pipeline export` arguments.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The pipeline file (YAML)
    file: PathBuf,
    /// What to write. Repeatable
    #[arg(long, value_enum, required = true)]
    format: Vec<Format>,
    /// The image holding the mlops binary
    #[arg(long)]
    image: String,
    /// Where the pipeline file is inside the image
    #[arg(long, default_value = "/etc/mlops/pipeline.yaml")]
    pipeline_path: String,
    /// The store the pods use (s3://, gs://, az://)
    #[arg(long)]
    store_url: String,
    /// The model the InferenceService serves (for --format kserve)
    #[arg(long, value_name = "URI")]
    model: Option<String>,
    /// Send this percent of traffic to the new revision (KServe canary)
    #[arg(long)]
    canary: Option<u8>,
    /// Namespace of everything written
    #[arg(long)]
    namespace: Option<String>,
    /// A folder to write (with a kustomization.yaml), or - for stdout
    #[arg(long, default_value = "deploy")]
    out: String,
}

/// `mlops cost` arguments.
#[derive(Debug, Args)]
pub struct CostArgs {
    /// Only this pipeline
    #[arg(long)]
    pipeline: Option<String>,
    /// The experiment pipeline runs are tracked in
    #[arg(long, default_value = "pipelines")]
    experiment: String,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

fn read_spec(path: &Path) -> Result<PipelineSpec> {
    let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::not_found("pipeline file", path.display()),
        _ => Error::invalid("pipeline file", format!("{}: {e}", path.display())),
    })?;
    PipelineSpec::from_yaml(&text).map_err(|e| in_file(path, e))
}

/// Names the file in a pipeline-file error.
fn in_file(path: &Path, e: Error) -> Error {
    match e {
        Error::InvalidArgument { message, .. } => {
            Error::invalid("pipeline file", format!("{}: {message}", path.display()))
        }
        other => other,
    }
}

async fn build(
    path: &Path,
    store: Arc<dyn Store>,
    tracker: Arc<dyn Tracker>,
    policy: Option<&Path>,
    experiment: &str,
) -> Result<Pipeline> {
    let spec = read_spec(path)?;
    let plain = StoreRegistry::new(store.clone());
    let registry: Arc<dyn Registry> = match policy {
        Some(p) => {
            let engine = Arc::new(crate::policy::engine_with_library(p)?);
            let log = Arc::new(DecisionLog::open_default(store.clone()).await?);
            Arc::new(Governed::new(plain, engine).with_log(log))
        }
        None => Arc::new(plain),
    };
    spec.build(&builtin(StepEnv {
        store,
        tracker,
        registry,
        experiment: experiment.to_owned(),
    }))
    .map_err(|e| in_file(path, e))
}

fn print_report(r: &PipelineReport) {
    println!(
        "pipeline {} run {}: {} in {:.2}s, cost {:.6} {}",
        r.pipeline,
        r.run_id.as_ref().map_or("-", |id| id.as_str()),
        if r.succeeded() { "succeeded" } else { "FAILED" },
        r.wall_seconds,
        r.cost,
        r.currency
    );
    println!(
        "  {:<20} {:<10} {:>4} {:>9} {:>9} {:>10} {:>12}",
        "step", "status", "try", "wall s", "cpu s", "peak rss", "cost"
    );
    for s in &r.steps {
        let status = match s.status {
            StepStatus::Succeeded => "ran",
            StepStatus::Cached => "cached",
            StepStatus::Failed => "FAILED",
            StepStatus::Skipped => "skipped",
            StepStatus::Cancelled => "cancelled",
            StepStatus::Bypassed => "bypassed",
        };
        println!(
            "  {:<20} {:<10} {:>4} {:>9.3} {:>9.3} {:>10} {:>12.6}",
            s.name,
            status,
            s.attempts,
            s.usage.wall_seconds,
            s.usage.cpu_seconds,
            s.usage
                .peak_rss_bytes
                .map_or_else(|| "-".into(), human_bytes),
            s.cost
        );
        if let (Some(e), false) = (&s.error, s.status == StepStatus::Cached) {
            println!("      {e}");
        }
    }
}

/// Runs `mlops pipeline …`.
pub async fn run<F, Fut>(cmd: &PipelineCommand, store: F) -> Result<bool>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<Arc<dyn Store>>>,
{
    match cmd {
        PipelineCommand::Steps => {
            for (name, what) in describe() {
                println!("{name:<10} {what}");
            }
            Ok(true)
        }
        PipelineCommand::Export(args) => export(args),
        PipelineCommand::Run(args) => {
            let store = store().await?;
            let tracker: Arc<dyn Tracker> =
                Arc::new(StoreTracker::open(store.clone(), crate::quiet()).await?);
            let pipeline = build(
                &args.file,
                store.clone(),
                tracker.clone(),
                args.policy.as_deref(),
                &args.experiment,
            )
            .await?;
            let cancel = CancelToken::new();
            let on_ctrl_c = cancel.clone();
            tokio::spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    eprintln!("cancelling: running steps are asked to stop…");
                    on_ctrl_c.cancel();
                }
            });
            let mut runner = Runner::new(store)
                .tracker(tracker.clone(), args.experiment.clone())
                .force(args.force)
                .force_steps(args.force_steps.iter().cloned())
                .cancel_token(cancel);
            if let Some(path) = &args.rate_card {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    Error::invalid("--rate-card", format!("{}: {e}", path.display()))
                })?;
                runner = runner.rate_card(RateCard::from_yaml(&text)?);
            }
            if let Some(n) = args.max_parallel {
                runner = runner.max_parallel(n);
            }
            if !args.json {
                // Progress as it happens, on stderr (the report follows on stdout).
                runner = runner.observer(Arc::new(|event: &StepEvent<'_>| match event {
                    StepEvent::Started(step) => eprintln!("  … {step}"),
                    StepEvent::Finished(r) => eprintln!(
                        "  {} {} ({:.2}s)",
                        if r.status == StepStatus::Failed {
                            "✗"
                        } else {
                            "✓"
                        },
                        r.name,
                        r.usage.wall_seconds
                    ),
                }));
            }
            if let Some(step) = &args.step {
                runner = runner.only([step.clone()]);
                if let Some(token) = &args.run_token {
                    runner = runner.run_token(token.clone());
                }
            }
            let report = runner.run(&pipeline).await;
            tracker.flush().await?;
            let report = report?;
            if args.json {
                print_json(&report)?;
            } else {
                print_report(&report);
            }
            let ok = report.succeeded();
            if !ok {
                let e = report
                    .into_result()
                    .err()
                    .map(|e| e.to_string())
                    .unwrap_or_default();
                eprintln!("error: {e}");
            }
            Ok(ok)
        }
    }
}

fn export(args: &ExportArgs) -> Result<bool> {
    let spec = read_spec(&args.file)?;
    // Steps are only described here, not run: any registry of the right names will do.
    let names = describe();
    let mut registry = mlops::pipeline::StepRegistry::new();
    for name in names.keys() {
        registry = registry.register(*name, Placeholder);
    }
    let pipeline = spec.build(&registry).map_err(|e| in_file(&args.file, e))?;
    let mut e = PipelineExport::new(
        args.image.clone(),
        vec![
            "mlops".into(),
            "pipeline".into(),
            "run".into(),
            args.pipeline_path.clone(),
        ],
    );
    e.store_url = Some(args.store_url.clone());
    e.namespace = args.namespace.clone();
    let mut files: Vec<(&str, String)> = Vec::new();
    for f in &args.format {
        match f {
            Format::Argo => files.push(("workflow.yaml", e.argo_yaml(&pipeline)?)),
            Format::Jobs => files.push(("jobs.yaml", e.jobs_yaml(&pipeline)?)),
            Format::Kserve => {
                let model = args.model.as_ref().ok_or_else(|| {
                    Error::invalid(
                        "--model",
                        "--format kserve needs the model to serve (models:/NAME@ALIAS)",
                    )
                })?;
                let uri: mlops::ModelUri = model.parse()?;
                let name = uri
                    .model_name()
                    .map(|n| n.to_string().to_ascii_lowercase().replace('_', "-"))
                    .ok_or_else(|| {
                        Error::invalid("--model", format!("{model} is not a models:/ URI"))
                    })?;
                let mut k = mlops::serve::kserve::KServeExport::new(
                    name,
                    args.image.clone(),
                    uri,
                    args.store_url.clone(),
                );
                k.namespace = args.namespace.clone();
                if let Some(p) = args.canary {
                    k = k.with_canary(p);
                }
                files.push(("inferenceservice.yaml", k.to_yaml()?));
            }
            Format::GithubActions => files.push((
                "github-actions.yaml",
                github_actions(args, pipeline.name())?,
            )),
        }
    }
    if args.out == "-" {
        for (_, yaml) in &files {
            println!("---\n{yaml}");
        }
        return Ok(true);
    }
    let dir = Path::new(&args.out);
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::invalid("--out", format!("{}: {e}", dir.display())))?;
    let mut resources = Vec::new();
    for (name, yaml) in &files {
        std::fs::write(dir.join(name), yaml)
            .map_err(|e| Error::invalid("--out", format!("{name}: {e}")))?;
        resources.push(*name);
    }
    // Argo Workflows use generateName, which kustomize cannot apply; the CI workflow is not a
    // cluster resource.
    let kustomized: Vec<&str> = resources
        .iter()
        .copied()
        .filter(|r| *r != "workflow.yaml" && *r != "github-actions.yaml")
        .collect();
    let mut kustomization = serde_json::json!({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": kustomized,
    });
    if let Some(ns) = &args.namespace {
        kustomization["namespace"] = serde_json::json!(ns);
    }
    let kustomization =
        serde_yaml_ng::to_string(&kustomization).map_err(|e| Error::backend("serde_yaml", e))?;
    std::fs::write(dir.join("kustomization.yaml"), kustomization)
        .map_err(|e| Error::invalid("--out", format!("kustomization.yaml: {e}")))?;
    for r in &resources {
        println!("wrote {}", dir.join(r).display());
    }
    println!("wrote {}", dir.join("kustomization.yaml").display());
    if resources.contains(&"workflow.yaml") {
        println!(
            "submit the workflow with: argo submit {}",
            dir.join("workflow.yaml").display()
        );
    }
    Ok(true)
}

/// A GitHub Actions workflow: on pushes to main, by hand and nightly, install the mlops binary,
/// run the repository's policy tests, then the pipeline against the production store with the
/// policy gate, and keep the run report.
fn github_actions(args: &ExportArgs, pipeline: &str) -> Result<String> {
    let file = args.file.display().to_string();
    let doc = serde_json::json!({
        "name": format!("mlops pipeline {pipeline}"),
        "on": {
            "push": {"branches": ["main"]},
            "workflow_dispatch": {},
            "schedule": [{"cron": "0 3 * * *"}],
        },
        "concurrency": {"group": format!("mlops-{pipeline}"), "cancel-in-progress": false},
        "jobs": {
            "pipeline": {
                "runs-on": "ubuntu-latest",
                "env": {"MLOPS_STORE": args.store_url},
                "steps": [
                    {"uses": "actions/checkout@v4"},
                    {"uses": "dtolnay/rust-toolchain@stable"},
                    {"name": "Install mlops", "run": "cargo install --locked --git https://github.com/mlops-rs/mlops mlops-cli --features s3"},
                    {"name": "Policy tests", "run": "mlops policy test policies/"},
                    {"name": "Run the pipeline", "run": format!("mlops pipeline run {file} --policy policies/ --json > pipeline-report.json")},
                    {"name": "Keep the report", "if": "always()", "uses": "actions/upload-artifact@v4", "with": {"name": "pipeline-report", "path": "pipeline-report.json"}},
                ],
            }
        },
    });
    serde_yaml_ng::to_string(&doc).map_err(|e| Error::backend("serde_yaml", e))
}

/// Stands in for a built-in step when a pipeline is only exported.
#[derive(Debug)]
struct Placeholder;

#[async_trait::async_trait]
impl mlops::pipeline::Step for Placeholder {
    async fn run(
        &self,
        _ctx: Arc<mlops::pipeline::StepContext>,
    ) -> Result<mlops::pipeline::Outputs> {
        Err(Error::NotSupported(
            "exported steps run in their pods".into(),
        ))
    }
}

/// `mlops cost`: pipeline runs' cost by pipeline, run and step, from the tracker.
pub async fn cost(args: &CostArgs, tracker: &dyn Tracker) -> Result<bool> {
    let experiment = match tracker
        .get_experiment_by_name(&args.experiment.parse()?)
        .await
    {
        Ok(e) => e,
        Err(e) if e.is_not_found() => {
            println!(
                "no pipeline runs yet (experiment {} does not exist)",
                args.experiment
            );
            return Ok(true);
        }
        Err(e) => return Err(e),
    };
    let runs = tracker
        .search_all_runs(SearchRunsOptions::default().in_experiment(experiment.experiment_id))
        .await?;
    let metric = |r: &mlops::Run, k: &str| r.data.metrics.get(k).map_or(0.0, |m| m.value);
    let tag = |r: &mlops::Run, k: &str| r.data.tags.get(k).cloned().unwrap_or_default();
    let mut by_pipeline: BTreeMap<String, Vec<&mlops::Run>> = BTreeMap::new();
    for r in runs
        .iter()
        .filter(|r| r.parent_run_id().is_none() && r.data.tags.contains_key("mlops.pipeline"))
    {
        let p = tag(r, "mlops.pipeline");
        if args.pipeline.as_ref().is_none_or(|want| *want == p) {
            by_pipeline.entry(p).or_default().push(r);
        }
    }
    let currency = runs
        .iter()
        .find_map(|r| r.data.tags.get("mlops.currency").cloned())
        .unwrap_or_else(|| "USD".into());
    let mut doc = Vec::new();
    for (pipeline, parents) in &by_pipeline {
        let total: f64 = parents.iter().map(|r| metric(r, "cost")).sum();
        if !args.json {
            println!("{pipeline}: {} runs, {total:.6} {currency}", parents.len());
        }
        for parent in parents {
            let mut steps: Vec<&mlops::Run> = runs
                .iter()
                .filter(|r| r.parent_run_id() == Some(parent.info.run_id.as_str()))
                .collect();
            steps.sort_by_key(|r| (r.info.start_time, tag(r, "mlops.step")));
            if args.json {
                doc.push(serde_json::json!({
                    "pipeline": pipeline,
                    "run_id": parent.info.run_id.as_str(),
                    "start_time": parent.info.start_time,
                    "cost": metric(parent, "cost"),
                    "steps": steps.iter().map(|s| serde_json::json!({
                        "step": tag(s, "mlops.step"),
                        "status": tag(s, "mlops.status"),
                        "cache": tag(s, "mlops.cache"),
                        "wall_seconds": metric(s, "wall_seconds"),
                        "cpu_seconds": metric(s, "cpu_seconds"),
                        "cost": metric(s, "cost"),
                    })).collect::<Vec<_>>(),
                }));
                continue;
            }
            println!(
                "  run {} ({}): {:.6} {currency}, {:.2}s",
                parent.info.run_id,
                when(parent.info.start_time),
                metric(parent, "cost"),
                metric(parent, "wall_seconds")
            );
            for s in steps {
                println!(
                    "    {:<20} {:<9} {:<5} wall {:>8.3}s  cpu {:>8.3}s  {:>12.6} {currency}",
                    tag(s, "mlops.step"),
                    tag(s, "mlops.status"),
                    tag(s, "mlops.cache"),
                    metric(s, "wall_seconds"),
                    metric(s, "cpu_seconds"),
                    metric(s, "cost")
                );
            }
        }
    }
    if args.json {
        print_json(&doc)?;
    } else if by_pipeline.is_empty() {
        println!("no pipeline runs in experiment {}", args.experiment);
    }
    Ok(true)
}
