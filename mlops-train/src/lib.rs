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
