//! SHAP values: exact for linear models (`shap.LinearExplainer`, interventional) and
//! KernelSHAP for any model (`shap.KernelExplainer`), with shap's coalition weighting.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;

use crate::features::{Features, Predict, predict_checked};
use mlops_core::{Error, Result};

/// Per-row attributions: `values[i][j]` is feature `j`'s share of row `i`'s output; each row's
/// values sum to its output minus `base_value` (in the link's space).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    /// The features, in the values' order.
    pub features: Vec<String>,
    /// The expected output over the background (`expected_value`).
    pub base_value: f64,
    /// One row of attributions per explained row.
    pub values: Vec<Vec<f64>>,
    /// The model's output for each explained row (in the link's space).
    pub outputs: Vec<f64>,
    /// The largest |output − base_value − Σ values| over rows: how far the attributions are
    /// from adding up (reported, not raised).
    pub additivity_error: f64,
}

impl Explanation {
    pub(crate) fn new(
        features: Vec<String>,
        base_value: f64,
        values: Vec<Vec<f64>>,
        outputs: Vec<f64>,
    ) -> Self {
        let additivity_error = values
            .iter()
            .zip(&outputs)
            .map(|(v, o)| (o - base_value - v.iter().sum::<f64>()).abs())
            // NaN propagates: a NaN attribution is not "adds up".
            .fold(0.0, |a: f64, e| {
                if a.is_nan() || e.is_nan() {
                    f64::NAN
                } else {
                    a.max(e)
                }
            });
        Self {
            features,
            base_value,
            values,
            outputs,
            additivity_error,
        }
    }

    /// The global summary: mean |value| per feature, largest first.
    pub fn mean_abs(&self) -> Vec<(String, f64)> {
        let rows = self.values.len().max(1) as f64;
        let mut out: Vec<(String, f64)> = self
            .features
            .iter()
            .enumerate()
            .map(|(j, f)| {
                (
                    f.clone(),
                    self.values.iter().map(|r| r[j].abs()).sum::<f64>() / rows,
                )
            })
            .collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1));
        out
    }
}

/// Exact SHAP values of a linear (or logistic, in log-odds) model: φⱼ = coefⱼ · (xⱼ − mean(Xⱼ))
/// over the background, as `shap.LinearExplainer` computes them (interventional).
#[derive(Debug, Clone, PartialEq)]
pub struct LinearExplainer {
    names: Vec<String>,
    coef: Vec<f64>,
    intercept: f64,
    mean: Vec<f64>,
}

impl LinearExplainer {
    /// An explainer of `coef · x + intercept` against `background`'s means.
    pub fn new(coef: Vec<f64>, intercept: f64, background: &Features) -> Result<Self> {
        if coef.len() != background.width() {
            return Err(Error::invalid(
                "coef",
                format!(
                    "{} coefficients for {} features",
                    coef.len(),
                    background.width()
                ),
            ));
        }
        if background.rows() == 0 {
            return Err(Error::invalid("background", "no rows"));
        }
        let n = background.rows() as f64;
        let mean = (0..background.width())
            .map(|j| {
                (0..background.rows())
                    .map(|i| background.row(i)[j])
                    .sum::<f64>()
                    / n
            })
            .collect();
        Ok(Self {
            names: background.names().to_vec(),
            coef,
            intercept,
            mean,
        })
    }

    /// The expected margin, `coef · mean + intercept`.
    pub fn base_value(&self) -> f64 {
        dot(&self.coef, &self.mean) + self.intercept
    }

