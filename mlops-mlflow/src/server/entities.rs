//! Core → MLflow JSON, as a server answers: int64 fields as JSON numbers, enums by name, unset
//! fields omitted — as MLflow's own server emits them.

use mlops_core::registry::{Lineage, ModelVersion, ModelVersionStatus, RegisteredModel};
use mlops_core::signature::Signature;
use mlops_core::tracking::{Experiment, Metric, Run, RunInfo};
use mlops_core::{Error, Result};

use crate::json::{JDatasetInput, JMetric, JTag, LINEAGE_TAG, SIGNATURE_TAG};

fn tag_list<'a>(tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<serde_json::Value> {
    tags.into_iter()
        .map(|(k, v)| serde_json::json!({"key": k, "value": v}))
        .collect()
}

/// An experiment as `service.proto`'s `Experiment`, its artifact location replaced by
/// `artifact_location` (a server's artifacts all go through its proxy).
pub(crate) fn experiment_to_json(e: &Experiment, artifact_location: &str) -> serde_json::Value {
    serde_json::json!({
        "experiment_id": e.experiment_id.as_str(),
        "name": e.name.as_str(),
        "artifact_location": artifact_location,
        "lifecycle_stage": e.lifecycle_stage.as_str(),
        "last_update_time": e.last_update_time,
        "creation_time": e.creation_time,
        "tags": tag_list(e.tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
    })
}

/// A run's info as `RunInfo`, with `artifact_uri` as given.
pub(crate) fn run_info_to_json(i: &RunInfo, artifact_uri: &str) -> serde_json::Value {
    let mut v = serde_json::json!({
        "run_id": i.run_id.as_str(),
        "run_uuid": i.run_id.as_str(),
        "run_name": i.run_name,
        "experiment_id": i.experiment_id.as_str(),
        "user_id": i.user_id,
        "status": i.status.as_str(),
        "start_time": i.start_time,
        "artifact_uri": artifact_uri,
        "lifecycle_stage": i.lifecycle_stage.as_str(),
    });
    if let (Some(end), Some(o)) = (i.end_time, v.as_object_mut()) {
        o.insert("end_time".into(), end.into());
    }
    v
}

/// A metric value as `Metric` (non-finite values as MLflow writes them: `"NaN"`, `"Infinity"`).
pub(crate) fn metric_to_json(m: &Metric) -> serde_json::Value {
    serde_json::to_value(JMetric::from_core(m)).unwrap_or(serde_json::Value::Null)
}

/// A run as `Run`: info, data (latest metric values), inputs.
pub(crate) fn run_to_json(r: &Run, artifact_uri: &str) -> serde_json::Value {
    let inputs: Vec<JDatasetInput> = r
        .inputs
        .dataset_inputs
        .iter()
        .map(JDatasetInput::from_core)
        .collect();
    serde_json::json!({
        "info": run_info_to_json(&r.info, artifact_uri),
        "data": {
            "metrics": r.data.metrics.values().map(metric_to_json).collect::<Vec<_>>(),
            "params": tag_list(r.data.params.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
            "tags": tag_list(r.data.tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
        },
        "inputs": {"dataset_inputs": inputs},
    })
}

/// A version as `model_registry.proto`'s `ModelVersion`. Lineage and signature, which MLflow has
/// no field for, travel as the [`LINEAGE_TAG`] and [`SIGNATURE_TAG`] tags (as [`crate::MlflowRegistry`]
/// writes them), so a registry client of ours reads them back unchanged.
pub(crate) fn model_version_to_json(v: &ModelVersion) -> serde_json::Value {
    let mut tags = tag_list(v.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    if v.lineage != Lineage::default()
        && let Ok(json) = serde_json::to_string(&v.lineage)
    {
        tags.push(serde_json::json!({"key": LINEAGE_TAG, "value": json}));
    }
    if let Some(sig) = &v.signature
        && let Ok(json) = serde_json::to_string(sig)
    {
        tags.push(serde_json::json!({"key": SIGNATURE_TAG, "value": json}));
    }
    let mut out = serde_json::json!({
        "name": v.name.as_str(),
        "version": v.version.to_string(),
        "creation_timestamp": v.creation_timestamp,
        "last_updated_timestamp": v.last_updated_timestamp,
        "current_stage": v.current_stage.as_str(),
        "description": v.description,
        "source": v.source,
        "run_id": v.run_id.as_ref().map(|r| r.as_str()).unwrap_or(""),
        "status": match v.status {
            ModelVersionStatus::PendingRegistration => "PENDING_REGISTRATION",
            ModelVersionStatus::FailedRegistration => "FAILED_REGISTRATION",
            ModelVersionStatus::Ready => "READY",
        },
        "tags": tags,
        "aliases": v.aliases.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
    });
    if let Some(o) = out.as_object_mut() {
        if let Some(u) = &v.user_id {
            o.insert("user_id".into(), u.as_str().into());
        }
        if let Some(m) = &v.status_message {
            o.insert("status_message".into(), m.as_str().into());
        }
        if let Some(l) = &v.run_link {
            o.insert("run_link".into(), l.as_str().into());
        }
        if let Some(m) = super::logged_models::model_id_of_source(&v.source) {
            o.insert("model_id".into(), m.into());
        }
    }
    out
}

/// A registered model as `RegisteredModel`.
pub(crate) fn registered_model_to_json(m: &RegisteredModel) -> serde_json::Value {
    let mut out = serde_json::json!({
        "name": m.name.as_str(),
        "creation_timestamp": m.creation_timestamp,
        "last_updated_timestamp": m.last_updated_timestamp,
        "description": m.description,
        "latest_versions": m.latest_versions.iter().map(model_version_to_json).collect::<Vec<_>>(),
        "tags": tag_list(m.tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
        "aliases": m.aliases.iter().map(|(a, v)| serde_json::json!({"alias": a.as_str(), "version": v.to_string()})).collect::<Vec<_>>(),
    });
    if let (Some(u), Some(o)) = (&m.user_id, out.as_object_mut()) {
        o.insert("user_id".into(), u.as_str().into());
    }
    out
}

/// Splits the lineage and signature tags out of a version's tags (see [`model_version_to_json`]).
pub(crate) fn split_version_tags(
    name: &str,
    tags: Vec<JTag>,
) -> Result<(Vec<mlops_core::tracking::Tag>, Lineage, Option<Signature>)> {
    let mut lineage = Lineage::default();
    let mut signature = None;
    let mut rest = Vec::new();
    for t in tags {
        let value = t.value.unwrap_or_default();
        match t.key.as_str() {
            LINEAGE_TAG => {
                lineage = serde_json::from_str(&value).map_err(|e| {
                    Error::invalid("model version", format!("{name}: bad {LINEAGE_TAG} tag"))
                        .with_source(e)
                })?;
            }
            SIGNATURE_TAG => {
                signature = Some(serde_json::from_str(&value).map_err(|e| {
                    Error::invalid("model version", format!("{name}: bad {SIGNATURE_TAG} tag"))
                        .with_source(e)
                })?);
            }
            _ => rest.push(mlops_core::tracking::Tag::new(t.key.parse()?, value)?),
        }
    }
    Ok((rest, lineage, signature))
}
