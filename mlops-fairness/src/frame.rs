//! Rates by group and fairlearn's disparity metrics over them.

use serde::Serialize;

use crate::groups::{GroupKey, Groups};
use crate::outcomes::BinaryOutcomes;
use mlops_core::{Error, Result};

/// Weighted confusion counts of a set of rows.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Counts {
    pub rows: usize,
    pub weight: f64,
    pub selected: f64,
    pub positives: f64,
    pub true_positives: f64,
    pub false_positives: f64,
}

impl Counts {
    pub(crate) fn add(&mut self, truth: bool, pred: bool, w: f64) {
        self.rows += 1;
        self.weight += w;
        if pred {
            self.selected += w;
        }
        if truth {
            self.positives += w;
            if pred {
                self.true_positives += w;
            }
        } else if pred {
            self.false_positives += w;
        }
    }

    pub(crate) fn merge(&mut self, other: &Counts) {
        self.rows += other.rows;
        self.weight += other.weight;
        self.selected += other.selected;
        self.positives += other.positives;
        self.true_positives += other.true_positives;
        self.false_positives += other.false_positives;
    }

    pub(crate) fn negatives(&self) -> f64 {
        self.weight - self.positives
    }
}

/// Counts per group (by index into the groups' keys) of the rows `rows` yields.
pub(crate) fn count(
    outcomes: &BinaryOutcomes,
    groups: &Groups,
    rows: impl Iterator<Item = usize>,
) -> Vec<Counts> {
    let mut counts = vec![Counts::default(); groups.keys().len()];
    let row_group = groups.row_groups();
    for row in rows {
        counts[row_group[row] as usize].add(
            outcomes.y_true[row],
            outcomes.y_pred[row],
            outcomes.weight(row),
        );
    }
    counts
}

/// The rates of one group (or of all rows), weighted.
///
/// Zero divisions follow scikit-learn's `confusion_matrix(normalize="true")`, which fairlearn
/// uses: a rate over no positives (or no negatives) is 0.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rates {
    /// Rows.
    pub count: usize,
    /// Sum of the rows' weights (`count` without weights).
    pub weight: f64,
    /// P(Ŷ = 1).
    pub selection_rate: f64,
    /// P(Y = 1).
    pub base_rate: f64,
    /// P(Ŷ = 1 | Y = 1), recall.
    pub true_positive_rate: f64,
    /// P(Ŷ = 1 | Y = 0).
    pub false_positive_rate: f64,
    /// P(Ŷ = 0 | Y = 0), specificity.
    pub true_negative_rate: f64,
    /// P(Ŷ = 0 | Y = 1).
    pub false_negative_rate: f64,
    /// P(Ŷ = Y).
    pub accuracy: f64,
}

fn rate(part: f64, whole: f64) -> f64 {
    if whole == 0.0 { 0.0 } else { part / whole }
}

impl Rates {
    pub(crate) fn of(c: &Counts) -> Self {
        let negatives = c.negatives();
        let tn = negatives - c.false_positives;
        let tpr = rate(c.true_positives, c.positives);
        let fpr = rate(c.false_positives, negatives);
        Self {
            count: c.rows,
            weight: c.weight,
            selection_rate: c.selected / c.weight,
            base_rate: c.positives / c.weight,
            true_positive_rate: tpr,
            false_positive_rate: fpr,
            true_negative_rate: if negatives == 0.0 {
                0.0
            } else {
                tn / negatives
            },
            false_negative_rate: if c.positives == 0.0 {
                0.0
            } else {
                (c.positives - c.true_positives) / c.positives
            },
            accuracy: (c.true_positives + tn) / c.weight,
        }
    }

    /// The value of `metric`.
    pub fn get(&self, metric: GroupMetric) -> f64 {
        match metric {
            GroupMetric::SelectionRate => self.selection_rate,
            GroupMetric::BaseRate => self.base_rate,
            GroupMetric::TruePositiveRate => self.true_positive_rate,
            GroupMetric::FalsePositiveRate => self.false_positive_rate,
            GroupMetric::TrueNegativeRate => self.true_negative_rate,
            GroupMetric::FalseNegativeRate => self.false_negative_rate,
            GroupMetric::Accuracy => self.accuracy,
        }
    }
}

/// A per-group metric of [`Rates`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupMetric {
    /// P(Ŷ = 1).
    SelectionRate,
    /// P(Y = 1).
    BaseRate,
    /// P(Ŷ = 1 | Y = 1).
    TruePositiveRate,
    /// P(Ŷ = 1 | Y = 0).
    FalsePositiveRate,
    /// P(Ŷ = 0 | Y = 0).
    TrueNegativeRate,
    /// P(Ŷ = 0 | Y = 1).
    FalseNegativeRate,
    /// P(Ŷ = Y).
    Accuracy,
}

/// How fairlearn compares groups (`method=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Largest group minus smallest (ratio: smallest over largest).
    #[default]
    BetweenGroups,
    /// Each group against all rows, the worst of them.
    ToOverall,
}

/// How fairlearn folds the TPR and FPR disparities of equalized odds (`agg=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregate {
    /// The worse of the two.
    #[default]
    WorstCase,
    /// Their mean.
    Mean,
}

/// One group's rates.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupRates {
    /// The group.
    pub group: GroupKey,
    /// Its rates.
    pub rates: Rates,
}

/// Rates by group and over all rows: fairlearn's `MetricFrame` for the rate metrics, and the
/// disparities fairlearn defines on it (`demographic_parity_difference`, …), with its exact
/// conventions (unsigned, any number of groups, empty intersection cells skipped as `NaN`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricFrame {
    /// The sensitive columns.
    pub sensitive_columns: Vec<String>,
    /// Each group that has rows, sorted.
    pub by_group: Vec<GroupRates>,
    /// All rows.
    pub overall: Rates,
    /// Intersections with no rows.
    pub empty_cells: Vec<GroupKey>,
}

