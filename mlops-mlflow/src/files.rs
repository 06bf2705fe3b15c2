//! MLflow's file-store layout (`mlruns/`), written from any [`Tracker`] and [`Registry`], so that
//! MLflow's own client (with `MLFLOW_ALLOW_FILE_STORE=true`) and UI read our experiments, runs,
//! metric histories, artifacts and registered models.
//!
//! The layout is MLflow 2.x's (`mlflow/store/tracking/file_store.py`,
//! `mlflow/store/model_registry/file_store.py`), which 3.x still reads.

use std::path::{Path, PathBuf};

use mlops_core::registry::TransitionOptions;
use mlops_core::registry::{ModelVersion, Registry, RegistryExt, SearchRegistryOptions};
use mlops_core::tracker::{SearchExperimentsOptions, SearchRunsOptions, Tracker, TrackerExt};
use mlops_core::tracking::{LifecycleStage, Run, ViewType};
use mlops_core::{Error, Result};
use serde::Serialize;

/// What [`export_mlflow`] wrote or [`import_mlflow`] read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MlflowTransfer {
    /// Experiments (on import: created or matched by name).
    pub experiments: usize,
    /// Runs (on import: created anew, tagged [`IMPORTED_RUN_ID_TAG`]).
    pub runs: usize,
    /// Metric values, every value of every history.
    pub metric_values: usize,
    /// Artifact files.
    pub artifacts: usize,
    /// Registered models.
    pub models: usize,
    /// Model versions.
    pub model_versions: usize,
    /// Dataset inputs of runs (`<run>/inputs/…`, the datasets under `<experiment>/datasets/…`).
    pub dataset_inputs: usize,
}

/// MLflow's id of a dataset in an experiment: the MD5 of its name then its digest
/// (`FileStore._get_dataset_id`).
fn dataset_dir_id(name: &str, digest: &str) -> String {
    use md5::Digest as _;
    let mut h = md5::Md5::new();
    h.update(name.as_bytes());
    h.update(digest.as_bytes());
    hex(&h.finalize())
}

/// MLflow's id of a run's input: the MD5 of the dataset id then the run id
/// (`FileStore._get_dataset_input_id`).
fn input_dir_id(dataset_id: &str, run_id: &str) -> String {
    use md5::Digest as _;
    let mut h = md5::Md5::new();
    h.update(dataset_id.as_bytes());
    h.update(run_id.as_bytes());
    hex(&h.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `<experiment>/datasets/<id>/meta.yaml`: MLflow's `Dataset` properties, sorted.
#[derive(Serialize)]
struct DatasetMeta<'a> {
    digest: &'a str,
    name: &'a str,
    profile: Option<&'a str>,
    schema: Option<&'a str>,
    source: &'a str,
    source_type: &'a str,
}

/// `<run>/inputs/<id>/meta.yaml`: an edge from a dataset to the run, with the input's tags
/// (`FileStore._FileStoreInput`). MLflow writes the dataset id as `destination_id` too; we
/// write the run id, which is what the field means (MLflow's reader uses only `source_id`).
#[derive(Serialize)]
struct InputMeta<'a> {
    destination_id: &'a str,
    destination_type: &'a str,
    source_id: &'a str,
    source_type: &'a str,
    tags: &'a std::collections::BTreeMap<String, String>,
}

#[derive(Serialize)]
struct ExperimentMeta<'a> {
    artifact_location: String,
    creation_time: i64,
    experiment_id: &'a str,
    last_update_time: i64,
    lifecycle_stage: &'a str,
    name: &'a str,
}

#[derive(Serialize)]
struct RunMeta<'a> {
    artifact_uri: String,
    deleted_time: Option<i64>,
    end_time: Option<i64>,
    entry_point_name: &'a str,
    experiment_id: &'a str,
    lifecycle_stage: &'a str,
    run_id: &'a str,
    run_name: &'a str,
    run_uuid: &'a str,
    source_name: &'a str,
    source_type: i32,
    source_version: &'a str,
    start_time: i64,
    status: i32,
    tags: Vec<String>,
    user_id: &'a str,
}

