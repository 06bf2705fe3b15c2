//! The statistics behind the drift tests, each matching the scipy / numpy function Evidently
//! calls (tested against them in `tests/scipy.rs`).

pub mod kolmogorov;
pub mod ks;

use std::collections::BTreeMap;

/// The standard normal CDF as cephes' `ndtr` computes it (erf near 0, erfc in the tails).
pub fn ndtr(a: f64) -> f64 {
    let x = a * std::f64::consts::FRAC_1_SQRT_2;
    let z = x.abs();
    if z < std::f64::consts::FRAC_1_SQRT_2 {
        0.5 + 0.5 * statrs::function::erf::erf(x)
    } else {
        let y = 0.5 * statrs::function::erf::erfc(z);
        if x > 0.0 { 1.0 - y } else { y }
    }
}

/// The chi-square distribution's survival function, `chi2.sf(x, df)`.
pub fn chi2_sf(x: f64, df: f64) -> f64 {
    if x.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    if x <= 0.0 {
        return 1.0;
    }
    if x.is_infinite() {
        return 0.0;
    }
    statrs::function::gamma::gamma_ur(df / 2.0, x / 2.0)
}

/// Pearson's chi-square test of observed against expected counts (`scipy.stats.chisquare`
/// with `ddof=0`): `(statistic, p-value)`. An expected count of zero with an observation makes
/// the statistic infinite and the p-value 0.
pub fn chisquare(observed: &[f64], expected: &[f64]) -> (f64, f64) {
    let stat: f64 = observed
        .iter()
        .zip(expected)
        .map(|(o, e)| (o - e) * (o - e) / e)
        .sum();
    let df = observed.len().saturating_sub(1) as f64;
    let p = if stat.is_nan() {
        f64::NAN
    } else {
        chi2_sf(stat, df)
    };
    (stat, p)
}

/// The two-proportion z-test's two-sided p-value as Evidently computes it:
/// `2·(1 − Φ(|z|))` with `z = (p1 − p2)/sqrt(P(1−P)(1/n1 + 1/n2))`, where `ones` count the
/// values that are not the first category.
pub fn proportions_z_pvalue(ones_ref: f64, n_ref: f64, ones_cur: f64, n_cur: f64) -> f64 {
    let p1 = ones_ref / n_ref;
    let p2 = ones_cur / n_cur;
    let pooled = (p1 * n_ref + p2 * n_cur) / (n_ref + n_cur);
    let z = (p1 - p2) / (pooled * (1.0 - pooled) * (1.0 / n_ref + 1.0 / n_cur)).sqrt();
    2.0 * (1.0 - ndtr(z.abs()))
}

/// The 1-Wasserstein distance between two **sorted** samples (`scipy.stats.wasserstein_distance`):
/// ∫|U − V| over the merged support.
pub fn wasserstein_sorted(u: &[f64], v: &[f64]) -> f64 {
    let (nu, nv) = (u.len() as f64, v.len() as f64);
    let (mut i, mut j) = (0usize, 0usize);
    let mut prev: Option<f64> = None;
    let mut total = 0.0f64;
    let mut comp = 0.0f64;
    loop {
        let x = match (u.get(i), v.get(j)) {
            (Some(&a), Some(&b)) => a.min(b),
            (Some(&a), None) => a,
            (None, Some(&b)) => b,
            (None, None) => break,
        };
        if let Some(p) = prev {
            // Between p and x both CDFs are constant at their values after p.
            let term = (i as f64 / nu - j as f64 / nv).abs() * (x - p);
            let y = term - comp;
            let t = total + y;
            comp = (t - total) - y;
            total = t;
        }
        while i < u.len() && u[i] <= x {
            i += 1;
        }
        while j < v.len() && v[j] <= x {
            j += 1;
        }
        prev = Some(x);
    }
    total
}

/// Population standard deviation (`np.std`, ddof = 0), two-pass.
pub fn std_pop(values: &[f64]) -> f64 {
    let n = values.len() as f64;
    let mean = kahan_sum(values.iter().copied()) / n;
    let ss = kahan_sum(values.iter().map(|v| (v - mean) * (v - mean)));
    (ss / n).sqrt()
}

