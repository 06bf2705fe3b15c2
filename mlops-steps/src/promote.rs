//! `promote`: an alias moved to a registered model version.

use std::sync::Arc;

use mlops_core::{Alias, Error, ModelName, Result, Version};
use mlops_pipeline::{Output, Outputs, Step, StepContext, parse_params};
use serde::{Deserialize, Serialize};

use crate::{ModelRef, StepEnv, alias_or_champion, alias_target};

/// `promote`'s parameters.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromoteParams {
    /// The alias to move (`champion` by default).
    #[serde(default)]
    pub alias: Option<Alias>,
}

/// `promote`'s output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Promoted {
    /// The model.
    pub name: ModelName,
    /// The version the alias now points at.
    pub version: Version,
    /// The alias.
    pub alias: Alias,
}

/// `promote`: points `alias` at the registered `model`, through the registry the steps were
/// given (so a governed registry asks its policy first).
#[derive(Debug)]
pub struct PromoteStep(pub(crate) Arc<StepEnv>);

#[async_trait::async_trait]
impl Step for PromoteStep {
    async fn run(&self, ctx: Arc<StepContext>) -> Result<Outputs> {
        let params: PromoteParams = ctx.params_as()?;
        let model: ModelRef = ctx.input("model")?.get()?;
        let Some((name, version)) = model.registered() else {
            return Err(Error::invalid(
                "step input",
                format!(
                    "{}: the model was not registered (give the train step `register`)",
                    ctx.step
                ),
            ));
        };
        let alias = alias_or_champion(&params.alias)?;
        self.0.registry.set_alias(name, &alias, version).await?;
        let promoted = Promoted {
            name: name.clone(),
            version,
            alias,
        };
        Ok(Outputs::from([(
            "promoted".to_owned(),
            Output::of(&promoted)?,
        )]))
    }

    async fn outputs_exist(&self, _ctx: &StepContext, outputs: &Outputs) -> Result<bool> {
        // Valid while the alias still points where it was moved.
        let Some(p) = outputs.get("promoted") else {
            return Ok(false);
        };
        let Ok(p) = p.get::<Promoted>() else {
            return Ok(false);
        };
        let now = alias_target(self.0.registry.as_ref(), &p.name, &p.alias).await?;
        Ok(now.map(|v| v.version) == Some(p.version))
    }

    fn check(&self, params: &serde_json::Value) -> Result<()> {
        parse_params::<PromoteParams>("promote", params).map(|_| ())
    }
}
