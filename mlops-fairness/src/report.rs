//! The whole assessment: the frame, both conventions' disparities, bootstrap intervals, and the
//! `fairness.*` tags a model version carries.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;

use crate::aif360::{Privileged, TwoGroupMetrics};
use crate::frame::{Aggregate, Counts, Method, MetricFrame, check_lengths, count};
use crate::groups::Groups;
use crate::outcomes::BinaryOutcomes;
use mlops_core::{Error, Result};

/// Percentile-bootstrap settings: rows are resampled with replacement within each group
/// (stratified, so every group keeps its size and none is drawn empty), `resamples` times, and
/// every disparity recomputed on each resample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Bootstrap {
    /// Resamples (each costs one pass over the rows; they run in parallel).
    pub resamples: usize,
    /// Two-sided coverage of the interval, in (0, 1).
    pub confidence: f64,
    /// Seed: the same seed gives the same intervals on any number of threads.
    pub seed: u64,
}

impl Default for Bootstrap {
    fn default() -> Self {
        Self {
            resamples: 1000,
            confidence: 0.95,
            seed: 0,
        }
    }
}

/// What [`assess`] computes besides fairlearn's metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AssessOptions {
    /// The privileged group, for AIF360's two-group metrics (none: those are left out).
    pub privileged: Option<Privileged>,
    /// Bootstrap intervals for every disparity (none: point estimates only).
    pub bootstrap: Option<Bootstrap>,
}

/// Which reference a disparity's definition is taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Convention {
    /// fairlearn: unsigned, max − min (or min / max) over any number of groups.
    Fairlearn,
    /// AIF360: signed, unprivileged minus (or over) privileged.
    Aif360,
}

/// A bootstrap percentile interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    /// Lower bound.
    pub low: f64,
    /// Upper bound.
    pub high: f64,
    /// Its coverage.
    pub confidence: f64,
    /// Resamples on which the disparity was defined (not `NaN`), which the bounds come from.
    pub resamples: usize,
    /// Resamples on which it was undefined (`NaN`: a group whose drawn weights are all zero,
    /// a ratio of two zero rates).
    pub undefined: usize,
}

/// One disparity: its name as the reference spells it, its value and interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Disparity {
    /// `demographic_parity_difference`, `disparate_impact`, ….
    pub name: &'static str,
    /// Whose definition.
    pub convention: Convention,
    /// The value on all rows (`NaN` when undefined).
    pub value: f64,
    /// Its bootstrap interval, when asked for.
    pub interval: Option<Interval>,
}

impl Disparity {
    /// The key of its tag: `fairness.<name>` (fairlearn) or `fairness.aif360.<name>`.
    pub fn tag_key(&self) -> String {
        match self.convention {
            Convention::Fairlearn => format!("fairness.{}", self.name),
            Convention::Aif360 => format!("fairness.aif360.{}", self.name),
        }
    }
}

/// The result of [`assess`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FairnessReport {
    /// Rates by group.
    pub frame: MetricFrame,
    /// AIF360's metrics, when a privileged group was given.
    pub two_group: Option<TwoGroupMetrics>,
    /// Every disparity, fairlearn's first.
    pub disparities: Vec<Disparity>,
}

impl FairnessReport {
    /// The disparity named `name` in `convention`.
    pub fn disparity(&self, convention: Convention, name: &str) -> Option<&Disparity> {
        self.disparities
            .iter()
            .find(|d| d.convention == convention && d.name == name)
    }

    /// Tags for a model version: each disparity as `fairness.<name>` (AIF360's as
    /// `fairness.aif360.<name>`), its interval as `<key>.low` / `<key>.high`, and
    /// `fairness.sensitive_columns`. Undefined (or infinite) values are left out.
    pub fn tags(&self) -> BTreeMap<String, String> {
        let mut tags = BTreeMap::new();
        tags.insert(
            "fairness.sensitive_columns".to_owned(),
            self.frame.sensitive_columns.join(","),
        );
        if let Some(two) = &self.two_group {
            tags.insert(
                "fairness.aif360.privileged".to_owned(),
                two.privileged_group.to_string(),
            );
        }
        for d in &self.disparities {
            if !d.value.is_finite() {
                continue;
            }
            let key = d.tag_key();
            if let Some(i) = d.interval {
                tags.insert(format!("{key}.low"), i.low.to_string());
                tags.insert(format!("{key}.high"), i.high.to_string());
            }
            tags.insert(key, d.value.to_string());
        }
        tags
    }
}

/// The most bootstrap resamples [`assess`] takes (each is a pass over the rows).
pub const MAX_RESAMPLES: usize = 100_000;

