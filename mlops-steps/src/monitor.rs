//! `monitor`: production data against the stored reference profile of the version an alias
//! points at, plus accuracy on labelled feedback, decided by the retraining rule.

use std::sync::Arc;

use mlops_core::drift::{DetectOptions, DriftDetector};
use mlops_core::store::RefVersion;
use mlops_core::{Alias, Error, ModelName, Result, Version};
use mlops_pipeline::{Output, Outputs, Step, StepContext, parse_params};
use mlops_storage::{Artifacts, Datasets};
use serde::{Deserialize, Serialize};

use crate::{DatasetRef, StepEnv, alias_or_champion, alias_target, share};

/// `monitor`'s parameters.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorParams {
    /// The registered model.
    pub model: ModelName,
    /// The alias of the version in production (`champion` by default).
    #[serde(default)]
    pub alias: Option<Alias>,
    /// The label column of the feedback, when the data carries one.
    #[serde(default)]
    pub target: Option<String>,
    /// Retrain when more than this share of columns drifted (0.3).
    #[serde(default = "default_drift_share")]
    pub max_drift_share: f64,
    /// Retrain when accuracy fell by more than this (0.05).
    #[serde(default = "default_accuracy_drop")]
    pub max_accuracy_drop: f64,
}

fn default_drift_share() -> f64 {
    0.3
}

fn default_accuracy_drop() -> f64 {
    0.05
}

impl MonitorParams {
    fn parse(params: &serde_json::Value) -> Result<Self> {
        let p: Self = parse_params("monitor", params)?;
        share("monitor", "max_drift_share", Some(p.max_drift_share))?;
        share("monitor", "max_accuracy_drop", Some(p.max_accuracy_drop))?;
        Ok(p)
    }
}

/// `monitor`'s output: whether to retrain, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitorDecision {
    /// The retraining rule fired.
    pub retrain: bool,
    /// Every reason it fired.
    pub reasons: Vec<String>,
    /// The model judged.
    pub model: ModelName,
    /// The version judged (the alias's target).
    pub version: Version,
    /// The share of drifted columns.
    #[serde(deserialize_with = "crate::refs::f64_or_nan")]
    pub drift_score: f64,
    /// Evidently's dataset drift verdict.
    pub dataset_drift: bool,
    /// The drifted columns.
    pub drifted_columns: Vec<String>,
    /// Accuracy on the labelled feedback, when there was some.
    pub accuracy: Option<f64>,
    /// How far it fell below the version's `metrics.val_accuracy`.
    pub accuracy_drop: Option<f64>,
}

/// `monitor`: tests production data against the stored reference profile of the model
/// version an alias points at, measures accuracy when the data carries the target, and decides
/// by the retraining rule (`drift_score > 0.3 or accuracy_drop > 0.05` by default) — the rule
/// the online `DriftMonitor` uses too.
#[derive(Debug)]
pub struct MonitorStep(pub(crate) Arc<StepEnv>);

#[async_trait::async_trait]
impl Step for MonitorStep {
    async fn run(&self, ctx: Arc<StepContext>) -> Result<Outputs> {
        let env = &self.0;
        let params = MonitorParams::parse(&ctx.params)?;
        let alias = alias_or_champion(&params.alias)?;
        let version = alias_target(env.registry.as_ref(), &params.model, &alias)
            .await?
            .ok_or_else(|| {
                Error::not_found("model version", format!("models:/{}@{alias}", params.model))
            })?;
        let profile = mlops_drift::profiles::for_version(
            env.store.as_ref(),
            env.registry.as_ref(),
            &params.model,
            version.version,
        )
        .await?;
        let current: DatasetRef = ctx.input("current")?.get()?;
        let (_, rows) = Datasets::new(env.store.clone())
            .read_all(&current.name, RefVersion::Exact(current.version))
            .await?;
        // Accuracy on labelled feedback: the model's predictions against the target column.
        let accuracy = match &params.target {
            Some(t) if rows.first().is_some_and(|b| b.column_by_name(t).is_some()) => {
                let artifact = mlops_core::model::ArtifactSource::fetch(
                    &Artifacts::new(env.store.clone()),
                    &version,
                )
                .await?;
                let model = mlops_train::CandleLoader::new().load_model(&artifact)?;
                let (rows, t) = (rows.clone(), t.clone());
                Some(
                    ctx.blocking(move |_| crate::scoring::accuracy_of(&model, &rows, &t))
                        .await?,
                )
            }
            _ => None,
        };
        let baseline = version
            .tags
            .get("metrics.val_accuracy")
            .and_then(|v| v.parse::<f64>().ok());
        let rule = mlops_drift::RetrainRule {
            max_drift_share: params.max_drift_share,
            max_accuracy_drop: params.max_accuracy_drop,
            baseline_accuracy: baseline,
            consecutive_windows: 1,
        };
        // The profile holds the model's inputs; the label column of the feedback is not tested.
        let (reference_name, current_name) = (
            format!("{} v{} training data", params.model, version.version),
            format!("{}@{}", current.name, current.version),
        );
        let (report, full) = ctx
            .blocking(move |_| {
                let report = mlops_drift::StatDetector::new().detect(
                    &profile,
                    &rows,
                    &DetectOptions::default(),
                )?;
                let full = mlops_drift::Report::new(
                    &report,
                    &profile,
                    &rows,
                    reference_name,
                    current_name,
                )?;
                Ok((report, full))
            })
            .await?;
        // Kept over time beside the other reports about this model (the UI's drift page).
        mlops_drift::history::log_report(
            env.tracker.as_ref(),
            &full,
            Some((&params.model, version.version)),
        )
        .await?;
        let reasons = rule.reasons(&report, accuracy);
        let decision = MonitorDecision {
            retrain: !reasons.is_empty(),
            reasons,
            model: params.model,
            version: version.version,
            drift_score: report.share_drifted,
            dataset_drift: report.dataset_drift,
            drifted_columns: report
                .columns
                .iter()
                .filter(|c| c.drifted)
                .map(|c| c.column.clone())
                .collect(),
            accuracy,
            accuracy_drop: rule.accuracy_drop(accuracy),
        };
        Ok(Outputs::from([(
            "decision".to_owned(),
            Output::of(&decision)?,
        )]))
    }

    async fn outputs_exist(&self, ctx: &StepContext, outputs: &Outputs) -> Result<bool> {
        // Valid while the alias still points at the version it judged.
        let Some(d) = outputs.get("decision") else {
            return Ok(false);
        };
        let Ok(d) = d.get::<MonitorDecision>() else {
            return Ok(false);
        };
        let params = MonitorParams::parse(&ctx.params)?;
        let alias = alias_or_champion(&params.alias)?;
        let now = alias_target(self.0.registry.as_ref(), &d.model, &alias).await?;
        Ok(now.map(|v| v.version) == Some(d.version))
    }

    fn check(&self, params: &serde_json::Value) -> Result<()> {
        MonitorParams::parse(params).map(|_| ())
    }
}
