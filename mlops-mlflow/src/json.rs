//! MLflow's JSON entity shapes (`service.proto`, `model_registry.proto` as JSON), and conversions
//! to and from the core types.

use std::collections::BTreeMap;

use mlops_core::registry::{Lineage, ModelVersion, ModelVersionStatus, RegisteredModel, Stage};
use mlops_core::signature::Signature;
use mlops_core::tracking::{
    Dataset, DatasetInput, Experiment, LifecycleStage, Metric, Run, RunData, RunInfo, RunInputs,
    json_f64,
};
use mlops_core::{Alias, Error, Result, TagKey, Version};
use serde::{Deserialize, Deserializer, Serialize};

/// int64 fields arrive as JSON numbers, but some servers send strings: accept both.
pub(crate) fn de_i64<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        N(i64),
        S(String),
    }
    Ok(match Option::<Repr>::deserialize(d)? {
        None => None,
        Some(Repr::N(n)) => Some(n),
        Some(Repr::S(s)) => s.parse().ok(),
    })
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct JTag {
    pub key: String,
    #[serde(default)]
    pub value: Option<String>,
}

pub(crate) fn tags_to_map(tags: Vec<JTag>) -> Result<BTreeMap<TagKey, String>> {
    tags.into_iter()
        .map(|t| Ok((t.key.parse()?, t.value.unwrap_or_default())))
        .collect()
}

#[derive(Debug, Deserialize)]
pub(crate) struct JExperiment {
    pub experiment_id: String,
    pub name: String,
    #[serde(default)]
    pub artifact_location: Option<String>,
    #[serde(default)]
    pub lifecycle_stage: Option<String>,
    #[serde(default, deserialize_with = "de_i64")]
    pub last_update_time: Option<i64>,
    #[serde(default, deserialize_with = "de_i64")]
    pub creation_time: Option<i64>,
    #[serde(default)]
    pub tags: Vec<JTag>,
}

fn stage(s: Option<&str>) -> LifecycleStage {
    match s {
        Some("deleted") => LifecycleStage::Deleted,
        _ => LifecycleStage::Active,
    }
}

impl JExperiment {
    pub(crate) fn into_core(self) -> Result<Experiment> {
        Ok(Experiment {
            experiment_id: self.experiment_id.parse()?,
            name: self.name.parse()?,
            artifact_location: self.artifact_location.unwrap_or_default(),
            lifecycle_stage: stage(self.lifecycle_stage.as_deref()),
            creation_time: self.creation_time.unwrap_or(0),
            last_update_time: self.last_update_time.unwrap_or(0),
            tags: tags_to_map(self.tags)?,
        })
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct JRunInfo {
    pub run_id: String,
    #[serde(default)]
    pub run_name: Option<String>,
    pub experiment_id: String,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "de_i64")]
    pub start_time: Option<i64>,
    #[serde(default, deserialize_with = "de_i64")]
    pub end_time: Option<i64>,
    #[serde(default)]
    pub artifact_uri: Option<String>,
    #[serde(default)]
    pub lifecycle_stage: Option<String>,
}

