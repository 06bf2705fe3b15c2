//! Experiment-tracking entities, mirroring MLflow's (`mlflow/entities/*.py`, `service.proto`) so that
//! a REST or file-layout adapter maps them field for field.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::{
    ExperimentId, ExperimentName, MAX_PARAM_VALUE_LEN, MAX_TAG_VALUE_LEN, MetricKey, ParamKey,
    RunId, TagKey,
};

/// MLflow's reserved tag keys (`mlflow/utils/mlflow_tags.py`).
pub mod tags {
    /// The run's display name; kept equal to [`RunInfo::run_name`](super::RunInfo::run_name).
    pub const RUN_NAME: &str = "mlflow.runName";
    /// Who started the run.
    pub const USER: &str = "mlflow.user";
    /// The parent run of a nested run (hyper-parameter trials, pipeline steps).
    pub const PARENT_RUN_ID: &str = "mlflow.parentRunId";
    /// The git commit the run's code was at.
    pub const SOURCE_GIT_COMMIT: &str = "mlflow.source.git.commit";
    /// The program that ran.
    pub const SOURCE_NAME: &str = "mlflow.source.name";
    /// Free-text notes on a run or experiment.
    pub const NOTE: &str = "mlflow.note.content";
    /// On a dataset input: how the dataset was used (`training`, `evaluation`).
    pub const DATASET_CONTEXT: &str = "mlflow.data.context";
}

/// Whether an experiment or run is visible or soft-deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LifecycleStage {
    /// Visible.
    #[default]
    Active,
    /// Soft-deleted: hidden from default searches, restorable.
    Deleted,
}

impl LifecycleStage {
    /// MLflow's spelling: `active` or `deleted`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Deleted => "deleted",
        }
    }
}

/// Which lifecycle stages a search returns (MLflow's `ViewType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ViewType {
    /// Only active entities (the default).
    #[default]
    ActiveOnly,
    /// Only soft-deleted entities.
    DeletedOnly,
    /// Both.
    All,
}

impl ViewType {
    /// Whether an entity in `stage` is in this view.
    pub fn includes(self, stage: LifecycleStage) -> bool {
        match self {
            Self::ActiveOnly => stage == LifecycleStage::Active,
            Self::DeletedOnly => stage == LifecycleStage::Deleted,
            Self::All => true,
        }
    }
}

/// An experiment: a named group of runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Experiment {
    /// Its id.
    pub experiment_id: ExperimentId,
    /// Its unique name.
    pub name: ExperimentName,
    /// Where its runs' artifacts go by default.
    pub artifact_location: String,
    /// Active or soft-deleted.
    pub lifecycle_stage: LifecycleStage,
    /// Creation time, ms since the epoch.
    pub creation_time: i64,
    /// Last change, ms since the epoch.
    pub last_update_time: i64,
    /// Experiment tags.
    pub tags: BTreeMap<TagKey, String>,
}

/// A run's status (MLflow's `RunStatus`; the numbers are the proto's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunStatus {
    /// Running (1).
    #[default]
    Running,
    /// Scheduled, not started (2).
    Scheduled,
    /// Finished successfully (3).
    Finished,
    /// Failed (4).
    Failed,
    /// Killed (5).
    Killed,
}

impl RunStatus {
    /// MLflow's name: `RUNNING`, `SCHEDULED`, `FINISHED`, `FAILED`, `KILLED`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "RUNNING",
            Self::Scheduled => "SCHEDULED",
            Self::Finished => "FINISHED",
            Self::Failed => "FAILED",
            Self::Killed => "KILLED",
        }
    }

    /// The proto enum number (the file store writes it into `meta.yaml`).
    pub fn code(self) -> i32 {
        match self {
            Self::Running => 1,
            Self::Scheduled => 2,
            Self::Finished => 3,
            Self::Failed => 4,
            Self::Killed => 5,
        }
    }

    /// From the proto enum number.
    pub fn from_code(code: i32) -> Result<Self> {
        Ok(match code {
            1 => Self::Running,
            2 => Self::Scheduled,
            3 => Self::Finished,
            4 => Self::Failed,
            5 => Self::Killed,
            other => {
                return Err(Error::invalid(
                    "run status",
                    format!("unknown status code {other}"),
                ));
            }
        })
    }

    /// Whether the run has ended (finished, failed or killed).
    pub fn is_terminated(self) -> bool {
        matches!(self, Self::Finished | Self::Failed | Self::Killed)
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunStatus {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.to_ascii_uppercase().as_str() {
            "RUNNING" => Self::Running,
            "SCHEDULED" => Self::Scheduled,
            "FINISHED" => Self::Finished,
            "FAILED" => Self::Failed,
            "KILLED" => Self::Killed,
            _ => {
                return Err(Error::invalid(
                    "run status",
                    format!("{s:?} is not one of RUNNING, SCHEDULED, FINISHED, FAILED, KILLED"),
                ));
            }
        })
    }
}

