//! `validate`: a candidate model against the champion — on the same labelled holdout when one is
//! wired in, else by the metric each recorded at training.

use std::collections::BTreeMap;
use std::sync::Arc;

use mlops_core::model::ArtifactSource;
use mlops_core::store::RefVersion;
use mlops_core::{Alias, Digest, Error, ModelName, ModelVersion, Result};
use mlops_pipeline::{Output, Outputs, Step, StepContext, parse_params};
use mlops_storage::{Artifacts, Datasets};
use serde::{Deserialize, Serialize};

use crate::{DatasetRef, ModelRef, StepEnv, alias_or_champion, alias_target};

/// `validate`'s parameters.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidateParams {
    /// The registered model whose champion to beat (default: the candidate's).
    #[serde(default)]
    pub model: Option<ModelName>,
    /// The champion's alias (`champion` by default).
    #[serde(default)]
    pub alias: Option<Alias>,
    /// The metric each model recorded at training, compared when there is no holdout
    /// (`val_accuracy` by default; lower is better for losses and errors).
    #[serde(default = "default_metric")]
    pub metric: String,
    /// The label column of the `holdout` input; both models are scored by accuracy on it.
    #[serde(default)]
    pub target: Option<String>,
    /// How much better the candidate must be.
    #[serde(default)]
    pub min_delta: f64,
    /// Assess the candidate on the holdout: `false` for never, or the keys of
    /// [`AssessParams`](crate::assess::AssessParams) (`sensitive`, `privileged`, …). By
    /// default it is assessed when the holdout declares sensitive columns (its `sensitive`
    /// metadata). The findings become tags of the candidate's version, which promotion
    /// policies (the fairness rule) read.
    #[serde(default)]
    pub assess: Option<serde_json::Value>,
}

impl ValidateParams {
    fn parse(params: &serde_json::Value) -> Result<Self> {
        let p: Self = parse_params("validate", params)?;
        p.assess_params(&BTreeMap::new())?;
        Ok(p)
    }

    /// The assessment asked for on a holdout with `metadata`: `None` when there is none.
    fn assess_params(
        &self,
        metadata: &BTreeMap<String, String>,
    ) -> Result<Option<crate::assess::AssessParams>> {
        let absent = metadata
            .contains_key(crate::assess::SENSITIVE_METADATA)
            .then(Default::default);
        crate::assess::AssessParams::from_step_param("validate", self.assess.as_ref(), absent)
    }
}

fn default_metric() -> String {
    "val_accuracy".into()
}

/// `validate`'s output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Whether the candidate may replace the champion.
    pub passed: bool,
    /// Why, in words.
    pub reason: String,
    /// The metric compared (`accuracy` on a holdout).
    pub metric: String,
    /// The candidate's value.
    #[serde(deserialize_with = "crate::refs::f64_or_nan")]
    pub candidate: f64,
    /// The champion's value, when there is a champion with that metric.
    pub champion: Option<f64>,
    /// The holdout both were scored on, when one was wired in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holdout: Option<DatasetRef>,
    /// The candidate's assessment on the holdout (`explain.*`, `fairness.*`), also set as
    /// tags of its version.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub assessment: BTreeMap<String, String>,
}

/// `validate`: passes a candidate whose score is at least the champion's plus `min_delta`;
/// without a champion, any candidate passes.
///
/// With a `holdout` input (labelled data, e.g. the production feedback the monitor judged),
/// both models are scored by accuracy on exactly those rows — the only comparison that holds
/// when each was trained and validated on different data. Without one, the candidate's
/// training metric is compared with the champion's `metrics.<metric>` tag.
#[derive(Debug)]
pub struct ValidateStep(pub(crate) Arc<StepEnv>);

#[async_trait::async_trait]
impl Step for ValidateStep {
    async fn run(&self, ctx: Arc<StepContext>) -> Result<Outputs> {
        let params = ValidateParams::parse(&ctx.params)?;
        let candidate: ModelRef = ctx.input("candidate")?.get()?;
        let name = params
            .model
            .clone()
            .or_else(|| candidate.name.clone())
            .ok_or_else(|| Error::invalid("step param", format!("{}: name the model", ctx.step)))?;
        let alias = alias_or_champion(&params.alias)?;
        let champion = alias_target(self.0.registry.as_ref(), &name, &alias).await?;
        let verdict = match ctx.inputs.get("holdout") {
            Some(holdout) => {
                let holdout: DatasetRef = holdout.get()?;
                self.on_holdout(&ctx, &params, &candidate, champion.as_ref(), holdout)
                    .await?
            }
            None => by_training_metric(&ctx.step, &params, &candidate, champion.as_ref(), &alias)?,
        };
        Ok(Outputs::from([(
            "verdict".to_owned(),
            Output::of(&verdict)?,
        )]))
    }

    fn check(&self, params: &serde_json::Value) -> Result<()> {
        ValidateParams::parse(params).map(|_| ())
    }
}

/// The rule: at least the champion's score plus `min_delta` (at most, minus, when lower is
/// better).
fn beats(goal: mlops_train::Goal, mine: f64, best: f64, min_delta: f64) -> bool {
    match goal {
        mlops_train::Goal::Maximize => mine >= best + min_delta,
        mlops_train::Goal::Minimize => mine <= best - min_delta,
    }
}

