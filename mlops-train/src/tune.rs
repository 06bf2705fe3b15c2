//! Hyper-parameter search: grid and random search over a [`SearchSpace`] of [`TrainConfig`]
//! keys, every trial a child run (`mlflow.parentRunId`) of one parent run, trials trained in
//! parallel up to the core count, the best trial chosen by one metric.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use mlops_core::{
    CancelToken, Error, LogBatch, Metric, Param, Result, RunId, RunStatus, TrackerExt,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::config::TrainConfig;
use crate::job::{TrainingData, TrainingJob};
use crate::trainer::CandleTrainer;

/// The values one hyper-parameter takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Domain {
    /// These values, as [`TrainConfig::set`] reads them (`"0.1"`, `"64,32"`, `"adamw"`).
    Choice(Vec<String>),
    /// Uniform in `[low, high]` (random search only).
    Uniform {
        /// Lower bound.
        low: f64,
        /// Upper bound.
        high: f64,
    },
    /// Log-uniform in `[low, high]`, both positive (random search only) — for learning rates
    /// and regularisation strengths.
    LogUniform {
        /// Lower bound.
        low: f64,
        /// Upper bound.
        high: f64,
    },
    /// The integers `low..=high`.
    Int {
        /// Lower bound.
        low: i64,
        /// Upper bound (inclusive).
        high: i64,
    },
}

impl Domain {
    fn check(&self, key: &str) -> Result<()> {
        let bad = |m: String| Err(Error::invalid("search space", format!("{key}: {m}")));
        match self {
            Self::Choice(v) if v.is_empty() => bad("no values".into()),
            Self::Uniform { low, high }
                if !(low.is_finite() && high.is_finite() && low <= high) =>
            {
                bad(format!("[{low}, {high}] is not a finite range"))
            }
            Self::LogUniform { low, high } if !(*low > 0.0 && high.is_finite() && low <= high) => {
                bad(format!("[{low}, {high}] is not a positive finite range"))
            }
            Self::Int { low, high } if low > high => bad(format!("{low}..={high} is empty")),
            _ => Ok(()),
        }
    }

    /// Every value, for grid search; `None` for continuous domains.
    fn values(&self) -> Option<Vec<String>> {
        match self {
            Self::Choice(v) => Some(v.clone()),
            Self::Int { low, high } => Some((*low..=*high).map(|i| i.to_string()).collect()),
            Self::Uniform { .. } | Self::LogUniform { .. } => None,
        }
    }

    fn sample(&self, rng: &mut ChaCha8Rng) -> String {
        match self {
            Self::Choice(v) => v[rng.random_range(0..v.len())].clone(),
            Self::Int { low, high } => rng.random_range(*low..=*high).to_string(),
            Self::Uniform { low, high } => (low + (high - low) * rng.random::<f64>()).to_string(),
            Self::LogUniform { low, high } => {
                let (a, b) = (low.ln(), high.ln());
                (a + (b - a) * rng.random::<f64>()).exp().to_string()
            }
        }
    }
}

/// Hyper-parameters to search, by [`TrainConfig`] key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SearchSpace(pub BTreeMap<String, Domain>);

impl SearchSpace {
    /// An empty space.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a parameter.
    pub fn with(mut self, key: impl Into<String>, domain: Domain) -> Self {
        self.0.insert(key.into(), domain);
        self
    }

    /// Adds a list of values.
    pub fn choice<S: ToString>(
        self,
        key: impl Into<String>,
        values: impl IntoIterator<Item = S>,
    ) -> Self {
        self.with(
            key,
            Domain::Choice(values.into_iter().map(|v| v.to_string()).collect()),
        )
    }

    /// Parses the CLI form `key=v1|v2|v3` (choice), `key=lo..hi` (uniform), `key=lo..hi:log`
    /// (log-uniform) or `key=lo..=hi` (integers), adding it to the space.
    pub fn parse_into(mut self, spec: &str) -> Result<Self> {
        let (key, values) = spec
            .split_once('=')
            .ok_or_else(|| Error::invalid("search space", format!("{spec:?} is not key=values")))?;
        let number = |s: &str| -> Result<f64> {
            s.trim().parse().map_err(|_| {
                Error::invalid("search space", format!("{key}: {s:?} is not a number"))
            })
        };
        let domain = if let Some((lo, hi)) = values.split_once("..=") {
            let int = |s: &str| -> Result<i64> {
                s.trim().parse().map_err(|_| {
                    Error::invalid("search space", format!("{key}: {s:?} is not an integer"))
                })
            };
            Domain::Int {
                low: int(lo)?,
                high: int(hi)?,
            }
        } else if let Some((lo, hi)) = values.split_once("..") {
            match hi.strip_suffix(":log") {
                Some(hi) => Domain::LogUniform {
                    low: number(lo)?,
                    high: number(hi)?,
                },
                None => Domain::Uniform {
                    low: number(lo)?,
                    high: number(hi)?,
                },
            }
        } else {
            Domain::Choice(values.split('|').map(|v| v.trim().to_owned()).collect())
        };
        self.0.insert(key.trim().to_owned(), domain);
        Ok(self)
    }

