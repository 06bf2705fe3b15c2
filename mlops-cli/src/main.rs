//! `mlops`: the command-line face of the mlops SDK.
//!
//! Exit codes: 0 success; 1 failure (including `store verify` finding corruption); 2 bad input (a
//! malformed filter, URI or name, a missing file or dataset, something this build does not
//! support); 141 when the reader of its output went away (`| head`).

mod check;
mod datasets;
mod drift;
mod explain;
mod fairness;
mod features;
mod models;
mod output;
mod pipeline;
mod policy;
mod serve;
mod server;
mod store;
mod tracking;
mod train;
mod ui;

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use mlops::storage::{
    DEFAULT_STORE, Datasets, ObjectStoreStore, StoreRegistry, StoreTracker, StoreTrackerOptions,
};

/// The top-level help: the commands grouped by area (a test checks every command is listed).
const HELP: &str = "\
{about-with-newline}
{usage-heading} {usage}

Data commands:
  datasets     Versioned Parquet datasets: put, list, log, show, get, diff
  drift        Test current data for drift against reference data or a saved profile
  quality      Check data against a quality suite (Great Expectations' expectation names)
  fairness     Group fairness of predictions: fairlearn's and AIF360's metrics, intervals
  features     The feature store: apply, plan, get-historical, materialize, get-online, push

Training and tracking commands:
  train        Train a model on a dataset as a tracked run; register, search, export a Job
  pipeline     Pipelines of built-in steps: run (cached, tracked, priced), export, steps
  cost         What pipeline runs cost, by pipeline, run and step
  experiments  Experiments in the store's tracker: list
  runs         Runs in the store's tracker: list (MLflow filters), show, compare

Model commands:
  models       Registered models: list, show, register, alias, export, kserve
  explain      A model on labelled data: importance, SHAP, group fairness, HTML report
  serve        Serve models over the Open Inference Protocol (HTTP and gRPC)

Governance commands:
  policy       Policy as code: eval, test, verify-log, log, library

Store and interop commands:
  store        Store maintenance: verify, gc
  server       MLflow's tracking server API over the store: MLflow's clients log into it
  ui           The web UI over the store: runs, charts, models, lineage, drift, pipelines
  export       Export to other tools' formats: mlflow
  import       Import from other tools' formats: mlflow

Check commands:
  filter       Check MLflow search filters and order-by clauses offline
  uri          Check model URIs (models:/name/3, models:/name@alias, runs:/id/path)

Options:
{options}

Exit codes: 0 success; 1 failure or a \"no\" answer (denied, drift, failed checks); 2 bad input.
Run mlops <command> --help for a command's options and an example.
";

/// The mlops command: datasets, training, runs, experiments and models kept in a store, serving,
/// drift, policy, store maintenance, and offline checks of MLflow filters and model URIs.
#[derive(Debug, Parser)]
#[command(name = "mlops", version, help_template = HELP)]
struct Cli {
    /// Where the data lives: a directory, file://, memory://, s3://bucket/prefix, az://…, gs://…
    #[arg(long, global = true, env = "MLOPS_STORE", default_value = DEFAULT_STORE)]
    store: String,

    /// A backend option for the store, KEY=VALUE (object_store keys such as aws_endpoint);
    /// VALUE may be secret:NAME, looked up with --secrets. Repeatable
    #[arg(long = "store-option", global = true, value_name = "KEY=VALUE", value_parser = key_value)]
    store_options: Vec<(String, String)>,

    /// Where secret:NAME values come from: env, env:PREFIX, file:DIR, vault (VAULT_ADDR and
    /// VAULT_TOKEN), vault:MOUNT
    #[arg(long, global = true, env = "MLOPS_SECRETS", default_value = "env")]
    secrets: String,

    /// The library's log messages go to stderr from this level up: off, error, warn, info,
    /// debug, trace
    #[arg(
        long,
        global = true,
        env = "MLOPS_LOG",
        default_value = "warn",
        value_name = "LEVEL"
    )]
    log_level: tracing::level_filters::LevelFilter,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Versioned Parquet datasets: put, list, log, show, get, diff
    #[command(subcommand)]
    Datasets(datasets::DatasetsCommand),
    /// The feature store: apply and plan definitions (Feast's names), list them, build
    /// point-in-time-correct training sets, materialize into the online store, look up
    #[command(subcommand)]
    Features(features::FeaturesCommand),
    /// Experiments in the store's tracker: list
    #[command(subcommand)]
    Experiments(tracking::ExperimentsCommand),
    /// Runs in the store's tracker: list (MLflow filters), show, compare
    #[command(subcommand)]
    Runs(tracking::RunsCommand),
    /// Registered models in the store's registry: list, show, register (ONNX, MLflow models),
    /// alias, export (MLflow, ONNX), kserve
    #[command(subcommand)]
    Models(tracking::ModelsCommand),
    /// Export to other tools' formats: mlflow
    #[command(subcommand)]
    Export(tracking::ExportCommand),
    /// Import from other tools' formats: mlflow
    #[command(subcommand)]
    Import(tracking::ImportCommand),
    /// Store maintenance: verify, gc
    #[command(subcommand)]
    Store(store::StoreCommand),
    /// Test current data for drift against reference data or a saved profile; exit 0 no
    /// dataset drift, 1 drift, 2 bad input
    ///
    /// Example: mlops drift --reference train.parquet --current churn@7 --html drift.html
    Drift(drift::DriftArgs),
    /// Check data against a quality suite (Great Expectations' expectation names); exit 0 all
    /// met, 1 some failed, 2 bad input
    ///
    /// Example: mlops quality --suite suite.yaml churn@7
    Quality(drift::QualityArgs),
    /// Group fairness of predictions: fairlearn's metrics by group and, with --privileged,
    /// AIF360's signed two-group metrics, with bootstrap intervals
    ///
    /// Example: mlops fairness scored.parquet --target churned --prediction predicted
    /// --sensitive sex,region --privileged sex=m --bootstrap 1000
    Fairness(fairness::FairnessArgs),
    /// A model on labelled data: permutation importance, KernelSHAP (--shap N) and group
    /// fairness over sensitive columns, as text, JSON, version tags or an HTML model report
    ///
    /// Example: mlops explain models:/churn@champion churn-production --target churned
    /// --sensitive region --html model-report.html
    Explain(Box<explain::ExplainArgs>),
    /// Train a model (linear, logistic, softmax, MLP) on a dataset, or on a feature service's
    /// training set, as a tracked run; register it, search hyper-parameters, or write a
    /// Kubernetes Job that runs the same command
    ///
    /// Example: mlops train --data churn --target churned --model mlp --hidden 64,32 --epochs 20
    /// --register churn
    ///
    /// Example: mlops train --features churn_v1 --entities labels.parquet --target churned
    Train(Box<train::TrainArgs>),
    /// Serve models over the Open Inference Protocol (HTTP, and gRPC with --grpc-port) until
    /// Ctrl-C: registered versions (candle, ONNX, MLflow model directories), model directories,
    /// ONNX files
    ///
    /// Example: mlops serve --model models:/churn@champion --port 8080 --grpc-port 8081 --canary models:/churn/4=10
    Serve(Box<serve::ServeArgs>),
    /// MLflow's tracking server API (REST and artifact proxy) over the store, until Ctrl-C: point
    /// MLFLOW_TRACKING_URI at it and MLflow's clients log into the store unchanged
    ///
    /// Example: mlops server --port 5000 --policy policies/
    Server(server::ServerArgs),
    /// The web UI over the store, until Ctrl-C: experiments, runs, metric charts, comparisons,
    /// models and lineage, datasets, pipelines and policy decisions (read-only)
    ///
    /// Example: mlops ui --port 5000 --token-file ui.token
    Ui(ui::UiArgs),
    /// Pipelines from YAML files of built-in steps: run (cached, tracked, priced), export (Argo,
    /// Jobs, KServe, kustomization), steps
    #[command(subcommand)]
    Pipeline(pipeline::PipelineCommand),
    /// What pipeline runs cost, by pipeline, run and step (from the tracker)
    ///
    /// Example: mlops cost --pipeline churn-retrain --json
    Cost(pipeline::CostArgs),
    /// Policy as code: eval, test, verify-log, log, library
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Check MLflow search filters and order-by clauses offline
    #[command(subcommand)]
    Filter(check::FilterCommand),
    /// Check model URIs (models:/name/3, models:/name@alias, runs:/id/path)
    #[command(subcommand)]
    Uri(check::UriCommand),
}