    /// The attributions of every row of `x`.
    pub fn explain(&self, x: &Features) -> Result<Explanation> {
        x.check_same_features(
            &Features::from_parts(self.names.clone(), 0, Vec::new()),
            "explained rows",
        )?;
        let values = (0..x.rows())
            .map(|i| {
                x.row(i)
                    .iter()
                    .zip(&self.coef)
                    .zip(&self.mean)
                    .map(|((v, c), m)| c * (v - m))
                    .collect()
            })
            .collect();
        let outputs = (0..x.rows())
            .map(|i| dot(&self.coef, x.row(i)) + self.intercept)
            .collect();
        Ok(Explanation::new(
            self.names.clone(),
            self.base_value(),
            values,
            outputs,
        ))
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The space attributions add up in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Link {
    /// The output itself.
    #[default]
    Identity,
    /// log(p / (1 − p)), for probabilities.
    Logit,
}

impl Link {
    pub(crate) fn apply(self, v: f64) -> f64 {
        match self {
            Self::Identity => v,
            Self::Logit => (v / (1.0 - v)).ln(),
        }
    }

    /// Outputs the link cannot take (a logit of 0, 1 or beyond) are `InvalidArgument`.
    pub(crate) fn check(self, outputs: &[f64]) -> Result<()> {
        if self == Self::Logit
            && let Some(row) = outputs.iter().position(|p| !(*p > 0.0 && *p < 1.0))
        {
            return Err(Error::invalid(
                "predictions",
                format!(
                    "the logit link needs probabilities in (0, 1); row {row} is {}",
                    outputs[row]
                ),
            ));
        }
        Ok(())
    }
}

/// The most coalitions one row may be given (shap's own cap is 2^30; each costs a model call
/// per background row).
pub const MAX_NSAMPLES: usize = 1 << 24;

/// Options of [`KernelExplainer`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KernelOptions {
    /// Coalitions per explained row (none: shap's `"auto"`, 2M + 2048), capped at 2^M − 2,
    /// where every coalition is enumerated and the values are exact.
    pub nsamples: Option<usize>,
    /// The space the values add up in.
    pub link: Link,
    /// Seed of the coalitions drawn when they are not all enumerated.
    pub seed: u64,
}

impl Default for KernelOptions {
    fn default() -> Self {
        Self {
            nsamples: None,
            link: Link::Identity,
            seed: 0,
        }
    }
}

/// KernelSHAP (Lundberg & Lee 2017) as `shap.KernelExplainer` computes it: a weighted linear
/// regression over feature coalitions, each evaluated against every background row, with the
/// efficiency constraint eliminated exactly. Features equal to every background value get 0
/// (shap's "varying" features). Rows are explained in parallel.
///
/// No L1 feature selection is applied: the values equal shap's with `l1_reg=False` (shap's
/// default, `num_features(10)`, runs LARS first and may zero some features). Where shap falls
/// back to least squares on a singular system, this answers `InvalidArgument` asking for more
/// `nsamples`.
pub struct KernelExplainer<P> {
    model: P,
    background: Features,
    weights: Vec<f64>,
    options: KernelOptions,
    fnull: f64,
}

// By hand: closures are predictors and have no `Debug`.
impl<P> std::fmt::Debug for KernelExplainer<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelExplainer")
            .field("features", &self.background.names())
            .field("background_rows", &self.background.rows())
            .field("options", &self.options)
            .field("base_value", &self.fnull)
            .finish_non_exhaustive()
    }
}

impl<P: Predict> KernelExplainer<P> {
    /// An explainer of `model` against `background` (every row weighted equally). shap warns
    /// above 100 background rows: each costs a model call per coalition; see
    /// [`sample_background`].
    pub fn new(model: P, background: Features, options: KernelOptions) -> Result<Self> {
        let weights = vec![1.0; background.rows()];
        Self::with_weights(model, background, weights, options)
    }

    /// As [`new`](Self::new), with a weight per background row (cluster sizes, say).
    pub fn with_weights(
        model: P,
        background: Features,
        weights: Vec<f64>,
        options: KernelOptions,
    ) -> Result<Self> {
        check_setup(background.rows(), &weights, &options)?;
        let f = predict_checked(&model, &background)?;
        let fnull = expected(&f, &weights, options.link)?;
        Ok(Self {
            model,
            background,
            weights,
            options,
            fnull,
        })
    }

    /// The expected output over the background, in the link's space.
    pub fn base_value(&self) -> f64 {
        self.options.link.apply(self.fnull)
    }

