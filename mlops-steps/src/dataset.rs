//! `dataset`: names a dataset version.

use std::sync::Arc;

use mlops_core::store::RefVersion;
use mlops_core::{DatasetName, Result, Version};
use mlops_pipeline::{Outputs, Step, StepContext, parse_params};
use mlops_storage::Datasets;
use serde::Deserialize;

use crate::{DatasetRef, StepEnv};

/// `dataset`'s parameters.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetParams {
    /// The dataset.
    pub name: DatasetName,
    /// The version; the latest when absent.
    #[serde(default)]
    pub version: Option<Version>,
}

impl DatasetParams {
    fn at(&self) -> RefVersion {
        self.version.map_or(RefVersion::Latest, RefVersion::Exact)
    }
}

/// `dataset`: names a dataset version (the latest unless `version` is given). Its output is
/// valid while that version is still the one asked for: once a newer version exists, a
/// `dataset` step without `version` runs again, and so does everything that depends on it.
#[derive(Debug)]
pub struct DatasetStep(pub(crate) Arc<StepEnv>);

#[async_trait::async_trait]
impl Step for DatasetStep {
    async fn run(&self, ctx: Arc<StepContext>) -> Result<Outputs> {
        let params: DatasetParams = ctx.params_as()?;
        let v = Datasets::new(self.0.store.clone())
            .version(&params.name, params.at())
            .await?;
        DatasetRef::of(&v).into_outputs()
    }

    async fn outputs_exist(&self, ctx: &StepContext, outputs: &Outputs) -> Result<bool> {
        let Some(recorded) = outputs.get("dataset") else {
            return Ok(false);
        };
        let Ok(recorded) = recorded.get::<DatasetRef>() else {
            return Ok(false);
        };
        let params: DatasetParams = ctx.params_as()?;
        match Datasets::new(self.0.store.clone())
            .version(&recorded.name, params.at())
            .await
        {
            Ok(now) => Ok(now.version == recorded.version && now.digest == recorded.digest),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn check(&self, params: &serde_json::Value) -> Result<()> {
        parse_params::<DatasetParams>("dataset", params).map(|_| ())
    }
}