impl MetricFrame {
    /// The frame of `outcomes` split by `groups`.
    pub fn new(outcomes: &BinaryOutcomes, groups: &Groups) -> Result<Self> {
        check_lengths(outcomes, groups)?;
        Ok(Self::from_counts(
            groups,
            &count(outcomes, groups, 0..outcomes.len()),
        ))
    }

    pub(crate) fn from_counts(groups: &Groups, counts: &[Counts]) -> Self {
        let mut overall = Counts::default();
        let mut by_group = Vec::with_capacity(counts.len());
        for (key, c) in groups.keys().iter().zip(counts) {
            overall.merge(c);
            if c.rows > 0 {
                by_group.push(GroupRates {
                    group: key.clone(),
                    rates: Rates::of(c),
                });
            }
        }
        Self {
            sensitive_columns: groups.columns().to_vec(),
            by_group,
            overall: Rates::of(&overall),
            empty_cells: groups.empty_cells().to_vec(),
        }
    }

    fn values(&self, metric: GroupMetric) -> impl Iterator<Item = f64> + '_ {
        self.by_group.iter().map(move |g| g.rates.get(metric))
    }

    /// The largest value of `metric` over groups (`group_max`; `NaN`s skipped).
    pub fn group_max(&self, metric: GroupMetric) -> f64 {
        self.values(metric)
            .filter(|v| !v.is_nan())
            .fold(f64::NAN, f64::max)
    }

    /// The smallest value of `metric` over groups (`group_min`; `NaN`s skipped).
    pub fn group_min(&self, metric: GroupMetric) -> f64 {
        self.values(metric)
            .filter(|v| !v.is_nan())
            .fold(f64::NAN, f64::min)
    }

    /// fairlearn's `MetricFrame.difference(method)`.
    pub fn difference(&self, metric: GroupMetric, method: Method) -> f64 {
        let base = match method {
            Method::BetweenGroups => self.group_min(metric),
            Method::ToOverall => self.overall.get(metric),
        };
        self.values(metric)
            .map(|v| (v - base).abs())
            .filter(|v| !v.is_nan())
            .fold(f64::NAN, f64::max)
    }

    /// fairlearn's `MetricFrame.ratio(method)`: at most 1.
    pub fn ratio(&self, metric: GroupMetric, method: Method) -> f64 {
        match method {
            Method::BetweenGroups => self.group_min(metric) / self.group_max(metric),
            Method::ToOverall => {
                let overall = self.overall.get(metric);
                self.values(metric)
                    .map(|v| {
                        let r = v / overall;
                        if r > 1.0 { 1.0 / r } else { r }
                    })
                    .filter(|v| !v.is_nan())
                    .fold(f64::NAN, f64::min)
            }
        }
    }

    /// `demographic_parity_difference`: the selection-rate gap.
    pub fn demographic_parity_difference(&self, method: Method) -> f64 {
        self.difference(GroupMetric::SelectionRate, method)
    }

    /// `demographic_parity_ratio`.
    pub fn demographic_parity_ratio(&self, method: Method) -> f64 {
        self.ratio(GroupMetric::SelectionRate, method)
    }

    /// `equalized_odds_difference`: the TPR and FPR gaps folded by `agg`.
    pub fn equalized_odds_difference(&self, method: Method, agg: Aggregate) -> f64 {
        let tpr = self.difference(GroupMetric::TruePositiveRate, method);
        let fpr = self.difference(GroupMetric::FalsePositiveRate, method);
        match agg {
            // Python's max([tpr, fpr]): the first unless the second is larger.
            Aggregate::WorstCase => {
                if fpr > tpr {
                    fpr
                } else {
                    tpr
                }
            }
            Aggregate::Mean => nan_mean(tpr, fpr),
        }
    }

    /// `equalized_odds_ratio`: the TPR and FPR ratios folded by `agg`.
    pub fn equalized_odds_ratio(&self, method: Method, agg: Aggregate) -> f64 {
        let tpr = self.ratio(GroupMetric::TruePositiveRate, method);
        let fpr = self.ratio(GroupMetric::FalsePositiveRate, method);
        match agg {
            // Python's min([tpr, fpr]).
            Aggregate::WorstCase => {
                if fpr < tpr {
                    fpr
                } else {
                    tpr
                }
            }
            Aggregate::Mean => nan_mean(tpr, fpr),
        }
    }

    /// `equal_opportunity_difference`: the TPR gap.
    pub fn equal_opportunity_difference(&self, method: Method) -> f64 {
        self.difference(GroupMetric::TruePositiveRate, method)
    }

    /// `equal_opportunity_ratio`.
    pub fn equal_opportunity_ratio(&self, method: Method) -> f64 {
        self.ratio(GroupMetric::TruePositiveRate, method)
    }
}

/// pandas' `Series.mean()`: `NaN`s skipped.
fn nan_mean(a: f64, b: f64) -> f64 {
    match (a.is_nan(), b.is_nan()) {
        (false, false) => (a + b) / 2.0,
        (true, false) => b,
        (false, true) => a,
        (true, true) => f64::NAN,
    }
}

pub(crate) fn check_lengths(outcomes: &BinaryOutcomes, groups: &Groups) -> Result<()> {
    if outcomes.len() != groups.rows() {
        return Err(Error::invalid(
            "sensitive columns",
            format!(
                "{} rows of groups for {} labelled rows",
                groups.rows(),
                outcomes.len()
            ),
        ));
    }
    Ok(())
}
