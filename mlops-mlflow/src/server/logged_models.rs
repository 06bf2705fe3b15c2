//! MLflow 3's LoggedModels (`/logged-models/...`, `runs/outputs`), which `mlflow.<flavor>.log_model`,
//! autologging and `register_model("runs:/…")` use, kept in a [`Store`].
//!
//! Each LoggedModel is one document (JSON) under the ref `mlflow/logged-models/<model_id>`;
//! every change commits a new version of the ref, compare-and-swap on the version read (a lost
//! race re-reads and re-applies). Its artifact files are blobs, listed by path in the document
//! and retained by its commit, so `gc` keeps them and `verify` checks them. They are reached
//! through the artifact proxy at `mlflow-artifacts:/<experiment>/models/<model_id>/artifacts`.
//!
//! Per-model metrics (`log_batch` with a `model_id`) stay with the run they were logged to; a
//! LoggedModel answers no metrics of its own.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::Path;
use mlops_core::search::{AttrValue, SearchTarget, Searchable, select};
use mlops_core::store::{CommitOptions, RefVersion, StoreExt};
use mlops_core::{Digest, Error, RefName, Result, RunId, Store};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::params::{Params, opt_string, opt_usize, string, strings};
use super::{ApiError, ApiResult, AppState};
use crate::json::JTag;

const PREFIX: &str = "mlflow/logged-models";
/// Per run, the LoggedModels it output (`runs/outputs`): `mlflow/run-outputs/<run_id>`.
const OUTPUTS_PREFIX: &str = "mlflow/run-outputs";
/// Attempts at a compare-and-swap update before answering a conflict.
const MAX_ATTEMPTS: usize = 16;
/// MLflow's `SEARCH_LOGGED_MODEL_MAX_RESULTS_DEFAULT`.
const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;

/// One stored artifact file of a LoggedModel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct FileEntry {
    digest: Digest,
    size: u64,
}

/// A LoggedModel as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Doc {
    model_id: String,
    experiment_id: String,
    name: String,
    creation_timestamp_ms: i64,
    last_updated_timestamp_ms: i64,
    model_type: Option<String>,
    source_run_id: Option<String>,
    /// `LOGGED_MODEL_PENDING`, `LOGGED_MODEL_READY` or `LOGGED_MODEL_UPLOAD_FAILED`.
    status: String,
    status_message: Option<String>,
    tags: BTreeMap<String, String>,
    params: BTreeMap<String, String>,
    artifacts: BTreeMap<String, FileEntry>,
    deleted: bool,
}

impl Doc {
    fn artifact_uri(&self) -> String {
        format!(
            "mlflow-artifacts:/{}/models/{}/artifacts",
            self.experiment_id, self.model_id
        )
    }

    /// `service.proto`'s `LoggedModel`.
    fn to_json(&self) -> Value {
        let pairs = |m: &BTreeMap<String, String>| -> Vec<Value> {
            m.iter()
                .map(|(k, v)| json!({"key": k, "value": v}))
                .collect()
        };
        let mut info = json!({
            "model_id": self.model_id,
            "experiment_id": self.experiment_id,
            "name": self.name,
            "creation_timestamp_ms": self.creation_timestamp_ms,
            "last_updated_timestamp_ms": self.last_updated_timestamp_ms,
            "artifact_uri": self.artifact_uri(),
            "status": self.status,
            "tags": pairs(&self.tags),
            "registrations": [],
        });
        if let Some(o) = info.as_object_mut() {
            for (k, v) in [
                ("model_type", &self.model_type),
                ("source_run_id", &self.source_run_id),
                ("status_message", &self.status_message),
            ] {
                if let Some(v) = v {
                    o.insert(k.into(), v.as_str().into());
                }
            }
        }
        json!({"info": info, "data": {"params": pairs(&self.params), "metrics": []}})
    }
}

