//! MLflow's file-store layout (`mlruns/`), written from any [`Tracker`] and [`Registry`], so that
//! MLflow's own client (with `MLFLOW_ALLOW_FILE_STORE=true`) and UI read our experiments, runs,
//! metric histories, artifacts and registered models.
//!
//! The layout is MLflow 2.x's (`mlflow/store/tracking/file_store.py`,
//! `mlflow/store/model_registry/file_store.py`), which 3.x still reads.

use std::path::{Path, PathBuf};

use mlops_core::registry::{ModelVersion, Registry, RegistryExt, SearchRegistryOptions};
use mlops_core::tracker::{SearchExperimentsOptions, SearchRunsOptions, Tracker, TrackerExt};
use mlops_core::tracking::{Experiment, LifecycleStage, Run, ViewType};
use mlops_core::{Error, Result};
use serde::Serialize;

/// What [`export_mlflow`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MlflowExport {
    /// Experiments written.
    pub experiments: usize,
    /// Runs written.
    pub runs: usize,
    /// Metric values written (every value of every history).
    pub metric_values: usize,
    /// Artifact files written.
    pub artifacts: usize,
    /// Registered models written.
    pub models: usize,
    /// Model versions written.
    pub model_versions: usize,
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

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::invalid("output", format!("cannot write {}: {e}", path.display()))
}

fn write_file(path: &Path, data: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    std::fs::write(path, data).map_err(io(path))
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
) -> Result<MlflowExport> {
    if out.exists() && std::fs::read_dir(out).map_err(io(out))?.next().is_some() {
        return Err(Error::invalid(
            "output",
            format!(
                "{} is not empty; export into a new directory",
                out.display()
            ),
        ));
    }
    std::fs::create_dir_all(out).map_err(io(out))?;
    let root = out.canonicalize().map_err(io(out))?;
    let mut report = MlflowExport::default();

    let mut experiments: Vec<Experiment> = Vec::new();
    let mut options = SearchExperimentsOptions::default().with_view_type(ViewType::All);
    loop {
        let page = tracker.search_experiments(options.clone()).await?;
        experiments.extend(page.items);
        match page.next_page_token {
            Some(t) => options.page_token = Some(t),
            None => break,
        }
    }
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
    report: &mut MlflowExport,
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
        std::fs::create_dir_all(dir.join(sub)).map_err(io(&dir))?;
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