fn kahan_sum(values: impl Iterator<Item = f64>) -> f64 {
    let (mut sum, mut comp) = (0.0f64, 0.0f64);
    for v in values {
        let y = v - comp;
        let t = sum + y;
        comp = (t - sum) - y;
        sum = t;
    }
    sum
}

/// `scipy.spatial.distance.jensenshannon(p, q)`: the Jensen–Shannon *distance* (square root of
/// the divergence), natural log, after normalising each side to sum 1.
pub fn jensenshannon(p: &[f64], q: &[f64]) -> f64 {
    let sp: f64 = p.iter().sum();
    let sq: f64 = q.iter().sum();
    let (mut left, mut right) = (0.0f64, 0.0f64);
    for (a, b) in p.iter().zip(q) {
        let (a, b) = (a / sp, b / sq);
        let m = (a + b) / 2.0;
        left += rel_entr(a, m);
        right += rel_entr(b, m);
    }
    ((left + right) / 2.0).sqrt()
}

/// scipy's `rel_entr`: x·ln(x/y), 0 at x = 0, ∞ when y = 0 < x.
fn rel_entr(x: f64, y: f64) -> f64 {
    if x > 0.0 && y > 0.0 {
        x * (x / y).ln()
    } else if x == 0.0 && y >= 0.0 {
        0.0
    } else {
        f64::INFINITY
    }
}

/// Population stability index of two share vectors (already zero-filled).
pub fn psi(reference: &[f64], current: &[f64]) -> f64 {
    reference
        .iter()
        .zip(current)
        .map(|(r, c)| (r - c) * (r / c).ln())
        .sum()
}

/// Evidently's zero fill for PSI: zero shares become `min_nonzero / 1e6` when the smallest
/// non-zero share is at most 1e-4, otherwise 1e-4 (each side separately, not renormalised).
pub fn fill_zeroes(shares: &mut [f64]) {
    let min_nonzero = shares
        .iter()
        .copied()
        .filter(|s| *s != 0.0)
        .fold(f64::INFINITY, f64::min);
    if !min_nonzero.is_finite() {
        return;
    }
    let fill = if min_nonzero <= 0.0001 {
        min_nonzero / 1e6
    } else {
        0.0001
    };
    for s in shares.iter_mut().filter(|s| **s == 0.0) {
        *s = fill;
    }
}

/// `np.histogram_bin_edges(values, bins="sturges")` for data with this minimum, maximum and
/// size: equal-width edges over [min, max] (±0.5 when they are equal).
pub fn sturges_edges(min: f64, max: f64, size: usize) -> Vec<f64> {
    let (mut first, mut last) = (min, max);
    if first == last {
        first -= 0.5;
        last += 0.5;
    }
    // numpy: width = ptp / (log2(size) + 1); n = ceil((last - first) / width).
    let ptp = max - min;
    let width = ptp / ((size as f64).log2() + 1.0);
    let bins = if width > 0.0 {
        ((last - first) / width).ceil() as usize
    } else {
        1
    };
    let bins = bins.max(1);
    // np.linspace(first, last, bins + 1): i·step + first, the last edge exactly `last`.
    let step = (last - first) / bins as f64;
    let mut edges: Vec<f64> = (0..=bins).map(|i| i as f64 * step + first).collect();
    if let Some(e) = edges.last_mut() {
        *e = last;
    }
    edges
}

/// `np.histogram(sorted, edges)` counts: `[e_i, e_{i+1})`, the last bin closed.
pub fn histogram_sorted(sorted: &[f64], edges: &[f64]) -> Vec<u64> {
    if edges.len() < 2 {
        return Vec::new();
    }
    let lower = |e: f64| sorted.partition_point(|v| *v < e);
    let upper = |e: f64| sorted.partition_point(|v| *v <= e);
    let mut cum: Vec<usize> = edges[..edges.len() - 1].iter().map(|e| lower(*e)).collect();
    cum.push(upper(edges[edges.len() - 1]));
    cum.windows(2).map(|w| (w[1] - w[0]) as u64).collect()
}

