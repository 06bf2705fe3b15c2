//! The main job, end to end on the embedded default.
//!
//! ```text
//! cargo run --release --example quickstart
//! ```
//!
//! It generates data and versions it as a Parquet dataset in the store, reads it back, trains a
//! small linear model by gradient descent, tracks the run (params, the dataset as an input, a loss
//! per epoch, the weights as an artifact), registers the model with its lineage (run and dataset
//! version with digest) and signature, moves the `champion` alias to it, serves
//! `models:/quickstart-linear@champion` with a `ModelServer` (loaded from the registry through
//! the deploy gate, as the `linear` flavor) and asks it for predictions, and prints a summary. Registration and promotion go through policy: the registry is `Governed` by the
//! shipped Rego library (lineage required, approval and a test-MSE threshold before `champion`),
//! and every decision lands in a hash-chained decision log that is verified at the end. A drift
//! reference profile of the training data is stored beside the version and two windows of
//! "production" data are tested against it (one unchanged, one shifted).
//!
//! Data, runs, artifacts and the registry all live in one store, the embedded default: a local
//! directory (`./mlops-data`). Pick another with `-- --store <URL>` or `$MLOPS_STORE`
//! (`memory://`, `s3://…` with the `s3` feature). Run it twice: the dataset, the experiment's runs
//! and the model's versions accumulate. Later issues grow this into the whole retraining loop.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context, bail};
use arrow::array::{ArrayRef, AsArray, Float64Array, RecordBatch};
use arrow::datatypes::{DataType as ArrowType, Field, Float64Type, Schema};
use futures::{TryStreamExt, stream};
use mlops::core::drift::{DetectOptions, DriftDetector, ProfileOptions};
use mlops::core::policy::GOVERNANCE_PATH;
use mlops::core::serve::{InferRequest, LoadOptions};
use mlops::drift::{StatDetector, profiles};
use mlops::policy::{DecisionLog, Governed, Logged, RegoPolicyEngine};
use mlops::registry::{
    CreateModelOptions, CreateVersionOptions, DatasetLineage, Lineage, RegistryObject,
};
use mlops::serve::linear::Link;
use mlops::serve::{LinearModel, LinearParams, ModelServer};
use mlops::storage::{
    Artifacts, DEFAULT_STORE, Datasets, ObjectStoreStore, ReadOptions, StoreRegistry, StoreTracker,
    StoreTrackerOptions, WriteOptions,
};
use mlops::store::RefVersion;
use mlops::tracker::{CreateRunOptions, LogBatch, SearchRunsOptions};
use mlops::tracking::{Dataset, DatasetInput, tags};
use mlops::{
    ArtifactPath, Metric, Model, ModelUri, Param, PolicyEngine, Registry, RegistryExt, RunStatus,
    Server, Store, Tag, Tensor, Tracker, TrackerExt,
};

/// A small deterministic generator (SplitMix64), so the example needs no RNG dependency and
/// prints the same numbers every time.
struct SplitMix(u64);

impl SplitMix {
    fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `y = 3x + 2` plus uniform noise in ±0.25, for x in [0, 1).
fn generate(n: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
    let mut rng = SplitMix(seed);
    let xs: Vec<f64> = (0..n).map(|_| rng.next_f64()).collect();
    let ys = xs
        .iter()
        .map(|x| 3.0 * x + 2.0 + (rng.next_f64() - 0.5) * 0.5)
        .collect();
    (xs, ys)
}

fn mse(w: f64, b: f64, xs: &[f64], ys: &[f64]) -> f64 {
    xs.iter()
        .zip(ys)
        .map(|(x, y)| (w * x + b - y).powi(2))
        .sum::<f64>()
        / xs.len() as f64
}

/// A batch of the `x`, `y` columns.
fn xy_batch(xs: Vec<f64>, ys: Vec<f64>) -> anyhow::Result<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("x", ArrowType::Float64, false),
        Field::new("y", ArrowType::Float64, false),
    ]));
    Ok(RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Float64Array::from(xs)) as ArrayRef,
            Arc::new(Float64Array::from(ys)),
        ],
    )?)
}

