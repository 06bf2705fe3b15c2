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