    /// The attributions of every row of `x`.
    pub fn explain(&self, x: &Features) -> Result<Explanation> {
        self.background.check_same_features(x, "explained rows")?;
        let fx = predict_checked(&self.model, x)?;
        let link = self.options.link;
        link.check(&fx)?;
        let values = (0..x.rows())
            .into_par_iter()
            .map(|i| self.explain_row(x.row(i), fx[i], i as u64))
            .collect::<Result<Vec<_>>>()?;
        Ok(Explanation::new(
            x.names().to_vec(),
            self.base_value(),
            values,
            fx.iter().map(|v| link.apply(*v)).collect(),
        ))
    }

    fn explain_row(&self, x: &[f64], fx: f64, row: u64) -> Result<Vec<f64>> {
        let width = x.len();
        let bg = &self.background;
        let varying: Vec<usize> = (0..width)
            .filter(|&j| (0..bg.rows()).any(|b| !close(x[j], bg.row(b)[j])))
            .collect();
        shapley_row(
            width,
            &varying,
            fx,
            self.fnull,
            &self.options,
            row,
            |masks| self.evaluate(x, &varying, masks),
        )
    }

    /// The weighted mean output over the background of each coalition's synthetic rows.
    fn evaluate(&self, x: &[f64], varying: &[usize], masks: &[Vec<bool>]) -> Result<Vec<f64>> {
        let bg = &self.background;
        let (n, width) = (bg.rows(), bg.width());
        let total_w: f64 = self.weights.iter().sum();
        // Batches of ~64k synthetic values (512 KiB) per model call: built and read back while
        // they are still in the core's cache (measured: 32 MB batches ran ~3x slower, bound by
        // memory bandwidth).
        let per_call = ((1usize << 16) / (n * width).max(1)).max(1);
        let mut ey = Vec::with_capacity(masks.len());
        let mut on: Vec<usize> = Vec::with_capacity(varying.len());
        for chunk in masks.chunks(per_call) {
            let mut values = Vec::with_capacity(chunk.len() * n * width);
            for mask in chunk {
                on.clear();
                on.extend(
                    varying
                        .iter()
                        .zip(mask)
                        .filter(|(_, m)| **m)
                        .map(|(j, _)| *j),
                );
                for b in 0..n {
                    let start = values.len();
                    values.extend_from_slice(bg.row(b));
                    let row = &mut values[start..];
                    for &j in &on {
                        row[j] = x[j];
                    }
                }
            }
            let synth = Features::from_parts(bg.names().to_vec(), chunk.len() * n, values);
            let f = predict_checked(&self.model, &synth)?;
            self.options.link.check(&f)?;
            for c in 0..chunk.len() {
                let s: f64 = f[c * n..(c + 1) * n]
                    .iter()
                    .zip(&self.weights)
                    .map(|(f, w)| f * w)
                    .sum();
                ey.push(s / total_w);
            }
        }
        Ok(ey)
    }
}

/// One row's attributions, shared by both KernelSHAP explainers: nothing for a row equal to
/// every background row, the whole difference for a single varying feature, else shap's
/// coalitions (seeded per row), `evaluate`d into mean outputs, and the constrained regression.
pub(crate) fn shapley_row(
    width: usize,
    varying: &[usize],
    fx: f64,
    fnull: f64,
    options: &KernelOptions,
    row: u64,
    evaluate: impl FnOnce(&[Vec<bool>]) -> Result<Vec<f64>>,
) -> Result<Vec<f64>> {
    let m = varying.len();
    let link = options.link;
    let total = link.apply(fx) - link.apply(fnull);
    let mut phi = vec![0.0; width];
    match m {
        0 => return Ok(phi),
        1 => {
            phi[varying[0]] = total;
            return Ok(phi);
        }
        _ => {}
    }
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    rng.set_stream(row);
    let (masks, kernel) = coalitions(m, options.nsamples, &mut rng)?;
    let ey = evaluate(&masks)?;
    let w = solve(m, &masks, &kernel, &ey, total, |v| {
        link.apply(v) - link.apply(fnull)
    })?;
    for (k, &j) in varying.iter().enumerate() {
        phi[j] = w[k];
    }
    Ok(phi)
}

