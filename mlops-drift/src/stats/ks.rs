//! The two-sample Kolmogorov–Smirnov test, two-sided, with p-values as scipy's
//! `ks_2samp(method="auto")` computes them: exact when both samples have at most 10,000 values,
//! Smirnov's asymptotic distribution of `D` at `n = round(n1·n2 / (n1 + n2))` otherwise.

use super::kolmogorov;

/// Above this size of the larger sample, `auto` switches from the exact p-value to the
/// asymptotic one (scipy's `MAX_AUTO_N`).
pub const MAX_EXACT_N: usize = 10_000;

/// The statistic and p-value of a two-sided two-sample KS test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KsResult {
    /// `D = sup |F1 - F2|`.
    pub statistic: f64,
    /// The two-sided p-value.
    pub pvalue: f64,
}

/// The KS statistic of two **sorted**, non-empty samples (finite values).
pub fn statistic_sorted(a: &[f64], b: &[f64]) -> f64 {
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j) = (0usize, 0usize);
    let (mut max_diff, mut min_diff) = (0.0f64, 0.0f64);
    // Walk the merged values; at each distinct value both ECDFs jump past every equal value, as
    // searchsorted(side="right") does.
    while i < a.len() || j < b.len() {
        let x = match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) => x.min(y),
            (Some(&x), None) => x,
            (None, Some(&y)) => y,
            (None, None) => break,
        };
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        let diff = i as f64 / n1 - j as f64 / n2;
        max_diff = max_diff.max(diff);
        min_diff = min_diff.min(diff);
    }
    let min_s = (-min_diff).clamp(0.0, 1.0);
    if min_s > max_diff { min_s } else { max_diff }
}

/// The two-sided test on two **sorted**, non-empty samples, p-value chosen as scipy's `auto`.
pub fn ks_2samp_sorted(a: &[f64], b: &[f64]) -> KsResult {
    let d = statistic_sorted(a, b);
    let (n1, n2) = (a.len(), b.len());
    if n1.max(n2) <= MAX_EXACT_N
        && let Some((d, p)) = exact(n1, n2, d)
    {
        return KsResult {
            statistic: d,
            pvalue: p.clamp(0.0, 1.0),
        };
    }
    KsResult {
        statistic: d,
        pvalue: asymptotic(n1, n2, d).clamp(0.0, 1.0),
    }
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The exact two-sided p-value; `None` when it cannot be computed in floating point (then the
/// asymptotic one is used, as scipy does). `d` is snapped to the lattice `h / lcm`.
fn exact(n1: usize, n2: usize, d: f64) -> Option<(f64, f64)> {
    let g = gcd(n1, n2);
    let lcm = (n1 / g) as f64 * n2 as f64;
    let h = (d * lcm).round_ties_even();
    let d = h / lcm;
    if h == 0.0 {
        return Some((d, 1.0));
    }
    let h = h as u64;
    let p = if n1 == n2 {
        prob_outside_square(n1 as u64, h)
    } else {
        outer_prob_inside(n1 as u64, n2 as u64, g as u64, h)
    };
    (p.is_finite() && (0.0..=1.0).contains(&p)).then_some((d, p))
}

/// Pr(D_{n,n} >= h/n): 2·(A0·(1 − A1·(1 − A2·(…)))) with each A_k a ratio of h simple factors
/// (Horner form of the alternating binomial sum, avoiding its cancellation).
fn prob_outside_square(n: u64, h: u64) -> f64 {
    let (n, h) = (n as f64, h as f64);
    let mut p = 0.0f64;
    let mut k = (n / h).floor();
    while k >= 0.0 {
        let mut p1 = 1.0f64;
        let mut j = 0.0;
        while j < h {
            p1 = (n - k * h - j) * p1 / (n + k * h + j + 1.0);
            j += 1.0;
        }
        p = p1 * (1.0 - p);
        k -= 1.0;
    }
    2.0 * p
}

/// 1 − (paths from (0,0) to (m,n) staying strictly inside |x/m − y/n| < h/lcm) / C(m+n, n),
/// computed directly as a probability column by column (Hodges' inside method with
/// Viehmann's recursion for 1 − p).
fn outer_prob_inside(m: u64, n: u64, g: u64, h: u64) -> f64 {
    let (m, n) = if m < n { (n, m) } else { (m, n) };
    let (mg, ng) = ((m / g) as f64, (n / g) as f64);
    let hf = h as f64;
    let mut minj: i64 = 0;
    let mut maxj: i64 = ((hf / mg).ceil() as i64).min(n as i64 + 1);
    let mut curlen = maxj - minj;
    let len = usize::try_from((2 * maxj + 2).min(n as i64 + 1)).unwrap_or(0);
    let mut a = vec![1.0f64; len.max(1)];
    for v in a.iter_mut().take(usize::try_from(maxj).unwrap_or(0)) {
        *v = 0.0;
    }
    for i in 1..=m {
        let fi = i as f64;
        let (lastminj, lastlen) = (minj, curlen);
        minj = (((ng * fi - hf) / mg).floor() as i64 + 1)
            .max(0)
            .min(n as i64);
        maxj = (((ng * fi + hf) / mg).ceil() as i64).min(n as i64 + 1);
        if maxj <= minj {
            return 1.0;
        }
        let mut val = if minj == 0 { 0.0 } else { 1.0 };
        for jj in 0..(maxj - minj) {
            let j = (jj + minj) as f64;
            let idx = usize::try_from(jj + minj - lastminj).unwrap_or(0);
            let prev = a.get(idx).copied().unwrap_or(1.0);
            val = (prev * fi + val * j) / (fi + j);
            if let Some(slot) = a.get_mut(usize::try_from(jj).unwrap_or(0)) {
                *slot = val;
            }
        }
        curlen = maxj - minj;
        if lastlen > curlen {
            let from = usize::try_from(maxj - minj).unwrap_or(0);
            let to = usize::try_from(maxj - minj + (lastlen - curlen)).unwrap_or(0);
            for v in a.iter_mut().take(to).skip(from) {
                *v = 1.0;
            }
        }
    }
    a.get(usize::try_from(maxj - minj - 1).unwrap_or(0))
        .copied()
        .unwrap_or(f64::NAN)
}

/// Smirnov's asymptotic two-sided p-value: the Kolmogorov distribution of `D_n` at
/// `n = round(n1·n2/(n1+n2))`.
fn asymptotic(n1: usize, n2: usize, d: f64) -> f64 {
    let (m, n) = if n1 >= n2 {
        (n1 as f64, n2 as f64)
    } else {
        (n2 as f64, n1 as f64)
    };
    let en = m * n / (m + n);
    kolmogorov::kolmogn_sf(en.round_ties_even() as u64, d)
}
