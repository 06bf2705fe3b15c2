//! `mlops train`: train a model on a dataset version (or a Parquet file) as a tracked run,
//! optionally register it, search hyper-parameters, or hand the run to Kubernetes as a Job.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use mlops::registry::DatasetLineage;
use mlops::storage::{Artifacts, Datasets, StoreRegistry, StoreTracker};
use mlops::train::{
    CandleTrainer, Goal, JobExport, SearchSpace, Strategy, TrainConfig, TrainingData, TrainingJob,
    Tuner, latest_checkpoint,
};
use mlops::train::{EpochReport, FitObserver};
use mlops::{CancelToken, Error, FitOptions, Result, Store, Tracker};

/// `mlops train` arguments.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Training data: a dataset in the store (NAME or NAME@VERSION) or a local .parquet file
    #[arg(
        long,
        value_name = "DATASET|FILE",
        required_unless_present = "features",
        conflicts_with = "features"
    )]
    data: Option<String>,
    /// Train on a feature service's point-in-time-correct training set of --entities instead
    /// (written as a dataset version with its lineage; the model reads the feature columns)
    #[arg(long, value_name = "SERVICE", requires = "entities")]
    features: Option<String>,
    /// The entity rows for --features: join keys, event_timestamp and the target (a Parquet
    /// file or a dataset NAME[@VERSION])
    #[arg(long, value_name = "DATASET|FILE", requires = "features")]
    entities: Option<String>,
    /// The feature project of --features (default: the one project defining the service)
    #[arg(long, value_name = "PROJECT", requires = "features")]
    feature_project: Option<String>,
    /// The dataset the training set is written to (default: SERVICE-training)
    #[arg(long, value_name = "NAME", requires = "features")]
    training_set: Option<String>,
    /// The folder relative Parquet feature-source paths start from
    #[arg(long, value_name = "DIR", default_value = ".", requires = "features")]
    feature_root: PathBuf,
    /// The column to predict
    #[arg(long)]
    target: String,
    /// linear (regression), logistic (binary), softmax (multi-class) or mlp
    #[arg(long, default_value = "logistic")]
    model: String,
    /// Passes over the training split
    #[arg(long)]
    epochs: Option<usize>,
    /// Initial learning rate
    #[arg(long)]
    learning_rate: Option<f64>,
    /// Rows per minibatch
    #[arg(long)]
    batch_size: Option<usize>,
    /// MLP hidden layer widths, e.g. 64,32
    #[arg(long)]
    hidden: Option<String>,
    /// MLP task: classification or regression
    #[arg(long)]
    task: Option<String>,
    /// sgd or adamw
    #[arg(long)]
    optimizer: Option<String>,
    /// Any other hyper-parameter, KEY=VALUE (l2, momentum, dropout, schedule, early_stopping,
    /// features, …). Repeatable
    #[arg(long = "param", value_name = "KEY=VALUE", value_parser = crate::key_value)]
    params: Vec<(String, String)>,
    /// auto (CUDA when built with it and present), cpu, cuda or cuda:N
    #[arg(long, default_value = "auto")]
    device: String,
    /// Seed for the split, shuffling and initial weights
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Share of rows held out for validation
    #[arg(long, default_value_t = 0.2)]
    validation: f64,
    /// The experiment the run goes to
    #[arg(long, default_value = "default")]
    experiment: String,
    /// The run's name
    #[arg(long)]
    run_name: Option<String>,
    /// Register the model under this name
    #[arg(long, value_name = "NAME")]
    register: Option<String>,
    /// Also write the model as a directory (`mlops serve --model-dir NAME=DIR` serves it)
    #[arg(long, value_name = "DIR")]
    output: Option<PathBuf>,
    /// Group fairness on the validation rows, as version tags and in the model card
    #[command(flatten)]
    groups: crate::explain::GroupArgs,
    /// Skip the assessment (permutation importance and fairness on the validation rows)
    #[arg(long, conflicts_with_all = ["sensitive", "privileged", "pos_label"])]
    no_assess: bool,
    /// Write a checkpoint into DIR every --checkpoint-every epochs, at the end and on Ctrl-C
    #[arg(long, value_name = "DIR")]
    checkpoint_dir: Option<PathBuf>,
    /// Epochs between checkpoints
    #[arg(long, default_value_t = 1)]
    checkpoint_every: usize,
    /// Continue from the newest checkpoint in --checkpoint-dir
    #[arg(long, requires = "checkpoint_dir")]
    resume: bool,
    /// Search hyper-parameters instead of one run: KEY=V1|V2 (values), KEY=LO..HI (uniform),
    /// KEY=LO..HI:log (log-uniform), KEY=LO..=HI (integers). Repeatable
    #[arg(long = "search", value_name = "SPEC")]
    search: Vec<String>,
    /// Random search with this many trials (default: grid search)
    #[arg(long, value_name = "N")]
    trials: Option<usize>,
    /// The metric that ranks trials (default: val_accuracy, or val_rmse for regression)
    #[arg(long)]
    objective: Option<String>,
    /// Trials at once (default: the core count)
    #[arg(long)]
    parallel: Option<usize>,
    /// Write a Kubernetes batch/v1 Job running this same command to FILE (- for stdout)
    /// instead of training here
    #[arg(long, value_name = "FILE", requires = "image")]
    emit_job: Option<String>,
    /// The Job's container image (holding the mlops binary)
    #[arg(long)]
    image: Option<String>,
    /// The Job's name (default: train-<target>)
    #[arg(long)]
    job_name: Option<String>,
    /// The Kubernetes Secret the Job's pod reads store credentials from: each
    /// --store-option KEY=secret:NAME becomes the variable NAME, from key NAME of this Secret
    /// (a plaintext credential is refused: it would be written into the manifest)
    #[arg(long, value_name = "NAME", default_value = "mlops-store")]
    job_secret: String,
    /// The Job's CPU request (e.g. 4)
    #[arg(long)]
    cpu: Option<String>,
    /// The Job's memory request (e.g. 8Gi)
    #[arg(long)]
    memory: Option<String>,
    /// GPUs for the Job (nvidia.com/gpu)
    #[arg(long, default_value_t = 0)]
    gpus: u32,
    /// No progress bar
    #[arg(long)]
    quiet: bool,
    /// Print the outcome as JSON
    #[arg(long)]
    json: bool,
}

