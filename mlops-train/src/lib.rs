//! # mlops-train
//!
//! Training on [candle](https://github.com/huggingface/candle): implementations of
//! [`mlops_core::Trainer`] and [`mlops_core::Model`], on the CPU by default and on CUDA with the
//! `cuda` feature.
//!
//! - [`CandleTrainer`] trains linear regression, binary logistic regression, softmax regression
//!   and MLPs ([`ModelKind`]) with SGD (+ momentum, Nesterov) or AdamW, L2 regularisation,
//!   learning-rate schedules, seeded minibatch shuffling, a validation split, early stopping,
//!   safetensors checkpoints with resume, cooperative cancellation and a progress callback. All
//!   hyper-parameters live in one flat [`TrainConfig`] (`key=value`, shared with the CLI, run
//!   params and tuning). Same data, seed, config and device → bit-identical weights.
//! - Input is Arrow. [`preprocess`] fits standardisation, one-hot encoding (unknown categories
//!   become zeros) and imputation on the training split and saves them with the model.
//! - Models save as safetensors weights plus a [`ModelCard`] (the `candle` flavor) and load with
//!   [`CandleLoader`], which needs no training code; the model takes one input per feature
//!   column, as the Open Inference Protocol's tabular clients send them.
//! - [`eval`] holds the metrics (accuracy, precision, recall, F1, ROC-AUC, log loss, RMSE, MAE,
//!   R²), checked against scikit-learn.
//!
//! - [`TrainingJob`] runs any trainer as a tracked run and registers the result; [`Tuner`] runs
//!   grid and random searches as parallel child runs; [`JobExport`] hands a training run to
//!   Kubernetes as a `batch/v1` Job.
//!
//! The device is chosen at run time ([`DeviceSpec`]: `cpu`, `cuda:N`, `auto`); without the
//! `cuda` feature, asking for CUDA is [`mlops_core::Error::NotSupported`].
//!
//! ## Example
//!
//! A logistic regression on Arrow columns (a number and a category), then a prediction from raw
//! columns, the way a client of the served model sends them:
//!
//! ```
//! use std::sync::Arc;
//! use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray};
//! use mlops_core::train::{EpochReport, FitOptions, Trainer};
//! use mlops_core::{CancelToken, Tensor};
//! use mlops_train::{CandleTrainer, ModelKind, TrainConfig};
//!
//! # fn main() -> mlops_core::Result<()> {
//! let n = 400;
//! let x: Vec<f64> = (0..n).map(|i| (i as f64 / n as f64) * 4.0 - 2.0).collect();
//! let plan: Vec<&str> = (0..n).map(|i| if i % 3 == 0 { "pro" } else { "basic" }).collect();
//! let churned: Vec<&str> = x
//!     .iter()
//!     .zip(&plan)
//!     .map(|(x, p)| if x + if *p == "pro" { 0.5 } else { -0.5 } > 0.0 { "yes" } else { "no" })
//!     .collect();
//! let batch = RecordBatch::try_from_iter([
//!     ("x", Arc::new(Float64Array::from(x)) as ArrayRef),
//!     ("plan", Arc::new(StringArray::from(plan))),
//!     ("churned", Arc::new(StringArray::from(churned))),
//! ])
//! .map_err(|e| mlops_core::Error::backend("arrow", e))?;
//!
//! let mut config = TrainConfig::new(ModelKind::Logistic);
//! config.apply([("epochs", "30"), ("learning_rate", "0.1")])?;
//! let trainer = CandleTrainer::new(config);
//! let fit = trainer.fit(
//!     &[batch],
//!     &FitOptions::new("churned").with_seed(7),
//!     &|_: &EpochReport| {},
//!     &CancelToken::new(),
//! )?;
//! assert!(fit.metrics["val_accuracy"] > 0.9, "{:?}", fit.metrics);
//!
//! // One 1-D tensor per feature column; the answer is the label (and its probabilities).
//! let out = fit.model.predict(&[
//!     Tensor::from_f64("x", vec![2], &[1.5, -1.5])?,
//!     Tensor::from_byte_strings("plan", vec![2], &["pro", "basic"])?,
//! ])?;
//! let labels: Vec<Vec<u8>> = out[0].to_byte_strings()?.into_iter().map(<[u8]>::to_vec).collect();
//! assert_eq!(labels, [b"yes".to_vec(), b"no".to_vec()]);
//! # Ok(())
//! # }
//! ```

pub mod checkpoint;
pub mod config;
pub mod device;
pub mod eval;
pub mod job;
pub mod k8s;
pub mod model;
pub mod net;
mod optim;
pub mod preprocess;
pub mod trainer;
pub mod tune;

pub use checkpoint::latest as latest_checkpoint;
pub use config::{OptimizerKind, Schedule, TrainConfig};
pub use device::DeviceSpec;
pub use job::{JobOutcome, TrainingData, TrainingJob};
pub use k8s::JobExport;
pub use model::{CandleLoader, CandleModel, ModelCard};
pub use net::{Activation, ModelKind, Task};
pub use trainer::{CandleTrainer, Checkpoints, Training};
pub use tune::{Domain, Goal, SearchSpace, Strategy, Trial, TuneOutcome, Tuner};