/// Checks what both KernelSHAP explainers are built from: a background of `rows` rows with one
/// finite, non-negative weight each (not all zero) and a coalition budget within bounds.
pub(crate) fn check_setup(rows: usize, weights: &[f64], options: &KernelOptions) -> Result<()> {
    if rows == 0 {
        return Err(Error::invalid("background", "no rows"));
    }
    if weights.len() != rows
        || weights.iter().any(|w| !w.is_finite() || *w < 0.0)
        || weights.iter().sum::<f64>() <= 0.0
    {
        return Err(Error::invalid(
            "background weights",
            "one finite, non-negative weight per background row, not all zero",
        ));
    }
    if let Some(n) = options.nsamples
        && (n == 0 || n > MAX_NSAMPLES)
    {
        return Err(Error::invalid(
            "nsamples",
            format!("{n} coalitions: between 1 and {MAX_NSAMPLES}"),
        ));
    }
    Ok(())
}

/// The weighted mean of the background's outputs `f` (checked against the link).
pub(crate) fn expected(f: &[f64], weights: &[f64], link: Link) -> Result<f64> {
    link.check(f)?;
    let total: f64 = weights.iter().sum();
    Ok(f.iter().zip(weights).map(|(f, w)| f * w).sum::<f64>() / total)
}

/// numpy's `allclose` for one pair.
pub(crate) fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-8 + 1e-5 * b.abs()
}

