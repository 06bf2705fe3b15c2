//! `mlops pipeline` (run, export, steps) and `mlops cost`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, Subcommand, ValueEnum};

use crate::output::{human_bytes, print_json, when};
use mlops::pipeline::export::{Bundle, PipelineExport, github_actions};
use mlops::pipeline::{
    Pipeline, PipelineReport, PipelineRun, PipelineSpec, RateCard, Runner, StepEvent, StepStatus,
    history,
};
use mlops::policy::{DecisionLog, Governed};
use mlops::steps::{StepEnv, builtin, describe};
use mlops::storage::{StoreRegistry, StoreTracker};
use mlops::{CancelToken, Error, Registry, Result, Store, Tracker};

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
    let text =
        std::fs::read_to_string(path).map_err(|e| Error::io("pipeline file", "read", path, e))?;
    PipelineSpec::from_yaml(&text).map_err(|e| in_file(path, e))
}

/// Names the file in a pipeline-file error (keeping its cause).
fn in_file(path: &Path, mut e: Error) -> Error {
    if let Error::InvalidArgument { what, message, .. } = &mut e {
        *what = "pipeline file";
        *message = match message.as_str() {
            "" => path.display().to_string(),
            m => format!("{}: {m}", path.display()),
        };
    }
    e
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
        if let (Some(e), false) = (s.message(), s.status == StepStatus::Cached) {
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
                Arc::new(StoreTracker::open(store.clone(), crate::durable()).await?);
            let pipeline = build(
                &args.file,
                store.clone(),
                tracker.clone(),
                args.policy.as_deref(),
                &args.experiment,
            )
            .await?;
            let cancel = CancelToken::new();
            let on_stop = cancel.clone();
            let stop = crate::stop_signal();
            tokio::spawn(async move {
                let why = stop.await;
                eprintln!("{why}: cancelling, running steps are asked to stop…");
                on_stop.cancel();
            });
            let mut runner = Runner::new(store)
                .tracker(tracker.clone(), args.experiment.clone())
                .force(args.force)
                .force_steps(args.force_steps.iter().cloned())
                .cancel_token(cancel);
            if let Some(path) = &args.rate_card {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| Error::io("rate card", "read", path, e))?;
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
            match report.failure() {
                Some((step, e)) => eprintln!("error: step {step} failed: {e}"),
                None if !ok => eprintln!("error: pipeline {} was cancelled", report.pipeline),
                None => {}
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
    let mut bundle = Bundle::new().with_namespace(args.namespace.clone());
    // Each format once, in a fixed order, however often it was named.
    let mut formats = args.format.clone();
    formats.sort_by_key(|f| *f as u8);
    formats.dedup();
    for f in &formats {
        match f {
            Format::Argo => bundle.file("workflow.yaml", e.argo_yaml(&pipeline)?)?,
            Format::Jobs => bundle.resource("jobs.yaml", e.jobs_yaml(&pipeline)?)?,
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
                    .map(|n| mlops::k8s::dns_label(n.as_str()))
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
                bundle.resource("inferenceservice.yaml", k.to_yaml()?)?;
            }
            Format::GithubActions => bundle.file(
                "github-actions.yaml",
                github_actions(&pipeline, &args.file.display().to_string(), &args.store_url)?,
            )?,
        }
    }
    if args.out == "-" {
        for f in bundle.files() {
            println!("---\n{}", f.contents);
        }
        return Ok(true);
    }
    let dir = Path::new(&args.out);
    for path in bundle.write(dir)? {
        println!("wrote {}", path.display());
    }
    if bundle.files().iter().any(|f| f.name == "workflow.yaml") {
        println!(
            "submit the workflow with: argo submit {}",
            dir.join("workflow.yaml").display()
        );
    }
    Ok(true)
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
        Err(Error::not_supported(
            "operation",
            "running an exported step here",
            "exported steps run in their pods",
        ))
    }
}

/// `mlops cost`: pipeline runs' cost by pipeline, run and step, from the tracker.
pub async fn cost(args: &CostArgs, tracker: &dyn Tracker) -> Result<bool> {
    let runs = match history(tracker, &args.experiment, args.pipeline.as_deref()).await {
        Ok(runs) => runs,
        Err(e) if e.is_not_found() => {
            println!(
                "no pipeline runs yet (experiment {} does not exist)",
                args.experiment
            );
            return Ok(true);
        }
        Err(e) => return Err(e),
    };
    if args.json {
        print_json(&runs)?;
        return Ok(true);
    }
    if runs.is_empty() {
        println!("no pipeline runs in experiment {}", args.experiment);
    }
    let mut by_pipeline: BTreeMap<&str, Vec<&PipelineRun>> = BTreeMap::new();
    for r in &runs {
        by_pipeline.entry(&r.pipeline).or_default().push(r);
    }
    for (pipeline, runs) in by_pipeline {
        let currency = runs.first().map_or("USD", |r| r.currency.as_str());
        let total: f64 = runs.iter().map(|r| r.cost).sum();
        println!("{pipeline}: {} runs, {total:.6} {currency}", runs.len());
        for run in runs {
            println!(
                "  run {} ({}): {:.6} {}, {:.2}s",
                run.run_id,
                when(run.start_time),
                run.cost,
                run.currency,
                run.wall_seconds
            );
            for s in &run.steps {
                println!(
                    "    {:<20} {:<9} {:<5} wall {:>8.3}s  cpu {:>8.3}s  {:>12.6} {}",
                    s.step, s.status, s.cache, s.wall_seconds, s.cpu_seconds, s.cost, run.currency
                );
            }
        }
    }
    Ok(true)
}
