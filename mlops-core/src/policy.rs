//! The [`PolicyEngine`] trait: policy-as-code decisions.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::{Alias, ModelName};
use crate::registry::{CreateVersionOptions, ModelVersion, Stage};

/// A question for the policy engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyQuery {
    /// The decision path (`data.ml.deployment`), whose `allow`/`deny` rules decide.
    pub path: String,
    /// The input document.
    pub input: serde_json::Value,
}

impl PolicyQuery {
    /// A query at `path` with `input`.
    pub fn new(path: impl Into<String>, input: serde_json::Value) -> Self {
        Self {
            path: path.into(),
            input,
        }
    }
}

/// A policy decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Unique id (OPA's `decision_id`), for the decision log.
    pub decision_id: String,
    /// Whether the action may proceed.
    pub allowed: bool,
    /// Every deny message, when not allowed.
    pub reasons: Vec<String>,
    /// The raw result document at the path.
    pub result: serde_json::Value,
    /// Revision of the policy bundle that decided.
    pub revision: Option<String>,
}

/// Evaluates decisions. Synchronous compute, safe from many threads at once.
///
/// # Contract
///
/// - An unknown path or a malformed input is [`Error::InvalidArgument`]; a policy that denies is a
///   successful evaluation with `allowed == false` and every reason listed.
/// - The same policies, data and input give the same decision.
pub trait PolicyEngine: Debug + Send + Sync + 'static {
    /// Evaluates one query.
    fn evaluate(&self, query: &PolicyQuery) -> Result<Decision>;
}

/// Conveniences over [`PolicyEngine`].
pub trait PolicyEngineExt: PolicyEngine {
    /// Evaluates and turns a denial into [`Error::PolicyDenied`].
    fn check(&self, query: &PolicyQuery) -> Result<Decision> {
        let decision = self.evaluate(query)?;
        if decision.allowed {
            Ok(decision)
        } else {
            Err(Error::policy_denied(query.path.clone(), decision.reasons))
        }
    }
}

/// The deploy gate: whether `version` may be loaded for serving (at `target`, when named),
/// decided at `path` (usually [`GOVERNANCE_PATH`]) on a [`GovernanceInput`] with
/// `action: "deploy"`. A server configured with a policy engine calls this before loading a
/// version; a denial is [`Error::PolicyDenied`] with every reason.
pub fn check_deploy(
    engine: &dyn PolicyEngine,
    path: &str,
    version: &ModelVersion,
    target: Option<&str>,
) -> Result<Decision> {
    let input = GovernanceInput::new(
        GovernedAction::Deploy {
            target: target.map(str::to_string),
        },
        ModelFacts::from_version(version),
    );
    engine.check(&input.query(path)?)
}

impl<P: PolicyEngine + ?Sized> PolicyEngineExt for P {}

macro_rules! forward_policy {
    ($ty:ty) => {
        #[deny(clippy::missing_trait_methods)]
        impl<P: PolicyEngine + ?Sized> PolicyEngine for $ty {
            fn evaluate(&self, query: &PolicyQuery) -> Result<Decision> {
                (**self).evaluate(query)
            }
        }
    };
}

forward_policy!(Arc<P>);
forward_policy!(Box<P>);

/// The decision path governance asks by default: the shipped policy library's aggregate package,
/// which collects every `deny` of `data.mlops.*`.
pub const GOVERNANCE_PATH: &str = "data.mlops.governance";

/// The version tag whose value `"true"` records a human approval.
pub const APPROVED_TAG: &str = "approved";
/// The version tag naming who approved.
pub const APPROVED_BY_TAG: &str = "approved_by";
/// Version tags `metrics.<name>` carry the model card's evaluation metrics into decisions.
pub const METRIC_TAG_PREFIX: &str = "metrics.";