/// A run's metadata (MLflow's `RunInfo`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// Its id.
    pub run_id: RunId,
    /// Its display name (also the `mlflow.runName` tag).
    pub run_name: String,
    /// The experiment it belongs to.
    pub experiment_id: ExperimentId,
    /// Who started it.
    pub user_id: String,
    /// Its status.
    pub status: RunStatus,
    /// Start, ms since the epoch.
    pub start_time: i64,
    /// End, ms since the epoch; `None` while it runs.
    pub end_time: Option<i64>,
    /// Root URI of its artifacts.
    pub artifact_uri: String,
    /// Active or soft-deleted.
    pub lifecycle_stage: LifecycleStage,
}

/// Serde for `f64` that keeps NaN and ±inf (MLflow allows them as metric values; JSON has no
/// literal for them): finite values are numbers, the others the strings `"NaN"`, `"Infinity"`,
/// `"-Infinity"`.
pub mod json_f64 {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes `v`.
    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f64(*v)
        } else if v.is_nan() {
            s.serialize_str("NaN")
        } else if *v > 0.0 {
            s.serialize_str("Infinity")
        } else {
            s.serialize_str("-Infinity")
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Number(f64),
        Text(String),
    }

    /// Deserializes a number or one of the three strings.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        match Repr::deserialize(d)? {
            Repr::Number(n) => Ok(n),
            Repr::Text(t) => match t.as_str() {
                "NaN" | "nan" => Ok(f64::NAN),
                "Infinity" | "inf" => Ok(f64::INFINITY),
                "-Infinity" | "-inf" => Ok(f64::NEG_INFINITY),
                other => Err(serde::de::Error::custom(format!(
                    "expected a number, \"NaN\", \"Infinity\" or \"-Infinity\", got {other:?}"
                ))),
            },
        }
    }
}

/// One metric value at one step (MLflow's `Metric`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    /// The metric key.
    pub key: MetricKey,
    /// The value (NaN and ±inf are allowed, as in MLflow).
    #[serde(with = "json_f64")]
    pub value: f64,
    /// When it was logged, ms since the epoch.
    pub timestamp_ms: i64,
    /// The training step (0 when not given).
    pub step: i64,
}

impl Metric {
    /// A metric value at `step`, stamped now.
    pub fn new(key: MetricKey, value: f64, step: i64) -> Self {
        Self {
            key,
            value,
            timestamp_ms: crate::time::now_ms(),
            step,
        }
    }

    /// MLflow's "latest value" order: the latest of a key's values is the maximum by
    /// `(step, timestamp, value)` (NaN ordered by [`f64::total_cmp`]).
    pub fn latest_order(&self, other: &Self) -> std::cmp::Ordering {
        (self.step, self.timestamp_ms)
            .cmp(&(other.step, other.timestamp_ms))
            .then_with(|| self.value.total_cmp(&other.value))
    }
}

/// A hyper-parameter. Write-once per run: logging the same value again is a no-op, a different
/// value is [`Error::InvalidArgument`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Param {
    /// The key.
    pub key: ParamKey,
    /// The value, at most 6000 characters.
    pub value: String,
}