#[derive(Serialize)]
struct ModelMeta<'a> {
    creation_timestamp: i64,
    description: &'a str,
    last_updated_timestamp: i64,
    name: &'a str,
}

#[derive(Serialize)]
struct VersionMeta<'a> {
    creation_timestamp: i64,
    current_stage: &'a str,
    description: &'a str,
    last_updated_timestamp: i64,
    name: &'a str,
    run_id: Option<&'a str>,
    run_link: Option<&'a str>,
    source: &'a str,
    status: &'a str,
    status_message: Option<&'a str>,
    storage_location: Option<&'a str>,
    user_id: Option<&'a str>,
    version: u64,
}

/// A filesystem failure to `action` the `what` at `path`.
fn io<'a>(
    what: &'static str,
    action: &'static str,
    path: &'a Path,
) -> impl Fn(std::io::Error) -> Error + 'a {
    move |e| Error::io(what, action, path, e)
}

fn write_file(path: &Path, data: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io("output directory", "create", parent))?;
    }
    std::fs::write(path, data).map_err(io("output file", "write", path))
}

fn write_yaml<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_yaml_ng::to_string(value).map_err(|e| Error::backend("yaml", e))?;
    write_file(path, text.as_bytes())
}

/// `a/b` keys become nested files, as in MLflow's file store.
fn key_path(dir: &Path, key: &str) -> PathBuf {
    key.split('/').fold(dir.to_path_buf(), |p, s| p.join(s))
}

/// Python's `str(float)` closely enough for MLflow's reader (`float()` parses it back exactly).
fn py_float(v: f64) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf".into() } else { "-inf".into() }
    } else {
        format!("{v:?}")
    }
}

