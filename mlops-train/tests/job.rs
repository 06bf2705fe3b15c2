#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Training as a tracked job (params, per-epoch metrics, dataset input, artifact, registered
//! version with metrics tags and lineage), served by `models:/` URI with no training code, and
//! hyper-parameter search with child runs.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray};
use futures::stream;
use mlops_core::registry::{DatasetLineage, RegistryExt};
use mlops_core::serve::{InferRequest, LoadOptions};
use mlops_core::store::RefVersion;
use mlops_core::tracker::SearchRunsOptions;
use mlops_core::{
    CancelToken, FitOptions, ModelArtifact, ModelUri, Registry, RunStatus, Server, Store, Tensor,
    Tracker, TrackerExt,
};
use mlops_serve::ModelServer;
use mlops_storage::{
    Artifacts, Datasets, ObjectStoreStore, StoreRegistry, StoreTracker, StoreTrackerOptions,
    WriteOptions,
};
use mlops_testkit::rng::SplitMix64;
use mlops_train::{
    CandleLoader, CandleTrainer, DeviceSpec, Domain, ModelCard, ModelKind, SearchSpace, Strategy,
    TrainConfig, TrainingData, TrainingJob, Tuner,
};

fn n(name: &str) -> mlops_core::ModelName {
    name.parse().unwrap()
}

/// Two numeric features and a plan; `label` is "yes" when 2a - b + [plan = pro] > 0.
fn data(n: usize, seed: u64) -> RecordBatch {
    let mut r = SplitMix64::new(seed);
    let (mut a, mut b, mut plan, mut label) = (vec![], vec![], vec![], vec![]);
    for _ in 0..n {
        let (x, y) = (r.normal(), r.normal());
        let pro = r.unit() > 0.5;
        let z = 2.0 * x - y + if pro { 1.0 } else { 0.0 } + r.normal() * 0.3;
        a.push(x);
        b.push(y);
        plan.push(if pro { "pro" } else { "basic" });
        label.push(if z > 0.0 { "yes" } else { "no" });
    }
    RecordBatch::try_from_iter([
        ("a", Arc::new(Float64Array::from(a)) as ArrayRef),
        ("b", Arc::new(Float64Array::from(b))),
        ("plan", Arc::new(StringArray::from(plan))),
        ("label", Arc::new(StringArray::from(label))),
    ])
    .unwrap()
}

struct Env {
    store: Arc<dyn Store>,
    datasets: Datasets,
    tracker: Arc<StoreTracker>,
    registry: Arc<StoreRegistry>,
    artifacts: Arc<Artifacts>,
}

impl Env {
    fn job(&self, experiment: &str, options: FitOptions) -> TrainingJob {
        TrainingJob::new(
            experiment,
            options,
            self.tracker.clone(),
            self.artifacts.clone(),
        )
    }
}

async fn env() -> Env {
    let store: Arc<dyn Store> = Arc::new(ObjectStoreStore::open("memory://", &[]).unwrap());
    Env {
        datasets: Datasets::new(store.clone()),
        tracker: Arc::new(
            StoreTracker::open(store.clone(), StoreTrackerOptions::default())
                .await
                .unwrap(),
        ),
        registry: Arc::new(StoreRegistry::new(store.clone())),
        artifacts: Arc::new(Artifacts::new(store.clone())),
        store,
    }
}

fn logistic(epochs: &str) -> TrainConfig {
    let mut c = TrainConfig::new(ModelKind::Logistic);
    c.device = DeviceSpec::Cpu;
    c.apply([("epochs", epochs), ("learning_rate", "0.05")])
        .unwrap();
    c
}