impl Searchable for Doc {
    fn attribute(&self, key: &str) -> Option<AttrValue<'_>> {
        Some(match key {
            "name" => AttrValue::Str(&self.name),
            "model_id" => AttrValue::Str(&self.model_id),
            "model_type" => AttrValue::Str(self.model_type.as_deref()?),
            // MLflow's `LoggedModelStatus` names: PENDING, READY, FAILED.
            "status" => AttrValue::Str(match self.status.as_str() {
                "LOGGED_MODEL_UPLOAD_FAILED" => "FAILED",
                other => other.trim_start_matches("LOGGED_MODEL_"),
            }),
            "source_run_id" => AttrValue::Str(self.source_run_id.as_deref()?),
            "creation_timestamp" => AttrValue::Int(self.creation_timestamp_ms),
            "last_updated_timestamp" => AttrValue::Int(self.last_updated_timestamp_ms),
            _ => return None,
        })
    }
    fn param(&self, key: &str) -> Option<&str> {
        self.params.get(key).map(String::as_str)
    }
    fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(String::as_str)
    }
}

/// LoggedModels kept in a store.
#[derive(Debug, Clone)]
pub(super) struct LoggedModels {
    store: Arc<dyn Store>,
}

/// Before a compare-and-swap retry: writers racing for one ref's next version wait a little,
/// by differing amounts, so they stop colliding. Nothing before the first attempt.
async fn back_off(attempt: usize) {
    if attempt > 0 {
        let jitter = u64::from(mlops_core::time::now_ms().unsigned_abs() as u32 % 4);
        tokio::time::sleep(std::time::Duration::from_millis(attempt as u64 + jitter)).await;
    }
}

fn ref_name(model_id: &str) -> Result<RefName> {
    if !model_id.starts_with("m-")
        || model_id.len() > 64
        || !model_id[2..].chars().all(|c| c.is_ascii_alphanumeric())
    {
        return Err(Error::not_found("logged model", model_id));
    }
    RefName::new(format!("{PREFIX}/{model_id}"))
}

impl LoggedModels {
    pub(super) fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    async fn read(&self, model_id: &str) -> Result<(Doc, mlops_core::Version)> {
        let name = ref_name(model_id)?;
        let commit = self
            .store
            .get_ref(&name, RefVersion::Latest)
            .await
            .map_err(|e| {
                if e.is_not_found() {
                    Error::not_found("logged model", model_id)
                } else {
                    e
                }
            })?;
        let bytes = self.store.get_bytes(&commit.target).await?;
        let doc: Doc = serde_json::from_slice(&bytes).map_err(|e| {
            Error::corrupt("logged model", model_id, "unreadable document").with_source(e)
        })?;
        Ok((doc, commit.version))
    }

    async fn get(&self, model_id: &str) -> Result<Doc> {
        let (doc, _) = self.read(model_id).await?;
        if doc.deleted {
            return Err(Error::not_found("logged model", model_id));
        }
        Ok(doc)
    }

    async fn write(&self, doc: &Doc, parent: Option<mlops_core::Version>) -> Result<()> {
        let bytes = serde_json::to_vec(doc).map_err(|e| Error::backend("json", e))?;
        let blob = self.store.put_bytes(Bytes::from(bytes)).await?;
        // A deleted model keeps nothing alive: garbage collection may take its files.
        let retains: Vec<Digest> = if doc.deleted {
            Vec::new()
        } else {
            doc.artifacts.values().map(|f| f.digest).collect()
        };
        self.store
            .commit(
                &ref_name(&doc.model_id)?,
                blob.digest,
                CommitOptions::default()
                    .with_parent(parent)
                    .with_retains(retains)
                    .with_message("logged model"),
            )
            .await?;
        Ok(())
    }

