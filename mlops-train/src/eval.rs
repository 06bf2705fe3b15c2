//! Evaluation metrics with scikit-learn's definitions (checked against scikit-learn in
//! `tests/sklearn.rs`): accuracy, precision, recall and F1 (binary, micro, macro, weighted),
//! the confusion matrix, ROC-AUC, log loss, RMSE, MAE and R².
//!
//! As in scikit-learn, a precision, recall or F1 whose denominator is zero is 0 (its
//! `zero_division="warn"` default), and R² of a constant target is 1 for perfect predictions and 0
//! otherwise (`force_finite=True`).

use std::collections::BTreeSet;

use mlops_core::{Error, Result};
use serde::{Deserialize, Serialize};

/// How per-class scores are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Average {
    /// Only the class `pos_label` (scikit-learn's default, `pos_label=1`).
    Binary {
        /// The positive class.
        pos_label: i64,
    },
    /// Global counts over all classes.
    Micro,
    /// The unweighted mean over classes.
    Macro,
    /// The mean over classes weighted by their support (true count).
    Weighted,
}

fn check_pair<T, U>(a: &[T], b: &[U], what: &'static str) -> Result<()> {
    if a.is_empty() {
        return Err(Error::invalid(what, "no samples"));
    }
    if a.len() != b.len() {
        return Err(Error::invalid(
            what,
            format!("{} true values but {} predictions", a.len(), b.len()),
        ));
    }
    Ok(())
}

fn check_finite(values: &[f64], what: &'static str) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(i) => Err(Error::invalid(what, format!("value {i} is not finite"))),
        None => Ok(()),
    }
}

/// Share of exact matches.
pub fn accuracy(y_true: &[i64], y_pred: &[i64]) -> Result<f64> {
    check_pair(y_true, y_pred, "accuracy")?;
    let hits = y_true.iter().zip(y_pred).filter(|(a, b)| a == b).count();
    Ok(hits as f64 / y_true.len() as f64)
}

/// Counts by true class (rows) and predicted class (columns), over the sorted union of labels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfusionMatrix {
    /// The classes, sorted.
    pub labels: Vec<i64>,
    /// `counts[i][j]`: samples of class `labels[i]` predicted as `labels[j]`.
    pub counts: Vec<Vec<u64>>,
}

/// The confusion matrix.
pub fn confusion_matrix(y_true: &[i64], y_pred: &[i64]) -> Result<ConfusionMatrix> {
    check_pair(y_true, y_pred, "confusion matrix")?;
    let labels: Vec<i64> = y_true
        .iter()
        .chain(y_pred)
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let index = |l: i64| labels.binary_search(&l).unwrap_or(0);
    let mut counts = vec![vec![0u64; labels.len()]; labels.len()];
    for (t, p) in y_true.iter().zip(y_pred) {
        counts[index(*t)][index(*p)] += 1;
    }
    Ok(ConfusionMatrix { labels, counts })
}

/// Per-class true positives, predicted counts and true counts.
struct Counts {
    tp: Vec<f64>,
    pred: Vec<f64>,
    truth: Vec<f64>,
}

fn counts(y_true: &[i64], y_pred: &[i64], average: Average) -> Result<Counts> {
    let cm = confusion_matrix(y_true, y_pred)?;
    let n = cm.labels.len();
    let column = |j: usize| cm.counts.iter().map(|r| r[j]).sum::<u64>() as f64;
    let mut c = Counts {
        tp: (0..n).map(|i| cm.counts[i][i] as f64).collect(),
        pred: (0..n).map(column).collect(),
        truth: cm
            .counts
            .iter()
            .map(|r| r.iter().sum::<u64>() as f64)
            .collect(),
    };
    if let Average::Binary { pos_label } = average {
        if cm.labels.len() > 2 {
            return Err(Error::invalid(
                "average",
                format!(
                    "binary averaging needs at most two classes, got {}",
                    cm.labels.len()
                ),
            ));
        }
        c = match cm.labels.iter().position(|l| *l == pos_label) {
            Some(i) => Counts {
                tp: vec![c.tp[i]],
                pred: vec![c.pred[i]],
                truth: vec![c.truth[i]],
            },
            None => Counts {
                tp: vec![0.0],
                pred: vec![0.0],
                truth: vec![0.0],
            },
        };
    }
    if average == Average::Micro {
        c = Counts {
            tp: vec![c.tp.iter().sum()],
            pred: vec![c.pred.iter().sum()],
            truth: vec![c.truth.iter().sum()],
        };
    }
    Ok(c)
}

