//! Training hyper-parameters: one flat, serialisable vocabulary shared by the Rust API, the CLI
//! (`--param key=value`), run params in the tracker and the search spaces of tuning.

use std::collections::BTreeMap;

use mlops_core::{Error, Result};
use serde::{Deserialize, Serialize};

use crate::device::DeviceSpec;
use crate::net::{Activation, ModelKind, NetSpec, Task};
use crate::preprocess::DEFAULT_MAX_CATEGORIES;

/// The optimizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// Stochastic gradient descent with (optionally Nesterov) momentum.
    Sgd,
    /// Adam with decoupled weight decay.
    #[default]
    Adamw,
}

/// How the learning rate changes from epoch to epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// The same every epoch.
    #[default]
    Constant,
    /// Multiplied by `gamma` every `step_size` epochs.
    Step,
    /// Multiplied by `gamma` every epoch.
    Exponential,
    /// Cosine annealing from `learning_rate` to `min_learning_rate` over the epochs.
    Cosine,
}

/// Every hyper-parameter of a training run. Fields that do not apply to the chosen model or
/// optimizer are ignored (and left out of [`params`](Self::params)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// The model.
    pub model: ModelKind,
    /// MLP only: regression or classification (the one-layer models imply theirs).
    pub task: Task,
    /// MLP only: hidden layer widths.
    pub hidden: Vec<usize>,
    /// MLP only: hidden activation.
    pub activation: Activation,
    /// MLP only: dropout probability after each hidden layer, in `[0, 1)`.
    pub dropout: f64,
    /// The optimizer.
    pub optimizer: OptimizerKind,
    /// Initial learning rate.
    pub learning_rate: f64,
    /// SGD: momentum in `[0, 1)`.
    pub momentum: f64,
    /// SGD: Nesterov momentum.
    pub nesterov: bool,
    /// AdamW: first-moment decay.
    pub beta1: f64,
    /// AdamW: second-moment decay.
    pub beta2: f64,
    /// AdamW: denominator epsilon.
    pub eps: f64,
    /// AdamW: decoupled weight decay (weights, not biases).
    pub weight_decay: f64,
    /// L2 regularisation strength: adds `l2·w` to the weights' gradients (not the biases').
    pub l2: f64,
    /// Learning-rate schedule.
    pub schedule: Schedule,
    /// `step` schedule: epochs between decays.
    pub step_size: usize,
    /// `step` and `exponential` schedules: the decay factor.
    pub gamma: f64,
    /// `cosine` schedule: the final learning rate.
    pub min_learning_rate: f64,
    /// Passes over the training split.
    pub epochs: usize,
    /// Rows per minibatch.
    pub batch_size: usize,
    /// Stop after this many epochs without a validation-loss improvement (and keep the best
    /// weights); `None` trains every epoch.
    pub early_stopping: Option<usize>,
    /// The improvement early stopping requires.
    pub min_delta: f64,
    /// The feature columns; `None` = every column but the target.
    pub features: Option<Vec<String>>,
    /// One-hot encoding keeps at most this many categories per string column (the most
    /// frequent); the others are treated as unknown.
    pub max_categories: usize,
    /// Where to train.
    pub device: DeviceSpec,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            model: ModelKind::Linear,
            task: Task::Classification,
            hidden: vec![64],
            activation: Activation::Relu,
            dropout: 0.0,
            optimizer: OptimizerKind::Adamw,
            learning_rate: 0.01,
            momentum: 0.9,
            nesterov: false,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            l2: 0.0,
            schedule: Schedule::Constant,
            step_size: 10,
            gamma: 0.5,
            min_learning_rate: 0.0,
            epochs: 20,
            batch_size: 256,
            early_stopping: None,
            min_delta: 0.0,
            features: None,
            max_categories: DEFAULT_MAX_CATEGORIES,
            device: DeviceSpec::Auto,
        }
    }
}

/// Every key [`TrainConfig::set`] understands.
pub const PARAM_KEYS: &[&str] = &[
    "model",
    "task",
    "hidden",
    "activation",
    "dropout",
    "optimizer",
    "learning_rate",
    "momentum",
    "nesterov",
    "beta1",
    "beta2",
    "eps",
    "weight_decay",
    "l2",
    "schedule",
    "step_size",
    "gamma",
    "min_learning_rate",
    "epochs",
    "batch_size",
    "early_stopping",
    "min_delta",
    "features",
    "max_categories",
    "device",
];