impl Param {
    /// Validates the value length (MLflow 2.x: 6000 characters).
    pub fn new(key: ParamKey, value: impl Into<String>) -> Result<Self> {
        let value = value.into();
        let len = value.chars().count();
        if len > MAX_PARAM_VALUE_LEN {
            return Err(Error::invalid(
                "param value",
                format!(
                    "value of {key} is {len} characters long, the limit is {MAX_PARAM_VALUE_LEN}"
                ),
            ));
        }
        Ok(Self { key, value })
    }
}

/// A tag: overwritable key/value metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    /// The key.
    pub key: TagKey,
    /// The value, at most 8000 characters.
    pub value: String,
}

impl Tag {
    /// Validates the value length (MLflow: 8000 characters).
    pub fn new(key: TagKey, value: impl Into<String>) -> Result<Self> {
        let value = value.into();
        let len = value.chars().count();
        if len > MAX_TAG_VALUE_LEN {
            return Err(Error::invalid(
                "tag value",
                format!(
                    "value of {key} is {len} characters long, the limit is {MAX_TAG_VALUE_LEN}"
                ),
            ));
        }
        Ok(Self { key, value })
    }
}

/// A dataset as a run input (MLflow's `Dataset` entity).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dataset {
    /// Its name.
    pub name: String,
    /// Its content digest (for datasets from a [`Store`](crate::Store), the manifest's blake3 hex).
    pub digest: String,
    /// Where it came from, e.g. `mlops-store`, `local`, `s3`.
    pub source_type: String,
    /// A JSON or URI description of the source, e.g. `datasets/churn@3`.
    pub source: String,
    /// Optional JSON schema description.
    pub schema: Option<String>,
    /// Optional JSON profile (row count, ...).
    pub profile: Option<String>,
}

/// A dataset used by a run, with input tags such as [`tags::DATASET_CONTEXT`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetInput {
    /// The dataset.
    pub dataset: Dataset,
    /// Input tags (`mlflow.data.context` = `training`, ...).
    pub tags: BTreeMap<String, String>,
}

impl DatasetInput {
    /// The `mlflow.data.context` tag, if set.
    pub fn context(&self) -> Option<&str> {
        self.tags.get(tags::DATASET_CONTEXT).map(String::as_str)
    }
}

/// A run's logged data: the latest value of each metric, params and tags.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunData {
    /// The latest value of each metric (see [`Metric::latest_order`]).
    pub metrics: BTreeMap<MetricKey, Metric>,
    /// Params.
    pub params: BTreeMap<ParamKey, String>,
    /// Tags.
    pub tags: BTreeMap<TagKey, String>,
}

/// A run's inputs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunInputs {
    /// Datasets the run used.
    pub dataset_inputs: Vec<DatasetInput>,
}

/// A run: metadata, logged data and inputs (MLflow's `Run`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// Metadata.
    pub info: RunInfo,
    /// Metrics (latest values), params, tags.
    pub data: RunData,
    /// Dataset inputs.
    pub inputs: RunInputs,
}

impl Run {
    /// The parent run, from the `mlflow.parentRunId` tag.
    pub fn parent_run_id(&self) -> Option<&str> {
        self.data.tags.get(tags::PARENT_RUN_ID).map(String::as_str)
    }

    /// The latest value of metric `key`.
    pub fn metric(&self, key: &str) -> Option<f64> {
        self.data.metrics.get(key).map(|m| m.value)
    }
}

const ADJECTIVES: &[&str] = &[
    "amazing",
    "bold",
    "brave",
    "bright",
    "calm",
    "capable",
    "clean",
    "clever",
    "crisp",
    "dapper",
    "eager",
    "fair",
    "fast",
    "gentle",
    "glamorous",
    "handsome",
    "honest",
    "judicious",
    "kindly",
    "languid",
    "loyal",
    "lucky",
    "merciful",
    "nimble",
    "polite",
    "rare",
    "resilient",
    "rogue",
    "salty",
    "secretive",
    "sedate",
    "skillful",
    "smiling",
    "spiffy",
    "stately",
    "suave",
    "sweet",
    "tasteful",
    "thundering",
    "unique",
    "upbeat",
    "useful",
    "valuable",
    "vaunted",
    "victorious",
    "welcoming",
    "whimsical",
    "wise",
    "worried",
    "youthful",
];

