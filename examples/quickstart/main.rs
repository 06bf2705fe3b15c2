//! The main job: the whole MLOps loop, end to end, on the embedded default.
//!
//! ```text
//! cargo run --release --example quickstart                          # ./mlops-data
//! cargo run --release --example quickstart -- --store memory://
//! cargo run --release --example quickstart -- --store s3://bucket/prefix   (feature s3)
//! ```
//!
//! 1. Data and features: generate customer-churn data (numbers and categories); version the
//!    customers' profiles (by `customer_id`, as of a time) and their churn labels as Parquet
//!    datasets, and apply the feature repo (`examples/features/churn.yaml`: the view
//!    `customer_profile` over the profiles, the service `churn_v1`).
//! 2. Train: a pipeline (labels → point-in-time-correct training set of `churn_v1` → train →
//!    promote) trains a logistic regression on candle over the service's features as a
//!    tracked run and registers it, assessed on its validation rows: permutation importance
//!    and, since the dataset declares `region` sensitive, group fairness with bootstrap
//!    intervals (as version tags, in the model card and in a model report). The registry is
//!    governed by the shipped Rego library — accuracy and fairness thresholds, approval: the
//!    first promotion to `champion` is denied for lack of approval; a reviewer approves, and the
//!    re-run pipeline serves data and training from its cache and only promotes.
//! 3. Serve: the profiles are materialized into the embedded online store; a `ModelServer`
//!    loads `models:/churn@champion` through the deploy gate, looks each request's features up
//!    by `customer_id` in process (a request carrying only the key gets an answer; features it
//!    carries win) and serves the Open Inference Protocol over HTTP on 127.0.0.1.
//! 4. Drift: production traffic shifts (longer tenure, higher charges, more "pro" plans); the
//!    labelled production data is stored, and the retraining pipeline's monitor compares it
//!    with the champion's stored reference profile (HTML report written).
//! 5. Retrain: the monitor's decision (drift share > 0.3 or accuracy drop > 0.05) triggers
//!    training on the new data; the challenger is validated against the champion and assessed
//!    for fairness on the same production data, and takes the `canary` alias when the gate
//!    allows it.
//! 6. Canary: a reviewer approves the challenger for live traffic (the deploy gate asks), the
//!    server routes 20% of requests to it, and when its live accuracy holds against the
//!    champion's on the same traffic it is promoted and the server switches to it.
//! 7. Hand-over: the retraining pipeline as an Argo Workflow and the champion as a KServe
//!    InferenceService; the decision log's hash chain is verified; a summary is printed.
//!
//! Everything lives in one store: pick it with `--store <URL>` or `$MLOPS_STORE`. Run it twice:
//! datasets, runs and model versions accumulate, and unchanged pipeline steps come from cache.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use futures::stream;
use mlops::drift::{Report, StatDetector, profiles};
use mlops::features::{
    EmbeddedOnlineStore, FeatureLookup, FeatureRepo, FeatureSelection, FeatureStore,
    MaterializeOptions, OnlineFeatures,
};
use mlops::pipeline::export::PipelineExport;
use mlops::pipeline::{PipelineReport, PipelineSpec, Runner, StepStatus};
use mlops::policy::GOVERNANCE_PATH;
use mlops::policy::{DecisionLog, Governed, Logged, RegoPolicyEngine};
use mlops::registry::{Lineage, RegistryObject};
use mlops::serve::LoadOptions;
use mlops::serve::kserve::KServeExport;
use mlops::serve::{HttpOptions, ModelServer, Routing};
use mlops::steps::features::StoreSources;
use mlops::steps::{ModelRef, MonitorDecision, StepEnv, Verdict, builtin};
use mlops::storage::{
    Artifacts, DEFAULT_STORE, Datasets, ObjectStoreStore, StoreRegistry, StoreTracker,
    StoreTrackerOptions, WriteOptions,
};
use mlops::{
    DriftDetector, ModelName, ModelUri, PolicyEngine, Registry, RegistryExt, Store, Tag, Tracker,
};

/// A small deterministic generator (SplitMix64), so every run sees the same data.
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let (u, v) = (self.unit().max(1e-12), self.unit());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

const PLANS: [&str; 3] = ["basic", "plus", "pro"];
const REGIONS: [&str; 4] = ["north", "south", "east", "west"];