    /// Every combination (grid search), in a stable order.
    pub fn grid(&self) -> Result<Vec<BTreeMap<String, String>>> {
        let mut trials = vec![BTreeMap::new()];
        for (key, domain) in &self.0 {
            domain.check(key)?;
            let values = domain.values().ok_or_else(|| {
                Error::invalid(
                    "search space",
                    format!("{key} is a continuous range: grid search needs listed values (or use random search)"),
                )
            })?;
            trials = trials
                .into_iter()
                .flat_map(|t| {
                    values.iter().map(move |v| {
                        let mut t = t.clone();
                        t.insert(key.clone(), v.clone());
                        t
                    })
                })
                .collect();
        }
        Ok(trials)
    }

    /// `n` random draws, seeded.
    pub fn sample(&self, n: usize, seed: u64) -> Result<Vec<BTreeMap<String, String>>> {
        for (key, domain) in &self.0 {
            domain.check(key)?;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        Ok((0..n)
            .map(|_| {
                self.0
                    .iter()
                    .map(|(k, d)| (k.clone(), d.sample(&mut rng)))
                    .collect()
            })
            .collect())
    }
}

/// How trials are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Strategy {
    /// Every combination.
    Grid,
    /// Random draws.
    Random {
        /// How many.
        trials: usize,
        /// Their seed.
        seed: u64,
    },
}

/// Whether the objective metric should be small or large.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Goal {
    /// Smaller is better (losses, errors).
    Minimize,
    /// Larger is better (accuracy, F1, R²).
    Maximize,
}

impl Goal {
    /// The usual goal for a metric name: maximise accuracy-like metrics, minimise the rest.
    pub fn for_metric(metric: &str) -> Self {
        let name = metric.rsplit('_').next().unwrap_or(metric);
        let base = metric
            .trim_start_matches("val_")
            .trim_start_matches("train_");
        if [
            "accuracy",
            "f1",
            "precision",
            "recall",
            "auc",
            "r2",
            "ovr",
            "macro",
            "weighted",
        ]
        .contains(&name)
            || base.starts_with("roc_auc")
            || base.starts_with("f1")
        {
            Self::Maximize
        } else {
            Self::Minimize
        }
    }
}