fn divide(num: f64, den: f64) -> f64 {
    if den == 0.0 { 0.0 } else { num / den }
}

fn combine(per_class: Vec<f64>, truth: &[f64], average: Average) -> f64 {
    match average {
        Average::Weighted => {
            let total: f64 = truth.iter().sum();
            if total == 0.0 {
                return 0.0;
            }
            per_class.iter().zip(truth).map(|(m, w)| m * w).sum::<f64>() / total
        }
        _ => per_class.iter().sum::<f64>() / per_class.len() as f64,
    }
}

/// Precision: tp / (tp + fp).
pub fn precision(y_true: &[i64], y_pred: &[i64], average: Average) -> Result<f64> {
    let c = counts(y_true, y_pred, average)?;
    let per =
        c.tp.iter()
            .zip(&c.pred)
            .map(|(tp, p)| divide(*tp, *p))
            .collect();
    Ok(combine(per, &c.truth, average))
}

/// Recall: tp / (tp + fn).
pub fn recall(y_true: &[i64], y_pred: &[i64], average: Average) -> Result<f64> {
    let c = counts(y_true, y_pred, average)?;
    let per =
        c.tp.iter()
            .zip(&c.truth)
            .map(|(tp, t)| divide(*tp, *t))
            .collect();
    Ok(combine(per, &c.truth, average))
}

/// F1: 2·tp / (2·tp + fp + fn), computed from counts as scikit-learn does.
pub fn f1(y_true: &[i64], y_pred: &[i64], average: Average) -> Result<f64> {
    let c = counts(y_true, y_pred, average)?;
    let per =
        c.tp.iter()
            .zip(c.truth.iter().zip(&c.pred))
            .map(|(tp, (t, p))| divide(2.0 * tp, t + p))
            .collect();
    Ok(combine(per, &c.truth, average))
}

/// Area under the ROC curve of binary labels against scores: the probability that a random
/// positive outranks a random negative, ties counting one half (what the trapezoidal area
/// under scikit-learn's ROC curve equals).
pub fn roc_auc(y_true: &[bool], scores: &[f64]) -> Result<f64> {
    check_pair(y_true, scores, "roc auc")?;
    check_finite(scores, "roc auc")?;
    let pos = y_true.iter().filter(|y| **y).count();
    let neg = y_true.len() - pos;
    if pos == 0 || neg == 0 {
        return Err(Error::invalid(
            "roc auc",
            "needs both classes in the true labels",
        ));
    }
    // Walk scores from high to low; at each distinct score add the trapezoid.
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|a, b| scores[*b].total_cmp(&scores[*a]));
    let (mut tp, mut fp, mut area) = (0.0f64, 0.0f64, 0.0f64);
    let mut i = 0;
    while i < order.len() {
        let s = scores[order[i]];
        let (tp0, fp0) = (tp, fp);
        while i < order.len() && scores[order[i]] == s {
            if y_true[order[i]] {
                tp += 1.0;
            } else {
                fp += 1.0;
            }
            i += 1;
        }
        area += (fp - fp0) * (tp + tp0) / 2.0;
    }
    Ok(area / (pos as f64 * neg as f64))
}

/// One-vs-rest ROC-AUC averaged over classes (scikit-learn's `multi_class="ovr"`,
/// `average="macro"`): `probs[i][k]` is sample i's probability of class k.
pub fn roc_auc_ovr(y_true: &[usize], probs: &[Vec<f64>]) -> Result<f64> {
    check_pair(y_true, probs, "roc auc")?;
    let k = probs[0].len();
    let mut total = 0.0;
    for class in 0..k {
        let labels: Vec<bool> = y_true.iter().map(|y| *y == class).collect();
        let scores: Vec<f64> = probs
            .iter()
            .map(|r| r.get(class).copied().unwrap_or(f64::NAN))
            .collect();
        total += roc_auc(&labels, &scores)?;
    }
    Ok(total / k as f64)
}