/// A change that governance decides before it happens: registry writes and deploys.
///
/// Serialised flat into the policy input: `{"action": "set_alias", "alias": "champion", ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
#[non_exhaustive]
pub enum GovernedAction {
    /// Registering a new version.
    CreateVersion,
    /// Pointing an alias at a version.
    SetAlias {
        /// The alias.
        alias: Alias,
    },
    /// Moving a version to a stage.
    TransitionStage {
        /// The stage.
        stage: Stage,
    },
    /// Loading a version into a server.
    Deploy {
        /// Where (a server or endpoint name), when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<String>,
    },
}

/// A dataset a model was trained on, as policies see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetFacts {
    /// Name.
    pub name: String,
    /// Version.
    pub version: u64,
    /// Manifest digest.
    pub digest: String,
    /// The dataset version's metadata (`pii`, `license`, …), when the caller supplied it.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// Where a model came from, as policies see it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LineageFacts {
    /// The training run.
    pub run_id: Option<String>,
    /// The code's commit.
    pub git_commit: Option<String>,
    /// Training data.
    pub datasets: Vec<DatasetFacts>,
}

/// The model version a decision is about (`input.model`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelFacts {
    /// Registered model name.
    pub name: String,
    /// Version number; `None` while the version is being created.
    pub version: Option<u64>,
    /// Artifact location.
    pub source: String,
    /// Current stage (MLflow's spelling).
    pub stage: String,
    /// Aliases it holds now.
    pub aliases: Vec<String>,
    /// Tag [`APPROVED_TAG`] is `"true"`.
    pub approved: bool,
    /// Tag [`APPROVED_BY_TAG`].
    pub approved_by: Option<String>,
    /// Every tag.
    pub tags: BTreeMap<String, String>,
    /// Evaluation metrics: tags `metrics.<name>` that parse as numbers, plus what fact providers
    /// add (such as the run's metrics).
    pub metrics: BTreeMap<String, f64>,
    /// Whether an input/output signature is recorded.
    pub has_signature: bool,
    /// Lineage.
    pub lineage: LineageFacts,
}

impl ModelFacts {
    /// Facts of a stored version.
    pub fn from_version(v: &ModelVersion) -> Self {
        let tags: BTreeMap<String, String> = v
            .tags
            .iter()
            .map(|(k, val)| (k.as_str().to_string(), val.clone()))
            .collect();
        Self::build(
            &v.name,
            Some(v.version.get()),
            &v.source,
            v.current_stage,
            v.aliases.iter().map(|a| a.as_str().to_string()).collect(),
            tags,
            v.signature.is_some(),
            &v.lineage,
            v.run_id.as_ref().map(ToString::to_string),
        )
    }