/// Customers: tenure (months), monthly charges, support calls, plan and region; `churned` from a
/// logistic rule. `shift` moves production: longer tenure, higher charges, more "pro" — and
/// "pro" customers start to leave.
fn customers(n: usize, seed: u64, shift: f64) -> anyhow::Result<RecordBatch> {
    let mut r = Rng(seed);
    let (mut tenure, mut charges, mut calls) = (vec![], vec![], vec![]);
    let (mut plan, mut region, mut churned) = (vec![], vec![], vec![]);
    for _ in 0..n {
        let t = (r.unit() * 60.0 + shift * 30.0).round();
        let p = if r.unit() < 0.2 + shift * 0.5 {
            2
        } else {
            (r.unit() * 2.0) as usize
        };
        let c = 30.0 + 25.0 * p as f64 + r.normal() * 8.0 + shift * 25.0;
        let k = (r.unit() * 4.0 + r.unit() * 2.0).floor();
        let pro = f64::from(u8::from(p == 2));
        // Production also changes behaviour: a competitor's offer makes "pro" customers leave.
        let z = -0.06 * t + 0.04 * (c - 60.0) + 0.5 * k - 0.6 * pro
            + 0.5
            + shift * (2.5 * pro + 0.03 * t - 1.5);
        let p_churn = 1.0 / (1.0 + (-z).exp());
        tenure.push(t);
        charges.push((c * 100.0).round() / 100.0);
        calls.push(k as i64);
        plan.push(PLANS[p]);
        region.push(REGIONS[(r.unit() * 4.0) as usize % 4]);
        churned.push(r.unit() < p_churn);
    }
    Ok(RecordBatch::try_from_iter([
        (
            "tenure_months",
            Arc::new(Float64Array::from(tenure)) as ArrayRef,
        ),
        ("monthly_charges", Arc::new(Float64Array::from(charges))),
        ("support_calls", Arc::new(Int64Array::from(calls))),
        ("plan", Arc::new(StringArray::from(plan))),
        ("region", Arc::new(StringArray::from(region))),
        ("churned", Arc::new(BooleanArray::from(churned))),
    ])?)
}

/// 2026-11-01T00:00:00Z, when the customers' profiles were taken (µs since the epoch).
const PROFILED_US: i64 = 1_793_491_200_000_000;
/// Two weeks later, when whether they churned was known.
const LABELLED_US: i64 = PROFILED_US + 14 * 86_400_000_000;

/// The feature repo: customer profiles by `customer_id`, the service `churn_v1`.
const FEATURES: &str = include_str!("../features/churn.yaml");

/// `batch`'s customers (ids from `first_id`) as the feature source — `customer_id`,
/// `event_timestamp` and the profile — and as labels: `customer_id`, `event_timestamp`,
/// `churned`.
fn feature_tables(
    batch: &RecordBatch,
    first_id: i64,
) -> anyhow::Result<(RecordBatch, RecordBatch)> {
    let n = batch.num_rows();
    let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(
        first_id..first_id + i64::try_from(n)?,
    ));
    let at = |t: i64| -> ArrayRef {
        Arc::new(TimestampMicrosecondArray::from(vec![t; n]).with_timezone("UTC"))
    };
    let mut profile: Vec<(&str, ArrayRef)> = vec![
        ("customer_id", ids.clone()),
        ("event_timestamp", at(PROFILED_US)),
    ];
    for name in [
        "tenure_months",
        "monthly_charges",
        "support_calls",
        "plan",
        "region",
    ] {
        profile.push((name, batch[name].clone()));
    }
    let labels = RecordBatch::try_from_iter([
        ("customer_id", ids),
        ("event_timestamp", at(LABELLED_US)),
        ("churned", batch["churned"].clone()),
    ])?;
    Ok((RecordBatch::try_from_iter(profile)?, labels))
}

/// `--store <URL>`, else `$MLOPS_STORE`, else `./mlops-data`.
fn store_url() -> String {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == "--store") {
        Some(i) => args.get(i + 1).cloned().unwrap_or_default(),
        None => std::env::var("MLOPS_STORE").unwrap_or_else(|_| DEFAULT_STORE.to_owned()),
    }
}