/// Shares per bucket of two samples, Evidently's `get_binned_data`: Sturges bins over both
/// samples for a numerical reference with more than 20 distinct values, else one bucket per
/// distinct value of either side.
pub fn binned_numeric(
    reference: &[f64],
    current: &[f64],
    ref_unique: usize,
) -> (Vec<f64>, Vec<f64>) {
    let (nr, nc) = (reference.len() as f64, current.len() as f64);
    if ref_unique > 20 {
        let min = reference[0].min(current[0]);
        let max = reference[reference.len() - 1].max(current[current.len() - 1]);
        let edges = sturges_edges(min, max, reference.len() + current.len());
        let r = histogram_sorted(reference, &edges);
        let c = histogram_sorted(current, &edges);
        (
            r.iter().map(|x| *x as f64 / nr).collect(),
            c.iter().map(|x| *x as f64 / nc).collect(),
        )
    } else {
        let r = value_counts(reference);
        let c = value_counts(current);
        let keys: std::collections::BTreeSet<u64> = r.keys().chain(c.keys()).copied().collect();
        let share = |m: &BTreeMap<u64, u64>, k: &u64, n: f64| *m.get(k).unwrap_or(&0) as f64 / n;
        (
            keys.iter().map(|k| share(&r, k, nr)).collect(),
            keys.iter().map(|k| share(&c, k, nc)).collect(),
        )
    }
}

/// Counts of each distinct value of a sorted sample, keyed by a total-order bit pattern.
fn value_counts(sorted: &[f64]) -> BTreeMap<u64, u64> {
    let mut out = BTreeMap::new();
    for v in sorted {
        // -0.0 and 0.0 are one value, as in pandas.
        let v = if *v == 0.0 { 0.0 } else { *v };
        *out.entry(order_key(v)).or_insert(0) += 1;
    }
    out
}

fn order_key(v: f64) -> u64 {
    let bits = v.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

/// Number of distinct values of a sorted sample.
pub fn unique_sorted(sorted: &[f64]) -> usize {
    let mut n = 0;
    let mut prev: Option<f64> = None;
    for v in sorted {
        if prev != Some(*v) {
            n += 1;
            prev = Some(*v);
        }
    }
    n
}

/// Number of distinct values of the union of two sorted samples.
pub fn unique_union_sorted(a: &[f64], b: &[f64]) -> usize {
    let (mut i, mut j, mut n) = (0, 0, 0);
    let mut prev: Option<f64> = None;
    while i < a.len() || j < b.len() {
        let x = match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) if x <= y => {
                i += 1;
                x
            }
            (Some(_), Some(&y)) => {
                j += 1;
                y
            }
            (Some(&x), None) => {
                i += 1;
                x
            }
            (None, Some(&y)) => {
                j += 1;
                y
            }
            (None, None) => break,
        };
        if prev != Some(x) {
            n += 1;
            prev = Some(x);
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sturges_matches_numpy_on_small_cases() {
        // np.histogram_bin_edges([0, 1, 2, 3, 4, 5, 6, 7], bins="sturges") -> 4 bins.
        let e = sturges_edges(0.0, 7.0, 8);
        assert_eq!(e, vec![0.0, 1.75, 3.5, 5.25, 7.0]);
        assert_eq!(
            histogram_sorted(&[0., 1., 2., 3., 4., 5., 6., 7.], &e),
            vec![2, 2, 2, 2]
        );
        assert_eq!(sturges_edges(3.0, 3.0, 5), vec![2.5, 3.5]);
    }

    #[test]
    fn wasserstein_of_shifted_samples_is_the_shift() {
        let a = [0.0, 1.0, 2.0];
        let b = [1.0, 2.0, 3.0];
        assert!((wasserstein_sorted(&a, &b) - 1.0).abs() < 1e-15);
        assert_eq!(unique_union_sorted(&a, &b), 4);
    }
}
