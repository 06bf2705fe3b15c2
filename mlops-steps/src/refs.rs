//! The typed values steps hand each other: a dataset version and a trained model.

use std::collections::BTreeMap;

use mlops_core::registry::DatasetLineage;
use mlops_core::{DatasetName, Digest, ModelName, RunId, Version};
use serde::{Deserialize, Deserializer, Serialize};

/// A dataset version, as the `dataset` step outputs it (and `train`, `drift`, `monitor` read
/// it). Its output digest is the version's manifest digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetRef {
    /// The dataset.
    pub name: DatasetName,
    /// The version.
    pub version: Version,
    /// Its manifest's digest.
    pub digest: Digest,
    /// Its rows.
    #[serde(default)]
    pub rows: u64,
}

impl DatasetRef {
    /// A committed version, as the step output that names it.
    pub fn of(v: &mlops_storage::dataset::DatasetVersion) -> Self {
        Self {
            name: v.name.clone(),
            version: v.version,
            digest: v.digest,
            rows: v.manifest.rows,
        }
    }

    /// As the output `dataset` (its digest: the manifest's).
    pub fn into_outputs(self) -> mlops_core::Result<mlops_pipeline::Outputs> {
        Ok(mlops_pipeline::Outputs::from([(
            "dataset".to_owned(),
            mlops_pipeline::Output::typed(self.digest, &self)?,
        )]))
    }

    /// The lineage a model trained on it records.
    pub fn lineage(&self) -> DatasetLineage {
        DatasetLineage {
            name: self.name.clone(),
            version: self.version,
            digest: self.digest,
        }
    }
}

/// A trained model, as the `train` step outputs it (and `promote`, `validate` read it). Its
/// output digest is the model artifact's tree digest. A step of one's own may hand `promote`
/// just `{name, version}`: the other fields are optional when read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRef {
    /// Where the artifact is (`tree:<digest>`).
    #[serde(default)]
    pub source: String,
    /// The training run.
    #[serde(default)]
    pub run_id: Option<RunId>,
    /// The registered model, when the step registered it.
    #[serde(default)]
    pub name: Option<ModelName>,
    /// The registered version, when the step registered it.
    #[serde(default)]
    pub version: Option<Version>,
    /// The final metrics (`val_accuracy`, …). JSON has no NaN: a metric that diverged is
    /// written as `null` and read back as NaN.
    #[serde(default, deserialize_with = "metrics_or_nan")]
    pub metrics: BTreeMap<String, f64>,
}

/// `null` (how JSON writes NaN) as NaN.
pub(crate) fn f64_or_nan<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

fn metrics_or_nan<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, f64>, D::Error> {
    let raw = BTreeMap::<String, Option<f64>>::deserialize(d)?;
    Ok(raw
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or(f64::NAN)))
        .collect())
}

impl ModelRef {
    /// The registered model and version, when there is one.
    pub fn registered(&self) -> Option<(&ModelName, Version)> {
        self.name.as_ref().zip(self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the steps wrote before they were typed reads the same, and writes back identically
    /// (cache records and `when:` conditions depend on it).
    #[test]
    fn outputs_keep_their_json() {
        let dataset = serde_json::json!({
            "name": "churn", "version": 3,
            "digest": Digest::of(b"m").to_hex(), "rows": 800
        });
        let d: DatasetRef = serde_json::from_value(dataset.clone()).unwrap();
        assert_eq!(serde_json::to_value(&d).unwrap(), dataset);

        let model = serde_json::json!({
            "source": "tree:abc", "run_id": "r1", "name": "churn", "version": 2,
            "metrics": {"val_accuracy": 0.8, "val_loss": null}
        });
        let m: ModelRef = serde_json::from_value(model.clone()).unwrap();
        assert!(m.metrics["val_loss"].is_nan());
        assert_eq!(serde_json::to_value(&m).unwrap(), model);
        assert_eq!(
            m.registered().map(|(n, v)| (n.as_str(), v.get())),
            Some(("churn", 2))
        );
        let unregistered = serde_json::json!({
            "source": "tree:abc", "run_id": "r1", "name": null, "version": null, "metrics": {}
        });
        let m: ModelRef = serde_json::from_value(unregistered.clone()).unwrap();
        assert_eq!(m.registered(), None);
        assert_eq!(serde_json::to_value(&m).unwrap(), unregistered);
        // A step of one's own may hand promote just a name and a version.
        let m: ModelRef =
            serde_json::from_value(serde_json::json!({"name": "x", "version": 1})).unwrap();
        assert!(m.registered().is_some());
    }
}
