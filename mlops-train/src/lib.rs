//! # mlops-train
//!
//! Implementations of [`mlops_core::Trainer`] and [`mlops_core::Model`] on candle, on CPU by
//! default and on CUDA behind the `cuda` feature.
//!
//! **Status: started.** [`eval`] holds the evaluation metrics, checked against scikit-learn.
//! The rest is filled by the training issue:
//!
//! - trainers for linear, logistic (binary) and softmax regression and an MLP, with SGD+momentum
//!   and AdamW, L2 regularisation, learning-rate schedules, early stopping, checkpoints and
//!   cooperative cancellation ([`mlops_core::CancelToken`]);
//! - preprocessing fitted on the training split and saved with the model (standardisation,
//!   one-hot encoding, imputation);
//! - evaluation metrics (accuracy, precision, recall, F1, ROC-AUC, log loss, RMSE, MAE, R²),
//!   checked against scikit-learn;
//! - models saved as safetensors weights plus a model card ([`mlops_core::ModelArtifact`]) and a
//!   [`mlops_core::ModelLoader`] that needs no training code;
//! - grid and random hyper-parameter search with trials as child runs;
//! - export of a training job as a Kubernetes `batch/v1` Job.
//!
//! The device is chosen at run time (`cpu`, `cuda:N`, `auto`); without the `cuda` feature,
//! asking for CUDA is [`mlops_core::Error::NotSupported`].

pub mod eval;
