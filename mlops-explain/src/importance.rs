//! Permutation importance with scikit-learn's semantics
//! (`sklearn.inspection.permutation_importance`).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;

use crate::features::{Features, Predict, predict_checked};
use mlops_core::{Error, Result};

/// A score of predictions against the truth, greater is better (scikit-learn's scorer
/// convention: pass a loss negated). `mlops_train::eval` has the metrics.
pub type Scorer<'a> = &'a (dyn Fn(&[f64], &[f64]) -> Result<f64> + Sync);

/// How many rows each repeat scores.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum MaxSamples {
    /// A share of the rows, in (0, 1] (`max_samples=0.5`).
    Fraction(f64),
    /// A number of rows (`max_samples=1000`).
    Count(usize),
}

/// Where the shuffles come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Shuffles {
    /// Drawn from this seed. As in scikit-learn, every column reuses the same seed, so all
    /// columns see the same row subsample and the same sequence of shuffles.
    Seeded(u64),
    /// Given: the rows each repeat scores (none: all, in order) and, per repeat, the order in
    /// which the permuted column's values are taken from those (unpermuted) rows. scikit-learn
    /// shuffles cumulatively (each repeat permutes the already permuted column), so its
    /// repeat-`k` order is the composition of its first `k` shuffles; fed those, this
    /// reproduces its numbers exactly (`tests/references.py` shows how).
    Explicit {
        /// Row subsample, `max_samples` rows (none: every row).
        rows: Option<Vec<usize>>,
        /// One permutation of `0..rows` per repeat.
        orders: Vec<Vec<usize>>,
    },
}

/// Options of [`permutation_importance`].
#[derive(Debug, Clone, PartialEq)]
pub struct PermutationOptions {
    /// Repeats per feature (`n_repeats`, default 5); ignored with explicit shuffles.
    pub n_repeats: usize,
    /// Rows per repeat (`max_samples`, default all).
    pub max_samples: MaxSamples,
    /// The shuffles (default seeded with 0).
    pub shuffles: Shuffles,
}

impl Default for PermutationOptions {
    fn default() -> Self {
        Self {
            n_repeats: 5,
            max_samples: MaxSamples::Fraction(1.0),
            shuffles: Shuffles::Seeded(0),
        }
    }
}

/// One feature's importance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureImportance {
    /// The feature.
    pub feature: String,
    /// Mean drop of the score over repeats (`importances_mean`).
    pub mean: f64,
    /// Its standard deviation, ddof = 0 (`importances_std`).
    pub std: f64,
    /// The drop of each repeat (`importances[j]`).
    pub drops: Vec<f64>,
}

impl FeatureImportance {
    /// The summary of one feature's drops: their mean and standard deviation (ddof = 0).
    pub(crate) fn from_drops(feature: String, drops: Vec<f64>) -> Self {
        let mean = drops.iter().sum::<f64>() / drops.len() as f64;
        let var = drops.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / drops.len() as f64;
        Self {
            feature,
            mean,
            std: var.sqrt(),
            drops,
        }
    }
}

/// The result of [`permutation_importance`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Importances {
    /// The score on all rows, unpermuted.
    pub baseline: f64,
    /// Per feature, in the features' order.
    pub features: Vec<FeatureImportance>,
}

impl Importances {
    /// The features, most important first.
    pub fn ranked(&self) -> Vec<&FeatureImportance> {
        let mut v: Vec<&FeatureImportance> = self.features.iter().collect();
        v.sort_by(|a, b| b.mean.total_cmp(&a.mean));
        v
    }
}