fn parse<T: std::str::FromStr>(key: &'static str, value: &str) -> Result<T> {
    value
        .trim()
        .parse()
        .map_err(|_| Error::invalid("param", format!("{key}={value:?} is not a valid value")))
}

fn parse_enum<T: serde::de::DeserializeOwned>(
    key: &'static str,
    value: &str,
    allowed: &str,
) -> Result<T> {
    serde_json::from_value(serde_json::Value::String(value.trim().to_ascii_lowercase()))
        .map_err(|_| Error::invalid("param", format!("{key}={value:?} (expected {allowed})")))
}

fn enum_name<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

impl TrainConfig {
    /// Defaults for `model`.
    pub fn new(model: ModelKind) -> Self {
        Self {
            model,
            task: match model {
                ModelKind::Linear => Task::Regression,
                _ => Task::Classification,
            },
            ..Self::default()
        }
    }

    /// What the model predicts.
    pub fn task(&self) -> Task {
        match self.model {
            ModelKind::Linear => Task::Regression,
            ModelKind::Logistic | ModelKind::Softmax => Task::Classification,
            ModelKind::Mlp => self.task,
        }
    }

    /// Sets one hyper-parameter from its text form (`learning_rate=0.1`, `hidden=64,32`,
    /// `early_stopping=none`, …). An unknown key or a bad value is
    /// [`Error::InvalidArgument`] naming it.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        match key {
            "model" => self.model = value.trim().to_ascii_lowercase().parse()?,
            "task" => self.task = parse_enum("task", value, "regression or classification")?,
            "hidden" => {
                self.hidden = value
                    .split(',')
                    .map(|w| parse::<usize>("hidden", w))
                    .collect::<Result<_>>()?
            }
            "activation" => self.activation = parse_enum("activation", value, "relu or gelu")?,
            "dropout" => self.dropout = parse("dropout", value)?,
            "optimizer" => self.optimizer = parse_enum("optimizer", value, "sgd or adamw")?,
            "learning_rate" | "lr" => self.learning_rate = parse("learning_rate", value)?,
            "momentum" => self.momentum = parse("momentum", value)?,
            "nesterov" => self.nesterov = parse("nesterov", value)?,
            "beta1" => self.beta1 = parse("beta1", value)?,
            "beta2" => self.beta2 = parse("beta2", value)?,
            "eps" => self.eps = parse("eps", value)?,
            "weight_decay" => self.weight_decay = parse("weight_decay", value)?,
            "l2" => self.l2 = parse("l2", value)?,
            "schedule" => {
                self.schedule =
                    parse_enum("schedule", value, "constant, step, exponential or cosine")?
            }
            "step_size" => self.step_size = parse("step_size", value)?,
            "gamma" => self.gamma = parse("gamma", value)?,
            "min_learning_rate" => self.min_learning_rate = parse("min_learning_rate", value)?,
            "epochs" => self.epochs = parse("epochs", value)?,
            "batch_size" => self.batch_size = parse("batch_size", value)?,
            "early_stopping" => {
                self.early_stopping = match value.trim() {
                    "none" | "off" | "" => None,
                    v => Some(parse("early_stopping", v)?),
                }
            }
            "min_delta" => self.min_delta = parse("min_delta", value)?,
            "features" => {
                self.features = match value.trim() {
                    "" | "*" => None,
                    v => Some(v.split(',').map(|s| s.trim().to_owned()).collect()),
                }
            }
            "max_categories" => self.max_categories = parse("max_categories", value)?,
            "device" => self.device = value.parse()?,
            other => {
                return Err(Error::invalid(
                    "param",
                    format!(
                        "unknown hyper-parameter {other:?} (known: {})",
                        PARAM_KEYS.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Sets several (see [`set`](Self::set)).
    pub fn apply<'a>(
        &mut self,
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<()> {
        params.into_iter().try_for_each(|(k, v)| self.set(k, v))
    }

    /// The hyper-parameters that apply to this model and optimizer, as text: what a run logs as
    /// params. [`apply`](Self::apply)ing them to a default config gives this config back (up
    /// to the ignored fields).
    pub fn params(&self) -> BTreeMap<String, String> {
        let mut p = BTreeMap::new();
        let mut put = |k: &str, v: String| {
            p.insert(k.to_owned(), v);
        };
        put("model", self.model.as_str().to_owned());
        if self.model == ModelKind::Mlp {
            put("task", enum_name(&self.task));
            put(
                "hidden",
                self.hidden
                    .iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            );
            put("activation", enum_name(&self.activation));
            put("dropout", self.dropout.to_string());
        }
        put("optimizer", enum_name(&self.optimizer));
        put("learning_rate", self.learning_rate.to_string());
        match self.optimizer {
            OptimizerKind::Sgd => {
                put("momentum", self.momentum.to_string());
                put("nesterov", self.nesterov.to_string());
            }
            OptimizerKind::Adamw => {
                put("beta1", self.beta1.to_string());
                put("beta2", self.beta2.to_string());
                put("eps", self.eps.to_string());
                put("weight_decay", self.weight_decay.to_string());
            }
        }
        put("l2", self.l2.to_string());
        put("schedule", enum_name(&self.schedule));
        match self.schedule {
            Schedule::Constant => {}
            Schedule::Step => {
                put("step_size", self.step_size.to_string());
                put("gamma", self.gamma.to_string());
            }
            Schedule::Exponential => put("gamma", self.gamma.to_string()),
            Schedule::Cosine => put("min_learning_rate", self.min_learning_rate.to_string()),
        }
        put("epochs", self.epochs.to_string());
        put("batch_size", self.batch_size.to_string());
        put(
            "early_stopping",
            self.early_stopping
                .map_or_else(|| "none".to_owned(), |n| n.to_string()),
        );
        if self.early_stopping.is_some() {
            put("min_delta", self.min_delta.to_string());
        }
        if let Some(f) = &self.features {
            put("features", f.join(","));
        }
        put("max_categories", self.max_categories.to_string());
        put("device", self.device.to_string());
        p
    }

    /// Checks every value; the first bad one is [`Error::InvalidArgument`] naming it.
    pub fn validate(&self) -> Result<()> {
        let bad = |key: &str, why: &str| Err(Error::invalid("param", format!("{key}: {why}")));
        let positive = |v: f64| v.is_finite() && v > 0.0;
        let unit = |v: f64| v.is_finite() && (0.0..1.0).contains(&v);
        let non_negative = |v: f64| v.is_finite() && v >= 0.0;
        if !positive(self.learning_rate) {
            return bad("learning_rate", "must be a positive number");
        }
        if self.epochs == 0 {
            return bad("epochs", "must be at least 1");
        }
        if self.batch_size == 0 {
            return bad("batch_size", "must be at least 1");
        }
        if self.model == ModelKind::Mlp {
            if self.hidden.is_empty() || self.hidden.contains(&0) {
                return bad(
                    "hidden",
                    "an MLP needs at least one hidden layer, each wider than 0",
                );
            }
            if !unit(self.dropout) {
                return bad("dropout", "must be in [0, 1)");
            }
        }
        if !unit(self.momentum) {
            return bad("momentum", "must be in [0, 1)");
        }
        if !unit(self.beta1) || !unit(self.beta2) {
            return bad("beta1/beta2", "must be in [0, 1)");
        }
        if !positive(self.eps) {
            return bad("eps", "must be a positive number");
        }
        if !non_negative(self.weight_decay) || !non_negative(self.l2) {
            return bad("weight_decay/l2", "must be a non-negative number");
        }
        if self.schedule == Schedule::Step && self.step_size == 0 {
            return bad("step_size", "must be at least 1");
        }
        if !positive(self.gamma) {
            return bad("gamma", "must be a positive number");
        }
        if !non_negative(self.min_learning_rate) {
            return bad("min_learning_rate", "must be a non-negative number");
        }
        if !non_negative(self.min_delta) {
            return bad("min_delta", "must be a non-negative number");
        }
        if self.early_stopping == Some(0) {
            return bad("early_stopping", "patience must be at least 1 (or none)");
        }
        if self.max_categories == 0 {
            return bad("max_categories", "must be at least 1");
        }
        Ok(())
    }

    /// The learning rate of epoch `epoch` (from 0).
    pub fn learning_rate_at(&self, epoch: usize) -> f64 {
        let lr = self.learning_rate;
        match self.schedule {
            Schedule::Constant => lr,
            Schedule::Step => lr * self.gamma.powi((epoch / self.step_size.max(1)) as i32),
            Schedule::Exponential => lr * self.gamma.powi(epoch as i32),
            Schedule::Cosine => {
                let progress = epoch as f64 / self.epochs.max(1) as f64;
                self.min_learning_rate
                    + (lr - self.min_learning_rate)
                        * 0.5
                        * (1.0 + (std::f64::consts::PI * progress).cos())
            }
        }
    }

    /// The network for `inputs` features and `classes` classes (0 for regression).
    pub(crate) fn net_spec(&self, inputs: usize, classes: usize) -> Result<NetSpec> {
        let task = self.task();
        let outputs = match (self.model, task) {
            (_, Task::Regression) => 1,
            (ModelKind::Logistic, _) if classes != 2 => {
                return Err(Error::invalid(
                    "target column",
                    format!(
                        "logistic regression is binary but the target has {classes} classes \
                         (use softmax)"
                    ),
                ));
            }
            (ModelKind::Logistic, _) => 1,
            (_, _) if classes < 2 => {
                return Err(Error::invalid(
                    "target column",
                    format!("a classifier needs at least 2 classes, the target has {classes}"),
                ));
            }
            (_, _) => classes,
        };
        Ok(NetSpec {
            kind: self.model,
            task,
            inputs,
            hidden: if self.model == ModelKind::Mlp {
                self.hidden.clone()
            } else {
                Vec::new()
            },
            activation: self.activation,
            outputs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_round_trip_through_set() {
        let mut c = TrainConfig::new(ModelKind::Mlp);
        c.apply([
            ("hidden", "32,16"),
            ("activation", "gelu"),
            ("optimizer", "sgd"),
            ("nesterov", "true"),
            ("schedule", "step"),
            ("early_stopping", "3"),
            ("features", "a,b"),
            ("device", "cpu"),
            ("lr", "0.5"),
        ])
        .unwrap();
        let params = c.params();
        assert_eq!(params["hidden"], "32,16");
        assert_eq!(params["learning_rate"], "0.5");
        assert!(
            !params.contains_key("beta1"),
            "adamw keys are left out for sgd"
        );
        let mut back = TrainConfig::default();
        back.apply(params.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .unwrap();
        assert_eq!(back, c);
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<TrainConfig>(&json).unwrap(), c);
    }

    #[test]
    fn bad_values_are_named() {
        let mut c = TrainConfig::default();
        for (k, v, want) in [
            ("model", "tree", "expected linear"),
            ("learning_rate", "fast", "learning_rate=\"fast\""),
            ("optimizer", "lbfgs", "expected sgd or adamw"),
            ("colour", "red", "unknown hyper-parameter \"colour\""),
        ] {
            let e = c.set(k, v).unwrap_err();
            assert!(e.to_string().contains(want), "{e}");
        }
        c.learning_rate = -1.0;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("learning_rate")
        );
        let mut c = TrainConfig::new(ModelKind::Mlp);
        c.dropout = 1.0;
        assert!(c.validate().unwrap_err().to_string().contains("dropout"));
        c.dropout = 0.0;
        c.hidden = vec![];
        assert!(c.validate().unwrap_err().to_string().contains("hidden"));
    }

    #[test]
    fn schedules() {
        let mut c = TrainConfig {
            learning_rate: 1.0,
            schedule: Schedule::Step,
            step_size: 2,
            gamma: 0.5,
            ..TrainConfig::default()
        };
        assert_eq!(
            (0..5).map(|e| c.learning_rate_at(e)).collect::<Vec<_>>(),
            [1.0, 1.0, 0.5, 0.5, 0.25]
        );
        c.schedule = Schedule::Cosine;
        c.epochs = 4;
        c.min_learning_rate = 0.0;
        assert!((c.learning_rate_at(2) - 0.5).abs() < 1e-12);
        c.schedule = Schedule::Exponential;
        c.gamma = 0.9;
        assert!((c.learning_rate_at(2) - 0.81).abs() < 1e-12);
    }

    #[test]
    fn logistic_needs_two_classes() {
        let c = TrainConfig::new(ModelKind::Logistic);
        assert_eq!(c.net_spec(3, 2).unwrap().outputs, 1);
        let e = c.net_spec(3, 3).unwrap_err();
        assert!(e.to_string().contains("use softmax"), "{e}");
        let c = TrainConfig::new(ModelKind::Softmax);
        assert_eq!(c.net_spec(3, 4).unwrap().outputs, 4);
        assert!(c.net_spec(3, 1).is_err());
    }
}
