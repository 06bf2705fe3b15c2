//! `models:/` and `runs:/` URIs, as MLflow spells them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::{Alias, ArtifactPath, ModelName, RunId, Version};
use crate::registry::Stage;

/// A reference to a model: a registry version, alias, stage or latest version, or a run's
/// artifact path.
///
/// | form | meaning |
/// |---|---|
/// | `models:/churn/3` | version 3 of `churn` |
/// | `models:/churn@champion` | the version the alias `champion` points at |
/// | `models:/churn/Production` | the latest version in stage Production |
/// | `models:/churn/latest` | the latest version |
/// | `runs:/<run_id>/model` | the `model` artifact directory of a run |
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum ModelUri {
    /// `models:/<name>/<version>`.
    Version {
        /// Registered model.
        name: ModelName,
        /// Version number.
        version: Version,
    },
    /// `models:/<name>@<alias>`.
    Alias {
        /// Registered model.
        name: ModelName,
        /// Alias.
        alias: Alias,
    },
    /// `models:/<name>/<stage>`.
    Stage {
        /// Registered model.
        name: ModelName,
        /// Stage.
        stage: Stage,
    },
    /// `models:/<name>/latest`.
    Latest {
        /// Registered model.
        name: ModelName,
    },
    /// `runs:/<run_id>[/<path>]`.
    Run {
        /// The run.
        run_id: RunId,
        /// Artifact path inside the run, if any.
        path: Option<ArtifactPath>,
    },
}

impl ModelUri {
    /// The registered model name, for `models:/` URIs.
    pub fn model_name(&self) -> Option<&ModelName> {
        match self {
            Self::Version { name, .. }
            | Self::Alias { name, .. }
            | Self::Stage { name, .. }
            | Self::Latest { name } => Some(name),
            Self::Run { .. } => None,
        }
    }
}

impl FromStr for ModelUri {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = |why: &str| {
            Error::invalid(
                "model uri",
                format!(
                    "{s:?} {why}; expected models:/<name>/<version|stage|latest>, models:/<name>@<alias> or runs:/<run_id>/<path>"
                ),
            )
        };
        if let Some(rest) = s.strip_prefix("models:/") {
            if rest.starts_with('/') {
                return Err(bad("has a host part, which is not supported"));
            }
            if let Some((name, alias)) = rest.split_once('@') {
                if alias.contains('/') {
                    return Err(bad("has a path after the alias"));
                }
                return Ok(Self::Alias {
                    name: name.parse()?,
                    alias: alias.parse()?,
                });
            }
            let Some((name, selector)) = rest.split_once('/') else {
                return Err(bad("names no version, stage, alias or 'latest'"));
            };
            let name: ModelName = name.parse()?;
            if selector.is_empty() || selector.contains('/') {
                return Err(bad("must have exactly one segment after the model name"));
            }
            if selector.eq_ignore_ascii_case("latest") {
                return Ok(Self::Latest { name });
            }
            if selector.bytes().all(|b| b.is_ascii_digit()) {
                return Ok(Self::Version {
                    name,
                    version: selector.parse()?,
                });
            }
            return match selector.parse::<Stage>() {
                Ok(stage) => Ok(Self::Stage { name, stage }),
                Err(_) => Err(bad(&format!(
                    "has {selector:?}, which is not a version number, a stage (None, Staging, Production, Archived) or 'latest'"
                ))),
            };
        }
        if let Some(rest) = s.strip_prefix("runs:/") {
            let rest = rest.trim_end_matches('/');
            let (run_id, path) = match rest.split_once('/') {
                Some((id, path)) => (id, Some(path.parse::<ArtifactPath>()?)),
                None => (rest, None),
            };
            return Ok(Self::Run {
                run_id: run_id.parse()?,
                path,
            });
        }
        Err(bad("has an unknown scheme"))
    }
}

impl fmt::Display for ModelUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Version { name, version } => write!(f, "models:/{name}/{version}"),
            Self::Alias { name, alias } => write!(f, "models:/{name}@{alias}"),
            Self::Stage { name, stage } => write!(f, "models:/{name}/{stage}"),
            Self::Latest { name } => write!(f, "models:/{name}/latest"),
            Self::Run { run_id, path: None } => write!(f, "runs:/{run_id}"),
            Self::Run {
                run_id,
                path: Some(p),
            } => write!(f, "runs:/{run_id}/{p}"),
        }
    }
}

impl TryFrom<String> for ModelUri {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<ModelUri> for String {
    fn from(u: ModelUri) -> String {
        u.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_mlflow_form_and_round_trips() {
        for s in [
            "models:/churn/3",
            "models:/churn@champion",
            "models:/churn/Production",
            "models:/churn/latest",
            "runs:/0123456789abcdef0123456789abcdef/model",
            "runs:/0123456789abcdef0123456789abcdef/model/sub",
            "runs:/0123456789abcdef0123456789abcdef",
        ] {
            let uri: ModelUri = s.parse().unwrap();
            assert_eq!(uri.to_string(), s);
        }
        assert_eq!(
            "models:/churn/staging".parse::<ModelUri>().unwrap(),
            ModelUri::Stage {
                name: "churn".parse().unwrap(),
                stage: Stage::Staging
            }
        );
    }

    #[test]
    fn rejects_everything_else_with_a_clear_message() {
        for s in [
            "",
            "churn",
            "models:/churn",
            "models:/churn/",
            "models:/churn/0",
            "models:/churn/3/extra",
            "models:/churn/Prod",
            "models:/churn@latest",
            "models:/churn@a/b",
            "models://host/churn/1",
            "models:/../x/1",
            "runs:/bad id/model",
            "runs:/abc/../secret",
            "s3://bucket/model",
        ] {
            let err = s.parse::<ModelUri>().unwrap_err();
            assert!(err.is_invalid_argument(), "{s}: {err}");
        }
        let err = "models:/churn/Prod".parse::<ModelUri>().unwrap_err();
        assert!(err.to_string().contains("\"Prod\""), "{err}");
    }
}