#[tokio::test]
async fn a_job_tracks_registers_and_the_server_loads_it_by_uri() {
    let env = env().await;
    let batch = data(2000, 1);
    let name = "signups".parse().unwrap();
    env.datasets
        .write(
            &name,
            batch.schema(),
            stream::iter([Ok(batch)]),
            WriteOptions::default(),
        )
        .await
        .unwrap();
    let (version, batches) = env
        .datasets
        .read_all(&name, RefVersion::Latest)
        .await
        .unwrap();
    let source = DatasetLineage {
        name: version.name,
        version: version.version,
        digest: version.digest,
    };
    let training = TrainingData::new(batches).with_source(source.clone());
    let model_name = "signup-model".parse().unwrap();
    let seen = Arc::new(std::sync::Mutex::new(0usize));
    let counter = seen.clone();
    let outcome = env
        .job("signups", FitOptions::new("label"))
        .run_name("logistic")
        .register(env.registry.clone(), model_name)
        .observer(Arc::new(move |_: &mlops_core::train::EpochReport| {
            *counter.lock().unwrap() += 1;
        }))
        .run(
            Arc::new(CandleTrainer::new(logistic("8"))),
            &training,
            &CancelToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        8,
        "the caller's observer sees every epoch"
    );
    assert!(
        outcome.metrics["val_accuracy"] > 0.85,
        "{:?}",
        outcome.metrics
    );

    // The run: params, one loss per epoch, the dataset input, the model files, the source tag.
    let run = env.tracker.get_run(&outcome.run_id).await.unwrap();
    assert_eq!(run.info.status, RunStatus::Finished);
    let params = &run.data.params;
    assert_eq!(params["model"], "logistic");
    assert_eq!(params["target"], "label");
    let history = env
        .tracker
        .metric_history(&outcome.run_id, &"train_loss".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(
        history.iter().map(|m| m.step).collect::<Vec<_>>(),
        (1..=8).collect::<Vec<_>>()
    );
    assert_eq!(run.inputs.dataset_inputs[0].dataset.name, "signups");
    assert_eq!(
        run.inputs.dataset_inputs[0].dataset.digest,
        source.digest.to_hex()
    );
    let card_bytes = env
        .tracker
        .get_artifact(&outcome.run_id, &"model/model_card.json".parse().unwrap())
        .await
        .unwrap();
    let card: ModelCard = serde_json::from_slice(&card_bytes).unwrap();
    assert_eq!(
        card.lineage.run_id.as_deref(),
        Some(outcome.run_id.as_str())
    );
    assert!(
        card.lineage.datasets[0].starts_with("signups@1 "),
        "{:?}",
        card.lineage
    );
    assert_eq!(run.data.tags["mlops.model.source"], outcome.source);

    // The version: source, signature, metrics tags for policies, lineage.
    let version = outcome.version.clone().unwrap();
    assert_eq!(version.source, outcome.source);
    assert_eq!(version.run_id.as_ref(), Some(&outcome.run_id));
    let acc: f64 = version.tags["metrics.val_accuracy"].parse().unwrap();
    assert_eq!(acc, outcome.metrics["val_accuracy"]);
    assert_eq!(version.lineage.datasets, [source]);
    let stored = env
        .registry
        .get_model_version(&"signup-model".parse().unwrap(), version.version)
        .await
        .unwrap();
    assert!(stored.signature.is_some());

    // A server that knows only the candle loader serves it by URI, typed as trained.
    let server = ModelServer::builder("test")
        .loader(Arc::new(CandleLoader::new()))
        .registry(
            Arc::new(env.registry.clone()),
            Arc::new(env.artifacts.clone()),
        )
        .build();
    let uri: ModelUri = "models:/signup-model/1".parse().unwrap();
    server
        .load(&n("signup-model"), LoadOptions::from_uri(uri.clone()))
        .await
        .unwrap();
    let inputs = vec![
        Tensor::from_f64("a", vec![2], &[2.0, -2.0]).unwrap(),
        Tensor::from_f64("b", vec![2], &[0.0, 1.0]).unwrap(),
        Tensor::from_byte_strings("plan", vec![2], &["pro", "basic"]).unwrap(),
    ];
    let answer = server
        .infer(InferRequest::new(n("signup-model"), inputs.clone()))
        .await
        .unwrap();
    let labels = answer.outputs[0].to_byte_strings().unwrap();
    assert_eq!(labels, [b"yes".as_slice(), b"no"]);
    assert_eq!(answer.outputs, outcome.model.predict(&inputs).unwrap());
    // The server checks inputs against the signature before the model sees them.
    let wrong = vec![
        Tensor::from_f64("a", vec![1], &[2.0]).unwrap(),
        Tensor::from_f64("b", vec![1], &[0.0]).unwrap(),
        Tensor::from_f64("plan", vec![1], &[1.0]).unwrap(),
    ];
    let e = server
        .infer(InferRequest::new(n("signup-model"), wrong))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("plan"), "{e}");

    // The artifact in the store is the outcome's artifact, loadable on its own.
    let resolved = env.registry.resolve(&uri).await.unwrap();
    let fetched: ModelArtifact =
        mlops_core::model::ArtifactSource::fetch(&env.artifacts, &resolved)
            .await
            .unwrap();
    assert_eq!(fetched, outcome.artifact);
    // Storing it again is idempotent (content-addressed).
    let again = mlops_core::ModelSink::store_model(&env.artifacts, &fetched)
        .await
        .unwrap();
    assert_eq!(again, outcome.source);
    let _ = env.store;
}