    /// Facts of a version about to be created.
    pub fn from_new(name: &ModelName, options: &CreateVersionOptions) -> Self {
        let tags = options
            .tags
            .iter()
            .map(|t| (t.key.as_str().to_string(), t.value.clone()))
            .collect();
        Self::build(
            name,
            None,
            &options.source,
            Stage::None,
            Vec::new(),
            tags,
            options.signature.is_some(),
            &options.lineage,
            options.run_id.as_ref().map(ToString::to_string),
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn build(
        name: &ModelName,
        version: Option<u64>,
        source: &str,
        stage: Stage,
        aliases: Vec<String>,
        tags: BTreeMap<String, String>,
        has_signature: bool,
        lineage: &crate::registry::Lineage,
        run_id: Option<String>,
    ) -> Self {
        let metrics = tags
            .iter()
            .filter_map(|(k, v)| {
                let name = k.strip_prefix(METRIC_TAG_PREFIX)?;
                let value: f64 = v.trim().parse().ok()?;
                Some((name.to_string(), value))
            })
            .collect();
        Self {
            name: name.as_str().to_string(),
            version,
            source: source.to_string(),
            stage: stage.as_str().to_string(),
            aliases,
            approved: tags
                .get(APPROVED_TAG)
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
            approved_by: tags.get(APPROVED_BY_TAG).cloned(),
            metrics,
            has_signature,
            lineage: LineageFacts {
                run_id: lineage.run_id.as_ref().map(ToString::to_string).or(run_id),
                git_commit: lineage.git_commit.clone(),
                datasets: lineage
                    .datasets
                    .iter()
                    .map(|d| DatasetFacts {
                        name: d.name.as_str().to_string(),
                        version: d.version.get(),
                        digest: d.digest.to_string(),
                        tags: BTreeMap::new(),
                    })
                    .collect(),
            },
            tags,
        }
    }
}

/// The input document of a governance decision: the action, the model, and any further facts
/// (`drift`, `feedback`, …) fact providers add at the top level.
///
/// ```json
/// {"action": "set_alias", "alias": "champion",
///  "model": {"name": "churn", "version": 3, "approved": true, "metrics": {"f1": 0.91}, ...},
///  "drift": {"flagged": false, "score": 0.02}}
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GovernanceInput {
    /// What is about to happen.
    #[serde(flatten)]
    pub action: GovernedAction,
    /// The model version it is about.
    pub model: ModelFacts,
    /// Further facts, merged at the top level.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl GovernanceInput {
    /// An input for `action` on `model`.
    pub fn new(action: GovernedAction, model: ModelFacts) -> Self {
        Self {
            action,
            model,
            extra: serde_json::Map::new(),
        }
    }

    /// The JSON document policies see as `input`.
    pub fn to_json(&self) -> Result<serde_json::Value> {
        serde_json::to_value(self)
            .map_err(|e| Error::invalid("policy input", "not representable as JSON").with_source(e))
    }

    /// A query at `path` with this input.
    pub fn query(&self, path: &str) -> Result<PolicyQuery> {
        Ok(PolicyQuery::new(path, self.to_json()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::TagKey;

    /// Allows exactly approved versions with f1 >= 0.8 and looks at what it was given.
    #[derive(Debug)]
    struct Approval;

    impl PolicyEngine for Approval {
        fn evaluate(&self, query: &PolicyQuery) -> Result<Decision> {
            let i = &query.input;
            assert_eq!(i["action"], "deploy");
            assert_eq!(i["target"], "prod");
            let ok =
                i["model"]["approved"] == true && i["model"]["metrics"]["f1"].as_f64() >= Some(0.8);
            Ok(Decision {
                decision_id: "d".into(),
                allowed: ok,
                reasons: if ok { vec![] } else { vec!["no".into()] },
                result: serde_json::Value::Null,
                revision: None,
            })
        }
    }

    fn version(tags: &[(&str, &str)]) -> ModelVersion {
        ModelVersion {
            name: ModelName::new("m").unwrap(),
            version: crate::id::Version::new(1).unwrap(),
            creation_timestamp: 0,
            last_updated_timestamp: 0,
            user_id: None,
            current_stage: Stage::None,
            description: String::new(),
            source: "s".into(),
            run_id: None,
            status: Default::default(),
            status_message: None,
            tags: tags
                .iter()
                .map(|(k, v)| (TagKey::new(*k).unwrap(), (*v).to_string()))
                .collect(),
            run_link: None,
            aliases: vec![],
            lineage: Default::default(),
            signature: None,
        }
    }

    #[test]
    fn the_deploy_gate_sees_approval_and_metric_tags() {
        let good = version(&[
            ("approved", "TRUE"),
            ("metrics.f1", "0.9"),
            ("metrics.bad", "x"),
        ]);
        let facts = ModelFacts::from_version(&good);
        assert!(facts.approved);
        assert_eq!(facts.metrics.len(), 1, "unparsable metric tags are skipped");
        assert!(check_deploy(&Approval, GOVERNANCE_PATH, &good, Some("prod")).is_ok());
        let bad = version(&[("approved", "true"), ("metrics.f1", "0.5")]);
        let err = check_deploy(&Approval, GOVERNANCE_PATH, &bad, Some("prod")).unwrap_err();
        assert!(err.is_policy_denied());
        let input = GovernanceInput::new(GovernedAction::CreateVersion, facts)
            .to_json()
            .unwrap();
        assert_eq!(input["action"], "create_version");
        assert!(input.get("target").is_none());
    }
}