/// The training pipeline: the latest `churn` data, a logistic regression registered as
/// `churn`, promoted to `champion` (which policy gates).
const TRAIN: &str = include_str!("../pipelines/churn-train.yaml");

/// The retraining loop: monitor production against the champion, retrain on the newest data
/// when the rule fires, validate the challenger, put it on the canary alias.
const RETRAIN: &str = include_str!("../pipelines/churn-retrain.yaml");

/// One row of a batch as Open Inference Protocol JSON inputs: the customer's id, and its
/// features unless `keys_only` (the server looks them up then).
fn infer_body(batch: &RecordBatch, row: usize, id: i64, keys_only: bool) -> serde_json::Value {
    let key =
        serde_json::json!({"name": "customer_id", "datatype": "INT64", "shape": [1], "data": [id]});
    if keys_only {
        return serde_json::json!({ "inputs": [key] });
    }
    let f = |name: &str| -> f64 {
        batch[name]
            .as_any()
            .downcast_ref::<Float64Array>()
            .map_or(0.0, |a| a.value(row))
    };
    let s = |name: &str| -> String {
        batch[name]
            .as_any()
            .downcast_ref::<StringArray>()
            .map_or(String::new(), |a| a.value(row).to_owned())
    };
    let calls = batch["support_calls"]
        .as_any()
        .downcast_ref::<Int64Array>()
        .map_or(0, |a| a.value(row));
    serde_json::json!({"inputs": [
        key,
        {"name": "tenure_months", "datatype": "FP64", "shape": [1], "data": [f("tenure_months")]},
        {"name": "monthly_charges", "datatype": "FP64", "shape": [1], "data": [f("monthly_charges")]},
        {"name": "support_calls", "datatype": "INT64", "shape": [1], "data": [calls]},
        {"name": "plan", "datatype": "BYTES", "shape": [1], "data": [s("plan")]},
        {"name": "region", "datatype": "BYTES", "shape": [1], "data": [s("region")]},
    ]})
}

fn label(batch: &RecordBatch, row: usize) -> bool {
    batch["churned"]
        .as_any()
        .downcast_ref::<BooleanArray>()
        .is_some_and(|a| a.value(row))
}

/// Live results per served version: requests, errors, correct predictions.
#[derive(Debug, Default)]
struct Live {
    requests: usize,
    errors: usize,
    correct: usize,
}

impl Live {
    fn accuracy(&self) -> f64 {
        self.correct as f64 / self.requests.max(1) as f64
    }
}

/// Sends rows `rows` of `batch` (customer ids from `first_id`) to the server over HTTP, one
/// request per row — only the id when `keys_only` — and scores the answers against the labels,
/// by the version that answered.
async fn send(
    client: &reqwest::Client,
    base: &str,
    batch: &RecordBatch,
    rows: std::ops::Range<usize>,
    first_id: i64,
    keys_only: bool,
) -> anyhow::Result<BTreeMap<String, Live>> {
    let mut live: BTreeMap<String, Live> = BTreeMap::new();
    for row in rows {
        let id = first_id + i64::try_from(row)?;
        let resp = client
            .post(format!("{base}/v2/models/churn/infer"))
            .header("X-Routing-Key", format!("customer-{id}"))
            .json(&infer_body(batch, row, id, keys_only))
            .send()
            .await?;
        let ok = resp.status().is_success();
        let body: serde_json::Value = resp.json().await?;
        let version = body["model_version"].as_str().unwrap_or("?").to_owned();
        let entry = live.entry(version).or_default();
        entry.requests += 1;
        if !ok {
            entry.errors += 1;
            continue;
        }
        let predicted = body["outputs"][0]["data"][0].as_bool();
        if predicted == Some(label(batch, row)) {
            entry.correct += 1;
        }
    }
    Ok(live)
}