impl TrainArgs {
    /// Whether this invocation only writes a Kubernetes Job.
    pub fn emits_job(&self) -> bool {
        self.emit_job.is_some()
    }

    fn config(&self) -> Result<TrainConfig> {
        let mut c = TrainConfig::new(self.model.parse()?);
        let mut set = |k: &str, v: Option<String>| match v {
            Some(v) => c.set(k, &v),
            None => Ok(()),
        };
        set("epochs", self.epochs.map(|v| v.to_string()))?;
        set("learning_rate", self.learning_rate.map(|v| v.to_string()))?;
        set("batch_size", self.batch_size.map(|v| v.to_string()))?;
        set("hidden", self.hidden.clone())?;
        set("task", self.task.clone())?;
        set("optimizer", self.optimizer.clone())?;
        set("device", Some(self.device.clone()))?;
        for (k, v) in &self.params {
            c.set(k, v)?;
        }
        c.validate()?;
        Ok(c)
    }

    fn options(&self) -> FitOptions {
        FitOptions::new(self.target.clone())
            .with_seed(self.seed)
            .with_validation_fraction(self.validation)
    }
}

/// Draws one bar over the epochs with the latest losses.
struct Progress(ProgressBar);

impl FitObserver for Progress {
    fn on_epoch(&self, r: &EpochReport) {
        let mut msg = format!("loss {:.4}", r.train_loss);
        if let Some(v) = r.val_loss {
            msg.push_str(&format!("  val_loss {v:.4}"));
        }
        for (k, v) in r.metrics.iter().filter(|(k, _)| *k != "learning_rate") {
            msg.push_str(&format!("  {k} {v:.4}"));
        }
        self.0.set_position(r.epoch as u64);
        self.0.set_message(msg);
    }
}