fn binomial(n: usize, k: usize) -> f64 {
    (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
}

/// Every `k`-subset of `0..n` in lexicographic order (itertools.combinations).
fn combinations(n: usize, k: usize, mut f: impl FnMut(&[usize])) {
    let mut idx: Vec<usize> = (0..k).collect();
    loop {
        f(&idx);
        let Some(i) = (0..k).rev().find(|&i| idx[i] != i + n - k) else {
            return;
        };
        idx[i] += 1;
        for j in i + 1..k {
            idx[j] = idx[j - 1] + 1;
        }
    }
}

type Coalitions = (Vec<Vec<bool>>, Vec<f64>);

/// shap's coalition plan: whole subset sizes enumerated while the budget covers them (paired
/// with their complements), the rest drawn by size in proportion to the Shapley kernel.
pub(crate) fn coalitions(
    m: usize,
    nsamples: Option<usize>,
    rng: &mut ChaCha8Rng,
) -> Result<Coalitions> {
    let mut n = nsamples.unwrap_or(2 * m + 2048).min(MAX_NSAMPLES);
    if n == 0 {
        return Err(Error::invalid("nsamples", "at least one coalition"));
    }
    if m < 31 {
        n = n.min((1usize << m) - 2);
    }
    let num_subset_sizes = (m - 1).div_ceil(2);
    let num_paired = (m - 1) / 2;
    let mut weight_vector: Vec<f64> = (1..=num_subset_sizes)
        .map(|s| (m as f64 - 1.0) / (s as f64 * (m - s) as f64))
        .collect();
    for w in weight_vector.iter_mut().take(num_paired) {
        *w *= 2.0;
    }
    let sum: f64 = weight_vector.iter().sum();
    weight_vector.iter_mut().for_each(|w| *w /= sum);

    let mut masks: Vec<Vec<bool>> = Vec::new();
    let mut kernel: Vec<f64> = Vec::new();
    let mut num_full = 0;
    let mut left = n as f64;
    let mut remaining = weight_vector.clone();
    for s in 1..=num_subset_sizes {
        let paired = s <= num_paired;
        let nsubsets = binomial(m, s) * if paired { 2.0 } else { 1.0 };
        if left * remaining[s - 1] / nsubsets < 1.0 - 1e-8 {
            break;
        }
        num_full += 1;
        left -= nsubsets;
        if remaining[s - 1] < 1.0 {
            let d = 1.0 - remaining[s - 1];
            remaining.iter_mut().for_each(|w| *w /= d);
        }
        let mut w = weight_vector[s - 1] / binomial(m, s);
        if paired {
            w /= 2.0;
        }
        combinations(m, s, |inds| {
            let mut mask = vec![false; m];
            for &i in inds {
                mask[i] = true;
            }
            let complement: Vec<bool> = mask.iter().map(|b| !b).collect();
            masks.push(mask);
            kernel.push(w);
            if paired {
                masks.push(complement);
                kernel.push(w);
            }
        });
    }
    let fixed = masks.len();
    let mut samples_left = n.saturating_sub(fixed);
    if num_full != num_subset_sizes && samples_left > 0 {
        let mut rem = weight_vector.clone();
        for w in rem.iter_mut().take(num_paired) {
            *w /= 2.0;
        }
        let rem = &rem[num_full..];
        let rem_sum: f64 = rem.iter().sum();
        let mut used: std::collections::HashMap<Vec<bool>, usize> =
            std::collections::HashMap::new();
        let mut draws = samples_left.saturating_mul(4);
        while samples_left > 0 && draws > 0 {
            draws -= 1;
            let mut u = rng.random::<f64>() * rem_sum;
            let mut ind = rem.len() - 1;
            for (i, w) in rem.iter().enumerate() {
                if u < *w {
                    ind = i;
                    break;
                }
                u -= w;
            }
            let size = ind + num_full + 1;
            let mut order: Vec<usize> = (0..m).collect();
            for i in 0..size {
                let j = rng.random_range(i..m);
                order.swap(i, j);
            }
            let mut mask = vec![false; m];
            for &i in &order[..size] {
                mask[i] = true;
            }
            let new = !used.contains_key(&mask);
            let at = if new {
                used.insert(mask.clone(), masks.len());
                masks.push(mask.clone());
                kernel.push(1.0);
                samples_left -= 1;
                masks.len() - 1
            } else {
                let at = used[&mask];
                kernel[at] += 1.0;
                at
            };
            if samples_left > 0 && size <= num_paired {
                let complement: Vec<bool> = mask.iter().map(|b| !b).collect();
                if new {
                    masks.push(complement);
                    kernel.push(1.0);
                    samples_left -= 1;
                } else if at + 1 < kernel.len() {
                    kernel[at + 1] += 1.0;
                }
            }
        }
        let weight_left: f64 = weight_vector[num_full..].iter().sum();
        let drawn: f64 = kernel[fixed..].iter().sum();
        if drawn > 0.0 {
            kernel[fixed..]
                .iter_mut()
                .for_each(|k| *k *= weight_left / drawn);
        }
    }
    Ok((masks, kernel))
}

/// shap's `solve`: the efficiency constraint eliminates the last feature, then weighted least
/// squares by the normal equations.
pub(crate) fn solve(
    m: usize,
    masks: &[Vec<bool>],
    kernel: &[f64],
    ey: &[f64],
    total: f64,
    adjust: impl Fn(f64) -> f64,
) -> Result<Vec<f64>> {
    let p = m - 1;
    let mut xtwx = vec![0.0; p * p];
    let mut xtwy = vec![0.0; p];
    let mut row = vec![0.0; p];
    for ((mask, &w), &e) in masks.iter().zip(kernel).zip(ey) {
        let last = f64::from(u8::from(mask[p]));
        let y = adjust(e) - last * total;
        for (r, &b) in row.iter_mut().zip(mask) {
            *r = f64::from(u8::from(b)) - last;
        }
        for a in 0..p {
            if row[a] == 0.0 {
                continue;
            }
            let wa = w * row[a];
            xtwy[a] += wa * y;
            for b in 0..p {
                xtwx[a * p + b] += wa * row[b];
            }
        }
    }
    let w = gauss(p, xtwx, xtwy).ok_or_else(|| {
        Error::invalid(
            "nsamples",
            format!(
                "{} coalitions do not determine {m} attributions: raise nsamples",
                masks.len()
            ),
        )
    })?;
    let mut phi = w.clone();
    phi.push(total - w.iter().sum::<f64>());
    Ok(phi)
}

/// Gaussian elimination with partial pivoting; `None` when singular.
fn gauss(n: usize, mut a: Vec<f64>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let scale = a
        .iter()
        .fold(0.0f64, |s, v| s.max(v.abs()))
        .max(f64::MIN_POSITIVE);
    for col in 0..n {
        let pivot =
            (col..n).max_by(|&i, &j| a[i * n + col].abs().total_cmp(&a[j * n + col].abs()))?;
        if a[pivot * n + col].abs() <= scale * 1e-12 {
            return None;
        }
        if pivot != col {
            for k in 0..n {
                a.swap(pivot * n + k, col * n + k);
            }
            b.swap(pivot, col);
        }
        for r in col + 1..n {
            let f = a[r * n + col] / a[col * n + col];
            if f == 0.0 {
                continue;
            }
            for k in col..n {
                a[r * n + k] -= f * a[col * n + k];
            }
            b[r] -= f * b[col];
        }
    }
    let mut x = vec![0.0; n];
    for r in (0..n).rev() {
        let s: f64 = (r + 1..n).map(|k| a[r * n + k] * x[k]).sum();
        x[r] = (b[r] - s) / a[r * n + r];
    }
    Some(x)
}

/// `k` background rows drawn without replacement (shap's `shap.sample`); all rows when there
/// are no more than `k`.
pub fn sample_background(data: &Features, k: usize, seed: u64) -> Result<Features> {
    if k == 0 {
        return Err(Error::invalid("background", "a background of 0 rows"));
    }
    if data.rows() <= k {
        return Ok(data.clone());
    }
    data.select(&sample_indices(data.rows(), k, seed))
}

/// `k` of `0..n` drawn without replacement by a seeded partial Fisher–Yates shuffle.
pub(crate) fn sample_indices(n: usize, k: usize, seed: u64) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut idx: Vec<usize> = (0..n).collect();
    for i in 0..k.min(n) {
        let j = rng.random_range(i..idx.len());
        idx.swap(i, j);
    }
    idx.truncate(k);
    idx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combinations_are_itertools_order() {
        let mut seen = Vec::new();
        combinations(4, 2, |c| seen.push(c.to_vec()));
        assert_eq!(
            seen,
            vec![
                vec![0, 1],
                vec![0, 2],
                vec![0, 3],
                vec![1, 2],
                vec![1, 3],
                vec![2, 3]
            ]
        );
    }

    #[test]
    fn a_sampled_plan_keeps_shaps_weights_and_pairs() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let m = 12;
        let (masks, kernel) = coalitions(m, Some(500), &mut rng).unwrap();
        assert_eq!(masks.len(), 500);
        assert!((kernel.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        let distinct: std::collections::HashSet<_> = masks.iter().collect();
        assert_eq!(distinct.len(), masks.len(), "no coalition twice");
        // Sizes 1 and 11 (24 coalitions) and 2 and 10 (132) fit the budget and are enumerated
        // first, each subset followed by its complement; the rest are drawn.
        let sizes: Vec<usize> = masks
            .iter()
            .map(|m| m.iter().filter(|b| **b).count())
            .collect();
        assert!(sizes[..24].iter().all(|s| *s == 1 || *s == 11));
        assert!(sizes[24..156].iter().all(|s| *s == 2 || *s == 10));
        for pair in masks[..156].chunks(2) {
            assert!(
                pair[0].iter().zip(&pair[1]).all(|(a, b)| a != b),
                "complements adjacent"
            );
        }
        assert!(sizes[156..].iter().all(|s| (3..=9).contains(s)));
        // Drawn coalitions share the weight the enumerated sizes left.
        let fixed: f64 = kernel[..156].iter().sum();
        assert!(fixed > 0.0 && fixed < 1.0);
    }

    #[test]
    fn small_feature_counts_enumerate_every_coalition() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        for m in 2..=8 {
            let (masks, kernel) = coalitions(m, None, &mut rng).unwrap();
            assert_eq!(masks.len(), (1 << m) - 2, "m = {m}");
            let distinct: std::collections::HashSet<_> = masks.iter().collect();
            assert_eq!(distinct.len(), masks.len());
            assert!((kernel.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
    }
}