/// `--store <URL>`, else `$MLOPS_STORE`, else `./mlops-data`.
fn store_url() -> String {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == "--store") {
        Some(i) => args.get(i + 1).cloned().unwrap_or_default(),
        None => std::env::var("MLOPS_STORE").unwrap_or_else(|_| DEFAULT_STORE.to_owned()),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = store_url();
    let store: Arc<dyn Store> = Arc::new(ObjectStoreStore::open(&url, &[])?);
    let datasets = Datasets::new(store.clone());
    let tracker = StoreTracker::open(store.clone(), StoreTrackerOptions::default()).await?;
    // Registry writes are decided by the shipped policy library: lineage is required to
    // register, approval and test MSE <= 0.05 to take `champion`. Decisions are logged.
    let in_git = Lineage::current_git_commit().is_some();
    let mut policy_data = serde_json::json!({"mlops": {"thresholds": {"test_mse": {"max": 0.05}}}});
    if !in_git {
        // Outside a git checkout there is no commit to record: drop that rule, say so.
        policy_data["mlops"]["disabled"] = serde_json::json!(["lineage"]);
    }
    let engine: Arc<dyn PolicyEngine> = Arc::new(
        RegoPolicyEngine::builder()
            .library()?
            .data(policy_data)?
            .build()?,
    );
    let log = Arc::new(DecisionLog::open_default(store.clone()).await?);
    let registry =
        Governed::new(StoreRegistry::new(store.clone()), engine.clone()).with_log(log.clone());

    // 1. Data, versioned as a Parquet dataset in the store, and read back from it.
    let (xs, ys) = generate(1_000, 7);
    let batch = xy_batch(xs, ys)?;
    let schema = batch.schema();
    let dataset_name = "quickstart-xy".parse()?;
    let data = datasets
        .write(
            &dataset_name,
            schema,
            stream::iter([Ok(batch)]),
            WriteOptions::default()
                .with_metadata("source", "generated: y = 3x + 2 + uniform noise")
                .with_metadata("license", "CC0-1.0"),
        )
        .await?;
    let read = datasets
        .read(
            &dataset_name,
            RefVersion::Exact(data.version),
            ReadOptions::default(),
        )
        .await?;
    let batches: Vec<RecordBatch> = read.batches.try_collect().await?;
    let column = |name: &str| -> Vec<f64> {
        batches
            .iter()
            .flat_map(|b| b[name].as_primitive::<Float64Type>().values().to_vec())
            .collect()
    };
    let (xs, ys) = (column("x"), column("y"));
    let (train_x, test_x) = xs.split_at(800);
    let (train_y, test_y) = ys.split_at(800);
    let experiment = tracker
        .get_or_create_experiment(&"quickstart".parse()?)
        .await?;
    let run = tracker
        .create_run(
            CreateRunOptions::default()
                .in_experiment(experiment.clone())
                .with_name("linear-gd"),
        )
        .await?;
    let run_id = run.info.run_id.clone();
    tracker
        .log_inputs(
            &run_id,
            vec![DatasetInput {
                dataset: Dataset {
                    name: dataset_name.to_string(),
                    digest: data.digest.to_hex(),
                    source_type: "mlops-store".into(),
                    source: format!("datasets/{dataset_name}@{}", data.version),
                    schema: Some(serde_json::to_string(&data.manifest.schema)?),
                    profile: Some(serde_json::json!({"rows": data.manifest.rows}).to_string()),
                },
                tags: BTreeMap::from([(tags::DATASET_CONTEXT.to_owned(), "training".to_owned())]),
            }],
        )
        .await?;

    // 2. Train, logging params once and the loss every epoch.
    let (lr, epochs) = (0.5, 60);
    tracker
        .log_batch(
            &run_id,
            LogBatch::new()
                .param(Param::new("lr".parse()?, lr.to_string())?)
                .param(Param::new("epochs".parse()?, epochs.to_string())?)
                .param(Param::new("rows".parse()?, train_x.len().to_string())?),
        )
        .await?;
    let (mut w, mut b) = (0.0f64, 0.0f64);
    let n = train_x.len() as f64;
    for epoch in 0..epochs {
        let (mut gw, mut gb) = (0.0, 0.0);
        for (x, y) in train_x.iter().zip(train_y) {
            let err = w * x + b - y;
            gw += 2.0 * err * x / n;
            gb += 2.0 * err / n;
        }
        w -= lr * gw;
        b -= lr * gb;
        let batch = LogBatch::new()
            .metric(Metric::new(
                "train_mse".parse()?,
                mse(w, b, train_x, train_y),
                epoch,
            ))
            .metric(Metric::new(
                "test_mse".parse()?,
                mse(w, b, test_x, test_y),
                epoch,
            ));
        tracker.log_batch(&run_id, batch).await?;
    }

    // 3. Save the model: a `linear` artifact any ModelServer loads without this code, kept in
    //    the store (its source for the registry) and logged with the run.
    let model = LinearModel::new(LinearParams {
        coef: vec![vec![w]],
        intercept: vec![b],
        link: Link::Identity,
    })?;
    let model_artifact = model.to_artifact()?;
    let artifacts = Artifacts::new(store.clone());
    let tree = artifacts.put_model(&model_artifact).await?;
    let model_path: ArtifactPath = "model/linear.json".parse()?;
    let artifact = tracker
        .put_artifact(
            &run_id,
            &model_path,
            model_artifact.file("linear.json")?.clone(),
        )
        .await?;
    tracker.end_run(&run_id, RunStatus::Finished).await?;

    // 4. Register it, with lineage and signature, and make it the champion.
    let name = "quickstart-linear".parse()?;
    // The store keeps the model from earlier runs of this example: each run adds a version.
    match registry
        .create_registered_model(
            &name,
            CreateModelOptions::default()
                .with_description("y = w·x + b, fitted by gradient descent"),
        )
        .await
    {
        Ok(_) => {}
        Err(e) if e.is_already_exists() => {}
        Err(e) => return Err(e.into()),
    }
    let signature = model.signature().clone();
    let test_mse = mse(w, b, test_x, test_y);
    let version = registry
        .create_model_version(
            &name,
            CreateVersionOptions::new(Artifacts::model_source(&tree))
                .with_run_id(run_id.clone())
                .with_tag(Tag::new("metrics.test_mse".parse()?, test_mse.to_string())?)
                .with_signature(signature)
                .with_lineage(Lineage {
                    run_id: Some(run_id.clone()),
                    datasets: vec![DatasetLineage {
                        name: dataset_name.clone(),
                        version: data.version,
                        digest: data.digest,
                    }],
                    git_commit: None,
                }),
        )
        .await?;
    // The drift reference: a profile of the training data, stored beside the version.
    let detector = StatDetector::new();
    let profile = detector.profile(&batches, &ProfileOptions::default())?;
    profiles::attach(
        store.as_ref(),
        registry.inner(),
        &name,
        version.version,
        &profile,
    )
    .await?;

    // Promotion without approval is denied, with the policy's reasons; a reviewer approves
    // (here: the example itself, after checking the metric), and the alias moves.
    let champion_alias = "champion".parse()?;
    let denied = match registry
        .set_alias(&name, &champion_alias, version.version)
        .await
    {
        Err(mlops::Error::PolicyDenied { reasons, .. }) => reasons,
        Err(e) => return Err(e.into()),
        Ok(()) => bail!("the policy let an unapproved version become champion"),
    };
    registry
        .set_tag(
            &RegistryObject::Version(name.clone(), version.version),
            Tag::new("approved".parse()?, "true")?,
        )
        .await?;
    registry
        .set_alias(&name, &champion_alias, version.version)
        .await?;

    // 5. Serve the champion: a ModelServer loads models:/quickstart-linear@champion from the
    //    registry (the deploy gate asks the same policies) and answers an inference request.
    let uri: ModelUri = "models:/quickstart-linear@champion".parse()?;
    let champion = registry.resolve(&uri).await?;
    let server = ModelServer::builder("quickstart")
        .registry(
            Arc::new(StoreRegistry::new(store.clone())),
            Arc::new(artifacts),
        )
        .policy(
            Arc::new(Logged::new(engine.clone(), log.clone())),
            GOVERNANCE_PATH,
        )
        .build();
    server
        .load("quickstart-linear", LoadOptions::from_uri(uri.clone()))
        .await?;
    log.flush().await?; // the deploy decision joins the audit trail
    let input = Tensor::from_f32("x", vec![3, 1], &[0.0, 0.5, 1.0])?;
    let answer = server
        .infer(InferRequest::new("quickstart-linear", vec![input.clone()]))
        .await?;
    let output = answer
        .outputs
        .into_iter()
        .next()
        .context("the model answers y")?;

    // 6. Drift: production windows tested against the stored reference profile.
    let reference =
        profiles::for_version(store.as_ref(), registry.inner(), &name, champion.version).await?;
    let (same_x, same_y) = generate(500, 11);
    let (moved_x, moved_y) = generate(500, 12);
    let moved_x: Vec<f64> = moved_x.iter().map(|x| x + 0.5).collect();
    let moved_y: Vec<f64> = moved_y
        .iter()
        .zip(&moved_x)
        .map(|(y, x)| y + 1.5 * (x - 0.5))
        .collect();
    let window_same = detector.detect(
        &reference,
        &[xy_batch(same_x, same_y)?],
        &DetectOptions::default(),
    )?;
    let window_moved = detector.detect(
        &reference,
        &[xy_batch(moved_x, moved_y)?],
        &DetectOptions::default(),
    )?;

    // 7. Every governance decision is in the log; its hash chain must verify.
    let verified = mlops::policy::log::verify(store.as_ref(), log.name()).await?;
    if !verified.is_ok() {
        bail!("the decision log does not verify: {:?}", verified.first_bad);
    }

    // 8. Summary, read back through the tracker's search like any client would.
    let best = tracker
        .search_all_runs(
            SearchRunsOptions::default()
                .in_experiment(experiment.clone())
                .with_filter(format!(
                    "metrics.test_mse < 0.05 AND params.lr = '0.5' AND datasets.name = '{dataset_name}'"
                )),
        )
        .await?;
    let final_run = tracker.get_run(&run_id).await?;
    let history = tracker
        .metric_history(&run_id, &"train_mse".parse()?)
        .await?;
    println!("mlops quickstart (store: {url})");
    println!(
        "  dataset      {dataset_name}@{}: {} rows, {} columns, {} bytes of zstd Parquet, manifest {}",
        data.version,
        data.manifest.rows,
        data.manifest.schema.len(),
        data.manifest.bytes,
        &data.digest.to_hex()[..16]
    );
    println!(
        "  experiment   quickstart ({})",
        final_run.info.experiment_id
    );
    println!(
        "  run          {} {} ({}), {} params, {} loss points",
        final_run.info.run_name,
        final_run.info.run_id,
        final_run.info.status,
        final_run.data.params.len(),
        history.len()
    );
    println!(
        "  training     w = {w:.4}, b = {b:.4} (true 3, 2); train mse {:.5} -> {:.5}; test mse {:.5}",
        history.first().map_or(f64::NAN, |m| m.value),
        history.last().map_or(f64::NAN, |m| m.value),
        final_run.metric("test_mse").unwrap_or(f64::NAN)
    );
    println!(
        "  artifact     {model_path} ({} bytes, blake3 {})",
        artifact.size,
        &artifact.digest.to_hex()[..16]
    );
    println!(
        "  registered   {} version {} from {}, trained on {}",
        champion.name,
        champion.version,
        champion.source,
        champion
            .lineage
            .datasets
            .iter()
            .map(|d| format!("{}@{}", d.name, d.version))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "  governed     champion without approval denied: {}",
        denied.join("; ")
    );
    println!(
        "  served       {uri} -> version {} (ModelServer, deploy gate passed)",
        answer.model_version.as_deref().unwrap_or("?")
    );
    println!(
        "  predicted    {} {:?} -> {:?}",
        output.name(),
        input.to_f32()?,
        output
            .to_f32()?
            .iter()
            .map(|v| (v * 1000.0).round() / 1000.0)
            .collect::<Vec<_>>()
    );
    println!(
        "  search       'metrics.test_mse < 0.05 AND params.lr = 0.5 AND datasets.name = …' -> {} run(s) in the store",
        best.len()
    );
    let describe = |r: &mlops::core::drift::DriftReport| {
        r.columns
            .iter()
            .map(|c| {
                format!(
                    "{} {} {:.3}{}",
                    c.column,
                    c.test,
                    c.score,
                    if c.drifted { " drift" } else { "" }
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "  drift        unchanged window: dataset drift {} ({}); shifted window: dataset drift {} ({})",
        window_same.dataset_drift,
        describe(&window_same),
        window_moved.dataset_drift,
        describe(&window_moved)
    );
    println!(
        "  decision log {} decisions in {} segments, hash chain verified (head {}){}",
        verified.verified,
        verified.segments,
        &verified.head.hash[..16],
        if in_git {
            ""
        } else {
            "; no git checkout, lineage rule disabled"
        }
    );
    if window_same.dataset_drift || !window_moved.dataset_drift {
        bail!("drift detection disagrees with how the windows were generated");
    }
    if !best.iter().any(|r| r.info.run_id == run_id) {
        bail!("training did not converge: test mse is not below 0.05");
    }
    Ok(())
}