/// One trial.
#[derive(Debug, Clone, PartialEq)]
pub struct Trial {
    /// Its child run (`None` only when the run could not even be created).
    pub run_id: Option<RunId>,
    /// The parameters it set.
    pub params: BTreeMap<String, String>,
    /// Its final metrics (empty when it failed).
    pub metrics: BTreeMap<String, f64>,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// The result of a search.
#[derive(Debug, Clone, PartialEq)]
pub struct TuneOutcome {
    /// The parent run.
    pub parent_run_id: RunId,
    /// Every trial, in trial order.
    pub trials: Vec<Trial>,
    /// Index of the best trial.
    pub best: usize,
}

impl TuneOutcome {
    /// The best trial.
    pub fn best_trial(&self) -> &Trial {
        &self.trials[self.best]
    }
}

/// A hyper-parameter search over a base configuration.
#[derive(Debug, Clone)]
pub struct Tuner {
    base: TrainConfig,
    space: SearchSpace,
    strategy: Strategy,
    metric: String,
    goal: Goal,
    parallelism: usize,
}

impl Tuner {
    /// Searches `space` around `base`, ranking trials by `metric` (goal guessed from its name:
    /// see [`Goal::for_metric`]), as many trials at once as there are cores.
    pub fn new(
        base: TrainConfig,
        space: SearchSpace,
        strategy: Strategy,
        metric: impl Into<String>,
    ) -> Self {
        let metric = metric.into();
        Self {
            base,
            space,
            strategy,
            goal: Goal::for_metric(&metric),
            metric,
            parallelism: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }

    /// Overrides the goal.
    pub fn goal(mut self, goal: Goal) -> Self {
        self.goal = goal;
        self
    }

    /// At most `n` trials at once (at least 1).
    pub fn parallelism(mut self, n: usize) -> Self {
        self.parallelism = n.max(1);
        self
    }

    /// The trials' parameter sets and configurations; a bad key or value fails here, before
    /// anything runs.
    pub fn trials(&self) -> Result<Vec<(BTreeMap<String, String>, TrainConfig)>> {
        let sets = match self.strategy {
            Strategy::Grid => self.space.grid()?,
            Strategy::Random { trials, seed } => self.space.sample(trials, seed)?,
        };
        if sets.is_empty() {
            return Err(Error::invalid("search space", "no trials to run"));
        }
        sets.into_iter()
            .map(|params| {
                let mut config = self.base.clone();
                config.apply(params.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
                config.validate()?;
                Ok((params, config))
            })
            .collect()
    }

    /// Runs the search as `job` (its experiment, fit options, tracker and sink): a parent run
    /// (the job's run name, parent and tags), one child run per trial (the job's tags). Trials
    /// register nothing and report to no observer, whatever the job says; register the best
    /// one from the outcome.
    pub async fn run(
        &self,
        job: &TrainingJob,
        data: &TrainingData,
        cancel: &CancelToken,
    ) -> Result<TuneOutcome> {
        let tracker = job.tracker().as_ref();
        let experiment = job.experiment();
        let trials = self.trials()?;
        let experiment_id = tracker
            .get_or_create_experiment(&experiment.parse()?)
            .await?;
        // The search's own run: the job's name (else `search-<metric>`), parent and tags.
        let mut create = job.run_options()?.in_experiment(experiment_id);
        if create.run_name.is_none() {
            create = create.with_name(format!("search-{}", self.metric));
        }
        let parent = tracker.create_run(create).await?;
        let parent_id = parent.info.run_id.clone();
        let strategy = match self.strategy {
            Strategy::Grid => "grid".to_owned(),
            Strategy::Random { .. } => "random".to_owned(),
        };
        let space =
            serde_json::to_string(&self.space).map_err(|e| Error::backend("serde_json", e))?;
        let mut batch = LogBatch::new()
            .param(Param::new("search_strategy".parse()?, strategy)?)
            .param(Param::new(
                "search_objective".parse()?,
                self.metric.clone(),
            )?)
            .param(Param::new(
                "search_trials".parse()?,
                trials.len().to_string(),
            )?)
            .param(Param::new("search_space".parse()?, space)?);
        for (k, v) in self.base.params() {
            if !self.space.0.contains_key(&k) {
                batch = batch.param(Param::new(k.parse()?, v)?);
            }
        }
        tracker.log_batch(&parent_id, batch).await?;

        let mut results: Vec<(usize, Trial, Option<Error>)> =
            futures::stream::iter(trials.into_iter().enumerate())
                .map(|(i, (params, config))| {
                    // Trials register nothing and report to no progress observer (they run
                    // side by side); they keep the job's tags.
                    let job = job
                        .clone()
                        .without_registration()
                        .without_observer()
                        .run_name(format!("trial-{i}"))
                        .parent(parent_id.clone())
                        .tag("mlops.trial", i.to_string());
                    async move {
                        let trainer = Arc::new(CandleTrainer::new(config));
                        let (run_id, outcome) = job.run_tracked(trainer, data, cancel).await;
                        match outcome {
                            Ok(o) => {
                                let trial = Trial {
                                    run_id: Some(o.run_id),
                                    params,
                                    metrics: o.metrics,
                                    error: None,
                                };
                                (i, trial, None)
                            }
                            Err(e) => {
                                let trial = Trial {
                                    run_id,
                                    params,
                                    metrics: BTreeMap::new(),
                                    error: Some(e.to_string()),
                                };
                                (i, trial, Some(e))
                            }
                        }
                    }
                })
                .buffer_unordered(self.parallelism)
                .collect()
                .await;
        results.sort_by_key(|(i, _, _)| *i);
        let first_error = results.iter().find_map(|(_, _, e)| e.clone());
        let trials: Vec<Trial> = results.into_iter().map(|(_, t, _)| t).collect();

        let best = trials
            .iter()
            .enumerate()
            .filter_map(|(i, t)| t.metrics.get(&self.metric).map(|v| (i, *v)))
            .filter(|(_, v)| v.is_finite())
            .reduce(|a, b| {
                let better = match self.goal {
                    Goal::Minimize => b.1 < a.1,
                    Goal::Maximize => b.1 > a.1,
                };
                if better { b } else { a }
            });
        let Some((best, value)) = best else {
            // Every trial failed: the search failed as they did (an outage stays retryable).
            let error = match first_error {
                Some(e) if trials.iter().all(|t| t.error.is_some()) => {
                    Some(e.context("every trial of the search failed; the first"))
                }
                _ => None,
            };
            let reason = if cancel.is_cancelled() {
                "the search was cancelled".to_owned()
            } else if let Some(e) = &error {
                e.to_string()
            } else {
                let available: Vec<&str> = trials
                    .iter()
                    .flat_map(|t| t.metrics.keys())
                    .map(String::as_str)
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                format!(
                    "no trial reported {:?} (metrics: {})",
                    self.metric,
                    available.join(", ")
                )
            };
            let _ = tracker.set_tag(&parent_id, "mlops.error", &reason).await;
            let _ = tracker.end_run(&parent_id, RunStatus::Failed).await;
            return Err(match error {
                Some(e) if !cancel.is_cancelled() => e,
                _ => Error::invalid("search", reason),
            });
        };
        let mut batch = LogBatch::new().metric(Metric::new(
            format!("best_{}", self.metric).parse()?,
            value,
            0,
        ));
        batch = batch.param(Param::new("best_trial".parse()?, best.to_string())?);
        tracker.log_batch(&parent_id, batch).await?;
        if let Some(run) = &trials[best].run_id {
            tracker
                .set_tag(&parent_id, "mlops.best_run_id", run.as_str())
                .await?;
        }
        tracker.end_run(&parent_id, RunStatus::Finished).await?;
        Ok(TuneOutcome {
            parent_run_id: parent_id,
            trials,
            best,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_is_the_cartesian_product_in_order() {
        let space = SearchSpace::new()
            .choice("learning_rate", ["0.1", "0.01"])
            .with("epochs", Domain::Int { low: 1, high: 3 });
        let grid = space.grid().unwrap();
        assert_eq!(grid.len(), 6);
        assert_eq!(grid[0]["epochs"], "1");
        assert_eq!(grid[0]["learning_rate"], "0.1");
        assert_eq!(grid[5]["epochs"], "3");
        let cont = space.with(
            "l2",
            Domain::Uniform {
                low: 0.0,
                high: 1.0,
            },
        );
        assert!(cont.grid().unwrap_err().to_string().contains("continuous"));
    }

    #[test]
    fn random_is_seeded_and_in_range() {
        let space = SearchSpace::new()
            .parse_into("learning_rate=0.0001..0.1:log")
            .unwrap()
            .parse_into("hidden=32|64,32")
            .unwrap()
            .parse_into("batch_size=16..=64")
            .unwrap()
            .parse_into("dropout=0..0.5")
            .unwrap();
        let a = space.sample(20, 1).unwrap();
        assert_eq!(a, space.sample(20, 1).unwrap());
        assert_ne!(a, space.sample(20, 2).unwrap());
        for t in &a {
            let lr: f64 = t["learning_rate"].parse().unwrap();
            assert!((0.0001..=0.1).contains(&lr), "{lr}");
            assert!(["32", "64,32"].contains(&t["hidden"].as_str()));
            let bs: i64 = t["batch_size"].parse().unwrap();
            assert!((16..=64).contains(&bs));
        }
        assert!(SearchSpace::new().parse_into("lr").is_err());
        assert!(SearchSpace::new().parse_into("lr=a..b").is_err());
        let bad = SearchSpace::new().with(
            "l2",
            Domain::LogUniform {
                low: 0.0,
                high: 1.0,
            },
        );
        assert!(
            bad.sample(1, 0)
                .unwrap_err()
                .to_string()
                .contains("positive")
        );
    }

    #[test]
    fn goals_follow_metric_names() {
        for m in [
            "val_accuracy",
            "val_f1",
            "val_roc_auc",
            "val_r2",
            "val_f1_macro",
            "val_roc_auc_ovr",
        ] {
            assert_eq!(Goal::for_metric(m), Goal::Maximize, "{m}");
        }
        for m in ["val_loss", "val_rmse", "val_log_loss", "val_mae"] {
            assert_eq!(Goal::for_metric(m), Goal::Minimize, "{m}");
        }
    }

    #[test]
    fn bad_keys_fail_before_anything_runs() {
        let t = Tuner::new(
            TrainConfig::default(),
            SearchSpace::new().choice("colour", ["red"]),
            Strategy::Grid,
            "val_rmse",
        );
        assert!(
            t.trials()
                .unwrap_err()
                .to_string()
                .contains("unknown hyper-parameter")
        );
    }
}