fn file_uri(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// Writes every experiment, run (params, full metric histories, tags, artifacts) and registered
/// model version of `tracker` and `registry` under `out` in MLflow's file-store layout. `out`
/// must not exist yet or be empty.
pub async fn export_mlflow(
    tracker: &dyn Tracker,
    registry: &dyn Registry,
    out: &Path,
) -> Result<MlflowTransfer> {
    if out.exists()
        && std::fs::read_dir(out)
            .map_err(io("output directory", "read", out))?
            .next()
            .is_some()
    {
        return Err(Error::invalid(
            "output",
            format!(
                "{} is not empty; export into a new directory",
                out.display()
            ),
        ));
    }
    std::fs::create_dir_all(out).map_err(io("output directory", "create", out))?;
    let root = out
        .canonicalize()
        .map_err(io("output directory", "read", out))?;
    let mut report = MlflowTransfer::default();

    let experiments = tracker
        .search_all_experiments(SearchExperimentsOptions::default().with_view_type(ViewType::All))
        .await?;
    for e in &experiments {
        // MLflow moves deleted experiments to `.trash/`.
        let dir = match e.lifecycle_stage {
            LifecycleStage::Active => root.join(e.experiment_id.as_str()),
            LifecycleStage::Deleted => root.join(".trash").join(e.experiment_id.as_str()),
        };
        write_yaml(
            &dir.join("meta.yaml"),
            &ExperimentMeta {
                artifact_location: file_uri(&dir),
                creation_time: e.creation_time,
                experiment_id: e.experiment_id.as_str(),
                last_update_time: e.last_update_time,
                lifecycle_stage: e.lifecycle_stage.as_str(),
                name: e.name.as_str(),
            },
        )?;
        for (k, v) in &e.tags {
            write_file(&key_path(&dir.join("tags"), k.as_str()), v.as_bytes())?;
        }
        report.experiments += 1;
        let runs = tracker
            .search_all_runs(
                SearchRunsOptions::default()
                    .in_experiment(e.experiment_id.clone())
                    .with_view_type(ViewType::All)
                    .with_max_results(mlops_core::tracker::limits::MAX_SEARCH_RUNS),
            )
            .await?;
        for run in runs {
            export_run(tracker, &dir, &run, &mut report).await?;
        }
    }

    let mut options = SearchRegistryOptions::default().with_max_results(1000);
    loop {
        let page = registry.search_registered_models(options.clone()).await?;
        for model in &page.items {
            let dir = root.join("models").join(model.name.as_str());
            write_yaml(
                &dir.join("meta.yaml"),
                &ModelMeta {
                    creation_timestamp: model.creation_timestamp,
                    description: &model.description,
                    last_updated_timestamp: model.last_updated_timestamp,
                    name: model.name.as_str(),
                },
            )?;
            for (k, v) in &model.tags {
                write_file(&key_path(&dir.join("tags"), k.as_str()), v.as_bytes())?;
            }
            for (alias, version) in &model.aliases {
                write_file(
                    &dir.join("aliases").join(alias.as_str()),
                    version.to_string().as_bytes(),
                )?;
            }
            for v in registry.list_versions(&model.name).await? {
                export_version(&dir, &v)?;
                report.model_versions += 1;
            }
            report.models += 1;
        }
        match page.next_page_token {
            Some(t) => options.page_token = Some(t),
            None => break,
        }
    }
    Ok(report)
}

async fn export_run(
    tracker: &dyn Tracker,
    exp_dir: &Path,
    run: &Run,
    report: &mut MlflowTransfer,
) -> Result<()> {
    let i = &run.info;
    let dir = exp_dir.join(i.run_id.as_str());
    write_yaml(
        &dir.join("meta.yaml"),
        &RunMeta {
            artifact_uri: file_uri(&dir.join("artifacts")),
            deleted_time: None,
            end_time: i.end_time,
            entry_point_name: "",
            experiment_id: i.experiment_id.as_str(),
            lifecycle_stage: i.lifecycle_stage.as_str(),
            run_id: i.run_id.as_str(),
            run_name: &i.run_name,
            run_uuid: i.run_id.as_str(),
            source_name: "",
            source_type: 4,
            source_version: "",
            start_time: i.start_time,
            status: i.status.code(),
            tags: Vec::new(),
            user_id: &i.user_id,
        },
    )?;
    for (k, v) in &run.data.params {
        write_file(&key_path(&dir.join("params"), k.as_str()), v.as_bytes())?;
    }
    for (k, v) in &run.data.tags {
        write_file(&key_path(&dir.join("tags"), k.as_str()), v.as_bytes())?;
    }
    for key in run.data.metrics.keys() {
        let mut text = String::new();
        for m in tracker.metric_history(&i.run_id, key).await? {
            text.push_str(&format!(
                "{} {} {}\n",
                m.timestamp_ms,
                py_float(m.value),
                m.step
            ));
            report.metric_values += 1;
        }
        write_file(
            &key_path(&dir.join("metrics"), key.as_str()),
            text.as_bytes(),
        )?;
    }
    // MLflow only recognises a run directory that has all of these, empty or not.
    for sub in ["metrics", "params", "tags", "artifacts"] {
        let sub = dir.join(sub);
        std::fs::create_dir_all(&sub).map_err(io("output directory", "create", &sub))?;
    }
    for input in &run.inputs.dataset_inputs {
        let d = &input.dataset;
        let dataset_id = dataset_dir_id(&d.name, &d.digest);
        let dataset_meta = exp_dir.join("datasets").join(&dataset_id).join("meta.yaml");
        if !dataset_meta.exists() {
            write_yaml(
                &dataset_meta,
                &DatasetMeta {
                    digest: &d.digest,
                    name: &d.name,
                    profile: d.profile.as_deref(),
                    schema: d.schema.as_deref(),
                    source: &d.source,
                    source_type: &d.source_type,
                },
            )?;
        }
        let input_id = input_dir_id(&dataset_id, i.run_id.as_str());
        write_yaml(
            &dir.join("inputs").join(input_id).join("meta.yaml"),
            &InputMeta {
                destination_id: i.run_id.as_str(),
                destination_type: "RUN",
                source_id: &dataset_id,
                source_type: "DATASET",
                tags: &input.tags,
            },
        )?;
        report.dataset_inputs += 1;
    }
    for a in tracker.list_artifacts(&i.run_id, None).await? {
        let data = tracker.get_artifact(&i.run_id, &a.path).await?;
        write_file(&key_path(&dir.join("artifacts"), a.path.as_str()), &data)?;
        report.artifacts += 1;
    }
    report.runs += 1;
    Ok(())
}

fn export_version(model_dir: &Path, v: &ModelVersion) -> Result<()> {
    let dir = model_dir.join(format!("version-{}", v.version));
    write_yaml(
        &dir.join("meta.yaml"),
        &VersionMeta {
            creation_timestamp: v.creation_timestamp,
            current_stage: v.current_stage.as_str(),
            description: &v.description,
            last_updated_timestamp: v.last_updated_timestamp,
            name: v.name.as_str(),
            run_id: v.run_id.as_ref().map(|r| r.as_str()),
            run_link: v.run_link.as_deref(),
            source: &v.source,
            status: "READY",
            status_message: v.status_message.as_deref(),
            storage_location: None,
            user_id: v.user_id.as_deref(),
            version: v.version.get(),
        },
    )?;
    for (k, val) in &v.tags {
        write_file(&key_path(&dir.join("tags"), k.as_str()), val.as_bytes())?;
    }
    Ok(())
}

/// The tag that records, on an imported run, its id in the MLflow store it came from.
pub const IMPORTED_RUN_ID_TAG: &str = "mlops.import.run_id";

fn read_yaml(path: &Path) -> Result<serde_yaml_ng::Value> {
    let text = std::fs::read_to_string(path).map_err(io("mlflow store", "read", path))?;
    serde_yaml_ng::from_str(&text).map_err(|e| {
        Error::invalid(
            "mlflow store",
            format!("{} is not valid YAML", path.display()),
        )
        .with_source(e)
    })
}

fn yaml_str(v: &serde_yaml_ng::Value, key: &str) -> Option<String> {
    match v.get(key)? {
        serde_yaml_ng::Value::String(s) => Some(s.clone()),
        serde_yaml_ng::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn yaml_i64(v: &serde_yaml_ng::Value, key: &str) -> Option<i64> {
    match v.get(key)? {
        serde_yaml_ng::Value::Number(n) => n.as_i64(),
        serde_yaml_ng::Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// Every file under `dir`, as `(relative key with '/', full path)`, sorted.
fn files_under(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    if !dir.is_dir() {
        return Ok(out);
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(io("mlflow store", "read", &d))? {
            let entry = entry.map_err(io("mlflow store", "read", &d))?;
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(rel) = path.strip_prefix(dir) {
                let key: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                out.push((key.join("/"), path));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// A run's dataset inputs: each `<run>/inputs/<id>/meta.yaml` whose source is a dataset, joined
/// with `<experiment>/datasets/<source_id>/meta.yaml`. Model inputs (MLflow 3's LoggedModels)
/// are skipped; an input whose dataset is missing is an error, not a silent loss.
fn read_inputs(exp_dir: &Path, run_dir: &Path) -> Result<Vec<mlops_core::tracking::DatasetInput>> {
    use mlops_core::tracking::{Dataset, DatasetInput};
    let parent = run_dir.join("inputs");
    let Ok(entries) = std::fs::read_dir(&parent) else {
        return Ok(Vec::new());
    };
    let mut dirs: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("meta.yaml").is_file())
        .collect();
    dirs.sort();
    let mut out = Vec::new();
    for d in dirs {
        let m = read_yaml(&d.join("meta.yaml"))?;
        if yaml_str(&m, "source_type").as_deref() != Some("DATASET") {
            continue;
        }
        let source = yaml_str(&m, "source_id").ok_or_else(|| {
            Error::invalid("mlflow store", format!("{} has no source_id", d.display()))
        })?;
        let dataset_meta = exp_dir.join("datasets").join(&source).join("meta.yaml");
        if !dataset_meta.is_file() {
            return Err(Error::invalid(
                "mlflow store",
                format!(
                    "{} names dataset {source}, but {} is missing",
                    d.display(),
                    dataset_meta.display()
                ),
            ));
        }
        let ds = read_yaml(&dataset_meta)?;
        let field = |k: &str| yaml_str(&ds, k).unwrap_or_default();
        let mut tags = std::collections::BTreeMap::new();
        if let Some(map) = m.get("tags").and_then(|t| t.as_mapping()) {
            for (k, v) in map {
                if let (Some(k), Some(v)) = (k.as_str(), v.as_str()) {
                    tags.insert(k.to_owned(), v.to_owned());
                }
            }
        }
        out.push(DatasetInput {
            dataset: Dataset {
                name: field("name"),
                digest: field("digest"),
                source_type: field("source_type"),
                source: field("source"),
                schema: yaml_str(&ds, "schema"),
                profile: yaml_str(&ds, "profile"),
            },
            tags,
        });
    }
    Ok(out)
}

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(io("mlflow store", "read", path))
}

/// Reads an MLflow file store (`mlruns/`, as MLflow 2.x writes it and 3.x still reads it) into
/// `tracker` and `registry`: experiments (matched by name), runs with params, full metric
/// histories, tags and artifacts, then registered models with their versions, stages, tags and
/// aliases. Runs get new ids (tagged [`IMPORTED_RUN_ID_TAG`]); model versions keep their numbers
/// when the source has no gaps.
pub async fn import_mlflow(
    root: &Path,
    tracker: &dyn Tracker,
    registry: &dyn Registry,
) -> Result<MlflowTransfer> {
    use mlops_core::registry::{CreateModelOptions, CreateVersionOptions, Stage};
    use mlops_core::tracker::{CreateRunOptions, LogBatch, UpdateRunOptions};
    use mlops_core::tracking::{Metric, Param, RunStatus, Tag};

    if !root.join("0").join("meta.yaml").is_file() && !root.is_dir() {
        return Err(Error::not_found("mlflow store", root.display()));
    }
    let mut report = MlflowTransfer::default();
    let mut run_ids: std::collections::BTreeMap<String, mlops_core::RunId> =
        std::collections::BTreeMap::new();
    let mut exp_dirs: Vec<PathBuf> = Vec::new();
    for base in [root.to_path_buf(), root.join(".trash")] {
        let Ok(entries) = std::fs::read_dir(&base) else {
            continue;
        };
        for entry in entries.flatten() {
            let p = entry.path();
            if p.join("meta.yaml").is_file() && p.file_name().is_some_and(|n| n != "models") {
                exp_dirs.push(p);
            }
        }
    }
    exp_dirs.sort();
    for dir in exp_dirs {
        let meta = read_yaml(&dir.join("meta.yaml"))?;
        let name: mlops_core::ExperimentName = yaml_str(&meta, "name")
            .ok_or_else(|| {
                Error::invalid("mlflow store", format!("{} has no name", dir.display()))
            })?
            .parse()?;
        let id = tracker.get_or_create_experiment(&name).await?;
        for (key, path) in files_under(&dir.join("tags"))? {
            tracker
                .set_experiment_tag(&id, Tag::new(key.parse()?, read_text(&path)?)?)
                .await?;
        }
        report.experiments += 1;
        let mut deleted_runs = Vec::new();
        let mut run_dirs: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(io("mlflow store", "read", &dir))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join("meta.yaml").is_file())
            .collect();
        run_dirs.sort();
        for run_dir in run_dirs {
            let m = read_yaml(&run_dir.join("meta.yaml"))?;
            let Some(old_id) = yaml_str(&m, "run_id").or_else(|| yaml_str(&m, "run_uuid")) else {
                continue;
            };
            let mut options = CreateRunOptions::default()
                .in_experiment(id.clone())
                .with_tag(Tag::new(IMPORTED_RUN_ID_TAG.parse()?, old_id.clone())?);
            if let Some(n) = yaml_str(&m, "run_name").filter(|n| !n.is_empty()) {
                options = options.with_name(n);
            }
            if let Some(t) = yaml_i64(&m, "start_time") {
                options = options.with_start_time(t);
            }
            if let Some(u) = yaml_str(&m, "user_id") {
                options = options.with_user(u);
            }
            let run = tracker.create_run(options).await?.info.run_id;
            let mut params = Vec::new();
            for (key, path) in files_under(&run_dir.join("params"))? {
                params.push(Param::new(key.parse()?, read_text(&path)?)?);
            }
            for chunk in params.chunks(100) {
                let mut b = LogBatch::new();
                for p in chunk {
                    b = b.param(p.clone());
                }
                tracker.log_batch(&run, b).await?;
            }
            let mut tags = Vec::new();
            for (key, path) in files_under(&run_dir.join("tags"))? {
                tags.push(Tag::new(key.parse()?, read_text(&path)?)?);
            }
            for chunk in tags.chunks(100) {
                let mut b = LogBatch::new();
                for t in chunk {
                    b = b.tag(t.clone());
                }
                tracker.log_batch(&run, b).await?;
            }
            for (key, path) in files_under(&run_dir.join("metrics"))? {
                let mkey: mlops_core::MetricKey = key.parse()?;
                let mut points = Vec::new();
                for (n, line) in read_text(&path)?.lines().enumerate() {
                    let f: Vec<&str> = line.split_whitespace().collect();
                    let bad = || {
                        Error::invalid(
                            "mlflow store",
                            format!(
                                "{}:{}: {line:?} is not 'timestamp value [step]'",
                                path.display(),
                                n + 1
                            ),
                        )
                    };
                    let (ts, value, step) = match f.as_slice() {
                        [ts, v] => (*ts, *v, "0"),
                        [ts, v, s] => (*ts, *v, *s),
                        _ => return Err(bad()),
                    };
                    let value = match value {
                        "nan" | "NaN" => f64::NAN,
                        "inf" | "Infinity" => f64::INFINITY,
                        "-inf" | "-Infinity" => f64::NEG_INFINITY,
                        v => v.parse().map_err(|_| bad())?,
                    };
                    points.push(Metric {
                        key: mkey.clone(),
                        value,
                        timestamp_ms: ts.parse().map_err(|_| bad())?,
                        step: step.parse().map_err(|_| bad())?,
                    });
                }
                report.metric_values += points.len();
                for chunk in points.chunks(1000) {
                    let mut b = LogBatch::new();
                    for p in chunk {
                        b = b.metric(p.clone());
                    }
                    tracker.log_batch(&run, b).await?;
                }
            }
            for (key, path) in files_under(&run_dir.join("artifacts"))? {
                let data = std::fs::read(&path).map_err(io("mlflow store", "read", &path))?;
                tracker
                    .put_artifact(&run, &key.parse()?, bytes::Bytes::from(data))
                    .await?;
                report.artifacts += 1;
            }
            let inputs = read_inputs(&dir, &run_dir)?;
            if !inputs.is_empty() {
                report.dataset_inputs += inputs.len();
                tracker.log_inputs(&run, inputs).await?;
            }
            let status = yaml_i64(&m, "status")
                .and_then(|c| RunStatus::from_code(i32::try_from(c).ok()?).ok())
                .unwrap_or(RunStatus::Running);
            let mut update = UpdateRunOptions::default().with_status(status);
            if let Some(end) = yaml_i64(&m, "end_time") {
                update = update.with_end_time(end);
            }
            tracker.update_run(&run, update).await?;
            if yaml_str(&m, "lifecycle_stage").as_deref() == Some("deleted") {
                deleted_runs.push(run.clone());
            }
            run_ids.insert(old_id, run);
            report.runs += 1;
        }
        for run in deleted_runs {
            tracker
                .set_run_lifecycle(&run, LifecycleStage::Deleted)
                .await?;
        }
        if yaml_str(&meta, "lifecycle_stage").as_deref() == Some("deleted") && id.as_str() != "0" {
            tracker
                .set_experiment_lifecycle(&id, LifecycleStage::Deleted)
                .await?;
        }
    }
    tracker.flush().await?;

    let models_dir = root.join("models");
    let mut model_dirs: Vec<PathBuf> = match std::fs::read_dir(&models_dir) {
        Ok(entries) => entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join("meta.yaml").is_file())
            .collect(),
        Err(_) => Vec::new(),
    };
    model_dirs.sort();
    for dir in model_dirs {
        let meta = read_yaml(&dir.join("meta.yaml"))?;
        let name: mlops_core::ModelName = yaml_str(&meta, "name")
            .ok_or_else(|| {
                Error::invalid("mlflow store", format!("{} has no name", dir.display()))
            })?
            .parse()?;
        let mut options = CreateModelOptions::default();
        if let Some(d) = yaml_str(&meta, "description") {
            options = options.with_description(d);
        }
        for (key, path) in files_under(&dir.join("tags"))? {
            options = options.with_tag(Tag::new(key.parse()?, read_text(&path)?)?);
        }
        registry.create_registered_model(&name, options).await?;
        report.models += 1;
        let mut versions: Vec<(u64, PathBuf)> = std::fs::read_dir(&dir)
            .map_err(io("mlflow store", "read", &dir))?
            .flatten()
            .filter_map(|e| {
                let n = e
                    .file_name()
                    .to_string_lossy()
                    .strip_prefix("version-")?
                    .parse()
                    .ok()?;
                Some((n, e.path()))
            })
            .collect();
        versions.sort();
        let mut numbers = std::collections::BTreeMap::new();
        for (old, vdir) in versions {
            let m = read_yaml(&vdir.join("meta.yaml"))?;
            if yaml_str(&m, "current_stage").as_deref() == Some("Deleted_Internal") {
                continue;
            }
            let source = yaml_str(&m, "source").unwrap_or_default();
            let mut options = CreateVersionOptions::new(source);
            if let Some(run) = yaml_str(&m, "run_id").and_then(|r| run_ids.get(&r).cloned()) {
                options = options.with_run_id(run);
            }
            if let Some(d) = yaml_str(&m, "description") {
                options = options.with_description(d);
            }
            for (key, path) in files_under(&vdir.join("tags"))? {
                options = options.with_tag(Tag::new(key.parse()?, read_text(&path)?)?);
            }
            let v = registry.create_model_version(&name, options).await?;
            if let Some(stage) = yaml_str(&m, "current_stage").and_then(|s| s.parse::<Stage>().ok())
                && stage != Stage::None
            {
                registry
                    .transition_stage(&name, v.version, stage, TransitionOptions::default())
                    .await?;
            }
            numbers.insert(old, v.version);
            report.model_versions += 1;
        }
        for (alias, path) in files_under(&dir.join("aliases"))? {
            let old: u64 = read_text(&path)?.trim().parse().map_err(|_| {
                Error::invalid(
                    "mlflow store",
                    format!("{} does not hold a version number", path.display()),
                )
            })?;
            if let Some(v) = numbers.get(&old) {
                registry.set_alias(&name, &alias.parse()?, *v).await?;
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::py_float;

    #[test]
    fn floats_parse_back_exactly() {
        for v in [0.5, 1.0, 1e-5, 123456789.125, -0.0, 1e300] {
            assert_eq!(py_float(v).parse::<f64>().unwrap(), v);
        }
        assert_eq!(py_float(f64::NAN), "nan");
        assert_eq!(py_float(f64::NEG_INFINITY), "-inf");
    }
}