/// Cross-entropy of class indices against predicted probabilities (each row one sample),
/// probabilities clipped to [ε, 1 − ε] as scikit-learn does.
pub fn log_loss(y_true: &[usize], probs: &[Vec<f64>]) -> Result<f64> {
    check_pair(y_true, probs, "log loss")?;
    let eps = f64::EPSILON;
    let mut total = 0.0;
    for (i, (y, row)) in y_true.iter().zip(probs).enumerate() {
        check_finite(row, "log loss")?;
        let sum: f64 = row.iter().sum();
        if (sum - 1.0).abs() > 1e-6 * row.len() as f64 {
            return Err(Error::invalid(
                "log loss",
                format!("row {i}'s probabilities sum to {sum}, not 1"),
            ));
        }
        let p = row.get(*y).copied().ok_or_else(|| {
            Error::invalid(
                "log loss",
                format!("row {i}: class {y} but {} probabilities", row.len()),
            )
        })?;
        total -= p.clamp(eps, 1.0 - eps).ln();
    }
    Ok(total / y_true.len() as f64)
}

/// Binary cross-entropy of labels against the probability of the positive class.
pub fn log_loss_binary(y_true: &[bool], p: &[f64]) -> Result<f64> {
    let rows: Vec<Vec<f64>> = p.iter().map(|p| vec![1.0 - p, *p]).collect();
    let y: Vec<usize> = y_true.iter().map(|b| usize::from(*b)).collect();
    log_loss(&y, &rows)
}

/// Root mean squared error.
pub fn rmse(y_true: &[f64], y_pred: &[f64]) -> Result<f64> {
    check_pair(y_true, y_pred, "rmse")?;
    check_finite(y_true, "rmse")?;
    check_finite(y_pred, "rmse")?;
    let sse: f64 = y_true
        .iter()
        .zip(y_pred)
        .map(|(a, b)| (a - b) * (a - b))
        .sum();
    Ok((sse / y_true.len() as f64).sqrt())
}

/// Mean absolute error.
pub fn mae(y_true: &[f64], y_pred: &[f64]) -> Result<f64> {
    check_pair(y_true, y_pred, "mae")?;
    check_finite(y_true, "mae")?;
    check_finite(y_pred, "mae")?;
    Ok(y_true
        .iter()
        .zip(y_pred)
        .map(|(a, b)| (a - b).abs())
        .sum::<f64>()
        / y_true.len() as f64)
}

/// Coefficient of determination, 1 − SS_res / SS_tot.
pub fn r2(y_true: &[f64], y_pred: &[f64]) -> Result<f64> {
    check_pair(y_true, y_pred, "r2")?;
    check_finite(y_true, "r2")?;
    check_finite(y_pred, "r2")?;
    let n = y_true.len() as f64;
    let mean = y_true.iter().sum::<f64>() / n;
    let ss_res: f64 = y_true
        .iter()
        .zip(y_pred)
        .map(|(a, b)| (a - b) * (a - b))
        .sum();
    let ss_tot: f64 = y_true.iter().map(|a| (a - mean) * (a - mean)).sum();
    Ok(if ss_tot == 0.0 {
        if ss_res == 0.0 { 1.0 } else { 0.0 }
    } else {
        1.0 - ss_res / ss_tot
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_cases_by_hand() {
        let t = [1, 0, 1, 1, 0];
        let p = [1, 0, 0, 1, 1];
        assert_eq!(accuracy(&t, &p).unwrap(), 0.6);
        let bin = Average::Binary { pos_label: 1 };
        assert_eq!(precision(&t, &p, bin).unwrap(), 2.0 / 3.0);
        assert_eq!(recall(&t, &p, bin).unwrap(), 2.0 / 3.0);
        assert_eq!(
            confusion_matrix(&t, &p).unwrap().counts,
            vec![vec![1, 1], vec![1, 2]]
        );
        assert_eq!(
            roc_auc(&[false, true, false, true], &[0.1, 0.9, 0.9, 0.8]).unwrap(),
            0.625
        );
        assert!(
            roc_auc(&[true, true], &[0.1, 0.2])
                .unwrap_err()
                .is_invalid_argument()
        );
        assert_eq!(r2(&[1.0, 1.0], &[1.0, 1.0]).unwrap(), 1.0);
        assert_eq!(r2(&[1.0, 1.0], &[1.0, 2.0]).unwrap(), 0.0);
        assert!(accuracy(&[1], &[1, 2]).unwrap_err().is_invalid_argument());
        assert!(
            log_loss(&[0], &[vec![0.5, 0.6]])
                .unwrap_err()
                .is_invalid_argument()
        );
    }
}