fn progress(epochs: usize, quiet: bool) -> Option<Arc<Progress>> {
    if quiet {
        return None;
    }
    let bar = ProgressBar::new(epochs as u64);
    bar.set_style(
        ProgressStyle::with_template("epoch {pos:>3}/{len} [{bar:30}] {elapsed_precise} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    Some(Arc::new(Progress(bar)))
}

/// The arguments of this invocation minus the Job-export flags (what the Job's pod runs).
/// The pod's arguments: this command's, without the export's own flags and without the store
/// options and secrets source, which the Job gets from [`mlops_k8s::pod_store_options`].
fn job_args(args: &[String]) -> Vec<String> {
    const DROP_WITH_VALUE: [&str; 9] = [
        "--emit-job",
        "--image",
        "--job-name",
        "--job-secret",
        "--cpu",
        "--memory",
        "--gpus",
        "--store-option",
        "--secrets",
    ];
    let mut out = Vec::new();
    let mut skip = false;
    for a in args.iter().skip(1) {
        if skip {
            skip = false;
            continue;
        }
        if DROP_WITH_VALUE.contains(&a.as_str()) {
            skip = true;
            continue;
        }
        if DROP_WITH_VALUE
            .iter()
            .any(|f| a.strip_prefix(f).is_some_and(|rest| rest.starts_with('=')))
        {
            continue;
        }
        out.push(a.clone());
    }
    out
}

/// The rows to train on and their dataset's metadata: `--data`, or the training set of
/// `--features` over `--entities`, written as a dataset version first.
async fn training_data(
    args: &TrainArgs,
    store: &Arc<dyn Store>,
    datasets: &Datasets,
) -> Result<(TrainingData, BTreeMap<String, String>)> {
    let (version, batches) = match (&args.data, &args.features, &args.entities) {
        (Some(data), _, _) if crate::datasets::is_local_file(data) => {
            let batches = crate::datasets::read_parquet(Path::new(data))?;
            return Ok((TrainingData::new(batches), BTreeMap::new()));
        }
        (Some(data), _, _) => {
            let (name, at) = crate::datasets::parse_ref(data)?;
            datasets.read_all(&name, at).await?
        }
        (None, Some(service), Some(entities)) => {
            use mlops::features::{FeatureSelection, FeatureStore, HistoricalOptions};
            use mlops::steps::features::{StoreSources, service_project, write_training_set};
            let rows = if crate::datasets::is_local_file(entities) {
                crate::datasets::read_parquet(Path::new(entities))?
            } else {
                let (name, at) = crate::datasets::parse_ref(entities)?;
                datasets.read_all(&name, at).await?.1
            };
            let fs = FeatureStore::new(
                store.clone(),
                Arc::new(StoreSources::new(store.clone(), &args.feature_root)),
            );
            let project =
                service_project(fs.registry(), args.feature_project.as_deref(), service).await?;
            let set = fs
                .get_historical_features(
                    &project,
                    &rows,
                    &FeatureSelection::service(service.clone()),
                    HistoricalOptions::default(),
                )
                .await?;
            let name = match &args.training_set {
                Some(n) => n.parse()?,
                None => format!("{service}-training").parse()?,
            };
            let v = write_training_set(
                datasets,
                &name,
                &set,
                mlops::storage::WriteOptions::default().with_message(format!(
                    "training set of {project}/{service} for mlops train"
                )),
            )
            .await?;
            eprintln!(
                "training set {}@{}: {} rows, features {}",
                v.name,
                v.version,
                v.manifest.rows,
                set.lineage.feature_columns.join(", ")
            );
            // Train on the rows just written, not a re-read of them.
            (v, vec![set.rows])
        }
        _ => return Err(Error::invalid("--data", "give --data or --features")),
    };
    let mut data = TrainingData::new(batches).with_source(DatasetLineage {
        name: version.name.clone(),
        version: version.version,
        digest: version.digest,
    });
    if let Ok(schema) = serde_json::to_string(&version.manifest.schema) {
        data = data.with_schema(schema);
    }
    Ok((data, version.manifest.metadata))
}

/// Writes the Job manifest for `mlops train … --emit-job FILE` (without opening the store).
pub fn emit_job(
    args: &TrainArgs,
    store_url: &str,
    store_options: &[(String, String)],
) -> Result<bool> {
    let (flag, input) = match (&args.data, &args.entities) {
        (Some(d), _) => ("--data", d),
        (None, Some(e)) => ("--entities", e),
        (None, None) => return Err(Error::invalid("--data", "give --data or --features")),
    };
    if crate::datasets::is_local_file(input) {
        return Err(Error::invalid(
            flag,
            format!(
                "{input} is a local file, which a pod cannot read: put it in the store first \
                 (mlops datasets put NAME {input})"
            ),
        ));
    }
    // A Job needs a store the cluster reaches (the same rule every export applies).
    mlops::k8s::check_store_url(store_url)?;
    args.config()?; // the pod would fail on the same bad hyper-parameters
    // Credentials travel as Secret references, never as text in the manifest.
    let pod_options = mlops::k8s::pod_store_options(store_options, &args.job_secret)?;
    let argv: Vec<String> = std::env::args().collect();
    let name = args
        .job_name
        .clone()
        .unwrap_or_else(|| mlops::k8s::dns_label(&format!("train-{}", args.target)));
    let mut pod_args = pod_options.args;
    pod_args.extend(job_args(&argv));
    let mut job = JobExport::new(name, args.image.clone().unwrap_or_default(), pod_args);
    job.env = pod_options.env;
    job.command = Some(vec!["mlops".to_owned()]);
    job.store_url = Some(store_url.to_owned());
    job.cpu = args.cpu.clone();
    job.memory = args.memory.clone();
    job.gpus = args.gpus;
    let yaml = job.to_yaml()?;
    match args.emit_job.as_deref() {
        Some("-") | None => print!("{yaml}"),
        Some(path) => {
            std::fs::write(path, &yaml).map_err(|e| Error::io("manifest", "write", path, e))?;
            eprintln!("wrote {path}: kubectl apply -f {path}");
        }
    }
    Ok(true)
}

fn print_metrics(metrics: &BTreeMap<String, f64>) {
    for (k, v) in metrics {
        println!("  {k:<20} {v:.6}");
    }
}

/// Runs `mlops train`.
pub async fn train(args: &TrainArgs, store: Arc<dyn Store>) -> Result<bool> {
    let mut config = args.config()?;
    let datasets = Datasets::new(store.clone());
    let (data, metadata) = training_data(args, &store, &datasets).await?;
    // A training set from the feature store trains on its feature columns.
    if config.features.is_none() {
        config.features = mlops::steps::features::feature_columns(&metadata)
            .map(|c| c.into_iter().filter(|c| *c != args.target).collect());
    }
    let tracker = Arc::new(StoreTracker::open(store.clone(), crate::durable()).await?);
    let job = TrainingJob::new(
        args.experiment.clone(),
        args.options(),
        tracker.clone(),
        Arc::new(Artifacts::new(store.clone())),
    );
    let cancel = CancelToken::new();
    let on_stop = cancel.clone();
    let stop = crate::stop_signal();
    tokio::spawn(async move {
        let why = stop.await;
        eprintln!("{why}: stopping after this epoch…");
        on_stop.cancel();
    });

    if !args.search.is_empty() {
        let result = search(args, config, &data, &job, &cancel).await;
        tracker.flush().await?;
        return result;
    }

    let mut trainer = CandleTrainer::new(config.clone());
    if let Some(dir) = &args.checkpoint_dir {
        trainer = trainer.with_checkpoints(dir, args.checkpoint_every);
        if args.resume {
            let latest = latest_checkpoint(dir)?.ok_or_else(|| {
                Error::not_found("checkpoint", format!("any in {}", dir.display()))
            })?;
            eprintln!("resuming from {}", latest.display());
            trainer = trainer.resume_from(latest);
        }
    }
    let mut job = job;
    if !args.no_assess {
        job = job.assess(Arc::new(args.groups.params().assessor(&metadata)?));
    }
    if let Some(name) = &args.run_name {
        job = job.run_name(name.clone());
    }
    if let Some(name) = &args.register {
        job = job.register(Arc::new(StoreRegistry::new(store.clone())), name.parse()?);
    }
    let bar = progress(config.epochs, args.quiet || args.json);
    if let Some(b) = bar.clone() {
        job = job.observer(b as Arc<dyn FitObserver>);
    }
    let outcome = job.run(Arc::new(trainer), &data, &cancel).await;
    if let Some(b) = &bar {
        b.0.finish();
    }
    tracker.flush().await?;
    let outcome = outcome?;
    if let Some(dir) = &args.output {
        mlops::serve::write_model_dir(&outcome.artifact, dir)?;
    }
    if args.json {
        let json = serde_json::json!({
            "run_id": outcome.run_id.as_str(),
            "metrics": outcome.metrics,
            "epochs": outcome.history.len(),
            "source": outcome.source,
            "version": outcome.version.as_ref().map(|v| v.version.get()),
            "model": outcome.version.as_ref().map(|v| v.name.to_string()),
        });
        crate::output::print_json(&json)?;
        return Ok(true);
    }
    println!(
        "run {} in experiment {}: {} epochs on {} rows",
        outcome.run_id,
        args.experiment,
        outcome.history.len(),
        data.batches.iter().map(|b| b.num_rows()).sum::<usize>()
    );
    print_metrics(&outcome.metrics);
    println!("  model                {}", outcome.source);
    if let Some(v) = &outcome.version {
        println!("registered models:/{}/{}", v.name, v.version);
    }
    if let Some(dir) = &args.output {
        println!("wrote {}", dir.display());
    }
    Ok(true)
}

async fn search(
    args: &TrainArgs,
    config: TrainConfig,
    data: &TrainingData,
    job: &TrainingJob,
    cancel: &CancelToken,
) -> Result<bool> {
    let mut space = SearchSpace::new();
    for spec in &args.search {
        space = space.parse_into(spec)?;
    }
    let strategy = match args.trials {
        Some(trials) => Strategy::Random {
            trials,
            seed: args.seed,
        },
        None => Strategy::Grid,
    };
    let objective = args.objective.clone().unwrap_or_else(|| {
        if config.task() == mlops::train::Task::Regression {
            "val_rmse".to_owned()
        } else {
            "val_accuracy".to_owned()
        }
    });
    let mut tuner = Tuner::new(config, space, strategy, objective.clone());
    if let Some(n) = args.parallel {
        tuner = tuner.parallelism(n);
    }
    let trials = tuner.trials()?.len();
    if !args.quiet && !args.json {
        eprintln!(
            "searching {trials} trials, ranked by {objective} ({:?})",
            Goal::for_metric(&objective)
        );
    }
    let outcome = tuner.run(job, data, cancel).await?;
    if args.json {
        let trials: Vec<_> = outcome
            .trials
            .iter()
            .map(|t| {
                serde_json::json!({
                    "run_id": t.run_id.as_ref().map(|r| r.as_str()),
                    "params": t.params,
                    "metrics": t.metrics,
                    "error": t.error,
                })
            })
            .collect();
        let json = serde_json::json!({
            "parent_run_id": outcome.parent_run_id.as_str(),
            "best": outcome.best,
            "trials": trials,
        });
        crate::output::print_json(&json)?;
        return Ok(true);
    }
    println!(
        "search run {} ({} trials)",
        outcome.parent_run_id,
        outcome.trials.len()
    );
    for (i, t) in outcome.trials.iter().enumerate() {
        let mark = if i == outcome.best { "*" } else { " " };
        let params: Vec<String> = t.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let result = match (&t.error, t.metrics.get(&objective)) {
            (Some(e), _) => format!("failed: {e}"),
            (None, Some(v)) => format!("{objective} {v:.6}"),
            (None, None) => "no objective".to_owned(),
        };
        println!("{mark} trial {i:<3} {:<40} {result}", params.join(" "));
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_args_drop_only_the_export_flags() {
        let argv: Vec<String> = [
            "mlops",
            "train",
            "--data",
            "churn",
            "--emit-job",
            "job.yaml",
            "--image=img:1",
            "--target",
            "y",
            "--gpus",
            "1",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            job_args(&argv),
            ["train", "--data", "churn", "--target", "y"]
        );
    }
}