    /// Applies `change` to the latest version, retrying when another writer got there first.
    async fn update(&self, model_id: &str, change: impl Fn(&mut Doc) -> Result<()>) -> Result<Doc> {
        for attempt in 0..MAX_ATTEMPTS {
            back_off(attempt).await;
            let (mut doc, version) = self.read(model_id).await?;
            if doc.deleted {
                return Err(Error::not_found("logged model", model_id));
            }
            change(&mut doc)?;
            doc.last_updated_timestamp_ms = mlops_core::time::now_ms();
            match self.write(&doc, Some(version)).await {
                Ok(()) => return Ok(doc),
                Err(e) if e.kind() == mlops_core::ErrorKind::Conflict => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::conflict(
            "logged model",
            model_id,
            format!("{MAX_ATTEMPTS} concurrent updates in a row; try again"),
        ))
    }

    /// Every live LoggedModel. A damaged document costs only itself: it is skipped and logged
    /// (`mlops store verify` reports it), so one bad model does not fail every search.
    async fn all(&self) -> Result<Vec<Doc>> {
        let prefix = RefName::new(PREFIX)?;
        let mut out = Vec::new();
        for name in self.store.list_ref_children(&prefix).await? {
            let id = name
                .as_str()
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_owned();
            match self.get(&id).await {
                Ok(doc) => out.push(doc),
                Err(e) if e.is_not_found() => {}
                Err(e) if e.kind() == mlops_core::ErrorKind::Corrupt => {
                    tracing::warn!(model_id = %id, error = %e, "skipping an unreadable logged model");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Stores an artifact file of a LoggedModel (replacing one at the same path).
    pub(super) async fn put_artifact(
        &self,
        experiment: &str,
        model_id: &str,
        path: &mlops_core::ArtifactPath,
        data: Bytes,
    ) -> Result<()> {
        self.check_experiment(experiment, model_id).await?;
        let blob = self.store.put_bytes(data).await?;
        self.update(model_id, |doc| {
            doc.artifacts.insert(
                path.to_string(),
                FileEntry {
                    digest: blob.digest,
                    size: blob.size,
                },
            );
            Ok(())
        })
        .await?;
        Ok(())
    }

    pub(super) async fn get_artifact(
        &self,
        experiment: &str,
        model_id: &str,
        path: &mlops_core::ArtifactPath,
    ) -> Result<Bytes> {
        let doc = self.check_experiment(experiment, model_id).await?;
        let entry = doc.artifacts.get(path.as_str()).ok_or_else(|| {
            Error::not_found("artifact", format!("{path} of logged model {model_id}"))
        })?;
        self.store.get_bytes(&entry.digest).await
    }

    /// `(path, size)` of every artifact file, sorted by path.
    pub(super) async fn list_artifacts(
        &self,
        experiment: &str,
        model_id: &str,
    ) -> Result<Vec<(String, u64)>> {
        let doc = self.check_experiment(experiment, model_id).await?;
        Ok(doc
            .artifacts
            .iter()
            .map(|(p, f)| (p.clone(), f.size))
            .collect())
    }

    async fn check_experiment(&self, experiment: &str, model_id: &str) -> Result<Doc> {
        let doc = self.get(model_id).await?;
        if doc.experiment_id != experiment {
            return Err(Error::not_found(
                "logged model",
                format!("{model_id} in experiment {experiment}"),
            ));
        }
        Ok(doc)
    }
}

/// The LoggedModel a `models:/<model_id>` source names (MLflow 3's ids start `m-`), if it
/// names one.
pub(super) fn model_id_of_source(source: &str) -> Option<&str> {
    let id = source.strip_prefix("models:/")?.trim_end_matches('/');
    // `models:/m-foo@champion` or `models:/m-foo/3` name a registered model called m-foo.
    let hex = id.strip_prefix("m-")?;
    (!hex.is_empty() && hex.chars().all(|c| c.is_ascii_alphanumeric())).then_some(id)
}

/// What registering a LoggedModel as a version needs from it: the run that produced it and
/// where its files are, as MLflow's registry records them (`run_id`, `storage_location`).
pub(super) async fn registration_facts(
    st: &super::MlflowServer,
    model_id: &str,
) -> ApiResult<(Option<String>, String)> {
    let doc = store_of(st)?.get(model_id).await?;
    Ok((doc.source_run_id.clone(), doc.artifact_uri()))
}

fn store_of(st: &super::MlflowServer) -> ApiResult<&LoggedModels> {
    st.logged_models.as_ref().ok_or_else(|| {
        ApiError::not_implemented(
            "this server keeps no MLflow 3 LoggedModels (start it with a store for them); log model files with mlflow.log_artifacts and register them with MlflowClient().create_model_version(name, source=\"runs:/<run_id>/<path>\", run_id=...)",
        )
    })
}

fn pairs(tags: Vec<JTag>) -> BTreeMap<String, String> {
    tags.into_iter()
        .map(|t| (t.key, t.value.unwrap_or_default()))
        .collect()
}

type Answer = ApiResult<Json<Value>>;

#[derive(Deserialize)]
struct Create {
    #[serde(deserialize_with = "string")]
    experiment_id: String,
    #[serde(default, deserialize_with = "opt_string")]
    name: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    model_type: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    source_run_id: Option<String>,
    #[serde(default)]
    params: Vec<JTag>,
    #[serde(default)]
    tags: Vec<JTag>,
}

pub(super) async fn create(st: AppState, p: Params) -> Answer {
    let r: Create = p.read()?;
    let models = store_of(&st)?;
    let experiment = st.tracker.get_experiment(&r.experiment_id.parse()?).await?;
    let source_run_id = match r.source_run_id.filter(|s| !s.is_empty()) {
        Some(id) => {
            let run = st.tracker.get_run(&id.parse::<RunId>()?).await?;
            Some(run.info.run_id.into_string())
        }
        None => None,
    };
    let now = mlops_core::time::now_ms();
    let doc = Doc {
        model_id: format!("m-{}", RunId::generate()),
        experiment_id: experiment.experiment_id.into_string(),
        name: r
            .name
            .filter(|n| !n.is_empty())
            .unwrap_or_else(mlops_core::tracking::generate_run_name),
        creation_timestamp_ms: now,
        last_updated_timestamp_ms: now,
        model_type: r.model_type.filter(|t| !t.is_empty()),
        source_run_id,
        status: "LOGGED_MODEL_PENDING".into(),
        status_message: None,
        tags: pairs(r.tags),
        params: pairs(r.params),
        artifacts: BTreeMap::new(),
        deleted: false,
    };
    models.write(&doc, None).await?;
    Ok(Json(json!({"model": doc.to_json()})))
}

pub(super) async fn get(st: AppState, Path(id): Path<String>) -> Answer {
    let doc = store_of(&st)?.get(&id).await?;
    Ok(Json(json!({"model": doc.to_json()})))
}

#[derive(Deserialize)]
struct Finalize {
    #[serde(deserialize_with = "string")]
    status: String,
}

pub(super) async fn finalize(st: AppState, Path(id): Path<String>, p: Params) -> Answer {
    let r: Finalize = p.read()?;
    let status = match r.status.as_str() {
        "LOGGED_MODEL_READY" | "READY" | "2" => "LOGGED_MODEL_READY",
        "LOGGED_MODEL_UPLOAD_FAILED" | "FAILED" | "3" => "LOGGED_MODEL_UPLOAD_FAILED",
        other => {
            return Err(ApiError::invalid(format!(
                "status {other:?} is not LOGGED_MODEL_READY or LOGGED_MODEL_UPLOAD_FAILED"
            )));
        }
    };
    let doc = store_of(&st)?
        .update(&id, |d| {
            d.status = status.into();
            Ok(())
        })
        .await?;
    Ok(Json(json!({"model": doc.to_json()})))
}

pub(super) async fn delete(st: AppState, Path(id): Path<String>) -> Answer {
    store_of(&st)?
        .update(&id, |d| {
            d.deleted = true;
            Ok(())
        })
        .await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
struct TagsRequest {
    #[serde(default)]
    tags: Vec<JTag>,
}

pub(super) async fn set_tags(st: AppState, Path(id): Path<String>, p: Params) -> Answer {
    let r: TagsRequest = p.read()?;
    let tags = pairs(r.tags);
    store_of(&st)?
        .update(&id, |d| {
            d.tags.extend(tags.clone());
            Ok(())
        })
        .await?;
    Ok(Json(json!({})))
}

pub(super) async fn delete_tag(st: AppState, Path((id, key)): Path<(String, String)>) -> Answer {
    store_of(&st)?
        .update(&id, |d| {
            d.tags
                .remove(&key)
                .map(|_| ())
                .ok_or_else(|| Error::not_found("tag", format!("{key} of logged model {id}")))
        })
        .await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
struct ParamsRequest {
    #[serde(default)]
    params: Vec<JTag>,
}

pub(super) async fn log_params(st: AppState, Path(id): Path<String>, p: Params) -> Answer {
    let r: ParamsRequest = p.read()?;
    let params = pairs(r.params);
    store_of(&st)?
        .update(&id, |d| {
            for (k, v) in &params {
                // Params are write-once, as a run's are.
                match d.params.get(k) {
                    Some(old) if old != v => {
                        return Err(Error::invalid(
                            "param",
                            format!("{k} of logged model {id} is {old:?}; it cannot become {v:?}"),
                        ));
                    }
                    _ => {
                        d.params.insert(k.clone(), v.clone());
                    }
                }
            }
            Ok(())
        })
        .await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
struct OrderBy {
    #[serde(deserialize_with = "string")]
    field_name: String,
    #[serde(default)]
    ascending: Option<bool>,
}

#[derive(Deserialize)]
struct Search {
    #[serde(default, deserialize_with = "strings")]
    experiment_ids: Vec<String>,
    #[serde(default, deserialize_with = "opt_string")]
    filter: Option<String>,
    #[serde(default)]
    datasets: Vec<Value>,
    #[serde(default, deserialize_with = "opt_usize")]
    max_results: Option<usize>,
    #[serde(default)]
    order_by: Vec<OrderBy>,
    #[serde(default, deserialize_with = "opt_string")]
    page_token: Option<String>,
}

/// MLflow's natural order: newest first, then by id.
fn newest_first(a: &Doc, b: &Doc) -> Ordering {
    b.creation_timestamp_ms
        .cmp(&a.creation_timestamp_ms)
        .then_with(|| a.model_id.cmp(&b.model_id))
}

pub(super) async fn search(st: AppState, p: Params) -> Answer {
    let r: Search = p.read()?;
    if r.experiment_ids.is_empty() {
        return Err(ApiError::invalid(
            "missing value for required parameter 'experiment_ids'",
        ));
    }
    for id in &r.experiment_ids {
        st.tracker.get_experiment(&id.parse()?).await?;
    }
    if !r.datasets.is_empty() {
        return Err(ApiError::not_implemented(
            "searching logged models by dataset is not supported: LoggedModels here keep no per-dataset metrics",
        ));
    }
    let Some(models) = st.logged_models.as_ref() else {
        // Nothing can have been logged: creating LoggedModels is refused without a store.
        return Ok(Json(json!({"models": []})));
    };
    let order: Vec<String> = r
        .order_by
        .iter()
        .map(|o| {
            let dir = if o.ascending.unwrap_or(true) {
                "ASC"
            } else {
                "DESC"
            };
            format!("{} {dir}", o.field_name)
        })
        .collect();
    let max = r.max_results.unwrap_or(DEFAULT_PAGE).min(MAX_PAGE);
    let candidates: Vec<Doc> = models
        .all()
        .await?
        .into_iter()
        .filter(|d| r.experiment_ids.contains(&d.experiment_id))
        .collect();
    let page = select(
        SearchTarget::LoggedModels,
        candidates,
        r.filter.as_deref().filter(|f| !f.trim().is_empty()),
        &order,
        newest_first,
        max,
        r.page_token.as_deref().filter(|t| !t.is_empty()),
    )?;
    let items: Vec<Value> = page.items.iter().map(Doc::to_json).collect();
    let mut out = json!({"models": items});
    if let (Some(t), Some(o)) = (page.next_page_token, out.as_object_mut()) {
        o.insert("next_page_token".into(), t.into());
    }
    Ok(Json(out))
}

#[derive(Deserialize)]
struct OutputModel {
    #[serde(deserialize_with = "string")]
    model_id: String,
    #[serde(default, deserialize_with = "super::params::opt_i64")]
    step: Option<i64>,
}

/// One `service.proto` `ModelOutput` of a run, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ModelOutput {
    model_id: String,
    step: i64,
}

fn outputs_ref(run_id: &RunId) -> Result<RefName> {
    RefName::new(format!("{OUTPUTS_PREFIX}/{run_id}"))
}

impl LoggedModels {
    /// The LoggedModels `run_id` output, in the order they were logged; empty when none.
    async fn outputs(
        &self,
        run_id: &RunId,
    ) -> Result<(Vec<ModelOutput>, Option<mlops_core::Version>)> {
        let commit = match self
            .store
            .get_ref(&outputs_ref(run_id)?, RefVersion::Latest)
            .await
        {
            Ok(c) => c,
            Err(e) if e.is_not_found() => return Ok((Vec::new(), None)),
            Err(e) => return Err(e),
        };
        let bytes = self.store.get_bytes(&commit.target).await?;
        let outputs = serde_json::from_slice(&bytes).map_err(|e| {
            Error::corrupt("run outputs", run_id, "unreadable document").with_source(e)
        })?;
        Ok((outputs, Some(commit.version)))
    }

    /// Records that `run_id` output `models` (a model already recorded keeps its first step, as
    /// MLflow's store keeps one row per run and model).
    async fn add_outputs(&self, run_id: &RunId, models: &[ModelOutput]) -> Result<()> {
        for attempt in 0..MAX_ATTEMPTS {
            back_off(attempt).await;
            let (mut outputs, parent) = self.outputs(run_id).await?;
            for m in models {
                if !outputs.iter().any(|o| o.model_id == m.model_id) {
                    outputs.push(m.clone());
                }
            }
            let bytes = serde_json::to_vec(&outputs).map_err(|e| Error::backend("json", e))?;
            let blob = self.store.put_bytes(Bytes::from(bytes)).await?;
            let options = CommitOptions::default()
                .with_parent(parent)
                .with_message("run outputs");
            match self
                .store
                .commit(&outputs_ref(run_id)?, blob.digest, options)
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == mlops_core::ErrorKind::Conflict => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::conflict(
            "run outputs",
            run_id,
            format!("{MAX_ATTEMPTS} concurrent updates in a row; try again"),
        ))
    }
}

/// `RunOutputs` for `get_run`: `{"model_outputs": [...]}`, or `None` when the run output no
/// LoggedModel (or the server keeps none).
pub(super) async fn run_outputs(
    st: &super::MlflowServer,
    run_id: &RunId,
) -> ApiResult<Option<Value>> {
    let Some(models) = st.logged_models.as_ref() else {
        return Ok(None);
    };
    let (outputs, _) = models.outputs(run_id).await?;
    if outputs.is_empty() {
        return Ok(None);
    }
    let list: Vec<Value> = outputs
        .iter()
        .map(|o| json!({"model_id": o.model_id, "step": o.step}))
        .collect();
    Ok(Some(json!({"model_outputs": list})))
}

#[derive(Deserialize)]
struct LogOutputs {
    #[serde(deserialize_with = "string")]
    run_id: String,
    #[serde(default)]
    models: Vec<OutputModel>,
}

/// `runs/outputs`: a run says it produced these LoggedModels, at these steps — what
/// `register_model("runs:/<run>/<name>")` uses to pick among several models of one name.
pub(super) async fn log_outputs(st: AppState, p: Params) -> Answer {
    let r: LogOutputs = p.read()?;
    let run = st.tracker.get_run(&r.run_id.parse()?).await?;
    let models = store_of(&st)?;
    let mut outputs = Vec::with_capacity(r.models.len());
    for m in &r.models {
        models.get(&m.model_id).await?;
        outputs.push(ModelOutput {
            model_id: m.model_id.clone(),
            step: m.step.unwrap_or(0),
        });
    }
    models.add_outputs(&run.info.run_id, &outputs).await?;
    Ok(Json(json!({})))
}

#[cfg(test)]
mod tests {
    use super::model_id_of_source;

    #[test]
    fn only_model_ids_are_logged_model_sources() {
        assert_eq!(model_id_of_source("models:/m-0123abcd"), Some("m-0123abcd"));
        assert_eq!(
            model_id_of_source("models:/m-0123abcd/"),
            Some("m-0123abcd")
        );
        for other in [
            "models:/m-foo@champion",
            "models:/m-foo/3",
            "models:/m-",
            "models:/churn/1",
            "runs:/m-0123/model",
            "mlflow-artifacts:/1/models/m-0123/artifacts",
        ] {
            assert_eq!(model_id_of_source(other), None, "{other}");
        }
    }
}