pub(crate) fn key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

impl Command {
    /// Whether the command writes into the store, so that a local store directory may be
    /// created for it. Every other command reads, and a mistyped path is an error, not a new
    /// empty store that "verifies".
    fn writes(&self) -> bool {
        matches!(
            self,
            Self::Datasets(datasets::DatasetsCommand::Put { .. })
                | Self::Train(_)
                | Self::Pipeline(_)
                | Self::Import(_)
                | Self::Models(
                    tracking::ModelsCommand::Alias { .. }
                        | tracking::ModelsCommand::Register { .. }
                )
                | Self::Runs(tracking::RunsCommand::End { .. })
                | Self::Policy(_)
                | Self::Server(_)
        ) || matches!(self, Self::Features(cmd) if cmd.writes())
    }
}

async fn open(cli: &Cli) -> mlops::Result<ObjectStoreStore> {
    let options = if cli.store_options.is_empty() {
        Vec::new()
    } else {
        let secrets = mlops::secret::from_spec(&cli.secrets)?;
        mlops::secret::resolve_options(&cli.store_options, secrets.as_ref()).await?
    };
    if cli.command.writes() {
        return ObjectStoreStore::open(&cli.store, &options);
    }
    match ObjectStoreStore::open_existing(&cli.store, &options) {
        // Drift, quality and serving read local files and model directories as well as stored
        // datasets and models: with no store there, there are simply none of the latter.
        Err(e)
            if e.is_not_found()
                && matches!(
                    cli.command,
                    Command::Drift(_)
                        | Command::Quality(_)
                        | Command::Fairness(_)
                        | Command::Explain(_)
                        | Command::Serve(_)
                        | Command::Features(_)
                ) =>
        {
            ObjectStoreStore::open("memory://", &[])
        }
        other => other,
    }
}

