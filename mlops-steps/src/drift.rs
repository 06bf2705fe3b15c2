//! `drift`: one dataset version tested against another with Evidently's rules.

use std::sync::Arc;

use mlops_core::drift::{DetectOptions, DriftDetector, ProfileOptions};
use mlops_core::store::RefVersion;
use mlops_core::{Error, Result};
use mlops_pipeline::{Output, Outputs, Step, StepContext, parse_params};
use mlops_storage::Datasets;
use serde::{Deserialize, Serialize};

use crate::{DatasetRef, StepEnv, share};

/// `drift`'s parameters.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftParams {
    /// Fail the step (and stop its dependants) on dataset drift.
    #[serde(default)]
    pub fail_on_drift: bool,
    /// The share of drifted columns that makes dataset drift (Evidently's 0.5 by default).
    #[serde(default)]
    pub drift_share: Option<f64>,
}

impl DriftParams {
    fn parse(params: &serde_json::Value) -> Result<Self> {
        let p: Self = parse_params("drift", params)?;
        share("drift", "drift_share", p.drift_share)?;
        Ok(p)
    }
}

/// `drift`'s output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftSummary {
    /// Whether the share of drifted columns reached the threshold.
    pub dataset_drift: bool,
    /// The share of drifted columns.
    pub share_drifted: f64,
    /// The drifted columns.
    pub drifted_columns: Vec<String>,
    /// Columns that could not be tested, and why.
    #[serde(default)]
    pub untested: Vec<mlops_core::drift::UntestedColumn>,
}

/// `drift`: tests `current` against `reference` with Evidently's rules.
#[derive(Debug)]
pub struct DriftStep(pub(crate) Arc<StepEnv>);

#[async_trait::async_trait]
impl Step for DriftStep {
    async fn run(&self, ctx: Arc<StepContext>) -> Result<Outputs> {
        let params = DriftParams::parse(&ctx.params)?;
        let datasets = Datasets::new(self.0.store.clone());
        let reference: DatasetRef = ctx.input("reference")?.get()?;
        let current: DatasetRef = ctx.input("current")?.get()?;
        let (_, reference_rows) = datasets
            .read_all(&reference.name, RefVersion::Exact(reference.version))
            .await?;
        let (_, current_rows) = datasets
            .read_all(&current.name, RefVersion::Exact(current.version))
            .await?;
        let mut options = DetectOptions::default();
        if let Some(share) = params.drift_share {
            options.drift_share = share;
        }
        let report = ctx
            .blocking(move |_| {
                let detector = mlops_drift::StatDetector::new();
                let profile = detector.profile(&reference_rows, &ProfileOptions::default())?;
                detector.detect(&profile, &current_rows, &options)
            })
            .await?;
        let summary = DriftSummary {
            dataset_drift: report.dataset_drift,
            share_drifted: report.share_drifted,
            drifted_columns: report
                .columns
                .iter()
                .filter(|c| c.drifted)
                .map(|c| c.column.clone())
                .chain(
                    report
                        .untested
                        .iter()
                        .filter(|u| u.emptied)
                        .map(|u| u.column.clone()),
                )
                .collect(),
            untested: report.untested.clone(),
        };
        if params.fail_on_drift && report.dataset_drift {
            return Err(Error::invalid(
                "data",
                format!(
                    "dataset drift: {} of {} columns drifted ({})",
                    report.drifted_columns,
                    report.columns_judged(),
                    summary.drifted_columns.join(", ")
                ),
            ));
        }
        Ok(Outputs::from([(
            "report".to_owned(),
            Output::of(&summary)?,
        )]))
    }

    fn check(&self, params: &serde_json::Value) -> Result<()> {
        DriftParams::parse(params).map(|_| ())
    }
}