impl JRunInfo {
    pub(crate) fn into_core(self) -> Result<RunInfo> {
        Ok(RunInfo {
            run_id: self.run_id.parse()?,
            run_name: self.run_name.unwrap_or_default(),
            experiment_id: self.experiment_id.parse()?,
            user_id: self.user_id.unwrap_or_default(),
            status: self.status.as_deref().unwrap_or("RUNNING").parse()?,
            start_time: self.start_time.unwrap_or(0),
            end_time: self.end_time.filter(|t| *t != 0),
            artifact_uri: self.artifact_uri.unwrap_or_default(),
            lifecycle_stage: stage(self.lifecycle_stage.as_deref()),
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct JMetric {
    pub key: String,
    #[serde(with = "json_f64")]
    pub value: f64,
    #[serde(default, deserialize_with = "de_i64")]
    pub timestamp: Option<i64>,
    #[serde(default, deserialize_with = "de_i64")]
    pub step: Option<i64>,
}

impl JMetric {
    pub(crate) fn from_core(m: &Metric) -> Self {
        Self {
            key: m.key.to_string(),
            value: m.value,
            timestamp: Some(m.timestamp_ms),
            step: Some(m.step),
        }
    }

    pub(crate) fn into_core(self) -> Result<Metric> {
        Ok(Metric {
            key: self.key.parse()?,
            value: self.value,
            timestamp_ms: self.timestamp.unwrap_or(0),
            step: self.step.unwrap_or(0),
        })
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct JRunData {
    #[serde(default)]
    pub metrics: Vec<JMetric>,
    #[serde(default)]
    pub params: Vec<JTag>,
    #[serde(default)]
    pub tags: Vec<JTag>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct JDataset {
    pub name: String,
    pub digest: String,
    #[serde(default)]
    pub source_type: String,
    #[serde(default)]
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct JDatasetInput {
    #[serde(default)]
    pub tags: Vec<JTag>,
    pub dataset: JDataset,
}

impl JDatasetInput {
    pub(crate) fn from_core(d: &DatasetInput) -> Self {
        Self {
            tags: d
                .tags
                .iter()
                .map(|(k, v)| JTag {
                    key: k.clone(),
                    value: Some(v.clone()),
                })
                .collect(),
            dataset: JDataset {
                name: d.dataset.name.clone(),
                digest: d.dataset.digest.clone(),
                source_type: d.dataset.source_type.clone(),
                source: d.dataset.source.clone(),
                schema: d.dataset.schema.clone(),
                profile: d.dataset.profile.clone(),
            },
        }
    }

    pub(crate) fn into_core(self) -> DatasetInput {
        DatasetInput {
            dataset: Dataset {
                name: self.dataset.name,
                digest: self.dataset.digest,
                source_type: self.dataset.source_type,
                source: self.dataset.source,
                schema: self.dataset.schema,
                profile: self.dataset.profile,
            },
            tags: self
                .tags
                .into_iter()
                .map(|t| (t.key, t.value.unwrap_or_default()))
                .collect(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct JRunInputs {
    #[serde(default)]
    pub dataset_inputs: Vec<JDatasetInput>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct JRun {
    pub info: JRunInfo,
    #[serde(default)]
    pub data: JRunData,
    #[serde(default)]
    pub inputs: JRunInputs,
}

impl JRun {
    pub(crate) fn into_core(self) -> Result<Run> {
        let mut metrics = BTreeMap::new();
        for m in self.data.metrics {
            let m = m.into_core()?;
            metrics.insert(m.key.clone(), m);
        }
        let params = self
            .data
            .params
            .into_iter()
            .map(|p| Ok((p.key.parse()?, p.value.unwrap_or_default())))
            .collect::<Result<_>>()?;
        Ok(Run {
            info: self.info.into_core()?,
            data: RunData {
                metrics,
                params,
                tags: tags_to_map(self.data.tags)?,
            },
            inputs: RunInputs {
                dataset_inputs: self
                    .inputs
                    .dataset_inputs
                    .into_iter()
                    .map(JDatasetInput::into_core)
                    .collect(),
            },
        })
    }
}

/// Version tags that carry what MLflow's registry has no field for.
pub(crate) const LINEAGE_TAG: &str = "mlops.lineage";
pub(crate) const SIGNATURE_TAG: &str = "mlops.signature";

#[derive(Debug, Deserialize)]
pub(crate) struct JAlias {
    pub alias: String,
    pub version: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct JModelVersion {
    pub name: String,
    pub version: String,
    #[serde(default, deserialize_with = "de_i64")]
    pub creation_timestamp: Option<i64>,
    #[serde(default, deserialize_with = "de_i64")]
    pub last_updated_timestamp: Option<i64>,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub current_stage: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub run_id: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub status_message: Option<String>,
    #[serde(default)]
    pub tags: Vec<JTag>,
    #[serde(default)]
    pub run_link: Option<String>,
    #[serde(default)]
    pub aliases: Vec<String>,
}

impl JModelVersion {
    pub(crate) fn into_core(self) -> Result<ModelVersion> {
        let mut tags = tags_to_map(self.tags)?;
        let lineage: Lineage = match tags.remove(LINEAGE_TAG) {
            Some(json) => serde_json::from_str(&json).map_err(|e| {
                Error::corrupt("model version", &self.name, "bad lineage tag").with_source(e)
            })?,
            None => Lineage::default(),
        };
        let signature: Option<Signature> = match tags.remove(SIGNATURE_TAG) {
            Some(json) => Some(serde_json::from_str(&json).map_err(|e| {
                Error::corrupt("model version", &self.name, "bad signature tag").with_source(e)
            })?),
            None => None,
        };
        let run_id = match self.run_id.filter(|r| !r.is_empty()) {
            Some(r) => Some(r.parse()?),
            None => None,
        };
        let mut lineage = lineage;
        if lineage.run_id.is_none() {
            lineage.run_id.clone_from(&run_id);
        }
        Ok(ModelVersion {
            name: self.name.parse()?,
            version: self.version.parse()?,
            creation_timestamp: self.creation_timestamp.unwrap_or(0),
            last_updated_timestamp: self.last_updated_timestamp.unwrap_or(0),
            user_id: self.user_id.filter(|u| !u.is_empty()),
            current_stage: self
                .current_stage
                .as_deref()
                .unwrap_or("None")
                .parse()
                .unwrap_or(Stage::None),
            description: self.description.unwrap_or_default(),
            source: self.source.unwrap_or_default(),
            run_id,
            status: match self.status.as_deref() {
                Some("PENDING_REGISTRATION") => ModelVersionStatus::PendingRegistration,
                Some("FAILED_REGISTRATION") => ModelVersionStatus::FailedRegistration,
                _ => ModelVersionStatus::Ready,
            },
            status_message: self.status_message.filter(|m| !m.is_empty()),
            tags,
            run_link: self.run_link.filter(|l| !l.is_empty()),
            aliases: self
                .aliases
                .iter()
                .map(|a| a.parse::<Alias>())
                .collect::<Result<_>>()?,
            lineage,
            signature,
        })
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct JRegisteredModel {
    pub name: String,
    #[serde(default, deserialize_with = "de_i64")]
    pub creation_timestamp: Option<i64>,
    #[serde(default, deserialize_with = "de_i64")]
    pub last_updated_timestamp: Option<i64>,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub latest_versions: Vec<JModelVersion>,
    #[serde(default)]
    pub tags: Vec<JTag>,
    #[serde(default)]
    pub aliases: Vec<JAlias>,
}

impl JRegisteredModel {
    pub(crate) fn into_core(self) -> Result<RegisteredModel> {
        let mut aliases = BTreeMap::new();
        for a in self.aliases {
            aliases.insert(a.alias.parse::<Alias>()?, a.version.parse::<Version>()?);
        }
        Ok(RegisteredModel {
            name: self.name.parse()?,
            creation_timestamp: self.creation_timestamp.unwrap_or(0),
            last_updated_timestamp: self.last_updated_timestamp.unwrap_or(0),
            user_id: self.user_id.filter(|u| !u.is_empty()),
            description: self.description.unwrap_or_default(),
            latest_versions: self
                .latest_versions
                .into_iter()
                .map(JModelVersion::into_core)
                .collect::<Result<_>>()?,
            tags: tags_to_map(self.tags)?,
            aliases,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Core → MLflow JSON (what a server answers). int64 fields are JSON numbers, enums their names,
// unset fields omitted — as MLflow's own server emits them.

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