fn status_line(report: &PipelineReport) -> String {
    report
        .steps
        .iter()
        .map(|s| {
            let st = match s.status {
                StepStatus::Succeeded => "ran",
                StepStatus::Cached => "cached",
                StepStatus::Failed => "FAILED",
                StepStatus::Skipped => "skipped",
                StepStatus::Cancelled => "cancelled",
                StepStatus::Bypassed => "bypassed",
            };
            format!("{} {st}", s.name)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

async fn approve(registry: &dyn Registry, version: mlops::Version) -> anyhow::Result<()> {
    registry
        .set_tag(
            &RegistryObject::Version("churn".parse()?, version),
            Tag::new("approved".parse()?, "true")?,
        )
        .await?;
    Ok(())
}

/// The version's fairness tags against the gate's thresholds, e.g. `demographic_parity_ratio
/// 0.93 [0.88, 0.98] (min 0.8)`.
async fn fairness_line(registry: &dyn Registry, version: mlops::Version) -> anyhow::Result<String> {
    let v = registry
        .get_model_version(&"churn".parse()?, version)
        .await?;
    let show = |name: &str, bound: &str| {
        let key = format!("fairness.{name}");
        let get = |k: &str| v.tags.get(k).and_then(|t| t.parse::<f64>().ok());
        match get(&key) {
            Some(value) => {
                let interval = get(&format!("{key}.low"))
                    .zip(get(&format!("{key}.high")))
                    .map(|(l, h)| format!(" [{l:.3}, {h:.3}]"))
                    .unwrap_or_default();
                format!("{name} {value:.3}{interval} ({bound})")
            }
            None => format!("{name} not measured ({bound})"),
        }
    };
    Ok(format!(
        "{}, {}",
        show("demographic_parity_ratio", "min 0.8"),
        show("equalized_odds_difference", "max 0.2")
    ))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let started = Instant::now();
    let url = store_url();
    let store: Arc<dyn Store> = Arc::new(ObjectStoreStore::open(&url, &[])?);
    let out_dir = PathBuf::from("quickstart-out");
    std::fs::create_dir_all(&out_dir)?;
    let datasets = Datasets::new(store.clone());
    let tracker: Arc<dyn Tracker> =
        Arc::new(StoreTracker::open(store.clone(), StoreTrackerOptions::default()).await?);
    let artifacts = Arc::new(Artifacts::new(store.clone()));

    // Governance: the shipped Rego library; champion needs approval, val_accuracy >= 0.7 and
    // fair treatment of regions (demographic parity ratio >= 0.8, equalized odds difference
    // <= 0.2, measured on the validation rows); every decision goes to the hash-chained log in
    // the store.
    let mut policy_data = serde_json::json!({"mlops": {"thresholds": {
        "val_accuracy": {"min": 0.7},
        "fairness.demographic_parity_ratio": {"min": 0.8},
        "fairness.equalized_odds_difference": {"max": 0.2},
    }}});
    if Lineage::current_git_commit().is_none() {
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
    let registry: Arc<dyn Registry> = Arc::new(
        Governed::new(StoreRegistry::new(store.clone()), engine.clone()).with_log(log.clone()),
    );
    let steps = builtin(StepEnv {
        store: store.clone(),
        tracker: tracker.clone(),
        registry: registry.clone(),
        experiment: "quickstart".into(),
    });
    let runner = Runner::new(store.clone()).tracker(tracker.clone(), "pipelines");
    let mut summary: Vec<String> = Vec::new();

    // 1. Data and features: profiles by customer_id as of a time, labels two weeks later.
    let train_batch = customers(5_000, 7, 0.0)?;
    let (profiles_batch, labels_batch) = feature_tables(&train_batch, 0)?;
    let profiles_written = datasets
        .write(
            &"customer-profiles".parse()?,
            profiles_batch.schema(),
            stream::iter([Ok(profiles_batch)]),
            WriteOptions::default()
                .with_metadata("source", "generated churn customers")
                .with_metadata("license", "CC0-1.0"),
        )
        .await?;
    let labels_written = datasets
        .write(
            &"churn-labels".parse()?,
            labels_batch.schema(),
            stream::iter([Ok(labels_batch)]),
            WriteOptions::default()
                .with_metadata("source", "churn outcomes two weeks after profiling")
                .with_metadata("license", "CC0-1.0")
                // Fairness is measured across regions at every training and validation; the
                // training set carries this over.
                .with_metadata("sensitive", "region"),
        )
        .await?;
    let features = FeatureStore::new(
        store.clone(),
        Arc::new(StoreSources::new(store.clone(), ".")),
    );
    let applied = features
        .registry()
        .apply(&FeatureRepo::from_yaml(FEATURES)?)
        .await?;
    summary.push(format!(
        "data         customer-profiles@{}: {} customers x {} columns (numbers and categories); churn-labels@{}: {} labels",
        profiles_written.version,
        profiles_written.manifest.rows,
        profiles_written.manifest.schema.len(),
        labels_written.version,
        labels_written.manifest.rows,
    ));
    summary.push(format!(
        "features     project churn at registry version {} ({}): view customer_profile (5 features by customer_id), service churn_v1",
        applied.applied.version,
        if applied.plan.is_empty() { "unchanged".to_owned() } else { format!("{} changes applied", applied.plan.changes.len()) }
    ));

    // 2. Train, register, promote under policy.
    let train = PipelineSpec::from_yaml(TRAIN)?.build(&steps)?;
    let first = runner.run(&train).await?;
    let training_set: mlops::steps::DatasetRef = first
        .step("data")
        .context("training_set step")?
        .outputs
        .get("dataset")
        .context("a training set")?
        .get()?;
    summary.push(format!(
        "             training set churn@{}: {} labelled rows joined point-in-time with churn_v1 (lineage in its metadata)",
        training_set.version, training_set.rows
    ));
    let model_out = &first.step("train").context("train step")?.outputs;
    let model: ModelRef = model_out.get("model").context("a trained model")?.get()?;
    let (_, version) = model.registered().context("a registered version")?;
    let accuracy = model
        .metrics
        .get("val_accuracy")
        .copied()
        .unwrap_or(f64::NAN);
    summary.push(format!(
        "train        pipeline churn-train: {}; churn v{version} (logistic on candle, val_accuracy {accuracy:.3}, run {})",
        status_line(&first),
        model.run_id.as_ref().map_or("?", |r| r.as_str())
    ));
    // The model report the assessment logged with the training run.
    let report_html = out_dir.join("model-report.html");
    if let Some(run_id) = &model.run_id {
        let html = tracker
            .get_artifact(run_id, &"assessment/report.html".parse()?)
            .await?;
        std::fs::write(&report_html, &html)?;
    }
    summary.push(format!(
        "fairness     churn v{version} by region: {}; report {}",
        fairness_line(registry.as_ref(), version).await?,
        report_html.display()
    ));
    let promote = first.step("promote").context("promote step")?;
    let champion_version = if promote.status == StepStatus::Failed {
        summary.push(format!(
            "governance   champion denied: {}",
            match &promote.error {
                Some(mlops::Error::PolicyDenied { reasons, .. }) => reasons.join("; "),
                other => format!("{other:?}"),
            }
        ));
        approve(registry.as_ref(), version).await?;
        let again = runner.run(&train).await?.into_result()?;
        summary.push(format!(
            "             reviewer approved v{version}; re-run: {}",
            status_line(&again)
        ));
        version
    } else {
        // An earlier run of this example approved it already.
        summary.push("governance   champion already approved (an earlier run)".into());
        version
    };

    // 3. Serve the champion over HTTP on 127.0.0.1, its features looked up by customer_id in
    // the embedded online store.
    let online = Arc::new(EmbeddedOnlineStore::open(out_dir.join("online.redb"))?);
    let materialized = features
        .materialize(
            "churn",
            online.as_ref(),
            PROFILED_US.saturating_mul(1_000) - 86_400_000_000_000,
            mlops::features::online::now_ns(),
            &MaterializeOptions::default(),
        )
        .await?;
    let lookup = FeatureLookup::new(
        OnlineFeatures::open(features.clone(), online, "churn").await?,
        FeatureSelection::service("churn_v1"),
    );
    let server = Arc::new(
        ModelServer::builder("quickstart")
            .preprocessor("churn".parse()?, Arc::new(lookup))
            .loader(Arc::new(mlops::train::CandleLoader::new()))
            .registry(
                Arc::new(StoreRegistry::new(store.clone())),
                artifacts.clone(),
            )
            .policy(
                Arc::new(Logged::new(engine.clone(), log.clone())),
                GOVERNANCE_PATH,
            )
            .build(),
    );
    let champion_uri: ModelUri = "models:/churn@champion".parse()?;
    let churn: ModelName = "churn".parse()?;
    mlops::Server::load(
        server.as_ref(),
        &churn,
        LoadOptions::from_uri(champion_uri.clone()),
    )
    .await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let router = mlops::serve::http::model_server_router(server.clone(), HttpOptions::default());
    let http = tokio::spawn(mlops::serve::http::serve(listener, router, async {
        let _ = stop_rx.await;
    }));
    let base = format!("http://{addr}");
    let client = reqwest::Client::new();
    let by_key = send(&client, &base, &train_batch, 0..200, 0, true).await?;
    let by_key_accuracy = by_key
        .values()
        .map(Live::accuracy)
        .next()
        .unwrap_or(f64::NAN);
    let by_key_errors: usize = by_key.values().map(|l| l.errors).sum();
    summary.push(format!(
        "features     materialized {} profile rows ({} entities written) into quickstart-out/online.redb; 200 requests carrying only customer_id: features looked up in process, {by_key_errors} errors, live accuracy {by_key_accuracy:.3}",
        materialized.views.iter().map(|v| v.rows_in_window).sum::<usize>(),
        materialized.views.iter().map(|v| v.written).sum::<usize>()
    ));
    if by_key_errors > 0 {
        bail!("{by_key_errors} requests by customer_id failed");
    }
    let calm = customers(400, 11, 0.0)?;
    let live = send(&client, &base, &calm, 0..200, 100_000, false).await?;
    let champion_live = live
        .get(&champion_version.to_string())
        .map_or(0.0, Live::accuracy);
    summary.push(format!(
        "serve        {base} (Open Inference Protocol): 200 requests -> v{champion_version}, live accuracy {champion_live:.3}"
    ));

    // 4. Production shifts; labelled production data is stored and monitored.
    let production = customers(1_500, 13, 1.0)?;
    let live_shifted = send(&client, &base, &production, 0..200, 200_000, false).await?;
    let shifted_accuracy = live_shifted
        .values()
        .map(Live::accuracy)
        .next()
        .unwrap_or(f64::NAN);
    datasets
        .write(
            &"churn-production".parse()?,
            production.schema(),
            stream::iter([Ok(production.clone())]),
            WriteOptions::default()
                .with_metadata("source", "production traffic with feedback labels")
                .with_metadata("sensitive", "region"),
        )
        .await?;
    // The newest training data: the original customers and the labelled production ones.
    let combined = arrow::compute::concat_batches(
        &train_batch.schema(),
        &[train_batch.clone(), production.clone()],
    )?;
    datasets
        .write(
            &"churn".parse()?,
            combined.schema(),
            stream::iter([Ok(combined)]),
            WriteOptions::default().with_metadata("sensitive", "region"),
        )
        .await?;
    let champion = registry.resolve(&champion_uri).await?;
    let profile = profiles::for_version(
        store.as_ref(),
        registry.as_ref(),
        &"churn".parse()?,
        champion.version,
    )
    .await?;
    let detector = StatDetector::new();
    let drift = detector.detect(
        &profile,
        std::slice::from_ref(&production),
        &Default::default(),
    )?;
    let html = out_dir.join("drift.html");
    let report = Report::new(
        &drift,
        &profile,
        std::slice::from_ref(&production),
        format!("churn v{} training data", champion.version),
        "churn-production",
    )?;
    std::fs::write(&html, report.to_html())?;
    // Kept in the tracker too, beside the monitor's reports: `mlops ui` shows them over time.
    mlops::drift::history::log_report(
        tracker.as_ref(),
        &report,
        Some((&champion.name, champion.version)),
    )
    .await?;
    summary.push(format!(
        "drift        production: {} of {} columns drifted (share {:.2}); live accuracy {shifted_accuracy:.3}; report {}",
        drift.drifted_columns,
        drift.columns_judged(),
        drift.share_drifted,
        html.display()
    ));

    // 5. The retraining loop.
    let retrain = PipelineSpec::from_yaml(RETRAIN)?.build(&steps)?;
    let looped = runner.run(&retrain).await?.into_result()?;
    let decision: MonitorDecision =
        looped.step("monitor").context("monitor")?.outputs["decision"].get()?;
    summary.push(format!(
        "monitor      retrain = {}: {}",
        decision.retrain,
        decision.reasons.join("; ")
    ));
    summary.push(format!(
        "retrain      pipeline churn-retrain: {}",
        status_line(&looped)
    ));
    let Some(challenger) = looped
        .step("retrain")
        .and_then(|s| s.outputs.get("model"))
        .and_then(|m| m.get::<ModelRef>().ok())
        .and_then(|m| m.version)
    else {
        bail!("the shifted production data did not trigger retraining: {decision:?}");
    };
    let verdict: Verdict = looped.step("validate").context("validate")?.outputs["verdict"].get()?;
    summary.push(format!(
        "validate     challenger v{challenger}: {}",
        verdict.reason
    ));
    summary.push(format!(
        "fairness     challenger v{challenger} by region on churn-production: {}",
        fairness_line(registry.as_ref(), challenger).await?
    ));

    // 6. Canary: the deploy gate wants approval before any traffic reaches a version, so a
    //    reviewer approves the validated challenger; 20% of live traffic goes to it, and it is
    //    promoted when it holds.
    approve(registry.as_ref(), challenger).await?;
    let canary_uri: ModelUri = "models:/churn@canary".parse()?;
    mlops::Server::load(server.as_ref(), &churn, LoadOptions::from_uri(canary_uri)).await?;
    server.set_routing(
        &churn,
        Routing::to(champion.version).with_canary(challenger, 20),
    )?;
    let canary_live = send(&client, &base, &production, 200..1_200, 200_000, false).await?;
    let (old, new) = (
        canary_live.get(&champion.version.to_string()),
        canary_live.get(&challenger.to_string()),
    );
    let (old_acc, new_acc) = (
        old.map_or(0.0, Live::accuracy),
        new.map_or(0.0, Live::accuracy),
    );
    let new_requests = new.map_or(0, |l| l.requests);
    let errors: usize = canary_live.values().map(|l| l.errors).sum();
    summary.push(format!(
        "canary       20% to v{challenger}: {new_requests} of 1000 requests, live accuracy {new_acc:.3} vs champion {old_acc:.3}, {errors} errors"
    ));
    if errors > 0 || new_requests == 0 || new_acc + 0.02 < old_acc {
        bail!("the canary did not hold; the champion stays");
    }
    registry
        .set_alias(&churn, &"champion".parse()?, challenger)
        .await?;
    server.set_routing(&churn, Routing::to(challenger))?;
    mlops::Server::unload(server.as_ref(), &churn, Some(champion.version)).await?;
    let after = send(&client, &base, &production, 1_200..1_400, 200_000, false).await?;
    summary.push(format!(
        "promote      v{challenger} (approved for the canary) promoted to champion; now serving {:?}",
        after.keys().collect::<Vec<_>>()
    ));
    let _ = stop_tx.send(());
    http.await??;

    // 7. Hand-over and audit.
    let deploy = out_dir.join("deploy");
    std::fs::create_dir_all(&deploy)?;
    let mut export = PipelineExport::new(
        "ghcr.io/acme/mlops:latest",
        vec![
            "mlops".into(),
            "pipeline".into(),
            "run".into(),
            "/etc/mlops/retrain.yaml".into(),
        ],
    );
    export.store_url = Some("s3://acme-ml/prod".into());
    std::fs::write(deploy.join("workflow.yaml"), export.argo_yaml(&retrain)?)?;
    let isvc = KServeExport::new(
        "churn",
        "ghcr.io/acme/mlops:latest",
        "models:/churn@champion".parse()?,
        "s3://acme-ml/prod",
    );
    std::fs::write(deploy.join("inferenceservice.yaml"), isvc.to_yaml()?)?;
    std::fs::write(deploy.join("retrain.yaml"), RETRAIN)?;
    log.flush().await?;
    let verified = mlops::policy::log::verify(store.as_ref(), log.name()).await?;
    if !verified.is_ok() {
        bail!("the decision log does not verify: {:?}", verified.first_bad);
    }
    tracker.flush().await?;
    summary.push(format!(
        "hand-over    {} (Argo Workflow), {} (KServe), {}",
        deploy.join("workflow.yaml").display(),
        deploy.join("inferenceservice.yaml").display(),
        deploy.join("retrain.yaml").display()
    ));
    summary.push(format!(
        "audit        {} policy decisions, hash chain verified",
        verified.verified
    ));

    println!("mlops quickstart (store: {url})");
    for line in &summary {
        println!("  {line}");
    }
    println!("  done in {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}