const NOUNS: &[&str] = &[
    "ant", "ape", "asp", "auk", "bass", "bat", "bear", "bee", "bird", "boar", "bug", "calf",
    "carp", "cat", "cod", "colt", "conch", "cow", "crab", "crane", "crow", "cub", "deer", "doe",
    "dog", "donkey", "dove", "duck", "eel", "elk", "finch", "fish", "flea", "fly", "foal", "fowl",
    "fox", "frog", "gnat", "gnu", "goat", "grouse", "gull", "hare", "hawk", "hen", "hog", "horse",
    "hound", "jay", "kit", "koi", "lamb", "lark", "lynx", "mare", "mink", "mole", "moose", "moth",
    "mouse", "mule", "newt", "owl", "ox", "panda", "pig", "prawn", "ram", "rat", "ray", "robin",
    "seal", "shark", "sheep", "shrew", "skink", "slug", "smelt", "snail", "snake", "squid", "stag",
    "steed", "stork", "swan", "toad", "trout", "wasp", "whale", "wolf", "worm", "wren", "yak",
    "zebra",
];

/// A generated run name like MLflow's: `<adjective>-<noun>-<0..999>`, e.g. `brave-owl-402`.
pub fn generate_run_name() -> String {
    let n = crate::id::random_uuid().as_u128();
    let adj = ADJECTIVES[(n % ADJECTIVES.len() as u128) as usize];
    let noun = NOUNS[((n >> 32) % NOUNS.len() as u128) as usize];
    let num = (n >> 64) % 1000;
    format!("{adj}-{noun}-{num}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(value: f64, ts: i64, step: i64) -> Metric {
        Metric {
            key: "loss".parse().unwrap(),
            value,
            timestamp_ms: ts,
            step,
        }
    }

    #[test]
    fn latest_is_max_by_step_then_timestamp_then_value() {
        use std::cmp::Ordering::*;
        assert_eq!(m(9.0, 100, 1).latest_order(&m(1.0, 1, 2)), Less);
        assert_eq!(m(9.0, 100, 2).latest_order(&m(1.0, 1, 2)), Greater);
        assert_eq!(m(2.0, 5, 2).latest_order(&m(1.0, 5, 2)), Greater);
    }

    #[test]
    fn non_finite_metric_values_survive_json() {
        for v in [0.5, f64::INFINITY, f64::NEG_INFINITY] {
            let json = serde_json::to_string(&m(v, 1, 2)).unwrap();
            assert_eq!(
                serde_json::from_str::<Metric>(&json).unwrap().value,
                v,
                "{json}"
            );
        }
        let json = serde_json::to_string(&m(f64::NAN, 1, 2)).unwrap();
        assert!(json.contains("\"NaN\""), "{json}");
        assert!(
            serde_json::from_str::<Metric>(&json)
                .unwrap()
                .value
                .is_nan()
        );
    }

    #[test]
    fn status_round_trips_names_and_codes() {
        for s in [
            RunStatus::Running,
            RunStatus::Scheduled,
            RunStatus::Finished,
            RunStatus::Failed,
            RunStatus::Killed,
        ] {
            assert_eq!(s.as_str().parse::<RunStatus>().unwrap(), s);
            assert_eq!(RunStatus::from_code(s.code()).unwrap(), s);
        }
        assert!("DONE".parse::<RunStatus>().is_err());
        assert!(RunStatus::from_code(9).is_err());
    }

    #[test]
    fn param_and_tag_values_have_mlflow_limits() {
        let k: ParamKey = "lr".parse().unwrap();
        assert!(Param::new(k.clone(), "x".repeat(6000)).is_ok());
        assert!(Param::new(k, "x".repeat(6001)).is_err());
        let t: TagKey = "note".parse().unwrap();
        assert!(Tag::new(t.clone(), "x".repeat(8000)).is_ok());
        assert!(Tag::new(t, "x".repeat(8001)).is_err());
    }

    #[test]
    fn generated_run_names_look_like_mlflow_ones() {
        let name = generate_run_name();
        let parts: Vec<_> = name.split('-').collect();
        assert_eq!(parts.len(), 3, "{name}");
        assert!(parts[2].parse::<u32>().unwrap() < 1000);
    }
}
