//! What a pipeline run reports: how each step ended, what it used and cost, and — for a step
//! that failed — the step's own [`Error`], so a caller can tell bad data from an outage.

use mlops_core::{Error, Result, RunId};
use serde::{Serialize, Serializer};

use crate::resources::Usage;
use crate::step::Outputs;

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    /// Executed and succeeded.
    Succeeded,
    /// Served from the cache: inputs, parameters and code version unchanged, outputs present.
    Cached,
    /// Failed (after its retries).
    Failed,
    /// Not run because a step it depends on did not succeed.
    Skipped,
    /// Not run, or stopped, because the pipeline was cancelled.
    Cancelled,
    /// Not needed: its `when` condition was false, or a step it depends on was bypassed. The
    /// pipeline still succeeds.
    Bypassed,
}

impl StepStatus {
    /// Whether the pipeline counts it as a success.
    pub fn ok(self) -> bool {
        matches!(self, Self::Succeeded | Self::Cached | Self::Bypassed)
    }

    /// Its name, as in the report's JSON and the step run's `mlops.status` tag.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Cached => "cached",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
            Self::Cancelled => "cancelled",
            Self::Bypassed => "bypassed",
        }
    }
}

/// What happened to one step.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    /// The step.
    pub name: String,
    /// How it ended.
    pub status: StepStatus,
    /// Attempts made (0 when cached or not run).
    pub attempts: u32,
    /// Resources used.
    pub usage: Usage,
    /// Their price by the rate card.
    pub cost: f64,
    /// Its outputs (recorded ones when cached).
    pub outputs: Outputs,
    /// The error of its last attempt, when it failed (or was stopped by a cancellation): the
    /// step's own error, whose category says whether running it again could help. In JSON:
    /// `{"kind": "invalid_argument", "message": "…"}`.
    #[serde(serialize_with = "error_json")]
    pub error: Option<Error>,
    /// Why it did not run, when it did not (`upstream step b did not succeed`, `when
    /// monitor.decision.retrain is false`, …).
    pub reason: Option<String>,
    /// Its cache key (hex).
    pub cache_key: Option<String>,
    /// Its child run.
    pub run_id: Option<RunId>,
}

fn error_json<S: Serializer>(error: &Option<Error>, s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Shown<'a> {
        kind: &'a str,
        message: String,
    }
    error
        .as_ref()
        .map(|e| Shown {
            kind: e.kind().as_str(),
            message: e.to_string(),
        })
        .serialize(s)
}

impl StepReport {
    /// A report for a step that has not run (yet): no attempts, no usage, no outputs.
    pub(crate) fn empty(name: &str, status: StepStatus) -> Self {
        Self {
            name: name.to_owned(),
            status,
            attempts: 0,
            usage: Usage::default(),
            cost: 0.0,
            outputs: Outputs::new(),
            error: None,
            reason: None,
            cache_key: None,
            run_id: None,
        }
    }

    /// Why it failed or did not run, as one line: the error's message, else the reason.
    pub fn message(&self) -> Option<String> {
        self.error
            .as_ref()
            .map(ToString::to_string)
            .or_else(|| self.reason.clone())
    }
}

/// What happened to a pipeline run.
#[derive(Debug, Clone, Serialize)]
pub struct PipelineReport {
    /// The pipeline.
    pub pipeline: String,
    /// The tracked run.
    pub run_id: Option<RunId>,
    /// Every step, in topological order.
    pub steps: Vec<StepReport>,
    /// Wall-clock seconds of the whole run.
    pub wall_seconds: f64,
    /// Summed step cost.
    pub cost: f64,
    /// The rate card's currency.
    pub currency: String,
}

impl PipelineReport {
    /// Whether every step succeeded, was cached or was bypassed.
    pub fn succeeded(&self) -> bool {
        self.steps.iter().all(|s| s.status.ok())
    }

    /// The first step that failed.
    pub fn failed(&self) -> Option<&StepReport> {
        self.steps.iter().find(|s| s.status == StepStatus::Failed)
    }

    /// The first failed step's name and its error.
    pub fn failure(&self) -> Option<(&str, &Error)> {
        self.steps
            .iter()
            .filter(|s| s.status == StepStatus::Failed)
            .find_map(|s| s.error.as_ref().map(|e| (s.name.as_str(), e)))
    }

    /// A step's report.
    pub fn step(&self, name: &str) -> Option<&StepReport> {
        self.steps.iter().find(|s| s.name == name)
    }

    /// Names of the steps that executed (not cached).
    pub fn executed(&self) -> Vec<&str> {
        self.steps
            .iter()
            .filter(|s| s.attempts > 0)
            .map(|s| s.name.as_str())
            .collect()
    }

    /// `Ok(self)` when it succeeded. Otherwise the first failed step's own error — the same
    /// category, fields and source chain the step answered, so a caller that retries on
    /// [`Error::is_transient`] retries an outage but not bad data; ask
    /// [`failure`](Self::failure) first to name the step — or, for a cancelled run,
    /// [`Error::Unavailable`] saying so (the caller who cancelled holds the token).
    pub fn into_result(self) -> Result<Self> {
        if self.succeeded() {
            return Ok(self);
        }
        let failed = self
            .steps
            .iter()
            .find(|s| s.status == StepStatus::Failed)
            .map(|s| (s.name.clone(), s.error.clone(), s.reason.clone()));
        Err(match failed {
            Some((_, Some(error), _)) => error,
            // Failed without an error of its own cannot happen; say what is known.
            Some((step, None, reason)) => Error::unavailable(format!(
                "pipeline {} failed at step {step}: {}",
                self.pipeline,
                reason.unwrap_or_default()
            )),
            None => Error::unavailable(format!("pipeline {} was cancelled", self.pipeline)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(steps: Vec<StepReport>) -> PipelineReport {
        PipelineReport {
            pipeline: "p".into(),
            run_id: None,
            steps,
            wall_seconds: 0.0,
            cost: 0.0,
            currency: "USD".into(),
        }
    }

    #[test]
    fn a_failed_pipeline_answers_the_steps_own_error() {
        let mut bad = StepReport::empty("clean", StepStatus::Failed);
        bad.error = Some(Error::invalid("data", "column age is empty"));
        let mut skipped = StepReport::empty("train", StepStatus::Skipped);
        skipped.reason = Some("upstream step clean did not succeed".into());
        let e = report(vec![bad, skipped]).into_result().unwrap_err();
        assert!(e.is_invalid_argument() && !e.is_transient(), "{e}");
        assert_eq!(e.to_string(), "invalid data: column age is empty");

        let mut down = StepReport::empty("load", StepStatus::Failed);
        down.error = Some(Error::unavailable("s3 is down"));
        assert!(report(vec![down]).into_result().unwrap_err().is_transient());

        let cancelled = StepReport::empty("load", StepStatus::Cancelled);
        let e = report(vec![cancelled]).into_result().unwrap_err();
        assert!(e.to_string().contains("cancelled"), "{e}");
    }

    #[test]
    fn reports_serialise_errors_with_their_category() {
        let mut bad = StepReport::empty("clean", StepStatus::Failed);
        bad.error = Some(Error::invalid("data", "column age is empty"));
        let json = serde_json::to_value(&bad).unwrap();
        assert_eq!(json["error"]["kind"], "invalid_argument");
        assert_eq!(
            json["error"]["message"],
            "invalid data: column age is empty"
        );
        assert_eq!(json["status"], "failed");
        assert_eq!(
            bad.message().as_deref(),
            Some("invalid data: column age is empty")
        );
    }
}
