//! # mlops-explain
//!
//! Model-agnostic explanations over any [`mlops_core::Model`] (through [`ModelFunction`]) or
//! any closure from [`Features`] to one number per row:
//!
//! - [`permutation_importance`] with scikit-learn's semantics: `n_repeats`, `max_samples`
//!   (the baseline on every row, the repeats on the subsample), any score (greater is better),
//!   one seed shared by all columns, mean and std (ddof = 0); columns run in parallel.
//!   [`Shuffles::Explicit`] takes given permutations, which reproduces scikit-learn exactly.
//! - [`permutation_importance_columns`]: the same over Arrow columns of any type (strings,
//!   categories), through [`ModelColumns`] — how models with text inputs are explained.
//! - [`LinearExplainer`]: exact interventional SHAP values of linear and logistic models
//!   (margin space), equal to `shap.LinearExplainer`.
//! - [`KernelExplainer`]: KernelSHAP with shap's coalition weighting and plan (`nsamples`
//!   auto = 2M + 2048; every coalition enumerated when 2^M − 2 fits, which makes the values
//!   exact Shapley values), seeded, rows in parallel, the additivity error reported.
//! - [`ColumnKernelExplainer`]: KernelSHAP over Arrow columns of any type (text and
//!   categories too), through [`PredictBatch`] / [`ModelColumns`].
//! - [`kmeans_background`]: a KernelSHAP background summarised by k-means with cluster-size
//!   weights, as `shap.kmeans` does.
//! - [`ShapService`]: KernelSHAP behind a serving endpoint (core's `Explainer`), for
//!   `POST /v2/models/{name}/explain`.
//! - [`Explanation::mean_abs`]: the global summary (mean |φ| per feature).
//!
//! Checked against scikit-learn 1.9 and shap 0.51 by `tests/references.rs`.
//!
//! ## Example
//!
//! ```
//! use mlops_explain::{Features, KernelExplainer, KernelOptions, LinearExplainer};
//!
//! # fn main() -> mlops_core::Result<()> {
//! let names = vec!["a".to_owned(), "b".to_owned()];
//! let background = Features::new(names.clone(), vec![0.0, 0.0, 2.0, 2.0])?;
//! let x = Features::new(names, vec![3.0, 1.0])?;
//! // y = 2a − b: the exact values are 2·(3 − 1) and −(1 − 1).
//! let linear = LinearExplainer::new(vec![2.0, -1.0], 0.5, &background)?.explain(&x)?;
//! assert_eq!(linear.values[0], vec![4.0, 0.0]);
//! let f = |x: &Features| -> mlops_core::Result<Vec<f64>> {
//!     Ok((0..x.rows()).map(|i| 2.0 * x.row(i)[0] - x.row(i)[1] + 0.5).collect())
//! };
//! let kernel = KernelExplainer::new(f, background, KernelOptions::default())?.explain(&x)?;
//! assert!((kernel.values[0][0] - 4.0).abs() < 1e-9);
//! assert!(kernel.additivity_error < 1e-9);
//! # Ok(())
//! # }
//! ```

mod background;
mod column_shap;
mod columns;
mod features;
mod importance;
mod service;
mod shap;

pub use background::kmeans_background;
pub use column_shap::{ColumnKernelExplainer, sample_rows};
pub use columns::{ModelColumns, PredictBatch, permutation_importance_columns};
pub use features::{Features, ModelFunction, Predict};
pub use importance::{
    FeatureImportance, Importances, MaxSamples, PermutationOptions, Scorer, Shuffles,
    permutation_importance,
};
pub use service::{DEFAULT_MAX_NSAMPLES, DEFAULT_MAX_ROWS, ShapService};
pub use shap::{
    Explanation, KernelExplainer, KernelOptions, LinearExplainer, Link, sample_background,
};
