//! The [`Trainer`] trait: fit a model on Arrow data.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;

use arrow_array::RecordBatch;
use serde::{Deserialize, Serialize};

use crate::cancel::CancelToken;
use crate::error::Result;
use crate::model::Model;

/// What one epoch achieved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochReport {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// Mean training loss.
    pub train_loss: f64,
    /// Validation loss, when a validation split exists.
    pub val_loss: Option<f64>,
    /// Other metrics (`val_accuracy`, …).
    pub metrics: BTreeMap<String, f64>,
}

/// Receives progress while a model trains (the CLI draws a progress bar from it).
pub trait FitObserver: Send + Sync {
    /// Called after every epoch.
    fn on_epoch(&self, report: &EpochReport);
}

/// Ignores progress.
impl FitObserver for () {
    fn on_epoch(&self, _report: &EpochReport) {}
}

impl<F: Fn(&EpochReport) + Send + Sync> FitObserver for F {
    fn on_epoch(&self, report: &EpochReport) {
        self(report)
    }
}

/// Options every trainer understands; model hyper-parameters live in the trainer itself.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct FitOptions {
    /// The column to predict.
    pub target: String,
    /// Seed for splitting, shuffling and initialisation.
    pub seed: u64,
    /// Share of rows held out for validation (0 for none).
    pub validation_fraction: f64,
}

impl FitOptions {
    /// Predict `target`, seed 42, 20 % validation.
    pub fn new(target: impl Into<String>) -> Self {
        Self {
            target: target.into(),
            seed: 42,
            validation_fraction: 0.2,
        }
    }

    /// Sets the seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the validation share.
    pub fn with_validation_fraction(mut self, f: f64) -> Self {
        self.validation_fraction = f;
        self
    }
}

/// A trained model and how it got there.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FitOutcome {
    /// The model.
    pub model: Arc<dyn Model>,
    /// Final metrics (validation metrics when a split exists).
    pub metrics: BTreeMap<String, f64>,
    /// One report per epoch.
    pub history: Vec<EpochReport>,
    /// The rows held out for validation, as indices into the training data (its batches
    /// concatenated in order), ascending: empty when nothing was held out, `None` when the
    /// trainer does not say. What an [`Assessor`] judges the model on.
    pub validation_rows: Option<Vec<usize>>,
}

impl FitOutcome {
    /// A model, its final metrics and its epochs; which rows were held out is not said.
    pub fn new(
        model: Arc<dyn Model>,
        metrics: BTreeMap<String, f64>,
        history: Vec<EpochReport>,
    ) -> Self {
        Self {
            model,
            metrics,
            history,
            validation_rows: None,
        }
    }

    /// Says which rows were held out for validation.
    pub fn with_validation_rows(mut self, rows: Vec<usize>) -> Self {
        self.validation_rows = Some(rows);
        self
    }
}

/// Judges a trained model on its held-out rows before it is stored — explanations, fairness,
/// any check whose findings belong in the model card and on the registered version.
/// Synchronous compute: a training job calls it on a blocking thread.
pub trait Assessor: Debug + Send + Sync {
    /// Assesses `model` on `rows`, which hold the model's inputs and the target column
    /// `target`.
    fn assess(
        &self,
        model: &Arc<dyn Model>,
        rows: &RecordBatch,
        target: &str,
    ) -> Result<Assessment>;
}

/// What an [`Assessor`] found.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Assessment {
    /// Sections of the model card by name (`explain`, `fairness`), as JSON.
    pub card: BTreeMap<String, serde_json::Value>,
    /// Tags of the registered version and the run (`explain.*`, `fairness.*`: what policy
    /// rules read).
    pub tags: BTreeMap<String, String>,
    /// Files logged with the run under `assessment/` (a report in HTML, the findings in JSON).
    pub files: BTreeMap<String, bytes::Bytes>,
}

impl Assessment {
    /// Nothing found yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a model-card section.
    pub fn with_card_section(mut self, name: impl Into<String>, value: serde_json::Value) -> Self {
        self.card.insert(name.into(), value);
        self
    }

    /// Adds tags.
    pub fn with_tags(mut self, tags: impl IntoIterator<Item = (String, String)>) -> Self {
        self.tags.extend(tags);
        self
    }

    /// Adds a file.
    pub fn with_file(mut self, name: impl Into<String>, bytes: impl Into<bytes::Bytes>) -> Self {
        self.files.insert(name.into(), bytes.into());
        self
    }
}

/// Fits models on Arrow data. Synchronous compute: async callers use `spawn_blocking`.
///
/// # Contract
///
/// - The same data, options, seed and device give bit-identical models.
/// - A missing or non-numeric target column, an empty input, or a fraction outside `[0, 1)` is
///   [`crate::Error::InvalidArgument`] naming it.
/// - When `cancel` fires, training stops at the next epoch boundary and returns
///   [`crate::Error::Unavailable`] saying it was cancelled.
pub trait Trainer: Debug + Send + Sync + 'static {
    /// The flavor of the models it produces.
    fn flavor(&self) -> &str;

    /// Its hyper-parameters, for logging as run params.
    fn params(&self) -> BTreeMap<String, String>;

    /// Trains on `data`.
    fn fit(
        &self,
        data: &[RecordBatch],
        options: &FitOptions,
        observer: &dyn FitObserver,
        cancel: &CancelToken,
    ) -> Result<FitOutcome>;
}

macro_rules! forward_trainer {
    ($ty:ty) => {
        #[deny(clippy::missing_trait_methods)]
        impl<T: Trainer + ?Sized> Trainer for $ty {
            fn flavor(&self) -> &str {
                (**self).flavor()
            }
            fn params(&self) -> BTreeMap<String, String> {
                (**self).params()
            }
            fn fit(
                &self,
                data: &[RecordBatch],
                options: &FitOptions,
                observer: &dyn FitObserver,
                cancel: &CancelToken,
            ) -> Result<FitOutcome> {
                (**self).fit(data, options, observer, cancel)
            }
        }
    };
}

forward_trainer!(Arc<T>);
forward_trainer!(Box<T>);