/// Tracker options for a short-lived command: no background flushing (commands flush themselves).
pub(crate) fn quiet() -> StoreTrackerOptions {
    StoreTrackerOptions::default().with_flush_interval(None)
}

/// Tracker options for a command whose runs last (training, pipelines): what they log becomes
/// durable every second, so a process killed outright (SIGKILL, the OOM killer) leaves its run
/// RUNNING with what it had logged, not nothing.
pub(crate) fn durable() -> StoreTrackerOptions {
    StoreTrackerOptions::default().with_flush_interval(Some(std::time::Duration::from_secs(1)))
}

/// Binds `host:port` (0 picks a free port), answering the listener and the address it got.
pub(crate) async fn listen(
    host: &str,
    port: u16,
) -> mlops::Result<(tokio::net::TcpListener, std::net::SocketAddr)> {
    let listener = tokio::net::TcpListener::bind((host, port))
        .await
        .map_err(|e| {
            mlops::Error::invalid("listen", format!("cannot listen on {host}:{port}"))
                .with_source(e)
        })?;
    let addr = listener
        .local_addr()
        .map_err(|e| mlops::Error::backend("listen", e))?;
    Ok((listener, addr))
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM — how Kubernetes stops a pod — naming which.
///
/// The handlers are installed when this is called, not when the future is first polled: a
/// caller that announces readiness ("listening on …") after calling it cannot be killed by a
/// signal that arrives in between, as the default disposition would.
pub(crate) fn stop_signal() -> impl std::future::Future<Output = &'static str> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let handlers = signal(SignalKind::terminate())
            .and_then(|term| Ok((term, signal(SignalKind::interrupt())?)));
        async move {
            match handlers {
                Ok((mut term, mut interrupt)) => tokio::select! {
                    _ = interrupt.recv() => "interrupt",
                    _ = term.recv() => "SIGTERM",
                },
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    "interrupt"
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async move {
            let _ = tokio::signal::ctrl_c().await;
            "interrupt"
        }
    }
}

async fn open_tracker(cli: &Cli) -> mlops::Result<StoreTracker> {
    StoreTracker::open(Arc::new(open(cli).await?), quiet()).await
}

async fn run(cli: &Cli) -> mlops::Result<bool> {
    match &cli.command {
        Command::Filter(cmd) => check::filter(cmd).map(|()| true),
        Command::Uri(cmd) => check::uri(cmd).map(|()| true),
        Command::Datasets(cmd) => {
            let datasets = Datasets::new(Arc::new(open(cli).await?));
            datasets::run(&datasets, cmd).await.map(|()| true)
        }
        Command::Store(cmd) => store::run(open(cli).await?, cmd).await,
        Command::Features(cmd) => {
            let store: Arc<dyn mlops::Store> = Arc::new(open(cli).await?);
            features::run(store, cmd).await.map(|()| true)
        }
        Command::Experiments(cmd) => {
            let tracker = open_tracker(cli).await?;
            tracking::experiments(&tracker, cmd).await.map(|()| true)
        }
        Command::Runs(cmd) => {
            let tracker = open_tracker(cli).await?;
            tracking::runs(&tracker, cmd).await.map(|()| true)
        }
        Command::Export(cmd) => {
            let store: Arc<dyn mlops::Store> = Arc::new(open(cli).await?);
            let tracker = StoreTracker::open(store.clone(), quiet()).await?;
            tracking::export(&tracker, &StoreRegistry::new(store), cmd)
                .await
                .map(|()| true)
        }
        Command::Import(cmd) => {
            let store: Arc<dyn mlops::Store> = Arc::new(open(cli).await?);
            let tracker = StoreTracker::open(store.clone(), quiet()).await?;
            let imported = tracking::import(&tracker, &StoreRegistry::new(store), cmd).await;
            mlops::Tracker::flush(&tracker).await?;
            imported.map(|()| true)
        }
        Command::Drift(args) => {
            let datasets = Datasets::new(Arc::new(open(cli).await?));
            drift::drift(args, &datasets).await
        }
        Command::Explain(args) => {
            let store: Arc<dyn mlops::Store> = Arc::new(open(cli).await?);
            explain::explain(args, store).await
        }
        Command::Fairness(args) => {
            let datasets = Datasets::new(Arc::new(open(cli).await?));
            fairness::fairness(args, &datasets).await
        }
        Command::Quality(args) => {
            let datasets = Datasets::new(Arc::new(open(cli).await?));
            drift::quality(args, &datasets).await
        }
        Command::Train(args) if args.emits_job() => {
            train::emit_job(args, &cli.store, &cli.store_options)
        }
        Command::Train(args) => {
            let store: Arc<dyn mlops::Store> = Arc::new(open(cli).await?);
            train::train(args, store).await
        }
        Command::Serve(args) => {
            let store: Arc<dyn mlops::Store> = Arc::new(open(cli).await?);
            serve::serve(args, store).await
        }
        Command::Server(args) => {
            let store: Arc<dyn mlops::Store> = Arc::new(open(cli).await?);
            server::server(args, store).await
        }
        Command::Ui(args) => {
            let store: Arc<dyn mlops::Store> = Arc::new(open(cli).await?);
            ui::ui(args, store).await
        }
        Command::Pipeline(cmd) => {
            pipeline::run(cmd, || async {
                let store: Arc<dyn mlops::Store> = Arc::new(open(cli).await?);
                Ok(store)
            })
            .await
        }
        Command::Cost(args) => {
            let tracker = open_tracker(cli).await?;
            pipeline::cost(args, &tracker).await
        }
        Command::Policy(cmd) => {
            policy::run(cmd, || async {
                let store: Arc<dyn mlops::Store> = Arc::new(open(cli).await?);
                Ok(store)
            })
            .await
        }
        Command::Models(cmd) => tracking::models(Arc::new(open(cli).await?), cmd, &cli.store)
            .await
            .map(|()| true),
    }
}

/// mimalloc: the server allocates per request, and measured 10–25% more requests/s with it
/// than with the system allocator (benches/scripts/serving_vs_mlserver.py).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The exit code of a process that the shell saw killed by SIGPIPE (128 + 13).
const BROKEN_PIPE_EXIT: i32 = 141;

/// `mlops … | head` closes our stdout early; printing then fails with a broken pipe, which
/// `println!` reports by panicking (exit 101 and a backtrace). Stop quietly instead, with the
/// status a Unix tool killed by SIGPIPE has.
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.contains("Broken pipe") {
            std::process::exit(BROKEN_PIPE_EXIT);
        }
        default(info);
    }));
}

#[tokio::main]
async fn main() -> ExitCode {
    quiet_on_broken_pipe();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_max_level(cli.log_level)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    match run(&cli).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            match e {
                // Bad input: what was asked cannot be done as asked (a malformed value, a
                // missing file or dataset, something this build does not support).
                mlops::Error::InvalidArgument { .. }
                | mlops::Error::NotFound { .. }
                | mlops::Error::NotSupported { .. } => ExitCode::from(2),
                _ => ExitCode::FAILURE,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_grouped_help_lists_every_command() {
        for sub in Cli::command().get_subcommands() {
            let name = sub.get_name();
            assert!(
                HELP.lines()
                    .any(|l| l.split_whitespace().next() == Some(name)),
                "the top-level help does not list {name}"
            );
        }
        Cli::command().debug_assert();
    }
}