/// How much `scorer` drops when each feature's values are shuffled across rows, `n_repeats`
/// times, features in parallel. The baseline is scored on every row, the repeats on the
/// `max_samples` subsample, as scikit-learn does.
pub fn permutation_importance(
    model: &dyn Predict,
    x: &Features,
    y: &[f64],
    scorer: Scorer<'_>,
    options: &PermutationOptions,
) -> Result<Importances> {
    let n = x.rows();
    if y.len() != n {
        return Err(Error::invalid(
            "y",
            format!("{} targets for {n} rows", y.len()),
        ));
    }
    if n == 0 {
        return Err(Error::invalid("features", "no rows"));
    }
    let (rows, orders) = plan(n, options)?;
    let baseline = scorer(y, &predict_checked(model, x)?)?;
    let (xs, ys) = match &rows {
        None => (x.clone(), y.to_vec()),
        Some(r) => (x.select(r)?, r.iter().map(|&i| y[i]).collect()),
    };
    let width = x.width();
    let features = (0..width)
        .into_par_iter()
        .map(|j| {
            let mut permuted = xs.clone();
            let column: Vec<f64> = (0..xs.rows()).map(|i| xs.row(i)[j]).collect();
            let mut drops = Vec::with_capacity(orders.len());
            for order in &orders {
                let values = permuted.values_mut();
                for (i, &from) in order.iter().enumerate() {
                    values[i * width + j] = column[from];
                }
                let score = scorer(&ys, &predict_checked(model, &permuted)?)?;
                drops.push(baseline - score);
            }
            Ok(FeatureImportance::from_drops(x.names()[j].clone(), drops))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Importances { baseline, features })
}

type Plan = (Option<Vec<usize>>, Vec<Vec<usize>>);

/// The row subsample and the per-repeat orders `options` ask for over `n` rows.
pub(crate) fn plan(n: usize, options: &PermutationOptions) -> Result<Plan> {
    let take = match options.max_samples {
        MaxSamples::Fraction(f) if f > 0.0 && f <= 1.0 => ((f * n as f64) as usize).max(1),
        MaxSamples::Count(c) if c >= 1 && c <= n => c,
        other => {
            return Err(Error::invalid(
                "max_samples",
                format!("{other:?} for {n} rows: a share in (0, 1] or a count in 1..={n}"),
            ));
        }
    };
    match &options.shuffles {
        Shuffles::Seeded(seed) => {
            if options.n_repeats == 0 {
                return Err(Error::invalid("n_repeats", "at least one repeat"));
            }
            let mut rng = ChaCha8Rng::seed_from_u64(*seed);
            let rows = (take < n).then(|| {
                let mut all: Vec<usize> = (0..n).collect();
                partial_shuffle(&mut all, take, &mut rng);
                all.truncate(take);
                all
            });
            let orders = (0..options.n_repeats)
                .map(|_| {
                    let mut order: Vec<usize> = (0..take).collect();
                    partial_shuffle(&mut order, take, &mut rng);
                    order
                })
                .collect();
            Ok((rows, orders))
        }
        Shuffles::Explicit { rows, orders } => {
            let m = rows.as_ref().map_or(n, Vec::len);
            if let Some(bad) = rows.iter().flatten().find(|&&i| i >= n) {
                return Err(Error::invalid("shuffles", format!("row {bad} of {n} rows")));
            }
            if orders.is_empty() {
                return Err(Error::invalid("shuffles", "no orders: at least one repeat"));
            }
            for (k, order) in orders.iter().enumerate() {
                let mut seen = vec![false; m];
                let ok = order.len() == m
                    && order
                        .iter()
                        .all(|&i| i < m && !std::mem::replace(&mut seen[i], true));
                if !ok {
                    return Err(Error::invalid(
                        "shuffles",
                        format!("order {k} is not a permutation of the {m} rows"),
                    ));
                }
            }
            Ok((rows.clone(), orders.clone()))
        }
    }
}

/// Fisher–Yates on the first `k` positions.
fn partial_shuffle(v: &mut [usize], k: usize, rng: &mut ChaCha8Rng) {
    let n = v.len();
    for i in 0..k.min(n.saturating_sub(1)) {
        let j = rng.random_range(i..n);
        v.swap(i, j);
    }
}
