//! MLflow's artifact proxy (`mlflow_artifacts.proto`) over the tracker's run artifacts.
//!
//! Paths are those of `mlflow-artifacts:/<experiment>/<run>/artifacts/<path>` URIs, which this
//! server answers as every run's `artifact_uri`; they map onto [`Tracker::put_artifact`] and
//! friends of that run. `<experiment>/models/<model_id>/artifacts/...` are MLflow 3's
//! LoggedModel locations, kept with the LoggedModel. Other paths are `INVALID_PARAMETER_VALUE`.
//!
//! [`Tracker::put_artifact`]: mlops_core::Tracker::put_artifact

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use mlops_core::{ArtifactPath, RunId};
use serde::Deserialize;
use serde_json::{Value, json};

use super::params::{Params, opt_string};
use super::{ApiError, ApiResult, AppState, MlflowServer};

pub(super) fn routes() -> Router<Arc<MlflowServer>> {
    Router::new()
        .route("/artifacts", get(list))
        .route("/artifacts/", get(list))
        .route("/artifacts/{*path}", get(download).put(upload))
}

/// What a proxy path names: a run's artifact root, or a LoggedModel's.
enum Target {
    Run(RunId),
    Model {
        experiment: String,
        model_id: String,
    },
}

/// The owner and the path inside its artifact root that a proxy path names:
/// `<experiment>/<run>/artifacts/...` or `<experiment>/models/<model_id>/artifacts/...`.
async fn locate(st: &MlflowServer, path: &str) -> ApiResult<(Target, Option<ArtifactPath>)> {
    let trimmed = path.trim_matches('/');
    let mut parts = trimmed.splitn(5, '/');
    let experiment = parts.next().unwrap_or_default();
    let (target, rest) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("models"), Some(model_id), Some("artifacts"), rest) => {
            let target = Target::Model {
                experiment: experiment.to_owned(),
                model_id: model_id.to_owned(),
            };
            (target, rest)
        }
        (Some(run), Some("artifacts"), first, rest) => {
            let run_id: RunId = run.parse()?;
            let info = st.tracker.get_run(&run_id).await?.info;
            if info.experiment_id.as_str() != experiment {
                return Err(ApiError::from(mlops_core::Error::not_found(
                    "run",
                    format!("{run_id} in experiment {experiment}"),
                )));
            }
            let rest = match (first, rest) {
                (Some(a), Some(b)) => Some(format!("{a}/{b}")),
                (Some(a), None) => Some(a.to_owned()),
                _ => None,
            };
            return finish(Target::Run(run_id), rest.as_deref());
        }
        _ => {
            return Err(ApiError::invalid(format!(
                "artifact path {path:?} is not under an artifact root (<experiment_id>/<run_id>/artifacts/... or <experiment_id>/models/<model_id>/artifacts/...)"
            )));
        }
    };
    finish(target, rest)
}

fn finish(target: Target, rest: Option<&str>) -> ApiResult<(Target, Option<ArtifactPath>)> {
    let rest = match rest.filter(|r| !r.is_empty()) {
        Some(r) => Some(r.parse::<ArtifactPath>()?),
        None => None,
    };
    Ok((target, rest))
}

fn file_path(path: &str, rest: Option<ArtifactPath>) -> ApiResult<ArtifactPath> {
    rest.ok_or_else(|| {
        ApiError::invalid(format!(
            "artifact path {path:?} names a directory, not a file"
        ))
    })
}

fn models(st: &MlflowServer) -> ApiResult<&super::logged_models::LoggedModels> {
    st.logged_models
        .as_ref()
        .ok_or_else(|| ApiError::from(mlops_core::Error::not_found("logged model", "any")))
}

async fn upload(st: AppState, Path(path): Path<String>, body: Bytes) -> ApiResult<Json<Value>> {
    let (target, rest) = locate(&st, &path).await?;
    let rest = file_path(&path, rest)?;
    match target {
        Target::Run(run) => {
            st.tracker.put_artifact(&run, &rest, body).await?;
            st.durable().await?;
        }
        Target::Model {
            experiment,
            model_id,
        } => {
            models(&st)?
                .put_artifact(&experiment, &model_id, &rest, body)
                .await?;
        }
    }
    Ok(Json(json!({})))
}

async fn download(st: AppState, Path(path): Path<String>) -> ApiResult<Response> {
    let (target, rest) = locate(&st, &path).await?;
    let rest = file_path(&path, rest)?;
    let data = match target {
        Target::Run(run) => st.tracker.get_artifact(&run, &rest).await?,
        Target::Model {
            experiment,
            model_id,
        } => {
            models(&st)?
                .get_artifact(&experiment, &model_id, &rest)
                .await?
        }
    };
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        data,
    )
        .into_response())
}

#[derive(Deserialize)]
struct ListRequest {
    #[serde(default, deserialize_with = "opt_string")]
    path: Option<String>,
}

/// One directory level, as MLflow lists it: base names, `is_dir`, and `file_size` for files.
async fn list(st: AppState, p: Params) -> ApiResult<Json<Value>> {
    let r: ListRequest = p.read()?;
    let path = r.path.unwrap_or_default();
    let (target, dir) = locate(&st, &path).await?;
    let files: Vec<(String, u64)> = match target {
        Target::Run(run) => st
            .tracker
            .list_artifacts(&run, dir.as_ref())
            .await?
            .into_iter()
            .map(|a| (a.path.into_string(), a.size))
            .collect(),
        Target::Model {
            experiment,
            model_id,
        } => models(&st)?.list_artifacts(&experiment, &model_id).await?,
    };
    let base = dir.as_ref().map(|d| format!("{d}/")).unwrap_or_default();
    // name → Some(size) for a file, None for a directory.
    let mut level: BTreeMap<String, Option<u64>> = BTreeMap::new();
    for (file, size) in &files {
        let Some(rel) = file.strip_prefix(base.as_str()) else {
            // The prefix itself is a file: MLflow lists nothing for a file.
            continue;
        };
        match rel.split_once('/') {
            Some((child, _)) => {
                level.insert(child.to_owned(), None);
            }
            None => {
                level.entry(rel.to_owned()).or_insert(Some(*size));
            }
        }
    }
    let entries: Vec<Value> = level
        .into_iter()
        .map(|(name, size)| match size {
            Some(size) => json!({"path": name, "is_dir": false, "file_size": size}),
            None => json!({"path": name, "is_dir": true}),
        })
        .collect();
    Ok(Json(json!({"files": entries})))
}
