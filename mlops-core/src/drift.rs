//! The [`DriftDetector`] trait and reference profiles.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;

use arrow_array::RecordBatch;
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// How a column is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnKind {
    /// Numbers compared as distributions.
    Numerical,
    /// Labels compared as frequencies.
    Categorical,
}

/// What a profile keeps of one reference column: enough for every test to run without the
/// original data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ColumnSummary {
    /// Numerical: the sorted finite values, or a bounded uniform sample of them.
    Numerical {
        /// Sorted finite values (or the sample).
        values: Vec<f64>,
        /// Number of finite values in the reference.
        population: u64,
        /// True when `values` is a sample, which makes the tests approximate.
        sampled: bool,
    },
    /// Categorical: the count of each label.
    Categorical {
        /// Count per label.
        counts: BTreeMap<String, u64>,
    },
}

/// One profiled column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnProfile {
    /// Column name.
    pub name: String,
    /// Rows.
    pub count: u64,
    /// Nulls, NaNs and infinities (dropped before testing, as Evidently does).
    pub missing: u64,
    /// What the tests need.
    pub summary: ColumnSummary,
}

impl ColumnProfile {
    /// Numerical or categorical.
    pub fn kind(&self) -> ColumnKind {
        match self.summary {
            ColumnSummary::Numerical { .. } => ColumnKind::Numerical,
            ColumnSummary::Categorical { .. } => ColumnKind::Categorical,
        }
    }
}

/// A column that could not be tested, and why (no values left after dropping missing ones, or
/// a type no test handles): reported, never silently dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UntestedColumn {
    /// Column name.
    pub column: String,
    /// Why, in words.
    pub reason: String,
    /// The reference had values and the current data has none (a feature that stopped
    /// arriving): no test applies, but the column counts as drifted in
    /// [`DriftReport::drifted_columns`] and the share.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub emptied: bool,
}

/// A serialisable summary of reference data, computed once (e.g. from training data) and stored
/// beside a model version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferenceProfile {
    /// Rows in the reference.
    pub rows: u64,
    /// Columns, in schema order.
    pub columns: Vec<ColumnProfile>,
    /// When it was computed, ms.
    pub created_ms: i64,
    /// Columns of the reference that could not be profiled, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub untested: Vec<UntestedColumn>,
}

/// Options for [`DriftDetector::profile`].
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct ProfileOptions {
    /// Columns to profile; all when empty.
    pub columns: Vec<String>,
    /// Columns to treat as categorical even if numeric.
    pub categorical: Vec<String>,
    /// Keep at most this many numerical values per column (a uniform sample); exact when `None`.
    pub max_values: Option<usize>,
}

/// A per-column override of the test or threshold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ColumnOverride {
    /// Test name (`ks`, `chisquare`, `z`, `wasserstein`, `jensenshannon`, `psi`).
    pub test: Option<String>,
    /// Threshold.
    pub threshold: Option<f64>,
}

/// Options for [`DriftDetector::detect`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct DetectOptions {
    /// Dataset drift when the share of drifted columns is at least this (Evidently: 0.5).
    pub drift_share: f64,
    /// Per-column overrides.
    pub overrides: BTreeMap<String, ColumnOverride>,
}

impl Default for DetectOptions {
    fn default() -> Self {
        Self {
            drift_share: 0.5,
            overrides: BTreeMap::new(),
        }
    }
}

/// One column's test result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnDrift {
    /// Column name.
    pub column: String,
    /// Numerical or categorical.
    pub kind: ColumnKind,
    /// The test used.
    pub test: String,
    /// Its score: a p-value for statistical tests, a distance otherwise.
    pub score: f64,
    /// The threshold it was compared with.
    pub threshold: f64,
    /// Whether the column drifted.
    pub drifted: bool,
    /// Values tested on each side after dropping missing ones (`[reference, current]`).
    #[serde(default)]
    pub counts: [u64; 2],
    /// True when the reference side was a sample of the reference (a profile built with
    /// `max_values`), which makes the score an approximation.
    #[serde(default)]
    pub approximate: bool,
}

