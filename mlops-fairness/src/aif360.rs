//! AIF360's signed two-group metrics: unprivileged minus (or over) privileged.

use serde::Serialize;

use crate::frame::{Counts, check_lengths, count};
use crate::groups::Groups;
use crate::outcomes::BinaryOutcomes;
use mlops_core::{Error, Result};

/// The privileged group: rows whose sensitive columns hold these values (every condition must
/// hold). As in `aif360.sklearn.metrics`, every other row is unprivileged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Privileged {
    conditions: Vec<(String, String)>,
}

impl Privileged {
    /// Rows where `column` is `value`.
    pub fn new(column: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            conditions: vec![(column.into(), value.into())],
        }
    }

    /// And where `column` is `value` too (an intersectional privileged group).
    pub fn and(mut self, column: impl Into<String>, value: impl Into<String>) -> Self {
        self.conditions.push((column.into(), value.into()));
        self
    }

    /// Parses `column=value[,column=value…]`.
    pub fn parse(text: &str) -> Result<Self> {
        let mut conditions = Vec::new();
        for part in text.split(',') {
            let (column, value) = part.split_once('=').ok_or_else(|| {
                Error::invalid(
                    "privileged group",
                    format!("{part:?} is not column=value (in {text:?})"),
                )
            })?;
            if column.trim().is_empty() {
                return Err(Error::invalid(
                    "privileged group",
                    format!("{part:?} names no column"),
                ));
            }
            conditions.push((column.trim().to_owned(), value.trim().to_owned()));
        }
        Ok(Self { conditions })
    }

    /// The `(column, value)` conditions.
    pub fn conditions(&self) -> &[(String, String)] {
        &self.conditions
    }

    /// For each group of `groups`, whether it is privileged.
    pub(crate) fn mask(&self, groups: &Groups) -> Result<Vec<bool>> {
        let positions = self
            .conditions
            .iter()
            .map(|(c, v)| Ok((groups.column_index(c)?, v.as_str())))
            .collect::<Result<Vec<_>>>()?;
        let mask: Vec<bool> = groups
            .keys()
            .iter()
            .map(|k| positions.iter().all(|(i, v)| k.values()[*i] == *v))
            .collect();
        if !mask.iter().any(|p| *p) {
            return Err(Error::invalid(
                "privileged group",
                format!("no row is in the privileged group {self}"),
            ));
        }
        if mask.iter().all(|p| *p) {
            return Err(Error::invalid(
                "privileged group",
                format!("every row is in the privileged group {self}: none is unprivileged"),
            ));
        }
        Ok(mask)
    }
}

impl std::fmt::Display for Privileged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (c, v)) in self.conditions.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{c}={v}")?;
        }
        Ok(())
    }
}

/// The rates AIF360 compares, per side.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SideRates {
    /// Rows.
    pub count: usize,
    /// Sum of their instance weights.
    pub weight: f64,
    /// P(Ŷ = 1).
    pub selection_rate: f64,
    /// Recall, 0 with no positives (`zero_division` → 0).
    pub true_positive_rate: f64,
    /// Specificity, 0 with no negatives (`zero_division` → 0).
    pub true_negative_rate: f64,
}

impl SideRates {
    fn of(c: &Counts) -> Self {
        let negatives = c.negatives();
        let div = |a: f64, b: f64| if b == 0.0 { 0.0 } else { a / b };
        Self {
            count: c.rows,
            weight: c.weight,
            selection_rate: c.selected / c.weight,
            true_positive_rate: div(c.true_positives, c.positives),
            true_negative_rate: div(negatives - c.false_positives, negatives),
        }
    }
}

/// AIF360's two-group metrics, as `aif360.sklearn.metrics` computes them (signed,
/// unprivileged minus privileged, weighted, `zero_division` → 0).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TwoGroupMetrics {
    /// The privileged group.
    pub privileged_group: Privileged,
    /// Its rates.
    pub privileged: SideRates,
    /// Everyone else's.
    pub unprivileged: SideRates,
    /// P(Ŷ=1 | unpriv) − P(Ŷ=1 | priv).
    pub statistical_parity_difference: f64,
    /// P(Ŷ=1 | unpriv) / P(Ŷ=1 | priv); 0 when the privileged rate is 0.
    pub disparate_impact: f64,
    /// TPR_unpriv − TPR_priv.
    pub equal_opportunity_difference: f64,
    /// ½[(FPR_u − FPR_p) + (TPR_u − TPR_p)].
    pub average_odds_difference: f64,
    /// ½[|FPR_u − FPR_p| + |TPR_u − TPR_p|] (`average_odds_error`).
    pub average_abs_odds_difference: f64,
}

impl TwoGroupMetrics {
    /// The metrics of `outcomes` with `privileged` against everyone else.
    pub fn new(
        outcomes: &BinaryOutcomes,
        groups: &Groups,
        privileged: &Privileged,
    ) -> Result<Self> {
        check_lengths(outcomes, groups)?;
        let mask = privileged.mask(groups)?;
        Ok(Self::from_counts(
            privileged,
            &mask,
            &count(outcomes, groups, 0..outcomes.len()),
        ))
    }

    pub(crate) fn from_counts(privileged: &Privileged, mask: &[bool], counts: &[Counts]) -> Self {
        let (mut p, mut u) = (Counts::default(), Counts::default());
        for (c, is_privileged) in counts.iter().zip(mask) {
            if *is_privileged {
                p.merge(c);
            } else {
                u.merge(c);
            }
        }
        let (p, u) = (SideRates::of(&p), SideRates::of(&u));
        let tpr_diff = u.true_positive_rate - p.true_positive_rate;
        // AIF360 takes FPR's difference as minus the specificity difference, so a side with no
        // negatives (specificity 0 by `zero_division`) counts as FPR 1.
        let fpr_diff = p.true_negative_rate - u.true_negative_rate;
        Self {
            privileged_group: privileged.clone(),
            privileged: p,
            unprivileged: u,
            statistical_parity_difference: u.selection_rate - p.selection_rate,
            disparate_impact: if p.selection_rate == 0.0 {
                0.0
            } else {
                u.selection_rate / p.selection_rate
            },
            equal_opportunity_difference: tpr_diff,
            average_odds_difference: (tpr_diff + fpr_diff) / 2.0,
            average_abs_odds_difference: (tpr_diff.abs() + fpr_diff.abs()) / 2.0,
        }
    }
}