fn by_training_metric(
    step: &str,
    params: &ValidateParams,
    candidate: &ModelRef,
    champion: Option<&ModelVersion>,
    alias: &Alias,
) -> Result<Verdict> {
    let metric = params.metric.clone();
    let mine = *candidate.metrics.get(&metric).ok_or_else(|| {
        Error::invalid(
            "step input",
            format!("{step}: the candidate has no metric {metric}"),
        )
    })?;
    let best = champion.and_then(|v| {
        v.tags
            .get(format!("metrics.{metric}").as_str())
            .and_then(|s| s.parse::<f64>().ok())
    });
    let (passed, reason) = match best {
        None => (true, format!("no {alias} to beat")),
        Some(best) => (
            beats(
                mlops_train::Goal::for_metric(&metric),
                mine,
                best,
                params.min_delta,
            ),
            format!("{metric} {mine:.4} vs {alias} {best:.4}"),
        ),
    };
    Ok(Verdict {
        passed,
        reason,
        metric,
        candidate: mine,
        champion: best,
        holdout: None,
        assessment: BTreeMap::new(),
    })
}

impl ValidateStep {
    async fn on_holdout(
        &self,
        ctx: &Arc<StepContext>,
        params: &ValidateParams,
        candidate: &ModelRef,
        champion: Option<&ModelVersion>,
        holdout: DatasetRef,
    ) -> Result<Verdict> {
        let env = &self.0;
        let target = params.target.clone().ok_or_else(|| {
            Error::invalid(
                "step param",
                format!(
                    "{}: a holdout needs the target (its label column)",
                    ctx.step
                ),
            )
        })?;
        let (holdout_version, rows) = Datasets::new(env.store.clone())
            .read_all(&holdout.name, RefVersion::Exact(holdout.version))
            .await?;
        let assessor = params
            .assess_params(&holdout_version.manifest.metadata)?
            .map(|a| a.assessor(&holdout_version.manifest.metadata))
            .transpose()?;
        let artifacts = Artifacts::new(env.store.clone());
        let digest = candidate
            .source
            .strip_prefix(mlops_storage::MODEL_SOURCE_PREFIX)
            .and_then(|d| d.parse::<Digest>().ok())
            .ok_or_else(|| {
                Error::invalid(
                    "step input",
                    format!(
                        "{}: the candidate's model {:?} is not in this store",
                        ctx.step, candidate.source
                    ),
                )
            })?;
        let loader = mlops_train::CandleLoader::new();
        let mine_model = loader.load_model(&artifacts.get_model(&digest).await?)?;
        let best_model = match champion {
            Some(v) => Some(loader.load_model(&artifacts.fetch(v).await?)?),
            None => None,
        };
        let (scored_rows, t) = (rows, target.clone());
        let (mine, best, findings) = ctx
            .blocking(move |_| {
                let mine = crate::scoring::accuracy_of(&mine_model, &scored_rows, &t)?;
                let best = best_model
                    .map(|m| crate::scoring::accuracy_of(&m, &scored_rows, &t))
                    .transpose()?;
                let findings = match assessor {
                    Some(assessor) => {
                        let batch = arrow::compute::concat_batches(
                            &scored_rows
                                .first()
                                .ok_or_else(|| Error::invalid("holdout", "no rows"))?
                                .schema(),
                            &scored_rows,
                        )
                        .map_err(|e| Error::backend("arrow", e))?;
                        let model: Arc<dyn mlops_core::Model> = Arc::new(mine_model);
                        Some(assessor.findings(&model, &batch, &t)?)
                    }
                    None => None,
                };
                Ok((mine, best, findings))
            })
            .await?;
        let mut assessment = findings.map(|f| f.tags()).unwrap_or_default();
        if !assessment.is_empty() {
            assessment.insert(
                "mlops.assessment.data".to_owned(),
                format!("{}@{}", holdout.name, holdout.version),
            );
        }
        if let Some((name, version)) = candidate.registered()
            && !assessment.is_empty()
        {
            // The holdout's findings replace training's: no stale interval, privileged group
            // or metric (one undefined here) may stay beside them for the policy to read.
            let object = mlops_core::registry::RegistryObject::Version(name.clone(), version);
            let current = env.registry.get_model_version(name, version).await?;
            for key in current.tags.keys() {
                let k = key.as_str();
                if (k.starts_with("explain.") || k.starts_with("fairness."))
                    && !assessment.contains_key(k)
                {
                    env.registry.delete_tag(&object, key).await?;
                }
            }
            for (k, v) in &assessment {
                env.registry
                    .set_tag(
                        &mlops_core::registry::RegistryObject::Version(name.clone(), version),
                        mlops_core::Tag::new(k.parse()?, v.clone())?,
                    )
                    .await?;
            }
        }
        let alias = alias_or_champion(&params.alias)?;
        let on = format!("{}@{}", holdout.name, holdout.version);
        let (passed, reason) = match (best, champion) {
            (Some(best), Some(v)) => (
                beats(mlops_train::Goal::Maximize, mine, best, params.min_delta),
                format!(
                    "accuracy on {on}: {mine:.4} vs {alias} (v{}) {best:.4}",
                    v.version
                ),
            ),
            _ => (
                true,
                format!("accuracy on {on}: {mine:.4}; no {alias} to beat"),
            ),
        };
        Ok(Verdict {
            passed,
            reason,
            metric: "accuracy".into(),
            candidate: mine,
            champion: best,
            holdout: Some(holdout),
            assessment,
        })
    }
}