/// Drift of a dataset against a reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftReport {
    /// Per-column results, in profile order.
    pub columns: Vec<ColumnDrift>,
    /// How many drifted: tested columns whose test says so, plus columns whose values stopped
    /// arriving ([`UntestedColumn::emptied`]).
    pub drifted_columns: usize,
    /// `drifted_columns / columns_judged()`.
    pub share_drifted: f64,
    /// The threshold on the share.
    pub drift_share: f64,
    /// Whether the dataset drifted.
    pub dataset_drift: bool,
    /// Columns that could not be tested, and why: the reference's (from the profile) and those
    /// with no values in the current data. The share counts tested columns and emptied ones.
    #[serde(default)]
    pub untested: Vec<UntestedColumn>,
}

impl DriftReport {
    /// The columns the share is over: those tested, and those whose values stopped arriving.
    pub fn columns_judged(&self) -> usize {
        self.columns.len() + self.untested.iter().filter(|u| u.emptied).count()
    }
}

/// Builds reference profiles and tests current data against them. Synchronous compute.
///
/// # Contract
///
/// - `profile` then `detect` gives the same decisions as testing against the raw reference,
///   exactly when the profile is not sampled.
/// - A column in the profile but missing from the current data is
///   [`crate::Error::InvalidArgument`] naming it — never a NaN score.
/// - A column with no values after dropping missing ones (on either side), or of a type no test
///   handles, is reported in `untested` with the reason; the others are still tested. When no
///   column at all can be tested the answer is [`crate::Error::InvalidArgument`] listing why,
///   never "no drift".
pub trait DriftDetector: Debug + Send + Sync + 'static {
    /// Summarises reference data.
    fn profile(
        &self,
        reference: &[RecordBatch],
        options: &ProfileOptions,
    ) -> Result<ReferenceProfile>;

    /// Tests current data against a profile.
    fn detect(
        &self,
        reference: &ReferenceProfile,
        current: &[RecordBatch],
        options: &DetectOptions,
    ) -> Result<DriftReport>;
}

/// A hook for the data a model serves: a server calls [`observe`](InferenceObserver::observe)
/// with each batch of inputs it answered, so a drift monitor (or anything else) can watch
/// production data without the server depending on the monitor's crate.
///
/// Implementations must be cheap to call and must not fail the request: they record or queue
/// the batch and report their own errors (logging, metrics).
pub trait InferenceObserver: Debug + Send + Sync + 'static {
    /// `inputs` were served by `model` (a registered model name) at `version`.
    fn observe(&self, model: &str, version: Option<crate::id::Version>, inputs: &RecordBatch);
}

macro_rules! forward_observer {
    ($ty:ty) => {
        #[deny(clippy::missing_trait_methods)]
        impl<O: InferenceObserver + ?Sized> InferenceObserver for $ty {
            fn observe(
                &self,
                model: &str,
                version: Option<crate::id::Version>,
                inputs: &RecordBatch,
            ) {
                (**self).observe(model, version, inputs)
            }
        }
    };
}

forward_observer!(Arc<O>);
forward_observer!(Box<O>);

macro_rules! forward_detector {
    ($ty:ty) => {
        #[deny(clippy::missing_trait_methods)]
        impl<D: DriftDetector + ?Sized> DriftDetector for $ty {
            fn profile(
                &self,
                reference: &[RecordBatch],
                options: &ProfileOptions,
            ) -> Result<ReferenceProfile> {
                (**self).profile(reference, options)
            }
            fn detect(
                &self,
                reference: &ReferenceProfile,
                current: &[RecordBatch],
                options: &DetectOptions,
            ) -> Result<DriftReport> {
                (**self).detect(reference, current, options)
            }
        }
    };
}

forward_detector!(Arc<D>);
forward_detector!(Box<D>);
