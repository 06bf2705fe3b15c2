//! MLflow's artifact proxy (`mlflow_artifacts.proto`) over the tracker's run artifacts.
//!
//! Paths are those of `mlflow-artifacts:/<experiment>/<run>/artifacts/<path>` URIs, which this
//! server answers as every run's `artifact_uri`; they map onto [`Tracker::put_artifact`] and
//! friends of that run. Paths outside a run's artifact root (MLflow 3's LoggedModel locations,
//! `<experiment>/models/<id>/artifacts`) are refused with `INVALID_PARAMETER_VALUE`.
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

/// The run and the path inside its artifact root that a proxy path names.
async fn locate(st: &MlflowServer, path: &str) -> ApiResult<(RunId, Option<ArtifactPath>)> {
    let trimmed = path.trim_matches('/');
    let mut parts = trimmed.splitn(4, '/');
    let (experiment, run, root, rest) = (parts.next(), parts.next(), parts.next(), parts.next());
    let (Some(experiment), Some(run), Some("artifacts")) = (experiment, run, root) else {
        return Err(ApiError::invalid(format!(
            "artifact path {path:?} is not under a run's artifact root (<experiment_id>/<run_id>/artifacts/...)"
        )));
    };
    let run_id: RunId = run.parse()?;
    let info = st.tracker.get_run(&run_id).await?.info;
    if info.experiment_id.as_str() != experiment {
        return Err(ApiError::from(mlops_core::Error::not_found(
            "run",
            format!("{run_id} in experiment {experiment}"),
        )));
    }
    let rest = match rest.filter(|r| !r.is_empty()) {
        Some(r) => Some(r.parse::<ArtifactPath>()?),
        None => None,
    };
    Ok((run_id, rest))
}

async fn upload(st: AppState, Path(path): Path<String>, body: Bytes) -> ApiResult<Json<Value>> {
    let (run, rest) = locate(&st, &path).await?;
    let rest = rest.ok_or_else(|| {
        ApiError::invalid(format!(
            "artifact path {path:?} names a directory, not a file"
        ))
    })?;
    st.tracker.put_artifact(&run, &rest, body).await?;
    st.durable().await?;
    Ok(Json(json!({})))
}

async fn download(st: AppState, Path(path): Path<String>) -> ApiResult<Response> {
    let (run, rest) = locate(&st, &path).await?;
    let rest = rest.ok_or_else(|| {
        ApiError::invalid(format!(
            "artifact path {path:?} names a directory, not a file"
        ))
    })?;
    let data = st.tracker.get_artifact(&run, &rest).await?;
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
    let (run, dir) = locate(&st, &path).await?;
    let files = st.tracker.list_artifacts(&run, dir.as_ref()).await?;
    let base = dir.as_ref().map(|d| format!("{d}/")).unwrap_or_default();
    // name → Some(size) for a file, None for a directory.
    let mut level: BTreeMap<String, Option<u64>> = BTreeMap::new();
    for f in &files {
        let Some(rel) = f.path.as_str().strip_prefix(base.as_str()) else {
            // The prefix itself is a file: MLflow lists nothing for a file.
            continue;
        };
        match rel.split_once('/') {
            Some((child, _)) => {
                level.insert(child.to_owned(), None);
            }
            None => {
                level.entry(rel.to_owned()).or_insert(Some(f.size));
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
