//! `validate`: a candidate model against the champion by a metric.

use std::sync::Arc;

use mlops_core::{Alias, Error, ModelName, Result};
use mlops_pipeline::{Output, Outputs, Step, StepContext, parse_params};
use serde::{Deserialize, Serialize};

use crate::{ModelRef, StepEnv, alias_or_champion, alias_target};

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
    /// The metric to compare (`val_accuracy` by default; lower is better for losses and
    /// errors).
    #[serde(default = "default_metric")]
    pub metric: String,
    /// How much better the candidate must be.
    #[serde(default)]
    pub min_delta: f64,
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
    /// The metric compared.
    pub metric: String,
    /// The candidate's value.
    pub candidate: f64,
    /// The champion's value, when there is a champion with that metric.
    pub champion: Option<f64>,
}

/// `validate`: passes a candidate whose metric is at least the champion's (plus `min_delta`);
/// without a champion, any candidate passes.
#[derive(Debug)]
pub struct ValidateStep(pub(crate) Arc<StepEnv>);

#[async_trait::async_trait]
impl Step for ValidateStep {
    async fn run(&self, ctx: Arc<StepContext>) -> Result<Outputs> {
        let params: ValidateParams = ctx.params_as()?;
        let candidate: ModelRef = ctx.input("candidate")?.get()?;
        let metric = params.metric;
        let goal = mlops_train::Goal::for_metric(&metric);
        let mine = *candidate.metrics.get(&metric).ok_or_else(|| {
            Error::invalid(
                "step input",
                format!("{}: the candidate has no metric {metric}", ctx.step),
            )
        })?;
        let name = params
            .model
            .or(candidate.name)
            .ok_or_else(|| Error::invalid("step param", format!("{}: name the model", ctx.step)))?;
        let alias = alias_or_champion(&params.alias)?;
        let champion = alias_target(self.0.registry.as_ref(), &name, &alias)
            .await?
            .and_then(|v| {
                v.tags
                    .get(format!("metrics.{metric}").as_str())
                    .and_then(|s| s.parse::<f64>().ok())
            });
        let (passed, reason) = match champion {
            None => (true, format!("no {alias} to beat")),
            Some(best) => {
                let better = match goal {
                    mlops_train::Goal::Maximize => mine >= best + params.min_delta,
                    mlops_train::Goal::Minimize => mine <= best - params.min_delta,
                };
                (better, format!("{metric} {mine:.4} vs {alias} {best:.4}"))
            }
        };
        let verdict = Verdict {
            passed,
            reason,
            metric,
            candidate: mine,
            champion,
        };
        Ok(Outputs::from([(
            "verdict".to_owned(),
            Output::of(&verdict)?,
        )]))
    }

    fn check(&self, params: &serde_json::Value) -> Result<()> {
        parse_params::<ValidateParams>("validate", params).map(|_| ())
    }
}