type Definition = (&'static str, Convention);

const FAIRLEARN: [&str; 6] = [
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
    "equalized_odds_ratio",
    "equal_opportunity_difference",
    "equal_opportunity_ratio",
];
const AIF360: [&str; 5] = [
    "statistical_parity_difference",
    "disparate_impact",
    "equal_opportunity_difference",
    "average_odds_difference",
    "average_abs_odds_difference",
];

fn values(frame: &MetricFrame, two: Option<&TwoGroupMetrics>) -> Vec<f64> {
    let (m, a) = (Method::BetweenGroups, Aggregate::WorstCase);
    let mut v = vec![
        frame.demographic_parity_difference(m),
        frame.demographic_parity_ratio(m),
        frame.equalized_odds_difference(m, a),
        frame.equalized_odds_ratio(m, a),
        frame.equal_opportunity_difference(m),
        frame.equal_opportunity_ratio(m),
    ];
    if let Some(t) = two {
        v.extend([
            t.statistical_parity_difference,
            t.disparate_impact,
            t.equal_opportunity_difference,
            t.average_odds_difference,
            t.average_abs_odds_difference,
        ]);
    }
    v
}

/// Every disparity of `outcomes` over `groups`: fairlearn's (between groups, worst case), and
/// AIF360's when `options.privileged` is set, each with a bootstrap interval when
/// `options.bootstrap` is set.
pub fn assess(
    outcomes: &BinaryOutcomes,
    groups: &Groups,
    options: &AssessOptions,
) -> Result<FairnessReport> {
    check_lengths(outcomes, groups)?;
    let mask = options
        .privileged
        .as_ref()
        .map(|p| p.mask(groups))
        .transpose()?;
    let evaluate = |counts: &[Counts]| -> (MetricFrame, Option<TwoGroupMetrics>) {
        let frame = MetricFrame::from_counts(groups, counts);
        let two = options
            .privileged
            .as_ref()
            .zip(mask.as_deref())
            .map(|(p, m)| TwoGroupMetrics::from_counts(p, m, counts));
        (frame, two)
    };
    let (frame, two_group) = evaluate(&count(outcomes, groups, 0..outcomes.len()));
    let point = values(&frame, two_group.as_ref());
    let mut definitions: Vec<Definition> = FAIRLEARN
        .iter()
        .map(|n| (*n, Convention::Fairlearn))
        .collect();
    if two_group.is_some() {
        definitions.extend(AIF360.iter().map(|n| (*n, Convention::Aif360)));
    }
    let intervals = match options.bootstrap {
        None => vec![None; point.len()],
        Some(b) => {
            if !(2..=MAX_RESAMPLES).contains(&b.resamples) {
                return Err(Error::invalid(
                    "bootstrap",
                    format!("{} resamples: between 2 and {MAX_RESAMPLES}", b.resamples),
                ));
            }
            if !(b.confidence > 0.0 && b.confidence < 1.0) {
                return Err(Error::invalid(
                    "bootstrap",
                    format!("confidence {} is not in (0, 1)", b.confidence),
                ));
            }
            let mut members: Vec<Vec<usize>> = vec![Vec::new(); groups.keys().len()];
            for (row, g) in groups.row_groups().iter().enumerate() {
                members[*g as usize].push(row);
            }
            let samples: Vec<Vec<f64>> = (0..b.resamples)
                .into_par_iter()
                .map(|i| {
                    let mut rng = ChaCha8Rng::seed_from_u64(b.seed);
                    rng.set_stream(i as u64);
                    let mut draws = Vec::with_capacity(outcomes.len());
                    for rows in &members {
                        draws
                            .extend((0..rows.len()).map(|_| rows[rng.random_range(0..rows.len())]));
                    }
                    let (f, t) = evaluate(&count(outcomes, groups, draws.into_iter()));
                    values(&f, t.as_ref())
                })
                .collect();
            (0..point.len())
                .map(|j| {
                    let mut column: Vec<f64> = samples
                        .iter()
                        .map(|s| s[j])
                        .filter(|v| !v.is_nan())
                        .collect();
                    let undefined = b.resamples - column.len();
                    if column.is_empty() {
                        return None;
                    }
                    column.sort_by(f64::total_cmp);
                    let alpha = (1.0 - b.confidence) / 2.0;
                    Some(Interval {
                        low: quantile(&column, alpha),
                        high: quantile(&column, 1.0 - alpha),
                        confidence: b.confidence,
                        resamples: column.len(),
                        undefined,
                    })
                })
                .collect()
        }
    };
    let disparities = definitions
        .into_iter()
        .zip(point)
        .zip(intervals)
        .map(|(((name, convention), value), interval)| Disparity {
            name,
            convention,
            value,
            interval,
        })
        .collect();
    Ok(FairnessReport {
        frame,
        two_group,
        disparities,
    })
}

/// NumPy's default (`linear`) quantile of sorted values.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::quantile;

    #[test]
    fn quantile_interpolates_like_numpy() {
        let v = [1.0, 2.0, 4.0, 8.0];
        assert_eq!(quantile(&v, 0.0), 1.0);
        assert_eq!(quantile(&v, 1.0), 8.0);
        // np.quantile([1, 2, 4, 8], 0.5) == 3.0, 0.25 → 1.75
        assert_eq!(quantile(&v, 0.5), 3.0);
        assert_eq!(quantile(&v, 0.25), 1.75);
    }
}