#[tokio::test]
async fn a_failed_fit_fails_the_run_and_registers_nothing() {
    let env = env().await;
    let training = TrainingData::new(vec![data(100, 2)]);
    let e = env
        .job("bad", FitOptions::new("missing"))
        .register(env.registry.clone(), "never".parse().unwrap())
        .run(
            Arc::new(CandleTrainer::new(logistic("2"))),
            &training,
            &CancelToken::new(),
        )
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("\"missing\" is not in the data"),
        "{e}"
    );
    let runs = env
        .tracker
        .search_all_runs(SearchRunsOptions::default())
        .await
        .unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].info.status, RunStatus::Failed);
    assert!(runs[0].data.tags["mlops.error"].contains("missing"));
    assert!(
        env.registry
            .get_registered_model(&"never".parse().unwrap())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn grid_search_runs_trials_as_child_runs_and_picks_the_best() {
    let env = env().await;
    let training = TrainingData::new(vec![data(1500, 3)]);
    let space = SearchSpace::new()
        .choice("learning_rate", ["0.00001", "0.05"])
        .with("epochs", Domain::Int { low: 1, high: 2 });
    let tuner = Tuner::new(logistic("1"), space, Strategy::Grid, "val_accuracy").parallelism(2);
    let outcome = tuner
        .run(
            &env.job("search", FitOptions::new("label")),
            &training,
            &CancelToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(outcome.trials.len(), 4);
    let best = outcome.best_trial();
    assert_eq!(best.params["learning_rate"], "0.05");
    let best_acc = best.metrics["val_accuracy"];
    assert!(
        outcome
            .trials
            .iter()
            .all(|t| t.metrics["val_accuracy"] <= best_acc)
    );

    let children = env
        .tracker
        .search_all_runs(SearchRunsOptions::default())
        .await
        .unwrap();
    let parent = children
        .iter()
        .find(|r| r.info.run_id == outcome.parent_run_id)
        .unwrap();
    assert_eq!(parent.info.status, RunStatus::Finished);
    assert_eq!(
        parent.data.tags["mlops.best_run_id"],
        best.run_id.as_ref().unwrap().as_str()
    );
    let kids: Vec<_> = children
        .iter()
        .filter(|r| r.parent_run_id() == Some(outcome.parent_run_id.as_str()))
        .collect();
    assert_eq!(kids.len(), 4);
    for kid in kids {
        assert_eq!(kid.info.status, RunStatus::Finished);
        assert!(kid.data.params.contains_key("learning_rate"));
    }

    // A bad search space fails before any run exists.
    let bad = Tuner::new(
        logistic("1"),
        SearchSpace::new().choice("batch_size", ["0"]),
        Strategy::Grid,
        "val_accuracy",
    );
    let e = bad
        .run(
            &env.job("search", FitOptions::new("label")),
            &training,
            &CancelToken::new(),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("batch_size"), "{e}");
}

#[tokio::test]
async fn random_search_survives_failing_trials() {
    let env = env().await;
    // Some trials diverge (huge SGD steps on a regression), the others succeed.
    let mut r = SplitMix64::new(4);
    let x: Vec<f64> = (0..300).map(|_| r.normal() * 10.0).collect();
    let y: Vec<f64> = x.iter().map(|v| 3.0 * v + 1.0).collect();
    let batch = RecordBatch::try_from_iter([
        ("x", Arc::new(Float64Array::from(x)) as ArrayRef),
        ("y", Arc::new(Float64Array::from(y))),
    ])
    .unwrap();
    let mut base = TrainConfig::new(ModelKind::Linear);
    base.device = DeviceSpec::Cpu;
    base.apply([("optimizer", "sgd"), ("epochs", "30")])
        .unwrap();
    let space = SearchSpace::new().choice("learning_rate", ["1000", "0.05"]);
    let outcome = Tuner::new(
        base,
        space,
        Strategy::Random { trials: 6, seed: 9 },
        "val_rmse",
    )
    .run(
        &env.job("random", FitOptions::new("y")),
        &TrainingData::new(vec![batch]),
        &CancelToken::new(),
    )
    .await
    .unwrap();
    let failed: Vec<_> = outcome
        .trials
        .iter()
        .filter(|t| t.error.is_some())
        .collect();
    assert!(
        !failed.is_empty() && failed.len() < 6,
        "{:?}",
        outcome.trials
    );
    for t in &failed {
        assert_eq!(t.params["learning_rate"], "1000");
        assert!(t.error.as_ref().unwrap().contains("diverged"));
        let run = env
            .tracker
            .get_run(t.run_id.as_ref().unwrap())
            .await
            .unwrap();
        assert_eq!(run.info.status, RunStatus::Failed);
    }
    assert_eq!(outcome.best_trial().params["learning_rate"], "0.05");
}
